"""Lowering circuits to IonQ's native gates (GPI, GPI2, MS and, on Forte, ZZ) and to API JSON.

How it works (phases in radians here, as in qstore-core; the JSON is in turns):

1. Every gate becomes *lab-frame primitives*: constant one-qubit unitaries, ``RZ(expr)``, an
   ``XX``-type interaction ``MS(phi0, phi1, theta)`` and a ``ZZ(theta)`` interaction. Each two-qubit
   gate of the table costs one interaction (``CNOT``, ``CZ``, ``CRX``, ``CRY``, ``CRZ``, ``RXX``,
   ``RYY``, ``RZZ``), ``SWAP`` three and ``CCX`` six. Symbols stay symbols: a symbolic rotation is
   ``constant · RZ(expr) · constant``.
2. ``RZ`` is virtual: each qubit carries a frame ``F`` (an expression of the symbols) and a gate
   ``G(phi)`` that follows ``RZ(F)`` is emitted as ``G(phi - F)``, since
   ``G(phi) RZ(F) = RZ(F) G(phi - F)`` for GPI, GPI2 and each side of MS; ZZ commutes with frames.
3. Consecutive constant one-qubit gates are multiplied into one ``2x2`` unitary
   ``RZ(a) RY(b) RZ(c)`` (up to a global phase), emitted as nothing (``b = 0``), one GPI
   (``b = pi``), one GPI2 (``b = pi/2``) or two GPI2 (otherwise), plus frame changes.

The frames left at the end are final ``RZ`` rotations: they do not change measurement
probabilities (IonQ measures every qubit in the Z basis), so the native circuit's state equals the
original's up to these phases and a global phase (:meth:`NativeCompilation.frames`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.backends.plugin import ParameterMap
from qstore.core.circuit import Operation, UnifiedCircuit
from qstore.core.errors import QStoreError
from qstore.core.gates import get_gate
from qstore.core.parameters import Expression
from qstore.ionq.errors import IonQCompilerError
from qstore.ionq.targets import get_target

__all__ = [
    "IonQNativeCompiler",
    "NativeCompilation",
    "circuit_to_ionq_json",
    "ionq_json_to_circuit",
    "json_gates",
]

CArray = npt.NDArray[np.complex128]
TWO_PI = 2.0 * math.pi
_TOL = 1e-12

_H: CArray = np.array([[1, 1], [1, -1]], dtype=np.complex128) / math.sqrt(2)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_S = np.diag([1, 1j])
_SDG = np.diag([1, -1j])
_T = np.diag([1, np.exp(1j * math.pi / 4)])
_TDG = _T.conj()


def _rx(t: float) -> CArray:
    return np.array(
        [[math.cos(t / 2), -1j * math.sin(t / 2)], [-1j * math.sin(t / 2), math.cos(t / 2)]]
    )


def _ry(t: float) -> CArray:
    return np.array(
        [[math.cos(t / 2), -math.sin(t / 2)], [math.sin(t / 2), math.cos(t / 2)]], dtype=complex
    )


def _rz(t: float) -> CArray:
    return np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)])


# -- lab-frame primitives -------------------------------------------------------------------------
# ("u", (q,), matrix) | ("rz", (q,), expr) | ("xx", (a, b), (phi0, phi1, theta))
# | ("zz", (a, b), theta)
Prim = tuple[str, tuple[int, ...], Any]


def _u(q: int, m: CArray) -> Prim:
    return ("u", (q,), m)


def _rzp(q: int, e: Expression) -> Prim:
    if e.is_constant:
        return _u(q, _rz(e.constant))
    return ("rz", (q,), e)


def _ry_sym(q: int, e: Expression) -> list[Prim]:
    # RY(t) = RX(-pi/2) RZ(t) RX(pi/2): first RX(pi/2), then RZ(t), then RX(-pi/2).
    return [_u(q, _rx(math.pi / 2)), _rzp(q, e), _u(q, _rx(-math.pi / 2))]


def _rx_sym(q: int, e: Expression) -> list[Prim]:
    # RX(t) = RY(pi/2) RZ(t) RY(-pi/2).
    return [_u(q, _ry(-math.pi / 2)), _rzp(q, e), _u(q, _ry(math.pi / 2))]


def _cz(a: int, b: int) -> list[Prim]:
    # CZ = exp(-i pi/4) RZ_a(pi/2) RZ_b(pi/2) RZZ(-pi/2)
    return [
        ("zz", (a, b), Expression.coerce(-math.pi / 2)),
        _u(a, _rz(math.pi / 2)),
        _u(b, _rz(math.pi / 2)),
    ]


def _cnot(c: int, t: int) -> list[Prim]:
    return [_u(t, _H), *_cz(c, t), _u(t, _H)]


def _crz(c: int, t: int, e: Expression) -> list[Prim]:
    # CRZ(t) = RZZ(-t/2) RZ_target(t/2): exp(-i t/4 (1 - Z_c) Z_t)
    return [("zz", (c, t), e * -0.5), _rzp(t, e * 0.5)]


def _ccx(a: int, b: int, c: int) -> list[Prim]:
    # the textbook decomposition: six CNOTs and T gates
    return [
        _u(c, _H),
        *_cnot(b, c),
        _u(c, _TDG),
        *_cnot(a, c),
        _u(c, _T),
        *_cnot(b, c),
        _u(c, _TDG),
        *_cnot(a, c),
        _u(b, _T),
        _u(c, _T),
        _u(c, _H),
        *_cnot(a, b),
        _u(a, _T),
        _u(b, _TDG),
        *_cnot(a, b),
    ]


def _lower(op: Operation) -> list[Prim]:
    """The lab-frame primitives of one operation (equal to it up to a global phase)."""
    g, qs, ps = op.gate, op.qubits, op.params
    if op.is_measurement or g == "I":
        return []
    spec = get_gate(g)
    if spec.n_qubits == 1:
        q = qs[0]
        if not op.is_parameterized:
            return [_u(q, spec.matrix(op.numeric_params()))]
        if g in ("RZ", "P"):
            return [_rzp(q, ps[0])]
        if g == "RX":
            return _rx_sym(q, ps[0])
        if g == "RY":
            return _ry_sym(q, ps[0])
        if g == "U3":  # U3(t, phi, lam) = RZ(phi) RY(t) RZ(lam) up to a phase
            t, phi, lam = ps
            mid = [_u(q, _ry(t.constant))] if t.is_constant else _ry_sym(q, t)
            return [_rzp(q, lam), *mid, _rzp(q, phi)]
        if g in ("GPI", "GPI2"):  # G(phi) = RZ(phi) G(0) RZ(-phi)
            base = _X if g == "GPI" else _rx(math.pi / 2)
            return [_rzp(q, -ps[0]), _u(q, base), _rzp(q, ps[0])]
    a, b = qs[0], qs[1]
    if g == "CNOT":
        return _cnot(a, b)
    if g == "CZ":
        return _cz(a, b)
    if g == "SWAP":
        return _cnot(a, b) + _cnot(b, a) + _cnot(a, b)
    if g == "CRZ":
        return _crz(a, b, ps[0])
    if g == "CRX":
        return [_u(b, _H), *_crz(a, b, ps[0]), _u(b, _H)]
    if g == "CRY":
        return [_u(b, _SDG), _u(b, _H), *_crz(a, b, ps[0]), _u(b, _H), _u(b, _S)]
    if g == "RXX":
        return [("xx", (a, b), (Expression.coerce(0.0), Expression.coerce(0.0), ps[0]))]
    if g == "RYY":
        half = Expression.coerce(math.pi / 2)
        return [("xx", (a, b), (half, half, ps[0]))]
    if g in ("RZZ", "ZZ"):
        return [("zz", (a, b), ps[0])]
    if g == "MS":
        return [("xx", (a, b), tuple(ps))]
    if g == "CCX":
        return _ccx(a, b, qs[2])
    raise IonQCompilerError(  # pragma: no cover - every gate of the table is handled above
        f"Gate {g} has no IonQ lowering; decompose it into gates of qstore.core.GATES first."
    )


# -- frame tracking and merging -------------------------------------------------------------------
def _zyz(m: CArray) -> tuple[float, float, float]:
    """``(a, b, c)`` with ``m = e^{i alpha} RZ(a) RY(b) RZ(c)`` and ``b`` in ``[0, pi]``."""
    det = complex(np.linalg.det(m))
    su = m / np.sqrt(det)
    c_half = min(1.0, abs(su[0, 0]))
    s_half = min(1.0, abs(su[1, 0]))
    b = 2.0 * math.atan2(s_half, c_half)
    if s_half < 1e-9:  # diagonal: only a + c is defined
        return 2.0 * float(np.angle(su[1, 1])), 0.0, 0.0
    if c_half < 1e-9:  # anti-diagonal: only a - c is defined
        return 2.0 * float(np.angle(su[1, 0])), b, 0.0
    apc = 2.0 * float(np.angle(su[1, 1]))
    amc = 2.0 * float(np.angle(su[1, 0]))
    return (apc + amc) / 2.0, b, (apc - amc) / 2.0


@dataclass
class _Qubit:
    frame: Expression
    left: Expression  # pending RZ(left) applied after the pending constant
    const: CArray | None = None  # pending constant one-qubit unitary (None: identity)


class _Emitter:
    """Runs the frame-tracking pass over lab-frame primitives, emitting native operations."""

    def __init__(self, n_qubits: int, use_zz: bool) -> None:
        zero = Expression.coerce(0.0)
        self.qubits = [_Qubit(zero, zero) for _ in range(n_qubits)]
        self.ops: list[Operation] = []
        self.use_zz = use_zz

    def emit(self, gate: str, qubits: tuple[int, ...], params: Iterable[Expression]) -> None:
        self.ops.append(Operation(gate, qubits, tuple(params)))

    def push(self, prim: Prim) -> None:
        kind, qs, data = prim
        if kind == "u":
            self._const(qs[0], data)
        elif kind == "rz":
            st = self.qubits[qs[0]]
            if st.const is None:
                st.frame = st.frame + data
            else:
                st.left = st.left + data
        elif kind == "xx":
            a, b = qs
            self.flush(a)
            self.flush(b)
            p0, p1, theta = data
            fa, fb = self.qubits[a].frame, self.qubits[b].frame
            self.emit("MS", (a, b), (p0 - fa, p1 - fb, theta))
        elif kind == "zz":
            a, b = qs
            if self.use_zz:
                self.flush(a)
                self.flush(b)
                self.emit("ZZ", (a, b), (data,))
            else:  # ZZ = (H x H) XX (H x H)
                zero = Expression.coerce(0.0)
                for p in (_u(a, _H), _u(b, _H), ("xx", (a, b), (zero, zero, data))):
                    self.push(p)
                self.push(_u(a, _H))
                self.push(_u(b, _H))

    def _const(self, q: int, m: CArray) -> None:
        st = self.qubits[q]
        if st.const is None:
            st.const = m
            return
        if st.left.is_constant:
            st.const = m @ _rz(st.left.constant) @ st.const
            st.left = Expression.coerce(0.0)
            return
        self.flush(q)
        st.const = m

    def flush(self, q: int) -> None:
        """Emit the pending constant of qubit ``q`` in its frame; the frame absorbs the rest."""
        st = self.qubits[q]
        if st.const is None:
            return
        a, b, c = _zyz(st.const)
        g = st.frame + c
        if abs(b) < _TOL:
            pass
        elif abs(b - math.pi) < _TOL:
            self.emit("GPI", (q,), (math.pi / 2 - g,))
        elif abs(b - math.pi / 2) < _TOL:
            self.emit("GPI2", (q,), (math.pi / 2 - g,))
        else:  # RY(b) = GPI2(pi) RZ(b) GPI2(0)
            self.emit("GPI2", (q,), (-g,))
            g = g + b
            self.emit("GPI2", (q,), (math.pi - g,))
        st.frame = g + a + st.left
        st.left = Expression.coerce(0.0)
        st.const = None


def _wrap(e: Expression) -> Expression:
    """``e`` with its constant term reduced to ``[0, 2 pi)`` (phases are periodic)."""
    return e + (math.fmod(e.constant, TWO_PI) % TWO_PI - e.constant)


def _normalise_ms(ops: list[Operation]) -> list[Operation]:
    """Constant MS angles into IonQ's range ``[0, pi/2]`` (``[0, 0.25]`` turns), exactly."""
    out: list[Operation] = []
    for op in ops:
        if op.gate == "MS" and op.params[2].is_constant:
            p0, p1, theta = op.params
            for gate, qs, params in _ms_in_range(op.qubits, p0, p1, theta.constant):
                out.append(Operation(gate, qs, tuple(Expression.coerce(p) for p in params)))
        else:
            out.append(op)
    return out


def _ms_in_range(
    qubits: tuple[int, ...], p0: Any, p1: Any, theta: float
) -> list[tuple[str, tuple[int, ...], tuple[Any, ...]]]:
    """MS(p0, p1, theta) as gates whose MS angle is in ``[0, pi/2]`` (equal up to a phase).

    ``MS(p0, p1, -t) = MS(p0 + pi, p1, t)`` and
    ``MS(p0, p1, t) = MS(p0, p1, t - pi) GPI(p0) GPI(p1)`` (the two factors commute;
    ``MS(p0, p1, pi) = -i GPI(p0) x GPI(p1)``).
    """
    a, b = qubits
    t = math.remainder(theta, TWO_PI)  # (-pi, pi]; MS(t + 2 pi) = -MS(t)
    out: list[tuple[str, tuple[int, ...], tuple[Any, ...]]] = []
    if abs(t) > math.pi / 2:
        out += [("GPI", (a,), (p0,)), ("GPI", (b,), (p1,))]
        t = t - math.copysign(math.pi, t)
    if t < 0:
        p0, t = p0 + math.pi, -t
    out.append(("MS", (a, b), (p0, p1, t)))
    return out


@dataclass(frozen=True)
class NativeCompilation:
    """A circuit lowered to IonQ's native gates.

    ``circuit`` holds GPI, GPI2, MS (and ZZ) with phases in radians that are expressions of the
    original symbols; ``frames[q]`` is the virtual ``RZ`` left on qubit ``q`` at the end:
    ``original = prod_q RZ_q(frames[q]) · circuit`` up to a global phase. Measurement in the
    computational basis ignores the frames.
    """

    circuit: UnifiedCircuit
    frames: tuple[Expression, ...]
    target: str

    @property
    def n_1q(self) -> int:
        return sum(1 for op in self.circuit if len(op.qubits) == 1)

    @property
    def n_2q(self) -> int:
        return sum(1 for op in self.circuit if len(op.qubits) == 2)

    def gate_counts(self) -> dict[str, int]:
        """How many GPI, GPI2, MS and ZZ gates the native circuit has."""
        return self.circuit.gate_counts()


class IonQNativeCompiler:
    """Compile circuits to IonQ's native gates: GPI, GPI2, MS (and ZZ on Forte targets).

    Uses the fewest two-qubit gates the gate allows (one MS or ZZ per CNOT, CZ, CRX, CRY, CRZ,
    RXX, RYY, RZZ), merges runs of constant one-qubit gates into at most two GPI2 or one GPI, and
    treats RZ as a free frame change. Symbols survive: native phases are expressions of the
    circuit's symbols, so the compiled circuit can be bound and differentiated.

    Args:
        target: the IonQ target (``'qpu.aria-1'``, ``'qpu.forte-1'``, ``'simulator'`` ...);
            Forte targets (and the simulator) get ZZ gates for ZZ-type interactions.
        optimize: merge one-qubit runs across gates (``False``: lower gate by gate).
        use_zz: override whether ZZ gates are used (default: what the target supports, except
            the simulator, which is compiled like Aria).

    >>> import qstore.core as qc
    >>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
    >>> native = IonQNativeCompiler().compile(c)
    >>> sorted(native.gate_counts().items())
    [('GPI2', 2), ('MS', 1)]
    """

    def __init__(
        self, target: str = "qpu.aria-1", optimize: bool = True, use_zz: bool | None = None
    ) -> None:
        tgt = get_target(target)
        self.target = tgt.name
        self.optimize = bool(optimize)
        self.use_zz = (tgt.has_zz and not tgt.is_simulator) if use_zz is None else bool(use_zz)

    def __repr__(self) -> str:
        return f"IonQNativeCompiler(target={self.target!r}, optimize={self.optimize})"

    def compile(self, circuit: UnifiedCircuit) -> UnifiedCircuit:
        """The native circuit (a new :class:`UnifiedCircuit` of GPI, GPI2, MS and ZZ)."""
        return self.compile_with_frames(circuit).circuit.copy()

    def compile_with_frames(self, circuit: UnifiedCircuit) -> NativeCompilation:
        """The native circuit with the final frames (see :class:`NativeCompilation`); cached on
        ``circuit`` (:meth:`UnifiedCircuit.compiled`)."""
        if not isinstance(circuit, UnifiedCircuit):
            raise IonQCompilerError(
                f"IonQNativeCompiler.compile needs a qstore.core.UnifiedCircuit, got "
                f"{type(circuit).__name__}; convert Cirq/Qiskit circuits with "
                "UnifiedCircuit.from_cirq / from_qiskit."
            )
        key = ("qstore.ionq.native", self.use_zz, self.optimize)
        return circuit.compiled(key, lambda: self._compile(circuit))

    def _compile(self, circuit: UnifiedCircuit) -> NativeCompilation:
        em = _Emitter(circuit.n_qubits, self.use_zz)
        for op in circuit:
            for prim in _lower(op):
                em.push(prim)
            if not self.optimize:
                for q in op.qubits:
                    em.flush(q)
        for q in range(circuit.n_qubits):
            em.flush(q)
        ops = _normalise_ms(em.ops)
        name = f"{circuit.name}_ionq_native" if circuit.name else "ionq_native"
        out = UnifiedCircuit(circuit.n_qubits, name)
        for op in ops:
            params = tuple(_wrap(p) if op.gate in ("GPI", "GPI2") else p for p in op.params)
            if op.gate == "MS":
                params = (_wrap(params[0]), _wrap(params[1]), params[2])
            out.append(Operation(op.gate, op.qubits, params))
        frames = tuple(_wrap(st.frame) for st in em.qubits)
        return NativeCompilation(out, frames, self.target)

    def to_json(self, circuit: UnifiedCircuit) -> dict[str, Any]:
        """The API's ``input`` object (``gateset: native``) of a bound circuit."""
        return circuit_to_ionq_json(circuit, "native", self.optimize, self.target)


# -- JSON -----------------------------------------------------------------------------------------
def _turns(radians: float) -> float:
    t = (radians / TWO_PI) % 1.0
    return 0.0 if abs(t - 1.0) < 1e-15 else t


def _native_gate_json(gate: str, qs: tuple[int, ...], p: Sequence[float]) -> list[dict[str, Any]]:
    if gate in ("GPI", "GPI2"):
        return [{"gate": gate.lower(), "target": qs[0], "phase": _turns(p[0])}]
    if gate == "MS":
        out: list[dict[str, Any]] = []
        for g, q2, pp in _ms_in_range(qs, p[0], p[1], p[2]):
            if g == "GPI":
                out.append({"gate": "gpi", "target": q2[0], "phase": _turns(pp[0])})
            else:
                out.append(
                    {
                        "gate": "ms",
                        "targets": list(q2),
                        "phases": [_turns(pp[0]), _turns(pp[1])],
                        "angle": min(0.25, pp[2] / TWO_PI),
                    }
                )
        return out
    if gate == "ZZ":
        return [{"gate": "zz", "targets": list(qs), "angle": math.remainder(p[0], TWO_PI) / TWO_PI}]
    raise IonQCompilerError(f"{gate} is not an IonQ native gate (GPI, GPI2, MS, ZZ).")


_QIS_FIXED = {
    "H": "h",
    "X": "x",
    "Y": "y",
    "Z": "z",
    "S": "s",
    "SDG": "si",
    "T": "t",
    "TDG": "ti",
    "SX": "v",
    "SXDG": "vi",
}
_QIS_ROT = {"RX": "rx", "RY": "ry", "RZ": "rz", "P": "rz"}
_QIS_PAIR = {"RXX": "xx", "RYY": "yy", "RZZ": "zz", "ZZ": "zz"}
_QIS_CONTROLLED = {"CNOT": "x", "CZ": "z", "CRX": "rx", "CRY": "ry", "CRZ": "rz"}


def _qis_gate_json(gate: str, qs: tuple[int, ...], p: Sequence[float]) -> list[dict[str, Any]]:
    if gate == "I":
        return []
    if gate in _QIS_FIXED:
        return [{"gate": _QIS_FIXED[gate], "target": qs[0]}]
    if gate in _QIS_ROT:
        return [{"gate": _QIS_ROT[gate], "target": qs[0], "rotation": float(p[0])}]
    if gate == "U3":  # RZ(phi) RY(theta) RZ(lambda) up to a phase
        t, phi, lam = p
        return [
            {"gate": "rz", "target": qs[0], "rotation": float(lam)},
            {"gate": "ry", "target": qs[0], "rotation": float(t)},
            {"gate": "rz", "target": qs[0], "rotation": float(phi)},
        ]
    if gate in _QIS_CONTROLLED:
        g: dict[str, Any] = {"gate": _QIS_CONTROLLED[gate], "control": qs[0], "target": qs[1]}
        if p:
            g["rotation"] = float(p[0])
        return [g]
    if gate == "CCX":
        return [{"gate": "x", "controls": [qs[0], qs[1]], "target": qs[2]}]
    if gate == "SWAP":
        return [{"gate": "swap", "targets": list(qs)}]
    if gate in _QIS_PAIR:
        return [{"gate": _QIS_PAIR[gate], "targets": list(qs), "rotation": float(p[0])}]
    if gate in ("GPI", "GPI2"):  # G(phi) = RZ(phi) G(0) RZ(-phi)
        mid = {"gate": "x", "target": qs[0]}
        if gate == "GPI2":
            mid = {"gate": "rx", "target": qs[0], "rotation": math.pi / 2}
        rz = {"gate": "rz", "target": qs[0]}
        return [{**rz, "rotation": -float(p[0])}, mid, {**rz, "rotation": float(p[0])}]
    if gate == "MS":
        a, b = qs
        return [
            {"gate": "rz", "target": a, "rotation": -float(p[0])},
            {"gate": "rz", "target": b, "rotation": -float(p[1])},
            {"gate": "xx", "targets": [a, b], "rotation": float(p[2])},
            {"gate": "rz", "target": a, "rotation": float(p[0])},
            {"gate": "rz", "target": b, "rotation": float(p[1])},
        ]
    raise IonQCompilerError(  # pragma: no cover - the table's gates are all handled
        f"Gate {gate} has no IonQ QIS form."
    )


def json_gates(
    circuit: UnifiedCircuit, gateset: str, theta: npt.NDArray[np.float64], pmap: ParameterMap
) -> list[list[dict[str, Any]]]:
    """The JSON gate lists of ``circuit`` for every row of gate parameters ``theta [B, G]``.

    ``pmap`` is the :class:`ParameterMap` ``theta`` came from; ``gateset`` is ``'qis'`` (any
    circuit) or ``'native'`` (a circuit of GPI, GPI2, MS and ZZ, radians; emitted in turns).
    """
    emit = _native_gate_json if gateset == "native" else _qis_gate_json
    ops = [
        (op, cols) for op, cols in zip(circuit, pmap.slots, strict=True) if not op.is_measurement
    ]
    rows = theta.tolist()
    out = []
    for row in rows:
        gates: list[dict[str, Any]] = []
        for op, cols in ops:
            gates.extend(emit(op.gate, op.qubits, [row[c] for c in cols]))
        out.append(gates)
    return out


def _check_gateset(gateset: str) -> str:
    gs = str(gateset).lower()
    if gs not in ("qis", "native"):
        raise IonQCompilerError(f"gateset must be 'qis' or 'native', got {gateset!r}.")
    return gs


def circuit_to_ionq_json(
    circuit: UnifiedCircuit,
    gateset: str = "qis",
    optimize: bool = True,
    target: str | None = None,
) -> dict[str, Any]:
    """The IonQ API's circuit JSON (a job's ``input``) of a bound circuit.

    ``gateset='qis'`` writes the circuit's own gates (rotations in radians);
    ``gateset='native'`` compiles it with :class:`IonQNativeCompiler` for ``target`` (default
    ``'qpu.aria-1'``) and writes GPI/GPI2/MS/ZZ with phases in turns. Measurement is implicit.

    >>> import qstore.core as qc
    >>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
    >>> circuit_to_ionq_json(c)["circuit"]
    [{'gate': 'h', 'target': 0}, {'gate': 'x', 'control': 0, 'target': 1}]
    """
    gs = _check_gateset(gateset)
    if not isinstance(circuit, UnifiedCircuit):
        raise IonQCompilerError(
            f"circuit_to_ionq_json needs a qstore.core.UnifiedCircuit, got "
            f"{type(circuit).__name__}."
        )
    if circuit.is_parameterized:
        raise IonQCompilerError(
            f"The IonQ API takes numbers, but symbols {circuit.parameter_names} are unbound; "
            "bind them first: circuit.bind({name: value, ...})."
        )
    if gs == "native":  # the compiler merges and cancels one-qubit gates itself
        compiler = IonQNativeCompiler(target or "qpu.aria-1", optimize)
        src = compiler.compile_with_frames(circuit).circuit
    else:
        src = circuit.optimize() if optimize else circuit
    pmap = ParameterMap.build(src, ())
    theta = pmap.theta(pmap.layout(None, None))
    return {
        "gateset": gs,
        "qubits": circuit.n_qubits,
        "circuit": json_gates(src, gs, theta, pmap)[0],
    }


# -- JSON -> circuit (the emulator's reader) ------------------------------------------------------
_QIS_READ_FIXED = {v: k for k, v in _QIS_FIXED.items()} | {"not": "X"}
_QIS_READ_ROT = {"rx": "RX", "ry": "RY", "rz": "RZ"}
_QIS_READ_PAIR = {"xx": "RXX", "yy": "RYY", "zz": "RZZ"}


def _int_list(value: Any, what: str) -> list[int]:
    items = value if isinstance(value, list) else [value]
    if not items or any(isinstance(v, bool) or not isinstance(v, int) for v in items):
        raise IonQCompilerError(f"{what} must be a qubit index or a list of them, got {value!r}.")
    return list(items)


def _number(gate: dict[str, Any], key: str, default: float | None = None) -> float:
    value = gate.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise IonQCompilerError(f"Gate {gate!r} needs a finite number {key!r}.")
    return float(value)


_NATIVE_1Q = {"gpi": "GPI", "gpi2": "GPI2"}


def _read_gate(gate: Any, native: bool) -> list[tuple[str, tuple[int, ...], tuple[float, ...]]]:
    if native and type(gate) is dict:  # the common case first: a well-formed GPI or GPI2
        kind = _NATIVE_1Q.get(gate.get("gate"))  # type: ignore[arg-type]
        t, ph = gate.get("target"), gate.get("phase")
        if kind and type(t) is int and type(ph) is float and math.isfinite(ph):
            return [(kind, (t,), (TWO_PI * ph,))]
    if not isinstance(gate, dict) or not isinstance(gate.get("gate"), str):
        raise IonQCompilerError(f"Each gate must be an object with a 'gate' name, got {gate!r}.")
    name = gate["gate"].lower()
    targets = _int_list(gate.get("targets", gate.get("target")), f"{name}'s target(s)")
    controls = (
        _int_list(gate["controls"] if "controls" in gate else gate["control"], "control")
        if ("controls" in gate or "control" in gate)
        else []
    )
    if native:
        if name in ("gpi", "gpi2"):
            return [(name.upper(), (targets[0],), (TWO_PI * _number(gate, "phase"),))]
        if name == "ms":
            phases = gate.get("phases", [0.0, 0.0])
            if not isinstance(phases, list) or len(phases) != 2 or len(targets) != 2:
                raise IonQCompilerError(f"ms needs two targets and two phases, got {gate!r}.")
            angle = _number(gate, "angle", 0.25)
            if not -1e-12 <= angle <= 0.25 + 1e-12:
                raise IonQCompilerError(f"ms angle must be in [0, 0.25] turns, got {angle}.")
            p0 = _number({"p": phases[0]}, "p")
            p1 = _number({"p": phases[1]}, "p")
            return [("MS", (targets[0], targets[1]), (TWO_PI * p0, TWO_PI * p1, TWO_PI * angle))]
        if name == "zz" and len(targets) == 2:
            key = "angle" if "angle" in gate else "phase"
            return [("ZZ", (targets[0], targets[1]), (TWO_PI * _number(gate, key),))]
        raise IonQCompilerError(
            f"{name!r} is not a native gate (gpi, gpi2, ms, zz); native circuits cannot mix in "
            "QIS gates."
        )
    if name == "cnot":
        name = "x"
    if controls:
        t = targets[0]
        if name == "x" and len(controls) == 1:
            return [("CNOT", (controls[0], t), ())]
        if name == "x" and len(controls) == 2:
            return [("CCX", (controls[0], controls[1], t), ())]
        if name == "z" and len(controls) == 1:
            return [("CZ", (controls[0], t), ())]
        if name == "y" and len(controls) == 1:  # CY = S_t CNOT S_t^dagger
            c = controls[0]
            return [("SDG", (t,), ()), ("CNOT", (c, t), ()), ("S", (t,), ())]
        if name in _QIS_READ_ROT and len(controls) == 1:
            return [("C" + _QIS_READ_ROT[name], (controls[0], t), (_number(gate, "rotation"),))]
        raise IonQCompilerError(
            f"Controlled {name!r} with {len(controls)} control(s) is not supported by the emulator."
        )
    if name in _QIS_READ_FIXED:
        return [(_QIS_READ_FIXED[name], (targets[0],), ())]
    if name in _QIS_READ_ROT:
        return [(_QIS_READ_ROT[name], (targets[0],), (_number(gate, "rotation"),))]
    if name == "swap" and len(targets) == 2:
        return [("SWAP", (targets[0], targets[1]), ())]
    if name in _QIS_READ_PAIR and len(targets) == 2:
        return [(_QIS_READ_PAIR[name], (targets[0], targets[1]), (_number(gate, "rotation"),))]
    if name in ("gpi", "gpi2", "ms"):
        raise IonQCompilerError(f"{name!r} is a native gate; send it with gateset 'native'.")
    raise IonQCompilerError(f"Unknown QIS gate {name!r} in {gate!r}.")


def read_gates(
    gates: Any, n_qubits: int, gateset: str
) -> list[tuple[str, tuple[int, ...], tuple[float, ...]]]:
    """Parse a JSON gate list into ``(gate, qubits, radians)`` triples (validated)."""
    gs = _check_gateset(gateset)
    if not isinstance(gates, list):
        raise IonQCompilerError(f"'circuit' must be a list of gates, got {type(gates).__name__}.")
    out: list[tuple[str, tuple[int, ...], tuple[float, ...]]] = []
    native = gs == "native"
    for g in gates:
        for name, qs, ps in _read_gate(g, native):
            if len(qs) == 1 and 0 <= qs[0] < n_qubits:
                out.append((name, qs, ps))
                continue
            if any(not 0 <= q < n_qubits for q in qs) or len(set(qs)) != len(qs):
                raise IonQCompilerError(
                    f"Gate {g!r} uses qubits {list(qs)}, outside 0 .. {n_qubits - 1} or repeated."
                )
            out.append((name, qs, ps))
    return out


def ionq_json_to_circuit(data: dict[str, Any]) -> UnifiedCircuit:
    """A :class:`UnifiedCircuit` from the API's circuit JSON (``gateset``, ``qubits``, ``circuit``).

    Native phases (turns) become radians. The inverse of :func:`circuit_to_ionq_json` up to
    global phases.
    """
    try:
        n = int(data["qubits"])
        gates = read_gates(data["circuit"], n, str(data.get("gateset", "qis")))
        out = UnifiedCircuit(n)
        for name, qs, ps in gates:
            out.add_gate(name, list(qs), list(ps))
    except (KeyError, TypeError) as exc:
        raise IonQCompilerError(f"Malformed IonQ circuit JSON: missing or invalid {exc}.") from None
    except QStoreError as exc:
        if isinstance(exc, IonQCompilerError):
            raise
        raise IonQCompilerError(f"Invalid IonQ circuit JSON: {exc}") from None
    return out
