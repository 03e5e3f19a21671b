"""``pinecone``: quantum states in a Pinecone index, ranked by exact fidelity.

Each state goes in with its global phase fixed canonically, as the unit vector ``[Re, Im]``
(``2 * 2**n`` floats, cosine metric). Cosine on those vectors is not fidelity, so a query asks
Pinecone for candidates with ``phases`` copies of the query state turned by equally spaced global
phases and re-ranks the candidates by fidelity from their stored values. The result is proven
exact: for any state not among the candidates, ``|<psi|phi>| <= max_m t_m / cos(pi / phases)``,
where ``t_m`` is the lowest score Pinecone returned for phase ``m``; when the k-th best fidelity
does not beat that bound, the store asks for more candidates (up to Pinecone's topK of 10,000)
and, as a last resort, reads the whole namespace. Ties are broken by id, as in every store.

Pinecone holds at most 20,000 dimensions, so states of up to 13 qubits; wider ones are refused
with an error that names the ``local`` store.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from qstore.core.stores import AsyncStateStore
from qstore.core.stores import states as st
from qstore.core.stores.base import (
    ComplexArray,
    Match,
    Record,
    StoreError,
    StoreInputError,
    StoreUnavailableError,
)
from qstore.core.stores.filters import compile_filter, normalize_metadata, validate_filter

__all__ = ["MAX_QUBITS", "PineconeStateStore", "create_index", "dimension_for"]

logger = logging.getLogger(__name__)

MAX_DIMENSION = 20_000
MAX_QUBITS = 13
"""Widest state a Pinecone index can hold as ``[Re, Im]`` (2 * 2**13 = 16,384 dimensions)."""
MAX_BATCH_RECORDS = 1000
MAX_BATCH_BYTES = 2 * 1024 * 1024
_FETCH_CHUNK = 100  # ids per fetch request (they travel in the URL)
_T = TypeVar("_T")


def dimension_for(n_qubits: int) -> int:
    """Index dimension for ``n_qubits``-qubit states: ``2 * 2**n``; refuses more than 13 qubits.

    >>> dimension_for(10)
    2048
    """
    if isinstance(n_qubits, bool) or not isinstance(n_qubits, int) or n_qubits < 1:
        raise StoreInputError(f"n_qubits must be a positive integer, got {n_qubits!r}.")
    if n_qubits > MAX_QUBITS:
        raise StoreInputError(
            f"{n_qubits}-qubit states need {2 * 2**n_qubits} dimensions as [Re, Im], over "
            f"Pinecone's {MAX_DIMENSION}; the pinecone store holds up to {MAX_QUBITS} qubits. "
            "Use the local store (qc.stores.open('local', path=...)) for wider states."
        )
    return 2 * 2**n_qubits


def _client(api_key: str | None, host: str | None, timeout: float) -> Any:
    from pinecone import Pinecone

    kwargs: dict[str, Any] = {"timeout": timeout}
    if host:
        kwargs["host"] = host
    return Pinecone(api_key=api_key, **kwargs)


def create_index(
    name: str,
    n_qubits: int,
    *,
    api_key: str | None = None,
    host: str | None = None,
    cloud: str = "aws",
    region: str = "us-east-1",
    timeout: int = 300,
    client: Any = None,
) -> Any:
    """Create a serverless index for ``n_qubits``-qubit states (dimension ``2 * 2**n``, cosine)
    and wait until it is ready; returns the SDK's index description.

    ``host`` is the control-plane URL (default Pinecone's; an emulator's for tests).
    """
    dim = dimension_for(n_qubits)
    pc = client if client is not None else _client(api_key, host, 30.0)
    return pc.indexes.create(
        name=name,
        dimension=dim,
        metric="cosine",
        spec={"serverless": {"cloud": cloud, "region": region}},
        timeout=timeout,
    )


class PineconeStateStore:
    """A state store on a Pinecone index, exact like ``local``.

    Args:
        index: the index name (resolved through the control plane).
        index_host: the index's data-plane URL instead of a name (no control-plane call).
        api_key: the Pinecone API key (default: ``PINECONE_API_KEY``).
        host: the control-plane URL (default Pinecone's; ``http://127.0.0.1:5080`` for
            ``qstore pinecone emulator``).
        n_qubits: width of the states; needed with ``create=True``, otherwise read from the
            index dimension.
        create: create the index (cosine, ``2 * 2**n`` dimensions) if it does not exist.
        phases: phase-turned probes per query (more: tighter bound, fewer extra rounds).
        overfetch: candidates asked for per probe, as a multiple of ``top_k``.
        max_retries: retries of one request on 429, 5xx, timeouts and connection errors, on top
            of the SDK's own; upserts are idempotent by id, so a retried write is never doubled.
        backoff: first retry delay in seconds (doubling, at most 20 s; ``Retry-After`` wins).
        timeout: seconds per HTTP attempt.
        workers: requests in flight at once for batches of queries.
        client: a ready ``pinecone.Pinecone`` instead of ``api_key``/``host``.

    >>> store = qc.stores.open(
    ...     "pinecone", index="states", n_qubits=10, create=True
    ... )  # doctest: +SKIP
    """

    name = "pinecone"

    def __init__(
        self,
        index: str | None = None,
        *,
        index_host: str | None = None,
        api_key: str | None = None,
        host: str | None = None,
        n_qubits: int | None = None,
        create: bool = False,
        cloud: str = "aws",
        region: str = "us-east-1",
        phases: int = 8,
        overfetch: int = 4,
        max_retries: int = 6,
        backoff: float = 0.5,
        timeout: float = 30.0,
        workers: int = 8,
        backend: str = "local",
        client: Any = None,
    ) -> None:
        if (index is None) == (index_host is None):
            raise StoreInputError(
                "Give the index by name (index='states') or by data-plane URL "
                "(index_host='https://states-abc.svc.pinecone.io'), not both or neither."
            )
        if not isinstance(phases, int) or phases < 3:
            raise StoreInputError(f"phases must be an integer >= 3, got {phases!r}.")
        if not isinstance(overfetch, int) or overfetch < 1:
            raise StoreInputError(f"overfetch must be a positive integer, got {overfetch!r}.")
        if n_qubits is not None:
            dimension_for(n_qubits)
        self.phases = phases
        self.overfetch = overfetch
        self.max_retries = max_retries
        self.backoff = backoff
        self.workers = max(1, workers)
        self.backend = backend
        self._closed = False
        self._pc = client if client is not None else _client(api_key, host, timeout)
        if index_host is None:
            assert index is not None
            if create and not self._call("describe", lambda: self._pc.indexes.exists(index)):
                if n_qubits is None:
                    raise StoreInputError("create=True needs n_qubits to size the index.")
                self._call(
                    "create index",
                    lambda: create_index(
                        index, n_qubits, cloud=cloud, region=region, client=self._pc
                    ),
                )
            description = self._call("describe", lambda: self._pc.indexes.describe(index))
            index_host = str(description.host)
        self.index_name = index
        self.index_host = index_host
        self._index = self._pc.index(host=index_host)
        stats = self._call("describe_index_stats", lambda: self._index.describe_index_stats())
        dim = stats.dimension
        if dim is None or dim < 4 or dim & (dim - 1) or (dim // 2) > 2**MAX_QUBITS:
            raise StoreError(
                f"Index {index or index_host!r} has dimension {dim}, not 2 * 2**n for n <= "
                f"{MAX_QUBITS}: it was not made for quantum states (create one with "
                "qstore.pinecone.create_index)."
            )
        if stats.metric not in (None, "cosine"):
            raise StoreError(
                f"Index {index or index_host!r} uses metric {stats.metric!r}; the pinecone store "
                "needs 'cosine' (create one with qstore.pinecone.create_index)."
            )
        self._n_qubits = int(dim // 2).bit_length() - 1
        if n_qubits is not None and n_qubits != self._n_qubits:
            raise StoreInputError(
                f"Index {index or index_host!r} holds {self._n_qubits}-qubit states "
                f"(dimension {dim}), not {n_qubits}."
            )

    def __repr__(self) -> str:
        return (
            f"PineconeStateStore(index={self.index_name or self.index_host!r}, "
            f"n_qubits={self._n_qubits})"
        )

    def __enter__(self) -> PineconeStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def n_qubits(self) -> int:
        """Width of the states in the index."""
        return self._n_qubits

    @property
    def aio(self) -> AsyncStateStore:
        """This store with coroutine methods (``await store.aio.query(...)``)."""
        return AsyncStateStore(self)

    def close(self) -> None:
        """Close the SDK's connections."""
        if not self._closed:
            self._closed = True
            self._index.close()

    # -- requests with retries ------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        from pinecone.errors.exceptions import (
            ApiError,
            PineconeConnectionError,
            PineconeTimeoutError,
            RateLimitError,
            ServiceError,
        )

        if self._closed:
            raise StoreError("The pinecone store is closed.")
        delay = self.backoff
        for attempt in range(self.max_retries + 1):
            try:
                return fn()
            except (
                RateLimitError,
                ServiceError,
                PineconeConnectionError,
                PineconeTimeoutError,
            ) as exc:
                if attempt == self.max_retries:
                    raise StoreUnavailableError(
                        f"Pinecone {what} failed {attempt + 1} times, last with "
                        f"{type(exc).__name__}: {exc}. Nothing was lost that was acknowledged; "
                        "retry later (upserts can be repeated safely)."
                    ) from exc
                wait = getattr(exc, "retry_after", None)
                wait = min(delay, 20.0) if wait is None else float(wait)
                logger.info(
                    "Pinecone %s: %s; retry %d in %.2fs",
                    what,
                    type(exc).__name__,
                    attempt + 1,
                    wait,
                )
                time.sleep(wait)
                delay *= 2
            except ApiError as exc:
                raise StoreError(f"Pinecone {what} was refused: {exc}") from exc
        raise AssertionError("unreachable")

    # -- writes ---------------------------------------------------------------------------
    def upsert(
        self,
        ids: Sequence[str],
        states: Any,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> int:
        """Insert or replace states, in requests within Pinecone's limits (1,000 records, 2 MB).

        All input is checked before the first request. Returns the number written.
        """
        ids = st.check_ids(ids)
        namespace = st.check_namespace(namespace)
        arr = st.as_states(states, bindings=bindings, n_qubits=self._n_qubits, backend=self.backend)
        if arr.shape[0] != len(ids):
            raise StoreInputError(
                f"{len(ids)} ids but {arr.shape[0]} states; give one id per state."
            )
        mds = _metadata_list(metadata, len(ids))
        vectors = st.to_real(arr, np.float32)
        written = 0
        for batch in _batches(ids, vectors, mds):
            self._call(
                "upsert",
                lambda batch=batch: self._index.upsert(vectors=batch, namespace=namespace),
            )
            written += len(batch)
        return written

    def delete(
        self,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        delete_all: bool = False,
    ) -> None:
        """Delete ``ids`` (in requests of 1,000), the states matching ``filter`` (passed to
        Pinecone), or the whole namespace (``delete_all=True``)."""
        namespace = st.check_namespace(namespace)
        if sum((ids is not None, filter is not None, bool(delete_all))) != 1:
            raise StoreInputError(
                "delete() needs exactly one of ids=[...], filter={...} or delete_all=True."
            )
        if ids is not None:
            id_list = st.check_ids(ids, unique=False)
            for k in range(0, len(id_list), MAX_BATCH_RECORDS):
                chunk = id_list[k : k + MAX_BATCH_RECORDS]
                self._call("delete", lambda c=chunk: self._index.delete(ids=c, namespace=namespace))
        elif filter is not None:
            f = validate_filter(filter)
            if not f:
                raise StoreInputError("filter={} matches everything; use delete_all=True.")
            self._call("delete", lambda: self._index.delete(filter=f, namespace=namespace))
        elif namespace in self.namespaces():
            self._call("delete", lambda: self._index.delete(delete_all=True, namespace=namespace))

    # -- reads ----------------------------------------------------------------------------
    def _stats(self) -> dict[str, int]:
        stats = self._call("describe_index_stats", lambda: self._index.describe_index_stats())
        return {
            ("" if ns == "__default__" else ns): int(s.vector_count)
            for ns, s in stats.namespaces.items()
        }

    def count(self, namespace: str | None = None) -> int:
        """Number of states in ``namespace`` (``None``: all), from the index statistics."""
        counts = self._stats()
        if namespace is None:
            return sum(counts.values())
        return counts.get(st.check_namespace(namespace), 0)

    def namespaces(self) -> list[str]:
        """Namespaces holding at least one state, sorted."""
        return sorted(ns for ns, c in self._stats().items() if c)

    def fetch(self, ids: Sequence[str], namespace: str = "") -> dict[str, Record]:
        """The records of ``ids`` that exist; states come back in canonical phase."""
        id_list = st.check_ids(ids, unique=False)
        namespace = st.check_namespace(namespace)
        found: dict[str, Record] = {}
        for k in range(0, len(id_list), _FETCH_CHUNK):
            chunk = id_list[k : k + _FETCH_CHUNK]
            res = self._call("fetch", lambda c=chunk: self._index.fetch(ids=c, namespace=namespace))
            for i, v in res.vectors.items():
                found[i] = Record(i, _state(v.values), dict(v.metadata or {}))
        return {i: found[i] for i in id_list if i in found}

    def query(
        self,
        state: Any,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> list[Match]:
        """The ``top_k`` states of highest fidelity with ``state``, exact, ties by id."""
        arr = st.one_state(state, bindings=bindings, n_qubits=self._n_qubits, backend=self.backend)
        return self.query_many(arr, top_k, filter, namespace)[0]

    def query_many(
        self,
        states: Any,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> list[list[Match]]:
        """:meth:`query` for every row of ``states``; requests run ``workers`` at a time."""
        arr = st.as_states(states, bindings=bindings, n_qubits=self._n_qubits, backend=self.backend)
        top_k = st.check_top_k(top_k)
        namespace = st.check_namespace(namespace)
        f = validate_filter(filter) or None
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return [self._search(q, top_k, f, namespace, pool) for q in arr]

    def _probes(self, query: ComplexArray) -> list[list[float]]:
        c = st.canonical_phase(query)[0]
        turns = np.exp(2j * np.pi * np.arange(self.phases) / self.phases)
        return [
            np.concatenate([(c * t).real, (c * t).imag]).astype(np.float32).tolist() for t in turns
        ]

    def _search(
        self,
        query: ComplexArray,
        top_k: int,
        f: dict[str, Any] | None,
        namespace: str,
        pool: ThreadPoolExecutor,
    ) -> list[Match]:
        probes = self._probes(query)
        asked = min(max(top_k * self.overfetch, top_k + 10), st.MAX_TOP_K)
        cos = math.cos(math.pi / self.phases)
        while True:
            results = list(
                pool.map(
                    lambda p, n=asked: self._call(
                        "query",
                        lambda: self._index.query(
                            vector=p,
                            top_k=n,
                            filter=f,
                            namespace=namespace,
                            include_values=True,
                            include_metadata=True,
                        ),
                    ),
                    probes,
                )
            )
            cand: dict[str, tuple[list[float], dict[str, Any]]] = {}
            for r in results:
                for m in r.matches:
                    cand[m.id] = (m.values, dict(m.metadata or {}))
            best = _rank(query, cand, top_k)
            if any(len(r.matches) < asked for r in results):
                return best  # every state matching the filter was a candidate
            bound = max(float(r.matches[-1].score) for r in results) / cos + 1e-6
            if len(best) == top_k and math.sqrt(best[-1].fidelity) >= bound:
                return best  # nothing outside the candidates can beat the k-th
            if asked == st.MAX_TOP_K:
                logger.info(
                    "pinecone query: bound not met at topK=%d; scanning %r", asked, namespace
                )
                return _rank(query, self._scan(namespace, f), top_k)
            asked = min(asked * 4, st.MAX_TOP_K)

    def _scan(
        self, namespace: str, f: dict[str, Any] | None
    ) -> dict[str, tuple[list[float], dict[str, Any]]]:
        """Every state of ``namespace`` that matches ``f`` (list, then fetch)."""
        pred = compile_filter(f)
        out: dict[str, tuple[list[float], dict[str, Any]]] = {}
        for ids in self._list_ids(namespace):
            for k in range(0, len(ids), _FETCH_CHUNK):
                chunk = ids[k : k + _FETCH_CHUNK]
                res = self._call(
                    "fetch", lambda c=chunk: self._index.fetch(ids=c, namespace=namespace)
                )
                for i, v in res.vectors.items():
                    md = dict(v.metadata or {})
                    if pred(md):
                        out[i] = (v.values, md)
        return out

    def _list_ids(self, namespace: str) -> Iterator[list[str]]:
        token: str | None = None
        while True:
            page = self._call(
                "list",
                lambda t=token: self._index.list_paginated(
                    namespace=namespace, limit=1000, pagination_token=t
                ),
            )
            yield [v.id for v in page.vectors if v.id is not None]
            token = page.pagination.next if page.pagination is not None else None
            if not token:
                return


def _state(values: Sequence[float]) -> ComplexArray:
    return st.from_real(np.asarray(values, dtype=np.float64))[0]


def _rank(
    query: ComplexArray, cand: Mapping[str, tuple[Sequence[float], dict[str, Any]]], k: int
) -> list[Match]:
    if not cand:
        return []
    ids = list(cand)
    amps = st.from_real(np.asarray([cand[i][0] for i in ids], dtype=np.float64))
    fid = st.fidelities(query[None, :], amps)[0]
    return st.top_k(fid, ids, k, [cand[i][1] for i in ids])  # type: ignore[no-any-return]


def _metadata_list(
    metadata: Sequence[Mapping[str, Any] | None] | None, n: int
) -> list[dict[str, Any]]:
    if metadata is None:
        return [{} for _ in range(n)]
    if isinstance(metadata, Mapping) or not isinstance(metadata, Sequence):
        raise StoreInputError(
            f"metadata must be a list with one dict (or None) per state, got "
            f"{type(metadata).__name__}; for one state pass [{{...}}]."
        )
    if len(metadata) != n:
        raise StoreInputError(f"{n} states but {len(metadata)} metadata entries; give one each.")
    return [normalize_metadata(md, f"[{j}]") for j, md in enumerate(metadata)]


def _batches(
    ids: Sequence[str], vectors: np.ndarray, mds: Sequence[dict[str, Any]]
) -> Iterator[list[dict[str, Any]]]:
    """Records grouped into requests of at most 1,000 records and 2 MB of JSON."""
    batch: list[dict[str, Any]] = []
    size = 64  # the envelope: {"vectors": [...], "namespace": "..."}
    for i, v, md in zip(ids, vectors, mds, strict=True):
        rec: dict[str, Any] = {"id": i, "values": v.tolist()}
        if md:
            rec["metadata"] = md
        n = len(json.dumps(rec, separators=(",", ":"))) + 1 + 512  # + namespace allowance
        if batch and (len(batch) == MAX_BATCH_RECORDS or size + n > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 64
        batch.append(rec)
        size += n
    if batch:
        yield batch
