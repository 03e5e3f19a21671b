"""The parameter layer: compiled once, used by the engine, the plugins and parameter shift.

A circuit's gate parameters are polynomials in its symbols. :class:`ParameterMap` compiles them,
once per circuit template and column layout (per-sample columns first, then shared ones), into

    theta = const + values @ w + sum_m coeff_m * prod(values[:, cols_m])

for a binding matrix ``values [B, P]``: linear expressions (the usual case) are one matmul for the
whole batch, products such as ``x_3 * w_3`` (re-uploading encodings) a short list of monomials.
:func:`gate_parameters` and :func:`chain_rule` evaluate the map and its transpose on any array
library (:class:`~qstore.core.engine.generic.ArrayOps`), :func:`as_values` validates bindings.

>>> import numpy as np
>>> from qstore.core import Parameter, UnifiedCircuit
>>> c = UnifiedCircuit(1).add_gate("RX", 0, 2 * Parameter("t") + 0.5)
>>> pm = ParameterMap.build(c, ["t"])
>>> pm.theta(np.array([[1.0], [2.0]])).tolist()
[[2.5], [4.5]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import BindingError, NonFiniteParameterError, UnboundParameterError

__all__ = [
    "BindingLayout",
    "ParameterMap",
    "as_values",
    "chain_rule",
    "check_finite_theta",
    "gate_parameters",
]

FloatArray = npt.NDArray[np.float64]
Tensor = Any


class BindingLayout(Protocol):
    """What the binding functions below read of a compiled template: the column names
    (per-sample first), how many are per-sample, and the gate parameters as polynomials
    ``theta = theta_const + values @ theta_w + sum_m coeff_m * prod(values[:, cols_m])``.
    A :class:`~qstore.core.engine.program.Program` is one; simulator plugins have their own."""

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def n_batched(self) -> int: ...

    @property
    def theta_const(self) -> FloatArray: ...

    @property
    def theta_w(self) -> FloatArray: ...

    @property
    def theta_mono(self) -> Sequence[tuple[tuple[int, ...], int, float]]: ...


class _NumpyArith:
    """The few array operations :func:`gate_parameters` and :func:`chain_rule` need, on NumPy
    (the engine's ``ArrayOps`` for other libraries provide the same names)."""

    def const(self, value: npt.ArrayLike, complex_: bool) -> Tensor:
        return np.asarray(value, dtype=np.complex128 if complex_ else np.float64)

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        return np.matmul(a, b)

    def stack(self, xs: Sequence[Tensor], axis: int) -> Tensor:
        return np.stack(list(xs), axis=axis)

    def unstack(self, x: Tensor, axis: int) -> list[Tensor]:
        return list(np.moveaxis(x, axis, 0))


NUMPY = _NumpyArith()


def _cached(layout: BindingLayout, key: str, make: Any) -> Any:
    cache = getattr(layout, "cache", None)
    if cache is None:
        return make()
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = make()
    return hit


def gate_parameters(ops: Any, layout: BindingLayout, values: Tensor) -> Tensor:
    """``theta [B, G]`` from bindings ``values [B, P]`` with ``ops``' arrays (differentiable)."""
    theta = ops.matmul(values, ops.const(layout.theta_w, False)) + ops.const(
        layout.theta_const, False
    )
    mono = layout.theta_mono
    if not mono:
        return theta
    extra: dict[int, Tensor] = {}
    vcols = ops.unstack(values, 1)
    for cols, g, coeff in mono:
        prod = vcols[cols[0]] * coeff
        for ci in cols[1:]:
            prod = prod * vcols[ci]
        extra[g] = prod if g not in extra else extra[g] + prod
    tcols = ops.unstack(theta, 1)
    return ops.stack(
        [tcols[g] + extra[g] if g in extra else tcols[g] for g in range(len(tcols))], 1
    )


def chain_rule(ops: Any, layout: BindingLayout, values: Tensor, gtheta: Tensor) -> Tensor:
    """``d/dvalues [B, P]`` from ``d/dtheta [B, G]`` (the transpose of :func:`gate_parameters`)."""
    wt = _cached(layout, "binding.theta_w_t", lambda: np.ascontiguousarray(layout.theta_w.T))
    gv = ops.matmul(gtheta, ops.const(wt, False))
    if not layout.theta_mono:
        return gv
    cols = ops.unstack(gv, 1)
    gcols = ops.unstack(gtheta, 1)
    vcols = ops.unstack(values, 1)
    for mono_cols, g, c in layout.theta_mono:
        for i, ci in enumerate(mono_cols):
            other = gcols[g] * c
            for j, cj in enumerate(mono_cols):
                if j != i:
                    other = other * vcols[cj]
            cols[ci] = cols[ci] + other
    return ops.stack(cols, 1)


def check_finite_theta(theta: FloatArray) -> FloatArray:
    """``theta``, or :class:`NonFiniteParameterError` if a gate parameter is NaN or infinite."""
    if not np.isfinite(theta).all():
        raise NonFiniteParameterError(
            "A gate parameter evaluated to NaN or infinity; check the bindings for NaN/inf."
        )
    return theta


@dataclass(frozen=True)
class ParameterMap:
    """Gate parameters of a circuit template as a vectorised function of the binding matrix.

    Gate parameter ``g`` (every parameter of every gate, in circuit order) is a polynomial in the
    binding columns. For a batch ``values [B, P]`` (per-sample columns first, then shared ones)::

        theta = const + values @ w + sum_m coeff_m * prod(values[:, cols_m])

    Built once per template and column layout. Unlike the core's compiled ``Program`` it allocates
    nothing of size ``2**n``, which matters for simulators that run 30 qubits.

    ``slots[k]`` lists the theta columns of the parameters of operation ``k`` of the circuit
    (empty for measurements and fixed gates); ``gates[g]`` is ``(gate name, parameter index)``.
    """

    names: tuple[str, ...]
    n_batched: int
    const: FloatArray
    w: FloatArray  # [P, G]
    mono: tuple[tuple[tuple[int, ...], int, float], ...]  # (columns, theta index, coefficient)
    slots: tuple[tuple[int, ...], ...]
    gates: tuple[tuple[str, int], ...]

    @property
    def n_theta(self) -> int:
        return int(self.const.shape[0])

    @property
    def symbolic(self) -> npt.NDArray[np.bool_]:
        """Which gate parameters depend on a binding column (the others are constants)."""
        dep = (self.w != 0.0).any(axis=0)
        for _, g, _ in self.mono:
            dep[g] = True
        return np.asarray(dep, dtype=bool)

    @property
    def batched(self) -> npt.NDArray[np.bool_]:
        """Which gate parameters depend on a per-sample column (the others are shared by the
        whole batch)."""
        nb = self.n_batched
        dep = (self.w[:nb] != 0.0).any(axis=0)
        for cols, g, _ in self.mono:
            if any(ci < nb for ci in cols):
                dep[g] = True
        return np.asarray(dep, dtype=bool)

    @classmethod
    def build(
        cls, circuit: UnifiedCircuit, names: Sequence[str], shared_names: Sequence[str] = ()
    ) -> ParameterMap:
        all_names = tuple(names) + tuple(shared_names)
        if len(set(all_names)) != len(all_names):
            dup = sorted({x for x in all_names if all_names.count(x) > 1})
            raise BindingError(f"Parameter name(s) {dup} are given more than once.")
        col = {nm: i for i, nm in enumerate(all_names)}
        missing = [s for s in circuit.parameters if s not in col]
        if missing:
            raise UnboundParameterError(
                f"The circuit's symbol(s) {missing} have no values; pass them as columns of the "
                "parameter batch (names=...) or as shared values. Known columns: "
                f"{list(all_names)}."
            )
        const: list[float] = []
        w_entries: list[tuple[int, int, float]] = []
        mono: list[tuple[tuple[int, ...], int, float]] = []
        slots: list[tuple[int, ...]] = []
        gates: list[tuple[str, int]] = []
        for op in circuit:
            if op.is_measurement:
                slots.append(())
                continue
            idx = []
            for i, expr in enumerate(op.params):
                g = len(const)
                const.append(expr.constant)
                gates.append((op.gate, i))
                for m, c in expr.terms:
                    cols = tuple(col[s] for s in m)
                    if len(cols) == 1:
                        w_entries.append((cols[0], g, c))
                    else:
                        mono.append((cols, g, c))
                idx.append(g)
            slots.append(tuple(idx))
        w = np.zeros((len(all_names), len(const)))
        for ci, g, c in w_entries:
            w[ci, g] += c
        return cls(
            names=all_names,
            n_batched=len(names),
            const=np.asarray(const, dtype=np.float64),
            w=w,
            mono=tuple(mono),
            slots=tuple(slots),
            gates=tuple(gates),
        )

    @property
    def theta_const(self) -> FloatArray:
        return self.const

    @property
    def theta_w(self) -> FloatArray:
        return self.w

    @property
    def theta_mono(self) -> tuple[tuple[tuple[int, ...], int, float], ...]:
        return self.mono

    def layout(
        self, values: npt.ArrayLike | None, shared: Mapping[str, float] | None
    ) -> FloatArray:
        """Validate the bindings and lay out the full ``[B, P]`` matrix (shared broadcast)."""
        s = [float(shared[k]) for k in self.names[self.n_batched :]] if shared else None
        return as_values(self, values, s)

    def theta(self, full: FloatArray) -> FloatArray:
        """Gate parameters ``[B, G]`` for the full binding matrix ``[B, P]``."""
        return check_finite_theta(np.asarray(gate_parameters(NUMPY, self, full), dtype=np.float64))

    def chain_rule(self, full: FloatArray, gtheta: FloatArray) -> FloatArray:
        """Map ``d/dtheta [B, G]`` to ``d/dvalues [B, P]`` through the parameter expressions."""
        return np.asarray(chain_rule(NUMPY, self, full, gtheta), dtype=np.float64)


def as_values(
    prog: BindingLayout, values: npt.ArrayLike | None, shared: npt.ArrayLike | None
) -> FloatArray:
    """Validate bindings and lay out the full ``[B, P]`` matrix (shared columns broadcast)."""
    nb = prog.n_batched
    ns = len(prog.names) - nb
    if values is None:
        if nb:
            raise BindingError(
                f"The circuit needs per-sample values for {list(prog.names[:nb])}; pass values=."
            )
        v = np.zeros((1, 0))
    else:
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 1 and nb:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != nb:
            raise BindingError(
                f"values must have shape [batch, {nb}] with columns {list(prog.names[:nb])}; "
                f"got shape {np.shape(values)}."
            )
        if v.shape[0] == 0:
            raise BindingError("values has an empty batch (shape [0, P]); give at least one row.")
    s = np.zeros(0) if shared is None else np.asarray(shared, dtype=np.float64).reshape(-1)
    if s.shape[0] != ns:
        raise BindingError(
            f"Expected {ns} shared values for {list(prog.names[nb:])}, got {s.shape[0]}."
        )
    if not (np.isfinite(v).all() and np.isfinite(s).all()):
        bad = np.argwhere(~np.isfinite(v))
        where = f" (first at row {bad[0][0]}, column {prog.names[bad[0][1]]!r})" if bad.size else ""
        raise NonFiniteParameterError(
            f"Parameter bindings contain NaN or infinity{where}; all values must be finite."
        )
    if ns:
        v = np.concatenate([v, np.broadcast_to(s, (v.shape[0], ns))], axis=1)
    return v
