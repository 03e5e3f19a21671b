"""The simulator backends agree with each other and with Cirq, and serve the framework layers.

``qsim`` (qstore-sim-qsim), ``lightning`` (qstore-sim-lightning) and the built-in ``local`` run
the same random circuits (every gate of the table, parameters as symbols, affine expressions and
products) with random Pauli-sum observables; Cirq's simulator of the bound circuits is the
independent reference. Each plugin is skipped when its distribution is not installed.
"""

from __future__ import annotations

import asyncio
import importlib.util

import numpy as np
import pytest

import qstore.core as qc
from qstore.core.errors import BindingError
from qstore.core.testing import INPUTS, random_bindings, random_circuit, random_observables

NAMES = list(INPUTS)
TOLERANCE = {"local": 1e-10, "lightning": 1e-10, "qsim": 2e-5}  # qsim is single precision


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


BACKENDS = [
    "local",
    pytest.param(
        "qsim",
        marks=pytest.mark.skipif(not _installed("qstore.sim.qsim"), reason="no qstore-sim-qsim"),
    ),
    pytest.param(
        "lightning",
        marks=pytest.mark.skipif(
            not _installed("qstore.sim.lightning"), reason="no qstore-sim-lightning"
        ),
    ),
]


@pytest.fixture(scope="module")
def case() -> tuple[qc.UnifiedCircuit, list[qc.PauliSum], np.ndarray, dict[str, float]]:
    rng = np.random.default_rng(2024)
    n = 4
    return (
        random_circuit(n, None, rng),
        random_observables(n, rng, count=2),
        *random_bindings(rng),
    )


def cirq_expectations(
    circuit: qc.UnifiedCircuit, observables: list[qc.PauliSum], values: np.ndarray, shared: dict
) -> np.ndarray:
    cirq = pytest.importorskip("cirq")
    n = circuit.n_qubits
    sim = cirq.Simulator(dtype=np.complex128)
    out = np.zeros((values.shape[0], len(observables)))
    for b, row in enumerate(values):
        bound = circuit.bind({**dict(zip(NAMES, row.tolist(), strict=True)), **shared})
        psi = sim.simulate(bound.to_cirq(), qubit_order=cirq.LineQubit.range(n)).final_state_vector
        for o, ob in enumerate(observables):
            out[b, o] = np.vdot(psi, ob.matrix(n) @ psi).real
    return out


@pytest.mark.parametrize("name", BACKENDS)
def test_expectations_agree_with_cirq(name: str, case: tuple) -> None:
    circuit, obs, values, shared = case
    got = qc.backends.get(name).expectation(circuit, obs, values, names=NAMES, shared=shared)
    want = cirq_expectations(circuit, obs, values, shared)
    assert np.allclose(got, want, atol=max(TOLERANCE[name], 1e-7))


@pytest.mark.parametrize("name", BACKENDS)
def test_gradients_agree_with_the_core_adjoint(name: str, case: tuple) -> None:
    circuit, obs, values, shared = case
    cot = np.random.default_rng(1).normal(size=(values.shape[0], len(obs)))
    gv, gs = qc.backends.get(name).vjp(circuit, obs, values, cot, names=NAMES, shared=shared)
    lgv, lgs = qc.backends.get("local").vjp(circuit, obs, values, cot, names=NAMES, shared=shared)
    tol = 10 * TOLERANCE[name]
    assert np.allclose(gv, lgv, atol=tol) and np.allclose(gs, lgs, atol=tol)


@pytest.mark.parametrize("name", BACKENDS)
def test_execute_returns_counts_and_probabilities(name: str) -> None:
    be = qc.backends.get(name)
    c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1]).measure()
    exact = asyncio.run(be.execute(c, shots=None))
    assert exact.probabilities is not None and set(exact.probabilities) == {"00", "11"}
    assert np.allclose(list(exact.probabilities.values()), 0.5, atol=TOLERANCE[name])
    sampled = asyncio.run(be.execute(c, shots=200))
    assert sampled.counts is not None and sum(sampled.counts.values()) == 200
    assert set(sampled.counts) <= {"00", "11"}
    with pytest.raises(BindingError, match="bound circuit"):
        asyncio.run(be.execute(qc.UnifiedCircuit(1).add_gate("RX", 0, "t")))


@pytest.mark.parametrize("name", BACKENDS[1:])
def test_backend_drives_the_torch_layer(name: str) -> None:
    torch = pytest.importorskip("torch")
    qs_torch = pytest.importorskip("qstore.torch")
    x = torch.rand(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    results = {}
    for backend in ("local", name):
        torch.manual_seed(0)
        layer = qs_torch.QuantumLayer(n_qubits=3, depth=2, backend=backend).double()
        y = layer(x)
        y.sum().backward()
        results[backend] = (y.detach().numpy(), [p.grad.numpy() for p in layer.parameters()])
    tol = max(10 * TOLERANCE[name], 1e-8)
    assert np.allclose(results[name][0], results["local"][0], atol=tol)
    for g, ref in zip(results[name][1], results["local"][1], strict=True):
        assert np.allclose(g, ref, atol=tol)


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKENDS[1:])
def test_backend_drives_the_keras_layer(name: str) -> None:
    tf = pytest.importorskip("tensorflow")
    qs_tf = pytest.importorskip("qstore.tf")
    x = tf.constant(np.random.default_rng(0).uniform(0, 1, (4, 3)), dtype=tf.float32)
    results = {}
    for backend in ("local", name):
        tf.keras.utils.set_random_seed(0)
        layer = qs_tf.layers.QuantumLayer(n_qubits=3, depth=2, backend=backend)
        with tf.GradientTape() as tape:
            y = layer(x)
            loss = tf.reduce_sum(y)
        grads = tape.gradient(loss, layer.trainable_variables)
        results[backend] = (y.numpy(), [g.numpy() for g in grads])
    assert np.allclose(results[name][0], results["local"][0], atol=1e-5)
    for g, ref in zip(results[name][1], results["local"][1], strict=True):
        assert np.allclose(g, ref, atol=1e-5)
