"""Benchmarks of Q-Store against its peers: ``qstore bench [SUITE...]``.

The harness (:mod:`.harness`) times calls (warm-up, repetitions, median and interquartile range)
and records machine, versions, threads and date; :mod:`.report` writes the Markdown table with
ratios against the best peer and the plots; :mod:`.runner` runs the suites in
:mod:`.suites`. qstore-core measures its own backends; the framework layers and the peer
libraries are contributed by the distributions that own them (:mod:`.plugins`, entry-point group
``qstore.bench``). Nothing here imports torch, TensorFlow or PennyLane: each contender imports its
library when it is set up, and is skipped with a note when it cannot.

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
from qstore.core.bench.plugins import Contender, Trained, TrainingContender
from qstore.core.bench.report import peer_ratios, render_markdown, write_report
from qstore.core.bench.runner import SUITES, Options, UnavailableError, run_suites
from qstore.core.bench.workload import Case

__all__ = [
    "SUITES",
    "BenchError",
    "Case",
    "Contender",
    "Options",
    "Result",
    "Run",
    "Timing",
    "Trained",
    "TrainingContender",
    "UnavailableError",
    "load_runs",
    "measure",
    "peer_ratios",
    "render_markdown",
    "run_suites",
    "write_report",
    "write_run",
]
