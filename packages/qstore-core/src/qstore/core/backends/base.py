"""The backend protocol, capabilities and results.

A backend takes one circuit *template* and a batch of parameter bindings (``values`` of shape
``[batch, P]`` whose columns are named by ``names``) plus, optionally, ``shared`` values that are
the same for every sample (the usual QML case: per-sample encodings, shared weights). It returns
expectations ``[batch, n_observables]`` and, where it can, vector-Jacobian products.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import BackendError, ObservableError
from qstore.core.observables import Z, as_observables

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


@dataclass(frozen=True, init=False)
class ExecutionResult:
    """Result of :meth:`Backend.execute` for one bound circuit.

    Bitstrings list qubit 0 first. One naming rule: data and cheap values derived from it
    (no arguments) are attributes or properties; computations that take an argument are
    methods. *Exact* and *sampled* values are named so:

    * ``counts``: bitstring → shots, for a run with ``shots``; ``None`` for an exact run.
    * ``probabilities``: bitstring → exact probability, for an exact run (``shots=None``).
    * ``exact_expectations``: exact ⟨Z_i⟩ for every qubit where the backend knows the final
      state (simulators, with or without shots); ``None`` from hardware.
    * ``sampled_expectations``: ⟨Z_i⟩ estimated from ``counts``; ``None`` for an exact run.
    * ``expectations``: what this run measured, the same on every backend: exact when
      ``shots`` is None, estimated from the counts otherwise.
    * ``distribution``, ``most_frequent_bitstring``; ``expectation_z(qubit)`` and
      ``expectation(observable)`` for diagonal (``Z``-only) observables, from ``distribution``.

    >>> import asyncio, qstore.core as qc
    >>> backend = qc.backends.get("local", seed=1)
    >>> c = qc.UnifiedCircuit(2).add_gate("X", 0).add_gate("H", 1)
    >>> r = asyncio.run(backend.execute(c, shots=None))
    >>> {bits: round(p, 12) for bits, p in r.probabilities.items()}
    {'10': 0.5, '11': 0.5}
    >>> r.expectations.round(12).tolist()
    [-1.0, 0.0]
    >>> sampled = asyncio.run(backend.execute(c, shots=100))
    >>> sum(sampled.counts.values()), float(sampled.expectations[0])
    (100, -1.0)
    """

    backend: str
    n_qubits: int
    shots: int | None
    counts: Mapping[str, int] | None = None
    probabilities: Mapping[str, float] | None = None
    exact_expectations: FloatArray | None = field(default=None, compare=False)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        backend: str,
        n_qubits: int,
        shots: int | None,
        counts: Mapping[str, int] | None = None,
        probabilities: Mapping[str, float] | None = None,
        exact_expectations: npt.ArrayLike | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        expectations: npt.ArrayLike | None = None,
    ) -> None:
        if expectations is not None:
            warnings.warn(
                "ExecutionResult(expectations=...) is deprecated: the exact <Z_i> values are "
                "passed as exact_expectations=...; `expectations` is now the property that "
                "reads exact or sampled values according to `shots`.",
                DeprecationWarning,
                stacklevel=2,
            )
            if exact_expectations is None:
                exact_expectations = expectations
        exact = None if exact_expectations is None else np.asarray(exact_expectations, np.float64)
        set_ = object.__setattr__
        set_(self, "backend", backend)
        set_(self, "n_qubits", n_qubits)
        set_(self, "shots", shots)
        set_(self, "counts", counts)
        set_(self, "probabilities", probabilities)
        set_(self, "exact_expectations", exact)
        set_(self, "metadata", {} if metadata is None else metadata)

    # -- derived values (properties) --------------------------------------------------------------
    @property
    def distribution(self) -> dict[str, float]:
        """Bitstring → probability: exact for an exact run, measured frequencies with shots."""
        if self.counts is not None:
            total = sum(self.counts.values())
            return {k: v / total for k, v in self.counts.items()} if total else {}
        return dict(self.probabilities or {})

    @property
    def most_frequent_bitstring(self) -> str:
        """The most frequent (with shots) or most probable (exact) bitstring."""
        dist = self.distribution
        if not dist:
            raise BackendError(
                f"The result of {self.backend!r} holds neither counts nor probabilities."
            )
        return max(dist, key=lambda k: dist[k])

    @property
    def sampled_expectations(self) -> FloatArray | None:
        """⟨Z_i⟩ for every qubit estimated from ``counts``; ``None`` for an exact run."""
        return None if self.counts is None else _z_means(self.distribution, self.n_qubits)

    @property
    def expectations(self) -> FloatArray | None:
        """⟨Z_i⟩ for every qubit as this run measured them: exact when ``shots`` is None
        (``exact_expectations``), estimated from ``counts`` otherwise
        (``sampled_expectations``). ``None`` when the result holds neither."""
        if self.shots is not None and self.counts is not None:
            return self.sampled_expectations
        if self.shots is None:
            if self.exact_expectations is not None:
                return self.exact_expectations
            if self.probabilities is not None:
                return _z_means(dict(self.probabilities), self.n_qubits)
        return None

    # -- computations (methods) -------------------------------------------------------------------
    def expectation_z(self, qubit: int) -> float:
        """⟨Z_qubit⟩ from :attr:`distribution` (exact, or estimated from the counts)."""
        return self.expectation(Z(qubit))

    def expectation(self, observable: Any) -> float:
        """⟨observable⟩ for a diagonal observable (products of ``Z``, sums of them).

        Computed from :attr:`distribution`: exact for an exact run, estimated from the counts
        with shots. Observables with ``X`` or ``Y`` need the circuit: use
        ``backend.expectation(circuit, observable)``.

        >>> import qstore.core as qc
        >>> r = ExecutionResult("doc", 2, 4, counts={"00": 3, "11": 1})
        >>> r.expectation(qc.Z(0) * qc.Z(1)), r.expectation(qc.Z(0) + 1)
        (1.0, 1.5)
        """
        (obs,) = as_observables(observable, self.n_qubits)
        total = 0.0
        dist = self.distribution
        for term in obs.terms:
            letters = term.as_dict()
            if any(p != "Z" for p in letters.values()):
                raise ObservableError(
                    f"{term} is not diagonal: an execution result holds bitstrings only. "
                    "Use backend.expectation(circuit, observable) for X and Y terms."
                )
            if term.max_qubit >= self.n_qubits:
                raise ObservableError(
                    f"{term} acts on qubit {term.max_qubit}; the result has {self.n_qubits}."
                )
            parity = math.fsum(
                p * (-1) ** sum(int(bits[q]) for q in letters) for bits, p in dist.items()
            )
            total += float(np.real(term.coeff)) * parity
        return total

    def most_frequent(self) -> str:
        """Deprecated: use the property :attr:`most_frequent_bitstring`."""
        warnings.warn(
            "ExecutionResult.most_frequent() is deprecated; use the property "
            "most_frequent_bitstring.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.most_frequent_bitstring


def _z_means(dist: Mapping[str, float], n_qubits: int) -> FloatArray:
    """⟨Z_i⟩ for every qubit of a bitstring distribution (qubit 0 first)."""
    out = np.zeros(n_qubits, dtype=np.float64)
    for key, p in dist.items():
        bits = np.frombuffer(key.encode("ascii"), dtype=np.uint8).astype(np.float64) - ord("0")
        out += p * (1.0 - 2.0 * bits)
    return out


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


def vjp_at_once(
    forward: tuple[FloatArray, Callable[[npt.ArrayLike], tuple[FloatArray, FloatArray]]],
    cotangent: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(expectations, d/dvalues, d/dshared)`` from what a backend's ``value_and_vjp_fn``
    returned, finished with ``cotangent`` at once: a backend's ``value_and_vjp`` is
    ``vjp_at_once(self.value_and_vjp_fn(...), cotangent)`` (also in
    :mod:`qstore.core.backends.plugin`)."""
    out, finish = forward
    gv, gs = finish(cotangent)
    return out, gv, gs
