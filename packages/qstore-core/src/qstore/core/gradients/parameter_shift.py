"""Exact parameter-shift gradients on any backend (only ``expectation`` is needed; shots work).

Shifts are applied to gate *angles*, not to symbols: a symbol may feed several gates and sit
inside expressions (``2*theta + 0.1``, ``x * w``). The circuit is rewritten once into a *shift
template* in which every symbolic gate parameter is its own symbol; all shifted evaluations of
a batch are then rows of one stacked binding matrix ``[n_shifts * B, G]`` sent to the backend in
a single call. Derivatives with respect to gate angles are combined with the exact
``∂angle/∂symbol`` of each expression (per sample when data symbols are involved).

Each gate parameter uses the rule of :func:`~qstore.core.gradients.shift_rules.gate_shift_rule`:
two evaluations for ``RX RY RZ P U3 RXX RYY RZZ ZZ GPI`` and the ``θ`` of ``MS``, four for
``CRX CRY CRZ GPI2`` and the phases of ``MS`` (two frequencies each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import Operation, UnifiedCircuit
from qstore.core.engine.binding import ParameterMap
from qstore.core.errors import GradientError
from qstore.core.gradients.base import Bindings, FloatArray, GradientMethod, evaluate
from qstore.core.gradients.shift_rules import ShiftRule, gate_shift_rule
from qstore.core.observables import PauliSum
from qstore.core.parameters import Expression, Parameter

logger = logging.getLogger(__name__)
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class ShiftTemplate:
    """``circuit`` with gate parameter ``g`` replaced by the symbol ``symbols[g]``.

    ``exprs[g]`` is the original expression and ``slots[g]`` its column in the circuit's compiled
    gate parameters (:class:`~qstore.core.engine.binding.ParameterMap`, the one parameter
    compiler, which evaluates the expressions and their chain rule); shift ``t`` moves parameter
    ``param[t]`` by ``amount[t]`` and enters its derivative with weight ``weight[t]``; shifts of
    one parameter are contiguous, starting at ``starts``.
    """

    circuit: UnifiedCircuit
    symbols: tuple[str, ...]
    exprs: tuple[Expression, ...]
    slots: IntArray
    rules: tuple[ShiftRule, ...]
    param: IntArray
    amount: FloatArray
    weight: FloatArray
    starts: IntArray
    shifted: IntArray  # the parameters that have at least one shift, in order

    @property
    def n_shifts(self) -> int:
        return int(self.param.size)


def shift_template(circuit: UnifiedCircuit) -> ShiftTemplate:
    """The shift template of ``circuit``, built once (see :meth:`UnifiedCircuit.compiled`)."""
    return circuit.compiled(
        ("qstore.core.gradients.shift_template",), lambda: _shift_template(circuit)
    )


def _shift_template(circuit: UnifiedCircuit) -> ShiftTemplate:
    prefix = "__g"
    existing = set(circuit.parameters)
    while any(s.startswith(prefix) for s in existing):
        prefix = "_" + prefix
    out = UnifiedCircuit(circuit.n_qubits, circuit.name)
    symbols: list[str] = []
    exprs: list[Expression] = []
    slots: list[int] = []
    rules: list[ShiftRule] = []
    g = 0  # the column of the next gate parameter in ParameterMap order (every parameter)
    for k, op in enumerate(circuit):
        if op.is_measurement:
            out.append(op)
            continue
        if not op.is_parameterized:
            g += len(op.params)
            out.append(op)
            continue
        params: list[Expression] = []
        for i, expr in enumerate(op.params):
            g += 1
            if expr.is_constant:
                params.append(expr)
                continue
            name = f"{prefix}{k}_{i}"
            symbols.append(name)
            exprs.append(expr)
            slots.append(g - 1)
            rules.append(gate_shift_rule(op.gate, i))
            params.append(Parameter(name))
        out.append(Operation(op.gate, op.qubits, tuple(params)))
    param: list[int] = []
    amount: list[float] = []
    weight: list[float] = []
    starts: list[int] = []
    shifted: list[int] = []
    for g, rule in enumerate(rules):
        if not rule.shifts:
            continue
        shifted.append(g)
        starts.append(len(param))
        for s, c in zip(rule.shifts, rule.coefficients, strict=True):
            param += [g, g]
            amount += [s, -s]
            weight += [c, -c]
    tpl = ShiftTemplate(
        circuit=out,
        symbols=tuple(symbols),
        exprs=tuple(exprs),
        slots=np.asarray(slots, dtype=np.intp),
        rules=tuple(rules),
        param=np.asarray(param, dtype=np.intp),
        amount=np.asarray(amount, dtype=np.float64),
        weight=np.asarray(weight, dtype=np.float64),
        starts=np.asarray(starts, dtype=np.intp),
        shifted=np.asarray(shifted, dtype=np.intp),
    )
    return tpl


class ParameterShiftGradient(GradientMethod):
    """Exact gradients by parameter-shift rules, for every parameterised gate in the table.

    Works on any backend (the only call is ``expectation``), exact or with ``shots``; all the
    shifted circuits of a batch go to the backend in one call (``max_rows`` splits that call
    when a backend limits batch sizes).

    >>> import qstore.core as qc
    >>> from qstore.core.observables import Z
    >>> from qstore.core.backends.local import LocalBackend
    >>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CRY", [0, 1], 2 * qc.Parameter("w"))
    >>> jv, js = ParameterShiftGradient(LocalBackend()).jacobian(c, Z(1), None, shared={"w": 0.3})
    >>> bool(np.isclose(js[0, 0, 0], -np.sin(0.6), atol=1e-12))  # d/dw (1 + cos 2w) / 2
    True
    """

    method = "parameter_shift"

    def __init__(
        self,
        backend: Any,
        *,
        shots: int | None = None,
        seed: int | None = None,
        max_rows: int | None = None,
    ) -> None:
        super().__init__(backend, shots=shots, seed=seed)
        if max_rows is not None and (
            isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
        ):
            raise GradientError(f"max_rows must be a positive int or None, got {max_rows!r}.")
        self.max_rows = max_rows

    def _jacobian(
        self,
        circuit: UnifiedCircuit,
        observables: list[PauliSum],
        b: Bindings,
        shots: int | None,
        seed: int | None,
        inputs: bool = True,
    ) -> tuple[FloatArray, int]:
        tpl = shift_template(circuit)
        full = b.full
        bsz, n_obs, n_cols = b.batch, len(observables), len(b.all_names)
        jac = np.zeros((bsz, n_obs, n_cols))
        if not inputs:  # only the shared columns' gradients are wanted: shift nothing else
            tpl = _restricted(tpl, frozenset(b.shared_names))
        t = tpl.n_shifts
        if t == 0:
            return jac, 0
        names = b.all_names
        pmap = circuit.compiled(
            ("qstore.core.gradients.parameter_map", names),
            lambda: ParameterMap.build(circuit, names),
        )
        all_theta = pmap.theta(full)  # [B, every gate parameter]
        theta = all_theta[:, tpl.slots]  # [B, G]: the template's symbols
        rows = np.broadcast_to(theta, (t, *theta.shape)).copy()  # [T, B, G]
        rows[np.arange(t), :, tpl.param] += tpl.amount[:, None]
        flat = rows.reshape(t * bsz, -1)
        step = flat.shape[0] if self.max_rows is None else self.max_rows
        parts = []
        for i, start in enumerate(range(0, flat.shape[0], step)):
            part_seed = None if seed is None else seed + i
            chunk = flat[start : start + step]
            parts.append(
                evaluate(
                    self.backend, tpl.circuit, observables, chunk, tpl.symbols, shots, part_seed
                )
            )
        e = np.concatenate(parts, axis=0).reshape(t, bsz, n_obs)
        logger.debug("parameter shift: %d shifted rows in %d call(s)", t * bsz, len(parts))
        # d E / d angle for every shifted gate parameter: [G', B, n_obs]
        d_angle = np.add.reduceat(e * tpl.weight[:, None, None], tpl.starts, axis=0)
        # ... then to the binding columns through the expressions (the map's chain rule)
        gtheta = np.zeros((n_obs, bsz, all_theta.shape[1]))
        gtheta[:, :, tpl.slots[tpl.shifted]] = d_angle.transpose(2, 1, 0)
        for o in range(n_obs):
            jac[:, o, :] = pmap.chain_rule(full, gtheta[o])
        return jac, t * bsz

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
        jac, n_eval = self._jacobian(circuit, observables, b, shots, seed, inputs)
        g = np.einsum("bo,boc->bc", cot, jac)
        p = len(b.names)
        gv = g[:, :p] if inputs else np.zeros((b.batch, p))
        return gv, g[:, p:].sum(axis=0), n_eval


def _restricted(tpl: ShiftTemplate, wanted: frozenset[str]) -> ShiftTemplate:
    """``tpl`` shifting only the gate parameters whose expressions involve a ``wanted`` symbol
    (e.g. the weights, when the per-sample inputs need no gradient: on paid hardware every
    shifted circuit costs money)."""
    keep = [j for j, g in enumerate(tpl.shifted.tolist()) if set(tpl.exprs[g].symbols) & wanted]
    if len(keep) == len(tpl.shifted):
        return tpl
    ends = [*tpl.starts.tolist()[1:], tpl.n_shifts]
    rows = [t for j in keep for t in range(int(tpl.starts[j]), ends[j])]
    sizes = [ends[j] - int(tpl.starts[j]) for j in keep]
    return replace(
        tpl,
        param=tpl.param[rows],
        amount=tpl.amount[rows],
        weight=tpl.weight[rows],
        starts=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        if keep
        else np.zeros(0, dtype=np.intp),
        shifted=tpl.shifted[keep],
    )
