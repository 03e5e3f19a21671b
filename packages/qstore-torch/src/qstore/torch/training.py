"""The PyTorch side of ``qstore.QuantumModel`` (entry point ``qstore.frameworks: pytorch``).

:class:`TorchFramework` builds ``QuantumLayer(n_qubits, depth) -> nn.Linear(n_qubits,
n_outputs)`` on the backends the core routes to (metered backend objects), trains it one step
at a time with Adam, and evaluates a twin whose quantum layer runs on the validation backend
and shares the weights (the same ``nn.Parameter`` and the same head). ``fit_distributed``
trains an epoch on :class:`~qstore.torch.PyTorchDistributedTrainer` (DDP under ``torchrun``).

>>> import numpy as np, qstore.core as qc
>>> from qstore.core.training import ModelSpec
>>> fw = TorchFramework()
>>> spec = ModelSpec(2, 2, "classification", 2, 1, 0.1, "parameter_shift", seed=0)
>>> local = qc.backends.get("local")
>>> model = fw.build(spec, local, local)
>>> stats = fw.train_step(model, np.array([[0.1, 0.2], [1.0, 2.0]]), np.array([0, 1]))
>>> stats.n_samples, stats.n_params
(2, 4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from qstore.core.training import EvalStats, ModelSpec, StepStats
from qstore.torch.distributed import DistributedConfig, PyTorchDistributedTrainer
from qstore.torch.layers import QuantumLayer

__all__ = ["TorchFramework", "TorchModel"]

FloatArray = npt.NDArray[np.float64]


@dataclass
class TorchModel:
    """The model handle: the training network, its evaluation twin, the optimizer."""

    spec: ModelSpec
    quantum: QuantumLayer
    head: nn.Linear
    train_net: nn.Sequential
    eval_net: nn.Sequential
    optimizer: torch.optim.Optimizer
    trainer: PyTorchDistributedTrainer | None = None


def _layer(spec: ModelSpec, backend: Any) -> QuantumLayer:
    return QuantumLayer(
        spec.n_qubits, spec.depth, backend=backend, gradient_method=spec.gradient_method
    )


class TorchFramework:
    """Implements :class:`qstore.core.training.Framework` with ``qstore.torch`` layers."""

    name = "pytorch"

    def build(
        self, spec: ModelSpec, train_backend: Any, eval_backend: Any, previous: Any = None
    ) -> TorchModel:
        """The network on ``train_backend`` and its twin on ``eval_backend`` (shared weights);
        weights carried over from ``previous`` (new layers start at zero angles)."""
        if spec.seed is not None:
            torch.manual_seed(spec.seed)
        quantum = _layer(spec, train_backend)
        head = nn.Linear(spec.n_qubits, spec.n_outputs)
        if isinstance(previous, TorchModel):
            with torch.no_grad():
                old = previous.quantum.weights
                keep = min(old.shape[0], spec.depth)
                quantum.weights.zero_()
                quantum.weights[:keep] = old[:keep]
            head.load_state_dict(previous.head.state_dict())
        twin = _layer(spec, eval_backend)
        twin.weights = quantum.weights  # one Parameter: the twin always has the current weights
        train_net = nn.Sequential(quantum, head)
        eval_net = nn.Sequential(twin, head)
        optimizer = torch.optim.Adam(train_net.parameters(), lr=spec.learning_rate)
        return TorchModel(spec, quantum, head, train_net, eval_net, optimizer)

    @staticmethod
    def _loss(spec: ModelSpec, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if spec.task == "classification":
            return nn.functional.cross_entropy(out, y)
        return nn.functional.mse_loss(out, y.reshape(out.shape))

    @staticmethod
    def _targets(spec: ModelSpec, y: npt.NDArray[Any]) -> torch.Tensor:
        if spec.task == "classification":
            return torch.as_tensor(np.asarray(y, dtype=np.int64))
        return torch.as_tensor(np.asarray(y, dtype=np.float32))

    def train_step(self, model: TorchModel, x: FloatArray, y: npt.NDArray[Any]) -> StepStats:
        """One Adam step; reports the statistics adaptive shot allocation needs."""
        spec = model.spec
        model.train_net.train()
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
        yt = self._targets(spec, y)
        expectations = model.quantum(xt)
        expectations.retain_grad()
        out = model.head(expectations)
        loss = self._loss(spec, out, yt)
        model.optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        model.optimizer.step()
        grad = model.quantum.weights.grad
        grad_sq = float((grad.double() ** 2).sum()) if grad is not None else math.nan
        cot = expectations.grad
        cot_sq = float((cot.double().abs().sum(dim=1) ** 2).sum()) if cot is not None else math.nan
        correct = None
        if spec.task == "classification":
            correct = int((out.argmax(dim=1) == yt).sum())
        return StepStats(
            float(loss.detach()),
            int(xt.shape[0]),
            correct,
            grad_sq,
            cot_sq,
            int(model.quantum.weights.numel()),
        )

    def evaluate(
        self, model: TorchModel, x: FloatArray, y: npt.NDArray[Any], batch_size: int
    ) -> EvalStats:
        """Mean loss (and accuracy) of the twin on the evaluation backend."""
        spec = model.spec
        total = 0.0
        correct = 0
        model.eval_net.eval()
        with torch.no_grad():
            for lo in range(0, x.shape[0], batch_size):
                xt = torch.as_tensor(np.asarray(x[lo : lo + batch_size], dtype=np.float32))
                yt = self._targets(spec, y[lo : lo + batch_size])
                out = model.eval_net(xt)
                total += float(self._loss(spec, out, yt)) * xt.shape[0]
                if spec.task == "classification":
                    correct += int((out.argmax(dim=1) == yt).sum())
        n = int(x.shape[0])
        acc = correct / n if spec.task == "classification" else None
        return EvalStats(total / n, acc, n)

    def predict(self, model: TorchModel, x: FloatArray, batch_size: int) -> FloatArray:
        """Outputs of the twin (logits or values) as a NumPy array."""
        model.eval_net.eval()
        outs = []
        with torch.no_grad():
            for lo in range(0, x.shape[0], batch_size):
                xt = torch.as_tensor(np.asarray(x[lo : lo + batch_size], dtype=np.float32))
                outs.append(model.eval_net(xt).double().numpy())
        return np.concatenate(outs, axis=0)

    def fit_distributed(
        self, model: TorchModel, x: FloatArray, y: npt.NDArray[Any], batch_size: int
    ) -> EvalStats:
        """One epoch under DistributedDataParallel (``torchrun``; one process without it)."""
        spec = model.spec
        if model.trainer is None:
            loss = "cross_entropy" if spec.task == "classification" else "mse"
            config = DistributedConfig(
                learning_rate=spec.learning_rate, loss=loss, progress=False, seed=spec.seed
            )
            model.trainer = PyTorchDistributedTrainer(config)
        data = TensorDataset(
            torch.as_tensor(np.asarray(x, dtype=np.float32)), self._targets(spec, y)
        )
        loader = DataLoader(data, batch_size=batch_size, shuffle=True)
        history = model.trainer.train(model.train_net, loader, epochs=1)
        acc = history.get("accuracy")
        return EvalStats(history["loss"][-1], acc[-1] if acc else None, int(x.shape[0]))

    def to_arrays(self, data: Any) -> tuple[FloatArray, npt.NDArray[Any]] | None:
        """``(x, y)`` from a torch ``Dataset`` or ``DataLoader`` of ``(features, target)``."""
        if isinstance(data, DataLoader):
            xs, ys = [], []
            for xb, yb in data:
                xs.append(np.asarray(xb))
                ys.append(np.asarray(yb))
            return np.concatenate(xs).astype(np.float64), np.concatenate(ys)
        if isinstance(data, Dataset):
            pairs = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
            x = np.stack([np.asarray(p[0]) for p in pairs]).astype(np.float64)
            return x, np.stack([np.asarray(p[1]) for p in pairs])
        return None
