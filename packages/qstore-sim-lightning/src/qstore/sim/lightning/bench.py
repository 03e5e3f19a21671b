"""qstore-sim-lightning's contenders in ``qstore bench`` (entry-point group ``qstore.bench``):
the peer PennyLane on its own, running RW as a QNode that broadcasts over the batch.

* ``rw``: ``lightning.qubit`` with adjoint differentiation, with and without ``device_vjp``, and
  ``default.qubit`` with torch backpropagation (when torch is installed; up to n = 16);
* ``circuits``: ``lightning.qubit``, forward only.

The backends ``lightning`` (Lightning behind Q-Store's backend protocol) are measured by
qstore-core with every other installed backend. PennyLane is imported when a contender is set up.

>>> from qstore.sim.lightning.bench import contenders
>>> [c.name for c in contenders("circuits")]
['pennylane lightning.qubit']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qstore.core.bench.harness import thread_setting
from qstore.core.bench.plugins import CIRCUITS, RW, Contender
from qstore.core.bench.workload import BATCH, LAYERS, Case, rw_data

__all__ = [
    "contenders",
    "pennylane_default_case",
    "pennylane_lightning_case",
    "pennylane_rw_circuit",
]


def pennylane_rw_circuit(n: int) -> Callable[[Any, Any], Any]:
    """RW as a PennyLane quantum function ``(weights [4, n, 2], inputs [B, n]) -> <Z_i>``
    (arguments named as ``qml.qnn.TorchLayer`` expects them)."""
    import pennylane as qml

    def circuit(weights: Any, inputs: Any) -> Any:
        for i in range(n):
            qml.RY(inputs[..., i], wires=i)
        for layer in range(LAYERS):
            for i in range(n):
                qml.RY(weights[layer, i, 0], wires=i)
                qml.RZ(weights[layer, i, 1], wires=i)
            for i in range(n - 1):
                qml.CNOT(wires=[i, i + 1])
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    return circuit


def pennylane_lightning_case(n: int, device_vjp: bool, batch: int = BATCH) -> Case:
    """PennyLane ``lightning.qubit``, adjoint differentiation, broadcasting over the batch."""
    import pennylane as qml
    from pennylane import numpy as pnp

    dev = qml.device("lightning.qubit", wires=n)
    x, w0 = rw_data(n, batch)
    xs = pnp.array(x, requires_grad=False)
    w = pnp.array(w0, requires_grad=True)
    qnode = qml.qnode(dev, diff_method="adjoint", device_vjp=device_vjp)(pennylane_rw_circuit(n))

    def loss(weights: Any) -> Any:
        return pnp.sum(pnp.stack(qnode(weights, xs)))

    grad = qml.grad(loss)
    return Case(lambda: loss(w), lambda: grad(w))


def pennylane_default_case(n: int, batch: int = BATCH) -> Case:
    """PennyLane ``default.qubit`` with torch backpropagation, broadcasting over the batch
    (torch's thread pool set to the run's thread setting). Needs torch."""
    import pennylane as qml
    import torch

    threads = thread_setting()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    dev = qml.device("default.qubit", wires=n)
    x, w0 = rw_data(n, batch)
    xt = torch.tensor(x)
    w = torch.tensor(w0, requires_grad=True)
    qnode = qml.qnode(dev, interface="torch", diff_method="backprop")(pennylane_rw_circuit(n))

    def forward() -> object:
        with torch.no_grad():
            return torch.stack(qnode(w, xt)).sum()

    def forward_grad() -> object:
        w.grad = None
        loss = torch.stack(qnode(w, xt)).sum()
        loss.backward()
        return w.grad

    return Case(forward, forward_grad)


def contenders(case: str) -> Sequence[Contender]:
    """What qstore-sim-lightning contributes to ``case`` (see :mod:`qstore.core.bench.plugins`)."""
    if case == RW:
        return [
            Contender(
                "pennylane lightning.qubit adjoint",
                "peer",
                lambda n: pennylane_lightning_case(n, device_vjp=False),
            ),
            Contender(
                "pennylane lightning.qubit adjoint device_vjp",
                "peer",
                lambda n: pennylane_lightning_case(n, device_vjp=True),
            ),
            Contender(
                "pennylane default.qubit torch backprop",
                "peer",
                pennylane_default_case,
                max_n=16,
                why_max="backprop keeps every intermediate state: tens of GB at n = 20",
            ),
        ]
    if case == CIRCUITS:
        return [
            Contender(
                "pennylane lightning.qubit",
                "peer",
                lambda n: pennylane_lightning_case(n, device_vjp=False),
            )
        ]
    return []
