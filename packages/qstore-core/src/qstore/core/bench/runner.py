"""Run benchmark suites: options, contender selection, skipping, writing results and the report.

A suite is a module under :mod:`qstore.core.bench.suites` with ``run(options, run, log)``; it adds
:class:`~qstore.core.bench.harness.Result` s to ``run``. Its contenders are qstore-core's own plus
those the installed distributions add (:mod:`qstore.core.bench.plugins`). Contenders whose library
is not importable are skipped with a printed note (kept in the JSON), never an error: every
environment measures what it has, and :func:`~qstore.core.bench.report.write_report` merges the
files afterwards.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from qstore.core.bench.harness import BenchError, Result, Run, Timing, measure, write_run
from qstore.core.bench.report import write_report
from qstore.core.errors import MissingDependencyError

__all__ = ["SUITES", "Options", "UnavailableError", "run_suites"]

SUITES = {
    "rw": "qstore.core.bench.suites.rw",
    "circuits": "qstore.core.bench.suites.circuits",
    "fashion-mnist": "qstore.core.bench.suites.fashion_mnist",
}
"""Suite name -> module; ``qstore bench`` with no suite runs them all, in this order."""

Log = Callable[[str], None]


class UnavailableError(Exception):
    """Raised by a contender's set-up when it cannot run here; the message says why."""


UNAVAILABLE = (ImportError, MissingDependencyError, UnavailableError)
"""What a contender's set-up raises when its library is missing: the contender is skipped."""


@dataclass(frozen=True)
class Options:
    """What to measure and how hard (``quick``: small sizes, few repetitions, a data subset).

    ``contenders``: shell-style patterns or substrings (case-insensitive) of contender names;
    empty means all. ``qubits``: overrides a suite's qubit counts. ``reps``/``budget_s``/
    ``max_call_s``: at least this many timed calls, at most about this many seconds per figure,
    and skip sizes whose single call is predicted to exceed ``max_call_s``. ``plugins``: the
    entry-point names (group ``qstore.bench``: ``tf``, ``torch``, ``qsim``, ``lightning``...) of
    the installed distributions whose contenders run too; ``None`` for all of them, ``()`` for
    none (only qstore-core's own contenders: no framework is imported).
    """

    quick: bool = False
    qubits: tuple[int, ...] = ()
    contenders: tuple[str, ...] = ()
    reps: int | None = None
    budget_s: float | None = None
    max_call_s: float | None = None
    data_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    plugins: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.reps is not None and self.reps < 1:
            raise BenchError(f"reps must be at least 1, got {self.reps}.")
        for q in self.qubits:
            if q < 1:
                raise BenchError(f"qubit counts must be positive, got {q}.")

    @property
    def n_reps(self) -> int:
        return self.reps if self.reps is not None else (3 if self.quick else 5)

    @property
    def budget(self) -> float:
        return self.budget_s if self.budget_s is not None else (3.0 if self.quick else 20.0)

    @property
    def call_limit(self) -> float:
        return self.max_call_s if self.max_call_s is not None else (3.0 if self.quick else 60.0)

    def selected(self, name: str) -> bool:
        """Whether contender ``name`` matches ``--contenders`` (all when none were given)."""
        if not self.contenders:
            return True
        low = name.lower()
        return any(p.lower() in low or fnmatch.fnmatch(low, p.lower()) for p in self.contenders)

    def as_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "qubits": list(self.qubits),
            "contenders": list(self.contenders),
            "reps": self.n_reps,
            "budget_s": self.budget,
            "max_call_s": self.call_limit,
            "data_dir": self.data_dir,
            "plugins": None if self.plugins is None else list(self.plugins),
            **self.extra,
        }

    def timing(self, fn: Callable[[], object], *, reps: int | None = None) -> Timing:
        """:func:`~qstore.core.bench.harness.measure` with this run's repetitions and budget."""
        # Without an explicit --reps, fast calls repeat until a minimum time has passed.
        min_time = 0.0 if self.reps is not None else (0.2 if self.quick else 1.0)
        return measure(fn, reps=reps or self.n_reps, budget_s=self.budget, min_time_s=min_time)


class Predictor:
    """Skips a contender's larger sizes when its last call predicts one beyond the limit.

    A state-vector call costs about ``2**n`` once the states are large (from about 10 qubits);
    below that, per-gate overhead dominates and the cost grows about like the gate count, ``n``.
    So a call of ``t`` seconds at ``n`` predicts ``t * m/n * 2**(m - max(n, 10))`` at ``m > n``.
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._last: dict[str, tuple[int, float]] = {}

    def record(self, contender: str, n: int, seconds: float) -> None:
        self._last[contender] = (n, seconds)

    def predicted(self, contender: str, n: int) -> float | None:
        last = self._last.get(contender)
        if last is None:
            return None
        n0, t0 = last
        return float(t0 * n / n0 * 2.0 ** max(0, n - max(n0, 10)))

    def too_slow(self, contender: str, n: int) -> float | None:
        """The predicted seconds of one call at ``n`` when above the limit, else None."""
        p = self.predicted(contender, n)
        return p if p is not None and p > self.limit_s else None


def _print(out: TextIO) -> Log:
    def log(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    return log


def run_suites(
    names: Sequence[str],
    options: Options,
    out_dir: str | os.PathLike[str],
    out: TextIO | None = None,
) -> tuple[list[Path], Path]:
    """Run ``names`` (all when empty), write one JSON per suite and the merged report.

    Returns the JSON files written and the report (which also merges other JSON files already in
    ``out_dir``, e.g. those of the TensorFlow Quantum environment).
    """
    log = _print(sys.stdout if out is None else out)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise BenchError(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)}.")
    written: list[Path] = []
    for name in names or list(SUITES):
        module = importlib.import_module(SUITES[name])
        run = Run(suite=name, options=options.as_dict())
        log(f"== {name} (env {run.env}, {run.threads} thread(s)) ==")
        start = time.perf_counter()
        module.run(options, run, log)
        path = write_run(run, out_dir)
        written.append(path)
        took = time.perf_counter() - start
        log(f"== {name}: {len(run.results)} figures in {took:.0f} s -> {path}")
    report, notes = write_report([out_dir])
    for n in notes:
        log(n)
    log(f"report: {report}")
    return written, report


def skip_note(run: Run, log: Log, contender: str, why: object) -> None:
    """Print and record that ``contender`` was skipped, and why."""
    text = f"skipped {contender}: {why}"
    log("  " + text)
    run.note(text)


def add_result(run: Run, log: Log, result: Result) -> None:
    """Record ``result`` and print it on one line."""
    r = run.add(result)
    where = f"n={r.n:<2d} " if r.n is not None else (f"{r.group}: " if r.group else "")
    extra = f" ({r.reps} reps)" if r.median_s is not None else ""
    log(f"  {where}{r.contender:<46s} {r.metric:<17s} {r.value:12.4g} {r.unit}{extra}")
