"""The built-in ``local`` backend (alias ``local_cpu``): a batched NumPy state-vector simulator.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
>>> qc.backends.get("local").expectation(c, values=[[0.0], [3.14159265]]).round(6).tolist()
[[1.0], [-1.0]]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.backends.base import Capabilities, FloatArray, FusedVJP, vjp_at_once
from qstore.core.backends.sampling import ProbabilitySampling, sample_indices
from qstore.core.circuit import UnifiedCircuit
from qstore.core.engine import adjoint, generic
from qstore.core.engine.binding import as_values
from qstore.core.engine.memory import DTYPES, check_memory, memory_limit_bytes
from qstore.core.engine.program import Program, compile_program
from qstore.core.engine.threads import parallel, row_parts
from qstore.core.errors import BackendError, BindingError, QStoreError
from qstore.core.gates import GATES
from qstore.core.observables import PauliSum, as_observables
from qstore.core.validation import check_shots

_NP = generic.NumpyOps()
_ROTATE_TO_Z = {
    "X": GATES["H"].matrix(),
    "Y": GATES["H"].matrix() @ GATES["SDG"].matrix(),
}


def split_names(
    circuit: UnifiedCircuit, names: Sequence[str] | None, shared: Mapping[str, float] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Per-sample column names and shared names; defaults: every other symbol is per-sample."""
    shared_names = tuple(shared) if shared else ()
    if names is None:
        names = tuple(s for s in circuit.parameters if s not in set(shared_names))
    return tuple(names), shared_names


class LocalBackend(ProbabilitySampling, FusedVJP):
    """Exact, seeded-shot and adjoint-differentiable simulation of batches on the CPU.

    Args:
        dtype: ``'complex128'`` (default, machine precision) or ``'complex64'`` (faster).
        seed: default seed for shot sampling (per-call ``seed=`` overrides it).
        chunk: qubits per dense chunk in fused layers (tuning knob; default by size).
    """

    name = "local"

    def __init__(
        self, dtype: str = "complex128", seed: int | None = None, chunk: int | None = None
    ):
        if dtype not in DTYPES:
            raise BackendError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
        if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
            raise BackendError(f"chunk must be a positive int, got {chunk!r}.")
        self.dtype = dtype
        self.seed = seed
        self.chunk = chunk
        self._ctype = DTYPES[dtype]
        self._ops = generic.NumpyOps(self._ctype)
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"LocalBackend(dtype={self.dtype!r})"

    @property
    def capabilities(self) -> Capabilities:
        item = np.dtype(self._ctype).itemsize
        max_q = math.floor(math.log2(max(memory_limit_bytes() / (6 * item), 2)))
        return Capabilities(
            name=self.name,
            max_qubits=max_q,
            exact=True,
            shots=True,
            gradient_methods=("adjoint", "parameter_shift", "finite_diff", "spsa"),
            vjp=True,
            gpu=False,
            dtypes=tuple(DTYPES),
            extra={"engine": "numpy", "dtype": self.dtype},
        )

    # -- compilation ------------------------------------------------------------------------
    def program(
        self,
        circuit: UnifiedCircuit,
        observables: Any = None,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> Program:
        """The compiled program for this template and layout (cached on the circuit)."""
        if not isinstance(circuit, UnifiedCircuit):
            raise BackendError(
                f"Expected a qstore.core.UnifiedCircuit, got {type(circuit).__name__}; convert "
                "Cirq/Qiskit circuits with UnifiedCircuit.from_cirq / from_qiskit."
            )
        obs = tuple(as_observables(observables, circuit.n_qubits))
        bnames, snames = split_names(circuit, names, shared)
        return circuit.compiled(
            ("qstore.core.local", bnames, snames, obs, self.chunk),
            lambda: compile_program(circuit, bnames, snames, obs, chunk=self.chunk),
        )

    def _prepare(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> tuple[Program, FloatArray]:
        values = _as_float_array(values)
        if isinstance(circuit, UnifiedCircuit):
            # Refuse before compiling: compilation already builds 2**n-sized index tables.
            rows = values.shape[0] if values is not None and values.ndim == 2 else 1
            check_memory(circuit.n_qubits, max(rows, 1), self.dtype)
        prog = self.program(circuit, observables, names, shared)
        shared_vals = None if not shared else [shared[k] for k in prog.names[prog.n_batched :]]
        v = as_values(prog, values, shared_vals)
        check_memory(prog.n_qubits, v.shape[0], self.dtype)
        return prog, v

    # -- execution --------------------------------------------------------------------------
    def state(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> npt.NDArray[np.complexfloating[Any, Any]]:
        """Final state vectors ``[batch, 2**n]`` (qubit 0 most significant)."""
        prog, v = self._prepare(circuit.without_measurements(), None, values, names, shared)
        return self._run(prog, v)

    def _run(self, prog: Program, v: FloatArray) -> npt.NDArray[np.complexfloating[Any, Any]]:
        """Final states, the batch split over threads where it is large."""
        parts = row_parts(prog.n_qubits, v.shape[0])
        states = parallel(lambda part: generic.run(self._ops, prog, v[part]), parts)
        return states[0] if len(states) == 1 else np.concatenate(states)

    def expectation(
        self,
        circuit: UnifiedCircuit,
        observables: Any = None,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        shots: int | None = None,
        seed: int | None = None,
    ) -> FloatArray:
        """Expectations ``[batch, n_observables]`` (``None`` observables: ``Z`` per qubit)."""
        shots = check_shots(shots)
        prog, v = self._prepare(circuit, observables, values, names, shared)
        if shots is None:
            return np.concatenate(
                parallel(
                    lambda part: np.asarray(
                        generic.forward(self._ops, prog, v[part]), dtype=np.float64
                    ),
                    row_parts(prog.n_qubits, v.shape[0]),
                )
            )
        state = self._run(prog, v)
        obs = as_observables(observables, circuit.n_qubits)
        return _estimate(state, obs, prog.n_qubits, shots, self._generator(seed))

    def value_and_vjp(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        cotangent: npt.ArrayLike,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Expectations and the VJP from one forward pass (what training steps call)."""
        forward = self.value_and_vjp_fn(circuit, observables, values, names=names, shared=shared)
        return vjp_at_once(forward, cotangent)

    def value_and_vjp_fn(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, Callable[[npt.ArrayLike], tuple[FloatArray, FloatArray]]]:
        """Expectations now, and a function of the cotangent that finishes the VJP from what
        this forward pass kept (:class:`qstore.core.adapter.KeepsForward`): the framework
        layers simulate the forward pass once per training step."""
        prog, v = self._prepare(circuit, observables, values, names, shared)
        # Keep the state after every op when that fits in half the memory budget; otherwise the
        # backward pass un-computes it alongside the costate.
        itemsize = np.dtype(self._ctype).itemsize
        need = (len(prog.ops) + 4) * v.shape[0] * (1 << prog.n_qubits) * itemsize
        keep = need <= memory_limit_bytes() // 2
        out, finish = adjoint.value_and_vjp_fn(self._ops, prog, v, keep=keep)
        return out, finish

    def probabilities(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> FloatArray:
        """Basis-state probabilities ``[batch, 2**n]``."""
        st = self.state(circuit, values, names=names, shared=shared)
        return np.asarray(st.real**2 + st.imag**2, dtype=np.float64)


def _as_float_array(values: npt.ArrayLike | None) -> FloatArray | None:
    if values is None:
        return None
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # ragged rows, strings, ...
        raise BindingError(f"values must be a real [batch, P] array of numbers: {exc}") from None


def _estimate(
    state: npt.NDArray[Any], obs: list[PauliSum], n: int, shots: int, rng: np.random.Generator
) -> FloatArray:
    """Shot estimates: each Pauli term is measured in its own rotated basis."""
    bsz = state.shape[0]
    out = np.zeros((bsz, len(obs)))
    bits_cache: dict[tuple[tuple[int, str], ...], npt.NDArray[np.int8]] = {}
    from qstore.core.engine.program import bit_table

    table = bit_table(n)
    for o, ps in enumerate(obs):
        for term in ps.terms:
            if not term.paulis:
                out[:, o] += term.coeff.real
                continue
            basis = tuple((q, p) for q, p in term.paulis if p in "XY")
            if basis not in bits_cache:
                st = state
                for q, p in basis:
                    st = generic.apply_gate(_NP, st, _ROTATE_TO_Z[p].astype(st.dtype), (q,), n)
                probs = np.asarray(st.real**2 + st.imag**2, dtype=np.float64)
                idx = sample_indices(probs, shots, rng)
                bits_cache[basis] = table[idx]  # [B, shots, n]
            bits = bits_cache[basis]
            parity = bits[:, :, list(term.qubits)].sum(axis=-1) % 2
            out[:, o] += term.coeff.real * (1 - 2 * parity).mean(axis=1)
    return out


def require_local(backend: Any) -> LocalBackend:
    if not isinstance(backend, LocalBackend):
        raise QStoreError(f"Expected the local backend, got {backend!r}.")
    return backend
