"""Lowering of a circuit template to PennyLane operations that Lightning applies natively.

Done once per template: every Q-Store gate becomes one or a few Lightning gates, each with at
most one parameter that is an affine function ``scale * theta[g] + offset`` of a single gate
parameter (see :mod:`qstore.core.backends.plugin`). Binding a batch computes an
``[B, J]`` matrix of operation parameters; gates without a bound parameter are built once and
shared by every tape.

The decompositions are exact, global phase included (``SDG = PhaseShift(-pi/2)``,
``SXDG = H SDG H``, ``U3(t, f, l) = P(f) RY(t) P(l)``, ``GPI(f) = RZ(f) X RZ(-f)``,
``GPI2(f) = RZ(f) RX(pi/2) RZ(-f)``, ``MS(f0, f1, t) = (RZ(f0) x RZ(f1)) IsingXX(t)
(RZ(-f0) x RZ(-f1))``). PennyLane, like Q-Store, puts wire 0 in the most significant bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from qstore.core.backends.plugin import FloatArray, affine_parameters, lower_template
from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import BackendError

PARAMETRIC = frozenset(
    {"RX", "RY", "RZ", "PhaseShift", "CRX", "CRY", "CRZ", "IsingXX", "IsingYY", "IsingZZ"}
)


@dataclass(frozen=True)
class LightningOp:
    """One PennyLane operation ``name`` on ``wires``; parametric ones take
    ``scale * theta[col] + offset`` (``col = -1``: the fixed ``offset``)."""

    name: str
    wires: tuple[int, ...]
    col: int = -1
    scale: float = 1.0
    offset: float = 0.0

    @property
    def parametric(self) -> bool:
        return self.name in PARAMETRIC

    @property
    def bound(self) -> bool:
        return self.parametric and self.col >= 0


_FIXED = {
    "H": "Hadamard",
    "X": "PauliX",
    "Y": "PauliY",
    "Z": "PauliZ",
    "S": "S",
    "T": "T",
    "SX": "SX",
    "CNOT": "CNOT",
    "CZ": "CZ",
    "SWAP": "SWAP",
    "CCX": "Toffoli",
}
_ONE_PARAM = {
    "RX": "RX",
    "RY": "RY",
    "RZ": "RZ",
    "P": "PhaseShift",
    "CRX": "CRX",
    "CRY": "CRY",
    "CRZ": "CRZ",
    "RXX": "IsingXX",
    "RYY": "IsingYY",
    "RZZ": "IsingZZ",
    "ZZ": "IsingZZ",
}


def lower_gate(gate: str, wires: tuple[int, ...], cols: Sequence[int]) -> list[LightningOp]:
    """The Lightning operations for ``gate`` on ``wires`` with parameters in theta ``cols``."""
    if gate == "I":
        return []
    if gate in _FIXED:
        return [LightningOp(_FIXED[gate], wires)]
    if gate in _ONE_PARAM:
        return [LightningOp(_ONE_PARAM[gate], wires, cols[0])]
    if gate == "SDG":
        return [LightningOp("PhaseShift", wires, offset=-math.pi / 2)]
    if gate == "TDG":
        return [LightningOp("PhaseShift", wires, offset=-math.pi / 4)]
    if gate == "SXDG":
        return [
            LightningOp("Hadamard", wires),
            LightningOp("PhaseShift", wires, offset=-math.pi / 2),
            LightningOp("Hadamard", wires),
        ]
    if gate == "U3":  # U3(t, f, l) = P(f) RY(t) P(l): P(l) acts first
        t, f, lam = cols
        return [
            LightningOp("PhaseShift", wires, lam),
            LightningOp("RY", wires, t),
            LightningOp("PhaseShift", wires, f),
        ]
    if gate in ("GPI", "GPI2"):  # RZ(f) M RZ(-f), M = X or RX(pi/2)
        (f,) = cols
        middle = (
            LightningOp("PauliX", wires)
            if gate == "GPI"
            else LightningOp("RX", wires, offset=math.pi / 2)
        )
        return [LightningOp("RZ", wires, f, -1.0), middle, LightningOp("RZ", wires, f)]
    if gate == "MS":  # (RZ(f0) x RZ(f1)) IsingXX(t) (RZ(-f0) x RZ(-f1))
        a, b = wires
        f0, f1, t = cols
        return [
            LightningOp("RZ", (a,), f0, -1.0),
            LightningOp("RZ", (b,), f1, -1.0),
            LightningOp("IsingXX", wires, t),
            LightningOp("RZ", (a,), f0),
            LightningOp("RZ", (b,), f1),
        ]
    raise BackendError(f"The lightning backends have no lowering for gate {gate!r}.")


def lower_circuit(
    circuit: UnifiedCircuit, slots: Sequence[Sequence[int]]
) -> tuple[LightningOp, ...]:
    """All Lightning operations of ``circuit`` (measurements dropped); ``slots`` as in
    ParameterMap."""
    return lower_template(circuit, slots, lower_gate)


def parameter_matrix(ops: Sequence[LightningOp], theta: FloatArray) -> FloatArray:
    """Parameters ``[B, J]`` of the bound operations, in op order."""
    return affine_parameters([o for o in ops if o.bound], theta)
