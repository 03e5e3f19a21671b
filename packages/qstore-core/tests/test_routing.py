"""Router, cost ledger, budgets and metered execution, with a small priced test backend."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import subprocess
import sys
import threading
from dataclasses import replace

import numpy as np
import pytest

import qstore.core as qc
from qstore.core.backends.base import CostModel
from qstore.core.backends.local import LocalBackend
from qstore.core.errors import BudgetExceededError, RoutingError, TrainingConfigError
from qstore.core.routing import CostTracker, MeteredBackend
from qstore.core.routing.costs import estimate_precision


class PricedBackend:
    """The local simulator sold by the shot: $0.01 per task plus $0.001 per shot, sampling only,
    with declared gate errors."""

    name = "priced"

    def __init__(self, shots: int = 100) -> None:
        self.local = LocalBackend(seed=3)
        self.shots = shots
        self.calls = 0

    @property
    def capabilities(self) -> qc.Capabilities:
        caps = self.local.capabilities
        return replace(
            caps,
            name="priced",
            exact=False,
            vjp=False,
            gradient_methods=("parameter_shift",),
            cost=CostModel(per_task=0.01, per_shot=0.001),
            extra={"error_1q": 1e-3, "error_2q": 2e-2},
        )

    def expectation(self, circuit, observables=None, values=None, **kw):
        self.calls += 1
        kw["shots"] = kw.get("shots") or self.shots
        return self.local.expectation(circuit, observables, values, **kw)

    def vjp(self, *args, **kw):
        raise AssertionError("the metered wrapper differentiates through expectation()")

    def sample(self, circuit, shots, values=None, **kw):
        self.calls += 1
        return self.local.sample(circuit, shots, values, **kw)

    async def execute(self, circuit, shots=1000, timeout=None):
        self.calls += 1
        return await self.local.execute(circuit, shots=shots, timeout=timeout)


def _circuit() -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(2)
    return c.add_gate("RY", 0, "x").add_gate("CNOT", [0, 1]).add_gate("RY", 1, "w")


def _router(budget: float | None, **kw) -> qc.SmartBackendRouter:
    entries = [
        {"name": "priced", "type": "qpu", "use_for": "production"},
        {"name": "local", "type": "simulator", "use_for": "development"},
    ]
    tracker = CostTracker(budget, path=":memory:")
    return qc.SmartBackendRouter(
        {"backends": entries, "cost_budget": budget},
        tracker=tracker,
        backends={"priced": kw.pop("priced", PricedBackend())},
        calibrate=False,
        **kw,
    )


# -- the ledger --------------------------------------------------------------------------------
def test_reserve_settle_release_and_remaining_follow_the_ledger():
    t = CostTracker(budget=10.0, path=":memory:")
    a = t.reserve("priced", 4.0, shots=100)
    b = t.reserve("priced", 5.0)
    assert t.remaining == pytest.approx(1.0)
    with pytest.raises(BudgetExceededError) as err:
        t.reserve("priced", 2.0)
    assert err.value.remaining == pytest.approx(1.0) and err.value.cost == 2.0
    assert "$2.00" in str(err.value) and "$1.00" in str(err.value)
    t.settle(a, 3.5, job_ids=["j1"], seconds=0.2)
    t.release(b, "not run")
    assert t.spent == pytest.approx(3.5) and t.reserved == 0.0
    assert t.remaining == pytest.approx(6.5)
    statuses = [e.status for e in t.entries()]
    assert statuses == ["settled", "released"]


def test_a_budget_that_fits_exactly_is_not_refused_by_float_rounding():
    t = CostTracker(budget=0.1 * 37, path=":memory:")
    held = [t.try_reserve("b", 0.1) for _ in range(40)]
    assert sum(r is not None for r in held) == 37


def test_concurrent_threads_cannot_oversubscribe_a_budget(tmp_path):
    t = CostTracker(budget=25.0, path=tmp_path / "ledger.sqlite")
    got: list[object] = []

    def worker() -> None:
        for _ in range(20):
            r = t.try_reserve("b", 1.0)
            if r is not None:
                got.append(r)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(got) == 25 and t.remaining == 0.0


_CHILD = """
import sys
from qstore.core.routing.ledger import CostTracker
t = CostTracker(budget=12.0, path=sys.argv[1], budget_id="shared")
n = sum(t.try_reserve("b", 1.0) is not None for _ in range(10))
print(n)
"""


@pytest.mark.slow
def test_processes_share_one_budget_through_the_ledger_file(tmp_path):
    path = str(tmp_path / "ledger.sqlite")
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, path], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    counts = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert sum(counts) == 12
    again = CostTracker(budget=12.0, path=path, budget_id="shared")  # a restart sees it all
    assert again.committed == pytest.approx(12.0) and again.remaining == 0.0
    other = CostTracker(budget=5.0, path=path, budget_id="other")  # another budget id is apart
    assert other.remaining == 5.0


def test_reports_as_table_dict_and_csv():
    t = CostTracker(budget=5.0, path=":memory:")
    t.settle(t.reserve("ionq_hardware", 1.25, shots=100), 1.25, job_ids=["a"], seconds=1.5)
    t.record("ionq_simulator", 0.0, job_ids=["b"], shots=10)
    text = str(t)
    assert "ionq_hardware" in text and "left $3.75" in text
    d = t.as_dict()
    assert d["spent"] == pytest.approx(1.25) and len(d["entries"]) == 2
    rows = list(csv.DictReader(io.StringIO(t.to_csv())))
    assert [r["job_ids"] for r in rows] == ["a", "b"]
    assert float(rows[0]["actual"]) == 1.25


def test_default_ledger_path_honours_the_data_directory_variables(monkeypatch, tmp_path):
    from qstore.core.routing import default_ledger_path

    monkeypatch.setenv("QSTORE_DATA_DIR", str(tmp_path / "d"))
    assert default_ledger_path() == tmp_path / "d" / "costs.sqlite"
    monkeypatch.delenv("QSTORE_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "x"))
    assert default_ledger_path() == tmp_path / "x" / "qstore" / "costs.sqlite"


# -- metered execution -------------------------------------------------------------------------
def test_metered_expectation_reserves_the_cost_model_price_and_refuses_before_running():
    priced = PricedBackend(shots=200)
    t = CostTracker(budget=1.0, path=":memory:")
    m = MeteredBackend(priced, t)
    c = _circuit()
    x = np.linspace(0, 1, 4).reshape(4, 1)
    m.expectation(c, None, x, names=["x"], shared={"w": 0.3})
    # 4 circuits (one per binding, <Z> needs one basis) x (0.01 + 0.001 * 200)
    assert t.spent == pytest.approx(4 * (0.01 + 0.001 * 200))
    assert m.totals().circuits == 4 and m.totals().shots == 800
    calls = priced.calls
    with pytest.raises(BudgetExceededError):
        m.expectation(c, None, np.zeros((8, 1)), names=["x"], shared={"w": 0.0})
    assert priced.calls == calls  # nothing was submitted
    assert t.spent <= 1.0


def test_metered_gradient_goes_through_priced_expectations_and_matches_parameter_shift():
    priced = PricedBackend()
    t = CostTracker(path=":memory:")
    m = MeteredBackend(priced, t, shots=None)
    c = _circuit()
    x = np.array([[0.2], [0.9]])
    m.shots = None
    local = LocalBackend()
    # exact reference: adjoint on the local simulator
    _, ref = local.vjp(c, None, x, np.ones((2, 2)), names=["x"], shared={"w": 0.4})
    m.shots = 200_000
    _, got = m.vjp(c, None, x, np.ones((2, 2)), names=["x"], shared={"w": 0.4})
    np.testing.assert_allclose(got, ref, atol=0.02)
    # the shifted circuits (two per parameter and binding) were priced and recorded
    n = sum(e.n_circuits for e in t.entries())
    assert n == m.totals().circuits >= 2 * 2 * 2
    assert t.spent == pytest.approx(n * (0.01 + 0.001 * 200_000))


# -- the router --------------------------------------------------------------------------------
def test_route_prices_and_rates_precision_from_declared_facts():
    router = _router(100.0)
    c = _circuit()
    d = router.route_circuit(c, 0.0, "cost", workload="production", shots=400, n_circuits=3)
    assert d.backend == "priced" and not d.fallback
    assert d.estimated_cost == pytest.approx(3 * (0.01 + 0.001 * 400))
    fidelity = (1 - 1e-3) ** 2 * (1 - 2e-2) ** 1
    assert d.estimated_precision == pytest.approx((1 - 1 / math.sqrt(400)) * fidelity)
    assert "priced" in str(d) and "local" in str(d)


def test_route_falls_back_when_over_budget_and_raises_without_fallback():
    router = _router(0.05)
    c = _circuit()
    d = router.route_circuit(c, 0.0, workload="production", shots=1000)
    assert d.backend == "local" and d.fallback
    skipped = next(a for a in d.candidates if a.label == "priced")
    assert not skipped.eligible and skipped.reasons[0].startswith("over budget")
    strict = qc.SmartBackendRouter(
        {"backends": [{"name": "priced", "use_for": "production"}], "cost_budget": 0.05},
        tracker=CostTracker(0.05, path=":memory:"),
        backends={"priced": PricedBackend()},
        calibrate=False,
    )
    with pytest.raises(BudgetExceededError) as err:
        strict.route_circuit(c, 0.0, workload="production", shots=1000)
    assert err.value.cost == pytest.approx(1.01) and err.value.remaining == pytest.approx(0.05)


def test_precision_requirement_skips_noisy_backends():
    router = _router(None)
    c = _circuit()
    d = router.route_circuit(c, 0.99, workload="production")  # priced: its 100 shots
    assert d.backend == "local"
    reason = next(a for a in d.candidates if a.label == "priced").reasons[0]
    assert reason.startswith("precision")


def test_a_gpu_entry_without_a_gpu_form_is_skipped_with_the_reason():
    router = qc.SmartBackendRouter(
        [
            {"name": "local", "device": "cuda:0", "use_for": "training"},
            {"name": "local", "use_for": "development"},
        ],
        tracker=CostTracker(path=":memory:"),
        calibrate=False,
    )
    d = router.route_circuit(_circuit(), workload="training")
    assert d.backend == "local" and d.fallback
    gpu = next(a for a in d.candidates if a.label == "local@cuda:0")
    assert not gpu.eligible and "GPU" in gpu.reasons[0]


def test_routing_uses_the_measured_throughput_of_the_calibration_cache(tmp_path):
    manager = qc.SimulationBackendManager(tmp_path / "cal.json", repetitions=1)
    router = qc.SmartBackendRouter(
        [{"name": "local"}], tracker=CostTracker(path=":memory:"), manager=manager
    )
    c = _circuit()
    d = router.route_circuit(c, n_circuits=10)
    measured = qc.backends.selection.calibration_entries(tmp_path / "cal.json")
    (entry,) = measured.values()
    per_circuit = entry["seconds"] / 8  # the reference batch has 8 rows
    assert d.estimated_seconds == pytest.approx(10 * per_circuit)


def test_recommendations_for_every_workload_type():
    router = _router(100.0)
    for workload in ("development", "training", "validation", "production", "research"):
        recs = router.get_backend_recommendations(workload, n_qubits=3)
        assert len(recs) >= 1 and workload in str(recs)
    assert router.get_backend_recommendations("production", n_qubits=3)[0].backend == "priced"
    research = router.get_backend_recommendations("research", n_qubits=3)
    assert research.backends == ("local",)  # a noisy backend cannot give 0.99
    with pytest.raises(TrainingConfigError):
        router.get_backend_recommendations("fun")


def test_router_execute_falls_back_when_the_reservation_fails():
    priced = PricedBackend()
    router = _router(1.0, priced=priced)
    c = qc.UnifiedCircuit(1).add_gate("X", 0)

    async def go():
        return [await router.execute(c, shots=500, workload="production") for _ in range(3)]

    with pytest.warns(qc.routing.FallbackWarning):
        results = asyncio.run(go())
    # $0.51 per job: one fits in $1.00, the others run on the free simulator
    assert len(results) == 3 and priced.calls == 1  # one on the priced backend, two fell back
    labels = [e.backend for e in router.tracker.entries()]
    assert labels == ["priced"]
    assert router.tracker.spent == pytest.approx(0.51)


def test_estimate_precision_of_exact_and_sampled_runs():
    caps = LocalBackend().capabilities
    c = _circuit()
    assert estimate_precision(caps, c, None)[0] == 1.0
    assert estimate_precision(caps, c, 10_000)[0] == pytest.approx(0.99)


def test_route_refuses_a_bad_precision_or_priority():
    router = _router(None)
    with pytest.raises(RoutingError):
        router.route_circuit(_circuit(), precision_required=2.0)
    with pytest.raises(TrainingConfigError):
        router.route_circuit(_circuit(), priority="fastest")
