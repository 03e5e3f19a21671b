"""qstore-tf's contenders in ``qstore bench`` (entry-point group ``qstore.bench``).

* ``rw`` and ``circuits``: ``qstore.tf`` ``QuantumLayer`` in ``tf.function`` with a GradientTape,
  and the peer TensorFlow Quantum (``tfq.layers.Expectation``, adjoint, float32) where it is
  installed (the ``tfq`` hatch environment);
* ``fashion-mnist``: the demo's Keras model (:mod:`qstore.tf.demos.fashion_mnist`), its classical
  twin, and the same model on TFQ.

TensorFlow's thread pools follow the run's thread setting
(:func:`qstore.core.bench.harness.thread_setting`). Nothing is imported beyond ``qstore.tf``
until a contender is set up.

>>> from qstore.tf.bench import contenders
>>> [c.name for c in contenders("rw")]
['qstore.tf QuantumLayer (tf.function)', 'tfq Expectation adjoint']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from qstore.core.bench.harness import thread_setting
from qstore.core.bench.plugins import (
    CIRCUITS,
    FASHION_MNIST,
    RW,
    Contender,
    Trained,
    TrainingContender,
)
from qstore.core.bench.workload import BATCH, LAYERS, Case, cirq_rw, rw_data
from qstore.core.demos.fashion_mnist import BATCH as FIT_BATCH
from qstore.core.demos.fashion_mnist import DEPTH, HIDDEN, N_QUBITS, Data
from qstore.tf.demos import fashion_mnist as demo

__all__ = ["contenders", "tf_layer_case", "tf_module", "tfq_case"]

KerasBlock = Callable[[Any], list[Any]]


def tf_module() -> Any:
    """``tensorflow``, with its thread pools set from the run's thread setting (possible only
    before its runtime starts; later calls leave them as they are)."""
    import tensorflow as tf

    threads = thread_setting()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:
        pass
    return tf


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


def tfq_case(n: int, batch: int = BATCH) -> Case:
    """TensorFlow Quantum ``tfq.layers.Expectation`` (adjoint) inside ``tf.function``, float32."""
    tf = tf_module()
    import cirq
    import tensorflow_quantum as tfq

    circuit, qubits, xs, ws = cirq_rw(n)
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


# -- fashion-mnist ---------------------------------------------------------------------------
def _keras() -> Any:
    tf_module()  # thread settings before the runtime starts
    return demo.keras_module()


def _fit(block: str | KerasBlock) -> Callable[[Data, int], Trained]:
    def fit(data: Data, epochs: int) -> Trained:
        keras = _keras()
        keras.utils.set_random_seed(0)
        model = demo.build_keras_model(keras, block)
        history = demo.fit_keras(model, data, epochs)
        _, acc = demo.evaluate_keras(model, data)
        return Trained(history.fit_s, acc)

    return fit


def _block_step(make_block: KerasBlock) -> Callable[[], Callable[[], object]]:
    """Forward + gradient of the quantum block alone on one batch, in ``tf.function``."""

    def setup() -> Callable[[], object]:
        keras = _keras()
        tf = tf_module()
        block = make_block(keras)
        x = tf.constant(np.random.default_rng(0).normal(size=(FIT_BATCH, HIDDEN)), dtype=tf.float32)
        h = x
        for layer in block:
            h = layer(h)
        variables = [v for layer in block for v in layer.trainable_variables]

        def step() -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                h = x
                for layer in block:
                    h = layer(h)
                loss = tf.reduce_sum(h)
            return tape.gradient(loss, [x, *variables])

        compiled = tf.function(step)
        return lambda: compiled()[0].numpy()

    return setup


def _qstore_block(keras: Any) -> list[Any]:
    return demo.quantum_block()


def _tfq_block(keras: Any) -> list[Any]:
    """``Dense(6)`` angles -> RW circuit on TFQ's adjoint expectation op, as Keras layers."""
    import cirq
    import tensorflow as tf
    import tensorflow_quantum as tfq

    circuit, qubits, xs, ws = cirq_rw(N_QUBITS, DEPTH)
    op = tfq.differentiators.Adjoint().generate_differentiable_op(
        analytic_op=tfq.get_expectation_op()
    )

    class TFQCircuit(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.program = tfq.convert_to_tensor([circuit])
            self.names = tf.constant([str(s) for s in xs + ws])
            self.ops = tfq.convert_to_tensor([[cirq.Z(q) for q in qubits]])
            self.w = self.add_weight(
                shape=(len(ws),),
                initializer=keras.initializers.RandomUniform(0.0, 2 * math.pi),
                name="weights",
            )

        def call(self, angles: Any) -> Any:
            b = tf.shape(angles)[0]
            values = tf.concat([angles, tf.tile(self.w[None, :], [b, 1])], axis=1)
            return op(tf.tile(self.program, [b]), self.names, values, tf.tile(self.ops, [b, 1]))

        def compute_output_shape(self, input_shape: Any) -> Any:
            return (input_shape[0], N_QUBITS)

    return [keras.layers.Dense(N_QUBITS), TFQCircuit()]


def contenders(case: str) -> Sequence[Contender | TrainingContender]:
    """What qstore-tf contributes to ``case`` (see :mod:`qstore.core.bench.plugins`)."""
    layer = "qstore.tf QuantumLayer (tf.function)"
    if case == RW:
        return [
            Contender(layer, "qstore", tf_layer_case),
            Contender("tfq Expectation adjoint", "peer", tfq_case),
        ]
    if case == CIRCUITS:
        return [
            Contender(layer, "qstore", tf_layer_case),
            Contender("tfq Expectation", "peer", tfq_case),
        ]
    if case == FASHION_MNIST:
        return [
            TrainingContender("classical Dense(6, tanh)", "keras", "baseline", _fit("classical")),
            TrainingContender(
                "qstore.tf quantum", "keras", "qstore", _fit("quantum"), _block_step(_qstore_block)
            ),
            TrainingContender(
                "tfq quantum", "keras", "peer", _fit(_tfq_block), _block_step(_tfq_block)
            ),
        ]
    return []
