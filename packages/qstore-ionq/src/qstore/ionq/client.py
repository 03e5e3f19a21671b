"""An async client for IonQ's REST API (v0.4), built on httpx.

Every endpoint of the API: submit, status, results, cancel, delete, list, backends and cost
estimate. Retries live in one place (:meth:`IonQClient.request`): 429, 5xx, 520-529 (and 409 on
GET) are retried with exponential backoff and full jitter, ``Retry-After`` is honoured, and each
call has a per-request timeout inside the caller's total deadline.

Submissions happen **exactly once**: POST is not idempotent, so each submission carries a
client-generated id in the job's ``metadata``; when the answer to a POST is lost (a timeout, a
dropped connection, a 5xx after the job may have been created) the client looks the id up in the
job list before it submits again.

The API key is held in an object whose ``repr`` is masked, sent only in the ``Authorization``
header, and never written to logs, reprs or error messages.

>>> client = IonQClient(api_key="secret", base_url="http://127.0.0.1:8765/v0.4")
>>> "secret" in repr(client)
False
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from qstore.ionq.errors import (
    IonQAPIError,
    IonQAuthenticationError,
    IonQConfigError,
    IonQError,
    IonQJobFailedError,
    IonQRateLimitError,
    IonQTimeoutError,
)

__all__ = [
    "CLIENT_ID_KEY",
    "DEFAULT_BASE_URL",
    "TERMINAL_STATUSES",
    "IonQClient",
    "RetryPolicy",
    "resolve_api_key",
    "resolve_base_url",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.ionq.co/v0.4"
CLIENT_ID_KEY = "qstore_client_id"
"""Metadata key carrying the client-generated submission id (exactly-once submission)."""
TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled", "cancelled", "deleted"})
_RETRIABLE = frozenset({429, 500, 502, 503, 504, *range(520, 530)})
_AMBIGUOUS_POST = frozenset({500, 502, 503, 504, *range(520, 530)})


async def _with_timeout(coro: Coroutine[Any, Any, T], seconds: float) -> T:
    """``await coro`` within ``seconds``; unlike ``wait_for`` before Python 3.12, a cancellation
    of the caller is never lost when the inner call finishes at the same moment."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await coro
    return await asyncio.wait_for(coro, seconds)  # pragma: no cover - Python 3.10


def resolve_api_key(api_key: str | None = None) -> str | None:
    """``api_key``, else ``$IONQ_API_KEY``, else ``$IONQ_API_TOKEN`` (or None)."""
    for value in (api_key, os.environ.get("IONQ_API_KEY"), os.environ.get("IONQ_API_TOKEN")):
        if value:
            return str(value).strip()
    return None


def resolve_base_url(base_url: str | None = None) -> str:
    """``base_url``, else ``$IONQ_API_URL``, else IonQ's ``https://api.ionq.co/v0.4``."""
    url = base_url or os.environ.get("IONQ_API_URL") or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise IonQConfigError(
            f"The IonQ base URL must start with http:// or https://, got {url!r} (from "
            f"{'base_url' if base_url else 'IONQ_API_URL'})."
        )
    return url.rstrip("/")


class _Secret:
    """A string that never shows itself in ``repr``/``str``/logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


class _ApiKeyAuth(httpx.Auth):
    def __init__(self, key: _Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"apiKey {self._key.reveal()}"
        yield request


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: full-jitter exponential backoff.

    Attempt ``k`` (from 0) waits ``uniform(0, min(backoff_max, backoff_base * 2**k))`` (without
    jitter: the upper bound); a ``Retry-After`` header replaces that wait.

    >>> RetryPolicy(jitter=False).delay(3, random.Random(0))
    4.0
    """

    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise IonQConfigError(f"max_attempts must be an int >= 1, got {self.max_attempts!r}.")
        if self.max_attempts < 1:
            raise IonQConfigError(f"max_attempts must be >= 1, got {self.max_attempts}.")
        for name in ("backoff_base", "backoff_max"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise IonQConfigError(f"{name} must be a finite number >= 0, got {v!r}.")

    def delay(self, attempt: int, rng: random.Random) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2.0**attempt))
        return rng.uniform(0.0, cap) if self.jitter else cap


class _AmbiguousError(Exception):
    """A POST whose outcome is unknown: the job may or may not have been created."""


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(resp: httpx.Response) -> tuple[str, str]:
    """``(code, message)`` from any of IonQ's three error body shapes."""
    try:
        body = resp.json()
    except ValueError:
        return "", resp.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    err = body.get("error")
    if isinstance(err, dict):  # {"error": {"type", "message"}}
        return str(err.get("type", "")), str(err.get("message", ""))
    code = body.get("code", body.get("statusCode", ""))
    message = str(body.get("message", ""))
    if isinstance(err, str):  # {"statusCode", "error", "message"}
        message = f"{err}: {message}" if message else err
    return str(code), message


class IonQClient:
    """Async client of IonQ's REST API (v0.4); also talks to :mod:`qstore.ionq.testing`'s emulator.

    Args:
        api_key: the key; default ``$IONQ_API_KEY`` (or ``$IONQ_API_TOKEN``). Only needed for
            authenticated endpoints (all but :meth:`backends`).
        base_url: default ``$IONQ_API_URL``, else ``https://api.ionq.co/v0.4``.
        request_timeout: seconds allowed for one HTTP request (connect to last byte).
        retry: the :class:`RetryPolicy`.
        poll_interval: first wait between status polls; grows by half each poll up to
            ``max_poll_interval``.
        transport: an httpx transport (e.g. ``httpx.ASGITransport(app)`` for an in-process
            emulator).

    Use it as an async context manager, or call :meth:`aclose`::

        async with IonQClient() as client:
            job_id = await client.submit({"type": "ionq.circuit.v1", ...})
            job = await client.wait(job_id, timeout=120)
            histogram = await client.probabilities(job_id)
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        request_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.05,
        max_poll_interval: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        seed: int | None = None,
    ) -> None:
        key = resolve_api_key(api_key)
        self._key = _Secret(key) if key else None
        self.base_url = resolve_base_url(base_url)
        for name, v in (
            ("request_timeout", request_timeout),
            ("poll_interval", poll_interval),
            ("max_poll_interval", max_poll_interval),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise IonQConfigError(f"{name} must be a number of seconds > 0, got {v!r}.")
        self.request_timeout = float(request_timeout)
        self.retry = retry or RetryPolicy()
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max(max_poll_interval, poll_interval))
        self._transport = transport
        self._rng = random.Random(seed)
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        key = "set" if self._key else "missing"
        return f"IonQClient(base_url={self.base_url!r}, api_key={key})"

    @property
    def has_api_key(self) -> bool:
        return self._key is not None

    # -- plumbing -------------------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop or self._http.is_closed:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                transport=self._transport,
                timeout=httpx.Timeout(self.request_timeout),
                headers={"Content-Type": "application/json", "User-Agent": "qstore-ionq/4.0"},
            )
            self._http_loop = loop
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        if self._http is not None and not self._http.is_closed:
            await self._http.aclose()
        self._http = None

    async def __aenter__(self) -> IonQClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _auth(self) -> httpx.Auth:
        if self._key is None:
            raise IonQAuthenticationError(
                "No IonQ API key: pass api_key= or set the IONQ_API_KEY environment variable "
                "(keys are created in IonQ's cloud console).",
                status=401,
            )
        return _ApiKeyAuth(self._key)

    def _error(self, method: str, path: str, resp: httpx.Response) -> IonQAPIError:
        code, message = _error_text(resp)
        rid = resp.headers.get("x-request-id")
        where = f"{method} {path}"
        tail = f" (request id {rid})" if rid else ""
        status = resp.status_code
        if status in (401, 403):
            return IonQAuthenticationError(
                f"IonQ rejected the API key for {where}: {status} {message}{tail}. Check "
                "IONQ_API_KEY (or api_key=) and that the key may use this target.",
                status,
                code,
                rid,
            )
        if status == 429:
            return IonQRateLimitError(
                f"IonQ kept rate-limiting {where} (429) after {self.retry.max_attempts} "
                f"attempts{tail}; slow down or raise RetryPolicy.max_attempts.",
                status,
                code,
                rid,
            )
        hint = {
            400: "the request body was rejected; check the circuit and job options",
            404: "no such job or backend",
        }.get(status, "retry later" if status >= 500 else "see IonQ's API reference")
        return IonQAPIError(
            f"IonQ answered {status} to {where}: {message or resp.reason_phrase}{tail}; {hint}.",
            status,
            code,
            rid,
        )

    @staticmethod
    def _remaining(deadline: float | None) -> float:
        return math.inf if deadline is None else deadline - time.monotonic()

    async def _sleep(self, seconds: float, deadline: float | None, what: str) -> None:
        remaining = self._remaining(deadline)
        if seconds >= remaining:
            raise IonQTimeoutError(f"{what} did not succeed before the total timeout.")
        await asyncio.sleep(seconds)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        deadline: float | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One API call with retries; returns the decoded JSON body.

        ``deadline`` is a ``time.monotonic()`` instant after which nothing is retried.
        Non-idempotent calls (POST) are not retried when their outcome is unknown; the caller
        decides (see :meth:`submit`).
        """
        idem = method.upper() != "POST" if idempotent is None else idempotent
        what = f"{method} {path}"
        http = self._client()
        auth_obj = self._auth() if auth else None
        last: str = ""
        for attempt in range(self.retry.max_attempts):
            timeout = min(self.request_timeout, self._remaining(deadline))
            if timeout <= 0:
                break
            try:
                resp = await _with_timeout(
                    http.request(
                        method,
                        path,
                        json=json,
                        params=params,
                        auth=auth_obj if auth_obj is not None else httpx.USE_CLIENT_DEFAULT,
                    ),
                    timeout,
                )
            except (asyncio.TimeoutError, httpx.TimeoutException):
                logger.debug("%s timed out after %.3g s (attempt %d)", what, timeout, attempt + 1)
                if not idem:
                    raise _AmbiguousError("timeout") from None
                last = f"timed out after {timeout:.3g} s"
                await self._sleep(self.retry.delay(attempt, self._rng), deadline, what)
                continue
            except httpx.TransportError as exc:
                logger.debug("%s failed: %s (attempt %d)", what, type(exc).__name__, attempt + 1)
                if not idem:
                    raise _AmbiguousError(type(exc).__name__) from None
                last = f"connection error ({type(exc).__name__})"
                await self._sleep(self.retry.delay(attempt, self._rng), deadline, what)
                continue
            status = resp.status_code
            logger.debug(
                "%s -> %d (attempt %d, request id %s)",
                what,
                status,
                attempt + 1,
                resp.headers.get("x-request-id", "-"),
            )
            if status < 400:
                if status == 204 or not resp.content:
                    return {}
                try:
                    return resp.json()
                except ValueError:
                    raise IonQAPIError(
                        f"IonQ answered {what} with a body that is not JSON.", status
                    ) from None
            if not idem and status in _AMBIGUOUS_POST:
                raise _AmbiguousError(str(status))
            retriable = status in _RETRIABLE or (status == 409 and method.upper() == "GET")
            if not retriable or attempt == self.retry.max_attempts - 1:
                raise self._error(method, path, resp)
            wait = _retry_after(resp) if status in (429, 503) else None
            if wait is None:
                wait = self.retry.delay(attempt, self._rng)
            last = f"status {status}"
            await self._sleep(wait, deadline, what)
        raise IonQTimeoutError(
            f"{what} did not succeed before the deadline (last: {last or 'no attempt left'})."
        )

    # -- endpoints ------------------------------------------------------------------------------
    async def submit(
        self, job: Mapping[str, Any], *, timeout: float | None = None, deadline: float | None = None
    ) -> str:
        """Submit a job body (``POST /jobs``) exactly once; returns the job id.

        The body's ``metadata`` gets ``qstore_client_id``; if the answer to the POST is lost, the
        job list is searched for that id before the job is submitted again.
        """
        if deadline is None and timeout is not None:
            deadline = time.monotonic() + timeout
        body = dict(job)
        meta = {str(k): str(v) for k, v in dict(body.get("metadata") or {}).items()}
        client_id = uuid.uuid4().hex
        meta[CLIENT_ID_KEY] = client_id
        if len(meta) > 10:
            raise IonQConfigError(
                f"A job takes at most 10 metadata keys (one is {CLIENT_ID_KEY!r}); got "
                f"{len(meta) - 1} of your own: {sorted(meta)}."
            )
        body["metadata"] = meta
        started = time.time()
        for attempt in range(self.retry.max_attempts):
            try:
                data = await self.request("POST", "/jobs", json=body, deadline=deadline)
            except _AmbiguousError as exc:
                logger.info(
                    "Submission %s: outcome unknown (%s); looking it up before resubmitting",
                    client_id,
                    exc,
                )
                found = await self.find_job(client_id, since=started, deadline=deadline)
                if found is not None:
                    logger.info("Submission %s found as job %s", client_id, found)
                    return found
                await self._sleep(self.retry.delay(attempt, self._rng), deadline, "POST /jobs")
                continue
            job_id = data.get("id") if isinstance(data, dict) else None
            if not isinstance(job_id, str):
                raise IonQAPIError(f"IonQ's answer to POST /jobs has no job id: {data!r}.")
            logger.debug("Submission %s created job %s", client_id, job_id)
            return job_id
        raise IonQTimeoutError(
            f"The job could not be submitted in {self.retry.max_attempts} attempts (each outcome "
            "was unknown and no job was found); try again later."
        )

    async def find_job(
        self,
        client_id: str,
        *,
        since: float | None = None,
        deadline: float | None = None,
        max_pages: int = 50,
    ) -> str | None:
        """The id of the job whose metadata carries ``client_id``, or None.

        Pages through the job list (newest first) and stops at jobs created more than a minute
        before ``since`` (a ``time.time()`` instant).
        """
        cursor: str | None = None
        for _ in range(max_pages):
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["next"] = cursor
            page = await self.request("GET", "/jobs", params=params, deadline=deadline)
            jobs = page.get("jobs", []) if isinstance(page, dict) else []
            oldest = math.inf
            for job in jobs:
                meta = job.get("metadata") or {}
                if isinstance(meta, dict) and meta.get(CLIENT_ID_KEY) == client_id:
                    return str(job["id"])
                created = job.get("request")
                if isinstance(created, (int, float)):
                    oldest = min(oldest, float(created))
            cursor = page.get("next") if isinstance(page, dict) else None
            if not cursor or not jobs or (since is not None and oldest < since - 60.0):
                return None
        return None

    async def get_job(self, job_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """``GET /jobs/{id}``: status, stats, metadata, failure, children ..."""
        data: dict[str, Any] = await self.request("GET", f"/jobs/{job_id}", deadline=deadline)
        return data

    async def wait(
        self, job_id: str, *, timeout: float | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        """Poll until the job is terminal; returns the completed job.

        Raises :class:`IonQJobFailedError` for failed/canceled/deleted jobs and
        :class:`IonQTimeoutError` after ``timeout`` seconds. On a timeout or when the caller is
        cancelled, the remote job is canceled before the error propagates.
        """
        if deadline is None and timeout is not None:
            deadline = time.monotonic() + timeout
        interval = self.poll_interval
        try:
            while True:
                job = await self.get_job(job_id, deadline=deadline)
                status = str(job.get("status", "")).lower()
                if status == "completed":
                    return job
                if status in TERMINAL_STATUSES:
                    failure = job.get("failure") if isinstance(job.get("failure"), dict) else None
                    detail = f": {failure.get('error', failure)}" if failure else ""
                    raise IonQJobFailedError(
                        f"IonQ job {job_id} ended {status}{detail}.", job_id, status, failure
                    )
                remaining = self._remaining(deadline)
                if remaining <= 0:
                    raise IonQTimeoutError(f"last status {status!r}")
                await asyncio.sleep(min(interval, remaining))
                interval = min(self.max_poll_interval, interval * 1.5)
        except asyncio.CancelledError:
            await self._cancel_quietly(job_id)
            raise
        except IonQTimeoutError as exc:
            await self._cancel_quietly(job_id)
            raise IonQTimeoutError(
                f"IonQ job {job_id} did not finish within the timeout ({exc}); it has been "
                "canceled. Pass a longer timeout= for long queues."
            ) from exc

    async def _cancel_quietly(self, job_id: str) -> None:
        """Cancel the remote job, shielded from the caller's cancellation; errors are logged."""
        try:
            await asyncio.shield(self.cancel(job_id, deadline=time.monotonic() + 10.0))
            logger.info("Canceled IonQ job %s", job_id)
        except (IonQError, asyncio.CancelledError) as exc:
            logger.warning("Could not cancel IonQ job %s: %s", job_id, type(exc).__name__)

    async def probabilities(self, job_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """``GET /jobs/{id}/results/probabilities``: ``{"<int>": p}`` (little-endian keys), or
        ``{child_id: {...}}`` for a multi-circuit job."""
        path = f"/jobs/{job_id}/results/probabilities"
        data: dict[str, Any] = await self.request("GET", path, deadline=deadline)
        return data

    async def cancel(self, job_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """``PUT /jobs/{id}/status/cancel``."""
        data: dict[str, Any] = await self.request(
            "PUT", f"/jobs/{job_id}/status/cancel", deadline=deadline, idempotent=True
        )
        return data

    async def delete(self, job_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """``DELETE /jobs/{id}``."""
        data: dict[str, Any] = await self.request("DELETE", f"/jobs/{job_id}", deadline=deadline)
        return data

    async def list_jobs(
        self, limit: int = 100, next: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        """One page of ``GET /jobs``: ``{"jobs": [...], "next": cursor}``."""
        params: dict[str, Any] = {"limit": int(limit)}
        if next:
            params["next"] = next
        if status:
            params["status"] = status
        data: dict[str, Any] = await self.request("GET", "/jobs", params=params)
        return data

    async def iter_jobs(self, status: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every job of the account, newest first, following the ``next`` cursor."""
        cursor: str | None = None
        while True:
            page = await self.list_jobs(100, cursor, status)
            for job in page.get("jobs", []):
                yield job
            cursor = page.get("next")
            if not cursor:
                return

    async def backends(self) -> list[dict[str, Any]]:
        """``GET /backends`` (no key needed): status, qubits, average queue time of each."""
        data = await self.request("GET", "/backends", auth=False)
        if not isinstance(data, list):
            raise IonQAPIError(f"GET /backends answered {type(data).__name__}, not a list.")
        return data

    async def estimate(
        self,
        backend: str,
        *,
        shots: int,
        n_1q: int,
        n_2q: int,
        qubits: int,
        job_type: str = "ionq.circuit.v1",
    ) -> dict[str, Any]:
        """``GET /jobs/estimate``: ``estimated_cost``, ``cost_unit``, queue and run times."""
        params = {
            "type": job_type,
            "backend": backend,
            "1q_gates": int(n_1q),
            "2q_gates": int(n_2q),
            "qubits": int(qubits),
            "shots": int(shots),
        }
        data: dict[str, Any] = await self.request("GET", "/jobs/estimate", params=params)
        return data

    async def run(
        self, job: Mapping[str, Any], *, timeout: float | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Submit, wait and fetch: ``(job, probabilities)``, all within ``timeout`` seconds.

        If the caller is cancelled or the timeout passes after submission, the remote job is
        canceled.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        job_id = await self.submit(job, deadline=deadline)
        done = await self.wait(job_id, deadline=deadline)
        return done, await self.probabilities(job_id, deadline=deadline)
