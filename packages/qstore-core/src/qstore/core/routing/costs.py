"""Estimates the router scores with: a job's cost, its circuits, its precision.

Every figure comes from what the backend declares or measures:

* **cost**: the backend's own ``estimate_cost(circuit, shots, n_circuits)`` when it has one
  (``qstore-ionq`` prices native gate counts from its price table), otherwise its
  ``capabilities.cost`` model (:class:`~qstore.core.backends.base.CostModel`), split into jobs of
  at most ``max_circuits_per_job`` circuits when the backend declares that limit;
* **circuits**: one per binding and per measurement basis that the observables need (terms with
  ``X`` or ``Y`` are measured in rotated bases, as hardware does);
* **precision** (0..1): ``1`` for exact expectations; with ``S`` shots the standard error of a
  ``<Z>`` estimate is at most ``1/sqrt(S)``, so ``1 - 1/sqrt(S)``; on a backend that is not exact
  (hardware, noisy simulation) that is multiplied by the circuit's estimated fidelity
  ``(1 - e1)^n1 (1 - e2)^n2`` from its one- and two-qubit gate counts, with the gate errors the
  backend declares in ``capabilities.extra`` (``error_1q``, ``error_2q``) or, when it declares
  none, :data:`DEFAULT_GATE_ERRORS` (said so in the reasons).

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
>>> caps = qc.backends.get("local").capabilities
>>> estimate_precision(caps, c, None)[0], round(estimate_precision(caps, c, 100)[0], 3)
(1.0, 0.9)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from qstore.core.backends.base import Capabilities
from qstore.core.circuit import UnifiedCircuit
from qstore.core.observables import PauliSum, as_observables

__all__ = [
    "DEFAULT_GATE_ERRORS",
    "DEFAULT_SHOTS",
    "circuit_gate_counts",
    "effective_shots",
    "estimate_job_cost",
    "estimate_precision",
    "measurement_bases",
]

DEFAULT_GATE_ERRORS = (1e-3, 1e-2)
"""One- and two-qubit gate errors assumed for a noisy backend that declares none: the order
of published figures for current trapped-ion and superconducting devices."""

DEFAULT_SHOTS = 1000
"""Shots assumed for a sampling backend that declares no default (``backend.shots``)."""


def circuit_gate_counts(circuit: UnifiedCircuit) -> tuple[int, int]:
    """``(one-qubit gates, multi-qubit gates)``, measurements excluded."""
    n1 = n2 = 0
    for op in circuit.operations:
        if op.is_measurement:
            continue
        if len(op.qubits) == 1:
            n1 += 1
        else:
            n2 += 1
    return n1, n2


def measurement_bases(observables: Any, n_qubits: int) -> int:
    """How many measurement settings the observables need on hardware (``Z``-only: one).

    >>> import qstore.core as qc
    >>> measurement_bases([qc.Z(0), qc.X(0), qc.X(0) * qc.Z(1)], 2)
    2
    """
    obs: Sequence[PauliSum] = as_observables(observables, n_qubits)
    # Z-only terms share the computational basis (no rotation); identity terms need none.
    bases = {
        tuple((q, p) for q, p in term.paulis if p in "XY")
        for ps in obs
        for term in ps.terms
        if term.paulis
    }
    return max(1, len(bases))


def effective_shots(backend: Any, shots: int | None) -> int | None:
    """The shots an execution runs with: ``shots`` on a sampling backend; for ``None``, exact
    (``None``) on an exact backend, else the backend's default shots."""
    caps: Capabilities = backend.capabilities
    if shots is not None:
        return int(shots) if caps.shots else None
    if caps.exact:
        return None
    default = getattr(backend, "shots", None)
    return int(default) if isinstance(default, int) and default > 0 else DEFAULT_SHOTS


def estimate_job_cost(
    backend: Any, circuit: UnifiedCircuit, shots: int | None, n_circuits: int = 1
) -> float:
    """Dollars for running ``circuit`` ``n_circuits`` times (one call) on ``backend``."""
    if n_circuits <= 0:
        return 0.0
    caps: Capabilities = backend.capabilities
    own = getattr(backend, "estimate_cost", None)
    limit = getattr(backend, "max_circuits_per_job", None)
    per_job = int(limit) if isinstance(limit, int) and limit > 0 else n_circuits
    full, rest = divmod(n_circuits, per_job)
    sizes = [per_job] * full + ([rest] if rest else [])
    if callable(own):
        costs = {k: float(own(circuit, shots=shots, n_circuits=k)) for k in set(sizes)}
        return math.fsum(costs[k] for k in sizes)
    if caps.cost.is_free:
        return 0.0
    s = effective_shots(backend, shots) or DEFAULT_SHOTS
    n_gates = sum(1 for op in circuit.operations if not op.is_measurement)
    return caps.cost.estimate(s, n_gates, n_tasks=n_circuits)


def estimate_precision(
    caps: Capabilities, circuit: UnifiedCircuit, shots: int | None
) -> tuple[float, str]:
    """``(precision in [0, 1], how it was obtained)`` for one expectation (see the module)."""
    if shots is None:
        if caps.exact:
            return 1.0, "exact expectations"
        shots = DEFAULT_SHOTS
    sampling = 1.0 - 1.0 / math.sqrt(shots)
    if caps.exact:
        return sampling, f"{shots} shots (standard error <= {1 / math.sqrt(shots):.3f})"
    e1 = caps.extra.get("error_1q")
    e2 = caps.extra.get("error_2q")
    declared = isinstance(e1, (int, float)) and isinstance(e2, (int, float))
    if not declared:
        e1, e2 = DEFAULT_GATE_ERRORS
    n1, n2 = circuit_gate_counts(circuit)
    fidelity = (1.0 - float(e1)) ** n1 * (1.0 - float(e2)) ** n2  # type: ignore[arg-type]
    how = "declared" if declared else "assumed (none declared)"
    return (
        sampling * fidelity,
        f"{shots} shots on a noisy device: estimated circuit fidelity {fidelity:.3f} from "
        f"{n1} one-qubit and {n2} two-qubit gates, gate errors {e1:g}/{e2:g} {how}",
    )
