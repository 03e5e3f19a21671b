"""How many BLAS threads the NumPy engine uses.

Small registers are many small matrix products: a second BLAS thread buys nothing there, and
when another process shares the cores, OpenBLAS's spinning threads make each product wait for a
core: measured on 2 cores under load, the reference workload (batch 32) ran at 570 samples/s
with 2 threads and 8,800 with one at 8 qubits, and at 5 to 29 samples/s with 2 threads and 30
with one at 16 qubits. So the engine runs states of up to :data:`SINGLE_THREAD_MAX` amplitudes
(the whole batch: 17 qubits at batch 32) on one BLAS thread, and larger ones on the library's
default.

The limit is set with ``threadpoolctl`` when it is installed (``pip install threadpoolctl``; the
framework distributions depend on it) and only around the engine's own calls, so the rest of
the program keeps its thread settings. Without ``threadpoolctl`` nothing changes.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["SINGLE_THREAD_MAX", "engine_threads"]

#: States of up to this many amplitudes (batch x 2**n) run on one BLAS thread
#: (``QSTORE_SINGLE_THREAD_MAX`` overrides it; 0 turns the limit off).
SINGLE_THREAD_MAX = int(os.environ.get("QSTORE_SINGLE_THREAD_MAX", str(1 << 22)))

_BLAS: list[list[Any]] = []  # the BLAS libraries' controllers, found once
_LOCK = threading.Lock()
_DEPTH = [0]  # engine calls in progress (they nest, and may run on several threads)
_SAVED: list[tuple[Any, int]] = []  # (controller, thread count) to restore when the last ends


def _blas() -> list[Any]:
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
        except ImportError:
            _BLAS.append([])
        else:
            _BLAS.append(list(ThreadpoolController().select(user_api="blas").lib_controllers))
    return _BLAS[0]


@contextlib.contextmanager
def engine_threads(amplitudes: int) -> Iterator[None]:
    """One BLAS thread while simulating ``amplitudes`` state entries, if that is few.

    The libraries' thread counts are read and set directly (a few microseconds, against tens
    for a ``threadpoolctl`` limit context), once for the outermost of nested calls.
    """
    libs = _blas() if 0 < amplitudes <= SINGLE_THREAD_MAX else []
    if not libs:
        yield
        return
    with _LOCK:
        if _DEPTH[0] == 0:
            for lib in libs:
                count = lib.get_num_threads()
                if count != 1:
                    _SAVED.append((lib, count))
                    lib.set_num_threads(1)
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                for lib, count in _SAVED:
                    lib.set_num_threads(count)
                _SAVED.clear()
