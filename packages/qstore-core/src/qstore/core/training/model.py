"""``qstore.QuantumModel``: train a hybrid model with routing, budgets and reports.

The model is ``Input(n_features) -> QuantumLayer(n_qubits, circuit_depth) -> Dense(n_outputs)``
built on the framework layers (``qstore.tf`` or ``qstore.torch``, reached through the
``qstore.frameworks`` entry points). Each phase runs where the configuration says:
``training_backend`` and ``validation_backend`` name a workload (``'train'``, ``'val'``,
``'development'`` ...: the entries whose ``use_for`` names it) or an entry directly (``'qsim'``).
The router picks among the entries; one that cannot run here, or that does not fit the budget,
is replaced by the next the configuration allows, with a :class:`FallbackWarning`. Every
execution goes through a :class:`~qstore.core.routing.MeteredBackend`, so paid jobs are reserved
against ``cost_budget`` before they are submitted; when the budget runs out during training the
phase moves to the next backend that fits (or :class:`~qstore.core.errors.BudgetExceededError`
is raised when none does).

>>> import asyncio, numpy as np, qstore
>>> config = qstore.TrainingConfig(
...     n_qubits=2,
...     circuit_depth=1,
...     epochs=1,
...     batch_size=16,
...     ml_framework="pytorch",
...     backends=[{"name": "local", "use_for": ["training", "validation"]}],
...     ledger_path=":memory:",
... )
>>> model = qstore.QuantumModel(config)
>>> x = np.random.default_rng(0).uniform(0, np.pi, (32, 2))
>>> y = (x[:, 0] > 1.5).astype(int)
>>> history = asyncio.run(model.train(train_data=(x, y), val_data=(x, y), progress=False))
>>> sorted(k for k in history if "loss" in k or "accuracy" in k)
['accuracy', 'loss', 'val_accuracy', 'val_loss']
>>> model.get_cost_report().model_cost
0.0
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core import templates
from qstore.core.errors import BudgetExceededError, RoutingError, TrainingConfigError
from qstore.core.routing.costs import effective_shots
from qstore.core.routing.ledger import CostTracker
from qstore.core.routing.metered import MeteredBackend
from qstore.core.routing.router import FallbackWarning, RoutingDecision, SmartBackendRouter
from qstore.core.routing.specs import check_workload
from qstore.core.training.adaptive import DepthController, ShotAllocator
from qstore.core.training.config import TrainingConfig
from qstore.core.training.frameworks import (
    EvalStats,
    Framework,
    ModelSpec,
    infer_task,
    load_framework,
)
from qstore.core.training.reports import BackendUsage, CostReport, PerformanceReport

__all__ = ["QuantumModel"]

logger = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]


@dataclass
class _Phase:
    """Where one phase runs now."""

    name: str  # 'training' / 'validation'
    request: str  # what train() was given
    decision: RoutingDecision | None
    metered: MeteredBackend
    excluded: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.metered.label


class _Progress:
    """A tqdm bar per epoch when tqdm is installed, else one plain line per epoch."""

    def __init__(self, enabled: bool, epochs: int) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.bar: Any = None
        self._tqdm: Any = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            self._tqdm = tqdm

    def start(self, epoch: int, steps: int) -> None:
        if self.enabled and self._tqdm is not None:
            self.bar = self._tqdm(
                total=steps, desc=f"epoch {epoch}/{self.epochs}", unit="step", leave=True
            )

    def step(self, loss: float, shots: int | None) -> None:
        if self.bar is not None:
            post = {"loss": f"{loss:.4f}"}
            if shots is not None:
                post["shots"] = str(shots)
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)

    def end(self, epoch: int, row: Mapping[str, Any]) -> None:
        text = ", ".join(
            f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float) and math.isfinite(v)
        )
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.close()
            self.bar = None
        elif self.enabled:
            print(f"epoch {epoch}/{self.epochs}: {text}", file=sys.stderr, flush=True)


def _arrays(
    data: Any, framework: Framework | None, what: str
) -> tuple[FloatArray, npt.NDArray[Any]]:
    if isinstance(data, Mapping) and {"x", "y"} <= set(data):
        data = (data["x"], data["y"])
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x = np.asarray(data[0], dtype=np.float64)
        y = np.asarray(data[1])
    else:
        got = None if framework is None else framework.to_arrays(data)
        if got is None:
            raise TrainingConfigError(
                f"{what} must be (x, y) arrays, a mapping with 'x' and 'y', or a data object of "
                f"the configured framework; got {type(data).__name__}."
            )
        x, y = np.asarray(got[0], dtype=np.float64), np.asarray(got[1])
    if x.ndim != 2 or x.shape[0] == 0:
        raise TrainingConfigError(
            f"{what}: features must be [samples, features] with samples > 0, got {list(x.shape)}."
        )
    if y.shape[0] != x.shape[0]:
        raise TrainingConfigError(
            f"{what}: {x.shape[0]} feature rows but {y.shape[0]} targets; give one per row."
        )
    return x, y


def _distributed(config: TrainingConfig) -> bool:
    strategy = config.distributed_strategy
    if strategy != "auto":
        return strategy == "multi_worker"
    if config.ml_framework == "tensorflow":
        return bool(os.environ.get("TF_CONFIG"))
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


class QuantumModel:
    """A hybrid quantum model trained with routing, a hard budget and reports (see the module).

    Args:
        config: the :class:`~qstore.core.training.TrainingConfig`.
        router: a ready :class:`~qstore.core.routing.SmartBackendRouter` (default: one for
            ``config``, with a :class:`~qstore.core.routing.CostTracker` on ``config.ledger_path``
            spending from ``config.budget_id``).
        backends: ready backend instances by entry label or name (passed to the router).
    """

    def __init__(
        self,
        config: TrainingConfig,
        *,
        router: SmartBackendRouter | None = None,
        backends: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(config, TrainingConfig):
            raise TrainingConfigError(
                f"QuantumModel needs a qstore.TrainingConfig, got {type(config).__name__}."
            )
        self.config = config
        if router is None:
            tracker = CostTracker(
                config.cost_budget, config.ledger_path, budget_id=config.budget_id
            )
            router = SmartBackendRouter(config, tracker=tracker, backends=backends)
        self.router = router
        self.tracker = router.tracker
        self.history: dict[str, list[Any]] = {}
        self.framework: Framework | None = None
        self.spec: ModelSpec | None = None
        self._handle: Any = None
        self._phases: dict[str, _Phase] = {}
        self._metered: dict[str, MeteredBackend] = {}
        self._train_seconds = 0.0
        self._samples = 0
        self.shot_allocator: ShotAllocator | None = None
        self.depth_controller: DepthController | None = None

    def __repr__(self) -> str:
        c = self.config
        return (
            f"QuantumModel(n_qubits={c.n_qubits}, depth={c.circuit_depth}, "
            f"ml_framework={c.ml_framework!r})"
        )

    # -- routing ----------------------------------------------------------------------------------
    def _meter(self, label: str) -> MeteredBackend:
        m = self.router.metered(label)
        self._metered[label] = m
        return m

    def _route(
        self,
        phase: str,
        request: str,
        circuit: Any,
        shots: int | None,
        n_circuits: int,
        exclude: Sequence[str] = (),
    ) -> _Phase:
        if request in self.router.labels or request in {
            self.router.spec(lbl).name for lbl in self.router.labels
        }:
            metered = self._meter(request)  # an entry named directly: no choice to make
            return _Phase(phase, request, None, metered, list(exclude))
        workload = check_workload(request, f"{phase}_backend")
        decision = self.router.route_circuit(
            circuit,
            0.0,
            workload=workload,
            shots=shots,
            n_circuits=n_circuits,
            exclude=tuple(exclude),
        )
        if decision.fallback:
            msg = f"{phase} runs on {decision.backend!r}: {decision.reasons[0]}"
            warnings.warn(msg, FallbackWarning, stacklevel=4)
            logger.warning(msg)
        logger.info("%s routed:\n%s", phase, decision)
        return _Phase(phase, request, decision, self._meter(decision.backend), list(exclude))

    def _reroute(self, phase: _Phase, circuit: Any, error: BudgetExceededError) -> _Phase:
        excluded = [*phase.excluded, phase.label]
        try:
            new = self._route(phase.name, phase.request, circuit, None, 1, excluded)
        except (BudgetExceededError, RoutingError):
            raise error from None
        if new.label == phase.label:
            raise error
        msg = f"{phase.name} moves from {phase.label!r} to {new.label!r}: {error}"
        warnings.warn(msg, FallbackWarning, stacklevel=3)
        logger.warning(msg)
        return new

    # -- training ---------------------------------------------------------------------------------
    async def train(
        self,
        train_data: Any,
        val_data: Any = None,
        training_backend: str = "train",
        validation_backend: str = "val",
        *,
        epochs: int | None = None,
        progress: bool = True,
    ) -> dict[str, list[Any]]:
        """Build the model (first call), route each phase, train, and return the history.

        Args:
            train_data, val_data: ``(x, y)`` arrays (features ``[N, F]``; integer class labels
                ``[N]`` for classification, values ``[N]``/``[N, k]`` for regression), a mapping
                with ``'x'`` and ``'y'``, or the framework's data objects (``tf.data.Dataset``,
                a torch ``Dataset``/``DataLoader``).
            training_backend, validation_backend: a workload (``'train'``, ``'val'``,
                ``'development'``, ``'production'`` ...) or a configured backend's name/label.
            epochs: default ``config.epochs``.
            progress: a progress bar (tqdm when installed, else a line per epoch).

        Returns:
            Per epoch: ``loss`` (and ``accuracy``), ``val_loss``/``val_accuracy``,
            ``epoch_seconds``, ``depth``, ``mean_shots`` (``None`` for exact runs),
            ``train_backend``, ``val_backend`` and ``cost`` (this model's dollars so far).
        """
        n_epochs = self.config.epochs if epochs is None else epochs
        if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 1:
            raise TrainingConfigError(f"epochs = {epochs!r}; use a positive int.")
        for name, value in (
            ("training_backend", training_backend),
            ("validation_backend", validation_backend),
        ):
            if not isinstance(value, str) or not value:
                raise TrainingConfigError(f"{name} = {value!r}; name a workload or a backend.")
        framework = self.framework or load_framework(self.config.ml_framework)
        self.framework = framework
        x, y = _arrays(train_data, framework, "train_data")
        val = None if val_data is None else _arrays(val_data, framework, "val_data")
        self._prepare(framework, x, y, val, training_backend, validation_backend)
        bar = _Progress(progress, n_epochs)
        for epoch in range(1, n_epochs + 1):
            row = await asyncio.to_thread(self._epoch, framework, x, y, val, epoch, bar)
            for k, v in row.items():
                self.history.setdefault(k, []).append(v)
            bar.end(epoch, row)
            self._adapt_depth(framework, row)
        return {k: list(v) for k, v in self.history.items()}

    def _prepare(
        self,
        framework: Framework,
        x: FloatArray,
        y: npt.NDArray[Any],
        val: tuple[FloatArray, npt.NDArray[Any]] | None,
        training_backend: str,
        validation_backend: str,
    ) -> None:
        cfg = self.config
        task, n_out = infer_task(y)
        if self.spec is None:
            self.spec = ModelSpec(
                n_features=int(x.shape[1]),
                n_outputs=n_out,
                task=task,
                n_qubits=cfg.n_qubits,
                depth=cfg.circuit_depth,
                learning_rate=float(cfg.learning_rate),
                gradient_method=cfg.gradient_method,
                seed=cfg.seed,
            )
            sched = cfg.depth_schedule
            self.depth_controller = None if sched is None else sched.controller()
        elif self.spec.n_features != x.shape[1] or self.spec.n_outputs != n_out:
            raise TrainingConfigError(
                f"train_data has {x.shape[1]} features and {n_out} outputs, but the model was "
                f"built for {self.spec.n_features} and {self.spec.n_outputs}."
            )
        circuit = self._circuit()
        n_weights = 2 * cfg.n_qubits * self.spec.depth
        per_step = cfg.batch_size * (1 + 2 * n_weights)  # forward and parameter-shift circuits
        train = self._route("training", training_backend, circuit, cfg.shots, per_step)
        self._phases["training"] = train
        if val is not None:
            self._phases["validation"] = self._route(
                "validation", validation_backend, circuit, cfg.shots, cfg.batch_size
            )
        self._setup_shots(train.metered)
        self._build(framework)

    def _circuit(self) -> Any:
        assert self.spec is not None
        layer = templates.LayerSpec.create(self.spec.n_qubits, self.spec.depth, "linear", "angle")
        return layer.circuit(self.spec.n_features)[0]

    def _setup_shots(self, metered: MeteredBackend) -> None:
        cfg = self.config
        sched = cfg.shot_schedule
        start = cfg.shots if sched is None else sched.initial
        sampling = effective_shots(metered.backend, start) is not None
        if sched is not None and sampling:
            if self.shot_allocator is None:
                self.shot_allocator = sched.allocator(cfg.gradient_method)
            metered.shots = self.shot_allocator.shots
        else:
            if sched is not None:
                logger.info(
                    "Adaptive shot allocation is inactive: %s computes exact expectations and "
                    "no TrainingConfig.shots is set.",
                    metered.label,
                )
            metered.shots = cfg.shots
        val = self._phases.get("validation")
        if val is not None and val.metered is not metered:
            val.metered.shots = cfg.shots

    def _build(self, framework: Framework) -> None:
        assert self.spec is not None
        train = self._phases["training"].metered
        val = self._phases.get("validation")
        evaluate = train if val is None else val.metered
        self._handle = framework.build(self.spec, train, evaluate, self._handle)

    def _epoch(
        self,
        framework: Framework,
        x: FloatArray,
        y: npt.NDArray[Any],
        val: tuple[FloatArray, npt.NDArray[Any]] | None,
        epoch: int,
        bar: _Progress,
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        before = self.tracker.summary(session=self.tracker.session)
        spent_before = math.fsum(r["cost"] for r in before.rows)
        train = self._phases["training"]
        train.metered.phase = "training"
        if _distributed(self.config):
            stats = self._distributed_epoch(framework, x, y)
            shots_used: list[int] = []
        else:
            stats, shots_used = self._single_epoch(framework, x, y, epoch, bar)
        row: dict[str, Any] = {"loss": stats.loss}
        if stats.accuracy is not None:
            row["accuracy"] = stats.accuracy
        if val is not None:
            ev = self._evaluate(framework, val)
            row["val_loss"] = ev.loss
            if ev.accuracy is not None:
                row["val_accuracy"] = ev.accuracy
        seconds = time.perf_counter() - t0
        self._train_seconds += seconds
        self._samples += int(x.shape[0])
        assert self.spec is not None
        after = self.tracker.summary(session=self.tracker.session)
        row["epoch_seconds"] = seconds
        row["depth"] = self.spec.depth
        row["mean_shots"] = float(np.mean(shots_used)) if shots_used else None
        row["train_backend"] = self._phases["training"].label
        row["val_backend"] = self._phases["validation"].label if val is not None else None
        row["cost"] = math.fsum(r["cost"] for r in after.rows) - spent_before
        return row

    def _single_epoch(
        self,
        framework: Framework,
        x: FloatArray,
        y: npt.NDArray[Any],
        epoch: int,
        bar: _Progress,
    ) -> tuple[EvalStats, list[int]]:
        cfg = self.config
        rng = np.random.default_rng(None if cfg.seed is None else cfg.seed + epoch)
        order = rng.permutation(x.shape[0])
        bs = cfg.batch_size
        steps = math.ceil(x.shape[0] / bs)
        bar.start(epoch, steps)
        total = correct = 0.0
        n = 0
        any_correct = False
        shots_used: list[int] = []
        for i in range(steps):
            idx = order[i * bs : (i + 1) * bs]
            stats = self._train_step(framework, x[idx], y[idx])
            metered = self._phases["training"].metered
            s = effective_shots(metered.backend, metered.shots)
            if s is not None:
                shots_used.append(s)
            total += stats.loss * stats.n_samples
            n += stats.n_samples
            if stats.correct is not None:
                correct += stats.correct
                any_correct = True
            if self.shot_allocator is not None and s is not None:
                metered.shots = self.shot_allocator.update(
                    stats.n_params, stats.grad_sq, stats.cot_sq
                )
            bar.step(stats.loss, s)
        acc = correct / n if any_correct and n else None
        return EvalStats(total / max(n, 1), acc, n), shots_used

    def _train_step(self, framework: Framework, xb: FloatArray, yb: npt.NDArray[Any]) -> Any:
        while True:
            try:
                return framework.train_step(self._handle, xb, yb)
            except BudgetExceededError as exc:
                phase = self._phases["training"]
                self._phases["training"] = self._reroute(phase, self._circuit(), exc)
                self._phases["training"].metered.phase = "training"
                self._setup_shots(self._phases["training"].metered)
                assert self.framework is not None
                self._build(self.framework)

    def _distributed_epoch(
        self, framework: Framework, x: FloatArray, y: npt.NDArray[Any]
    ) -> EvalStats:
        if self.shot_allocator is not None:
            logger.info(
                "multi_worker: the distributed trainer owns the step loop, so shots stay at %s "
                "for this epoch (adaptive allocation works per step in single-process training).",
                self.shot_allocator.shots,
            )
        while True:
            try:
                return framework.fit_distributed(self._handle, x, y, self.config.batch_size)
            except BudgetExceededError as exc:
                phase = self._phases["training"]
                self._phases["training"] = self._reroute(phase, self._circuit(), exc)
                self._setup_shots(self._phases["training"].metered)
                self._build(framework)

    def _evaluate(
        self, framework: Framework, val: tuple[FloatArray, npt.NDArray[Any]]
    ) -> EvalStats:
        phase = self._phases["validation"]
        while True:
            phase.metered.phase = "validation"
            try:
                return framework.evaluate(self._handle, val[0], val[1], self.config.batch_size)
            except BudgetExceededError as exc:
                phase = self._reroute(phase, self._circuit(), exc)
                phase.metered.shots = self.config.shots
                self._phases["validation"] = phase
                self._build(framework)

    def _adapt_depth(self, framework: Framework, row: Mapping[str, Any]) -> None:
        ctl = self.depth_controller
        if ctl is None or self.spec is None:
            return
        monitored = float(row.get("val_loss", row["loss"]))
        new_depth = ctl.observe(monitored)
        if new_depth is None:
            return
        logger.info(
            "Validation loss plateaued at %.5f: circuit depth %d -> %d",
            monitored,
            self.spec.depth,
            new_depth,
        )
        self.spec = self.spec.with_depth(new_depth)
        self._build(framework)

    # -- using the model --------------------------------------------------------------------------
    def predict(self, x: npt.ArrayLike, batch_size: int | None = None) -> FloatArray:
        """Model outputs (class logits, or values) on the validation backend."""
        if self._handle is None or self.framework is None:
            raise TrainingConfigError("The model is built by train(); call it first.")
        arr = np.asarray(x, dtype=np.float64)
        return self.framework.predict(self._handle, arr, batch_size or self.config.batch_size)

    @property
    def routes(self) -> dict[str, str]:
        """Where each phase runs now and why."""
        out = {}
        for name, p in self._phases.items():
            why = "named directly" if p.decision is None else p.decision.reasons[0]
            out[name] = f"{p.label} ({why})"
        return out

    # -- reports ----------------------------------------------------------------------------------
    def get_cost_report(self) -> CostReport:
        """What this model spent per backend, and the budget used and left."""
        mine = self.tracker.summary(session=self.tracker.session)
        whole = self.tracker.summary()
        ledger = ":memory:" if self.tracker.path is None else str(self.tracker.path)
        return CostReport(
            budget_id=whole.budget_id,
            budget=whole.budget,
            used=whole.spent,
            reserved=whole.reserved,
            left=whole.remaining,
            model_cost=math.fsum(r["cost"] for r in mine.rows),
            backends=mine.rows,
            ledger=ledger,
        )

    def get_performance_report(self) -> PerformanceReport:
        """Per backend and phase: calls, jobs, circuits, shots, time, throughput, cost."""
        usage = []
        for label, m in sorted(self._metered.items()):
            for phase, st in sorted(m.stats.items()):
                usage.append(
                    BackendUsage(
                        label,
                        phase or "-",
                        st.calls,
                        st.jobs,
                        st.circuits,
                        st.shots,
                        st.seconds,
                        st.cost,
                        dict(st.shot_settings),
                    )
                )
        h = self.history
        final = {
            k: float(v[-1])
            for k, v in h.items()
            if k in ("loss", "accuracy", "val_loss", "val_accuracy") and v
        }
        return PerformanceReport(
            backends=tuple(usage),
            epochs=len(h.get("loss", [])),
            train_seconds=self._train_seconds,
            samples=self._samples,
            depth=tuple(h.get("depth", [])),
            shots=tuple(h.get("mean_shots", [])),
            routes=self.routes,
            final=final,
        )
