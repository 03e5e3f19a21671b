"""``qstore demo fashion-mnist``: trains on real data, saves a model that reloads to the same
accuracy, and fails cleanly on bad input. Short runs on subsets; the full demo is a benchmark."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from qstore.core.cli import main
from qstore.core.demos import fashion_mnist as demo
from qstore.core.errors import QStoreError

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [
    Path(os.environ.get("QSTORE_DATA_DIR", "/nonexistent")) / "fashion-mnist",
    REPO.parent / "shared" / "datasets" / "fashion-mnist",
    Path("/usr/share/datasets/fashion-mnist"),
]
DATA = next((d for d in CANDIDATES if (d / "t10k-labels-idx1-ubyte.gz").is_file()), None)
needs_data = pytest.mark.skipif(
    DATA is None,
    reason="Fashion-MNIST IDX files not found in any of "
    + ", ".join(str(d) for d in CANDIDATES)
    + " (apt-get install dataset-fashion-mnist, or set QSTORE_DATA_DIR)",
)


def _run(tmp_path: Path, framework: str, *extra: str) -> dict[str, object]:
    out = tmp_path / framework
    argv = ["demo", "fashion-mnist", "--framework", framework, "--data-dir", str(DATA)]
    argv += ["--n-train", "2500", "--n-test", "1000", "--out", str(out), "--no-progress", *extra]
    assert main(argv) == 0
    summary: dict[str, object] = json.loads((out / "summary.json").read_text())
    png = (out / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    return summary


@needs_data
def test_torch_demo_learns_and_its_saved_model_reloads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = pytest.importorskip("torch")
    summary = _run(tmp_path, "torch", "--epochs", "2")
    text = capsys.readouterr().out
    assert "Test accuracy:" in text and "Wall time:" in text
    history = summary["history"]
    assert isinstance(history, dict) and len(history["loss"]) == 2
    assert history["loss"][1] < history["loss"][0]
    acc = float(summary["test_accuracy"])  # type: ignore[arg-type]
    assert acc > 0.35  # ten classes: chance is 0.10

    data = demo.load_data(DATA, 2500, 1000, seed=0)
    model = demo.build_torch_model(torch)
    model.load_state_dict(torch.load(tmp_path / "torch" / "model.pt"))
    loss, reloaded = demo.evaluate_torch(model, data)
    assert reloaded == pytest.approx(acc, abs=1e-12)
    assert loss == pytest.approx(float(summary["test_loss"]), rel=1e-5)  # type: ignore[arg-type]


@needs_data
def test_keras_demo_learns_and_its_saved_model_reloads(tmp_path: Path) -> None:
    pytest.importorskip("qstore.tf")
    keras = demo.keras_module()
    summary = _run(tmp_path, "keras", "--epochs", "2", "--batch-size", "16")
    acc = float(summary["test_accuracy"])  # type: ignore[arg-type]
    assert acc > 0.35

    data = demo.load_data(DATA, 2500, 1000, seed=0)
    model = keras.models.load_model(tmp_path / "keras" / "model.keras")
    _, reloaded = demo.evaluate_keras(model, data)
    assert reloaded == pytest.approx(acc, abs=1e-6)


@needs_data
def test_pca_features_are_standardised_and_deterministic() -> None:
    a = demo.load_data(DATA, 1000, 200, seed=3)
    b = demo.load_data(DATA, 1000, 200, seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_train.shape == (1000, 64) and a.x_test.shape == (200, 64)
    np.testing.assert_allclose(a.x_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(a.x_train.std(axis=0), 1.0, atol=1e-3)
    # principal components are uncorrelated on the data they were fitted on
    corr = np.corrcoef(a.x_train.T.astype(np.float64))
    assert np.max(np.abs(corr - np.eye(64))) < 1e-3


def test_missing_data_fails_with_the_way_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["demo", "fashion-mnist", "--data-dir", str(tmp_path / "none"), "--no-save"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "does not exist" in err and "--download" in err and "dataset-fashion-mnist" in err
    assert not (tmp_path / "none").exists()  # nothing created, nothing downloaded


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("framework", "jax", "framework must be one of keras, torch"),
        ("epochs", 0, "epochs must be at least 1"),
        ("validation_split", 1.0, "validation_split must be in [0, 1)"),
        ("n_train", 3, "n_train must be at least 10"),
    ],
)
def test_bad_config_is_refused(field: str, value: object, needle: str) -> None:
    with pytest.raises(QStoreError, match=needle.replace("[", r"\[").replace(")", r"\)")):
        demo.DemoConfig(**{field: value})  # type: ignore[arg-type]


def test_bad_flags_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "fashion-mnist", "--framework", "jax"]) == 2
    assert "invalid choice: 'jax'" in capsys.readouterr().err
    assert main(["demo", "fashion-mnist", "--epochs", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_native_stderr_is_held_back_and_shown_only_on_failure(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with demo._native_stderr_held():
        os.write(2, b"start-up noise\n")
    assert "start-up noise" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), demo._native_stderr_held():
        os.write(2, b"the reason it failed\n")
        raise RuntimeError("import failed")
    assert "the reason it failed" in capfd.readouterr().err
