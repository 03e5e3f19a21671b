"""qstore-tf's side of ``qstore demo fashion-mnist`` (the default framework) and of
``qstore bench``: the Keras trainer found through the entry-point group ``qstore.demos``, trained
on real data through the ``qstore`` command, and the contenders registered in ``qstore.bench``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from qstore.core.bench import Contender, TrainingContender
from qstore.core.bench.plugins import installed
from qstore.core.cli import main
from qstore.core.demos import fashion_mnist as core_demo
from qstore.tf.bench import contenders, tf_layer_case
from qstore.tf.demos.fashion_mnist import KerasTrainer, build_keras_model, evaluate_keras

REPO = Path(__file__).resolve().parents[3]
CANDIDATES = [
    Path(os.environ.get("QSTORE_DATA_DIR", "/nonexistent")) / "fashion-mnist",
    REPO.parent / "shared" / "datasets" / "fashion-mnist",
    Path("/usr/share/datasets/fashion-mnist"),
]
DATA = next((d for d in CANDIDATES if (d / "t10k-labels-idx1-ubyte.gz").is_file()), None)


def test_the_keras_trainer_is_registered_for_the_demo() -> None:
    trainer = core_demo.load_trainer("keras")
    assert isinstance(trainer, KerasTrainer) and isinstance(trainer, core_demo.Trainer)
    assert trainer.model_file == "model.keras"


def test_the_demo_model_has_the_seed_shape() -> None:
    model = KerasTrainer().build("quantum", seed=1)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Dense",
        "AmplitudeEncoding",
        "QuantumLayer",
        "ExpectationValue",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert model.output_shape == (None, 10)
    twin = [type(layer).__name__ for layer in build_keras_model(block="classical").layers]
    assert twin == ["InputLayer", "Dense", "Dense", "Dense", "Dropout", "Dense"]
    again = KerasTrainer().build("quantum", seed=1)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the seed makes the build reproducible


@pytest.mark.slow
@pytest.mark.skipif(DATA is None, reason="Fashion-MNIST IDX files not found")
def test_keras_demo_learns_and_its_saved_model_reloads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keras"
    argv = ["demo", "fashion-mnist", "--data-dir", str(DATA), "--n-train", "2500"]
    argv += ["--n-test", "1000", "--out", str(out), "--no-progress", "--epochs", "2"]
    assert main([*argv, "--batch-size", "16"]) == 0  # Keras is the default framework
    assert "Fashion-MNIST demo (keras)" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    history = summary["history"]
    assert len(history["loss"]) == 2 and history["loss"][1] < history["loss"][0]
    acc = float(summary["test_accuracy"])
    assert acc > 0.35  # ten classes: chance is 0.10

    data = core_demo.load_data(DATA, 2500, 1000, seed=0)
    model = keras.models.load_model(out / "model.keras")
    _, reloaded = evaluate_keras(model, data)
    assert reloaded == pytest.approx(acc, abs=1e-6)


def test_bench_contenders_are_registered_per_case() -> None:
    assert installed().get("tf") == "qstore-tf"
    rw = contenders("rw")
    assert [(c.name, c.kind) for c in rw] == [
        ("qstore.tf QuantumLayer (tf.function)", "qstore"),
        ("tfq Expectation adjoint", "peer"),
    ]
    assert all(isinstance(c, Contender) for c in [*rw, *contenders("circuits")])
    models = contenders("fashion-mnist")
    assert [(m.name, m.group, m.kind) for m in models] == [
        ("classical Dense(6, tanh)", "keras", "baseline"),
        ("qstore.tf quantum", "keras", "qstore"),
        ("tfq quantum", "keras", "peer"),
    ]
    assert all(isinstance(m, TrainingContender) for m in models)
    assert contenders("circuits:one-at-a-time") == []


def test_the_rw_layer_case_gives_the_layer_sum_and_its_gradient() -> None:
    case = tf_layer_case(3, batch=4)
    assert case.forward_grad is not None
    forward, loss = case.forward(), case.forward_grad()
    assert np.isfinite(forward) and float(loss) == pytest.approx(float(forward), rel=1e-5)  # type: ignore[arg-type]


def test_the_tfq_peer_runs_rw_itself() -> None:
    """TFQ's figures are ratios' reference: its case must compute RW (features, weights and
    circuit) exactly as qstore-core's local backend does. Runs where TFQ is (``tfq:test``)."""
    pytest.importorskip("tensorflow_quantum")
    from qstore.core.backends.local import LocalBackend
    from qstore.core.bench.workload import backend_case
    from qstore.tf.bench import tfq_case

    expected = float(np.sum(backend_case(4, LocalBackend()).forward()))
    case = tfq_case(4)
    assert float(case.forward()) == pytest.approx(expected, abs=1e-4)  # type: ignore[arg-type]
    assert case.forward_grad is not None
    assert np.all(np.isfinite(case.forward_grad()))  # type: ignore[arg-type]
