"""The mid-level API: :class:`TrainingConfig` and :class:`QuantumModel` (also ``qstore.*``).

``QuantumModel`` builds on the framework layers (``qstore.tf``, ``qstore.torch``), found through
the ``qstore.frameworks`` entry points (:mod:`qstore.core.training.frameworks`); it routes each
phase with :class:`~qstore.core.routing.SmartBackendRouter` and spends within a hard budget.

>>> from qstore.core.training import TrainingConfig
>>> TrainingConfig(n_qubits=8, circuit_depth=4, cost_budget=100.0).cost_budget
100.0
"""

from __future__ import annotations

from qstore.core.training.adaptive import (
    DepthController,
    DepthSchedule,
    ShotAllocator,
    ShotSchedule,
)
from qstore.core.training.config import (
    DISTRIBUTED_STRATEGIES,
    GRADIENT_METHODS,
    ML_FRAMEWORKS,
    TrainingConfig,
)
from qstore.core.training.frameworks import (
    ENTRY_POINT_GROUP,
    EvalStats,
    Framework,
    ModelSpec,
    StepStats,
    infer_task,
    load_framework,
)
from qstore.core.training.model import QuantumModel
from qstore.core.training.reports import BackendUsage, CostReport, PerformanceReport

__all__ = [
    "DISTRIBUTED_STRATEGIES",
    "ENTRY_POINT_GROUP",
    "GRADIENT_METHODS",
    "ML_FRAMEWORKS",
    "BackendUsage",
    "CostReport",
    "DepthController",
    "DepthSchedule",
    "EvalStats",
    "Framework",
    "ModelSpec",
    "PerformanceReport",
    "QuantumModel",
    "ShotAllocator",
    "ShotSchedule",
    "StepStats",
    "TrainingConfig",
    "infer_task",
    "load_framework",
]
