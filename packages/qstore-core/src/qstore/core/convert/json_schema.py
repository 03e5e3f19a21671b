"""The versioned JSON form of a circuit: ``{"schema": "qstore.circuit", "version": 1, ...}``.

The round trip is exact: every number is written with Python's shortest exact ``repr`` and
expressions keep their symbols, so ``from_json(to_json(c)) == c`` for every circuit. The JSON
Schema document that describes the format ships next to this module
(``circuit.schema.json``; :func:`json_schema` loads it).

Layout (version 1)::

    {
        "schema": "qstore.circuit",
        "version": 1,
        "n_qubits": 2,
        "name": null,
        "operations": [
            {"gate": "H", "qubits": [0], "params": [], "key": null},
            {
                "gate": "RY",
                "qubits": [1],
                "params": [{"constant": 0.1, "terms": [{"symbols": ["theta"], "coeff": 2.0}]}],
                "key": null,
            },
            {"gate": "MEASURE", "qubits": [0, 1], "params": [], "key": "m"},
        ],
    }

Readers also accept a plain number (a constant) or a string (one symbol) for a parameter.
Anything else that is malformed raises :class:`~qstore.core.errors.SerializationError` naming
the place (``operations[3].qubits[1]``), the bad value and what is allowed.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(2).add_gate("CNOT", [0, 1]).measure()
>>> from_json(to_json(c)) == c
True
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any, NoReturn

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import QStoreError, SerializationError
from qstore.core.gates import GATES, canonical_name
from qstore.core.parameters import Expression, Parameter

SCHEMA_NAME = "qstore.circuit"
SCHEMA_VERSION = 1

_TOP_FIELDS = {"schema", "version", "n_qubits", "name", "operations"}
_OP_FIELDS = {"gate", "qubits", "params", "key"}
_EXPR_FIELDS = {"constant", "terms"}
_TERM_FIELDS = {"symbols", "coeff"}


def circuit_to_dict(circuit: UnifiedCircuit) -> dict[str, Any]:
    """The JSON-ready ``dict`` of ``circuit`` (see the module docstring for the layout)."""
    return {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "n_qubits": circuit.n_qubits,
        "name": circuit.name,
        "operations": [
            {
                "gate": op.gate,
                "qubits": list(op.qubits),
                "params": [p.to_dict() for p in op.params],
                "key": op.key,
            }
            for op in circuit
        ],
    }


def to_json(circuit: UnifiedCircuit, indent: int | None = None) -> str:
    """Serialise ``circuit`` to JSON text in the versioned schema (exact round trip).

    >>> import qstore.core as qc
    >>> to_json(qc.UnifiedCircuit(1).add_gate("X", 0))[:45]
    '{"schema": "qstore.circuit", "version": 1, "n'
    """
    return json.dumps(circuit_to_dict(circuit), indent=indent, allow_nan=False)


def _reject_constant(token: str) -> NoReturn:
    raise SerializationError(
        f"Invalid Q-Store circuit JSON: the number {token} is not finite; every number in a "
        "circuit must be a finite real (write the value out, or bind the symbol first)."
    )


def from_json(data: str | bytes | bytearray | Mapping[str, Any]) -> UnifiedCircuit:
    """Read a circuit from JSON text (``str``/``bytes``) or from an already parsed ``dict``.

    Raises :class:`~qstore.core.errors.SerializationError` for malformed input, an unknown
    schema or version, unknown gates, wrong arity, bad qubits and non-finite numbers.
    """
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SerializationError(
                f"Invalid Q-Store circuit JSON: the bytes are not UTF-8 ({exc}); pass the text "
                "produced by to_json()."
            ) from exc
    if isinstance(data, str):
        try:
            parsed = json.loads(data, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise SerializationError(
                f"Invalid Q-Store circuit JSON: not valid JSON ({exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}); pass the text produced by to_json()."
            ) from exc
        return circuit_from_dict(parsed)
    if isinstance(data, Mapping):
        return circuit_from_dict(data)
    raise SerializationError(
        f"from_json() takes JSON text (str or bytes) or a dict, not {type(data).__name__}."
    )


# -- validation ----------------------------------------------------------------------------------


def _fail(path: str, message: str) -> NoReturn:
    raise SerializationError(f"Invalid Q-Store circuit JSON at {path}: {message}")


def _check_fields(obj: Mapping[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(str(k) for k in obj if k not in allowed)
    if extra:
        _fail(path, f"unknown field(s) {extra}; allowed fields are {sorted(allowed)}.")


def _int(value: Any, path: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(path, f"{what} must be an integer, got {value!r}.")
    return int(value)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(path, f"expected a number, got {value!r}.")
    v = float(value)
    if not math.isfinite(v):
        _fail(path, f"the number {value!r} is not finite; numbers must be finite reals.")
    return v


def _symbol(value: Any, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, f"a symbol name must be a string, got {value!r}.")
    try:
        Parameter(value)
    except QStoreError as exc:
        _fail(path, str(exc))
    return value


def _expression(value: Any, path: str) -> Expression:
    if isinstance(value, str):
        return Parameter(_symbol(value, path))
    if isinstance(value, (bool, numbers.Real)):
        return Expression((), _number(value, path))  # _number rejects booleans
    if not isinstance(value, Mapping):
        _fail(
            path,
            f"a parameter must be a number, a symbol name or an object "
            f'{{"constant": ..., "terms": [...]}}, got {value!r}.',
        )
    _check_fields(value, _EXPR_FIELDS, path)
    constant = _number(value.get("constant", 0.0), f"{path}.constant")
    terms_raw = value.get("terms", [])
    if not isinstance(terms_raw, list):
        _fail(f"{path}.terms", f"expected a list of terms, got {terms_raw!r}.")
    terms: list[dict[str, Any]] = []
    for j, term in enumerate(terms_raw):
        tpath = f"{path}.terms[{j}]"
        if not isinstance(term, Mapping):
            _fail(
                tpath, f'a term must be an object {{"symbols": [...], "coeff": ...}}, got {term!r}.'
            )
        _check_fields(term, _TERM_FIELDS, tpath)
        if "symbols" not in term or "coeff" not in term:
            _fail(tpath, 'a term needs both "symbols" and "coeff".')
        syms = term["symbols"]
        if not isinstance(syms, list) or not syms:
            _fail(f"{tpath}.symbols", f"expected a non-empty list of symbol names, got {syms!r}.")
        names = [_symbol(s, f"{tpath}.symbols[{k}]") for k, s in enumerate(syms)]
        terms.append({"symbols": names, "coeff": _number(term["coeff"], f"{tpath}.coeff")})
    return Expression.from_dict({"constant": constant, "terms": terms})


def _operation(circuit: UnifiedCircuit, op: Any, path: str) -> None:
    if not isinstance(op, Mapping):
        _fail(path, f"an operation must be an object, got {op!r}.")
    _check_fields(op, _OP_FIELDS, path)
    if "gate" not in op:
        _fail(path, 'missing "gate".')
    gate_raw = op["gate"]
    if not isinstance(gate_raw, str):
        _fail(f"{path}.gate", f"the gate must be a name (string), got {gate_raw!r}.")
    try:
        gate = canonical_name(gate_raw)
    except QStoreError:
        known = ", ".join([*sorted(GATES), "MEASURE"])
        _fail(f"{path}.gate", f"unknown gate {gate_raw!r}; known gates are {known}.")
    qubits_raw = op.get("qubits")
    if not isinstance(qubits_raw, list) or not qubits_raw:
        _fail(f"{path}.qubits", f"expected a non-empty list of qubit indices, got {qubits_raw!r}.")
    n = circuit.n_qubits
    qubits: list[int] = []
    for k, q in enumerate(qubits_raw):
        qi = _int(q, f"{path}.qubits[{k}]", "a qubit index")
        if not 0 <= qi < n:
            _fail(
                f"{path}.qubits[{k}]",
                f"qubit {qi} is out of range for n_qubits={n}; use 0 .. {n - 1}.",
            )
        if qi in qubits:
            _fail(f"{path}.qubits", f"qubit {qi} appears twice in {qubits_raw!r}.")
        qubits.append(qi)
    params_raw = op.get("params", [])
    if not isinstance(params_raw, list):
        _fail(f"{path}.params", f"expected a list of parameters, got {params_raw!r}.")
    key = op.get("key")
    if gate == "MEASURE":
        if params_raw:
            _fail(f"{path}.params", f"MEASURE takes no parameters, got {params_raw!r}.")
        if not isinstance(key, str) or not key:
            _fail(f"{path}.key", f"a measurement needs a non-empty string key, got {key!r}.")
        circuit.measure(qubits, key=key)
        return
    spec = GATES[gate]
    if key is not None:
        _fail(f"{path}.key", f"only MEASURE has a key; gate {gate} got key {key!r} (use null).")
    if len(qubits) != spec.n_qubits:
        _fail(
            f"{path}.qubits",
            f"gate {gate} acts on {spec.n_qubits} qubit(s), got {len(qubits)}: {qubits_raw!r}.",
        )
    if len(params_raw) != spec.n_params:
        _fail(
            f"{path}.params",
            f"gate {gate} takes {spec.n_params} parameter(s) {list(spec.param_names)}, "
            f"got {len(params_raw)}.",
        )
    params = [_expression(p, f"{path}.params[{k}]") for k, p in enumerate(params_raw)]
    circuit.add_gate(gate, qubits, params)


def circuit_from_dict(data: Mapping[str, Any]) -> UnifiedCircuit:
    """Build a circuit from a parsed JSON ``dict``, validating all of it (see :func:`from_json`)."""
    if not isinstance(data, Mapping):
        _fail("top level", f"expected a JSON object, got {type(data).__name__}.")
    schema = data.get("schema")
    if schema != SCHEMA_NAME:
        _fail(
            "schema",
            f"expected {SCHEMA_NAME!r}, got {schema!r}; this is not a Q-Store circuit document.",
        )
    version = _int(data.get("version"), "version", "the schema version")
    if version > SCHEMA_VERSION:
        _fail(
            "version",
            f"version {version} is newer than this qstore-core understands (up to "
            f"{SCHEMA_VERSION}); upgrade qstore-core to read it.",
        )
    if version < 1:
        _fail("version", f"version {version} does not exist; versions start at 1.")
    _check_fields(data, _TOP_FIELDS, "top level")
    n_qubits = _int(data.get("n_qubits"), "n_qubits", "n_qubits")
    if n_qubits < 1:
        _fail("n_qubits", f"a circuit needs at least 1 qubit, got {n_qubits}.")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        _fail("name", f"the name must be a string or null, got {name!r}.")
    ops = data.get("operations", [])
    if not isinstance(ops, list):
        _fail("operations", f"expected a list of operations, got {ops!r}.")
    circuit = UnifiedCircuit(n_qubits, name=name)
    for i, op in enumerate(ops):
        _operation(circuit, op, f"operations[{i}]")
    return circuit


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("qstore.core.convert").joinpath("circuit.schema.json").read_text("utf-8")


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) document of the current circuit format.

    >>> json_schema()["properties"]["schema"]["const"]
    'qstore.circuit'
    """
    out: dict[str, Any] = json.loads(_schema_text())
    return out
