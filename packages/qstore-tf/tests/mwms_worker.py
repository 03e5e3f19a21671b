"""One worker of the two-worker training test (run as a script; TF_CONFIG comes from the env).

Usage: ``python mwms_worker.py OUT.npz``: trains the §4.1 second model shape with
:class:`TensorFlowDistributedTrainer` and saves the final weights and the loss history.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from qstore.tf import DistributedConfig, TensorFlowDistributedTrainer
from qstore.tf.layers import QuantumLayer


def make_model() -> keras.Model:
    keras.utils.set_random_seed(0)  # same initial weights on every worker
    return keras.Sequential(
        [keras.Input((12,)), QuantumLayer(n_qubits=4, depth=2), keras.layers.Dense(3)]
    )


def main(out: str) -> int:
    trainer = TensorFlowDistributedTrainer(
        DistributedConfig(batch_size=8, loss="mse", learning_rate=0.05, communication="ring")
    )
    rng = np.random.default_rng(int(os.environ.get("WORKER_SEED", "0")))
    # Each worker may hold different data: the strategy averages gradients across workers.
    x = rng.uniform(0, np.pi, (64, 12)).astype(np.float32)
    y = np.stack([np.cos(x[:, 0]), np.sin(x[:, 1]), np.cos(x[:, 2] + x[:, 3])], axis=1)
    history = trainer.train(make_model, (x, y.astype(np.float32)), epochs=2)
    assert trainer.model is not None
    np.savez(
        out,
        loss=np.asarray(history.history["loss"]),
        replicas=trainer.strategy.num_replicas_in_sync,
        workers=trainer.num_workers,
        **{f"w{i}": w for i, w in enumerate(trainer.model.get_weights())},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
