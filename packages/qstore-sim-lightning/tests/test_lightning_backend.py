"""The lightning backends against independent references: the core's ``local`` engine, Cirq's
simulator and finite differences; the GPU and Kokkos variants where their packages are present."""

from __future__ import annotations

import cirq
import numpy as np
import pytest

import qstore.core as qc
from qstore.core.backends.local import LocalBackend
from qstore.core.errors import BindingError, CapabilityError, MissingDependencyError, ShotsError
from qstore.core.testing import INPUTS, random_circuit, random_observables
from qstore.core.testing import random_bindings as bindings
from qstore.sim.lightning import LightningBackend, LightningGPUBackend, LightningKokkosBackend

NAMES = list(INPUTS)


@pytest.fixture(scope="module")
def lightning() -> LightningBackend:
    return LightningBackend()


@pytest.mark.parametrize("seed", range(3))
def test_states_match_local_exactly_including_global_phase(
    lightning: LightningBackend, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    c = random_circuit(3, 40, rng)
    values, shared = bindings(rng)
    got = lightning.state(c, values, names=NAMES, shared=shared)
    want = LocalBackend().state(c, values, names=NAMES, shared=shared)
    assert np.allclose(got, want, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_expectations_of_random_pauli_sums_match_local_and_cirq(
    lightning: LightningBackend, seed: int
) -> None:
    rng = np.random.default_rng(10 + seed)
    n = 4
    c = random_circuit(n, 30, rng)
    obs = random_observables(n, rng)
    values, shared = bindings(rng)
    got = lightning.expectation(c, obs, values, names=NAMES, shared=shared)
    want = LocalBackend().expectation(c, obs, values, names=NAMES, shared=shared)
    assert got.shape == (3, 3)
    assert np.allclose(got, want, atol=1e-10)
    qubits = cirq.LineQubit.range(n)
    bound = c.bind({**dict(zip(NAMES, values[0], strict=True)), **shared}).to_cirq()
    psi = cirq.Simulator(dtype=np.complex128).simulate(bound, qubit_order=qubits).final_state_vector
    for o, ob in enumerate(obs):
        assert np.isclose(np.vdot(psi, ob.matrix(n) @ psi).real, got[0, o], atol=1e-8)


@pytest.mark.parametrize(("device_vjp", "seed"), [(True, 0), (True, 1), (False, 2)])
def test_adjoint_vjp_matches_local_adjoint(device_vjp: bool, seed: int) -> None:
    rng = np.random.default_rng(20 + seed)
    c = random_circuit(3, 30, rng)
    obs = random_observables(3, rng, 2)
    values, shared = bindings(rng)
    cot = rng.normal(size=(3, 2))
    be = LightningBackend(device_vjp=device_vjp)
    val, gv, gs = be.value_and_vjp(c, obs, values, cot, names=NAMES, shared=shared)
    lval, lgv, lgs = LocalBackend().value_and_vjp(c, obs, values, cot, names=NAMES, shared=shared)
    assert np.allclose(val, lval, atol=1e-10)
    assert np.allclose(gv, lgv, atol=1e-8)
    assert np.allclose(gs, lgs, atol=1e-8)
    gv2, gs2 = be.vjp(c, obs, values, cot, names=NAMES, shared=shared)
    assert np.allclose(gv2, gv) and np.allclose(gs2, gs)


def test_vjp_matches_finite_differences(lightning: LightningBackend) -> None:
    c = qc.UnifiedCircuit(2)
    c.add_gate("RY", 0, "a").add_gate("CRX", [0, 1], "b").add_gate("MS", [1, 0], [0.3, "a", "b"])
    c.add_gate("U3", 1, ["a", 0.2, "b"])
    values = np.array([[0.4, -1.1], [1.3, 0.2]])
    cot = np.array([[1.0], [-0.5]])
    gv, gs = lightning.vjp(c, qc.X(1), values, cot, names=["a", "b"])
    assert gs.shape == (0,)
    eps = 1e-6
    for p in range(2):
        d = np.zeros_like(values)
        d[:, p] = eps
        up = lightning.expectation(c, qc.X(1), values + d, names=["a", "b"])
        down = lightning.expectation(c, qc.X(1), values - d, names=["a", "b"])
        fd = ((up - down) / (2 * eps) * cot).sum(axis=1)
        assert np.allclose(gv[:, p], fd, atol=1e-6)


def test_observables_with_only_a_constant_and_fixed_circuits(lightning: LightningBackend) -> None:
    c = qc.UnifiedCircuit(2).add_gate("H", 0)
    got = lightning.expectation(c, [qc.X(0), 0.5 * qc.observables.identity()])
    assert np.allclose(got, [[1.0, 0.5]])
    val, gv, gs = lightning.value_and_vjp(c, qc.X(0), None, [[1.0]])
    assert np.allclose(val, [[1.0]]) and gv.shape == (1, 0) and gs.shape == (0,)


def test_seeded_shot_sampling_is_reproducible_and_unbiased(lightning: LightningBackend) -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "t").add_gate("CNOT", [0, 1]).add_gate("H", 1)
    values = np.array([[0.3], [2.0]])
    obs = [qc.Z(0), qc.X(1), qc.Y(0) * qc.Z(1) + 0.5]
    a = lightning.expectation(c, obs, values, shots=4000, seed=7)
    assert np.array_equal(a, lightning.expectation(c, obs, values, shots=4000, seed=7))
    assert np.allclose(a, LocalBackend().expectation(c, obs, values), atol=0.06)
    s = lightning.sample(c, 100, values, seed=3)
    assert s.shape == (2, 100) and np.array_equal(s, lightning.sample(c, 100, values, seed=3))
    assert lightning.counts(qc.UnifiedCircuit(3).add_gate("X", 0), 5, seed=0) == [{"100": 5}]


def test_template_is_lowered_once_and_reused(lightning: LightningBackend) -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x").add_gate("CNOT", [0, 1])
    lightning.expectation(c, None, [[0.1]])
    keys = [k for k in c._compiled if k[1] == "qstore.sim.lightning"]
    assert len(keys) == 1
    tpl = c._compiled[keys[0]]
    lightning.expectation(c, None, [[0.7], [0.2]])
    assert c._compiled[keys[0]] is tpl


def test_complex64_dtype_is_close_to_local() -> None:
    rng = np.random.default_rng(5)
    c = random_circuit(3, 25, rng)
    values, shared = bindings(rng)
    got = LightningBackend(dtype="complex64").expectation(
        c, None, values, names=NAMES, shared=shared
    )
    want = LocalBackend().expectation(c, None, values, names=NAMES, shared=shared)
    assert np.allclose(got, want, atol=1e-5)


def test_errors_name_the_problem(lightning: LightningBackend) -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x")
    with pytest.raises(BindingError, match="cotangent"):
        lightning.vjp(c, None, [[0.1]], np.ones((1, 3)))
    with pytest.raises(ShotsError, match="shots"):
        lightning.expectation(c, None, [[0.1]], shots=-1)
    with pytest.raises(qc.errors.BackendError, match="dtype"):
        LightningBackend(dtype="float16")
    with pytest.raises(qc.errors.BackendError, match="wires"):
        LightningBackend(device_options={"wires": 3})


def test_capabilities_are_declared_and_registered() -> None:
    caps = qc.backends.get("lightning").capabilities
    assert caps.available and caps.exact and caps.vjp and not caps.gpu
    assert caps.gradient_methods[0] == "adjoint" and caps.max_qubits >= 20
    assert {"lightning", "lightning.gpu", "lightning.kokkos"} <= set(qc.backends.available())


@pytest.mark.parametrize(
    ("cls", "package"),
    [
        (LightningGPUBackend, "pennylane-lightning-gpu"),
        (LightningKokkosBackend, "pennylane-lightning-kokkos"),
    ],
)
def test_accelerated_variants_run_where_present_and_say_what_is_missing(
    cls: type[LightningBackend], package: str
) -> None:
    backend = qc.backends.get(cls.name)
    caps = backend.capabilities
    assert caps.gpu == (cls is LightningGPUBackend)
    info = qc.backends.info(cls.name)
    assert info.available == caps.available
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x").add_gate("CNOT", [0, 1])
    if not caps.available:
        assert package in caps.reason and package in info.reason
        with pytest.raises((MissingDependencyError, CapabilityError), match=package):
            backend.expectation(c, None, [[0.3]])
        pytest.skip(f"{cls.name} cannot run here: {caps.reason}")
    values = np.array([[0.3], [1.2]])
    want = LocalBackend().expectation(c, None, values)
    assert np.allclose(backend.expectation(c, None, values), want, atol=1e-6)
    _, gv, _ = backend.value_and_vjp(c, None, values, np.ones((2, 2)))
    _, lgv, _ = LocalBackend().value_and_vjp(c, None, values, np.ones((2, 2)))
    assert np.allclose(gv, lgv, atol=1e-6)


def test_a_device_that_cannot_start_reports_why(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(LightningBackend):
        name = device_name = "lightning.broken"
        package = "pennylane-lightning-broken"
        gpu = True

    import pennylane as qml

    def no_gpu(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no CUDA-capable device is detected")

    monkeypatch.setattr(Broken, "_probed", {})
    monkeypatch.setattr(
        "importlib.metadata.entry_points",
        lambda group: [type("EP", (), {"name": "lightning.broken"})()],
    )
    monkeypatch.setattr(qml, "device", no_gpu)
    caps = Broken().capabilities
    assert not caps.available and "no CUDA-capable device" in caps.reason and caps.gpu
    with pytest.raises(CapabilityError, match="cannot start"):
        Broken().expectation(qc.UnifiedCircuit(1).add_gate("H", 0))
