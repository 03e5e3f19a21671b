"""What every state store shares: the result types, the protocol and the errors.

A store keeps quantum states under string ids in namespaces, with metadata, and answers
nearest-neighbour queries by fidelity ``F(psi, phi) = |<psi|phi>|**2``.

>>> from qstore.core.stores import Match
>>> Match("bell", 1.0, {"kind": "bell"}).fidelity
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from qstore.core.errors import QStoreError

if TYPE_CHECKING:
    from qstore.core.stores._aio import AsyncStateStore

__all__ = [
    "ComplexArray",
    "FilterError",
    "Match",
    "MetadataValue",
    "Record",
    "StateStore",
    "StoreError",
    "StoreInputError",
    "StoreNotFoundError",
    "StoreUnavailableError",
]

ComplexArray = npt.NDArray[np.complexfloating[Any, Any]]
MetadataValue = str | int | float | bool | list[str]
"""What a metadata value may be: the types the filter language can compare."""


class StoreError(QStoreError, RuntimeError):
    """A state store failed (database, network, or a remote service)."""


class StoreUnavailableError(StoreError):
    """A remote store kept failing (rate limits, server errors, timeouts) after all retries."""


class StoreInputError(QStoreError, ValueError):
    """Bad input to a store (ids, states, metadata, namespace, top_k); nothing was written."""


class FilterError(StoreInputError):
    """A metadata filter is not in the filter language (unknown operator, bad operand)."""


class StoreNotFoundError(QStoreError, KeyError):
    """No store is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Match:
    """One query result: the stored state's id, its fidelity with the query, its metadata.

    >>> Match("a", 0.5).metadata
    {}
    """

    id: str
    fidelity: float
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Record:
    """A stored state as :meth:`StateStore.fetch` returns it.

    ``state`` is the state vector ``[2**n]`` (complex128); stores that keep states in real form
    return it with its global phase fixed canonically (see ``docs/stores.md``).
    """

    id: str
    state: ComplexArray
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Record(id={self.id!r}, n_qubits={self.n_qubits}, metadata={dict(self.metadata)!r})"

    @property
    def n_qubits(self) -> int:
        """Number of qubits of the state."""
        return int(self.state.shape[-1]).bit_length() - 1


@runtime_checkable
class StateStore(Protocol):
    """The interface of every quantum state store (``local``, ``pinecone``, third-party ones).

    ``states`` are arrays ``[N, 2**n]`` of normalised complex amplitudes (qubit 0 most
    significant), or a :class:`~qstore.core.UnifiedCircuit` with ``bindings`` ``[N, n_params]``
    that the store simulates. Results rank by exact fidelity, ties broken by id.
    """

    name: str

    @property
    def n_qubits(self) -> int | None:
        """Width of the stored states (``None`` while an empty store has not fixed it)."""
        ...

    @property
    def aio(self) -> AsyncStateStore:
        """The same store with coroutine methods, for async code."""
        ...

    def upsert(
        self,
        ids: Sequence[str],
        states: Any,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> int:
        """Insert or replace states; returns how many were written."""
        ...

    def query(
        self,
        state: Any,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> list[Match]:
        """The ``top_k`` stored states of highest fidelity with ``state``."""
        ...

    def query_many(
        self,
        states: Any,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        bindings: Any = None,
    ) -> list[list[Match]]:
        """:meth:`query` for each row of ``states``, in one call."""
        ...

    def fetch(self, ids: Sequence[str], namespace: str = "") -> dict[str, Record]:
        """The stored records of ``ids`` that exist (missing ids are left out)."""
        ...

    def delete(
        self,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        *,
        delete_all: bool = False,
    ) -> None:
        """Delete by ids, by filter, or everything in the namespace (``delete_all=True``)."""
        ...

    def count(self, namespace: str | None = None) -> int:
        """Number of states in ``namespace`` (``None``: in all namespaces)."""
        ...

    def namespaces(self) -> list[str]:
        """Names of the namespaces holding at least one state, sorted."""
        ...

    def close(self) -> None:
        """Release connections and files; the store cannot be used afterwards."""
        ...
