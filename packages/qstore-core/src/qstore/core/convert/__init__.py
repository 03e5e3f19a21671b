"""Conversions between :class:`~qstore.core.UnifiedCircuit` and other circuit forms.

* :mod:`~qstore.core.convert.cirq`: ``cirq.Circuit`` (symbols as sympy symbols); needs ``[cirq]``.
* :mod:`~qstore.core.convert.qiskit`: qiskit ``QuantumCircuit`` (symbols as ``Parameter``);
  needs ``[qiskit]``.
* :mod:`~qstore.core.convert.json_schema`: the versioned JSON form (exact round trip).
* :mod:`~qstore.core.convert.qasm`: OpenQASM 2.0 export and import.

Cirq and Qiskit are optional: nothing here imports them until a conversion that needs them is
called, and a missing one raises :class:`~qstore.core.errors.MissingDependencyError` naming the
extra to install. Qubit ordering and global-phase conventions are in ``docs/conventions.md``.

>>> import qstore.core as qc
>>> from qstore.core.convert import from_json, to_json
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "theta")
>>> from_json(to_json(c)) == c
True
"""

from __future__ import annotations

from qstore.core.convert.cirq import from_cirq, to_cirq
from qstore.core.convert.json_schema import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    circuit_from_dict,
    circuit_to_dict,
    from_json,
    json_schema,
    to_json,
)
from qstore.core.convert.qasm import from_qasm, to_qasm
from qstore.core.convert.qiskit import from_qiskit, reverse_qubit_order, to_qiskit

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "circuit_from_dict",
    "circuit_to_dict",
    "from_cirq",
    "from_json",
    "from_qasm",
    "from_qiskit",
    "json_schema",
    "reverse_qubit_order",
    "to_cirq",
    "to_json",
    "to_qasm",
    "to_qiskit",
]
