"""qstore-torch's side of ``qstore demo fashion-mnist`` and of ``qstore bench``: the PyTorch
trainer found through the entry-point group ``qstore.demos``, trained on real data through the
``qstore`` command, and the contenders registered in ``qstore.bench``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from qstore.core.bench import Contender, TrainingContender
from qstore.core.bench.plugins import installed
from qstore.core.bench.workload import rw_data
from qstore.core.cli import main
from qstore.core.demos import fashion_mnist as core_demo
from qstore.torch import QuantumLayer
from qstore.torch.bench import contenders, torch_layer_case
from qstore.torch.demos.fashion_mnist import TorchTrainer, build_torch_model, evaluate_torch

REPO = Path(__file__).resolve().parents[3]
CANDIDATES = [
    Path(os.environ.get("QSTORE_DATA_DIR", "/nonexistent")) / "fashion-mnist",
    REPO.parent / "shared" / "datasets" / "fashion-mnist",
    Path("/usr/share/datasets/fashion-mnist"),
]
DATA = next((d for d in CANDIDATES if (d / "t10k-labels-idx1-ubyte.gz").is_file()), None)


def test_the_torch_trainer_is_registered_for_the_demo() -> None:
    trainer = core_demo.load_trainer("torch")
    assert isinstance(trainer, TorchTrainer) and isinstance(trainer, core_demo.Trainer)
    assert trainer.model_file == "model.pt"


def test_the_demo_model_has_the_seed_shape() -> None:
    model = TorchTrainer().build("quantum", seed=1)
    kinds = [type(m).__name__ for m in model]
    assert kinds == [
        "Linear",
        "ReLU",
        "AmplitudeEncoding",
        "QuantumLayer",
        "ExpectationValue",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
    ]
    assert model(torch.zeros(3, 64)).shape == (3, 10)
    twin = [type(m).__name__ for m in build_torch_model("classical")]
    assert twin[2:4] == ["Linear", "Tanh"]
    # The seed makes the build reproducible.
    again = TorchTrainer().build("quantum", seed=1)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.slow
@pytest.mark.skipif(DATA is None, reason="Fashion-MNIST IDX files not found")
def test_torch_demo_learns_and_its_saved_model_reloads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "torch"
    argv = ["demo", "fashion-mnist", "--framework", "torch", "--data-dir", str(DATA)]
    argv += ["--n-train", "2500", "--n-test", "1000", "--out", str(out), "--no-progress"]
    assert main([*argv, "--epochs", "2"]) == 0
    text = capsys.readouterr().out
    assert "Test accuracy:" in text and "Wall time:" in text
    summary = json.loads((out / "summary.json").read_text())
    history = summary["history"]
    assert len(history["loss"]) == 2 and history["loss"][1] < history["loss"][0]
    acc = float(summary["test_accuracy"])
    assert acc > 0.35  # ten classes: chance is 0.10
    png = (out / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    data = core_demo.load_data(DATA, 2500, 1000, seed=0)
    model = build_torch_model()
    model.load_state_dict(torch.load(out / "model.pt"))
    loss, reloaded = evaluate_torch(model, data)
    assert reloaded == pytest.approx(acc, abs=1e-12)
    assert loss == pytest.approx(float(summary["test_loss"]), rel=1e-5)


def test_bench_contenders_are_registered_per_case() -> None:
    assert installed().get("torch") == "qstore-torch"
    for case in ("rw", "circuits"):
        (layer,) = contenders(case)
        assert isinstance(layer, Contender) and layer.kind == "qstore"
    models = contenders("fashion-mnist")
    assert [(m.name, m.group, m.kind) for m in models] == [
        ("classical Linear(6) + tanh", "pytorch", "baseline"),
        ("qstore.torch quantum", "pytorch", "qstore"),
    ]
    assert all(isinstance(m, TrainingContender) for m in models)
    assert models[1].quantum_step is not None and models[0].quantum_step is None
    assert contenders("circuits:one-at-a-time") == []


def test_the_rw_layer_case_runs_the_layer_on_rw_data() -> None:
    torch.manual_seed(0)
    case = torch_layer_case(3, batch=4)
    torch.manual_seed(0)
    layer = QuantumLayer(n_qubits=3, depth=4)  # the same initial weights
    x, _ = rw_data(3, 4)
    with torch.no_grad():
        expected = float(layer(torch.tensor(x, dtype=torch.float32)).sum())
    assert case.forward_grad is not None
    forward, loss = case.forward(), case.forward_grad()
    assert isinstance(forward, torch.Tensor) and isinstance(loss, torch.Tensor)
    assert float(forward) == pytest.approx(expected, rel=1e-6)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
