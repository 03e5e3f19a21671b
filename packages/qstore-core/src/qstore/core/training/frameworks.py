"""How the mid-level API reaches the framework layers: the ``qstore.frameworks`` entry points.

qstore-core imports no framework. ``qstore-tf`` and ``qstore-torch`` each register one object in
the entry-point group ``qstore.frameworks`` (``tensorflow = "qstore.tf.training:KerasFramework"``,
``pytorch = "qstore.torch.training:TorchFramework"``) that follows :class:`Framework`: build the
model on the framework's own ``QuantumLayer``, run one training step, evaluate, and train an
epoch on the framework's distributed trainer. :class:`~qstore.core.training.QuantumModel` owns
everything else (routing, budgets, epochs, progress, adaptive shots and depth).

A third-party framework joins the same way: an entry point in ``qstore.frameworks`` naming a
class (instantiated without arguments) or an instance.

>>> sorted(FRAMEWORK_DISTRIBUTIONS)
['pytorch', 'tensorflow']
"""

from __future__ import annotations

import importlib.metadata as metadata
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from qstore.core.errors import MissingDependencyError, QStoreError, TrainingConfigError

__all__ = [
    "ENTRY_POINT_GROUP",
    "FRAMEWORK_DISTRIBUTIONS",
    "EvalStats",
    "Framework",
    "ModelSpec",
    "StepStats",
    "load_framework",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "qstore.frameworks"
FRAMEWORK_DISTRIBUTIONS: Mapping[str, str] = MappingProxyType(
    {"tensorflow": "qstore-tf", "pytorch": "qstore-torch"}
)
_EXTRAS = {"tensorflow": "tensorflow", "pytorch": "torch"}
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModelSpec:
    """The model to build: ``Input(n_features) -> QuantumLayer(n_qubits, depth) ->
    Dense(n_outputs)``; ``task`` ``'classification'`` (logits, cross-entropy, accuracy) or
    ``'regression'`` (mean squared error)."""

    n_features: int
    n_outputs: int
    task: str
    n_qubits: int
    depth: int
    learning_rate: float
    gradient_method: str
    seed: int | None = None

    def with_depth(self, depth: int) -> ModelSpec:
        return replace(self, depth=depth)


@dataclass(frozen=True)
class StepStats:
    """What one training step reports.

    ``grad_sq``: squared norm of the quantum layer's weight gradient; ``cot_sq``:
    ``sum_b (sum_o |dL/dE_bo|)^2`` over the quantum layer's outputs ``E`` (what adaptive shot
    allocation needs); ``n_params``: the quantum layer's trainable weights.
    """

    loss: float
    n_samples: int
    correct: int | None
    grad_sq: float
    cot_sq: float
    n_params: int


@dataclass(frozen=True)
class EvalStats:
    """Mean loss (and accuracy for classification) over ``n_samples``."""

    loss: float
    accuracy: float | None
    n_samples: int


@runtime_checkable
class Framework(Protocol):
    """What a framework registers in ``qstore.frameworks`` (see the module)."""

    name: str

    def build(
        self, spec: ModelSpec, train_backend: Any, eval_backend: Any, previous: Any = None
    ) -> Any:
        """A model handle: the model on ``train_backend`` for training and a twin on
        ``eval_backend`` for evaluation, sharing weights. With ``previous`` (a handle), its
        weights are carried over: quantum weights into the first layers (new layers start at
        zero), the classical head as it is."""
        ...

    def train_step(self, model: Any, x: FloatArray, y: npt.NDArray[Any]) -> StepStats:
        """One optimizer step on a batch."""
        ...

    def evaluate(
        self, model: Any, x: FloatArray, y: npt.NDArray[Any], batch_size: int
    ) -> EvalStats:
        """Loss (and accuracy) on the evaluation backend, with the current weights."""
        ...

    def predict(self, model: Any, x: FloatArray, batch_size: int) -> FloatArray:
        """Model outputs (logits or values) on the evaluation backend."""
        ...

    def fit_distributed(
        self, model: Any, x: FloatArray, y: npt.NDArray[Any], batch_size: int
    ) -> EvalStats:
        """One epoch on the framework's distributed trainer (multi-worker); the weights end
        up in ``model``."""
        ...

    def to_arrays(self, data: Any) -> tuple[FloatArray, npt.NDArray[Any]] | None:
        """``(x, y)`` arrays from the framework's own data objects, or ``None`` if not one."""
        ...


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_framework(name: str) -> Framework:
    """The framework registered as ``name`` (``'tensorflow'``, ``'pytorch'`` ...).

    Raises:
        MissingDependencyError: nothing is registered under ``name``; says what to install.
    """
    eps = _entry_points()
    ep = eps.get(name)
    if ep is None:
        dist = FRAMEWORK_DISTRIBUTIONS.get(name)
        fix = (
            f"install it with: pip install {dist} (or pip install 'qstore[{_EXTRAS[name]}]')"
            if dist
            else f"install a distribution that registers {name!r} in {ENTRY_POINT_GROUP!r}"
        )
        raise MissingDependencyError(
            f"ml_framework={name!r} needs its Q-Store layers, which are not installed; {fix}. "
            f"Installed frameworks: {sorted(eps) or 'none'}."
        )
    try:
        obj = ep.load()
    except ImportError as exc:
        raise MissingDependencyError(
            f"The {name!r} framework ({ep.value}) cannot be imported: {exc}. Reinstall "
            f"{FRAMEWORK_DISTRIBUTIONS.get(name, 'its distribution')} and its framework."
        ) from exc
    framework = obj() if isinstance(obj, type) else obj
    missing = [
        m
        for m in ("build", "train_step", "evaluate", "predict", "fit_distributed", "to_arrays")
        if not callable(getattr(framework, m, None))
    ]
    if missing:
        raise QStoreError(
            f"The {name!r} framework from {ep.value} lacks {missing} of "
            "qstore.core.training.Framework."
        )
    return framework  # type: ignore[no-any-return]


def infer_task(y: npt.NDArray[Any]) -> tuple[str, int]:
    """``('classification', n_classes)`` for integer labels ``[N]``, else ``('regression',
    n_outputs)``.

    >>> infer_task(np.array([0, 2, 1])), infer_task(np.array([[0.5], [1.5]]))
    (('classification', 3), ('regression', 1))
    """
    if y.ndim == 1 and y.size and np.issubdtype(y.dtype, np.integer):
        if y.min() < 0:
            raise TrainingConfigError(
                f"Class labels must be >= 0, got {int(y.min())}; encode classes as 0..K-1."
            )
        return "classification", max(int(y.max()) + 1, 2)
    if y.ndim == 1:
        return "regression", 1
    if y.ndim == 2:
        return "regression", int(y.shape[1])
    raise TrainingConfigError(
        f"Targets must be class labels [N] or values [N] / [N, k], got shape {list(y.shape)}."
    )
