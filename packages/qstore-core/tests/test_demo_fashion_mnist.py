"""``qstore demo fashion-mnist``, qstore-core's side: data, options, the trainer lookup and the
held-back start-up output. Training with Keras and PyTorch is tested in qstore-tf and
qstore-torch; the whole run through a trainer from another distribution is in
``test_entry_point_groups.py``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from qstore.core.cli import main
from qstore.core.demos import fashion_mnist as demo
from qstore.core.errors import MissingDependencyError, QStoreError

REPO = Path(__file__).resolve().parents[3]
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


@pytest.mark.slow
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


def test_missing_data_fails_with_the_way_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(QStoreError) as info:
        demo.load_data(tmp_path / "none")
    text = str(info.value)
    assert "does not exist" in text and "--download" in text and "dataset-fashion-mnist" in text
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


def test_fit_settings_follow_the_options() -> None:
    config = demo.DemoConfig(framework="torch", epochs=2, batch_size=16, seed=5, progress=True)
    s = config.fit_settings(interactive=True)
    assert (s.epochs, s.batch_size, s.seed, s.progress, s.interactive) == (2, 16, 5, True, True)
    quiet = demo.DemoConfig(framework="torch", progress=False).fit_settings(interactive=True)
    assert not quiet.progress and not quiet.interactive  # no progress: nothing to redraw


def test_a_framework_whose_distribution_is_missing_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A framework of ours that no installed distribution provides.
    monkeypatch.setitem(demo.KNOWN_FRAMEWORKS, "jaxish", "qstore-jaxish")
    assert "jaxish" in demo.frameworks()
    with pytest.raises(demo.DemoDependencyError) as info:
        demo.load_trainer("jaxish")
    text = str(info.value)
    assert "--framework jaxish needs qstore-jaxish, which is not installed" in text
    assert "pip install qstore-jaxish" in text
    assert isinstance(info.value, MissingDependencyError)
    with pytest.raises(QStoreError, match="framework must be one of"):
        demo.load_trainer("no-such-framework")


def test_native_stderr_is_held_back_and_shown_only_on_failure(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with demo.held_native_stderr():
        os.write(2, b"start-up noise\n")
    assert "start-up noise" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), demo.held_native_stderr():
        os.write(2, b"the reason it failed\n")
        raise RuntimeError("import failed")
    assert "the reason it failed" in capfd.readouterr().err
