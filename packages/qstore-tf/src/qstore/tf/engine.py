"""The Q-Store engine on TensorFlow tensors.

:class:`TFOps` implements the array operations of :mod:`qstore.core.engine.generic` with
TensorFlow ops, so the one engine of Q-Store runs inside ``tf.function``, under ``tf.distribute``
strategies and on GPUs. :func:`expectation` and :func:`evolve` are what the Keras layers call;
each is one ``tf.custom_gradient`` whose backward pass is the core's adjoint sweep
(:mod:`qstore.core.engine.adjoint`), not TensorFlow's autodiff over the many small operations of
the forward pass. On the CPU, registers of :data:`NUMPY_MIN_QUBITS` to :data:`NUMPY_MAX_QUBITS`
qubits run on NumPy through ``tf.numpy_function`` (eagerly and inside ``tf.function`` alike),
with the batch split over the cores; the forward pass hands the backward pass a token for the
states it kept.

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

import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from qstore.core.circuit import UnifiedCircuit
from qstore.core.engine import adjoint, generic
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

    def to_complex(self, x: Tensor) -> Tensor:
        return tf.cast(x, self.complex_dtype)

    def concat(self, xs: Sequence[Tensor], axis: int) -> Tensor:
        return tf.concat(list(xs), axis=axis)

    def sum(self, x: Tensor, axis: int | tuple[int, ...]) -> Tensor:
        return tf.reduce_sum(x, axis=list(axis) if isinstance(axis, tuple) else axis)

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


#: On the CPU, registers of ``NUMPY_MIN_QUBITS`` to ``NUMPY_MAX_QUBITS`` qubits simulate on
#: NumPy (see the module docstring), where the batch is split over the cores; smaller ones pay
#: more for the two ``numpy_function`` calls of a step (0.48 ms with functions that do nothing)
#: than NumPy saves. RW forward + gradient in ``tf.function``, batch 32, 2 threads, ms per step,
#: NumPy vs TFOps (2026-11-30): n=4 1.9 vs 0.81, n=8 2.8 vs 2.5 (the Fashion-MNIST block at 6
#: qubits: 2.1 vs 1.3), n=10 5.7 vs 7.1, n=12 16 vs 23, n=13 93 vs 79, n=14 ~110 vs ~120, n=15 175
#: vs 258, n=16 340 vs 490-640, n=17 1,750 vs 1,350, n=18 2,850 vs 2,450.
NUMPY_MIN_QUBITS = 10
NUMPY_MAX_QUBITS = 16

_KEPT = 8  # forward passes held for their backward passes (per process)


class _Kept:
    """Forward traces by token, the most recent ``_KEPT`` of them (thread-safe: replicas of a
    distribution strategy call in parallel)."""

    def __init__(self) -> None:
        self._items: OrderedDict[int, adjoint.SplitTrace] = OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def put(self, tr: adjoint.SplitTrace) -> int:
        with self._lock:
            token = next(self._ids)
            self._items[token] = tr
            while len(self._items) > _KEPT:
                self._items.popitem(last=False)
            return token

    def pop(self, token: int) -> adjoint.SplitTrace | None:
        with self._lock:
            return self._items.pop(token, None)


_kept = _Kept()
_NUMPY_OPS = {
    tf.float32: generic.NumpyOps(np.complex64),
    tf.float64: generic.NumpyOps(np.complex128),
}
_HAS_GPU: list[bool] = []


def _use_numpy(prog: Program) -> bool:
    if not _HAS_GPU:
        _HAS_GPU.append(bool(tf.config.list_logical_devices("GPU")))
    return NUMPY_MIN_QUBITS <= prog.n_qubits <= NUMPY_MAX_QUBITS and not _HAS_GPU[0]


def _split_grads(
    ops: Any, prog: Program, got: adjoint.Cotangents, all_columns: bool
) -> tuple[Any, Any]:
    """``(d/dinputs [B, P_b], d/dweights [S])`` from the adjoint pass's cotangents; with
    ``all_columns`` the inputs hold every column (and the weights none)."""
    if all_columns:
        rows = got.per_row(ops)
        return rows, ops.sum(rows[:, :0], 0)
    nb = prog.n_batched
    rows = got.rows
    g_w = ops.sum(rows[:, nb:], 0)
    if got.total is not None:
        g_w = g_w + got.total[nb:]
    return rows[:, :nb], g_w


def _numpy_simulate(
    prog: Program,
    inputs: Tensor,
    weights: Tensor,
    initial_state: Tensor | None,
    measure: bool,
    all_columns: bool,
) -> Tensor:
    """The engine on NumPy inside one ``tf.custom_gradient`` (see the module docstring)."""
    rdtype = tf.as_dtype(weights.dtype)
    cdtype = _COMPLEX[rdtype]
    ops = _NUMPY_OPS[rdtype]
    has_init = initial_state is not None
    assert prog.observables is not None or not measure
    width = prog.observables.n_obs if measure and prog.observables else 1 << prog.n_qubits
    out_dtype = rdtype if measure else cdtype

    def values(x: Any, w: Any) -> Any:
        return np.concatenate([x, np.broadcast_to(w, (x.shape[0], w.shape[0]))], axis=1)

    def forward(x: Any, w: Any, *init: Any) -> tuple[Any, np.int64]:
        # large batches split over threads (qstore.core.engine.threads)
        v = values(x, w)
        out, st = adjoint.trace_split(ops, prog, v, init[0] if init else None, measure)
        return np.asarray(out, dtype=out_dtype.as_numpy_dtype), np.int64(_kept.put(st))

    def backward(token: Any, g: Any, x: Any, w: Any, *init: Any) -> list[Any]:
        st = _kept.pop(int(token))
        if st is None:  # dropped (many forward passes without backward) or another process
            _, st = adjoint.trace_split(ops, prog, values(x, w), init[0] if init else None, measure)
        # TensorFlow hands a complex output's gradient as 2 dL/d conj(psi)
        got = adjoint.backward_split(ops, prog, st, g if measure else g * 0.5, measure)
        g_in, g_w = _split_grads(ops, prog, got, all_columns)
        real = rdtype.as_numpy_dtype
        out = [np.asarray(g_in, dtype=real), np.asarray(g_w, dtype=real)]
        if has_init:
            assert got.state is not None
            out.append(np.asarray(2.0 * got.state, dtype=cdtype.as_numpy_dtype))
        return out

    @tf.custom_gradient
    def run(*args: Tensor) -> Any:
        y, token = tf.numpy_function(forward, list(args), [out_dtype, tf.int64], stateful=True)
        y.set_shape([args[0].shape[0], width])

        def grad(dy: Tensor) -> Any:
            kinds = [rdtype, rdtype, cdtype] if has_init else [rdtype, rdtype]
            res = tf.numpy_function(backward, [token, dy, *args], kinds, stateful=True)
            res = list(res)
            for r, a in zip(res, args, strict=True):
                r.set_shape(a.shape)
            return res

        return y, grad

    args = [inputs, weights]
    if initial_state is not None:
        args.append(tf.cast(initial_state, cdtype))
    return run(*args)


def _tf_simulate(
    prog: Program,
    inputs: Tensor,
    weights: Tensor,
    initial_state: Tensor | None,
    measure: bool,
    all_columns: bool,
) -> Tensor:
    """The engine on TensorFlow ops inside one ``tf.custom_gradient`` (GPUs, large registers)."""
    ops = ops_for(weights.dtype)
    has_init = initial_state is not None

    @tf.custom_gradient
    def run(*args: Tensor) -> Any:
        values = bindings(args[0], args[1], args[0])
        tr = adjoint.trace(ops, prog, values, args[2] if has_init else None)
        y = generic.expectations(ops, prog, tr.final) if measure else tr.final

        def grad(dy: Tensor) -> Any:
            lam = adjoint.costate(ops, prog, tr.final, dy) if measure else dy * 0.5
            got = adjoint.backward(ops, prog, tr, lam)
            g_in, g_w = _split_grads(ops, prog, got, all_columns)
            return [g_in, g_w, 2.0 * got.state] if has_init else [g_in, g_w]

        return y, grad

    args = [inputs, weights] + ([] if initial_state is None else [initial_state])
    return run(*args)


def _simulate(
    prog: Program,
    values: Tensor,
    initial_state: Tensor | None,
    measure: bool,
    weights: Tensor | None = None,
) -> Tensor:
    all_columns = weights is None  # ``values`` holds every column, shared ones included
    if weights is None:
        weights = tf.zeros([0], dtype=values.dtype)
    else:
        weights = tf.cast(tf.reshape(weights, [-1]), values.dtype)
    if _use_numpy(prog):
        return _numpy_simulate(prog, values, weights, initial_state, measure, all_columns)
    return _tf_simulate(prog, values, weights, initial_state, measure, all_columns)


def expectation(
    prog: Program,
    values: Tensor,
    initial_state: Tensor | None = None,
    weights: Tensor | None = None,
) -> Tensor:
    """Expectations ``[B, n_obs]`` for bindings ``values [B, P]`` (dtype of ``values``), or,
    with ``weights [S]``, for per-sample columns ``values [B, P_b]`` and the shared columns
    ``weights``, whose gradient the adjoint pass sums over the batch itself."""
    return _simulate(prog, values, initial_state, True, weights)


def evolve(
    prog: Program,
    values: Tensor,
    initial_state: Tensor | None = None,
    weights: Tensor | None = None,
) -> Tensor:
    """Final states ``[B, 2**n]``; ``values`` and ``weights`` as for :func:`expectation`."""
    return _simulate(prog, values, initial_state, False, weights)


def measure(prog: Program, state: Tensor) -> Tensor:
    """Expectations of ``prog``'s observables in ``state [B, 2**n]`` (real)."""
    real = tf.float64 if state.dtype == tf.complex128 else tf.float32
    return generic.expectations(ops_for(real), prog, state)
