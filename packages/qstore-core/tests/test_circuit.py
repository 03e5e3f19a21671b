"""The ``UnifiedCircuit`` API: validation, aliases, binding, inverse, composition, structure.

Unitaries are checked against matrices written out here with numpy (and ``inverse`` also against
``cirq.inverse``); the gate matrices themselves are checked in test_gate_matrices.py.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qstore.core as qc
from qstore.core.errors import (
    BindingError,
    CircuitError,
    GateArityError,
    NonFiniteParameterError,
    ParameterError,
    QStoreError,
    QubitIndexError,
    UnboundParameterError,
    UnknownGateError,
)
from qstore.core.gates import GATES, GateType
from qstore.core.parameters import Expression, Parameter

PI = math.pi
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
I2 = np.eye(2)
H = np.array([[1, 1], [1, -1]]) / math.sqrt(2)
X = np.array([[0, 1], [1, 0]])
Z = np.diag([1, -1])
P0 = np.diag([1, 0])
P1 = np.diag([0, 1])


def kron(*ms: Any) -> np.ndarray[Any, Any]:
    out = np.eye(1)
    for m in ms:
        out = np.kron(out, m)
    return out


def ry(t: float) -> np.ndarray[Any, Any]:
    return np.array([[math.cos(t / 2), -math.sin(t / 2)], [math.sin(t / 2), math.cos(t / 2)]])


@st.composite
def bound_circuits(draw: st.DrawFn, max_qubits: int = 4, max_ops: int = 12) -> qc.UnifiedCircuit:
    n = draw(st.integers(1, max_qubits))
    c = qc.UnifiedCircuit(n)
    names = [g for g in sorted(GATES) if GATES[g].n_qubits <= n]
    for _ in range(draw(st.integers(0, max_ops))):
        spec = GATES[draw(st.sampled_from(names))]
        qs = draw(st.permutations(range(n)))[: spec.n_qubits]
        params = [
            draw(st.floats(-2 * PI, 2 * PI, allow_nan=False, allow_subnormal=False))
            for _ in range(spec.n_params)
        ]
        c.add_gate(spec.name, qs, params)
    return c


# ---------------------------------------------------------------------------------------------
# add_gate validation


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: c.add_gate("FOO", 0), UnknownGateError, "Unknown gate 'FOO'"),
        (lambda c: c.add_gate(3, 0), UnknownGateError, "must be a name"),
        (lambda c: c.add_gate("CNOT", 0), GateArityError, "acts on 2 qubit(s)"),
        (lambda c: c.add_gate("H", [0, 1]), GateArityError, "acts on 1 qubit(s)"),
        (lambda c: c.add_gate("H", 3), QubitIndexError, "out of range"),
        (lambda c: c.add_gate("H", -1), QubitIndexError, "out of range"),
        (lambda c: c.add_gate("H", 1.0), QubitIndexError, "int or a list of ints"),
        (lambda c: c.add_gate("H", [1.0]), QubitIndexError, "not an integer"),
        (lambda c: c.add_gate("H", [True]), QubitIndexError, "not an integer"),
        (lambda c: c.add_gate("H", "0"), QubitIndexError, "int or a list"),
        (lambda c: c.add_gate("CZ", [1, 1]), QubitIndexError, "duplicate qubits"),
        (lambda c: c.add_gate("RX", 0), GateArityError, "needs a value for parameter 'theta'"),
        (lambda c: c.add_gate("RX", 0, [0.1, 0.2]), GateArityError, "takes 1 parameter(s)"),
        (lambda c: c.add_gate("RX", 0, {"phi": 0.1}), GateArityError, "no parameter(s) ['phi']"),
        (lambda c: c.add_gate("RX", 0, float("nan")), NonFiniteParameterError, "not finite"),
        (lambda c: c.add_gate("RX", 0, float("inf")), NonFiniteParameterError, "not finite"),
        (lambda c: c.add_gate("RX", 0, "1theta"), ParameterError, "Invalid symbol name"),
        (lambda c: c.add_gate("RX", 0, object()), ParameterError, "must be a number"),
        (lambda c: c.add_gate("RX", 0, [object()]), ParameterError, "Cannot use"),
        (lambda c: c.add_gate("RX", 0, True), ParameterError, "Cannot use"),
    ],
)
def test_add_gate_rejects_bad_input_with_clear_errors(call: Any, error: Any, message: str) -> None:
    c = qc.UnifiedCircuit(3)
    with pytest.raises(error) as info:
        call(c)
    assert message in str(info.value)
    assert isinstance(info.value, QStoreError) and isinstance(info.value, ValueError)
    assert len(c) == 0  # nothing half-added


def test_circuit_size_is_validated() -> None:
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(CircuitError):
            qc.UnifiedCircuit(bad)  # type: ignore[arg-type]


def test_unbound_symbol_fails_at_unitary_not_at_build_time() -> None:
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, "theta")
    with pytest.raises(UnboundParameterError, match="theta"):
        c.unitary()
    np.testing.assert_allclose(c.unitary({"theta": 0.3}), ry(0.3), atol=1e-15)
    with pytest.raises(UnboundParameterError, match="w"):
        qc.UnifiedCircuit(1).add_gate("RZ", 0, Parameter("x") * Parameter("w")).unitary({"x": 1.0})


def test_unitary_is_refused_for_too_many_qubits() -> None:
    with pytest.raises(CircuitError, match="limited to"):
        qc.UnifiedCircuit(13).unitary()


# ---------------------------------------------------------------------------------------------
# names and aliases


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("cx", "CNOT"),
        ("CNOT", "CNOT"),
        ("toffoli", "CCX"),
        ("ccnot", "CCX"),
        ("u1", "P"),
        ("phase", "P"),
        ("u", "U3"),
        ("Sdag", "SDG"),
        ("tdagger", "TDG"),
        ("sqrtx", "SX"),
        ("id", "I"),
        ("hadamard", "H"),
        (" ry ", "RY"),
        (GateType.RY, "RY"),
        (GateType.CZ, "CZ"),
    ],
)
def test_gate_aliases_resolve_to_canonical_names(alias: Any, name: str) -> None:
    spec = GATES[name]
    c = qc.UnifiedCircuit(3).add_gate(alias, list(range(spec.n_qubits)), [0.5] * spec.n_params)
    assert c.operations[0].gate == name
    assert c.gate_counts() == {name: 1}


def test_parameters_by_name_by_position_and_defaults() -> None:
    c = qc.UnifiedCircuit(2)
    c.add_gate("U3", 0, {"theta": 0.1, "phi": "a", "lambda": 0.3})
    c.add_gate("U3", 1, [0.1, "a", 0.3])
    assert c.operations[0] == qc.Operation("U3", (0,), c.operations[1].params)
    c.add_gate("MS", [0, 1], [0.1, 0.2])  # theta defaults to pi/2 (fully entangling)
    assert c.operations[2].params[2] == PI / 2
    c.add_gate("RX", 0, np.float64(0.25))
    assert c.operations[3].params[0] == 0.25
    c.add_gate("RX", 0, 2 * Parameter("t") + 0.1)
    assert c.operations[4].params[0] == Expression((((("t",), 2.0),)), 0.1)


def test_measure_defaults_to_all_qubits_and_key_m() -> None:
    c = qc.UnifiedCircuit(3).add_gate("H", 0).measure()
    assert c.operations[-1].qubits == (0, 1, 2) and c.operations[-1].key == "m"
    c.measure([2], key="last")
    assert c.operations[-1].qubits == (2,) and c.operations[-1].key == "last"
    assert c.has_measurements
    assert c.without_measurements().gate_counts() == {"H": 1}
    np.testing.assert_allclose(c.unitary(), kron(H, I2, I2))  # measurements are ignored
    with pytest.raises(QubitIndexError):
        c.measure([3])


# ---------------------------------------------------------------------------------------------
# parameters and binding


def test_parameters_in_order_of_first_appearance() -> None:
    c = qc.UnifiedCircuit(2)
    c.add_gate("RX", 0, "b").add_gate("RY", 1, Parameter("x") * Parameter("a"))
    c.add_gate("CRZ", [0, 1], 2 * Parameter("b") + Parameter("c"))
    assert c.parameter_names == ["b", "a", "x", "c"]  # monomial symbols sorted within a term
    assert c.n_parameters == 4
    assert all(isinstance(p, Parameter) for p in c.parameters.values())
    assert c.is_parameterized and not c.bind([1, 2, 3, 4]).is_parameterized


def test_bind_by_dict_sequence_parameter_keys_and_partially() -> None:
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, 2 * Parameter("theta") + 0.1)
    c.add_gate("RZ", 0, Parameter("x") * Parameter("w"))
    by_dict = c.bind({"theta": 0.5, "x": 2.0, "w": -0.25})
    by_seq = c.bind([0.5, 2.0, -0.25])  # order of c.parameter_names
    by_param = c.bind({Parameter("theta"): 0.5, Parameter("x"): 2.0, Parameter("w"): -0.25})
    assert c.parameter_names == ["theta", "w", "x"]
    by_seq = c.bind([0.5, -0.25, 2.0])
    assert by_dict == by_seq == by_param
    assert [op.params[0] for op in by_dict] == [1.1, -0.5]
    partial = c.bind({"x": 3.0})
    assert partial.parameter_names == ["theta", "w"]
    assert partial.operations[1].params[0] == 3.0 * Parameter("w")
    renamed = c.bind({"theta": Parameter("alpha") - 1})
    assert renamed.operations[0].params[0] == 2 * Parameter("alpha") - 1.9
    assert c.n_parameters == 3  # binding returns a copy
    expected = np.diag([np.exp(0.25j), np.exp(-0.25j)]) @ ry(1.1)
    np.testing.assert_allclose(by_dict.unitary(), expected, atol=1e-15)
    np.testing.assert_allclose(
        c.unitary({"theta": 0.5, "x": 2.0, "w": -0.25}), expected, atol=1e-15
    )


def test_bind_errors() -> None:
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, "theta")
    with pytest.raises(BindingError, match="no symbol"):
        c.bind({"phi": 1.0})
    assert c.bind({"phi": 1.0, "theta": 0.0}, strict=False).operations[0].params[0] == 0.0
    with pytest.raises(BindingError, match="Expected 1 values"):
        c.bind([1.0, 2.0])
    with pytest.raises(NonFiniteParameterError):
        c.bind({"theta": float("nan")})
    with pytest.raises(BindingError):
        c.bind({3: 1.0})  # type: ignore[dict-item]


# ---------------------------------------------------------------------------------------------
# inverse and compose


@FAST
@given(bound_circuits())
def test_inverse_times_circuit_is_identity(c: qc.UnifiedCircuit) -> None:
    u = c.unitary()
    u_inv = c.inverse().unitary()
    np.testing.assert_allclose(u_inv @ u, np.eye(1 << c.n_qubits), atol=1e-9)
    np.testing.assert_allclose(u_inv, u.conj().T, atol=1e-9)


def test_inverse_against_cirq() -> None:
    cirq = pytest.importorskip("cirq")
    c = qc.UnifiedCircuit(3)
    for k, (name, spec) in enumerate(sorted(GATES.items())):
        qs = [(k + j) % 3 for j in range(spec.n_qubits)]
        c.add_gate(name, qs, [0.3 + 0.7 * k + j for j in range(spec.n_params)])
    ours = c.inverse().unitary()
    theirs = cirq.unitary(cirq.inverse(c.to_cirq()))
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_inverse_of_symbolic_circuit_then_bind_equals_bind_then_inverse() -> None:
    c = (
        qc.UnifiedCircuit(2)
        .add_gate("U3", 0, ["a", "b", 0.3])
        .add_gate("MS", [0, 1], ["a", 0.2, "b"])
    )
    c.add_gate("GPI2", 1, "b").add_gate("CRY", [1, 0], 2 * Parameter("a"))
    values = {"a": 0.4, "b": -1.3}
    assert c.inverse().bind(values) == c.bind(values).inverse()
    with pytest.raises(CircuitError, match="measurements"):
        c.measure().inverse()


def test_compose_appends_with_an_optional_qubit_map() -> None:
    a = qc.UnifiedCircuit(3).add_gate("H", 0)
    b = qc.UnifiedCircuit(2).add_gate("CNOT", [0, 1])
    ab = a.compose(b)
    assert [str(op) for op in ab] == ["H [0]", "CNOT [0, 1]"]
    mapped = a.compose(b, qubits=[2, 0])
    assert mapped.operations[1].qubits == (2, 0)
    cnot_20 = kron(I2, I2, P0) + kron(X, I2, P1)  # control qubit 2, target qubit 0
    np.testing.assert_allclose(mapped.unitary(), cnot_20 @ kron(H, I2, I2), atol=1e-15)
    assert (a + b) == ab
    assert len(a) == 1  # compose returns a new circuit
    with pytest.raises(CircuitError, match="qubit map"):
        b.compose(a)
    with pytest.raises(CircuitError, match="entries"):
        a.compose(b, qubits=[0])
    with pytest.raises(QubitIndexError):
        a.compose(b, qubits=[0, 0])


# ---------------------------------------------------------------------------------------------
# structure


def test_depth_and_gate_counts_hand_counted() -> None:
    c = qc.UnifiedCircuit(4)
    # layer 1: H0 H1 H2 H3 | layer 2: CNOT01 CNOT23 | layer 3: CNOT12 | layer 4: RZ1 | M all
    for q in range(4):
        c.add_gate("H", q)
    c.add_gate("CNOT", [0, 1]).add_gate("CNOT", [2, 3]).add_gate("CNOT", [1, 2])
    c.add_gate("RZ", 1, "t")
    assert c.depth() == 4
    c.measure()
    assert c.depth() == 5
    assert c.gate_counts() == {"H": 4, "CNOT": 3, "RZ": 1, "MEASURE": 1}
    assert c.n_two_qubit_gates == 3
    assert qc.UnifiedCircuit(2).depth() == 0
    ccx = qc.UnifiedCircuit(3).add_gate("X", 0).add_gate("X", 2).add_gate("CCX", [0, 1, 2])
    assert ccx.depth() == 2


def test_unitary_matches_hand_built_matrices() -> None:
    bell = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
    cnot = kron(P0, I2) + kron(P1, X)
    np.testing.assert_allclose(bell.unitary(), cnot @ kron(H, I2), atol=1e-15)
    np.testing.assert_allclose(bell.unitary()[:, 0], [1 / math.sqrt(2), 0, 0, 1 / math.sqrt(2)])
    reversed_cnot = qc.UnifiedCircuit(2).add_gate("CNOT", [1, 0])
    np.testing.assert_allclose(reversed_cnot.unitary(), kron(I2, P0) + kron(X, P1))
    three = qc.UnifiedCircuit(3).add_gate("Z", 2).add_gate("RY", 1, 0.4)
    np.testing.assert_allclose(three.unitary(), kron(I2, ry(0.4), Z), atol=1e-15)


def test_add_parameterized_layer_names_symbols_per_qubit() -> None:
    c = qc.UnifiedCircuit(3).add_parameterized_layer("RY", "theta")
    assert c.parameter_names == ["theta_0", "theta_1", "theta_2"]
    assert [(op.gate, op.qubits) for op in c] == [("RY", (0,)), ("RY", (1,)), ("RY", (2,))]
    c.add_parameterized_layer(GateType.RZ, "phi", qubits=[2, 0])
    assert c.parameter_names[-2:] == ["phi_2", "phi_0"]
    for bad in ("CNOT", "U3", "H"):
        with pytest.raises(GateArityError, match="one-qubit, one-parameter"):
            c.add_parameterized_layer(bad, "x")


def test_copy_equality_and_append() -> None:
    c = qc.UnifiedCircuit(2).add_gate("RX", 0, "a").measure(key="k")
    d = c.copy()
    assert d == c and d is not c
    d.add_gate("H", 1)
    assert d != c and len(c) == 2
    e = qc.UnifiedCircuit(2)
    for op in c:
        e.append(op)
    assert e == c
    assert qc.UnifiedCircuit(3) != qc.UnifiedCircuit(2)
    with pytest.raises(TypeError):
        hash(c)
