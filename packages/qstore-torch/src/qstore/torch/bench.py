"""qstore-torch's contenders in ``qstore bench`` (entry-point group ``qstore.bench``).

* ``rw`` and ``circuits``: ``qstore.torch.QuantumLayer`` (eager forward, ``loss.backward()``);
* ``fashion-mnist``: the demo's PyTorch model (:mod:`qstore.torch.demos.fashion_mnist`) and its
  classical twin.

torch's thread pool follows the run's thread setting
(:func:`qstore.core.bench.harness.thread_setting`).

>>> from qstore.torch.bench import contenders
>>> [c.name for c in contenders("rw")]
['qstore.torch QuantumLayer']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from qstore.core.bench.harness import thread_setting
from qstore.core.bench.plugins import (
    CIRCUITS,
    FASHION_MNIST,
    RW,
    Contender,
    Trained,
    TrainingContender,
)
from qstore.core.bench.workload import BATCH, LAYERS, Case, rw_data
from qstore.core.demos.fashion_mnist import BATCH as FIT_BATCH
from qstore.core.demos.fashion_mnist import HIDDEN, Block, Data
from qstore.torch import QuantumLayer
from qstore.torch.demos import fashion_mnist as demo

__all__ = ["contenders", "set_threads", "torch_layer_case", "torch_steps"]


def set_threads() -> None:
    """Set torch's thread pool to the run's thread setting."""
    threads = thread_setting()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def torch_steps(module: nn.Module, x: torch.Tensor) -> Case:
    """A module's forward (``no_grad``) and forward + ``loss.backward()`` on ``x``, with
    ``loss = module(x).sum()``."""
    set_threads()

    def forward() -> object:
        with torch.no_grad():
            return module(x).sum()

    def forward_grad() -> object:
        module.zero_grad(set_to_none=True)
        loss = module(x).sum()
        loss.backward()
        return loss

    return Case(forward, forward_grad)


def torch_layer_case(n: int, batch: int = BATCH) -> Case:
    """``qstore.torch.QuantumLayer(n, depth=4)``: eager forward, ``loss.backward()``."""
    set_threads()
    layer = QuantumLayer(n_qubits=n, depth=LAYERS)
    x, _ = rw_data(n, batch)
    return torch_steps(layer, torch.tensor(x, dtype=torch.float32))


def _fit(block: Block) -> Callable[[Data, int], Trained]:
    def fit(data: Data, epochs: int) -> Trained:
        set_threads()
        torch.manual_seed(0)
        model = demo.build_torch_model(block)
        history = demo.fit_torch(model, data, epochs)
        _, acc = demo.evaluate_torch(model, data)
        return Trained(history.fit_s, acc)

    return fit


def _block_step() -> Callable[[], object]:
    """Forward + gradient of the quantum block alone on one batch."""
    set_threads()
    block = nn.Sequential(*demo.quantum_block())
    x = torch.randn(FIT_BATCH, HIDDEN, requires_grad=True)

    def step() -> object:
        block.zero_grad(set_to_none=True)
        x.grad = None
        loss = block(x).sum()
        loss.backward()
        return loss

    return step


def contenders(case: str) -> Sequence[Contender | TrainingContender]:
    """What qstore-torch contributes to ``case`` (see :mod:`qstore.core.bench.plugins`)."""
    if case in (RW, CIRCUITS):
        return [Contender("qstore.torch QuantumLayer", "qstore", torch_layer_case)]
    if case == FASHION_MNIST:
        return [
            TrainingContender(
                "classical Linear(6) + tanh", "pytorch", "baseline", _fit("classical")
            ),
            TrainingContender(
                "qstore.torch quantum", "pytorch", "qstore", _fit("quantum"), _block_step
            ),
        ]
    return []
