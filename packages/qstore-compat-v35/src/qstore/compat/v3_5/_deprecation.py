"""One ``DeprecationWarning`` per v3.5 name, and one report per ignored v3.5 flag."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable

_lock = threading.Lock()
_warned: set[str] = set()


def warn_once(key: str, message: str, category: type[Warning] = DeprecationWarning) -> None:
    """Warn with ``message`` the first time ``key`` is seen in this process.

    ``stacklevel=3`` points at the caller of the function that calls this one (the user's
    line when called from a module ``__getattr__`` or a public constructor).
    """
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, category, stacklevel=3)


def not_yet_reported(keys: Iterable[str]) -> list[str]:
    """The keys not reported before (and marks them reported), in the given order."""
    out: list[str] = []
    with _lock:
        for key in keys:
            if key not in _warned:
                _warned.add(key)
                out.append(key)
    return out


def reset() -> None:
    """Forget what was reported (tests use it to see each warning again)."""
    with _lock:
        _warned.clear()
