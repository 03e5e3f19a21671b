"""The PyTorch side of ``qstore demo fashion-mnist --framework torch``.

The demo itself (data, options, plot, summary) is :mod:`qstore.core.demos.fashion_mnist`; it
finds :class:`TorchTrainer` through the entry-point group ``qstore.demos``. The functions here
are also what the ``fashion-mnist`` benchmark suite times (:mod:`qstore.torch.bench`).

>>> import torch
>>> from qstore.torch.demos.fashion_mnist import build_torch_model
>>> build_torch_model("classical")(torch.zeros(2, 64)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from qstore.core.demos.fashion_mnist import (
    BATCH,
    DEPTH,
    EPOCHS,
    FEATURES,
    HIDDEN,
    LEARNING_RATE,
    N_QUBITS,
    VALIDATION_SPLIT,
    Block,
    Data,
    FitSettings,
    History,
    z_observables,
)
from qstore.core.errors import QStoreError
from qstore.torch import AmplitudeEncoding, ExpectationValue, QuantumLayer

__all__ = [
    "TorchTrainer",
    "build_torch_model",
    "evaluate_torch",
    "fit_torch",
    "quantum_block",
]

_SCORE_BATCH = 1024


def quantum_block() -> list[nn.Module]:
    """``AmplitudeEncoding(6) -> QuantumLayer(6, depth=4) -> ExpectationValue(Z x 6)``."""
    return [
        AmplitudeEncoding(n_qubits=N_QUBITS),
        QuantumLayer(n_qubits=N_QUBITS, depth=DEPTH),
        ExpectationValue(observables=z_observables()),
    ]


def build_torch_model(block: Block = "quantum") -> nn.Sequential:
    """The demo model as a ``torch.nn.Sequential`` returning logits (the softmax is in the loss,
    ``CrossEntropyLoss``, as usual in PyTorch). ``block``: ``"quantum"`` or ``"classical"``
    (the classical twin, ``Linear(32, 6)`` and ``tanh``)."""
    middle: list[nn.Module]
    if block == "quantum":
        middle = quantum_block()
    elif block == "classical":
        middle = [nn.Linear(HIDDEN, N_QUBITS), nn.Tanh()]
    else:
        raise QStoreError(f"block must be 'quantum' or 'classical', got {block!r}")
    return nn.Sequential(
        nn.Linear(FEATURES, HIDDEN),
        nn.ReLU(),
        *middle,
        nn.Linear(N_QUBITS, 128),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(128, 10),
    )


def _score(
    model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float]:
    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), _SCORE_BATCH):
            logits = model(x[i : i + _SCORE_BATCH])
            total += float(loss_fn(logits, y[i : i + _SCORE_BATCH])) * len(logits)
            correct += int((logits.argmax(dim=1) == y[i : i + _SCORE_BATCH]).sum())
    return total / len(x), correct / len(x)


def fit_torch(
    model: nn.Module,
    data: Data,
    epochs: int = EPOCHS,
    batch_size: int = BATCH,
    validation_split: float = VALIDATION_SPLIT,
    progress: bool = False,
    seed: int = 0,
    learning_rate: float = LEARNING_RATE,
) -> History:
    """Train ``model`` with Adam on shuffled batches; validate on the held-out rows each epoch.
    ``progress``: a tqdm bar per epoch on standard error."""
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    n_fit = data.split(validation_split)
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    x_fit, y_fit, x_val, y_val = x[:n_fit], y[:n_fit], x[n_fit:], y[n_fit:]
    gen = torch.Generator().manual_seed(seed)
    history = History()
    steps = math.ceil(n_fit / batch_size)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n_fit, generator=gen)
        total_loss = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        bar = tqdm(
            range(steps),
            desc=f"Epoch {epoch + 1}/{epochs}",
            unit="batch",
            disable=not progress,
            file=sys.stderr,
            leave=True,
            dynamic_ncols=True,
        )
        for step in bar:
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = x_fit[idx], y_fit[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                total_loss += loss.detach() * len(idx)
                correct += (logits.argmax(dim=1) == yb).sum()
            if progress and (step % 50 == 0 or step == steps - 1):
                seen = min((step + 1) * batch_size, n_fit)
                bar.set_postfix(
                    loss=f"{float(total_loss) / seen:.4f}",
                    acc=f"{float(correct) / seen:.4f}",
                    refresh=False,
                )
        history.loss.append(float(total_loss) / n_fit)
        history.accuracy.append(float(correct) / n_fit)
        if len(x_val):
            val_loss, val_acc = _score(model, loss_fn, x_val, y_val)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
        history.epoch_s.append(time.perf_counter() - t0)
        if progress and history.val_loss:
            bar.write(
                f"  val_loss {history.val_loss[-1]:.4f}, val_accuracy "
                f"{history.val_accuracy[-1]:.4f}",
                file=sys.stderr,
            )
        bar.close()
    return history


def evaluate_torch(model: nn.Module, data: Data) -> tuple[float, float]:
    """Test loss and accuracy."""
    x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    return _score(model, nn.CrossEntropyLoss(), x, y)


class TorchTrainer:
    """:class:`qstore.core.demos.fashion_mnist.Trainer` for PyTorch (entry point ``torch`` of
    the group ``qstore.demos``)."""

    model_file = "model.pt"

    def build(self, block: Block = "quantum", seed: int = 0) -> nn.Sequential:
        """The demo model, after ``torch.manual_seed(seed)``."""
        torch.manual_seed(seed)
        return build_torch_model(block)

    def fit(self, model: nn.Module, data: Data, settings: FitSettings) -> History:
        """The training loop of :func:`fit_torch`."""
        return fit_torch(
            model,
            data,
            settings.epochs,
            settings.batch_size,
            settings.validation_split,
            settings.progress,
            settings.seed,
            settings.learning_rate,
        )

    def evaluate(self, model: nn.Module, data: Data) -> tuple[float, float]:
        """Test loss and accuracy."""
        return evaluate_torch(model, data)

    def save(self, model: nn.Module, path: Path) -> None:
        """``torch.save(model.state_dict(), path)``; reload into :func:`build_torch_model`'s
        model with ``load_state_dict``."""
        torch.save(model.state_dict(), path)
