"""The store registry: store names resolve to classes through the ``qstore.stores`` entry points.

The embedded ``local`` store is declared by qstore-core itself, ``pinecone`` by qstore-pinecone;
a third-party distribution that declares one is a first-class store. :func:`register` adds stores
at run time (tests, notebooks).

>>> from qstore.core import stores
>>> "local" in stores.available()
True
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from qstore.core.errors import MissingDependencyError
from qstore.core.stores.base import StateStore, StoreError, StoreNotFoundError

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_STORES",
    "StoreInfo",
    "all_info",
    "available",
    "open_store",
    "register",
    "unregister",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "qstore.stores"
KNOWN_STORES: Mapping[str, str] = MappingProxyType({"pinecone": "qstore-pinecone"})
"""Stores of Q-Store's own distributions, known by name even when not installed."""

# For a source tree imported without being installed (no metadata, hence no entry points).
_BUILTINS = {"local": "qstore.core.stores.local:LocalStateStore"}

StoreFactory = Callable[..., Any]


@dataclass(frozen=True)
class StoreInfo:
    """One installed store: where it comes from and whether it can be imported here."""

    name: str
    target: str
    distribution: str | None
    version: str | None
    origin: str  # "entry point", "built-in" or "registered"
    loadable: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "name": self.name,
            "target": self.target,
            "distribution": self.distribution,
            "version": self.version,
            "origin": self.origin,
            "loadable": self.loadable,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class _Entry:
    name: str
    target: str
    distribution: str | None
    version: str | None
    origin: str
    load: Callable[[], Any]


class _State:
    lock = threading.RLock()
    registered: dict[str, _Entry] = {}  # noqa: RUF012 - process-wide, guarded by lock


def _import_target(target: str) -> Callable[[], Any]:
    def load() -> Any:
        module, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    return load


def _entries() -> dict[str, _Entry]:
    found: dict[str, _Entry] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        if ep.name in found:
            logger.warning(
                "Store name %r is declared twice (%s and %s); using the first.",
                ep.name,
                found[ep.name].target,
                ep.value,
            )
            continue
        found[ep.name] = _Entry(
            ep.name,
            ep.value,
            None if dist is None else dist.name,
            None if dist is None else dist.version,
            "entry point",
            ep.load,
        )
    for name, target in _BUILTINS.items():
        if name not in found:
            from qstore.core import __version__

            found[name] = _Entry(
                name, target, "qstore-core", __version__, "built-in", _import_target(target)
            )
    with _State.lock:
        found.update(_State.registered)
    return found


def available() -> list[str]:
    """Names of the installed stores, sorted (imports none of them).

    >>> from qstore.core import stores
    >>> "local" in stores.available()
    True
    """
    return sorted(_entries())


def _load(entry: _Entry) -> StoreFactory:
    try:
        factory = entry.load()
    except ImportError as exc:
        dist = entry.distribution or "the distribution that provides it"
        raise MissingDependencyError(
            f"Store {entry.name!r} ({entry.target}) cannot be imported: {exc}. Reinstall "
            f"{dist} with its dependencies (pip install --force-reinstall {dist})."
        ) from exc
    except Exception as exc:  # a plugin's import-time failure, reported with its origin
        raise StoreError(
            f"Store {entry.name!r} ({entry.target}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(factory):
        raise StoreError(
            f"Store {entry.name!r} points to {factory!r}, which is not callable; an entry point "
            "in 'qstore.stores' must name a store class."
        )
    return factory  # type: ignore[no-any-return]


def open_store(name: str = "local", **options: Any) -> StateStore:
    """Open the store registered as ``name`` with its ``options``.

    >>> from qstore.core import stores
    >>> store = stores.open("local", path=":memory:")
    >>> store.count()
    0
    """
    entries = _entries()
    entry = entries.get(name) if isinstance(name, str) else None
    if entry is None:
        installed = ", ".join(sorted(entries)) or "none"
        dist = KNOWN_STORES.get(name) if isinstance(name, str) else None
        if dist is not None:
            raise StoreNotFoundError(
                f"Store {name!r} is provided by {dist}, which is not installed; install it "
                f'with: pip install {dist} (or pip install "qstore[{name}]"). '
                f"Installed stores: {installed}."
            )
        raise StoreNotFoundError(
            f"Unknown store {name!r}. Installed stores: {installed}. Third-party stores register "
            f"in the entry-point group {ENTRY_POINT_GROUP!r}."
        )
    factory = _load(entry)
    try:
        store = factory(**options)
    except TypeError as exc:
        raise StoreError(f"Invalid options for store {name!r}: {exc}") from exc
    return store  # type: ignore[no-any-return]


def all_info() -> list[StoreInfo]:
    """One :class:`StoreInfo` per installed store, sorted by name (each one is imported)."""
    out = []
    for entry in sorted(_entries().values(), key=lambda e: e.name):
        reason = ""
        try:
            _load(entry)
        except (MissingDependencyError, StoreError) as exc:
            reason = str(exc)
        out.append(
            StoreInfo(
                entry.name,
                entry.target,
                entry.distribution,
                entry.version,
                entry.origin,
                not reason,
                reason,
            )
        )
    return out


def register(name: str, factory: StoreFactory, *, replace: bool = False) -> None:
    """Register ``factory`` (a store class) as ``name`` for this process (tests, notebooks)."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise StoreError(f"A store name must be a non-empty string without spaces, got {name!r}.")
    if not callable(factory):
        raise StoreError(f"register({name!r}, ...) needs a store class, got {factory!r}.")
    with _State.lock:
        if name in _entries() and not replace:
            raise StoreError(
                f"Store name {name!r} is taken; pass replace=True to override it in this process."
            )
        target = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"
        _State.registered[name] = _Entry(name, target, None, None, "registered", lambda: factory)


def unregister(name: str) -> None:
    """Remove a store added with :func:`register`."""
    with _State.lock:
        if name not in _State.registered:
            raise StoreNotFoundError(f"{name!r} was not added with register().")
        del _State.registered[name]
