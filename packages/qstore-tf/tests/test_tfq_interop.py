"""TensorFlow Quantum interop (runs in the ``tfq`` environment; skipped elsewhere).

Our ``QuantumLayer`` and TFQ's ``PQC``/``Expectation`` layers give the same outputs and gradients
for the same circuit; circuits convert to TFQ tensors and back; ``backend='qsim'`` runs on TFQ's
ops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

tfq = pytest.importorskip(
    "tensorflow_quantum", reason="tensorflow-quantum is not installed (use `hatch run tfq:test`)"
)

import cirq  # noqa: E402
import sympy  # noqa: E402
import tensorflow as tf  # noqa: E402

import qstore.core as qc  # noqa: E402
from qstore.tf import tfq as qtfq  # noqa: E402
from qstore.tf.layers import AmplitudeEncoding, QuantumLayer  # noqa: E402


def test_circuits_round_trip_through_tfq_tensors() -> None:
    c = qc.UnifiedCircuit(3)
    c.add_gate("H", 0).add_gate("CNOT", [0, 1]).add_gate("RY", 2, "theta")
    c.add_gate("RZ", 1, 2 * qc.Parameter("phi")).add_gate("CZ", [1, 2])
    tensor = qtfq.to_tensor([c, c])
    assert tensor.shape == (2,) and tensor.dtype == tf.string
    back = qtfq.from_tensor(tensor, n_qubits=3)
    assert back == [c, c]


def test_operator_tensor_matches_tfq_conversion() -> None:
    q = cirq.LineQubit.range(2)
    ours = qtfq.paulisum_tensor([qc.Z(0) * qc.Z(1), 0.5 * qc.X(1)], 2)
    theirs = tfq.convert_to_tensor([[cirq.Z(q[0]) * cirq.Z(q[1]), 0.5 * cirq.X(q[1])]])
    assert tfq.from_tensor(ours)[0].tolist() == tfq.from_tensor(theirs)[0].tolist()


def _values(layer: QuantumLayer, x: np.ndarray) -> tuple[list[str], np.ndarray]:
    _, names, wnames = layer.circuit(x.shape[1])
    w = np.tile(layer.kernel.numpy().ravel(), (x.shape[0], 1))
    return names + wnames, np.concatenate([x, w], axis=1).astype(np.float32)


@pytest.mark.parametrize("entanglement", ["linear", "full"])
def test_quantum_layer_matches_tfq_expectation_outputs_and_gradients(entanglement: str) -> None:
    n, bsz = 4, 6
    rng = np.random.default_rng(0)
    x = rng.uniform(0, np.pi, (bsz, 6)).astype(np.float32)
    layer = QuantumLayer(n, depth=3, entanglement=entanglement)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        ours = layer(xt)
        loss = tf.reduce_sum(ours * tf.range(1.0, n + 1.0))
    gx, gw = tape.gradient(loss, [xt, layer.kernel])

    circuit, _, _ = layer.circuit(6)
    names, values = _values(layer, x)
    qs = cirq.LineQubit.range(n)
    expectation = tfq.layers.Expectation(differentiator=tfq.differentiators.Adjoint())
    vt = tf.constant(values)
    with tf.GradientTape() as tape:
        tape.watch(vt)
        theirs = expectation(
            qtfq.to_tensor([circuit] * bsz),
            symbol_names=names,
            symbol_values=vt,
            operators=[cirq.Z(q) for q in qs],
        )
        loss = tf.reduce_sum(theirs * tf.range(1.0, n + 1.0))
    gv = tape.gradient(loss, vt).numpy()
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)
    np.testing.assert_allclose(gx.numpy(), gv[:, :6], atol=1e-4)
    # summed over the batch in float32 on both sides
    np.testing.assert_allclose(gw.numpy().ravel(), gv[:, 6:].sum(axis=0), rtol=2e-4, atol=5e-4)


_PQC_SCRIPT = """
import json, sys
import numpy as np, cirq, tensorflow as tf, tensorflow_quantum as tfq
import qstore.core as qc
args = json.loads(sys.stdin.read())
body = qc.UnifiedCircuit.from_json(args["body"])
qs = cirq.LineQubit.range(body.n_qubits)
enc = [cirq.Circuit(cirq.ry(float(v)).on(q) for v, q in zip(row, qs)) for row in args["x"]]
pqc = tfq.layers.PQC(body.to_cirq(qs), [cirq.Z(q) for q in qs],
                     differentiator=tfq.differentiators.Adjoint())
inputs = tfq.convert_to_tensor(enc)
pqc(inputs)
order = [str(s) for s in pqc.symbols]
pqc.set_weights([np.array([args["w"][s] for s in order], np.float32)])
with tf.GradientTape() as tape:
    out = pqc(inputs)
    loss = tf.reduce_sum(out ** 2)
g = tape.gradient(loss, pqc.trainable_weights[0]).numpy()
print(json.dumps({"out": out.numpy().tolist(), "grad": dict(zip(order, g.tolist()))}))
"""


def test_quantum_layer_matches_tfq_pqc() -> None:
    """PQC: encoding circuits as inputs, the trainable circuit inside TFQ's layer.

    TFQ 0.7.6's ``PQC`` builds only on tf_keras (Keras 2): it runs in a subprocess with
    ``TF_USE_LEGACY_KERAS=1``, on the same circuit, weights and inputs.
    """
    n, bsz = 3, 5
    x = np.random.default_rng(1).uniform(0, np.pi, (bsz, n))
    layer = QuantumLayer(n, depth=2)
    xt = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        ours = layer(xt)
        loss = tf.reduce_sum(ours**2)
    grad = tape.gradient(loss, layer.kernel).numpy().ravel()
    circuit, names, wnames = layer.circuit(n)
    body = qc.UnifiedCircuit(n)
    for op in circuit:
        if not set(op.symbols) & set(names):
            body.append(op)
    payload = {
        "body": body.to_json(),
        "x": x.tolist(),
        "w": dict(zip(wnames, layer.kernel.numpy().ravel().tolist(), strict=True)),
    }
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-c", _PQC_SCRIPT],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(ours.numpy(), theirs["out"], atol=1e-5)
    np.testing.assert_allclose(grad, [theirs["grad"][s] for s in wnames], rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("mode", ["features", "state"])
def test_qsim_backend_runs_on_tfq_ops(mode: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(0, np.pi, (4, 3)).astype(np.float32)
    if mode == "state":
        x = AmplitudeEncoding(3)(x).numpy()
    on_tfq = QuantumLayer(3, depth=2, backend="qsim", entanglement="circular")
    native = QuantumLayer(3, depth=2, entanglement="circular")
    on_tfq.build((None, x.shape[1]))
    native.build((None, x.shape[1]))
    native.kernel.assign(on_tfq.kernel)
    assert type(on_tfq._executor).__name__ == "_TFQ"
    results = []
    for layer in (on_tfq, native):
        xt = tf.constant(x)

        @tf.function
        def step(inp: tf.Tensor, layer: QuantumLayer = layer) -> tuple[tf.Tensor, ...]:
            with tf.GradientTape() as tape:
                tape.watch(inp)
                out = layer(inp)
                loss = tf.reduce_sum(tf.math.real(out) * tf.math.real(out))
            return (out, *tape.gradient(loss, [inp, layer.kernel]))

        results.append([t.numpy() for t in step(xt)])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-4)


def test_symbols_survive_in_tfq_tensors() -> None:
    c = qc.UnifiedCircuit(1).add_gate("RX", 0, "a")
    (back,) = tfq.from_tensor(qtfq.to_tensor([c]))
    assert {str(s) for s in cirq.parameter_symbols(back)} == {"a"}
    assert sympy.Symbol("a") in cirq.parameter_symbols(back)
