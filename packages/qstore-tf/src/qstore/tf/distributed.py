"""Multi-worker training of Keras models with quantum layers (``MultiWorkerMirroredStrategy``).

Every worker runs the same program; ``TF_CONFIG`` (set by the Kubeflow TFJob operator, or by
hand) says who is who::

    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}'

>>> trainer = TensorFlowDistributedTrainer(DistributedConfig(batch_size=32, loss="mse"))
>>> history = trainer.train(make_model, (x, y), val_data=(xv, yv), epochs=3)  # doctest: +SKIP

The strategy is created when the trainer is (TensorFlow requires ``MultiWorkerMirroredStrategy``
to exist before other collective ops), so create the trainer at the start of the program. The
model's variables must live in the strategy's scope: pass a function that builds the model (it is
called inside the scope), or a built model, which is cloned into the scope with its weights.
Without ``TF_CONFIG`` the same code trains on one worker.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import keras
import tensorflow as tf

from qstore.core.errors import QStoreError

logger = logging.getLogger(__name__)

STRATEGIES = ("multi_worker", "mirrored", "single")
COMMUNICATIONS = ("auto", "ring", "nccl")


class DistributedConfigError(QStoreError, ValueError):
    """A distributed-training setting is invalid."""


@dataclass(frozen=True)
class DistributedConfig:
    """Settings of :class:`TensorFlowDistributedTrainer`, validated at construction.

    Args:
        batch_size: samples per replica and step; the global batch is ``batch_size`` times the
            number of replicas (applies to ``(x, y)`` array data; a ``tf.data.Dataset`` is used as
            batched by you).
        learning_rate: for ``optimizer`` when the trainer compiles the model.
        optimizer: Keras optimizer name used when the trainer compiles.
        loss: Keras loss; ``None`` keeps the loss the model was compiled with.
        metrics: Keras metrics when the trainer compiles.
        strategy: ``'multi_worker'`` (``MultiWorkerMirroredStrategy``, reads ``TF_CONFIG``),
            ``'mirrored'`` (all local GPUs) or ``'single'`` (the default strategy).
        communication: collective implementation for multi-worker: ``'auto'``, ``'ring'``
            (gRPC, CPUs) or ``'nccl'`` (GPUs).
        backup_dir: if set, ``keras.callbacks.BackupAndRestore`` there, so a restarted worker
            resumes from the last epoch.
        callbacks: more Keras callbacks.
        verbose: Keras ``fit`` verbosity (chief only; other workers are silent).
    """

    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    loss: Any = None
    metrics: tuple[Any, ...] = ()
    strategy: str = "multi_worker"
    communication: str = "auto"
    backup_dir: str | None = None
    callbacks: tuple[Any, ...] = field(default=(), compare=False)
    verbose: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise DistributedConfigError(
                f"batch_size must be a positive int, got {self.batch_size!r}."
            )
        if self.batch_size < 1:
            raise DistributedConfigError(f"batch_size must be >= 1, got {self.batch_size}.")
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise DistributedConfigError(
                f"learning_rate must be a positive number, got {self.learning_rate!r}."
            )
        if self.strategy not in STRATEGIES:
            raise DistributedConfigError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}."
            )
        if self.communication not in COMMUNICATIONS:
            raise DistributedConfigError(
                f"communication must be one of {', '.join(COMMUNICATIONS)}, got "
                f"{self.communication!r}."
            )
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "callbacks", tuple(self.callbacks))

    @classmethod
    def from_any(cls, config: Any) -> DistributedConfig:
        """From a :class:`DistributedConfig`, a mapping, or an object with the same attribute
        names (such as ``qstore.TrainingConfig``: ``distributed_strategy`` maps to
        ``strategy``, ``'auto'`` meaning multi-worker); unknown names are ignored."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        names = {f.name for f in fields(cls)}
        if isinstance(config, dict):
            src = dict(config)
        else:
            src = {
                n: getattr(config, n)
                for n in [*names, "distributed_strategy"]
                if hasattr(config, n)
            }
        strategy = src.pop("distributed_strategy", None)
        if "strategy" not in src and strategy is not None:
            src["strategy"] = "multi_worker" if strategy == "auto" else strategy
        return cls(**{k: v for k, v in src.items() if k in names})


def cluster_spec() -> dict[str, Any]:
    """The parsed ``TF_CONFIG`` (empty when unset)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DistributedConfigError(f"TF_CONFIG is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise DistributedConfigError(f"TF_CONFIG must be a JSON object, got {raw!r}.")
    return data


def make_strategy(config: DistributedConfig) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named by ``config.strategy``."""
    if config.strategy == "single":
        return tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    impl = {
        "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
        "ring": tf.distribute.experimental.CommunicationImplementation.RING,
        "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
    }[config.communication]
    cluster_spec()  # validate TF_CONFIG early, with a readable error
    options = tf.distribute.experimental.CommunicationOptions(implementation=impl)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


class TensorFlowDistributedTrainer:
    """Train a Keras model (quantum layers included) on ``MultiWorkerMirroredStrategy``.

    ``train(model, train_data, val_data, epochs)`` returns the Keras ``History``; the trained
    model (the one living in the strategy's scope) is ``trainer.model``.
    """

    def __init__(self, config: Any = None) -> None:
        self.config = DistributedConfig.from_any(config)
        self.strategy = make_strategy(self.config)
        self.model: keras.Model | None = None

    @property
    def num_workers(self) -> int:
        workers = cluster_spec().get("cluster", {}).get("worker", [])
        return max(1, len(workers))

    @property
    def is_chief(self) -> bool:
        """Worker 0 (or the chief task) — the one that should write files and logs."""
        task = cluster_spec().get("task", {})
        kind, index = task.get("type", "worker"), int(task.get("index", 0))
        return kind == "chief" or (kind == "worker" and index == 0)

    def train(
        self,
        model: keras.Model | Callable[[], keras.Model],
        train_data: Any,
        val_data: Any = None,
        epochs: int = 1,
    ) -> keras.callbacks.History:
        """Fit ``model`` on ``train_data`` (``(x, y)`` arrays or a ``tf.data.Dataset``)."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise DistributedConfigError(f"epochs must be a positive int, got {epochs!r}.")
        cfg = self.config
        with self.strategy.scope():
            scoped = self._scoped_model(model)
            self._compile(scoped, model)
        global_batch = cfg.batch_size * self.strategy.num_replicas_in_sync
        train = self._dataset(train_data, global_batch, shuffle=True)
        val = None if val_data is None else self._dataset(val_data, global_batch, shuffle=False)
        callbacks = list(cfg.callbacks)
        if cfg.backup_dir:
            callbacks.append(keras.callbacks.BackupAndRestore(cfg.backup_dir))
        logger.info(
            "Training on %d worker(s), %d replica(s) in sync, global batch %d.",
            self.num_workers,
            self.strategy.num_replicas_in_sync,
            global_batch,
        )
        with self.strategy.scope():
            _prepare(scoped, train)
        history = self._fit(scoped, train, val, epochs, callbacks)
        self.model = scoped
        return history

    def _fit(
        self,
        model: keras.Model,
        train: tf.data.Dataset,
        val: tf.data.Dataset | None,
        epochs: int,
        callbacks: list[Any],
    ) -> keras.callbacks.History:
        """Keras's own ``train_step``/``test_step`` per replica, reduced across workers.

        ``model.fit`` is not used: Keras 3 (3.15) reduces the per-replica logs with
        ``strategy.reduce("MEAN", v, axis=0)``, which fails for scalar logs under
        ``MultiWorkerMirroredStrategy``, and averages the first distributed batch for its symbolic
        build, which the strategy refuses in eager mode. This loop is what ``fit`` does otherwise:
        same steps, same optimizer (gradients are all-reduced by it), callbacks and history.
        """
        strategy = self.strategy

        def reduce(logs: Any) -> dict[str, Any]:
            return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

        @tf.function
        def train_step(batch: Any) -> dict[str, Any]:
            return reduce(strategy.run(model.train_step, args=(batch,)))

        @tf.function
        def test_step(batch: Any) -> dict[str, Any]:
            return reduce(strategy.run(model.test_step, args=(batch,)))

        dist_train = strategy.experimental_distribute_dataset(train)
        dist_val = None if val is None else strategy.experimental_distribute_dataset(val)
        history = keras.callbacks.History()
        verbose = self.config.verbose if self.is_chief else 0
        cbs = keras.callbacks.CallbackList(
            [*callbacks, history],
            add_progbar=verbose != 0,
            verbose=verbose,
            epochs=epochs,
            steps=int(train.cardinality()) if int(train.cardinality()) > 0 else None,
            model=model,
        )
        model.stop_training = False
        cbs.on_train_begin()
        for epoch in range(epochs):
            model.reset_metrics()
            cbs.on_epoch_begin(epoch)
            logs: dict[str, Any] = {}
            for step, batch in enumerate(dist_train):
                cbs.on_train_batch_begin(step)
                logs = train_step(batch)
                cbs.on_train_batch_end(step, logs)
            epoch_logs = {k: float(v) for k, v in logs.items()}
            if dist_val is not None:
                model.reset_metrics()
                val_logs: dict[str, Any] = {}
                for batch in dist_val:
                    val_logs = test_step(batch)
                epoch_logs.update({f"val_{k}": float(v) for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        cbs.on_train_end(epoch_logs)
        return history

    def _scoped_model(self, model: keras.Model | Callable[[], keras.Model]) -> keras.Model:
        if isinstance(model, keras.Model):
            clone = keras.models.clone_model(model)
            clone.set_weights(model.get_weights())
            return clone
        if callable(model):
            built = model()
            if not isinstance(built, keras.Model):
                raise DistributedConfigError(
                    f"The model factory must return a keras.Model, got {type(built).__name__}."
                )
            return built
        raise DistributedConfigError(
            "model must be a keras.Model or a function that builds one, got "
            f"{type(model).__name__}."
        )

    def _compile(self, scoped: keras.Model, original: Any) -> None:
        cfg = self.config
        if cfg.loss is None:
            if isinstance(original, keras.Model) and original.compiled:
                scoped.compile_from_config(original.get_compile_config())
                return
            if scoped.compiled:
                return
            raise DistributedConfigError(
                "No loss: set DistributedConfig(loss=...) or pass a compiled model."
            )
        optimizer = keras.optimizers.get(
            {"class_name": cfg.optimizer, "config": {"learning_rate": cfg.learning_rate}}
        )
        scoped.compile(optimizer=optimizer, loss=cfg.loss, metrics=list(cfg.metrics))

    def _dataset(self, data: Any, global_batch: int, shuffle: bool) -> tf.data.Dataset:
        if isinstance(data, tf.data.Dataset):
            ds = data
        elif isinstance(data, Sequence) and len(data) == 2:
            ds = tf.data.Dataset.from_tensor_slices((data[0], data[1]))
            if shuffle:
                ds = ds.shuffle(min(len(data[0]), 10_000), seed=0, reshuffle_each_iteration=True)
            ds = ds.batch(global_batch)
        else:
            raise DistributedConfigError(
                f"Data must be (x, y) arrays or a tf.data.Dataset, got {type(data).__name__}."
            )
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return ds.with_options(options)


def _prepare(model: keras.Model, data: tf.data.Dataset) -> None:
    """Build the model, its compiled loss and metrics and its optimizer inside the scope, from
    one local batch (what ``fit`` does before its first step)."""
    x, *_ = next(iter(data.take(1)))
    if not model.built:
        model(x)
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is not None:
        symbolic_build(data_batch=next(iter(data.take(1))))
    model.optimizer.build(model.trainable_variables)
