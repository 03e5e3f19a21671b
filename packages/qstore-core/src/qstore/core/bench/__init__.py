"""Benchmarks of Q-Store against its peers: ``qstore bench [SUITE...]``.

The harness (:mod:`.harness`) times calls (warm-up, repetitions, median and interquartile range)
and records machine, versions, threads and date; :mod:`.report` writes the Markdown table with
ratios against the best peer and the plots; :mod:`.runner` runs the suites in
:mod:`.suites`. Importing this package imports neither torch, TensorFlow nor PennyLane: each
contender imports its library when it is set up, and is skipped with a note when it cannot.

>>> from qstore.core.bench import measure
>>> measure(lambda: sum(range(100)), reps=5, min_time_s=0).reps >= 5
True
"""

from __future__ import annotations

from qstore.core.bench.harness import (
    BenchError,
    Result,
    Run,
    Timing,
    load_runs,
    measure,
    write_run,
)
from qstore.core.bench.report import peer_ratios, render_markdown, write_report
from qstore.core.bench.runner import SUITES, Options, run_suites

__all__ = [
    "SUITES",
    "BenchError",
    "Options",
    "Result",
    "Run",
    "Timing",
    "load_runs",
    "measure",
    "peer_ratios",
    "render_markdown",
    "run_suites",
    "write_report",
    "write_run",
]
