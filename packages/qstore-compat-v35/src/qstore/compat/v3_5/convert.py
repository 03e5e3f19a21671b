"""``qstore.convert_from_v3_5(model)``: a v3.5 model as Q-Store 4 objects, same weights.

The Q-Store 4 equivalent of a v3.5 ``QuantumModel`` is a :class:`CircuitModel`: the model's
parameterised :class:`~qstore.core.UnifiedCircuit` (inputs ``x_i``, weights ``theta_k``), the
trained weights as a ``{symbol: value}`` mapping, and the observables read out. Nothing in it is
v3.5-specific: it runs on any Q-Store 4 backend (``local``, ``qsim``, ``lightning``, IonQ) in one
batched call, and its parts plug into the rest of Q-Store 4::

    backend.expectation(
        m.circuit, m.observables, x[:, : m.n_encoded], names=m.input_names, shared=m.weights
    )

is exactly what :meth:`CircuitModel.predict` does; ``m.circuit.to_cirq()``, ``to_qiskit()``,
``to_json()`` and the gradient methods of :mod:`qstore.core.gradients` take it as it is.

>>> import numpy as np
>>> from qstore.compat.v3_5.model import QuantumModel
>>> old = QuantumModel(input_dim=2, n_qubits=2, output_dim=1, backend="local", depth=1, seed=0)
>>> new = convert_from_v3_5(old)
>>> x = np.array([[0.1, 0.7]])
>>> bool(np.allclose(new.predict(x), old.expectations(x)))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.compat.v3_5.layers import (
    CompatModelError,
    FloatArray,
    QuantumLayer,
    as_batch,
    layer_circuit,
    readout,
)
from qstore.compat.v3_5.model import QuantumModel
from qstore.core import backends as qc_backends
from qstore.core.circuit import UnifiedCircuit
from qstore.core.observables import PauliSum


@dataclass(frozen=True)
class CircuitModel:
    """A parameterised circuit with its trained weights and readout (the Q-Store 4 form of a
    v3.5 model).

    Attributes:
        circuit: the circuit, with input symbols ``input_names`` and weight symbols ``weights``.
        input_names: symbols bound to the first ``len(input_names)`` features of each sample.
        weights: trained values of the weight symbols.
        observables: what the model outputs, one expectation value each.
        n_features: features per sample the model takes (extra ones are not encoded).
    """

    circuit: UnifiedCircuit
    input_names: tuple[str, ...]
    weights: Mapping[str, float]
    observables: tuple[PauliSum, ...]
    n_features: int
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def n_encoded(self) -> int:
        """How many leading features are encoded."""
        return len(self.input_names)

    @property
    def output_dim(self) -> int:
        return len(self.observables)

    def weight_vector(self) -> FloatArray:
        """The weights in symbol order (``theta_0, theta_1, …``: v3.5's parameter order)."""
        return np.asarray(list(self.weights.values()), dtype=np.float64)

    def bindings(self, x: npt.ArrayLike) -> tuple[FloatArray, list[str], dict[str, float]]:
        """``(values, names, shared)`` for any backend's ``expectation``/``vjp`` call."""
        arr, _ = as_batch(x)
        if arr.shape[1] != self.n_features:
            raise CompatModelError(
                f"The model takes {self.n_features} features per sample, got {arr.shape[1]}."
            )
        return arr[:, : self.n_encoded], list(self.input_names), dict(self.weights)

    def predict(
        self,
        x: npt.ArrayLike,
        backend: Any = "local",
        shots: int | None = None,
        seed: int | None = None,
    ) -> FloatArray:
        """Outputs ``[batch, output_dim]`` (``[output_dim]`` for one sample) on ``backend`` (an
        object or a registry name), exact unless ``shots`` is given."""
        be = qc_backends.get(backend) if isinstance(backend, str) else backend
        values, names, shared = self.bindings(x)
        out = np.asarray(
            be.expectation(
                self.circuit, list(self.observables), values, names=names, shared=shared,
                shots=shots, seed=seed,
            ),
            dtype=np.float64,
        )  # fmt: skip
        return out[0] if np.ndim(x) == 1 else out


def _from_state(state: Mapping[str, Any]) -> CircuitModel:
    """From a v3.5 model state (``save_state()``, or a checkpoint's ``model_state``)."""
    try:
        cfg = state["config"]
        layer = state["quantum_layer"]
        params = np.asarray(layer["parameters"], dtype=np.float64).reshape(-1)
        n, depth = int(cfg["n_qubits"]), int(cfg["depth"])
        input_dim, output_dim = int(cfg["input_dim"]), int(cfg["output_dim"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CompatModelError(
            "A v3.5 model state has 'config' (input_dim, n_qubits, output_dim, depth) and "
            f"'quantum_layer' ('parameters'); this one does not: {exc!r}."
        ) from None
    layer_cfg = layer.get("config", {})
    # v3.5 did not record the ansatz in the state: the parameter count tells it.
    if "hardware_efficient" in cfg:
        hardware_efficient = bool(cfg["hardware_efficient"])
    elif params.size == depth * n * 2:
        hardware_efficient = True
    elif params.size == depth * n * 3:
        hardware_efficient = False
    else:
        raise CompatModelError(
            f"{params.size} parameters fit neither ansatz of {n} qubits and depth {depth} "
            f"({depth * n * 3} standard, {depth * n * 2} hardware-efficient)."
        )
    entanglement = cfg.get("entanglement", layer_cfg.get("entanglement", "linear"))
    basis = layer_cfg.get("measurement_basis", "computational")
    circuit, inputs, weights = layer_circuit(n, depth, input_dim, entanglement, hardware_efficient)
    if params.size != len(weights):
        raise CompatModelError(
            f"The state has {params.size} parameters; its circuit needs {len(weights)}."
        )
    return CircuitModel(
        circuit=circuit,
        input_names=tuple(inputs),
        weights=dict(zip(weights, params.tolist(), strict=True)),
        observables=tuple(readout(n, basis)[:output_dim]),
        n_features=input_dim,
        metadata={
            "source": "qstore.compat.v3_5",
            "hardware_efficient": hardware_efficient,
            "entanglement": entanglement,
            "measurement_basis": basis,
        },
    )


def convert_from_v3_5(model: Any) -> CircuitModel:
    """The Q-Store 4 equivalent of a v3.5 model, with the same weights.

    ``model`` is a :class:`~qstore.compat.v3_5.QuantumModel` or
    :class:`~qstore.compat.v3_5.QuantumLayer` (one input per qubit, all qubits read out), a
    v3.5 ``save_state()`` dict, or a whole v3.5 checkpoint (``{'model_state': ...}``).
    """
    if isinstance(model, QuantumModel):
        state: Mapping[str, Any] = model.save_state()
    elif isinstance(model, QuantumLayer):
        layer_state = model.save_state()
        state = {
            "config": {
                "input_dim": model.n_qubits,
                "output_dim": model.n_qubits,
                **layer_state["config"],
            },
            "quantum_layer": layer_state,
        }
    elif isinstance(model, Mapping):
        state = model.get("model_state", model)
    elif callable(getattr(model, "save_state", None)):
        state = model.save_state()  # a v3.5 object itself
    else:
        raise CompatModelError(
            "convert_from_v3_5 takes a qstore.compat.v3_5 QuantumModel or QuantumLayer, a v3.5 "
            f"model state dict or checkpoint; got {type(model).__name__}."
        )
    return _from_state(state)
