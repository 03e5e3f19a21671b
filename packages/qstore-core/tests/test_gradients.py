"""Gradient methods against central finite differences computed here, for every parameterised gate.

Each gate sits in an entangling circuit twice, with per-sample data symbols ``x_q``, shared
weights ``theta`` and ``w``, and expressions (``2*theta + 0.1``, ``x_0 * w``, ``w * x_2 + 0.2``)
so that one symbol feeds several gates and the chain rule runs per sample.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qstore.core as qc
from qstore.core.backends.local import LocalBackend
from qstore.core.errors import (
    BindingError,
    GradientError,
    NonFiniteParameterError,
    ShotsError,
    UnboundParameterError,
)
from qstore.core.gates import GATES
from qstore.core.gradients import (
    AdjointGradient,
    FiniteDifferenceGradient,
    GradientMethod,
    GradientResult,
    ParameterShiftGradient,
    SPSAGradient,
    gate_shift_rule,
    get,
    shift_rule,
    shift_template,
)
from qstore.core.observables import PauliSum, X, Y, Z
from qstore.core.parameters import Expression, Parameter

FArray = npt.NDArray[np.float64]
PARAM_GATES = tuple(n for n, s in GATES.items() if s.is_parameterized)
THETA, W = Parameter("theta"), Parameter("w")
XS = tuple(Parameter(f"x_{q}") for q in range(3))
NAMES = ("x_0", "x_1", "x_2")
SHARED = {"theta": 0.37, "w": -1.1}
OBS = [Z(0), X(1) * Y(2) + 0.5 * Z(0) * Z(1), Y(0) + X(2)]
VALUES = np.random.default_rng(0).uniform(-2, 2, size=(3, 3))
STEP = 1e-6
METHODS: dict[str, Callable[[Any], GradientMethod]] = {
    "adjoint": AdjointGradient,
    "parameter_shift": ParameterShiftGradient,
    "finite_diff": FiniteDifferenceGradient,
}


def gate_circuit(gate: str) -> qc.UnifiedCircuit:
    """``gate`` twice (different qubits and expressions) inside an entangling circuit."""
    spec = GATES[gate]
    c = qc.UnifiedCircuit(3)
    for q in range(3):
        c.add_gate("H", q)
    c.add_gate("RY", 0, XS[0]).add_gate("RY", 1, XS[1]).add_gate("RZ", 2, XS[2])
    c.add_gate("CNOT", [0, 1]).add_gate("CNOT", [1, 2])
    first: list[Expression] = [2 * THETA + 0.1, XS[0] * W, THETA - 0.5 * W + 0.3]
    c.add_gate(gate, [1] if spec.n_qubits == 1 else [1, 2], first[: spec.n_params])
    c.add_gate("CZ", [0, 2]).add_gate("RX", 0, 0.5).add_gate("RY", 2, -0.7)
    second: list[Any] = [W * XS[2] + 0.2, THETA * XS[2], 0.7]
    c.add_gate(gate, [0] if spec.n_qubits == 1 else [2, 0], second[: spec.n_params])
    c.add_gate("RX", 0, THETA).add_gate("CNOT", [2, 0])
    for q in range(3):
        c.add_gate("RY", q, 0.4 + 0.3 * q)
    return c.add_gate("CNOT", [0, 1])


def fd_reference(
    circuit: qc.UnifiedCircuit,
    obs: Any,
    values: FArray,
    names: Sequence[str],
    shared: Mapping[str, float],
) -> tuple[FArray, FArray]:
    """Central differences (step 1e-6), one column at a time, straight from ``expectation``."""
    backend = LocalBackend()

    def f(v: FArray, s: Mapping[str, float]) -> FArray:
        return backend.expectation(circuit, obs, v, names=list(names), shared=dict(s))

    jv = np.zeros((values.shape[0], len(obs), values.shape[1]))
    for p in range(values.shape[1]):
        up, down = values.copy(), values.copy()
        up[:, p] += STEP
        down[:, p] -= STEP
        jv[:, :, p] = (f(up, shared) - f(down, shared)) / (2 * STEP)
    js = np.zeros((values.shape[0], len(obs), len(shared)))
    for i, k in enumerate(shared):
        up_s, down_s = dict(shared), dict(shared)
        up_s[k] += STEP
        down_s[k] -= STEP
        js[:, :, i] = (f(values, up_s) - f(values, down_s)) / (2 * STEP)
    return jv, js


_REFERENCES: dict[str, tuple[FArray, FArray]] = {}


def reference(gate: str) -> tuple[FArray, FArray]:
    if gate not in _REFERENCES:
        _REFERENCES[gate] = fd_reference(gate_circuit(gate), OBS, VALUES, NAMES, SHARED)
    return _REFERENCES[gate]


# -- shift rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "freqs", [(1.0,), (2.0,), (0.5, 1.0), (1.0, 2.0), (1.0, 3.0), (0.5, 1.5, 2.0), (1, 2, 3, 4)]
)
def test_shift_rule_differentiates_any_trig_polynomial_with_those_frequencies(
    freqs: tuple[float, ...],
) -> None:
    rng = np.random.default_rng(len(freqs))
    w = np.asarray(freqs, dtype=float)
    for _ in range(5):
        a0, a, b = rng.normal(), rng.normal(size=w.size), rng.normal(size=w.size)

        def f(t: float, a0: float = a0, a: FArray = a, b: FArray = b) -> float:
            return float(a0 + np.sum(a * np.cos(w * t) + b * np.sin(w * t)))

        t0 = float(rng.uniform(-5, 5))
        exact = float(np.sum(w * (-a * np.sin(w * t0) + b * np.cos(w * t0))))
        assert shift_rule(freqs).apply(f, t0) == pytest.approx(exact, abs=1e-12)


def test_shift_rules_of_the_gate_table() -> None:
    # two-term where one frequency, four-term for controlled rotations and phases of GPI2/MS
    assert gate_shift_rule("RX", 0).shifts == (math.pi / 2,)
    assert gate_shift_rule("RX", 0).coefficients == (0.5,)
    assert gate_shift_rule("GPI", 0).shifts == (math.pi / 4,)
    assert gate_shift_rule("GPI", 0).coefficients == pytest.approx((1.0,))
    for gate, index in [("CRX", 0), ("CRY", 0), ("CRZ", 0)]:
        rule = gate_shift_rule(gate, index)
        assert rule.shifts == pytest.approx((math.pi / 2, 3 * math.pi / 2))
        s2 = math.sqrt(2)
        assert rule.coefficients == pytest.approx(((s2 + 1) / (4 * s2), -(s2 - 1) / (4 * s2)))
    for gate, index in [("GPI2", 0), ("MS", 0), ("MS", 1)]:
        assert gate_shift_rule(gate, index).n_terms == 4
    for gate in PARAM_GATES:
        for i in range(GATES[gate].n_params):
            assert gate_shift_rule(gate, i).n_terms in (2, 4)


@pytest.mark.parametrize("gate", PARAM_GATES)
def test_gate_shift_rule_is_exact_for_the_gate_in_isolation(gate: str) -> None:
    # f(t) = <psi| M(t)^dag O M(t) |psi> for random psi and Hermitian O, against the analytic
    # derivative from the gate's matrix derivative.
    spec = GATES[gate]
    rng = np.random.default_rng(PARAM_GATES.index(gate))
    d = spec.dim
    psi = rng.normal(size=d) + 1j * rng.normal(size=d)
    psi /= np.linalg.norm(psi)
    h = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    o = h + h.conj().T
    p0 = rng.uniform(-3, 3, size=spec.n_params)
    for i in range(spec.n_params):

        def f(t: float, i: int = i) -> float:
            p = p0.copy()
            p[i] = t
            phi = spec.matrix(p) @ psi
            return float(np.vdot(phi, o @ phi).real)

        m, dm = spec.matrix(p0), spec.derivative(p0, i)
        exact = 2 * np.vdot(m @ psi, o @ (dm @ psi)).real
        assert gate_shift_rule(gate, i).apply(f, float(p0[i])) == pytest.approx(exact, abs=1e-11)


# -- every gate, every method, against finite differences ----------------------------------------
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("gate", PARAM_GATES)
def test_jacobian_and_vjp_match_finite_differences(gate: str, method: str) -> None:
    circuit = gate_circuit(gate)
    ref_v, ref_s = reference(gate)
    assert np.abs(ref_v).max(axis=(0, 1)).min() > 1e-2  # every column really matters
    assert np.abs(ref_s).max(axis=(0, 1)).min() > 1e-2
    g = METHODS[method](LocalBackend())
    jv, js = g.jacobian(circuit, OBS, VALUES, NAMES, SHARED)
    assert jv.shape == (3, 3, 3) and js.shape == (3, 3, 2)
    np.testing.assert_allclose(jv, ref_v, atol=1e-6)
    np.testing.assert_allclose(js, ref_s, atol=1e-6)
    cot = np.random.default_rng(1).normal(size=(3, 3))
    gv, gs = g.vjp(circuit, OBS, VALUES, cot, names=NAMES, shared=SHARED)
    np.testing.assert_allclose(gv, np.einsum("bo,bop->bp", cot, ref_v), atol=1e-6)
    np.testing.assert_allclose(gs, np.einsum("bo,bos->s", cot, ref_s), atol=1e-6)


@pytest.mark.parametrize("gate", PARAM_GATES)
def test_parameter_shift_equals_adjoint_to_machine_precision(gate: str) -> None:
    circuit = gate_circuit(gate)
    ps = ParameterShiftGradient(LocalBackend()).jacobian(circuit, OBS, VALUES, NAMES, SHARED)
    adj = AdjointGradient(LocalBackend()).jacobian(circuit, OBS, VALUES, NAMES, SHARED)
    np.testing.assert_allclose(ps[0], adj[0], atol=1e-12)
    np.testing.assert_allclose(ps[1], adj[1], atol=1e-12)


@pytest.mark.parametrize("first", ["CNOT", "CZ", "SWAP", "CRX", "RZZ", "MS"])
@pytest.mark.parametrize("memory", ["stored states", "recomputed states"])
def test_adjoint_is_right_when_the_circuit_starts_with_a_multi_qubit_gate(
    first: str, memory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: with stored states, a program not starting with a single-qubit layer used the
    # state *before* each op instead of after it, giving wrong gradients.
    spec = GATES[first]
    c = qc.UnifiedCircuit(3).add_gate(first, [0, 1], [Parameter("a")] * spec.n_params)
    c.add_gate("RY", 1, "x").add_gate("CRX", [1, 2], "b").add_gate("RX", 0, THETA * Parameter("x"))
    c.add_gate("CNOT", [2, 0]).add_gate("RY", 2, "a")
    obs = [Z(0), X(1) * Z(2), Y(0) + Z(1)]
    values = np.random.default_rng(2).uniform(-2, 2, size=(3, 1))
    shared = {"a": 0.3, "b": -0.8, "theta": 1.3}
    if memory == "recomputed states":  # room for the 6 state copies, not for storing every state
        monkeypatch.setenv("QSTORE_MAX_MEMORY_GB", str(6.5 * 3 * 8 * 16 / 2**30))
    ref_v, ref_s = fd_reference(c, obs, values, ["x"], shared)
    jv, js = AdjointGradient(LocalBackend()).jacobian(c, obs, values, ["x"], shared)
    np.testing.assert_allclose(jv, ref_v, atol=1e-6)
    np.testing.assert_allclose(js, ref_s, atol=1e-6)
    gv, gs = LocalBackend().vjp(c, obs, values, np.ones((3, 3)), names=["x"], shared=shared)
    np.testing.assert_allclose(gv, ref_v.sum(axis=1), atol=1e-6)
    np.testing.assert_allclose(gs, ref_s.sum(axis=(0, 1)), atol=1e-6)


SMALL_GATES = st.sampled_from((*PARAM_GATES, "H", "CNOT", "SX"))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(
    gates=st.lists(st.tuples(SMALL_GATES, st.booleans(), st.integers(0, 3)), max_size=8),
    seed=st.integers(0, 2**31 - 1),
    encode_first=st.booleans(),
)
def test_random_small_circuits_parameter_shift_equals_adjoint(
    gates: list[tuple[str, bool, int]], seed: int, encode_first: bool
) -> None:
    rng = np.random.default_rng(seed)
    c = qc.UnifiedCircuit(2)
    if encode_first:
        c.add_gate("RY", 0, "x").add_gate("RX", 1, "v")
    exprs: list[Expression | float] = [
        Parameter("a"),
        2 * Parameter("b") - 0.4,
        Parameter("x") * Parameter("a"),
        0.3,
    ]
    for name, flip, k in gates:
        spec = GATES[name]
        qubits = [0, 1][: spec.n_qubits]
        if flip:
            qubits = qubits[::-1] if spec.n_qubits == 2 else [1]
        c.add_gate(name, qubits, [exprs[(k + j) % 4] for j in range(spec.n_params)])
    if not encode_first:
        c.add_gate("RY", 0, "x").add_gate("RX", 1, "v").add_gate("CNOT", [1, 0])
    obs = [Z(0), X(0) * X(1) - 0.3 * Y(1)]
    shared: dict[str, float] = {
        s: float(rng.uniform(-2, 2)) for s in ("a", "b") if s in c.parameters
    }
    values = rng.uniform(-2, 2, size=(2, 2))
    names = ["x", "v"]
    ps = ParameterShiftGradient(LocalBackend()).jacobian(c, obs, values, names, shared)
    adj = AdjointGradient(LocalBackend()).jacobian(c, obs, values, names, shared)
    np.testing.assert_allclose(ps[0], adj[0], atol=1e-11)
    np.testing.assert_allclose(ps[1], adj[1], atol=1e-11)


# -- parameter shift on any backend ------------------------------------------------------------
class ExpectationOnly:
    """A backend with nothing but ``expectation`` (counts its calls and rows)."""

    name = "expectation-only"

    def __init__(self) -> None:
        self.inner = LocalBackend()
        self.calls: list[int] = []

    def expectation(
        self, circuit: qc.UnifiedCircuit, observables: Any, values: Any, **kw: Any
    ) -> Any:
        self.calls.append(int(np.shape(values)[0]))
        return self.inner.expectation(circuit, observables, values, **kw)


def test_parameter_shift_needs_only_expectation_and_one_call_per_batch() -> None:
    backend = ExpectationOnly()
    circuit = gate_circuit("MS")
    g = ParameterShiftGradient(backend)
    jv, js = g.jacobian(circuit, OBS, VALUES, NAMES, SHARED)
    assert len(backend.calls) == 1
    tpl = shift_template(circuit)
    assert backend.calls[0] == tpl.n_shifts * VALUES.shape[0]
    ref_v, ref_s = reference("MS")
    np.testing.assert_allclose(jv, ref_v, atol=1e-6)
    np.testing.assert_allclose(js, ref_s, atol=1e-6)
    with pytest.raises(GradientError, match="adjoint"):
        AdjointGradient(backend)


def test_parameter_shift_max_rows_splits_the_call_without_changing_the_result() -> None:
    backend = ExpectationOnly()
    circuit = gate_circuit("CRY")
    whole = ParameterShiftGradient(LocalBackend()).jacobian(circuit, OBS, VALUES, NAMES, SHARED)
    split = ParameterShiftGradient(backend, max_rows=7).jacobian(
        circuit, OBS, VALUES, NAMES, SHARED
    )
    assert max(backend.calls) <= 7 and len(backend.calls) > 1
    np.testing.assert_allclose(split[0], whole[0], atol=1e-13)
    np.testing.assert_allclose(split[1], whole[1], atol=1e-13)


def test_shift_template_gives_every_gate_parameter_its_own_symbol() -> None:
    c = gate_circuit("U3").measure()
    tpl = shift_template(c)
    assert (
        len(tpl.symbols) == len(set(tpl.symbols)) == 3 + 3 + 2 + 1
    )  # data, U3, U3 (one constant), RX
    assert set(tpl.circuit.parameters) == set(tpl.symbols)
    assert tpl.circuit.has_measurements
    assert shift_template(c) is tpl  # cached until the circuit grows
    c.add_gate("RY", 0, "theta")
    assert shift_template(c) is not tpl


def test_user_symbols_that_look_like_template_symbols_do_not_collide() -> None:
    c = qc.UnifiedCircuit(1).add_gate("RX", 0, "__g0_0").add_gate("RY", 0, "__g1_0")
    ps = ParameterShiftGradient(LocalBackend()).jacobian(c, Z(0), [[0.3, 0.9]])
    adj = AdjointGradient(LocalBackend()).jacobian(c, Z(0), [[0.3, 0.9]])
    np.testing.assert_allclose(ps[0], adj[0], atol=1e-12)


def test_parameter_shift_with_shots_is_within_five_standard_errors_and_repeatable() -> None:
    circuit = gate_circuit("CRX")
    obs = [Z(0), X(1) * Y(2)]  # single Pauli strings: each shifted estimate has var <= 1/shots
    exact_v, exact_s = ParameterShiftGradient(LocalBackend()).jacobian(
        circuit, obs, VALUES[:2], NAMES, SHARED
    )
    g = ParameterShiftGradient(LocalBackend(), shots=2000)
    runs = [g.jacobian(circuit, obs, VALUES[:2], NAMES, SHARED, seed=s) for s in range(24)]
    for k, exact in enumerate((exact_v, exact_s)):
        est = np.stack([r[k] for r in runs])
        mean, sd = est.mean(axis=0), est.std(axis=0, ddof=1)
        assert np.all(np.abs(mean - exact) <= 5 * sd / math.sqrt(len(runs)) + 1e-12)
        assert np.all(np.abs(est - exact) <= 5 * sd + 1e-12)
        assert sd.max() > 0
    again = g.jacobian(circuit, obs, VALUES[:2], NAMES, SHARED, seed=3)
    np.testing.assert_array_equal(again[0], runs[3][0])
    np.testing.assert_array_equal(again[1], runs[3][1])
    assert not np.array_equal(runs[0][0], runs[1][0])


# -- SPSA -----------------------------------------------------------------------------------------
def test_spsa_is_repeatable_for_a_seed_and_unbiased_on_average() -> None:
    circuit = gate_circuit("RYY")
    exact_v, exact_s = reference("RYY")
    a = SPSAGradient(LocalBackend(), epsilon=1e-3, n_samples=4, seed=5)
    b = SPSAGradient(LocalBackend(), epsilon=1e-3, n_samples=4, seed=5)
    first = a.jacobian(circuit, OBS, VALUES, NAMES, SHARED)
    np.testing.assert_array_equal(first[1], b.jacobian(circuit, OBS, VALUES, NAMES, SHARED)[1])
    assert not np.array_equal(first[1], a.jacobian(circuit, OBS, VALUES, NAMES, SHARED)[1])
    runs = [
        SPSAGradient(LocalBackend(), epsilon=1e-3, n_samples=25, seed=s).jacobian(
            circuit, OBS, VALUES, NAMES, SHARED
        )
        for s in range(40)
    ]
    for k, exact in enumerate((exact_v, exact_s)):
        est = np.stack([r[k] for r in runs])
        mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / math.sqrt(len(runs))
        assert np.all(np.abs(mean - exact) <= 5 * se + 1e-4)
        assert np.abs(mean - exact).max() < 0.15


def test_spsa_vjp_costs_two_evaluations_per_sample() -> None:
    backend = ExpectationOnly()
    g = SPSAGradient(backend, seed=0)
    g.vjp(gate_circuit("RX"), OBS, VALUES, np.ones((3, 3)), names=NAMES, shared=SHARED)
    assert backend.calls == [2 * VALUES.shape[0]]


# -- compute() ------------------------------------------------------------------------------------
def sum_of_squares(e: FArray) -> float:
    return float(np.sum((e - 0.2) ** 2))


@pytest.mark.parametrize("method", ["adjoint", "parameter_shift", "finite_diff"])
def test_compute_nonlinear_loss_matches_finite_differences(method: str) -> None:
    circuit = gate_circuit("GPI2")
    point = {"theta": 0.37, "w": -1.1, "x_0": 0.5}
    fixed = {"x_1": -0.3, "x_2": 1.2}
    backend = LocalBackend()

    def loss_at(values: Mapping[str, float]) -> float:
        e = backend.expectation(circuit, OBS, None, names=[], shared=dict(values))
        return sum_of_squares(e[0])

    g = METHODS[method](backend)
    result = asyncio.run(
        g.compute(
            circuit=circuit, loss_fn=sum_of_squares, parameters=point, observables=OBS, values=fixed
        )
    )
    assert isinstance(result, GradientResult)
    assert result.method == method
    assert list(result.gradients) == list(point)
    assert result.loss == pytest.approx(loss_at({**point, **fixed}), abs=1e-12)
    assert result.expectations.shape == (3,)
    assert result.n_circuit_evaluations > 0
    for name in point:
        up, down = {**point, **fixed}, {**point, **fixed}
        up[name] += STEP
        down[name] -= STEP
        ref = (loss_at(up) - loss_at(down)) / (2 * STEP)
        assert result.gradients[name] == pytest.approx(ref, abs=1e-6)
    assert "loss=" in str(result)


def test_compute_accepts_circuit_parameters_with_values_and_defaults_with_a_warning() -> None:
    c = qc.UnifiedCircuit(2).add_parameterized_layer("RY", "theta").add_gate("CNOT", [0, 1])
    g = ParameterShiftGradient(LocalBackend())
    result = asyncio.run(
        g.compute(
            circuit=c,
            loss_fn=lambda e: e[1],
            parameters=c.parameters,
            values={"theta_0": 0.4, "theta_1": 0.9},
        )
    )
    # <Z_1> after CNOT = cos(theta_0) cos(theta_1)
    assert result.gradients["theta_0"] == pytest.approx(-math.sin(0.4) * math.cos(0.9), abs=1e-12)
    assert result.gradients["theta_1"] == pytest.approx(-math.cos(0.4) * math.sin(0.9), abs=1e-12)
    with pytest.warns(UserWarning, match="theta_1"):
        r0 = asyncio.run(g.compute(c, lambda e: e[1], c.parameters, values={"theta_0": 0.4}))
    assert r0.gradients["theta_1"] == pytest.approx(0.0, abs=1e-12)


def test_compute_with_shots_is_seeded() -> None:
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, "t")
    g = ParameterShiftGradient(LocalBackend())

    def run(seed: int) -> GradientResult:
        return asyncio.run(g.compute(c, lambda e: e[0] ** 2, {"t": 0.7}, shots=4000, seed=seed))

    assert run(1).gradients == run(1).gradients
    assert run(1).gradients != run(2).gradients
    exact = -2 * math.cos(0.7) * math.sin(0.7)
    assert run(1).gradients["t"] == pytest.approx(exact, abs=0.1)


def test_compute_errors_name_the_problem() -> None:
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, "t").add_gate("RX", 0, "x")
    g = ParameterShiftGradient(LocalBackend())
    with pytest.raises(BindingError, match="'nope'"):
        asyncio.run(g.compute(c, lambda e: e[0], {"nope": 0.1}, values={"x": 0.0}))
    with pytest.raises(UnboundParameterError, match="'x'"):
        asyncio.run(g.compute(c, lambda e: e[0], {"t": 0.1}))
    with pytest.raises(GradientError, match="one real number"):
        asyncio.run(g.compute(c, lambda e: e, {"t": 0.1, "x": 0.2}, observables=[Z(0), X(0)]))
    with pytest.raises(NonFiniteParameterError, match="'t'"):
        asyncio.run(g.compute(c, lambda e: e[0], {"t": float("nan"), "x": 0.2}))
    with pytest.raises(GradientError, match="shots"):
        asyncio.run(
            AdjointGradient(LocalBackend()).compute(c, lambda e: e[0], {"t": 0.1, "x": 0}, shots=10)
        )


# -- configuration and input errors --------------------------------------------------------------
def test_get_by_configuration_name() -> None:
    backend = LocalBackend()
    assert isinstance(get("parameter_shift", backend), ParameterShiftGradient)
    assert isinstance(get("adjoint", backend), AdjointGradient)
    assert isinstance(get("finite_diff", backend, epsilon=1e-4), FiniteDifferenceGradient)
    assert isinstance(get("spsa", backend, seed=1), SPSAGradient)
    with pytest.raises(GradientError, match="parameter_shift"):
        get("backprop", backend)


def test_bad_configuration_is_refused_at_construction() -> None:
    backend = LocalBackend()
    with pytest.raises(GradientError, match="expectation"):
        ParameterShiftGradient(object())
    with pytest.raises(GradientError, match="epsilon"):
        FiniteDifferenceGradient(backend, epsilon=0.0)
    with pytest.raises(GradientError, match="method"):
        FiniteDifferenceGradient(backend, method="sideways")
    with pytest.raises(GradientError, match="n_samples"):
        SPSAGradient(backend, n_samples=0)
    with pytest.raises(ShotsError, match="shots"):
        ParameterShiftGradient(backend, shots=-5)
    with pytest.raises(GradientError, match="max_rows"):
        ParameterShiftGradient(backend, max_rows=0)


@pytest.mark.parametrize("method", ["adjoint", "parameter_shift", "finite_diff", "spsa"])
def test_bad_bindings_and_cotangents_are_reported(method: str) -> None:
    g = get(method, LocalBackend())
    circuit = gate_circuit("RX")
    with pytest.raises(BindingError, match="cotangent"):
        g.vjp(circuit, OBS, VALUES, np.ones((3, 2)), names=NAMES, shared=SHARED)
    with pytest.raises(BindingError, match="shape"):
        g.jacobian(circuit, OBS, VALUES[:, :2], NAMES, SHARED)
    with pytest.raises(NonFiniteParameterError, match="row 0"):
        g.jacobian(circuit, OBS, np.full((1, 3), np.nan), NAMES, SHARED)
    with pytest.raises(UnboundParameterError, match="'w'"):
        g.jacobian(circuit, OBS, VALUES, NAMES, {"theta": 0.1})


def test_finite_difference_one_sided_variants_are_close() -> None:
    circuit = gate_circuit("RZ")
    ref_v, ref_s = reference("RZ")
    for variant in ("forward", "backward"):
        jv, js = FiniteDifferenceGradient(LocalBackend(), method=variant, epsilon=1e-7).jacobian(
            circuit, OBS, VALUES, NAMES, SHARED
        )
        np.testing.assert_allclose(jv, ref_v, atol=1e-5)
        np.testing.assert_allclose(js, ref_s, atol=1e-5)


def test_circuits_without_symbols_have_empty_jacobians() -> None:
    c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
    for method in ("adjoint", "parameter_shift", "finite_diff", "spsa"):
        jv, js = get(method, LocalBackend()).jacobian(c, None, None)
        assert jv.shape == (1, 2, 0) and js.shape == (1, 2, 0)


def test_observable_given_as_cirq_list_is_accepted() -> None:
    cirq = pytest.importorskip("cirq")
    c = gate_circuit("RX")
    a = ParameterShiftGradient(LocalBackend()).jacobian(c, [cirq.Z] * 3, VALUES, NAMES, SHARED)
    b = ParameterShiftGradient(LocalBackend()).jacobian(
        c, [PauliSum((Z(q),)) for q in range(3)], VALUES, NAMES, SHARED
    )
    np.testing.assert_allclose(a[0], b[0])
