"""Backends: the protocol, the built-in ``local`` simulator and the registry of installed ones.

>>> import qstore.core as qc
>>> backend = qc.backends.get("local")
>>> c = qc.UnifiedCircuit(1).add_gate("RX", 0, "t")
>>> backend.expectation(c, values=[[0.0]]).tolist()
[[1.0]]

Backends of plugin distributions are reachable here too when installed:
``qc.backends.IonQBackend`` (qstore-ionq), ``qc.backends.QsimBackend`` (qstore-sim-qsim),
``qc.backends.LightningBackend`` (qstore-sim-lightning). When the distribution is missing, the
attribute raises :class:`~qstore.core.errors.MissingDependencyError` saying what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qstore.core.backends.base import Backend, Capabilities, CostModel, ExecutionResult
from qstore.core.backends.local import LocalBackend
from qstore.core.backends.registry import (
    ENTRY_POINT_GROUP,
    KNOWN_PLUGINS,
    BackendFactory,
    BackendInfo,
    BackendNotInstalledError,
    all_info,
    available,
    get,
    info,
    install_hint,
    invalidate_cache,
    missing_plugins,
    plugin_class,
    register,
    unregister,
)
from qstore.core.backends.selection import Selection, SimulationBackendManager

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_PLUGINS",
    "Backend",
    "BackendFactory",
    "BackendInfo",
    "BackendNotInstalledError",
    "Capabilities",
    "CostModel",
    "ExecutionResult",
    "LocalBackend",
    "Selection",
    "SimulationBackendManager",
    "all_info",
    "available",
    "get",
    "info",
    "install_hint",
    "invalidate_cache",
    "missing_plugins",
    "register",
    "unregister",
]

# Classes of plugin distributions, resolved on first access: attribute -> (module, distribution).
_PLUGIN_CLASSES = {
    "IonQBackend": ("qstore.ionq", "qstore-ionq"),
    "QsimBackend": ("qstore.sim.qsim", "qstore-sim-qsim"),
    "LightningBackend": ("qstore.sim.lightning", "qstore-sim-lightning"),
}

if TYPE_CHECKING:
    # Declared for type checkers; at run time __getattr__ below imports them from the plugin.
    IonQBackend: type[Any]
    QsimBackend: type[Any]
    LightningBackend: type[Any]
else:

    def __getattr__(name: str) -> Any:
        spec = _PLUGIN_CLASSES.get(name)
        if spec is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        cls = plugin_class(name, *spec)
        globals()[name] = cls  # resolved once; failures are not cached
        return cls
