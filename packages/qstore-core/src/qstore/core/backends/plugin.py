"""The public plugin kit: what a simulator backend needs beyond the :class:`Backend` protocol.

qstore-sim-qsim, qstore-sim-lightning and third-party backends build on these names alone
(together with :mod:`qstore.core.backends.base` and :mod:`qstore.core.backends.sampling`);
they are covered by the project's compatibility promise.

Such a backend lowers a circuit template once to its simulator's own operations, each with at
most one bound number that is an affine function ``scale * theta[g] + offset`` of a single gate
parameter ``theta[g]``. :class:`ParameterMap` computes ``theta [B, G]`` for a batch of bindings
(and the chain rule back) without allocating anything of size ``2**n``; :func:`cached_template`
keeps the lowered template on the circuit; :func:`split_observables` turns observables into the
real-weighted Pauli words a simulator measures. :class:`SimulatorPluginMixin` gives the batch API
that is the same for every such backend (expectations exact or from shots, VJPs, probabilities,
samples, counts and ``execute``); the backend supplies the simulation itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from qstore.core.backends.base import FusedVJP
from qstore.core.backends.local import split_names
from qstore.core.backends.sampling import (
    ProbabilitySampling,
    check_shots,
    counts_from_indices,
    sample_indices,
)
from qstore.core.circuit import UnifiedCircuit
from qstore.core.engine import adjoint, generic
from qstore.core.engine.binding import ParameterMap
from qstore.core.engine.program import compile_program
from qstore.core.errors import (
    BackendError,
    ObservableError,
)
from qstore.core.observables import PauliSum, as_observables
from qstore.core.validation import check_cotangent

__all__ = [
    "AffineOp",
    "FloatArray",
    "ObservableTerms",
    "ParameterMap",
    "SimulatorPluginMixin",
    "Template",
    "adjoint_from_final_states",
    "affine_parameters",
    "cached_template",
    "check_shots",
    "counts_from_indices",
    "lower_template",
    "probabilities_from_states",
    "sample_indices",
    "split_observables",
]

FloatArray = npt.NDArray[np.float64]
Basis = tuple[tuple[int, str], ...]  # (qubit, "X" or "Y") rotated to Z before sampling

OpT = TypeVar("OpT")


# -- gate parameters ------------------------------------------------------------------------------


# -- lowering -------------------------------------------------------------------------------------


class AffineOp(Protocol):
    """A lowered operation whose bound number is ``scale * theta[col] + offset``."""

    @property
    def col(self) -> int: ...

    @property
    def scale(self) -> float: ...

    @property
    def offset(self) -> float: ...


def lower_template(
    circuit: UnifiedCircuit,
    slots: Sequence[Sequence[int]],
    lower_gate: Callable[[str, tuple[int, ...], Sequence[int]], Sequence[OpT]],
) -> tuple[OpT, ...]:
    """All operations ``lower_gate`` gives for the gates of ``circuit`` (measurements dropped);
    ``slots`` as in :attr:`ParameterMap.slots`."""
    out: list[OpT] = []
    for op, cols in zip(circuit, slots, strict=True):
        if op.is_measurement:
            continue
        out.extend(lower_gate(op.gate, op.qubits, cols))
    return tuple(out)


def affine_parameters(bound: Sequence[AffineOp], theta: FloatArray) -> FloatArray:
    """Bound numbers ``[B, J]`` (``scale * theta[:, col] + offset``) of the ``bound`` ops."""
    if not bound:
        return np.zeros((theta.shape[0], 0))
    cols = np.asarray([o.col for o in bound], dtype=np.intp)
    scale = np.asarray([o.scale for o in bound])
    offset = np.asarray([o.offset for o in bound])
    return np.asarray(theta[:, cols] * scale + offset, dtype=np.float64)


@dataclass
class Template(Generic[OpT]):
    """One circuit template and column layout, lowered once (cached on the circuit).

    Backends subclass it to add their own caches (built per op list, device, ...).
    """

    n_qubits: int
    pmap: ParameterMap
    ops: tuple[OpT, ...]


TemplateT = TypeVar("TemplateT", bound=Template[Any])


def cached_template(
    kind: type[TemplateT],
    owner: str,
    circuit: UnifiedCircuit,
    names: Sequence[str] | None,
    shared: Mapping[str, float] | None,
    lower: Callable[[UnifiedCircuit, Sequence[Sequence[int]]], tuple[Any, ...]],
) -> TemplateT:
    """The ``kind`` template of ``circuit`` for this column layout, lowered by ``lower`` once.

    Cached with :meth:`UnifiedCircuit.compiled` under a key that starts with ``owner``.
    """
    if not isinstance(circuit, UnifiedCircuit):
        raise BackendError(
            f"Expected a qstore.core.UnifiedCircuit, got {type(circuit).__name__}; convert "
            "Cirq/Qiskit circuits with UnifiedCircuit.from_cirq / from_qiskit."
        )
    bnames, snames = split_names(circuit, names, shared)

    def build() -> TemplateT:
        pmap = ParameterMap.build(circuit, bnames, snames)
        return kind(circuit.n_qubits, pmap, lower(circuit, pmap.slots))

    return circuit.compiled((owner, bnames, snames), build)


# -- observables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservableTerms:
    """Observables split into constants (identity terms) and real-weighted Pauli words.

    ``active`` lists the observables that have at least one word; only those are simulated.
    """

    constants: FloatArray  # [n_obs]
    words: tuple[tuple[tuple[tuple[int, str], ...], float], ...]  # (paulis, weight)
    per_obs: tuple[tuple[int, ...], ...]  # per observable: indices into words

    @property
    def n_obs(self) -> int:
        return len(self.per_obs)

    @property
    def active(self) -> tuple[int, ...]:
        return tuple(o for o, idx in enumerate(self.per_obs) if idx)


def split_observables(observables: Sequence[PauliSum], n_qubits: int) -> ObservableTerms:
    """Split ``observables`` on ``n_qubits`` qubits; refuses complex coefficients."""
    constants = np.zeros(len(observables))
    words: list[tuple[tuple[tuple[int, str], ...], float]] = []
    per_obs: list[tuple[int, ...]] = []
    for o, obs in enumerate(observables):
        if obs.max_qubit >= n_qubits:
            raise ObservableError(
                f"Observable {obs} acts on qubit {obs.max_qubit}; the circuit has {n_qubits} "
                "qubits."
            )
        mine = []
        for term in obs.terms:
            coeff = complex(term.coeff)
            if abs(coeff.imag) > 1e-12:
                raise ObservableError(
                    f"Observable {obs} has the complex coefficient {coeff}; expectation values "
                    "need real coefficients."
                )
            if not term.paulis:
                constants[o] += coeff.real
                continue
            mine.append(len(words))
            words.append((term.paulis, coeff.real))
        per_obs.append(tuple(mine))
    return ObservableTerms(constants, tuple(words), tuple(per_obs))


# -- results --------------------------------------------------------------------------------------


def probabilities_from_states(states: Any) -> FloatArray:
    """Basis-state probabilities ``[B, 2**n]`` of state vectors, rows renormalised to sum to 1."""
    probs = np.abs(np.asarray(states, dtype=np.complex128)) ** 2
    return np.asarray(probs / probs.sum(axis=1, keepdims=True), dtype=np.float64)


# -- gradients from final states -----------------------------------------------------------------

_ADJOINT_OPS = {
    np.dtype(np.complex64): generic.NumpyOps(np.complex64),
    np.dtype(np.complex128): generic.NumpyOps(np.complex128),
}


def adjoint_from_final_states(
    circuit: UnifiedCircuit,
    observables: Sequence[PauliSum],
    pmap: ParameterMap,
    full: FloatArray,
    final_states: npt.ArrayLike,
) -> tuple[FloatArray, Callable[[npt.ArrayLike], tuple[FloatArray, FloatArray]]]:
    """Exact expectations of ``final_states`` and the adjoint VJP that starts from them.

    For simulators that return final states but have no adjoint pass of their own (qsim): the
    core engine's adjoint sweep (:mod:`qstore.core.engine.adjoint`) un-computes each op from the
    final states, so a training step costs one forward pass on the simulator and one backward
    pass on NumPy, never a parameter-shift sweep. ``full`` is the binding matrix ``[B, P]`` laid
    out by ``pmap``. Returns ``(expectations [B, n_obs], finish)`` where ``finish(cotangent)``
    gives ``(d/dvalues [B, n_batched], d/dshared [n_shared])``.
    """
    names, nb = pmap.names, pmap.n_batched
    obs = tuple(observables)
    prog = circuit.compiled(
        ("qstore.core.plugin.adjoint", names[:nb], names[nb:], obs),
        lambda: compile_program(circuit, names[:nb], names[nb:], obs),
    )
    # single-precision simulators (qsim) get a single-precision backward pass, as fast as theirs
    final = np.asarray(final_states)
    if final.dtype not in _ADJOINT_OPS:
        final = final.astype(np.complex128)
    ops = _ADJOINT_OPS[final.dtype]
    tr = adjoint.trace_from_final(ops, prog, full.astype(ops.real_dtype), final)
    values = np.asarray(generic.expectations(ops, prog, final), dtype=np.float64)

    finish: Callable[[npt.ArrayLike], tuple[FloatArray, FloatArray]]
    finish = adjoint.vjp_fn(ops, prog, tr)
    return values, finish


# -- the shared batch API -------------------------------------------------------------------------


class SimulatorPluginMixin(ProbabilitySampling, FusedVJP, Generic[TemplateT]):
    """The part of a simulator plugin's backend that does not depend on the simulator.

    The backend sets ``name`` and ``_rng`` (the default shot generator) and implements
    :meth:`state`, :meth:`_template`, :meth:`_run_expectations` and :meth:`_basis_states`, and
    either :meth:`_gate_vjp` (its own gradient per gate parameter, as Lightning's adjoint) or its
    own ``value_and_vjp`` (qsim: :func:`adjoint_from_final_states`).
    """

    name: str
    _rng: np.random.Generator

    # -- to implement ---------------------------------------------------------------------------
    def state(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> npt.NDArray[Any]:
        """Final state vectors ``[batch, 2**n]`` (qubit 0 most significant)."""
        raise NotImplementedError

    def _template(
        self,
        circuit: UnifiedCircuit,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> TemplateT:
        """The lowered template of ``circuit`` for this column layout (see cached_template)."""
        raise NotImplementedError

    def _run_expectations(
        self, tpl: TemplateT, terms: ObservableTerms, theta: FloatArray
    ) -> FloatArray:
        """Exact expectations ``[R, n_obs]`` for every row of ``theta``."""
        raise NotImplementedError

    def _gate_vjp(
        self, tpl: TemplateT, terms: ObservableTerms, theta: FloatArray, cot: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Expectations ``[B, n_obs]`` and the gradient of ``sum(cot * E)`` by ``theta``."""
        raise NotImplementedError

    def _basis_states(self, tpl: TemplateT, theta: FloatArray, basis: Basis) -> npt.NDArray[Any]:
        """Final states ``[R, 2**n]`` with the qubits of ``basis`` rotated from X or Y to Z."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def _prepare(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> tuple[TemplateT, FloatArray, FloatArray]:
        """The template, the full binding matrix ``[B, P]`` and the gate parameters ``[B, G]``."""
        tpl = self._template(circuit, names, shared)
        full = tpl.pmap.layout(values, shared)
        return tpl, full, tpl.pmap.theta(full)

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
        tpl, _, theta = self._prepare(circuit, values, names, shared)
        obs = as_observables(observables, circuit.n_qubits)
        terms = split_observables(obs, circuit.n_qubits)
        if shots is None:
            return self._run_expectations(tpl, terms, theta)
        check_shots(shots)
        return self._estimate(tpl, obs, theta, shots, self._generator(seed))

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
        """Expectations and the VJP together (one simulator pass where the backend can)."""
        tpl, full, theta = self._prepare(circuit, values, names, shared)
        terms = split_observables(as_observables(observables, circuit.n_qubits), circuit.n_qubits)
        cot = check_cotangent(cotangent, theta.shape[0], terms.n_obs)
        e, gtheta = self._gate_vjp(tpl, terms, theta, cot)
        gv = tpl.pmap.chain_rule(full, gtheta)
        nb = tpl.pmap.n_batched
        return e, gv[:, :nb], gv[:, nb:].sum(axis=0)

    def probabilities(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> FloatArray:
        """Basis-state probabilities ``[batch, 2**n]`` (rows renormalised to sum to 1)."""
        return probabilities_from_states(self.state(circuit, values, names=names, shared=shared))

    def _estimate(
        self,
        tpl: TemplateT,
        obs: list[PauliSum],
        theta: FloatArray,
        shots: int,
        rng: np.random.Generator,
    ) -> FloatArray:
        """Shot estimates: each Pauli term is measured in its own basis (rotations simulated)."""
        n = tpl.n_qubits
        out = np.zeros((theta.shape[0], len(obs)))
        samples: dict[Basis, npt.NDArray[np.int64]] = {}
        for o, ps in enumerate(obs):
            for term in ps.terms:
                coeff = complex(term.coeff).real
                if not term.paulis:
                    out[:, o] += coeff
                    continue
                basis = tuple((q, p) for q, p in term.paulis if p in "XY")
                if basis not in samples:
                    states = self._basis_states(tpl, theta, basis)
                    samples[basis] = sample_indices(probabilities_from_states(states), shots, rng)
                idx = samples[basis]
                parity = np.zeros(idx.shape, dtype=np.int64)
                for q in term.qubits:
                    parity ^= (idx >> (n - 1 - q)) & 1
                out[:, o] += coeff * (1 - 2 * parity).mean(axis=1)
        return out
