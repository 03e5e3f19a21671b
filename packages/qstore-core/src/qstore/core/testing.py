"""Random test inputs for backends: circuits over the whole gate table, Pauli-sum observables
and bindings.

A backend (a plugin of ours or a third party's) is tested by running the same random circuits as
a reference (the ``local`` engine, Cirq) and comparing. The circuits take every gate of the table
first, so each gate is covered, then random ones; every parameter is a constant, a per-sample
input symbol ``x_i``, an affine expression ``2 w_j - 0.3`` of a shared weight, or a product
``x_i * w_j``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> c = random_circuit(3, 40, rng)
>>> sorted(c.parameter_names)
['w0', 'w1', 'w2', 'x0', 'x1', 'x2']
>>> values, shared = random_bindings(rng, batch=2)
>>> values.shape, sorted(shared)
((2, 3), ['w0', 'w1', 'w2'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit
from qstore.core.gates import GATES
from qstore.core.observables import PauliSum, X, Y, Z, as_observable, identity
from qstore.core.parameters import Parameter

__all__ = ["INPUTS", "WEIGHTS", "random_bindings", "random_circuit", "random_observables"]

#: Symbols of the per-sample inputs and of the shared weights in :func:`random_circuit`.
INPUTS = ("x0", "x1", "x2")
WEIGHTS = ("w0", "w1", "w2")


def random_circuit(
    n_qubits: int,
    n_gates: int | None,
    rng: np.random.Generator,
    gates: Sequence[str] | None = None,
) -> UnifiedCircuit:
    """Every gate of ``gates`` (default: the whole table that fits ``n_qubits``) once, then
    random ones from it, ``n_gates`` in all (``None``: the table and 10 more)."""
    pool = list(gates or sorted(g for g, s in GATES.items() if g != "MEASURE"))
    pool = [g for g in pool if GATES[g].n_qubits <= n_qubits]
    x = [Parameter(s) for s in INPUTS]
    w = [Parameter(s) for s in WEIGHTS]
    c = UnifiedCircuit(n_qubits)
    for k in range(len(pool) + 10 if n_gates is None else n_gates):
        spec = GATES[pool[k] if k < len(pool) else rng.choice(pool)]
        qubits = [int(q) for q in rng.choice(n_qubits, spec.n_qubits, replace=False)]
        params: list[Any] = []
        for _ in range(spec.n_params):
            kind = rng.integers(4)
            if kind == 0:
                params.append(float(rng.uniform(-3, 3)))
            elif kind == 1:
                params.append(x[rng.integers(len(x))])
            elif kind == 2:
                params.append(2.0 * w[rng.integers(len(w))] - 0.3)
            else:
                params.append(x[rng.integers(len(x))] * w[rng.integers(len(w))])
        c.add_gate(spec.name, qubits, params or None)
    return c


def random_observables(
    n_qubits: int, rng: np.random.Generator, count: int = 3, max_terms: int = 3
) -> list[PauliSum]:
    """``count`` Pauli sums: a random multiple of the identity plus 1 to ``max_terms`` random
    Pauli words with normal coefficients."""
    out = []
    paulis = {"X": X, "Y": Y, "Z": Z}
    for _ in range(count):
        obs: Any = float(rng.normal()) * identity()
        for _ in range(int(rng.integers(1, max_terms + 1))):
            qs = rng.choice(n_qubits, int(rng.integers(1, n_qubits + 1)), replace=False).tolist()
            word: Any = identity()
            for q, p in zip(qs, rng.choice(list(paulis), len(qs)).tolist(), strict=True):
                word = word * paulis[p](q)
            obs = obs + float(rng.normal()) * word
        out.append(as_observable(obs, n_qubits))
    return out


def random_bindings(
    rng: np.random.Generator, batch: int = 3
) -> tuple[npt.NDArray[np.float64], dict[str, float]]:
    """Per-sample values ``[batch, len(INPUTS)]`` and shared weights for :func:`random_circuit`."""
    values = rng.uniform(-2, 2, (batch, len(INPUTS)))
    return values, {s: float(rng.uniform(-2, 2)) for s in WEIGHTS}
