"""Other Q-Store backends inside TensorFlow graphs, through ``tf.custom_gradient``.

The native engine (:mod:`qstore.tf.engine`) is differentiated by TensorFlow itself. Any other
backend (``qsim``, ``lightning``, ``ionq_simulator``, a third-party plugin) runs on NumPy arrays
through ``tf.numpy_function``; its gradient is the backend's own vector-Jacobian product
(``backend.vjp``), so training steps cost one forward and one VJP call per batch.

A layer that evolves a quantum *state* needs the circuit's unitary, which
:func:`backend_unitaries` builds column by column from the backend's final states for the basis
states ``|j>`` (prepared with ``RY(pi)`` rotations, which are exact bit flips). Its gradient uses
the exact shift rule for rotation gates ``exp(-i w P / 2)``: ``dU/dw = U(w + pi) / 2``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import CapabilityError
from qstore.core.gates import GATES

Tensor = Any
UnitaryFn = Callable[[npt.NDArray[np.float64]], npt.NDArray[Any]]

_SHIFTABLE = frozenset({"RX", "RY", "RZ", "RXX", "RYY", "RZZ"})


def backend_expectation(
    backend: Any,
    circuit: UnifiedCircuit,
    observables: Any,
    input_names: Sequence[str],
    weight_names: Sequence[str],
    inputs: Tensor,
    weights: Tensor,
    n_obs: int,
) -> Tensor:
    """Expectations ``[B, n_obs]`` of ``circuit`` on ``backend``, differentiable in both inputs.

    ``inputs [B, F]`` bind ``input_names`` per sample; ``weights`` (any shape, flattened in C
    order) bind ``weight_names``, shared by the batch.
    """
    dtype = weights.dtype
    np_dtype = dtype.as_numpy_dtype
    names = list(input_names)
    wnames = list(weight_names)

    def shared(w: npt.NDArray[Any]) -> dict[str, float]:
        return dict(zip(wnames, np.asarray(w, dtype=np.float64).ravel().tolist(), strict=True))

    def forward(x: npt.NDArray[Any], w: npt.NDArray[Any]) -> npt.NDArray[Any]:
        out = backend.expectation(
            circuit, observables, np.asarray(x, np.float64), names=names, shared=shared(w)
        )
        return np.asarray(out, dtype=np_dtype)

    def backward(
        x: npt.NDArray[Any], w: npt.NDArray[Any], dy: npt.NDArray[Any]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        gx, gw = backend.vjp(
            circuit,
            observables,
            np.asarray(x, np.float64),
            np.asarray(dy, np.float64),
            names=names,
            shared=shared(w),
        )
        return np.asarray(gx, np_dtype), np.asarray(gw, np_dtype).reshape(w.shape)

    @tf.custom_gradient
    def run(x: Tensor, w: Tensor) -> Any:
        y = tf.numpy_function(forward, [x, w], dtype, stateful=False)
        y.set_shape([x.shape[0], n_obs])

        def grad(dy: Tensor) -> tuple[Tensor, Tensor]:
            gx, gw = tf.numpy_function(backward, [x, w, dy], [dtype, dtype], stateful=False)
            gx.set_shape(x.shape)
            gw.set_shape(w.shape)
            return gx, gw

        return y, grad

    return run(tf.cast(inputs, dtype), weights)


def check_shiftable(circuit: UnifiedCircuit, weight_names: Sequence[str]) -> None:
    """Refuse circuits whose weights are not plain angles of rotation gates (shift rule)."""
    wanted = set(weight_names)
    for op in circuit:
        used = wanted.intersection(op.symbols)
        if not used:
            continue
        ok = GATES[op.gate].name in _SHIFTABLE and all(
            p.is_linear and len(p.symbols) <= 1 and p.derivative(s).constant == 1.0
            for p in op.params
            for s in p.symbols
        )
        if not ok:
            raise CapabilityError(
                f"Weight(s) {sorted(used)} of gate {op} are not plain rotation angles; the "
                "state gradient on external backends supports RX/RY/RZ/RXX/RYY/RZZ(w)."
            )


def basis_prep_circuit(n_qubits: int, body: UnifiedCircuit) -> tuple[UnifiedCircuit, list[str]]:
    """``RY(b_q)`` on every qubit, then ``body``: with ``b_q = pi`` the input is ``|1>`` exactly."""
    prep = UnifiedCircuit(n_qubits, name="basis_prep")
    names = [f"_basis_{q}" for q in range(n_qubits)]
    for q, nm in enumerate(names):
        prep.add_gate("RY", q, nm)
    return prep.compose(body), names


def basis_angles(n_qubits: int) -> npt.NDArray[np.float64]:
    """``[2**n, n]`` angles that prepare ``|j>`` in row ``j`` (qubit 0 most significant)."""
    j = np.arange(1 << n_qubits)[:, None]
    bits = (j >> (n_qubits - 1 - np.arange(n_qubits))[None, :]) & 1
    return np.pi * bits.astype(np.float64)


def unitary_from_fn(dim: int, unitaries: UnitaryFn, weights: Tensor) -> Tensor:
    """``U(w)`` as a complex ``[dim, dim]`` tensor, differentiable in ``weights``.

    ``unitaries(w [V, P]) -> [V, dim, dim]`` evaluates the circuit's unitary for ``V`` weight
    vectors on some simulator. The gradient uses ``dU/dw_k = U(w + pi e_k) / 2`` (exact for
    rotation angles), all ``P`` shifted unitaries in one call.
    """
    dtype = weights.dtype
    np_dtype = dtype.as_numpy_dtype

    def forward(w: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        u = unitaries(np.asarray(w, np.float64).reshape(1, -1))[0]
        return u.real.astype(np_dtype), u.imag.astype(np_dtype)

    def backward(
        w: npt.NDArray[Any], d_re: npt.NDArray[Any], d_im: npt.NDArray[Any]
    ) -> npt.NDArray[Any]:
        flat = np.asarray(w, np.float64).ravel()
        du = unitaries(flat[None, :] + np.pi * np.eye(flat.size)) / 2  # [P, dim, dim]
        g = np.einsum("pij,ij->p", du.real, d_re) + np.einsum("pij,ij->p", du.imag, d_im)
        return g.astype(np_dtype).reshape(w.shape)

    @tf.custom_gradient
    def run(w: Tensor) -> Any:
        re, im = tf.numpy_function(forward, [w], [dtype, dtype], stateful=False)
        re.set_shape([dim, dim])
        im.set_shape([dim, dim])

        def grad(d_re: Tensor, d_im: Tensor) -> Tensor:
            g = tf.numpy_function(backward, [w, d_re, d_im], dtype, stateful=False)
            g.set_shape(w.shape)
            return g

        return (re, im), grad

    re, im = run(weights)
    return tf.complex(re, im)


def backend_unitaries(backend: Any, body: UnifiedCircuit, weight_names: Sequence[str]) -> UnitaryFn:
    """A :data:`UnitaryFn` on a Q-Store backend that returns final states (``state()``).

    Column ``j`` of ``U`` is the final state of ``|j>``, prepared by ``RY(pi)`` on the qubits
    that are 1 in ``j`` (exact bit flips); all columns of all weight vectors go in one call.
    """
    state = getattr(backend, "state", None)
    if state is None:
        raise CapabilityError(
            f"Backend {getattr(backend, 'name', backend)!r} cannot return state vectors, which a "
            "QuantumLayer fed a quantum state needs. Use backend='tf' there, or feed the layer "
            "classical features."
        )
    check_shiftable(body, weight_names)
    n = body.n_qubits
    dim = 1 << n
    circuit, prep_names = basis_prep_circuit(n, body)
    names = prep_names + list(weight_names)
    prep = basis_angles(n)

    def unitaries(w: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        v = w.shape[0]
        values = np.concatenate([np.tile(prep, (v, 1)), np.repeat(w, dim, axis=0)], axis=1)
        states = np.asarray(state(circuit, values, names=names))  # row j of block v: U_v |j>
        return states.reshape(v, dim, dim).transpose(0, 2, 1)

    return unitaries
