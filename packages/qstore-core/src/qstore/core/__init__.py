"""``qstore.core``: circuits, observables, simulation, gradients and backends.

>>> import qstore.core as qc
>>> circuit = qc.UnifiedCircuit(n_qubits=2)
>>> _ = circuit.add_gate("H", targets=[0]).add_gate("CNOT", targets=[0, 1])
"""

from __future__ import annotations

from qstore.core.circuit import Operation, UnifiedCircuit
from qstore.core.errors import QStoreError
from qstore.core.gates import GATES, GateSpec, GateType, get_gate
from qstore.core.parameters import Expression, Parameter, symbols

__version__ = "4.0.0a1"

__all__ = [
    "GATES",
    "Expression",
    "GateSpec",
    "GateType",
    "Operation",
    "Parameter",
    "QStoreError",
    "UnifiedCircuit",
    "__version__",
    "get_gate",
    "symbols",
]
