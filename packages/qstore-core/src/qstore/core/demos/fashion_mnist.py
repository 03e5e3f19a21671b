"""``qstore demo fashion-mnist``: the seed's hybrid quantum model, trained end to end.

Data: the Fashion-MNIST images scaled to [0, 1], projected on their 64 principal components
(scikit-learn's PCA, fitted on the training images) and standardised. Model::

    Input(64) -> Dense(32, relu) -> AmplitudeEncoding(6) -> QuantumLayer(6, depth=4)
              -> ExpectationValue(Z x 6) -> Dense(128, relu) -> Dropout(0.2) -> Dense(10, softmax)

trained with Adam (learning rate 1e-3) on batches of 32 for 3 epochs, the last 20 % of the
training images held out for validation (as Keras' ``validation_split`` does), then scored on
the 10 000 test images. The same model exists for Keras (``qstore.tf``) and PyTorch
(``qstore.torch``); the builders and training loops here are also what the ``fashion-mnist``
benchmark suite times.

>>> # from qstore.core.demos.fashion_mnist import DemoConfig, run_fashion_mnist_demo
>>> # report = run_fashion_mnist_demo(DemoConfig(framework="torch", data_dir="/data/fmnist"))
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib import import_module
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import numpy.typing as npt

from qstore.core.errors import QStoreError

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
FRAMEWORKS = ("keras", "torch")

Block = Literal["quantum", "classical"]

__all__ = [
    "BATCH",
    "DEPTH",
    "EPOCHS",
    "FEATURES",
    "FRAMEWORKS",
    "N_QUBITS",
    "VALIDATION_SPLIT",
    "Data",
    "DemoConfig",
    "DemoReport",
    "History",
    "build_keras_model",
    "build_torch_model",
    "fit_keras",
    "fit_torch",
    "load_data",
    "pca_features",
    "plot_history",
    "run_fashion_mnist_demo",
]


class DemoDependencyError(QStoreError, ImportError):
    """A library the demo needs is not installed; the message says what to install."""


def _require(module: str, install: str) -> Any:
    try:
        return import_module(module)
    except ImportError as exc:
        raise DemoDependencyError(
            f"the Fashion-MNIST demo needs {module!r}, which is not importable ({exc}); "
            f"install it with: pip install {install}"
        ) from exc


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
    decomposition = _require("sklearn.decomposition", '"qstore-core[demo]" (scikit-learn)')
    # The exact solver through the 784 x 784 covariance: faster here than the randomised one.
    pca = decomposition.PCA(n_components=k, svd_solver="covariance_eigh", random_state=seed)
    z_train = np.asarray(pca.fit_transform(train), dtype=np.float32)
    z_test = np.asarray(pca.transform(test), dtype=np.float32)
    scale = z_train.std(axis=0) + np.float32(1e-6)
    return (z_train / scale).astype(np.float32), (z_test / scale).astype(np.float32)


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
        return float(sum(self.epoch_s))


# -- Keras -----------------------------------------------------------------------------------
@contextmanager
def _native_stderr_held() -> Iterator[None]:
    """Hold back what native code writes to the stderr file descriptor (TensorFlow's start-up
    log lines, which its log-level variable does not silence) and show it only on failure."""
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


def keras_module() -> Any:
    """Keras 3 on TensorFlow (``qstore.tf`` runs on TensorFlow's engine), imported and started
    without TensorFlow's start-up log lines."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" in sys.modules:
        return sys.modules["keras"]
    with _native_stderr_held():
        keras = _require("keras", "qstore-tf (or: pip install './packages/qstore-tf')")
        keras.ops.convert_to_tensor(0.0)  # starts the runtime (device discovery logs too)
    return keras


def z_observables(n_qubits: int = N_QUBITS) -> Any:
    """``[cirq.Z] * n`` when Cirq is installed, else ``None`` (the layers' default, the same)."""
    try:
        import cirq
    except ImportError:
        return None
    return [cirq.Z] * n_qubits


def _keras_quantum_block(keras: Any) -> list[Any]:
    layers = _require("qstore.tf.layers", "qstore-tf")
    return [
        layers.AmplitudeEncoding(n_qubits=N_QUBITS),
        layers.QuantumLayer(n_qubits=N_QUBITS, depth=DEPTH),
        layers.ExpectationValue(observables=z_observables()),
    ]


def build_keras_model(
    keras: Any | None = None, block: Block | Callable[[Any], list[Any]] = "quantum"
) -> Any:
    """The demo model as an uncompiled ``keras.Model``.

    ``block`` is the part between ``Dense(32, relu)`` and ``Dense(128, relu)``: ``"quantum"``
    (AmplitudeEncoding -> QuantumLayer -> ExpectationValue), ``"classical"`` (the classical
    twin, ``Dense(6, tanh)``) or a function ``keras -> [layers]``.
    """
    keras = keras_module() if keras is None else keras
    if block == "quantum":
        middle = _keras_quantum_block(keras)
    elif block == "classical":
        middle = [keras.layers.Dense(N_QUBITS, activation="tanh")]
    elif callable(block):
        middle = block(keras)
    else:
        raise ValueError(f"block must be 'quantum', 'classical' or a callable, got {block!r}")
    inputs = keras.Input((FEATURES,), name="pca_features")
    h = keras.layers.Dense(HIDDEN, activation="relu")(inputs)
    for layer in middle:
        h = layer(h)
    h = keras.layers.Dense(128, activation="relu")(h)
    h = keras.layers.Dropout(0.2)(h)
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    name = f"fashion_mnist_{block if isinstance(block, str) else 'custom'}"
    return keras.Model(inputs, outputs, name=name)


def fit_keras(
    model: Any,
    data: Data,
    epochs: int = EPOCHS,
    batch_size: int = BATCH,
    validation_split: float = VALIDATION_SPLIT,
    verbose: int | str = 0,
    learning_rate: float = LEARNING_RATE,
) -> History:
    """Compile ``model`` (Adam, sparse categorical cross-entropy) and fit it as the demo does."""
    keras = keras_module()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    times: list[float] = []

    callback_base: Any = keras.callbacks.Callback

    class _EpochTimer(callback_base):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.t0)

    fitted = model.fit(
        data.x_train,
        data.y_train,
        validation_split=validation_split,
        epochs=epochs,
        batch_size=batch_size,
        verbose=verbose,
        callbacks=[_EpochTimer()],
    )
    h = fitted.history
    return History(
        [float(v) for v in h["loss"]],
        [float(v) for v in h["accuracy"]],
        [float(v) for v in h.get("val_loss", [])],
        [float(v) for v in h.get("val_accuracy", [])],
        times,
    )


def evaluate_keras(model: Any, data: Data) -> tuple[float, float]:
    """Test loss and accuracy."""
    loss, acc = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
    return float(loss), float(acc)


# -- PyTorch ---------------------------------------------------------------------------------
def torch_module() -> Any:
    return _require("torch", "qstore-torch torch==2.13.0")


def _torch_quantum_block() -> list[Any]:
    qs_torch = _require("qstore.torch", "qstore-torch")
    return [
        qs_torch.AmplitudeEncoding(n_qubits=N_QUBITS),
        qs_torch.QuantumLayer(n_qubits=N_QUBITS, depth=DEPTH),
        qs_torch.ExpectationValue(observables=z_observables()),
    ]


def build_torch_model(torch: Any | None = None, block: Block = "quantum") -> Any:
    """The demo model as a ``torch.nn.Sequential`` returning logits (the softmax is in the
    loss, ``CrossEntropyLoss``, as usual in PyTorch). ``block`` as in :func:`build_keras_model`."""
    torch = torch_module() if torch is None else torch
    nn = torch.nn
    if block == "quantum":
        middle = _torch_quantum_block()
    elif block == "classical":
        middle = [nn.Linear(HIDDEN, N_QUBITS), nn.Tanh()]
    else:
        raise ValueError(f"block must be 'quantum' or 'classical', got {block!r}")
    return nn.Sequential(
        nn.Linear(FEATURES, HIDDEN),
        nn.ReLU(),
        *middle,
        nn.Linear(N_QUBITS, 128),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(128, 10),
    )


def fit_torch(
    model: Any,
    data: Data,
    epochs: int = EPOCHS,
    batch_size: int = BATCH,
    validation_split: float = VALIDATION_SPLIT,
    progress: bool = False,
    seed: int = 0,
    learning_rate: float = LEARNING_RATE,
    out: TextIO | None = None,
) -> History:
    """Train ``model`` with Adam on shuffled batches; validate on the held-out rows each epoch."""
    torch = torch_module()
    tqdm = _require("tqdm", '"qstore-core[demo]" (tqdm)').tqdm

    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    n_fit = data.split(validation_split)
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    x_fit, y_fit, x_val, y_val = x[:n_fit], y[:n_fit], x[n_fit:], y[n_fit:]
    gen = torch.Generator().manual_seed(seed)
    history = History()
    steps = math.ceil(n_fit / batch_size)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n_fit, generator=gen)
        total_loss = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        bar = tqdm(
            range(steps),
            desc=f"Epoch {epoch + 1}/{epochs}",
            unit="batch",
            disable=not progress,
            file=out or sys.stderr,
            leave=True,
            dynamic_ncols=True,
        )
        for step in bar:
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = x_fit[idx], y_fit[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                total_loss += loss.detach() * len(idx)
                correct += (logits.argmax(dim=1) == yb).sum()
            if progress and (step % 50 == 0 or step == steps - 1):
                seen = min((step + 1) * batch_size, n_fit)
                bar.set_postfix(
                    loss=f"{float(total_loss) / seen:.4f}",
                    acc=f"{float(correct) / seen:.4f}",
                    refresh=False,
                )
        history.loss.append(float(total_loss) / n_fit)
        history.accuracy.append(float(correct) / n_fit)
        if len(x_val):
            val_loss, val_acc = _torch_score(torch, model, loss_fn, x_val, y_val)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
        history.epoch_s.append(time.perf_counter() - t0)
        if progress and history.val_loss:
            bar.write(
                f"  val_loss {history.val_loss[-1]:.4f}, val_accuracy "
                f"{history.val_accuracy[-1]:.4f}",
                file=out or sys.stderr,
            )
        bar.close()
    return history


def _torch_score(torch: Any, model: Any, loss_fn: Any, x: Any, y: Any) -> tuple[float, float]:
    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), 1024):
            logits = model(x[i : i + 1024])
            total += float(loss_fn(logits, y[i : i + 1024])) * len(logits)
            correct += int((logits.argmax(dim=1) == y[i : i + 1024]).sum())
    return total / len(x), correct / len(x)


def evaluate_torch(model: Any, data: Data) -> tuple[float, float]:
    """Test loss and accuracy."""
    torch = torch_module()
    x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    return _torch_score(torch, model, torch.nn.CrossEntropyLoss(), x, y)


# -- plot ------------------------------------------------------------------------------------
def plot_history(history: History, path: str | os.PathLike[str], title: str) -> Path:
    """Learning curves (loss and accuracy, training and validation, per epoch) as a PNG."""
    matplotlib = _require("matplotlib", '"qstore-core[demo]" (matplotlib)')
    matplotlib.use("Agg")
    plt = import_module("matplotlib.pyplot")
    epochs = list(range(1, len(history.loss) + 1))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    try:
        for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
            ax.plot(epochs, getattr(history, key), "o-", label="training")
            if getattr(history, f"val_{key}"):
                ax.plot(epochs, getattr(history, f"val_{key}"), "s--", label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
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
        if self.framework not in FRAMEWORKS:
            raise QStoreError(
                f"framework must be one of {', '.join(FRAMEWORKS)}, got {self.framework!r}"
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
    data = load_data(
        config.data_dir, config.n_train, config.n_test, download=config.download, seed=config.seed
    )
    data_s = time.perf_counter() - t_start
    n_fit = data.split(config.validation_split)
    w(
        f"Data: {n_fit} training, {len(data.x_train) - n_fit} validation and {len(data.x_test)} "
        f"test images, PCA to {FEATURES} features in {data_s:.1f} s\n"
    )
    out.flush()

    model: Any
    if config.framework == "keras":
        keras = keras_module()
        keras.utils.set_random_seed(config.seed)
        model = build_keras_model(keras)
        interactive = config.progress and hasattr(out, "isatty") and out.isatty()
        verbose: int = (1 if interactive else 2) if config.progress else 0
        history = fit_keras(
            model,
            data,
            config.epochs,
            config.batch_size,
            config.validation_split,
            verbose,
            config.learning_rate,
        )
        t_eval = time.perf_counter()
        test_loss, test_acc = evaluate_keras(model, data)
    else:
        torch = torch_module()
        torch.manual_seed(config.seed)
        model = build_torch_model(torch)
        history = fit_torch(
            model,
            data,
            config.epochs,
            config.batch_size,
            config.validation_split,
            config.progress,
            config.seed,
            config.learning_rate,
        )
        t_eval = time.perf_counter()
        test_loss, test_acc = evaluate_torch(model, data)
    evaluate_s = time.perf_counter() - t_eval

    model_path = plot_path = summary_path = None
    if config.save:
        target = Path(config.out_dir)
        target.mkdir(parents=True, exist_ok=True)
        if config.framework == "keras":
            model_path = str(target / "model.keras")
            model.save(model_path)
        else:
            model_path = str(target / "model.pt")
            torch.save(model.state_dict(), model_path)
        plot_path = str(
            plot_history(
                history,
                target / "learning_curves.png",
                f"Q-Store Fashion-MNIST ({config.framework}): test accuracy {100 * test_acc:.1f} %",
            )
        )
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
        summary_path = str(Path(config.out_dir) / "summary.json")
        payload = asdict(report) | {"summary_path": summary_path, "config": asdict(config)}
        Path(summary_path).write_text(json.dumps(payload, indent=2) + "\n")
        report = replace(report, summary_path=summary_path)

    w(
        f"\nTest accuracy: {100 * test_acc:.2f} % ({len(data.x_test)} images, "
        f"loss {test_loss:.4f})\n"
    )
    w(
        f"Wall time: {wall_s:.1f} s (data {data_s:.1f} s, training {history.fit_s:.1f} s over "
        f"{config.epochs} epoch(s), test {evaluate_s:.1f} s)\n"
    )
    if config.save:
        w(f"Saved: model {model_path}, learning curves {plot_path}, summary {summary_path}\n")
    out.flush()
    return report
