"""The v3.5 ``QuantumLayer`` as a Q-Store 4 circuit.

The circuit is the one v3.5 built, written once as a parameterised
:class:`~qstore.core.UnifiedCircuit` and run on batches by any Q-Store 4 backend:

* **Encoding**: feature ``i`` (for ``i < min(n_qubits, n_features)``; further features are
  ignored, as in v3.5) is the angle of ``RY(π·x_i)`` on qubit ``i``, symbol ``x_{i}``.
* **Variational layer** ``l`` (``depth`` of them): on every qubit ``q``, ``RX``, ``RY``, ``RZ``
  (v3.5's standard layer, 3 angles per qubit) or ``RY``, ``RZ`` (``hardware_efficient=True``,
  2 angles), symbols ``theta_{k}`` numbering the flat v3.5 parameter vector; then CNOTs:
  ``'linear'`` ``(0,1), (1,2) …``; ``'circular'`` the chain and ``(n-1, 0)``; ``'full'`` every
  ``(i, j)``, ``i < j``.
* **Readout**: ⟨Z_q⟩ per qubit (``measurement_basis='hadamard'``: ⟨X_q⟩, what v3.5's Hadamard
  before measurement gave).

>>> circuit, inputs, weights = layer_circuit(2, depth=1, n_features=2)
>>> [str(op) for op in circuit][:4]  # doctest: +NORMALIZE_WHITESPACE
['RY(3.141592653589793*x_0) [0]', 'RY(3.141592653589793*x_1) [1]',
 'RX(theta_0) [0]', 'RY(theta_1) [0]']
>>> inputs, len(weights)
(['x_0', 'x_1'], 6)
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.compat.v3_5.backends import as_backend
from qstore.compat.v3_5.config import ENTANGLEMENTS
from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import QStoreError
from qstore.core.observables import PauliSum, X, Z
from qstore.core.parameters import Parameter

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

MEASUREMENT_BASES = ("computational", "hadamard")


class CompatModelError(QStoreError, ValueError):
    """A v3.5 model or layer got an invalid argument, input or state."""


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise CompatModelError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def seeded_rng(seed: int | None) -> np.random.Generator:
    """A generator from ``seed``; without one, seeded from NumPy's global generator, so that
    ``np.random.seed(...)`` makes a v3.5 script repeatable as it did in v3.5."""
    if seed is None:
        seed = int(np.random.randint(2**31))
    return np.random.default_rng(seed)


def entangling_pairs(n_qubits: int, entanglement: str) -> list[tuple[int, int]]:
    """v3.5's CNOT (control, target) pairs of one layer."""
    chain = [(i, i + 1) for i in range(n_qubits - 1)]
    if entanglement == "linear":
        return chain
    if entanglement == "circular":
        return [*chain, (n_qubits - 1, 0)] if n_qubits > 1 else []
    return [(i, j) for i in range(n_qubits) for j in range(i + 1, n_qubits)]


def rotations_per_qubit(hardware_efficient: bool) -> tuple[str, ...]:
    """The trainable rotations of one qubit in one layer."""
    return ("RY", "RZ") if hardware_efficient else ("RX", "RY", "RZ")


@lru_cache(maxsize=64)
def _cached_circuit(
    n_qubits: int, depth: int, n_features: int, entanglement: str, hardware_efficient: bool
) -> tuple[UnifiedCircuit, tuple[str, ...], tuple[str, ...]]:
    n_enc = min(n_qubits, n_features)
    circuit = UnifiedCircuit(n_qubits, name=f"v3_5_layer_{n_qubits}x{depth}_{entanglement}")
    inputs = tuple(f"x_{i}" for i in range(n_enc))
    for q, name in enumerate(inputs):
        circuit.add_gate("RY", q, math.pi * Parameter(name))
    gates = rotations_per_qubit(hardware_efficient)
    pairs = entangling_pairs(n_qubits, entanglement)
    k = 0
    for _ in range(depth):
        for q in range(n_qubits):
            for gate in gates:
                circuit.add_gate(gate, q, f"theta_{k}")
                k += 1
        for c, t in pairs:
            circuit.add_gate("CNOT", [c, t])
    return circuit, inputs, tuple(f"theta_{i}" for i in range(k))


def layer_circuit(
    n_qubits: int,
    depth: int,
    n_features: int,
    entanglement: str = "linear",
    hardware_efficient: bool = False,
) -> tuple[UnifiedCircuit, list[str], list[str]]:
    """``(circuit, input symbols, weight symbols)`` of the v3.5 layer (module docstring).

    The circuit is a fresh copy: callers may change it.
    """
    n = _positive_int("n_qubits", n_qubits)
    d = _positive_int("depth", depth)
    f = _positive_int("n_features", n_features)
    ent = entanglement.lower() if isinstance(entanglement, str) else entanglement
    if ent not in ENTANGLEMENTS:
        raise CompatModelError(
            f"entanglement must be one of {list(ENTANGLEMENTS)}, got {entanglement!r}."
        )
    circuit, inputs, weights = _cached_circuit(n, d, f, str(ent), bool(hardware_efficient))
    copy = UnifiedCircuit(circuit.n_qubits, name=circuit.name)
    for op in circuit:
        copy.append(op)
    return copy, list(inputs), list(weights)


def readout(n_qubits: int, measurement_basis: str = "computational") -> list[PauliSum]:
    """⟨Z_q⟩ (or ⟨X_q⟩ for ``'hadamard'``) for every qubit, in qubit order."""
    pauli = X if measurement_basis == "hadamard" else Z
    return [PauliSum((pauli(q),)) for q in range(n_qubits)]


def as_batch(x: npt.ArrayLike, what: str = "x") -> tuple[FloatArray, bool]:
    """``x`` as ``[batch, features]`` and whether it was one sample (1-D)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CompatModelError(f"{what} must be a real array of features: {exc}") from None
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0 or arr.shape[0] == 0:
        raise CompatModelError(
            f"{what} must be one sample [features] or a batch [batch, features]; got shape "
            f"{list(np.shape(x))}."
        )
    if not np.isfinite(arr).all():
        raise CompatModelError(f"{what} contains NaN or infinity.")
    return arr, single


def evaluate(
    backend: Any,
    circuit: UnifiedCircuit,
    observables: list[PauliSum],
    inputs: FloatArray,
    input_names: list[str],
    weight_names: list[str],
    weights: FloatArray,
    shots: int | None = None,
    seed: int | None = None,
) -> FloatArray:
    """Expectations ``[batch, n_obs]`` in one backend call.

    ``weights`` is one vector shared by every row, or a ``[batch, P]`` matrix (a different
    point per row, as SPSA's perturbations need).
    """
    x = inputs[:, : len(input_names)]
    if weights.ndim == 1:
        shared = dict(zip(weight_names, weights.tolist(), strict=True))
        out = backend.expectation(
            circuit, observables, x, names=input_names, shared=shared, shots=shots, seed=seed
        )
    else:
        values = np.concatenate([x, weights], axis=1)
        out = backend.expectation(
            circuit, observables, values, names=[*input_names, *weight_names], shots=shots,
            seed=seed,
        )  # fmt: skip
    return np.asarray(out, dtype=np.float64)


class QuantumLayer:
    """The v3.5 variational layer; ``await layer.forward(x)`` gives ⟨Z⟩ per qubit.

    Args:
        n_qubits, depth: register size and number of variational layers.
        backend: a Q-Store 4 backend (``bm.get_backend()``, ``qstore.core.backends.get(...)``)
            or a registry name such as ``'local'``.
        entanglement: ``'linear'``, ``'circular'`` or ``'full'``.
        measurement_basis: ``'computational'`` (⟨Z⟩) or ``'hadamard'`` (⟨X⟩).
        hardware_efficient: ``RY``, ``RZ`` per qubit (v3.5's ``HardwareEfficientQuantumLayer``)
            instead of ``RX``, ``RY``, ``RZ``.
        seed: seeds the initial parameters (v3.5's: ``0.1 * randn`` for the standard layer,
            uniform in ``±sqrt(6 / (n_qubits + 1))`` for the hardware-efficient one) and shots;
            default: drawn from NumPy's global generator, as v3.5 did.

    >>> layer = QuantumLayer(2, depth=1, backend="local", seed=0)
    >>> layer.n_parameters
    6
    >>> out = asyncio.run(layer.forward([0.0, 1.0], shots=None))
    >>> out.shape
    (2,)
    """

    def __init__(
        self,
        n_qubits: int,
        depth: int,
        backend: Any,
        entanglement: str = "linear",
        measurement_basis: str = "computational",
        *,
        hardware_efficient: bool = False,
        seed: int | None = None,
    ) -> None:
        self.n_qubits = _positive_int("n_qubits", n_qubits)
        self.depth = _positive_int("depth", depth)
        self.backend = as_backend(backend)
        ent = entanglement.lower() if isinstance(entanglement, str) else entanglement
        if ent not in ENTANGLEMENTS:
            raise CompatModelError(
                f"entanglement must be one of {list(ENTANGLEMENTS)}, got {entanglement!r}."
            )
        self.entanglement = str(ent)
        if measurement_basis not in MEASUREMENT_BASES:
            raise CompatModelError(
                f"measurement_basis must be one of {list(MEASUREMENT_BASES)}, got "
                f"{measurement_basis!r}."
            )
        self.measurement_basis = measurement_basis
        self.hardware_efficient = bool(hardware_efficient)
        self.n_parameters = (
            self.depth * self.n_qubits * len(rotations_per_qubit(hardware_efficient))
        )
        self._rng = seeded_rng(seed)
        if self.hardware_efficient:
            limit = math.sqrt(6.0 / (self.n_qubits + 1))
            init = self._rng.uniform(-limit, limit, self.n_parameters)
        else:
            init = 0.1 * self._rng.standard_normal(self.n_parameters)
        self.parameters: FloatArray = np.asarray(init, dtype=np.float64)
        self._frozen_params: set[int] = set()

    # -- circuit ------------------------------------------------------------------------------
    def circuit(self, n_features: int | None = None) -> tuple[UnifiedCircuit, list[str], list[str]]:
        """``(circuit, input symbols, weight symbols)`` for ``n_features`` inputs (default:
        one per qubit)."""
        return layer_circuit(
            self.n_qubits,
            self.depth,
            self.n_qubits if n_features is None else n_features,
            self.entanglement,
            self.hardware_efficient,
        )

    def observables(self) -> list[PauliSum]:
        """The readout, one observable per qubit."""
        return readout(self.n_qubits, self.measurement_basis)

    def build_circuit(self, input_data: npt.ArrayLike | None = None) -> UnifiedCircuit:
        """The circuit bound to ``input_data`` and the current parameters, measured at the end
        (v3.5 returned its own circuit type; this is a :class:`~qstore.core.UnifiedCircuit`)."""
        if input_data is None:
            circuit, _, weights = self.circuit(1)
            bound = circuit.bind({**dict.fromkeys(["x_0"], 0.0), **self._weight_map(weights)})
            # no encoding: drop the RY(π·0) of the placeholder input (an identity)
            body = UnifiedCircuit(self.n_qubits, name=bound.name)
            for op in list(bound)[1:]:
                body.append(op)
            bound = body
        else:
            x, _ = as_batch(input_data, "input_data")
            circuit, inputs, weights = self.circuit(x.shape[1])
            values = dict(zip(inputs, x[0, : len(inputs)].tolist(), strict=True))
            bound = circuit.bind({**values, **self._weight_map(weights)})
        if self.measurement_basis == "hadamard":
            for q in range(self.n_qubits):
                bound.add_gate("H", q)
        return bound.measure(list(range(self.n_qubits)))

    def _weight_map(self, names: list[str]) -> dict[str, float]:
        return dict(zip(names, self.parameters.tolist(), strict=True))

    # -- execution ----------------------------------------------------------------------------
    def expectations(
        self, x: npt.ArrayLike, shots: int | None = None, seed: int | None = None
    ) -> FloatArray:
        """⟨Z_q⟩ per qubit for a batch ``[batch, features]``: ``[batch, n_qubits]`` (exact when
        ``shots`` is None)."""
        arr, _ = as_batch(x)
        circuit, inputs, weights = self.circuit(arr.shape[1])
        return evaluate(
            self.backend, circuit, self.observables(), arr, inputs, weights, self.parameters,
            shots, self._shot_seed(shots, seed),
        )  # fmt: skip

    async def forward(
        self, x: npt.ArrayLike, shots: int | None = 1000, seed: int | None = None
    ) -> FloatArray:
        """⟨Z_q⟩ per qubit of one sample ``[features]`` (or a batch ``[batch, features]``),
        estimated from ``shots`` (``None``: exact); runs in a worker thread."""
        arr, single = as_batch(x)
        out = await asyncio.to_thread(self.expectations, arr, shots, seed)
        return out[0] if single else out

    def _shot_seed(self, shots: int | None, seed: int | None) -> int | None:
        if shots is None or seed is not None:
            return seed
        return int(self._rng.integers(2**31))

    # -- parameters (v3.5 API) ----------------------------------------------------------------
    def get_parameters(self) -> FloatArray:
        """A copy of the parameter vector."""
        return np.array(self.parameters, dtype=np.float64)

    def update_parameters(self, new_params: npt.ArrayLike) -> None:
        """Set the parameters, leaving frozen ones unchanged."""
        new = np.asarray(new_params, dtype=np.float64).reshape(-1)
        if new.size != self.n_parameters:
            raise CompatModelError(f"Expected {self.n_parameters} parameters, got {new.size}.")
        if not np.isfinite(new).all():
            raise CompatModelError("The new parameters contain NaN or infinity.")
        frozen = sorted(self._frozen_params)
        new = new.copy()
        new[frozen] = self.parameters[frozen]
        self.parameters = new

    def freeze_parameters(self, indices: list[int]) -> None:
        """Keep these parameter indices fixed in training."""
        bad = [i for i in indices if not 0 <= int(i) < self.n_parameters]
        if bad:
            raise CompatModelError(
                f"Parameter indices {bad} are out of range 0..{self.n_parameters - 1}."
            )
        self._frozen_params.update(int(i) for i in indices)

    def unfreeze_parameters(self) -> None:
        """Train every parameter again."""
        self._frozen_params.clear()

    @property
    def trainable_mask(self) -> npt.NDArray[np.bool_]:
        """``True`` for the parameters training may change."""
        mask = np.ones(self.n_parameters, dtype=bool)
        mask[sorted(self._frozen_params)] = False
        return mask

    def save_state(self) -> dict[str, Any]:
        """The v3.5 layer state: parameters, frozen indices, configuration."""
        return {
            "parameters": self.parameters.tolist(),
            "frozen_params": sorted(self._frozen_params),
            "config": {
                "n_qubits": self.n_qubits,
                "depth": self.depth,
                "entanglement": self.entanglement,
                "measurement_basis": self.measurement_basis,
                "hardware_efficient": self.hardware_efficient,
            },
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`save_state` output (also a v3.5 checkpoint's layer state)."""
        try:
            params = np.asarray(state["parameters"], dtype=np.float64).reshape(-1)
        except (KeyError, TypeError, ValueError) as exc:
            raise CompatModelError(
                f"A layer state needs 'parameters' (a list of {self.n_parameters} numbers): {exc}"
            ) from None
        if params.size != self.n_parameters:
            kind = "hardware-efficient" if self.hardware_efficient else "standard"
            raise CompatModelError(
                f"The state has {params.size} parameters; this layer ({self.n_qubits} qubits, "
                f"depth {self.depth}, {kind}) has {self.n_parameters}."
            )
        self.parameters = params
        self._frozen_params = {int(i) for i in state.get("frozen_params", [])}

    def __repr__(self) -> str:
        kind = "hardware_efficient" if self.hardware_efficient else "standard"
        return (
            f"QuantumLayer(n_qubits={self.n_qubits}, depth={self.depth}, "
            f"entanglement={self.entanglement!r}, {kind}, backend={self.backend.name!r})"
        )
