"""Coroutine forms of a store's methods, for use inside async training or serving code.

Each call runs the store's blocking method in a worker thread (``asyncio.to_thread``), so the
event loop keeps running while SQLite commits or an HTTP request is in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from qstore.core.stores.base import Match, Record, StateStore

__all__ = ["AsyncStateStore"]


_P = ParamSpec("_P")
_T = TypeVar("_T")


async def _to_thread(func: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    import asyncio  # here, not at module level: `import qstore.core` stays fast

    return await asyncio.to_thread(func, *args, **kwargs)


class AsyncStateStore:
    """``store.aio``: the methods of ``store`` as coroutines.

    >>> import asyncio, qstore.core as qc
    >>> store = qc.stores.open("local", path=":memory:")
    >>> asyncio.run(store.aio.upsert(["zero"], [[1, 0]]))
    1
    >>> asyncio.run(store.aio.query([1, 0], top_k=1))[0].id
    'zero'
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"AsyncStateStore({self.store!r})"

    async def upsert(
        self,
        ids: Sequence[str],
        states: Any,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> int:
        """Coroutine form of ``store.upsert``."""
        return await _to_thread(
            self.store.upsert, ids, states, metadata, namespace, bindings=bindings
        )

    async def query(
        self,
        state: Any,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> list[Match]:
        """Coroutine form of ``store.query``."""
        return await _to_thread(
            self.store.query, state, top_k, filter, namespace, bindings=bindings
        )

    async def query_many(
        self,
        states: Any,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> list[list[Match]]:
        """Coroutine form of ``store.query_many``."""
        return await _to_thread(
            self.store.query_many, states, top_k, filter, namespace, bindings=bindings
        )

    async def fetch(self, ids: Sequence[str], namespace: str = "") -> dict[str, Record]:
        """Coroutine form of ``store.fetch``."""
        return await _to_thread(self.store.fetch, ids, namespace)

    async def delete(
        self,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        delete_all: bool = False,
    ) -> None:
        """Coroutine form of ``store.delete``."""
        await _to_thread(self.store.delete, ids, filter, namespace, delete_all=delete_all)

    async def count(self, namespace: str | None = None) -> int:
        """Coroutine form of ``store.count``."""
        return await _to_thread(self.store.count, namespace)

    async def namespaces(self) -> list[str]:
        """Coroutine form of ``store.namespaces``."""
        return await _to_thread(self.store.namespaces)

    async def close(self) -> None:
        """Coroutine form of ``store.close``."""
        await _to_thread(self.store.close)
