"""Timing, records and JSON files of the benchmark suites.

A figure is the median of repeated calls after a warm-up call, with the quartiles kept (IQR), the
number of repetitions and what the call processed (e.g. 32 samples). Every run records the machine,
library versions, thread settings and date next to its results, so that a JSON file written in one
environment (say, the one with TensorFlow Quantum) can be merged with another's later.

>>> t = Timing.from_times([0.2, 0.1, 0.3])
>>> t.median_s, t.reps
(0.2, 3)
>>> Result("rw", "qstore local", "forward", 32 / t.median_s, "samples/s", n=8).value
160.0
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qstore.core.errors import QStoreError

__all__ = [
    "SCHEMA",
    "BenchError",
    "Result",
    "Run",
    "Timing",
    "load_runs",
    "machine_info",
    "measure",
    "thread_setting",
    "versions",
    "write_run",
]

SCHEMA = "qstore-bench/1"
"""Version tag of the JSON files; :func:`load_runs` refuses other schemas."""

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
"""Environment variables that set the thread pools of NumPy's BLAS, torch and TensorFlow."""

# Distributions whose versions matter for a figure; recorded when installed.
_VERSIONED = (
    "qstore-core",
    "qstore-torch",
    "qstore-tf",
    "qstore-sim-qsim",
    "qstore-sim-lightning",
    "numpy",
    "scipy",
    "torch",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "tf-keras",
    "tensorflow-quantum",
    "pennylane",
    "pennylane-lightning",
    "cirq-core",
    "qsimcirq",
    "qiskit",
    "matplotlib",
)


class BenchError(QStoreError, ValueError):
    """A benchmark was asked for something it cannot do (bad option, unreadable result file)."""


@dataclass(frozen=True)
class Timing:
    """Seconds of the timed repetitions of one call, plus the warm-up call's."""

    times_s: tuple[float, ...]
    warmup_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.times_s:
            raise BenchError("a Timing needs at least one timed repetition, got none.")

    @classmethod
    def from_times(cls, times: Iterable[float], warmup_s: float = 0.0) -> Timing:
        """A timing from measured seconds (for loops the harness does not drive itself)."""
        return cls(tuple(float(t) for t in times), float(warmup_s))

    @property
    def reps(self) -> int:
        return len(self.times_s)

    @property
    def median_s(self) -> float:
        return float(statistics.median(self.times_s))

    @property
    def quartiles_s(self) -> tuple[float, float]:
        """First and third quartile (inclusive method: both equal the value for one rep)."""
        if len(self.times_s) == 1:
            return self.times_s[0], self.times_s[0]
        q = statistics.quantiles(self.times_s, n=4, method="inclusive")
        return float(q[0]), float(q[2])

    @property
    def iqr_s(self) -> float:
        q1, q3 = self.quartiles_s
        return q3 - q1


def measure(
    fn: Callable[[], object],
    *,
    reps: int = 5,
    budget_s: float = 20.0,
    min_time_s: float = 0.5,
    max_reps: int = 100,
    warmup: int = 1,
) -> Timing:
    """Time ``fn()`` after ``warmup`` untimed calls.

    Repeats at least ``reps`` times and until ``min_time_s`` has passed (at most ``max_reps``), so
    that fast calls get a stable median; stops after the first repetition that crosses
    ``budget_s`` even with fewer than ``reps`` (slow calls: the record says how many were made).
    """
    if reps < 1 or max_reps < reps:
        raise BenchError(f"need 1 <= reps <= max_reps, got reps={reps}, max_reps={max_reps}.")
    warm = 0.0
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn()
        warm += time.perf_counter() - t0
    times: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        elapsed = t1 - start
        if len(times) >= max_reps or elapsed >= budget_s:
            break
        if len(times) >= reps and elapsed >= min_time_s:
            break
    return Timing(tuple(times), warm)


@dataclass(frozen=True)
class Result:
    """One figure: ``value`` in ``unit`` for ``contender`` on one case of a suite.

    ``kind`` is ``'qstore'`` (ours), ``'peer'`` (another library, the reference for ratios) or
    ``'baseline'`` (a classical twin). ``group`` labels the case when there is no qubit count
    (e.g. ``'keras'``). For rates, ``value = per_call / median_s``.
    """

    suite: str
    contender: str
    metric: str
    value: float
    unit: str
    n: int | None = None
    group: str = ""
    kind: str = "qstore"
    higher_is_better: bool = True
    per_call: float = 1.0
    median_s: float | None = None
    q1_s: float | None = None
    q3_s: float | None = None
    reps: int = 1
    warmup_s: float | None = None
    threads: int | None = None
    env: str = ""
    note: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("qstore", "peer", "baseline"):
            raise BenchError(f"kind must be 'qstore', 'peer' or 'baseline', got {self.kind!r}.")

    @classmethod
    def rate(
        cls,
        suite: str,
        contender: str,
        metric: str,
        timing: Timing,
        per_call: float,
        unit: str = "samples/s",
        **kw: Any,
    ) -> Result:
        """A throughput figure (``per_call`` items per call) from a :class:`Timing`."""
        q1, q3 = timing.quartiles_s
        return cls(
            suite,
            contender,
            metric,
            per_call / timing.median_s,
            unit,
            per_call=per_call,
            median_s=timing.median_s,
            q1_s=q1,
            q3_s=q3,
            reps=timing.reps,
            warmup_s=timing.warmup_s,
            **kw,
        )

    @classmethod
    def seconds(cls, suite: str, contender: str, metric: str, timing: Timing, **kw: Any) -> Result:
        """A duration figure (lower is better) from a :class:`Timing`."""
        q1, q3 = timing.quartiles_s
        return cls(
            suite,
            contender,
            metric,
            timing.median_s,
            "s",
            higher_is_better=False,
            median_s=timing.median_s,
            q1_s=q1,
            q3_s=q3,
            reps=timing.reps,
            warmup_s=timing.warmup_s,
            **kw,
        )

    @property
    def value_range(self) -> tuple[float, float] | None:
        """``value`` at the quartiles of the timed calls (low, high), when it is a rate or time."""
        if self.q1_s is None or self.q3_s is None or self.median_s is None:
            return None
        if self.unit == "s":
            return self.q1_s, self.q3_s
        if self.q1_s <= 0 or self.q3_s <= 0:
            return None
        return self.per_call / self.q3_s, self.per_call / self.q1_s

    def key(self) -> tuple[str, str, str, int | None, str, int | None]:
        """What makes two results the same figure (for merging runs)."""
        return (self.suite, self.group, self.metric, self.n, self.contender, self.threads)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise BenchError(f"unknown result fields {sorted(unknown)}; expected {sorted(names)}.")
        return cls(**dict(data))


def thread_setting() -> int:
    """Threads the run was asked to use: ``$OMP_NUM_THREADS``, else the number of CPUs."""
    text = os.environ.get("OMP_NUM_THREADS", "")
    try:
        value = int(text)
    except ValueError:
        value = 0
    return value if value > 0 else (os.cpu_count() or 1)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Machine, OS, CPU model, CPU count, usable CPUs and Python of this process."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "python": platform.python_version(),
        "executable": sys.executable,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def source_revision() -> dict[str, Any]:
    """The git commit of the code measured and whether its tree had uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode != 0:
        return {}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Installed versions of the distributions that matter for a figure (absent ones left out)."""
    out: dict[str, str] = {}
    for dist in (*_VERSIONED, *extra):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _library_threads() -> dict[str, Any]:
    threads: dict[str, Any] = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    torch = sys.modules.get("torch")
    if torch is not None:
        threads["torch"] = int(torch.get_num_threads())
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "config"):
        threading = tf.config.threading
        threads["tf_intra_op"] = int(threading.get_intra_op_parallelism_threads())
        threads["tf_inter_op"] = int(threading.get_inter_op_parallelism_threads())
    return threads


def environment_label() -> str:
    """A short name of the Python environment: ``$QSTORE_BENCH_ENV``, hatch's, or the venv's."""
    label = os.environ.get("QSTORE_BENCH_ENV") or os.environ.get("HATCH_ENV_ACTIVE")
    if label:
        return label
    return Path(sys.prefix).name or "python"


@dataclass
class Run:
    """Results of one suite in one process, with what is needed to reproduce and compare them."""

    suite: str
    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    env: str = field(default_factory=environment_label)
    threads: int = field(default_factory=thread_setting)
    started: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    def add(self, result: Result) -> Result:
        """Append ``result`` with this run's thread setting and environment filled in."""
        kw: dict[str, Any] = {}
        if result.threads is None:
            kw["threads"] = self.threads
        if not result.env:
            kw["env"] = self.env
        if kw:
            result = Result(**{**result.as_dict(), **kw})
        self.results.append(result)
        return result

    def note(self, text: str) -> None:
        self.notes.append(text)

    def as_dict(self) -> dict[str, Any]:
        """The JSON document: schema, run record (machine, versions, threads, date), results."""
        return {
            "schema": SCHEMA,
            "suite": self.suite,
            "env": self.env,
            "threads": self.threads,
            "started": self.started,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "versions": versions(),
            "source": source_revision(),
            "thread_settings": _library_threads(),
            "argv": list(sys.argv),
            "options": self.options,
            "notes": list(self.notes),
            "profiles": self.profiles,
            "results": [r.as_dict() for r in self.results],
        }


def result_file(out_dir: str | os.PathLike[str], suite: str, env: str, threads: int) -> Path:
    """Where :func:`write_run` puts one suite's JSON: one file per suite, environment, threads."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in env)
    return Path(out_dir) / f"{suite}-{safe}-t{threads}.json"


def write_run(run: Run, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``run`` as JSON into ``out_dir`` (created); returns the file."""
    path = result_file(out_dir, run.suite, run.env, run.threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.as_dict(), indent=2, default=_jsonable) + "\n", "utf-8")
    return path


def _jsonable(obj: object) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)


def load_runs(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Read result files (or every ``*.json`` in a directory); results become :class:`Result`."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.json"))
        elif p.is_file():
            files.append(p)
        else:
            raise BenchError(f"no result file or directory at {str(p)!r}.")
    runs = []
    for f in files:
        try:
            data = json.loads(f.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise BenchError(f"cannot read benchmark results {str(f)!r}: {exc}") from exc
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            continue  # not ours (e.g. another tool's JSON in the same directory)
        data["results"] = [Result.from_dict(r) for r in data.get("results", [])]
        data["file"] = str(f)
        runs.append(data)
    return runs
