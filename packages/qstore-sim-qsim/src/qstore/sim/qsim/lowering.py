"""Lowering of a circuit template to gates that qsim simulates natively, done once per template.

Every Q-Store gate becomes one or a few of qsim's gate kinds (Cirq's eigen-gates
``XPowGate(exponent, global_shift)`` and friends). Each lowered gate has at most one bound
number, its exponent, which is an affine function ``scale * theta[g] + offset`` of a single gate
parameter ``theta[g]`` (see :mod:`qstore.core.backends.plugin`). Binding a batch therefore only
computes an ``[B, J]`` exponent matrix; nothing is re-translated per binding.

The decompositions are exact, global phase included (``RX(t) = XPowGate(t/pi, -1/2)``,
``U3(t, f, l) = P(f) RY(t) P(l)``, ``GPI(f) = RZ(f) X RZ(-f)``, ``GPI2(f) = RZ(f) RX(pi/2)
RZ(-f)``, ``MS(f0, f1, t) = (RZ(f0) x RZ(f1)) RXX(t) (RZ(-f0) x RZ(-f1))``), so states agree
with the core's simulator, not only expectations.

Qubit order: qsim numbers qubits in reverse (its qubit ``n-1-q`` is our ``q``); its state
vectors come back with qubit 0 most significant, as everywhere in Q-Store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qstore.core.backends.plugin import (
    FloatArray,
    ObservableTerms,
    affine_parameters,
    lower_template,
)
from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import BackendError

_INV_PI = 1.0 / math.pi

# Kinds with an exponent, and the Cirq gate class with the same meaning.
POW_KINDS = ("kXPowGate", "kYPowGate", "kZPowGate", "kXXPowGate", "kYYPowGate", "kZZPowGate")


@dataclass(frozen=True)
class NativeOp:
    """One qsim gate: ``kind`` on ``qubits`` (Q-Store indices), optionally controlled.

    Pow kinds take ``exponent = scale * theta[col] + offset`` (``col = -1``: fixed ``offset``)
    and a fixed ``global_shift``; the other kinds take no parameters.
    """

    kind: str
    qubits: tuple[int, ...]
    controls: tuple[int, ...] = ()
    col: int = -1
    scale: float = 0.0
    offset: float = 0.0
    global_shift: float = 0.0

    @property
    def is_pow(self) -> bool:
        return self.kind in POW_KINDS


_FIXED: dict[str, tuple[str, float, float]] = {
    # name: (kind, exponent, global shift); kinds without exponent ignore the numbers
    "H": ("kH", 1.0, 0.0),
    "X": ("kX", 1.0, 0.0),
    "Y": ("kY", 1.0, 0.0),
    "Z": ("kZ", 1.0, 0.0),
    "S": ("kS", 1.0, 0.0),
    "T": ("kT", 1.0, 0.0),
    "SDG": ("kZPowGate", -0.5, 0.0),
    "TDG": ("kZPowGate", -0.25, 0.0),
    "SX": ("kXPowGate", 0.5, 0.0),
    "SXDG": ("kXPowGate", -0.5, 0.0),
    "CNOT": ("kCX", 1.0, 0.0),
    "CZ": ("kCZ", 1.0, 0.0),
    "SWAP": ("kSWAP", 1.0, 0.0),
    "CCX": ("kCCX", 1.0, 0.0),
}
_ROTATION = {"RX": "kXPowGate", "RY": "kYPowGate", "RZ": "kZPowGate"}
_CONTROLLED = {"CRX": "kXPowGate", "CRY": "kYPowGate", "CRZ": "kZPowGate"}
_TWO_QUBIT = {"RXX": "kXXPowGate", "RYY": "kYYPowGate", "RZZ": "kZZPowGate", "ZZ": "kZZPowGate"}


def _rot(kind: str, qubits: tuple[int, ...], col: int, sign: float = 1.0) -> NativeOp:
    """``exp(-i sign*theta P / 2)`` as ``PPowGate(sign*theta/pi, global_shift=-1/2)``."""
    return NativeOp(kind, qubits, col=col, scale=sign * _INV_PI, global_shift=-0.5)


def lower_gate(gate: str, qubits: tuple[int, ...], cols: Sequence[int]) -> list[NativeOp]:
    """The qsim gates for ``gate`` on ``qubits`` whose parameters are theta columns ``cols``."""
    if gate == "I":
        return []
    if gate in _FIXED:
        kind, exponent, shift = _FIXED[gate]
        return [NativeOp(kind, qubits, offset=exponent, global_shift=shift)]
    if gate in _ROTATION:
        return [_rot(_ROTATION[gate], qubits, cols[0])]
    if gate == "P":
        return [NativeOp("kZPowGate", qubits, col=cols[0], scale=_INV_PI)]
    if gate == "U3":  # U3(t, f, l) = P(f) RY(t) P(l): P(l) acts first
        t, f, lam = cols
        return [
            NativeOp("kZPowGate", qubits, col=lam, scale=_INV_PI),
            _rot("kYPowGate", qubits, t),
            NativeOp("kZPowGate", qubits, col=f, scale=_INV_PI),
        ]
    if gate in _CONTROLLED:
        ctrl, target = qubits
        op = _rot(_CONTROLLED[gate], (target,), cols[0])
        return [NativeOp(op.kind, op.qubits, (ctrl,), op.col, op.scale, 0.0, op.global_shift)]
    if gate in _TWO_QUBIT:
        return [_rot(_TWO_QUBIT[gate], qubits, cols[0])]
    if gate in ("GPI", "GPI2"):  # RZ(f) M RZ(-f), M = X or RX(pi/2)
        (f,) = cols
        middle = (
            NativeOp("kX", qubits)
            if gate == "GPI"
            else NativeOp("kXPowGate", qubits, offset=0.5, global_shift=-0.5)
        )
        return [_rot("kZPowGate", qubits, f, -1.0), middle, _rot("kZPowGate", qubits, f)]
    if gate == "MS":  # (RZ(f0) x RZ(f1)) RXX(t) (RZ(-f0) x RZ(-f1))
        a, b = qubits
        f0, f1, t = cols
        return [
            _rot("kZPowGate", (a,), f0, -1.0),
            _rot("kZPowGate", (b,), f1, -1.0),
            _rot("kXXPowGate", qubits, t),
            _rot("kZPowGate", (a,), f0),
            _rot("kZPowGate", (b,), f1),
        ]
    raise BackendError(f"The qsim backend has no lowering for gate {gate!r}.")


def lower_circuit(circuit: UnifiedCircuit, slots: Sequence[Sequence[int]]) -> tuple[NativeOp, ...]:
    """All qsim gates of ``circuit`` (measurements dropped); ``slots`` as in ParameterMap."""
    return lower_template(circuit, slots, lower_gate)


def exponent_matrix(ops: Sequence[NativeOp], theta: FloatArray) -> FloatArray:
    """Exponents ``[B, J]`` of the bound pow gates (``col >= 0``), in op order."""
    return affine_parameters([o for o in ops if o.col >= 0], theta)


# -- observables --------------------------------------------------------------------------------


def qsim_opsums(module: Any, terms: ObservableTerms, n_qubits: int) -> list[tuple[list[Any], int]]:
    """``(OpString list, qubit count)`` per active observable, as qsim's expectation API takes."""
    kinds = {"X": module.kX, "Y": module.kY, "Z": module.kZ}
    out = []
    for o in terms.active:
        strings = []
        qubits: set[int] = set()
        for w in terms.per_obs[o]:
            paulis, weight = terms.words[w]
            s = module.OpString()
            s.weight = weight
            for q, p in paulis:
                module.add_gate_to_opstring(kinds[p], [n_qubits - 1 - q], s)
                qubits.add(q)
            strings.append(s)
        out.append((strings, len(qubits)))
    return out


def cirq_paulisums(terms: ObservableTerms, qubits: Sequence[Any]) -> list[Any]:
    """``cirq.PauliSum`` per active observable."""
    import cirq

    paulis = {"X": cirq.X, "Y": cirq.Y, "Z": cirq.Z}
    out = []
    for o in terms.active:
        strings: list[Any] = [
            cirq.PauliString(
                {qubits[q]: paulis[p] for q, p in terms.words[w][0]}, coefficient=terms.words[w][1]
            )
            for w in terms.per_obs[o]
        ]
        out.append(cirq.PauliSum.from_pauli_strings(strings))
    return out


def cirq_circuit(ops: Sequence[NativeOp], qubits: Sequence[Any]) -> tuple[Any, tuple[Any, ...]]:
    """The lowered template as a ``cirq.Circuit`` whose bound exponents are sympy symbols.

    Returns the circuit and its symbols, one per bound op in order (``exponent_matrix`` columns).
    """
    import cirq
    import sympy

    fixed = {
        "kH": cirq.H,
        "kX": cirq.X,
        "kY": cirq.Y,
        "kZ": cirq.Z,
        "kS": cirq.S,
        "kT": cirq.T,
        "kCX": cirq.CNOT,
        "kCZ": cirq.CZ,
        "kSWAP": cirq.SWAP,
        "kCCX": cirq.CCX,
    }
    pow_gates = {
        "kXPowGate": cirq.XPowGate,
        "kYPowGate": cirq.YPowGate,
        "kZPowGate": cirq.ZPowGate,
        "kXXPowGate": cirq.XXPowGate,
        "kYYPowGate": cirq.YYPowGate,
        "kZZPowGate": cirq.ZZPowGate,
    }
    symbols: list[Any] = []
    circuit = cirq.Circuit()
    for op in ops:
        if op.is_pow:
            exponent: Any = op.offset
            if op.col >= 0:
                exponent = sympy.Symbol(f"_e{len(symbols)}")
                symbols.append(exponent)
            gate = pow_gates[op.kind](exponent=exponent, global_shift=op.global_shift)
        else:
            gate = fixed[op.kind]
        targets = [qubits[q] for q in op.qubits]
        if op.controls:
            circuit.append(
                gate.controlled(len(op.controls)).on(*[qubits[q] for q in op.controls], *targets)
            )
        else:
            circuit.append(gate.on(*targets))
    return circuit, tuple(symbols)
