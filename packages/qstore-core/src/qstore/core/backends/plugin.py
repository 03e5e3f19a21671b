"""The public plugin kit: a :class:`SimulatorCore` protocol and the functions that build a
backend's batch API on it.

qstore-sim-qsim, qstore-sim-lightning and third-party simulators use these names alone (together
with :mod:`qstore.core.backends.base` and :mod:`qstore.core.backends.sampling`); they are covered
by the project's compatibility promise. Nothing here is a base class: a simulator is any object
with the methods of :class:`SimulatorCore` (and of :class:`GateGradient` when it has its own
gradient per gate parameter), and its backend calls the functions of this module with it.

* A simulator lowers a circuit template once (:func:`cached_template`, :func:`lower_template`) to
  its own operations, each with at most one bound number ``scale * theta[g] + offset`` of a single
  gate parameter ``theta[g]`` (:func:`affine_parameters`). :class:`ParameterMap` computes
  ``theta [B, G]`` for a batch of bindings (and the chain rule back) without allocating anything
  of size ``2**n``; :func:`split_observables` turns observables into the real-weighted Pauli words
  a simulator measures.
* :func:`expectation` (exact or from shots), :func:`final_states`, :func:`probabilities`,
  :func:`estimate_from_shots` give the batch API from a :class:`SimulatorCore`;
  :func:`value_and_vjp_fn_by_gates` turns a :class:`GateGradient`'s gradient by gate parameter
  into the VJP by bindings, and :func:`value_and_vjp_fn_from_states` differentiates a simulator
  that returns final states only by the core engine's adjoint pass.

A complete simulator in a few lines (its final states come from the core's ``local`` backend, on
the circuit whose gate parameters are its own symbols, :func:`gate_parameter_circuit`):

>>> import numpy as np
>>> import qstore.core as qc
>>> from qstore.core.backends import plugin
>>> local = qc.backends.get("local")
>>> class OnLocal:
...     def template(self, circuit, names, shared):
...         lower = lambda c, slots: (plugin.gate_parameter_circuit(c, slots),)
...         return plugin.cached_template(plugin.Template, "doc", circuit, names, shared, lower)
...
...     def basis_states(self, tpl, theta, basis):
...         c = tpl.ops[0].copy()
...         for q, p in basis:  # measure X or Y: rotate it to Z first
...             (c.add_gate("SDG", q) if p == "Y" else c).add_gate("H", q)
...         return local.state(c, theta, names=plugin.theta_symbols(theta.shape[1]))
...
...     def run_expectations(self, tpl, terms, theta):
...         return plugin.expectations_from_states(self.basis_states(tpl, theta, ()), terms)
>>> core = OnLocal()
>>> isinstance(core, plugin.SimulatorCore)
True
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
>>> plugin.expectation(core, c, qc.X(0), [[np.pi / 2]]).round(6).tolist()
[[1.0]]
>>> values, finish = plugin.value_and_vjp_fn_from_states(core, c, qc.Z(0), [[0.3]])
>>> d_values, d_shared = finish([[1.0]])
>>> bool(np.isclose(d_values[0, 0], -np.sin(0.3)))
True
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from qstore.core.backends.base import vjp_at_once
from qstore.core.backends.local import split_names
from qstore.core.backends.sampling import (
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
    "Basis",
    "BoundBatch",
    "FloatArray",
    "GateGradient",
    "ObservableTerms",
    "ParameterMap",
    "SimulatorCore",
    "Template",
    "VJPFn",
    "adjoint_from_final_states",
    "affine_parameters",
    "bind_batch",
    "cached_template",
    "check_shots",
    "counts_from_indices",
    "estimate_from_shots",
    "expectation",
    "expectations_from_states",
    "final_states",
    "gate_parameter_circuit",
    "lower_template",
    "probabilities",
    "probabilities_from_states",
    "sample_indices",
    "split_observables",
    "theta_symbols",
    "value_and_vjp_fn_by_gates",
    "value_and_vjp_fn_from_states",
    "vjp_at_once",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Basis = tuple[tuple[int, str], ...]
"""Qubits measured in the X or Y basis: ``(qubit, "X" or "Y")``, rotated to Z before sampling."""
VJPFn = Callable[[npt.ArrayLike], tuple[FloatArray, FloatArray]]
"""``finish(cotangent [B, n_obs]) -> (d/dvalues [B, n_batched], d/dshared [n_shared])``."""

OpT = TypeVar("OpT")


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


def theta_symbols(count: int) -> list[str]:
    """The symbols ``theta_0`` to ``theta_{count-1}`` of :func:`gate_parameter_circuit`.

    >>> theta_symbols(3)
    ['theta_0', 'theta_1', 'theta_2']
    """
    return [f"theta_{g}" for g in range(count)]


def gate_parameter_circuit(
    circuit: UnifiedCircuit, slots: Sequence[Sequence[int]]
) -> UnifiedCircuit:
    """``circuit`` with every gate parameter replaced by its own symbol (measurements dropped).

    Parameter ``g`` becomes ``theta_g`` (:func:`theta_symbols`), so the circuit bound to a row of
    ``theta [B, G]`` is the template bound to the matching bindings: a lowering for simulators
    that run Q-Store circuits themselves. ``slots`` as in :attr:`ParameterMap.slots`.

    >>> import qstore.core as qc
    >>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, 2 * qc.Parameter("x")).add_gate("RZ", 0, 0.5)
    >>> gate_parameter_circuit(c, ParameterMap.build(c, ["x"]).slots).parameter_names
    ['theta_0', 'theta_1']
    """
    out = UnifiedCircuit(circuit.n_qubits)
    for op, cols in zip(circuit, slots, strict=True):
        if op.is_measurement:
            continue
        out.add_gate(op.gate, op.qubits, [f"theta_{g}" for g in cols] if cols else None)
    return out


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
    """Basis-state probabilities ``[B, 2**n]`` of state vectors, rows renormalised to sum to 1.

    >>> probabilities_from_states([[1.0, 1.0j]]).tolist()
    [[0.5, 0.5]]
    """
    probs = np.abs(np.asarray(states, dtype=np.complex128)) ** 2
    return np.asarray(probs / probs.sum(axis=1, keepdims=True), dtype=np.float64)


def expectations_from_states(states: npt.ArrayLike, terms: ObservableTerms) -> FloatArray:
    """Exact expectations ``[B, n_obs]`` of the observables ``terms`` in the states ``[B, 2**n]``
    (qubit 0 most significant): for simulators that return final states only.

    >>> import qstore.core as qc
    >>> plus = np.full((1, 2), 2**-0.5)
    >>> terms = split_observables(as_observables([qc.X(0), qc.Z(0) + 1.0], 1), 1)
    >>> expectations_from_states(plus, terms).round(12).tolist()
    [[1.0, 1.0]]
    """
    st = np.asarray(states, dtype=np.complex128)
    bsz, dim = st.shape
    n = dim.bit_length() - 1
    if dim != 1 << n:
        raise BackendError(f"States must have 2**n amplitudes per row, got {dim}.")
    out = np.tile(terms.constants, (bsz, 1))
    idx = np.arange(dim)
    for o, words in enumerate(terms.per_obs):
        for w in words:
            paulis, weight = terms.words[w]
            # (P psi)[i] = i**n_Y * (-1)**(Y bits of j + Z bits of i) * psi[j], j = i ^ flip
            flip, n_y = 0, 0
            for q, p in paulis:
                if q >= n:
                    raise ObservableError(
                        f"Observable word {paulis} acts on qubit {q}; the states have {n} qubits."
                    )
                flip |= (1 << (n - 1 - q)) if p in "XY" else 0
                n_y += p == "Y"
            j = idx ^ flip
            odd = np.zeros(dim, dtype=np.int64)
            for q, p in paulis:
                bit = n - 1 - q
                if p == "Y":
                    odd ^= (j >> bit) & 1
                elif p == "Z":
                    odd ^= (idx >> bit) & 1
            phase = (1j**n_y) * (1 - 2 * odd)
            value = np.einsum("bi,bi->b", st.conj(), phase * st[:, j]).real
            out[:, o] += weight * value
    return np.asarray(out, dtype=np.float64)


# -- what a simulator supplies --------------------------------------------------------------------


@runtime_checkable
class SimulatorCore(Protocol[TemplateT]):
    """What a simulator plugin supplies; the functions of this module give its batch API.

    ``theta [R, G]`` are gate parameters (one row per binding, :class:`ParameterMap`) and a
    template is what :meth:`template` returns (typically a :class:`Template` subclass cached on
    the circuit by :func:`cached_template`). See the module example.
    """

    def template(
        self,
        circuit: UnifiedCircuit,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> TemplateT:
        """The lowered template of ``circuit`` for this column layout (:func:`cached_template`)."""
        ...

    def run_expectations(
        self, tpl: TemplateT, terms: ObservableTerms, theta: FloatArray
    ) -> FloatArray:
        """Exact expectations ``[R, n_obs]`` for every row of ``theta`` (constants included)."""
        ...

    def basis_states(self, tpl: TemplateT, theta: FloatArray, basis: Basis) -> npt.NDArray[Any]:
        """Final states ``[R, 2**n]`` (qubit 0 most significant) with the qubits of ``basis``
        rotated from X or Y to Z; ``basis=()`` gives the plain final states."""
        ...


TemplateT_contra = TypeVar("TemplateT_contra", bound=Template[Any], contravariant=True)


@runtime_checkable
class GateGradient(Protocol[TemplateT_contra]):
    """A simulator with its own gradient by gate parameter (Lightning's adjoint method): only
    such simulators implement it, and :func:`value_and_vjp_fn_by_gates` uses it."""

    def gate_vjp_fn(
        self, tpl: TemplateT_contra, terms: ObservableTerms, theta: FloatArray
    ) -> tuple[FloatArray, Callable[[FloatArray], FloatArray]]:
        """Expectations ``[B, n_obs]`` now, and ``finish(cot [B, n_obs]) -> d/dtheta [B, G]``
        of ``sum(cot * expectations)`` from what this forward pass kept (it does not simulate
        the forward pass again; it may be called more than once)."""
        ...


# -- the batch API --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundBatch(Generic[TemplateT]):
    """A template with a batch bound to it: the full binding matrix ``[B, P]`` (per-sample
    columns, then shared ones, :attr:`ParameterMap.names`) and the gate parameters ``[B, G]``."""

    template: TemplateT
    full: FloatArray
    theta: FloatArray


def bind_batch(
    core: SimulatorCore[TemplateT],
    circuit: UnifiedCircuit,
    values: npt.ArrayLike | None,
    *,
    names: Sequence[str] | None = None,
    shared: Mapping[str, float] | None = None,
) -> BoundBatch[TemplateT]:
    """``core``'s template of ``circuit`` and the validated batch (bad bindings raise
    :class:`~qstore.core.errors.BindingError` here, before anything is simulated)."""
    tpl = core.template(circuit, names, shared)
    full = tpl.pmap.layout(values, shared)
    return BoundBatch(tpl, full, tpl.pmap.theta(full))


def expectation(
    core: SimulatorCore[TemplateT],
    circuit: UnifiedCircuit,
    observables: Any = None,
    values: npt.ArrayLike | None = None,
    *,
    names: Sequence[str] | None = None,
    shared: Mapping[str, float] | None = None,
    shots: int | None = None,
    rng: np.random.Generator | None = None,
) -> FloatArray:
    """Expectations ``[batch, n_observables]`` (``None`` observables: ``Z`` per qubit): exact
    when ``shots`` is None, else estimated from ``shots`` samples drawn with ``rng``
    (:func:`estimate_from_shots`). What a backend's ``expectation`` returns (module example)."""
    shots = check_shots(shots)
    bound = bind_batch(core, circuit, values, names=names, shared=shared)
    obs = as_observables(observables, circuit.n_qubits)
    if shots is None:
        terms = split_observables(obs, circuit.n_qubits)
        return core.run_expectations(bound.template, terms, bound.theta)
    gen = np.random.default_rng() if rng is None else rng
    return estimate_from_shots(core, bound.template, obs, bound.theta, shots, gen)


def estimate_from_shots(
    core: SimulatorCore[TemplateT],
    tpl: TemplateT,
    observables: Sequence[PauliSum],
    theta: FloatArray,
    shots: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Shot estimates ``[R, n_obs]``: every Pauli term is estimated from ``shots`` samples in
    its own basis (the rotations simulated by :meth:`SimulatorCore.basis_states`); terms with
    the same X/Y qubits share one set of samples."""
    n = tpl.n_qubits
    out = np.zeros((theta.shape[0], len(observables)))
    samples: dict[Basis, npt.NDArray[np.int64]] = {}
    for o, ps in enumerate(observables):
        for term in ps.terms:
            coeff = complex(term.coeff).real
            if not term.paulis:
                out[:, o] += coeff
                continue
            basis = tuple((q, p) for q, p in term.paulis if p in "XY")
            if basis not in samples:
                states = core.basis_states(tpl, theta, basis)
                samples[basis] = sample_indices(probabilities_from_states(states), shots, rng)
            idx = samples[basis]
            parity = np.zeros(idx.shape, dtype=np.int64)
            for q in term.qubits:
                parity ^= (idx >> (n - 1 - q)) & 1
            out[:, o] += coeff * (1 - 2 * parity).mean(axis=1)
    return out


def final_states(
    core: SimulatorCore[TemplateT],
    circuit: UnifiedCircuit,
    values: npt.ArrayLike | None = None,
    *,
    names: Sequence[str] | None = None,
    shared: Mapping[str, float] | None = None,
) -> npt.NDArray[Any]:
    """Final state vectors ``[batch, 2**n]`` (qubit 0 most significant): a backend's ``state``."""
    bound = bind_batch(core, circuit, values, names=names, shared=shared)
    return core.basis_states(bound.template, bound.theta, ())


def probabilities(
    core: SimulatorCore[TemplateT],
    circuit: UnifiedCircuit,
    values: npt.ArrayLike | None = None,
    *,
    names: Sequence[str] | None = None,
    shared: Mapping[str, float] | None = None,
) -> FloatArray:
    """Basis-state probabilities ``[batch, 2**n]`` (rows renormalised to sum to 1): a
    backend's ``probabilities``, from which ``ProbabilitySampling`` samples."""
    return probabilities_from_states(
        final_states(core, circuit, values, names=names, shared=shared)
    )


def value_and_vjp_fn_by_gates(
    core: SimulatorCore[TemplateT],
    circuit: UnifiedCircuit,
    observables: Any,
    values: npt.ArrayLike | None,
    *,
    names: Sequence[str] | None = None,
    shared: Mapping[str, float] | None = None,
) -> tuple[FloatArray, VJPFn]:
    """Expectations ``[B, n_obs]`` and ``finish`` (:data:`VJPFn`) from the simulator's own
    gradient by gate parameter: ``core`` implements :class:`GateGradient` too, and its
    ``d/dtheta`` is mapped to the bindings by the chain rule through the template's
    :class:`ParameterMap`. A backend's ``value_and_vjp_fn``
    (:class:`qstore.core.adapter.KeepsForward`)."""
    if not isinstance(core, GateGradient):
        raise BackendError(
            f"{type(core).__name__} has no gate_vjp_fn (the GateGradient protocol); a simulator "
            "without a gradient of its own uses value_and_vjp_fn_from_states."
        )
    bound = bind_batch(core, circuit, values, names=names, shared=shared)
    tpl, full = bound.template, bound.full
    terms = split_observables(as_observables(observables, circuit.n_qubits), circuit.n_qubits)
    out, by_theta = core.gate_vjp_fn(tpl, terms, bound.theta)
    bsz, nb = full.shape[0], tpl.pmap.n_batched

    def finish(cotangent: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        cot = check_cotangent(cotangent, bsz, terms.n_obs)
        gv = tpl.pmap.chain_rule(full, by_theta(cot))
        return gv[:, :nb], gv[:, nb:].sum(axis=0)

    return out, finish


def value_and_vjp_fn_from_states(
    core: SimulatorCore[TemplateT],
    circuit: UnifiedCircuit,
    observables: Any,
    values: npt.ArrayLike | None,
    *,
    names: Sequence[str] | None = None,
    shared: Mapping[str, float] | None = None,
) -> tuple[FloatArray, VJPFn]:
    """Expectations and ``finish`` (:data:`VJPFn`) for a simulator without a gradient of its
    own: one simulator pass for the final states, then the core engine's adjoint pass from them
    (:func:`adjoint_from_final_states`). A backend's ``value_and_vjp_fn`` (module example)."""
    bound = bind_batch(core, circuit, values, names=names, shared=shared)
    obs = as_observables(observables, circuit.n_qubits)
    states = core.basis_states(bound.template, bound.theta, ())
    return adjoint_from_final_states(circuit, obs, bound.template.pmap, bound.full, states)


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
) -> tuple[FloatArray, VJPFn]:
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

    finish: VJPFn = adjoint.vjp_fn(ops, prog, tr)
    return values, finish
