"""Quantum state stores: keep states with metadata, find the nearest ones by fidelity.

>>> import numpy as np, qstore.core as qc
>>> store = qc.stores.open("local", path=":memory:")
>>> bell = np.array([1, 0, 0, 1]) / np.sqrt(2)
>>> store.upsert(["bell", "00"], [bell, [1, 0, 0, 0]], [{"entangled": True}, {}])
2
>>> [(m.id, round(m.fidelity, 3)) for m in store.query(bell, top_k=2)]
[('bell', 1.0), ('00', 0.5)]

Stores plug in through the entry-point group ``qstore.stores``: ``local`` (here, embedded, on
disk) and ``pinecone`` (the qstore-pinecone distribution). Every store speaks the filter
language of :mod:`qstore.core.stores.filters` and ranks by exact fidelity, ties by id.
"""

from __future__ import annotations

from typing import Any

from qstore.core.stores import filters, states
from qstore.core.stores._aio import AsyncStateStore
from qstore.core.stores.base import (
    FilterError,
    Match,
    Record,
    StateStore,
    StoreError,
    StoreInputError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from qstore.core.stores.registry import (
    ENTRY_POINT_GROUP,
    KNOWN_STORES,
    StoreInfo,
    all_info,
    available,
    open_store,
    register,
    unregister,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_STORES",
    "AsyncStateStore",
    "FilterError",
    "LocalStateStore",
    "Match",
    "QuantumStateStore",
    "Record",
    "StateStore",
    "StoreError",
    "StoreInfo",
    "StoreInputError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "all_info",
    "available",
    "filters",
    "open",
    "register",
    "states",
    "unregister",
]

open = open_store


def QuantumStateStore(name: str = "local", **options: Any) -> StateStore:  # noqa: N802
    """Open a state store by name; the same as ``qc.stores.open(name, **options)``.

    >>> import qstore.core as qc
    >>> qc.QuantumStateStore("local", path=":memory:").name
    'local'
    """
    return open_store(name, **options)


def __getattr__(name: str) -> Any:
    if name == "LocalStateStore":
        from qstore.core.stores.local import LocalStateStore

        return LocalStateStore
    raise AttributeError(f"module 'qstore.core.stores' has no attribute {name!r}")
