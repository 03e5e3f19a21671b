"""Gradients of a batch loss for the v3.5 trainer, on Q-Store 4's gradient methods.

The batch loss is ``L(θ) = mean_b loss(f(x_b; θ), y_b)`` with ``f`` the model's outputs (MSE by
default, as in v3.5). ``gradient_method`` picks how ``∇L`` is obtained:

* ``'parameter_shift'``, ``'finite_diff'``, ``'spsa'``: Q-Store 4's
  :mod:`qstore.core.gradients` methods (``ParameterShiftGradient``, ``FiniteDifferenceGradient``,
  ``SPSAGradient``) give the vector-Jacobian product of the outputs with ``∂L/∂f`` for the whole
  batch in one batched evaluation.
* ``'spsa_subsampled'`` (v3.5's subsampled SPSA): each step draws ``gradient_subsample_size``
  samples of the batch without replacement and one Rademacher perturbation ``Δ ∈ {±1}^P`` of all
  trainable parameters, evaluates the subset's loss at ``θ ± c_k Δ`` and returns
  ``(L₊ − L₋) / (2 c_k) · Δ``, with ``c_k = spsa_c_initial / k**0.101`` at step ``k ≥ 1``. That
  is ``2 × subsample`` circuit evaluations per step whatever the number of parameters; the
  estimate is unbiased for the batch gradient up to ``O(c_k²)`` (random subset, ``E[ΔΔᵀ] = I``)
  and noisy, which Adam's averaging absorbs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.compat.v3_5.config import TrainingConfig
from qstore.compat.v3_5.layers import CompatModelError, FloatArray
from qstore.compat.v3_5.model import QuantumModel
from qstore.core import gradients as qc_gradients
from qstore.core.backends.base import Capabilities
from qstore.core.circuit import UnifiedCircuit
from qstore.core.gradients.base import loss_gradient

SampleLoss = Callable[[FloatArray, FloatArray], float]
"""A v3.5 loss: ``loss(prediction [output_dim], target [output_dim]) -> float``."""

SPSA_DECAY = 0.101
"""Exponent of the SPSA perturbation schedule ``c_k = c / k**0.101`` (Spall's, as in v3.5)."""


class CountingBackend:
    """A backend seen through a counter of circuit evaluations (binding rows)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name: str = getattr(backend, "name", type(backend).__name__)
        self.count = 0

    @property
    def capabilities(self) -> Capabilities:
        caps: Capabilities = self.backend.capabilities
        return caps

    def expectation(
        self, circuit: UnifiedCircuit, observables: Any = None, values: Any = None, **kw: Any
    ) -> FloatArray:
        out = np.asarray(self.backend.expectation(circuit, observables, values, **kw))
        self.count += int(out.shape[0])
        return out

    def vjp(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: Any,
        cotangent: npt.ArrayLike,
        **kw: Any,
    ) -> tuple[FloatArray, FloatArray]:
        out: tuple[FloatArray, FloatArray] = self.backend.vjp(
            circuit, observables, values, cotangent, **kw
        )
        self.count += int(np.shape(cotangent)[0])
        return out


class BatchLoss:
    """The batch loss and its gradient with respect to the outputs.

    ``None`` is v3.5's default, the mean squared error over outputs and samples (analytic
    gradient); a custom ``loss(prediction, target)`` is averaged over the batch and
    differentiated by fourth-order central differences.
    """

    def __init__(self, loss_fn: SampleLoss | None = None) -> None:
        self.loss_fn = loss_fn

    def __call__(self, pred: FloatArray, target: FloatArray) -> float:
        if self.loss_fn is None:
            return float(np.mean((pred - target) ** 2))
        values = [float(self.loss_fn(p, t)) for p, t in zip(pred, target, strict=True)]
        return float(np.mean(values))

    def cotangent(self, pred: FloatArray, target: FloatArray) -> FloatArray:
        """``∂L/∂pred`` ``[batch, output_dim]``."""
        if self.loss_fn is None:
            return 2.0 * (pred - target) / pred.size
        fn = self.loss_fn
        rows = [
            loss_gradient(lambda e, t=t: fn(e, t), p.copy())  # type: ignore[misc]
            for p, t in zip(pred, target, strict=True)
        ]
        return np.asarray(rows, dtype=np.float64) / len(pred)


def check_targets(y: npt.ArrayLike, batch: int, output_dim: int) -> FloatArray:
    """Targets as ``[batch, output_dim]`` (one-hot rows, or regression targets)."""
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CompatModelError(f"Targets must be a real array: {exc}") from None
    if arr.ndim == 1 and output_dim == 1:
        arr = arr[:, None]
    if arr.shape != (batch, output_dim):
        raise CompatModelError(
            f"Targets must have shape [batch, output_dim] = {[batch, output_dim]} (one-hot rows "
            f"for classification), got {list(arr.shape)}."
        )
    return arr


class SubsampledSPSA:
    """v3.5's ``'spsa_subsampled'`` on Q-Store 4 (see the module docstring).

    >>> import numpy as np
    >>> m = QuantumModel(2, 2, 1, "local", depth=1, seed=0)
    >>> est = SubsampledSPSA(subsample_size=2, c_initial=0.1, seed=0)
    >>> g = est.estimate(
    ...     m, np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([[1.0], [0.0]]), BatchLoss(), shots=None
    ... )
    >>> g.shape
    (6,)
    """

    def __init__(self, subsample_size: int, c_initial: float, seed: int | None = None) -> None:
        self.subsample_size = int(subsample_size)
        self.c_initial = float(c_initial)
        self.rng = np.random.default_rng(seed)
        self.step = 0

    def perturbation_size(self, step: int) -> float:
        """``c_k`` at step ``k`` (1-based)."""
        return float(self.c_initial / step**SPSA_DECAY)

    def estimate(
        self,
        model: QuantumModel,
        x: FloatArray,
        y: FloatArray,
        loss: BatchLoss,
        shots: int | None,
        mask: npt.NDArray[np.bool_] | None = None,
    ) -> FloatArray:
        """One estimate of ``∇L`` on a random subset of the batch ``(x, y)``."""
        self.step += 1
        c = self.perturbation_size(self.step)
        k = min(self.subsample_size, len(x))
        pick = np.sort(self.rng.choice(len(x), size=k, replace=False))
        theta = model.parameters
        delta = self.rng.choice(np.array([-1.0, 1.0]), size=theta.size)
        if mask is not None:
            delta = delta * mask
        points = np.concatenate(
            [np.tile(theta + c * delta, (k, 1)), np.tile(theta - c * delta, (k, 1))]
        )
        xs = np.concatenate([x[pick], x[pick]])
        seed = int(self.rng.integers(2**31)) if shots is not None else None
        e = model.expectations(xs, shots=shots, seed=seed, parameters=points)
        l_plus, l_minus = loss(e[:k], y[pick]), loss(e[k:], y[pick])
        return (l_plus - l_minus) / (2.0 * c) * delta


def core_method(config: TrainingConfig, backend: Any, seed: int | None) -> Any:
    """The :mod:`qstore.core.gradients` method for ``config.gradient_method`` (not
    ``'spsa_subsampled'``), taking ``shots_per_circuit`` shots per evaluation."""
    options: dict[str, Any] = {"shots": config.shots_per_circuit, "seed": seed}
    if config.gradient_method == "spsa":
        options["epsilon"] = config.spsa_c_initial
    return qc_gradients.get(config.gradient_method, backend, **options)


def weight_vjp(
    method: Any,
    model: QuantumModel,
    x: FloatArray,
    cotangent: FloatArray,
    seed: int | None,
) -> FloatArray:
    """``Σ_b cotangent_b · ∂f(x_b; θ)/∂θ`` with a core gradient method: ``[P]``."""
    circuit, inputs, weights = model.circuit()
    shared: Mapping[str, float] = dict(zip(weights, model.parameters.tolist(), strict=True))
    names: Sequence[str] = inputs
    _, g_shared = method.vjp(
        circuit,
        model.observables(),
        x[:, : len(inputs)],
        cotangent,
        names=names,
        shared=shared,
        seed=seed,
    )
    return np.asarray(g_shared, dtype=np.float64)
