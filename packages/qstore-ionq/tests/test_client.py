"""The async client on the emulator: endpoints, retries, exactly-once, cancellation, secrets."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from qstore.ionq import (
    PRICES,
    IonQAPIError,
    IonQAuthenticationError,
    IonQBackend,
    IonQClient,
    IonQJobFailedError,
    IonQTimeoutError,
    RetryPolicy,
)
from qstore.ionq.client import CLIENT_ID_KEY
from qstore.ionq.testing import Faults, IonQEmulator

KEY = "sk-test-3b7f0c9e51d24a86"
BASE = "http://emulator.test/v0.4"
FAST = RetryPolicy(max_attempts=12, backoff_base=0.002, backoff_max=0.02)
MakeClient = Callable[..., IonQClient]
Job = Callable[..., dict[str, Any]]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_every_endpoint(make_client: MakeClient, emulator: IonQEmulator, bell_job: Job) -> None:
    async def go() -> None:
        async with make_client() as c:
            rows = await c.backends()
            assert {r["backend"] for r in rows} >= {"simulator", "qpu.aria-1", "qpu.forte-1"}
            job_id = await c.submit(bell_job(metadata={"experiment": "bell"}))
            job = await c.wait(job_id, timeout=5)
            assert job["status"] == "completed"
            assert job["metadata"]["experiment"] == "bell"
            assert CLIENT_ID_KEY in job["metadata"]
            probs = await c.probabilities(job_id)
            assert probs.keys() == {"0", "3"}
            assert abs(probs["0"] - 0.5) < 1e-12 and abs(probs["3"] - 0.5) < 1e-12
            ids = [job_id] + [await c.submit(bell_job()) for _ in range(4)]
            seen = [j["id"] async for j in c.iter_jobs()]
            assert sorted(seen) == sorted(ids) and seen[0] == ids[-1]  # newest first
            page = await c.list_jobs(limit=2)
            assert len(page["jobs"]) == 2 and page["next"]
            est = await c.estimate("qpu.aria-1", shots=1000, n_1q=100, n_2q=50, qubits=4)
            assert est["estimated_cost"] == pytest.approx(
                PRICES.estimate("qpu.aria-1", 1000, 100, 50)
            )
            deleted = await c.delete(ids[1])
            assert deleted["status"] == "deleted"
            with pytest.raises(IonQAPIError) as err:
                await c.get_job(ids[1])
            assert err.value.status == 404
            assert ids[1] not in [j["id"] async for j in c.iter_jobs()]

    run(go())


def test_cancel_puts_a_queued_job_in_canceled(make_client: MakeClient, bell_job: Job) -> None:
    async def go() -> None:
        c = make_client()
        c_emulator: IonQEmulator = c._transport.app.state.emulator  # type: ignore[union-attr]
        c_emulator.queue_delay = 5.0
        job_id = await c.submit(bell_job())
        assert (await c.cancel(job_id))["status"] == "canceled"
        assert (await c.get_job(job_id))["status"] == "canceled"
        with pytest.raises(IonQJobFailedError, match="canceled"):
            await c.wait(job_id, timeout=1)
        await c.aclose()

    run(go())


def test_429_is_retried_after_retry_after(make_client: MakeClient, emulator: IonQEmulator) -> None:
    emulator.faults = Faults(retry_after=0.25)
    emulator.inject("rate_limit", times=2, path="/backends")

    async def go() -> float:
        start = time.monotonic()
        async with make_client(retry=RetryPolicy(max_attempts=5, backoff_base=0.0)) as c:
            await c.backends()
        return time.monotonic() - start

    elapsed = run(go())
    assert emulator.injected["rate_limit"] == 2
    assert elapsed >= 0.5  # two Retry-After waits, not the (zero) backoff


def test_5xx_and_409_on_get_are_retried(
    make_client: MakeClient, emulator: IonQEmulator, bell_job: Job
) -> None:
    async def go() -> None:
        async with make_client() as c:
            emulator.inject("server_error", times=3, path="GET")
            assert await c.backends()
            emulator.queue_delay = 0.03
            job_id = await c.submit(bell_job())
            # results before completion are 409 (retriable on GET) until the job completes
            probs = await c.probabilities(job_id)
            assert set(probs) == {"0", "3"}

    run(go())
    assert emulator.injected["server_error"] == 3


def test_retries_are_bounded(make_client: MakeClient, emulator: IonQEmulator) -> None:
    emulator.inject("server_error", times=50, path="/backends")

    async def go() -> None:
        async with make_client(retry=RetryPolicy(max_attempts=3, backoff_base=0.001)) as c:
            await c.backends()

    with pytest.raises(IonQAPIError) as err:
        run(go())
    assert err.value.status in (500, 502, 503)
    assert emulator.injected["server_error"] == 3


def test_invalid_body_is_not_retried_and_names_the_problem(
    make_client: MakeClient, emulator: IonQEmulator, bell_job: Job
) -> None:
    body = bell_job()
    body["input"]["circuit"].append({"gate": "toffoli", "target": 0})

    async def go() -> None:
        async with make_client() as c:
            await c.submit(body)

    with pytest.raises(IonQAPIError, match="toffoli") as err:
        run(go())
    assert err.value.status == 400
    assert emulator.requests == 1 and emulator.jobs_created == 0


@pytest.mark.parametrize("fault", ["lost_response", "slow_response", "server_error"])
def test_submission_happens_exactly_once(
    make_client: MakeClient, emulator: IonQEmulator, bell_job: Job, fault: str
) -> None:
    """lost/slow: the job was created but the answer never came; server_error: it was not."""
    emulator.faults = Faults(slow_seconds=1.0)
    emulator.inject(fault, times=1, path="POST")

    async def go() -> str:
        async with make_client(request_timeout=0.2) as c:
            job_id = await c.submit(bell_job(), timeout=10)
            await c.wait(job_id, timeout=5)
            return job_id

    job_id = run(go())
    assert emulator.injected[fault] == 1
    assert emulator.jobs_created == 1
    assert emulator.jobs()[0]["id"] == job_id


def test_timeout_cancels_the_remote_job(
    make_client: MakeClient, emulator: IonQEmulator, bell_job: Job
) -> None:
    emulator.queue_delay = 5.0

    async def go() -> None:
        async with make_client() as c:
            await c.run(bell_job(), timeout=0.3)

    with pytest.raises(IonQTimeoutError, match="canceled"):
        run(go())
    assert [j["status"] for j in emulator.jobs()] == ["canceled"]


def test_caller_cancellation_cancels_the_remote_job(
    make_client: MakeClient, emulator: IonQEmulator, bell_job: Job
) -> None:
    emulator.queue_delay = 5.0

    async def go() -> None:
        async with make_client() as c:
            task = asyncio.create_task(c.run(bell_job(), timeout=30))
            while not emulator.jobs_created:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(go())
    assert [j["status"] for j in emulator.jobs()] == ["canceled"]


def test_failed_job_raises_with_the_failure(
    make_client: MakeClient, emulator: IonQEmulator, bell_job: Job
) -> None:
    emulator.inject("job_failure")

    async def go() -> None:
        async with make_client() as c:
            await c.run(bell_job(), timeout=5)

    with pytest.raises(IonQJobFailedError) as err:
        run(go())
    assert err.value.status == "failed" and err.value.failure["code"] == "InternalError"
    assert err.value.job_id == emulator.jobs()[0]["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"code": 400, "message": "shape one"},
        {"statusCode": 400, "error": "Bad Request", "message": "shape two"},
        {"error": {"type": "InvalidRequest", "message": "shape three"}},
    ],
)
def test_all_three_error_body_shapes_are_read(body: dict[str, Any]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=body, headers={"x-request-id": "req-42"})

    async def go() -> None:
        async with IonQClient(KEY, BASE, transport=httpx.MockTransport(handler)) as c:
            await c.get_job("x")

    with pytest.raises(IonQAPIError, match="shape") as err:
        run(go())
    assert err.value.request_id == "req-42" and "req-42" in str(err.value)


def test_the_api_key_never_appears_in_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture, bell_job: Job
) -> None:
    secret = "sk-live-SECRET-a71c5e0f9d"
    emulator = IonQEmulator(api_keys=[secret], seed=3, faults=Faults(slow_seconds=0.5))
    transport = httpx.ASGITransport(emulator.app)
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "qstore.ionq", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    async def go() -> None:
        async with IonQClient(
            secret, BASE, transport=transport, retry=FAST, request_timeout=0.1
        ) as c:
            texts.append(repr(c))
            for kind in ("rate_limit", "server_error", "lost_response", "slow_response"):
                emulator.inject(kind, path="POST")
            job_id = await c.submit(bell_job())
            await c.wait(job_id, timeout=5)
            emulator.inject("job_failure")
            try:
                await c.run(bell_job(), timeout=5)
            except IonQJobFailedError as exc:
                texts.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])
        async with IonQClient("wrong-key", BASE, transport=transport, retry=FAST) as bad:
            try:
                await bad.get_job("x")
            except IonQAuthenticationError as exc:
                texts.extend([str(exc), "".join(traceback.format_exception(exc))])

    run(go())
    backend = IonQBackend(api_key=secret, base_url=BASE, transport=transport)
    texts += [repr(backend), repr(backend.client), str(backend.capabilities)]
    assert len(texts) >= 6 and any("IONQ_API_KEY" in t for t in texts)
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert len(caplog.records) > 5
    assert all(secret not in t for t in texts)
    assert all("a71c5e0f9d" not in t for t in texts)
