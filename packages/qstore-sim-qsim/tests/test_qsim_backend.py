"""The ``qsim`` backend against independent references: the core's ``local`` engine (double
precision), Cirq's own simulator, and finite differences of its own expectations."""

from __future__ import annotations

import cirq
import numpy as np
import pytest

import qstore.core as qc
from qstore.core.adapter import KeepsForward, UnitaryAdapter
from qstore.core.backends import Backend, plugin
from qstore.core.backends.local import LocalBackend
from qstore.core.errors import BindingError, CapabilityError, ObservableError, ShotsError
from qstore.core.testing import INPUTS, random_circuit, random_observables
from qstore.core.testing import random_bindings as bindings
from qstore.sim.qsim import QsimBackend

TOL = 2e-5  # qsim computes in complex64


NAMES = list(INPUTS)


@pytest.fixture(scope="module")
def qsim() -> QsimBackend:
    return QsimBackend(threads=1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("translation", ["native", "cirq"])
def test_states_match_local_exactly_including_global_phase(seed: int, translation: str) -> None:
    rng = np.random.default_rng(seed)
    c = random_circuit(3, 40, rng)
    values, shared = bindings(rng)
    got = QsimBackend(threads=1, translation=translation).state(
        c, values, names=NAMES, shared=shared
    )
    want = LocalBackend().state(c, values, names=NAMES, shared=shared)
    assert np.allclose(got, want, atol=TOL)


@pytest.mark.parametrize("seed", range(4))
def test_expectations_of_random_pauli_sums_match_local_and_cirq(
    qsim: QsimBackend, seed: int
) -> None:
    rng = np.random.default_rng(10 + seed)
    n = 4
    c = random_circuit(n, 30, rng)
    obs = random_observables(n, rng)
    values, shared = bindings(rng)
    got = qsim.expectation(c, obs, values, names=NAMES, shared=shared)
    want = LocalBackend().expectation(c, obs, values, names=NAMES, shared=shared)
    assert got.shape == (3, 3)
    assert np.allclose(got, want, atol=TOL)
    # Cirq's own simulator on Cirq's conversion of the bound circuit.
    qubits = cirq.LineQubit.range(n)
    sim = cirq.Simulator()
    for b in range(values.shape[0]):
        bound = c.bind({**dict(zip(NAMES, values[b], strict=True)), **shared})
        cc = bound.to_cirq()
        psi = sim.simulate(cc, qubit_order=qubits).final_state_vector
        for o, ob in enumerate(obs):
            assert np.isclose(np.vdot(psi, ob.matrix(n) @ psi).real, got[b, o], atol=1e-4)


def test_cirq_translation_agrees_with_native(qsim: QsimBackend) -> None:
    rng = np.random.default_rng(3)
    c = random_circuit(3, 30, rng)
    obs = random_observables(3, rng)
    values, shared = bindings(rng, 4)
    native = qsim.expectation(c, obs, values, names=NAMES, shared=shared)
    via_cirq = QsimBackend(threads=1, translation="cirq").expectation(
        c, obs, values, names=NAMES, shared=shared
    )
    assert np.allclose(native, via_cirq, atol=TOL)


@pytest.mark.parametrize("seed", range(3))
def test_parameter_shift_vjp_matches_local_adjoint(qsim: QsimBackend, seed: int) -> None:
    rng = np.random.default_rng(20 + seed)
    c = random_circuit(3, 30, rng)
    obs = random_observables(3, rng, 2)
    values, shared = bindings(rng)
    cot = rng.normal(size=(3, 2))
    val, gv, gs = qsim.value_and_vjp(c, obs, values, cot, names=NAMES, shared=shared)
    lval, lgv, lgs = LocalBackend().value_and_vjp(c, obs, values, cot, names=NAMES, shared=shared)
    assert np.allclose(val, lval, atol=TOL)
    assert np.allclose(gv, lgv, atol=1e-4)
    assert np.allclose(gs, lgs, atol=1e-4)
    assert gs.shape == (3,)
    gv2, gs2 = qsim.vjp(c, obs, values, cot, names=NAMES, shared=shared)
    assert np.allclose(gv2, gv) and np.allclose(gs2, gs)


def test_vjp_matches_finite_differences_of_qsim_expectations(qsim: QsimBackend) -> None:
    c = qc.UnifiedCircuit(2)
    c.add_gate("RY", 0, "a").add_gate("CRX", [0, 1], "b").add_gate("MS", [1, 0], [0.3, "a", "b"])
    c.add_gate("GPI2", 1, "a")
    values = np.array([[0.4, -1.1], [1.3, 0.2]])
    cot = np.array([[1.0], [-0.5]])
    gv, _ = qsim.vjp(c, qc.X(1), values, cot, names=["a", "b"])
    eps = 1e-3
    for p in range(2):
        d = np.zeros_like(values)
        d[:, p] = eps
        up = qsim.expectation(c, qc.X(1), values + d, names=["a", "b"])
        down = qsim.expectation(c, qc.X(1), values - d, names=["a", "b"])
        fd = ((up - down) / (2 * eps) * cot).sum(axis=1)
        assert np.allclose(gv[:, p], fd, atol=2e-3)


def test_seeded_shot_sampling_is_reproducible_and_unbiased(qsim: QsimBackend) -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "t").add_gate("CNOT", [0, 1]).add_gate("H", 1)
    values = np.array([[0.3], [2.0]])
    obs = [qc.Z(0), qc.X(1), qc.Y(0) * qc.Z(1) + 0.5]
    a = qsim.expectation(c, obs, values, shots=4000, seed=7)
    b = qsim.expectation(c, obs, values, shots=4000, seed=7)
    assert np.array_equal(a, b)
    exact = LocalBackend().expectation(c, obs, values)
    assert np.allclose(a, exact, atol=0.06)
    s1 = qsim.sample(c, 100, values, seed=3)
    assert s1.shape == (2, 100) and np.array_equal(s1, qsim.sample(c, 100, values, seed=3))
    counts = qsim.counts(c, 500, values, seed=1)
    assert [sum(cn.values()) for cn in counts] == [500, 500]


def test_probabilities_use_qubit_zero_as_most_significant_bit(qsim: QsimBackend) -> None:
    c = qc.UnifiedCircuit(3).add_gate("X", 0)
    probs = qsim.probabilities(c)
    assert probs.shape == (1, 8) and np.isclose(probs[0, 0b100], 1.0)
    assert qsim.counts(c, 10, seed=0) == [{"100": 10}]


def test_template_is_lowered_once_and_reused(qsim: QsimBackend) -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x").add_gate("CNOT", [0, 1])
    qsim.expectation(c, None, [[0.1]])
    cached = [k for k in c._compiled if k[1] == "qstore.sim.qsim"]
    assert len(cached) == 1
    tpl = c._compiled[cached[0]]
    qsim.expectation(c, None, [[0.7], [0.2]])
    assert c._compiled[cached[0]] is tpl


def test_errors_name_the_problem(qsim: QsimBackend) -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x")
    with pytest.raises(BindingError, match="shape"):
        qsim.expectation(c, None, np.zeros((2, 3)))
    with pytest.raises(ObservableError, match="qubit 5"):
        qsim.expectation(c, qc.Z(5), [[0.1]])
    with pytest.raises(ShotsError, match="shots"):
        qsim.expectation(c, None, [[0.1]], shots=0)
    with pytest.raises(qc.errors.BackendError, match="translation"):
        QsimBackend(translation="fast")


def test_capabilities_are_declared_and_registered() -> None:
    caps = qc.backends.get("qsim").capabilities
    assert caps.available and caps.exact and caps.shots and caps.vjp
    assert "parameter_shift" in caps.gradient_methods and caps.dtypes == ("complex64",)
    assert caps.max_qubits >= 20
    gpu = QsimBackend(use_gpu=True).capabilities
    assert gpu.gpu
    if not gpu.available:
        assert "CUDA" in gpu.reason
        with pytest.raises(CapabilityError, match="CUDA"):
            QsimBackend(use_gpu=True).expectation(qc.UnifiedCircuit(1).add_gate("H", 0))


def test_fixed_and_empty_circuits_and_constant_observables(qsim: QsimBackend) -> None:
    fixed = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("RX", 1, 0.3)
    val, gv, gs = qsim.value_and_vjp(fixed, qc.X(0), None, [[1.0]])
    assert np.allclose(val, [[1.0]], atol=TOL) and gv.shape == (1, 0) and gs.shape == (0,)
    empty = qc.UnifiedCircuit(2)
    got = qsim.expectation(empty, [qc.Z(1), 2.0 * qc.observables.identity()])
    assert np.allclose(got, [[1.0, 2.0]], atol=TOL)
    assert np.allclose(qsim.state(empty), [[1, 0, 0, 0]])


def test_backend_is_a_plugin_kit_simulator_whose_gradient_is_the_core_adjoint(
    qsim: QsimBackend,
) -> None:
    assert isinstance(qsim, plugin.SimulatorCore) and isinstance(qsim, Backend)
    assert isinstance(qsim, KeepsForward)
    assert not isinstance(qsim, plugin.GateGradient)  # no gradient of qsim's own
    assert "qsim's final states" in qsim.capabilities.extra["gradient"]
    rng = np.random.default_rng(30)
    c = random_circuit(3, 25, rng)
    values, shared = bindings(rng)
    cot = rng.normal(size=(3, 3))
    val, finish = qsim.value_and_vjp_fn(c, None, values, names=NAMES, shared=shared)
    gv, gs = finish(cot)
    lval, lgv, lgs = LocalBackend().value_and_vjp(c, None, values, cot, names=NAMES, shared=shared)
    assert np.allclose(val, lval, atol=TOL)
    assert np.allclose(gv, lgv, atol=1e-4) and np.allclose(gs, lgs, atol=1e-4)
    gv2, gs2 = finish(cot)
    assert np.allclose(gv2, gv, atol=1e-12) and np.allclose(gs2, gs, atol=1e-12)


@pytest.mark.parametrize("translation", ["native", "cirq"])
def test_unitary_matches_cirq(translation: str) -> None:
    c = qc.UnifiedCircuit(3)
    c.add_gate("H", 0).add_gate("RY", 1, "a").add_gate("CNOT", [0, 2])
    c.add_gate("RZ", 2, 2 * qc.Parameter("b")).add_gate("CRX", [1, 0], "a")
    be = QsimBackend(translation=translation)
    shared = {"a": 0.7, "b": -1.3}
    u = be.unitary(c, shared=shared)
    want = cirq.unitary(cirq.resolve_parameters(c.to_cirq(), shared))
    np.testing.assert_allclose(u, want, atol=1e-6)
    with pytest.raises(BindingError):
        be.unitary(c, shared={"a": 0.7})  # "b" is missing


def test_the_state_adapter_uses_the_backends_unitary() -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "w").add_gate("CNOT", [0, 1])
    c.add_gate("RX", 1, "v")
    on_qsim = UnitaryAdapter.on_backend(c, QsimBackend(), ["w", "v"])
    on_local = UnitaryAdapter.on_backend(c, "local", ["w", "v"])
    w = np.array([0.4, -0.9])
    np.testing.assert_allclose(on_qsim.unitary(w), on_local.unitary(w), atol=1e-6)
    g = np.random.default_rng(2).normal(size=(4, 4)) + 1j * np.random.default_rng(3).normal(
        size=(4, 4)
    )
    np.testing.assert_allclose(on_qsim.vjp(w, g), on_local.vjp(w, g), atol=1e-5)
