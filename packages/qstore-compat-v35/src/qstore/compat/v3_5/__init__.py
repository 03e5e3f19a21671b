"""The Q-Store v3.5 training API, running on Q-Store 4 (``from qstore.compat import v3_5``).

Existing v3.5 code keeps working: ``TrainingConfig``, ``create_default_backend_manager``,
``QuantumModel``, ``QuantumLayer``, ``QuantumTrainer`` and ``TrainingMetrics`` behave as they
did, but run on Q-Store 4's backends and gradient methods. The first use of each name in a
process emits one ``DeprecationWarning`` naming its Q-Store 4 replacement.
``convert_from_v3_5(model)`` (also ``qstore.convert_from_v3_5``) turns a trained v3.5 model
into its Q-Store 4 form, with the same weights and the same outputs. See
``docs/migration-v3.5.md``.

Differences from v3.5, on purpose: ``quantum_sdk='mock'`` is the exact local simulator (v3.5's
mock returned random bits); training never writes to Pinecone; ``'spsa_subsampled'`` is SPSA on a
random subset of each batch (see :mod:`qstore.compat.v3_5.gradients`).

>>> import warnings
>>> from qstore.compat import v3_5
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore", DeprecationWarning)
...     cfg = v3_5.TrainingConfig(pinecone_api_key="mock-key", n_qubits=4)
>>> cfg.quantum_sdk
'mock'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qstore.compat.v3_5._deprecation import warn_once
from qstore.compat.v3_5.convert import CircuitModel, convert_from_v3_5

__version__ = "4.0.0a1"

if TYPE_CHECKING:
    from qstore.compat.v3_5.backends import BackendManager
    from qstore.compat.v3_5.config import TrainingConfig
    from qstore.compat.v3_5.layers import QuantumLayer
    from qstore.compat.v3_5.model import QuantumModel
    from qstore.compat.v3_5.trainer import QuantumTrainer, TrainingMetrics

    def create_default_backend_manager() -> BackendManager: ...


_MOCK = (
    " quantum_sdk='mock' and the default manager's 'mock_ideal' backend are now Q-Store 4's exact "
    "local simulator; v3.5's mock returned random bits, so results differ from v3.5 runs."
)

# name -> (module, attribute, the deprecation message naming the Q-Store 4 replacement)
_DEPRECATED: dict[str, tuple[str, str, str]] = {
    "TrainingConfig": (
        "config",
        "TrainingConfig",
        "qstore.compat.v3_5.TrainingConfig is deprecated; use qstore.TrainingConfig (the "
        "mid-level API) or the framework layers' own training settings." + _MOCK,
    ),
    "create_default_backend_manager": (
        "backends",
        "default_backend_manager",
        "qstore.compat.v3_5.create_default_backend_manager is deprecated; use "
        "qstore.core.backends.get('local') (or any name from qstore.core.backends.available())."
        + _MOCK,
    ),
    "BackendManager": (
        "backends",
        "BackendManager",
        "qstore.compat.v3_5.BackendManager is deprecated; use qstore.core.backends.get(name) "
        "and qstore.core.SimulationBackendManager.auto_select(...).",
    ),
    "QuantumModel": (
        "model",
        "QuantumModel",
        "qstore.compat.v3_5.QuantumModel is deprecated; use qstore.torch.QuantumLayer or "
        "qstore.tf.layers.QuantumLayer in a PyTorch or Keras model, and "
        "qstore.convert_from_v3_5(model) to carry trained weights over.",
    ),
    "QuantumLayer": (
        "layers",
        "QuantumLayer",
        "qstore.compat.v3_5.QuantumLayer is deprecated; use qstore.torch.QuantumLayer or "
        "qstore.tf.layers.QuantumLayer.",
    ),
    "QuantumTrainer": (
        "trainer",
        "QuantumTrainer",
        "qstore.compat.v3_5.QuantumTrainer is deprecated; use qstore.QuantumModel(config).train"
        "(...), Keras model.fit or a PyTorch training loop (qstore.torch.PyTorchDistributedTrainer "
        "for DDP).",
    ),
    "TrainingMetrics": (
        "trainer",
        "TrainingMetrics",
        "qstore.compat.v3_5.TrainingMetrics is deprecated; Q-Store 4 reports training through "
        "the frameworks' histories (Keras History, the dict of PyTorchDistributedTrainer.train).",
    ),
}

__all__ = [
    "BackendManager",
    "CircuitModel",
    "QuantumLayer",
    "QuantumModel",
    "QuantumTrainer",
    "TrainingConfig",
    "TrainingMetrics",
    "__version__",
    "convert_from_v3_5",
    "create_default_backend_manager",
]


def __getattr__(name: str) -> Any:
    spec = _DEPRECATED.get(name)
    if spec is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute, message = spec
    warn_once(f"name:{name}", message)
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), attribute)
