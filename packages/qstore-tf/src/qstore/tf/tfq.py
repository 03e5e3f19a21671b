"""TensorFlow Quantum interop: circuit tensors both ways, and TFQ's qsim ops as an executor.

``tensorflow-quantum`` is optional (``pip install "qstore-tf[tfq]"``; it pins its own TensorFlow,
see the README). Where it is installed, ``QuantumLayer(backend='qsim')`` runs on TFQ's qsim-based
ops inside the TensorFlow graph: expectations through ``tfq.get_expectation_op()`` with TFQ's
adjoint differentiator, unitaries (for a layer fed a quantum state) through
``tfq.get_unitary_op()`` with the exact rotation shift rule of :mod:`qstore.tf.gradients`.

>>> import qstore.core as qc
>>> from qstore.tf import tfq as qtfq
>>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
>>> qtfq.from_tensor(qtfq.to_tensor([c]))[0] == c  # doctest: +SKIP
True
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import MissingDependencyError
from qstore.core.observables import PauliSum, as_observables
from qstore.core.parameters import Expression
from qstore.tf.gradients import unitary_from_fn

Tensor = Any


def available() -> bool:
    """Whether ``tensorflow_quantum`` can be imported."""
    try:
        importlib.import_module("tensorflow_quantum")
    except ImportError:
        return False
    return True


def _tfq() -> Any:
    try:
        return importlib.import_module("tensorflow_quantum")
    except ImportError as exc:
        raise MissingDependencyError(
            "TensorFlow Quantum interop needs the optional package 'tensorflow-quantum', which is "
            f"not installed ({exc}). Install it with: pip install 'qstore-tf[tfq]' (it pins its "
            "own TensorFlow and Cirq versions; use a separate environment)."
        ) from None


def _qubits(n: int) -> list[Any]:
    import cirq

    return list(cirq.LineQubit.range(n))


def to_cirq_paulisum(obs: PauliSum, n_qubits: int) -> Any:
    """A Q-Store :class:`PauliSum` as a ``cirq.PauliSum`` on ``LineQubit(0..n-1)``."""
    import cirq

    qs = _qubits(n_qubits)
    paulis = {"X": cirq.X, "Y": cirq.Y, "Z": cirq.Z}
    out = cirq.PauliSum()
    for term in obs.terms:
        ps = cirq.PauliString({qs[q]: paulis[p] for q, p in term.paulis}, coefficient=term.coeff)
        out += ps
    return out


def to_tensor(circuits: Sequence[UnifiedCircuit]) -> Tensor:
    """UnifiedCircuits as a TFQ circuit tensor (``tfq.convert_to_tensor``), symbols kept.

    Qubit ``q`` is ``cirq.LineQubit(q)``; gates go through :meth:`UnifiedCircuit.to_cirq`, so
    the circuits must use gates TFQ can serialise (the Pauli rotations, H, CNOT, CZ, SWAP, ...).
    """
    tfq = _tfq()
    return tfq.convert_to_tensor([c.to_cirq(_qubits(c.n_qubits)) for c in circuits])


def from_tensor(tensor: Tensor, n_qubits: int | None = None) -> list[UnifiedCircuit]:
    """A TFQ circuit tensor back to UnifiedCircuits (``tfq.from_tensor``).

    Qubits are ordered as ``sorted(circuit.all_qubits())`` unless ``n_qubits`` is given, in which
    case ``LineQubit(q)`` becomes qubit ``q`` (so idle trailing qubits are kept). TFQ keeps
    exponents in float32, so coefficients and constants are rounded to 6 significant digits:
    circuits written with short decimal coefficients come back exactly.
    """
    tfq = _tfq()
    out = []
    for c in tfq.from_tensor(tensor):
        order = _qubits(n_qubits) if n_qubits is not None else sorted(c.all_qubits())
        out.append(_snap_circuit(UnifiedCircuit.from_cirq(c, qubit_order=order)))
    return out


def _snap(value: float) -> float:
    return float(f"{value:.6g}")


def _snap_circuit(circuit: UnifiedCircuit) -> UnifiedCircuit:
    """Undo TFQ's float32 storage of exponents (``theta / pi`` becomes ``1.0000004 * theta``):
    coefficients and constants are rounded to 6 significant digits."""
    out = UnifiedCircuit(circuit.n_qubits, name=circuit.name)
    for op in circuit:
        if op.is_measurement:
            out.append(op)
            continue
        params = []
        for expr in op.params:
            data = expr.to_dict()
            data["constant"] = _snap(data["constant"])
            for term in data["terms"]:
                term["coeff"] = _snap(term["coeff"])
            params.append(Expression.from_dict(data))
        out.add_gate(op.gate, op.qubits, params)
    return out


def paulisum_tensor(observables: Any, n_qubits: int) -> Tensor:
    """Observables as TFQ's ``[1, n_obs]`` PauliSum tensor."""
    tfq = _tfq()
    obs = as_observables(observables, n_qubits)
    return tfq.convert_to_tensor([[to_cirq_paulisum(o, n_qubits) for o in obs]])


class TFQExpectation:
    """Expectations of one circuit template on TFQ's qsim op, adjoint-differentiated by TFQ."""

    def __init__(
        self,
        circuit: UnifiedCircuit,
        input_names: Sequence[str],
        weight_names: Sequence[str],
        observables: Any,
    ) -> None:
        tfq = _tfq()
        self.n_obs = len(as_observables(observables, circuit.n_qubits))
        # Serialised once, kept as NumPy: the executor may be created while a graph is traced
        # and used in other graphs (or eagerly) later.
        with tf.init_scope():
            self._program = to_tensor([circuit]).numpy()
            self._ops = paulisum_tensor(observables, circuit.n_qubits).numpy()
        self._names = list(input_names) + list(weight_names)
        differentiator = tfq.differentiators.Adjoint()
        self._op = differentiator.generate_differentiable_op(analytic_op=tfq.get_expectation_op())

    def __call__(self, inputs: Tensor | None, weights: Tensor, batch_of: Tensor) -> Tensor:
        """``[B, n_obs]`` float32 (TFQ computes in single precision)."""
        bsz = tf.shape(batch_of)[0]
        w = tf.tile(tf.reshape(tf.cast(weights, tf.float32), [1, -1]), tf.stack([bsz, 1]))
        values = w if inputs is None else tf.concat([tf.cast(inputs, tf.float32), w], axis=1)
        programs = tf.tile(tf.constant(self._program), tf.reshape(bsz, [1]))
        ops = tf.tile(tf.constant(self._ops), tf.stack([bsz, 1]))
        out = self._op(programs, tf.constant(self._names), values, ops)
        return tf.reshape(out, tf.stack([bsz, self.n_obs]))


class TFQUnitary:
    """``U(w)`` of a weights-only circuit on TFQ's unitary op, differentiable in the weights."""

    def __init__(self, circuit: UnifiedCircuit, weight_names: Sequence[str]) -> None:
        self._tfq = _tfq()
        self.dim = 1 << circuit.n_qubits
        with tf.init_scope():  # see TFQExpectation
            self._program = to_tensor([circuit]).numpy()
        self._names = list(weight_names)
        self._op = self._tfq.get_unitary_op()

    def _unitaries(self, w: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        # Called eagerly, from inside tf.numpy_function.
        v = w.shape[0]
        out = self._op(
            tf.constant(np.repeat(self._program, v)),
            tf.constant(self._names),
            tf.constant(w, tf.float32),
        )
        return np.asarray(out.to_tensor().numpy()).reshape(v, self.dim, self.dim)

    def __call__(self, weights: Tensor) -> Tensor:
        return unitary_from_fn(self.dim, self._unitaries, weights)
