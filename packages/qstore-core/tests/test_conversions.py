"""Conversions IR <-> Cirq / Qiskit / JSON / OpenQASM 2, checked against the other libraries.

Unitaries are compared with Cirq's ``cirq.unitary`` and Qiskit's ``Operator`` (bit order reversed
by index arithmetic written here, not by our helper); round trips must give an *equal*
``UnifiedCircuit``, symbols included. Global phases allowed are exactly those documented in
docs/conventions.md.
"""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qstore.core as qc
from qstore.core.convert import (
    from_cirq,
    from_json,
    from_qiskit,
    json_schema,
    reverse_qubit_order,
    to_cirq,
    to_json,
    to_qasm,
    to_qiskit,
)
from qstore.core.errors import (
    ConversionError,
    MissingDependencyError,
    SerializationError,
    UnboundParameterError,
)
from qstore.core.gates import GATES
from qstore.core.parameters import Expression, Parameter

cirq = pytest.importorskip("cirq")
sympy = pytest.importorskip("sympy")
qiskit = pytest.importorskip("qiskit")
from qiskit import QuantumCircuit, qasm2  # noqa: E402
from qiskit.circuit import Parameter as QParameter  # noqa: E402
from qiskit.circuit import ParameterVector  # noqa: E402
from qiskit.circuit import library as qlib  # noqa: E402
from qiskit.quantum_info import Operator  # noqa: E402

PI = math.pi
GATE_NAMES = sorted(GATES)
SYMBOLS = ("theta", "x_3", "w_3", "phi_0", "v[1]")
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


# ---------------------------------------------------------------------------------------------
# helpers (independent of the code under test)


def big_endian(m_little: Any, n: int) -> np.ndarray[Any, Any]:
    """Qiskit's little-endian matrix re-indexed so that qubit 0 is the most significant bit."""
    perm = [int(format(i, f"0{n}b")[::-1], 2) for i in range(1 << n)]
    return np.asarray(m_little)[np.ix_(perm, perm)]


def cirq_unitary(circuit: Any, n: int) -> np.ndarray[Any, Any]:
    return np.asarray(
        circuit.unitary(qubit_order=cirq.LineQubit.range(n), ignore_terminal_measurements=True)
    )


def qiskit_unitary(qc_: Any) -> np.ndarray[Any, Any]:
    bare = qc_.copy_empty_like()
    for inst in qc_.data:
        if inst.operation.name != "measure":
            bare.append(inst)
    return big_endian(Operator(bare).data, qc_.num_qubits)


def global_phase(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> complex:
    """The phase p with a = p * b (asserting that one exists)."""
    i = int(np.argmax(np.abs(b)))
    p = complex(a.flat[i] / b.flat[i])
    assert abs(abs(p) - 1) < 1e-9
    np.testing.assert_allclose(a, p * b, atol=1e-9)
    return p


def measurements(c: qc.UnifiedCircuit) -> list[tuple[tuple[int, ...], str | None]]:
    return [(op.qubits, op.key) for op in c if op.is_measurement]


# ---------------------------------------------------------------------------------------------
# strategies

angles = st.one_of(
    st.floats(-4 * PI, 4 * PI, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    st.integers(-8, 8).map(lambda k: k * PI / 4),
)


def _qiskit_exact(c: float) -> bool:
    # Qiskit's symbolic engine drops terms with |c| < ~1.8e-15 and snaps factors that close to
    # +-1 (docs/conventions.md, section 5); the round-trip tests keep clear of those values.
    return c == 0 or (abs(c) > 1e-14 and abs(abs(c) - 1) > 1e-14)


coefficients = st.one_of(
    st.floats(-10, 10, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    st.sampled_from([0.1, -1.0, 2.0, 1e-12, 3.0e7]),
).filter(_qiskit_exact)


@st.composite
def expressions(draw: st.DrawFn, symbolic: bool) -> Expression:
    if not symbolic or draw(st.booleans()):
        return Expression.coerce(draw(angles))
    value = Expression.coerce(draw(angles.filter(_qiskit_exact)))
    sym = Parameter(draw(st.sampled_from(SYMBOLS)))
    kind = draw(st.sampled_from(["plain", "linear", "product", "square", "sum"]))
    if kind == "plain":
        return sym
    if kind == "linear":  # 2*theta + 0.1 style
        return draw(coefficients) * sym + draw(coefficients)
    if kind == "product":  # x_3*w_3 style
        return sym * Parameter(draw(st.sampled_from(SYMBOLS)))
    if kind == "square":
        return draw(coefficients) * sym * sym
    other = Parameter(draw(st.sampled_from(SYMBOLS)))
    return draw(coefficients) * sym * other + draw(coefficients) * other + value


@st.composite
def circuits(
    draw: st.DrawFn,
    max_qubits: int = 8,
    max_ops: int = 14,
    symbolic: bool = False,
    measure: bool = False,
) -> qc.UnifiedCircuit:
    n = draw(st.integers(1, max_qubits))
    c = qc.UnifiedCircuit(n, name=draw(st.sampled_from([None, "ansatz"])))
    names = [g for g in GATE_NAMES if GATES[g].n_qubits <= n]
    for _ in range(draw(st.integers(0, max_ops))):
        if measure and draw(st.integers(0, 5)) == 0:
            qs = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
            c.measure(qs, key=draw(st.sampled_from(["m", "m", "result", "c0"])))
            continue
        spec = GATES[draw(st.sampled_from(names))]
        qs = draw(
            st.lists(
                st.integers(0, n - 1), min_size=spec.n_qubits, max_size=spec.n_qubits, unique=True
            )
        )
        params = [draw(expressions(symbolic)) for _ in range(spec.n_params)]
        c.add_gate(spec.name, qs, params)
    return c


# ---------------------------------------------------------------------------------------------
# unitaries against Cirq and Qiskit


@FAST
@given(circuits())
def test_unitary_equals_cirq_unitary(c: qc.UnifiedCircuit) -> None:
    np.testing.assert_allclose(c.unitary(), cirq_unitary(to_cirq(c), c.n_qubits), atol=1e-9)


@FAST
@given(circuits())
def test_unitary_equals_qiskit_operator_with_bit_order_reversed(c: qc.UnifiedCircuit) -> None:
    u_qiskit = Operator(to_qiskit(c)).data
    np.testing.assert_allclose(c.unitary(), big_endian(u_qiskit, c.n_qubits), atol=1e-9)
    np.testing.assert_allclose(c.unitary(), reverse_qubit_order(u_qiskit), atol=1e-9)


def test_worked_two_qubit_ordering_example() -> None:
    # docs/conventions.md, section 1: X on qubit 0 then CNOT [0, 1].
    c = qc.UnifiedCircuit(2).add_gate("X", 0)
    state = c.unitary()[:, 0]
    assert np.argmax(np.abs(state)) == 2  # |q0=1, q1=0> is index 0b10 in Q-Store / Cirq
    assert np.argmax(np.abs(Operator(to_qiskit(c)).data[:, 0])) == 1  # index 0b01 in Qiskit
    state_cirq = cirq.final_state_vector(to_cirq(c), qubit_order=cirq.LineQubit.range(2))
    assert np.argmax(np.abs(state_cirq)) == 2
    cnot = qc.UnifiedCircuit(2).add_gate("CNOT", [0, 1])
    ours = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    qiskit_order = [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]]
    np.testing.assert_allclose(cnot.unitary(), ours)
    np.testing.assert_allclose(Operator(to_qiskit(cnot)).data, qiskit_order)
    np.testing.assert_allclose(cirq.unitary(to_cirq(cnot)), ours)
    # labels are kept: Q-Store qubit q is Qiskit qubit q and cirq.LineQubit(q)
    inst = to_qiskit(cnot).data[0]
    assert [to_qiskit(cnot).find_bit(q).index for q in inst.qubits] == [0, 1]
    assert list(next(iter(to_cirq(cnot).all_operations())).qubits) == cirq.LineQubit.range(2)


# ---------------------------------------------------------------------------------------------
# exact round trips


@FAST
@given(circuits(symbolic=True, measure=True))
def test_round_trip_through_cirq_is_exact(c: qc.UnifiedCircuit) -> None:
    back = from_cirq(to_cirq(c), qubit_order=cirq.LineQubit.range(c.n_qubits))
    assert back == c, f"{c}\n!=\n{back}"
    assert back.parameter_names == c.parameter_names


@FAST
@given(circuits(symbolic=True, measure=True))
def test_round_trip_through_qiskit_is_exact(c: qc.UnifiedCircuit) -> None:
    back = from_qiskit(to_qiskit(c))
    assert back == c, f"{c}\n!=\n{back}"
    assert back.name == c.name
    assert back.parameter_names == c.parameter_names


@FAST
@given(circuits(symbolic=True, measure=True))
def test_round_trip_through_json_is_exact(c: qc.UnifiedCircuit) -> None:
    text = to_json(c)
    back = from_json(text)
    assert back == c, f"{c}\n!=\n{back}"
    assert back.name == c.name
    assert to_json(back) == text
    assert from_json(text.encode()) == c
    assert from_json(json.loads(text)) == c


def test_round_trips_keep_expressions_and_products() -> None:
    theta, x, w = Parameter("theta"), Parameter("x_3"), Parameter("w_3")
    c = qc.UnifiedCircuit(2)
    c.add_gate("RY", 0, 2 * theta + 0.1).add_gate("RZ", 1, x * w).add_gate("CRX", [0, 1], -theta)
    c.add_gate("MS", [1, 0], [x, 0.25 * w * w - 3, theta]).measure([1, 0], key="out")
    for back in (
        from_cirq(to_cirq(c)),
        from_qiskit(to_qiskit(c)),
        from_json(to_json(c)),
        qc.UnifiedCircuit.from_cirq(c.to_cirq()),
        qc.UnifiedCircuit.from_qiskit(c.to_qiskit()),
        qc.UnifiedCircuit.from_json(c.to_json()),
    ):
        assert back == c
        assert back.operations[0].params[0] == 2 * theta + 0.1
        assert back.operations[1].params[0] == x * w
    # the other libraries hold real symbols with the same names
    ops = list(to_cirq(c).all_operations())
    assert sympy.Symbol("theta") in cirq.parameter_symbols(ops[0])
    assert {p.name for p in to_qiskit(c).parameters} == {"theta", "x_3", "w_3"}
    assert cirq.is_parameterized(to_cirq(c))


def test_cirq_width_is_inferred_from_line_qubits_or_given() -> None:
    c = qc.UnifiedCircuit(4).add_gate("H", 1)
    assert from_cirq(to_cirq(c)).n_qubits == 2  # a Cirq circuit does not record idle qubits
    assert from_cirq(to_cirq(c), qubit_order=cirq.LineQubit.range(4)) == c
    grid = cirq.GridQubit.rect(1, 3)
    on_grid = to_cirq(qc.UnifiedCircuit(3).add_gate("CNOT", [2, 0]), qubits=grid)
    auto = from_cirq(on_grid)  # only the qubits in use, in Cirq's sorted order
    assert (auto.n_qubits, auto.operations[0].qubits) == (2, (1, 0))
    assert from_cirq(on_grid, qubit_order=grid).operations[0].qubits == (2, 0)
    reordered = from_cirq(on_grid, qubit_order=grid[::-1])
    assert reordered.operations[0].qubits == (0, 2)
    with pytest.raises(ConversionError, match="not in the qubit order"):
        from_cirq(on_grid, qubit_order=grid[:2])
    with pytest.raises(ConversionError, match="distinct qubits"):
        to_cirq(c, qubits=cirq.LineQubit.range(3))


def test_to_cirq_keeps_operation_order_in_moments() -> None:
    c = qc.UnifiedCircuit(2).add_gate("X", 0).add_gate("H", 0).add_gate("Y", 1)
    cc = to_cirq(c)
    assert [str(op.gate) for op in cc.all_operations()] == ["X", "H", "Y"]
    assert len(cc) == 2  # Y joins H's moment: it only follows it in the list
    m = qc.UnifiedCircuit(2).measure([0], key="m").measure([1], key="m")
    assert len(to_cirq(m)) == 2  # one measurement per key and moment


# ---------------------------------------------------------------------------------------------
# Cirq: circuits written by hand


def _x_like(t: float, s: float) -> complex:
    return complex(np.exp(1j * PI * t * (s + 0.5)))


@pytest.mark.parametrize(
    ("gate", "names", "phase"),
    [
        (cirq.X, ["X"], 1),
        (cirq.Y, ["Y"], 1),
        (cirq.Z, ["Z"], 1),
        (cirq.H, ["H"], 1),
        (cirq.S, ["S"], 1),
        (cirq.S**-1, ["SDG"], 1),
        (cirq.T, ["T"], 1),
        (cirq.T**-1, ["TDG"], 1),
        (cirq.X**0.5, ["SX"], 1),  # sqrt(X) = SX exactly, no phase
        (cirq.X**-0.5, ["SXDG"], 1),
        (cirq.rx(0.3), ["RX"], 1),
        (cirq.ry(-1.3), ["RY"], 1),
        (cirq.rz(2.3), ["RZ"], 1),
        (cirq.X**0.3, ["RX"], _x_like(0.3, 0)),
        (cirq.XPowGate(exponent=0.3, global_shift=0.2), ["RX"], _x_like(0.3, 0.2)),
        (cirq.Y**0.7, ["RY"], _x_like(0.7, 0)),
        (cirq.Z**0.7, ["P"], 1),  # Z**t = P(pi t) exactly
        (cirq.ZPowGate(exponent=0.7, global_shift=-0.5), ["RZ"], 1),
        (cirq.ZPowGate(exponent=0.7, global_shift=0.1), ["P"], np.exp(1j * PI * 0.07)),
        (cirq.CNOT, ["CNOT"], 1),
        (cirq.CZ, ["CZ"], 1),
        (cirq.SWAP, ["SWAP"], 1),
        (cirq.CCX, ["CCX"], 1),
        (cirq.CZ**0.7, ["CRZ", "P"], 1),
        (cirq.CZPowGate(exponent=0.7, global_shift=0.3), ["CRZ", "P"], np.exp(1j * PI * 0.21)),
        (cirq.CNOT**0.7, ["CRX", "P"], 1),
        (cirq.SWAP**0.7, ["CNOT", "CRX", "P", "CNOT"], 1),
        (
            cirq.SwapPowGate(exponent=0.4, global_shift=0.5),
            ["CNOT", "CRX", "P", "CNOT"],
            np.exp(1j * PI * 0.2),
        ),
        (cirq.XX**0.7, ["RXX"], _x_like(0.7, 0)),
        (cirq.YY**0.7, ["RYY"], _x_like(0.7, 0)),
        (cirq.ZZ**0.7, ["RZZ"], _x_like(0.7, 0)),
        (cirq.ZZPowGate(exponent=0.7, global_shift=-0.5), ["RZZ"], 1),
        (cirq.ms(0.3), ["RXX"], 1),
        (cirq.ControlledGate(cirq.rx(0.4)), ["CRX"], 1),
        (cirq.ControlledGate(cirq.ry(0.4)), ["CRY"], 1),
        (cirq.ControlledGate(cirq.rz(0.4)), ["CRZ"], 1),
        (cirq.rx(0.4).controlled(), ["CRX"], 1),
        (cirq.ControlledGate(cirq.XPowGate(exponent=0.3, global_shift=-0.5)), ["CRX"], 1),
        (cirq.IdentityGate(2), ["I", "I"], 1),
    ],
    ids=str,
)
def test_hand_written_cirq_gate_maps_with_documented_phase(
    gate: Any, names: list[str], phase: complex
) -> None:
    qs = cirq.LineQubit.range(cirq.num_qubits(gate))
    circuit = cirq.Circuit(gate.on(*qs))
    ir = from_cirq(circuit)
    assert [op.gate for op in ir] == names
    np.testing.assert_allclose(cirq.unitary(circuit), phase * ir.unitary(), atol=1e-12)


@pytest.mark.parametrize(
    "gate",
    [
        cirq.H**0.5,
        cirq.ISWAP**0.3,
        cirq.FSimGate(0.3, 0.2),
        cirq.PhasedXPowGate(phase_exponent=0.2, exponent=0.3),
        cirq.PhasedXZGate(x_exponent=0.1, z_exponent=0.4, axis_phase_exponent=-0.3),
        cirq.CCZ,
        cirq.CCX**0.5,
        cirq.CSWAP,
        cirq.X.controlled(2),
        cirq.S.controlled(),
        cirq.ControlledGate(cirq.H),
    ],
    ids=str,
)
def test_other_cirq_gates_go_through_cirq_decomposition_up_to_global_phase(gate: Any) -> None:
    qs = cirq.LineQubit.range(cirq.num_qubits(gate))
    circuit = cirq.Circuit(gate.on(*qs))
    global_phase(cirq.unitary(circuit), from_cirq(circuit).unitary())


def test_global_phase_gate_is_dropped() -> None:
    q = cirq.LineQubit(0)
    circuit = cirq.Circuit(cirq.H(q), cirq.global_phase_operation(1j))
    ir = from_cirq(circuit)
    assert [op.gate for op in ir] == ["H"]
    np.testing.assert_allclose(cirq.unitary(circuit), 1j * ir.unitary(), atol=1e-12)


def test_cirq_symbolic_exponents_and_measurement_keys() -> None:
    t = sympy.Symbol("t")
    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(
        cirq.X(q[0]) ** t,
        cirq.rz(2 * t + 0.5).on(q[1]),
        cirq.ZPowGate(exponent=t).on(q[1]),
        cirq.measure(q[1], q[0], key="result"),
    )
    ir = from_cirq(circuit)
    assert ir.operations[0].gate == "RX"
    assert ir.operations[0].params[0] == PI * Parameter("t")
    assert ir.operations[1].params[0] == 2 * Parameter("t") + 0.5
    assert ir.operations[2].gate == "P"
    assert measurements(ir) == [((1, 0), "result")]
    values = {"t": 0.37}
    resolved = cirq.resolve_parameters(circuit, values)
    global_phase(cirq_unitary(resolved, 2), ir.unitary(values))


def test_cirq_rejects_what_a_circuit_cannot_hold() -> None:
    q = cirq.LineQubit.range(2)
    with pytest.raises(ConversionError, match="MatrixGate"):
        from_cirq(cirq.Circuit(cirq.MatrixGate(np.eye(2)).on(q[0])))
    with pytest.raises(ConversionError, match="inverts bits"):
        from_cirq(cirq.Circuit(cirq.measure(q[0], key="m", invert_mask=(True,))))
    with pytest.raises(ConversionError, match="decompose"):
        from_cirq(cirq.Circuit(cirq.ResetChannel().on(q[0])))
    with pytest.raises(ConversionError, match="not a real polynomial"):
        from_cirq(cirq.Circuit(cirq.rx(sympy.sin(sympy.Symbol("a"))).on(q[0])))
    with pytest.raises(ConversionError, match="qudits"):
        from_cirq(cirq.Circuit(cirq.IdentityGate(qid_shape=(3,)).on(cirq.LineQid(0, 3))))
    with pytest.raises(ConversionError, match=r"cirq\.Circuit"):
        from_cirq("not a circuit")  # type: ignore[arg-type]


def test_cirq_custom_gates_simulate_resolve_decompose_and_invert() -> None:
    c = qc.UnifiedCircuit(3)
    c.add_gate("U3", 0, ["a", 0.2, "b"]).add_gate("MS", [0, 2], ["a", 0.1, 0.9])
    c.add_gate("GPI", 1, "b").add_gate("GPI2", 2, 2 * Parameter("a")).add_gate("ZZ", [1, 2], 0.4)
    c.add_gate("P", 1, "a").add_gate("RYY", [0, 1], "b")
    values = {"a": 0.31, "b": -1.7}
    cc = to_cirq(c)
    assert cirq.parameter_names(cc) == {"a", "b"}
    resolved = cirq.resolve_parameters(cc, values)
    expected = c.unitary(values)
    np.testing.assert_allclose(cirq_unitary(resolved, 3), expected, atol=1e-12)
    # decomposed to Cirq's standard gates first (also while symbolic), then resolved
    flat = cirq.Circuit(cirq.decompose(cc))
    from qstore.core.convert.cirq import QStoreGate

    assert not any(isinstance(op.gate, QStoreGate) for op in flat.all_operations())
    assert all(isinstance(op.gate, cirq.EigenGate) for op in flat.all_operations())
    np.testing.assert_allclose(
        cirq_unitary(cirq.resolve_parameters(flat, values), 3), expected, atol=1e-12
    )
    state = cirq.Simulator().simulate(resolved).final_state_vector
    np.testing.assert_allclose(state, expected[:, 0], atol=1e-6)
    np.testing.assert_allclose(
        cirq_unitary(cirq.inverse(resolved), 3), expected.conj().T, atol=1e-12
    )
    text = str(cc)
    for label in ("U3(", "MS(", "GPI(", "GPI2(", "ZZ(", "P(", "Ryy("):
        assert label in text
    assert pickle.loads(pickle.dumps(cc)) == cc
    assert from_cirq(pickle.loads(pickle.dumps(cc))) == c


# ---------------------------------------------------------------------------------------------
# Qiskit: circuits written by hand


@pytest.mark.parametrize(
    ("gate", "name"),
    [
        (qlib.IGate(), "I"),
        (qlib.HGate(), "H"),
        (qlib.XGate(), "X"),
        (qlib.YGate(), "Y"),
        (qlib.ZGate(), "Z"),
        (qlib.SGate(), "S"),
        (qlib.SdgGate(), "SDG"),
        (qlib.TGate(), "T"),
        (qlib.TdgGate(), "TDG"),
        (qlib.SXGate(), "SX"),
        (qlib.SXdgGate(), "SXDG"),
        (qlib.RXGate(0.3), "RX"),
        (qlib.RYGate(-0.3), "RY"),
        (qlib.RZGate(1.3), "RZ"),
        (qlib.PhaseGate(0.3), "P"),
        (qlib.U1Gate(0.3), "P"),
        (qlib.UGate(0.1, 0.2, 0.3), "U3"),
        (qlib.U3Gate(0.1, 0.2, 0.3), "U3"),
        (qlib.U2Gate(0.2, 0.3), "U3"),
        (qlib.RGate(0.4, 1.1), "U3"),
        (qlib.CXGate(), "CNOT"),
        (qlib.CZGate(), "CZ"),
        (qlib.SwapGate(), "SWAP"),
        (qlib.CRXGate(0.3), "CRX"),
        (qlib.CRYGate(0.3), "CRY"),
        (qlib.CRZGate(0.3), "CRZ"),
        (qlib.RXXGate(0.3), "RXX"),
        (qlib.RYYGate(0.3), "RYY"),
        (qlib.RZZGate(0.3), "RZZ"),
        (qlib.CCXGate(), "CCX"),
    ],
    ids=lambda x: getattr(x, "name", str(x)),
)
def test_qiskit_standard_gates_map_exactly(gate: Any, name: str) -> None:
    circuit = QuantumCircuit(3)
    circuit.append(gate, list(range(gate.num_qubits))[::-1])  # reversed qubits: order matters
    ir = from_qiskit(circuit)
    assert [op.gate for op in ir] == [name]
    assert ir.operations[0].qubits == tuple(range(gate.num_qubits))[::-1]
    np.testing.assert_allclose(qiskit_unitary(circuit), ir.unitary(), atol=1e-12)


@pytest.mark.parametrize(
    "gate",
    [
        qlib.CXGate(ctrl_state=0),
        qlib.CPhaseGate(0.3),
        qlib.CYGate(),
        qlib.CHGate(),
        qlib.CUGate(0.1, 0.2, 0.3, 0.4),
        qlib.CSwapGate(),
        qlib.iSwapGate(),
        qlib.ECRGate(),
        qlib.RZXGate(0.3),
        qlib.XXPlusYYGate(0.3, 0.2),
        qlib.C3XGate(),
        qlib.RCCXGate(),
    ],
    ids=lambda g: g.name,
)
def test_other_qiskit_gates_expand_through_their_definition_up_to_global_phase(gate: Any) -> None:
    circuit = QuantumCircuit(gate.num_qubits)
    circuit.append(gate, list(range(gate.num_qubits)))
    global_phase(qiskit_unitary(circuit), from_qiskit(circuit).unitary())


def test_qiskit_global_phase_is_dropped_and_barriers_skipped() -> None:
    circuit = QuantumCircuit(2, global_phase=0.7)
    circuit.h(0)
    circuit.barrier()
    circuit.append(qlib.GlobalPhaseGate(0.2), [])
    ir = from_qiskit(circuit)
    assert [op.gate for op in ir] == ["H"]
    np.testing.assert_allclose(qiskit_unitary(circuit), np.exp(0.9j) * ir.unitary(), atol=1e-12)


def test_qiskit_measurements_group_into_keys() -> None:
    circuit = QuantumCircuit(3, 2)
    circuit.h(0)
    circuit.measure([1, 0], [1, 0])
    circuit.measure(2, 1)
    circuit.measure_all()
    ir = from_qiskit(circuit)
    assert measurements(ir) == [((0, 1), "c"), ((2,), "c"), ((0, 1, 2), "meas")]
    # IR -> Qiskit: one register per key, bit j = j-th measured qubit
    c = qc.UnifiedCircuit(3).measure([2, 0], key="m").measure([1], key="m").measure(key="all")
    q = to_qiskit(c)
    assert [(r.name, r.size) for r in q.cregs] == [("m", 2), ("all", 3)]
    written = [
        (
            q.find_bit(i.qubits[0]).index,
            q.find_bit(i.clbits[0]).registers[0][0].name,
            q.find_bit(i.clbits[0]).registers[0][1],
        )
        for i in q.data
    ]
    assert written[:3] == [(2, "m", 0), (0, "m", 1), (1, "m", 0)]
    assert from_qiskit(q) == c


def test_qiskit_parameter_expressions_become_polynomials() -> None:
    t = QParameter("t")
    v = ParameterVector("v", 2)
    circuit = QuantumCircuit(2)
    circuit.rx(2 * t + 0.1, 0)
    circuit.ry(v[0] * v[1], 1)
    circuit.rz(t**2 / 2 - 3, 0)
    circuit.p((t + 1) * (v[0] - 2), 1)
    ir = from_qiskit(circuit)
    tt, v0, v1 = Parameter("t"), Parameter("v[0]"), Parameter("v[1]")
    assert [op.params[0] for op in ir] == [
        2 * tt + 0.1,
        v0 * v1,
        0.5 * tt * tt - 3,
        tt * v0 - 2 * tt + v0 - 2,
    ]
    values = {t: 0.3, v[0]: -0.4, v[1]: 1.9}
    bound = circuit.assign_parameters(values)
    np.testing.assert_allclose(
        qiskit_unitary(bound), ir.unitary({"t": 0.3, "v[0]": -0.4, "v[1]": 1.9}), atol=1e-12
    )


def test_qiskit_rounds_only_coefficients_within_its_epsilon() -> None:
    # Documented Qiskit limitation: tiny terms vanish, factors next to +-1 snap to +-1.
    t = Parameter("t")
    c = qc.UnifiedCircuit(1).add_gate("RX", 0, t + 1e-16).add_gate("RY", 0, 1.0000000000000002 * t)
    c.add_gate("RZ", 0, 1e-16 * t + 0.5)
    back = from_qiskit(to_qiskit(c))
    assert [op.params[0] for op in back] == [t, t, Expression.coerce(0.5)]
    for a, b in zip(c, back, strict=True):
        assert abs(a.params[0].evaluate({"t": 1.0}) - b.params[0].evaluate({"t": 1.0})) < 2e-15


def test_qiskit_rejects_what_a_circuit_cannot_hold() -> None:
    a = QParameter("a")
    cases: list[tuple[QuantumCircuit, str]] = []
    for expr in (a.sin(), 1 / a, a.exp()):
        c = QuantumCircuit(1)
        c.rx(expr, 0)
        cases.append((c, "polynomial"))
    c = QuantumCircuit(1)
    c.reset(0)
    cases.append((c, "reset"))
    c = QuantumCircuit(1)
    c.unitary(np.eye(2), [0])
    cases.append((c, "UnitaryGate"))
    c = QuantumCircuit(1, 1)
    c.measure(0, 0)
    with c.if_test((c.clbits[0], 1)):
        c.x(0)
    cases.append((c, "classical bits"))
    c = QuantumCircuit(1)
    c.rx(QParameter("θ"), 0)
    cases.append((c, "cannot be used"))
    for circuit, message in cases:
        with pytest.raises(ConversionError, match=message):
            from_qiskit(circuit)
    with pytest.raises(ConversionError, match="QuantumCircuit"):
        from_qiskit("not a circuit")  # type: ignore[arg-type]
    with pytest.raises(ConversionError, match="no qubits"):
        from_qiskit(QuantumCircuit())


def test_qiskit_ionq_gates_are_named_transpile_invert_and_survive_qpy() -> None:
    import io

    from qiskit import qpy, transpile

    c = qc.UnifiedCircuit(3)
    c.add_gate("GPI", 0, 0.3).add_gate("GPI2", 1, "a").add_gate("MS", [2, 0], [0.1, "a", 1.1])
    c.add_gate("ZZ", [1, 2], 0.4).add_gate("H", 0)
    q = to_qiskit(c)
    assert [i.operation.name for i in q.data][:4] == [
        "qstore_gpi",
        "qstore_gpi2",
        "qstore_ms",
        "qstore_zz",
    ]
    buf = io.BytesIO()
    qpy.dump(q, buf)
    buf.seek(0)
    assert from_qiskit(qpy.load(buf)[0]) == c  # recognised by name, class not needed
    bound_ir = c.bind({"a": -0.8})
    bound = to_qiskit(bound_ir)
    flat = transpile(bound, basis_gates=["u", "cx"], optimization_level=0)
    np.testing.assert_allclose(big_endian(Operator(flat).data, 3), bound_ir.unitary(), atol=1e-9)
    np.testing.assert_allclose(
        big_endian(Operator(bound.inverse()).data, 3), bound_ir.unitary().conj().T, atol=1e-12
    )


def test_register_name_clash_is_a_conversion_error() -> None:
    c = qc.UnifiedCircuit(1).measure(key="q")
    try:
        q = to_qiskit(c)
    except ConversionError as exc:
        assert "Rename the measurement keys" in str(exc)
    else:  # this Qiskit allows it; then it must round-trip
        assert from_qiskit(q) == c


# ---------------------------------------------------------------------------------------------
# OpenQASM 2


@FAST
@given(circuits(max_qubits=6, measure=True))
def test_qasm_export_parses_back_to_the_same_unitary(c: qc.UnifiedCircuit) -> None:
    text = to_qasm(c)
    for customs in ((), qasm2.LEGACY_CUSTOM_INSTRUCTIONS):
        loaded = qasm2.loads(text, custom_instructions=customs)
        np.testing.assert_allclose(qiskit_unitary(loaded), c.unitary(), atol=1e-9)
    # measurements go to one creg per key, bit j = j-th measured qubit
    assert measurements(from_qiskit(qasm2.loads(text))) == measurements(c)


def test_qasm_paper_reading_differs_only_by_global_phase() -> None:
    # The paper's qelib1.inc reads rz as u1 (= PhaseGate); docs: exact in Qiskit's reading only.
    c = (
        qc.UnifiedCircuit(2)
        .add_gate("RZ", 0, 0.7)
        .add_gate("RXX", [0, 1], 0.4)
        .add_gate("CRX", [1, 0], 1.1)
    )
    paper = [qasm2.CustomInstruction("rz", 1, 1, qlib.PhaseGate, builtin=True)]
    loaded = qasm2.loads(to_qasm(c), custom_instructions=paper)
    phase = global_phase(qiskit_unitary(loaded), c.unitary())
    assert abs(phase - 1) > 1e-3


def test_qasm_numbers_are_exact_and_well_formed() -> None:
    values = [0.1, 1e-05, -2.5e-300, 1 / 3, 123456789.125, -0.0, 7.0]
    c = qc.UnifiedCircuit(1)
    for v in values:
        c.add_gate("RX", 0, v)
    text = to_qasm(c)
    assert "rx(1.0e-05)" in text and "rx(7.0)" in text
    loaded = qasm2.loads(text)
    assert [float(i.operation.params[0]) for i in loaded.data] == values


def test_qasm_text_of_a_small_circuit() -> None:
    c = qc.UnifiedCircuit(2, name="bell").add_gate("H", 0).add_gate("CNOT", [0, 1])
    c.add_gate("GPI", 1, 0.5).measure(key="my key")
    assert to_qasm(c) == (
        "// bell\n"
        "OPENQASM 2.0;\n"
        'include "qelib1.inc";\n'
        "gate gpi(phi) a { u1(-phi) a; x a; u1(phi) a; }\n"
        "qreg q[2];\n"
        "creg c_my_key[2];\n"
        "h q[0];\n"
        "cx q[0],q[1];\n"
        "gpi(0.5) q[1];\n"
        "measure q[0] -> c_my_key[0];\n"
        "measure q[1] -> c_my_key[1];\n"
    )


def test_qasm_register_names_are_valid_and_distinct() -> None:
    c = qc.UnifiedCircuit(1)
    for key in ("q", "measure", "a b", "a_b", "Upper", "h", "1x", "ms"):
        c.measure(key=key)
    loaded = qasm2.loads(to_qasm(c))
    names = [r.name for r in loaded.cregs]
    assert len(set(names)) == 8
    assert names[3] == "a_b" and names[2] != "a_b"


def test_qasm_needs_bound_parameters() -> None:
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, "theta")
    with pytest.raises(UnboundParameterError, match="theta"):
        to_qasm(c)
    assert "ry(0.5)" in c.bind({"theta": 0.5}).to_qasm()


# ---------------------------------------------------------------------------------------------
# JSON: malformed input


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "qstore.circuit",
        "version": 1,
        "n_qubits": 2,
        "name": None,
        "operations": [{"gate": "H", "qubits": [0], "params": [], "key": None}],
    }
    doc.update(overrides)
    return doc


def _op(**fields: Any) -> dict[str, Any]:
    return _doc(operations=[fields])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schema": "qstore.circuit", "version": 1, "n_qubits": NaN}', "NaN is not finite"),
        (_doc(schema="other"), "not a Q-Store circuit"),
        ({"version": 1}, "not a Q-Store circuit"),
        (_doc(version=2), "newer than this qstore-core"),
        (_doc(version=0), "does not exist"),
        (_doc(version="1"), "must be an integer"),
        (_doc(n_qubits=0), "at least 1 qubit"),
        (_doc(n_qubits=True), "must be an integer"),
        (_doc(name=3), "name must be a string"),
        (_doc(operations={}), "expected a list of operations"),
        (_doc(extra=1), "unknown field"),
        (_doc(operations=[3]), "operations[0]"),
        (_op(gate="FOO", qubits=[0]), "unknown gate 'FOO'"),
        (_op(gate=7, qubits=[0]), "must be a name"),
        (_op(qubits=[0]), 'missing "gate"'),
        (_op(gate="CNOT", qubits=[0]), "acts on 2 qubit(s)"),
        (_op(gate="H", qubits=[2]), "out of range"),
        (_op(gate="H", qubits=[-1]), "out of range"),
        (_op(gate="CZ", qubits=[1, 1]), "appears twice"),
        (_op(gate="H", qubits=[0.0]), "must be an integer"),
        (_op(gate="H", qubits=[True]), "must be an integer"),
        (_op(gate="H", qubits=[]), "non-empty list"),
        (_op(gate="H", qubits=0), "non-empty list"),
        (_op(gate="RX", qubits=[0], params=[]), "takes 1 parameter(s) ['theta'], got 0"),
        (_op(gate="H", qubits=[0], params=[0.1]), "takes 0 parameter(s)"),
        (_op(gate="RX", qubits=[0], params=[1e400]), "not finite"),
        (_op(gate="RX", qubits=[0], params=[True]), "expected a number"),
        (_op(gate="RX", qubits=[0], params=[[1]]), "a parameter must be"),
        (_op(gate="RX", qubits=[0], params=["1abc"]), "Invalid symbol name '1abc'"),
        (_op(gate="RX", qubits=[0], params=[{"constant": "x"}]), "expected a number"),
        (_op(gate="RX", qubits=[0], params=[{"terms": [{"coeff": 1}]}]), 'needs both "symbols"'),
        (
            _op(gate="RX", qubits=[0], params=[{"terms": [{"symbols": [], "coeff": 1}]}]),
            "non-empty list",
        ),
        (_op(gate="RX", qubits=[0], params=[{"terms": {}}]), "list of terms"),
        (_op(gate="RX", qubits=[0], params=[{"value": 1}]), "unknown field"),
        (_op(gate="H", qubits=[0], params=[], key="m"), "only MEASURE has a key"),
        (_op(gate="MEASURE", qubits=[0], params=[]), "non-empty string key"),
        (_op(gate="MEASURE", qubits=[0], params=[1.0], key="m"), "MEASURE takes no parameters"),
        (_op(gate="H", qubits=[0], colour="red"), "unknown field"),
        (42, "takes JSON text"),
    ],
    ids=lambda x: x if isinstance(x, str) and len(x) < 40 else None,
)
def test_malformed_json_raises_serialization_error(data: Any, message: str) -> None:
    with pytest.raises(SerializationError) as info:
        from_json(data)
    assert message in str(info.value)


def test_json_error_names_the_place() -> None:
    doc = _doc(operations=[{"gate": "H", "qubits": [0]}, {"gate": "CZ", "qubits": [0, 5]}])
    with pytest.raises(SerializationError, match=r"operations\[1\]\.qubits\[1\]"):
        from_json(doc)


def test_json_reader_accepts_aliases_and_shorthand_parameters() -> None:
    doc = _op(gate="cx", qubits=[1, 0])
    doc["operations"].append({"gate": "ry", "qubits": [0], "params": ["theta"]})
    doc["operations"].append({"gate": "u", "qubits": [1], "params": [1, 2.5, {"constant": -1}]})
    doc["operations"].append({"gate": "m", "qubits": [0, 1], "key": "out"})
    c = from_json(doc)
    expected = qc.UnifiedCircuit(2).add_gate("CNOT", [1, 0]).add_gate("RY", 0, "theta")
    expected.add_gate("U3", 1, [1.0, 2.5, -1.0]).measure([0, 1], key="out")
    assert c == expected


def test_json_schema_document_matches_the_gate_table() -> None:
    schema = json_schema()
    assert schema["properties"]["schema"]["const"] == "qstore.circuit"
    assert schema["properties"]["version"]["const"] == 1
    arity: dict[str, tuple[int, int]] = {}
    for clause in schema["$defs"]["gate"]["allOf"]:
        cond = clause["if"]["properties"]["gate"]
        names = cond.get("enum", [cond.get("const")])
        props = clause["then"]["properties"]
        for name in names:
            arity[name] = (props["qubits"]["maxItems"], props["params"]["maxItems"])
    assert arity == {name: (s.n_qubits, s.n_params) for name, s in GATES.items()}


@FAST
@given(circuits(max_qubits=4, symbolic=True, measure=True))
def test_json_output_validates_against_the_schema(c: qc.UnifiedCircuit) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads(to_json(c)), json_schema())


# ---------------------------------------------------------------------------------------------
# optional dependencies


def test_missing_cirq_raises_missing_dependency_with_the_extra(monkeypatch: Any) -> None:
    c = qc.UnifiedCircuit(1).add_gate("H", 0)
    monkeypatch.setitem(sys.modules, "cirq", None)
    for call in (lambda: to_cirq(c), lambda: c.to_cirq(), lambda: from_cirq(object())):
        with pytest.raises(MissingDependencyError, match=r"qstore-core\[cirq\]") as info:
            call()
        assert isinstance(info.value, ImportError)
    from qstore.core.convert import cirq as cirq_module

    with pytest.raises(MissingDependencyError):
        cirq_module.QStoreGate  # noqa: B018


def test_missing_qiskit_raises_missing_dependency_with_the_extra(monkeypatch: Any) -> None:
    c = qc.UnifiedCircuit(1).add_gate("H", 0)
    monkeypatch.setitem(sys.modules, "qiskit", None)
    for call in (lambda: to_qiskit(c), lambda: c.to_qiskit(), lambda: from_qiskit(object())):
        with pytest.raises(MissingDependencyError, match=r"qstore-core\[qiskit\]"):
            call()


def test_json_and_qasm_work_without_cirq_and_qiskit() -> None:
    code = (
        "import sys; sys.modules['cirq'] = None; sys.modules['qiskit'] = None\n"
        "import qstore.core as qc\n"
        "from qstore.core.convert import from_json, to_json, to_qasm\n"
        "c = qc.UnifiedCircuit(2).add_gate('H', 0).add_gate('MS', [0, 1], [0.1, 0.2])\n"
        "assert from_json(to_json(c)) == c\n"
        "assert 'ms(0.1,0.2,' in to_qasm(c)\n"
        "assert 'cirq' not in sys.modules or sys.modules['cirq'] is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=None, timeout=60)
