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
* **Re-uploading** (``encoding='reupload'``): before *every* trainable layer ``l``, all features
  again, feature ``j`` as the angle of ``RY`` (chunks ``0, 2, 4 ...``) or ``RZ`` (odd chunks) on
  qubit ``j % n_qubits``, symbol ``x_{l}_{j}``. A layer binds column ``x_{l}_{j}`` to
  ``x_j * input_scaling[l, j % n_qubits]`` with trainable ``input_scaling [depth, n_qubits]``
  (:meth:`LayerSpec.scaling_qubits`).
* **Amplitude encoding** (``encoding='amplitude'`` of a layer): the features are the amplitudes
  of the input state (:func:`amplitude_state`), so the circuit is the trainable part only.
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
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import CircuitError, LayerConfigError, LayerInputError

ENTANGLEMENTS = ("linear", "circular", "full")
"""Entangling patterns of the trainable layers."""

ENCODINGS = ("angle", "reupload", "none")
"""Circuits of :func:`layer_circuit`: ``'angle'``, ``'reupload'`` (rotations) or ``'none'``."""

LAYER_ENCODINGS = ("angle", "reupload", "amplitude")
"""Encodings of classical features in a ``QuantumLayer`` (both frameworks)."""

MAX_LAYER_QUBITS = 30
"""Largest register a framework layer accepts (``2**30`` amplitudes per sample)."""

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
    if enc != "none":
        n_features = n if n_features is None else _check_int("n_features", n_features, 1)
    elif n_features:
        raise CircuitError(
            f"encoding='none' takes no classical features, got n_features={n_features!r}; use "
            "encoding='angle' to encode features."
        )
    else:
        n_features = 0
    if enc == "reupload":
        return _reupload_circuit(n, depth, ent, n_features)
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
        _trainable_layer(circuit, layer, pairs)
    return circuit, [f"x_{j}" for j in range(n_features)], weight_names(n, depth)


def _trainable_layer(circuit: UnifiedCircuit, layer: int, pairs: list[tuple[int, int]]) -> None:
    for q in range(circuit.n_qubits):
        circuit.add_gate("RY", q, f"w_{layer}_{q}_0")
        circuit.add_gate("RZ", q, f"w_{layer}_{q}_1")
    for c, t in pairs:
        circuit.add_gate("CNOT", [c, t])


def _reupload_circuit(
    n: int, depth: int, ent: str, n_features: int
) -> tuple[UnifiedCircuit, list[str], list[str]]:
    circuit = UnifiedCircuit(n, name=f"quantum_layer_{n}x{depth}_{ent}_reupload")
    names: list[str] = []
    pairs = entangling_pairs(n, ent)
    for layer in range(depth):
        for j in range(n_features):
            name = f"x_{layer}_{j}"
            circuit.add_gate(_CHUNK_GATES[(j // n) % len(_CHUNK_GATES)], j % n, name)
            names.append(name)
        _trainable_layer(circuit, layer, pairs)
    return circuit, names, weight_names(n, depth)


# -- the QuantumLayer of both frameworks --------------------------------------------------------


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise LayerConfigError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    key = value.lower() if isinstance(value, str) else value
    if key not in allowed:
        raise LayerConfigError(f"{name} must be one of {list(allowed)}, got {value!r}.")
    return str(key)


def check_n_qubits(n_qubits: object, what: str = "n_qubits") -> int:
    """A layer's qubit count: a positive int of at most :data:`MAX_LAYER_QUBITS`.

    >>> check_n_qubits(0)
    Traceback (most recent call last):
    ...
    qstore.core.errors.LayerConfigError: n_qubits must be a positive int, got 0.
    """
    n = _positive_int(what, n_qubits)
    if n > MAX_LAYER_QUBITS:
        raise LayerConfigError(
            f"{what}={n} is more than the {MAX_LAYER_QUBITS} qubits a state vector can hold "
            f"here (2**{n} amplitudes per sample)."
        )
    return n


@dataclass(frozen=True)
class LayerSpec:
    """The configuration of a ``QuantumLayer`` (Keras or PyTorch), validated once.

    Both frameworks build their circuits, symbols and re-upload columns from it, so the same
    configuration runs the same circuit everywhere. Invalid values raise
    :class:`~qstore.core.errors.LayerConfigError`.

    >>> spec = LayerSpec.create(2, depth=1, encoding="reupload")
    >>> spec.circuit(3)[1]
    ['x_0_0', 'x_0_1', 'x_0_2']
    >>> spec.scaling_qubits(3).tolist()  # x_0_j is x_j * input_scaling[0, j % 2]
    [0, 1, 0]
    """

    n_qubits: int
    depth: int
    entanglement: str
    encoding: str

    @classmethod
    def create(
        cls,
        n_qubits: object,
        depth: object = 2,
        entanglement: object = "linear",
        encoding: object = "angle",
    ) -> LayerSpec:
        """Validate the options (names are case-insensitive) and return the spec."""
        return cls(
            check_n_qubits(n_qubits),
            _positive_int("depth", depth),
            _choice("entanglement", entanglement, ENTANGLEMENTS),
            _choice("encoding", encoding, LAYER_ENCODINGS),
        )

    @property
    def weight_shape(self) -> tuple[int, int, int]:
        """Shape of the trainable rotation angles: ``[depth, n_qubits, 2]`` (``RY``, ``RZ``)."""
        return (self.depth, self.n_qubits, 2)

    @property
    def scaling_shape(self) -> tuple[int, int] | None:
        """Shape of ``input_scaling`` (``[depth, n_qubits]``, re-uploading only)."""
        return (self.depth, self.n_qubits) if self.encoding == "reupload" else None

    def weight_names(self) -> list[str]:
        """Symbols of the flattened weights (C order of :attr:`weight_shape`)."""
        return weight_names(self.n_qubits, self.depth)

    def circuit(self, n_features: int | None) -> tuple[UnifiedCircuit, list[str], list[str]]:
        """``(circuit, input names, weight names)`` for ``n_features`` classical features.

        ``None`` (a quantum-state input) and amplitude encoding give the trainable part only.
        """
        if n_features is None or self.encoding == "amplitude":
            return layer_circuit(self.n_qubits, self.depth, self.entanglement, "none")
        return layer_circuit(
            self.n_qubits, self.depth, self.entanglement, self.encoding, n_features
        )

    def scaling_qubits(self, n_features: int) -> npt.NDArray[np.intp]:
        """Qubit of each feature (``j % n_qubits``): re-upload column ``x_{l}_{j}`` is
        ``x_j * input_scaling[l, scaling_qubits[j]]``, columns ordered ``l`` major."""
        return np.arange(n_features, dtype=np.intp) % self.n_qubits

    def columns(
        self, x: npt.ArrayLike, input_scaling: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.float64]:
        """Binding columns ``[B, P]`` from features ``[B, F]`` (the reference the layers
        implement with their own differentiable ops)."""
        feats = np.asarray(x, dtype=np.float64)
        if self.encoding != "reupload":
            return feats
        if input_scaling is None:
            raise LayerConfigError("encoding='reupload' needs input_scaling [depth, n_qubits].")
        scale = np.asarray(input_scaling, dtype=np.float64)[:, self.scaling_qubits(feats.shape[1])]
        return (feats[:, None, :] * scale[None]).reshape(feats.shape[0], -1)


def check_amplitude_width(width: int, n_qubits: int) -> None:
    """Refuse more features than the ``2**n_qubits`` amplitudes of a register."""
    dim = 1 << n_qubits
    if width > dim:
        raise LayerInputError(
            f"{width} features do not fit in the {dim} amplitudes of {n_qubits} qubits; use "
            f"n_qubits >= {max(1, (width - 1).bit_length())} or reduce the features first "
            "(e.g. with a dense layer)."
        )


def amplitude_state(x: npt.ArrayLike, n_qubits: int) -> npt.NDArray[np.complex128]:
    """Amplitude encoding, the rule both frameworks implement: ``[B, F] -> [B, 2**n]``.

    Each row is zero-padded to ``2**n_qubits`` entries and divided by its Euclidean norm, so
    feature ``k`` is the amplitude of basis state ``|k>`` (qubit 0 the most significant bit).
    **An all-zero row becomes** ``|0...0>`` (amplitude 1 on ``|0>``) and has zero gradient: it
    carries no information, and this keeps every output a valid, finite state.

    >>> amplitude_state([[3.0, 4.0], [0.0, 0.0]], 1).real.tolist()
    [[0.6, 0.8], [1.0, 0.0]]
    """
    feats = np.asarray(x, dtype=np.float64)
    check_amplitude_width(int(feats.shape[-1]), n_qubits)
    scaled, inv_norm = amplitude_scale(feats)
    out: npt.NDArray[np.complex128] = amplitude_pad(scaled, inv_norm, n_qubits, np.complex128)
    return out


def amplitude_scale(feats: Any) -> tuple[Any, Any]:
    """``(x / |x|, 1 / |x|)`` of real features ``[B, F]`` (NumPy, in their dtype): the scaled
    rows and each row's inverse norm ``[B, 1]``, both 0 for an all-zero row (and for a row
    without a finite positive norm)."""
    norm = np.sqrt(np.einsum("bf,bf->b", feats, feats))[:, None]
    ok = norm > 0
    inv = np.divide(1.0, norm, out=np.zeros_like(norm), where=ok)
    scaled = np.divide(feats, norm, out=np.zeros_like(feats), where=ok)
    return scaled, inv


def amplitude_pad(scaled: Any, inv_norm: Any, n_qubits: int, complex_dtype: Any) -> Any:
    """States ``[B, 2**n]`` from :func:`amplitude_scale`'s rows: zero-padded, and ``|0...0>``
    where a row had no norm (``inv_norm`` 0)."""
    out = np.zeros((scaled.shape[0], 1 << n_qubits), dtype=complex_dtype)
    out.real[:, : scaled.shape[1]] = scaled
    out.real[:, 0] += inv_norm[:, 0] == 0
    return out


def amplitude_vjp(scaled: Any, inv_norm: Any, grad: Any) -> Any:
    """``d/dx`` of amplitude encoding from the gradient ``grad [B, F]`` (real) of its scaled
    rows ``s``: ``(g - s <s, g>) / |x|`` (zero for an all-zero row, whose ``inv_norm`` is 0)."""
    dot = np.einsum("bf,bf->b", grad, scaled)[:, None]
    return (grad - scaled * dot) * inv_norm
