"""The v3.5 ``QuantumModel``: one :class:`~qstore.compat.v3_5.layers.QuantumLayer`, read out as
the first ``output_dim`` expectation values.

>>> import asyncio
>>> model = QuantumModel(input_dim=3, n_qubits=3, output_dim=2, backend="local", depth=1, seed=0)
>>> asyncio.run(model.forward([0.1, 0.2, 0.3], shots=None)).shape
(2,)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.compat.v3_5.layers import (
    CompatModelError,
    FloatArray,
    QuantumLayer,
    _positive_int,
    as_batch,
    evaluate,
)
from qstore.core.circuit import UnifiedCircuit
from qstore.core.observables import PauliSum

logger = logging.getLogger(__name__)


class QuantumModel:
    """The v3.5 model: one variational layer, the first ``output_dim`` expectations out.

    ``await model.forward(x, shots=1000)`` returns ⟨Z_q⟩ for ``q < output_dim`` (estimated from
    ``shots``; ``shots=None`` is exact). Features beyond ``n_qubits`` are ignored, as v3.5 did.

    Args:
        input_dim: features per sample.
        n_qubits: qubits of the layer; ``output_dim <= n_qubits``.
        output_dim: expectation values returned.
        backend: a Q-Store 4 backend or registry name (``bm.get_backend()``, ``'local'``).
        depth: variational layers.
        hardware_efficient: ``RY``, ``RZ`` per qubit and layer instead of ``RX``, ``RY``, ``RZ``.
        entanglement: CNOT pattern (v3.5 models always used ``'linear'``).
        seed: seeds the initial parameters and shot sampling.
    """

    def __init__(
        self,
        input_dim: int,
        n_qubits: int,
        output_dim: int,
        backend: Any,
        depth: int = 4,
        hardware_efficient: bool = False,
        *,
        entanglement: str = "linear",
        seed: int | None = None,
    ) -> None:
        self.input_dim = _positive_int("input_dim", input_dim)
        self.n_qubits = _positive_int("n_qubits", n_qubits)
        self.output_dim = _positive_int("output_dim", output_dim)
        if self.output_dim > self.n_qubits:
            raise CompatModelError(
                f"output_dim={self.output_dim} is more than the {self.n_qubits} expectation "
                f"values of {self.n_qubits} qubits; use n_qubits >= {self.output_dim}."
            )
        self.depth = _positive_int("depth", depth)
        self.hardware_efficient = bool(hardware_efficient)
        self.quantum_layer = QuantumLayer(
            self.n_qubits,
            self.depth,
            backend,
            entanglement,
            hardware_efficient=self.hardware_efficient,
            seed=seed,
        )
        self.backend = self.quantum_layer.backend
        if self.input_dim > self.n_qubits:
            logger.warning(
                "QuantumModel: input_dim=%d > n_qubits=%d; features %d.. are not encoded (as in "
                "v3.5). Q-Store 4's layers encode every feature (qstore.torch.QuantumLayer, "
                "qstore.tf.layers.QuantumLayer).",
                self.input_dim,
                self.n_qubits,
                self.n_qubits,
            )

    @property
    def parameters(self) -> FloatArray:
        """The trainable parameter vector (the layer's)."""
        return self.quantum_layer.parameters

    @parameters.setter
    def parameters(self, value: npt.ArrayLike) -> None:
        self.quantum_layer.update_parameters(value)

    @property
    def entanglement(self) -> str:
        return self.quantum_layer.entanglement

    def circuit(self) -> tuple[UnifiedCircuit, list[str], list[str]]:
        """``(circuit, input symbols, weight symbols)`` of this model."""
        return self.quantum_layer.circuit(self.input_dim)

    def observables(self) -> list[PauliSum]:
        """The ``output_dim`` observables read out."""
        return self.quantum_layer.observables()[: self.output_dim]

    def check_inputs(self, x: npt.ArrayLike) -> tuple[FloatArray, bool]:
        """``x`` as ``[batch, input_dim]``, refusing other widths."""
        arr, single = as_batch(x)
        if arr.shape[1] != self.input_dim:
            raise CompatModelError(
                f"The model takes {self.input_dim} features per sample, got {arr.shape[1]} "
                f"(input shape {list(np.shape(x))})."
            )
        return arr, single

    def expectations(
        self,
        x: npt.ArrayLike,
        shots: int | None = None,
        seed: int | None = None,
        parameters: npt.ArrayLike | None = None,
    ) -> FloatArray:
        """Outputs ``[batch, output_dim]`` in one backend call; ``parameters`` overrides the
        model's (one vector, or one row per sample)."""
        arr, _ = self.check_inputs(x)
        circuit, inputs, weights = self.circuit()
        theta = self.parameters if parameters is None else np.asarray(parameters, np.float64)
        return evaluate(
            self.backend, circuit, self.observables(), arr, inputs, weights, theta, shots,
            self.quantum_layer._shot_seed(shots, seed),
        )  # fmt: skip

    async def forward(
        self, x: npt.ArrayLike, shots: int | None = 1000, seed: int | None = None
    ) -> FloatArray:
        """The first ``output_dim`` expectations of one sample (or ``[batch, output_dim]`` for a
        batch), from ``shots`` measurements (``None``: exact)."""
        arr, single = self.check_inputs(x)
        out = await asyncio.to_thread(self.expectations, arr, shots, seed)
        return out[0] if single else out

    def save_state(self) -> dict[str, Any]:
        """The v3.5 model state (``config`` and ``quantum_layer``)."""
        return {
            "config": {
                "input_dim": self.input_dim,
                "n_qubits": self.n_qubits,
                "output_dim": self.output_dim,
                "depth": self.depth,
                "hardware_efficient": self.hardware_efficient,
                "entanglement": self.entanglement,
            },
            "quantum_layer": self.quantum_layer.save_state(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`save_state` output, or the ``model_state`` of a v3.5 checkpoint."""
        if not isinstance(state, dict) or "quantum_layer" not in state:
            raise CompatModelError(
                "A model state is a dict with 'config' and 'quantum_layer' (what save_state() "
                f"returns); got {type(state).__name__} with keys "
                f"{sorted(state) if isinstance(state, dict) else []}."
            )
        self.quantum_layer.load_state(state["quantum_layer"])

    def __repr__(self) -> str:
        return (
            f"QuantumModel(input_dim={self.input_dim}, n_qubits={self.n_qubits}, "
            f"output_dim={self.output_dim}, depth={self.depth}, "
            f"hardware_efficient={self.hardware_efficient})"
        )
