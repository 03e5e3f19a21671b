"""The lightning backends against independent references: the core's ``local`` engine, Cirq's
simulator and finite differences; the GPU and Kokkos variants where their packages are present."""

from __future__ import annotations

import cirq
import numpy as np
import pytest

import qstore.core as qc
from qstore.core.adapter import ExpectationAdapter, KeepsForward
from qstore.core.backends import Backend, plugin
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


def _fd_vjp(
    be: LightningBackend,
    c: qc.UnifiedCircuit,
    obs: list[qc.PauliSum],
    values: np.ndarray,
    shared: dict[str, float],
    cot: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Central finite differences of ``sum(cot * E)`` by every per-sample and shared value."""
    eps = 1e-6

    def loss_rows(v: np.ndarray, s: dict[str, float]) -> np.ndarray:
        return (be.expectation(c, obs, v, names=NAMES, shared=s) * cot).sum(axis=1)

    gv = np.zeros_like(values)
    for p in range(values.shape[1]):
        d = np.zeros_like(values)
        d[:, p] = eps
        gv[:, p] = (loss_rows(values + d, shared) - loss_rows(values - d, shared)) / (2 * eps)
    gs = np.zeros(len(shared))
    for k, name in enumerate(shared):
        up = {**shared, name: shared[name] + eps}
        down = {**shared, name: shared[name] - eps}
        gs[k] = (loss_rows(values, up).sum() - loss_rows(values, down).sum()) / (2 * eps)
    return gv, gs


@pytest.mark.parametrize("device_vjp", [True, False])
def test_value_and_vjp_fn_matches_finite_differences_and_local(device_vjp: bool) -> None:
    rng = np.random.default_rng(40 + device_vjp)
    c = random_circuit(3, 30, rng)
    obs = random_observables(3, rng, 2)
    values, shared = bindings(rng)
    cot = rng.normal(size=(3, 2))
    be = LightningBackend(device_vjp=device_vjp)
    val, finish = be.value_and_vjp_fn(c, obs, values, names=NAMES, shared=shared)
    gv, gs = finish(cot)
    lval, lgv, lgs = LocalBackend().value_and_vjp(c, obs, values, cot, names=NAMES, shared=shared)
    assert gv.shape == (3, len(NAMES)) and gs.shape == (len(shared),)
    assert np.allclose(val, lval, atol=1e-10)
    assert np.allclose(gv, lgv, atol=1e-6) and np.allclose(gs, lgs, atol=1e-6)
    fgv, fgs = _fd_vjp(be, c, obs, values, shared, cot)
    assert np.allclose(gv, fgv, atol=1e-6) and np.allclose(gs, fgs, atol=1e-6)
    # finish again, with another cotangent in between: the kept forward pass is unchanged
    cot2 = rng.normal(size=(3, 2))
    gv2, gs2 = finish(cot2)
    _, lgv2, lgs2 = LocalBackend().value_and_vjp(c, obs, values, cot2, names=NAMES, shared=shared)
    assert np.allclose(gv2, lgv2, atol=1e-6) and np.allclose(gs2, lgs2, atol=1e-6)
    gv3, gs3 = finish(cot)
    assert np.allclose(gv3, gv, atol=1e-12) and np.allclose(gs3, gs, atol=1e-12)
    with pytest.raises(BindingError, match="cotangent"):
        finish(np.ones((3, 5)))


@pytest.mark.parametrize("device_vjp", [True, False])
def test_finish_does_not_simulate_the_forward_pass_again(
    device_vjp: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pennylane as qml

    state_class = qml.device("lightning.qubit", wires=1).LightningStateVector
    forward_runs: list[int] = []
    original = state_class.get_final_state

    def counting(self: object, *args: object, **kwargs: object) -> object:
        forward_runs.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(state_class, "get_final_state", counting)
    rng = np.random.default_rng(7)
    c = random_circuit(3, 20, rng)
    values, shared = bindings(rng, 4)
    be = LightningBackend(device_vjp=device_vjp)
    _, finish = be.value_and_vjp_fn(c, None, values, names=NAMES, shared=shared)
    assert len(forward_runs) == 4  # one forward simulation per binding
    be.expectation(c, None, values, names=NAMES, shared=shared)  # other work in between
    forward_runs.clear()
    gv, _ = finish(np.ones((4, 3)))
    finish(np.ones((4, 3)))
    assert forward_runs == []
    _, lgv, _ = LocalBackend().value_and_vjp(
        c, None, values, np.ones((4, 3)), names=NAMES, shared=shared
    )
    assert np.allclose(gv, lgv, atol=1e-8)


def test_backend_is_a_plugin_kit_simulator_and_keeps_its_forward_pass(
    lightning: LightningBackend,
) -> None:
    assert isinstance(lightning, plugin.SimulatorCore)
    assert isinstance(lightning, plugin.GateGradient)
    assert isinstance(lightning, KeepsForward) and isinstance(lightning, Backend)
    extra = lightning.capabilities.extra
    assert "Lightning's VJP" in extra["gradient"] and extra["device_vjp"] is True
    assert "Jacobians" in LightningBackend(device_vjp=False).capabilities.extra["gradient"]
    # the framework adapter uses value_and_vjp_fn: forward once, backward from what it kept
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x").add_gate("CRX", [0, 1], "w")
    ad = ExpectationAdapter(c, lightning, input_names=["x"], weight_names=["w"])
    fwd = ad.forward(np.array([[0.3], [1.1]]), np.array([0.7]))
    assert fwd.vjp_fn is not None
    gx, gw = ad.vjp(fwd, np.ones((2, 2)))
    ref = ExpectationAdapter(c, "local", input_names=["x"], weight_names=["w"])
    rfwd = ref.forward(np.array([[0.3], [1.1]]), np.array([0.7]))
    rgx, rgw = ref.vjp(rfwd, np.ones((2, 2)))
    assert np.allclose(fwd.values, rfwd.values, atol=1e-10)
    assert np.allclose(gx, rgx, atol=1e-8) and np.allclose(gw, rgw, atol=1e-8)


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
