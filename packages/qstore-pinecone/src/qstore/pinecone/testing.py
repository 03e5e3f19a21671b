"""An emulator of the Pinecone API subset that the ``pinecone`` store uses, for tests and demos.

It follows the control plane (``/indexes``) and the data plane (``/vectors/upsert``, ``/query``,
``/vectors/fetch``, ``/vectors/delete``, ``/vectors/update``, ``/vectors/list``,
``/describe_index_stats``) as the ``pinecone`` SDK speaks them: the SDK's 2026-07 index shape
(``schema``/``deployment``) and the older ``dimension``/``metric``/``spec`` are both accepted
on creation. Limits are Pinecone's (1,000 records and 2 MB per upsert, 40 KB of metadata, topK
up to 10,000, 20,000 dimensions) and filters are evaluated by
:mod:`qstore.core.stores.filters`, the implementation the ``local`` store uses. Data lives in
memory.

Each index is served under ``<server>/data/<index-name>``: that URL is the ``host`` that
``describe`` reports and that ``pc.index(host=...)`` takes.

Faults can be injected: rate limits (429), server errors (5xx), slow responses, and "applied
but answered with an error" (the write lands, the client sees a failure).

>>> from qstore.pinecone.testing import PineconeEmulator
>>> emulator = PineconeEmulator()
>>> with emulator.serve() as url:  # a real HTTP server on 127.0.0.1, a free port
...     from pinecone import Pinecone
...
...     pc = Pinecone(api_key="test", host=url)
...     _ = pc.create_index(
...         "states",
...         dimension=4,
...         metric="cosine",
...         spec={"serverless": {"cloud": "aws", "region": "us-east-1"}},
...     )
...     index = pc.index(host=pc.describe_index("states").host)
...     index.upsert(vectors=[("a", [1.0, 0, 0, 0])]).upserted_count
1
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qstore.core.stores.base import StoreInputError
from qstore.core.stores.filters import compile_filter, normalize_metadata
from qstore.core.stores.states import MAX_ID_LENGTH

__all__ = ["Fault", "PineconeEmulator", "create_app"]

logger = logging.getLogger(__name__)

MAX_UPSERT_RECORDS = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_IDS = 1000
MAX_TOP_K = 10_000
MAX_DIMENSION = 20_000
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?$")
_DEFAULT_NS = "__default__"

# gRPC status codes that the data plane puts in its error bodies.
_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 413: 3, 429: 8, 500: 13, 503: 14}
_CP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
}


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Fault:
    """One injected fault: for the next ``times`` matching requests, wait ``delay`` seconds,
    then answer ``status`` (``None``: answer normally, only slowly). ``apply=True`` runs the
    request first (the write lands) and then answers ``status``. ``paths`` limits it to
    requests whose path ends with one of them (``"/vectors/upsert"``, ``"/query"``...)."""

    status: int | None = 503
    times: int = 1
    delay: float = 0.0
    apply: bool = False
    paths: tuple[str, ...] = ()
    retry_after: float | None = 0.0

    def matches(self, path: str) -> bool:
        return not self.paths or any(path.endswith(p) for p in self.paths)


@dataclass
class _Index:
    name: str
    dimension: int
    metric: str
    cloud: str
    region: str
    deletion_protection: str = "disabled"
    tags: dict[str, str] | None = None
    namespaces: dict[str, dict[str, tuple[np.ndarray, dict[str, Any]]]] = field(
        default_factory=dict
    )

    def model(self, base_url: str) -> dict[str, Any]:
        # The SDK's 2026-07 shape, plus the older top-level fields for older clients.
        return {
            "name": self.name,
            "host": f"{base_url}/data/{self.name}",
            "status": {"ready": True, "state": "Ready"},
            "schema": {
                "fields": {
                    "_values": {
                        "type": "dense_vector",
                        "dimension": self.dimension,
                        "metric": self.metric,
                    }
                }
            },
            "deployment": {
                "deployment_type": "managed",
                "cloud": self.cloud,
                "region": self.region,
            },
            "deletion_protection": self.deletion_protection,
            "tags": self.tags,
            "dimension": self.dimension,
            "metric": self.metric,
            "vector_type": "dense",
            "spec": {"serverless": {"cloud": self.cloud, "region": self.region}},
        }


class PineconeEmulator:
    """In-memory Pinecone: an ASGI app (:attr:`app`) and a real server (:meth:`serve`).

    Args:
        api_key: the key every request must carry in ``Api-Key`` (``None``: any non-empty key).
    """

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.indexes: dict[str, _Index] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.app = create_app(self)

    # -- faults ---------------------------------------------------------------------------
    def inject(self, fault: Fault | None = None, /, **kwargs: Any) -> Fault:
        """Queue a fault (a :class:`Fault`, or its fields as keywords); returns it."""
        f = fault if fault is not None else Fault(**kwargs)
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.times > 0 and f.matches(path):
                    f.times -= 1
                    if f.times == 0:
                        self._faults.remove(f)
                    return f
        return None

    # -- serving --------------------------------------------------------------------------
    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Run the emulator as a uvicorn server in a background thread; yields its URL.

        ``port=0`` picks a free port.
        """
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        url = f"http://{host}:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", timeout_keep_alive=30
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Pinecone emulator did not start")
            time.sleep(0.01)
        try:
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()

    # -- control plane --------------------------------------------------------------------
    def create_index(self, body: Mapping[str, Any]) -> _Index:
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _HTTPError(
                400,
                f"Invalid index name {name!r}: 1-45 lowercase alphanumeric characters or '-', "
                "starting and ending with an alphanumeric character.",
            )
        dimension, metric = _vector_shape(body)
        dep = body.get("deployment") or {}
        spec = (body.get("spec") or {}).get("serverless") or {}
        cloud = str(dep.get("cloud") or spec.get("cloud") or "aws")
        region = str(dep.get("region") or spec.get("region") or "us-east-1")
        with self._lock:
            if name in self.indexes:
                raise _HTTPError(409, f"Resource {name} already exists")
            index = _Index(
                name,
                dimension,
                metric,
                cloud,
                region,
                str(body.get("deletion_protection") or "disabled"),
                body.get("tags"),
            )
            self.indexes[name] = index
        return index

    def index(self, name: str) -> _Index:
        try:
            return self.indexes[name]
        except KeyError:
            raise _HTTPError(404, f"Resource {name} not found") from None


def _vector_shape(body: Mapping[str, Any]) -> tuple[int, str]:
    fields = (body.get("schema") or {}).get("fields")
    if fields is not None:
        dense = [
            f for f in fields.values() if isinstance(f, Mapping) and f.get("type") == "dense_vector"
        ]
        if len(dense) != 1:
            raise _HTTPError(
                400, "The emulator serves indexes with exactly one dense_vector field."
            )
        dimension, metric = dense[0].get("dimension"), dense[0].get("metric", "cosine")
    else:
        dimension, metric = body.get("dimension"), body.get("metric", "cosine")
    if (
        isinstance(dimension, bool)
        or not isinstance(dimension, int)
        or not 1 <= dimension <= MAX_DIMENSION
    ):
        raise _HTTPError(
            400, f"dimension must be an integer from 1 to {MAX_DIMENSION}, got {dimension!r}"
        )
    if metric not in ("cosine", "euclidean", "dotproduct"):
        raise _HTTPError(400, f"metric must be cosine, euclidean or dotproduct, got {metric!r}")
    return dimension, metric


# -- data plane -----------------------------------------------------------------------------
def _namespace(value: Any) -> str:
    if value is None or value == _DEFAULT_NS:
        return ""
    if not isinstance(value, str):
        raise _HTTPError(400, f"namespace must be a string, got {value!r}")
    return value


def _check_id(i: Any) -> str:
    if not isinstance(i, str) or not 1 <= len(i) <= MAX_ID_LENGTH or not i.isascii() or "\x00" in i:
        raise _HTTPError(400, f"Invalid vector id {i!r}: 1-{MAX_ID_LENGTH} ASCII characters.")
    return i


def _check_values(values: Any, dimension: int) -> np.ndarray:
    if not isinstance(values, list):
        raise _HTTPError(400, "values must be a list of numbers")
    if len(values) != dimension:
        raise _HTTPError(
            400,
            f"Vector dimension {len(values)} does not match the dimension of the index {dimension}",
        )
    try:
        arr = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise _HTTPError(400, "values must be numbers") from None
    if not np.isfinite(arr).all():
        raise _HTTPError(400, "values must be finite")
    if not arr.any():
        raise _HTTPError(400, "Dense vectors must contain at least one non-zero value")
    return arr


def _metadata(md: Any) -> dict[str, Any]:
    try:
        return normalize_metadata(md)
    except StoreInputError as exc:
        raise _HTTPError(400, str(exc)) from None


def _predicate(f: Any) -> Callable[[Mapping[str, Any]], bool]:
    try:
        return compile_filter(f)
    except StoreInputError as exc:
        raise _HTTPError(400, f"Invalid filter: {exc}") from None


def _scores(q: np.ndarray, m: np.ndarray, metric: str) -> np.ndarray:
    q64, m64 = q.astype(np.float64), m.astype(np.float64)
    if metric == "cosine":
        return (m64 @ q64) / (np.linalg.norm(m64, axis=1) * np.linalg.norm(q64))  # type: ignore[no-any-return]
    if metric == "dotproduct":
        return m64 @ q64  # type: ignore[no-any-return]
    return np.sum((m64 - q64) ** 2, axis=1)  # type: ignore[no-any-return]


def _vector_json(
    i: str,
    values: np.ndarray,
    md: dict[str, Any],
    *,
    with_values: bool = True,
    with_metadata: bool = True,
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": i}
    if with_values:
        out["values"] = [float(x) for x in values]
    if with_metadata and md:
        out["metadata"] = md
    return out


async def _upsert(emu: PineconeEmulator, index: _Index, body: dict[str, Any]) -> dict[str, Any]:
    vectors = body.get("vectors")
    if not isinstance(vectors, list) or not vectors:
        raise _HTTPError(400, "vectors must be a non-empty list")
    if len(vectors) > MAX_UPSERT_RECORDS:
        raise _HTTPError(
            400,
            f"Upsert of {len(vectors)} vectors exceeds the limit of {MAX_UPSERT_RECORDS} "
            "per request",
        )
    rows = []
    for v in vectors:
        if not isinstance(v, Mapping):
            raise _HTTPError(400, "each vector must be an object with id and values")
        md = _metadata(v.get("metadata"))
        rows.append((_check_id(v.get("id")), _check_values(v.get("values"), index.dimension), md))
    space = index.namespaces.setdefault(_namespace(body.get("namespace")), {})
    for i, values, md in rows:  # validated first: a bad record rejects the whole request
        space[i] = (values, md)
    return {"upsertedCount": len(rows)}


async def _query(emu: PineconeEmulator, index: _Index, body: dict[str, Any]) -> dict[str, Any]:
    top_k = body.get("topK")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise _HTTPError(400, f"topK must be an integer from 1 to {MAX_TOP_K}, got {top_k!r}")
    ns = _namespace(body.get("namespace"))
    space = index.namespaces.get(ns, {})
    if ("vector" in body) == ("id" in body):
        raise _HTTPError(400, "exactly one of vector and id is required")
    if "id" in body:
        hit = space.get(_check_id(body["id"]))
        if hit is None:
            return {"matches": [], "namespace": ns, "usage": {"readUnits": 1}}
        q = hit[0]
    else:
        q = _check_values(body.get("vector"), index.dimension)
    pred = _predicate(body.get("filter"))
    items = [(i, v, md) for i, (v, md) in space.items() if pred(md)]
    matches: list[dict[str, Any]] = []
    if items:
        scores = _scores(q, np.stack([v for _, v, _ in items]), index.metric)
        sign = 1.0 if index.metric == "euclidean" else -1.0
        order = sorted(range(len(items)), key=lambda j: (sign * scores[j], items[j][0]))[:top_k]
        for j in order:
            i, v, md = items[j]
            m = _vector_json(
                i,
                v,
                md,
                with_values=bool(body.get("includeValues")),
                with_metadata=bool(body.get("includeMetadata")),
            )
            m["score"] = float(scores[j])
            matches.append(m)
    return {"matches": matches, "namespace": ns, "usage": {"readUnits": max(1, len(space) // 1000)}}


async def _delete(emu: PineconeEmulator, index: _Index, body: dict[str, Any]) -> dict[str, Any]:
    ns = _namespace(body.get("namespace"))
    given = [k for k in ("ids", "deleteAll", "filter") if body.get(k) not in (None, False)]
    if len(given) != 1:
        raise _HTTPError(400, "Exactly one of ids, deleteAll and filter must be given")
    space = index.namespaces.get(ns, {})
    if "ids" in given:
        ids = body["ids"]
        if not isinstance(ids, list) or len(ids) > MAX_IDS:
            raise _HTTPError(400, f"ids must be a list of at most {MAX_IDS} ids")
        for i in ids:
            space.pop(_check_id(i), None)
    elif "deleteAll" in given:
        space.clear()
    else:
        pred = _predicate(body["filter"])
        for i in [i for i, (_, md) in space.items() if pred(md)]:
            del space[i]
    if not space:
        index.namespaces.pop(ns, None)
    return {}


async def _update(emu: PineconeEmulator, index: _Index, body: dict[str, Any]) -> dict[str, Any]:
    space = index.namespaces.get(_namespace(body.get("namespace")), {})
    i = _check_id(body.get("id"))
    if i not in space:
        return {"matchedRecords": 0}
    values, md = space[i]
    if body.get("values") is not None:
        values = _check_values(body["values"], index.dimension)
    if body.get("setMetadata") is not None:
        md = _metadata({**md, **_metadata(body["setMetadata"])})
    space[i] = (values, md)
    return {"matchedRecords": 1}


async def _stats(emu: PineconeEmulator, index: _Index, body: dict[str, Any]) -> dict[str, Any]:
    pred = _predicate(body.get("filter"))
    counts = {ns: sum(1 for _, md in s.values() if pred(md)) for ns, s in index.namespaces.items()}
    return {
        "namespaces": {ns: {"vectorCount": c} for ns, c in sorted(counts.items()) if c},
        "dimension": index.dimension,
        "indexFullness": 0.0,
        "totalVectorCount": sum(counts.values()),
        "metric": index.metric,
        "vectorType": "dense",
    }


async def _fetch(emu: PineconeEmulator, index: _Index, request: Request) -> dict[str, Any]:
    ids = request.query_params.getlist("ids")
    if not ids or len(ids) > MAX_IDS:
        raise _HTTPError(400, f"ids: between 1 and {MAX_IDS} ids are required")
    ns = _namespace(request.query_params.get("namespace"))
    space = index.namespaces.get(ns, {})
    found = {i: _vector_json(i, *space[i]) for i in map(_check_id, ids) if i in space}
    return {"vectors": found, "namespace": ns, "usage": {"readUnits": 1}}


async def _list(emu: PineconeEmulator, index: _Index, request: Request) -> dict[str, Any]:
    qp = request.query_params
    ns = _namespace(qp.get("namespace"))
    prefix = qp.get("prefix") or ""
    try:
        limit = int(qp.get("limit") or 100)
    except ValueError:
        raise _HTTPError(400, "limit must be an integer") from None
    if not 1 <= limit <= 1000:
        raise _HTTPError(400, "limit must be from 1 to 1000")
    after = qp.get("paginationToken") or ""
    ids = sorted(i for i in index.namespaces.get(ns, {}) if i.startswith(prefix) and i > after)
    page = ids[:limit]
    out: dict[str, Any] = {
        "vectors": [{"id": i} for i in page],
        "namespace": ns,
        "usage": {"readUnits": 1},
    }
    if len(ids) > limit:
        out["pagination"] = {"next": page[-1]}
    return out


_JSON_DATA_ROUTES: dict[
    str, Callable[[PineconeEmulator, _Index, dict[str, Any]], Awaitable[dict[str, Any]]]
] = {
    "vectors/upsert": _upsert,
    "query": _query,
    "vectors/delete": _delete,
    "vectors/update": _update,
    "describe_index_stats": _stats,
}
_GET_DATA_ROUTES: dict[
    str, Callable[[PineconeEmulator, _Index, Request], Awaitable[dict[str, Any]]]
] = {
    "vectors/fetch": _fetch,
    "vectors/list": _list,
}


def create_app(emu: PineconeEmulator) -> Starlette:
    """The Starlette (ASGI) application of an emulator; usable in-process with
    ``httpx.ASGITransport`` or served by uvicorn."""

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def error(
        status: int, message: str, *, control: bool, retry_after: float | None = None
    ) -> Response:
        if control:
            body: dict[str, Any] = {
                "error": {"code": _CP_CODES.get(status, "UNKNOWN"), "message": message},
                "status": status,
            }
        else:
            body = {"code": _CODES.get(status, 2), "message": message, "details": []}
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return JSONResponse(body, status_code=status, headers=headers)

    async def handle(
        request: Request, control: bool, run: Callable[[], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        with emu._lock:
            emu.requests.append((request.method, path))
        key = request.headers.get("api-key")
        if not key or (emu.api_key is not None and key != emu.api_key):
            return error(401, "Invalid API key: pass it in the Api-Key header.", control=control)
        fault = emu._take_fault(path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None and not fault.apply:
            return error(
                fault.status,
                f"Injected fault {fault.status}",
                control=control,
                retry_after=fault.retry_after,
            )
        try:
            response = await run()
        except _HTTPError as exc:
            return error(exc.status, exc.message, control=control)
        if fault is not None and fault.status is not None:  # applied, then failed
            return error(
                fault.status,
                f"Injected fault {fault.status} after applying",
                control=control,
                retry_after=fault.retry_after,
            )
        return response

    async def read_json(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_REQUEST_BYTES:
            raise _HTTPError(
                413,
                f"Request size {len(raw)} bytes exceeds the maximum of {MAX_REQUEST_BYTES} bytes",
            )
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _HTTPError(400, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _HTTPError(400, "The request body must be a JSON object")
        return body

    async def list_indexes(request: Request) -> Response:
        async def run() -> Response:
            base = base_url(request)
            return JSONResponse({"indexes": [i.model(base) for i in emu.indexes.values()]})

        return await handle(request, True, run)

    async def create_index(request: Request) -> Response:
        async def run() -> Response:
            index = emu.create_index(await read_json(request))
            return JSONResponse(index.model(base_url(request)), status_code=201)

        return await handle(request, True, run)

    async def one_index(request: Request) -> Response:
        name = request.path_params["name"]

        async def run() -> Response:
            index = emu.index(name)
            if request.method == "DELETE":
                with emu._lock:
                    emu.indexes.pop(name, None)
                return Response(status_code=202)
            return JSONResponse(index.model(base_url(request)))

        return await handle(request, True, run)

    async def data(request: Request) -> Response:
        name, op = request.path_params["name"], request.path_params["op"]

        async def run() -> Response:
            index = emu.index(name)
            if request.method == "GET" and op in _GET_DATA_ROUTES:
                return JSONResponse(await _GET_DATA_ROUTES[op](emu, index, request))
            if request.method == "POST" and op in _JSON_DATA_ROUTES:
                body = await read_json(request)
                return JSONResponse(await _JSON_DATA_ROUTES[op](emu, index, body))
            raise _HTTPError(404, f"{request.method} /{op} is not part of the emulated API")

        return await handle(request, False, run)

    return Starlette(
        routes=[
            Route("/indexes", list_indexes, methods=["GET"]),
            Route("/indexes", create_index, methods=["POST"]),
            Route("/indexes/{name}", one_index, methods=["GET", "DELETE"]),
            Route("/data/{name}/{op:path}", data, methods=["GET", "POST"]),
        ]
    )
