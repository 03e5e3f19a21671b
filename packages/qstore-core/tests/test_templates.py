"""The ``QuantumLayer`` circuit template: layout, upload schedule and validation."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import qstore.core as qc
from qstore.core import templates
from qstore.core.errors import CircuitError
from qstore.core.templates import entangling_pairs, layer_circuit, upload_schedule


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
