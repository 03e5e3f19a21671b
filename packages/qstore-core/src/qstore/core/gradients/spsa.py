"""SPSA: simultaneous-perturbation stochastic gradient estimates.

For a random sign vector ``Δ ∈ {±1}^P`` the estimate ``ĝ = (f(θ + εΔ) − f(θ − εΔ)) / (2ε) · Δ``
costs two circuit evaluations whatever the number of parameters. Because ``E[Δ_i Δ_j] = δ_ij``
it is unbiased up to ``O(ε²)`` (third-derivative) terms: averaging over ``Δ`` gives the
gradient. The estimate is *stochastic*; its variance shrinks as ``1 / n_samples``. Seeded
objects give the same sequence of estimates.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import GradientError
from qstore.core.gradients.base import Bindings, FloatArray, GradientMethod, evaluate
from qstore.core.observables import PauliSum


class SPSAGradient(GradientMethod):
    """Stochastic gradient estimates from ``2 * n_samples`` evaluations per sample.

    Args:
        backend: any backend with ``expectation``.
        epsilon: perturbation size (larger with shots, e.g. 0.1).
        n_samples: perturbations averaged per estimate.
        seed: seeds the perturbations (and the default shot seed): two objects with the same
            seed produce the same estimates, call after call.

    >>> import qstore.core as qc
    >>> from qstore.core.observables import Z
    >>> from qstore.core.backends.local import LocalBackend
    >>> c = qc.UnifiedCircuit(1).add_gate("RX", 0, "t")
    >>> jv, _ = SPSAGradient(LocalBackend(), seed=1).jacobian(c, Z(0), [[0.5]])
    >>> bool(abs(jv[0, 0, 0] + np.sin(0.5)) < 1e-3)  # one parameter: Δ² = 1, exact up to ε²
    True
    """

    method = "spsa"
    epsilon: float
    n_samples: int
    _rng: np.random.Generator

    def __init__(
        self,
        backend: Any,
        epsilon: float = 0.01,
        n_samples: int = 1,
        seed: int | None = None,
        *,
        shots: int | None = None,
    ) -> None:
        super().__init__(backend, shots=shots, seed=seed)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
            raise GradientError(f"epsilon must be a positive number, got {epsilon!r}.")
        if not math.isfinite(epsilon) or epsilon <= 0:
            raise GradientError(f"epsilon must be a positive finite number, got {epsilon!r}.")
        if (
            isinstance(n_samples, bool)
            or not isinstance(n_samples, numbers.Integral)
            or n_samples < 1
        ):
            raise GradientError(f"n_samples must be a positive int, got {n_samples!r}.")
        self.epsilon = float(epsilon)
        self.n_samples = int(n_samples)
        self._rng = np.random.default_rng(seed)

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
        k = self.n_samples
        if n_cols == 0:
            return np.zeros((bsz, len(observables), 0)), 0
        # every sample (row) gets its own perturbations, so rows stay independent estimates
        delta = self._rng.choice(np.array([-1.0, 1.0]), size=(k, bsz, n_cols))
        rows = np.stack([full + self.epsilon * delta, full - self.epsilon * delta])
        e = evaluate(self.backend, circuit, observables, rows, b.all_names, shots, seed)
        diff = (e[0] - e[1]) / (2.0 * self.epsilon)  # [K, B, n_obs]
        jac = np.einsum("kbo,kbc->boc", diff, delta) / k
        return jac, 2 * k * bsz
