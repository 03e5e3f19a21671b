"""Exact parameter-shift rules from the frequency spectrum of a gate parameter.

An expectation value ``f(θ)`` of a circuit in which ``θ`` enters one gate is a trigonometric
polynomial ``a_0 + Σ_l a_l cos(ω_l θ) + b_l sin(ω_l θ)`` whose frequencies ``ω_l`` are
:meth:`~qstore.core.gates.GateSpec.frequencies` of that gate parameter. With ``R`` frequencies
and the shifts ``s_μ = (2μ − 1) π / (2 R ω_min)`` (``μ = 1 .. R``),

    f'(θ) = Σ_μ c_μ [f(θ + s_μ) − f(θ − s_μ)],

exactly, when the coefficients solve the ``R × R`` system ``Σ_μ c_μ · 2 sin(ω_l s_μ) = ω_l``
for every ``l`` (Wierichs, Izaac, Wang, Lin, Quantum 6, 677 (2022)). One frequency gives the
familiar two-term rule ``f' = (ω/2) [f(θ + π/(2ω)) − f(θ − π/(2ω))]``.

>>> rule = shift_rule((1.0,))
>>> rule.shifts, rule.coefficients
((1.5707963267948966,), (0.5,))
>>> [round(c, 6) for c in shift_rule((0.5, 1.0)).coefficients]  # controlled rotations
[0.426777, -0.073223]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from qstore.core.errors import GradientError
from qstore.core.gates import get_gate

_MAX_CONDITION = 1e8


@dataclass(frozen=True)
class ShiftRule:
    """``f'(θ) = Σ_μ coefficients[μ] · (f(θ + shifts[μ]) − f(θ − shifts[μ]))``."""

    frequencies: tuple[float, ...]
    shifts: tuple[float, ...]
    coefficients: tuple[float, ...]

    @property
    def n_terms(self) -> int:
        """Circuit evaluations per derivative (two per shift)."""
        return 2 * len(self.shifts)

    def apply(self, f: object, theta: float) -> float:
        """Differentiate a scalar function ``f`` at ``theta`` with this rule (for checks)."""
        assert callable(f)
        return math.fsum(
            c * (float(f(theta + s)) - float(f(theta - s)))
            for s, c in zip(self.shifts, self.coefficients, strict=True)
        )


def _solve(frequencies: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    r = len(frequencies)
    w = np.asarray(frequencies, dtype=float)
    shifts = (2.0 * np.arange(1, r + 1) - 1.0) * math.pi / (2.0 * r * w[0])
    a = 2.0 * np.sin(np.outer(w, shifts))  # a[l, mu]
    cond = float(np.linalg.cond(a))
    if not math.isfinite(cond) or cond > _MAX_CONDITION:
        return (), (), cond
    coeffs = np.linalg.solve(a, w)
    return tuple(float(s) for s in shifts), tuple(float(c) for c in coeffs), cond


def _equidistant_completion(frequencies: Sequence[float]) -> tuple[float, ...]:
    """``(ω0, 2ω0, ..., Kω0)`` covering commensurate ``frequencies`` (ω0 their common base)."""
    w_min = frequencies[0]
    ratios = [Fraction(w / w_min).limit_denominator(64) for w in frequencies]
    if any(abs(float(q) * w_min - w) > 1e-9 * w for q, w in zip(ratios, frequencies, strict=True)):
        raise GradientError(
            f"The frequencies {list(frequencies)} are not commensurate, so no finite exact "
            "parameter-shift rule exists; use AdjointGradient or FiniteDifferenceGradient."
        )
    denom = math.lcm(*(q.denominator for q in ratios))
    base = w_min / denom
    k = round(frequencies[-1] / base)
    return tuple(base * i for i in range(1, k + 1))


def shift_rule(frequencies: Sequence[float]) -> ShiftRule:
    """The exact shift rule for a parameter whose expectation has these positive frequencies.

    Frequencies that make the ``R × R`` system ill-conditioned (non-equidistant sets) are
    completed to the equidistant set ``ω0, 2ω0, ...`` of their common base, which is always
    solvable and still exact (the added frequencies simply have zero amplitude).
    """
    freqs = sorted({round(float(w), 12) for w in frequencies if float(w) > 1e-12})
    if any(not math.isfinite(w) for w in freqs):
        raise GradientError(f"Frequencies must be finite, got {list(frequencies)}.")
    if not freqs:
        return ShiftRule((), (), ())
    shifts, coeffs, _ = _solve(freqs)
    if not shifts:
        freqs = list(_equidistant_completion(freqs))
        shifts, coeffs, cond = _solve(freqs)
        if not shifts:  # pragma: no cover - equidistant sets are always well posed
            raise GradientError(f"No stable shift rule for frequencies {freqs} (cond {cond:.3g}).")
    return ShiftRule(tuple(freqs), shifts, coeffs)


@functools.cache
def gate_shift_rule(gate: str, index: int) -> ShiftRule:
    """The shift rule of parameter ``index`` of ``gate`` (from the gate's Fourier form).

    >>> gate_shift_rule("CRY", 0).n_terms, gate_shift_rule("GPI", 0).shifts
    (4, (0.7853981633974483,))
    """
    spec = get_gate(gate)
    if not 0 <= index < spec.n_params:
        raise GradientError(
            f"Gate {spec.name} has parameters {list(spec.param_names)}; index {index} is invalid."
        )
    return shift_rule(spec.frequencies(index))
