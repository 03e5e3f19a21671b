"""What the router may use: backend entries, workload types, priorities.

A :class:`BackendSpec` is one entry of ``TrainingConfig.backends``: a registry name, what kind of
machine it is, which workloads it is meant for, and optionally a device or an IonQ target.
:class:`RouterConfig` is the part of a training configuration the router reads.

>>> spec = BackendSpec.from_any(
...     {"name": "ionq_hardware", "type": "qpu", "use_for": "production", "target": "qpu.aria-1"}
... )
>>> spec.label, spec.use_for, spec.options()
('ionq_hardware@qpu.aria-1', ('production',), {'target': 'qpu.aria-1'})
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from qstore.core.errors import TrainingConfigError

__all__ = [
    "BACKEND_TYPES",
    "PHASE_ALIASES",
    "PRIORITIES",
    "WORKLOADS",
    "BackendSpec",
    "RouterConfig",
    "check_priority",
    "check_workload",
]

WORKLOADS = ("development", "training", "validation", "production", "research")
"""Workload types: the values of ``use_for`` and of ``get_backend_recommendations``."""

PHASE_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "dev": "development",
        "develop": "development",
        "train": "training",
        "val": "validation",
        "valid": "validation",
        "eval": "validation",
        "test": "validation",
        "prod": "production",
    }
)
"""Short phase names (``training_backend='train'``) and the workload each one means."""

PRIORITIES = ("balanced", "cost", "speed")
"""Values of ``routing_priority`` / ``route_circuit(priority=...)``."""

BACKEND_TYPES = ("simulator", "gpu_simulator", "cloud_simulator", "qpu")
"""Values of a backend entry's ``type`` (``'hardware'`` is read as ``'qpu'``)."""

_TYPE_ALIASES = {"hardware": "qpu", "quantum": "qpu", "cloud": "cloud_simulator"}
_DEVICE = re.compile(r"^(cpu|gpu|cuda)(:\d+)?$")
_KEYS = ("name", "type", "use_for", "device", "target", "options")


def check_workload(value: object, what: str = "workload_type") -> str:
    """A workload type from :data:`WORKLOADS` (short phase names accepted).

    >>> check_workload("val")
    'validation'
    """
    key = str(value).strip().lower() if isinstance(value, str) else ""
    key = PHASE_ALIASES.get(key, key)
    if key not in WORKLOADS:
        raise TrainingConfigError(
            f"{what} = {value!r} is not a workload type; use one of {list(WORKLOADS)} "
            f"(or the short forms {sorted(PHASE_ALIASES)})."
        )
    return key


def check_priority(value: object, what: str = "priority") -> str:
    """A routing priority from :data:`PRIORITIES`."""
    if not isinstance(value, str) or value.strip().lower() not in PRIORITIES:
        raise TrainingConfigError(f"{what} = {value!r} is invalid; use one of {list(PRIORITIES)}.")
    return value.strip().lower()


@dataclass(frozen=True)
class BackendSpec:
    """One backend the configuration allows.

    Args:
        name: a registry name (``qstore.core.backends.available()``), e.g. ``'qsim'``.
        type: ``'simulator'``, ``'gpu_simulator'``, ``'cloud_simulator'`` or ``'qpu'``; used to
            order fallbacks (simulators are tried before paid hardware) and checked against
            the backend's declared capabilities.
        use_for: the workloads it serves (:data:`WORKLOADS`); one name or several.
        device: ``'cpu'``, ``'gpu'``, ``'cuda'`` or ``'cuda:N'``: a GPU device selects the
            backend's GPU form (its ``device`` option, or the registered ``<name>.gpu``).
        target: passed to the backend as ``target=`` (IonQ: ``'qpu.aria-1'`` ...).
        options: further keyword options for :func:`qstore.core.backends.get`.
    """

    name: str
    type: str = "simulator"
    use_for: tuple[str, ...] = ()
    device: str | None = None
    target: str | None = None
    extra_options: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_any(cls, entry: Any, index: int = 0) -> BackendSpec:
        """From a mapping ``{name, type, use_for, device?, target?, options?}``, a bare name,
        or a :class:`BackendSpec`."""
        where = f"backends[{index}]"
        if isinstance(entry, BackendSpec):
            return entry
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise TrainingConfigError(
                f"{where} = {entry!r} must be a mapping such as {{'name': 'qsim', 'type': "
                "'simulator', 'use_for': 'development'}."
            )
        unknown = sorted(set(entry) - set(_KEYS))
        if unknown:
            raise TrainingConfigError(
                f"{where} has unknown keys {unknown}; the keys are {list(_KEYS)}."
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise TrainingConfigError(
                f"{where}['name'] = {name!r}; give a backend name from "
                "qstore.core.backends.available(), e.g. 'qsim'."
            )
        kind = entry.get("type", "simulator")
        kind = _TYPE_ALIASES.get(kind, kind) if isinstance(kind, str) else kind
        if kind not in BACKEND_TYPES:
            raise TrainingConfigError(
                f"{where}['type'] = {entry.get('type')!r}; use one of {list(BACKEND_TYPES)}."
            )
        raw_use = entry.get("use_for", ())
        uses = (raw_use,) if isinstance(raw_use, str) else raw_use
        if not isinstance(uses, Iterable):
            raise TrainingConfigError(
                f"{where}['use_for'] = {raw_use!r}; give a workload or a list of them from "
                f"{list(WORKLOADS)}."
            )
        use_for = tuple(dict.fromkeys(check_workload(u, f"{where}['use_for']") for u in uses))
        device = entry.get("device")
        if device is not None and (not isinstance(device, str) or not _DEVICE.match(device)):
            raise TrainingConfigError(
                f"{where}['device'] = {device!r}; use 'cpu', 'gpu', 'cuda' or 'cuda:N'."
            )
        target = entry.get("target")
        if target is not None and (not isinstance(target, str) or not target):
            raise TrainingConfigError(f"{where}['target'] = {target!r}; give a target name.")
        options = entry.get("options", {}) or {}
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise TrainingConfigError(
                f"{where}['options'] = {options!r}; give a mapping of backend options."
            )
        if target is not None and "target" in options:
            raise TrainingConfigError(f"{where}: give 'target' once, not also in 'options'.")
        return cls(str(name).strip(), kind, use_for, device, target, dict(options))

    @property
    def gpu(self) -> bool:
        """Whether the entry asks for a GPU device."""
        return self.device is not None and not self.device.startswith("cpu")

    @property
    def label(self) -> str:
        """A name that tells entries of the same backend apart (``lightning@cuda:0``)."""
        where = self.target or (self.device if self.device and self.device != "cpu" else None)
        return f"{self.name}@{where}" if where else self.name

    @property
    def paid_type(self) -> bool:
        """Whether the entry is declared as hardware (fallbacks try simulators first)."""
        return self.type == "qpu"

    def options(self) -> dict[str, Any]:
        """Keyword options for :func:`qstore.core.backends.get` (``target`` included)."""
        out = dict(self.extra_options)
        if self.target is not None:
            out["target"] = self.target
        return out

    def as_dict(self) -> dict[str, Any]:
        """The entry as the mapping it was written as (round-trips through :meth:`from_any`)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        out["use_for"] = self.use_for[0] if len(self.use_for) == 1 else list(self.use_for)
        if self.device is not None:
            out["device"] = self.device
        if self.target is not None:
            out["target"] = self.target
        if self.extra_options:
            out["options"] = dict(self.extra_options)
        return out


@dataclass(frozen=True)
class RouterConfig:
    """The part of a configuration that routing reads.

    ``backends`` empty means every installed backend; ``auto_backend_selection`` lets the router
    use entries meant for other workloads when the preferred ones cannot run or do not fit the
    budget; ``cost_budget`` is in US dollars (``None``: no budget).
    """

    backends: tuple[BackendSpec, ...] = ()
    routing_priority: str = "balanced"
    cost_budget: float | None = None
    auto_backend_selection: bool = True

    def __post_init__(self) -> None:
        check_priority(self.routing_priority, "routing_priority")
        budget = self.cost_budget
        if budget is not None and (
            isinstance(budget, bool)
            or not isinstance(budget, (int, float))
            or not math.isfinite(budget)
            or budget < 0
        ):
            raise TrainingConfigError(
                f"cost_budget = {budget!r}; give US dollars as a number >= 0, or None for no "
                "budget."
            )

    @classmethod
    def from_any(cls, config: Any) -> RouterConfig:
        """From ``None``, a :class:`RouterConfig`, a ``qstore.TrainingConfig`` (or anything with
        its attribute names), a mapping of those names, or a list of backend entries."""
        if config is None:
            return cls()
        if isinstance(config, RouterConfig):
            return config
        if isinstance(config, (list, tuple)):
            config = {"backends": config}
        if isinstance(config, Mapping):
            src = dict(config)
        else:
            names = ("backends", "routing_priority", "cost_budget", "auto_backend_selection")
            src = {n: getattr(config, n) for n in names if hasattr(config, n)}
        entries = src.get("backends") or ()
        specs = tuple(BackendSpec.from_any(e, i) for i, e in enumerate(entries))
        return cls(
            backends=specs,
            routing_priority=src.get("routing_priority", "balanced"),
            cost_budget=src.get("cost_budget"),
            auto_backend_selection=bool(src.get("auto_backend_selection", True)),
        )
