"""Gradient methods: parameter shift, adjoint, finite differences and SPSA.

Every method offers the batched forms the framework layers use, ``jacobian`` and ``vjp`` (same
binding conventions as backends), and the single-point ``await method.compute(circuit=...,
loss_fn=..., parameters=...)`` for a scalar loss of the expectations.

>>> import qstore.core as qc
>>> from qstore.core.observables import Z
>>> from qstore.core.backends.local import LocalBackend
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "w")
>>> g = get("parameter_shift", LocalBackend())
>>> gv, gs = g.vjp(c, Z(0), None, [[1.0]], shared={"w": 0.0})
>>> float(gs[0])
0.0
"""

from __future__ import annotations

from typing import Any

from qstore.core.errors import GradientError
from qstore.core.gradients.adjoint import AdjointGradient
from qstore.core.gradients.base import Bindings, GradientMethod, GradientResult, bindings
from qstore.core.gradients.finite_difference import FiniteDifferenceGradient
from qstore.core.gradients.parameter_shift import ParameterShiftGradient, shift_template
from qstore.core.gradients.shift_rules import ShiftRule, gate_shift_rule, shift_rule
from qstore.core.gradients.spsa import SPSAGradient

METHODS: dict[str, type[GradientMethod]] = {
    "parameter_shift": ParameterShiftGradient,
    "adjoint": AdjointGradient,
    "finite_diff": FiniteDifferenceGradient,
    "spsa": SPSAGradient,
}
_ALIASES = {
    "parameter-shift": "parameter_shift",
    "ps": "parameter_shift",
    "finite_difference": "finite_diff",
    "finite-diff": "finite_diff",
    "fd": "finite_diff",
}


def get(method: str, backend: Any, **options: Any) -> GradientMethod:
    """A gradient method by its configuration name (``TrainingConfig.gradient_method``).

    Names: ``'parameter_shift'``, ``'adjoint'``, ``'finite_diff'``, ``'spsa'``; ``options`` go
    to the class (e.g. ``epsilon=``, ``seed=``).
    """
    key = str(method).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise GradientError(f"Unknown gradient method {method!r}; choose one of {sorted(METHODS)}.")
    return METHODS[key](backend, **options)


__all__ = [
    "METHODS",
    "AdjointGradient",
    "Bindings",
    "FiniteDifferenceGradient",
    "GradientMethod",
    "GradientResult",
    "ParameterShiftGradient",
    "SPSAGradient",
    "ShiftRule",
    "bindings",
    "gate_shift_rule",
    "get",
    "shift_rule",
    "shift_template",
]
