"""The backend registry: backend names resolve to factories through entry points.

Every backend, the built-in ``local`` included, is declared in the entry-point group
``qstore.backends`` by the distribution that ships it, so a third-party package that declares one
is a first-class backend. :func:`register` adds backends at run time (tests, notebooks).

>>> from qstore.core import backends
>>> "local" in backends.available()
True
>>> backends.get("local_cpu", dtype="complex64").name
'local'
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as metadata
import inspect
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, overload

from qstore.core.backends.base import Capabilities
from qstore.core.errors import BackendError, BackendNotFoundError, MissingDependencyError

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_PLUGINS",
    "BackendFactory",
    "BackendInfo",
    "BackendNotInstalledError",
    "all_info",
    "available",
    "get",
    "info",
    "install_hint",
    "invalidate_cache",
    "missing_plugins",
    "plugin_class",
    "register",
    "unregister",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "qstore.backends"
CORE_DISTRIBUTION = "qstore-core"

BackendFactory = Callable[..., Any]
"""Anything that returns a backend when called with the backend's options (usually its class)."""

F = TypeVar("F", bound=BackendFactory)

KNOWN_PLUGINS: Mapping[str, str] = MappingProxyType(
    {
        "qsim": "qstore-sim-qsim",
        "lightning": "qstore-sim-lightning",
        "lightning.gpu": "qstore-sim-lightning",
        "lightning.kokkos": "qstore-sim-lightning",
        "ionq_simulator": "qstore-ionq",
        "ionq_hardware": "qstore-ionq",
    }
)
"""Backends of Q-Store's own plugin distributions, known by name even when not installed."""

_EXTRAS = {"qstore-sim-qsim": "qsim", "qstore-sim-lightning": "lightning", "qstore-ionq": "ionq"}

# Used only for names that no installed distribution declares: qstore-core imported from a source
# tree without being installed has no metadata, hence no entry points, but must still work.
_BUILTINS = {
    "local": "qstore.core.backends.local:LocalBackend",
    "local_cpu": "qstore.core.backends.local:LocalBackend",
}

# What the Backend protocol requires; checked without evaluating properties.
_PROTOCOL_MEMBERS = ("name", "capabilities", "expectation", "vjp", "sample", "execute")


class BackendNotInstalledError(BackendNotFoundError, MissingDependencyError):
    """A known backend whose distribution is not installed; the message says what to install.

    It is both a :class:`BackendNotFoundError` (``KeyError``) and a
    :class:`MissingDependencyError` (``ImportError``), so either ``except`` clause catches it.
    """

    def __init__(self, message: str, distribution: str = "") -> None:
        super().__init__(message)
        self.distribution = distribution


def install_hint(distribution: str) -> str:
    """How to install ``distribution``, with the ``qstore`` extra that pulls it in if there is one.

    >>> install_hint("qstore-sim-qsim")
    'pip install qstore-sim-qsim or pip install "qstore[qsim]"'
    """
    extra = _EXTRAS.get(distribution)
    hint = f"pip install {distribution}"
    return f'{hint} or pip install "qstore[{extra}]"' if extra else hint


@dataclass(frozen=True)
class _Entry:
    """One registered name (internal)."""

    name: str
    target: str  # "module:attr" of the factory
    distribution: str | None
    version: str | None
    origin: str  # "entry point", "built-in" or "registered"
    loader: Callable[[], Any] = field(compare=False, repr=False)
    # Names with equal keys are aliases: same distribution and target, or the same object.
    key: tuple[object, ...] = field(default=(), compare=False, repr=False)

    def alias_key(self) -> tuple[object, ...]:
        return self.key or (self.distribution, self.target)

    def describe(self) -> str:
        if self.distribution is None:
            return f"{self.target} ({self.origin})"
        return f"{self.distribution} {self.version or '?'} ({self.target})"


@dataclass(frozen=True)
class BackendInfo:
    """What the registry knows about one backend, with its capabilities when it can be created.

    ``capabilities`` come from an instance created with default options; when that fails, or the
    backend declares itself unavailable, ``available`` is false and ``reason`` says why.
    """

    name: str
    distribution: str | None
    version: str | None
    target: str
    origin: str
    aliases: tuple[str, ...] = ()
    capabilities: Capabilities | None = None
    available: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "distribution": self.distribution,
            "version": self.version,
            "target": self.target,
            "origin": self.origin,
            "available": self.available,
            "reason": self.reason,
            "capabilities": None if self.capabilities is None else self.capabilities.as_dict(),
        }

    def __str__(self) -> str:
        names = ", ".join((self.name, *self.aliases))
        source = self.distribution or self.origin
        head = f"{names}: {source} {self.version or ''}".rstrip()
        if not self.available:
            return f"{head} (unavailable: {self.reason})"
        caps = self.capabilities
        assert caps is not None
        return (
            f"{head}, up to {caps.max_qubits} qubits, "
            f"{'GPU' if caps.gpu else 'CPU'}{', remote' if caps.remote else ''}"
        )


class _State:
    lock = threading.RLock()
    scanned: dict[str, _Entry] | None = None
    registered: dict[str, _Entry] = {}  # noqa: RUF012 - process-wide, guarded by lock


def _normalise_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _builtin_version() -> str:
    from qstore.core import __version__

    return __version__


def _scan() -> dict[str, _Entry]:
    """Entry points of the group, plus built-in fallbacks for names nobody declares."""
    found: dict[str, _Entry] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        entry = _Entry(
            name=ep.name,
            target=ep.value,
            distribution=None if dist is None else dist.name,
            version=None if dist is None else dist.version,
            origin="entry point",
            loader=ep.load,
        )
        old = found.get(ep.name)
        if old is not None:
            # The core's own names cannot be taken over; otherwise the first on sys.path wins,
            # as it would for an import.
            keep = old
            if entry.distribution and _normalise_dist(entry.distribution) == CORE_DISTRIBUTION:
                keep = entry
            logger.warning(
                "Backend name %r is declared by both %s and %s; using %s.",
                ep.name,
                old.describe(),
                entry.describe(),
                keep.describe(),
            )
            entry = keep
        found[ep.name] = entry
    for name, target in _BUILTINS.items():
        if name not in found:
            found[name] = _Entry(
                name, target, CORE_DISTRIBUTION, _builtin_version(), "built-in", _loader(target)
            )
    return found


def _loader(target: str) -> Callable[[], Any]:
    def load() -> Any:
        module, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    return load


def invalidate_cache() -> None:
    """Forget the cached entry-point scan; the next lookup sees newly installed plugins."""
    with _State.lock:
        _State.scanned = None
    importlib.invalidate_caches()


def _entries(refresh: bool = False) -> dict[str, _Entry]:
    with _State.lock:
        if refresh:
            invalidate_cache()
        if _State.scanned is None:
            _State.scanned = _scan()
        return {**_State.scanned, **_State.registered}


def available(refresh: bool = False) -> list[str]:
    """Names of the installed backends (aliases included), sorted.

    Listing imports nothing; :func:`info` tells whether a backend can actually be created here.

    >>> from qstore.core import backends
    >>> {"local", "local_cpu"} <= set(backends.available())
    True
    """
    return sorted(_entries(refresh))


def missing_plugins(refresh: bool = False) -> dict[str, str]:
    """Known backend names whose distribution is not installed: name -> distribution."""
    names = _entries(refresh)
    return {n: d for n, d in KNOWN_PLUGINS.items() if n not in names}


def _lookup(name: str, entries: Mapping[str, _Entry]) -> _Entry | None:
    if name in entries:
        return entries[name]
    folded = [k for k in entries if k.lower() == name.strip().lower()]
    return entries[folded[0]] if len(folded) == 1 else None


def _resolve(name: str, refresh: bool) -> _Entry:
    if not isinstance(name, str):
        raise BackendNotFoundError(
            f"A backend name must be a string such as 'local', got {name!r} "
            f"({type(name).__name__})."
        )
    entries = _entries(refresh)
    entry = _lookup(name, entries)
    if entry is None and not refresh:  # installed since the last scan?
        entries = _entries(refresh=True)
        entry = _lookup(name, entries)
    if entry is None:
        raise _not_found(name, entries)
    return entry


def _not_found(name: str, entries: Mapping[str, _Entry]) -> BackendNotFoundError:
    installed = ", ".join(sorted(entries)) or "none"
    dist = KNOWN_PLUGINS.get(name) or KNOWN_PLUGINS.get(name.strip().lower())
    if dist is not None:
        return BackendNotInstalledError(
            f"Backend {name!r} is provided by the {dist} distribution, which is not installed. "
            f"Install it with: {install_hint(dist)}. Installed backends: {installed}.",
            distribution=dist,
        )
    candidates = sorted({*entries, *KNOWN_PLUGINS})
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    close += [c for c in candidates if name.lower() in c.lower() and c not in close][:2]
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    by_dist: dict[str, list[str]] = {}
    for n, d in KNOWN_PLUGINS.items():
        if n not in entries:
            by_dist.setdefault(d, []).append(n)
    absent = [f"{'/'.join(ns)} ({d})" for d, ns in by_dist.items()]
    more = f" Installable: {', '.join(absent)}." if absent else ""
    return BackendNotFoundError(
        f"Unknown backend {name!r}.{hint} Installed backends: {installed}.{more} "
        f"Third-party backends register in the entry-point group {ENTRY_POINT_GROUP!r}."
    )


def _load(entry: _Entry) -> BackendFactory:
    try:
        factory = entry.loader()
    except ImportError as exc:
        fix = (
            f"reinstall it (pip install --force-reinstall {entry.distribution}) or install "
            "its missing dependency"
            if entry.distribution
            else "install its missing dependency"
        )
        raise MissingDependencyError(
            f"Backend {entry.name!r} from {entry.describe()} cannot be imported: {exc}. "
            f"To fix, {fix}."
        ) from exc
    except Exception as exc:  # a plugin's import-time failure, reported with its origin
        raise BackendError(
            f"Backend {entry.name!r} from {entry.describe()} failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not callable(factory):
        raise BackendError(
            f"Backend {entry.name!r} from {entry.describe()} points to {factory!r}, which is not "
            "callable; an entry point must name a backend class or factory function."
        )
    return factory  # type: ignore[no-any-return]


def _check_options(entry: _Entry, factory: BackendFactory, options: Mapping[str, Any]) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins and some C types have no signature
        return
    try:
        sig.bind(**options)
    except TypeError as exc:
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        accepted = [p.name for p in sig.parameters.values() if p.kind in kinds]
        raise BackendError(
            f"Invalid options for backend {entry.name!r}: {exc}. "
            f"It accepts: {', '.join(accepted) or 'no options'}."
        ) from exc


def _has_member(obj: Any, member: str) -> bool:
    try:
        inspect.getattr_static(obj, member)  # does not run properties (no network, no cost)
    except AttributeError:
        return False
    return True


def _check_backend(entry: _Entry, backend: Any) -> None:
    missing = [m for m in _PROTOCOL_MEMBERS if not _has_member(backend, m)]
    if missing:
        raise BackendError(
            f"Backend {entry.name!r} from {entry.describe()} created {type(backend).__name__}, "
            f"which lacks {', '.join(missing)} of the qstore.core.backends.Backend protocol."
        )


def get(name: str, refresh: bool = False, **options: Any) -> Any:
    """Create the backend registered as ``name`` with ``options``.

    Names are case-insensitive when unambiguous. A name missing from the cached scan triggers one
    rescan, so plugins installed earlier in this process are found; ``refresh=True`` forces it.

    Raises:
        BackendNotInstalledError: a known plugin (``qsim``, ``ionq_simulator`` ...) is absent; the
            message names the distribution to install.
        BackendNotFoundError: the name is unknown; the message lists installed and close names.
        BackendError: bad options, or the plugin does not follow the backend protocol.

    >>> from qstore.core import backends
    >>> backends.get("local", seed=7)
    LocalBackend(dtype='complex128')
    """
    entry = _resolve(name, refresh)
    factory = _load(entry)
    _check_options(entry, factory, options)
    backend = factory(**options)
    _check_backend(entry, backend)
    logger.debug("Created backend %r from %s", entry.name, entry.describe())
    return backend


def _groups(entries: Mapping[str, _Entry]) -> dict[tuple[object, ...], list[_Entry]]:
    """Names that resolve to the same factory are aliases of one backend."""
    groups: dict[tuple[object, ...], list[_Entry]] = {}
    for e in entries.values():
        groups.setdefault(e.alias_key(), []).append(e)
    return groups


def _canonical(names: Iterable[str], factory: Any) -> str:
    names = sorted(names, key=lambda n: (len(n), n))
    own = getattr(factory, "name", None)
    return own if isinstance(own, str) and own in names else names[0]


def _describe(entry: _Entry, aliases: Iterable[str], *, canonical: bool) -> BackendInfo:
    group = [entry.name, *aliases]

    def make(factory: Any, caps: Capabilities | None = None, reason: str = "") -> BackendInfo:
        name = _canonical(group, factory) if canonical else entry.name
        return BackendInfo(
            name=name,
            distribution=entry.distribution,
            version=entry.version,
            target=entry.target,
            origin=entry.origin,
            aliases=tuple(sorted(n for n in group if n != name)),
            capabilities=caps,
            available=caps is not None and caps.available,
            reason=reason,
        )

    try:
        factory = _load(entry)
    except (BackendError, MissingDependencyError) as exc:
        return make(None, reason=str(exc))
    try:
        caps = factory().capabilities
    except Exception as exc:  # third-party constructors: report why, do not hide the backend
        logger.debug("Backend %r cannot be created with default options", entry.name, exc_info=True)
        return make(
            factory, reason=f"cannot be created with default options: {type(exc).__name__}: {exc}"
        )
    if not isinstance(caps, Capabilities):
        return make(
            factory,
            reason=f"its capabilities are a {type(caps).__name__}, not qstore.core.Capabilities",
        )
    reason = "" if caps.available else (caps.reason or "the backend declares itself unavailable")
    return make(factory, caps, reason)


def info(name: str, refresh: bool = False) -> BackendInfo:
    """Distribution, version and capabilities of one backend (created with default options).

    >>> from qstore.core import backends
    >>> i = backends.info("local_cpu")
    >>> (i.name, i.aliases, i.capabilities.exact)
    ('local_cpu', ('local',), True)
    """
    entry = _resolve(name, refresh)
    entries = _entries()
    aliases = [e.name for e in _groups(entries)[entry.alias_key()]]
    return _describe(entry, [a for a in aliases if a != entry.name], canonical=False)


def all_info(refresh: bool = False) -> list[BackendInfo]:
    """One :class:`BackendInfo` per installed backend (aliases folded in), sorted by name."""
    out = []
    for group in _groups(_entries(refresh)).values():
        first, *rest = sorted(group, key=lambda e: (len(e.name), e.name))
        out.append(_describe(first, [e.name for e in rest], canonical=True))
    return sorted(out, key=lambda i: i.name)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise BackendError(
            f"A backend name must be a non-empty string without surrounding spaces, got {name!r}."
        )
    return name


@overload
def register(name: str, factory: F, *, replace: bool = False) -> F: ...


@overload
def register(name: str, factory: None = None, *, replace: bool = False) -> Callable[[F], F]: ...


def register(
    name: str, factory: BackendFactory | None = None, *, replace: bool = False
) -> BackendFactory | Callable[[F], F]:
    """Register ``factory`` (a backend class or function) as ``name`` for this process.

    Meant for tests and notebooks; distributions declare an entry point instead. A name that is
    already taken needs ``replace=True``. Works as a decorator too.

    >>> from qstore.core import backends
    >>> @backends.register("doc_local")
    ... class DocLocal(backends.LocalBackend):
    ...     name = "doc_local"
    >>> backends.get("doc_local").name
    'doc_local'
    >>> backends.unregister("doc_local")
    """
    _check_name(name)
    if factory is None:

        def decorator(f: F) -> F:
            register(name, f, replace=replace)
            return f

        return decorator
    if not callable(factory):
        raise BackendError(
            f"register({name!r}, ...) needs a backend class or a function returning a backend, "
            f"got {factory!r}."
        )
    with _State.lock:
        existing = _entries().get(name)
        if existing is not None and not replace:
            raise BackendError(
                f"Backend name {name!r} is already taken by {existing.describe()}; "
                "pass replace=True to override it in this process."
            )
        module = getattr(factory, "__module__", None) or "?"
        qualname = getattr(factory, "__qualname__", None) or type(factory).__qualname__
        _State.registered[name] = _Entry(
            name,
            f"{module}:{qualname}",
            None,
            None,
            "registered",
            lambda: factory,
            key=("registered", id(factory)),
        )
    return factory


def unregister(name: str) -> None:
    """Remove a backend added with :func:`register` (entry points cannot be removed)."""
    with _State.lock:
        if name not in _State.registered:
            raise BackendNotFoundError(
                f"{name!r} was not added with register(); registered at run time: "
                f"{', '.join(sorted(_State.registered)) or 'none'}."
            )
        del _State.registered[name]


def plugin_class(attr: str, module: str, distribution: str, *, what: str | None = None) -> Any:
    """The class ``attr`` of a plugin distribution, for ``qc.backends.IonQBackend`` and friends.

    Looks for an entry point of ``distribution`` that names ``attr``, then imports ``module``.
    Raises :class:`MissingDependencyError` naming the distribution when it is not installed;
    ``what`` names what the user asked for in that message (default
    ``qstore.core.backends.<attr>``).
    """
    want = _normalise_dist(distribution)
    for entry in _entries().values():
        if (
            entry.distribution
            and _normalise_dist(entry.distribution) == want
            and entry.target.rpartition(":")[2] == attr
        ):
            return _load(entry)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise MissingDependencyError(
                f"{what or 'qstore.core.backends.' + attr} is provided by the {distribution} "
                f"distribution, which is not installed. Install it with: "
                f"{install_hint(distribution)}"
            ) from exc
        raise MissingDependencyError(
            f"{distribution} is installed but cannot be imported: {exc}. Reinstall it with "
            f"pip install --force-reinstall {distribution}."
        ) from exc
    try:
        return getattr(mod, attr)
    except AttributeError as exc:
        raise MissingDependencyError(
            f"The installed {distribution} has no {attr}; upgrade it with "
            f"pip install --upgrade {distribution}."
        ) from exc
