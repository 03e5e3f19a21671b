"""``UnifiedCircuit`` <-> ``cirq.Circuit`` (needs the ``[cirq]`` extra: ``cirq-core``).

Qubit ``q`` becomes ``cirq.LineQubit(q)`` (or ``qubits[q]``); both libraries put qubit 0 in the
most significant bit, so ``cirq.unitary`` (with ``qubit_order`` listing all qubits) equals
``circuit.unitary()`` exactly. Symbols become ``sympy.Symbol`` s of the same name, expressions
become sympy polynomials, and ``from_cirq(to_cirq(c), ...) == c`` exactly.

Gates map to Cirq's own gates wherever one has the same matrix (``RX -> cirq.rx``,
``SX -> cirq.X**0.5``, ``CRX -> cirq.ControlledGate(cirq.rx)`` ...). ``P`` and ``RXX/RYY/RZZ``
use angle-keeping subclasses of ``cirq.ZPowGate``/``cirq.XXPowGate``...; U3 and the IonQ
natives use :class:`QStoreGate`, which decomposes into standard gates. Circuits written by hand
with Cirq's gates are read too; where a Cirq gate equals ours only up to a global phase, the
phase is dropped and documented in ``docs/conventions.md``.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CRX", [0, 1], "theta")
>>> from_cirq(to_cirq(c)) == c
True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import ConversionError, QStoreError, require
from qstore.core.parameters import Expression, Parameter

if TYPE_CHECKING:
    import cirq

    from qstore.core.convert._cirq_gates import PhaseGate as PhaseGate
    from qstore.core.convert._cirq_gates import QStoreGate as QStoreGate
    from qstore.core.convert._cirq_gates import XXRotation as XXRotation
    from qstore.core.convert._cirq_gates import YYRotation as YYRotation
    from qstore.core.convert._cirq_gates import ZZRotation as ZZRotation

__all__ = [
    "from_cirq",
    "from_sympy",
    "to_cirq",
    "to_sympy",
]
_GATE_CLASSES = frozenset({"PhaseGate", "QStoreGate", "XXRotation", "YYRotation", "ZZRotation"})


def __getattr__(name: str) -> Any:
    # The Cirq gate classes (PhaseGate, QStoreGate, XXRotation, YYRotation, ZZRotation) need
    # cirq; they are imported on first access.
    if name in _GATE_CLASSES:
        return getattr(_gates(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MAX_DECOMPOSE_DEPTH = 12


def _cirq() -> Any:
    try:
        import cirq
    except ImportError as exc:
        raise require("cirq", "cirq") from exc
    return cirq


def _gates() -> Any:
    _cirq()
    from qstore.core.convert import _cirq_gates

    return _cirq_gates


# -- symbols ------------------------------------------------------------------------------------


def _sympy_number(value: float) -> Any:
    import sympy

    if value.is_integer() and abs(value) < 2**53:
        return sympy.Integer(int(value))
    return sympy.Float(value)  # a Python float converts exactly (53-bit precision)


def to_sympy(expr: Expression) -> Any:
    """An :class:`Expression` as a ``float`` (constant) or a sympy polynomial (symbolic).

    >>> from qstore.core.parameters import Parameter
    >>> to_sympy(2 * Parameter("theta") + 0.5)
    2*theta + 0.5
    """
    if expr.is_constant:
        return expr.constant
    import sympy

    out: Any = sympy.Integer(0)
    for mono, coeff in expr.terms:
        prod: Any = sympy.Mul(*[sympy.Symbol(s) for s in mono])
        out = out + (prod if coeff == 1.0 else _sympy_number(coeff) * prod)
    if expr.constant != 0.0:
        out = out + _sympy_number(expr.constant)
    return out


def from_sympy(value: Any) -> Expression:
    """A number or sympy expression as an :class:`Expression` (polynomials only).

    Numeric factors such as ``sympy.pi`` are folded into the coefficients; anything that is
    not a real polynomial in symbols (``sin(x)``, ``1/x``, ``I*x``) raises
    :class:`~qstore.core.errors.ConversionError`.
    """
    if isinstance(value, bool):
        raise ConversionError(f"A gate parameter cannot be a boolean ({value!r}).")
    if isinstance(value, numbers.Real):
        return Expression.coerce(float(value))
    import sympy

    try:
        expr = sympy.sympify(value)
    except (sympy.SympifyError, TypeError) as exc:
        raise ConversionError(
            f"Cannot read parameter {value!r} as a number or sympy expression."
        ) from exc
    out = Expression()
    for term in sympy.Add.make_args(sympy.expand(expr)):
        coeff: Any = sympy.Integer(1)
        symbols: list[str] = []
        for factor in sympy.Mul.make_args(term):
            if factor.is_number:
                coeff = coeff * factor
            elif isinstance(factor, sympy.Symbol):
                symbols.append(factor.name)
            elif (
                isinstance(factor, sympy.Pow)
                and isinstance(factor.base, sympy.Symbol)
                and factor.exp.is_Integer
                and int(factor.exp) > 0
            ):
                symbols.extend([factor.base.name] * int(factor.exp))
            else:
                raise ConversionError(
                    f"Parameter {expr} is not a real polynomial in symbols (the factor {factor} "
                    "is not supported); Q-Store parameters are polynomials such as 2*theta + 0.1 "
                    "or x_3*w_3. Bind the symbols first or rewrite the expression."
                )
        c = complex(coeff)
        if c.imag != 0.0:
            raise ConversionError(
                f"Parameter {expr} has a complex coefficient {c}; gate parameters must be real."
            )
        part: Expression = Expression((), c.real)
        for s in symbols:
            part = part * Parameter(s)
        out = out + part
    return out


# -- IR -> Cirq ---------------------------------------------------------------------------------


def _cirq_gate(name: str, params: tuple[Any, ...]) -> Any:
    cq = _cirq()
    g = _gates()
    fixed = {
        "I": cq.I,
        "H": cq.H,
        "X": cq.X,
        "Y": cq.Y,
        "Z": cq.Z,
        "S": cq.S,
        "SDG": cq.ZPowGate(exponent=-0.5),
        "T": cq.T,
        "TDG": cq.ZPowGate(exponent=-0.25),
        "SX": cq.XPowGate(exponent=0.5),
        "SXDG": cq.XPowGate(exponent=-0.5),
        "CNOT": cq.CNOT,
        "CZ": cq.CZ,
        "SWAP": cq.SWAP,
        "CCX": cq.CCX,
    }
    if name in fixed:
        return fixed[name]
    rotations = {
        "RX": cq.rx,
        "RY": cq.ry,
        "RZ": cq.rz,
        "P": lambda t: g.PhaseGate(rads=t),
        "CRX": lambda t: cq.ControlledGate(cq.rx(t)),
        "CRY": lambda t: cq.ControlledGate(cq.ry(t)),
        "CRZ": lambda t: cq.ControlledGate(cq.rz(t)),
        "RXX": lambda t: g.XXRotation(rads=t),
        "RYY": lambda t: g.YYRotation(rads=t),
        "RZZ": lambda t: g.ZZRotation(rads=t),
    }
    if name in rotations:
        return rotations[name](params[0])
    return g.QStoreGate(name, list(params))  # U3, GPI, GPI2, MS, ZZ


def to_cirq(circuit: UnifiedCircuit, qubits: Sequence[Any] | None = None) -> cirq.Circuit:
    """Convert ``circuit`` to a ``cirq.Circuit`` on ``cirq.LineQubit.range(n)`` (or ``qubits``).

    Symbols become sympy symbols with the same names. Operations keep their order: each goes
    into the last moment if its qubits are free there, otherwise into a new moment.
    """
    cq = _cirq()
    if qubits is None:
        qs = list(cq.LineQubit.range(circuit.n_qubits))
    else:
        qs = list(qubits)
        if len(qs) != circuit.n_qubits or len(set(qs)) != len(qs):
            raise ConversionError(
                f"to_cirq() needs {circuit.n_qubits} distinct qubits (one per circuit qubit), "
                f"got {len(qs)} ({len(set(qs))} distinct)."
            )
    moments: list[list[Any]] = []
    busy: set[Any] = set()  # qubits and measurement keys used in the last moment
    for op in circuit:
        targets = [qs[q] for q in op.qubits]
        uses: list[Any] = list(targets)
        if op.is_measurement:
            key = op.key or "m"
            cop = cq.measure(*targets, key=key)
            uses.append(("key", key))  # one measurement per key and moment, as Cirq expects
        else:
            params = tuple(to_sympy(p) for p in op.params)
            cop = _cirq_gate(op.gate, params).on(*targets)
        if not moments or busy.intersection(uses):
            moments.append([])
            busy = set()
        moments[-1].append(cop)
        busy.update(uses)
    result: cirq.Circuit = cq.Circuit(cq.Moment(m) for m in moments)
    return result


# -- Cirq -> IR ---------------------------------------------------------------------------------

# (gate, qubits, params as floats or sympy expressions, measurement key)
_Op = tuple[str, tuple[int, ...], tuple[Any, ...], "str | None"]


def _times_pi(t: Any) -> Any:
    if isinstance(t, numbers.Real):
        return math.pi * float(t)
    import sympy

    return sympy.pi * t


def _is(value: Any, target: float) -> bool:
    return isinstance(value, numbers.Real) and float(value) == target


def _eigen_gate(gate: Any, qs: tuple[int, ...]) -> list[_Op] | None:
    """Cirq's eigen-gates with exponent ``t`` and global shift ``s`` (phases: conventions.md)."""
    cq = _cirq()
    g = _gates()
    t = gate.exponent
    s = gate.global_shift
    pt = _times_pi(t) if not isinstance(gate, (cq.Rx, cq.Ry, cq.Rz)) else None
    plain = s == 0
    if isinstance(gate, cq.XPowGate):
        if isinstance(gate, cq.Rx):
            return [("RX", qs, (gate._rads,), None)]
        if plain and _is(t, 1.0):
            return [("X", qs, (), None)]
        if plain and _is(t, 0.5):
            return [("SX", qs, (), None)]
        if plain and _is(t, -0.5):
            return [("SXDG", qs, (), None)]
        return [("RX", qs, (pt,), None)]  # X**t = e^{i pi t (s + 1/2)} RX(pi t)
    if isinstance(gate, cq.YPowGate):
        if isinstance(gate, cq.Ry):
            return [("RY", qs, (gate._rads,), None)]
        if plain and _is(t, 1.0):
            return [("Y", qs, (), None)]
        return [("RY", qs, (pt,), None)]
    if isinstance(gate, cq.ZPowGate):
        if isinstance(gate, cq.Rz):
            return [("RZ", qs, (gate._rads,), None)]
        if isinstance(gate, g.PhaseGate):
            return [("P", qs, (gate.rads,), None)]
        if plain:
            named = {1.0: "Z", 0.5: "S", -0.5: "SDG", 0.25: "T", -0.25: "TDG"}
            for value, name in named.items():
                if _is(t, value):
                    return [(name, qs, (), None)]
            return [("P", qs, (pt,), None)]  # Z**t = P(pi t) exactly
        if s == -0.5:
            return [("RZ", qs, (pt,), None)]
        return [("P", qs, (pt,), None)]  # e^{i pi t s} P(pi t)
    if isinstance(gate, cq.HPowGate) and plain and _is(t, 1.0):
        return [("H", qs, (), None)]
    if isinstance(gate, cq.CZPowGate):
        if plain and _is(t, 1.0):
            return [("CZ", qs, (), None)]
        return [
            ("CRZ", qs, (pt,), None),
            ("P", qs[:1], (_half(pt),), None),
        ]  # CZ**t = CRZ(pi t) P_c(pi t/2)
    if isinstance(gate, cq.CXPowGate):
        if plain and _is(t, 1.0):
            return [("CNOT", qs, (), None)]
        return [
            ("CRX", qs, (pt,), None),
            ("P", qs[:1], (_half(pt),), None),
        ]  # CX**t = CRX(pi t) P_c(pi t/2)
    if isinstance(gate, cq.SwapPowGate):
        if plain and _is(t, 1.0):
            return [("SWAP", qs, (), None)]
        a, b = qs  # SWAP**t = CNOT(a,b) CX(b,a)**t CNOT(a,b)
        return [
            ("CNOT", (a, b), (), None),
            ("CRX", (b, a), (pt,), None),
            ("P", (b,), (_half(pt),), None),
            ("CNOT", (a, b), (), None),
        ]
    pairs = (
        (cq.XXPowGate, g.XXRotation, "RXX"),
        (cq.YYPowGate, g.YYRotation, "RYY"),
        (cq.ZZPowGate, g.ZZRotation, "RZZ"),
    )
    for base, ours, name in pairs:
        if isinstance(gate, base):
            if isinstance(gate, ours):
                return [(name, qs, (gate.rads,), None)]
            if isinstance(gate, cq.MSGate):  # exp(-i rads XX) = RXX(2 rads)
                return [(name, qs, (2 * gate.rads,), None)]
            return [(name, qs, (pt,), None)]  # (PP)**t = e^{i pi t (s + 1/2)} RPP(pi t)
    if isinstance(gate, cq.CCXPowGate) and plain and _is(t, 1.0):
        return [("CCX", qs, (), None)]
    return None


def _half(value: Any) -> Any:
    return value / 2


def _controlled(gate: Any, qs: tuple[int, ...]) -> list[_Op] | None:
    cq = _cirq()
    if gate.num_controls() != 1 or list(gate.control_values.expand()) != [(1,)]:
        return None
    sub = gate.sub_gate
    for cls, name in ((cq.Rx, "CRX"), (cq.Ry, "CRY"), (cq.Rz, "CRZ")):
        if isinstance(sub, cls):
            return [(name, qs, (sub._rads,), None)]
    for cls, name in ((cq.XPowGate, "CRX"), (cq.YPowGate, "CRY"), (cq.ZPowGate, "CRZ")):
        if isinstance(sub, cls) and sub.global_shift == -0.5:
            return [(name, qs, (_times_pi(sub.exponent),), None)]
    return None


def _convert_op(op: Any, index: dict[Any, int], depth: int) -> list[_Op]:
    cq = _cirq()
    g = _gates()
    try:
        qs = tuple(index[q] for q in op.qubits)
    except KeyError as exc:
        raise ConversionError(
            f"Operation {op!r} acts on qubit {exc.args[0]!r}, which is not in the qubit order "
            f"{list(index)}; pass qubit_order=[...] listing every qubit of the circuit."
        ) from None
    if any(d != 2 for d in cq.qid_shape(op)):
        raise ConversionError(f"Operation {op!r} acts on qudits; Q-Store circuits use qubits only.")
    gate = op.gate
    if isinstance(gate, cq.MeasurementGate):
        if any(gate.full_invert_mask()) or gate.confusion_map:
            raise ConversionError(
                f"Measurement {op!r} inverts bits or has a confusion map; Q-Store measurements "
                "are plain computational-basis measurements. Add X gates before it instead."
            )
        return [("MEASURE", qs, (), str(gate.key))]
    if isinstance(gate, g.QStoreGate):
        return [(gate.name, qs, gate.params, None)]
    if isinstance(gate, cq.MatrixGate):
        raise ConversionError(
            f"Cannot convert {op!r}: a cirq.MatrixGate is an arbitrary matrix, which a Q-Store "
            "circuit does not hold. Decompose it into standard gates first, e.g. with "
            "cirq.single_qubit_matrix_to_phxz / cirq.two_qubit_matrix_to_cz_operations, or "
            "use U3 for one-qubit matrices."
        )
    if isinstance(gate, cq.IdentityGate):
        return [("I", (q,), (), None) for q in qs]
    if isinstance(gate, cq.GlobalPhaseGate):
        return []  # Q-Store circuits carry no global phase
    found: list[_Op] | None = None
    if isinstance(gate, cq.EigenGate):
        found = _eigen_gate(gate, qs)
    elif isinstance(gate, cq.ControlledGate):
        found = _controlled(gate, qs)
    if found is not None:
        return list(found)
    # Anything else: Cirq's own decomposition (exact up to a global phase).
    sub_ops = cq.decompose_once(op, default=None)
    if sub_ops is None or depth >= _MAX_DECOMPOSE_DEPTH:
        raise ConversionError(
            f"Cannot convert {op!r} (gate {type(gate).__name__}): it has no Q-Store equivalent "
            "and Cirq cannot decompose it. Rewrite it with standard gates (rx/ry/rz, X/Y/Z/H/S/T "
            "powers, CNOT, CZ, SWAP, XX/YY/ZZ powers, CCX) or measurements."
        )
    out: list[_Op] = []
    for sub in sub_ops:
        out.extend(_convert_op(sub, index, depth + 1))
    return out


def from_cirq(
    circuit: cirq.AbstractCircuit, qubit_order: Sequence[Any] | None = None
) -> UnifiedCircuit:
    """Convert a ``cirq.Circuit`` to a :class:`UnifiedCircuit`.

    ``qubit_order`` lists the Cirq qubits in Q-Store order (qubit ``i`` is ``qubit_order[i]``).
    Without it, ``cirq.LineQubit(i)`` becomes qubit ``i`` (the circuit then has
    ``max(i) + 1`` qubits, because a Cirq circuit does not record idle qubits); other qubit
    types are numbered in Cirq's sorted order of the qubits in use. Operations are read moment
    by moment.
    """
    cq = _cirq()
    if not isinstance(circuit, cq.AbstractCircuit):
        raise ConversionError(f"from_cirq() takes a cirq.Circuit, not {type(circuit).__name__}.")
    used = sorted(circuit.all_qubits())
    if qubit_order is not None:
        order = list(qubit_order)
        if len(set(order)) != len(order):
            raise ConversionError(f"qubit_order has repeated qubits: {order!r}.")
    elif all(isinstance(q, cq.LineQubit) for q in used):
        if any(q.x < 0 for q in used):
            raise ConversionError(
                "LineQubits with negative indices cannot be numbered automatically; pass "
                "qubit_order=[...]."
            )
        order = list(cq.LineQubit.range(max((q.x for q in used), default=0) + 1))
    else:
        order = used
    index = {q: i for i, q in enumerate(order)}
    if not order:
        raise ConversionError("The Cirq circuit has no qubits; pass qubit_order=[...].")
    out = UnifiedCircuit(len(order))
    for op in circuit.all_operations():
        for name, qs, params, key in _convert_op(op, index, 0):
            if name == "MEASURE":
                out.measure(list(qs), key=key or "m")
                continue
            try:
                out.add_gate(name, list(qs), [from_sympy(p) for p in params])
            except ConversionError:
                raise
            except QStoreError as exc:
                raise ConversionError(f"Cannot convert {op!r}: {exc}") from exc
    return out
