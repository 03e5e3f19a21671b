"""The v3.5 circuit against Cirq, and convert_from_v3_5 against the model it converts."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import qstore
from qstore.compat.v3_5.convert import CircuitModel, convert_from_v3_5
from qstore.compat.v3_5.layers import CompatModelError, QuantumLayer
from qstore.compat.v3_5.model import QuantumModel
from qstore.core.errors import MissingDependencyError, QStoreError


def cirq_reference(
    params: np.ndarray,
    x: np.ndarray,
    n: int,
    depth: int,
    entanglement: str,
    hardware_efficient: bool,
    basis: str = "computational",
) -> np.ndarray:
    """⟨Z_q⟩ (or ⟨X_q⟩) of v3.5's circuit, written gate by gate with Cirq."""
    cirq = pytest.importorskip("cirq")
    q = cirq.LineQubit.range(n)
    ops = [cirq.ry(math.pi * x[i]).on(q[i]) for i in range(min(n, len(x)))]
    gates = (cirq.ry, cirq.rz) if hardware_efficient else (cirq.rx, cirq.ry, cirq.rz)
    k = 0
    for _ in range(depth):
        for i in range(n):
            for g in gates:
                ops.append(g(params[k]).on(q[i]))
                k += 1
        if entanglement == "full":
            pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        else:
            pairs = [(i, i + 1) for i in range(n - 1)]
            if entanglement == "circular" and n > 1:
                pairs.append((n - 1, 0))
        ops += [cirq.CNOT(q[a], q[b]) for a, b in pairs]
    assert k == len(params)
    state = cirq.final_state_vector(cirq.Circuit(ops), qubit_order=q, dtype=np.complex128)
    pauli = cirq.X if basis == "hadamard" else cirq.Z
    return np.array(
        [
            (pauli(q[i]) * 1.0)
            .expectation_from_state_vector(state, {qq: j for j, qq in enumerate(q)})
            .real
            for i in range(n)
        ]
    )


@pytest.mark.parametrize(
    ("n", "depth", "entanglement", "hardware_efficient", "n_features"),
    [
        (3, 2, "linear", False, 3),
        (3, 1, "circular", True, 5),  # more features than qubits: the extra ones are not encoded
        (4, 2, "full", False, 2),  # fewer features than qubits
        (2, 2, "circular", False, 2),  # v3.5's ring on 2 qubits: CNOT(0,1) then CNOT(1,0)
    ],
)
def test_layer_matches_the_v35_circuit_built_with_cirq(
    n: int, depth: int, entanglement: str, hardware_efficient: bool, n_features: int
) -> None:
    layer = QuantumLayer(
        n, depth, "local", entanglement, hardware_efficient=hardware_efficient, seed=3
    )
    rng = np.random.default_rng(0)
    layer.update_parameters(rng.uniform(-np.pi, np.pi, layer.n_parameters))
    x = rng.uniform(-1, 1, (3, n_features))
    got = layer.expectations(x)
    want = np.stack(
        [cirq_reference(layer.parameters, r, n, depth, entanglement, hardware_efficient) for r in x]
    )
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_hadamard_basis_reads_x() -> None:
    layer = QuantumLayer(2, 1, "local", measurement_basis="hadamard", seed=1)
    x = np.array([[0.2, -0.4]])
    want = cirq_reference(layer.parameters, x[0], 2, 1, "linear", False, "hadamard")
    np.testing.assert_allclose(layer.expectations(x)[0], want, atol=1e-10)


def test_initial_parameters_follow_v35() -> None:
    std = QuantumLayer(4, 3, "local", seed=0)
    he = QuantumLayer(4, 3, "local", hardware_efficient=True, seed=0)
    assert std.n_parameters == 3 * 4 * 3 and he.n_parameters == 3 * 4 * 2
    assert np.abs(std.parameters).max() < 0.6  # 0.1 * randn
    assert np.abs(he.parameters).max() <= math.sqrt(6 / 5)


def _model(hardware_efficient: bool = False) -> QuantumModel:
    m = QuantumModel(5, 4, 3, "local", depth=2, hardware_efficient=hardware_efficient, seed=7)
    m.quantum_layer.update_parameters(np.random.default_rng(1).normal(size=m.parameters.size))
    return m


@pytest.mark.parametrize("hardware_efficient", [False, True])
def test_conversion_gives_the_same_outputs(hardware_efficient: bool) -> None:
    model = _model(hardware_efficient)
    x = np.random.default_rng(2).uniform(-1, 1, (6, 5))
    converted = qstore.convert_from_v3_5(model)
    assert isinstance(converted, CircuitModel)
    assert converted.output_dim == 3 and converted.n_encoded == 4
    np.testing.assert_array_equal(converted.weight_vector(), model.parameters)
    exact = model.expectations(x)
    np.testing.assert_allclose(converted.predict(x), exact, atol=1e-12)
    # and against Cirq, independently of both
    ref = np.stack(
        [cirq_reference(model.parameters, r, 4, 2, "linear", hardware_efficient)[:3] for r in x]
    )
    np.testing.assert_allclose(exact, ref, atol=1e-10)
    # shot estimates: the same numbers for the same seed
    np.testing.assert_array_equal(
        converted.predict(x, shots=500, seed=11), model.expectations(x, shots=500, seed=11)
    )
    # one sample in, one row out
    np.testing.assert_allclose(converted.predict(x[0]), exact[0], atol=1e-12)


def test_conversion_runs_on_other_backends_and_converts_to_cirq() -> None:
    cirq = pytest.importorskip("cirq")
    model = _model()
    converted = convert_from_v3_5(model)
    x = np.random.default_rng(4).uniform(-1, 1, (2, 5))
    values, names, shared = converted.bindings(x)
    bound = converted.circuit.bind({**dict(zip(names, values[0], strict=True)), **shared})
    state = cirq.final_state_vector(
        bound.to_cirq(), qubit_order=cirq.LineQubit.range(4), dtype=np.complex128
    )
    z0 = float(np.sum(np.abs(state[:8]) ** 2) - np.sum(np.abs(state[8:]) ** 2))
    assert z0 == pytest.approx(converted.predict(x)[0, 0], abs=1e-10)


def test_conversion_of_states_and_v35_checkpoints(tmp_path: Path) -> None:
    model = _model(hardware_efficient=True)
    x = np.random.default_rng(5).uniform(-1, 1, (3, 5))
    want = model.expectations(x)
    # a v3.5 state did not record the ansatz: the parameter count tells it
    state = model.save_state()
    del state["config"]["hardware_efficient"]
    checkpoint = tmp_path / "checkpoint_epoch_9.json"
    checkpoint.write_text(json.dumps({"epoch": 9, "model_state": state}))
    for source in (state, json.loads(checkpoint.read_text())):
        np.testing.assert_allclose(convert_from_v3_5(source).predict(x), want, atol=1e-12)
    layer = convert_from_v3_5(model.quantum_layer)
    np.testing.assert_allclose(
        layer.predict(x[:, :4]), model.quantum_layer.expectations(x), atol=1e-12
    )


def test_save_and_load_state_round_trip() -> None:
    model = _model()
    other = QuantumModel(5, 4, 3, "local", depth=2, seed=99)
    other.load_state(json.loads(json.dumps(model.save_state())))
    np.testing.assert_array_equal(other.parameters, model.parameters)
    with pytest.raises(CompatModelError, match="has 24"):
        QuantumModel(5, 4, 3, "local", depth=2, hardware_efficient=True).load_state(
            model.save_state()
        )


def test_frozen_parameters_stay() -> None:
    layer = QuantumLayer(2, 1, "local", seed=0)
    before = layer.get_parameters()
    layer.freeze_parameters([0, 5])
    layer.update_parameters(np.zeros(6))
    assert layer.parameters[0] == before[0] and layer.parameters[5] == before[5]
    assert np.count_nonzero(layer.parameters) == 2


def test_bad_arguments_are_refused_with_the_fix() -> None:
    with pytest.raises(CompatModelError, match="use n_qubits >= 5"):
        QuantumModel(4, 3, 5, "local")
    with pytest.raises(CompatModelError, match="takes 4 features per sample, got 3"):
        QuantumModel(4, 4, 2, "local").expectations(np.zeros((2, 3)))
    with pytest.raises(QStoreError, match="no expectation"):
        QuantumLayer(2, 1, object())
    with pytest.raises(CompatModelError, match="entanglement must be one of"):
        QuantumLayer(2, 1, "local", entanglement="star")
    with pytest.raises(CompatModelError, match="neither ansatz"):
        convert_from_v3_5(
            {
                "config": {"input_dim": 2, "n_qubits": 2, "output_dim": 1, "depth": 1},
                "quantum_layer": {"parameters": [0.0] * 5},
            }
        )


def test_convert_from_v3_5_without_the_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(qstore, "convert_from_v3_5", raising=False)
    monkeypatch.setitem(sys.modules, "qstore.compat.v3_5", None)  # import -> ModuleNotFoundError
    with pytest.raises(MissingDependencyError, match=r"pip install qstore-compat-v35"):
        qstore.convert_from_v3_5  # noqa: B018


def test_build_circuit_returns_a_bound_measured_circuit() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = QuantumLayer(2, 1, "local", seed=0)
        circuit = layer.build_circuit([0.5, 0.25])
    assert circuit.n_parameters == 0
    assert str(next(iter(circuit))).startswith("RY(1.5707963267948966)")
    assert list(circuit)[-1].is_measurement
