"""``qstore train-torch``: the Fashion-MNIST hybrid model on ``DistributedDataParallel``.

Every process runs the same command; the variables that ``torchrun`` or the Kubeflow PyTorchJob
operator set (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, ``LOCAL_RANK``) say who
is who, and without them the command trains in one process::

    qstore train-torch --data-dir /data/fashion-mnist --epochs 3 --batch-size 32 \\
        --checkpoint-dir /data/checkpoints/torch --resume --out /data/runs/torch

The model is the demo's (``qstore demo fashion-mnist --framework torch``, built by
:func:`qstore.torch.demos.fashion_mnist.build_torch_model`), trained by
:class:`~qstore.torch.distributed.PyTorchDistributedTrainer` (``gloo`` on CPU, ``nccl`` on GPU).
Rank 0 writes checkpoints into ``--checkpoint-dir`` every epoch (``--resume`` continues from the
last one), evaluates on the test images and writes ``model.pt`` and ``summary.json`` into
``--out``. The manifests in ``deploy/k8s/`` run exactly this command.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["register", "run"]

COMMAND = "train-torch"


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Train as the parsed ``args`` say; returns the exit status."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from qstore.core.demos.fashion_mnist import load_data
    from qstore.torch.demos.fashion_mnist import build_torch_model, evaluate_torch
    from qstore.torch.distributed import DistributedConfig, PyTorchDistributedTrainer

    t0 = time.perf_counter()
    data = load_data(args.data_dir, args.n_train, args.n_test, seed=args.seed)
    split = data.split(args.validation_split)
    torch.manual_seed(args.seed)  # DDP broadcasts rank 0's weights; seeded for repeatability
    model = build_torch_model()
    gen = torch.Generator().manual_seed(args.seed)
    train = DataLoader(
        TensorDataset(
            torch.from_numpy(data.x_train[:split]), torch.from_numpy(data.y_train[:split])
        ),
        batch_size=args.batch_size,
        shuffle=True,
        generator=gen,
    )
    val = None
    if split < len(data.x_train):
        val = DataLoader(
            TensorDataset(
                torch.from_numpy(data.x_train[split:]), torch.from_numpy(data.y_train[split:])
            ),
            batch_size=256,
        )
    trainer = PyTorchDistributedTrainer(
        DistributedConfig(
            learning_rate=args.learning_rate,
            loss="cross_entropy",
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume and args.checkpoint_dir is not None,
            progress=args.progress,
            seed=args.seed,
        )
    )
    try:
        history = trainer.train(model, train, val, epochs=args.epochs)
    finally:
        trainer.close()
    summary: dict[str, Any] = {
        "framework": "torch",
        "world_size": trainer.world_size,
        "epochs": args.epochs,
        "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if trainer.rank == 0:
        loss, acc = evaluate_torch(model, data)
        summary.update(test_loss=float(loss), test_accuracy=float(acc))
        if args.out:
            target = Path(args.out)
            target.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), target / "model.pt")
            (target / "summary.json").write_text(json.dumps(summary, indent=2))
    last = {k: round(v[-1], 4) for k, v in summary["history"].items() if k != "epoch_seconds"}
    out.write(f"rank {trainer.rank} of {trainer.world_size}: {json.dumps(last)}\n")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``qstore train-torch``: the shared training options
    (:func:`qstore.core.demos.fashion_mnist.add_training_arguments`) and checkpoints."""
    from qstore.core.demos.fashion_mnist import add_training_arguments

    add_training_arguments(p, "process", "rank 0 writes model.pt")
    p.add_argument("--checkpoint-dir", help="rank 0 writes epoch_NNNN.pt and last.pt here")
    p.add_argument("--resume", action="store_true", help="continue from checkpoint-dir/last.pt")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``qstore train-torch`` (entry point in the group ``qstore.cli``)."""
    p = sub.add_parser(
        COMMAND,
        help="train the Fashion-MNIST hybrid PyTorch model with DistributedDataParallel "
        "(reads torchrun's / the PyTorchJob's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_arguments(p)
    p.set_defaults(func=run)
