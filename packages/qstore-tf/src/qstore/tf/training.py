"""The Keras side of ``qstore.QuantumModel`` (entry point ``qstore.frameworks: tensorflow``).

:class:`KerasFramework` builds ``QuantumLayer(n_qubits, depth) -> Dense(n_outputs)`` on the
backends the core routes to (metered backend objects), trains it one step at a time with
``tf.GradientTape`` and Adam, and evaluates a twin quantum layer on the validation backend that
is given the current weights before each evaluation (the ``Dense`` head is the same layer).
``fit_distributed`` trains an epoch on :class:`~qstore.tf.distributed.TensorFlowDistributedTrainer`
(``MultiWorkerMirroredStrategy``, ``TF_CONFIG``).

>>> import numpy as np, qstore.core as qc
>>> from qstore.core.training import ModelSpec
>>> fw = KerasFramework()
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

import keras
import numpy as np
import numpy.typing as npt
import tensorflow as tf

from qstore.core.training import EvalStats, ModelSpec, StepStats
from qstore.tf.distributed import DistributedConfig, TensorFlowDistributedTrainer
from qstore.tf.layers import QuantumLayer

__all__ = ["KerasFramework", "KerasModel"]

FloatArray = npt.NDArray[np.float64]
_TWO_PI = 2.0 * math.pi


@dataclass
class KerasModel:
    """The model handle: the quantum layer, its evaluation twin, the head, the optimizer."""

    spec: ModelSpec
    quantum: QuantumLayer
    twin: QuantumLayer
    head: keras.layers.Dense
    optimizer: keras.optimizers.Optimizer
    train_backend: Any
    trainer: TensorFlowDistributedTrainer | None = None

    def outputs(self, x: tf.Tensor, *, evaluate: bool = False) -> tf.Tensor:
        layer = self.twin if evaluate else self.quantum
        return self.head(layer(x))


def _layer(spec: ModelSpec, backend: Any) -> QuantumLayer:
    init = keras.initializers.RandomUniform(0.0, _TWO_PI, seed=spec.seed)
    layer = QuantumLayer(
        spec.n_qubits,
        depth=spec.depth,
        backend=backend,
        gradient_method=spec.gradient_method,
        weights_initializer=init,
    )
    layer.build((None, spec.n_features))
    return layer


def _head(spec: ModelSpec) -> keras.layers.Dense:
    head = keras.layers.Dense(
        spec.n_outputs, kernel_initializer=keras.initializers.GlorotUniform(seed=spec.seed)
    )
    head.build((None, spec.n_qubits))
    return head


class KerasFramework:
    """Implements :class:`qstore.core.training.Framework` with ``qstore.tf`` layers."""

    name = "tensorflow"

    def build(
        self, spec: ModelSpec, train_backend: Any, eval_backend: Any, previous: Any = None
    ) -> KerasModel:
        """Layers on ``train_backend`` and a twin on ``eval_backend``; weights carried over from
        ``previous`` (new layers start at zero angles)."""
        quantum = _layer(spec, train_backend)
        head = _head(spec)
        if isinstance(previous, KerasModel):
            old = previous.quantum.kernel.numpy()
            new = np.zeros(tuple(quantum.kernel.shape), dtype=old.dtype)
            keep = min(old.shape[0], spec.depth)
            new[:keep] = old[:keep]
            quantum.kernel.assign(new)
            head.set_weights(previous.head.get_weights())
        twin = _layer(spec, eval_backend)
        optimizer = keras.optimizers.Adam(learning_rate=spec.learning_rate)
        return KerasModel(spec, quantum, twin, head, optimizer, train_backend)

    @staticmethod
    def _loss(spec: ModelSpec, out: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        if spec.task == "classification":
            return tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(y, out, from_logits=True)
            )
        return tf.reduce_mean(tf.square(out - tf.reshape(y, tf.shape(out))))

    @staticmethod
    def _targets(spec: ModelSpec, y: npt.NDArray[Any]) -> tf.Tensor:
        if spec.task == "classification":
            return tf.constant(np.asarray(y, dtype=np.int64))
        return tf.constant(np.asarray(y, dtype=np.float32))

    def train_step(self, model: KerasModel, x: FloatArray, y: npt.NDArray[Any]) -> StepStats:
        """One Adam step; reports the statistics adaptive shot allocation needs."""
        spec = model.spec
        xt = tf.constant(np.asarray(x, dtype=np.float32))
        yt = self._targets(spec, y)
        weights = [*model.quantum.trainable_weights, *model.head.trainable_weights]
        with tf.GradientTape() as tape:
            expectations = model.quantum(xt)
            out = model.head(expectations)
            loss = self._loss(spec, out, yt)
        *grads, cot = tape.gradient(loss, [*weights, expectations])
        model.optimizer.apply_gradients(zip(grads, weights, strict=True))
        qgrad = grads[0]
        grad_sq = float(tf.reduce_sum(tf.square(tf.cast(qgrad, tf.float64))))
        cot_sq = float(tf.reduce_sum(tf.square(tf.reduce_sum(tf.abs(tf.cast(cot, tf.float64)), 1))))
        correct = None
        if spec.task == "classification":
            pred = tf.argmax(out, axis=1, output_type=tf.int64)
            correct = int(tf.reduce_sum(tf.cast(tf.equal(pred, yt), tf.int64)))
        return StepStats(
            float(loss),
            int(xt.shape[0]),
            correct,
            grad_sq,
            cot_sq,
            int(np.prod(model.quantum.kernel.shape)),
        )

    def _sync(self, model: KerasModel) -> None:
        model.twin.kernel.assign(model.quantum.kernel)

    def evaluate(
        self, model: KerasModel, x: FloatArray, y: npt.NDArray[Any], batch_size: int
    ) -> EvalStats:
        """Mean loss (and accuracy) of the twin on the evaluation backend."""
        spec = model.spec
        self._sync(model)
        total = 0.0
        correct = 0
        for lo in range(0, x.shape[0], batch_size):
            xt = tf.constant(np.asarray(x[lo : lo + batch_size], dtype=np.float32))
            yt = self._targets(spec, y[lo : lo + batch_size])
            out = model.outputs(xt, evaluate=True)
            total += float(self._loss(spec, out, yt)) * int(xt.shape[0])
            if spec.task == "classification":
                pred = tf.argmax(out, axis=1, output_type=tf.int64)
                correct += int(tf.reduce_sum(tf.cast(tf.equal(pred, yt), tf.int64)))
        n = int(x.shape[0])
        acc = correct / n if spec.task == "classification" else None
        return EvalStats(total / n, acc, n)

    def predict(self, model: KerasModel, x: FloatArray, batch_size: int) -> FloatArray:
        """Outputs of the twin (logits or values) as a NumPy array."""
        self._sync(model)
        outs = []
        for lo in range(0, x.shape[0], batch_size):
            xt = tf.constant(np.asarray(x[lo : lo + batch_size], dtype=np.float32))
            outs.append(np.asarray(model.outputs(xt, evaluate=True), dtype=np.float64))
        return np.concatenate(outs, axis=0)

    def fit_distributed(
        self, model: KerasModel, x: FloatArray, y: npt.NDArray[Any], batch_size: int
    ) -> EvalStats:
        """One epoch on ``MultiWorkerMirroredStrategy`` (``TF_CONFIG``; one worker without it)."""
        spec = model.spec
        if model.trainer is None:
            classify = spec.task == "classification"
            loss: Any = (
                keras.losses.SparseCategoricalCrossentropy(from_logits=True) if classify else "mse"
            )
            config = DistributedConfig(
                batch_size=batch_size,
                learning_rate=spec.learning_rate,
                loss=loss,
                metrics=("accuracy",) if classify else (),
                strategy="multi_worker",
            )
            model.trainer = TensorFlowDistributedTrainer(config)

        def make() -> keras.Model:
            quantum = _layer(spec, model.train_backend)
            head = _head(spec)
            quantum.kernel.assign(model.quantum.kernel)
            head.set_weights(model.head.get_weights())
            return keras.Sequential([keras.Input((spec.n_features,)), quantum, head])

        data = (np.asarray(x, dtype=np.float32), np.asarray(y))
        history = model.trainer.train(make, data, epochs=1).history
        trained = model.trainer.model
        assert trained is not None
        model.quantum.kernel.assign(trained.layers[0].kernel)
        model.head.set_weights(trained.layers[1].get_weights())
        acc = history.get("accuracy")
        return EvalStats(float(history["loss"][-1]), float(acc[-1]) if acc else None, len(x))

    def to_arrays(self, data: Any) -> tuple[FloatArray, npt.NDArray[Any]] | None:
        """``(x, y)`` from a ``tf.data.Dataset`` of ``(features, target)`` (batched or not)."""
        if not isinstance(data, tf.data.Dataset):
            return None
        xs, ys = [], []
        for xb, yb in data.as_numpy_iterator():
            xs.append(np.atleast_2d(np.asarray(xb)))
            ys.append(np.atleast_1d(np.asarray(yb)))
        return np.concatenate(xs).astype(np.float64), np.concatenate(ys)
