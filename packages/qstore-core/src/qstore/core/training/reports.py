"""The cost and performance reports of :class:`~qstore.core.training.QuantumModel`: plain data
with a readable ``str()``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["BackendUsage", "CostReport", "PerformanceReport"]


@dataclass(frozen=True)
class CostReport:
    """What the model spent, per backend, and where its budget stands (US dollars).

    ``backends``: per backend ``{backend, jobs, executions, shots, estimated, cost, seconds}``
    for this model's executions; ``budget``/``used``/``reserved``/``left`` are those of the
    budget id in the ledger (all processes that share it); ``model_cost`` is this model's part.
    """

    budget_id: str
    budget: float | None
    used: float
    reserved: float
    left: float | None
    model_cost: float
    backends: tuple[dict[str, Any], ...]
    ledger: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget_id": self.budget_id,
            "budget": self.budget,
            "used": self.used,
            "reserved": self.reserved,
            "left": self.left,
            "model_cost": self.model_cost,
            "backends": [dict(b) for b in self.backends],
            "ledger": self.ledger,
        }

    def __str__(self) -> str:
        lines = ["Cost report", f"{'backend':<26} {'jobs':>6} {'shots':>10} {'cost $':>10}"]
        for b in self.backends:
            lines.append(f"{b['backend']:<26} {b['jobs']:>6} {b['shots']:>10} {b['cost']:>10.2f}")
        if not self.backends:
            lines.append("(no paid or remote executions)")
        lines.append(f"This model: ${self.model_cost:.2f}")
        if self.budget is None:
            lines.append(f"Budget: none ({self.budget_id!r}: ${self.used:.2f} used)")
        else:
            assert self.left is not None
            pct = 100.0 * (self.used + self.reserved) / self.budget if self.budget else 0.0
            lines.append(
                f"Budget ${self.budget:.2f} ({self.budget_id!r}): used ${self.used:.2f}, "
                f"reserved ${self.reserved:.2f}, left ${self.left:.2f} ({pct:.1f}% committed)"
            )
        lines.append(f"Ledger: {self.ledger}")
        return "\n".join(lines)


@dataclass(frozen=True)
class BackendUsage:
    """Executions of one backend in one phase."""

    backend: str
    phase: str
    calls: int
    jobs: int
    circuits: int
    shots: int
    seconds: float
    cost: float
    shot_settings: dict[str, int]

    @property
    def circuits_per_second(self) -> float:
        return self.circuits / self.seconds if self.seconds > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "phase": self.phase,
            "calls": self.calls,
            "jobs": self.jobs,
            "circuits": self.circuits,
            "shots": self.shots,
            "seconds": self.seconds,
            "cost": self.cost,
            "circuits_per_second": self.circuits_per_second,
            "shot_settings": dict(self.shot_settings),
        }


@dataclass(frozen=True)
class PerformanceReport:
    """Where the time went: per backend and phase, and per epoch."""

    backends: tuple[BackendUsage, ...]
    epochs: int
    train_seconds: float
    samples: int
    depth: tuple[int, ...]
    shots: tuple[float | None, ...]
    routes: dict[str, str]
    final: dict[str, float]

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "backends": [b.as_dict() for b in self.backends],
            "epochs": self.epochs,
            "train_seconds": self.train_seconds,
            "samples": self.samples,
            "samples_per_second": self.samples_per_second,
            "depth": list(self.depth),
            "shots": list(self.shots),
            "routes": dict(self.routes),
            "final": dict(self.final),
        }

    def __str__(self) -> str:
        lines = [
            "Performance report",
            f"{'backend':<26} {'phase':<11} {'calls':>6} {'jobs':>5} {'circuits':>9} "
            f"{'shots':>10} {'seconds':>8} {'circ/s':>9} {'cost $':>8}",
        ]
        for b in self.backends:
            lines.append(
                f"{b.backend:<26} {b.phase:<11} {b.calls:>6} {b.jobs:>5} {b.circuits:>9} "
                f"{b.shots:>10} {b.seconds:>8.2f} {b.circuits_per_second:>9.0f} {b.cost:>8.2f}"
            )
        lines.append(
            f"{self.epochs} epoch(s), {self.samples} samples in {self.train_seconds:.2f} s "
            f"({self.samples_per_second:.1f} samples/s)"
        )
        for phase, where in self.routes.items():
            lines.append(f"{phase}: {where}")
        if len(set(self.depth)) > 1:
            lines.append(f"circuit depth per epoch: {list(self.depth)}")
        shots = [s for s in self.shots if s is not None]
        if shots:
            lines.append(f"mean shots per circuit per epoch: {[round(s) for s in shots]}")
        if self.final:
            lines.append(
                "final: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(self.final.items()))
            )
        return "\n".join(lines)
