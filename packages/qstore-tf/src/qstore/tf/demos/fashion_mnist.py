"""The Keras side of ``qstore demo fashion-mnist`` (``--framework keras``, the default).

The demo itself (data, options, plot, summary) is :mod:`qstore.core.demos.fashion_mnist`; it
finds :class:`KerasTrainer` through the entry-point group ``qstore.demos``. The functions here
are also what the ``fashion-mnist`` benchmark suite times (:mod:`qstore.tf.bench`).

>>> from qstore.tf.demos.fashion_mnist import build_keras_model
>>> build_keras_model(block="classical").output_shape
(None, 10)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

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
    held_native_stderr,
    z_observables,
)
from qstore.core.errors import QStoreError
from qstore.tf import layers

__all__ = [
    "KerasTrainer",
    "build_keras_model",
    "evaluate_keras",
    "fit_keras",
    "keras_module",
    "quantum_block",
]

_started = False


def keras_module() -> Any:
    """``keras`` (Keras 3 on TensorFlow), its runtime started with TensorFlow's start-up lines
    held back (shown only if starting fails)."""
    global _started
    if not _started:
        with held_native_stderr():
            keras.ops.convert_to_tensor(0.0)  # starts the runtime (device discovery logs too)
        _started = True
    return keras


def quantum_block() -> list[Any]:
    """``AmplitudeEncoding(6) -> QuantumLayer(6, depth=4) -> ExpectationValue(Z x 6)``."""
    return [
        layers.AmplitudeEncoding(n_qubits=N_QUBITS),
        layers.QuantumLayer(n_qubits=N_QUBITS, depth=DEPTH),
        layers.ExpectationValue(observables=z_observables()),
    ]


def build_keras_model(
    keras_: Any | None = None, block: Block | Callable[[Any], list[Any]] = "quantum"
) -> Any:
    """The demo model as an uncompiled ``keras.Model``.

    ``block`` is the part between ``Dense(32, relu)`` and ``Dense(128, relu)``: ``"quantum"``
    (AmplitudeEncoding -> QuantumLayer -> ExpectationValue), ``"classical"`` (the classical
    twin, ``Dense(6, tanh)``) or a function ``keras -> [layers]`` (e.g. a TFQ block).
    """
    k = keras_module() if keras_ is None else keras_
    if block == "quantum":
        middle = quantum_block()
    elif block == "classical":
        middle = [k.layers.Dense(N_QUBITS, activation="tanh")]
    elif callable(block):
        middle = block(k)
    else:
        raise QStoreError(f"block must be 'quantum', 'classical' or a callable, got {block!r}")
    inputs = k.Input((FEATURES,), name="pca_features")
    h = k.layers.Dense(HIDDEN, activation="relu")(inputs)
    for layer in middle:
        h = layer(h)
    h = k.layers.Dense(128, activation="relu")(h)
    h = k.layers.Dropout(0.2)(h)
    outputs = k.layers.Dense(10, activation="softmax")(h)
    name = f"fashion_mnist_{block if isinstance(block, str) else 'custom'}"
    return k.Model(inputs, outputs, name=name)


class _EpochTimer(keras.callbacks.Callback):  # type: ignore[misc]
    """Seconds of each epoch (training and validation), as Keras runs them."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.times.append(time.perf_counter() - self._t0)


def fit_keras(
    model: Any,
    data: Data,
    epochs: int = EPOCHS,
    batch_size: int = BATCH,
    validation_split: float = VALIDATION_SPLIT,
    verbose: int | str = 0,
    learning_rate: float = LEARNING_RATE,
) -> History:
    """Compile ``model`` (Adam, sparse categorical cross-entropy) and fit it as the demo does."""
    k = keras_module()
    model.compile(
        optimizer=k.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    timer = _EpochTimer()
    fitted = model.fit(
        data.x_train,
        data.y_train,
        validation_split=validation_split,
        epochs=epochs,
        batch_size=batch_size,
        verbose=verbose,
        callbacks=[timer],
    )
    h = fitted.history
    return History(
        [float(v) for v in h["loss"]],
        [float(v) for v in h["accuracy"]],
        [float(v) for v in h.get("val_loss", [])],
        [float(v) for v in h.get("val_accuracy", [])],
        timer.times,
    )


def evaluate_keras(model: Any, data: Data) -> tuple[float, float]:
    """Test loss and accuracy."""
    loss, acc = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
    return float(loss), float(acc)


class KerasTrainer:
    """:class:`qstore.core.demos.fashion_mnist.Trainer` for Keras (entry point ``keras`` of the
    group ``qstore.demos``)."""

    model_file = "model.keras"

    def build(self, block: Block = "quantum", seed: int = 0) -> Any:
        """The demo model, after ``keras.utils.set_random_seed(seed)``."""
        k = keras_module()
        k.utils.set_random_seed(seed)
        return build_keras_model(k, block)

    def fit(self, model: Any, data: Data, settings: FitSettings) -> History:
        """``model.fit``: a progress bar on a terminal, one line per epoch otherwise."""
        verbose = (1 if settings.interactive else 2) if settings.progress else 0
        return fit_keras(
            model,
            data,
            settings.epochs,
            settings.batch_size,
            settings.validation_split,
            verbose,
            settings.learning_rate,
        )

    def evaluate(self, model: Any, data: Data) -> tuple[float, float]:
        """Test loss and accuracy."""
        return evaluate_keras(model, data)

    def save(self, model: Any, path: Path) -> None:
        """``model.save(path)`` (the ``.keras`` format; reload with ``keras.models.load_model``)."""
        model.save(str(path))
