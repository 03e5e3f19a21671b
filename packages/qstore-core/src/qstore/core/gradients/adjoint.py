"""Adjoint-method gradients, delegated to backends that implement ``vjp``.

The adjoint method costs about one extra simulation pass for *all* parameters, but needs the
state vector, so it exists only on simulators (``capabilities.vjp``) and only for exact
expectations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import GradientError
from qstore.core.gradients.base import Bindings, FloatArray, GradientMethod
from qstore.core.observables import PauliSum

_ALTERNATIVES = (
    "use ParameterShiftGradient (exact on any backend, with or without shots), "
    "FiniteDifferenceGradient or SPSAGradient"
)


class AdjointGradient(GradientMethod):
    """Exact gradients from the backend's adjoint-method ``vjp``.

    >>> import qstore.core as qc
    >>> from qstore.core.observables import Z
    >>> from qstore.core.backends.local import LocalBackend
    >>> c = qc.UnifiedCircuit(1).add_gate("RX", 0, "t")
    >>> gv, gs = AdjointGradient(LocalBackend()).vjp(c, Z(0), [[0.5]], [[1.0]])
    >>> bool(np.isclose(gv[0, 0], -np.sin(0.5)))
    True
    """

    method = "adjoint"

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        caps = getattr(backend, "capabilities", None)
        if not getattr(caps, "vjp", False) or not callable(getattr(backend, "vjp", None)):
            name = getattr(backend, "name", type(backend).__name__)
            raise GradientError(
                f"Backend {name!r} does not provide adjoint gradients (capabilities.vjp is "
                f"false); {_ALTERNATIVES}."
            )

    def _check_exact(self, shots: int | None) -> None:
        if shots is not None:
            raise GradientError(
                f"The adjoint method needs exact expectations, but shots={shots} was given; "
                f"{_ALTERNATIVES} for shot-based estimates."
            )

    def _jacobian(
        self,
        circuit: UnifiedCircuit,
        observables: list[PauliSum],
        b: Bindings,
        shots: int | None,
        seed: int | None,
    ) -> tuple[FloatArray, int]:
        # One VJP per observable with one-hot cotangents; shared symbols become per-sample
        # columns so that their derivatives come back per sample instead of summed.
        self._check_exact(shots)
        n_obs = len(observables)
        full = b.full
        jac = np.zeros((b.batch, n_obs, full.shape[1]))
        if full.shape[1] == 0:
            return jac, 0
        for o in range(n_obs):
            cot = np.zeros((b.batch, n_obs))
            cot[:, o] = 1.0
            gv, _ = self.backend.vjp(circuit, observables, full, cot, names=b.all_names)
            jac[:, o, :] = np.asarray(gv, dtype=np.float64)
        return jac, n_obs * b.batch

    def _vjp(
        self,
        circuit: UnifiedCircuit,
        observables: list[PauliSum],
        b: Bindings,
        cot: FloatArray,
        shots: int | None,
        seed: int | None,
        inputs: bool = True,
    ) -> tuple[FloatArray, FloatArray, int]:
        self._check_exact(shots)
        gv, gs = self.backend.vjp(
            circuit, observables, b.values, cot, names=b.names, shared=b.shared_mapping()
        )
        return (
            np.asarray(gv, dtype=np.float64).reshape(b.batch, len(b.names)),
            np.asarray(gs, dtype=np.float64).reshape(len(b.shared_names)),
            b.batch,
        )
