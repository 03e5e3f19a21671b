"""``qstore train-keras``: the Fashion-MNIST hybrid model on ``MultiWorkerMirroredStrategy``.

Every worker runs the same command; ``TF_CONFIG`` (set by the Kubeflow TFJob operator, or by
hand) says who is who, and without it the command trains on one worker::

    qstore train-keras --data-dir /data/fashion-mnist --epochs 3 --batch-size 32 \\
        --backup-dir /data/checkpoints/keras --out /data/runs/keras

The model is the demo's (``qstore demo fashion-mnist``, built by
:func:`qstore.tf.demos.fashion_mnist.build_keras_model`): PCA-64 features, ``Dense(32)`` →
``AmplitudeEncoding(6)`` → ``QuantumLayer(6, depth=4)`` → ``ExpectationValue`` →
``Dense(128)`` → ``Dropout`` → ``Dense(10, softmax)``, trained by
:class:`~qstore.tf.distributed.TensorFlowDistributedTrainer` (gradients all-reduced across
workers). ``--backup-dir`` keeps Keras ``BackupAndRestore`` state there (one sub-directory per
worker, ``worker-0``, ``worker-1`` ...), so a restarted worker resumes from the last finished
epoch. The chief (worker 0) evaluates on the test images and
writes ``model.keras`` and ``summary.json`` into ``--out``. The manifests in ``deploy/k8s/``
run exactly this command.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["register", "run"]

COMMAND = "train-keras"


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Train as the parsed ``args`` say; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from qstore.tf.distributed import DistributedConfig, TensorFlowDistributedTrainer, cluster_spec

    # Each worker keeps its own BackupAndRestore state (Keras 3 would have every worker write
    # the same files); all of them hold the same weights, so each resumes where it stopped.
    task = cluster_spec().get("task", {})
    backup_dir = None
    if args.backup_dir:
        backup_dir = str(
            Path(args.backup_dir) / f"{task.get('type', 'worker')}-{task.get('index', 0)}"
        )
    # The strategy must exist before any other TensorFlow op: create the trainer first.
    trainer = TensorFlowDistributedTrainer(
        DistributedConfig(
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            loss="sparse_categorical_crossentropy",
            metrics=("accuracy",),
            communication=args.communication,
            backup_dir=backup_dir,
            verbose=2 if args.progress else 0,
        )
    )
    import keras

    from qstore.core.demos.fashion_mnist import load_data
    from qstore.tf.demos.fashion_mnist import build_keras_model

    t0 = time.perf_counter()
    data = load_data(args.data_dir, args.n_train, args.n_test, seed=args.seed)
    split = data.split(args.validation_split)

    def build() -> Any:
        keras.utils.set_random_seed(args.seed)  # the same initial weights on every worker
        return build_keras_model(keras)

    history = trainer.train(
        build,
        (data.x_train[:split], data.y_train[:split]),
        val_data=(data.x_train[split:], data.y_train[split:])
        if split < len(data.x_train)
        else None,
        epochs=args.epochs,
    )
    model = trainer.model
    assert model is not None
    summary: dict[str, Any] = {
        "framework": "keras",
        "workers": trainer.num_workers,
        "replicas": int(trainer.strategy.num_replicas_in_sync),
        "epochs": args.epochs,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if trainer.is_chief:
        # A plain copy outside the strategy's scope: evaluating and saving it involves no
        # collective op, so the chief does them alone once the other workers are done.
        plain = build_keras_model(keras)
        plain.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        plain.set_weights(model.get_weights())
        loss, acc = plain.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
        summary.update(test_loss=float(loss), test_accuracy=float(acc))
        if args.out:
            target = Path(args.out)
            target.mkdir(parents=True, exist_ok=True)
            plain.save(str(target / "model.keras"))
            (target / "summary.json").write_text(json.dumps(summary, indent=2))
    last = {k: round(v[-1], 4) for k, v in summary["history"].items()}
    role = "chief" if trainer.is_chief else "worker"
    out.write(f"{role} of {trainer.num_workers} worker(s): {json.dumps(last)}\n")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``qstore train-keras``: the shared training options
    (:func:`qstore.core.demos.fashion_mnist.add_training_arguments`), the collective and the
    backup directory."""
    from qstore.core.demos.fashion_mnist import add_training_arguments

    add_training_arguments(p, "worker", "the chief writes model.keras")
    p.add_argument(
        "--communication",
        choices=("auto", "ring", "nccl"),
        default="auto",
        help="collective implementation (ring: gRPC, CPUs; nccl: GPUs)",
    )
    p.add_argument("--backup-dir", help="BackupAndRestore state: a restarted worker resumes")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``qstore train-keras`` (entry point in the group ``qstore.cli``)."""
    p = sub.add_parser(
        COMMAND,
        help="train the Fashion-MNIST hybrid Keras model on MultiWorkerMirroredStrategy "
        "(reads TF_CONFIG)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_arguments(p)
    p.set_defaults(func=run)
