"""Reference workload (RW): now the ``rw`` suite of ``qstore bench``; this script forwards to it.

    python benchmarks/rw.py --qubits 8 16         same as: qstore bench rw --qubits 8 16

The workload, the contenders and the timing live in ``qstore.core.bench`` (``workload.py``,
``suites/rw.py``, ``harness.py``). The names below stay importable for the scripts that share
RW's data and timing (``benchmarks/torch_layers.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from qstore.core.bench.harness import measure
from qstore.core.bench.workload import BATCH, LAYERS, rw_circuit, rw_data
from qstore.core.cli import main as qstore_main

__all__ = ["BATCH", "LAYERS", "data", "main", "median_seconds", "rw_circuit"]


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RW features ``[32, n]`` and weights ``[4, n, 2]``."""
    return rw_data(n, seed=seed)


def median_seconds(fn: Callable[[], object], reps: int, budget_s: float) -> float:
    """Median seconds of ``fn()`` after a warm-up (at least ``reps`` calls, within the budget)."""
    return measure(fn, reps=reps, budget_s=budget_s, min_time_s=0.0).median_s


def main(argv: list[str] | None = None) -> int:
    return qstore_main(["bench", "rw", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
