"""Every gate's matrix against Cirq's, Qiskit's and IonQ's published formulas (conventions.md).

References are built from the other libraries' own gates (never through our converters), and the
IonQ natives from IonQ's documentation written out here in *turns*. The documented global phase
of every gate-table entry is 1, so the comparisons are exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from qstore.core.gates import GATES, get_gate

cirq = pytest.importorskip("cirq")
qiskit = pytest.importorskip("qiskit")
from qiskit.circuit import QuantumCircuit  # noqa: E402
from qiskit.circuit import library as qlib  # noqa: E402
from qiskit.quantum_info import Operator  # noqa: E402

TWO_PI = 2 * math.pi
PARAM_SETS = [
    np.zeros(3),
    np.array([math.pi, math.pi / 2, -math.pi / 2]),
    *(np.random.default_rng(seed).uniform(-2 * TWO_PI, 2 * TWO_PI, size=3) for seed in range(6)),
]


def big_endian(m_little: np.ndarray, n: int) -> np.ndarray:
    """Qiskit's little-endian matrix in qubit-0-most-significant order (by index bit reversal)."""
    perm = [int(format(i, f"0{n}b")[::-1], 2) for i in range(1 << n)]
    return np.asarray(m_little)[np.ix_(perm, perm)]


def _pi_exp(t: float) -> float:
    return t / math.pi


# Cirq's own gates with the Q-Store matrix (parameters in radians).
CIRQ_REFERENCE: dict[str, Callable[..., Any]] = {
    "I": lambda: cirq.I,
    "H": lambda: cirq.H,
    "X": lambda: cirq.X,
    "Y": lambda: cirq.Y,
    "Z": lambda: cirq.Z,
    "S": lambda: cirq.S,
    "SDG": lambda: cirq.S**-1,
    "T": lambda: cirq.T,
    "TDG": lambda: cirq.T**-1,
    "SX": lambda: cirq.X**0.5,
    "SXDG": lambda: cirq.X**-0.5,
    "RX": lambda t: cirq.rx(t),
    "RY": lambda t: cirq.ry(t),
    "RZ": lambda t: cirq.rz(t),
    "P": lambda t: cirq.ZPowGate(exponent=_pi_exp(t)),
    # Cirq has no U3 (QasmUGate wraps theta into [0, 2pi), and U3 has period 4pi in theta):
    # Cirq's own P(phi) RY(theta) P(lambda), applied right to left.
    "U3": lambda t, f, lam: cirq.MatrixGate(
        cirq.unitary(cirq.ZPowGate(exponent=_pi_exp(f)))
        @ cirq.unitary(cirq.ry(t))
        @ cirq.unitary(cirq.ZPowGate(exponent=_pi_exp(lam)))
    ),
    "CNOT": lambda: cirq.CNOT,
    "CZ": lambda: cirq.CZ,
    "SWAP": lambda: cirq.SWAP,
    "CRX": lambda t: cirq.ControlledGate(cirq.rx(t)),
    "CRY": lambda t: cirq.ControlledGate(cirq.ry(t)),
    "CRZ": lambda t: cirq.ControlledGate(cirq.rz(t)),
    "RXX": lambda t: cirq.XXPowGate(exponent=_pi_exp(t), global_shift=-0.5),
    "RYY": lambda t: cirq.YYPowGate(exponent=_pi_exp(t), global_shift=-0.5),
    "RZZ": lambda t: cirq.ZZPowGate(exponent=_pi_exp(t), global_shift=-0.5),
    "ZZ": lambda t: cirq.ZZPowGate(exponent=_pi_exp(t), global_shift=-0.5),
    "CCX": lambda: cirq.CCX,
}

# Qiskit's standard gates with the Q-Store matrix (up to Qiskit's bit order).
QISKIT_REFERENCE: dict[str, Callable[..., Any]] = {
    "I": qlib.IGate,
    "H": qlib.HGate,
    "X": qlib.XGate,
    "Y": qlib.YGate,
    "Z": qlib.ZGate,
    "S": qlib.SGate,
    "SDG": qlib.SdgGate,
    "T": qlib.TGate,
    "TDG": qlib.TdgGate,
    "SX": qlib.SXGate,
    "SXDG": qlib.SXdgGate,
    "RX": qlib.RXGate,
    "RY": qlib.RYGate,
    "RZ": qlib.RZGate,
    "P": qlib.PhaseGate,
    "U3": qlib.UGate,
    "CNOT": qlib.CXGate,
    "CZ": qlib.CZGate,
    "SWAP": qlib.SwapGate,
    "CRX": qlib.CRXGate,
    "CRY": qlib.CRYGate,
    "CRZ": qlib.CRZGate,
    "RXX": qlib.RXXGate,
    "RYY": qlib.RYYGate,
    "RZZ": qlib.RZZGate,
    "ZZ": qlib.RZZGate,
    "CCX": qlib.CCXGate,
}


# IonQ's native gates as published (https://docs.ionq.com/guides/getting-started-with-native-gates),
# phases in turns.
def ionq_gpi(phi: float) -> np.ndarray:
    return np.array([[0, np.exp(-2j * np.pi * phi)], [np.exp(2j * np.pi * phi), 0]])


def ionq_gpi2(phi: float) -> np.ndarray:
    return np.array(
        [[1, -1j * np.exp(-2j * np.pi * phi)], [-1j * np.exp(2j * np.pi * phi), 1]]
    ) / np.sqrt(2)


def ionq_ms(phi0: float, phi1: float, theta: float = 0.25) -> np.ndarray:
    c, s = np.cos(np.pi * theta), np.sin(np.pi * theta)
    return np.array(
        [
            [c, 0, 0, -1j * np.exp(-2j * np.pi * (phi0 + phi1)) * s],
            [0, c, -1j * np.exp(-2j * np.pi * (phi0 - phi1)) * s, 0],
            [0, -1j * np.exp(2j * np.pi * (phi0 - phi1)) * s, c, 0],
            [-1j * np.exp(2j * np.pi * (phi0 + phi1)) * s, 0, 0, c],
        ]
    )


def ionq_zz(theta: float) -> np.ndarray:
    return np.diag(np.exp(-1j * np.pi * theta * np.array([1, -1, -1, 1])))


def ionq_reference(name: str, radians: np.ndarray) -> np.ndarray:
    turns = radians / TWO_PI  # Q-Store radians -> IonQ turns
    if name == "GPI":
        return ionq_gpi(turns[0])
    if name == "GPI2":
        return ionq_gpi2(turns[0])
    if name == "MS":
        return ionq_ms(turns[0], turns[1], turns[2])
    assert name == "ZZ"
    return ionq_zz(turns[0])


IONQ = ("GPI", "GPI2", "MS", "ZZ")


def test_every_gate_has_references() -> None:
    assert set(CIRQ_REFERENCE) | set(IONQ) == set(GATES)
    assert set(QISKIT_REFERENCE) | set(IONQ) == set(GATES)


def _cases(names: Any) -> list[tuple[str, int]]:
    """Fixed gates once, parametrised gates with every parameter set."""
    return [
        (name, k)
        for name in sorted(names)
        for k in (range(len(PARAM_SETS)) if GATES[name].n_params else [0])
    ]


@pytest.mark.parametrize(("name", "k"), _cases(CIRQ_REFERENCE))
def test_matrix_equals_cirq(name: str, k: int) -> None:
    spec = get_gate(name)
    params = PARAM_SETS[k][: spec.n_params]
    ref = cirq.unitary(CIRQ_REFERENCE[name](*params))
    np.testing.assert_allclose(spec.matrix(params), ref, atol=1e-12)


@pytest.mark.parametrize(("name", "k"), _cases(QISKIT_REFERENCE))
def test_matrix_equals_qiskit(name: str, k: int) -> None:
    spec = get_gate(name)
    params = PARAM_SETS[k][: spec.n_params]
    gate = QISKIT_REFERENCE[name](*[float(p) for p in params])
    ref = big_endian(Operator(gate).data, spec.n_qubits)
    np.testing.assert_allclose(spec.matrix(params), ref, atol=1e-12)


def test_u3_equals_qiskit_u3gate_and_p_equals_u1gate() -> None:
    for params in PARAM_SETS:
        np.testing.assert_allclose(
            get_gate("U3").matrix(params), Operator(qlib.U3Gate(*params)).data, atol=1e-12
        )
        np.testing.assert_allclose(
            get_gate("P").matrix(params[:1]), Operator(qlib.U1Gate(params[0])).data, atol=1e-12
        )


@pytest.mark.parametrize("name", IONQ)
@pytest.mark.parametrize("k", range(len(PARAM_SETS)))
def test_ionq_native_matrix_equals_ionq_formula_in_turns(name: str, k: int) -> None:
    spec = get_gate(name)
    params = PARAM_SETS[k][: spec.n_params]
    np.testing.assert_allclose(spec.matrix(params), ionq_reference(name, params), atol=1e-12)


def test_ms_default_theta_is_ionq_default_quarter_turn() -> None:
    spec = get_gate("MS")
    assert spec.defaults[2] == pytest.approx(math.pi / 2)
    np.testing.assert_allclose(
        spec.matrix([0.3, -1.2, math.pi / 2]), ionq_ms(0.3 / TWO_PI, -1.2 / TWO_PI)
    )


def test_known_fixed_values() -> None:
    # A few anchors that need no library at all.
    s2 = 1 / math.sqrt(2)
    np.testing.assert_allclose(get_gate("GPI").matrix([0.0]), [[0, 1], [1, 0]], atol=1e-15)
    np.testing.assert_allclose(
        get_gate("GPI").matrix([math.pi / 2]), [[0, -1j], [1j, 0]], atol=1e-15
    )
    np.testing.assert_allclose(
        get_gate("GPI2").matrix([0.0]), np.array([[1, -1j], [-1j, 1]]) * s2, atol=1e-15
    )
    np.testing.assert_allclose(
        get_gate("SX").matrix() @ get_gate("SX").matrix(), get_gate("X").matrix(), atol=1e-15
    )


@pytest.mark.parametrize("name", IONQ)
@pytest.mark.parametrize("k", range(1, len(PARAM_SETS)))
def test_cirq_decomposition_of_ionq_gates_uses_standard_gates_only(name: str, k: int) -> None:
    from qstore.core.convert.cirq import QStoreGate

    spec = get_gate(name)
    params = [float(p) for p in PARAM_SETS[k][: spec.n_params]]
    qubits = cirq.LineQubit.range(spec.n_qubits)
    ops = cirq.decompose_once(QStoreGate(name, params).on(*qubits))
    assert not any(isinstance(op.gate, QStoreGate) for op in ops)
    u = cirq.Circuit(ops).unitary(qubit_order=qubits)
    np.testing.assert_allclose(u, ionq_reference(name, np.array(params)), atol=1e-12)


@pytest.mark.parametrize("k", range(1, len(PARAM_SETS)))
def test_cirq_decomposition_of_u3_is_exact(k: int) -> None:
    from qstore.core.convert.cirq import QStoreGate

    params = [float(p) for p in PARAM_SETS[k]]
    q = cirq.LineQubit(0)
    ops = cirq.decompose_once(QStoreGate("U3", params).on(q))
    np.testing.assert_allclose(
        cirq.Circuit(ops).unitary(), Operator(qlib.UGate(*params)).data, atol=1e-12
    )


@pytest.mark.parametrize("name", IONQ)
@pytest.mark.parametrize("k", range(1, len(PARAM_SETS)))
def test_qiskit_ionq_gate_definition_matches_ionq_formula(name: str, k: int) -> None:
    from qstore.core.convert import _qiskit_gates

    spec = get_gate(name)
    params = [float(p) for p in PARAM_SETS[k][: spec.n_params]]
    gate = _qiskit_gates.GATE_CLASSES[name](*params)
    definition: QuantumCircuit = gate.definition
    assert {inst.operation.name for inst in definition.data} <= {"rz", "x", "rx", "rxx", "rzz"}
    assert definition.global_phase == 0
    expected = ionq_reference(name, np.array(params))
    np.testing.assert_allclose(
        big_endian(Operator(definition).data, spec.n_qubits), expected, atol=1e-12
    )
    np.testing.assert_allclose(big_endian(Operator(gate).data, spec.n_qubits), expected, atol=1e-12)
