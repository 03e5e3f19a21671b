"""Finite-difference gradients: the simplest check, on any backend.

Central differences have error ``O(ε²)`` from truncation plus ``O(δ/ε)`` from the rounding
``δ`` of each expectation; the default ``ε = 1e-6`` balances the two for complex128 simulation
(about 1e-10 absolute). With ``shots`` or single precision, use a much larger ``ε`` (1e-2 .. 0.1)
or, better, :class:`~qstore.core.gradients.ParameterShiftGradient`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import GradientError
from qstore.core.gradients.base import Bindings, FloatArray, GradientMethod, evaluate
from qstore.core.observables import PauliSum

_METHODS = ("central", "forward", "backward")
_DEFAULT_EPSILON = {"central": 1e-6, "forward": 1e-8, "backward": 1e-8}


class FiniteDifferenceGradient(GradientMethod):
    """Gradients by finite differences of every binding column, all in one backend call.

    Args:
        backend: any backend with ``expectation``.
        epsilon: the step (default: 1e-6 for ``'central'``, 1e-8 for one-sided differences).
        method: ``'central'`` (default), ``'forward'`` or ``'backward'``.

    >>> import qstore.core as qc
    >>> from qstore.core.observables import Z
    >>> from qstore.core.backends.local import LocalBackend
    >>> c = qc.UnifiedCircuit(1).add_gate("RX", 0, "t")
    >>> jv, _ = FiniteDifferenceGradient(LocalBackend()).jacobian(c, Z(0), [[0.5]])
    >>> bool(abs(jv[0, 0, 0] + np.sin(0.5)) < 1e-8)
    True
    """

    method = "finite_diff"

    def __init__(
        self,
        backend: Any,
        epsilon: float | None = None,
        method: str = "central",
        *,
        shots: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(backend, shots=shots, seed=seed)
        if method not in _METHODS:
            raise GradientError(f"method must be one of {list(_METHODS)}, got {method!r}.")
        eps = _DEFAULT_EPSILON[method] if epsilon is None else epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
            raise GradientError(f"epsilon must be a positive finite number, got {epsilon!r}.")
        if eps <= 0:
            raise GradientError(f"epsilon must be positive, got {epsilon!r}.")
        self.epsilon = float(eps)
        self.difference = method

    def _jacobian(
        self,
        circuit: UnifiedCircuit,
        observables: list[PauliSum],
        b: Bindings,
        shots: int | None,
        seed: int | None,
    ) -> tuple[FloatArray, int]:
        full = b.full
        bsz, n_cols = full.shape
        if n_cols == 0:
            return np.zeros((bsz, len(observables), 0)), 0
        eye = np.eye(n_cols)[:, None, :] * self.epsilon  # [C, 1, C]
        if self.difference == "central":
            rows = np.concatenate([full + eye, full - eye])  # [2C, B, C]
        elif self.difference == "forward":
            rows = np.concatenate([full[None], full + eye])
        else:
            rows = np.concatenate([full[None], full - eye])
        e = evaluate(self.backend, circuit, observables, rows, b.all_names, shots, seed)
        if self.difference == "central":
            d = (e[:n_cols] - e[n_cols:]) / (2.0 * self.epsilon)
        elif self.difference == "forward":
            d = (e[1:] - e[:1]) / self.epsilon
        else:
            d = (e[:1] - e[1:]) / self.epsilon
        return np.ascontiguousarray(d.transpose(1, 2, 0)), rows.shape[0] * bsz
