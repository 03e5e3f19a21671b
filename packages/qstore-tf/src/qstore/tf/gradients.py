"""Other Q-Store backends inside TensorFlow: thin ``tf.custom_gradient`` wrappers over
:mod:`qstore.core.adapter`.

The native engine (:mod:`qstore.tf.engine`) is differentiated by TensorFlow itself. Any other
backend (``local``, ``qsim``, ``lightning``, ``ionq_simulator``, a third-party plugin) runs through
the core adapter that ``qstore.torch`` uses too (binding layout, shots, gradient method, what the
forward pass keeps): here it is called through ``tf.numpy_function``, so the same code runs
eagerly and inside ``tf.function``. The forward pass hands the backward pass a token for what it
kept (a few recent forward passes are held; a backward pass whose forward was dropped, or ran in
another process, recomputes it).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from qstore.core.adapter import ExpectationAdapter, Forward, UnitaryAdapter

__all__ = ["backend_expectation", "backend_unitary", "unitary_from_fn"]

Tensor = Any
UnitaryFn = Callable[[npt.NDArray[np.float64]], npt.NDArray[Any]]

_KEPT = 4  # forward passes held for their backward passes (per process)


class _Kept:
    """Forward passes by token, the most recent ``_KEPT`` of them (thread-safe: replicas of a
    distribution strategy call in parallel)."""

    def __init__(self) -> None:
        self._items: OrderedDict[int, Forward] = OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def put(self, fwd: Forward) -> int:
        with self._lock:
            token = next(self._ids)
            self._items[token] = fwd
            while len(self._items) > _KEPT:
                self._items.popitem(last=False)
            return token

    def pop(self, token: int) -> Forward | None:
        with self._lock:
            return self._items.pop(token, None)


_kept = _Kept()


def backend_expectation(adapter: ExpectationAdapter, inputs: Tensor, weights: Tensor) -> Tensor:
    """Expectations ``[B, n_obs]`` of ``adapter``'s circuit, differentiable in both arguments.

    ``inputs [B, P]`` are the per-sample binding columns, ``weights`` (any shape, flattened in C
    order) the shared ones; the output has the dtype of ``weights``.
    """
    dtype = weights.dtype
    np_dtype = dtype.as_numpy_dtype
    n_obs = adapter.n_observables

    def forward(x: npt.NDArray[Any], w: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], np.int64]:
        fwd = adapter.forward(x, w.reshape(-1))
        return fwd.values.astype(np_dtype), np.int64(_kept.put(fwd))

    def backward(
        x: npt.NDArray[Any], w: npt.NDArray[Any], token: np.int64, dy: npt.NDArray[Any]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        fwd = _kept.pop(int(token))
        if fwd is None:  # dropped (many forward passes without backward) or another process
            fwd = adapter.forward(x, w.reshape(-1))
        gx, gw = adapter.vjp(fwd, np.asarray(dy, np.float64))
        return gx.astype(np_dtype), gw.astype(np_dtype).reshape(w.shape)

    @tf.custom_gradient
    def run(x: Tensor, w: Tensor) -> Any:
        y, token = tf.numpy_function(forward, [x, w], [dtype, tf.int64], stateful=True)
        y.set_shape([x.shape[0], n_obs])

        def grad(dy: Tensor) -> tuple[Tensor, Tensor]:
            gx, gw = tf.numpy_function(backward, [x, w, token, dy], [dtype, dtype], stateful=True)
            gx.set_shape(x.shape)
            gw.set_shape(w.shape)
            return gx, gw

        return y, grad

    return run(tf.cast(inputs, dtype), weights)


def backend_unitary(adapter: UnitaryAdapter, weights: Tensor) -> Tensor:
    """``U(w)`` as a complex ``[dim, dim]`` tensor, differentiable in ``weights``
    (complex128 for float64 weights, else complex64)."""
    dtype = weights.dtype
    np_dtype = dtype.as_numpy_dtype
    dim = adapter.dim

    def forward(w: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        u = adapter.unitary(w)
        return u.real.astype(np_dtype), u.imag.astype(np_dtype)

    def backward(
        w: npt.NDArray[Any], d_re: npt.NDArray[Any], d_im: npt.NDArray[Any]
    ) -> npt.NDArray[Any]:
        g = adapter.vjp(w, np.asarray(d_re, np.float64) + 1j * np.asarray(d_im, np.float64))
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


def unitary_from_fn(dim: int, unitaries: UnitaryFn, weights: Tensor) -> Tensor:
    """``U(w)`` from ``unitaries(w [V, S]) -> [V, dim, dim]`` evaluated on some simulator (the
    TFQ interop uses it); see :class:`~qstore.core.adapter.UnitaryAdapter`."""
    return backend_unitary(UnitaryAdapter(unitaries, dim), weights)
