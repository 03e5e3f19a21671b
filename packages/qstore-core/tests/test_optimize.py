"""``optimize()`` never changes the unitary (global phase included) and does simplify."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qstore.core as qc
from qstore.core.circuit import Operation
from qstore.core.errors import CircuitError, QStoreError
from qstore.core.gates import GATES
from qstore.core.optimize import OptimizationReport, optimization_report, optimize
from qstore.core.parameters import Expression, Parameter

PI = math.pi
SYMBOLS = ("a", "b", "c", "x")
GATE_NAMES = sorted(GATES)
# Written out here rather than taken from the optimiser: qubit orders under which a gate is the
# same operator (CCX: the two controls).
SYMMETRIC = {
    "CZ": (1, 0),
    "SWAP": (1, 0),
    "RXX": (1, 0),
    "RYY": (1, 0),
    "RZZ": (1, 0),
    "ZZ": (1, 0),
    "CCX": (1, 0, 2),
}
ADDITIVE = ("RX", "RY", "RZ", "P", "CRX", "CRY", "CRZ", "RXX", "RYY", "RZZ", "ZZ")

FAST = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def assert_same_unitary(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> None:
    # np.allclose, not up to a phase: the optimiser must keep the global phase too.
    assert np.allclose(a, b, atol=1e-10), np.max(np.abs(a - b))


def circuit_of(n: int, *ops: tuple[Any, ...]) -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(n)
    for op in ops:
        c.add_gate(*op)
    return c


def described(c: qc.UnifiedCircuit) -> list[str]:
    return [str(op) for op in c]


# ---------------------------------------------------------------------------------------------
# strategies

angles = st.one_of(
    st.floats(-2 * PI, 2 * PI, allow_nan=False, allow_infinity=False),
    st.integers(-16, 16).map(lambda k: k * PI / 4),  # 0, 2*pi (= -I for RX), 4*pi (= I) ...
)


@st.composite
def expressions(draw: st.DrawFn, symbolic: bool) -> Expression:
    value = Expression.coerce(draw(angles))
    if not symbolic or draw(st.booleans()):
        return value
    sym = Parameter(draw(st.sampled_from(SYMBOLS)))
    kind = draw(st.sampled_from(["plain", "linear", "product", "negated"]))
    if kind == "plain":
        return sym
    if kind == "linear":
        return draw(st.sampled_from([2.0, -0.5, 1.5])) * sym + value
    if kind == "product":
        return sym * Parameter(draw(st.sampled_from(SYMBOLS)))
    return -sym


@st.composite
def operations(draw: st.DrawFn, n: int, symbolic: bool, gates: list[str] = GATE_NAMES) -> Operation:
    name = draw(st.sampled_from([g for g in gates if GATES[g].n_qubits <= n]))
    spec = GATES[name]
    qubits = tuple(draw(st.permutations(range(n)))[: spec.n_qubits])
    params = tuple(draw(expressions(symbolic)) for _ in range(spec.n_params))
    return Operation(name, qubits, params)


def inverse_of(op: Operation, flip: bool) -> Operation:
    name, params = op.spec.inverse(op.params)
    qubits = op.qubits
    if flip:  # the same operator for symmetric gates, a different one otherwise
        qubits = tuple(qubits[i] for i in SYMMETRIC.get(name, range(len(qubits))[::-1]))
    return Operation(name, qubits, tuple(Expression.coerce(p) for p in params))  # type: ignore[arg-type]


@st.composite
def chunks(draw: st.DrawFn, n: int, symbolic: bool, measure: bool) -> list[Operation]:
    """A random gate, or a piece the optimiser should simplify."""
    kind = draw(st.sampled_from(["gate", "gate", "inverse", "run", "sandwich", "measure"]))
    if kind == "gate" or (kind == "measure" and not measure):
        return [draw(operations(n, symbolic))]
    if kind == "measure":
        return [Operation("MEASURE", (draw(st.integers(0, n - 1)),), (), "m")]
    if kind == "inverse":  # op, maybe a gate in between, op^-1
        op = draw(operations(n, symbolic))
        between = draw(st.lists(operations(n, symbolic), max_size=1))
        return [op, *between, inverse_of(op, draw(st.integers(0, 3)) == 0)]
    if kind == "run":  # same-axis rotations on the same qubits, sometimes undoing each other
        name = draw(st.sampled_from([g for g in (*ADDITIVE, "MS") if GATES[g].n_qubits <= n]))
        first = draw(operations(n, symbolic, [name]))
        out = [first]
        for _ in range(draw(st.integers(1, 3))):
            angle = -first.params[-1] if draw(st.booleans()) else draw(expressions(symbolic))
            # other parameters (MS phases) usually equal, qubits in any order
            params = first.params[:-1]
            if draw(st.integers(0, 3)) == 0:
                params = tuple(draw(expressions(symbolic)) for _ in params)
            qubits = first.qubits
            if draw(st.booleans()):
                qubits = tuple(draw(st.permutations(qubits)))
            out.append(Operation(name, qubits, (*params, angle)))
        return out
    # sandwich: a rotation, a gate it may commute with, a rotation on the same qubit
    if n < 2:
        return [draw(operations(n, symbolic))]
    q, r = draw(st.permutations(range(n)))[:2]
    axis = draw(st.sampled_from(["RZ", "P", "RX", "RY"]))
    middle = draw(st.sampled_from(["CZ", "CNOT", "CRZ", "RZZ", "CNOT_T", "RXX"]))
    if middle == "CNOT_T":
        mid = Operation("CNOT", (r, q))
    else:
        mid = Operation(middle, (q, r), (draw(expressions(symbolic)),) * GATES[middle].n_params)
    rot = [Operation(axis, (q,), (draw(expressions(symbolic)),)) for _ in range(2)]
    return [rot[0], mid, rot[1]]


@st.composite
def circuits(
    draw: st.DrawFn, symbolic: bool = False, measure: bool = True, max_qubits: int = 6
) -> qc.UnifiedCircuit:
    n = draw(st.integers(1, max_qubits))
    c = qc.UnifiedCircuit(n)
    for chunk in draw(st.lists(chunks(n, symbolic, measure), max_size=12)):
        for op in chunk:
            c.append(op)
    return c


def random_values(c: qc.UnifiedCircuit, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {name: float(rng.uniform(-2 * PI, 2 * PI)) for name in c.parameter_names}


# ---------------------------------------------------------------------------------------------
# properties


@FAST
@given(circuits())
def test_optimize_keeps_unitary_of_random_circuits(c: qc.UnifiedCircuit) -> None:
    before = list(c)
    out = optimize(c)
    assert list(c) == before  # the input is untouched
    assert len(out) <= len(c)
    assert_same_unitary(out.unitary(), c.unitary())
    assert optimize(out) == out  # idempotent: optimize() runs to a fixed point


@FAST
@given(circuits(symbolic=True), st.integers(0, 2**32 - 1))
def test_optimize_keeps_unitary_for_every_binding(c: qc.UnifiedCircuit, seed: int) -> None:
    out = optimize(c)
    assert len(out) <= len(c)
    assert set(out.parameter_names) <= set(c.parameter_names)
    for s in (seed, seed + 1):
        values = random_values(c, s)
        assert_same_unitary(out.bind(values, strict=False).unitary(), c.bind(values).unitary())
    assert optimize(out) == out


@st.composite
def related_pairs(draw: st.DrawFn) -> qc.UnifiedCircuit:
    """Two gates on the same qubits, the second often the same gate with related parameters."""
    c = qc.UnifiedCircuit(3)
    first = draw(operations(3, True))
    name = first.gate if draw(st.booleans()) else draw(st.sampled_from(GATE_NAMES))
    spec = GATES[name]
    if spec.n_qubits != len(first.qubits):
        name, spec = first.gate, first.spec
    params = [draw(st.sampled_from([p, -p, p + PI, p + 2 * PI, p + 4 * PI])) for p in first.params]
    if len(params) != spec.n_params or draw(st.integers(0, 3)) == 0:
        params = [draw(expressions(True)) for _ in range(spec.n_params)]
    second = Operation(name, tuple(draw(st.permutations(first.qubits))), tuple(params))
    c.append(first).append(second)
    return c


@FAST
@given(related_pairs(), st.integers(0, 2**32 - 1))
def test_optimize_keeps_unitary_of_related_gate_pairs(c: qc.UnifiedCircuit, seed: int) -> None:
    out = optimize(c)
    values = random_values(c, seed)
    assert_same_unitary(out.bind(values, strict=False).unitary(), c.bind(values).unitary())


@FAST
@given(circuits(symbolic=True, measure=False))
def test_circuit_followed_by_its_inverse_optimizes_to_nothing(c: qc.UnifiedCircuit) -> None:
    assert len(optimize(c + c.inverse())) == 0


@FAST
@given(circuits(symbolic=True), st.sampled_from(["ionq", "ionq_hardware"]))
def test_ionq_target_keeps_native_gates_and_unitary(c: qc.UnifiedCircuit, target: str) -> None:
    out = optimize(c, target_backend=target)
    natives = ("GPI", "GPI2", "MS", "ZZ")
    assert [op for op in out if op.gate in natives] == [op for op in c if op.gate in natives]
    values = random_values(c, 7)
    assert_same_unitary(out.bind(values, strict=False).unitary(), c.bind(values).unitary())


@pytest.mark.parametrize("name", (*ADDITIVE, "MS"))
def test_additive_angles_compose_in_the_gate_table(name: str) -> None:
    # The merge rule relies on G(a) G(b) = G(a + b) exactly; check it against the matrices.
    spec = GATES[name]
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-7, 7, size=(2, spec.n_params))
    index = spec.n_params - 1  # the angle: MS is (phi0, phi1, theta)
    b[:index] = a[:index]
    total = a.copy()
    total[index] += b[index]
    assert np.allclose(spec.matrix(b) @ spec.matrix(a), spec.matrix(total), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# specific rewrites


def test_hadamard_pair_becomes_empty_circuit() -> None:
    assert len(optimize(circuit_of(1, ("H", 0), ("H", 0)))) == 0


def test_rx_pair_merges_into_one_rx_with_symbolic_sum() -> None:
    out = optimize(circuit_of(1, ("RX", 0, "a"), ("RX", 0, "b")))
    assert [op.gate for op in out] == ["RX"]
    assert out.operations[0].params == (Parameter("a") + Parameter("b"),)


def test_cnot_pair_cancels_across_gate_on_other_qubit() -> None:
    out = optimize(circuit_of(3, ("CNOT", [0, 1]), ("X", 2), ("CNOT", [0, 1])))
    assert described(out) == ["X [2]"]


def test_cnots_with_swapped_roles_are_kept() -> None:
    c = circuit_of(2, ("CNOT", [0, 1]), ("CNOT", [1, 0]))
    assert optimize(c) == c


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([("S", 0), ("SDG", 0)], []),
        ([("TDG", 0), ("T", 0)], []),
        ([("SX", 0), ("SXDG", 0)], []),
        ([("CZ", [0, 1]), ("CZ", [1, 0])], []),
        ([("SWAP", [0, 1]), ("SWAP", [1, 0])], []),
        ([("CCX", [0, 1, 2]), ("CCX", [1, 0, 2])], []),
        ([("CCX", [0, 1, 2]), ("CCX", [0, 2, 1])], ["CCX [0, 1, 2]", "CCX [0, 2, 1]"]),
        ([("GPI", 0, "f"), ("GPI", 0, "f")], []),
        ([("GPI", 0, 0.3), ("GPI", 0, 0.3)], []),
        ([("GPI2", 0, 0.3), ("GPI2", 0, 0.3 + PI)], []),
        ([("U3", 0, ["t", "p", "l"]), ("U3", 0, [-Parameter(s) for s in "tlp"])], []),
        ([("RX", 0, "a"), ("RX", 0, -Parameter("a"))], []),
        ([("CRZ", [0, 1], "a"), ("CRZ", [0, 1], -Parameter("a"))], []),
        ([("MS", [0, 1], [0.1, 0.2, "a"]), ("MS", [0, 1], [0.1, 0.2, -Parameter("a")])], []),
        ([("H", 0), ("X", 0), ("X", 0), ("H", 0)], []),
        ([("S", 0), ("S", 0)], ["Z [0]"]),
        ([("T", 0), ("T", 0)], ["S [0]"]),
        ([("SX", 0), ("SX", 0)], ["X [0]"]),
        ([("RZZ", [0, 1], "a"), ("RZZ", [1, 0], "b")], ["RZZ(a + b) [0, 1]"]),
        ([("CRX", [0, 1], "a"), ("CRX", [1, 0], "b")], ["CRX(a) [0, 1]", "CRX(b) [1, 0]"]),
        ([("P", 0, "a"), ("S", 0)], [f"P(a + {PI / 2!r}) [0]"]),
        ([("RZ", 0, "a"), ("CZ", [0, 1]), ("RZ", 0, "b")], ["RZ(a + b) [0]", "CZ [0, 1]"]),
        ([("RX", 1, "a"), ("CNOT", [0, 1]), ("RX", 1, "b")], ["RX(a + b) [1]", "CNOT [0, 1]"]),
        ([("RX", 0, "a"), ("CNOT", [0, 1]), ("RX", 0, "b")], None),  # control: no merge
        ([("H", 0), ("CZ", [0, 1]), ("H", 0)], None),
    ],
)
def test_known_rewrites(ops: list[tuple[Any, ...]], expected: list[str] | None) -> None:
    n = max(max(op[1]) if isinstance(op[1], list) else op[1] for op in ops) + 1
    c = circuit_of(n, *ops)
    out = optimize(c)
    if expected is None:  # nothing to simplify
        expected = described(c)
    assert described(out) == expected
    values = random_values(c, 3)
    assert_same_unitary(out.bind(values, strict=False).unitary(), c.bind(values).unitary())


@pytest.mark.parametrize(
    ("gate", "params", "removed"),
    [
        ("I", (), True),
        ("RX", (0.0,), True),
        ("RY", (1e-13,), True),
        ("RZ", (4 * PI,), True),
        ("RX", (2 * PI,), False),  # RX(2 pi) = -I: only a global phase, still not removable
        ("RZZ", (-8 * PI,), True),
        ("RXX", (2 * PI,), False),
        ("CRY", (4 * PI,), True),
        ("CRZ", (2 * PI,), False),  # controlled -I is not even a global phase
        ("P", (2 * PI,), True),
        ("P", (PI,), False),
        ("ZZ", (0.0,), True),
        ("U3", (0.0, 0.0, 0.0), True),
        ("U3", (0.0, 0.3, -0.3), True),
        ("U3", (0.0, 0.3, 0.0), False),
        ("U3", (2 * PI, 0.0, 0.0), False),
        ("MS", (0.4, 0.1, 4 * PI), True),
    ],
)
def test_identity_gates_are_dropped_and_phase_gates_kept(
    gate: str, params: tuple[float, ...], removed: bool
) -> None:
    n = GATES[gate].n_qubits
    c = qc.UnifiedCircuit(n).add_gate(gate, list(range(n)), list(params) or None)
    out = optimize(c)
    assert len(out) == (0 if removed else 1)
    assert_same_unitary(out.unitary(), c.unitary())


def test_symbolic_u3_with_cancelling_phases_is_dropped() -> None:
    c = qc.UnifiedCircuit(1).add_gate("U3", 0, [0.0, "p", -Parameter("p")])
    assert len(optimize(c)) == 0


def test_rotation_merge_that_sums_to_identity_is_dropped() -> None:
    c = circuit_of(1, ("RY", 0, 3 * PI), ("RY", 0, PI))
    assert len(optimize(c)) == 0
    c = circuit_of(1, ("RY", 0, PI), ("RY", 0, PI))  # RY(2 pi) = -I stays as one gate
    assert described(optimize(c)) == [f"RY({2 * PI!r}) [0]"]


def test_measurement_is_a_barrier() -> None:
    c = circuit_of(2, ("H", 0)).measure(0, key="mid")
    c.add_gate("H", 0).add_gate("RZ", 1, "a").measure(1).add_gate("RZ", 1, "b")
    out = optimize(c)
    assert out == c
    assert out.operations[1].key == "mid"


def test_rotations_merge_past_measurement_of_other_qubit() -> None:
    c = circuit_of(2, ("RZ", 1, "a")).measure(0).add_gate("RZ", 1, "b")
    assert described(optimize(c)) == ["RZ(a + b) [1]", "MEASURE[0] -> 'm'"]


def test_ionq_target_keeps_natives_but_optimizes_other_gates() -> None:
    c = circuit_of(2, ("GPI", 0, 0.3), ("GPI", 0, 0.3), ("ZZ", [0, 1], 0.0), ("H", 1), ("H", 1))
    out = optimize(c, target_backend="ionq")
    assert described(out) == ["GPI(0.3) [0]", "GPI(0.3) [0]", "ZZ(0.0) [0, 1]"]
    assert len(optimize(c)) == 0


def test_optimize_keeps_name_and_method_delegates() -> None:
    c = qc.UnifiedCircuit(1, name="ansatz").add_gate("X", 0).add_gate("X", 0)
    out = c.optimize()
    assert out.name == "ansatz" and len(out) == 0 and len(c) == 2


@pytest.mark.parametrize("target", ["ionq_sim", "", None, 3])
def test_unknown_target_backend_is_a_clear_error(target: Any) -> None:
    with pytest.raises(QStoreError, match="target_backend") as err:
        optimize(qc.UnifiedCircuit(1), target_backend=target)
    assert isinstance(err.value, CircuitError) and "'auto'" in str(err.value)


def test_target_backend_names_are_case_insensitive() -> None:
    c = circuit_of(1, ("H", 0), ("H", 0))
    assert len(optimize(c, target_backend="IonQ")) == len(optimize(c, "local")) == 0


def test_long_commuting_run_is_fast_and_merged() -> None:
    c = qc.UnifiedCircuit(6)
    for layer in range(300):
        for q in range(5):
            c.add_gate("CZ", [q, q + 1]).add_gate("RZ", q, f"t{layer}")
    out = optimize(c)
    assert out.gate_counts() == {"RZ": 5}  # the CZ pairs cancel; the RZs merge through them
    values = random_values(c, 0)
    assert_same_unitary(out.bind(values).unitary(), c.bind(values).unitary())


def test_report_counts_and_reads_well() -> None:
    c = circuit_of(2, ("H", 0), ("H", 0), ("CNOT", [0, 1]), ("RZ", 1, "a"), ("RZ", 1, "b"))
    report = optimization_report(c, optimize(c))
    assert isinstance(report, OptimizationReport)
    assert (report.gates_before, report.gates_after, report.gates_removed) == (5, 2, 3)
    assert (report.two_qubit_before, report.two_qubit_after) == (1, 1)
    assert report.reduction == pytest.approx(0.6)
    text = str(report)
    assert text.splitlines()[0].startswith("gates 5 -> 2 (-3, 60.0%)")
    assert "H     2 -> 0" in text and "RZ    2 -> 1" in text
    with pytest.raises(AttributeError):
        report.gates_after = 0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# independent reference: Cirq


def to_cirq(c: qc.UnifiedCircuit) -> Any:
    """A hand-written map of the gates Cirq has, with exact global phases (not the library's)."""
    cirq = pytest.importorskip("cirq")
    half = -0.5  # global_shift that turns cirq's XXPowGate etc. into exp(-i t/2 XX)
    q = cirq.LineQubit.range(c.n_qubits)
    one = {
        "I": lambda t: cirq.I,
        "H": lambda t: cirq.H,
        "X": lambda t: cirq.X,
        "Y": lambda t: cirq.Y,
        "Z": lambda t: cirq.Z,
        "S": lambda t: cirq.S,
        "SDG": lambda t: cirq.S**-1,
        "T": lambda t: cirq.T,
        "TDG": lambda t: cirq.T**-1,
        "SX": lambda t: cirq.X**0.5,
        "SXDG": lambda t: cirq.X**-0.5,
        "RX": cirq.rx,
        "RY": cirq.ry,
        "RZ": cirq.rz,
        "P": lambda t: cirq.ZPowGate(exponent=t / PI),
        "CNOT": lambda t: cirq.CNOT,
        "CZ": lambda t: cirq.CZ,
        "SWAP": lambda t: cirq.SWAP,
        "CCX": lambda t: cirq.CCX,
        "CRX": lambda t: cirq.ControlledGate(cirq.rx(t)),
        "CRY": lambda t: cirq.ControlledGate(cirq.ry(t)),
        "CRZ": lambda t: cirq.ControlledGate(cirq.rz(t)),
        "RXX": lambda t: cirq.XXPowGate(exponent=t / PI, global_shift=half),
        "RYY": lambda t: cirq.YYPowGate(exponent=t / PI, global_shift=half),
        "RZZ": lambda t: cirq.ZZPowGate(exponent=t / PI, global_shift=half),
        "ZZ": lambda t: cirq.ZZPowGate(exponent=t / PI, global_shift=half),
    }
    ops = []
    for op in c:
        if op.is_measurement:
            continue
        theta = op.numeric_params()[0] if op.params else 0.0
        ops.append(one[op.gate](theta).on(*(q[i] for i in op.qubits)))
    return cirq.Circuit(ops)


CIRQ_GATES = [g for g in GATE_NAMES if g not in ("U3", "GPI", "GPI2", "MS")]


def check_against_cirq(c: qc.UnifiedCircuit) -> None:
    cirq = pytest.importorskip("cirq")
    out = optimize(c)
    q = cirq.LineQubit.range(c.n_qubits)
    reference = to_cirq(c).unitary(qubit_order=q, qubits_that_should_be_present=q)
    assert_same_unitary(out.unitary(), reference)
    optimized = to_cirq(out).unitary(qubit_order=q, qubits_that_should_be_present=q)
    assert_same_unitary(optimized, reference)


@pytest.mark.parametrize(
    "ops",
    [
        [("H", 0), ("H", 0)],
        [("RX", 0, 0.4), ("RX", 0, 1.1)],
        [("CNOT", [0, 1]), ("X", 2), ("CNOT", [0, 1])],
        [("CNOT", [0, 1]), ("CNOT", [1, 0])],
        [("RX", 0, 2 * PI)],
        [("P", 0, 0.3), ("T", 0), ("S", 0), ("S", 0), ("RZ", 0, 0.2), ("CZ", [1, 0])],
        [("RZZ", [0, 1], 0.3), ("RZZ", [1, 0], 0.5), ("CCX", [0, 1, 2]), ("CCX", [1, 0, 2])],
    ],
)
def test_optimized_unitary_matches_cirq(ops: list[tuple[Any, ...]]) -> None:
    n = max(max(op[1]) if isinstance(op[1], list) else op[1] for op in ops) + 1
    check_against_cirq(circuit_of(n, *ops))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.data())
def test_optimized_random_circuits_match_cirq(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 4))
    c = qc.UnifiedCircuit(n)
    for _ in range(data.draw(st.integers(0, 10))):
        op = data.draw(operations(n, False, CIRQ_GATES))
        c.append(op)
        if data.draw(st.booleans()):
            c.append(inverse_of(op, op.gate in SYMMETRIC))
    check_against_cirq(c)
