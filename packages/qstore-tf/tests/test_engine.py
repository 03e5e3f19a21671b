"""The engine on TensorFlow ops against the NumPy ``local`` backend and dense unitaries."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import qstore.core as qc
from qstore.core.backends.local import LocalBackend
from qstore.core.observables import X, Y, Z
from qstore.core.templates import layer_circuit
from qstore.tf import engine
from qstore.tf.engine import TFOps


@pytest.fixture(params=["numpy", "tf-ops"])
def numpy_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both implementations of the one custom gradient, whatever the register size: NumPy
    through ``tf.numpy_function`` and TensorFlow ops."""
    if request.param == "numpy":
        monkeypatch.setattr(engine, "NUMPY_MIN_QUBITS", 0)
        monkeypatch.setattr(engine, "NUMPY_MAX_QUBITS", 30)
        return True
    monkeypatch.setattr(engine, "NUMPY_MAX_QUBITS", -1)
    return False


def _mixed_circuit(n: int) -> qc.UnifiedCircuit:
    """Every kind of engine op: fused layers, permutations, diagonals, general and product gates."""
    c = qc.UnifiedCircuit(n)
    for i in range(n):
        c.add_gate("RY", i, f"x{i}")
    c.add_gate("H", 1).add_gate("GPI2", n - 1, "w_a")
    for i in range(n):
        c.add_gate("RX", i, f"w0_{i}").add_gate("RZ", i, 2 * qc.Parameter(f"v0_{i}") + 0.1)
    for i in range(n - 1):
        c.add_gate("CNOT", [i, i + 1])
    c.add_gate("CRY", [0, 2], "w_b").add_gate("RZZ", [1, n - 1], "w_c").add_gate("CZ", [0, n - 1])
    c.add_gate("RX", 0, qc.Parameter("x1") * qc.Parameter("w_c")).add_gate("SWAP", [0, 2])
    c.add_gate("MS", [n - 1, 1], ["w_a", "x2", 0.7]).add_gate("U3", 2, ["w_b", 0.3, "x0"])
    return c


@pytest.mark.parametrize("real", [tf.float32, tf.float64])
def test_forward_and_gradients_match_local_backend(real: tf.DType, numpy_engine: bool) -> None:
    n, bsz = 4, 5
    rng = np.random.default_rng(1)
    c = _mixed_circuit(n)
    obs = [Z(0), Z(1) * Z(2), X(3) + 0.5 * Y(0) * X(1)]
    names = [f"x{i}" for i in range(n)]
    wnames = [s for s in c.parameter_names if s not in names]
    x = rng.uniform(0, np.pi, (bsz, n))
    w = rng.uniform(-3, 3, len(wnames))
    cot = rng.normal(size=(bsz, len(obs)))
    prog = engine.program(c, names, wnames, obs)
    xt, wt = tf.constant(x, real), tf.constant(w, real)
    with tf.GradientTape() as tape:
        tape.watch([xt, wt])
        y = engine.expectation(prog, engine.bindings(xt, wt, xt))
        loss = tf.reduce_sum(y * tf.constant(cot, real))
    gx, gw = tape.gradient(loss, [xt, wt])
    ref, rgx, rgw = LocalBackend().value_and_vjp(
        c, obs, x, cot, names=names, shared=dict(zip(wnames, w, strict=True))
    )
    tol = 2e-5 if real == tf.float32 else 1e-11
    assert y.dtype == real
    np.testing.assert_allclose(y.numpy(), ref, atol=tol)
    np.testing.assert_allclose(gx.numpy(), rgx, atol=10 * tol)
    np.testing.assert_allclose(gw.numpy(), rgw, atol=10 * tol)


def test_runs_in_tf_function_with_unknown_batch(numpy_engine: bool) -> None:
    n = 3
    c, names, wnames = layer_circuit(n, depth=2, n_features=5, entanglement="circular")
    prog = engine.program(c, names, wnames)
    w = tf.constant(np.linspace(0, 2, 2 * n * 2).reshape(2, n, 2), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32)])
    def f(x: tf.Tensor) -> tf.Tensor:
        return engine.expectation(prog, engine.bindings(x, w, x))

    x = np.random.default_rng(2).uniform(0, 3, (7, 5))
    got = f(tf.constant(x, tf.float32)).numpy()
    ref = LocalBackend().expectation(
        c, None, x, names=names, shared=dict(zip(wnames, w.numpy().ravel(), strict=True))
    )
    np.testing.assert_allclose(got, ref, atol=2e-6)
    assert f(tf.constant(x[:2], tf.float32)).shape == (2, n)  # no retrace needed


def test_evolve_applies_the_circuit_unitary_to_a_given_state(numpy_engine: bool) -> None:
    n = 3
    c, _, wnames = layer_circuit(n, depth=2, encoding="none", entanglement="full")
    rng = np.random.default_rng(3)
    psi = rng.normal(size=(4, 8)) + 1j * rng.normal(size=(4, 8))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    w = rng.uniform(0, 6, len(wnames))
    prog = engine.program(c, (), wnames, None)

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.complex128)])
    def f(state: tf.Tensor) -> tf.Tensor:
        return engine.evolve(prog, engine.bindings(None, tf.constant(w), state), state)

    u = c.unitary(dict(zip(wnames, w, strict=True)))
    np.testing.assert_allclose(f(tf.constant(psi)).numpy(), psi @ u.T, atol=1e-12)


def test_the_numpy_engine_runs_where_it_was_measured_faster() -> None:
    def prog(n: int) -> object:
        return engine.program(qc.UnifiedCircuit(n).add_gate("RY", 0, "x"), ["x"])

    on_cpu = not tf.config.list_logical_devices("GPU")
    assert not engine._use_numpy(prog(6))  # TensorFlow's kernels: no numpy_function round trip
    assert engine._use_numpy(prog(12)) == on_cpu  # NumPy, the batch split over the cores
    assert not engine._use_numpy(prog(engine.NUMPY_MAX_QUBITS + 1))


def test_moveaxis_matches_numpy() -> None:
    ops = TFOps()
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    for src, dst in [([1], [3]), ([1, 3], [2, 3]), ([3, 1], [1, 2]), ([0, 2], [3, 1])]:
        np.testing.assert_array_equal(
            ops.moveaxis(tf.constant(x), src, dst).numpy(), np.moveaxis(x, src, dst)
        )


def test_bad_dtype_is_refused() -> None:
    with pytest.raises(TypeError, match="float32 or float64"):
        TFOps(tf.int32)


def test_state_in_state_out_gradients_match_finite_differences(numpy_engine: bool) -> None:
    n, bsz = 3, 4
    rng = np.random.default_rng(3)
    c = _mixed_circuit(n)
    wnames = list(c.parameter_names)
    prog = engine.program(c, [], wnames, None)
    w0 = rng.uniform(-3, 3, len(wnames))
    psi = rng.normal(size=(bsz, 2**n)) + 1j * rng.normal(size=(bsz, 2**n))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    weight = rng.normal(size=(bsz, 2**n))

    @tf.function
    def loss_and_grads(w: tf.Tensor, s: tf.Tensor) -> tuple[tf.Tensor, ...]:
        with tf.GradientTape() as tape:
            tape.watch([w, s])
            out = engine.evolve(prog, engine.bindings(None, w, s), s)
            loss = tf.reduce_sum(tf.abs(out) ** 2 * weight)
        gw, gs = tape.gradient(loss, [w, s])
        return loss, gw, gs

    def loss_of(w: np.ndarray, s: np.ndarray) -> float:
        return float(loss_and_grads(tf.constant(w), tf.constant(s))[0])

    _, gw, gs = loss_and_grads(tf.constant(w0), tf.constant(psi))
    h = 1e-6
    for k in range(len(w0)):
        step = np.zeros_like(w0)
        step[k] = h
        fd = (loss_of(w0 + step, psi) - loss_of(w0 - step, psi)) / (2 * h)
        assert abs(gw.numpy()[k] - fd) < 1e-7
    # d/dpsi in TensorFlow's convention: dL/dRe + i dL/dIm
    for b, j in [(0, 0), (1, 3), (3, 7)]:
        for unit in (1.0, 1j):
            step = np.zeros_like(psi)
            step[b, j] = h * unit
            fd = (loss_of(w0, psi + step) - loss_of(w0, psi - step)) / (2 * h)
            got = gs.numpy()[b, j].real if unit == 1.0 else gs.numpy()[b, j].imag
            assert abs(got - fd) < 1e-7
