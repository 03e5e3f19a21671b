"""The backend protocol, capabilities and results.

A backend takes one circuit *template* and a batch of parameter bindings (``values`` of shape
``[batch, P]`` whose columns are named by ``names``) plus, optionally, ``shared`` values that are
the same for every sample (the usual QML case: per-sample encodings, shared weights). It returns
expectations ``[batch, n_observables]`` and, where it can, vector-Jacobian products.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CostModel:
    """Price of running on a backend, in US dollars."""

    per_shot: float = 0.0
    per_task: float = 0.0
    per_gate_shot: float = 0.0
    minimum_per_task: float = 0.0
    currency: str = "USD"

    def estimate(self, shots: int, n_gates: int = 0, n_tasks: int = 1) -> float:
        per = self.per_task + self.per_shot * shots + self.per_gate_shot * n_gates * shots
        return n_tasks * max(self.minimum_per_task, per)

    @property
    def is_free(self) -> bool:
        return self.per_shot == self.per_task == self.per_gate_shot == self.minimum_per_task == 0


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared by the backend and used by selection and routing."""

    name: str
    max_qubits: int
    exact: bool = True
    shots: bool = True
    gradient_methods: tuple[str, ...] = ("parameter_shift",)
    vjp: bool = False
    gpu: bool = False
    native_gates: tuple[str, ...] | None = None
    cost: CostModel = field(default_factory=CostModel)
    queue_seconds: float = 0.0
    available: bool = True
    reason: str = ""
    remote: bool = False
    dtypes: tuple[str, ...] = ("complex128",)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_qubits": self.max_qubits,
            "exact": self.exact,
            "shots": self.shots,
            "gradient_methods": list(self.gradient_methods),
            "vjp": self.vjp,
            "gpu": self.gpu,
            "native_gates": None if self.native_gates is None else list(self.native_gates),
            "cost_per_shot_usd": self.cost.per_shot,
            "cost_per_task_usd": self.cost.per_task,
            "queue_seconds": self.queue_seconds,
            "available": self.available,
            "reason": self.reason,
            "remote": self.remote,
            "dtypes": list(self.dtypes),
        }


@dataclass(frozen=True)
class ExecutionResult:
    """Result of :meth:`Backend.execute` for one bound circuit."""

    backend: str
    n_qubits: int
    shots: int | None
    counts: Mapping[str, int] | None = None
    probabilities: Mapping[str, float] | None = None
    expectations: FloatArray | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def most_frequent(self) -> str:
        src: Mapping[str, float] = (
            {k: float(v) for k, v in self.counts.items()}
            if self.counts is not None
            else dict(self.probabilities or {})
        )
        return max(src, key=lambda k: src[k])

    def expectation_z(self, qubit: int) -> float:
        """<Z_qubit> estimated from counts or probabilities (bitstrings: qubit 0 first)."""
        if self.counts is not None:
            total = sum(self.counts.values())
            dist = {k: v / total for k, v in self.counts.items()}
        else:
            dist = dict(self.probabilities or {})
        return math.fsum(p * (1 - 2 * int(k[qubit])) for k, p in dist.items())


@runtime_checkable
class Backend(Protocol):
    """What every backend provides (local simulators, plugins, remote services)."""

    name: str

    @property
    def capabilities(self) -> Capabilities: ...

    def expectation(
        self,
        circuit: UnifiedCircuit,
        observables: Any = None,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        shots: int | None = None,
        seed: int | None = None,
    ) -> FloatArray:
        """Expectations ``[batch, n_observables]``; exact when ``shots`` is None."""
        ...

    def vjp(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        cotangent: npt.ArrayLike,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Gradient of ``sum(cotangent * expectation(...))``.

        Returns ``(grad_values [batch, P], grad_shared [len(shared)])``.
        """
        ...

    def sample(
        self,
        circuit: UnifiedCircuit,
        shots: int,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> npt.NDArray[np.int64]:
        """Measured basis-state indices ``[batch, shots]`` (qubit 0 most significant)."""
        ...

    async def execute(
        self, circuit: UnifiedCircuit, shots: int | None = 1000, timeout: float | None = None
    ) -> ExecutionResult:
        """Run one bound circuit; counts (shots) or probabilities (exact)."""
        ...


class FusedVJP:
    """``vjp`` for backends whose ``value_and_vjp`` computes expectations and the VJP in one
    pass: the VJP alone is that call without its first result."""

    def value_and_vjp(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        cotangent: npt.ArrayLike,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(expectations [batch, n_obs], d/dvalues [batch, P], d/dshared [len(shared)])``."""
        raise NotImplementedError

    def vjp(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        cotangent: npt.ArrayLike,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Gradient of ``sum(cotangent * expectation)`` by the backend's gradient method.

        Returns ``(d/dvalues [batch, P], d/dshared [len(shared)])``.
        """
        _, gv, gs = self.value_and_vjp(
            circuit, observables, values, cotangent, names=names, shared=shared
        )
        return gv, gs
