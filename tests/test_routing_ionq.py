"""Routing and hard budgets against the IonQ API emulator (qstore-core + qstore-ionq)."""

from __future__ import annotations

import asyncio
import math
import warnings

import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")

import httpx

import qstore.core as qc
from qstore.core.routing import CostTracker, FallbackWarning
from qstore.ionq import IonQHardwareBackend, IonQSimulatorBackend
from qstore.ionq.targets import PRICES
from qstore.ionq.testing import IonQEmulator

HW = {"name": "ionq_hardware", "type": "qpu", "target": "qpu.aria-1", "use_for": "production"}
SIM = {"name": "ionq_simulator", "type": "cloud_simulator", "use_for": "validation"}


def _ghz() -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(3)
    c.add_gate("H", 0).add_gate("CNOT", [0, 1]).add_gate("CNOT", [1, 2])
    return c


def _backends(emulator: IonQEmulator) -> dict[str, object]:
    def transport() -> httpx.ASGITransport:
        return httpx.ASGITransport(app=emulator.app)

    common = {"api_key": "test", "base_url": "http://emulator/v0.4", "poll_interval": 0.001}
    return {
        "ionq_hardware@qpu.aria-1": IonQHardwareBackend(
            target="qpu.aria-1", online_estimates=False, transport=transport(), **common
        ),
        "ionq_simulator": IonQSimulatorBackend(transport=transport(), **common),
    }


def _router(emulator: IonQEmulator, entries: list[dict[str, str]], budget: float):
    tracker = CostTracker(budget, path=":memory:")
    backends = _backends(emulator)
    router = qc.SmartBackendRouter(
        {"backends": entries, "cost_budget": budget}, tracker=tracker, backends=backends
    )
    return router, backends


@pytest.mark.slow
def test_200_concurrent_jobs_never_exceed_the_budget_and_the_ledger_matches_the_emulator():
    emulator = IonQEmulator(queue_delay=0.0, seed=1)
    circuit, shots = _ghz(), 2000
    # The price of one job from IonQ's formula on the compiled native gates (independent of the
    # router): the budget fits exactly 37 of them, not 38.
    hw_probe = _backends(emulator)["ionq_hardware@qpu.aria-1"]
    native = hw_probe.compiler.compile(circuit)
    n1 = sum(1 for op in native.operations if len(op.qubits) == 1)
    n2 = sum(1 for op in native.operations if len(op.qubits) == 2)
    price = PRICES.price("qpu.aria-1")
    cost = max(price.minimum, shots * (price.price_1q * n1 + price.price_2q * n2))
    assert cost > price.minimum  # the gate prices, not the minimum, decide
    budget = 37 * cost + cost / 2
    router, backends = _router(emulator, [HW, SIM], budget)

    async def run_all():
        jobs = [router.execute(circuit, shots=shots, workload="production") for _ in range(200)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = asyncio.run(run_all())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    on_hw = [r for r in results if r.backend == "ionq_hardware"]
    on_sim = [r for r in results if r.backend == "ionq_simulator"]
    assert len(on_hw) == 37 and len(on_sim) == 163
    assert any(issubclass(w.category, FallbackWarning) for w in caught)

    # The emulator's own job list: what was really submitted and charged.
    remote = emulator.jobs()
    hw_jobs = {j["id"]: j for j in remote if j["backend"] == "qpu.aria-1"}
    sim_jobs = {j["id"]: j for j in remote if j["backend"] == "simulator"}
    assert len(hw_jobs) == 37 and len(sim_jobs) == 163
    charged = math.fsum(j["cost_usd"] for j in hw_jobs.values())
    assert charged <= budget
    assert charged == pytest.approx(37 * cost)

    entries = router.tracker.entries()
    hw_rows = [e for e in entries if e.backend == "ionq_hardware@qpu.aria-1"]
    sim_rows = [e for e in entries if e.backend == "ionq_simulator"]
    assert all(e.status == "settled" for e in entries)
    assert {i for e in hw_rows for i in e.job_ids} == set(hw_jobs)
    assert {i for e in sim_rows for i in e.job_ids} == set(sim_jobs)
    for e in hw_rows:
        (job_id,) = e.job_ids
        assert e.actual == pytest.approx(hw_jobs[job_id]["cost_usd"])
        assert e.estimated == pytest.approx(cost)
    assert router.tracker.spent == pytest.approx(charged)
    assert router.tracker.remaining == pytest.approx(budget - charged)
    for b in backends.values():
        b.close()


def test_without_a_fallback_the_jobs_that_do_not_fit_raise_budget_exceeded():
    emulator = IonQEmulator(queue_delay=0.0, seed=2)
    circuit = _ghz()
    router, backends = _router(emulator, [HW], 1.0)
    probe = backends["ionq_hardware@qpu.aria-1"]
    cost = probe.estimate_cost(circuit, shots=1000)
    router.tracker.budget = 3 * cost  # room for three jobs

    async def run_all():
        jobs = [router.execute(circuit, shots=1000, workload="production") for _ in range(8)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(run_all())
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, qc.BudgetExceededError)]
    assert len(ok) == 3 and len(refused) == 5
    err = refused[0]
    assert err.cost == pytest.approx(cost) and err.remaining < cost
    assert f"${cost:.2f}" in str(err)
    assert emulator.jobs_created == 3
    assert router.tracker.spent <= 3 * cost + 1e-9
    for b in backends.values():
        b.close()


def test_router_prices_hardware_from_the_ionq_price_table_and_skips_it_when_over_budget():
    emulator = IonQEmulator(queue_delay=0.0)
    circuit = _ghz()
    router, backends = _router(emulator, [HW, SIM], 1000.0)
    decision = router.route_circuit(circuit, 0.5, "balanced", workload="production", shots=1000)
    assert decision.backend == "ionq_hardware@qpu.aria-1" and not decision.fallback
    hw = backends["ionq_hardware@qpu.aria-1"]
    assert decision.estimated_cost == pytest.approx(hw.estimate_cost(circuit, shots=1000))
    assert decision.estimated_precision < 1.0  # shots and gate noise
    router.tracker.budget = decision.estimated_cost / 2
    decision = router.route_circuit(circuit, 0.5, "balanced", workload="production", shots=1000)
    assert decision.backend == "ionq_simulator" and decision.fallback
    assert "over budget" in str(decision)
    for b in backends.values():
        b.close()
