"""Circuit compilers of plugin distributions, reachable where users look for them.

``qc.compilers.IonQNativeCompiler`` is qstore-ionq's compiler to IonQ's native gates (GPI,
GPI2, MS, ZZ), as the seed's low-level example writes it::

    compiled = qc.compilers.IonQNativeCompiler().compile(circuit)

The class lives in :mod:`qstore.ionq`; this module resolves it on first access, so that core
never imports a plugin. When qstore-ionq is not installed, the attribute raises
:class:`~qstore.core.errors.MissingDependencyError` saying what to install, as
``qc.backends.IonQBackend`` does.

>>> import qstore.core as qc
>>> "IonQNativeCompiler" in dir(qc.compilers)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qstore.core.backends.registry import plugin_class

__all__ = ["IonQNativeCompiler"]

# Compiler classes of plugin distributions: attribute -> (module, distribution).
_PLUGIN_CLASSES = {
    "IonQNativeCompiler": ("qstore.ionq", "qstore-ionq"),
}

if TYPE_CHECKING:
    # Declared for type checkers; at run time __getattr__ below imports it from the plugin.
    IonQNativeCompiler: type[Any]
else:

    def __getattr__(name: str) -> Any:
        spec = _PLUGIN_CLASSES.get(name)
        if spec is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        cls = plugin_class(name, *spec, what=f"{__name__}.{name}")
        globals()[name] = cls  # resolved once; failures are not cached
        return cls


def __dir__() -> list[str]:
    return sorted({*globals(), *_PLUGIN_CLASSES})
