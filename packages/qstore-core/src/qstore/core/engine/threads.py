"""How the NumPy engine uses the cores: BLAS threads, and batches split over Python threads.

Small registers are many small matrix products: a second BLAS thread buys nothing there, and
when another process shares the cores, OpenBLAS's spinning threads make each product wait for a
core: measured on 2 cores under load, the reference workload (batch 32) ran at 570 samples/s
with 2 threads and 8,800 with one at 8 qubits, and at 5 to 29 samples/s with 2 threads and 30
with one at 16 qubits. So the engine runs states of up to :data:`SINGLE_THREAD_MAX` amplitudes
(the whole batch: 17 qubits at batch 32) on one BLAS thread, and larger ones on the library's
default.

The limit is set through ``threadpoolctl``'s view of the libraries when it is installed (``pip
install threadpoolctl``; the framework distributions depend on it) and only around the engine's
own calls, so the rest of the program keeps its thread settings. The engine runs in whatever
thread calls it (a TensorFlow ``numpy_function`` thread, the split pool's threads), and
``threadpoolctl`` lets only one thread change an OpenBLAS limit, so OpenBLAS's setter is called
directly (``_Blas``): before, the Keras layer's calls ran with two BLAS threads inside each
of the two split parts, 4 threads on 2 cores (16 qubits: 529-610 ms per training step, against
273-351 ms with the limit in place). Without ``threadpoolctl`` nothing changes.

Large states use the other cores by splitting the batch instead (:func:`row_parts`,
:func:`parallel`): each part runs the whole circuit in its own Python thread with one BLAS
thread. NumPy releases the GIL inside every large array operation, so the parts run side by
side, and a thread that finds no free core waits instead of spinning. Measured on 2 cores, the
reference workload (batch 32, forward + gradient) split in two: 62 -> 121 samples/s at 16
qubits, 3,700 -> 6,000 at 10; at 8 and 9 qubits the parts spend their time in Python, which
runs one thread at a time, and a split costs (18,000 -> 9,800 at 8).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = [
    "SINGLE_THREAD_MAX",
    "SPLIT_MIN_AMPLITUDES",
    "engine_threads",
    "engine_workers",
    "parallel",
    "row_parts",
]

T = TypeVar("T")
R = TypeVar("R")

#: States of up to this many amplitudes (batch x 2**n) run on one BLAS thread
#: (``QSTORE_SINGLE_THREAD_MAX`` overrides it; 0 turns the limit off).
SINGLE_THREAD_MAX = int(os.environ.get("QSTORE_SINGLE_THREAD_MAX", str(1 << 22)))

_BLAS: list[list[Any]] = []  # the BLAS libraries' controllers, found once
_LOCK = threading.Lock()
_DEPTH = [0]  # engine calls in progress (they nest, and may run on several threads)
_SAVED: list[tuple[Any, int]] = []  # (controller, thread count) to restore when the last ends


class _Blas:
    """One BLAS library's thread count, read and set from any thread.

    ``threadpoolctl`` lets only the first thread that set an OpenBLAS limit change it again
    (others "silently do nothing"), but the engine runs in whatever thread calls it: a
    TensorFlow ``numpy_function`` thread, a thread of the split pool. For OpenBLAS's own thread
    pool, which the whole process shares, the library's setter is called directly; the engine
    serialises its changes under one lock.
    """

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self._setter: Any = None
        if controller.internal_api == "openblas" and (
            getattr(controller, "threading_layer", None) != "openmp"
        ):
            dynlib = getattr(controller, "dynlib", None)
            for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
                fn = getattr(dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if fn is not None:
                    self._setter = fn
                    break

    def get_num_threads(self) -> int:
        return int(self.controller.get_num_threads())

    def set_num_threads(self, count: int) -> None:
        if self._setter is not None:
            self._setter(int(count))
        else:
            self.controller.set_num_threads(count)


def _blas() -> list[Any]:
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
        except ImportError:
            _BLAS.append([])
        else:
            libs = ThreadpoolController().select(user_api="blas").lib_controllers
            _BLAS.append([_Blas(lib) for lib in libs])
    return _BLAS[0]


@contextlib.contextmanager
def engine_threads(amplitudes: int) -> Iterator[None]:
    """One BLAS thread while simulating ``amplitudes`` state entries, if that is few
    (``amplitudes=-1``: whatever the size, as around the parts of a split batch).

    The libraries' thread counts are read and set directly (a few microseconds, against tens
    for a ``threadpoolctl`` limit context), once for the outermost of nested calls, from any
    thread.
    """
    single = amplitudes == -1 or 0 < amplitudes <= SINGLE_THREAD_MAX
    libs = _blas() if single and SINGLE_THREAD_MAX > 0 else []
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


#: A batch is split over threads only when every part still holds this many amplitudes
#: (``QSTORE_SPLIT_MIN_AMPLITUDES`` overrides it): below it the parts spend their time in Python,
#: which runs one thread at a time (at batch 32 on 2 cores the split starts at 10 qubits).
SPLIT_MIN_AMPLITUDES = int(os.environ.get("QSTORE_SPLIT_MIN_AMPLITUDES", str(1 << 14)))

_POOL: dict[int, ThreadPoolExecutor] = {}  # by process id: a forked child starts its own
_POOL_LOCK = threading.Lock()


def engine_workers() -> int:
    """Threads a batch may be split over: ``QSTORE_ENGINE_WORKERS``, else the usable cores."""
    env = os.environ.get("QSTORE_ENGINE_WORKERS")
    if env:
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def row_parts(n_qubits: int, rows: int) -> list[slice]:
    """The row ranges a batch of ``rows`` states of ``n_qubits`` qubits is split into: one
    (no split) unless every part keeps :data:`SPLIT_MIN_AMPLITUDES` amplitudes.

    >>> row_parts(4, 32)
    [slice(0, 32, None)]
    """
    workers = engine_workers()
    parts = min(workers, rows, max(1, (rows << n_qubits) // max(SPLIT_MIN_AMPLITUDES, 1)))
    if parts <= 1:
        return [slice(0, rows)]
    bounds = [rows * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def parallel(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(item) for item in items]``, on the threads of one shared pool (the last item in the
    calling thread), with one BLAS thread throughout."""
    if len(items) == 1:
        return [fn(items[0])]
    pid = os.getpid()
    with _POOL_LOCK:
        pool = _POOL.get(pid)
        if pool is None:  # (a pool copied by fork has no threads in the child)
            _POOL.clear()
            pool = _POOL[pid] = ThreadPoolExecutor(
                engine_workers(), thread_name_prefix="qstore-engine"
            )
    with engine_threads(-1):
        futures = [pool.submit(fn, item) for item in items[:-1]]
        last = fn(items[-1])
        return [f.result() for f in futures] + [last]


def _after_fork_in_child() -> None:
    """A forked child starts with fresh locks and no pool (the parent's threads do not exist
    there, and a lock held by one of them would stay held)."""
    global _LOCK, _POOL_LOCK
    _LOCK = threading.Lock()
    _POOL_LOCK = threading.Lock()
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
