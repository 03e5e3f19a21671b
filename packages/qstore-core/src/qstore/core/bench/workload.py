"""The reference workload (RW) of ``PERF.md`` and how each contender runs it.

RW: ``n`` qubits, batch 32, features ``x ~ U[0, π]`` of shape ``[32, n]``; ``RY(x_i)`` on qubit
``i``, then 4 layers of ``RY(w[l,i,0])``, ``RZ(w[l,i,1])`` on every qubit and a CNOT chain; output
``⟨Z_i⟩`` for every qubit; loss = sum of outputs; the gradient is taken w.r.t. the weights. It is
exactly the circuit of ``QuantumLayer(n, depth=4)`` with ``n`` features
(:func:`qstore.core.templates.layer_circuit`).

Every ``*_case`` function here returns a :class:`Case`: a forward call and, where the contender
can differentiate, a forward + gradient call, both on fixed data (so only execution is timed).
They raise ``ImportError`` (or :class:`~qstore.core.bench.runner.UnavailableError`) when their
library is missing. Third-party libraries are imported inside the functions, never at module import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.bench.harness import thread_setting
from qstore.core.circuit import UnifiedCircuit
from qstore.core.templates import layer_circuit

__all__ = [
    "BATCH",
    "LAYERS",
    "Case",
    "backend_case",
    "cirq_rw",
    "pennylane_default_case",
    "pennylane_lightning_case",
    "pennylane_rw_circuit",
    "qsim_case",
    "rw_circuit",
    "rw_data",
    "tf_layer_case",
    "tf_module",
    "tfq_case",
    "torch_layer_case",
    "torch_module",
    "torch_steps",
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


def torch_module() -> Any:
    """``torch``, with its thread pool set to :func:`~.harness.thread_setting`."""
    import torch

    threads = thread_setting()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch


def tf_module() -> Any:
    """``tensorflow``, with its thread pools set from :func:`~.harness.thread_setting`."""
    import tensorflow as tf

    threads = thread_setting()
    try:  # only possible before TensorFlow's runtime starts
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:
        pass
    return tf


def torch_layer_case(n: int, batch: int = BATCH) -> Case:
    """``qstore.torch.QuantumLayer(n, depth=4)``: eager forward, ``loss.backward()``."""
    torch = torch_module()
    import qstore.torch as qs_torch

    layer = qs_torch.QuantumLayer(n_qubits=n, depth=LAYERS)
    x, _ = rw_data(n, batch)
    return torch_steps(layer, torch.tensor(x, dtype=torch.float32))


def torch_steps(module: Any, x: Any) -> Case:
    """A torch module's forward (``no_grad``) and forward + ``loss.backward()`` on ``x``, with
    ``loss = module(x).sum()``."""
    torch = torch_module()

    def forward() -> object:
        with torch.no_grad():
            return module(x).sum()

    def forward_grad() -> object:
        module.zero_grad(set_to_none=True)
        loss = module(x).sum()
        loss.backward()
        return loss

    return Case(forward, forward_grad)


def tf_layer_case(n: int, batch: int = BATCH) -> Case:
    """``qstore.tf.layers.QuantumLayer(n, depth=4)`` in ``tf.function`` with a GradientTape."""
    tf = tf_module()
    from qstore.tf.layers import QuantumLayer

    layer = QuantumLayer(n_qubits=n, depth=LAYERS)
    x, _ = rw_data(n, batch)
    xt = tf.constant(x, dtype=tf.float32)
    layer(xt)  # build the weights

    def fwd() -> Any:
        return tf.reduce_sum(layer(xt))

    def fwd_grad() -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(xt))
        return loss, tape.gradient(loss, layer.trainable_variables)

    forward, forward_grad = tf.function(fwd), tf.function(fwd_grad)

    return Case(lambda: forward().numpy(), lambda: forward_grad()[0].numpy())


# -- peers -----------------------------------------------------------------------------------
def pennylane_rw_circuit(qml: Any, n: int) -> Callable[[Any, Any], Any]:
    """RW as a PennyLane quantum function ``(weights [4, n, 2], inputs [B, n]) -> <Z_i>``
    (arguments named as ``qml.qnn.TorchLayer`` expects them)."""

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
    qnode = qml.qnode(dev, diff_method="adjoint", device_vjp=device_vjp)(
        pennylane_rw_circuit(qml, n)
    )

    def loss(weights: Any) -> Any:
        return pnp.sum(pnp.stack(qnode(weights, xs)))

    grad = qml.grad(loss)
    return Case(lambda: loss(w), lambda: grad(w))


def pennylane_default_case(n: int, batch: int = BATCH) -> Case:
    """PennyLane ``default.qubit`` with torch backpropagation, broadcasting over the batch."""
    torch = torch_module()
    import pennylane as qml

    dev = qml.device("default.qubit", wires=n)
    x, w0 = rw_data(n, batch)
    xt = torch.tensor(x)
    w = torch.tensor(w0, requires_grad=True)
    qnode = qml.qnode(dev, interface="torch", diff_method="backprop")(pennylane_rw_circuit(qml, n))

    def forward() -> object:
        with torch.no_grad():
            return torch.stack(qnode(w, xt)).sum()

    def forward_grad() -> object:
        w.grad = None
        loss = torch.stack(qnode(w, xt)).sum()
        loss.backward()
        return w.grad

    return Case(forward, forward_grad)


def cirq_rw(
    cirq: Any, sympy: Any, n: int, depth: int = LAYERS
) -> tuple[Any, list[Any], list[Any], list[Any]]:
    """RW as a Cirq circuit with sympy symbols: ``(circuit, qubits, x symbols, w symbols)``."""
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


def qsim_case(n: int, batch: int = BATCH, one_at_a_time: bool = False) -> Case:
    """qsimcirq: one ``simulate_expectation_values_sweep`` over the batch's bindings.

    With ``one_at_a_time``, every binding is resolved into its own circuit and simulated alone.
    Forward only (qsim has no gradients). The resolvers are built inside the timed call, as a
    training step would have to.
    """
    import cirq
    import sympy

    qsimcirq = import_module("qsimcirq")

    circuit, qubits, xs, ws = cirq_rw(cirq, sympy, n)
    sim = qsimcirq.QSimSimulator(qsimcirq.QSimOptions(cpu_threads=thread_setting()))
    observables = [cirq.Z(q) for q in qubits]
    x, w = rw_data(n, batch)
    names = [str(s) for s in xs + ws]
    wflat = [float(v) for v in w.ravel()]

    def resolvers() -> list[Any]:
        return [
            cirq.ParamResolver(dict(zip(names, [*map(float, row), *wflat], strict=True)))
            for row in x
        ]

    if one_at_a_time:

        def forward() -> object:
            return [
                sim.simulate_expectation_values(cirq.resolve_parameters(circuit, r), observables)
                for r in resolvers()
            ]

    else:

        def forward() -> object:
            return sim.simulate_expectation_values_sweep(circuit, observables, resolvers())

    return Case(forward)


def tfq_case(n: int, batch: int = BATCH) -> Case:
    """TensorFlow Quantum ``tfq.layers.Expectation`` (adjoint) inside ``tf.function``, float32."""
    tf = tf_module()
    import cirq
    import sympy
    import tensorflow_quantum as tfq

    circuit, qubits, xs, ws = cirq_rw(cirq, sympy, n)
    layer = tfq.layers.Expectation(differentiator=tfq.differentiators.Adjoint())
    programs = tfq.convert_to_tensor([circuit] * batch)
    names = tf.constant([str(s) for s in xs + ws])
    operators = tfq.convert_to_tensor([[cirq.Z(q) for q in qubits]] * batch)
    x0, w0 = rw_data(n, batch)
    x = tf.constant(x0, dtype=tf.float32)
    w = tf.Variable(w0.ravel(), dtype=tf.float32)

    def loss() -> Any:
        values = tf.concat([x, tf.tile(w[None, :], [batch, 1])], axis=1)
        out = layer(programs, symbol_names=names, symbol_values=values, operators=operators)
        return tf.reduce_sum(out)

    def fwd_grad() -> Any:
        with tf.GradientTape() as tape:
            value = loss()
        return value, tape.gradient(value, w)

    forward, forward_grad = tf.function(loss), tf.function(fwd_grad)

    return Case(lambda: forward().numpy(), lambda: forward_grad()[1].numpy())
