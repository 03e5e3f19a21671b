"""Contenders that other distributions add to the benchmark suites.

qstore-core measures its own backends; everything that needs a framework or a peer library is
contributed by the distribution that owns that dependency, through the entry-point group
``qstore.bench``. The entry point names a function ``contenders(case) -> Sequence[...]`` that
returns, for each case it takes part in, what to time (and ``[]`` for the others)::

    [project.entry-points."qstore.bench"]
    tf = "qstore.tf.bench:contenders"

Cases: ``"rw"`` and ``"circuits"`` (a batch of 32 bindings per call) take :class:`Contender` s
(``setup(n)`` returns a :class:`~qstore.core.bench.workload.Case`; ``circuits`` times only its
forward call), ``"circuits:one-at-a-time"`` too (one bound circuit object per call), and
``"fashion-mnist"`` takes :class:`TrainingContender` s. A contender imports its library inside
``setup``/``fit``, never when it is listed, and raises ``ImportError`` (or
:class:`~qstore.core.bench.runner.UnavailableError`) there when it cannot run: it is then skipped
with a note.

>>> from qstore.core.bench.plugins import Contender
>>> from qstore.core.bench.workload import Case
>>> Contender("mine", "qstore", lambda n: Case(lambda: None)).kind
'qstore'
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from qstore.core.bench.harness import BenchError, Run
from qstore.core.bench.runner import Log, Options, skip_note
from qstore.core.bench.workload import Case
from qstore.core.demos.fashion_mnist import Data, held_native_stderr

__all__ = [
    "BENCH_ENTRY_POINT_GROUP",
    "CASES",
    "CIRCUITS",
    "CIRCUITS_ONE_AT_A_TIME",
    "FASHION_MNIST",
    "KINDS",
    "RW",
    "Contender",
    "Trained",
    "TrainingContender",
    "installed",
    "invalidate_cache",
    "plugin_contenders",
]

BENCH_ENTRY_POINT_GROUP = "qstore.bench"
"""Entry-point group through which distributions add contenders to ``qstore bench``."""

RW = "rw"
CIRCUITS = "circuits"
CIRCUITS_ONE_AT_A_TIME = "circuits:one-at-a-time"
FASHION_MNIST = "fashion-mnist"
CASES = (RW, CIRCUITS, CIRCUITS_ONE_AT_A_TIME, FASHION_MNIST)
"""What a distribution's ``contenders(case)`` is asked for."""

KINDS = ("qstore", "peer", "baseline")
"""Ours, another library (the reference for ratios), a classical twin."""


def _check_kind(name: str, kind: str) -> None:
    if kind not in KINDS:
        raise BenchError(f"contender {name!r}: kind must be one of {KINDS}, got {kind!r}.")


@dataclass(frozen=True)
class Contender:
    """A named way to run a circuit workload: ``setup(n)`` returns the calls to time at ``n``
    qubits. ``max_n`` (with the reason ``why_max``) caps the sizes it is tried at."""

    name: str
    kind: str
    setup: Callable[[int], Case]
    max_n: int | None = None
    why_max: str = ""

    def __post_init__(self) -> None:
        _check_kind(self.name, self.kind)


@dataclass(frozen=True)
class Trained:
    """One fit: its seconds and the test accuracy reached."""

    fit_s: float
    accuracy: float


@dataclass(frozen=True)
class TrainingContender:
    """A model of the ``fashion-mnist`` suite: ``fit(data, epochs)`` builds a fresh model and
    trains it; ``quantum_step()``, for quantum models, returns one forward + gradient call of the
    quantum block alone on a batch (to show where the time goes). ``group`` is the framework
    (``"keras"``, ``"pytorch"``): ratios compare models of the same group."""

    name: str
    group: str
    kind: str
    fit: Callable[[Data, int], Trained]
    quantum_step: Callable[[], Callable[[], object]] | None = None

    def __post_init__(self) -> None:
        _check_kind(self.name, self.kind)


ContenderSource = Callable[[str], Sequence[object]]

_T = TypeVar("_T", Contender, TrainingContender)


@dataclass(frozen=True)
class _Source:
    """One entry point of the group, loaded: its ``contenders`` function, or why it is not."""

    name: str
    distribution: str
    contenders: ContenderSource | None
    problem: str = ""


class _Loaded:
    """Entry points loaded so far in this process, by name."""

    sources: ClassVar[dict[str, _Source]] = {}


def invalidate_cache() -> None:
    """Forget the loaded entry points; the next run sees newly installed distributions."""
    _Loaded.sources.clear()


def installed() -> dict[str, str]:
    """``{entry-point name: distribution}`` of the group ``qstore.bench``, without loading any.

    The names are what ``--plugins`` (:attr:`Options.plugins`) selects.
    """
    eps = importlib.metadata.entry_points(group=BENCH_ENTRY_POINT_GROUP)
    return {
        ep.name: ep.dist.name if ep.dist is not None else ep.value
        for ep in sorted(eps, key=lambda e: e.name)
    }


def _load(ep: importlib.metadata.EntryPoint) -> _Source:
    dist = ep.dist.name if ep.dist is not None else ep.value
    try:
        with held_native_stderr():  # frameworks' import-time lines (shown if loading fails)
            fn: Any = ep.load()
    except Exception as exc:  # a broken plugin must not end the whole run
        why = (
            f"the contenders of {dist} ({ep.value}) could not be loaded "
            f"({type(exc).__name__}: {exc}); reinstall {dist} to measure them"
        )
        return _Source(ep.name, dist, None, why)
    if not callable(fn):
        return _Source(ep.name, dist, None, f"{ep.value} of {dist} is not a function")
    return _Source(ep.name, dist, fn)


def _sources(names: Sequence[str] | None) -> list[_Source]:
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group=BENCH_ENTRY_POINT_GROUP)}
    if names is None:
        names = sorted(eps)
    unknown = [n for n in names if n not in eps]
    if unknown:
        raise BenchError(
            f"no installed distribution adds contenders named {unknown} (entry-point group "
            f"{BENCH_ENTRY_POINT_GROUP!r}); installed: {', '.join(sorted(eps)) or 'none'}."
        )
    for name in names:
        if name not in _Loaded.sources:
            _Loaded.sources[name] = _load(eps[name])
    return [_Loaded.sources[n] for n in names]


def plugin_contenders(case: str, kind: type[_T], options: Options, run: Run, log: Log) -> list[_T]:
    """What the installed distributions selected by ``options.plugins`` (all by default)
    contribute to ``case``: objects of type ``kind``, in entry-point name order.

    A distribution whose entry point cannot be loaded, whose function fails, or that returns
    something else than ``kind`` is noted in ``run`` and skipped.
    """
    if case not in CASES:
        raise BenchError(f"unknown case {case!r}; expected one of {CASES}.")
    found: list[_T] = []
    for source in _sources(options.plugins):
        if source.contenders is None:
            if not any(source.problem in note for note in run.notes):
                skip_note(run, log, f"plugin {source.name!r}", source.problem)
            continue
        try:
            items = list(source.contenders(case))
        except Exception as exc:  # reported; the other distributions' contenders still run
            skip_note(
                run,
                log,
                f"{source.distribution}'s {case} contenders",
                f"{type(exc).__name__}: {exc}",
            )
            continue
        for item in items:
            if isinstance(item, kind):
                found.append(item)
            else:
                skip_note(
                    run,
                    log,
                    f"{item!r} from {source.distribution}",
                    f"the {case} case takes {kind.__name__} objects",
                )
    return found
