"""PyTorchDistributedTrainer and DistributedDataParallel: two gloo processes under torchrun,
and the single-process path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from qstore.core.errors import QStoreError
from qstore.torch import DistributedConfig, PyTorchDistributedTrainer, QuantumLayer
from qstore.torch.distributed import DistributedTrainingError

WORKER = Path(__file__).with_name("ddp_worker.py")
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    """Run ddp_worker.py on two CPU processes (gloo; torchrun picks a free port)."""
    out = tmp_path_factory.mktemp("ddp")
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(WORKER), str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    (out / "log.txt").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) | {"out": out} for r in (0, 1)]


@pytest.mark.slow
def test_ddp_averages_quantum_layer_gradients_over_ranks(
    two_ranks: list[dict[str, object]],
) -> None:
    for r in two_ranks:
        ddp = r["ddp"]
        assert isinstance(ddp, dict)
        assert ddp["world"] == 2
        assert ddp["same_start"], "DDP did not broadcast rank 0's parameters"
        assert max(ddp["grad_diffs"]) < 1e-6, ddp["grad_diffs"]


@pytest.mark.slow
def test_trainer_ranks_end_with_identical_weights_and_the_loss_falls(
    two_ranks: list[dict[str, object]],
) -> None:
    r0, r1 = two_ranks
    assert (r0["rank"], r1["rank"]) == (0, 1) and r0["world_size"] == r1["world_size"] == 2
    s0, s1 = r0["state"], r1["state"]
    assert isinstance(s0, dict) and isinstance(s1, dict)
    assert s0.keys() == s1.keys()
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    h0, h1 = r0["history"], r1["history"]
    assert h0 == {**h1, "epoch_seconds": h0["epoch_seconds"]}  # reduced over ranks: identical
    assert isinstance(h0, dict)
    assert set(h0) == {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"}
    assert len(h0["loss"]) == 3
    assert h0["loss"][-1] < 0.8 * h0["loss"][0], h0["loss"]
    assert h0["val_accuracy"][-1] >= 0.8, h0
    # the trainer joined a gloo group from torchrun's variables, and close() left it
    assert r0["joined_gloo"] and r1["joined_gloo"]
    assert r0["left"] and r1["left"]
    # rank 0 wrote the checkpoints, with the weights both ranks ended with
    out = r0["out"]
    assert isinstance(out, Path)
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 3 and ckpt["world_size"] == 2
    for k in s0:
        assert torch.equal(ckpt["model"][k], s0[k])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch_0001.pt", "epoch_0002.pt", "epoch_0003.pt", "last.pt"
    ]  # fmt: skip


def _loaders() -> tuple[DataLoader[tuple[torch.Tensor, ...]], DataLoader[tuple[torch.Tensor, ...]]]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(48) % 2
    x = torch.stack([y * 2.0 + 0.3, 2.3 - y * 2.0], dim=1) + 0.3 * torch.randn(48, 2, generator=g)
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=8, shuffle=True), DataLoader(data, batch_size=16)


def test_single_process_training_checkpoints_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k in TORCHRUN_VARS:
        monkeypatch.delenv(k, raising=False)
    torch.manual_seed(0)
    model = nn.Sequential(QuantumLayer(2, depth=1), nn.Linear(2, 2))
    cfg = DistributedConfig(learning_rate=0.1, checkpoint_dir=str(tmp_path), progress=False)
    train, val = _loaders()
    history = PyTorchDistributedTrainer(cfg).train(model, train, val, epochs=2)
    assert len(history["loss"]) == len(history["val_accuracy"]) == 2
    assert (tmp_path / "last.pt").exists()
    # resume: epochs 1-2 come from the checkpoint, only epoch 3 runs
    torch.manual_seed(1)
    again = nn.Sequential(QuantumLayer(2, depth=1), nn.Linear(2, 2))
    resumed = PyTorchDistributedTrainer(
        DistributedConfig(
            learning_rate=0.1, checkpoint_dir=str(tmp_path), resume=True, progress=False
        )
    ).train(again, train, val, epochs=3)
    assert resumed["loss"][:2] == history["loss"]
    assert len(resumed["loss"]) == 3
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 3


def test_regression_loss_and_custom_optimizer(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in TORCHRUN_VARS:
        monkeypatch.delenv(k, raising=False)
    torch.manual_seed(0)
    layer = QuantumLayer(2, depth=1)
    x = torch.rand(16, 2)
    data = DataLoader(TensorDataset(x, torch.zeros(16, 2)), batch_size=4)
    cfg = DistributedConfig(
        loss="mse", optimizer=lambda params: torch.optim.SGD(params, lr=0.2), progress=False
    )
    history = PyTorchDistributedTrainer(cfg).train(layer, data, epochs=3)
    assert set(history) == {"loss", "epoch_seconds"}
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rate": 0}, "learning_rate = 0 is invalid"),
        ({"optimizer": "lbfgs"}, "optimizer = 'lbfgs' is invalid"),
        ({"loss": "hinge"}, "loss = 'hinge' is invalid"),
        ({"metrics": ("f1",)}, "metrics"),
        ({"process_group_backend": "mpi"}, "process_group_backend = 'mpi'"),
        ({"device": "tpu"}, "device = 'tpu'"),
        ({"process_group_backend": "nccl", "device": "cpu"}, "nccl needs CUDA"),
        ({"resume": True}, "resuming needs a checkpoint_dir"),
        ({"checkpoint_every": 0}, "checkpoint_every = 0"),
        ({"grad_clip_norm": -1.0}, "grad_clip_norm = -1.0"),
    ],
)
def test_config_is_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DistributedTrainingError, match=match) as info:
        DistributedConfig(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, QStoreError)


def test_environment_errors_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    train, _ = _loaders()
    model = QuantumLayer(2, depth=1)
    trainer = PyTorchDistributedTrainer(DistributedConfig(progress=False))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(DistributedTrainingError, match="MASTER_ADDR, MASTER_PORT is not set"):
        trainer.train(model, train, epochs=1)
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(DistributedTrainingError, match="RANK=5 and WORLD_SIZE=2"):
        trainer.train(model, train, epochs=1)
    with pytest.raises(DistributedTrainingError, match="epochs must be a positive int"):
        trainer.train(model, train, epochs=0)
