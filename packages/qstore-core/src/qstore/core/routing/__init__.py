"""Routing, cost tracking and budgets.

* :class:`SmartBackendRouter`: which backend runs a circuit, from its size, each backend's cost
  model, measured throughput, precision, queue and the remaining budget
  (:meth:`~SmartBackendRouter.route_circuit`, :meth:`~SmartBackendRouter.execute`,
  :meth:`~SmartBackendRouter.get_backend_recommendations`).
* :class:`CostTracker`: the durable SQLite ledger of paid executions; budgets reserved before
  submission and settled after, so they are never exceeded.
* :class:`MeteredBackend`: any backend with its executions priced, reserved and recorded.

>>> import qstore.core as qc
>>> tracker = qc.CostTracker(budget=10.0, path=":memory:")
>>> tracker.remaining
10.0
"""

from __future__ import annotations

from qstore.core.errors import BudgetExceededError, RoutingError
from qstore.core.routing.costs import (
    DEFAULT_GATE_ERRORS,
    estimate_job_cost,
    estimate_precision,
    measurement_bases,
)
from qstore.core.routing.ledger import (
    CostSummary,
    CostTracker,
    LedgerEntry,
    Reservation,
    default_ledger_path,
)
from qstore.core.routing.metered import ExecutionStats, MeteredBackend
from qstore.core.routing.router import (
    PRIORITY_WEIGHTS,
    WORKLOAD_PROFILES,
    Assessment,
    FallbackWarning,
    Recommendation,
    Recommendations,
    RoutingDecision,
    SmartBackendRouter,
)
from qstore.core.routing.specs import (
    BACKEND_TYPES,
    PHASE_ALIASES,
    PRIORITIES,
    WORKLOADS,
    BackendSpec,
    RouterConfig,
)

__all__ = [
    "BACKEND_TYPES",
    "DEFAULT_GATE_ERRORS",
    "PHASE_ALIASES",
    "PRIORITIES",
    "PRIORITY_WEIGHTS",
    "WORKLOADS",
    "WORKLOAD_PROFILES",
    "Assessment",
    "BackendSpec",
    "BudgetExceededError",
    "CostSummary",
    "CostTracker",
    "ExecutionStats",
    "FallbackWarning",
    "LedgerEntry",
    "MeteredBackend",
    "Recommendation",
    "Recommendations",
    "Reservation",
    "RouterConfig",
    "RoutingDecision",
    "RoutingError",
    "SmartBackendRouter",
    "default_ledger_path",
    "estimate_job_cost",
    "estimate_precision",
    "measurement_bases",
]
