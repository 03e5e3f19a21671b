"""IonQBackend on the in-process emulator, checked against qstore-core's local simulator."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest

import qstore.core as qc
from qstore.core.backends.local import LocalBackend
from qstore.core.testing import INPUTS, random_bindings, random_circuit, random_observables
from qstore.ionq import (
    PRICES,
    IonQBackend,
    IonQConfigError,
    IonQHardwareBackend,
    IonQSimulatorBackend,
    IonQTimeoutError,
    ionq_key_to_bits,
)
from qstore.ionq.testing import IonQEmulator

MakeBackend = Callable[..., IonQBackend]


def layer_circuit(n: int) -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(n)
    for q in range(n):
        c.add_gate("RY", q, f"x_{q}")
    for q in range(n - 1):
        c.add_gate("CNOT", [q, q + 1])
    c.add_parameterized_layer("RX", "w")
    c.add_gate("CRZ", [0, n - 1], 2 * qc.Parameter("v"))
    return c


def test_bit_order_with_one_x(make_backend: MakeBackend) -> None:
    backend = make_backend()
    for q, want in ((0, "100"), (1, "010"), (2, "001")):
        circuit = qc.UnifiedCircuit(3).add_gate("X", q)
        result = asyncio.run(backend.execute(circuit, shots=50))
        assert result.counts == {want: 50}
        assert result.probabilities == {want: 1.0}
        assert result.expectation_z(q) == -1.0
        assert backend.sample(circuit, 4).tolist() == [[int(want, 2)] * 4]
    assert ionq_key_to_bits(1, 2) == "10" and ionq_key_to_bits(2, 2) == "01"


@pytest.mark.parametrize("native", [True, False])
def test_expectations_match_the_local_simulator(make_backend: MakeBackend, native: bool) -> None:
    rng = np.random.default_rng(4)
    backend = make_backend(use_native_gates=native)
    local = LocalBackend()
    for _ in range(3):
        circuit = random_circuit(3, None, rng)
        obs = random_observables(3, rng)
        values, shared = random_bindings(rng, batch=4)
        got = backend.expectation(circuit, obs, values, names=INPUTS, shared=shared)
        want = local.expectation(circuit, obs, values, names=INPUTS, shared=shared)
        assert np.allclose(got, want, atol=1e-9)


def test_a_minibatch_is_one_job(make_backend: MakeBackend, emulator: IonQEmulator) -> None:
    backend = make_backend()
    c = layer_circuit(3)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 3))
    shared = {f"w_{q}": 0.1 * q for q in range(3)} | {"v": 0.4}
    names = [f"x_{q}" for q in range(3)]
    backend.expectation(c, None, x, names=names, shared=shared)
    assert emulator.jobs_created == 1
    job = emulator.jobs()[0]
    assert job["type"] == "ionq.multi-circuit.v1" and len(job["children"]) == 8
    # all shifted circuits of the gradient of the whole batch: one job too
    gv, gs = backend.vjp(c, None, x, np.ones((8, 3)), names=names, shared=shared)
    assert emulator.jobs_created == 2
    assert len(emulator.jobs()[1]["children"]) > 8 * 2 * 3
    rv, rs = LocalBackend().vjp(c, None, x, np.ones((8, 3)), names=names, shared=shared)
    assert np.allclose(gv, rv, atol=1e-9) and np.allclose(gs, rs, atol=1e-9)


def test_jobs_are_split_only_by_the_circuit_limit(
    make_backend: MakeBackend, emulator: IonQEmulator
) -> None:
    backend = make_backend(max_circuits_per_job=3)
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, "t")
    t = np.linspace(0, math.pi, 8)[:, None]
    e = backend.expectation(c, qc.Z(0), t)
    assert emulator.jobs_created == 3
    assert [len(j.get("children", [None])) for j in emulator.jobs()] == [3, 3, 2]
    assert np.allclose(e[:, 0], np.cos(t[:, 0]), atol=1e-12)


def test_shots_are_sampled_with_the_seed(make_backend: MakeBackend) -> None:
    backend = make_backend()
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "t").add_gate("CNOT", [0, 1])
    vals = [[0.7], [2.0]]
    obs = [qc.Z(0), qc.Z(0) * qc.Z(1), qc.X(1)]
    exact = LocalBackend().expectation(c, obs, vals)
    a = backend.expectation(c, obs, vals, shots=4000, seed=3)
    b = backend.expectation(c, obs, vals, shots=4000, seed=3)
    assert np.array_equal(a, b)
    assert np.max(np.abs(a - exact)) < 5 / math.sqrt(4000)
    assert not np.allclose(a, exact, atol=1e-6)


def test_noisy_simulator_results_are_estimates(make_backend: MakeBackend) -> None:
    backend = make_backend(noise_model="aria-1", shots=2000, seed=5)
    assert not backend.capabilities.exact and backend.capabilities.max_qubits == 25
    c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
    zz = backend.expectation(c, qc.Z(0) * qc.Z(1))[0, 0]
    assert 0.9 < zz < 1.0  # correlated, but not perfectly: noise and read-out errors


def test_cost_is_known_before_submission_and_recorded_after(
    make_backend: MakeBackend, emulator: IonQEmulator
) -> None:
    backend = make_backend(target="qpu.aria-1", shots=500)
    assert backend.name == "ionq_hardware"
    c = qc.UnifiedCircuit(3).add_gate("H", 0).add_gate("CNOT", [0, 1]).add_gate("CNOT", [1, 2])
    native = backend.compiler.compile_with_frames(c)
    want = PRICES.estimate("qpu.aria-1", 500, native.n_1q, native.n_2q)
    assert backend.estimate_cost(c, shots=500) == pytest.approx(want)
    result = asyncio.run(backend.execute(c, shots=500))
    assert result.counts is not None and sum(result.counts.values()) == 500
    assert set(result.counts) <= {"000", "111"} | {f"{i:03b}" for i in range(8)}
    assert result.counts.get("000", 0) + result.counts.get("111", 0) > 400
    assert result.metadata["estimated_cost_usd"] == pytest.approx(want)
    assert result.metadata["cost_usd"] == emulator.jobs()[0]["cost_usd"] > 0
    assert backend.total_cost == pytest.approx(result.metadata["cost_usd"])
    capped = make_backend(target="qpu.aria-1", shots=500, max_cost_per_job=0.5)
    with pytest.raises(IonQConfigError, match="max_cost_per_job"):
        capped.expectation(c)
    assert emulator.jobs_created == 1  # refused before submission
    sim = make_backend()
    assert sim.estimate_cost(c) == 0.0 and sim.capabilities.cost.is_free


def test_capabilities_and_queue_estimate(emulator: IonQEmulator, make_backend: MakeBackend) -> None:
    emulator.queue_delay = 2.5
    backend = make_backend(target="qpu.forte-1")
    caps = backend.capabilities
    assert caps.max_qubits == 36 and caps.native_gates == ("GPI", "GPI2", "MS", "ZZ")
    assert caps.gradient_methods == ("parameter_shift",) and caps.remote and not caps.exact
    assert caps.queue_seconds == 0.0
    backend.refresh()
    assert backend.capabilities.queue_seconds == 2.5
    emulator.backend_status["qpu.forte-1"] = "unavailable"
    backend.refresh()
    assert not backend.capabilities.available and "unavailable" in backend.capabilities.reason


def test_sync_methods_work_inside_a_running_event_loop(make_backend: MakeBackend) -> None:
    backend = make_backend()
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, "t")

    async def inside() -> float:
        sync = backend.expectation(c, qc.Z(0), [[0.5]])[0, 0]
        result = await backend.execute(c, shots=None, values={"t": 0.5})
        assert result.exact_expectations is not None
        assert math.isclose(float(result.exact_expectations[0]), sync, abs_tol=1e-12)
        return float(sync)

    assert math.isclose(asyncio.run(inside()), math.cos(0.5), abs_tol=1e-12)


def test_cancelling_or_timing_out_a_call_cancels_its_job(
    make_backend: MakeBackend, emulator: IonQEmulator
) -> None:
    emulator.queue_delay = 5.0
    backend = make_backend()
    c = qc.UnifiedCircuit(1).add_gate("H", 0)

    async def caller_gives_up() -> None:
        await asyncio.wait_for(backend.execute(c, shots=10), timeout=0.3)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(caller_gives_up())
    with pytest.raises(IonQTimeoutError, match="canceled"):
        asyncio.run(backend.execute(c, shots=10, timeout=0.3))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(j["status"] != "canceled" for j in emulator.jobs()):
        time.sleep(0.01)
    assert [j["status"] for j in emulator.jobs()] == ["canceled", "canceled"]


def test_execute_binds_missing_symbols_to_zero_with_a_warning(make_backend: MakeBackend) -> None:
    backend = make_backend()
    c = qc.UnifiedCircuit(1).add_gate("RX", 0, "a")
    with pytest.warns(UserWarning, match="'a'"):
        result = asyncio.run(backend.execute(c, shots=10))
    assert result.counts == {"0": 10}


def test_registered_names_and_core_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IONQ_API_KEY", "k")
    monkeypatch.setenv("IONQ_API_URL", "http://127.0.0.1:9/v0.4")
    sim = qc.backends.get("ionq_simulator")
    hw = qc.backends.get("ionq_hardware", target="qpu.forte-1")
    assert isinstance(sim, IonQSimulatorBackend) and sim.target == "simulator"
    assert isinstance(hw, IonQHardwareBackend) and hw.target == "qpu.forte-1"
    assert sim.client.base_url == "http://127.0.0.1:9/v0.4"
    assert qc.backends.IonQBackend is IonQBackend
    assert {"ionq_simulator", "ionq_hardware"} <= set(qc.backends.available())
    monkeypatch.delenv("IONQ_API_KEY")
    info = qc.backends.info("ionq_simulator", refresh=True)
    assert not info.available and "IONQ_API_KEY" in info.reason


def test_bad_options_are_refused_early() -> None:
    with pytest.raises(IonQConfigError, match="simulator"):
        IonQBackend(api_key="k", target="qpu.aria-1", noise_model="aria-1")
    with pytest.raises(IonQConfigError, match="noise_model"):
        IonQBackend(api_key="k", noise_model="bogus")
    with pytest.raises(IonQConfigError, match="target"):
        IonQBackend(api_key="k", target="qpu.nowhere")
    with pytest.raises(IonQConfigError, match="10000"):
        IonQHardwareBackend(api_key="k", shots=20_000)
    with pytest.raises(IonQConfigError, match="ionq_simulator"):
        IonQHardwareBackend(api_key="k", target="simulator")
    with pytest.raises(IonQConfigError, match="http"):
        IonQBackend(api_key="k", base_url="ftp://x")


def test_errors_from_the_api_surface_as_ionq_errors(emulator: IonQEmulator) -> None:
    from qstore.ionq import IonQAuthenticationError

    backend = IonQBackend(
        api_key=None, base_url="http://e/v0.4", transport=httpx.ASGITransport(emulator.app)
    )
    if backend.client.has_api_key:  # IONQ_API_KEY set in the environment
        pytest.skip("IONQ_API_KEY is set")
    with pytest.raises(IonQAuthenticationError, match="IONQ_API_KEY"):
        backend.expectation(qc.UnifiedCircuit(1).add_gate("H", 0))
    backend.close()
