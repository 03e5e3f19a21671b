"""The checks every entry point runs on what users pass in: one function and one error class each.

==========  ===========================  ===========================================
what        function                     error
==========  ===========================  ===========================================
shots       :func:`check_shots`          :class:`~qstore.core.errors.ShotsError`
cotangents  :func:`check_cotangent`      :class:`~qstore.core.errors.CotangentError`
bindings    :func:`check_bindings`       :class:`~qstore.core.errors.BindingError`
memory      :func:`check_memory`         :class:`~qstore.core.errors.ResourceLimitError`
==========  ===========================  ===========================================

Backends, gradients, the framework adapter and the layers call these, so the same mistake gets
the same error wherever it is made.

>>> check_shots(1000), check_shots(None)
(1000, None)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.engine.binding import as_values as check_bindings
from qstore.core.engine.memory import check_memory
from qstore.core.errors import CotangentError, ShotsError

__all__ = ["check_bindings", "check_cotangent", "check_memory", "check_shots"]

FloatArray = npt.NDArray[np.float64]


def check_shots(shots: Any) -> int | None:
    """``shots`` as a positive int, or ``None`` (exact expectations)."""
    if shots is None:
        return None
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise ShotsError(f"shots must be a positive int (or None for exact), got {shots!r}.")
    return int(shots)


def check_cotangent(cotangent: npt.ArrayLike, batch: int, n_obs: int) -> FloatArray:
    """``cotangent`` as a finite ``[batch, n_obs]`` array (a vector is accepted for a batch of
    one)."""
    try:
        cot = np.asarray(cotangent, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CotangentError(
            f"cotangent must be a real [batch, n_observables] array: {exc}"
        ) from None
    if cot.ndim == 1 and batch == 1:
        cot = cot[None]
    if cot.shape != (batch, n_obs):
        raise CotangentError(
            f"cotangent must have shape [batch, n_observables] = {[batch, n_obs]}, "
            f"got {list(cot.shape)}."
        )
    if not np.isfinite(cot).all():
        raise CotangentError("The cotangent contains NaN or infinity; all values must be finite.")
    return cot
