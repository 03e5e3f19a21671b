"""``UnifiedCircuit`` <-> qiskit ``QuantumCircuit`` (needs the ``[qiskit]`` extra).

Qubit ordering: Q-Store qubit ``q`` is Qiskit qubit ``q`` (labels are kept, so diagrams and
measurement registers read the same). Qiskit numbers basis states little-endian (qubit 0 is the
*least* significant bit) while Q-Store uses qubit 0 as the *most* significant bit, so the two
unitaries differ by reversing the bit order::

    circuit.unitary() == reverse_qubit_order(Operator(to_qiskit(circuit)).data)
                      == Operator(to_qiskit(circuit)).reverse_qargs().data

Symbols become qiskit ``Parameter`` s of the same name (one object per name), expressions become
``ParameterExpression`` s, and ``from_qiskit(to_qiskit(c)) == c`` exactly, measurements
included (except that Qiskit itself drops coefficients below ~1.8e-15 and snaps factors that
close to +-1; see ``docs/conventions.md``).

Every Q-Store gate maps to the Qiskit standard gate with the same matrix (U3 to ``UGate``, P to
``PhaseGate``); the IonQ natives map to gates named ``qstore_gpi``, ``qstore_gpi2``,
``qstore_ms`` and ``qstore_zz`` whose definitions use standard gates.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1]).measure()
>>> from_qiskit(to_qiskit(c)) == c
True
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import ConversionError, QStoreError, require
from qstore.core.parameters import Expression, Parameter

if TYPE_CHECKING:
    import qiskit

    from qstore.core.convert._qiskit_gates import QStoreGPI2Gate as QStoreGPI2Gate
    from qstore.core.convert._qiskit_gates import QStoreGPIGate as QStoreGPIGate
    from qstore.core.convert._qiskit_gates import QStoreMSGate as QStoreMSGate
    from qstore.core.convert._qiskit_gates import QStoreZZGate as QStoreZZGate

__all__ = [
    "from_qiskit",
    "reverse_qubit_order",
    "to_qiskit",
]
_GATE_CLASSES = frozenset({"QStoreGPIGate", "QStoreGPI2Gate", "QStoreMSGate", "QStoreZZGate"})


def __getattr__(name: str) -> Any:
    # The Qiskit gate classes (QStoreGPIGate, QStoreGPI2Gate, QStoreMSGate, QStoreZZGate) need
    # qiskit; they are imported on first access.
    if name in _GATE_CLASSES:
        _qiskit()
        from qstore.core.convert import _qiskit_gates

        return getattr(_qiskit_gates, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MAX_DEFINITION_DEPTH = 12
_MAX_DEGREE = 8
_AUTO_NAME = re.compile(r"^circuit-\d+$")

# Qiskit standard gates with exactly the Q-Store matrix, by Qiskit name.
_FROM_NAME = {
    "id": "I",
    "h": "H",
    "x": "X",
    "y": "Y",
    "z": "Z",
    "s": "S",
    "sdg": "SDG",
    "t": "T",
    "tdg": "TDG",
    "sx": "SX",
    "sxdg": "SXDG",
    "rx": "RX",
    "ry": "RY",
    "rz": "RZ",
    "p": "P",
    "u1": "P",
    "u": "U3",
    "u3": "U3",
    "cx": "CNOT",
    "cz": "CZ",
    "swap": "SWAP",
    "crx": "CRX",
    "cry": "CRY",
    "crz": "CRZ",
    "rxx": "RXX",
    "ryy": "RYY",
    "rzz": "RZZ",
    "ccx": "CCX",
}
_IGNORED = frozenset({"barrier", "delay", "global_phase"})
_CONTROL_FLOW = frozenset({"if_else", "while_loop", "for_loop", "switch_case", "box"})


def _qiskit() -> Any:
    try:
        import qiskit
    except ImportError as exc:
        raise require("qiskit", "qiskit") from exc
    return qiskit


def reverse_qubit_order(matrix: npt.ArrayLike) -> npt.NDArray[np.complex128]:
    """Swap between big-endian (Q-Store, Cirq) and little-endian (Qiskit) basis order.

    The permutation is its own inverse, so the same call converts either way.

    >>> import numpy as np
    >>> cx_qiskit = np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]])
    >>> reverse_qubit_order(cx_qiskit).real.astype(int).tolist()  # CNOT, control = qubit 0
    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    """
    m = np.asarray(matrix, dtype=complex)
    dim = m.shape[0]
    n = dim.bit_length() - 1
    if m.shape != (dim, dim) or 1 << n != dim:
        raise ValueError(f"Expected a square matrix of size 2^n, got shape {m.shape}.")
    axes = list(range(n))[::-1]
    out = m.reshape([2] * (2 * n)).transpose(axes + [n + a for a in axes]).reshape(dim, dim)
    return np.ascontiguousarray(out)


# -- symbols ------------------------------------------------------------------------------------


def _to_param(expr: Expression, cache: dict[str, Any]) -> Any:
    if expr.is_constant:
        return expr.constant
    from qiskit.circuit import Parameter as QiskitParameter

    def symbol(name: str) -> Any:
        if name not in cache:
            cache[name] = QiskitParameter(name)
        return cache[name]

    out: Any = None
    for mono, coeff in expr.terms:
        prod = symbol(mono[0])
        for s in mono[1:]:
            prod = prod * symbol(s)
        if coeff != 1.0:
            prod = coeff * prod
        out = prod if out is None else out + prod
    if expr.constant != 0.0:
        out = out + expr.constant
    return out


def _real(value: Any, context: str) -> float:
    c = complex(value)
    if c.imag != 0.0 or not math.isfinite(c.real):
        raise ConversionError(f"{context}: the value {value!r} is not a finite real number.")
    return c.real


def _from_param(value: Any) -> Expression:
    """A Qiskit gate parameter (number or ``ParameterExpression``) as an :class:`Expression`.

    Polynomials are read through their Taylor coefficients at 0 (``gradient`` and ``bind``),
    which is exact for the polynomials Q-Store writes and needs no symbolic library.
    """
    from qiskit.circuit import ParameterExpression

    if not isinstance(value, ParameterExpression):
        if isinstance(value, numbers.Number):
            return Expression.coerce(_real(value, "Gate parameter"))
        raise ConversionError(f"Unsupported gate parameter {value!r} ({type(value).__name__}).")
    if not value.parameters:
        return Expression.coerce(_real(value.numeric(), "Gate parameter"))
    params = sorted(value.parameters, key=lambda p: p.name)
    out = Expression()

    def at_zero(e: Any) -> float:
        if not isinstance(e, ParameterExpression):
            return _real(e, f"Parameter {value}")
        try:
            bound = e.bind({p: 0.0 for p in e.parameters}) if e.parameters else e
            return _real(bound.numeric(), f"Parameter {value}")
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise ConversionError(
                f"Parameter {value} is not a real polynomial in its symbols ({exc}); Q-Store "
                "parameters are polynomials such as 2*theta + 0.1 or x_3*w_3."
            ) from exc

    def walk(e: Any, start: int, mono: tuple[int, ...]) -> None:
        nonlocal out
        c = at_zero(e)
        if c != 0.0:
            fact = 1
            for i in set(mono):
                fact *= math.factorial(mono.count(i))
            term: Expression = Expression((), c / fact)
            for i in mono:
                term = term * _symbol(params[i].name)
            out = out + term
        if not isinstance(e, ParameterExpression) or not e.parameters:
            return
        if len(mono) == _MAX_DEGREE:
            raise ConversionError(
                f"Parameter {value} is not a polynomial of degree <= {_MAX_DEGREE} in its "
                "symbols (sin, exp, 1/x ... are not supported); bind the symbols first or "
                "rewrite the expression as a polynomial such as 2*theta + 0.1 or x_3*w_3."
            )
        for i in range(start, len(params)):
            if params[i] in e.parameters:
                walk(e.gradient(params[i]), i, (*mono, i))

    walk(value, 0, ())
    return out


def _symbol(name: str) -> Parameter:
    try:
        return Parameter(name)
    except QStoreError as exc:
        raise ConversionError(f"Qiskit parameter name {name!r} cannot be used: {exc}") from exc


# -- IR -> Qiskit -------------------------------------------------------------------------------


def _gate_factories() -> dict[str, Callable[..., Any]]:
    from qiskit.circuit import library as lib

    from qstore.core.convert import _qiskit_gates

    return {
        "I": lib.IGate,
        "H": lib.HGate,
        "X": lib.XGate,
        "Y": lib.YGate,
        "Z": lib.ZGate,
        "S": lib.SGate,
        "SDG": lib.SdgGate,
        "T": lib.TGate,
        "TDG": lib.TdgGate,
        "SX": lib.SXGate,
        "SXDG": lib.SXdgGate,
        "RX": lib.RXGate,
        "RY": lib.RYGate,
        "RZ": lib.RZGate,
        "P": lib.PhaseGate,
        "U3": lib.UGate,
        "CNOT": lib.CXGate,
        "CZ": lib.CZGate,
        "SWAP": lib.SwapGate,
        "CRX": lib.CRXGate,
        "CRY": lib.CRYGate,
        "CRZ": lib.CRZGate,
        "RXX": lib.RXXGate,
        "RYY": lib.RYYGate,
        "RZZ": lib.RZZGate,
        "CCX": lib.CCXGate,
        **_qiskit_gates.GATE_CLASSES,
    }


def to_qiskit(circuit: UnifiedCircuit) -> qiskit.QuantumCircuit:
    """Convert ``circuit`` to a qiskit ``QuantumCircuit`` (qubit ``q`` -> Qiskit qubit ``q``).

    Measurements write to one ``ClassicalRegister`` per key: bit ``j`` of register ``key``
    holds the ``j``-th qubit of the measurement. See the module docstring for the bit order of
    unitaries.
    """
    _qiskit()
    from qiskit.circuit import ClassicalRegister, QuantumCircuit, QuantumRegister

    factories = _gate_factories()
    sizes: dict[str, int] = {}
    for op in circuit:
        if op.is_measurement:
            key = op.key or "m"
            sizes[key] = max(sizes.get(key, 0), len(op.qubits))
    qreg = QuantumRegister(circuit.n_qubits, "q")
    try:
        cregs = {key: ClassicalRegister(size, key) for key, size in sizes.items()}
        qc = QuantumCircuit(qreg, *cregs.values(), name=circuit.name)
    except Exception as exc:  # qiskit raises CircuitError for clashing register names
        raise ConversionError(
            f"Cannot build Qiskit registers for measurement keys {list(sizes)}: {exc}. "
            "Rename the measurement keys (they become classical register names, next to 'q')."
        ) from exc
    cache: dict[str, Any] = {}
    for op in circuit:
        qargs = [qreg[q] for q in op.qubits]
        if op.is_measurement:
            creg = cregs[op.key or "m"]
            for j, q in enumerate(qargs):
                qc.measure(q, creg[j])
            continue
        params = [_to_param(p, cache) for p in op.params]
        qc.append(factories[op.gate](*params), qargs)
    return qc


# -- Qiskit -> IR -------------------------------------------------------------------------------


class _Reader:
    """Walks a circuit (and, for unknown gates, their definitions) into a UnifiedCircuit."""

    def __init__(self, out: UnifiedCircuit) -> None:
        self.out = out
        self.pending: tuple[str, dict[int, int]] | None = None  # (key, bit -> qubit)

    def flush(self) -> None:
        if self.pending is not None:
            key, bits = self.pending
            self.out.measure([bits[b] for b in sorted(bits)], key=key)
            self.pending = None

    def measure(self, qubit: int, key: str, bit: int) -> None:
        if self.pending is not None and (self.pending[0] != key or bit in self.pending[1]):
            self.flush()
        if self.pending is None:
            self.pending = (key, {})
        self.pending[1][bit] = qubit

    def gate(self, name: str, qubits: list[int], params: list[Expression], where: str) -> None:
        self.flush()
        try:
            self.out.add_gate(name, qubits, params)
        except QStoreError as exc:
            raise ConversionError(f"Cannot convert {where}: {exc}") from exc

    def read(self, qc: Any, qmap: list[int], depth: int) -> None:
        from qstore.core.convert import _qiskit_gates

        for inst in qc.data:
            op = inst.operation
            name = op.name
            qubits = [qmap[qc.find_bit(q).index] for q in inst.qubits]
            where = f"{name} on qubits {qubits}"
            if name in _IGNORED:
                continue
            if name == "measure":
                loc = qc.find_bit(inst.clbits[0])
                reg, bit = loc.registers[0] if loc.registers else (None, loc.index)
                self.measure(qubits[0], reg.name if reg is not None else "c", bit)
                continue
            if inst.clbits or name in _CONTROL_FLOW:
                raise ConversionError(
                    f"Cannot convert {where}: it uses classical bits (control flow or "
                    "classically conditioned operations); Q-Store circuits only measure at the "
                    "points where measure() is called."
                )
            if name == "reset":
                raise ConversionError(
                    f"Cannot convert {where}: Q-Store circuits have no reset; start a new circuit."
                )
            if name == "unitary":
                raise ConversionError(
                    f"Cannot convert {where}: a UnitaryGate is an arbitrary matrix, which a "
                    "Q-Store circuit does not hold. Decompose it first, e.g. with "
                    "qiskit.transpile(qc, basis_gates=['u', 'cx'])."
                )
            params = list(op.params)
            if name in _FROM_NAME:
                self.gate(_FROM_NAME[name], qubits, [_from_param(p) for p in params], where)
            elif name in _qiskit_gates.BY_QISKIT_NAME:
                name_ir = _qiskit_gates.BY_QISKIT_NAME[name]
                self.gate(name_ir, qubits, [_from_param(p) for p in params], where)
            elif name == "u2":  # U2(f, l) = U3(pi/2, f, l) exactly
                phi, lam = (_from_param(p) for p in params)
                self.gate("U3", qubits, [Expression.coerce(math.pi / 2), phi, lam], where)
            elif name == "r":  # R(t, f) = U3(t, f - pi/2, pi/2 - f) exactly
                theta, phi = (_from_param(p) for p in params)
                self.gate("U3", qubits, [theta, phi - math.pi / 2, math.pi / 2 - phi], where)
            else:
                definition = op.definition
                if definition is None or depth >= _MAX_DEFINITION_DEPTH:
                    raise ConversionError(
                        f"Cannot convert {where}: it has no Q-Store equivalent and no Qiskit "
                        "definition. Transpile it to standard gates first, e.g. "
                        "qiskit.transpile(qc, basis_gates=['u', 'cx'])."
                    )
                # A definition equals the gate up to its (dropped) global phase.
                self.read(definition, qubits, depth + 1)


def from_qiskit(circuit: qiskit.QuantumCircuit) -> UnifiedCircuit:
    """Convert a qiskit ``QuantumCircuit`` to a :class:`UnifiedCircuit`.

    Standard gates map by name (``h``, ``cx``, ``rx``, ``u``, ``p`` ...); other gates are
    expanded through their Qiskit ``definition``; barriers and delays are skipped; the
    circuit's ``global_phase`` is dropped. Consecutive measurements into one classical register
    become one measurement with that register's name as key, qubits ordered by bit index.
    """
    qk = _qiskit()
    if not isinstance(circuit, qk.QuantumCircuit):
        raise ConversionError(
            f"from_qiskit() takes a qiskit QuantumCircuit, not {type(circuit).__name__}."
        )
    if circuit.num_qubits < 1:
        raise ConversionError("The Qiskit circuit has no qubits; a Q-Store circuit needs one.")
    name = circuit.name if circuit.name and not _AUTO_NAME.match(circuit.name) else None
    out = UnifiedCircuit(circuit.num_qubits, name=name)
    reader = _Reader(out)
    reader.read(circuit, list(range(circuit.num_qubits)), 0)
    reader.flush()
    return out
