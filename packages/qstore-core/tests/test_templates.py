"""The ``QuantumLayer`` circuit template: layout, upload schedule and validation."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import qstore.core as qc
from qstore.core import templates
from qstore.core.errors import CircuitError, LayerConfigError, LayerInputError
from qstore.core.templates import (
    LayerSpec,
    amplitude_state,
    entangling_pairs,
    layer_circuit,
    upload_schedule,
)


def _reference_rw(n: int, layers: int) -> qc.UnifiedCircuit:
    """PERF.md's reference workload, written out gate by gate."""
    c = qc.UnifiedCircuit(n)
    for i in range(n):
        c.add_gate("RY", i, f"x_{i}")
    for layer in range(layers):
        for i in range(n):
            c.add_gate("RY", i, f"w_{layer}_{i}_0").add_gate("RZ", i, f"w_{layer}_{i}_1")
        for i in range(n - 1):
            c.add_gate("CNOT", [i, i + 1])
    return c


def test_module_doctest() -> None:
    assert doctest.testmod(templates).failed == 0


@pytest.mark.parametrize("n", [1, 2, 5])
def test_default_layer_is_the_reference_workload(n: int) -> None:
    circuit, inputs, weights = layer_circuit(n, depth=4)
    assert list(circuit) == list(_reference_rw(n, 4))
    assert inputs == [f"x_{i}" for i in range(n)]
    assert weights == [f"w_{L}_{q}_{k}" for L in range(4) for q in range(n) for k in (0, 1)]
    assert set(circuit.parameter_names) == set(inputs) | set(weights)


def test_entangling_patterns() -> None:
    assert entangling_pairs(4, "linear") == [(0, 1), (1, 2), (2, 3)]
    assert entangling_pairs(4, "circular") == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert entangling_pairs(2, "circular") == [(0, 1)]
    assert entangling_pairs(3, "FULL") == [(0, 1), (0, 2), (1, 2)]
    assert entangling_pairs(1, "full") == []


def test_upload_schedule_spreads_chunks_over_layers() -> None:
    assert upload_schedule(4, 4, 3) == [[0], [], []]
    assert upload_schedule(8, 4, 4) == [[0], [], [1], []]
    assert upload_schedule(64, 8, 4) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert upload_schedule(0, 4, 2) == [[], []]


def test_more_features_than_qubits_uses_every_feature_once() -> None:
    circuit, inputs, _ = layer_circuit(8, depth=4, n_features=64)
    assert len(inputs) == 64
    uses = [op for op in circuit if any(s.startswith("x_") for s in op.symbols)]
    assert sorted(s for op in uses for s in op.symbols) == sorted(inputs)
    for op in uses:  # feature j lands on qubit j % n
        j = int(op.symbols[0][2:])
        assert op.qubits == (j % 8,)
        # chunks sharing a stage alternate RY, RZ
        assert op.gate == ("RY" if (j // 8) % 2 == 0 else "RZ")


def test_features_change_the_state_independently() -> None:
    # two features on one qubit in the same stage must not collapse into their sum
    circuit, _, weights = layer_circuit(1, depth=1, n_features=2)
    w = dict.fromkeys(weights, 0.0)
    a = circuit.unitary({**w, "x_0": 0.3, "x_1": 0.5})[:, 0]
    b = circuit.unitary({**w, "x_0": 0.5, "x_1": 0.3})[:, 0]
    assert not np.allclose(a, b)


def test_state_layer_has_no_inputs() -> None:
    circuit, inputs, weights = layer_circuit(3, depth=2, encoding="none")
    assert inputs == []
    assert set(circuit.parameter_names) == set(weights)
    assert layer_circuit(3, 2, encoding=None)[0] == circuit


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"entanglement": "ring"}, "Unknown entanglement 'ring'"),
        ({"encoding": "amplitude"}, "Unknown encoding 'amplitude'"),
        ({"depth": 0}, "depth must be an int >= 1"),
        ({"n_features": 0}, "n_features must be an int >= 1"),
        ({"encoding": "none", "n_features": 3}, "takes no classical features"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(CircuitError, match=match):
        layer_circuit(3, **kwargs)  # type: ignore[arg-type]


def test_bad_qubit_count_is_refused() -> None:
    with pytest.raises(CircuitError, match="n_qubits must be an int >= 1"):
        layer_circuit(0)


def test_reupload_circuit_uploads_every_feature_before_every_layer() -> None:
    c, names, wnames = LayerSpec.create(2, depth=2, encoding="reupload").circuit(3)
    ops = [str(op) for op in c]
    layer0 = ["RY(x_0_0) [0]", "RY(x_0_1) [1]", "RZ(x_0_2) [0]"]
    train0 = ["RY(w_0_0_0) [0]", "RZ(w_0_0_1) [0]", "RY(w_0_1_0) [1]", "RZ(w_0_1_1) [1]"]
    assert ops[:8] == [*layer0, *train0, "CNOT [0, 1]"]
    assert ops[8:11] == ["RY(x_1_0) [0]", "RY(x_1_1) [1]", "RZ(x_1_2) [0]"]
    assert names == ["x_0_0", "x_0_1", "x_0_2", "x_1_0", "x_1_1", "x_1_2"]
    assert len(wnames) == 8


def test_layer_spec_columns_scale_each_feature_by_its_layer_and_qubit() -> None:
    spec = LayerSpec.create(2, depth=2, encoding="reupload")
    x = np.array([[1.0, 2.0, 3.0]])
    scale = np.array([[10.0, 20.0], [30.0, 40.0]])
    assert spec.columns(x, scale).tolist() == [[10.0, 40.0, 30.0, 30.0, 80.0, 90.0]]
    assert LayerSpec.create(2).columns(x).tolist() == x.tolist()
    assert spec.scaling_shape == (2, 2) and LayerSpec.create(2).scaling_shape is None


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0,), "n_qubits must be a positive int, got 0"),
        ((31,), "more than the 30 qubits"),
        ((2, 0), "depth must be a positive int, got 0"),
        ((2, 1, "ring"), r"entanglement must be one of \['linear', 'circular', 'full'\]"),
        ((2, 1, "linear", "basis"), "encoding must be one of"),
    ],
)
def test_layer_spec_refuses_bad_options_with_layer_config_errors(
    args: tuple[object, ...], match: str
) -> None:
    with pytest.raises(LayerConfigError, match=match):
        LayerSpec.create(*args)
    assert LayerSpec.create(2, 1, "FULL", "Angle").entanglement == "full"


def test_amplitude_state_pads_normalises_and_maps_zero_rows_to_the_ground_state() -> None:
    out = amplitude_state([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], 2)
    np.testing.assert_allclose(out[0], np.array([1, 1, 1, 0]) / np.sqrt(3), atol=1e-15)
    assert out[1].tolist() == [1, 0, 0, 0]
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0)
    with pytest.raises(LayerInputError, match="5 features do not fit in the 4 amplitudes"):
        amplitude_state(np.ones((1, 5)), 2)
