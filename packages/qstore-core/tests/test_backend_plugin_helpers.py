"""The public plugin kit (:mod:`qstore.core.backends.plugin`), checked without a plugin
installed: parameter maps against the core's compiled programs, observable splitting, template
caching, the batch functions on a fixed-state toy simulator, and a third-party-style backend built
from the kit's functions alone (no base class of ours) against the ``local`` backend and finite
differences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import qstore.core as qc
from qstore.core.adapter import ExpectationAdapter, KeepsForward
from qstore.core.backends import plugin
from qstore.core.backends.base import Capabilities
from qstore.core.backends.local import LocalBackend
from qstore.core.backends.plugin import (
    Basis,
    FloatArray,
    ObservableTerms,
    ParameterMap,
    Template,
    affine_parameters,
    cached_template,
    counts_from_indices,
    lower_template,
    probabilities_from_states,
    split_observables,
)
from qstore.core.errors import (
    BackendError,
    BindingError,
    NonFiniteParameterError,
    ObservableError,
    ShotsError,
)
from qstore.core.observables import as_observables, identity
from qstore.core.testing import INPUTS, random_bindings, random_circuit, random_observables


@dataclass
class _Names(Template[str]):
    """A template whose operations are gate names."""


def _circuit() -> qc.UnifiedCircuit:
    a, b = qc.Parameter("a"), qc.Parameter("b")
    return (
        qc.UnifiedCircuit(2)
        .add_gate("RX", 0, a)
        .add_gate("CNOT", [0, 1])
        .add_gate("RZ", 1, 2 * a * b + 0.5)
        .add_gate("U3", 1, [b, 0.3, a])
    )


def test_parameter_map_evaluates_expressions_and_their_transpose() -> None:
    c = _circuit()
    values = np.random.default_rng(0).uniform(-2, 2, (3, 1))
    pmap = ParameterMap.build(c, ["a"], ["b"])
    full = pmap.layout(values, {"b": 0.7})
    theta = pmap.theta(full)
    # Reference: bind each row and read the gates' numbers.
    for row, a in enumerate(values[:, 0]):
        bound = c.bind({"a": float(a), "b": 0.7})
        expect = [float(x) for op in bound for x in op.numeric_params()]
        np.testing.assert_allclose(theta[row], expect, atol=1e-12)
    # The chain rule is the transpose of the map's Jacobian: check by finite differences.
    gtheta = np.random.default_rng(1).normal(size=(3, pmap.n_theta))
    got = pmap.chain_rule(full, gtheta)
    h = 1e-6
    for col in range(full.shape[1]):
        step = np.zeros_like(full)
        step[:, col] = h
        fd = ((pmap.theta(full + step) - pmap.theta(full - step)) / (2 * h) * gtheta).sum(axis=1)
        np.testing.assert_allclose(got[:, col], fd, atol=1e-7)
    assert pmap.symbolic.tolist() == [True, True, True, False, True]
    assert pmap.slots == ((0,), (), (1,), (2, 3, 4))


def test_parameter_map_refuses_bad_bindings() -> None:
    pmap = ParameterMap.build(_circuit(), ["a", "b"])
    with pytest.raises(BindingError, match="shape"):
        pmap.layout([[1.0, 2.0, 3.0]], None)
    with pytest.raises(BindingError, match="per-sample"):
        pmap.layout(None, None)
    with pytest.raises(NonFiniteParameterError):
        pmap.layout([[np.nan, 1.0]], None)
    with pytest.raises(BindingError, match="more than once"):
        ParameterMap.build(_circuit(), ["a", "a", "b"])


def test_split_observables_separates_constants() -> None:
    obs = [qc.Z(0) * qc.Z(1) + 0.5, identity(2.0), -1.5 * qc.X(1)]
    terms = split_observables(as_observables(obs, 2), 2)
    assert terms.constants.tolist() == [0.5, 2.0, 0.0]
    assert terms.active == (0, 2)
    assert terms.n_obs == 3
    assert [terms.words[w] for w in terms.per_obs[2]] == [(((1, "X"),), -1.5)]
    with pytest.raises(ObservableError, match="qubit 3"):
        split_observables(as_observables([qc.Z(3)], 4), 2)


def test_lowering_helpers() -> None:
    c = _circuit().measure()
    pmap = ParameterMap.build(c, ["a", "b"])
    ops = lower_template(c, pmap.slots, lambda gate, qubits, cols: [(gate, q) for q in cols])
    assert ops == (("RX", 0), ("RZ", 1), ("U3", 2), ("U3", 3), ("U3", 4))

    class Op:
        def __init__(self, col: int, scale: float, offset: float) -> None:
            self.col, self.scale, self.offset = col, scale, offset

    theta = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = affine_parameters([Op(1, 2.0, 0.5), Op(0, -1.0, 0.0)], theta)
    assert out.tolist() == [[4.5, -1.0], [8.5, -3.0]]
    assert affine_parameters([], theta).shape == (2, 0)


def test_cached_template_is_kept_on_the_circuit() -> None:
    c = _circuit()
    calls: list[int] = []

    def lower(circuit: qc.UnifiedCircuit, slots: Sequence[Sequence[int]]) -> tuple[str, ...]:
        calls.append(1)
        return tuple(op.gate for op in circuit)

    t1 = cached_template(_Names, "test", c, None, {"b": 1.0}, lower)
    t2 = cached_template(_Names, "test", c, None, {"b": 2.0}, lower)
    assert t1 is t2 and len(calls) == 1
    assert t1.pmap.names == ("a", "b") and t1.ops == ("RX", "CNOT", "RZ", "U3")
    with pytest.raises(BackendError, match="UnifiedCircuit"):
        cached_template(_Names, "test", "circuit", None, None, lower)  # type: ignore[arg-type]


def test_result_helpers() -> None:
    probs = probabilities_from_states(np.array([[1.0, 1.0j], [2.0, 0.0]]))
    assert probs.tolist() == [[0.5, 0.5], [1.0, 0.0]]
    assert counts_from_indices(np.array([0, 3, 3, 1]), 2) == {"00": 1, "01": 1, "11": 2}


def test_expectations_from_states_match_observable_matrices() -> None:
    rng = np.random.default_rng(3)
    n = 3
    states = rng.normal(size=(4, 8)) + 1j * rng.normal(size=(4, 8))
    states /= np.linalg.norm(states, axis=1, keepdims=True)
    extra = [qc.Y(0) * qc.X(1) * qc.Z(2), identity(0.5)]
    obs = as_observables([*random_observables(n, rng, 4), *extra], n)
    terms = split_observables(obs, n)
    got = plugin.expectations_from_states(states, terms)
    want = [[np.vdot(psi, ob.matrix(n) @ psi).real for ob in obs] for psi in states]
    np.testing.assert_allclose(got, want, atol=1e-12)
    with pytest.raises(BackendError, match="2\\*\\*n"):
        plugin.expectations_from_states(np.ones((1, 3)), terms)


# -- a fixed-state toy simulator ------------------------------------------------------------------


class _Bell:
    """Every circuit ends in the Bell state (|00> + |11>) / sqrt(2); measures constants only."""

    def template(
        self,
        circuit: qc.UnifiedCircuit,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> _Names:
        return cached_template(_Names, "bell", circuit, names, shared, lambda c, s: ())

    def run_expectations(
        self, tpl: _Names, terms: ObservableTerms, theta: FloatArray
    ) -> FloatArray:
        return np.tile(terms.constants, (theta.shape[0], 1))

    def basis_states(self, tpl: _Names, theta: FloatArray, basis: Basis) -> Any:
        return np.tile(np.array([1, 0, 0, 1], dtype=np.complex128) / np.sqrt(2), (len(theta), 1))


def test_batch_functions_on_a_toy_simulator() -> None:
    b = _Bell()
    assert isinstance(b, plugin.SimulatorCore) and not isinstance(b, plugin.GateGradient)
    c = qc.UnifiedCircuit(2).add_gate("RX", 0, "t")
    values = [[0.1], [0.2]]
    assert plugin.probabilities(b, c, values).tolist() == [[0.5, 0.0, 0.0, 0.5]] * 2
    assert plugin.final_states(b, c, values).shape == (2, 4)
    rng = np.random.default_rng(1)
    est = plugin.expectation(b, c, [qc.Z(0) * qc.Z(1) + 1.0, qc.Z(0)], values, shots=400, rng=rng)
    assert est[:, 0].tolist() == [2.0, 2.0]  # Z0 Z1 = +1 in every shot
    assert np.all(np.abs(est[:, 1]) < 0.2)  # Z0 = +-1 with probability 1/2 each
    assert plugin.expectation(b, c, [identity(3.0)], values).tolist() == [[3.0], [3.0]]
    with pytest.raises(ShotsError):
        plugin.expectation(b, c, None, values, shots=0)
    with pytest.raises(BindingError, match="shape"):
        plugin.expectation(b, c, None, [[0.1, 0.2]])
    with pytest.raises(BackendError, match="GateGradient"):
        plugin.value_and_vjp_fn_by_gates(b, c, None, values)


# -- a third-party backend from the kit's functions alone -----------------------------------------


class OnLocal:
    """A simulator plugin as a third party writes one, subclassing nothing of ours: gate
    parameters ``theta`` are simulated by the local backend on the circuit whose gate parameters
    are its own symbols. ``by_gates`` picks the gradient: the local backend's VJP by gate
    parameter (GateGradient) or the kit's adjoint pass from the final states."""

    name = "on-local"

    def __init__(self, by_gates: bool) -> None:
        self.local = LocalBackend()
        self.by_gates = by_gates
        self.rng = np.random.default_rng(0)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self.name, 10, gradient_methods=("adjoint",), vjp=True)

    # the simulator
    def template(
        self,
        circuit: qc.UnifiedCircuit,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> Template[qc.UnifiedCircuit]:
        def lower(c: qc.UnifiedCircuit, slots: Sequence[Sequence[int]]) -> tuple[Any, ...]:
            return (plugin.gate_parameter_circuit(c, slots),)

        return cached_template(Template, "test.on_local", circuit, names, shared, lower)

    def basis_states(
        self, tpl: Template[qc.UnifiedCircuit], theta: FloatArray, basis: Basis
    ) -> Any:
        c = tpl.ops[0].copy()
        for q, p in basis:
            (c.add_gate("SDG", q) if p == "Y" else c).add_gate("H", q)
        return self.local.state(c, theta, names=plugin.theta_symbols(theta.shape[1]))

    def run_expectations(
        self, tpl: Template[qc.UnifiedCircuit], terms: ObservableTerms, theta: FloatArray
    ) -> FloatArray:
        return plugin.expectations_from_states(self.basis_states(tpl, theta, ()), terms)

    def gate_vjp_fn(
        self, tpl: Template[qc.UnifiedCircuit], terms: ObservableTerms, theta: FloatArray
    ) -> tuple[FloatArray, Any]:
        names = plugin.theta_symbols(theta.shape[1])
        obs = [_pauli_sum(terms, o) for o in range(terms.n_obs)]
        out, finish = self.local.value_and_vjp_fn(tpl.ops[0], obs, theta, names=names)
        return out + terms.constants, lambda cot: finish(cot)[0]

    # the backend protocol, one kit call each
    def expectation(
        self,
        circuit: qc.UnifiedCircuit,
        observables: Any = None,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        shots: int | None = None,
        seed: int | None = None,
    ) -> FloatArray:
        rng = self.rng if seed is None else np.random.default_rng(seed)
        return plugin.expectation(
            self, circuit, observables, values, names=names, shared=shared, shots=shots, rng=rng
        )

    def value_and_vjp_fn(
        self,
        circuit: qc.UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, plugin.VJPFn]:
        fn = (
            plugin.value_and_vjp_fn_by_gates
            if self.by_gates
            else plugin.value_and_vjp_fn_from_states
        )
        return fn(self, circuit, observables, values, names=names, shared=shared)

    def vjp(
        self,
        circuit: qc.UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        cotangent: npt.ArrayLike,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        _, finish = self.value_and_vjp_fn(circuit, observables, values, names=names, shared=shared)
        return finish(cotangent)


def _pauli_sum(terms: ObservableTerms, o: int) -> qc.PauliSum:
    """Observable ``o`` of ``terms`` without its constant (added back to the expectations)."""
    total = identity(0.0)
    for w in terms.per_obs[o]:
        paulis, weight = terms.words[w]
        word = identity(weight)
        for q, p in paulis:
            word = word * {"X": qc.X, "Y": qc.Y, "Z": qc.Z}[p](q)
        total = total + word
    return total


@pytest.mark.parametrize("by_gates", [False, True])
def test_third_party_backend_from_kit_functions_matches_local(by_gates: bool) -> None:
    be = OnLocal(by_gates)
    assert isinstance(be, plugin.SimulatorCore) and isinstance(be, KeepsForward)
    rng = np.random.default_rng(11 + by_gates)
    c = random_circuit(3, 25, rng)
    obs = random_observables(3, rng, 2)
    values, shared = random_bindings(rng)
    names = list(INPUTS)
    local = LocalBackend()
    got = be.expectation(c, obs, values, names=names, shared=shared)
    want = local.expectation(c, obs, values, names=names, shared=shared)
    np.testing.assert_allclose(got, want, atol=1e-10)
    est = be.expectation(c, obs, values, names=names, shared=shared, shots=4000, seed=2)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(est, want, atol=0.15 * scale)
    cot = rng.normal(size=(3, 2))
    val, finish = be.value_and_vjp_fn(c, obs, values, names=names, shared=shared)
    gv, gs = finish(cot)
    _, lgv, lgs = local.value_and_vjp(c, obs, values, cot, names=names, shared=shared)
    np.testing.assert_allclose(val, want, atol=1e-10)
    np.testing.assert_allclose(gv, lgv, atol=1e-8)
    np.testing.assert_allclose(gs, lgs, atol=1e-8)
    gv2, gs2 = finish(cot)  # the kept forward pass serves any number of backward passes
    np.testing.assert_allclose(gv2, gv, atol=1e-12)
    np.testing.assert_allclose(gs2, gs, atol=1e-12)
    # finite differences by one shared weight
    name, eps = next(iter(shared)), 1e-6
    up = be.expectation(c, obs, values, names=names, shared={**shared, name: shared[name] + eps})
    down = be.expectation(c, obs, values, names=names, shared={**shared, name: shared[name] - eps})
    fd = float(((up - down) / (2 * eps) * cot).sum())
    assert abs(gs[0] - fd) < 1e-6


def test_third_party_backend_trains_through_the_framework_adapter() -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x").add_gate("CNOT", [0, 1])
    c.add_gate("RZ", 1, 2 * qc.Parameter("w") * qc.Parameter("x")).add_gate("RX", 1, "w")
    x, w = np.array([[0.3], [1.2]]), np.array([0.4])
    results = []
    for backend in (OnLocal(by_gates=True), OnLocal(by_gates=False), "local"):
        ad = ExpectationAdapter(c, backend, ["x"], ["w"], [qc.Z(1), qc.X(1)])
        fwd = ad.forward(x, w)
        results.append((fwd.values, *ad.vjp(fwd, np.ones((2, 2)))))
    for got in results[:2]:
        for a, b in zip(got, results[2], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-10)
