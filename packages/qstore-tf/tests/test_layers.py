"""Keras layers: outputs and gradients against Cirq, the ``local`` backend and finite differences;
the two model shapes of SPEC §4.1; serialisation, callbacks, precision policies and bad configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cirq
import keras
import numpy as np
import pytest
import tensorflow as tf

import qstore.core as qc
from qstore.core.backends.local import LocalBackend
from qstore.core.errors import LayerConfigError, LayerInputError, QStoreError
from qstore.tf import layers
from qstore.tf.layers import AmplitudeEncoding, ExpectationValue, QuantumLayer


def _cirq_expectations(layer: QuantumLayer, x: np.ndarray) -> np.ndarray:
    """<Z_i> from Cirq's simulator on the layer's circuit (an independent reference)."""
    circuit, names, wnames = layer.circuit(x.shape[1])
    qubits = cirq.LineQubit.range(layer.n_qubits)
    cc = circuit.to_cirq(qubits)
    w = layer.kernel.numpy().astype(np.float64).ravel()
    out = []
    for row in x:
        resolver = {**dict(zip(names, row, strict=True)), **dict(zip(wnames, w, strict=True))}
        psi = (
            cirq.Simulator(dtype=np.complex128)
            .simulate(cc, param_resolver=cirq.ParamResolver(resolver), qubit_order=qubits)
            .final_state_vector
        )
        zs = [
            cirq.Z(q).expectation_from_state_vector(psi, {q: i for i, q in enumerate(qubits)})
            for q in qubits
        ]
        out.append(np.real(zs))
    return np.asarray(out)


def _grads(layer: keras.layers.Layer, x: Any, weights: np.ndarray) -> tuple[Any, Any, Any]:
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(tf.math.real(y) * tf.cast(weights, tf.math.real(y).dtype))
    gx, gw = tape.gradient(loss, [x, layer.kernel])
    return y.numpy(), gx.numpy(), gw.numpy()


@pytest.mark.parametrize(("n", "features", "entanglement"), [(4, 4, "linear"), (3, 8, "full")])
def test_features_in_expectations_out_match_cirq_and_local(
    n: int, features: int, entanglement: str
) -> None:
    rng = np.random.default_rng(0)
    layer = QuantumLayer(n, depth=3, entanglement=entanglement)
    x = rng.uniform(0, np.pi, (5, features)).astype(np.float32)
    cot = rng.normal(size=(5, n))
    y, gx, gw = _grads(layer, x, cot)
    assert y.shape == (5, n) and y.dtype == np.float32
    np.testing.assert_allclose(y, _cirq_expectations(layer, x.astype(np.float64)), atol=2e-6)
    circuit, names, wnames = layer.circuit(features)
    w = layer.kernel.numpy().astype(np.float64)
    ref, rgx, rgw = LocalBackend().value_and_vjp(
        circuit, None, x, cot, names=names, shared=dict(zip(wnames, w.ravel(), strict=True))
    )
    np.testing.assert_allclose(y, ref, atol=2e-6)
    np.testing.assert_allclose(gx, rgx, atol=2e-5)
    np.testing.assert_allclose(gw, rgw.reshape(w.shape), atol=2e-5)


def test_float64_layer_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    layer = QuantumLayer(3, depth=2, dtype="float64")
    x = rng.uniform(0, np.pi, (2, 5))
    y, gx, gw = _grads(layer, x, np.ones((2, 3)))
    assert y.dtype == np.float64
    w0 = layer.kernel.numpy().copy()
    eps = 1e-6
    for idx in [(0, 0, 0), (1, 2, 1), (0, 1, 1)]:
        for sign, store in ((1, "p"), (-1, "m")):
            w = w0.copy()
            w[idx] += sign * eps
            layer.kernel.assign(w)
            val = float(tf.reduce_sum(layer(x)))
            if store == "p":
                plus = val
            else:
                minus = val
        assert abs((plus - minus) / (2 * eps) - gw[idx]) < 1e-8
    layer.kernel.assign(w0)
    xp = x.copy()
    xp[1, 4] += eps
    xm = x.copy()
    xm[1, 4] -= eps
    fd = (float(tf.reduce_sum(layer(xp))) - float(tf.reduce_sum(layer(xm)))) / (2 * eps)
    assert abs(fd - gx[1, 4]) < 1e-8


def test_state_in_state_out_matches_dense_unitary() -> None:
    rng = np.random.default_rng(2)
    feats = rng.uniform(-1, 1, (4, 6))
    state = AmplitudeEncoding(3, dtype="float64")(feats).numpy()
    padded = np.pad(feats, [(0, 0), (0, 2)])
    np.testing.assert_allclose(state, padded / np.linalg.norm(padded, axis=1, keepdims=True))
    layer = QuantumLayer(3, depth=2, entanglement="circular", dtype="float64")
    out = layer(state).numpy()
    circuit, _, wnames = layer.circuit(0)
    u = circuit.unitary(dict(zip(wnames, layer.kernel.numpy().ravel(), strict=True)))
    np.testing.assert_allclose(out, state @ u.T, atol=1e-12)
    z = ExpectationValue(observables=[cirq.Z] * 3, dtype="float64")(out).numpy()
    ref = [[np.real(o.conj() @ m @ o) for m in _z_diagonals(3)] for o in out]
    np.testing.assert_allclose(z, ref, atol=1e-12)


def _z_diagonals(n: int) -> list[np.ndarray]:
    idx = np.arange(1 << n)
    return [np.diag(1.0 - 2 * ((idx >> (n - 1 - q)) & 1)) for q in range(n)]


def test_expectation_value_takes_pauli_sums_and_cirq_forms() -> None:
    rng = np.random.default_rng(3)
    psi = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    q = cirq.LineQubit.range(2)
    obs = [qc.Z(0) * qc.Z(1), 0.5 * qc.X(1) + qc.Y(0), cirq.X(q[0]) * cirq.Y(q[1])]
    got = ExpectationValue(observables=obs, dtype="float64")(psi).numpy()
    mats = [
        np.kron(np.diag([1, -1]), np.diag([1, -1])),
        0.5 * np.kron(np.eye(2), [[0, 1], [1, 0]]) + np.kron([[0, -1j], [1j, 0]], np.eye(2)),
        np.kron([[0, 1], [1, 0]], [[0, -1j], [1j, 0]]),
    ]
    ref = [[np.real(p.conj() @ m @ p) for m in mats] for p in psi]
    np.testing.assert_allclose(got, ref, atol=1e-12)


@pytest.mark.parametrize("mode", ["features", "state"])
def test_backend_path_matches_native_outputs_and_gradients(mode: str) -> None:
    rng = np.random.default_rng(4)
    native = QuantumLayer(3, depth=2, entanglement="full")
    other = QuantumLayer(3, depth=2, entanglement="full", backend="local")
    x = rng.uniform(0, np.pi, (4, 5)).astype(np.float32)
    if mode == "state":
        x = AmplitudeEncoding(3)(x).numpy()
    native.build((None, x.shape[1]))
    other.build((None, x.shape[1]))
    other.kernel.assign(native.kernel)
    cot = rng.normal(size=(4, 3 if mode == "features" else 8))
    for a, b in zip(_grads(native, x, cot), _grads(other, x, cot), strict=True):
        np.testing.assert_allclose(a, b, atol=3e-5)


def test_backend_object_runs_inside_tf_function() -> None:
    layer = QuantumLayer(2, depth=1, backend=LocalBackend(dtype="complex128"))
    x = np.array([[0.1, 0.2], [0.3, 0.4]], np.float32)
    eager = layer(x).numpy()
    traced = tf.function(layer)(tf.constant(x)).numpy()
    np.testing.assert_allclose(eager, traced, atol=1e-7)
    assert layer.get_config()["backend"] == "local"


def _first_model(backend: str = "tf") -> keras.Model:
    inputs = keras.Input((64,))
    h = keras.layers.Dense(32, activation="relu")(inputs)
    s = AmplitudeEncoding(n_qubits=6)(h)
    s = QuantumLayer(n_qubits=6, depth=4, backend=backend)(s)
    z = ExpectationValue(observables=[cirq.Z] * 6)(s)
    h = keras.layers.Dense(128)(z)
    h = keras.layers.Dropout(0.2)(h)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))


def _data(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 64)).astype(np.float32), rng.integers(0, 10, n)


@pytest.mark.slow
def test_first_model_fits_with_the_seed_callbacks(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    model = _first_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data()
    history = model.fit(
        x,
        y,
        validation_split=0.2,
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[
            keras.callbacks.TensorBoard(log_dir="./logs"),
            keras.callbacks.EarlyStopping(patience=3),
            keras.callbacks.ModelCheckpoint("best_model.h5"),
            keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        ],
    )
    assert len(history.history["loss"]) == 2
    assert np.isfinite(history.history["val_loss"]).all()
    assert (tmp_path / "best_model.h5").stat().st_size > 0
    assert any((tmp_path / "logs").rglob("events.out.tfevents.*"))
    loss, acc = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss) and 0 <= acc <= 1
    pred = model.predict(x[:7], verbose=0)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-5)
    reloaded = keras.models.load_model("best_model.h5")
    np.testing.assert_allclose(reloaded.predict(x[:7], verbose=0), pred, atol=1e-6)


@pytest.mark.slow
def test_second_model_trains_and_round_trips_through_keras_file(tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((64,)), QuantumLayer(n_qubits=8, depth=4), keras.layers.Dense(10)]
    )
    model.compile("adam", "mse")
    x, _ = _data(64)
    y = np.random.default_rng(1).normal(size=(64, 10)).astype(np.float32)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert isinstance(loaded.layers[0], QuantumLayer)


def test_config_round_trip_keeps_every_setting() -> None:
    layer = QuantumLayer(
        4,
        depth=3,
        entanglement="circular",
        observables=[qc.Z(0) * qc.Z(1), 0.5 * qc.X(3)],
        weights_initializer=keras.initializers.RandomNormal(seed=3),
        name="q",
    )
    clone = QuantumLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.observables == layer.observables
    ev = ExpectationValue(observables=[cirq.Z] * 2)
    assert ExpectationValue.from_config(ev.get_config()).observables == ev.observables
    assert AmplitudeEncoding.from_config(AmplitudeEncoding(5).get_config()).n_qubits == 5
    assert keras.saving.get_registered_name(QuantumLayer) == "qstore>QuantumLayer"


def test_mixed_precision_keeps_float32_simulation() -> None:
    layer = QuantumLayer(3, depth=2, dtype="mixed_float16")
    x = np.random.default_rng(5).uniform(0, 3, (2, 3)).astype(np.float32)
    y = layer(x)
    assert y.dtype == tf.float16
    assert layer.kernel.dtype == "float32"
    exact = QuantumLayer(3, depth=2)
    exact.build((None, 3))
    exact.kernel.assign(layer.kernel)
    np.testing.assert_allclose(y.numpy(), exact(x).numpy(), atol=2e-3)


def test_strategy_scope_and_tf_function() -> None:
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((5,)), QuantumLayer(3, depth=1), keras.layers.Dense(1)]
        )
        model.compile("sgd", "mse")
    x = np.random.default_rng(6).normal(size=(16, 5)).astype(np.float32)
    model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(model.predict(x, verbose=0)).all()


def test_mismatched_widths_fail_when_the_model_is_built() -> None:
    inputs = keras.Input((40,))
    state = AmplitudeEncoding(n_qubits=6)(inputs)
    with pytest.raises(LayerInputError, match=r"5 qubits need 2\*\*5 = 32 amplitudes.*6 qubits"):
        QuantumLayer(n_qubits=5)(state)
    with pytest.raises(LayerInputError, match="40 features do not fit in the 32 amplitudes"):
        AmplitudeEncoding(n_qubits=5)(inputs)
    with pytest.raises(LayerConfigError, match=r"acts on qubit 6.*only 6 qubits"):
        ExpectationValue(observables=[cirq.Z] * 7)(state)
    with pytest.raises(LayerInputError, match="ExpectationValue measures a quantum state"):
        ExpectationValue()(keras.Input((64,)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"entanglement": "ring"}, LayerConfigError, "entanglement must be one of .* 'ring'"),
        ({"depth": 0}, LayerConfigError, "depth must be a positive int, got 0"),
        ({"encoding": "basis"}, LayerConfigError, "encoding must be one of .* 'basis'"),
        ({"observables": [qc.Z(9)]}, LayerConfigError, "acts on qubit 9"),
        ({"shots": 0}, LayerConfigError, "shots must be a positive int"),
        ({"gradient_method": "magic"}, LayerConfigError, "gradient_method must be one of"),
        ({"shots": 10}, LayerConfigError, "backend='tf' runs on TensorFlow ops"),
        (
            {"backend": "local", "gradient_method": "adjoint", "shots": 10},
            LayerConfigError,
            "cannot be combined with shots",
        ),
        (
            {"backend": "local", "encoding": "amplitude", "gradient_method": "spsa"},
            LayerConfigError,
            "'spsa' cannot apply to quantum-state inputs",
        ),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        QuantumLayer(4, **kwargs)


def test_unknown_backend_fails_at_build_time() -> None:
    with pytest.raises(QStoreError, match="no_such_backend"):
        keras.Sequential([keras.Input((4,)), QuantumLayer(4, backend="no_such_backend")])


def test_qsim_backend_runs_on_qsim_or_says_what_to_install() -> None:
    """``backend='qsim'``: TFQ's qsim ops, or the qsim plugin, or a clear install hint."""
    from qstore.core import backends
    from qstore.tf import tfq

    x = np.random.default_rng(7).uniform(0, 3, (3, 4)).astype(np.float32)
    if not tfq.available() and "qsim" not in backends.available():
        with pytest.raises(ImportError, match="qstore-sim-qsim"):
            QuantumLayer(4, backend="qsim")(x)
        return
    for inputs, cot in ((x, np.ones((3, 4))), (AmplitudeEncoding(4)(x).numpy(), np.ones((3, 16)))):
        layer = QuantumLayer(4, depth=2, backend="qsim")
        native = QuantumLayer(4, depth=2)
        native.build((None, inputs.shape[1]))
        y, gx, gw = _grads(layer, inputs, cot)
        native.kernel.assign(layer.kernel)
        for a, b in zip((y, gx, gw), _grads(native, inputs, cot), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)


def test_observables_serialise_to_json_data() -> None:
    obs = layers.normalise_observables([qc.Z(0) * qc.X(2), -0.25 * qc.Y(1)])
    data = layers.observables_config(obs)
    assert data == [
        {"terms": [[1.0, [[0, "Z"], [2, "X"]]]]},
        {"terms": [[-0.25, [[1, "Y"]]]]},
    ]
    assert layers.normalise_observables(data) == obs
