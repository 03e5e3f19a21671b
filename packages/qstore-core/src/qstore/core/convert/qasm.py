"""OpenQASM 2.0 export of bound circuits (``include "qelib1.inc"``).

Gates of the paper's ``qelib1.inc`` (``h``, ``cx``, ``rx``, ``u3``, ``crz``, ``ccx`` ...) are
used directly; P is written as ``u1``. The other gates (``sx``, ``sxdg``, ``swap``, ``crx``,
``cry``, ``rxx``, ``ryy``, ``rzz`` and the IonQ natives ``gpi``, ``gpi2``, ``ms``, ``zz``, in
radians) get a ``gate`` definition in terms of ``qelib1.inc`` gates, written only when used.
Read with Qiskit's reading of ``qelib1.inc`` (``qiskit.qasm2.loads``, with or without
``LEGACY_CUSTOM_INSTRUCTIONS``), the program has exactly ``circuit.unitary()`` (bit order
reversed, as for any Qiskit circuit). OpenQASM 2 itself defines gates only up to a global
phase; see ``docs/conventions.md``.

Measurements write to one ``creg`` per measurement key (bit ``j`` = ``j``-th measured qubit).
Numbers are written with Python's shortest exact ``repr``, so they read back bit for bit.

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
"""

from __future__ import annotations

import re

from qstore.core.circuit import UnifiedCircuit

__all__ = ["to_qasm"]

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


def to_qasm(circuit: UnifiedCircuit) -> str:
    """OpenQASM 2.0 text of ``circuit``; symbols must be bound first.

    Raises :class:`~qstore.core.errors.UnboundParameterError` for a symbolic parameter.
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
        values = op.numeric_params()  # raises UnboundParameterError
        name = _NAMES[op.gate]
        used.add(name)
        args = f"({','.join(_number(v) for v in values)})" if values else ""
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
