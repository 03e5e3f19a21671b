"""Data-parallel training with ``DistributedDataParallel`` under ``torchrun``.

:class:`PyTorchDistributedTrainer` is a plain training loop around an ordinary ``nn.Module``
(quantum layers or not): it reads the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), joins the process group (``gloo`` on CPU,
``nccl`` on GPU), shards the data loaders, wraps the model in DDP, and returns the metrics
history. Rank 0 logs, shows the progress bar and writes checkpoints; every rank ends with the
same weights. Started without ``torchrun`` (no ``WORLD_SIZE``), it trains in one process. A
process group that already exists is used as it is; one the trainer creates stays up for later
:meth:`~PyTorchDistributedTrainer.train` calls and is left at exit (or with ``close()``).

.. code-block:: bash

    torchrun --nproc_per_node=2 train.py          # one machine, two processes
    torchrun --nnodes=2 --node_rank=0 --master_addr=10.0.0.1 --nproc_per_node=1 train.py

>>> import torch
>>> from torch.utils.data import DataLoader, TensorDataset
>>> from qstore.torch import DistributedConfig, PyTorchDistributedTrainer, QuantumLayer
>>> _ = torch.manual_seed(0)
>>> data = TensorDataset(torch.rand(16, 2), torch.randint(0, 2, (16,)))
>>> model = torch.nn.Sequential(QuantumLayer(n_qubits=2, depth=1), torch.nn.Linear(2, 2))
>>> trainer = PyTorchDistributedTrainer(DistributedConfig(progress=False))
>>> history = trainer.train(model, DataLoader(data, batch_size=8), epochs=2)
>>> sorted(history)
['accuracy', 'epoch_seconds', 'loss']
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
)
from tqdm.auto import tqdm

from qstore.core.errors import QStoreError

__all__ = ["DistributedConfig", "DistributedTrainingError", "PyTorchDistributedTrainer"]

logger = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_LOSSES: dict[str, Callable[[], LossFn]] = {
    "cross_entropy": nn.CrossEntropyLoss,
    "nll": nn.NLLLoss,
    "mse": nn.MSELoss,
    "bce_with_logits": nn.BCEWithLogitsLoss,
}
_CLASSIFICATION = ("cross_entropy", "nll", "bce_with_logits")
_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}
_METRICS = ("accuracy",)


class DistributedTrainingError(QStoreError, RuntimeError):
    """Distributed training was misconfigured (environment, data, configuration)."""


@dataclass(frozen=True)
class DistributedConfig:
    """How :class:`PyTorchDistributedTrainer` trains; validated at construction.

    Args:
        learning_rate: optimiser step size.
        optimizer: ``'adam'``, ``'adamw'`` or ``'sgd'``, or a function ``params -> optimizer``.
        loss: ``'cross_entropy'``, ``'nll'``, ``'mse'``, ``'bce_with_logits'``, or a function
            ``(output, target) -> scalar``.
        metrics: extra metrics; ``None`` means ``('accuracy',)`` for classification losses and
            none otherwise.
        process_group_backend: ``'auto'`` (``nccl`` when training on CUDA, else ``gloo``),
            ``'gloo'`` or ``'nccl'``.
        device: ``'auto'`` (``cuda:LOCAL_RANK`` when CUDA is available, else CPU), ``'cpu'``
            or ``'cuda'``.
        checkpoint_dir: where rank 0 writes ``epoch_NNNN.pt`` and ``last.pt`` (model and
            optimiser state, epoch, history); ``None``: no checkpoints.
        checkpoint_every: epochs between checkpoints (the last epoch is always written).
        resume: continue from ``checkpoint_dir/last.pt`` when it exists.
        progress: a tqdm progress bar on rank 0.
        seed: seeds torch's RNG (plus the rank, so that dropout differs between ranks) and the
            shuffling of the training shards; ``None`` leaves the RNG alone.
        grad_clip_norm: clip the gradient norm to this value before each step.
        find_unused_parameters: passed to ``DistributedDataParallel``.
        timeout_s: process-group timeout in seconds.
    """

    learning_rate: float = 1e-2
    optimizer: str | Callable[[Any], torch.optim.Optimizer] = "adam"
    loss: str | LossFn = "cross_entropy"
    metrics: tuple[str, ...] | None = None
    process_group_backend: str = "auto"
    device: str = "auto"
    checkpoint_dir: str | None = None
    checkpoint_every: int = 1
    resume: bool = False
    progress: bool = True
    seed: int | None = 0
    grad_clip_norm: float | None = None
    find_unused_parameters: bool = False
    timeout_s: float = 1800.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> DistributedTrainingError:
            return DistributedTrainingError(
                f"DistributedConfig.{name} = {getattr(self, name)!r} is invalid; {allowed}."
            )

        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise bad("learning_rate", "use a positive number")
        if isinstance(self.optimizer, str) and self.optimizer not in _OPTIMIZERS:
            raise bad("optimizer", f"use one of {sorted(_OPTIMIZERS)} or a callable")
        if not isinstance(self.optimizer, str) and not callable(self.optimizer):
            raise bad("optimizer", "use a name or a callable params -> optimizer")
        if isinstance(self.loss, str) and self.loss not in _LOSSES:
            raise bad("loss", f"use one of {sorted(_LOSSES)} or a callable")
        if not isinstance(self.loss, str) and not callable(self.loss):
            raise bad("loss", "use a name or a callable (output, target) -> loss")
        if self.metrics is not None:
            if isinstance(self.metrics, str) or any(m not in _METRICS for m in self.metrics):
                raise bad("metrics", f"use a tuple of names from {list(_METRICS)}")
            object.__setattr__(self, "metrics", tuple(self.metrics))
        if self.process_group_backend not in ("auto", "gloo", "nccl"):
            raise bad("process_group_backend", "use 'auto', 'gloo' or 'nccl'")
        if self.device not in ("auto", "cpu", "cuda"):
            raise bad("device", "use 'auto', 'cpu' or 'cuda'")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise bad("device", "CUDA is not available here; use 'auto' or 'cpu'")
        if self.process_group_backend == "nccl" and self.device == "cpu":
            raise bad("process_group_backend", "nccl needs CUDA devices; use 'gloo' on CPU")
        ce = self.checkpoint_every
        if isinstance(ce, bool) or not isinstance(ce, int) or ce < 1:
            raise bad("checkpoint_every", "use a positive int")
        if self.resume and not self.checkpoint_dir:
            raise bad("resume", "resuming needs a checkpoint_dir")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise bad("seed", "use an int or None")
        gc = self.grad_clip_norm
        if gc is not None and (isinstance(gc, bool) or not isinstance(gc, (int, float)) or gc <= 0):
            raise bad("grad_clip_norm", "use a positive number or None")
        if not self.timeout_s > 0:
            raise bad("timeout_s", "use a positive number of seconds")

    @property
    def metric_names(self) -> tuple[str, ...]:
        if self.metrics is not None:
            return self.metrics
        return ("accuracy",) if self.loss in _CLASSIFICATION else ()

    def as_dict(self) -> dict[str, Any]:
        """Plain data (callables by name) for checkpoints and logs."""
        out = asdict(self)
        for k in ("optimizer", "loss"):
            if callable(out[k]):
                out[k] = getattr(out[k], "__qualname__", repr(out[k]))
        return out


@dataclass(frozen=True)
class _World:
    rank: int
    world_size: int
    local_rank: int


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedTrainingError(
            f"Environment variable {name}={raw!r} is not an integer; it is set by torchrun."
        ) from None


def _world_from_env() -> _World:
    if dist.is_available() and dist.is_initialized():
        return _World(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    world = _World(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    if world.world_size < 1 or not 0 <= world.rank < world.world_size:
        raise DistributedTrainingError(
            f"RANK={world.rank} and WORLD_SIZE={world.world_size} are inconsistent; start the "
            "script with torchrun, which sets both."
        )
    return world


_OWN_GROUP = False  # whether a trainer created the default process group of this process


def _leave_group() -> None:
    global _OWN_GROUP
    if _OWN_GROUP and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _OWN_GROUP = False


class _ShardSampler(Sampler[int]):
    """Every ``world``-th index from ``rank``, unpadded: exact metrics after a sum-reduction."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _rebuild(loader: DataLoader[Any], sampler: Sampler[int]) -> DataLoader[Any]:
    kwargs: dict[str, Any] = {
        "batch_size": loader.batch_size,
        "sampler": sampler,
        "num_workers": loader.num_workers,
        "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory,
        "drop_last": loader.drop_last,
        "timeout": loader.timeout,
        "worker_init_fn": loader.worker_init_fn,
        "generator": loader.generator,
    }
    if loader.num_workers > 0:
        kwargs["persistent_workers"] = loader.persistent_workers
        kwargs["prefetch_factor"] = loader.prefetch_factor
    return DataLoader(loader.dataset, **kwargs)


class PyTorchDistributedTrainer:
    """DistributedDataParallel training of any ``nn.Module``; see the module docstring.

    >>> trainer = PyTorchDistributedTrainer(DistributedConfig(learning_rate=0.05))
    >>> trainer.config.learning_rate
    0.05
    """

    def __init__(self, config: DistributedConfig | None = None) -> None:
        if config is None:
            config = DistributedConfig()
        if not isinstance(config, DistributedConfig):
            raise DistributedTrainingError(
                f"config must be a DistributedConfig, got {type(config).__name__}."
            )
        self.config = config
        self.history: dict[str, list[float]] = {}
        self.rank = 0
        self.world_size = 1
        self.device = torch.device("cpu")

    # -- environment ------------------------------------------------------------------------
    def _device(self, world: _World) -> torch.device:
        want = self.config.device
        if want == "cpu" or (want == "auto" and not torch.cuda.is_available()):
            return torch.device("cpu")
        return torch.device("cuda", world.local_rank % max(torch.cuda.device_count(), 1))

    def _join(self, world: _World, device: torch.device) -> None:
        """Initialise the process group unless there is one (or a single process)."""
        if world.world_size == 1 or dist.is_initialized():
            return
        if not dist.is_available():
            raise DistributedTrainingError("torch.distributed is not available in this build.")
        backend = self.config.process_group_backend
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
        if missing:
            raise DistributedTrainingError(
                f"WORLD_SIZE={world.world_size} but {', '.join(missing)} is not set; start the "
                "script with torchrun (e.g. torchrun --nproc_per_node=2 train.py)."
            )
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            backend,
            init_method="env://",
            rank=world.rank,
            world_size=world.world_size,
            timeout=timedelta(seconds=self.config.timeout_s),
        )
        global _OWN_GROUP
        if not _OWN_GROUP:
            atexit.register(_leave_group)
        _OWN_GROUP = True

    def _loader(self, loader: Any, train: bool, world: _World) -> Any:
        """Shard a DataLoader across ranks (training: DistributedSampler, padded so that every
        rank takes the same number of steps; validation: unpadded shards)."""
        if loader is None or world.world_size == 1:
            return loader
        if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
            logger.warning(
                "Rank %d: %s is not a map-style DataLoader; using it as given, so it must "
                "yield this rank's shard itself.",
                world.rank,
                type(loader).__name__,
            )
            return loader
        if isinstance(loader.sampler, DistributedSampler):
            return loader
        if loader.batch_size is None:
            logger.warning(
                "Rank %d: the DataLoader has a custom batch_sampler; using it as given, so it "
                "must yield this rank's shard itself.",
                world.rank,
            )
            return loader
        n = len(loader.dataset)  # type: ignore[arg-type]
        if train:
            sampler: Sampler[int] = DistributedSampler(
                loader.dataset,
                num_replicas=world.world_size,
                rank=world.rank,
                shuffle=isinstance(loader.sampler, RandomSampler),
                seed=self.config.seed or 0,
                drop_last=loader.drop_last,
            )
        else:
            sampler = _ShardSampler(n, world.rank, world.world_size)
        return _rebuild(loader, sampler)

    # -- pieces -----------------------------------------------------------------------------
    def _loss_fn(self) -> LossFn:
        loss = self.config.loss
        return _LOSSES[loss]() if isinstance(loss, str) else loss

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        opt = self.config.optimizer
        if isinstance(opt, str):
            return _OPTIMIZERS[opt](model.parameters(), lr=self.config.learning_rate)
        return opt(model.parameters())

    def _to(self, batch: Any, device: torch.device) -> tuple[Any, torch.Tensor]:
        if isinstance(batch, Mapping):
            keys = [k for k in ("x", "inputs", "input", "features") if k in batch]
            tkeys = [k for k in ("y", "target", "targets", "label", "labels") if k in batch]
            if not keys or not tkeys:
                raise DistributedTrainingError(
                    f"A dict batch needs an input key (x/inputs/features) and a target key "
                    f"(y/target/label); got keys {sorted(batch)}."
                )
            batch = (batch[keys[0]], batch[tkeys[0]])
        if not isinstance(batch, Sequence) or len(batch) != 2:
            raise DistributedTrainingError(
                "Batches must be (inputs, targets) pairs; got "
                f"{type(batch).__name__}{'' if not isinstance(batch, Sequence) else len(batch)}."
            )
        x, y = batch
        x = x.to(device, non_blocking=True) if isinstance(x, torch.Tensor) else x
        return x, y.to(device, non_blocking=True)

    def _correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if out.dim() >= 2 and out.shape[-1] > 1:
            return (out.argmax(dim=-1) == y).sum()
        pred = out.reshape(y.shape) > (0.0 if self.config.loss == "bce_with_logits" else 0.5)
        return (pred == y.bool()).sum()

    def _reduce(self, totals: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        return totals

    def _run_epoch(
        self,
        model: nn.Module,
        loader: Any,
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer | None,
        desc: str,
    ) -> dict[str, float]:
        train = optimizer is not None
        model.train(train)
        metrics = self.config.metric_names
        # loss * samples, correct, samples; reduced across ranks at the end (float64: exact)
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)
        bar = tqdm(
            loader,
            desc=desc,
            disable=not self.config.progress or self.rank != 0,
            leave=False,
            dynamic_ncols=True,
        )
        with torch.set_grad_enabled(train):
            for batch in bar:
                x, y = self._to(batch, self.device)
                out = model(x)
                loss = loss_fn(out, y)
                if optimizer is not None:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()  # type: ignore[no-untyped-call]
                    if self.config.grad_clip_norm is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip_norm)
                    optimizer.step()
                bs = y.shape[0]
                with torch.no_grad():
                    totals[0] += loss.detach().double() * bs
                    totals[2] += bs
                    if metrics:
                        totals[1] += self._correct(out.detach(), y).double()
                if self.rank == 0 and self.config.progress:
                    bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        totals = self._reduce(totals)
        n = max(float(totals[2]), 1.0)
        result = {"loss": float(totals[0]) / n}
        if "accuracy" in metrics:
            result["accuracy"] = float(totals[1]) / n
        return result

    def _save(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        assert self.config.checkpoint_dir is not None
        folder = Path(self.config.checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": self.history,
            "config": self.config.as_dict(),
            "world_size": self.world_size,
        }
        path = folder / f"epoch_{epoch:04d}.pt"
        torch.save(payload, path)
        tmp = folder / "last.pt.tmp"
        torch.save(payload, tmp)
        os.replace(tmp, folder / "last.pt")  # atomic: a crash never leaves a torn last.pt
        logger.info("Saved checkpoint %s", path)

    def _resume(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
        path = Path(self.config.checkpoint_dir or ".") / "last.pt"
        if not (self.config.resume and path.exists()):
            return 0
        state = torch.load(path, map_location=self.device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        if self.rank == 0:
            logger.info("Resumed from %s after epoch %d", path, state["epoch"])
        return int(state["epoch"])

    # -- the loop ---------------------------------------------------------------------------
    def train(
        self,
        model: nn.Module,
        train_loader: Any,
        val_loader: Any = None,
        epochs: int = 1,
    ) -> dict[str, list[float]]:
        """Train ``model`` in place for ``epochs``; returns the history of every metric.

        Keys: ``loss`` (and ``accuracy`` for classification), ``val_loss``/``val_accuracy``
        with a ``val_loader``, and ``epoch_seconds``. Values are averages over all ranks'
        samples, identical on every rank.
        """
        if not isinstance(model, nn.Module):
            raise DistributedTrainingError(
                f"model must be an nn.Module, got {type(model).__name__}."
            )
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise DistributedTrainingError(f"epochs must be a positive int, got {epochs!r}.")
        if train_loader is None:
            raise DistributedTrainingError("train_loader is required.")
        world = _world_from_env()
        self.rank, self.world_size = world.rank, world.world_size
        self.device = self._device(world)
        self._join(world, self.device)
        return self._train(model, train_loader, val_loader, epochs, world)

    def close(self) -> None:
        """Leave the process group if a trainer created it (also done at interpreter exit).

        The group stays up between :meth:`train` calls: re-creating the default group on
        torchrun's store after destroying it can pick up the old group's addresses.
        """
        _leave_group()

    def __enter__(self) -> PyTorchDistributedTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _train(
        self, model: nn.Module, train_loader: Any, val_loader: Any, epochs: int, world: _World
    ) -> dict[str, list[float]]:
        cfg = self.config
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed + world.rank)
        model.to(self.device)
        net: nn.Module = model
        if world.world_size > 1:
            net = DistributedDataParallel(
                model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters,
            )
        train_loader = self._loader(train_loader, True, world)
        val_loader = self._loader(val_loader, False, world)
        loss_fn = self._loss_fn()
        optimizer = self._optimizer(model)
        self.history = {}
        start = self._resume(model, optimizer)
        if self.rank == 0:
            logger.info(
                "Training on %d process(es), device %s, backend %s, epochs %d..%d",
                world.world_size,
                self.device,
                dist.get_backend() if world.world_size > 1 else "none",
                start + 1,
                epochs,
            )
        for epoch in range(start, epochs):
            sampler = getattr(train_loader, "sampler", None)
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(epoch)
            t0 = time.perf_counter()
            row = self._run_epoch(net, train_loader, loss_fn, optimizer, f"epoch {epoch + 1}")
            if val_loader is not None:
                # The plain module: no gradient synchronisation, so unequal shards are fine.
                val = self._run_epoch(model, val_loader, loss_fn, None, "validation")
                row.update({f"val_{k}": v for k, v in val.items()})
            row["epoch_seconds"] = time.perf_counter() - t0
            for k, v in row.items():
                self.history.setdefault(k, []).append(v)
            if not math.isfinite(row["loss"]):
                raise DistributedTrainingError(
                    f"The training loss became {row['loss']} in epoch {epoch + 1}; lower the "
                    "learning rate or set grad_clip_norm."
                )
            if self.rank == 0:
                logger.info(
                    "epoch %d/%d: %s",
                    epoch + 1,
                    epochs,
                    ", ".join(f"{k}={v:.4g}" for k, v in row.items()),
                )
                last = epoch + 1 == epochs
                if cfg.checkpoint_dir and ((epoch + 1) % cfg.checkpoint_every == 0 or last):
                    self._save(model, optimizer, epoch + 1)
            if world.world_size > 1:
                dist.barrier()
        return self.history
