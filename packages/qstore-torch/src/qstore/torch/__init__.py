"""``qstore.torch``: quantum layers for PyTorch.

>>> import torch
>>> from torch import nn
>>> import qstore.torch as qs_torch
>>> model = nn.Sequential(qs_torch.QuantumLayer(n_qubits=4, depth=2), nn.Linear(4, 2))
>>> loss = model(torch.rand(8, 4)).sum()
>>> loss.backward()

- :class:`QuantumLayer`: encoding + trainable layers + expectations, ``[batch, F] -> [batch, n]``.
- :class:`CircuitLayer`: any ``qstore.core.UnifiedCircuit`` with named input and weight symbols.
- :class:`AmplitudeEncoding` / :class:`ExpectationValue`: features to quantum states, and quantum
  states to expectations (quantum state in, quantum state out).
- :class:`PyTorchDistributedTrainer` / :class:`DistributedConfig`: DistributedDataParallel
  training under ``torchrun``.

The default ``backend='torch'`` runs the core's engine on torch tensors (autograd, devices,
``torch.compile``); any other Q-Store backend runs through a custom autograd function.
"""

from __future__ import annotations

from qstore.torch.autograd import BackendExpectation, BackendUnitary
from qstore.torch.distributed import DistributedConfig, PyTorchDistributedTrainer
from qstore.torch.encoding import (
    AmplitudeEncoding,
    LayerConfigError,
    LayerInputError,
    amplitude_encode,
)
from qstore.torch.layers import (
    CircuitLayer,
    ExpectationValue,
    LayerBindings,
    QuantumLayer,
)

__version__ = "4.0.0a1"

__all__ = [
    "AmplitudeEncoding",
    "BackendExpectation",
    "BackendUnitary",
    "CircuitLayer",
    "DistributedConfig",
    "ExpectationValue",
    "LayerBindings",
    "LayerConfigError",
    "LayerInputError",
    "PyTorchDistributedTrainer",
    "QuantumLayer",
    "__version__",
    "amplitude_encode",
]
