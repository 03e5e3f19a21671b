"""qstore.torch and qstore.tf agree: the same QuantumLayer configuration, weights and inputs give
the same outputs and gradients (with respect to the inputs and every weight) in float64, for
every encoding, on each framework's built-in engine and on external backends (``local`` and,
when installed, qsim and Lightning), through the one adapter in core. Both are also checked
against an independent reference built from core's circuit and the circuit's unitary."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
qs_torch = pytest.importorskip("qstore.torch")
qs_tf = pytest.importorskip("qstore.tf")

import qstore.core as qc  # noqa: E402
from qstore.core.errors import LayerConfigError, LayerInputError  # noqa: E402
from qstore.core.templates import LayerSpec, amplitude_state  # noqa: E402

N, DEPTH, FEATURES, BATCH = 3, 2, 5, 4
ENCODINGS = ("angle", "reupload", "amplitude")
OBSERVABLES = [qc.Z(0), qc.X(1) * qc.Z(2), 0.5 * qc.Y(2) + qc.Z(1)]


def _external() -> list[str]:
    names = ["local"]
    for name in ("qsim", "lightning"):
        if name in qc.backends.available() and qc.backends.info(name).available:
            names.append(name)
    return names


def _inputs(encoding: str) -> np.ndarray:
    x = np.random.default_rng(1).uniform(-1.5, 1.5, (BATCH, FEATURES))
    if encoding == "amplitude":
        x[2] = 0.0  # the all-zero row rule: |0...0>, zero gradient
    return x


def _run_torch(
    encoding: str,
    backend: str,
    weights: np.ndarray,
    scaling: np.ndarray,
    x: np.ndarray,
    cot: np.ndarray,
    **options: Any,
) -> list[np.ndarray]:
    layer = qs_torch.QuantumLayer(
        N,
        DEPTH,
        backend=backend,
        entanglement="circular",
        encoding=encoding,
        observables=OBSERVABLES,
        **options,
    ).double()
    with torch.no_grad():
        layer.weights.copy_(torch.from_numpy(weights))
        if layer.input_scaling is not None:
            layer.input_scaling.copy_(torch.from_numpy(scaling))
    xt = torch.tensor(x, requires_grad=True)
    out = layer(xt)
    params = [xt, layer.weights] + ([layer.input_scaling] if encoding == "reupload" else [])
    grads = torch.autograd.grad((out * torch.from_numpy(cot)).sum(), params)
    return [out.detach().numpy()] + [g.numpy() for g in grads]


def _run_tf(
    encoding: str,
    backend: str,
    weights: np.ndarray,
    scaling: np.ndarray,
    x: np.ndarray,
    cot: np.ndarray,
    **options: Any,
) -> list[np.ndarray]:
    layer = qs_tf.layers.QuantumLayer(
        N,
        DEPTH,
        backend=backend,
        entanglement="circular",
        encoding=encoding,
        observables=OBSERVABLES,
        dtype="float64",
        **options,
    )
    layer.build((None, FEATURES))
    layer.kernel.assign(weights)
    if layer.input_scaling is not None:
        layer.input_scaling.assign(scaling)
    xt = tf.constant(x)
    params = [layer.kernel] + ([layer.input_scaling] if encoding == "reupload" else [])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = layer(xt)
        loss = tf.reduce_sum(out * cot)
    grads = tape.gradient(loss, [xt, *params])
    return [out.numpy()] + [np.asarray(g) for g in grads]


def _reference(
    encoding: str, weights: np.ndarray, scaling: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Expectations from core's circuit and its exact unitary (no framework, no backend)."""
    spec = LayerSpec.create(N, DEPTH, "circular", encoding)
    circuit, names, wnames = spec.circuit(FEATURES)
    shared = dict(zip(wnames, weights.reshape(-1), strict=True))
    if encoding == "amplitude":
        states = amplitude_state(x, N) @ circuit.unitary(shared).T
    else:
        cols = spec.columns(x, scaling)
        states = np.stack(
            [
                circuit.unitary({**shared, **dict(zip(names, row, strict=True))})[:, 0]
                for row in cols
            ]
        )
    mats = np.stack([qc.observables.as_observable(o).matrix(N) for o in OBSERVABLES])
    return np.einsum("bi,oij,bj->bo", states.conj(), mats, states).real


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("backend", ["builtin", *_external()])
def test_torch_and_keras_layers_agree_in_float64(encoding: str, backend: str) -> None:
    rng = np.random.default_rng(7)
    weights = rng.uniform(0, 2 * np.pi, (DEPTH, N, 2))
    scaling = rng.uniform(0.5, 1.5, (DEPTH, N))
    x = _inputs(encoding)
    cot = rng.normal(size=(BATCH, len(OBSERVABLES)))
    torch_backend, tf_backend = ("torch", "tf") if backend == "builtin" else (backend, backend)
    got_torch = _run_torch(encoding, torch_backend, weights, scaling, x, cot)
    got_tf = _run_tf(encoding, tf_backend, weights, scaling, x, cot)
    assert len(got_torch) == len(got_tf) == (4 if encoding == "reupload" else 3)
    for a, b in zip(got_torch, got_tf, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)
    ref = _reference(encoding, weights, scaling, x)  # qsim simulates in single precision
    np.testing.assert_allclose(got_torch[0], ref, atol=1e-5 if backend == "qsim" else 1e-10)
    if encoding == "amplitude":
        assert np.all(got_torch[1][2] == 0.0)  # the all-zero row has zero gradient
    else:
        assert np.abs(got_torch[1]).max() > 1e-3  # the input gradients are really there


def test_shots_agree_between_frameworks_with_the_same_seed() -> None:
    rng = np.random.default_rng(9)
    weights = rng.uniform(0, 2 * np.pi, (DEPTH, N, 2))
    x = _inputs("angle")
    cot = rng.normal(size=(BATCH, len(OBSERVABLES)))
    options = {"shots": 2000, "backend_options": {"seed": 11}}
    got_torch = _run_torch("angle", "local", weights, weights[:, :, 0], x, cot, **options)
    got_tf = _run_tf("angle", "local", weights, weights[:, :, 0], x, cot, **options)
    for a, b in zip(got_torch, got_tf, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)
    exact = _run_torch("angle", "local", weights, weights[:, :, 0], x, cot)
    np.testing.assert_allclose(got_torch[0], exact[0], atol=0.15)  # ~5 sigma at 2000 shots
    assert not np.array_equal(got_torch[0], exact[0])  # really sampled


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"encoding": "basis"}, LayerConfigError, "encoding must be one of"),
        ({"entanglement": "ring"}, LayerConfigError, "entanglement must be one of"),
        ({"depth": 0}, LayerConfigError, "depth must be a positive int"),
        ({"shots": -1, "backend": "local"}, LayerConfigError, "shots must be a positive int"),
        ({"gradient_method": "magic", "backend": "local"}, LayerConfigError, "gradient_method"),
        (
            {"gradient_method": "adjoint", "shots": 10, "backend": "local"},
            LayerConfigError,
            "cannot be combined with shots",
        ),
        (
            {"encoding": "amplitude", "shots": 10, "backend": "local"},
            LayerConfigError,
            "cannot apply to quantum-state inputs",
        ),
        ({"observables": [qc.Z(5)]}, LayerConfigError, "acts on qubit 5|Invalid observables"),
    ],
)
def test_both_frameworks_refuse_the_same_configurations_at_construction(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        qs_torch.QuantumLayer(N, **kwargs)
    with pytest.raises(error, match=match):
        qs_tf.layers.QuantumLayer(N, **kwargs)


def test_both_frameworks_refuse_too_many_amplitudes_with_the_same_error() -> None:
    x = np.zeros((2, 9))
    with pytest.raises(LayerInputError, match="9 features do not fit in the 8 amplitudes"):
        qs_torch.AmplitudeEncoding(3)(torch.from_numpy(x))
    with pytest.raises(LayerInputError, match="9 features do not fit in the 8 amplitudes"):
        qs_tf.layers.AmplitudeEncoding(3)(x)


@pytest.mark.parametrize("encoding", ["reupload", "amplitude"])
def test_keras_external_backend_gradients_inside_tf_function_equal_torch(encoding: str) -> None:
    rng = np.random.default_rng(4)
    weights = rng.uniform(0, 2 * np.pi, (DEPTH, N, 2))
    scaling = rng.uniform(0.5, 1.5, (DEPTH, N))
    x = _inputs(encoding)
    cot = rng.normal(size=(BATCH, len(OBSERVABLES)))
    layer = qs_tf.layers.QuantumLayer(
        N,
        DEPTH,
        backend="local",
        entanglement="circular",
        encoding=encoding,
        observables=OBSERVABLES,
        dtype="float64",
    )
    layer.build((None, FEATURES))
    layer.kernel.assign(weights)
    if layer.input_scaling is not None:
        layer.input_scaling.assign(scaling)

    @tf.function
    def step(xt: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(layer(xt) * cot)
        return tape.gradient(loss, [xt, layer.kernel])

    for _ in range(2):  # the second call runs the traced graph
        gx, gw = step(tf.constant(x))
        want = _run_torch(encoding, "local", weights, scaling, x, cot)
        np.testing.assert_allclose(gx.numpy(), want[1], atol=1e-10, rtol=0)
        np.testing.assert_allclose(gw.numpy(), want[2], atol=1e-10, rtol=0)
