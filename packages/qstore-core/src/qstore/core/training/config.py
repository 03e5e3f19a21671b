"""``qstore.TrainingConfig``: everything the mid-level API needs, validated once.

>>> cfg = TrainingConfig(
...     n_qubits=4,
...     circuit_depth=2,
...     backends=[{"name": "local", "type": "simulator", "use_for": "training"}],
...     cost_budget=10.0,
... )
>>> TrainingConfig.from_dict(cfg.to_dict()) == cfg
True
>>> TrainingConfig(n_qubits=0)
Traceback (most recent call last):
...
qstore.core.errors.TrainingConfigError: TrainingConfig.n_qubits = 0 is invalid; use an int >= 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from qstore.core.errors import TrainingConfigError
from qstore.core.routing.specs import BackendSpec, RouterConfig, check_priority
from qstore.core.training.adaptive import DepthSchedule, ShotSchedule

__all__ = ["DISTRIBUTED_STRATEGIES", "GRADIENT_METHODS", "ML_FRAMEWORKS", "TrainingConfig"]

ML_FRAMEWORKS = ("tensorflow", "pytorch")
DISTRIBUTED_STRATEGIES = ("auto", "single", "multi_worker")
GRADIENT_METHODS = ("parameter_shift", "adjoint", "spsa", "finite_diff")
_FRAMEWORK_ALIASES = {"tf": "tensorflow", "keras": "tensorflow", "torch": "pytorch"}


def _bad(name: str, value: object, allowed: str) -> TrainingConfigError:
    return TrainingConfigError(f"TrainingConfig.{name} = {value!r} is invalid; {allowed}.")


def _int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _bad(name, value, f"use an int >= {low}")
    return value


@dataclass(frozen=True)
class TrainingConfig:
    """How :class:`~qstore.core.training.QuantumModel` builds, routes and trains.

    Args:
        n_qubits, circuit_depth: the quantum layer (``QuantumLayer(n_qubits, depth)``).
        backends: the backends allowed, each ``{name, type, use_for, device?, target?,
            options?}`` (:class:`~qstore.core.routing.BackendSpec`); empty: every installed one.
        auto_backend_selection: let the router use entries meant for other workloads when the
            ones meant for a phase cannot run here or do not fit the budget.
        routing_priority: ``'balanced'``, ``'cost'`` or ``'speed'``.
        cost_budget: US dollars the model may spend (``None``: no limit); a hard limit.
        batch_size, epochs, learning_rate: the training loop (Adam).
        ml_framework: ``'tensorflow'`` (Keras layers) or ``'pytorch'``.
        distributed_strategy: ``'single'``, ``'multi_worker'`` (the frameworks' distributed
            trainers: TF ``MultiWorkerMirroredStrategy``, PyTorch DDP) or ``'auto'``
            (``multi_worker`` when ``TF_CONFIG`` / ``WORLD_SIZE > 1`` say there is a cluster).
        adaptive_circuit_depth: grow the circuit by one layer when the validation loss
            plateaus; ``True`` or a mapping of :class:`~qstore.core.training.DepthSchedule`
            fields (``patience``, ``min_delta``, ``max_depth``).
        adaptive_shot_allocation: choose the shots of each training step from the gradient's
            estimated shot-noise variance; ``True`` or a mapping of
            :class:`~qstore.core.training.ShotSchedule` fields.
        gradient_method: ``'parameter_shift'``, ``'adjoint'``, ``'spsa'`` or ``'finite_diff'``.
        shots: shots per circuit on sampling backends (``None``: exact where the backend is
            exact, the backend's default otherwise); the starting point of adaptive allocation.
        seed: seeds weights, shuffling and sampling.
        ledger_path, budget_id: the cost ledger (default: the user's data directory) and the
            budget within it that this configuration spends from.
    """

    n_qubits: int = 4
    circuit_depth: int = 2
    backends: tuple[BackendSpec, ...] = ()
    auto_backend_selection: bool = True
    routing_priority: str = "balanced"
    cost_budget: float | None = None
    batch_size: int = 32
    epochs: int = 10
    learning_rate: float = 0.01
    ml_framework: str = "pytorch"
    distributed_strategy: str = "auto"
    adaptive_circuit_depth: bool | Mapping[str, Any] = False
    adaptive_shot_allocation: bool | Mapping[str, Any] = False
    gradient_method: str = "parameter_shift"
    shots: int | None = None
    seed: int | None = 0
    ledger_path: str | None = None
    budget_id: str = "default"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        _int("n_qubits", self.n_qubits, 1)
        _int("circuit_depth", self.circuit_depth, 1)
        _int("batch_size", self.batch_size, 1)
        _int("epochs", self.epochs, 1)
        entries = self.backends
        if isinstance(entries, (str, Mapping)) or entries is None:
            raise _bad("backends", entries, "give a list of backend entries")
        set_(self, "backends", tuple(BackendSpec.from_any(e, i) for i, e in enumerate(entries)))
        for name in ("auto_backend_selection",):
            if not isinstance(getattr(self, name), bool):
                raise _bad(name, getattr(self, name), "use True or False")
        set_(self, "routing_priority", check_priority(self.routing_priority, "routing_priority"))
        RouterConfig(cost_budget=self.cost_budget)  # validates the budget with a clear message
        if self.cost_budget is not None:
            set_(self, "cost_budget", float(self.cost_budget))
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr):
            raise _bad("learning_rate", lr, "use a positive number such as 0.01")
        if lr <= 0:
            raise _bad("learning_rate", lr, "use a positive number such as 0.01")
        fw = self.ml_framework
        fw = _FRAMEWORK_ALIASES.get(fw, fw) if isinstance(fw, str) else fw
        if fw not in ML_FRAMEWORKS:
            raise _bad("ml_framework", self.ml_framework, f"use one of {list(ML_FRAMEWORKS)}")
        set_(self, "ml_framework", fw)
        if self.distributed_strategy not in DISTRIBUTED_STRATEGIES:
            raise _bad(
                "distributed_strategy",
                self.distributed_strategy,
                f"use one of {list(DISTRIBUTED_STRATEGIES)}",
            )
        if self.gradient_method not in GRADIENT_METHODS:
            raise _bad(
                "gradient_method", self.gradient_method, f"use one of {list(GRADIENT_METHODS)}"
            )
        self.depth_schedule  # noqa: B018 - validates the field now
        self.shot_schedule  # noqa: B018
        if self.shots is not None:
            _int("shots", self.shots, 1)
        if self.seed is not None:
            _int("seed", self.seed, 0)
        if self.ledger_path is not None and not isinstance(self.ledger_path, str):
            raise _bad("ledger_path", self.ledger_path, "give a file path as a string")
        if not isinstance(self.budget_id, str) or not self.budget_id:
            raise _bad("budget_id", self.budget_id, "give a non-empty name")

    @property
    def depth_schedule(self) -> DepthSchedule | None:
        """The adaptive-depth rule, or ``None`` when the depth is fixed."""
        out: DepthSchedule | None = _schedule(
            "adaptive_circuit_depth",
            self.adaptive_circuit_depth,
            lambda o: DepthSchedule.create(self.circuit_depth, **o),
        )
        return out

    @property
    def shot_schedule(self) -> ShotSchedule | None:
        """The adaptive-shots rule, or ``None`` when shots are fixed."""
        out: ShotSchedule | None = _schedule(
            "adaptive_shot_allocation",
            self.adaptive_shot_allocation,
            lambda o: ShotSchedule.create(self.shots, **o),
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` turns back into an equal config."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "backends":
                value = [b.as_dict() for b in value]
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingConfig:
        """The config of :meth:`to_dict`'s output (unknown keys are refused by name)."""
        if not isinstance(data, Mapping):
            raise TrainingConfigError(f"from_dict needs a mapping, got {type(data).__name__}.")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TrainingConfigError(
                f"Unknown TrainingConfig fields {unknown}; the fields are {sorted(names)}."
            )
        return cls(**dict(data))

    def router_config(self) -> RouterConfig:
        """The routing part of this configuration."""
        return RouterConfig(
            self.backends, self.routing_priority, self.cost_budget, self.auto_backend_selection
        )


def _schedule(name: str, value: object, make: Any) -> Any:
    if value is False or value is None:
        return None
    if value is True:
        return make({})
    if isinstance(value, Mapping):
        try:
            return make(dict(value))
        except TypeError as exc:
            raise _bad(name, value, f"its keys must be the schedule's fields ({exc})") from None
    raise _bad(name, value, "use True, False or a mapping of settings")
