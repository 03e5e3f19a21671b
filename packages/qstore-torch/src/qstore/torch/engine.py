"""The core's array-generic engine on torch tensors.

:class:`TorchOps` implements :class:`qstore.core.engine.generic.ArrayOps` with torch operations,
so the core's engine runs a compiled :class:`~qstore.core.engine.program.Program` on the device
of its inputs. A training step is one ``torch.autograd.Function``: the forward pass keeps the
state after every op and the backward pass is the core's adjoint sweep
(:mod:`qstore.core.engine.adjoint`) on the same tensors, a few large operations per op, not
autograd over the many small ones of the forward pass. There is no second simulator here: only
the primitives the core's engine asks for, and a cache that turns the program's NumPy constants
(gate tables, permutation indices, observable masks) into device tensors once.

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
from torch.autograd.function import once_differentiable

from qstore.core.engine import adjoint, generic
from qstore.core.engine.program import Program

__all__ = [
    "TorchOps",
    "compute_dtypes",
    "expectations",
    "final_state",
    "measure",
    "numpy_eligible",
    "torch_ops",
]

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
    #: Stacks of small matrix products are fast (the adjoint's cross-densities use them).
    batched_products = True

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
        # Not inside torch.compile or a torch.func transform: a tensor made there belongs to
        # that trace or transform level, and reusing it in a later one breaks it (a Hessian
        # after a gradient failed with "escaped?").
        if torch.compiler.is_compiling() or _functorch_active():
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

    def to_complex(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.complex_dtype)

    def concat(self, xs: Sequence[torch.Tensor], axis: int) -> torch.Tensor:
        return torch.cat(list(xs), dim=axis)

    def sum(self, x: torch.Tensor, axis: int | tuple[int, ...]) -> torch.Tensor:
        return x.sum(dim=axis)

    def kron(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Kronecker product over the last two axes (leading axes broadcast)."""
        da, db = a.shape[-1], b.shape[-1]
        out = a[..., :, None, :, None] * b[..., None, :, None, :]
        return out.reshape(*out.shape[:-4], da * db, da * db)


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


#: Registers up to this many qubits simulate on NumPy when the tensors live on the CPU: per
#: operation NumPy costs about half of what eager torch does, which decides small registers; from
#: 10 qubits the batch is split over threads (:mod:`qstore.core.engine.threads`), one BLAS thread
#: each. RW forward + gradient, batch 32, 2 threads, ms per step, NumPy vs torch's kernels
#: (2026-11-30): n=13 94 vs 75, n=14 98 vs 100, n=15 ~165-240 vs 160-190, n=16 255 vs 320,
#: n=17 1,600 vs 2,200, n=18 2,850 vs 3,850. NumPy also keeps its speed when another process
#: shares the cores, where torch's spinning threads lose most of theirs (n=12 under load:
#: 1,353 vs 56 samples/s). Larger registers (not measured) use torch's kernels.
NUMPY_MAX_QUBITS = 20

#: On GPUs the one-node adjoint wins up to mid-sized registers and autograd op by op above
#: (RW forward + gradient, batch 32, H200: n=16 3,630 vs 2,067 samples/s, n=20 644 vs 876,
#: n=22 79 vs 194; the adjoint keeps a third less memory): larger registers use autograd.
DEVICE_ADJOINT_MAX_QUBITS = 18

_NUMPY_OPS = {
    torch.complex64: generic.NumpyOps(np.complex64),
    torch.complex128: generic.NumpyOps(np.complex128),
}


def _to_numpy(x: torch.Tensor | None) -> Any:
    return None if x is None else x.detach().resolve_conj().numpy()


def numpy_eligible(x: torch.Tensor, n_qubits: int = 0) -> bool:
    """Whether an operation on ``x`` may run as one NumPy-backed autograd node: a CPU tensor of
    a register of at most :data:`NUMPY_MAX_QUBITS` qubits, outside ``torch.compile`` and
    ``torch.func`` transforms (which trace operations one by one)."""
    return (
        x.device.type == "cpu"
        and n_qubits <= NUMPY_MAX_QUBITS
        and not torch.compiler.is_compiling()
        and not _functorch_active()
    )


class _Simulate(torch.autograd.Function):
    """Forward pass and adjoint VJP of a program as one autograd node.

    Inputs: per-sample bindings ``inputs [B, P_b]``, the shared ``weights [S]`` (or ``None``
    when ``inputs`` holds every column) and an optional initial state ``[B, 2**n]``. Output:
    expectations ``[B, n_obs]`` (``measure=True``) or the final states ``[B, 2**n]``. On the
    CPU, small registers run on NumPy arrays that share the tensors' memory. The weights'
    gradient comes summed over the batch from the adjoint pass itself (no broadcast to undo).
    """

    @staticmethod
    def forward(
        ctx: Any,
        inputs: torch.Tensor,
        weights: torch.Tensor | None,
        initial_state: torch.Tensor | None,
        prog: Program,
        ops: Any,
        measure: bool,
    ) -> torch.Tensor:
        ctx.prog, ctx.ops, ctx.measure = prog, ops, measure
        ctx.has_weights = weights is not None
        if isinstance(ops, generic.NumpyOps):  # large batches split over threads
            v = _numpy_bindings(ops, inputs, weights)
            out, ctx.trace = adjoint.trace_split(ops, prog, v, _to_numpy(initial_state), measure)
            return torch.from_numpy(np.ascontiguousarray(out))
        values = inputs if weights is None else _with_weights(inputs, weights)
        tr = adjoint.trace(ops, prog, values, initial_state)
        ctx.trace = tr
        result: torch.Tensor = generic.expectations(ops, prog, tr.final) if measure else tr.final
        return result

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, None, None, None]:
        tr, prog, ops = ctx.trace, ctx.prog, ctx.ops
        numpy = isinstance(ops, generic.NumpyOps)
        if numpy:
            g = _to_numpy(grad)
            # torch hands a complex output's gradient as 2 dL/d conj(psi); the costate is half
            got = adjoint.backward_split(ops, prog, tr, g if ctx.measure else g * 0.5, ctx.measure)
        else:
            lam = adjoint.costate(ops, prog, tr.final, grad) if ctx.measure else grad * 0.5
            got = adjoint.backward(ops, prog, tr, lam)
        g_in: Any
        g_w: Any = None
        if ctx.has_weights:
            nb = prog.n_batched
            rows = got.rows
            g_in = rows[:, :nb]
            g_w = rows[:, nb:].sum(0)
            if got.total is not None:
                g_w = g_w + got.total[nb:]
        else:
            g_in = got.per_row(ops)
        g_state = None if got.state is None or not ctx.needs_input_grad[2] else 2.0 * got.state
        if numpy:
            g_in, g_w, g_state = (
                None if t is None else torch.from_numpy(np.ascontiguousarray(t))
                for t in (g_in, g_w, g_state)
            )
        return (
            g_in if ctx.needs_input_grad[0] else None,
            g_w if ctx.needs_input_grad[1] else None,
            g_state,
            None,
            None,
            None,
        )


def _with_weights(inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Every binding column: ``inputs [B, P_b]`` then ``weights [S]`` repeated per row."""
    return torch.cat([inputs, weights.reshape(1, -1).expand(inputs.shape[0], -1)], dim=1)


def _functorch_active() -> bool:
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active()) if active is not None else False


def _simulate(
    prog: Program,
    values: torch.Tensor,
    initial_state: torch.Tensor | None,
    measure: bool,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    ops = torch_ops(values.device, compute_dtypes(values.dtype)[1])
    with _full_precision(values):
        wants_grad = torch.is_grad_enabled() and (
            values.requires_grad
            or (weights is not None and weights.requires_grad)
            or (initial_state is not None and initial_state.requires_grad)
        )
        # torch.compile and torch.func transforms (grad, vmap) trace the forward pass op by op
        one_node = not torch.compiler.is_compiling() and not _functorch_active()
        if values.device.type != "cpu" and prog.n_qubits > DEVICE_ADJOINT_MAX_QUBITS:
            one_node = False
        if not prog.ops:  # a measurement only: two ops, autograd is cheaper
            one_node = False
        use_numpy = one_node and values.device.type == "cpu" and prog.n_qubits <= NUMPY_MAX_QUBITS
        if wants_grad and one_node:
            eng = _NUMPY_OPS[ops.complex_dtype] if use_numpy else ops
            out: torch.Tensor = _Simulate.apply(  # type: ignore[no-untyped-call]
                values, weights, initial_state, prog, eng, measure
            )
            return out
        if use_numpy and not _functorch_active():
            # inference (no gradient wanted): the NumPy forward pass, keeping no states
            return _numpy_forward(prog, values, weights, initial_state, measure, ops.complex_dtype)
        if weights is not None:
            values = _with_weights(values, weights)
        with torch.no_grad() if not (wants_grad or _functorch_active()) else torch.enable_grad():
            state: torch.Tensor = generic.run(ops, prog, values, initial_state=initial_state)
            result: torch.Tensor = generic.expectations(ops, prog, state) if measure else state
            return result


def _numpy_bindings(ops: Any, inputs: torch.Tensor, weights: torch.Tensor | None) -> Any:
    """Every binding column as one NumPy array in the engine's real dtype (half-precision
    angles would cost whole digits): ``inputs [B, P_b]``, then ``weights [S]`` repeated per
    row."""
    real = torch.float64 if ops.real_dtype == np.float64 else torch.float32
    v = _to_numpy(inputs.to(real))  # (NumPy has no bfloat16: convert on the torch side)
    if weights is None:
        return v
    w = _to_numpy(weights.to(real))
    return np.concatenate([v, np.broadcast_to(w, (v.shape[0], w.shape[0]))], axis=1)


def _numpy_forward(
    prog: Program,
    values: torch.Tensor,
    weights: torch.Tensor | None,
    initial_state: torch.Tensor | None,
    measure: bool,
    complex_dtype: torch.dtype,
) -> torch.Tensor:
    """Expectations or final states of CPU tensors on the NumPy engine, for inference: the
    batch split over the cores where it is large, no intermediate state kept."""
    init = None if initial_state is None else _to_numpy(initial_state.to(complex_dtype))
    ops = _NUMPY_OPS[complex_dtype]
    out, _ = adjoint.trace_split(
        ops, prog, _numpy_bindings(ops, values, weights), init, measure, keep=False
    )
    return torch.from_numpy(np.ascontiguousarray(out))


def expectations(
    prog: Program,
    values: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Expectations ``[B, n_obs]`` of ``prog`` for bindings ``values [B, P]`` (differentiable).

    ``values`` holds every binding column (per-sample first, then shared, as compiled), or,
    with ``weights [S]``, the per-sample columns only: the shared ones are then ``weights``,
    whose gradient the adjoint pass sums over the batch itself. The dtype of ``values`` picks
    the simulation precision. ``initial_state [B, 2**n]`` replaces ``|0...0>``. Under autograd,
    the gradient is the adjoint pass (one autograd node for the whole circuit); inside
    ``torch.compile`` and ``torch.func`` transforms the forward pass is traced op by op.
    """
    return _simulate(prog, values, initial_state, True, weights)


def final_state(
    prog: Program,
    values: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Final state vectors ``[B, 2**n]`` of ``prog`` (qubit 0 the most significant bit);
    ``values`` and ``weights`` as for :func:`expectations`."""
    return _simulate(prog, values, initial_state, False, weights)


class _Measure(torch.autograd.Function):
    """Expectations of CPU states ``[B, 2**n]`` as one node on NumPy; the backward pass is the
    costate ``2 sum_o g_o O_o psi`` (torch's convention for a complex input's gradient)."""

    @staticmethod
    def forward(ctx: Any, states: torch.Tensor, prog: Program, ops: Any) -> torch.Tensor:
        psi = _to_numpy(states)
        ctx.kept = (prog, ops, psi)
        return torch.from_numpy(np.ascontiguousarray(generic.expectations(ops, prog, psi)))

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        prog, ops, psi = ctx.kept
        lam = adjoint.costate(ops, prog, psi, np.ascontiguousarray(_to_numpy(grad)))
        return torch.from_numpy(2.0 * lam), None, None


def measure(prog: Program, states: torch.Tensor) -> torch.Tensor:
    """Expectations ``[B, n_obs]`` of ``prog``'s observables in ``states [B, 2**n]`` (complex),
    differentiable (``prog`` has observables; its gates are not applied). On the CPU, one
    NumPy-backed autograd node; elsewhere (and under ``torch.compile``/``torch.func``) the two
    or three torch operations of a measurement, through autograd."""
    cplx = compute_dtypes(states.dtype)[1]
    if numpy_eligible(states, prog.n_qubits):
        out: torch.Tensor = _Measure.apply(states.to(cplx), prog, _NUMPY_OPS[cplx])  # type: ignore[no-untyped-call]
        return out
    ops = torch_ops(states.device, cplx)
    with _full_precision(states):
        out = generic.expectations(ops, prog, states.to(cplx))
        return out
