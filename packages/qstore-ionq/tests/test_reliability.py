"""1,000 jobs, 50 at a time, through 20 % injected faults of every kind: every outcome obtained
exactly once, no duplicate and no lost job on the server, and the key never logged."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import httpx
import pytest

from qstore.ionq import IonQClient, IonQJobFailedError, RetryPolicy
from qstore.ionq.client import CLIENT_ID_KEY
from qstore.ionq.testing import Faults, IonQEmulator

N_JOBS = 1000
CONCURRENCY = 50
N_QUBITS = 10  # job i writes i in binary: X on qubit q for bit q of i
SECRET = "sk-live-reliability-5d0e2b7a"


def job_body(i: int) -> dict[str, object]:
    circuit = [{"gate": "x", "target": q} for q in range(N_QUBITS) if (i >> q) & 1]
    return {
        "type": "ionq.circuit.v1",
        "backend": "simulator",
        "shots": 100,
        "name": f"job-{i}",
        "metadata": {"index": str(i)},
        "input": {"gateset": "qis", "qubits": N_QUBITS, "circuit": circuit},
    }


@pytest.mark.slow
def test_a_thousand_jobs_through_faults_each_result_exactly_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = Faults.uniform(0.2, retry_after=0.01, slow_seconds=0.25)
    emulator = IonQEmulator(api_keys=[SECRET], faults=faults, seed=2024)
    client = IonQClient(
        SECRET,
        "http://emulator.test/v0.4",
        transport=httpx.ASGITransport(emulator.app),
        request_timeout=0.1,
        retry=RetryPolicy(max_attempts=30, backoff_base=0.002, backoff_max=0.05),
        poll_interval=0.02,
        max_poll_interval=0.05,
        seed=1,
    )
    outcomes: dict[int, object] = {}
    calls = Counter[int]()

    async def one(i: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            calls[i] += 1
            try:
                _, hist = await client.run(job_body(i), timeout=60)
                outcomes[i] = hist
            except IonQJobFailedError as exc:
                outcomes[i] = exc

    async def main() -> None:
        gate = asyncio.Semaphore(CONCURRENCY)
        await asyncio.gather(*(one(i, gate) for i in range(N_JOBS)))
        await client.aclose()
        await emulator.drain()

    asyncio.run(main())

    # every submission has exactly one outcome, and every result is its own circuit's
    assert len(outcomes) == N_JOBS and set(calls.values()) == {1}
    failed = {i for i, o in outcomes.items() if isinstance(o, IonQJobFailedError)}
    for i, o in outcomes.items():
        if i not in failed:
            assert o == {str(i): 1.0}, (i, o)
    # the server holds exactly one job per submission: none duplicated, none lost
    jobs = emulator.jobs()
    assert emulator.jobs_created == N_JOBS
    tags = Counter(j["metadata"][CLIENT_ID_KEY] for j in jobs)
    assert len(tags) == N_JOBS and set(tags.values()) == {1}
    assert sorted(int(j["metadata"]["index"]) for j in jobs) == list(range(N_JOBS))
    by_index = {int(j["metadata"]["index"]): j["status"] for j in jobs}
    assert {i for i, s in by_index.items() if s == "failed"} == failed
    assert all(s == "completed" for i, s in by_index.items() if i not in failed)
    # every kind of fault really happened, about as often as configured
    assert len(failed) == emulator.injected["job_failure"] > 0
    for kind in ("rate_limit", "server_error", "lost_response", "slow_response"):
        assert emulator.injected[kind] > 0.02 * emulator.requests, kind
    # the key never reached a log line
    assert len(caplog.records) > N_JOBS
    assert SECRET not in caplog.text
    assert all(SECRET not in r.getMessage() for r in caplog.records)
