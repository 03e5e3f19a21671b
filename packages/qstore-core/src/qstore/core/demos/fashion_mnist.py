"""``qstore demo fashion-mnist``: the seed's hybrid quantum model, trained end to end.

Data: the Fashion-MNIST images scaled to [0, 1], projected on their 64 principal components
(scikit-learn's PCA, fitted on the training images) and standardised. Model::

    Input(64) -> Dense(32, relu) -> AmplitudeEncoding(6) -> QuantumLayer(6, depth=4)
              -> ExpectationValue(Z x 6) -> Dense(128, relu) -> Dropout(0.2) -> Dense(10, softmax)

trained with Adam (learning rate 1e-3) on batches of 32 for 3 epochs, the last 20 % of the
training images held out for validation (as Keras' ``validation_split`` does), then scored on
the 10 000 test images.

This module holds what needs no framework: the data, the history, the plot, the command's
options and the run. The model itself and its training loop belong to the distribution that owns
the framework and arrive as a :class:`Trainer` through the entry-point group ``qstore.demos``
(the entry point's name is the ``--framework`` value)::

    [project.entry-points."qstore.demos"]
    keras = "qstore.tf.demos.fashion_mnist:KerasTrainer"      # qstore-tf
    torch = "qstore.torch.demos.fashion_mnist:TorchTrainer"   # qstore-torch

>>> from qstore.core.demos.fashion_mnist import DemoConfig
>>> DemoConfig(framework="torch", epochs=1).epochs
1
>>> # run_fashion_mnist_demo(DemoConfig(framework="torch", data_dir="/data/fashion-mnist"))
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO, runtime_checkable

import numpy as np
import numpy.typing as npt

from qstore.core.backends.registry import install_hint
from qstore.core.errors import MissingDependencyError, QStoreError

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

N_QUBITS = 6
DEPTH = 4
FEATURES = 64
HIDDEN = 32
BATCH = 32
EPOCHS = 3
VALIDATION_SPLIT = 0.2
LEARNING_RATE = 1e-3

DEMO_ENTRY_POINT_GROUP = "qstore.demos"
"""Entry-point group through which framework distributions provide a :class:`Trainer`."""

KNOWN_FRAMEWORKS: dict[str, str] = {"keras": "qstore-tf", "torch": "qstore-torch"}
"""``--framework`` values of our own distributions -> the distribution to install for each."""

FRAMEWORKS = tuple(KNOWN_FRAMEWORKS)

Block = Literal["quantum", "classical"]
"""The part between ``Dense(32, relu)`` and ``Dense(128, relu)``: the three quantum layers, or
the classical twin (``Dense(6, tanh)``) that the benchmarks compare against."""

__all__ = [
    "BATCH",
    "DEMO_ENTRY_POINT_GROUP",
    "DEPTH",
    "EPOCHS",
    "FEATURES",
    "FRAMEWORKS",
    "HIDDEN",
    "KNOWN_FRAMEWORKS",
    "LEARNING_RATE",
    "N_QUBITS",
    "VALIDATION_SPLIT",
    "Block",
    "Data",
    "DemoConfig",
    "DemoDependencyError",
    "DemoReport",
    "FitSettings",
    "History",
    "Trainer",
    "add_training_arguments",
    "frameworks",
    "held_native_stderr",
    "load_data",
    "load_trainer",
    "pca_features",
    "plot_history",
    "run_fashion_mnist_demo",
    "z_observables",
]


class DemoDependencyError(MissingDependencyError):
    """A library or distribution the demo needs is not installed; the message says what to
    install."""


# -- data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    """Preprocessed features ``[n, 64]`` (float32) and labels ``[n]`` (int64)."""

    x_train: F32
    y_train: I64
    x_test: F32
    y_test: I64

    def split(self, validation_split: float = VALIDATION_SPLIT) -> int:
        """How many training rows are fitted on; the rest (the last ones) validate."""
        return len(self.x_train) - int(len(self.x_train) * validation_split)

    def train_steps(
        self, batch_size: int = BATCH, validation_split: float = VALIDATION_SPLIT
    ) -> int:
        """Optimizer steps in one epoch."""
        return math.ceil(self.split(validation_split) / batch_size)


def pca_features(train: F32, test: F32, k: int = FEATURES, seed: int = 0) -> tuple[F32, F32]:
    """Project on the top ``k`` principal components of ``train`` (scikit-learn's exact PCA) and
    standardise each component with the training set's standard deviation."""
    try:
        from sklearn.decomposition import PCA
    except ImportError as exc:
        raise DemoDependencyError(
            f"the Fashion-MNIST demo needs scikit-learn for its PCA ({exc}); install it with: "
            'pip install "qstore-core[demo]"'
        ) from exc
    # The exact solver through the 784 x 784 covariance: faster here than the randomised one.
    pca = PCA(n_components=k, svd_solver="covariance_eigh", random_state=seed)
    z_train = np.asarray(pca.fit_transform(train), dtype=np.float32)
    z_test = np.asarray(pca.transform(test), dtype=np.float32)
    scale = z_train.std(axis=0) + np.float32(1e-6)
    return (z_train / scale).astype(np.float32), (z_test / scale).astype(np.float32)


def add_training_arguments(p: argparse.ArgumentParser, per: str, writer: str) -> None:
    """The options every Fashion-MNIST training command shares (``qstore train-keras``,
    ``qstore train-torch``): data, sizes, epochs, optimiser, output, seed and progress.

    ``per`` names what ``--batch-size`` counts per (``"worker"``, ``"process"``); ``writer`` who
    writes the outputs into ``--out`` and which files (for the help text).

    >>> p = argparse.ArgumentParser()
    >>> add_training_arguments(p, "process", "rank 0 writes model.pt")
    >>> p.parse_args(["--epochs", "2"]).epochs
    2
    """
    from qstore.core.argtypes import positive_float, positive_int

    p.add_argument("--data-dir", help="the four Fashion-MNIST IDX gzip files (default: search)")
    p.add_argument("--n-train", type=positive_int, help="train on a random subset of N images")
    p.add_argument("--n-test", type=positive_int, help="test on a random subset of N images")
    p.add_argument("--epochs", type=positive_int, default=EPOCHS)
    p.add_argument("--batch-size", type=positive_int, default=BATCH, help=f"per {per}")
    p.add_argument("--learning-rate", type=positive_float, default=LEARNING_RATE)
    p.add_argument("--validation-split", type=float, default=VALIDATION_SPLIT)
    p.add_argument("--out", help=f"where {writer} and summary.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true", help=f"progress output ({per} 0 only)")


def load_data(
    data_dir: str | os.PathLike[str] | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    *,
    download: bool = False,
    seed: int = 0,
) -> Data:
    """Fashion-MNIST (optionally a random subset of ``n_train`` / ``n_test`` images) as PCA-64
    features. ``data_dir=None`` searches :func:`qstore.core.datasets.fashion_mnist.search_path`;
    nothing is downloaded unless ``download=True``."""
    from qstore.core.datasets import load_fashion_mnist

    (xtr, ytr), (xte, yte) = load_fashion_mnist(data_dir, download=download)
    rng = np.random.default_rng(seed)
    if n_train is not None and n_train < len(xtr):
        pick = np.sort(rng.permutation(len(xtr))[:n_train])
        xtr, ytr = xtr[pick], ytr[pick]
    if n_test is not None and n_test < len(xte):
        pick = np.sort(rng.permutation(len(xte))[:n_test])
        xte, yte = xte[pick], yte[pick]
    # Pixels in [0, 1]; scaled in place (one pass over the 47 million training pixels).
    flat_tr = xtr.reshape(len(xtr), -1).astype(np.float32)
    flat_tr *= np.float32(1.0 / 255.0)
    flat_te = xte.reshape(len(xte), -1).astype(np.float32)
    flat_te *= np.float32(1.0 / 255.0)
    ftr, fte = pca_features(flat_tr, flat_te, seed=seed)
    return Data(ftr, ytr.astype(np.int64), fte, yte.astype(np.int64))


def z_observables(n_qubits: int = N_QUBITS) -> Any:
    """``[cirq.Z] * n`` (the seed's form) when Cirq is installed, else ``None``: the layers'
    default, the same observables."""
    try:
        import cirq
    except ImportError:
        return None
    return [cirq.Z] * n_qubits


# -- history ---------------------------------------------------------------------------------
@dataclass
class History:
    """Per-epoch training and validation loss and accuracy, and the seconds of each epoch."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_s: list[float] = field(default_factory=list)

    @property
    def fit_s(self) -> float:
        """Seconds of all epochs together."""
        return float(sum(self.epoch_s))


def plot_history(history: History, path: str | os.PathLike[str], title: str) -> Path:
    """Learning curves (loss and accuracy, training and validation, per epoch) as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise DemoDependencyError(
            f"the learning-curve plot needs matplotlib ({exc}); install it with: "
            'pip install "qstore-core[demo]" (or pass --no-save)'
        ) from exc
    epochs = list(range(1, len(history.loss) + 1))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    try:
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(epochs, getattr(history, key), "o-", label="training")
            if getattr(history, f"val_{key}"):
                ax.plot(epochs, getattr(history, f"val_{key}"), "s--", label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
            ax.set_xticks(epochs)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(title)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out


# -- the framework's side --------------------------------------------------------------------
@dataclass(frozen=True)
class FitSettings:
    """How a :class:`Trainer` fits: the demo's training options.

    ``progress`` shows the framework's progress output; ``interactive`` says it may redraw a line
    in place (standard output is a terminal).
    """

    epochs: int = EPOCHS
    batch_size: int = BATCH
    validation_split: float = VALIDATION_SPLIT
    learning_rate: float = LEARNING_RATE
    seed: int = 0
    progress: bool = False
    interactive: bool = False


@runtime_checkable
class Trainer(Protocol):
    """A framework's side of the demo, provided by the distribution that owns the framework.

    ``build`` returns the demo model (``block``: the quantum layers or the classical twin) with
    the framework's random seed set to ``seed``; ``fit`` trains it on ``data`` (Adam, sparse
    categorical cross-entropy, the last ``validation_split`` of the training rows validating);
    ``evaluate`` returns the test loss and accuracy; ``save`` writes the model to ``path``,
    whose file name is ``model_file``.
    """

    model_file: str

    def build(self, block: Block = "quantum", seed: int = 0) -> Any: ...

    def fit(self, model: Any, data: Data, settings: FitSettings) -> History: ...

    def evaluate(self, model: Any, data: Data) -> tuple[float, float]: ...

    def save(self, model: Any, path: Path) -> None: ...


def _demo_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=DEMO_ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in sorted(eps, key=lambda e: e.name)}


def frameworks() -> tuple[str, ...]:
    """The ``--framework`` values: our own (installed or not) and every installed trainer's.

    >>> {"keras", "torch"} <= set(frameworks())
    True
    """
    return tuple(sorted(set(KNOWN_FRAMEWORKS) | set(_demo_entry_points())))


@contextmanager
def held_native_stderr() -> Iterator[None]:
    """Hold back what native code writes to the standard-error file descriptor and show it only
    if the block fails.

    Frameworks print start-up lines there (TensorFlow's, which its log-level variable does not
    all silence) while they are imported and started.
    """
    fd = 2  # where native code writes, whatever Python's sys.stderr is
    try:
        sys.stderr.flush()
        saved = os.dup(fd)
    except (OSError, ValueError):  # no standard error descriptor: nothing to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            if not ok:
                held.seek(0)
                os.write(fd, held.read())


def load_trainer(framework: str) -> Trainer:
    """The installed :class:`Trainer` for ``framework`` (entry-point group ``qstore.demos``).

    Raises :class:`DemoDependencyError` with the install command when no installed distribution
    provides it, or when the one that does cannot be loaded.
    """
    ep = _demo_entry_points().get(framework)
    dist = KNOWN_FRAMEWORKS.get(framework)
    if ep is None:
        if dist is None:
            raise QStoreError(
                f"framework must be one of {', '.join(frameworks())}, got {framework!r}"
            )
        raise DemoDependencyError(
            f"the Fashion-MNIST demo with --framework {framework} needs {dist}, which is not "
            f"installed; install it with: {install_hint(dist)}"
        )
    provider = ep.dist.name if ep.dist is not None else (dist or ep.value)
    try:
        with held_native_stderr():  # the framework's import-time lines
            factory = ep.load()
            trainer = factory()
    except ImportError as exc:
        raise DemoDependencyError(
            f"the {framework!r} trainer of {provider} ({ep.value}) cannot be loaded: {exc}; "
            f"reinstall it with: {install_hint(provider)}"
        ) from exc
    if not isinstance(trainer, Trainer):
        raise QStoreError(
            f"the {framework!r} entry point of {provider} ({ep.value}) gave {trainer!r}, which "
            "is not a qstore.core.demos.fashion_mnist.Trainer (model_file, build, fit, "
            "evaluate, save)"
        )
    return trainer


# -- the demo --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoConfig:
    """Options of :func:`run_fashion_mnist_demo` (the command's flags)."""

    framework: str = "keras"
    data_dir: str | None = None
    download: bool = False
    epochs: int = EPOCHS
    batch_size: int = BATCH
    validation_split: float = VALIDATION_SPLIT
    learning_rate: float = LEARNING_RATE
    n_train: int | None = None
    n_test: int | None = None
    seed: int = 0
    out_dir: str = "qstore-demo-fashion-mnist"
    progress: bool = True
    save: bool = True

    def __post_init__(self) -> None:
        if self.framework not in frameworks():
            raise QStoreError(
                f"framework must be one of {', '.join(frameworks())}, got {self.framework!r}"
            )
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise QStoreError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.validation_split < 1.0:
            raise QStoreError(f"validation_split must be in [0, 1), got {self.validation_split}")
        for name in ("n_train", "n_test"):
            value = getattr(self, name)
            if value is not None and value < 10:
                raise QStoreError(f"{name} must be at least 10 images, got {value}")

    def fit_settings(self, interactive: bool = False) -> FitSettings:
        """The training part of these options."""
        return FitSettings(
            self.epochs,
            self.batch_size,
            self.validation_split,
            self.learning_rate,
            self.seed,
            self.progress,
            self.progress and interactive,
        )


@dataclass(frozen=True)
class DemoReport:
    """What the demo did: accuracy, times (seconds) and where it saved its files."""

    framework: str
    test_accuracy: float
    test_loss: float
    n_train: int
    n_test: int
    history: History
    data_s: float
    fit_s: float
    evaluate_s: float
    wall_s: float
    model_path: str | None
    plot_path: str | None
    summary_path: str | None


def _save(
    trainer: Trainer, model: Any, config: DemoConfig, history: History, accuracy: float
) -> tuple[str, str]:
    target = Path(config.out_dir)
    target.mkdir(parents=True, exist_ok=True)
    model_path = target / trainer.model_file
    trainer.save(model, model_path)
    title = f"Q-Store Fashion-MNIST ({config.framework}): test accuracy {100 * accuracy:.1f} %"
    plot_path = plot_history(history, target / "learning_curves.png", title)
    return str(model_path), str(plot_path)


def _write_summary(report: DemoReport, config: DemoConfig) -> DemoReport:
    path = str(Path(config.out_dir) / "summary.json")
    payload = asdict(report) | {"summary_path": path, "config": asdict(config)}
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
    return replace(report, summary_path=path)


def run_fashion_mnist_demo(
    config: DemoConfig | None = None, out: TextIO | None = None
) -> DemoReport:
    """Load the data, build the hybrid model, train it, score it and save model, learning curves
    and a JSON summary to ``config.out_dir``. Prints as it goes to ``out`` (default stdout)."""
    out = sys.stdout if out is None else out
    config = DemoConfig() if config is None else config
    t_start = time.perf_counter()
    w = out.write
    w(
        f"Fashion-MNIST demo ({config.framework}): PCA {FEATURES} -> Dense {HIDDEN} -> "
        f"AmplitudeEncoding({N_QUBITS}) -> QuantumLayer({N_QUBITS}, depth {DEPTH}) -> <Z> x "
        f"{N_QUBITS} -> Dense 128 -> Dense 10\n"
    )
    out.flush()
    trainer = load_trainer(config.framework)  # a missing framework fails before the data work
    t_data = time.perf_counter()
    data = load_data(
        config.data_dir, config.n_train, config.n_test, download=config.download, seed=config.seed
    )
    data_s = time.perf_counter() - t_data
    n_fit = data.split(config.validation_split)
    w(
        f"Data: {n_fit} training, {len(data.x_train) - n_fit} validation and {len(data.x_test)} "
        f"test images, PCA to {FEATURES} features in {data_s:.1f} s\n"
    )
    out.flush()

    model = trainer.build("quantum", config.seed)
    interactive = hasattr(out, "isatty") and out.isatty()
    history = trainer.fit(model, data, config.fit_settings(interactive))
    t_eval = time.perf_counter()
    test_loss, test_acc = trainer.evaluate(model, data)
    evaluate_s = time.perf_counter() - t_eval

    model_path = plot_path = None
    if config.save:
        model_path, plot_path = _save(trainer, model, config, history, test_acc)
    wall_s = time.perf_counter() - t_start
    report = DemoReport(
        config.framework,
        test_acc,
        test_loss,
        n_fit,
        len(data.x_test),
        history,
        data_s,
        history.fit_s,
        evaluate_s,
        wall_s,
        model_path,
        plot_path,
        None,
    )
    if config.save:
        report = _write_summary(report, config)

    w(
        f"\nTest accuracy: {100 * test_acc:.2f} % ({len(data.x_test)} images, "
        f"loss {test_loss:.4f})\n"
    )
    w(
        f"Wall time: {wall_s:.1f} s (data {data_s:.1f} s, training {history.fit_s:.1f} s over "
        f"{config.epochs} epoch(s), test {evaluate_s:.1f} s)\n"
    )
    if config.save:
        saved = f"model {model_path}, learning curves {plot_path}, summary {report.summary_path}"
        w(f"Saved: {saved}\n")
    out.flush()
    return report
