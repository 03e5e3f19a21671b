"""Adaptive shot allocation and adaptive circuit depth.

**Shots per step from the gradient's variance** (:class:`ShotSchedule`). With ``S`` shots, each
expectation a training step measures has variance at most ``1/S``. A parameter-shift derivative
``(E+ - E-)/2`` then has variance at most ``1/(2S)``, and the weight gradient
``g_k = sum_b sum_o c_bo dE_bo/dw_k`` (``c`` the loss's gradient with respect to the layer's
outputs, which the framework reports) has shot-noise variance at most
``sum_b (sum_o |c_bo|)^2 / (2S)`` for every one of the ``P`` weights. After each step the
schedule picks the smallest ``S`` that keeps the noise's standard deviation below
``target_ratio`` times the gradient's norm::

    S = P * factor * sum_b (sum_o |c_bo|)^2 / (target_ratio^2 * |g|^2)

(``factor`` 1/2 for parameter shift, ``1/(2 eps^2)`` for finite differences and SPSA), with
both norms smoothed over steps and ``S`` clipped to ``[min_shots, max_shots]``. Far from a
minimum the gradient is large and few shots suffice; near one it shrinks and the shots grow
(the idea of Kübler et al., "An Adaptive Optimizer for Measurement-Frugal Variational
Algorithms", 2020). It changes what runs only where shots are used: sampling backends, or
``TrainingConfig.shots`` on a simulator.

**Depth grown on a plateau** (:class:`DepthSchedule`). After each epoch the validation loss
(the training loss without validation data) is compared with the best so far; when it has not
improved by ``min_delta`` (relative) for ``patience`` epochs, the circuit gets one more
trainable layer (RY/RZ on every qubit and the entangling CNOTs), up to ``max_depth``. The
existing weights are kept and the new layer starts at zero angles, so only its entangling
gates change the function at that point; the optimizer restarts.

>>> s = ShotSchedule.create(None, min_shots=10, max_shots=1000, smoothing=1.0)
>>> s = s.allocator("parameter_shift")
>>> s.update(n_params=8, grad_sq=4.0, cot_sq=1.0)  # 8 * 0.5 * 1 / (0.3**2 * 4)
12
>>> s.update(n_params=8, grad_sq=0.01, cot_sq=1.0)  # smaller gradient: more shots
1000
>>> d = DepthSchedule.create(2, patience=1).controller()
>>> d.observe(1.0), d.observe(0.5), d.observe(0.5)
(None, None, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from qstore.core.errors import TrainingConfigError

__all__ = ["DepthController", "DepthSchedule", "ShotAllocator", "ShotSchedule"]

_FD_EPSILON = 1e-2  # the step assumed by the shot-noise bound of finite differences and SPSA


def _check(name: str, ok: bool, value: object, fix: str) -> None:
    if not ok:
        raise TrainingConfigError(f"{name} = {value!r} is invalid; {fix}.")


@dataclass(frozen=True)
class ShotSchedule:
    """Settings of adaptive shot allocation (``TrainingConfig.adaptive_shot_allocation``)."""

    initial: int = 100
    min_shots: int = 50
    max_shots: int = 10_000
    target_ratio: float = 0.3
    smoothing: float = 0.5

    @classmethod
    def create(cls, shots: int | None = None, **options: Any) -> ShotSchedule:
        """From ``TrainingConfig.shots`` (the first step's shots) and overrides."""
        if shots is not None and "initial" not in options:
            options["initial"] = shots
        out = cls(**options)
        p = "adaptive_shot_allocation"
        for name in ("initial", "min_shots", "max_shots"):
            v = getattr(out, name)
            _check(f"{p}.{name}", isinstance(v, int) and v >= 1, v, "use an int >= 1")
        _check(
            f"{p}.max_shots",
            out.max_shots >= out.min_shots,
            out.max_shots,
            f"use a value >= min_shots ({out.min_shots})",
        )
        r = out.target_ratio
        _check(f"{p}.target_ratio", isinstance(r, (int, float)) and r > 0, r, "use a number > 0")
        a = out.smoothing
        _check(
            f"{p}.smoothing",
            isinstance(a, (int, float)) and 0 < a <= 1,
            a,
            "use a number in (0, 1]",
        )
        return out

    def allocator(self, gradient_method: str) -> ShotAllocator:
        """A fresh allocator for one training run."""
        factor = 0.5 if gradient_method in ("parameter_shift", "adjoint") else 0.5 / _FD_EPSILON**2
        start = min(max(self.initial, self.min_shots), self.max_shots)
        return ShotAllocator(self, factor, start)


@dataclass
class ShotAllocator:
    """The running state of :class:`ShotSchedule`: ``shots`` for the next step."""

    schedule: ShotSchedule
    factor: float
    shots: int
    history: list[int] = field(default_factory=list)
    _grad_sq: float | None = None
    _cot_sq: float | None = None

    def update(self, n_params: int, grad_sq: float, cot_sq: float) -> int:
        """Take one step's statistics; return the shots for the next step.

        ``grad_sq``: squared norm of the quantum weights' gradient; ``cot_sq``:
        ``sum_b (sum_o |dL/dE_bo|)^2`` over the layer's outputs.
        """
        self.history.append(self.shots)
        a = self.schedule.smoothing
        if not (math.isfinite(grad_sq) and math.isfinite(cot_sq)):
            return self.shots
        self._grad_sq = grad_sq if self._grad_sq is None else a * grad_sq + (1 - a) * self._grad_sq
        self._cot_sq = cot_sq if self._cot_sq is None else a * cot_sq + (1 - a) * self._cot_sq
        s = self.schedule
        if self._grad_sq <= 0:
            need = float(s.max_shots)
        else:
            need = n_params * self.factor * self._cot_sq / (s.target_ratio**2 * self._grad_sq)
        self.shots = int(min(max(math.ceil(need), s.min_shots), s.max_shots))
        return self.shots


@dataclass(frozen=True)
class DepthSchedule:
    """Settings of adaptive circuit depth (``TrainingConfig.adaptive_circuit_depth``)."""

    initial: int
    max_depth: int
    patience: int = 2
    min_delta: float = 1e-3

    @classmethod
    def create(
        cls,
        depth: int,
        *,
        max_depth: int | None = None,
        patience: int = 2,
        min_delta: float = 1e-3,
    ) -> DepthSchedule:
        """From ``TrainingConfig.circuit_depth`` and overrides (``max_depth``: twice it)."""
        top = 2 * depth if max_depth is None else max_depth
        p = "adaptive_circuit_depth"
        _check(
            f"{p}.max_depth",
            isinstance(top, int) and top >= depth,
            top,
            f"use an int >= circuit_depth ({depth})",
        )
        _check(f"{p}.patience", isinstance(patience, int) and patience >= 1, patience, "use >= 1")
        _check(
            f"{p}.min_delta",
            isinstance(min_delta, (int, float)) and min_delta >= 0,
            min_delta,
            "use a number >= 0",
        )
        return cls(depth, top, patience, float(min_delta))

    def controller(self) -> DepthController:
        """A fresh controller for one training run."""
        return DepthController(self, self.initial)


@dataclass
class DepthController:
    """The running state of :class:`DepthSchedule`."""

    schedule: DepthSchedule
    depth: int
    best: float = math.inf
    wait: int = 0
    changes: list[tuple[int, int]] = field(default_factory=list)  # (epochs seen, new depth)
    seen: int = 0

    def observe(self, loss: float) -> int | None:
        """Take one epoch's monitored loss; return the new depth when the circuit should grow."""
        self.seen += 1
        s = self.schedule
        if not math.isfinite(loss):
            return None
        if loss < self.best - s.min_delta * abs(self.best) or self.best == math.inf:
            self.best = loss
            self.wait = 0
            return None
        self.wait += 1
        if self.wait < s.patience or self.depth >= s.max_depth:
            return None
        self.depth += 1
        self.wait = 0
        self.best = loss
        self.changes.append((self.seen, self.depth))
        return self.depth
