"""The v3.5 ``QuantumTrainer``: ``await trainer.train(model, train_loader, val_loader, epochs)``.

Loaders are what v3.5 took: async iterables of ``(X_batch, one_hot_y)`` (plain iterables work
too), iterated once per epoch. Each batch is one optimiser step: the model's outputs for the whole
batch come from one backend call, the gradient from :mod:`qstore.compat.v3_5.gradients`, the
update from v3.5's rule (Adam, SGD with momentum, or plain gradient descent), after weight decay
and gradient clipping. The loss (MSE unless :meth:`QuantumTrainer.set_loss_function` says
otherwise) and the accuracy (arg-max of outputs against arg-max of one-hot targets) are those of
the current parameters, before the step.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.compat.v3_5._deprecation import warn_once
from qstore.compat.v3_5.backends import BackendManager, backend_for_config
from qstore.compat.v3_5.config import TrainingConfig
from qstore.compat.v3_5.gradients import (
    BatchLoss,
    CountingBackend,
    SampleLoss,
    SubsampledSPSA,
    check_targets,
    core_method,
    weight_vjp,
)
from qstore.compat.v3_5.layers import FloatArray, seeded_rng
from qstore.compat.v3_5.model import QuantumModel
from qstore.core.errors import QStoreError

logger = logging.getLogger(__name__)


class CompatTrainingError(QStoreError, RuntimeError):
    """Training could not proceed (empty loader, diverging loss, bad checkpoint)."""


@dataclass
class TrainingMetrics:
    """One epoch, as v3.5 reported it (``val_*`` are new: the validation pass, if any)."""

    epoch: int
    loss: float
    accuracy: float | None = None
    gradient_norm: float = 0.0
    learning_rate: float = 0.0
    circuit_execution_time_ms: float = 0.0
    epoch_time_ms: float = 0.0
    n_circuit_executions: int = 0
    val_loss: float | None = None
    val_accuracy: float | None = None


class _Optimizer:
    """v3.5's update rules on a flat parameter vector."""

    def __init__(self, config: TrainingConfig) -> None:
        self.kind = config.optimizer
        self.lr = config.learning_rate
        self.momentum = config.momentum
        self.state: dict[str, Any] = {"t": 0, "m": None, "v": None, "velocity": None}

    def step(self, theta: FloatArray, grad: FloatArray) -> FloatArray:
        s = self.state
        if self.kind == "adam":
            b1, b2, eps = 0.9, 0.999, 1e-8
            if s["m"] is None:
                s["m"], s["v"] = np.zeros_like(theta), np.zeros_like(theta)
            s["t"] += 1
            s["m"] = b1 * s["m"] + (1 - b1) * grad
            s["v"] = b2 * s["v"] + (1 - b2) * grad**2
            m_hat = s["m"] / (1 - b1 ** s["t"])
            v_hat = s["v"] / (1 - b2 ** s["t"])
            out: FloatArray = theta - self.lr * m_hat / (np.sqrt(v_hat) + eps)
            return out
        if self.kind == "sgd":
            if s["velocity"] is None:
                s["velocity"] = np.zeros_like(theta)
            s["velocity"] = self.momentum * s["velocity"] + self.lr * grad
            moved: FloatArray = theta - s["velocity"]
            return moved
        return theta - self.lr * grad

    def state_dict(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.state.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = {
            k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v)
            for k, v in state.items()
        }


async def _batches(loader: Any) -> AsyncIterator[tuple[Any, Any]]:
    if isinstance(loader, AsyncIterable):
        async for item in loader:
            yield item
    elif isinstance(loader, Iterable):
        for item in loader:
            yield item
    else:
        raise CompatTrainingError(
            f"A data loader must be an async iterable (or iterable) of (X_batch, y_batch); got "
            f"{type(loader).__name__}."
        )


def _accuracy(pred: FloatArray, y: FloatArray) -> float | None:
    if y.shape[1] < 2:
        return None
    return float(np.mean(np.argmax(pred, axis=1) == np.argmax(y, axis=1)))


class QuantumTrainer:
    """``QuantumTrainer(config, backend_manager=None)``: the v3.5 training loop on Q-Store 4.

    Without a backend manager the backend comes from ``config.quantum_sdk`` (``'mock'``: the
    exact local simulator). Models bring their own backend; the trainer's is what
    ``trainer.backend`` reports and what v3.5 code may read.
    """

    def __init__(self, config: TrainingConfig, backend_manager: BackendManager | None = None):
        if not isinstance(config, TrainingConfig):
            raise CompatTrainingError(
                f"config must be a qstore.compat.v3_5.TrainingConfig, got {type(config).__name__}."
            )
        self.config = config
        self.backend_manager = backend_manager
        self.backend = (
            backend_manager.get_backend()
            if backend_manager is not None
            else backend_for_config(config)
        )
        self.current_epoch = 0
        self.training_history: list[TrainingMetrics] = []
        self.loss_function: SampleLoss | None = None
        self._loss = BatchLoss()
        self._rng = seeded_rng(config.seed)
        self._optimizer = _Optimizer(config)
        self._spsa = SubsampledSPSA(
            config.gradient_subsample_size, config.spsa_c_initial, seed=self._draw_seed()
        )
        self._methods: dict[int, tuple[Any, CountingBackend]] = {}

    def _draw_seed(self) -> int:
        return int(self._rng.integers(2**31))

    def set_loss_function(self, loss_fn: SampleLoss) -> None:
        """Use ``loss_fn(prediction, target) -> float`` (per sample) instead of MSE."""
        if not callable(loss_fn):
            raise CompatTrainingError(f"loss_fn must be callable, got {loss_fn!r}.")
        self.loss_function = loss_fn
        self._loss = BatchLoss(loss_fn)

    def _method(self, model: QuantumModel) -> tuple[Any, CountingBackend]:
        key = id(model.backend)
        if key not in self._methods:
            counting = CountingBackend(model.backend)
            self._methods[key] = (core_method(self.config, counting, self._draw_seed()), counting)
        return self._methods[key]

    # -- one step -----------------------------------------------------------------------------
    def _step(self, model: QuantumModel, batch_x: Any, batch_y: Any) -> dict[str, Any]:
        cfg = self.config
        x, _ = model.check_inputs(batch_x)
        y = check_targets(batch_y, len(x), model.output_dim)
        shots = cfg.shots_per_circuit
        t0 = time.perf_counter()
        pred = model.expectations(x, shots=shots, seed=self._draw_seed())
        loss = self._loss(pred, y)
        n_circuits = len(x)
        mask = model.quantum_layer.trainable_mask
        if cfg.gradient_method == "spsa_subsampled":
            grad = self._spsa.estimate(model, x, y, self._loss, shots, mask)
            n_circuits += 2 * min(cfg.gradient_subsample_size, len(x))
        else:
            method, counting = self._method(model)
            before = counting.count
            grad = weight_vjp(method, model, x, self._loss.cotangent(pred, y), self._draw_seed())
            n_circuits += counting.count - before
        circuit_ms = (time.perf_counter() - t0) * 1000.0
        theta = model.parameters
        if cfg.weight_decay:
            grad = grad + cfg.weight_decay * theta
        grad = np.where(mask, grad, 0.0)
        norm = float(np.linalg.norm(grad))
        if cfg.use_gradient_clipping and norm > cfg.gradient_clip_value:
            grad = grad * (cfg.gradient_clip_value / norm)
            norm = cfg.gradient_clip_value
        if not np.isfinite(loss) or not np.isfinite(grad).all():
            raise CompatTrainingError(
                f"The loss or gradient is not finite (loss={loss}); lower learning_rate."
            )
        model.quantum_layer.update_parameters(self._optimizer.step(theta, grad))
        return {
            "loss": loss,
            "accuracy": _accuracy(pred, y),
            "gradient_norm": norm,
            "n_circuits": n_circuits,
            "circuit_time_ms": circuit_ms,
            "n_samples": len(x),
        }

    async def train_batch(
        self, model: QuantumModel, batch_x: npt.ArrayLike, batch_y: npt.ArrayLike
    ) -> dict[str, Any]:
        """One optimiser step on one batch; returns its metrics (loss before the step)."""
        return await asyncio.to_thread(self._step, model, batch_x, batch_y)

    # -- epochs -------------------------------------------------------------------------------
    async def train_epoch(
        self, model: QuantumModel, data_loader: Any, epoch: int = 0
    ) -> TrainingMetrics:
        """One pass over ``data_loader``; returns the epoch's :class:`TrainingMetrics`."""
        _check_model(model)
        t0 = time.perf_counter()
        rows: list[dict[str, Any]] = []
        async for batch_x, batch_y in _batches(data_loader):
            row = await self.train_batch(model, batch_x, batch_y)
            rows.append(row)
            if len(rows) % self.config.log_interval == 0:
                logger.info(
                    "Epoch %d, batch %d: loss=%.4f, gradient norm=%.4f",
                    epoch, len(rows), row["loss"], row["gradient_norm"],
                )  # fmt: skip
        if not rows:
            raise CompatTrainingError(
                f"The training loader yielded no batches in epoch {epoch}. A loader must be "
                "iterable again for every epoch (an async generator object is used up after "
                "one pass: pass an object whose __aiter__ starts over)."
            )
        weights = np.asarray([r["n_samples"] for r in rows], dtype=np.float64)
        accs = [r["accuracy"] for r in rows]
        metrics = TrainingMetrics(
            epoch=epoch,
            loss=float(np.average([r["loss"] for r in rows], weights=weights)),
            accuracy=None if None in accs else float(np.average(accs, weights=weights)),
            gradient_norm=float(np.mean([r["gradient_norm"] for r in rows])),
            learning_rate=self.config.learning_rate,
            circuit_execution_time_ms=float(np.mean([r["circuit_time_ms"] for r in rows])),
            epoch_time_ms=(time.perf_counter() - t0) * 1000.0,
            n_circuit_executions=int(sum(r["n_circuits"] for r in rows)),
        )
        self.training_history.append(metrics)
        return metrics

    async def validate(self, model: QuantumModel, val_loader: Any) -> dict[str, Any]:
        """Loss and accuracy over ``val_loader`` (no update): ``{'loss', 'accuracy', 'count'}``."""
        total, correct, count, have_acc = 0.0, 0.0, 0, True
        async for batch_x, batch_y in _batches(val_loader):
            x, _ = model.check_inputs(batch_x)
            y = check_targets(batch_y, len(x), model.output_dim)
            pred = await asyncio.to_thread(
                model.expectations, x, self.config.shots_per_circuit, self._draw_seed()
            )
            total += self._loss(pred, y) * len(x)
            acc = _accuracy(pred, y)
            have_acc = have_acc and acc is not None
            correct += (acc or 0.0) * len(x)
            count += len(x)
        if count == 0:
            raise CompatTrainingError("The validation loader yielded no batches.")
        return {
            "loss": total / count,
            "accuracy": correct / count if have_acc else None,
            "count": count,
        }

    async def train(
        self,
        model: QuantumModel,
        train_loader: Any,
        val_loader: Any = None,
        epochs: int | None = None,
    ) -> list[TrainingMetrics]:
        """Train for ``epochs`` (default ``config.epochs``); returns the epochs' metrics."""
        _check_model(model)
        n_epochs = self.config.epochs if epochs is None else epochs
        if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 1:
            raise CompatTrainingError(f"epochs must be a positive int, got {epochs!r}.")
        if self.config.uses_pinecone:
            warn_once(
                "pinecone-training-vectors",
                "QuantumTrainer: v3.5 stored training vectors in Pinecone; Q-Store 4 does not. "
                "Keep quantum states in a state store instead (qstore.core.stores.open('pinecone', "
                "...) with qstore-pinecone installed).",
                UserWarning,
            )
        logger.info(
            "Training %r for %d epochs on %s (%s, %s).",
            model, n_epochs, model.backend.name, self.config.gradient_method, self.config.optimizer,
        )  # fmt: skip
        out: list[TrainingMetrics] = []
        start = self.current_epoch
        for epoch in range(start, start + n_epochs):
            metrics = await self.train_epoch(model, train_loader, epoch)
            if val_loader is not None:
                val = await self.validate(model, val_loader)
                metrics.val_loss, metrics.val_accuracy = val["loss"], val["accuracy"]
            logger.info(
                "Epoch %d/%d: loss=%.4f, gradient norm=%.4f, %.2f s",
                epoch + 1, start + n_epochs, metrics.loss, metrics.gradient_norm,
                metrics.epoch_time_ms / 1000,
            )  # fmt: skip
            self.current_epoch = epoch + 1
            if (epoch + 1) % self.config.checkpoint_interval == 0:
                await self.save_checkpoint(model, epoch, metrics)
            out.append(metrics)
        return out

    def get_training_history(self) -> list[TrainingMetrics]:
        """Every epoch trained so far."""
        return list(self.training_history)

    # -- checkpoints (v3.5's JSON format) -----------------------------------------------------
    async def save_checkpoint(
        self, model: QuantumModel, epoch: int, metrics: TrainingMetrics
    ) -> Path:
        """Write ``checkpoint_epoch_{epoch}.json`` into ``config.checkpoint_directory``."""
        directory = Path(self.config.checkpoint_directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"checkpoint_epoch_{epoch}.json"
        data = {
            "epoch": epoch,
            "model_state": model.save_state(),
            "optimizer_state": self._optimizer.state_dict(),
            "metrics": asdict(metrics),
            "config": {
                "learning_rate": self.config.learning_rate,
                "optimizer": self.config.optimizer,
                "batch_size": self.config.batch_size,
                "gradient_method": self.config.gradient_method,
            },
        }
        await asyncio.to_thread(path.write_text, json.dumps(data, indent=2))
        logger.info("Saved checkpoint %s", path)
        return path

    async def load_checkpoint(self, checkpoint_path: str | Path, model: QuantumModel) -> None:
        """Restore the model, the optimiser and the epoch counter from a checkpoint (this
        layer's or v3.5's)."""
        try:
            data = json.loads(Path(checkpoint_path).read_text())
            model.load_state(data["model_state"])
            self._optimizer.load_state_dict(dict(data.get("optimizer_state", {})))
            self.current_epoch = int(data["epoch"]) + 1
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CompatTrainingError(
                f"Cannot load checkpoint {str(checkpoint_path)!r}: {exc}"
            ) from exc


def _check_model(model: Any) -> None:
    if not isinstance(model, QuantumModel):
        raise CompatTrainingError(
            f"QuantumTrainer trains a qstore.compat.v3_5.QuantumModel, got {type(model).__name__}."
        )
