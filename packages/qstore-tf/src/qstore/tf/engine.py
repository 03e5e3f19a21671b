"""The Q-Store engine on TensorFlow tensors.

:class:`TFOps` implements the array operations of :mod:`qstore.core.engine.generic` with
TensorFlow ops, so the one engine of Q-Store runs inside ``tf.function``, under ``tf.distribute``
strategies and on GPUs, and TensorFlow's autodiff gives the gradients. :func:`expectation` and
:func:`evolve` are what the Keras layers call.

The batch dimension may be unknown while tracing (``None`` in a ``tf.function`` signature):
:meth:`TFOps.shape` gives static sizes as ints and unknown ones as scalar tensors, which
``tf.reshape`` and ``tf.broadcast_to`` accept in their shape lists.

>>> import numpy as np, tensorflow as tf
>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
>>> prog = program(c, ["x"])
>>> expectation(prog, tf.constant([[0.0], [np.pi]])).numpy().round(5).tolist()
[[1.0], [-1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from qstore.core.circuit import UnifiedCircuit
from qstore.core.engine import generic
from qstore.core.engine.program import Program, compile_program
from qstore.core.observables import as_observables

Tensor = Any

_COMPLEX = {tf.float32: tf.complex64, tf.float64: tf.complex128}


class TFOps:
    """:class:`~qstore.core.engine.generic.ArrayOps` on TensorFlow (complex64 by default).

    Constants are embedded in the graph when tracing; in eager mode they are converted once and
    kept (keyed by the identity of the long-lived NumPy arrays the engine hands over).
    """

    def __init__(self, real_dtype: tf.DType = tf.float32) -> None:
        real_dtype = tf.as_dtype(real_dtype)
        if real_dtype not in _COMPLEX:
            raise TypeError(f"real_dtype must be float32 or float64, got {real_dtype.name}.")
        self.real_dtype = real_dtype
        self.complex_dtype = _COMPLEX[real_dtype]
        self._eager: dict[tuple[int, bool], tuple[object, tf.Tensor]] = {}

    def const(self, value: npt.ArrayLike, complex_: bool) -> Tensor:
        dtype = self.complex_dtype if complex_ else self.real_dtype
        if not tf.executing_eagerly():
            return tf.constant(np.asarray(value), dtype=dtype)
        key = (id(value), complex_)
        hit = self._eager.get(key)
        if hit is None or hit[0] is not value:
            hit = (value, tf.constant(np.asarray(value), dtype=dtype))
            if len(self._eager) > 4096:
                self._eager.clear()
            self._eager[key] = hit
        return hit[1]

    def to_real(self, x: Tensor) -> Tensor:
        return tf.cast(x, self.real_dtype)

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        return tf.linalg.matmul(a, b)

    def reshape(self, x: Tensor, shape: Sequence[Any]) -> Tensor:
        return tf.reshape(x, list(shape))

    def take(self, x: Tensor, index: npt.NDArray[np.intp]) -> Tensor:
        return tf.gather(x, np.asarray(index, dtype=np.int32), axis=-1)

    def exp_i(self, phase: Tensor) -> Tensor:
        return tf.complex(tf.cos(phase), tf.sin(phase))

    def abs2(self, z: Tensor) -> Tensor:
        return tf.math.square(tf.math.real(z)) + tf.math.square(tf.math.imag(z))

    def real(self, z: Tensor) -> Tensor:
        return tf.math.real(z)

    def conj(self, z: Tensor) -> Tensor:
        return tf.math.conj(z)

    def einsum(self, spec: str, *operands: Tensor) -> Tensor:
        return tf.einsum(spec, *operands)

    def moveaxis(self, x: Tensor, source: Sequence[int], dest: Sequence[int]) -> Tensor:
        rank = x.shape.rank
        src = [s % rank for s in source]
        dst = [d % rank for d in dest]
        order = [i for i in range(rank) if i not in src]
        for d, s in sorted(zip(dst, src, strict=True)):
            order.insert(d, s)
        return tf.transpose(x, order)

    def swap_last(self, x: Tensor) -> Tensor:
        return tf.linalg.matrix_transpose(x)

    def broadcast_to(self, x: Tensor, shape: Sequence[Any]) -> Tensor:
        return tf.broadcast_to(x, list(shape))

    def stack(self, xs: Sequence[Tensor], axis: int) -> Tensor:
        return tf.stack(list(xs), axis=axis)

    def unstack(self, x: Tensor, axis: int) -> list[Tensor]:
        return list(tf.unstack(x, axis=axis))

    def shape(self, x: Tensor) -> tuple[Any, ...]:
        static = x.shape.as_list()
        if all(s is not None for s in static):
            return tuple(static)
        dynamic = tf.shape(x)
        return tuple(dynamic[i] if s is None else s for i, s in enumerate(static))


_OPS: dict[tf.DType, TFOps] = {}


def ops_for(real_dtype: tf.DType) -> TFOps:
    """The shared :class:`TFOps` for a real dtype (float32 or float64)."""
    real_dtype = tf.as_dtype(real_dtype)
    if real_dtype not in _OPS:
        _OPS[real_dtype] = TFOps(real_dtype)
    return _OPS[real_dtype]


def program(
    circuit: UnifiedCircuit,
    names: Sequence[str] = (),
    shared_names: Sequence[str] = (),
    observables: Any = None,
) -> Program:
    """Compile ``circuit`` once for bindings ``names + shared_names`` (cached on the circuit).

    ``observables`` follows :func:`qstore.core.observables.as_observables` (``None``: ``Z`` on
    every qubit).
    """
    obs = tuple(as_observables(observables, circuit.n_qubits))
    return circuit.compiled(
        ("qstore.tf", tuple(names), tuple(shared_names), obs),
        lambda: compile_program(circuit, names, shared_names, obs),
    )


def bindings(inputs: Tensor | None, weights: Tensor, batch_of: Tensor) -> Tensor:
    """``[B, P]`` bindings: per-sample ``inputs [B, F]`` then ``weights`` repeated per sample."""
    flat = tf.reshape(weights, [1, -1])
    bsz = tf.shape(batch_of)[0]
    tiled = tf.tile(flat, tf.stack([bsz, 1]))
    if inputs is None:
        return tiled
    return tf.concat([tf.cast(inputs, weights.dtype), tiled], axis=1)


def expectation(prog: Program, values: Tensor, initial_state: Tensor | None = None) -> Tensor:
    """Expectations ``[B, n_obs]`` for bindings ``values [B, P]`` (dtype of ``values``)."""
    ops = ops_for(values.dtype)
    return generic.forward(ops, prog, values, initial_state)


def evolve(prog: Program, values: Tensor, initial_state: Tensor | None = None) -> Tensor:
    """Final states ``[B, 2**n]`` for bindings ``values [B, P]``."""
    ops = ops_for(values.dtype)
    return generic.run(ops, prog, values, initial_state)


def measure(prog: Program, state: Tensor) -> Tensor:
    """Expectations of ``prog``'s observables in ``state [B, 2**n]`` (real)."""
    real = tf.float64 if state.dtype == tf.complex128 else tf.float32
    return generic.expectations(ops_for(real), prog, state)
