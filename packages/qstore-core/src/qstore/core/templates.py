"""Circuit templates shared by the framework layers (``qstore.tf``, ``qstore.torch``).

:func:`layer_circuit` builds the circuit behind ``QuantumLayer(n_qubits, depth, entanglement)``:

* **Angle encoding** (``encoding='angle'``): feature ``j`` is the angle of a rotation on qubit
  ``j % n_qubits``, symbol ``x_{j}``. Features come in *chunks* of ``n_qubits`` (chunk ``c`` holds
  features ``c*n .. c*n + n - 1``; a short last chunk leaves its remaining qubits alone). With
  ``C`` chunks and ``depth`` trainable layers, chunk ``c`` is uploaded right before trainable layer
  ``floor(c * depth / C)``, so the data is spread evenly through the circuit (data re-uploading).
  When several chunks land before the same layer (more than ``depth`` chunks), they alternate
  ``RY``, ``RZ``, ``RY``, ... so that consecutive angles are not simply added up. With at most
  ``n_qubits`` features this is the plain ``RY(x_i)`` encoding.
* **No encoding** (``encoding='none'``): only the trainable layers, for a layer that evolves a
  given quantum state (state in, state out).
* **Trainable layer** ``l``: ``RY(w_{l}_{q}_0)`` then ``RZ(w_{l}_{q}_1)`` on every qubit ``q``,
  then CNOTs: ``'linear'`` — ``(0,1), (1,2), ..., (n-2,n-1)``; ``'circular'`` — the linear chain
  and ``(n-1, 0)`` (for ``n > 2``); ``'full'`` — ``(i, j)`` for every ``i < j`` in lexicographic
  order. Weight symbols flatten a ``[depth, n_qubits, 2]`` array in C order.

With ``n_features == n_qubits`` the circuit is the reference workload of ``PERF.md``.

>>> c, inputs, weights = layer_circuit(2, depth=1)
>>> [str(op) for op in c]  # doctest: +NORMALIZE_WHITESPACE
['RY(x_0) [0]', 'RY(x_1) [1]', 'RY(w_0_0_0) [0]', 'RZ(w_0_0_1) [0]', 'RY(w_0_1_0) [1]',
 'RZ(w_0_1_1) [1]', 'CNOT [0, 1]']
>>> inputs, weights
(['x_0', 'x_1'], ['w_0_0_0', 'w_0_0_1', 'w_0_1_0', 'w_0_1_1'])
"""

from __future__ import annotations

import math
import numbers

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import CircuitError

ENTANGLEMENTS = ("linear", "circular", "full")
"""Entangling patterns of the trainable layers."""

ENCODINGS = ("angle", "none")
"""Encodings of classical features: ``'angle'`` (rotations) or ``'none'`` (state input)."""

_CHUNK_GATES = ("RY", "RZ")


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise CircuitError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


def check_entanglement(entanglement: str) -> str:
    """Validate an entanglement name (case-insensitive); returns its canonical form."""
    key = str(entanglement).lower()
    if key not in ENTANGLEMENTS:
        raise CircuitError(
            f"Unknown entanglement {entanglement!r}; use one of {', '.join(ENTANGLEMENTS)}."
        )
    return key


def check_encoding(encoding: str | None) -> str:
    """Validate an encoding name (``None`` means ``'none'``); returns its canonical form."""
    key = "none" if encoding is None else str(encoding).lower()
    if key not in ENCODINGS:
        raise CircuitError(f"Unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}.")
    return key


def entangling_pairs(n_qubits: int, entanglement: str) -> list[tuple[int, int]]:
    """The (control, target) CNOT pairs of one trainable layer."""
    key = check_entanglement(entanglement)
    chain = [(i, i + 1) for i in range(n_qubits - 1)]
    if key == "linear":
        return chain
    if key == "circular":
        return [*chain, (n_qubits - 1, 0)] if n_qubits > 2 else chain
    return [(i, j) for i in range(n_qubits) for j in range(i + 1, n_qubits)]


def upload_schedule(n_features: int, n_qubits: int, depth: int) -> list[list[int]]:
    """Chunks uploaded before each trainable layer: ``schedule[l]`` lists chunk indices."""
    n_chunks = math.ceil(n_features / n_qubits) if n_features else 0
    schedule: list[list[int]] = [[] for _ in range(depth)]
    for c in range(n_chunks):
        schedule[c * depth // n_chunks].append(c)
    return schedule


def weight_names(n_qubits: int, depth: int) -> list[str]:
    """Symbols of the trainable weights, flattening ``[depth, n_qubits, 2]`` in C order."""
    return [f"w_{layer}_{q}_{k}" for layer in range(depth) for q in range(n_qubits) for k in (0, 1)]


def layer_circuit(
    n_qubits: int,
    depth: int = 2,
    entanglement: str = "linear",
    encoding: str | None = "angle",
    n_features: int | None = None,
) -> tuple[UnifiedCircuit, list[str], list[str]]:
    """The ``QuantumLayer`` circuit: ``(circuit, input symbol names, weight symbol names)``.

    ``n_features`` defaults to ``n_qubits`` for the angle encoding and must be 0 (or ``None``)
    without encoding. See the module docstring for the exact layout.
    """
    n = _check_int("n_qubits", n_qubits, 1)
    depth = _check_int("depth", depth, 1)
    ent = check_entanglement(entanglement)
    enc = check_encoding(encoding)
    if enc == "angle":
        n_features = n if n_features is None else _check_int("n_features", n_features, 1)
    elif n_features:
        raise CircuitError(
            f"encoding='none' takes no classical features, got n_features={n_features!r}; use "
            "encoding='angle' to encode features."
        )
    else:
        n_features = 0
    circuit = UnifiedCircuit(n, name=f"quantum_layer_{n}x{depth}_{ent}")
    schedule = upload_schedule(n_features, n, depth)
    pairs = entangling_pairs(n, ent)
    for layer in range(depth):
        for k, chunk in enumerate(schedule[layer]):
            gate = _CHUNK_GATES[k % len(_CHUNK_GATES)]
            for q in range(n):
                j = chunk * n + q
                if j < n_features:
                    circuit.add_gate(gate, q, f"x_{j}")
        for q in range(n):
            circuit.add_gate("RY", q, f"w_{layer}_{q}_0")
            circuit.add_gate("RZ", q, f"w_{layer}_{q}_1")
        for c, t in pairs:
            circuit.add_gate("CNOT", [c, t])
    return circuit, [f"x_{j}" for j in range(n_features)], weight_names(n, depth)
