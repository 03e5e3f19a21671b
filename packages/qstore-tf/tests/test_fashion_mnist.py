"""The seed's Fashion-MNIST model shape (SPEC §4.1, first model) trains on a real sample."""

from __future__ import annotations

import gzip
from pathlib import Path

import cirq
import keras
import numpy as np
import pytest

from qstore.tf.layers import AmplitudeEncoding, ExpectationValue, QuantumLayer

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "fashion-mnist"


def _idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip): magic (2 zero bytes, dtype code, rank), big-endian sizes, data."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    rank = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def _pca(train: np.ndarray, test: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:k].T
    scale = ((train - mean) @ basis).std(axis=0)
    return ((train - mean) @ basis) / scale, ((test - mean) @ basis) / scale


@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA / "train-images-idx3-ubyte.gz").exists(),
    reason=f"Fashion-MNIST IDX files not found in {DATA}",
)
def test_seed_model_loss_falls_on_fashion_mnist() -> None:
    images = _idx(DATA / "train-images-idx3-ubyte.gz")
    labels = _idx(DATA / "train-labels-idx1-ubyte.gz")
    assert images.shape == (60000, 28, 28) and labels.shape == (60000,)
    rng = np.random.default_rng(0)
    pick = rng.permutation(60000)[:2500]
    flat = images[pick].reshape(-1, 784).astype(np.float32) / 255.0
    x_train, x_test = _pca(flat[:2000], flat[2000:], 64)
    y_train, y_test = labels[pick[:2000]], labels[pick[2000:]]

    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    h = keras.layers.Dense(32, activation="relu")(inputs)
    s = AmplitudeEncoding(n_qubits=6)(h)
    s = QuantumLayer(n_qubits=6, depth=4)(s)
    z = ExpectationValue(observables=[cirq.Z] * 6)(s)
    h = keras.layers.Dense(128)(z)
    h = keras.layers.Dropout(0.2)(h)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    # Adam with a larger step than its default, so that one epoch (50 steps) shows learning.
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    before, _ = model.evaluate(x_test, y_test, verbose=0)
    model.fit(x_train, y_train, validation_split=0.2, epochs=1, batch_size=32, verbose=0)
    after, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {before:.3f} -> {after:.3f}, accuracy {acc:.3f}")
    assert after < before - 0.5, (before, after)
    assert acc > 0.5  # 10 classes: chance is 0.1
