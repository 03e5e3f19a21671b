"""OpenQASM 2.0 export and import (``include "qelib1.inc"``).

**Export** (:func:`to_qasm`). Gates of the paper's ``qelib1.inc`` (``h``, ``cx``, ``rx``,
``u3``, ``crz``, ``ccx`` ...) are used directly; P is written as ``u1``. The other gates
(``sx``, ``sxdg``, ``swap``, ``crx``, ``cry``, ``rxx``, ``ryy``, ``rzz`` and the IonQ natives
``gpi``, ``gpi2``, ``ms``, ``zz``, in radians) get a ``gate`` definition in terms of
``qelib1.inc`` gates, written only when used. Read with Qiskit's reading of ``qelib1.inc``
(``qiskit.qasm2.loads``, with or without ``LEGACY_CUSTOM_INSTRUCTIONS``), the program has
exactly ``circuit.unitary()`` (bit order reversed, as for any Qiskit circuit). OpenQASM 2
itself defines gates only up to a global phase; see ``docs/conventions.md``.

Measurements write to one ``creg`` per measurement key (bit ``j`` = ``j``-th measured qubit).
Numbers are written with Python's shortest exact ``repr``, so they read back bit for bit.

**Import** (:func:`from_qasm`). Reads ``qreg``/``creg`` declarations (several registers are
numbered one after the other), the gates of ``qelib1.inc`` (the paper's and the ones Qiskit
adds: ``p``, ``u``, ``sx``, ``swap``, ``cp``, ``cu``, ``csx``, ``cswap``, ``rxx``, ``rzz``,
``rccx`` ...), ``U`` and ``CX``, ``gate`` definitions (expanded; a definition that has exactly
the matrix of the Q-Store gate of the same name, such as the ones :func:`to_qasm` writes,
becomes that gate), register broadcasting (``h q;``), parameters with ``pi``, ``+ - * / ^``
and ``sin cos tan exp ln sqrt``, and ``measure``. ``barrier`` is ignored. ``reset``,
``if``, opaque gates and the 4- and 5-qubit ``c3x``, ``c3sqrtx``, ``rc3x``, ``c4x`` raise
:class:`~qstore.core.errors.SerializationError` naming the line. Qubit ``i`` of the program
is Q-Store qubit ``i`` (labels are kept, as in every conversion). Consecutive measurements
into one ``creg`` become one measurement keyed by the register name, qubits ordered by bit.

**Symbols.** OpenQASM 2 has no free parameters, so by default :func:`to_qasm` needs a bound
circuit. ``to_qasm(circuit, symbolic=True)`` writes symbolic parameters as polynomials of
identifiers (``ry(2.0*theta+0.1) q[0];``), an extension that :func:`from_qasm` reads back
(every identifier in a top-level gate argument that is not ``pi`` becomes a symbol), so that
``from_qasm(to_qasm(c, symbolic=True)) == c`` for every circuit whose symbol names are
identifiers (``[A-Za-z_][A-Za-z0-9_]*``, not ``pi`` or a function name). Other readers
(Qiskit) refuse such programs; bind the circuit for them.

>>> import qstore.core as qc
>>> print(to_qasm(qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1]).measure()))
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg m[2];
h q[0];
cx q[0],q[1];
measure q[0] -> m[0];
measure q[1] -> m[1];
<BLANKLINE>
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, 2 * qc.Parameter("theta") + 0.1)
>>> to_qasm(c, symbolic=True).splitlines()[-1]
'ry(2.0*theta+0.1) q[0];'
>>> from_qasm(to_qasm(c, symbolic=True)) == c
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import ConversionError, QStoreError, SerializationError
from qstore.core.parameters import Expression, Parameter

__all__ = ["from_qasm", "to_qasm"]

# Q-Store gate -> OpenQASM 2 gate name.
_NAMES = {
    "I": "id",
    "H": "h",
    "X": "x",
    "Y": "y",
    "Z": "z",
    "S": "s",
    "SDG": "sdg",
    "T": "t",
    "TDG": "tdg",
    "SX": "sx",
    "SXDG": "sxdg",
    "RX": "rx",
    "RY": "ry",
    "RZ": "rz",
    "P": "u1",
    "U3": "u3",
    "CNOT": "cx",
    "CZ": "cz",
    "SWAP": "swap",
    "CRX": "crx",
    "CRY": "cry",
    "CRZ": "crz",
    "RXX": "rxx",
    "RYY": "ryy",
    "RZZ": "rzz",
    "CCX": "ccx",
    "GPI": "gpi",
    "GPI2": "gpi2",
    "MS": "ms",
    "ZZ": "zz",
}

# Definitions of the gates that are not in the paper's qelib1.inc: (dependencies, text). Each is
# exact (no global phase) in Qiskit's reading of qelib1.inc, where rz is exp(-i phi Z / 2).
_DEFINITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "sx": ((), "gate sx a { h a; s a; h a; }"),
    "sxdg": ((), "gate sxdg a { h a; sdg a; h a; }"),
    "swap": ((), "gate swap a,b { cx a,b; cx b,a; cx a,b; }"),
    "crx": ((), "gate crx(theta) a,b { h b; crz(theta) a,b; h b; }"),
    "cry": ((), "gate cry(theta) a,b { ry(theta/2) b; cx a,b; ry(-theta/2) b; cx a,b; }"),
    "rxx": ((), "gate rxx(theta) a,b { h a; h b; cx a,b; rz(theta) b; cx a,b; h a; h b; }"),
    "ryy": (
        (),
        "gate ryy(theta) a,b { rx(pi/2) a; rx(pi/2) b; cx a,b; rz(theta) b; cx a,b; "
        "rx(-pi/2) a; rx(-pi/2) b; }",
    ),
    "rzz": ((), "gate rzz(theta) a,b { cx a,b; rz(theta) b; cx a,b; }"),
    "gpi": ((), "gate gpi(phi) a { u1(-phi) a; x a; u1(phi) a; }"),
    "gpi2": ((), "gate gpi2(phi) a { u1(-phi) a; rx(pi/2) a; u1(phi) a; }"),
    "ms": (
        ("rxx",),
        "gate ms(phi0,phi1,theta) a,b { u1(-phi0) a; u1(-phi1) b; rxx(theta) a,b; "
        "u1(phi0) a; u1(phi1) b; }",
    ),
    "zz": (("rzz",), "gate zz(theta) a,b { rzz(theta) a,b; }"),
}

_IDENTIFIER = re.compile(r"^[a-z][A-Za-z0-9_]*$")
_RESERVED = frozenset(
    {
        "OPENQASM",
        "include",
        "qreg",
        "creg",
        "gate",
        "opaque",
        "measure",
        "reset",
        "barrier",
        "if",
        "pi",
        "U",
        "CX",
        "sin",
        "cos",
        "tan",
        "exp",
        "ln",
        "sqrt",
        "q",
        # qelib1.inc gate names
        "u3",
        "u2",
        "u1",
        "cx",
        "id",
        "u0",
        "x",
        "y",
        "z",
        "h",
        "s",
        "sdg",
        "t",
        "tdg",
        "rx",
        "ry",
        "rz",
        "cz",
        "cy",
        "ch",
        "ccx",
        "crz",
        "cu1",
        "cu3",
        *_DEFINITIONS,
    }
)


def _number(value: float) -> str:
    """Shortest exact decimal with a decimal point, as OpenQASM 2's ``real`` requires."""
    text = repr(float(value))
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + ("e" + exponent if exponent else "")


def _register_names(keys: list[str]) -> dict[str, str]:
    """Measurement keys as distinct, valid OpenQASM 2 identifiers."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for key in keys:
        base = key if _IDENTIFIER.match(key) and key not in _RESERVED else ""
        if not base:
            cleaned = re.sub(r"[^A-Za-z0-9_]", "_", key)
            base = f"c_{cleaned}" if cleaned else "c"
        name, k = base, 1
        while name in taken or name in _RESERVED:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        out[key] = name
    return out


# Names a symbol cannot have in a symbolic program: they mean something in an expression.
_EXPRESSION_WORDS = frozenset({"pi", "sin", "cos", "tan", "exp", "ln", "sqrt"})
_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _expression_text(expr: Expression, where: str) -> str:
    """``expr`` as an OpenQASM-style expression of identifiers that reads back exactly."""
    parts: list[str] = []
    for mono, coeff in expr.terms:
        for name in mono:
            if not _SYMBOL.match(name) or name in _EXPRESSION_WORDS:
                raise ConversionError(
                    f"Symbol {name!r} of {where} cannot be written in OpenQASM: names must be "
                    "identifiers ([A-Za-z_][A-Za-z0-9_]*) other than pi, sin, cos, tan, exp, "
                    f"ln and sqrt. Rename it, e.g. circuit.bind({{{name!r}: qc.Parameter("
                    f"'{re.sub(r'[^A-Za-z0-9_]', '_', name)}_')}})."
                )
        body = "*".join(mono)
        if coeff == 1.0:
            parts.append(body)
        elif coeff == -1.0:
            parts.append(f"-{body}")
        else:
            parts.append(f"{_number(coeff)}*{body}")
    if expr.constant != 0.0 or not parts:
        parts.append(_number(expr.constant))
    return parts[0] + "".join(p if p.startswith("-") else f"+{p}" for p in parts[1:])


def to_qasm(circuit: UnifiedCircuit, *, symbolic: bool = False) -> str:
    """OpenQASM 2.0 text of ``circuit``.

    Symbols must be bound first (:class:`~qstore.core.errors.UnboundParameterError`
    otherwise), unless ``symbolic=True``: then symbolic parameters are written as expressions
    of identifiers, which :func:`from_qasm` reads back but strict OpenQASM 2 readers refuse.
    """
    body: list[str] = []
    used: set[str] = set()
    sizes: dict[str, int] = {}
    for op in circuit:
        if op.is_measurement:
            key = op.key or "m"
            sizes[key] = max(sizes.get(key, 0), len(op.qubits))
    regs = _register_names(list(sizes))
    for op in circuit:
        targets = [f"q[{q}]" for q in op.qubits]
        if op.is_measurement:
            reg = regs[op.key or "m"]
            body.extend(f"measure {t} -> {reg}[{j}];" for j, t in enumerate(targets))
            continue
        if symbolic:
            texts = [_expression_text(p, f"{op.gate} on {list(op.qubits)}") for p in op.params]
        else:
            texts = [_number(v) for v in op.numeric_params()]  # raises UnboundParameterError
        name = _NAMES[op.gate]
        used.add(name)
        args = f"({','.join(texts)})" if texts else ""
        body.append(f"{name}{args} {','.join(targets)};")
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";']
    if circuit.name:
        lines.insert(0, f"// {circuit.name}".replace("\n", " "))
    written: set[str] = set()

    def define(name: str) -> None:
        if name in written or name not in _DEFINITIONS:
            return
        deps, text = _DEFINITIONS[name]
        for dep in deps:
            define(dep)
        lines.append(text)
        written.add(name)

    for name in _DEFINITIONS:  # a fixed order keeps the output stable
        if name in used:
            define(name)
    lines.append(f"qreg q[{circuit.n_qubits}];")
    lines.extend(f"creg {regs[key]}[{size}];" for key, size in sizes.items())
    lines.extend(body)
    return "\n".join(lines) + "\n"


# =============================================================================================
# Import
# =============================================================================================

Value = float | Expression  # a gate argument: a number, or a polynomial in symbols
Lowered = list[tuple[str, tuple[int, ...], list[Value]]]  # (Q-Store gate, local qubits, params)

# Expression trees: ("num", x) | ("name", id) | ("neg", e) | ("bin", op, a, b) | ("fn", f, e)
Node = tuple[object, ...]

_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "ln": math.log,
    "sqrt": math.sqrt,
}

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\f\v]+) | (?P<newline>\n) | (?P<comment>//[^\n]*)
    | (?P<real>(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)
    | (?P<int>[0-9]+)
    | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<str>"[^"\n]*")
    | (?P<op>->|==|[;,()\[\]{}+\-*/^])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # id, real, int, str, op, eof
    text: str
    line: int


def _fail(line: int, message: str) -> SerializationError:
    return SerializationError(f"OpenQASM line {line}: {message}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    line, pos = 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _fail(line, f"unexpected character {text[pos]!r}.")
        kind = m.lastgroup or ""
        if kind == "newline":
            line += 1
        elif kind not in ("space", "comment"):
            tokens.append(_Token(kind, m.group(), line))
        pos = m.end()
    tokens.append(_Token("eof", "", line))
    return tokens


# -- the gates a program may use without defining them -----------------------------------------


def _direct(gate: str, n_params: int, n_qubits: int) -> tuple[int, int, Callable[..., Lowered]]:
    qubits = tuple(range(n_qubits))
    return n_params, n_qubits, lambda p: [(gate, qubits, list(p))]


def _cu3(p: Sequence[Value]) -> Lowered:
    """Controlled U3(theta, phi, lambda), exactly (no global phase)."""
    theta, phi, lam = p
    return [
        ("P", (0,), [(lam + phi) / 2]),
        ("P", (1,), [(lam - phi) / 2]),
        ("CNOT", (0, 1), []),
        ("U3", (1,), [-theta / 2, 0.0, -(phi + lam) / 2]),
        ("CNOT", (0, 1), []),
        ("U3", (1,), [theta / 2, phi, 0.0]),
    ]


def _cp(lam: Value) -> Lowered:
    """Controlled phase diag(1, 1, 1, e^{i lam}) = CRZ(lam) with P(lam / 2) on the control."""
    return [("CRZ", (0, 1), [lam]), ("P", (0,), [lam / 2])]


_QUARTER_PI = math.pi / 4

# qelib1.inc name -> (n_params, n_qubits, lowering to Q-Store gates). Each lowering is exact.
_QELIB: dict[str, tuple[int, int, Callable[..., Lowered]]] = {
    **{n: _direct(g, 0, 1) for n, g in (("id", "I"), ("x", "X"), ("y", "Y"), ("z", "Z"))},
    **{n: _direct(g, 0, 1) for n, g in (("h", "H"), ("s", "S"), ("sdg", "SDG"), ("t", "T"))},
    **{n: _direct(g, 0, 1) for n, g in (("tdg", "TDG"), ("sx", "SX"), ("sxdg", "SXDG"))},
    **{n: _direct(n.upper(), 1, 1) for n in ("rx", "ry", "rz")},
    **{n: _direct("P", 1, 1) for n in ("u1", "p")},
    **{n: _direct("U3", 3, 1) for n in ("u3", "u", "U")},
    **{n: _direct("CNOT", 0, 2) for n in ("cx", "CX")},
    "cz": _direct("CZ", 0, 2),
    "swap": _direct("SWAP", 0, 2),
    **{n: _direct(n.upper(), 1, 2) for n in ("crx", "cry", "crz", "rxx", "ryy", "rzz")},
    "ccx": _direct("CCX", 0, 3),
    "u0": (1, 1, lambda p: [("I", (0,), [])]),  # u0(n) waits n gate times: the identity
    "u2": (2, 1, lambda p: [("U3", (0,), [math.pi / 2, p[0], p[1]])]),
    "cy": (0, 2, lambda p: [("SDG", (1,), []), ("CNOT", (0, 1), []), ("S", (1,), [])]),
    "ch": (
        0,
        2,
        lambda p: [("RY", (1,), [_QUARTER_PI]), ("CNOT", (0, 1), []), ("RY", (1,), [-_QUARTER_PI])],
    ),
    **{n: (1, 2, lambda p: _cp(p[0])) for n in ("cu1", "cp")},
    "cu3": (3, 2, _cu3),
    "cu": (4, 2, lambda p: [("P", (0,), [p[3]]), *_cu3(p[:3])]),
    "csx": (0, 2, lambda p: [("H", (1,), []), *_cp(math.pi / 2), ("H", (1,), [])]),
    "cswap": (0, 3, lambda p: [("CNOT", (2, 1), []), ("CCX", (0, 1, 2), []), ("CNOT", (2, 1), [])]),
    # Toffoli up to relative phases, as qelib1.inc defines it.
    "rccx": (
        0,
        3,
        lambda p: [
            ("U3", (2,), [math.pi / 2, 0.0, math.pi]),
            ("P", (2,), [_QUARTER_PI]),
            ("CNOT", (1, 2), []),
            ("P", (2,), [-_QUARTER_PI]),
            ("CNOT", (0, 2), []),
            ("P", (2,), [_QUARTER_PI]),
            ("CNOT", (1, 2), []),
            ("P", (2,), [-_QUARTER_PI]),
            ("U3", (2,), [math.pi / 2, 0.0, math.pi]),
        ],
    ),
}

# Gates a program may *define* to stand for a Q-Store gate (to_qasm writes these definitions).
_DEFINABLE: dict[str, tuple[int, int, Callable[..., Lowered]]] = {
    **_QELIB,
    "gpi": _direct("GPI", 1, 1),
    "gpi2": _direct("GPI2", 1, 1),
    "ms": _direct("MS", 3, 2),
    "zz": _direct("ZZ", 1, 2),
}

_UNSUPPORTED_QELIB = frozenset({"c3x", "c3sqrtx", "rc3x", "c4x"})


# -- parsed program pieces ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """A gate application inside a ``gate`` body: formal qubit and parameter names."""

    name: str
    args: tuple[Node, ...]
    qubits: tuple[str, ...]
    line: int


@dataclass
class _GateDef:
    name: str
    params: tuple[str, ...]
    qubits: tuple[str, ...]
    body: tuple[_Call, ...]
    line: int
    builtin: bool = False  # set when the body is exactly the Q-Store gate of the same name


@dataclass(frozen=True)
class _GateEvent:
    gate: str
    qubits: tuple[int, ...]
    params: tuple[Value, ...]
    line: int


@dataclass(frozen=True)
class _MeasureEvent:
    qubit: int
    key: str
    bit: int
    line: int


# -- expressions -------------------------------------------------------------------------------


def _arith(op: str, a: Value, b: Value, line: int) -> Value:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if isinstance(b, Expression):
            raise _fail(
                line,
                f"division by the symbolic expression {b}: Q-Store parameters are polynomials "
                "in their symbols. Bind the symbol, or write the division as a product.",
            )
        if b == 0.0:
            raise _fail(line, "division by zero in a gate argument.")
        return a / b
    # "^": numbers, or a symbolic base to a whole non-negative power
    if isinstance(b, Expression):
        raise _fail(line, f"a symbolic exponent ({b}) cannot be represented; bind the symbol.")
    if isinstance(a, Expression):
        if b != int(b) or b < 0 or b > 64:
            raise _fail(line, f"{a} ^ {b}: only whole powers 0 .. 64 of symbols are supported.")
        out: Value = 1.0
        for _ in range(int(b)):
            out = out * a
        return out
    if a < 0 and b != int(b):
        raise _fail(line, f"{a} ^ {b} is not a real number.")
    return float(a**b)


def _evaluate(node: Node, env: dict[str, Value], symbols: bool, line: int) -> Value:
    """Value of an expression tree; free identifiers become symbols when ``symbols``."""
    kind = node[0]
    try:
        if kind == "num":
            return float(node[1])  # type: ignore[arg-type]
        if kind == "name":
            name = str(node[1])
            if name in env:
                return env[name]
            if name == "pi":
                return math.pi
            if symbols:
                return Parameter(name)
            raise _fail(line, f"unknown parameter {name!r}.")
        if kind == "neg":
            return -_evaluate(node[1], env, symbols, line)  # type: ignore[arg-type]
        if kind == "fn":
            arg = _evaluate(node[2], env, symbols, line)  # type: ignore[arg-type]
            if isinstance(arg, Expression):
                raise _fail(
                    line,
                    f"{node[1]}({arg}) of a symbol cannot be represented: Q-Store parameters "
                    "are polynomials in their symbols. Bind the symbol first.",
                )
            return _FUNCTIONS[str(node[1])](arg)
        a = _evaluate(node[2], env, symbols, line)  # type: ignore[arg-type]
        b = _evaluate(node[3], env, symbols, line)  # type: ignore[arg-type]
        return _arith(str(node[1]), a, b, line)
    except (ValueError, OverflowError, ZeroDivisionError) as exc:
        if isinstance(exc, SerializationError):
            raise
        raise _fail(line, f"cannot evaluate a gate argument: {exc}.") from None


def _finite(value: Value, line: int) -> Value:
    if isinstance(value, Expression):
        if value.is_constant:
            value = value.constant
        else:
            numbers = [value.constant, *(c for _, c in value.terms)]
            if not all(math.isfinite(x) for x in numbers):
                raise _fail(line, f"the gate argument {value} is not finite.")
            return value
    if not math.isfinite(value):
        raise _fail(line, f"the gate argument evaluates to {value}; it must be finite.")
    return float(value)


def _names_in(node: Node) -> Iterator[str]:
    if node[0] == "name":
        yield str(node[1])
    for child in node[1:]:
        if isinstance(child, tuple):
            yield from _names_in(child)


# -- the parser --------------------------------------------------------------------------------


class _Parser:
    """Recursive-descent reader of one OpenQASM 2 program into gate and measurement events."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.qregs: dict[str, tuple[int, int]] = {}  # name -> (first qubit, size)
        self.cregs: dict[str, int] = {}
        self.n_qubits = 0
        self.gates: dict[str, _GateDef] = {}
        self.opaque: set[str] = set()
        self.events: list[_GateEvent | _MeasureEvent] = []

    # -- tokens --------------------------------------------------------------------------------
    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def expect(self, text: str | None = None, kind: str | None = None) -> _Token:
        tok = self.take()
        if (text is not None and tok.text != text) or (kind is not None and tok.kind != kind):
            want = repr(text) if text is not None else f"an {kind}"
            got = "the end of the program" if tok.kind == "eof" else repr(tok.text)
            raise _fail(tok.line, f"expected {want}, found {got}.")
        return tok

    def accept(self, text: str) -> bool:
        if self.peek().text == text and self.peek().kind in ("op", "id"):
            self.take()
            return True
        return False

    # -- program -------------------------------------------------------------------------------
    def program(self) -> None:
        first = True
        while self.peek().kind != "eof":
            tok = self.peek()
            if tok.text == "OPENQASM" and tok.kind == "id":
                if not first:
                    raise _fail(tok.line, "OPENQASM must be the first statement.")
                self.version()
            else:
                self.statement()
            first = False

    def version(self) -> None:
        self.take()
        tok = self.take()
        if tok.kind not in ("real", "int"):
            raise _fail(tok.line, f"expected a version number after OPENQASM, found {tok.text!r}.")
        if tok.text.split(".")[0] != "2":
            raise _fail(
                tok.line,
                f"OpenQASM {tok.text} is not supported; from_qasm reads OpenQASM 2 (for "
                "OpenQASM 3, load it with qiskit.qasm3 and use UnifiedCircuit.from_qiskit).",
            )
        self.expect(";")

    def statement(self) -> None:
        tok = self.take()
        word = tok.text if tok.kind == "id" else ""
        if word == "include":
            name = self.expect(kind="str").text.strip('"')
            if name != "qelib1.inc":
                raise _fail(
                    tok.line,
                    f'include "{name}" is not supported; only "qelib1.inc" is known. '
                    "Paste the included definitions into the program instead.",
                )
            self.expect(";")
        elif word in ("qreg", "creg"):
            self.register(word, tok.line)
        elif word == "gate":
            self.gate_definition(tok.line)
        elif word == "opaque":
            self.opaque.add(self.expect(kind="id").text)
            while not self.accept(";"):
                if self.take().kind == "eof":
                    raise _fail(tok.line, "unterminated opaque declaration.")
        elif word == "measure":
            self.measure(tok.line)
        elif word == "barrier":
            self.qubit_args(tok.line)  # checked, then ignored
            self.expect(";")
        elif word == "reset":
            raise _fail(
                tok.line,
                "reset is not supported: Q-Store circuits start in |0...0> and have no reset; "
                "start a new circuit instead.",
            )
        elif word == "if":
            raise _fail(
                tok.line,
                "classically conditioned operations (if) are not supported: Q-Store circuits "
                "have no classical control.",
            )
        elif tok.kind == "id":
            self.application(tok)
        else:
            got = "the end of the program" if tok.kind == "eof" else repr(tok.text)
            raise _fail(tok.line, f"expected a statement, found {got}.")

    def register(self, kind: str, line: int) -> None:
        name = self.expect(kind="id").text
        self.expect("[")
        size = int(self.expect(kind="int").text)
        self.expect("]")
        self.expect(";")
        if name in self.qregs or name in self.cregs:
            raise _fail(line, f"register {name!r} is declared twice.")
        if size < 1:
            raise _fail(line, f"register {name}[{size}] must hold at least one bit.")
        if kind == "qreg":
            self.qregs[name] = (self.n_qubits, size)
            self.n_qubits += size
        else:
            self.cregs[name] = size

    # -- gate definitions ----------------------------------------------------------------------
    def id_list(self, stop: str) -> list[str]:
        names: list[str] = []
        if self.peek().text == stop:
            return names
        names.append(self.expect(kind="id").text)
        while self.accept(","):
            names.append(self.expect(kind="id").text)
        return names

    def gate_definition(self, line: int) -> None:
        name = self.expect(kind="id").text
        params: list[str] = []
        if self.accept("("):
            params = self.id_list(")")
            self.expect(")")
        qubits = self.id_list("{")
        self.expect("{")
        if not qubits:
            raise _fail(line, f"gate {name} acts on no qubits.")
        if len(set(qubits)) != len(qubits) or len(set(params)) != len(params):
            raise _fail(line, f"gate {name} repeats a parameter or qubit name.")
        if name in self.gates or name in self.opaque:
            raise _fail(line, f"gate {name} is defined twice.")
        body: list[_Call] = []
        while not self.accept("}"):
            tok = self.take()
            if tok.kind != "id":
                got = "the end of the program" if tok.kind == "eof" else repr(tok.text)
                raise _fail(tok.line, f"expected a gate in the body of {name}, found {got}.")
            args: list[Node] = []
            if tok.text != "barrier" and self.accept("("):
                args = self.expressions()
            used = self.id_list(";")
            self.expect(";")
            for q in used:
                if q not in qubits:
                    raise _fail(tok.line, f"{q!r} is not a qubit argument of gate {name}.")
            if tok.text == "barrier":
                continue
            for arg in args:
                for ident in _names_in(arg):
                    if ident not in params and ident != "pi":
                        raise _fail(tok.line, f"{ident!r} is not a parameter of gate {name}.")
            self.signature(tok.text, len(args), len(used), tok.line)
            body.append(_Call(tok.text, tuple(args), tuple(used), tok.line))
        definition = _GateDef(name, tuple(params), tuple(qubits), tuple(body), line)
        definition.builtin = self.is_builtin(definition)
        self.gates[name] = definition

    def is_builtin(self, d: _GateDef) -> bool:
        """Whether ``d`` has exactly the matrix of the Q-Store gate its name stands for."""
        known = _DEFINABLE.get(d.name)
        if known is None or known[:2] != (len(d.params), len(d.qubits)):
            return False
        rng = np.random.default_rng(20240607)
        for _ in range(2):
            values: list[Value] = [float(x) for x in rng.uniform(-math.pi, math.pi, len(d.params))]
            mine, theirs = UnifiedCircuit(len(d.qubits)), UnifiedCircuit(len(d.qubits))
            for gate, qs, ps in known[2](values):
                mine.add_gate(gate, list(qs), ps)
            env = dict(zip(d.params, values, strict=True))
            local = {q: i for i, q in enumerate(d.qubits)}
            for call in d.body:
                args = [_evaluate(a, env, False, call.line) for a in call.args]
                for gate, qs, ps in self.lower(call.name, args, call.line):
                    theirs.add_gate(gate, [local[call.qubits[i]] for i in qs], ps)
            if not np.allclose(mine.unitary(), theirs.unitary(), rtol=0.0, atol=1e-10):
                return False
        return True

    def signature(self, name: str, n_params: int, n_qubits: int, line: int) -> None:
        """Check that ``name`` is a known gate taking ``n_params`` and ``n_qubits``."""
        if name in self.gates:
            d = self.gates[name]
            want = (len(d.params), len(d.qubits))
        elif name in _QELIB:
            want = _QELIB[name][:2]
        elif name in self.opaque:
            raise _fail(
                line,
                f"gate {name} is declared opaque: it has no definition Q-Store could simulate.",
            )
        elif name in _UNSUPPORTED_QELIB:
            raise _fail(
                line,
                f"the qelib1.inc gate {name} has no Q-Store equivalent (the gate set stops at "
                "three-qubit CCX). Decompose it before export, e.g. with qiskit.transpile(qc, "
                "basis_gates=['u', 'cx']), or define it with a gate statement.",
            )
        else:
            raise _fail(
                line,
                f"unknown gate {name!r}: it is neither in qelib1.inc nor defined by a gate "
                "statement before this line.",
            )
        if want != (n_params, n_qubits):
            raise _fail(
                line,
                f"gate {name} takes {want[0]} parameter(s) and {want[1]} qubit(s), got "
                f"{n_params} and {n_qubits}.",
            )

    def lower(self, name: str, args: list[Value], line: int, depth: int = 0) -> Lowered:
        """``name(args)`` on local qubits ``0 .. k-1`` as Q-Store gates."""
        d = self.gates.get(name)
        if d is None:
            return _QELIB[name][2](args)
        if d.builtin:
            return _DEFINABLE[name][2](args)
        if depth > 100:
            raise _fail(line, f"gate definitions nest more than 100 deep at {name}.")
        env = dict(zip(d.params, args, strict=True))
        local = {q: i for i, q in enumerate(d.qubits)}
        out: Lowered = []
        for call in d.body:
            values = [_evaluate(a, env, False, call.line) for a in call.args]
            for gate, qs, ps in self.lower(call.name, values, call.line, depth + 1):
                out.append((gate, tuple(local[call.qubits[i]] for i in qs), ps))
        return out

    # -- statements on registers ---------------------------------------------------------------
    def expressions(self) -> list[Node]:
        """A comma-separated expression list after '(' up to and including ')'."""
        args: list[Node] = []
        if self.accept(")"):
            return args
        args.append(self.expression())
        while self.accept(","):
            args.append(self.expression())
        self.expect(")")
        return args

    def qubit_arg(self, regs: dict[str, int], what: str) -> tuple[str, int | None, int]:
        tok = self.expect(kind="id")
        if tok.text not in regs:
            raise _fail(tok.line, f"{tok.text!r} is not a declared {what} register.")
        index: int | None = None
        if self.accept("["):
            index = int(self.expect(kind="int").text)
            self.expect("]")
            if index >= regs[tok.text]:
                raise _fail(
                    tok.line,
                    f"index {index} is out of range for {tok.text}[{regs[tok.text]}].",
                )
        return tok.text, index, tok.line

    def qubit_args(self, line: int) -> list[list[int]]:
        """Qubit arguments, broadcast over whole registers: one qubit list per application."""
        sizes = {name: size for name, (_, size) in self.qregs.items()}
        args = [self.qubit_arg(sizes, "qubit")]
        while self.accept(","):
            args.append(self.qubit_arg(sizes, "qubit"))
        widths = {sizes[name] for name, index, _ in args if index is None}
        if len(widths) > 1:
            raise _fail(line, "registers of different sizes cannot be broadcast together.")
        count = widths.pop() if widths else 1
        out: list[list[int]] = []
        for k in range(count):
            out.append(
                [self.qregs[name][0] + (k if index is None else index) for name, index, _ in args]
            )
        return out

    def application(self, tok: _Token) -> None:
        name = tok.text
        nodes: list[Node] = []
        if self.accept("("):
            nodes = self.expressions()
        targets = self.qubit_args(tok.line)
        self.expect(";")
        self.signature(name, len(nodes), len(targets[0]), tok.line)
        values = [_finite(_evaluate(n, {}, True, tok.line), tok.line) for n in nodes]
        lowered = self.lower(name, values, tok.line)
        for qubits in targets:
            for gate, qs, ps in lowered:
                self.events.append(
                    _GateEvent(gate, tuple(qubits[i] for i in qs), tuple(ps), tok.line)
                )

    def measure(self, line: int) -> None:
        qsizes = {name: size for name, (_, size) in self.qregs.items()}
        qreg, qindex, _ = self.qubit_arg(qsizes, "qubit")
        self.expect("->")
        creg, cindex, _ = self.qubit_arg(self.cregs, "classical")
        self.expect(";")
        if (qindex is None) != (cindex is None):
            raise _fail(line, "measure a whole register into a whole register, or one bit.")
        if qindex is None and qsizes[qreg] != self.cregs[creg]:
            raise _fail(line, f"{qreg}[{qsizes[qreg]}] and {creg}[{self.cregs[creg]}] differ.")
        pairs = (
            [(qindex, cindex)]
            if qindex is not None and cindex is not None
            else [(k, k) for k in range(qsizes[qreg])]
        )
        first = self.qregs[qreg][0]
        for q, bit in pairs:
            self.events.append(_MeasureEvent(first + q, creg, bit, line))

    # -- expressions ---------------------------------------------------------------------------
    def expression(self) -> Node:
        node = self.term()
        while self.peek().text in ("+", "-") and self.peek().kind == "op":
            op = self.take().text
            node = ("bin", op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek().text in ("*", "/") and self.peek().kind == "op":
            op = self.take().text
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.accept("-"):
            return ("neg", self.unary())
        if self.accept("+"):
            return self.unary()
        base = self.atom()
        if self.accept("^"):
            return ("bin", "^", base, self.unary())
        return base

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind in ("real", "int"):
            return ("num", float(tok.text))
        if tok.kind == "id":
            if tok.text in _FUNCTIONS:
                self.expect("(")
                arg = self.expression()
                self.expect(")")
                return ("fn", tok.text, arg)
            return ("name", tok.text)
        if tok.text == "(":
            node = self.expression()
            self.expect(")")
            return node
        got = "the end of the program" if tok.kind == "eof" else repr(tok.text)
        raise _fail(tok.line, f"expected a number, a parameter or '(', found {got}.")


def _build(parser: _Parser) -> UnifiedCircuit:
    """The circuit of the parsed events; runs of measurements into one creg become one."""
    if parser.n_qubits == 0:
        raise SerializationError("The OpenQASM program declares no qreg; nothing to read.")
    out = UnifiedCircuit(parser.n_qubits)
    pending: tuple[str, dict[int, int]] | None = None  # (key, bit -> qubit)

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            key, bits = pending
            out.measure([bits[b] for b in sorted(bits)], key=key)
            pending = None

    for event in parser.events:
        if isinstance(event, _MeasureEvent):
            if pending is not None and (pending[0] != event.key or event.bit in pending[1]):
                flush()
            if pending is None:
                pending = (event.key, {})
            pending[1][event.bit] = event.qubit
            continue
        flush()
        try:
            out.add_gate(event.gate, list(event.qubits), list(event.params))
        except QStoreError as exc:
            raise _fail(event.line, str(exc)) from exc
    flush()
    return out


def from_qasm(text: str) -> UnifiedCircuit:
    """Read an OpenQASM 2.0 program into a :class:`~qstore.core.UnifiedCircuit`.

    See the module documentation for what is read. Unsupported constructs and malformed text
    raise :class:`~qstore.core.errors.SerializationError` naming the line.

    >>> c = from_qasm('''
    ... OPENQASM 2.0;
    ... include "qelib1.inc";
    ... qreg q[2];
    ... creg c[2];
    ... h q[0];
    ... cx q[0], q[1];
    ... rz(pi/4) q[1];
    ... measure q -> c;
    ... ''')
    >>> [str(op) for op in c]
    ['H [0]', 'CNOT [0, 1]', 'RZ(0.7853981633974483) [1]', "MEASURE[0, 1] -> 'c'"]
    """
    if not isinstance(text, str):
        raise SerializationError(
            f"from_qasm() takes the program text (str), not {type(text).__name__}."
        )
    parser = _Parser(text)
    parser.program()
    return _build(parser)
