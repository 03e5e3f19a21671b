"""Reference workload (RW) through Keras layers: ``qstore.tf.layers.QuantumLayer`` next to
TensorFlow Quantum's ``Expectation`` and ``PQC`` layers, same run.

RW (see PERF.md): n qubits, batch 32, features x ~ U[0, π] of shape [32, n], RY(x_i) encoding,
4 layers of RY and RZ on every qubit then a CNOT chain, <Z_i> on every qubit, loss = sum of
outputs. ``QuantumLayer(n, depth=4)`` with n features is exactly this circuit. Figures are
samples/s = 32 / median seconds of one batch (>= ``--reps`` timed repetitions after a warm-up),
for the forward pass and for forward + gradient with respect to the weights, each in
``tf.function``.

Contenders: Q-Store ``backend='tf'`` (float32 and float64); TFQ ``Expectation`` with the adjoint
differentiator, symbol values ``[32, n + P]`` (PERF.md's peer); TFQ ``PQC`` (adjoint) fed the 32
encoding circuits, when it can be built (TFQ 0.7.6's ``PQC`` needs tf_keras: run with
``TF_USE_LEGACY_KERAS=1`` to include it; the Keras 3 layers of Q-Store are unaffected).

Run (TensorFlow Quantum environment, so that the peers are there):
``OMP_NUM_THREADS=1 hatch run tfq:python benchmarks/tf_layers.py --qubits 8 16``
Without TFQ it measures Q-Store alone.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rw import (
    LAYERS,
    data,
    machine_meta,
    print_ratio_table,
    rw_circuit,
    time_contenders,
    write_json,
)

Pair = tuple[Callable[[], object], Callable[[], object]]


def qstore_tf(n: int, dtype: str) -> Pair:
    import tensorflow as tf

    from qstore.tf.layers import QuantumLayer

    x0, w0 = data(n)
    layer = QuantumLayer(n, depth=LAYERS, dtype=dtype)
    x = tf.constant(x0, dtype)
    layer.build((None, n))
    layer.kernel.assign(w0.astype(dtype))

    @tf.function
    def fwd() -> Any:
        return tf.reduce_sum(layer(x))

    @tf.function
    def fwd_grad() -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, layer.kernel)

    return (lambda: fwd().numpy()), (lambda: fwd_grad().numpy())


def tfq_expectation(n: int) -> Pair:
    from qstore.tf.bench import tfq_case

    case = tfq_case(n)
    assert case.forward_grad is not None
    return case.forward, case.forward_grad


def tfq_pqc(n: int) -> Pair:
    import cirq
    import numpy as np
    import tensorflow as tf
    import tensorflow_quantum as tfq

    import qstore.core as qc

    x0, w0 = data(n)
    rw, xs, ws = rw_circuit(n)
    qs = cirq.LineQubit.range(n)
    body = qc.UnifiedCircuit(n)
    for op in rw:
        if not set(op.symbols) & set(xs):
            body.append(op)
    encodings = [
        cirq.Circuit(cirq.ry(float(v)).on(q) for v, q in zip(row, qs, strict=True)) for row in x0
    ]
    inputs = tfq.convert_to_tensor(encodings)
    pqc = tfq.layers.PQC(
        body.to_cirq(qs), [cirq.Z(q) for q in qs], differentiator=tfq.differentiators.Adjoint()
    )
    pqc(inputs)
    order = [str(s) for s in pqc.symbols]
    wmap = dict(zip(ws, w0.ravel(), strict=True))
    pqc.set_weights([np.array([wmap[s] for s in order], dtype=np.float32)])

    @tf.function
    def fwd() -> Any:
        return tf.reduce_sum(pqc(inputs))

    @tf.function
    def fwd_grad() -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(pqc(inputs))
        return tape.gradient(loss, pqc.trainable_weights[0])

    return (lambda: fwd().numpy()), (lambda: fwd_grad().numpy())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--qubits", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=20.0, help="max seconds per measurement")
    ap.add_argument("--out", help="write JSON results here")
    args = ap.parse_args(argv)
    from qstore.tf.bench import tf_module

    tf_module()  # thread pools from OMP_NUM_THREADS, before the runtime starts

    contenders: list[tuple[str, Callable[[int], Pair]]] = [
        ("qstore QuantumLayer tf float32", lambda n: qstore_tf(n, "float32")),
        ("qstore QuantumLayer tf float64", lambda n: qstore_tf(n, "float64")),
        ("tfq Expectation adjoint", tfq_expectation),
        ("tfq PQC adjoint", tfq_pqc),
    ]
    results = time_contenders(
        args.qubits, contenders, args.reps, args.budget, skip=(ImportError, ValueError, TypeError)
    )
    print_ratio_table(results, "tfq", "TFQ")
    import tensorflow as tf

    meta = machine_meta(
        tensorflow=tf.__version__, TF_USE_LEGACY_KERAS=os.environ.get("TF_USE_LEGACY_KERAS")
    )
    print(json.dumps(meta))
    write_json(args.out, meta, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
