"""``TensorFlowDistributedTrainer`` on MultiWorkerMirroredStrategy: two worker processes on
localhost must train in lockstep and end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qstore.tf.distributed import DistributedConfig, DistributedConfigError

WORKER = Path(__file__).with_name("mwms_worker.py")


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_two_workers_train_to_identical_weights(tmp_path: Path) -> None:
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ)
        env.update(
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            WORKER_SEED=str(i),
            OMP_NUM_THREADS="1",
            TF_NUM_INTEROP_THREADS="1",
            TF_NUM_INTRAOP_THREADS="1",
            CUDA_VISIBLE_DEVICES="",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), str(tmp_path / f"w{i}.npz")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=240)
            logs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"worker {i} failed:\n{logs[i][-4000:]}"
    a, b = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert int(a["workers"]) == 2 and int(a["replicas"]) == 2
    weights = sorted(k for k in a.files if k.startswith("w"))
    assert weights and weights == sorted(k for k in b.files if k.startswith("w"))
    for k in weights:
        np.testing.assert_array_equal(a[k], b[k])
    assert np.isfinite(a["loss"]).all()
    assert a["loss"][-1] < a["loss"][0]


def test_single_worker_without_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    from qstore.tf import TensorFlowDistributedTrainer
    from qstore.tf.layers import QuantumLayer

    monkeypatch.delenv("TF_CONFIG", raising=False)
    trainer = TensorFlowDistributedTrainer(DistributedConfig(strategy="single", batch_size=4))
    model = keras.Sequential([keras.Input((3,)), QuantumLayer(3, depth=1), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x = np.random.default_rng(0).uniform(size=(8, 3)).astype(np.float32)
    history = trainer.train(model, (x, x[:, :1]), val_data=(x, x[:, :1]), epochs=1)
    assert "val_loss" in history.history
    assert trainer.model is not None and trainer.model is not model
    assert trainer.num_workers == 1 and trainer.is_chief


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"strategy": "parameter_server"}, "strategy must be one of"),
        ({"communication": "mpi"}, "communication must be one of"),
        ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DistributedConfigError, match=match):
        DistributedConfig(**kwargs)  # type: ignore[arg-type]


def test_config_from_a_training_config_like_object() -> None:
    class Training:
        batch_size = 16
        learning_rate = 0.01
        distributed_strategy = "auto"
        epochs = 3

    cfg = DistributedConfig.from_any(Training())
    assert (cfg.batch_size, cfg.learning_rate, cfg.strategy) == (16, 0.01, "multi_worker")
    assert DistributedConfig.from_any({"strategy": "single"}).strategy == "single"
