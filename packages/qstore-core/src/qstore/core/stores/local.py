"""``local``: the embedded quantum state store, durable on disk, exact, no server.

SQLite (the standard library's ``sqlite3``) is the database of record: WAL journal, one
transaction per batch, ``synchronous=FULL`` by default, so an acknowledged write survives a
process kill (and, with FULL, a power cut) and a crash never leaves a partial batch. Search
scans an in-memory copy of the amplitudes with one batched complex product per query batch; the
copy is rebuilt when another connection commits (SQLite's ``data_version``).

With ``precision="single"`` (the default) the copy holds complex64 amplitudes, half the memory
and bandwidth of complex128; every candidate whose single-precision fidelity is within the
rounding bound of the k-th best is then re-scored from the complex128 amplitudes in the
database, so the ranking is the exact one. ``precision="double"`` keeps complex128 in memory.

>>> import numpy as np, qstore.core as qc
>>> store = qc.stores.open("local", path=":memory:")
>>> plus = np.array([1, 1]) / np.sqrt(2)
>>> store.upsert(["zero", "plus"], [[1, 0], plus], [{"basis": "z"}, {"basis": "x"}])
2
>>> [(m.id, round(m.fidelity, 6)) for m in store.query([1, 0], top_k=2)]
[('zero', 1.0), ('plus', 0.5)]
>>> store.query([1, 0], top_k=1, filter={"basis": "x"})[0].id
'plus'
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from qstore.core.stores import states as st
from qstore.core.stores._aio import AsyncStateStore
from qstore.core.stores.base import (
    ComplexArray,
    Match,
    Record,
    StoreError,
    StoreInputError,
)
from qstore.core.stores.filters import compile_filter, normalize_metadata

__all__ = ["LocalStateStore"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS qstore_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS qstore_states (
    rowid INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    amplitudes BLOB NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE (namespace, id)
);
"""
_CHUNK = 500  # ids per "IN (...)" clause, well under SQLite's variable limit
_U32 = 2.0**-24  # unit roundoff of float32
_SYNC = ("off", "normal", "full", "extra")


class _Namespace:
    """The in-memory copy of one namespace: ids, database rowids, amplitudes, metadata."""

    def __init__(self, width: int, dtype: npt.DTypeLike) -> None:
        self.ids: list[str] = []
        self.pos: dict[str, int] = {}
        self.metadata: list[dict[str, Any]] = []
        self.rowids = np.zeros(16, dtype=np.int64)
        self.amps = np.zeros((16, width), dtype=dtype)

    @property
    def size(self) -> int:
        return len(self.ids)

    def put(
        self,
        ids: Sequence[str],
        rowids: Sequence[int],
        amps: ComplexArray,
        metadata: Sequence[dict[str, Any]],
    ) -> None:
        new = [i for i in ids if i not in self.pos]
        need = self.size + len(new)
        if need > self.amps.shape[0]:
            cap = max(need, 2 * self.amps.shape[0])
            grown = np.zeros((cap, self.amps.shape[1]), dtype=self.amps.dtype)
            grown[: self.size] = self.amps[: self.size]
            self.amps = grown
            self.rowids = np.resize(self.rowids, cap)
        rows = np.empty(len(ids), dtype=np.int64)
        for j, i in enumerate(ids):
            p = self.pos.get(i)
            if p is None:
                p = self.size
                self.pos[i] = p
                self.ids.append(i)
                self.metadata.append(metadata[j])
            else:
                self.metadata[p] = metadata[j]
            rows[j] = p
        self.amps[rows] = amps
        self.rowids[rows] = rowids

    def remove(self, ids: Sequence[str]) -> None:
        for i in ids:
            p = self.pos.pop(i, None)
            if p is None:
                continue
            last = self.size - 1
            if p != last:  # move the last row into the hole
                moved = self.ids[last]
                self.ids[p] = moved
                self.metadata[p] = self.metadata[last]
                self.amps[p] = self.amps[last]
                self.rowids[p] = self.rowids[last]
                self.pos[moved] = p
            self.ids.pop()
            self.metadata.pop()


class LocalStateStore:
    """The embedded state store: SQLite on disk, exact NumPy fidelity search.

    Args:
        path: the database file (created if missing), or ``":memory:"`` for a throwaway store.
        n_qubits: fix the width of the states up front; otherwise the first upsert fixes it.
        precision: ``"single"`` (complex64 search copy, exact re-scoring; the default) or
            ``"double"`` (complex128 search copy).
        synchronous: SQLite's ``synchronous`` level: ``"full"`` (default: an acknowledged batch
            survives a power cut) or ``"normal"`` (survives a process kill; faster commits).
        backend: the backend that turns circuits into states (``"local"``).

    >>> import qstore.core as qc
    >>> with qc.stores.open("local", path=":memory:", n_qubits=1) as store:
    ...     store.upsert(["one"], [[0, 1]], namespace="demo")
    ...     store.namespaces()
    1
    ['demo']
    """

    name = "local"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        n_qubits: int | None = None,
        precision: Literal["single", "double"] = "single",
        synchronous: Literal["off", "normal", "full", "extra"] = "full",
        backend: str = "local",
    ) -> None:
        if path is None:
            raise StoreInputError(
                "The local store needs a database file: path='states.db' (created if missing), "
                "or path=':memory:' for a store that lives only in this process."
            )
        if precision not in ("single", "double"):
            raise StoreInputError(f"precision must be 'single' or 'double', got {precision!r}.")
        if synchronous not in _SYNC:
            raise StoreInputError(f"synchronous must be one of {_SYNC}, got {synchronous!r}.")
        if n_qubits is not None and (isinstance(n_qubits, bool) or not 1 <= int(n_qubits) <= 30):
            raise StoreInputError(f"n_qubits must be an integer from 1 to 30, got {n_qubits!r}.")
        self.path = str(path)
        self.precision = precision
        self.backend = backend
        self._dtype = np.complex64 if precision == "single" else np.complex128
        self._lock = threading.RLock()
        self._closed = False
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the state database {self.path!r}: {exc}") from exc
        self._n_qubits: int | None = None
        self._spaces: dict[str, _Namespace] = {}
        self._version = -1
        with self._lock:
            self._reload()
            if n_qubits is not None:
                if self._n_qubits is None:
                    with self._transaction():
                        self._set_width(int(n_qubits))
                elif self._n_qubits != n_qubits:
                    raise StoreInputError(
                        f"{self.path!r} holds {self._n_qubits}-qubit states, not {n_qubits}; "
                        "open it without n_qubits or use another file."
                    )

    # -- plumbing --------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"LocalStateStore(path={self.path!r}, n_qubits={self._n_qubits}, "
            f"precision={self.precision!r})"
        )

    def __enter__(self) -> LocalStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def n_qubits(self) -> int | None:
        """Width of the stored states (``None`` until fixed)."""
        return self._n_qubits

    @property
    def aio(self) -> AsyncStateStore:
        """This store with coroutine methods (``await store.aio.query(...)``)."""
        return AsyncStateStore(self)

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()
                self._spaces.clear()

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _sync(self) -> None:
        """Reload the in-memory copy if another connection committed since we last looked."""
        if self._closed:
            raise StoreError(f"The store {self.path!r} is closed.")
        if self._data_version() != self._version:
            self._reload()

    def _reload(self) -> None:
        self._version = self._data_version()
        row = self._db.execute("SELECT value FROM qstore_meta WHERE key='n_qubits'").fetchone()
        self._n_qubits = None if row is None else int(row[0])
        self._spaces = {}
        if self._n_qubits is None:
            return
        width = 2**self._n_qubits
        cur = self._db.execute(
            "SELECT namespace, id, rowid, amplitudes, metadata FROM qstore_states "
            "ORDER BY namespace, rowid"
        )
        while batch := cur.fetchmany(4096):
            by_ns: dict[str, list[tuple[Any, ...]]] = {}
            for r in batch:
                by_ns.setdefault(r[0], []).append(r)
            for ns, rows in by_ns.items():
                space = self._spaces.setdefault(ns, _Namespace(width, self._dtype))
                amps = np.frombuffer(b"".join(r[3] for r in rows), dtype="<c16")
                space.put(
                    [r[1] for r in rows],
                    [r[2] for r in rows],
                    amps.reshape(len(rows), width),
                    [json.loads(r[4]) for r in rows],
                )
        logger.debug("Loaded %d states from %s", self._count_all(), self.path)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction, holding SQLite's write lock from the start."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot start a write on {self.path!r}: {exc}") from exc
        try:
            if self._data_version() != self._version:
                self._reload()
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._db.execute("ROLLBACK")
            self._reload()  # memory may hold changes of the rolled-back batch
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"Write to {self.path!r} failed, nothing written: {exc}") from exc
            raise

    def _set_width(self, n_qubits: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO qstore_meta VALUES ('format', ?), ('n_qubits', ?)",
            (FORMAT_VERSION, str(n_qubits)),
        )
        self._n_qubits = n_qubits

    def _count_all(self) -> int:
        return sum(s.size for s in self._spaces.values())

    # -- writes ----------------------------------------------------------------------------
    def upsert(
        self,
        ids: Sequence[str],
        states: Any,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> int:
        """Insert or replace ``states`` under ``ids`` in one transaction; returns the count.

        ``states``: ``[N, 2**n]`` normalised amplitudes, or a circuit with ``bindings``
        ``[N, n_params]``. All input is checked before anything is written.
        """
        ids = st.check_ids(ids)
        namespace = st.check_namespace(namespace)
        arr = st.as_states(states, bindings=bindings, n_qubits=self._n_qubits, backend=self.backend)
        if arr.shape[0] != len(ids):
            raise StoreInputError(
                f"{len(ids)} ids but {arr.shape[0]} states; give one id per state."
            )
        mds = _metadata_list(metadata, len(ids))
        blobs = [row.tobytes() for row in np.ascontiguousarray(arr, dtype="<c16")]
        texts = [json.dumps(md, separators=(",", ":"), ensure_ascii=False) for md in mds]
        n_qubits = arr.shape[1].bit_length() - 1
        with self._lock:
            self._sync()
            with self._transaction():
                if self._n_qubits is None:
                    self._set_width(n_qubits)
                elif self._n_qubits != n_qubits:  # another process fixed another width
                    raise StoreInputError(
                        f"This store holds {self._n_qubits}-qubit states, not {n_qubits}."
                    )
                space = self._spaces.get(namespace)
                top = self._db.execute("SELECT coalesce(max(rowid), 0) FROM qstore_states")
                nxt = int(top.fetchone()[0])
                rowids = []
                for i in ids:
                    old = None if space is None else space.pos.get(i)
                    if old is None:
                        nxt += 1
                        rowids.append(nxt)
                    else:
                        rowids.append(int(space.rowids[old]))  # type: ignore[union-attr]
                self._db.executemany(
                    "INSERT OR REPLACE INTO qstore_states (rowid, namespace, id, amplitudes, "
                    "metadata) VALUES (?, ?, ?, ?, ?)",
                    zip(rowids, [namespace] * len(ids), ids, blobs, texts, strict=True),
                )
            self._version = self._data_version()
            width = arr.shape[1]
            self._spaces.setdefault(namespace, _Namespace(width, self._dtype)).put(
                ids, rowids, arr, mds
            )
        return len(ids)

    def delete(
        self,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        delete_all: bool = False,
    ) -> None:
        """Delete ``ids``, or the states matching ``filter``, or (``delete_all=True``) the whole
        namespace, in one transaction. Ids that do not exist are ignored."""
        namespace = st.check_namespace(namespace)
        if sum((ids is not None, filter is not None, bool(delete_all))) != 1:
            raise StoreInputError(
                "delete() needs exactly one of ids=[...], filter={...} or delete_all=True."
            )
        id_list = st.check_ids(ids, unique=False) if ids is not None else None
        pred = compile_filter(filter) if filter is not None else None
        with self._lock:
            self._sync()
            with self._transaction():
                space = self._spaces.get(namespace)
                if space is None:
                    return
                if id_list is None:
                    id_list = [
                        i
                        for i, md in zip(space.ids, space.metadata, strict=True)
                        if pred is None or pred(md)
                    ]
                for k in range(0, len(id_list), _CHUNK):
                    chunk = id_list[k : k + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    self._db.execute(
                        f"DELETE FROM qstore_states WHERE namespace = ? AND id IN ({marks})",
                        [namespace, *chunk],
                    )
            self._version = self._data_version()
            space.remove(id_list)
            if space.size == 0:
                del self._spaces[namespace]

    # -- reads -----------------------------------------------------------------------------
    def fetch(self, ids: Sequence[str], namespace: str = "") -> dict[str, Record]:
        """The records of ``ids`` that exist, with their exact complex128 amplitudes."""
        id_list = st.check_ids(ids, unique=False)
        namespace = st.check_namespace(namespace)
        out: dict[str, Record] = {}
        with self._lock:
            self._sync()
            for k in range(0, len(id_list), _CHUNK):
                chunk = id_list[k : k + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT id, amplitudes, metadata FROM qstore_states "
                    f"WHERE namespace = ? AND id IN ({marks})",
                    [namespace, *chunk],
                ).fetchall()
                for i, blob, md in rows:
                    out[i] = Record(i, np.frombuffer(blob, dtype="<c16").copy(), json.loads(md))
        return {i: out[i] for i in id_list if i in out}

    def count(self, namespace: str | None = None) -> int:
        """Number of states in ``namespace``, or in all namespaces when ``None``."""
        with self._lock:
            self._sync()
            if namespace is None:
                return self._count_all()
            space = self._spaces.get(st.check_namespace(namespace))
            return 0 if space is None else space.size

    def namespaces(self) -> list[str]:
        """Namespaces holding at least one state, sorted."""
        with self._lock:
            self._sync()
            return sorted(ns for ns, s in self._spaces.items() if s.size)

    def query(
        self,
        state: Any,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> list[Match]:
        """The ``top_k`` states of highest fidelity with ``state`` (ties by id).

        ``state``: amplitudes ``[2**n]`` (or ``[1, 2**n]``), or a circuit with one row of
        ``bindings``.
        """
        arr = st.one_state(state, bindings=bindings, n_qubits=self._n_qubits, backend=self.backend)
        return self._search(arr, top_k, filter, namespace)[0]

    def query_many(
        self,
        states: Any,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> list[list[Match]]:
        """:meth:`query` for every row of ``states``, with one complex product for the batch."""
        arr = st.as_states(states, bindings=bindings, n_qubits=self._n_qubits, backend=self.backend)
        return self._search(arr, top_k, filter, namespace)

    def _search(
        self, queries: ComplexArray, top_k: int, filter: Mapping[str, Any] | None, namespace: str
    ) -> list[list[Match]]:
        top_k = st.check_top_k(top_k)
        namespace = st.check_namespace(namespace)
        pred = compile_filter(filter) if filter else None
        with self._lock:
            self._sync()
            space = self._spaces.get(namespace)
            if space is None or space.size == 0:
                return [[] for _ in range(queries.shape[0])]
            n = space.size
            if pred is None:
                rows = None
                amps = space.amps[:n]
            else:
                rows = np.fromiter(
                    (i for i, md in enumerate(space.metadata) if pred(md)), dtype=np.int64
                )
                if rows.size == 0:
                    return [[] for _ in range(queries.shape[0])]
                amps = space.amps[rows]
            q = queries.astype(self._dtype, copy=False)
            overlap = np.conj(q) @ amps.T  # [B, M]: one product for the whole batch
            fid = overlap.real.astype(np.float64) ** 2 + overlap.imag.astype(np.float64) ** 2
            return [self._best(space, queries[b], fid[b], rows, top_k) for b in range(fid.shape[0])]

    def _best(
        self,
        space: _Namespace,
        query: ComplexArray,
        fid: npt.NDArray[np.float64],
        rows: npt.NDArray[np.int64] | None,
        k: int,
    ) -> list[Match]:
        m = fid.shape[0]
        k_eff = min(k, m)
        kth = float(np.partition(fid, m - k_eff)[m - k_eff])
        slack = 0.0
        if self._dtype == np.complex64:
            # Rounding bound of a complex64 inner product of unit vectors (inputs rounded,
            # products accumulated), in fidelity: |F32 - F| <= 2 d + d**2.
            d = (2 * query.shape[0] + 8) * _U32
            slack = 2 * (2 * d + d * d)
        cand = np.flatnonzero(fid >= kth - slack)
        pos = cand if rows is None else rows[cand]
        ids = [space.ids[int(p)] for p in pos]
        mds = [space.metadata[int(p)] for p in pos]
        if self._dtype == np.complex64:
            exact = self._exact(space.rowids[pos], query)
        else:  # re-scored one by one: the same number whatever the batch
            exact = st.fidelities(query, space.amps[pos])[0]
        return st.top_k(exact, ids, k, mds)

    def _exact(self, rowids: npt.NDArray[np.int64], query: ComplexArray) -> npt.NDArray[np.float64]:
        """Fidelities from the complex128 amplitudes in the database, in ``rowids`` order."""
        found: dict[int, bytes] = {}
        keys = [int(r) for r in rowids]
        for k in range(0, len(keys), _CHUNK):
            chunk = keys[k : k + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(
                self._db.execute(
                    f"SELECT rowid, amplitudes FROM qstore_states WHERE rowid IN ({marks})", chunk
                ).fetchall()
            )
        width = query.shape[0]
        amps = np.frombuffer(b"".join(found[r] for r in keys), dtype="<c16").reshape(-1, width)
        result: npt.NDArray[np.float64] = st.fidelities(query, amps)[0]
        return result


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
