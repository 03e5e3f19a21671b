"""A local emulator of IonQ's REST API (v0.4), for tests and offline development.

An ASGI application (Starlette) that follows ``IONQ.md``: ``apiKey`` authentication, the job
lifecycle (``submitted`` -> ``ready`` -> ``running`` -> ``completed``) with a configurable queue
delay, single- and multi-circuit jobs in the ``qis`` and ``native`` gate sets executed on
qstore-core's ``local`` simulator, listing with cursors, cancel, delete, backends and cost
estimates, and switchable fault injection.

In-process (tests)::

    import httpx
    from qstore.ionq import IonQBackend
    from qstore.ionq.testing import IonQEmulator

    emulator = IonQEmulator(queue_delay=0.0)
    backend = IonQBackend(
        api_key="test", base_url="http://emulator/v0.4", transport=httpx.ASGITransport(emulator.app)
    )

As a server: ``qstore ionq emulator --port 8765``, then ``IONQ_API_URL=http://127.0.0.1:8765/v0.4``.

Noise models are documented approximations, not device calibrations: a depolarising mix
``F p + (1 - F) / 2^n`` with ``F = (1 - e1)^n1 (1 - e2)^n2`` from the circuit's one- and
two-qubit gate counts, then an independent symmetric read-out error per qubit, then ``shots``
samples (see :data:`NOISE_PARAMETERS`). QPU targets use their family's model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.backends import get as get_backend
from qstore.core.circuit import UnifiedCircuit
from qstore.core.parameters import Parameter
from qstore.ionq.compiler import read_gates
from qstore.ionq.errors import IonQCompilerError, IonQConfigError
from qstore.ionq.targets import PRICES, TARGETS, PriceTable, two_qubit_equivalents

__all__ = [
    "FAULT_KINDS",
    "NOISE_PARAMETERS",
    "EmulatorServer",
    "Faults",
    "IonQEmulator",
    "create_app",
    "running_server",
    "serve",
]

logger = logging.getLogger(__name__)

FAULT_KINDS = ("rate_limit", "server_error", "lost_response", "slow_response", "job_failure")

NOISE_PARAMETERS: dict[str, tuple[float, float, float]] = {
    "aria-1": (5e-4, 6e-3, 4e-3),
    "aria-2": (5e-4, 6e-3, 4e-3),
    "forte-1": (3e-4, 4e-3, 5e-3),
}
"""Per noise model: (one-qubit gate error, two-qubit gate error, read-out error). Of the order of
IonQ's published fidelities; an approximation for testing, not a calibration."""

_MAX_SIM_SHOTS = 1_000_000


@dataclass(frozen=True)
class Faults:
    """Probabilities of injected faults, per request (``job_failure``: per job).

    * ``rate_limit``: 429 with ``Retry-After: retry_after`` before the request is processed.
    * ``server_error``: a 500/502/503 before the request is processed.
    * ``lost_response``: the request *is* processed (a POST creates its job), then 504 is sent.
    * ``slow_response``: processed, then the answer waits ``slow_seconds`` (past client timeouts).
    * ``job_failure``: the job ends ``failed``.

    >>> Faults.uniform(0.2).rate_limit
    0.04
    """

    rate_limit: float = 0.0
    server_error: float = 0.0
    lost_response: float = 0.0
    slow_response: float = 0.0
    job_failure: float = 0.0
    retry_after: float = 1.0
    slow_seconds: float = 5.0

    def __post_init__(self) -> None:
        for kind in FAULT_KINDS:
            p = getattr(self, kind)
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise IonQConfigError(f"Faults.{kind} must be a probability in [0, 1], got {p!r}.")
        if sum(getattr(self, k) for k in FAULT_KINDS[:4]) > 1.0 + 1e-12:
            raise IonQConfigError("The per-request fault probabilities must sum to at most 1.")
        for name in ("retry_after", "slow_seconds"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise IonQConfigError(f"Faults.{name} must be seconds >= 0, got {v!r}.")

    @classmethod
    def uniform(cls, total: float, **options: float) -> Faults:
        """``total`` spread evenly over the five kinds (each ``total / 5``)."""
        each = round(total / len(FAULT_KINDS), 12)
        return cls(**{k: each for k in FAULT_KINDS}, **options)


@dataclass
class _Job:
    id: str
    seq: int
    body: dict[str, Any]
    backend: str
    shots: int
    n_qubits: int
    circuits: list[list[tuple[str, tuple[int, ...], tuple[float, ...]]]]
    gateset: str
    noise: dict[str, Any] | None
    fail: bool
    status: str = "submitted"
    created: float = field(default_factory=time.time)
    finished: float | None = None
    execution_ms: int = 0
    children: list[str] = field(default_factory=list)
    parent: str | None = None
    name: str | None = None
    histogram: dict[str, float] | None = None
    failure: dict[str, str] | None = None
    cost: float = 0.0
    n_1q: int = 0
    n_2q: int = 0
    task: asyncio.Task[None] | None = None

    @property
    def multi(self) -> bool:
        return bool(self.children)


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class IonQEmulator:
    """The emulator's state and its Starlette application (:attr:`app`).

    Args:
        api_keys: accepted keys (default: any non-empty key).
        queue_delay: seconds a job waits in the queue before it runs.
        faults: :class:`Faults` (switch them later by assigning :attr:`faults`).
        seed: seeds fault injection and shot sampling (jobs may also carry ``noise.seed``).
        max_circuits: most circuits in one multi-circuit job (400 beyond).
        prices: price table for ``cost_usd`` and the estimate endpoint.
    """

    def __init__(
        self,
        *,
        api_keys: Sequence[str] | None = None,
        queue_delay: float = 0.0,
        faults: Faults | None = None,
        seed: int | None = None,
        max_circuits: int = 10_000,
        prices: PriceTable | None = None,
    ) -> None:
        if not isinstance(queue_delay, (int, float)) or queue_delay < 0:
            raise IonQConfigError(f"queue_delay must be seconds >= 0, got {queue_delay!r}.")
        self._keys = frozenset(api_keys) if api_keys is not None else None
        self.queue_delay = float(queue_delay)
        self.faults = faults or Faults()
        self.max_circuits = int(max_circuits)
        self.prices = prices or PRICES
        self.backend_status: dict[str, str] = {name: "available" for name in TARGETS}
        self._rng = random.Random(seed)
        self._np_rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._order: list[str] = []
        self._seq = 0
        self._script: list[tuple[str, str | None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._templates: dict[tuple[object, ...], tuple[UnifiedCircuit, list[str]]] = {}
        self._local = get_backend("local")
        self.requests = 0
        self.injected: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self.app = self._build_app()

    # -- inspection and control ---------------------------------------------------------------
    @property
    def jobs_created(self) -> int:
        """How many jobs POST /jobs created (children of multi-circuit jobs not counted)."""
        return len(self._order)

    def jobs(self) -> list[dict[str, Any]]:
        """Every job (oldest first), as GET /jobs/{id} shows it, deleted ones included."""
        return [self._view(self._jobs[i]) for i in self._order]

    def inject(self, kind: str, times: int = 1, path: str | None = None) -> None:
        """Inject fault ``kind`` into the next ``times`` requests (whose path contains ``path``)."""
        if kind not in FAULT_KINDS:
            raise IonQConfigError(f"Unknown fault {kind!r}; choose one of {FAULT_KINDS}.")
        self._script.extend([(kind, path)] * times)

    def _pick_fault(self, path: str) -> str | None:
        for i, (kind, where) in enumerate(self._script):
            if kind != "job_failure" and (where is None or where in path):
                del self._script[i]
                return kind
        r = self._rng.random()
        acc = 0.0
        for kind in FAULT_KINDS[:4]:
            acc += getattr(self.faults, kind)
            if r < acc:
                return kind
        return None

    def _job_fails(self) -> bool:
        fail = self._rng.random() < self.faults.job_failure
        for i, (kind, _) in enumerate(self._script):
            if kind == "job_failure":
                del self._script[i]
                fail = True
                break
        self.injected["job_failure"] += int(fail)
        return fail

    # -- the application ----------------------------------------------------------------------
    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Mount, Route

        def r(
            path: str, fn: Callable[..., Awaitable[Any]], method: str, auth: bool = True
        ) -> Route:
            async def endpoint(request: Any) -> Any:
                return await self._dispatch(request, fn, auth)

            return Route(path, endpoint, methods=[method])

        routes = [
            r("/backends", self._backends, "GET", auth=False),
            r("/jobs", self._create, "POST"),
            r("/jobs", self._list, "GET"),
            r("/jobs/estimate", self._estimate, "GET"),
            r("/jobs/{job_id}", self._get, "GET"),
            r("/jobs/{job_id}", self._delete, "DELETE"),
            r("/jobs/{job_id}/status/cancel", self._cancel, "PUT"),
            r("/jobs/{job_id}/results/probabilities", self._results, "GET"),
        ]
        app = Starlette(routes=[Mount("/v0.4", routes=routes), Mount("/v0.3", routes=routes)])
        app.state.emulator = self
        return app

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
        from starlette.responses import JSONResponse

        h = {"x-request-id": uuid.uuid4().hex, **(headers or {})}
        return JSONResponse(body, status_code=status, headers=h)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Any:
        body = {"statusCode": status, "error": _REASONS.get(status, "Error"), "message": message}
        return self._json(status, body, headers)

    def _authorised(self, request: Any) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in ("apikey", "bearer") or not key.strip():
            return False
        return self._keys is None or key.strip() in self._keys

    async def _dispatch(self, request: Any, fn: Callable[..., Awaitable[Any]], auth: bool) -> Any:
        self.requests += 1
        path = request.url.path
        fault = self._pick_fault(f"{request.method} {path}")
        if fault is not None:
            self.injected[fault] += 1
        if fault == "rate_limit":
            return self._error(
                429,
                "Too many requests; slow down.",
                {"Retry-After": f"{self.faults.retry_after:g}"},
            )
        if fault == "server_error":
            return self._error(self._rng.choice((500, 502, 503)), "Injected server error.")
        if auth and not self._authorised(request):
            return self._error(401, "Invalid key provided")
        try:
            response = await fn(request)
        except _HTTPError as exc:
            response = self._error(exc.status, exc.message)
        if fault == "lost_response":
            return self._error(504, "Injected: the response was lost on its way back.")
        if fault == "slow_response":
            await asyncio.sleep(self.faults.slow_seconds)
        return response

    # -- endpoints ------------------------------------------------------------------------------
    async def _backends(self, request: Any) -> Any:
        now = int(time.time())
        out = [
            {
                "backend": t.name,
                "status": self.backend_status.get(t.name, "available"),
                "degraded": False,
                "qubits": t.qubits,
                "average_queue_time": int(self.queue_delay * 1000),
                "last_updated": now,
                "noise_models": list(t.noise_models),
                "has_access": True,
            }
            for t in TARGETS.values()
        ]
        return self._json(200, out)

    async def _create(self, request: Any) -> Any:
        try:
            body = await request.json()
        except ValueError:
            raise _HTTPError(400, "The request body is not JSON.") from None
        job = self._new_job(body)
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(job.task)
        job.task.add_done_callback(self._tasks.discard)
        return self._json(200, {"id": job.id, "status": job.status})

    async def _list(self, request: Any) -> Any:
        q = request.query_params
        try:
            limit = max(1, min(int(q.get("limit", 25)), 1000))
        except ValueError:
            raise _HTTPError(400, "limit must be an integer.") from None
        status = q.get("status")
        cursor = q.get("next")
        below = self._jobs[cursor].seq if cursor in self._jobs else math.inf
        page: list[dict[str, Any]] = []
        more = False
        for job_id in reversed(self._order):
            job = self._jobs[job_id]
            if job.status == "deleted" or job.seq >= below:
                continue
            if status and job.status != status:
                continue
            if len(page) == limit:
                more = True
                break
            page.append(self._view(job))
        return self._json(200, {"jobs": page, "next": page[-1]["id"] if more else None})

    async def _estimate(self, request: Any) -> Any:
        q = request.query_params
        backend = q.get("backend", "")
        if backend not in TARGETS:
            raise _HTTPError(400, f"Unknown backend {backend!r}.")
        try:
            n1, n2 = int(q.get("1q_gates", 0)), int(q.get("2q_gates", 0))
            shots = int(q.get("shots", 100))
        except ValueError:
            raise _HTTPError(400, "1q_gates, 2q_gates and shots must be integers.") from None
        cost = self.prices.estimate(backend, shots, n1, n2)
        return self._json(
            200,
            {
                "estimated_cost": cost,
                "cost_unit": "usd",
                "estimated_execution_time": int(1000 * 0.001 * shots),
                "current_predicted_queue_time": int(self.queue_delay * 1000),
            },
        )

    def _find(self, request: Any) -> _Job:
        job = self._jobs.get(request.path_params["job_id"])
        if job is None or job.status == "deleted":
            raise _HTTPError(404, f"No job {request.path_params['job_id']!r}.")
        return job

    async def _get(self, request: Any) -> Any:
        return self._json(200, self._view(self._find(request)))

    async def _delete(self, request: Any) -> Any:
        job = self._find(request)
        self._stop(job, "deleted")
        return self._json(200, {"id": job.id, "status": "deleted"})

    async def _cancel(self, request: Any) -> Any:
        job = self._find(request)
        if job.status not in ("completed", "failed", "canceled"):
            self._stop(job, "canceled")
        return self._json(200, {"id": job.id, "status": job.status})

    async def _results(self, request: Any) -> Any:
        job = self._find(request)
        if job.status != "completed":
            raise _HTTPError(409, f"Job {job.id} is {job.status}; results exist once completed.")
        if job.multi:
            return self._json(200, {c: self._jobs[c].histogram for c in job.children})
        return self._json(200, job.histogram)

    # -- jobs -------------------------------------------------------------------------------------
    def _stop(self, job: _Job, status: str) -> None:
        for j in [job, *(self._jobs[c] for c in job.children)]:
            if j.task is not None and not j.task.done():
                j.task.cancel()
            j.status = status
            j.finished = j.finished or time.time()

    def _view(self, job: _Job) -> dict[str, Any]:
        base = "/v0.4"
        out: dict[str, Any] = {
            "id": job.id,
            "status": job.status,
            "type": job.body.get("type"),
            "name": job.name,
            "backend": job.backend,
            "metadata": dict(job.body.get("metadata") or {}) if job.parent is None else {},
            "shots": job.shots,
            "qubits": job.n_qubits,
            "circuits": len(job.circuits),
            "request": job.created,
            "response": job.finished,
            "execution_time": job.execution_ms,
            "stats": {
                "qubits": job.n_qubits,
                "circuits": len(job.circuits),
                "gate_counts": {"1q": job.n_1q, "2q": job.n_2q},
            },
            "cost_usd": job.cost if job.status == "completed" else None,
        }
        if job.noise is not None:
            out["noise"] = job.noise
        if job.children:
            out["children"] = list(job.children)
        if job.parent:
            out["parent"] = job.parent
        if job.status == "completed":
            out["results"] = {
                "probabilities": {"url": f"{base}/jobs/{job.id}/results/probabilities"}
            }
        if job.failure:
            out["failure"] = job.failure
        return out

    def _validate(self, body: Any) -> tuple[str, int, int, str, list[Any], dict[str, Any] | None]:
        if not isinstance(body, dict):
            raise _HTTPError(400, "The job must be a JSON object.")
        kind = body.get("type", "ionq.circuit.v1")
        if kind not in ("ionq.circuit.v1", "ionq.multi-circuit.v1"):
            raise _HTTPError(400, f"Unknown job type {kind!r}.")
        backend = body.get("backend", "simulator")
        if backend not in TARGETS:
            raise _HTTPError(400, f"Unknown backend {backend!r}; see GET /backends.")
        target = TARGETS[backend]
        shots = body.get("shots", 100)
        limit = target.max_shots or _MAX_SIM_SHOTS
        if isinstance(shots, bool) or not isinstance(shots, int) or not 1 <= shots <= limit:
            raise _HTTPError(400, f"shots must be an integer in [1, {limit}] on {backend}.")
        meta = body.get("metadata") or {}
        if not isinstance(meta, dict) or len(meta) > 10:
            raise _HTTPError(400, "metadata must be an object with at most 10 keys.")
        if any(not isinstance(v, str) or len(k) > 40 for k, v in meta.items()):
            raise _HTTPError(400, "metadata keys must be <= 40 characters and values strings.")
        noise = body.get("noise")
        if noise is not None:
            model = noise.get("model", "ideal") if isinstance(noise, dict) else None
            if not target.is_simulator:
                raise _HTTPError(400, "Noise models apply to the simulator only.")
            if model not in target.noise_models:
                raise _HTTPError(400, f"Unknown noise model {model!r}; {target.noise_models}.")
        inp = body.get("input")
        if not isinstance(inp, dict):
            raise _HTTPError(400, "The job needs an 'input' object.")
        gateset = inp.get("gateset", "qis")
        n = inp.get("qubits")
        model_name = noise.get("model") if isinstance(noise, dict) else None
        max_q = target.max_qubits(model_name)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_q:
            raise _HTTPError(400, f"input.qubits must be an integer in [1, {max_q}] on {backend}.")
        if kind == "ionq.multi-circuit.v1":
            circuits = inp.get("circuits")
            if not isinstance(circuits, list) or not circuits:
                raise _HTTPError(400, "A multi-circuit job needs a non-empty input.circuits.")
            if len(circuits) > self.max_circuits:
                raise _HTTPError(
                    400, f"At most {self.max_circuits} circuits per job; got {len(circuits)}."
                )
        else:
            circuits = [{"circuit": inp.get("circuit")}]
        return backend, shots, n, str(gateset), circuits, noise

    def _new_job(self, body: Any) -> _Job:
        backend, shots, n, gateset, circuits, noise = self._validate(body)
        parsed = []
        try:
            for c in circuits:
                if not isinstance(c, dict):
                    raise IonQCompilerError("Each entry of input.circuits must be an object.")
                parsed.append(read_gates(c.get("circuit"), n, gateset))
        except IonQCompilerError as exc:
            raise _HTTPError(400, str(exc)) from None
        has_zz = any(g == "ZZ" for circ in parsed for g, _, _ in circ)
        if gateset == "native" and has_zz and not TARGETS[backend].has_zz:
            raise _HTTPError(400, f"{backend} has no ZZ gate; use MS.")
        self._seq += 1
        job = _Job(
            id=str(uuid.uuid4()),
            seq=self._seq,
            body=body,
            backend=backend,
            shots=shots,
            n_qubits=n,
            circuits=parsed,
            gateset=gateset,
            noise=noise,
            fail=self._job_fails(),
            name=body.get("name"),
        )
        if body.get("type") == "ionq.multi-circuit.v1":
            for i, (c, spec) in enumerate(zip(parsed, circuits, strict=True)):
                self._seq += 1
                child = replace(job, id=str(uuid.uuid4()), seq=self._seq, circuits=[c])
                child.parent, child.children = job.id, []
                child.name = spec.get("name", f"circuit-{i}")
                self._jobs[child.id] = child
                job.children.append(child.id)
        self._jobs[job.id] = job
        self._order.append(job.id)
        return job

    async def _run(self, job: _Job) -> None:
        children = [self._jobs[c] for c in job.children]
        try:
            if self.queue_delay:
                await asyncio.sleep(self.queue_delay)
            for j in [job, *children]:
                j.status = "ready"
            await asyncio.sleep(0)
            for j in [job, *children]:
                j.status = "running"
            started = time.perf_counter()
            if job.fail:
                raise _JobFailureError("Injected failure: the job could not be executed.")
            hists = await asyncio.to_thread(self._execute, job)
            elapsed = int((time.perf_counter() - started) * 1000)
        except asyncio.CancelledError:
            return
        except _JobFailureError as exc:
            self._finish(job, children, "failed", {"code": "InternalError", "error": str(exc)})
            return
        except Exception as exc:  # a bug in a job must fail the job, not the server
            logger.exception("Emulator job %s failed", job.id)
            self._finish(job, children, "failed", {"code": "InternalError", "error": repr(exc)})
            return
        if job.status != "running":  # canceled or deleted meanwhile
            return
        if job.multi:
            for child, h in zip(children, hists, strict=True):
                child.histogram = h
        else:
            job.histogram = hists[0]
        for j in [job, *children]:
            j.execution_ms = elapsed
        self._finish(job, children, "completed", None)

    def _finish(
        self, job: _Job, children: list[_Job], status: str, failure: dict[str, str] | None
    ) -> None:
        now = time.time()
        for j in [job, *children]:
            j.status, j.finished, j.failure = status, now, failure

    # -- execution --------------------------------------------------------------------------------
    def _execute(self, job: _Job) -> list[dict[str, float]]:
        n = job.n_qubits
        probs = self._probabilities(job.circuits, n)
        target = TARGETS[job.backend]
        model = (job.noise or {}).get("model", "ideal") if target.is_simulator else None
        if model is None:
            model = "forte-1" if "forte" in target.name else "aria-1"
        seed = (job.noise or {}).get("seed")
        rng = np.random.default_rng(seed) if isinstance(seed, int) else self._np_rng
        out = []
        for circ, p in zip(job.circuits, probs, strict=True):
            n1 = sum(1 for _, qs, _ in circ if len(qs) == 1)
            n2 = sum(two_qubit_equivalents(len(qs)) for _, qs, _ in circ)
            job.n_1q += n1
            job.n_2q += n2
            if model != "ideal":
                p = _noisy(p, n, n1, n2, NOISE_PARAMETERS[model])
                counts = np.bincount(_sample(p, job.shots, rng), minlength=p.size)
                p = counts / job.shots
            out.append(_histogram(p, n))
        job.cost = self.prices.estimate(job.backend, job.shots, job.n_1q, job.n_2q)
        return out

    def _probabilities(
        self, circuits: list[list[tuple[str, tuple[int, ...], tuple[float, ...]]]], n: int
    ) -> list[npt.NDArray[np.float64]]:
        """Probabilities (qubit 0 most significant) of every circuit; circuits of the same shape
        run as one batch on the local backend."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, circ in enumerate(circuits):
            key = (n, tuple((g, qs) for g, qs, _ in circ))
            groups.setdefault(key, []).append(i)
        out: list[npt.NDArray[np.float64]] = [np.zeros(0)] * len(circuits)
        for key, idx in groups.items():
            template, names = self._template(key, circuits[idx[0]], n)
            values = np.asarray(
                [[v for _, _, ps in circuits[i] for v in ps] for i in idx], dtype=np.float64
            )
            if not names:
                values = np.zeros((len(idx), 0))
            probs = self._local.probabilities(template, values if names else None, names=names)
            probs = np.broadcast_to(probs, (len(idx), probs.shape[-1]))
            for row, i in enumerate(idx):
                out[i] = probs[row]
        return out

    def _template(
        self, key: tuple[object, ...], circ: Any, n: int
    ) -> tuple[UnifiedCircuit, list[str]]:
        with self._lock:
            hit = self._templates.get(key)
            if hit is None:
                c = UnifiedCircuit(n, name="ionq_job")
                names: list[str] = []
                for g, qs, ps in circ:
                    syms = []
                    for _ in ps:
                        names.append(f"p{len(names)}")
                        syms.append(Parameter(names[-1]))
                    c.add_gate(g, list(qs), syms or None)
                if len(self._templates) > 256:
                    self._templates.clear()
                hit = self._templates[key] = (c, names)
            return hit

    # -- lifecycle ------------------------------------------------------------------------------
    async def drain(self) -> None:
        """Wait for every running job to finish (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class _JobFailureError(Exception):
    pass


def _noisy(
    p: npt.NDArray[np.float64], n: int, n1: int, n2: int, rates: tuple[float, float, float]
) -> npt.NDArray[np.float64]:
    e1, e2, ro = rates
    fid = (1 - e1) ** n1 * (1 - e2) ** n2
    q = fid * p + (1 - fid) / p.size
    t = q.reshape((2,) * n)
    for axis in range(n):
        t = (1 - ro) * t + ro * np.flip(t, axis=axis)
    out = t.reshape(-1)
    return np.asarray(out / out.sum(), dtype=np.float64)


def _sample(p: npt.NDArray[np.float64], shots: int, rng: np.random.Generator) -> Any:
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(shots), side="right"), p.size - 1)


def _histogram(p: npt.NDArray[np.float64], n: int) -> dict[str, float]:
    """IonQ's histogram: decimal keys with qubit 0 as the *least* significant bit."""
    nz = np.flatnonzero(p > 1e-12)
    keys = np.zeros(nz.size, dtype=np.int64)
    for q in range(n):  # our index has qubit 0 as its most significant bit
        keys |= ((nz >> (n - 1 - q)) & 1) << q
    total = float(p[nz].sum())
    return {str(int(k)): float(p[i]) / total for k, i in zip(keys, nz, strict=True)}


def create_app(**options: Any) -> Any:
    """A Starlette app emulating IonQ's API; ``options`` go to :class:`IonQEmulator`.

    The emulator object is ``app.state.emulator``.

    >>> app = create_app(queue_delay=0.0)
    >>> app.state.emulator.jobs_created
    0
    """
    return IonQEmulator(**options).app


def serve(host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
    """Run the emulator as an HTTP server (uvicorn) until interrupted."""
    try:
        import uvicorn
    except ImportError as exc:
        from qstore.core.errors import require

        raise require("uvicorn", "emulator", "qstore-ionq") from exc
    app = create_app(**options)
    logger.info("IonQ API emulator on http://%s:%d/v0.4", host, port)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=host, port=port, log_level="warning")


@dataclass(frozen=True)
class EmulatorServer:
    """A running emulator server (see :func:`running_server`)."""

    emulator: IonQEmulator
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """What ``IONQ_API_URL`` should be set to."""
        return f"http://{self.host}:{self.port}/v0.4"


@contextlib.contextmanager
def running_server(
    host: str = "127.0.0.1", port: int = 0, **options: Any
) -> Iterator[EmulatorServer]:
    """Serve the emulator from a background thread for the duration of a ``with`` block.

    ``port=0`` picks a free port. ``options`` go to :class:`IonQEmulator`.

    >>> with running_server(queue_delay=0.0) as server:  # doctest: +SKIP
    ...     os.environ["IONQ_API_URL"] = server.base_url
    """
    import uvicorn

    emulator = IonQEmulator(**options)
    config = uvicorn.Config(emulator.app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ionq-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise IonQConfigError(f"The emulator server could not start on {host}:{port}.")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield EmulatorServer(emulator, host, int(bound))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
