"""The core's array-generic engine on torch tensors.

:class:`TorchOps` implements :class:`qstore.core.engine.generic.ArrayOps` with torch operations,
so :func:`qstore.core.engine.generic.forward` runs a compiled
:class:`~qstore.core.engine.program.Program` on the device of its inputs and torch autograd
differentiates it (weights and inputs alike). There is no second simulator here: only the
primitives the core's engine asks for, and a cache that turns the program's NumPy constants
(gate Fourier tables, permutation indices, observable masks) into device tensors once.

>>> import torch
>>> import qstore.core as qc
>>> from qstore.core.engine.program import compile_program
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
>>> prog = compile_program(c, ["x"], observables=[qc.Z(0) + 0])
>>> expectations(prog, torch.tensor([[0.0], [3.14159265]])).round(decimals=4).tolist()
[[1.0], [-1.0]]
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from qstore.core.engine import generic
from qstore.core.engine.program import Program

__all__ = ["TorchOps", "compute_dtypes", "expectations", "final_state", "torch_ops"]

_MAX_CACHED = 4096  # constants per (device, dtype); programs are few, so this is never reached


class TorchOps:
    """:class:`~qstore.core.engine.generic.ArrayOps` on torch tensors of one device and dtype.

    Constants arrive as NumPy arrays owned by a program; each is converted once and kept, keyed
    by the identity of the array (the cache holds the array too, so the identity cannot be
    reused while the entry lives). Training steps therefore upload nothing.
    """

    #: Trailing shared-weight layers of registers up to this size run as one matrix: eager
    #: torch pays per operation, so a few matrix products beat many small state updates.
    unitary_max_qubits = 6

    def __init__(self, device: torch.device | str, complex_dtype: torch.dtype) -> None:
        if complex_dtype not in (torch.complex64, torch.complex128):
            raise ValueError(f"complex_dtype must be complex64 or complex128, got {complex_dtype}.")
        self.device = torch.device(device)
        self.complex_dtype = complex_dtype
        self.real_dtype = torch.float32 if complex_dtype == torch.complex64 else torch.float64
        self._cache: dict[tuple[int, str], tuple[object, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"TorchOps(device={str(self.device)!r}, complex_dtype={self.complex_dtype})"

    def _cached(self, value: Any, kind: str, dtype: torch.dtype) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return torch.as_tensor(value, dtype=dtype, device=self.device)
        if isinstance(value, np.ndarray):
            key = (id(value), kind)
            hit = self._cache.get(key)
            if hit is not None and hit[0] is value:
                return hit[1]
        arr = np.ascontiguousarray(value)
        t = torch.as_tensor(arr, dtype=dtype, device=self.device)
        if isinstance(value, np.ndarray):
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[(id(value), kind)] = (value, t)
        return t

    # -- ArrayOps ---------------------------------------------------------------------------
    def const(self, value: npt.ArrayLike, complex_: bool) -> torch.Tensor:
        if complex_:
            return self._cached(value, "c", self.complex_dtype)
        return self._cached(value, "r", self.real_dtype)

    def to_real(self, x: Any) -> torch.Tensor:
        return torch.as_tensor(x, dtype=self.real_dtype, device=self.device)

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)

    def reshape(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return x.reshape(tuple(shape))

    def take(self, x: torch.Tensor, index: npt.NDArray[np.intp]) -> torch.Tensor:
        idx = self._cached(index, "i", torch.long)
        if idx.dim() == 1:
            return torch.index_select(x, -1, idx)
        return x[..., idx]

    def apply_left(self, k: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``k [d, d]`` applied to axis 1 of ``x [N, d, r]``.

        Under autograd, one ``[d, d] @ [d, N*r]`` product (after a transposition) costs less to
        differentiate than the batch of ``N`` products ``torch.matmul`` makes of it; without
        gradients the batched form is faster.
        """
        if torch.is_grad_enabled() and (x.requires_grad or k.requires_grad):
            d, n, r = x.shape[1], x.shape[0], x.shape[2]
            cols = x.transpose(0, 1).reshape(d, n * r)
            return (k @ cols).reshape(d, n, r).transpose(0, 1)
        return torch.matmul(k, x)

    def exp_i(self, phase: torch.Tensor) -> torch.Tensor:
        return torch.polar(torch.ones_like(phase), phase)

    def abs2(self, z: torch.Tensor) -> torch.Tensor:
        # |z|**2 through real and imaginary parts: torch.abs has an infinite slope at zero.
        return z.real.square() + z.imag.square()

    def real(self, z: torch.Tensor) -> torch.Tensor:
        return z.real

    def conj(self, z: torch.Tensor) -> torch.Tensor:
        return z.conj()

    def einsum(self, spec: str, *operands: torch.Tensor) -> torch.Tensor:
        return torch.einsum(spec, *operands)

    def moveaxis(self, x: torch.Tensor, source: Sequence[int], dest: Sequence[int]) -> torch.Tensor:
        return torch.movedim(x, tuple(source), tuple(dest))

    def swap_last(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-1, -2)

    def broadcast_to(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return x.expand(tuple(shape))

    def stack(self, xs: Sequence[torch.Tensor], axis: int) -> torch.Tensor:
        return torch.stack(list(xs), dim=axis)

    def unstack(self, x: torch.Tensor, axis: int) -> list[torch.Tensor]:
        return list(torch.unbind(x, dim=axis))

    def shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return tuple(x.shape)


_OPS: dict[tuple[str, torch.dtype], TorchOps] = {}
_OPS_LOCK = threading.Lock()


def torch_ops(device: torch.device, complex_dtype: torch.dtype) -> TorchOps:
    """The shared :class:`TorchOps` of ``device`` and ``complex_dtype`` (constants cached)."""
    key = (str(device), complex_dtype)
    ops = _OPS.get(key)
    if ops is None:
        with _OPS_LOCK:
            ops = _OPS.setdefault(key, TorchOps(device, complex_dtype))
    return ops


def compute_dtypes(dtype: torch.dtype) -> tuple[torch.dtype, torch.dtype]:
    """``(real, complex)`` dtypes a simulation runs in for a parameter or input dtype.

    float64 (and complex128) simulate in complex128; every other dtype (float32, and the
    half-precision ones, which state vectors cannot afford) in complex64.
    """
    if dtype in (torch.float64, torch.complex128):
        return torch.float64, torch.complex128
    return torch.float32, torch.complex64


def _full_precision(values: torch.Tensor) -> torch.autocast:
    """Autocast off: half-precision gate angles and probabilities would cost whole digits."""
    return torch.autocast(device_type=values.device.type, enabled=False)


def expectations(
    prog: Program, values: torch.Tensor, initial_state: torch.Tensor | None = None
) -> torch.Tensor:
    """Expectations ``[B, n_obs]`` of ``prog`` for bindings ``values [B, P]`` (differentiable).

    ``values`` holds every binding column (per-sample first, then shared, as compiled); its
    dtype picks the simulation precision. ``initial_state [B, 2**n]`` replaces ``|0...0>``.
    """
    ops = torch_ops(values.device, compute_dtypes(values.dtype)[1])
    with _full_precision(values):
        out: torch.Tensor = generic.forward(ops, prog, values, initial_state=initial_state)
    return out


def final_state(
    prog: Program, values: torch.Tensor, initial_state: torch.Tensor | None = None
) -> torch.Tensor:
    """Final state vectors ``[B, 2**n]`` of ``prog`` (qubit 0 the most significant bit)."""
    ops = torch_ops(values.device, compute_dtypes(values.dtype)[1])
    with _full_precision(values):
        out: torch.Tensor = generic.run(ops, prog, values, initial_state=initial_state)
    return out
