"""Cost-aware routing: which backend runs a circuit, and why.

:class:`SmartBackendRouter` assesses every backend the configuration allows (every installed
backend when it lists none) for one circuit, from measured and declared facts:

* **can it run here**: the backend is installed and available (an API key, a GPU device), has
  enough qubits; a GPU entry (``device='cuda:0'``) needs the backend's GPU form — a ``device``
  option, or the registered ``<name>.gpu`` — to be available; otherwise the entry is skipped with
  the reason;
* **cost** of the job from the backend's price model (:mod:`qstore.core.routing.costs`), against
  what is left of the budget: a job that does not fit is skipped ("over budget");
* **time**: for local simulators, the measured throughput on the reference workload from the
  calibration cache of :class:`~qstore.core.backends.selection.SimulationBackendManager`
  (measured once per machine), scaled by the circuit's size; for remote backends, the queue
  estimate the service reports plus the seconds per circuit measured on earlier jobs (the
  ledger);
* **precision**: exact, shots, noise (:func:`~qstore.core.routing.costs.estimate_precision`),
  against ``precision_required``.

The eligible backends are scored ``w_cost * cost_score + w_speed * speed_score + w_precision *
precision`` with weights from the priority (:data:`PRIORITY_WEIGHTS`); ``speed_score`` is the
fastest estimate over the backend's estimate, ``cost_score`` is ``1 - cost / remaining budget``
(``1 / (1 + cost)`` without a budget). Entries whose ``use_for`` names the workload come first;
the others are fallbacks (when ``auto_backend_selection`` allows them), simulators before
hardware.

:meth:`SmartBackendRouter.execute` runs a circuit on the decision and, when the estimated cost
cannot be reserved (another submission took the money in between), falls back to the next
candidate with a :class:`FallbackWarning`, or raises
:class:`~qstore.core.errors.BudgetExceededError`.

>>> import qstore.core as qc
>>> router = qc.SmartBackendRouter(
...     {"backends": [{"name": "local", "use_for": "development"}]}, ledger_path=":memory:"
... )
>>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
>>> decision = router.route_circuit(c, precision_required=0.9, priority="speed")
>>> decision.backend, decision.estimated_cost, decision.estimated_precision
('local', 0.0, 1.0)
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from qstore.core.backends import registry
from qstore.core.backends.base import Capabilities, ExecutionResult
from qstore.core.backends.selection import SimulationBackendManager, reference_circuit
from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import (
    BackendError,
    BudgetExceededError,
    MissingDependencyError,
    QStoreError,
    RoutingError,
    TrainingConfigError,
)
from qstore.core.routing.costs import (
    effective_shots,
    estimate_job_cost,
    estimate_precision,
)
from qstore.core.routing.ledger import CostTracker
from qstore.core.routing.metered import MeteredBackend
from qstore.core.routing.specs import (
    BackendSpec,
    RouterConfig,
    check_priority,
    check_workload,
)

__all__ = [
    "PRIORITY_WEIGHTS",
    "WORKLOAD_PROFILES",
    "Assessment",
    "FallbackWarning",
    "Recommendation",
    "Recommendations",
    "RoutingDecision",
    "SmartBackendRouter",
]

logger = logging.getLogger(__name__)

PRIORITY_WEIGHTS: Mapping[str, tuple[float, float, float]] = {
    "balanced": (0.4, 0.4, 0.2),
    "cost": (0.7, 0.2, 0.1),
    "speed": (0.1, 0.8, 0.1),
}
"""``(cost, speed, precision)`` weights of the score, per priority."""


@dataclass(frozen=True)
class _Profile:
    priority: str
    precision_required: float
    hardware_bonus: float  # added to the score of quantum hardware
    gradient_bonus: float  # added to the score of backends with an exact adjoint VJP
    why: str


WORKLOAD_PROFILES: Mapping[str, _Profile] = {
    "development": _Profile("speed", 0.0, 0.0, 0.0, "fast, free iteration"),
    "training": _Profile(
        "speed", 0.0, 0.0, 0.2, "many steps: speed and exact adjoint gradients matter"
    ),
    "validation": _Profile("balanced", 0.9, 0.0, 0.0, "trustworthy numbers at a fair price"),
    "production": _Profile("balanced", 0.0, 0.5, 0.0, "the target hardware, within budget"),
    "research": _Profile("balanced", 0.99, 0.0, 0.0, "exact or near-exact results"),
}
"""How :meth:`SmartBackendRouter.get_backend_recommendations` ranks for each workload."""

_REFRESH_SECONDS = 60.0
_RW_LAYERS = 4
_RW_BATCH = 8


class FallbackWarning(UserWarning):
    """A job ran on another backend than the preferred one (budget, availability)."""


@dataclass(frozen=True)
class Assessment:
    """How one backend fared for one circuit: eligible with estimates and a score, or skipped
    with the reason."""

    label: str
    name: str
    eligible: bool
    preferred: bool
    reasons: tuple[str, ...]
    estimated_cost: float | None = None
    estimated_seconds: float | None = None
    precision: float | None = None
    queue_seconds: float | None = None
    score: float | None = None
    hardware: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "backend": self.label,
            "name": self.name,
            "eligible": self.eligible,
            "preferred": self.preferred,
            "reasons": list(self.reasons),
            "estimated_cost": self.estimated_cost,
            "estimated_seconds": self.estimated_seconds,
            "precision": self.precision,
            "queue_seconds": self.queue_seconds,
            "score": self.score,
        }


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.1f} s"


def _table(rows: tuple[Assessment, ...], chosen: str | None) -> list[str]:
    lines = [f" {'backend':<26} {'score':>6} {'cost $':>9} {'time':>9} {'precision':>9}  notes"]
    for a in rows:
        mark = "*" if a.label == chosen else " "
        if a.eligible:
            assert a.score is not None and a.estimated_cost is not None
            assert a.precision is not None
            lines.append(
                f"{mark}{a.label:<26} {a.score:>6.3f} {a.estimated_cost:>9.2f} "
                f"{_fmt_seconds(a.estimated_seconds):>9} {a.precision:>9.3f}  "
                + "; ".join(a.reasons)
            )
        else:
            lines.append(
                f" {a.label:<26} {'-':>6} {'-':>9} {'-':>9} {'-':>9}  skipped: "
                + "; ".join(a.reasons)
            )
    return lines


@dataclass(frozen=True)
class RoutingDecision:
    """The backend chosen for a circuit, its estimates, and every candidate's assessment.

    ``backend`` is the entry's label (``name``, or ``name@target`` / ``name@device``);
    ``fallback`` is true when the chosen entry is not one meant for the workload.
    """

    backend: str
    name: str
    estimated_cost: float
    estimated_seconds: float | None
    estimated_precision: float
    reasons: tuple[str, ...]
    priority: str
    workload: str | None
    fallback: bool
    remaining_budget: float | None
    candidates: tuple[Assessment, ...]

    @property
    def alternatives(self) -> tuple[str, ...]:
        """The other eligible backends, best first (what a fallback would use)."""
        return tuple(a.label for a in self.candidates if a.eligible and a.label != self.backend)

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "backend": self.backend,
            "name": self.name,
            "estimated_cost": self.estimated_cost,
            "estimated_seconds": self.estimated_seconds,
            "estimated_precision": self.estimated_precision,
            "reasons": list(self.reasons),
            "priority": self.priority,
            "workload": self.workload,
            "fallback": self.fallback,
            "remaining_budget": self.remaining_budget,
            "candidates": [a.as_dict() for a in self.candidates],
        }

    def __str__(self) -> str:
        work = f" for {self.workload}" if self.workload else ""
        left = (
            "no budget"
            if self.remaining_budget is None
            else f"${self.remaining_budget:.2f} of budget left"
        )
        head = (
            f"Route{work} -> {self.backend!r} (priority {self.priority}"
            f"{', fallback' if self.fallback else ''}): ${self.estimated_cost:.2f}, "
            f"{_fmt_seconds(self.estimated_seconds)}, precision {self.estimated_precision:.3f}; "
            f"{left}"
        )
        return "\n".join([head, *_table(self.candidates, self.backend)])


@dataclass(frozen=True)
class Recommendation:
    """One recommended backend for a workload, with its estimates on the reference circuit."""

    rank: int
    backend: str
    score: float
    estimated_cost: float
    estimated_seconds: float | None
    precision: float
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "backend": self.backend,
            "score": self.score,
            "estimated_cost": self.estimated_cost,
            "estimated_seconds": self.estimated_seconds,
            "precision": self.precision,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class Recommendations:
    """Ranked backends for a workload type (iterable, best first) and the skipped ones."""

    workload: str
    why: str
    n_qubits: int
    items: tuple[Recommendation, ...]
    skipped: tuple[Assessment, ...]

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Recommendation:
        return self.items[i]

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(r.backend for r in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "why": self.why,
            "n_qubits": self.n_qubits,
            "recommendations": [r.as_dict() for r in self.items],
            "skipped": [a.as_dict() for a in self.skipped],
        }

    def __str__(self) -> str:
        lines = [f"Backends for {self.workload} ({self.why}; {self.n_qubits}-qubit reference):"]
        for r in self.items:
            lines.append(
                f" {r.rank}. {r.backend:<26} score {r.score:.3f}, ${r.estimated_cost:.2f}, "
                f"{_fmt_seconds(r.estimated_seconds)}, precision {r.precision:.3f}: "
                + "; ".join(r.reasons)
            )
        if not self.items:
            lines.append(" (none can run here)")
        for a in self.skipped:
            lines.append(f" -  {a.label:<26} skipped: " + "; ".join(a.reasons))
        return "\n".join(lines)


@dataclass
class _Entry:
    spec: BackendSpec
    backend: Any = None
    metered: MeteredBackend | None = None
    error: str = ""
    refreshed: float = -math.inf


def _rw_ops(n: int) -> int:
    return n + _RW_LAYERS * (2 * n + max(n - 1, 0))


def _is_hardware(spec: BackendSpec, caps: Capabilities) -> bool:
    return spec.type == "qpu" or (caps.remote and not caps.exact)


class SmartBackendRouter:
    """Routes circuits to the backends a configuration allows, within a hard budget.

    Args:
        config: a ``qstore.TrainingConfig``, a mapping of its routing fields (``backends``,
            ``routing_priority``, ``cost_budget``, ``auto_backend_selection``), a list of backend
            entries, or ``None`` (every installed backend, no budget).
        tracker: the :class:`CostTracker` to reserve and record in (default: one on
            ``ledger_path`` with the config's ``cost_budget``).
        ledger_path, budget_id: for the default tracker (``":memory:"`` keeps nothing).
        manager: the :class:`SimulationBackendManager` whose calibration cache gives the local
            simulators' throughput.
        backends: ready backend instances by entry label or name (instead of creating them with
            :func:`qstore.core.backends.get`).
        calibrate: measure local simulators that the calibration cache does not know yet
            (``False``: their time is unknown and ranks last).
    """

    def __init__(
        self,
        config: Any = None,
        *,
        tracker: CostTracker | None = None,
        ledger_path: str | None = None,
        budget_id: str = "default",
        manager: SimulationBackendManager | None = None,
        backends: Mapping[str, Any] | None = None,
        calibrate: bool = True,
    ) -> None:
        self.config = RouterConfig.from_any(config)
        self.n_qubits_hint = getattr(config, "n_qubits", None)
        if tracker is None:
            tracker = CostTracker(self.config.cost_budget, ledger_path, budget_id=budget_id)
        self.tracker = tracker
        self.manager = manager or SimulationBackendManager()
        self.calibrate = calibrate
        self._given = dict(backends or {})
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._calibrations: dict[tuple[str, int], float | None] = {}
        specs = self.config.backends or self._installed_specs()
        for spec in specs:
            label = spec.label
            n = 2
            while label in self._entries:  # the same backend listed twice with the same options
                label = f"{spec.label}#{n}"
                n += 1
            self._entries[label] = _Entry(spec)

    # -- entries and backends ---------------------------------------------------------------------
    @staticmethod
    def _installed_specs() -> list[BackendSpec]:
        out = []
        for inf in registry.all_info():
            caps = inf.capabilities
            kind = "simulator"
            if caps is not None:
                if caps.remote:
                    kind = "cloud_simulator" if caps.exact else "qpu"
                elif caps.gpu:
                    kind = "gpu_simulator"
            out.append(BackendSpec(inf.name, kind))
        return out

    @property
    def labels(self) -> tuple[str, ...]:
        """The entries the router chooses from, in configuration order."""
        return tuple(self._entries)

    def spec(self, label: str) -> BackendSpec:
        """The configuration entry of ``label``."""
        return self._entry(label).spec

    def _entry(self, label: str) -> _Entry:
        entry = self._entries.get(label)
        if entry is None:
            matches = [e for e in self._entries.values() if e.spec.name == label]
            if len(matches) == 1:
                return matches[0]
            raise TrainingConfigError(
                f"No backend {label!r} in the routing configuration; it has {list(self._entries)}."
            )
        return entry

    def _create(self, spec: BackendSpec) -> Any:
        given = self._given.get(spec.label, self._given.get(spec.name))
        if given is not None:
            return given
        options = spec.options()
        if not spec.gpu:
            return registry.get(spec.name, **options)
        try:  # a backend that takes a device option ...
            return registry.get(spec.name, device=spec.device, **options)
        except BackendError as exc:
            if "Invalid options" not in str(exc):
                raise
        gpu_name = f"{spec.name}.gpu"  # ... or its registered GPU form
        if gpu_name not in registry.available():
            raise RoutingError(
                f"{spec.name!r} has no GPU form here (no 'device' option and no {gpu_name!r} "
                "backend installed)"
            )
        return registry.get(gpu_name, **options)

    def backend(self, label: str) -> Any:
        """The backend instance of an entry (created on first use).

        Raises:
            RoutingError: it cannot be created here (missing plugin, bad options); the message
                says why.
        """
        entry = self._entry(label)
        with self._lock:
            if entry.backend is None and not entry.error:
                try:
                    entry.backend = self._create(entry.spec)
                except (QStoreError, TypeError, ImportError) as exc:
                    entry.error = f"cannot be created: {exc}"
                    logger.info("Backend %s %s", entry.spec.label, entry.error)
            if entry.backend is None:
                raise RoutingError(f"Backend {entry.spec.label!r} {entry.error}")
            return entry.backend

    def metered(self, label: str) -> MeteredBackend:
        """The entry's backend wrapped so that every execution is priced, reserved against
        the budget and recorded (one wrapper per entry)."""
        entry = self._entry(label)
        backend = self.backend(label)
        with self._lock:
            if entry.metered is None:
                entry.metered = MeteredBackend(backend, self.tracker, label=entry.spec.label)
            return entry.metered

    # -- assessment -------------------------------------------------------------------------------
    def _refresh_queue(self, entry: _Entry, backend: Any) -> None:
        refresh = getattr(backend, "refresh", None)
        now = time.monotonic()
        if not callable(refresh) or now - entry.refreshed < _REFRESH_SECONDS:
            return
        entry.refreshed = now
        try:
            refresh()
        except Exception as exc:  # the queue estimate is optional: keep the last one
            logger.info("Queue estimate of %s unavailable: %s", entry.spec.label, exc)

    def _local_seconds(self, name: str, circuit: UnifiedCircuit) -> tuple[float | None, str]:
        n = circuit.n_qubits
        key = (name, n)
        if key not in self._calibrations:
            seconds: float | None = None
            try:
                if self.calibrate:
                    seconds = self.manager.calibration(name, n).predict(n)
            except Exception as exc:  # a plugin failing its calibration: time unknown, said so
                logger.info("No throughput measurement for %s: %s", name, exc)
            self._calibrations[key] = seconds
        batch_seconds = self._calibrations[key]
        if batch_seconds is None:
            return None, "throughput not measured"
        size = max(1.0, len(circuit.operations) / _rw_ops(n))
        per_circuit = batch_seconds / _RW_BATCH * size
        rate = 1.0 / per_circuit if per_circuit > 0 else math.inf
        return per_circuit, f"measured {rate:,.0f} circuits/s at {n} qubits"

    def _remote_seconds(self, label: str) -> tuple[float | None, str]:
        per = [
            e.seconds / max(e.n_circuits, 1)
            for e in self.tracker.entries(backend=label)
            if e.status == "settled" and e.seconds
        ]
        if not per:
            return None, "no jobs measured yet"
        return statistics.median(per), f"{len(per)} earlier job(s) measured"

    def _assess(
        self,
        label: str,
        entry: _Entry,
        circuit: UnifiedCircuit,
        shots: int | None,
        n_circuits: int,
        precision_required: float,
        preferred: bool,
        remaining: float,
    ) -> Assessment:
        spec = entry.spec

        def skip(reason: str) -> Assessment:
            return Assessment(label, spec.name, False, preferred, (reason,))

        try:
            backend = self.backend(label)
            caps: Capabilities = backend.capabilities
        except RoutingError as exc:
            return skip(str(exc).split(f"{label!r} ", 1)[-1])
        except (QStoreError, MissingDependencyError) as exc:
            return skip(f"cannot be created: {exc}")
        if spec.gpu and not caps.gpu:
            return skip(f"device {spec.device!r} asked for, but {caps.name!r} runs on the CPU")
        if not caps.available:
            where = f" on {spec.device}" if spec.gpu else ""
            return skip(f"cannot run here{where}: {caps.reason or 'unavailable'}")
        if caps.max_qubits < circuit.n_qubits:
            return skip(
                f"supports at most {caps.max_qubits} qubits, the circuit has {circuit.n_qubits}"
            )
        if caps.remote:
            self._refresh_queue(entry, backend)
            caps = backend.capabilities
        run_shots = effective_shots(backend, shots)
        try:
            cost = estimate_job_cost(backend, circuit, run_shots, n_circuits)
        except QStoreError as exc:
            return skip(f"cannot price the job: {exc}")
        precision, how = estimate_precision(caps, circuit, run_shots)
        reasons = [how]
        if precision + 1e-12 < precision_required:
            return replace(
                skip(f"precision {precision:.3f} < required {precision_required:.3f} ({how})"),
                estimated_cost=cost,
                precision=precision,
            )
        if cost > 0:
            if cost > remaining + 1e-9:
                return replace(
                    skip(f"over budget: ${cost:.2f} > ${remaining:.2f} left"),
                    estimated_cost=cost,
                    precision=precision,
                )
            reasons.append(
                f"${cost:.2f} of ${remaining:.2f} left" if remaining < math.inf else f"${cost:.2f}"
            )
        else:
            reasons.append("free")
        queue = caps.queue_seconds if caps.remote else None
        if caps.remote:
            per, note = self._remote_seconds(label)
            seconds = None if per is None else per * n_circuits + (queue or 0.0)
            reasons.append(f"queue {_fmt_seconds(queue)}; {note}")
        else:
            per, note = self._local_seconds(caps.name, circuit)
            seconds = None if per is None else per * n_circuits
            reasons.append(note)
        return Assessment(
            label,
            spec.name,
            True,
            preferred,
            tuple(reasons),
            estimated_cost=cost,
            estimated_seconds=seconds,
            precision=precision,
            queue_seconds=queue,
            hardware=_is_hardware(spec, caps),
        )

    def _candidates(self, workload: str | None) -> list[tuple[str, _Entry, bool]]:
        entries = list(self._entries.items())
        if workload is None:
            return [(label, e, True) for label, e in entries]
        meant = [label for label, e in entries if workload in e.spec.use_for]
        if not meant:
            return [(label, e, True) for label, e in entries]
        allowed = (
            entries
            if self.config.auto_backend_selection
            else [(label, e) for label, e in entries if label in meant]
        )
        return [(label, e, label in meant) for label, e in allowed]

    def _score(
        self,
        rows: list[Assessment],
        priority: str,
        remaining: float,
        profile: _Profile | None = None,
    ) -> list[Assessment]:
        w_cost, w_speed, w_prec = PRIORITY_WEIGHTS[priority]
        times = [a.estimated_seconds for a in rows if a.eligible and a.estimated_seconds]
        fastest = min(times, default=None)
        out = []
        for a in rows:
            if not a.eligible:
                out.append(a)
                continue
            cost = a.estimated_cost or 0.0
            if remaining < math.inf:
                cost_score = max(0.0, 1.0 - cost / remaining) if remaining > 0 else 0.0
                cost_score = 1.0 if cost == 0 else cost_score
            else:
                cost_score = 1.0 / (1.0 + cost)
            t = a.estimated_seconds
            if fastest is None or t is None:
                speed = 0.0 if t is None and fastest is not None else 0.5
            else:
                speed = fastest / t if t > 0 else 1.0
            score = w_cost * cost_score + w_speed * speed + w_prec * (a.precision or 0.0)
            reasons = list(a.reasons)
            if profile is not None:
                if a.hardware and profile.hardware_bonus:
                    score += profile.hardware_bonus
                    reasons.append("quantum hardware")
                caps = self._entry(a.label).backend.capabilities
                methods = tuple(caps.gradient_methods or ())
                if profile.gradient_bonus and caps.vjp and methods[:1] == ("adjoint",):
                    score += profile.gradient_bonus
                    reasons.append("exact adjoint gradients")
            out.append(replace(a, score=score, reasons=tuple(reasons)))

        def key(a: Assessment) -> tuple[bool, bool, bool, float, str]:
            spec = self._entry(a.label).spec
            return (
                not a.eligible,
                not a.preferred,
                spec.paid_type and not a.preferred,
                -(a.score or 0.0),
                a.label,
            )

        return sorted(out, key=key)

    # -- public API -------------------------------------------------------------------------------
    def route_circuit(
        self,
        circuit: UnifiedCircuit,
        precision_required: float = 0.9,
        priority: str | None = None,
        *,
        workload: str | None = None,
        shots: int | None = None,
        n_circuits: int = 1,
        exclude: tuple[str, ...] = (),
    ) -> RoutingDecision:
        """Choose the backend for ``n_circuits`` runs of ``circuit`` (see the module).

        Args:
            circuit: what will run (its size, gates and qubits are what is scored).
            precision_required: skip backends whose estimated precision is lower (0..1).
            priority: ``'balanced'``, ``'cost'`` or ``'speed'`` (default: the config's).
            workload: prefer the entries whose ``use_for`` names it (``'training'``, ``'val'``
                ...); the others are fallbacks.
            shots: shots per circuit (``None``: exact where the backend is exact, else its
                default).
            n_circuits: circuits in the call (a batch, shifted circuits of a gradient).
            exclude: labels not to choose.

        Raises:
            BudgetExceededError: every backend that could run it is over budget.
            RoutingError: no backend can run it here; the message gives each one's reason.
        """
        if not isinstance(circuit, UnifiedCircuit):
            raise RoutingError(
                f"route_circuit needs a qstore.core.UnifiedCircuit, got {type(circuit).__name__}."
            )
        prio = check_priority(priority or self.config.routing_priority)
        if not isinstance(precision_required, (int, float)) or not 0 <= precision_required <= 1:
            raise RoutingError(
                f"precision_required = {precision_required!r}; give a number in [0, 1]."
            )
        work = None if workload is None else check_workload(workload, "workload")
        remaining = self.tracker.remaining
        rows = [
            self._assess(label, e, circuit, shots, n_circuits, precision_required, pref, remaining)
            for label, e, pref in self._candidates(work)
            if label not in exclude
        ]
        ranked = self._score(rows, prio, remaining)
        eligible = [a for a in ranked if a.eligible]
        if not eligible:
            raise self._no_backend(ranked, remaining, work)
        best = eligible[0]
        assert best.estimated_cost is not None and best.precision is not None
        reasons = list(best.reasons)
        if not best.preferred:
            skipped = [a for a in ranked if a.preferred and not a.eligible]
            why = "; ".join(f"{a.label}: {a.reasons[0]}" for a in skipped)
            reasons.insert(0, f"fallback ({why})" if why else "fallback")
        return RoutingDecision(
            backend=best.label,
            name=best.name,
            estimated_cost=best.estimated_cost,
            estimated_seconds=best.estimated_seconds,
            estimated_precision=best.precision,
            reasons=tuple(reasons),
            priority=prio,
            workload=work,
            fallback=not best.preferred and any(a.preferred for a in ranked),
            remaining_budget=None if remaining == math.inf else remaining,
            candidates=tuple(ranked),
        )

    def _no_backend(
        self, ranked: list[Assessment], remaining: float, workload: str | None
    ) -> RoutingError:
        why = "; ".join(f"{a.label}: {', '.join(a.reasons)}" for a in ranked) or "none configured"
        over = [a for a in ranked if a.reasons and a.reasons[0].startswith("over budget")]
        work = f" for {workload}" if workload else ""
        if over:
            cheapest = min(over, key=lambda a: a.estimated_cost or 0.0)
            cost = cheapest.estimated_cost or 0.0
            return BudgetExceededError(
                f"No backend{work} fits the budget: the cheapest job ({cheapest.label}) is "
                f"estimated at ${cost:.2f} and ${remaining:.2f} is left ({why}). Raise "
                "cost_budget, reduce shots or circuits, or allow a free simulator.",
                remaining=remaining,
                cost=cost,
                backend=cheapest.label,
            )
        return RoutingError(
            f"No backend{work} can run this circuit here ({why}). Install or configure one "
            "that can (e.g. the built-in 'local')."
        )

    def get_backend_recommendations(
        self, workload_type: str, n_qubits: int | None = None
    ) -> Recommendations:
        """The backends to use for a workload type, best first, scored on the reference circuit
        (:func:`~qstore.core.backends.selection.reference_circuit` at ``n_qubits``, default the
        config's ``n_qubits`` or 8) with the workload's profile (:data:`WORKLOAD_PROFILES`).

        ``workload_type``: ``'development'``, ``'training'``, ``'validation'``,
        ``'production'`` or ``'research'``.
        """
        work = check_workload(workload_type)
        profile = WORKLOAD_PROFILES[work]
        n = int(n_qubits or self.n_qubits_hint or 8)
        circuit = reference_circuit(n)
        remaining = self.tracker.remaining
        rows = [
            self._assess(label, e, circuit, None, 1, profile.precision_required, pref, remaining)
            for label, e, pref in self._candidates(work)
        ]
        ranked = self._score(rows, profile.priority, remaining, profile)
        items: list[Recommendation] = []
        for a in ranked:
            if not a.eligible:
                continue
            assert a.score is not None and a.estimated_cost is not None
            assert a.precision is not None
            reasons = a.reasons if a.preferred else ("not meant for it in the config", *a.reasons)
            items.append(
                Recommendation(
                    len(items) + 1,
                    a.label,
                    a.score,
                    a.estimated_cost,
                    a.estimated_seconds,
                    a.precision,
                    tuple(reasons),
                )
            )
        return Recommendations(
            work, profile.why, n, tuple(items), tuple(a for a in ranked if not a.eligible)
        )

    async def execute(
        self,
        circuit: UnifiedCircuit,
        shots: int | None = 1000,
        timeout: float | None = None,
        *,
        workload: str | None = None,
        priority: str | None = None,
        precision_required: float = 0.0,
    ) -> ExecutionResult:
        """Route ``circuit``, reserve its cost, run it, record it; fall back when the reservation
        fails (a concurrent submission took the money), warning with :class:`FallbackWarning`.

        Raises:
            BudgetExceededError: no allowed backend fits what is left of the budget.
        """
        excluded: list[str] = []
        last: BudgetExceededError | None = None
        preferred: str | None = None
        while True:
            try:
                decision = self.route_circuit(
                    circuit,
                    precision_required,
                    priority,
                    workload=workload,
                    shots=shots,
                    exclude=tuple(excluded),
                )
            except BudgetExceededError as exc:
                raise (last or exc) from None
            if preferred is None:
                # the entry meant for this workload, when the router had to pass it over
                meant = [a.label for a in decision.candidates if a.preferred]
                preferred = meant[0] if decision.fallback and meant else decision.backend
            if decision.backend != preferred:
                msg = (
                    f"Running on {decision.backend!r} instead of "
                    f"{(excluded[0] if excluded else preferred)!r}: "
                    + (str(last) if last else decision.reasons[0])
                )
                warnings.warn(msg, FallbackWarning, stacklevel=2)
                logger.warning(msg)
            try:
                return await self.metered(decision.backend).execute(
                    circuit, shots=shots, timeout=timeout
                )
            except BudgetExceededError as exc:
                last = exc
                excluded.append(decision.backend)
                await asyncio.sleep(0)


def route_summary(decisions: Mapping[str, RoutingDecision]) -> str:
    """One line per phase: where it runs and why (used in training logs)."""
    return "\n".join(f"{phase}: {d.backend} ({d.reasons[0]})" for phase, d in decisions.items())
