"""The reference workload (RW) of ``PERF.md`` and how each contender runs it.

RW: ``n`` qubits, batch 32, features ``x ~ U[0, π]`` of shape ``[32, n]``; ``RY(x_i)`` on qubit
``i``, then 4 layers of ``RY(w[l,i,0])``, ``RZ(w[l,i,1])`` on every qubit and a CNOT chain; output
``⟨Z_i⟩`` for every qubit; loss = sum of outputs; the gradient is taken w.r.t. the weights. It is
exactly the circuit of ``QuantumLayer(n, depth=4)`` with ``n`` features
(:func:`qstore.core.templates.layer_circuit`).

A contender's set-up returns a :class:`Case`: a forward call and, where the contender can
differentiate, a forward + gradient call, both on fixed data (so only execution is timed). The
Q-Store backends' cases are built here (:func:`backend_case`); those of the framework layers and
the peer libraries come from the distributions that own them (:mod:`qstore.core.bench.plugins`),
which share RW's circuit and data from here: :func:`rw_circuit`, :func:`rw_data` and, for Cirq-based
peers, :func:`cirq_rw`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit
from qstore.core.templates import layer_circuit

__all__ = [
    "BATCH",
    "LAYERS",
    "Case",
    "backend_case",
    "cirq_rw",
    "rw_circuit",
    "rw_data",
]

BATCH = 32
LAYERS = 4

Call = Callable[[], object]


@dataclass(frozen=True)
class Case:
    """One contender set up for one size: ``forward()`` and (optional) ``forward_grad()``."""

    forward: Call
    forward_grad: Call | None = None


def rw_circuit(n: int, depth: int = LAYERS) -> tuple[UnifiedCircuit, list[str], list[str]]:
    """RW as a Q-Store circuit: ``(circuit, input symbols, weight symbols)``."""
    return layer_circuit(n, depth)


def rw_data(
    n: int, batch: int = BATCH, depth: int = LAYERS, seed: int = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Features ``[batch, n]`` in ``[0, π]`` and weights ``[depth, n, 2]`` in ``[0, 2π]``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, np.pi, (batch, n))
    w = rng.uniform(0.0, 2 * np.pi, (depth, n, 2))
    return x, w


# -- Q-Store ---------------------------------------------------------------------------------
def backend_case(n: int, backend: Any, batch: int = BATCH) -> Case:
    """A Q-Store backend through the backend protocol: ``expectation`` and ``vjp``.

    Uses ``value_and_vjp`` (one forward pass for both) where the backend has it.
    """
    circuit, inputs, weights = rw_circuit(n)
    x, w = rw_data(n, batch)
    shared = dict(zip(weights, (float(v) for v in w.ravel()), strict=True))
    cot = np.ones((batch, n))

    def forward() -> object:
        return backend.expectation(circuit, None, x, names=inputs, shared=shared)

    caps = backend.capabilities
    if not getattr(caps, "vjp", False):
        return Case(forward)
    if hasattr(backend, "value_and_vjp"):

        def forward_grad() -> object:
            return backend.value_and_vjp(circuit, None, x, cot, names=inputs, shared=shared)

    else:

        def forward_grad() -> object:
            forward()
            return backend.vjp(circuit, None, x, cot, names=inputs, shared=shared)

    return Case(forward, forward_grad)


# -- Cirq-based peers ------------------------------------------------------------------------
def cirq_rw(n: int, depth: int = LAYERS) -> tuple[Any, list[Any], list[Any], list[Any]]:
    """RW as a Cirq circuit with sympy symbols: ``(circuit, qubits, x symbols, w symbols)``
    (for peers that take Cirq circuits: qsimcirq, TensorFlow Quantum). Needs Cirq
    (``qstore-core[cirq]``); raises ``ImportError`` without it."""
    import cirq
    import sympy

    qubits = cirq.LineQubit.range(n)
    xs = list(sympy.symbols(f"x0:{n}"))
    ws = list(sympy.symbols(f"w0:{depth * n * 2}"))
    circuit = cirq.Circuit()
    circuit.append(cirq.ry(xs[i]).on(q) for i, q in enumerate(qubits))
    for layer in range(depth):
        for i, q in enumerate(qubits):
            k = (layer * n + i) * 2
            circuit.append([cirq.ry(ws[k]).on(q), cirq.rz(ws[k + 1]).on(q)])
        circuit.append(cirq.CNOT(qubits[i], qubits[i + 1]) for i in range(n - 1))
    return circuit, qubits, xs, ws
