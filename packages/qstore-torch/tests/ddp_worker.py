"""One rank of the two-process DDP test (started by torchrun from test_distributed.py).

Phase 1: PyTorchDistributedTrainer joins the process group from torchrun's variables and trains
a hybrid model. Phase 2, in the same group: a QuantumLayer model wrapped in
DistributedDataParallel by hand; each rank back-propagates its half of a batch, and the
synchronised gradients must equal the full-batch gradient computed without DDP. Everything this
rank saw is written to ``<out>/rank<RANK>.pt`` for the test to compare.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from qstore.torch import DistributedConfig, PyTorchDistributedTrainer, QuantumLayer


def model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        QuantumLayer(n_qubits=4, depth=2, entanglement="circular"), nn.Linear(4, 2)
    )


def data(n: int, seed: int) -> TensorDataset:
    """Two noisy classes that a 4-qubit angle encoding separates."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    centre = torch.tensor([[0.6, 2.4, 0.6, 2.4], [2.4, 0.6, 2.4, 0.6]])
    x = centre[y] + 0.35 * torch.randn(n, 4, generator=g)
    return TensorDataset(x, y)


def ddp_gradients(rank: int, world: int) -> dict[str, object]:
    net = model(seed=rank)  # different on purpose: DDP broadcasts rank 0's parameters
    ddp = DistributedDataParallel(net)
    x, y = data(8, seed=1).tensors
    half = slice(rank * 4, (rank + 1) * 4)
    nn.functional.cross_entropy(ddp(x[half]), y[half]).backward()
    reference = model(seed=0)
    nn.functional.cross_entropy(reference(x), y).backward()
    diffs = [
        float((p.grad - r.grad).abs().max())  # type: ignore[operator]
        for p, r in zip(net.parameters(), reference.parameters(), strict=True)
    ]
    same_start = all(
        torch.equal(p, r) for p, r in zip(net.parameters(), reference.parameters(), strict=True)
    )
    return {"grad_diffs": diffs, "same_start": same_start, "world": world}


def main() -> None:
    out = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    net = model(seed=rank)  # different on every rank: the trainer must make them agree
    trainer = PyTorchDistributedTrainer(
        DistributedConfig(
            learning_rate=0.1,
            checkpoint_dir=str(out / "checkpoints"),
            progress=rank == 0,
            seed=3,
        )
    )
    train = DataLoader(data(96, seed=2), batch_size=8, shuffle=True)
    val = DataLoader(data(37, seed=3), batch_size=16)
    history = trainer.train(net, train, val, epochs=3)
    joined = dist.is_initialized() and dist.get_backend() == "gloo"
    phase2 = ddp_gradients(rank, world)
    trainer.close()
    torch.save(
        {
            "history": history,
            "state": net.state_dict(),
            "rank": trainer.rank,
            "world_size": trainer.world_size,
            "joined_gloo": joined,
            "left": not dist.is_initialized(),
            "ddp": phase2,
        },
        out / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main()
