"""Gate parameters of a circuit template as a vectorised function of the binding matrix.

Gate parameter ``g`` (every parameter of every gate, in circuit order) is a polynomial in the
binding columns. For a batch ``values [B, P]`` (per-sample columns first, then shared ones)::

    theta = const + values @ w + sum_m coeff_m * prod(values[:, cols_m])

Built once per template and column layout. Unlike the core's compiled ``Program`` it allocates
nothing of size ``2**n``, which matters for simulators that run 30 qubits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import BindingError, NonFiniteParameterError, UnboundParameterError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ParameterMap:
    """``theta [B, G]`` from bindings ``[B, P]``, and the chain rule back (see module doc).

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

    def layout(
        self, values: npt.ArrayLike | None, shared: Mapping[str, float] | None
    ) -> FloatArray:
        """Validate the bindings and lay out the full ``[B, P]`` matrix (shared broadcast)."""
        nb = self.n_batched
        if values is None:
            if nb:
                raise BindingError(
                    f"The circuit needs per-sample values for {list(self.names[:nb])}; pass "
                    "values=."
                )
            v = np.zeros((1, 0))
        else:
            v = np.asarray(values, dtype=np.float64)
            if v.ndim == 1 and nb:
                v = v[None, :]
            if v.ndim != 2 or v.shape[1] != nb:
                raise BindingError(
                    f"values must have shape [batch, {nb}] with columns {list(self.names[:nb])}; "
                    f"got shape {list(np.shape(values))}."
                )
            if v.shape[0] == 0:
                raise BindingError(
                    "values has an empty batch (shape [0, P]); give at least one row."
                )
        s = np.asarray([float(shared[k]) for k in self.names[nb:]]) if shared else np.zeros(0)
        if not (np.isfinite(v).all() and np.isfinite(s).all()):
            raise NonFiniteParameterError(
                "A binding value is NaN or infinite; check the values and shared parameters."
            )
        return np.concatenate([v, np.broadcast_to(s, (v.shape[0], s.shape[0]))], axis=1)

    def theta(self, full: FloatArray) -> FloatArray:
        """Gate parameters ``[B, G]`` for the full binding matrix ``[B, P]``."""
        theta = self.const + full @ self.w
        for cols, g, c in self.mono:
            prod = np.full(full.shape[0], c)
            for ci in cols:
                prod = prod * full[:, ci]
            theta[:, g] += prod
        if not np.isfinite(theta).all():
            raise NonFiniteParameterError(
                "A gate parameter evaluated to NaN or infinity; check the bindings for NaN/inf."
            )
        return np.asarray(theta, dtype=np.float64)

    def chain_rule(self, full: FloatArray, gtheta: FloatArray) -> FloatArray:
        """Map ``d/dtheta [B, G]`` to ``d/dvalues [B, P]`` through the parameter expressions."""
        gv = gtheta @ self.w.T
        for cols, g, c in self.mono:
            for i, ci in enumerate(cols):
                other = np.full(full.shape[0], c)
                for j, cj in enumerate(cols):
                    if j != i:
                        other = other * full[:, cj]
                gv[:, ci] += other * gtheta[:, g]
        return np.asarray(gv, dtype=np.float64)
