"""The API emulator over raw HTTP: authentication, lifecycle, validation, results, noise."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

import qstore.core as qc
from qstore.ionq import PRICES
from qstore.ionq.testing import NOISE_PARAMETERS, Faults, IonQEmulator, create_app

KEY = "sk-test-emulator"
Job = Callable[..., dict[str, Any]]


def call(emulator: IonQEmulator, *requests: tuple[str, str, Any]) -> list[httpx.Response]:
    """Send requests in order (``(method, path, json)``) in one event loop; ``WAIT`` lets
    queued jobs finish, ``{id}`` in a path is the id of the last job created."""

    async def go() -> list[httpx.Response]:
        out = []
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(emulator.app),
            base_url="http://emu/v0.4",
            headers={"Authorization": f"apiKey {KEY}"},
        ) as http:
            last = ""
            for method, path, body in requests:
                if method == "WAIT":
                    await emulator.drain()
                    continue
                resp = await http.request(method, path.replace("{id}", last), json=body)
                if method == "POST" and resp.status_code == 200:
                    last = resp.json()["id"]
                out.append(resp)
        return out

    return asyncio.run(go())


def test_authentication_is_required_except_for_backends() -> None:
    emulator = IonQEmulator(api_keys=["good"])

    async def go() -> list[int]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(emulator.app), base_url="http://emu/v0.4"
        ) as http:
            codes = [(await http.get("/backends")).status_code]
            codes.append((await http.get("/jobs")).status_code)
            codes.append(
                (await http.get("/jobs", headers={"Authorization": "apiKey bad"})).status_code
            )
            ok = await http.get("/jobs", headers={"Authorization": "apiKey good"})
            codes.append(ok.status_code)
            body = (await http.get("/jobs")).json()
            assert body["statusCode"] == 401 and body["error"] == "Unauthorized"
            return codes

    assert asyncio.run(go()) == [200, 401, 401, 200]


def test_job_lifecycle_with_queue_delay(bell_job: Job) -> None:
    emulator = IonQEmulator(queue_delay=0.2)

    async def go() -> list[str]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(emulator.app),
            base_url="http://emu/v0.4",
            headers={"Authorization": f"apiKey {KEY}"},
        ) as http:
            job_id = (await http.post("/jobs", json=bell_job())).json()["id"]
            seen = [(await http.get(f"/jobs/{job_id}")).json()["status"]]
            assert (await http.get(f"/jobs/{job_id}/results/probabilities")).status_code == 409
            await emulator.drain()
            job = (await http.get(f"/jobs/{job_id}")).json()
            seen.append(job["status"])
            assert job["results"]["probabilities"]["url"].endswith("/results/probabilities")
            assert job["stats"]["gate_counts"] == {"1q": 1, "2q": 1}
            assert job["cost_usd"] == 0.0
            return seen

    assert asyncio.run(go()) == ["submitted", "completed"]


@pytest.mark.parametrize(("qubit", "key"), [(0, "1"), (1, "2"), (2, "4")])
def test_histogram_keys_are_little_endian(bell_job: Job, qubit: int, key: str) -> None:
    body = bell_job()
    body["input"] = {"gateset": "qis", "qubits": 3, "circuit": [{"gate": "x", "target": qubit}]}
    _, res = call(
        IonQEmulator(),
        ("POST", "/jobs", body),
        ("WAIT", "", None),
        ("GET", "/jobs/{id}/results/probabilities", None),
    )
    assert res.json() == {key: 1.0}


def test_multi_circuit_job_has_children_with_their_own_histograms(bell_job: Job) -> None:
    circuits = [
        {"name": "a", "circuit": [{"gate": "x", "target": 0}]},
        {"name": "b", "circuit": [{"gate": "x", "target": 1}]},
        {"name": "c", "circuit": [{"gate": "ry", "target": 0, "rotation": math.pi / 3}]},
    ]
    body = bell_job(type="ionq.multi-circuit.v1")
    body["input"] = {"gateset": "qis", "qubits": 2, "circuits": circuits}
    emulator = IonQEmulator()
    _, job, res = call(
        emulator,
        ("POST", "/jobs", body),
        ("WAIT", "", None),
        ("GET", "/jobs/{id}", None),
        ("GET", "/jobs/{id}/results/probabilities", None),
    )
    children = job.json()["children"]
    hists = res.json()
    assert list(hists) == children
    assert hists[children[0]] == {"1": 1.0} and hists[children[1]] == {"2": 1.0}
    p1 = math.sin(math.pi / 6) ** 2
    assert hists[children[2]]["1"] == pytest.approx(p1, abs=1e-12)
    (child,) = call(emulator, ("GET", f"/jobs/{children[2]}/results/probabilities", None))
    assert child.json() == hists[children[2]]  # completed jobs outlive their event loop
    assert emulator.jobs_created == 1


def test_native_jobs_run_and_validate_their_gates(bell_job: Job) -> None:
    c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
    good = bell_job(backend="qpu.forte-1")
    good["input"] = c.to_ionq_json(gateset="native", target="qpu.forte-1")
    assert any(g["gate"] == "zz" for g in good["input"]["circuit"])
    aria = dict(good, backend="qpu.aria-1")
    mixed = bell_job()
    mixed["input"] = {"gateset": "native", "qubits": 1, "circuit": [{"gate": "h", "target": 0}]}
    responses = call(
        IonQEmulator(), ("POST", "/jobs", good), ("POST", "/jobs", aria), ("POST", "/jobs", mixed)
    )
    assert [r.status_code for r in responses] == [200, 400, 400]
    assert "ZZ" in responses[1].json()["message"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"backend": "qpu.nowhere"}, "backend"),
        ({"shots": 20_000, "backend": "qpu.aria-1"}, "shots"),
        ({"noise": {"model": "aria-1"}, "backend": "qpu.aria-1"}, "simulator"),
        ({"noise": {"model": "garbage"}}, "noise"),
        ({"metadata": {f"k{i}": "v" for i in range(11)}}, "metadata"),
        ({"type": "ionq.unknown.v9"}, "type"),
    ],
)
def test_invalid_jobs_are_rejected_with_400(
    bell_job: Job, change: dict[str, Any], needle: str
) -> None:
    (resp,) = call(IonQEmulator(), ("POST", "/jobs", bell_job(**change)))
    assert resp.status_code == 400
    assert needle in resp.json()["message"]


def test_too_many_qubits_and_circuits_are_rejected(bell_job: Job) -> None:
    wide = bell_job(backend="qpu.aria-1")
    wide["input"] = {"gateset": "qis", "qubits": 26, "circuit": []}
    many = bell_job(type="ionq.multi-circuit.v1")
    many["input"] = {"gateset": "qis", "qubits": 1, "circuits": [{"circuit": []}] * 3}
    responses = call(IonQEmulator(max_circuits=2), ("POST", "/jobs", wide), ("POST", "/jobs", many))
    assert [r.status_code for r in responses] == [400, 400]


def test_noise_model_is_the_documented_approximation(bell_job: Job) -> None:
    """GHZ on 3 qubits with aria-1: depolarised by the gate counts, then read-out flips."""
    body = bell_job(shots=200_000, noise={"model": "aria-1", "seed": 5})
    body["input"] = {
        "gateset": "qis",
        "qubits": 3,
        "circuit": [
            {"gate": "h", "target": 0},
            {"gate": "cnot", "control": 0, "target": 1},
            {"gate": "cnot", "control": 1, "target": 2},
        ],
    }
    emulator = IonQEmulator()
    _, res, _, res2 = call(
        emulator,
        ("POST", "/jobs", body),
        ("WAIT", "", None),
        ("GET", "/jobs/{id}/results/probabilities", None),
        ("POST", "/jobs", body),
        ("WAIT", "", None),
        ("GET", "/jobs/{id}/results/probabilities", None),
    )
    hist = res.json()
    e1, e2, ro = NOISE_PARAMETERS["aria-1"]
    fid = (1 - e1) * (1 - e2) ** 2
    ideal = np.zeros(8)
    ideal[[0, 7]] = 0.5
    p = fid * ideal + (1 - fid) / 8
    t = p.reshape(2, 2, 2)
    for axis in range(3):
        t = (1 - ro) * t + ro * np.flip(t, axis)
    expected = t.reshape(-1)
    got = np.zeros(8)
    for k, v in hist.items():
        got[int(k)] = v  # GHZ-type distributions are symmetric under bit reversal
    assert abs(sum(hist.values()) - 1) < 1e-12
    assert np.max(np.abs(got - expected)) < 5 * math.sqrt(0.5 / 200_000)
    assert got[0] + got[7] < 0.99  # noisy, unlike the ideal simulator
    assert res2.json() == hist  # the job's noise seed makes it reproducible


def test_qpu_jobs_report_counts_and_cost(bell_job: Job) -> None:
    _, job, res = call(
        IonQEmulator(seed=2),
        ("POST", "/jobs", bell_job(backend="qpu.aria-1", shots=1000)),
        ("WAIT", "", None),
        ("GET", "/jobs/{id}", None),
        ("GET", "/jobs/{id}/results/probabilities", None),
    )
    counts = {k: v * 1000 for k, v in res.json().items()}
    assert all(abs(c - round(c)) < 1e-9 for c in counts.values())
    assert job.json()["cost_usd"] == PRICES.estimate("qpu.aria-1", 1000, 1, 1)


def test_backends_and_estimate_endpoints(bell_job: Job) -> None:
    emulator = IonQEmulator(queue_delay=1.5)
    emulator.backend_status["qpu.aria-2"] = "unavailable"
    backends, est = call(
        emulator,
        ("GET", "/backends", None),
        (
            "GET",
            "/jobs/estimate?type=ionq.circuit.v1&backend=qpu.forte-1&1q_gates=40&2q_gates=10"
            "&qubits=4&shots=500",
            None,
        ),
    )
    rows = {r["backend"]: r for r in backends.json()}
    assert rows["qpu.aria-2"]["status"] == "unavailable"
    assert rows["qpu.forte-1"]["qubits"] == 36 and rows["simulator"]["qubits"] == 29
    assert rows["qpu.aria-1"]["average_queue_time"] == 1500
    assert est.json()["estimated_cost"] == pytest.approx(
        PRICES.estimate("qpu.forte-1", 500, 40, 10)
    )
    assert est.json()["current_predicted_queue_time"] == 1500


def test_faults_are_injected_at_the_configured_rate() -> None:
    emulator = IonQEmulator(seed=1, faults=Faults(rate_limit=0.3, retry_after=2.0))
    responses = call(emulator, *[("GET", "/backends", None)] * 400)
    limited = [r for r in responses if r.status_code == 429]
    assert 80 < len(limited) < 160
    assert all(r.headers["retry-after"] == "2" for r in limited)
    assert Faults.uniform(0.2).job_failure == pytest.approx(0.04)
    with pytest.raises(ValueError, match="probability"):
        Faults(server_error=1.5)


def test_create_app_exposes_the_emulator() -> None:
    app = create_app(queue_delay=0.0, seed=3)
    assert isinstance(app.state.emulator, IonQEmulator)
    assert call(app.state.emulator, ("GET", "/backends", None))[0].status_code == 200
