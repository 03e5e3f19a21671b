"""A backend whose every execution is priced, held against the budget, run, and recorded.

:class:`MeteredBackend` wraps any backend and follows the same protocol, so the framework
layers, the gradient methods and the router use it like the backend itself. Each call
(``expectation``, ``vjp``, ``sample``, ``execute``) is:

1. estimated (:func:`~qstore.core.routing.costs.estimate_job_cost`: circuits = bindings x
   measurement bases);
2. on a priced backend, *reserved* in the :class:`~qstore.core.routing.ledger.CostTracker`
   (raising :class:`~qstore.core.errors.BudgetExceededError` before anything is submitted when it
   does not fit);
3. run on the wrapped backend;
4. *settled* with the actual cost: the cost the provider reported for the new jobs when the
   backend keeps job records (``backend.jobs``: items with ``job_id``, ``estimated_cost`` and
   ``reported_cost``, as ``qstore-ionq`` does), else the estimate. Remote executions are recorded
   even when free, so the ledger matches the provider's job list.

Gradients are taken through the metered ``expectation`` (parameter shift from
:mod:`qstore.core.gradients`) unless the backend's own VJP is the exact adjoint method, so shifted
circuits are priced and recorded too. ``shots`` set on the wrapper is used by calls that pass
none: this is how adaptive shot allocation changes what runs from one step to the next.

>>> import numpy as np, qstore.core as qc
>>> from qstore.core.routing import CostTracker
>>> m = MeteredBackend(qc.backends.get("local"), CostTracker(path=":memory:"))
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
>>> m.expectation(c, values=[[0.0], [np.pi]]).round(6).tolist()
[[1.0], [-1.0]]
>>> m.totals().circuits
2
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core import gradients as core_gradients
from qstore.core.backends.base import Capabilities, ExecutionResult
from qstore.core.circuit import UnifiedCircuit
from qstore.core.routing.costs import effective_shots, estimate_job_cost, measurement_bases
from qstore.core.routing.ledger import CostTracker, Reservation

__all__ = ["ExecutionStats", "MeteredBackend"]

logger = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]


@dataclass
class ExecutionStats:
    """Totals of the executions of one backend in one phase (mutable while it runs)."""

    calls: int = 0
    jobs: int = 0
    circuits: int = 0
    shots: int = 0  # shots summed over circuits (0 for exact runs)
    seconds: float = 0.0
    estimated: float = 0.0
    cost: float = 0.0
    shot_settings: dict[str, int] = field(default_factory=dict)  # shots per circuit -> calls

    def add(self, other: ExecutionStats) -> None:
        self.calls += other.calls
        self.jobs += other.jobs
        self.circuits += other.circuits
        self.shots += other.shots
        self.seconds += other.seconds
        self.estimated += other.estimated
        self.cost += other.cost
        for k, v in other.shot_settings.items():
            self.shot_settings[k] = self.shot_settings.get(k, 0) + v

    @property
    def circuits_per_second(self) -> float:
        return self.circuits / self.seconds if self.seconds > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["circuits_per_second"] = self.circuits_per_second
        return out


def _batch(values: npt.ArrayLike | None) -> int:
    if values is None:
        return 1
    a = np.asarray(values)
    return int(a.shape[0]) if a.ndim == 2 else 1


class MeteredBackend:
    """``backend`` with every execution estimated, reserved, run and recorded (see the module).

    Args:
        backend: the backend to run on.
        tracker: the ledger and budget (``None``: statistics only, no budget).
        label: the name recorded in the ledger (default ``backend.name``).
        shots: shots for calls that give none (``None``: the backend's own default).
        phase: tags the statistics (``'training'``, ``'validation'`` ...); may be changed.
    """

    def __init__(
        self,
        backend: Any,
        tracker: CostTracker | None = None,
        *,
        label: str | None = None,
        shots: int | None = None,
        phase: str = "",
    ) -> None:
        self.backend = backend
        self.name: str = str(getattr(backend, "name", type(backend).__name__))
        self.label = label or self.name
        self.tracker = tracker
        self.shots = shots
        self.phase = phase
        self.stats: dict[str, ExecutionStats] = {}
        self._lock = threading.RLock()
        self._stats_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MeteredBackend({self.backend!r}, label={self.label!r}, shots={self.shots!r})"

    @property
    def capabilities(self) -> Capabilities:
        """The wrapped backend's capabilities."""
        caps: Capabilities = self.backend.capabilities
        return caps

    @property
    def remote(self) -> bool:
        return bool(self.capabilities.remote)

    def totals(self, phase: str | None = None) -> ExecutionStats:
        """Statistics summed over phases (or of one phase)."""
        out = ExecutionStats()
        with self._stats_lock:
            for p, s in self.stats.items():
                if phase is None or p == phase:
                    out.add(s)
        return out

    def _shots(self, shots: int | None) -> int | None:
        return effective_shots(self.backend, self.shots if shots is None else shots)

    def estimate_cost(
        self, circuit: UnifiedCircuit, shots: int | None = None, n_circuits: int = 1
    ) -> float:
        """Dollars for ``n_circuits`` runs of ``circuit`` at ``shots`` (default: the wrapper's)."""
        s = self.shots if shots is None else shots
        return estimate_job_cost(self.backend, circuit, s, n_circuits)

    # -- metering ---------------------------------------------------------------------------------
    def _job_records(self) -> list[Any] | None:
        jobs = getattr(self.backend, "jobs", None)
        return jobs if isinstance(jobs, list) else None

    def _reserve(
        self, circuit: UnifiedCircuit, shots: int | None, n_circuits: int
    ) -> tuple[float, Reservation | None]:
        est = estimate_job_cost(self.backend, circuit, shots, n_circuits)
        if self.tracker is None or est <= 0:
            return est, None
        target = getattr(self.backend, "target", None)
        res = self.tracker.reserve(
            self.label,
            est,
            shots=(shots or 0) * n_circuits,
            n_circuits=n_circuits,
            target=target if isinstance(target, str) else None,
        )
        return est, res

    def _close(
        self,
        reservation: Reservation | None,
        est: float,
        new_jobs: Sequence[Any],
        seconds: float,
        shots: int | None,
        n_circuits: int,
        ok: bool,
    ) -> float:
        """Settle or release; returns the cost recorded."""
        ids = [str(getattr(j, "job_id", "")) for j in new_jobs]
        if new_jobs:
            actual = math.fsum(
                float(
                    j.reported_cost
                    if getattr(j, "reported_cost", None) is not None
                    else getattr(j, "estimated_cost", 0.0)
                )
                for j in new_jobs
            )
        else:
            actual = est if ok else 0.0
        total_shots = (shots or 0) * n_circuits
        target = getattr(self.backend, "target", None)
        tgt = target if isinstance(target, str) else None
        if self.tracker is not None:
            if reservation is not None:
                if ok or new_jobs:
                    self.tracker.settle(
                        reservation,
                        actual,
                        job_ids=ids,
                        seconds=seconds,
                        shots=total_shots,
                        n_circuits=n_circuits,
                    )
                else:
                    self.tracker.release(reservation, "the execution failed before running")
            elif ok and (self.remote or actual > 0):
                self.tracker.record(
                    self.label,
                    actual,
                    estimated_cost=est,
                    job_ids=ids,
                    shots=total_shots,
                    n_circuits=n_circuits,
                    seconds=seconds,
                    target=tgt,
                )
        with self._stats_lock:
            st = self.stats.setdefault(self.phase, ExecutionStats())
            st.calls += 1
            st.jobs += len(new_jobs) or (1 if self.remote else 0)
            st.circuits += n_circuits
            st.shots += total_shots
            st.seconds += seconds
            st.estimated += est
            st.cost += actual
            key = "exact" if shots is None else str(shots)
            st.shot_settings[key] = st.shot_settings.get(key, 0) + 1
        return actual

    @contextlib.contextmanager
    def _metered(
        self, circuit: UnifiedCircuit, shots: int | None, n_circuits: int
    ) -> Iterator[None]:
        """Synchronous calls: one at a time per wrapper, so new job records are this call's."""
        with self._lock:
            est, res = self._reserve(circuit, shots, n_circuits)
            jobs = self._job_records()
            before = len(jobs) if jobs is not None else 0
            t0 = time.perf_counter()
            ok = False
            try:
                yield
                ok = True
            finally:
                new = list(jobs[before:]) if jobs is not None else []
                self._close(res, est, new, time.perf_counter() - t0, shots, n_circuits, ok)

    # -- the backend protocol ---------------------------------------------------------------------
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
        """Expectations ``[batch, n_obs]`` on the wrapped backend, metered."""
        s = self._shots(shots)
        n = _batch(values) * measurement_bases(observables, circuit.n_qubits)
        with self._metered(circuit, s, n):
            out = self.backend.expectation(
                circuit, observables, values, names=names, shared=shared, shots=s, seed=seed
            )
        return np.asarray(out, dtype=np.float64)

    def _native_adjoint(self, shots: int | None) -> bool:
        caps = self.capabilities
        methods = tuple(caps.gradient_methods or ())
        return (
            shots is None
            and caps.vjp
            and bool(methods)
            and methods[0] == "adjoint"
            and callable(getattr(self.backend, "vjp", None))
        )

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
        """The backend's adjoint VJP when it has one and runs exact; otherwise parameter shift
        through the metered :meth:`expectation`."""
        s = self._shots(None)
        if self._native_adjoint(s):
            n = _batch(values) * measurement_bases(observables, circuit.n_qubits)
            with self._metered(circuit, None, n):
                gv, gs = self.backend.vjp(
                    circuit, observables, values, cotangent, names=names, shared=shared
                )
            return np.asarray(gv, np.float64), np.asarray(gs, np.float64)
        grad = core_gradients.get("parameter_shift", self)
        return grad.vjp(circuit, observables, values, cotangent, names=names, shared=shared)

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
        """``(expectations, d/dvalues, d/dshared)``: one fused call where the backend has one."""
        fused = getattr(self.backend, "value_and_vjp", None)
        s = self._shots(None)
        if callable(fused) and self._native_adjoint(s):
            n = _batch(values) * measurement_bases(observables, circuit.n_qubits)
            with self._metered(circuit, None, n):
                out, gv, gs = fused(
                    circuit, observables, values, cotangent, names=names, shared=shared
                )
            return (
                np.asarray(out, np.float64),
                np.asarray(gv, np.float64),
                np.asarray(gs, np.float64),
            )
        out = self.expectation(circuit, observables, values, names=names, shared=shared)
        gv, gs = self.vjp(circuit, observables, values, cotangent, names=names, shared=shared)
        return out, gv, gs

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
        """Measured basis indices ``[batch, shots]``, metered."""
        with self._metered(circuit, shots, _batch(values)):
            out = self.backend.sample(circuit, shots, values, names=names, shared=shared, seed=seed)
        return np.asarray(out, dtype=np.int64)

    async def execute(
        self,
        circuit: UnifiedCircuit,
        shots: int | None = 1000,
        timeout: float | None = None,
        **options: Any,
    ) -> ExecutionResult:
        """Run one circuit as one job, metered; concurrent calls are safe (the job is found by
        the id the result reports)."""
        s = shots if shots is None else self._shots(shots)
        est, res = self._reserve(circuit, effective_shots(self.backend, s), 1)
        t0 = time.perf_counter()
        try:
            result: ExecutionResult = await self.backend.execute(
                circuit, shots=s, timeout=timeout, **options
            )
        except BaseException:
            self._close(res, est, [], time.perf_counter() - t0, s, 1, ok=False)
            raise
        seconds = time.perf_counter() - t0
        job_id = result.metadata.get("job_id")
        new = [j for j in (self._job_records() or []) if str(getattr(j, "job_id", "")) == job_id]
        if not new and job_id is not None:
            new = [_Job(str(job_id), est, result.metadata.get("cost_usd"))]
        self._close(res, est, new, seconds, effective_shots(self.backend, s), 1, ok=True)
        return result


@dataclass(frozen=True)
class _Job:
    """A job known only from an execution result's metadata."""

    job_id: str
    estimated_cost: float
    reported_cost: float | None
