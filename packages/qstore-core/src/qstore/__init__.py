"""Q-Store: quantum machine learning for Keras and PyTorch.

``qstore`` is a namespace shared by several distributions: ``qstore-core`` owns this file and
``qstore.core``; ``qstore-torch``, ``qstore-tf``, ``qstore-sim-qsim`` and the others add their own
subpackages (``qstore.torch``, ``qstore.tf``, ``qstore.sim.qsim`` ...), installed normally or in
editable mode, in any mix.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

__path__ = pkgutil.extend_path(__path__, __name__)

__version__ = "4.0.0a1"

# Names served lazily from other distributions: name -> (module, attribute, distribution).
_LAZY_FROM_DISTRIBUTIONS = {
    "convert_from_v3_5": ("qstore.compat.v3_5", "convert_from_v3_5", "qstore-compat-v35"),
}


def _from_distribution(name: str) -> Any:
    """``qstore.convert_from_v3_5`` comes from qstore-compat-v35, imported on first use."""
    spec = _LAZY_FROM_DISTRIBUTIONS.get(name)
    if spec is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute, distribution = spec
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):
            raise
        from qstore.core.errors import MissingDependencyError

        extra = distribution.removeprefix("qstore-").split("-")[0]
        raise MissingDependencyError(
            f"qstore.{name} needs the distribution {distribution!r}, which is not installed. "
            f"Install it with: pip install {distribution} (or pip install 'qstore[{extra}]')."
        ) from None
    value = getattr(loaded, attribute)
    globals()[name] = value
    return value


# The mid-level API, imported on first use so that `import qstore` stays light.
_LAZY = {
    "TrainingConfig": "qstore.core.training",
    "QuantumModel": "qstore.core.training",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        return _from_distribution(name)
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_LAZY_FROM_DISTRIBUTIONS})
