"""IonQ's simulator and QPUs as Q-Store backends (``ionq_simulator``, ``ionq_hardware``).

A call with a batch of bindings ``[B, P]`` becomes **one** ``ionq.multi-circuit.v1`` job holding
one circuit per binding (and per measurement basis the observables need), split only when a job
would exceed ``max_circuits_per_job``. Gradients are parameter-shift rules whose shifted circuits,
for the whole batch, also travel as one job. Expectations come from the histograms.

Bit order: IonQ's histogram keys are integers whose bit ``q`` is qubit ``q`` (little-endian);
Q-Store's bitstrings and indices put qubit 0 first (most significant). Converted here.

The synchronous methods work inside and outside a running event loop: network calls run on the
backend's own event loop in a private thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import warnings
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import numpy as np
import numpy.typing as npt

from qstore.core.backends.base import Capabilities, CostModel, ExecutionResult
from qstore.core.backends.plugin import ParameterMap, check_shots
from qstore.core.circuit import UnifiedCircuit
from qstore.core.gradients import ParameterShiftGradient, bindings
from qstore.core.observables import PauliSum, as_observables
from qstore.ionq.client import IonQClient, RetryPolicy
from qstore.ionq.compiler import IonQNativeCompiler, json_gates
from qstore.ionq.errors import IonQConfigError, IonQError
from qstore.ionq.targets import NOISE_MODELS, PRICES, PriceTable, get_target

__all__ = ["IonQBackend", "IonQHardwareBackend", "IonQSimulatorBackend", "JobRecord"]

logger = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")
Basis = tuple[tuple[int, str], ...]
_DENSE_LIMIT = 1 << 24  # histograms x 2**n up to which expectations use one dense product


@dataclass(frozen=True)
class JobRecord:
    """One submitted job: its cost estimated before submission and the cost IonQ reported."""

    job_id: str
    target: str
    n_circuits: int
    shots: int
    estimated_cost: float
    reported_cost: float | None
    n_1q: int
    n_2q: int
    status: str = "completed"


class _LoopThread:
    """An event loop running in a daemon thread; coroutines are submitted to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="qstore-ionq-loop", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise IonQError("A synchronous IonQBackend method was called from its own loop.")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result()
        except KeyboardInterrupt:
            fut.cancel()  # cancels the task: the client then cancels the remote job
            raise

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        fut: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(fut)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@dataclass
class _Batch:
    """Circuits of one call: JSON gate lists, and for every (basis, row) its position."""

    gateset: str
    n_qubits: int
    circuits: list[list[dict[str, Any]]] = field(default_factory=list)
    n_1q: int = 0
    n_2q: int = 0


def _basis_rotations(circuit: UnifiedCircuit, basis: Basis) -> UnifiedCircuit:
    out = circuit.without_measurements().copy()
    for q, p in basis:
        if p == "Y":
            out.add_gate("SDG", q)
        out.add_gate("H", q)
    return out


def _histogram_arrays(hist: Mapping[str, Any]) -> tuple[npt.NDArray[np.int64], FloatArray]:
    keys = np.fromiter((int(k) for k in hist), dtype=np.int64, count=len(hist))
    probs = np.fromiter((float(v) for v in hist.values()), dtype=np.float64, count=len(hist))
    total = probs.sum()
    return keys, probs / total if total > 0 else probs


def ionq_key_to_bits(key: int, n_qubits: int) -> str:
    """IonQ's little-endian histogram key as a Q-Store bitstring (qubit 0 first).

    >>> ionq_key_to_bits(1, 2)  # X on qubit 0 of 2
    '10'
    """
    return "".join(str((key >> q) & 1) for q in range(n_qubits))


class IonQBackend:
    """IonQ's cloud simulator or a QPU as a Q-Store backend.

    Args:
        api_key: default ``$IONQ_API_KEY`` (or ``$IONQ_API_TOKEN``).
        target: ``'simulator'``, ``'qpu.aria-1'``, ``'qpu.aria-2'``, ``'qpu.forte-1'`` ...
        use_native_gates: compile to GPI/GPI2/MS(/ZZ) with :class:`IonQNativeCompiler` and send
            ``gateset: native``; ``False`` sends the circuit's own gates (``qis``).
        noise_model: for the simulator: ``'ideal'`` (default), ``'aria-1'``, ``'aria-2'``,
            ``'forte-1'``.
        base_url: default ``$IONQ_API_URL``, else ``https://api.ionq.co/v0.4``.
        shots: shots per circuit when a call gives none (QPUs and noisy simulation; the ideal
            simulator then returns exact probabilities).
        seed: seeds client-side sampling of shots from the ideal simulator's probabilities.
        timeout: default total seconds for one call (submission to results).
        request_timeout, retry, poll_interval: passed to :class:`~qstore.ionq.IonQClient`.
        max_circuits_per_job: the API's limit on circuits per multi-circuit job.
        max_cost_per_job: refuse (before submission) jobs estimated above this many dollars.
        price_table: prices for the estimates (default :data:`qstore.ionq.PRICES`).
        online_estimates: also ask the API's estimate endpoint for QPU jobs (when reachable).
        error_mitigation: ``settings.error_mitigation`` for QPU jobs, e.g.
            ``{"debiasing": False}``.
        transport: an httpx transport (``httpx.ASGITransport(emulator.app)`` in tests).

    >>> backend = IonQBackend(api_key="k", base_url="http://127.0.0.1:8765/v0.4")
    >>> backend.name, backend.capabilities.max_qubits
    ('ionq_simulator', 29)
    """

    name: str = "ionq"

    def __init__(
        self,
        api_key: str | None = None,
        target: str = "simulator",
        use_native_gates: bool = True,
        noise_model: str | None = None,
        base_url: str | None = None,
        *,
        shots: int = 1000,
        seed: int | None = None,
        timeout: float = 600.0,
        request_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.05,
        max_circuits_per_job: int = 1000,
        max_cost_per_job: float | None = None,
        price_table: PriceTable | None = None,
        online_estimates: bool = True,
        error_mitigation: Mapping[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        tgt = get_target(target)
        self.target = tgt.name
        self._target = tgt
        if noise_model is not None:
            if not tgt.is_simulator:
                raise IonQConfigError(
                    f"noise_model={noise_model!r} applies to target='simulator' only; a QPU "
                    f"({self.target}) has its own noise."
                )
            if noise_model not in NOISE_MODELS:
                raise IonQConfigError(
                    f"Unknown noise_model {noise_model!r}; choose one of {list(NOISE_MODELS)}."
                )
        self.noise_model = noise_model
        self.use_native_gates = bool(use_native_gates)
        check_shots(shots)
        if tgt.max_shots is not None and shots > tgt.max_shots:
            raise IonQConfigError(f"shots={shots} exceeds {self.target}'s limit {tgt.max_shots}.")
        self.shots = int(shots)
        if isinstance(max_circuits_per_job, bool) or not isinstance(max_circuits_per_job, int):
            raise IonQConfigError(
                f"max_circuits_per_job must be an int, got {max_circuits_per_job!r}."
            )
        if max_circuits_per_job < 1:
            raise IonQConfigError(f"max_circuits_per_job must be >= 1, got {max_circuits_per_job}.")
        self.max_circuits_per_job = max_circuits_per_job
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise IonQConfigError(f"timeout must be seconds > 0, got {timeout!r}.")
        self.timeout = float(timeout)
        self.max_cost_per_job = max_cost_per_job
        self.prices = price_table if price_table is not None else PRICES
        self.online_estimates = bool(online_estimates)
        self.error_mitigation = dict(error_mitigation) if error_mitigation else None
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.client = IonQClient(
            api_key,
            base_url,
            request_timeout=request_timeout,
            retry=retry,
            poll_interval=poll_interval,
            transport=transport,
            seed=seed,
        )
        self.compiler = IonQNativeCompiler(self.target)
        self.name = "ionq_simulator" if tgt.is_simulator else "ionq_hardware"
        self.jobs: list[JobRecord] = []
        self._status: dict[str, Any] | None = None
        self._loop: _LoopThread | None = None
        self._loop_lock = threading.Lock()

    def __repr__(self) -> str:
        noise = f", noise_model={self.noise_model!r}" if self.noise_model else ""
        return (
            f"{type(self).__name__}(target={self.target!r}, use_native_gates="
            f"{self.use_native_gates}{noise}, base_url={self.client.base_url!r})"
        )

    # -- loop -------------------------------------------------------------------------------------
    def _runner(self) -> _LoopThread:
        with self._loop_lock:
            if self._loop is None:
                self._loop = _LoopThread()
                # stop the private loop when the backend is garbage collected without close()
                weakref.finalize(self, self._loop.loop.call_soon_threadsafe, self._loop.loop.stop)
            return self._loop

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner().run(coro)

    def close(self) -> None:
        """Close connections and stop the private event loop."""
        with self._loop_lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self.client.aclose(), loop.loop).result(timeout=5)
            loop.close()

    def __enter__(self) -> IonQBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- capabilities -----------------------------------------------------------------------------
    @property
    def is_simulator(self) -> bool:
        return self._target.is_simulator

    @property
    def exact(self) -> bool:
        """Whether results are exact probabilities (the ideal simulator)."""
        return self.is_simulator and self.noise_model in (None, "ideal")

    @property
    def capabilities(self) -> Capabilities:
        price = self.prices.price(self.target)
        cost = CostModel(per_gate_shot=price.price_2q, minimum_per_task=price.minimum)
        reason = ""
        if not self.client.has_api_key:
            reason = "no API key: set IONQ_API_KEY or pass api_key="
        status = self._status or {}
        if status.get("status") == "unavailable":
            reason = f"IonQ reports {self.target} unavailable"
        queue = float(status.get("average_queue_time", 0) or 0) / 1000.0
        native = ("GPI", "GPI2", "MS") + (("ZZ",) if self.compiler.use_zz else ())
        return Capabilities(
            name=self.name,
            max_qubits=self._target.max_qubits(self.noise_model),
            exact=self.exact,
            shots=True,
            gradient_methods=("parameter_shift",),
            vjp=True,
            gpu=False,
            native_gates=native,
            cost=cost,
            queue_seconds=queue,
            available=not reason,
            reason=reason,
            remote=True,
            dtypes=("complex128",),
            extra={
                "target": self.target,
                "noise_model": self.noise_model or ("ideal" if self.is_simulator else None),
                "max_shots": self._target.max_shots,
                "price_1q_gate_shot_usd": price.price_1q,
                "price_2q_gate_shot_usd": price.price_2q,
                "minimum_per_job_usd": price.minimum,
                "base_url": self.client.base_url,
                "queue_estimate": "from GET /backends" if status else "not fetched (refresh())",
            },
        )

    async def refresh_async(self) -> dict[str, Any]:
        """Fetch the target's status and queue estimate from ``GET /backends``."""
        rows = await self._runner().arun(self.client.backends())
        wanted = self.target.removeprefix("qpu.")
        for row in rows:
            if str(row.get("backend", "")).removeprefix("qpu.") == wanted:
                self._status = dict(row)
                return self._status
        raise IonQError(f"GET /backends does not list {self.target}.")

    def refresh(self) -> dict[str, Any]:
        """Synchronous :meth:`refresh_async`; the queue estimate then shows in capabilities."""
        return self._sync(self.refresh_async())

    # -- building jobs ----------------------------------------------------------------------------
    def _variant(self, circuit: UnifiedCircuit, basis: Basis) -> UnifiedCircuit:
        """The circuit with basis rotations, compiled to native gates when asked (cached)."""
        rotated = (
            circuit
            if not basis and not circuit.has_measurements
            else circuit.compiled(
                ("qstore.ionq.basis", basis), lambda: _basis_rotations(circuit, basis)
            )
        )
        if self.use_native_gates:
            return self.compiler.compile_with_frames(rotated).circuit
        return rotated

    def _batch(
        self,
        circuit: UnifiedCircuit,
        bases: Sequence[Basis],
        full: FloatArray,
        names: Sequence[str],
    ) -> _Batch:
        gateset = "native" if self.use_native_gates else "qis"
        batch = _Batch(gateset, circuit.n_qubits)
        for basis in bases:
            src = self._variant(circuit, basis)
            pmap = _parameter_map(src, names)
            rows = json_gates(src, gateset, pmap.theta(full), pmap)
            batch.circuits.extend(rows)
            for gates in rows:
                for g in gates:
                    if "targets" in g or "control" in g or "controls" in g:
                        batch.n_2q += 1 if "controls" not in g else 6 * (len(g["controls"]) - 1)
                    else:
                        batch.n_1q += 1
        return batch

    def _body(self, gateset: str, n: int, circuits: Sequence[Any], shots: int) -> dict[str, Any]:
        body: dict[str, Any] = {"backend": self.target, "shots": shots, "name": "qstore"}
        if len(circuits) == 1:
            body["type"] = "ionq.circuit.v1"
            body["input"] = {"gateset": gateset, "qubits": n, "circuit": circuits[0]}
        else:
            body["type"] = "ionq.multi-circuit.v1"
            body["input"] = {
                "gateset": gateset,
                "qubits": n,
                "circuits": [{"name": f"c{i}", "circuit": c} for i, c in enumerate(circuits)],
            }
        if self.is_simulator and self.noise_model not in (None, "ideal"):
            noise: dict[str, Any] = {"model": self.noise_model}
            if self.seed is not None:
                noise["seed"] = int(self.seed)
            body["noise"] = noise
        if not self.is_simulator and self.error_mitigation is not None:
            body["settings"] = {"error_mitigation": self.error_mitigation}
        return body

    # -- cost -------------------------------------------------------------------------------------
    def estimate_cost(
        self,
        circuit: UnifiedCircuit,
        shots: int | None = None,
        n_circuits: int = 1,
    ) -> float:
        """Dollars for running ``circuit`` ``n_circuits`` times (one job) from the price table.

        Gate counts are those of what would be sent (native gates when ``use_native_gates``).

        >>> import qstore.core as qc
        >>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
        >>> IonQBackend(api_key="k", target="qpu.aria-1").estimate_cost(c, shots=100)  # $1 minimum
        1.0
        """
        shots = self.shots if shots is None else shots
        check_shots(shots)
        values = {s: 0.0 for s in circuit.parameters}
        b = bindings(circuit, None, (), values or None)
        batch = self._batch(circuit, [()], b.full, b.all_names)
        return self.prices.estimate(
            self.target, shots, batch.n_1q * n_circuits, batch.n_2q * n_circuits
        )

    async def _estimate(self, batch: _Batch, lo: int, hi: int, shots: int) -> float:
        share = (hi - lo) / max(len(batch.circuits), 1)
        n1, n2 = round(batch.n_1q * share), round(batch.n_2q * share)
        cost = self.prices.estimate(self.target, shots, n1, n2)
        if not self.is_simulator and self.online_estimates:
            try:
                est = await self.client.estimate(
                    self.target, shots=shots, n_1q=n1, n_2q=n2, qubits=batch.n_qubits
                )
                cost = float(est.get("estimated_cost", cost))
            except (IonQError, ValueError, TypeError) as exc:
                logger.info("Cost estimate endpoint unavailable (%s); using the price table", exc)
        if self.max_cost_per_job is not None and cost > self.max_cost_per_job:
            raise IonQConfigError(
                f"The job is estimated at ${cost:.2f}, above max_cost_per_job="
                f"${self.max_cost_per_job:.2f}; raise the limit or reduce shots/circuits."
            )
        return cost

    # -- running ----------------------------------------------------------------------------------
    async def _run_batch(
        self, batch: _Batch, shots: int, timeout: float | None
    ) -> list[tuple[Mapping[str, Any], dict[str, Any]]]:
        """Histograms of every circuit, in order; one job per ``max_circuits_per_job`` circuits."""
        limit = self.max_circuits_per_job
        spans = [
            (lo, min(lo + limit, len(batch.circuits)))
            for lo in range(0, len(batch.circuits), limit)
        ]
        deadline_s = self.timeout if timeout is None else timeout

        async def one(lo: int, hi: int) -> list[tuple[Mapping[str, Any], dict[str, Any]]]:
            estimated = await self._estimate(batch, lo, hi, shots)
            body = self._body(batch.gateset, batch.n_qubits, batch.circuits[lo:hi], shots)
            job, probs = await self.client.run(body, timeout=deadline_s)
            reported = job.get("cost_usd", job.get("cost"))
            self.jobs.append(
                JobRecord(
                    str(job.get("id")),
                    self.target,
                    hi - lo,
                    shots,
                    estimated,
                    float(reported) if isinstance(reported, (int, float)) else None,
                    int((job.get("stats") or {}).get("gate_counts", {}).get("1q", 0) or 0),
                    int((job.get("stats") or {}).get("gate_counts", {}).get("2q", 0) or 0),
                )
            )
            children = job.get("children") or []
            if body["type"] == "ionq.circuit.v1":
                return [(probs, job)]
            if all(isinstance(v, Mapping) for v in probs.values()) and children:
                return [(probs[c], job) for c in children]
            # one histogram per child, fetched separately (older API versions)
            hists = await asyncio.gather(*(self.client.probabilities(c) for c in children))
            return [(h, job) for h in hists]

        parts = await asyncio.gather(*(one(lo, hi) for lo, hi in spans))
        return [h for part in parts for h in part]

    def _distribution(
        self, hist: Mapping[str, Any], shots: int | None, rng: np.random.Generator
    ) -> tuple[npt.NDArray[np.int64], FloatArray]:
        keys, probs = _histogram_arrays(hist)
        if shots is not None and self.exact:  # sample the exact probabilities client-side
            probs = rng.multinomial(shots, probs) / shots
        return keys, probs

    async def expectation_async(
        self,
        circuit: UnifiedCircuit,
        observables: Any = None,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        shots: int | None = None,
        seed: int | None = None,
        timeout: float | None = None,
    ) -> FloatArray:
        """Async :meth:`expectation`."""
        return await self._runner().arun(
            self._expectation(circuit, observables, values, names, shared, shots, seed, timeout)
        )

    async def _expectation(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
        shots: int | None,
        seed: int | None,
        timeout: float | None,
    ) -> FloatArray:
        if not isinstance(circuit, UnifiedCircuit):
            raise IonQConfigError(
                f"Expected a qstore.core.UnifiedCircuit, got {type(circuit).__name__}."
            )
        if shots is not None:
            check_shots(shots)
        n = circuit.n_qubits
        obs = as_observables(observables, n)
        b = bindings(circuit, values, names, shared)
        bases = _bases(obs)
        batch = self._batch(circuit, bases, b.full, b.all_names)
        job_shots = self.shots if shots is None else int(shots)
        results = await self._run_batch(batch, job_shots, timeout)
        rng = self._rng if seed is None else np.random.default_rng(seed)
        sample = None if self.exact and shots is None else job_shots
        bsz = b.batch
        out = np.zeros((bsz, len(obs)))
        for o, ps in enumerate(obs):
            for term in ps.terms:
                if not term.paulis:
                    out[:, o] += complex(term.coeff).real
        dists = [self._distribution(h, sample, rng) for h, _ in results]
        dense = len(dists) << n <= _DENSE_LIMIT
        for j, basis in enumerate(bases):
            rows = dists[j * bsz : (j + 1) * bsz]
            table = _dense(rows, n) if dense else None  # [B, 2**n] over IonQ's keys
            for o, ps in enumerate(obs):
                for term in ps.terms:
                    if not term.paulis or _term_basis(term.paulis) != basis:
                        continue
                    mask = sum(1 << q for q in term.qubits)  # bit q of a key is qubit q
                    coeff = complex(term.coeff).real
                    if table is not None:
                        signs = 1 - 2 * _popcount_parity(np.arange(1 << n, dtype=np.int64) & mask)
                        out[:, o] += coeff * (table @ signs)
                        continue
                    for r, (keys, probs) in enumerate(rows):
                        parity = _popcount_parity(keys & mask)
                        out[r, o] += coeff * float(np.dot(probs, 1 - 2 * parity))
        return out

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
        """Expectations ``[batch, n_observables]``; the whole batch is one job.

        ``shots=None``: exact on the ideal simulator, else estimated from the backend's
        ``shots``. Works inside a running event loop too.
        """
        return self._sync(
            self._expectation(circuit, observables, values, names, shared, shots, seed, None)
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
        shots: int | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Gradient of ``sum(cotangent * expectation)`` by parameter shift.

        Every shifted circuit of every row goes in one job. Returns ``(d/dvalues [B, P],
        d/dshared [S])``.
        """
        grad = ParameterShiftGradient(self, shots=shots)
        return grad.vjp(circuit, observables, values, cotangent, names, shared)

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
        """Measured basis indices ``[batch, shots]`` (qubit 0 most significant); one job."""
        check_shots(shots)
        b = bindings(circuit, values, names, shared)
        batch = self._batch(circuit, [()], b.full, b.all_names)
        results = self._sync(self._run_batch(batch, shots, None))
        rng = self._rng if seed is None else np.random.default_rng(seed)
        n = circuit.n_qubits
        out = np.zeros((b.batch, shots), dtype=np.int64)
        for r, (hist, _) in enumerate(results):
            keys, probs = _histogram_arrays(hist)
            if self.exact:
                picks = rng.choice(keys.size, size=shots, p=probs)
            else:  # the QPU's histogram is counts / shots: reproduce those counts, shuffled
                counts = np.round(probs * shots).astype(np.int64)
                counts[np.argmax(counts)] += shots - int(counts.sum())
                picks = rng.permutation(np.repeat(np.arange(keys.size), counts))
            out[r] = _to_msb_index(keys[picks], n)
        return out

    async def execute(
        self,
        circuit: UnifiedCircuit,
        shots: int | None = 1000,
        timeout: float | None = None,
        *,
        values: Mapping[str, float] | None = None,
    ) -> ExecutionResult:
        """Run one circuit as one job.

        The ideal simulator gives exact ``probabilities`` and ``exact_expectations`` (and
        ``counts`` sampled with the backend's seed when ``shots`` is given); QPUs and noisy
        simulation give ``counts`` (``metadata['histogram']`` holds IonQ's frequencies).
        Symbols are bound from ``values``; symbols without a value run at 0.0 (with a
        warning). ``timeout`` bounds submission to results; on timeout or cancellation the remote
        job is canceled. ``metadata`` has the job id, the estimated and the reported cost.
        """
        bound = _bind_for_execute(circuit, values)
        job_shots = self.shots if shots is None else shots
        check_shots(job_shots)
        n = bound.n_qubits
        batch = self._batch(bound, [()], np.zeros((1, 0)), ())
        results = await self._runner().arun(self._run_batch(batch, job_shots, timeout))
        hist, job = results[0]
        keys, probs = _histogram_arrays(hist)
        order = np.argsort(keys)
        keys, probs = keys[order], probs[order]
        pmap = {ionq_key_to_bits(int(k), n): float(p) for k, p in zip(keys, probs, strict=True)}
        counts: dict[str, int] | None = None
        if shots is not None:
            if self.exact:
                drawn = self._rng.multinomial(shots, probs)
            else:
                drawn = np.round(probs * shots).astype(np.int64)
            counts = {
                ionq_key_to_bits(int(k), n): int(c)
                for k, c in zip(keys, drawn, strict=True)
                if c > 0
            }
        z = np.asarray(
            [float(np.dot(probs, 1 - 2 * ((keys >> q) & 1))) for q in range(n)], dtype=np.float64
        )
        if shots is None and not self.exact:
            # a QPU or noisy histogram is itself an estimate from the job's shots
            counts = {b: round(p * job_shots) for b, p in pmap.items()}
            counts = {b: c for b, c in counts.items() if c > 0}
        record = self.jobs[-1] if self.jobs else None
        meta = {
            "job_id": job.get("id"),
            "target": self.target,
            "gateset": batch.gateset,
            "estimated_cost_usd": record.estimated_cost if record else None,
            "cost_usd": record.reported_cost if record else None,
            "execution_time_ms": job.get("execution_time"),
            "gate_counts": {"1q": batch.n_1q, "2q": batch.n_2q},
            "histogram": pmap,
        }
        if self.exact:  # the ideal simulator returns the exact distribution
            return ExecutionResult(
                self.name, n, shots, counts, pmap, exact_expectations=z, metadata=meta
            )
        return ExecutionResult(self.name, n, job_shots, counts, None, metadata=meta)

    @property
    def total_cost(self) -> float:
        """Dollars IonQ reported for this backend's jobs so far (estimates where not reported)."""
        return math.fsum(
            j.reported_cost if j.reported_cost is not None else j.estimated_cost for j in self.jobs
        )


def _bind_for_execute(
    circuit: UnifiedCircuit, values: Mapping[str, float] | None
) -> UnifiedCircuit:
    if not isinstance(circuit, UnifiedCircuit):
        raise IonQConfigError(
            f"Expected a qstore.core.UnifiedCircuit, got {type(circuit).__name__}."
        )
    if not circuit.is_parameterized:
        return circuit
    given = dict(values or {})
    missing = [s for s in circuit.parameters if s not in given]
    if missing:
        warnings.warn(
            f"execute(): no values for {missing}; running with 0.0 for them. Pass "
            "values={name: value} (or bind the circuit) to choose them.",
            UserWarning,
            stacklevel=3,
        )
        given.update(dict.fromkeys(missing, 0.0))
    return circuit.bind(given, strict=False)


def _parameter_map(circuit: UnifiedCircuit, names: Sequence[str]) -> ParameterMap:
    """The circuit's gate parameters as a function of the binding columns ``names`` (cached)."""
    return circuit.compiled(
        ("qstore.ionq.pmap", tuple(names)), lambda: ParameterMap.build(circuit, names)
    )


def _term_basis(paulis: tuple[tuple[int, str], ...]) -> Basis:
    return tuple((q, p) for q, p in paulis if p in "XY")


def _bases(obs: Sequence[PauliSum]) -> list[Basis]:
    seen: dict[Basis, None] = {}
    for ps in obs:
        for term in ps.terms:
            if term.paulis:
                seen.setdefault(_term_basis(term.paulis), None)
    return list(seen) or [()]


def _dense(rows: Sequence[tuple[npt.NDArray[np.int64], FloatArray]], n: int) -> FloatArray:
    table = np.zeros((len(rows), 1 << n))
    for r, (keys, probs) in enumerate(rows):
        table[r, keys] = probs
    return table


def _popcount_parity(x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    x = x.copy()
    parity = np.zeros_like(x)
    while np.any(x):
        parity ^= x & 1
        x >>= 1
    return parity


def _to_msb_index(keys: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
    out = np.zeros_like(keys)
    for q in range(n):
        out |= ((keys >> q) & 1) << (n - 1 - q)
    return out


class IonQSimulatorBackend(IonQBackend):
    """IonQ's cloud simulator (``ionq_simulator``): ideal, or with a noise model.

    >>> IonQSimulatorBackend(api_key="k", noise_model="aria-1").capabilities.max_qubits
    25
    """

    name = "ionq_simulator"

    def __init__(
        self,
        api_key: str | None = None,
        noise_model: str | None = None,
        base_url: str | None = None,
        use_native_gates: bool = True,
        **options: Any,
    ) -> None:
        if "target" in options and options["target"] != "simulator":
            raise IonQConfigError(
                f"ionq_simulator runs on target='simulator'; use ionq_hardware for "
                f"{options['target']!r}."
            )
        options.pop("target", None)
        super().__init__(api_key, "simulator", use_native_gates, noise_model, base_url, **options)


class IonQHardwareBackend(IonQBackend):
    """An IonQ QPU (``ionq_hardware``), ``qpu.aria-1`` unless ``target`` says otherwise.

    >>> IonQHardwareBackend(api_key="k", target="qpu.forte-1").capabilities.native_gates
    ('GPI', 'GPI2', 'MS', 'ZZ')
    """

    name = "ionq_hardware"

    def __init__(
        self,
        api_key: str | None = None,
        target: str = "qpu.aria-1",
        use_native_gates: bool = True,
        base_url: str | None = None,
        **options: Any,
    ) -> None:
        if get_target(target).is_simulator:
            raise IonQConfigError(
                "ionq_hardware needs a QPU target such as 'qpu.aria-1'; use ionq_simulator for "
                "the simulator."
            )
        super().__init__(api_key, target, use_native_gates, None, base_url, **options)
