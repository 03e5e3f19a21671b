"""``qstore.core``: circuits, observables, simulation, gradients and backends.

>>> import qstore.core as qc
>>> circuit = qc.UnifiedCircuit(n_qubits=2)
>>> _ = circuit.add_gate("H", targets=[0]).add_gate("CNOT", targets=[0, 1])
"""

from __future__ import annotations

from qstore.core import backends, compilers, datasets, errors, gradients, routing, stores
from qstore.core.backends.base import Capabilities, ExecutionResult
from qstore.core.backends.selection import SimulationBackendManager
from qstore.core.circuit import Operation, UnifiedCircuit
from qstore.core.errors import BudgetExceededError, QStoreError
from qstore.core.gates import GATES, GateSpec, GateType, get_gate
from qstore.core.observables import PauliString, PauliSum, X, Y, Z
from qstore.core.parameters import Expression, Parameter, symbols
from qstore.core.routing import CostTracker, SmartBackendRouter
from qstore.core.stores import QuantumStateStore

__version__ = "4.0.0a1"

__all__ = [
    "GATES",
    "BudgetExceededError",
    "Capabilities",
    "CostTracker",
    "ExecutionResult",
    "Expression",
    "GateSpec",
    "GateType",
    "Operation",
    "Parameter",
    "PauliString",
    "PauliSum",
    "QStoreError",
    "QuantumStateStore",
    "SimulationBackendManager",
    "SmartBackendRouter",
    "UnifiedCircuit",
    "X",
    "Y",
    "Z",
    "__version__",
    "backends",
    "compilers",
    "datasets",
    "errors",
    "get_gate",
    "gradients",
    "routing",
    "stores",
    "symbols",
]
