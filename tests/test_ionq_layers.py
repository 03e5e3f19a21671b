"""Keras and PyTorch QuantumLayers train on ``backend='ionq_simulator'`` (SPEC §8 migration),
against the emulator served on a free port, exactly as they train on the local simulator."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("qstore.ionq")
pytest.importorskip("uvicorn")

from qstore.ionq.testing import EmulatorServer, running_server

N_QUBITS, DEPTH, FEATURES, OUT, BATCH, STEPS = 3, 2, 8, 4, 4, 2


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with running_server(seed=0) as srv, pytest.MonkeyPatch.context() as mp:
        mp.setenv("IONQ_API_URL", srv.base_url)
        mp.setenv("IONQ_API_KEY", "layer-test-key")
        yield srv


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (BATCH * STEPS, FEATURES)), rng.uniform(-1, 1, (BATCH * STEPS, OUT))


@pytest.mark.slow
def test_torch_layer_trains_on_ionq_simulator_like_on_local(server: EmulatorServer) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn import functional

    import qstore.torch as qs_torch

    x, y = (torch.as_tensor(a, dtype=torch.float64) for a in data())

    def train(backend: str) -> tuple[list[float], list[np.ndarray]]:
        torch.manual_seed(0)
        model = nn.Sequential(
            qs_torch.QuantumLayer(n_qubits=N_QUBITS, depth=DEPTH, backend=backend),
            nn.Linear(N_QUBITS, OUT),
        ).double()
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        start = [p.detach().numpy().copy() for p in model.parameters()]
        losses = []
        for s in range(STEPS):
            xb, yb = x[s * BATCH : (s + 1) * BATCH], y[s * BATCH : (s + 1) * BATCH]
            opt.zero_grad()
            loss = functional.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        params = [p.detach().numpy().copy() for p in model.parameters()]
        assert not np.allclose(params[0], start[0])  # the quantum weights were trained
        return losses, params

    before = server.emulator.jobs_created
    ionq_losses, ionq_params = train("ionq_simulator")
    jobs = server.emulator.jobs_created - before
    local_losses, local_params = train("local")
    assert np.allclose(ionq_losses, local_losses, atol=1e-9)
    for a, b in zip(ionq_params, local_params, strict=True):
        assert np.allclose(a, b, atol=1e-9)
    assert jobs == 2 * STEPS  # per step: one job forward, one for the whole batch's gradient


@pytest.mark.slow
def test_keras_layer_trains_on_ionq_simulator_like_on_local(server: EmulatorServer) -> None:
    tf = pytest.importorskip("tensorflow")
    import qstore.tf as qs_tf

    x, y = data()

    def train(backend: str) -> tuple[list[float], list[np.ndarray]]:
        tf.keras.utils.set_random_seed(0)
        model = tf.keras.Sequential(
            [
                tf.keras.Input(shape=(FEATURES,)),
                qs_tf.layers.QuantumLayer(n_qubits=N_QUBITS, depth=DEPTH, backend=backend),
                tf.keras.layers.Dense(OUT),
            ]
        )
        model.compile(optimizer=tf.keras.optimizers.SGD(0.5), loss="mse")
        hist = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        return hist.history["loss"], [w.copy() for w in model.get_weights()]

    before = server.emulator.jobs_created
    ionq_loss, ionq_weights = train("ionq_simulator")
    jobs = server.emulator.jobs_created - before
    local_loss, local_weights = train("local")
    assert np.allclose(ionq_loss, local_loss, atol=1e-5)
    for a, b in zip(ionq_weights, local_weights, strict=True):
        assert np.allclose(a, b, atol=1e-5)
    assert 0 < jobs <= 2 * STEPS  # batches, not samples
