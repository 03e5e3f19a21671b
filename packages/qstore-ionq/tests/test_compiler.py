"""The native compiler, verified by simulation with IONQ.md's gate matrices (phases in turns).

The reference simulator here is independent of qstore-core's gate table and of the compiler:
it applies the JSON the compiler emits, gate by gate, with the matrices written out in IONQ.md.
The original circuit's state comes from qstore-core's unitary (and, for QIS, from Qiskit).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import qstore.core as qc
from qstore.core.backends.local import LocalBackend
from qstore.core.gradients import ParameterShiftGradient
from qstore.ionq import (
    IonQCompilerError,
    IonQNativeCompiler,
    circuit_to_ionq_json,
    ionq_json_to_circuit,
)

ONE_Q = ["H", "X", "Y", "Z", "S", "SDG", "T", "TDG", "SX", "SXDG", "RX", "RY", "RZ", "P", "U3"]
ONE_Q += ["GPI", "GPI2"]
TWO_Q = ["CNOT", "CZ", "SWAP", "CRX", "CRY", "CRZ", "RXX", "RYY", "RZZ", "MS", "ZZ"]
ENTANGLERS = {"CNOT", "CZ", "CRX", "CRY", "CRZ", "RXX", "RYY", "RZZ", "MS", "ZZ"}


# -- the independent reference: IONQ.md's matrices, phases in turns --------------------------------
def gpi(phi: float) -> np.ndarray:
    return np.array([[0, np.exp(-2j * np.pi * phi)], [np.exp(2j * np.pi * phi), 0]])


def gpi2(phi: float) -> np.ndarray:
    return np.array(
        [[1, -1j * np.exp(-2j * np.pi * phi)], [-1j * np.exp(2j * np.pi * phi), 1]]
    ) / np.sqrt(2)


def ms(p0: float, p1: float, theta: float = 0.25) -> np.ndarray:
    c, s = np.cos(np.pi * theta), np.sin(np.pi * theta)
    e = lambda x: np.exp(2j * np.pi * x)  # noqa: E731
    return np.array(
        [
            [c, 0, 0, -1j * s / e(p0 + p1)],
            [0, c, -1j * s / e(p0 - p1), 0],
            [0, -1j * s * e(p0 - p1), c, 0],
            [-1j * s * e(p0 + p1), 0, 0, c],
        ]
    )


def zz(theta: float) -> np.ndarray:
    a = np.exp(-1j * np.pi * theta)
    return np.diag([a, 1 / a, 1 / a, a])


def apply(state: np.ndarray, m: np.ndarray, qubits: list[int], n: int) -> np.ndarray:
    k = len(qubits)
    psi = state.reshape([2] * n)
    psi = np.tensordot(m.reshape([2] * (2 * k)), psi, axes=(list(range(k, 2 * k)), qubits))
    return np.moveaxis(psi, list(range(k)), qubits).reshape(-1)


def simulate_native(data: dict) -> np.ndarray:
    """The final state of IonQ native JSON (qubit 0 most significant), from |0...0>."""
    assert data["gateset"] == "native"
    n = data["qubits"]
    state = np.zeros(2**n, dtype=complex)
    state[0] = 1
    for g in data["circuit"]:
        if g["gate"] == "gpi":
            state = apply(state, gpi(g["phase"]), [g["target"]], n)
        elif g["gate"] == "gpi2":
            state = apply(state, gpi2(g["phase"]), [g["target"]], n)
        elif g["gate"] == "ms":
            assert 0 <= g["angle"] <= 0.25, g
            state = apply(state, ms(*g["phases"], g["angle"]), g["targets"], n)
        elif g["gate"] == "zz":
            state = apply(state, zz(g["angle"]), g["targets"], n)
        else:
            raise AssertionError(f"not native: {g}")
    return state


def native_state_with_frames(circuit: qc.UnifiedCircuit, target: str, optimize: bool) -> np.ndarray:
    """The state of ``circuit``'s native JSON followed by the compiler's final frames RZ(f)."""
    data = circuit_to_ionq_json(circuit, "native", optimize=optimize, target=target)
    state = simulate_native(data)
    frames = IonQNativeCompiler(target, optimize).compile_with_frames(circuit).frames
    for q, f in enumerate(frames):
        rz = np.diag([np.exp(-0.5j * f.constant), np.exp(0.5j * f.constant)])
        state = apply(state, rz, [q], circuit.n_qubits)
    return state


def distance_up_to_phase(a: np.ndarray, b: np.ndarray) -> float:
    i = int(np.argmax(np.abs(b)))
    phase = a[i] / b[i]
    return float(np.max(np.abs(a - phase * b)))


def random_circuit(rng: np.random.Generator, n: int, m: int, symbolic: bool) -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(n)
    k = 0
    for _ in range(m):
        pool = (TWO_Q + (["CCX"] if n > 2 else [])) if n > 1 and rng.random() < 0.4 else ONE_Q
        g = str(rng.choice(pool))
        spec = qc.get_gate(g)
        qs = rng.choice(n, spec.n_qubits, replace=False).tolist()
        ps: list[object] = []
        for _ in range(spec.n_params):
            if symbolic and rng.random() < 0.6:
                ps.append(qc.Parameter(f"s{k % 4}") * float(rng.uniform(-2, 2)) + 0.3)
                k += 1
            else:
                ps.append(float(rng.uniform(-7, 7)))
        c.add_gate(g, qs, ps or None)
    return c


# -- the reference itself ------------------------------------------------------------------------
def test_reference_matrices_match_ionq_identities() -> None:
    x, y = np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]])
    rx = lambda t: np.cos(t / 2) * np.eye(2) - 1j * np.sin(t / 2) * x  # noqa: E731
    ry = lambda t: np.cos(t / 2) * np.eye(2) - 1j * np.sin(t / 2) * y  # noqa: E731
    assert distance_up_to_phase(gpi(0).ravel(), x.ravel()) < 1e-15
    assert distance_up_to_phase(gpi(0.25).ravel(), y.ravel()) < 1e-15
    assert distance_up_to_phase(gpi2(0).ravel(), rx(np.pi / 2).ravel()) < 1e-15
    assert distance_up_to_phase(gpi2(0.25).ravel(), ry(np.pi / 2).ravel()) < 1e-15
    assert distance_up_to_phase(gpi2(0.5).ravel(), rx(-np.pi / 2).ravel()) < 1e-15
    xx = np.kron(x, x)
    want = np.cos(np.pi / 4) * np.eye(4) - 1j * np.sin(np.pi / 4) * xx
    assert np.allclose(ms(0, 0, 0.25), want)


# -- compiled circuits equal the originals ---------------------------------------------------------
@pytest.mark.parametrize("target", ["qpu.aria-1", "qpu.forte-1"])
@pytest.mark.parametrize("optimize", [True, False])
def test_native_state_equals_original_for_random_circuits(
    target: str, optimize: bool, record_property: Any
) -> None:
    rng = np.random.default_rng(11 if optimize else 12)
    counts: list[tuple[int, int]] = []
    for _ in range(40):
        n = int(rng.integers(1, 5))
        c = random_circuit(rng, n, int(rng.integers(1, 16)), symbolic=True)
        vals = {s: float(rng.uniform(-4, 4)) for s in c.parameters}
        bound = c.bind(vals) if vals else c
        comp = IonQNativeCompiler(target, optimize=optimize).compile_with_frames(c)
        data = comp.circuit.bind(vals, strict=False) if comp.circuit.parameters else comp.circuit
        js = circuit_to_ionq_json(bound, "native", optimize=optimize, target=target)
        native_state = simulate_native(js)
        original = bound.unitary()[:, 0]
        # measurement probabilities agree (the final frames are Z rotations) ...
        assert np.max(np.abs(np.abs(native_state) ** 2 - np.abs(original) ** 2)) < 1e-10
        # ... and with the frames applied, the states agree up to a global phase
        framed_state = native_state_with_frames(bound, target, optimize)
        assert distance_up_to_phase(framed_state, original) < 1e-10
        framed = data.copy()
        for q, f in enumerate(comp.frames):
            framed.add_gate("RZ", q, f.evaluate(vals) if not f.is_constant else f.constant)
        assert distance_up_to_phase(framed.unitary()[:, 0], original) < 1e-10
        # the symbolic native circuit bound later equals compiling the bound circuit
        assert distance_up_to_phase(framed.unitary().ravel(), bound.unitary().ravel()) < 1e-10
        n_ent = sum(
            1 if op.gate in ENTANGLERS else 3 if op.gate == "SWAP" else 6 if op.gate == "CCX" else 0
            for op in c
        )
        counts.append((comp.n_2q, n_ent))
        assert comp.n_2q == n_ent  # one MS/ZZ per entangler, 3 per SWAP, 6 per CCX
    assert sum(a for a, _ in counts) > 20
    record_property("two_qubit_gates_native_vs_original", counts)


def test_forte_uses_zz_and_aria_only_ms() -> None:
    c = qc.UnifiedCircuit(2).add_gate("RZZ", [0, 1], 0.7).add_gate("CNOT", [0, 1])
    aria = IonQNativeCompiler("qpu.aria-1").compile(c).gate_counts()
    forte = IonQNativeCompiler("qpu.forte-1").compile(c).gate_counts()
    assert aria.get("MS") == 2 and "ZZ" not in aria
    assert forte.get("ZZ") == 2 and "MS" not in forte


def test_one_qubit_runs_merge_into_at_most_two_gpi2_or_one_gpi() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        c = qc.UnifiedCircuit(1)
        for _ in range(int(rng.integers(1, 12))):
            g = str(rng.choice(["H", "S", "T", "SX", "RX", "RY", "RZ", "U3", "GPI2"]))
            spec = qc.get_gate(g)
            c.add_gate(g, 0, [float(rng.uniform(-4, 4)) for _ in range(spec.n_params)] or None)
        counts = IonQNativeCompiler().compile(c).gate_counts()
        assert counts.get("GPI2", 0) <= 2
        assert counts.get("GPI", 0) <= 1
        assert counts.get("GPI", 0) == 0 or counts.get("GPI2", 0) == 0
    rz_only = qc.UnifiedCircuit(1).add_gate("RZ", 0, 0.4).add_gate("RZ", 0, "t")
    assert len(IonQNativeCompiler().compile(rz_only)) == 0  # RZ is virtual


def test_x_is_one_gpi_and_ry_half_pi_is_one_gpi2() -> None:
    x = IonQNativeCompiler().compile(qc.UnifiedCircuit(1).add_gate("X", 0))
    assert x.gate_counts() == {"GPI": 1}
    ry = IonQNativeCompiler().compile(qc.UnifiedCircuit(1).add_gate("RY", 0, math.pi / 2))
    assert ry.gate_counts() == {"GPI2": 1}


def test_symbols_survive_as_expressions_of_the_original_symbols() -> None:
    c = qc.UnifiedCircuit(3)
    for q in range(3):
        c.add_gate("H", q)
    c.add_gate("CNOT", [0, 1]).add_gate("CNOT", [1, 2])
    c.add_parameterized_layer("RY", "theta")
    c.add_gate("CRZ", [0, 2], 2 * qc.Parameter("w") + 0.1)
    native = IonQNativeCompiler().compile(c)
    assert set(native.parameters) == set(c.parameters)
    assert all(op.gate in ("GPI", "GPI2", "MS") for op in native)
    for op in native:
        for p in op.params:
            assert p.is_linear


def test_parameter_shift_on_the_compiled_circuit_matches_the_original() -> None:
    c = qc.UnifiedCircuit(3)
    for q in range(3):
        c.add_gate("H", q)
    c.add_gate("CNOT", [0, 1]).add_gate("RXX", [1, 2], "w").add_parameterized_layer("RY", "t")
    native = IonQNativeCompiler().compile(c)
    local = LocalBackend()
    point = {"w": 0.4, "t_0": -0.3, "t_1": 1.1, "t_2": 0.25}
    names = list(point)
    vals = np.asarray([list(point.values())])
    obs = [qc.Z(0), qc.Z(1) * qc.Z(2)]
    want, _ = local.vjp(c, obs, vals, np.ones((1, 2)), names=names)
    got, _ = ParameterShiftGradient(local).vjp(native, obs, vals, np.ones((1, 2)), names)
    assert np.allclose(got, want, atol=1e-10)
    e_native = local.expectation(native, obs, vals, names=names)
    assert np.allclose(e_native, local.expectation(c, obs, vals, names=names), atol=1e-10)


def test_out_of_range_ms_angles_are_written_in_range() -> None:
    for theta in (-2.9, -1.0, 0.3, 1.9, 3.1):
        c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("RXX", [0, 1], theta)
        js = circuit_to_ionq_json(c, "native")
        assert all(0 <= g["angle"] <= 0.25 for g in js["circuit"] if g["gate"] == "ms")
        state = native_state_with_frames(c, "qpu.aria-1", True)
        assert distance_up_to_phase(state, c.unitary()[:, 0]) < 1e-10
    # a symbolic angle stays symbolic in the circuit and is normalised when bound
    c = qc.UnifiedCircuit(2).add_gate("RYY", [0, 1], "a")
    for a in (-3.0, 2.5):
        bound = c.bind({"a": a})
        state = native_state_with_frames(bound, "qpu.aria-1", True)
        assert distance_up_to_phase(state, bound.unitary()[:, 0]) < 1e-10


def test_qis_json_round_trips_through_the_reader() -> None:
    pytest.importorskip("qiskit")
    from qiskit.quantum_info import Operator

    rng = np.random.default_rng(5)
    for _ in range(20):
        c = random_circuit(rng, 3, 12, symbolic=False)
        back = ionq_json_to_circuit(circuit_to_ionq_json(c, "qis", optimize=False))
        assert distance_up_to_phase(back.unitary().ravel(), c.unitary().ravel()) < 1e-10
        # the reader's circuit also matches Qiskit's view of the original
        ref = Operator(c.to_qiskit()).reverse_qargs().data
        assert distance_up_to_phase(back.unitary().ravel(), ref.ravel()) < 1e-9


def test_json_of_unbound_circuit_names_the_symbols() -> None:
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, "theta")
    with pytest.raises(IonQCompilerError, match="theta"):
        circuit_to_ionq_json(c, "native")
    with pytest.raises(IonQCompilerError, match="gateset"):
        circuit_to_ionq_json(c.bind({"theta": 1.0}), "quil")


def test_reader_refuses_mixed_gate_sets_and_bad_angles() -> None:
    with pytest.raises(IonQCompilerError, match="native"):
        ionq_json_to_circuit(
            {"gateset": "native", "qubits": 1, "circuit": [{"gate": "h", "target": 0}]}
        )
    bad = {"gate": "ms", "targets": [0, 1], "phases": [0, 0], "angle": 0.3}
    with pytest.raises(IonQCompilerError, match="angle"):
        ionq_json_to_circuit({"gateset": "native", "qubits": 2, "circuit": [bad]})


def test_core_entry_points_resolve_to_this_compiler() -> None:
    assert qc.compilers.IonQNativeCompiler is IonQNativeCompiler
    c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
    native = c.to_ionq_native()
    assert native["gateset"] == "native"
    assert native == circuit_to_ionq_json(c, "native")
    state = native_state_with_frames(c, "qpu.aria-1", True)
    assert distance_up_to_phase(state, c.unitary()[:, 0]) < 1e-12
    assert c.to_ionq_json()["circuit"][1] == {"gate": "x", "control": 0, "target": 1}
