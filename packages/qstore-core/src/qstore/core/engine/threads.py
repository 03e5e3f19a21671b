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
from collections.abc import Iterator
from typing import Any

__all__ = ["SINGLE_THREAD_MAX", "engine_threads"]

#: States of up to this many amplitudes (batch x 2**n) run on one BLAS thread
#: (``QSTORE_SINGLE_THREAD_MAX`` overrides it; 0 turns the limit off).
SINGLE_THREAD_MAX = int(os.environ.get("QSTORE_SINGLE_THREAD_MAX", str(1 << 22)))

_CONTROLLER: list[Any] = []


def _controller() -> Any:
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
        except ImportError:
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


@contextlib.contextmanager
def engine_threads(amplitudes: int) -> Iterator[None]:
    """One BLAS thread while simulating ``amplitudes`` state entries, if that is few."""
    ctl = _controller() if 0 < amplitudes <= SINGLE_THREAD_MAX else None
    if ctl is None:
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield
