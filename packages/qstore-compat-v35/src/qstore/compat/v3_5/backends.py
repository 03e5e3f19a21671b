"""The v3.5 backend manager on Q-Store 4's backend registry.

``create_default_backend_manager()`` registers ``'mock_ideal'``, which v3.5 served with a mock
that returned random bits; here it is Q-Store 4's exact ``local`` simulator, so results are
real simulations (exact expectations, or seeded shot estimates). Any Q-Store 4 backend object
(``qstore.core.backends.get(name)``) can be registered too.

>>> bm = BackendManager()
>>> bm.register_backend("sim", qc_backends.get("local"), set_as_default=True)
>>> bm.get_backend().name, bm.list_backends()
('local', ['sim'])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from qstore.compat.v3_5.config import TrainingConfig
from qstore.core import backends as qc_backends
from qstore.core.errors import QStoreError

logger = logging.getLogger(__name__)


class CompatBackendError(QStoreError, KeyError):
    """No backend under that name in the manager, or an object that is not a backend."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def as_backend(backend: Any) -> Any:
    """A Q-Store 4 backend from what v3.5 code passes: a backend object or a registry name.

    >>> as_backend("local").name
    'local'
    """
    if isinstance(backend, str):
        return qc_backends.get(backend)
    if backend is None:
        return qc_backends.get("local")
    if not callable(getattr(backend, "expectation", None)):
        raise CompatBackendError(
            f"{type(backend).__name__} is not a Q-Store 4 backend (it has no expectation() "
            "method); pass bm.get_backend(), a name such as 'local', or "
            "qstore.core.backends.get(name)."
        )
    return backend


class BackendManager:
    """Named backends with a default, as in v3.5 (``register_backend``, ``get_backend``)."""

    def __init__(self) -> None:
        self._backends: dict[str, Any] = {}
        self._metadata: dict[str, dict[str, Any]] = {}
        self._default: str | None = None

    def register_backend(
        self,
        name: str,
        backend: Any,
        set_as_default: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Add ``backend`` (an object or a registry name) under ``name``."""
        self._backends[name] = as_backend(backend)
        self._metadata[name] = dict(metadata or {})
        if set_as_default or self._default is None:
            self._default = name

    def get_backend(self, name: str | None = None) -> Any:
        """The backend registered as ``name`` (default: the default backend)."""
        key = self._default if name is None else name
        if key is None or key not in self._backends:
            raise CompatBackendError(
                f"No backend {key!r} in this manager; registered: {self.list_backends()}. "
                "Use create_default_backend_manager() or register_backend(name, backend)."
            )
        return self._backends[key]

    def list_backends(self) -> list[str]:
        """Names of the registered backends."""
        return list(self._backends)

    def set_default_backend(self, name: str) -> None:
        """Make ``name`` the default."""
        self.get_backend(name)
        self._default = name

    def get_backend_info(self, name: str | None = None) -> dict[str, Any]:
        """The backend's capabilities and the metadata given at registration."""
        backend = self.get_backend(name)
        caps = getattr(backend, "capabilities", None)
        info: dict[str, Any] = {"name": getattr(backend, "name", str(backend))}
        if caps is not None and hasattr(caps, "as_dict"):
            info.update(caps.as_dict())
        key = self._default if name is None else name
        if key is not None:
            info.update(self._metadata.get(key, {}))
        return info


def default_backend_manager() -> BackendManager:
    """``create_default_backend_manager()`` without its deprecation warning (internal use)."""
    manager = BackendManager()
    manager.register_backend(
        "mock_ideal",
        qc_backends.get("local"),
        set_as_default=True,
        metadata={"description": "exact local state-vector simulator (v3.5: random-bit mock)"},
    )
    return manager


def backend_for_config(config: TrainingConfig) -> Any:
    """The backend a v3.5 ``TrainingConfig`` names: ``'mock'`` is ``local``; ``'cirq'``,
    ``'qiskit'`` and ``'ionq'`` are IonQ through qstore-ionq (``ionq_simulator`` or
    ``ionq_hardware`` for ``quantum_target='qpu.…'``; raises
    :class:`~qstore.core.errors.MissingDependencyError` naming the package when absent)."""
    if config.quantum_sdk == "mock":
        return qc_backends.get("local")
    key = config.quantum_api_key or os.environ.get("IONQ_API_KEY")
    if config.quantum_target == "simulator":
        return qc_backends.get("ionq_simulator", api_key=key)
    return qc_backends.get("ionq_hardware", api_key=key, target=config.quantum_target)
