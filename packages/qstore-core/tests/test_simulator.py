"""The local backend against independent references: Cirq's simulator, Qiskit's ``Statevector``
and a dense-matrix simulator written here from ``cirq.unitary`` of individual Cirq gates.

The references build the *same* circuit directly from the other libraries' gates (never through
our converters). Qubit ``q`` is ``cirq.LineQubit(q)`` (qubit 0 most significant in both
libraries) and qiskit qubit ``n - 1 - q``: Qiskit is little-endian, so this mapping makes its
``Statevector.data`` index equal ours, and a Pauli label written qubit 0 first reads the same in
``SparsePauliOp``. IonQ natives are written as the rotations they are conjugates of
(``GPI(φ) = RZ(φ) X RZ(-φ)``, ``GPI2(φ) = RZ(φ) RX(π/2) RZ(-φ)``, ``MS(φ0, φ1, θ) = (RZ(φ0) ⊗
RZ(φ1)) RXX(θ) (RZ(-φ0) ⊗ RZ(-φ1))``) and U3 as ``e^{i(φ+λ)/2} RZ(φ) RY(θ) RZ(λ)``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qstore.core as qc
from qstore.core.backends.base import ExecutionResult
from qstore.core.backends.local import LocalBackend
from qstore.core.errors import (
    BackendError,
    BindingError,
    NonFiniteParameterError,
    ObservableError,
    ParameterError,
    QStoreError,
    ResourceLimitError,
    ShotsError,
    UnboundParameterError,
)
from qstore.core.gates import GATES
from qstore.core.observables import PauliString, PauliSum, X, Y, Z
from qstore.core.parameters import Expression, Parameter

cirq = pytest.importorskip("cirq")
qiskit = pytest.importorskip("qiskit")
from qiskit import QuantumCircuit  # noqa: E402
from qiskit.circuit import library as qlib  # noqa: E402
from qiskit.quantum_info import SparsePauliOp, Statevector  # noqa: E402

CArray = npt.NDArray[np.complex128]
FArray = npt.NDArray[np.float64]
Op = tuple[str, tuple[int, ...], tuple[Any, ...]]  # gate, qubits, parameters (numbers or exprs)

FIXED_1Q = ("I", "H", "X", "Y", "Z", "S", "SDG", "T", "TDG", "SX", "SXDG")
FIXED_2Q = ("CNOT", "CZ", "SWAP")
PARAM_GATES = tuple(n for n, s in GATES.items() if s.is_parameterized)
ALL_GATES = FIXED_1Q + FIXED_2Q + ("CCX", *PARAM_GATES)
FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


# -- references ---------------------------------------------------------------------------------
def cirq_gates(name: str, p: Sequence[float]) -> tuple[list[tuple[Any, tuple[int, ...]]], complex]:
    """Cirq gates (with positions among the op's qubits) and a global phase equal to our gate."""
    fixed = {
        "I": cirq.I,
        "H": cirq.H,
        "X": cirq.X,
        "Y": cirq.Y,
        "Z": cirq.Z,
        "S": cirq.S,
        "SDG": cirq.S**-1,
        "T": cirq.T,
        "TDG": cirq.T**-1,
        "SX": cirq.X**0.5,
        "SXDG": cirq.X**-0.5,
        "CNOT": cirq.CNOT,
        "CZ": cirq.CZ,
        "SWAP": cirq.SWAP,
        "CCX": cirq.CCX,
    }
    if name in fixed:
        k = GATES[name].n_qubits
        return [(fixed[name], tuple(range(k)))], 1.0
    rot = {"RX": cirq.rx, "RY": cirq.ry, "RZ": cirq.rz}
    if name in rot:
        return [(rot[name](p[0]), (0,))], 1.0
    if name == "P":
        return [(cirq.ZPowGate(exponent=p[0] / math.pi), (0,))], 1.0
    if name == "U3":
        t, ph, lam = p
        return [(cirq.rz(lam), (0,)), (cirq.ry(t), (0,)), (cirq.rz(ph), (0,))], np.exp(
            0.5j * (ph + lam)
        )
    if name in ("CRX", "CRY", "CRZ"):
        return [(cirq.ControlledGate(rot["R" + name[2]](p[0])), (0, 1))], 1.0
    pow_gate = {"RXX": cirq.XXPowGate, "RYY": cirq.YYPowGate, "RZZ": cirq.ZZPowGate}
    if name in pow_gate or name == "ZZ":
        cls = pow_gate.get(name, cirq.ZZPowGate)
        return [(cls(exponent=p[0] / math.pi, global_shift=-0.5), (0, 1))], 1.0
    if name == "GPI":
        return [(cirq.rz(-p[0]), (0,)), (cirq.X, (0,)), (cirq.rz(p[0]), (0,))], 1.0
    if name == "GPI2":
        return [(cirq.rz(-p[0]), (0,)), (cirq.rx(math.pi / 2), (0,)), (cirq.rz(p[0]), (0,))], 1.0
    if name == "MS":
        p0, p1, t = p
        xx = cirq.XXPowGate(exponent=t / math.pi, global_shift=-0.5)
        return [
            (cirq.rz(-p0), (0,)),
            (cirq.rz(-p1), (1,)),
            (xx, (0, 1)),
            (cirq.rz(p0), (0,)),
            (cirq.rz(p1), (1,)),
        ], 1.0
    raise AssertionError(f"no Cirq reference for {name}")


def cirq_circuit(n: int, ops: Sequence[Op], values: dict[str, float]) -> Any:
    qs = cirq.LineQubit.range(n)
    out = cirq.Circuit()
    for q in qs:  # keep every qubit in the circuit, even idle ones
        out.append(cirq.I(q))
    for name, qubits, params in ops:
        gates, phase = cirq_gates(name, [angle(p, values) for p in params])
        for gate, pos in gates:
            out.append(gate.on(*(qs[qubits[i]] for i in pos)))
        if phase != 1.0:
            out.append(cirq.global_phase_operation(phase))
    return out


def qiskit_circuit(n: int, ops: Sequence[Op], values: dict[str, float]) -> Any:
    qc_ = QuantumCircuit(n)

    def qk(q: int) -> int:
        return n - 1 - q

    simple = {
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
        "CNOT": qlib.CXGate,
        "CZ": qlib.CZGate,
        "SWAP": qlib.SwapGate,
        "CCX": qlib.CCXGate,
        "RX": qlib.RXGate,
        "RY": qlib.RYGate,
        "RZ": qlib.RZGate,
        "P": qlib.PhaseGate,
        "U3": qlib.U3Gate,
        "CRX": qlib.CRXGate,
        "CRY": qlib.CRYGate,
        "CRZ": qlib.CRZGate,
        "RXX": qlib.RXXGate,
        "RYY": qlib.RYYGate,
        "RZZ": qlib.RZZGate,
        "ZZ": qlib.RZZGate,
    }
    for name, qubits, params in ops:
        p = [angle(x, values) for x in params]
        targets = [qk(q) for q in qubits]
        if name in simple:
            qc_.append(simple[name](*p), targets)
        elif name == "GPI":
            qc_.rz(-p[0], targets[0])
            qc_.x(targets[0])
            qc_.rz(p[0], targets[0])
        elif name == "GPI2":
            qc_.rz(-p[0], targets[0])
            qc_.rx(math.pi / 2, targets[0])
            qc_.rz(p[0], targets[0])
        elif name == "MS":
            for t, ph in zip(targets, p[:2], strict=True):
                qc_.rz(-ph, t)
            qc_.rxx(p[2], *targets)
            for t, ph in zip(targets, p[:2], strict=True):
                qc_.rz(ph, t)
        else:
            raise AssertionError(f"no Qiskit reference for {name}")
    return qc_


def dense_state(n: int, ops: Sequence[Op], values: dict[str, float]) -> CArray:
    """A plain tensor-contraction simulator fed with ``cirq.unitary`` of single Cirq gates."""
    psi = np.zeros((2,) * n, dtype=complex)
    psi[(0,) * n] = 1.0
    for name, qubits, params in ops:
        gates, phase = cirq_gates(name, [angle(p, values) for p in params])
        for gate, pos in gates:
            targets = [qubits[i] for i in pos]
            k = len(targets)
            u = cirq.unitary(gate).reshape((2,) * (2 * k))
            psi = np.tensordot(u, psi, axes=(list(range(k, 2 * k)), targets))
            psi = np.moveaxis(psi, list(range(k)), targets)
        psi = psi * phase
    return psi.reshape(-1)


def angle(p: Any, values: dict[str, float]) -> float:
    return p.evaluate(values) if isinstance(p, Expression) else float(p)


def to_cirq_pauli_sum(obs: PauliSum | PauliString, n: int) -> Any:
    obs = PauliSum((obs,)) if isinstance(obs, PauliString) else obs
    qs = cirq.LineQubit.range(n)
    letters = {"X": cirq.X, "Y": cirq.Y, "Z": cirq.Z}
    total = cirq.PauliSum()
    for term in obs.terms:
        ps = cirq.PauliString({qs[q]: letters[p] for q, p in term.paulis}, coefficient=term.coeff)
        total += ps
    return total


def to_sparse_pauli_op(obs: PauliSum | PauliString, n: int) -> Any:
    obs = PauliSum((obs,)) if isinstance(obs, PauliString) else obs
    return SparsePauliOp.from_list([(t.label(n), t.coeff) for t in obs.terms])


def cirq_expectations(
    n: int, ops: Sequence[Op], values: dict[str, float], obs: Sequence[PauliSum | PauliString]
) -> FArray:
    sim = cirq.Simulator(dtype=np.complex128)
    state = sim.simulate(cirq_circuit(n, ops, values)).final_state_vector
    qmap = {q: i for i, q in enumerate(cirq.LineQubit.range(n))}
    return np.array(
        [to_cirq_pauli_sum(o, n).expectation_from_state_vector(state, qmap).real for o in obs]
    )


def qiskit_expectations(
    n: int, ops: Sequence[Op], values: dict[str, float], obs: Sequence[PauliSum | PauliString]
) -> FArray:
    sv = Statevector(qiskit_circuit(n, ops, values))
    return np.array([sv.expectation_value(to_sparse_pauli_op(o, n)).real for o in obs])


# -- random circuits ----------------------------------------------------------------------------
def random_ops(
    rng: np.random.Generator, n: int, n_ops: int, symbols: Sequence[str] = ()
) -> list[Op]:
    """Random gates from the whole table; parameters are numbers, symbols or expressions."""
    names = [g for g in ALL_GATES if GATES[g].n_qubits <= n]
    ops: list[Op] = []
    for _ in range(n_ops):
        name = str(rng.choice(names))
        spec = GATES[name]
        qubits = tuple(int(q) for q in rng.choice(n, size=spec.n_qubits, replace=False))
        params: list[Any] = []
        for _ in range(spec.n_params):
            kind = rng.integers(4) if symbols else 0
            if kind == 0:
                params.append(float(rng.uniform(-2 * math.pi, 2 * math.pi)))
            elif kind == 1:
                params.append(Parameter(str(rng.choice(symbols))))
            elif kind == 2:
                params.append(2 * Parameter(str(rng.choice(symbols))) + 0.1)
            else:
                a, b = rng.choice(symbols, size=2)
                params.append(Parameter(str(a)) * Parameter(str(b)) - 0.3)
        ops.append((name, qubits, tuple(params)))
    return ops


def build(n: int, ops: Sequence[Op]) -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(n)
    for name, qubits, params in ops:
        c.add_gate(name, list(qubits), list(params))
    return c


def random_pauli_sum(rng: np.random.Generator, n: int, n_terms: int) -> PauliSum:
    total = PauliSum()
    for _ in range(n_terms):
        k = int(rng.integers(1, min(n, 4) + 1))
        qubits = rng.choice(n, size=k, replace=False)
        term = PauliString.from_dict({int(q): str(rng.choice(list("XYZ"))) for q in qubits})
        total = total + float(rng.normal()) * term
    if rng.random() < 0.3:
        total = total + 0.25  # identity term
    return total


# -- exact expectations -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "seed"), [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4), (6, 5), (8, 6), (10, 7)]
)
def test_batched_expectations_equal_cirq_and_qiskit_on_random_circuits(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    symbols = ("a", "b", "c")
    ops = random_ops(rng, n, 8 + 4 * n, symbols)
    circuit = build(n, ops)
    obs = [random_pauli_sum(rng, n, int(rng.integers(1, 5))) for _ in range(3)]
    names = circuit.parameter_names
    batch = rng.uniform(-math.pi, math.pi, size=(3, len(names)))
    got = LocalBackend().expectation(circuit, obs, batch if names else None, names=names)
    assert got.shape == (3 if names else 1, len(obs))
    for row, vals in zip(got, batch, strict=False):
        values = dict(zip(names, vals.tolist(), strict=True))
        np.testing.assert_allclose(row, cirq_expectations(n, ops, values, obs), atol=1e-10)
        np.testing.assert_allclose(row, qiskit_expectations(n, ops, values, obs), atol=1e-10)


@pytest.mark.parametrize(("n", "seed"), [(2, 10), (4, 11), (7, 12), (9, 13)])
def test_state_vectors_equal_cirq_qiskit_and_dense_reference_including_global_phase(
    n: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    ops = random_ops(rng, n, 6 * n, ("a", "b"))
    circuit = build(n, ops)
    names = circuit.parameter_names
    batch = rng.uniform(-3, 3, size=(4, len(names)))
    states = LocalBackend().state(circuit, batch if names else None, names=names)
    for row, vals in zip(states, batch, strict=False):
        values = dict(zip(names, vals.tolist(), strict=True))
        sim = cirq.Simulator(dtype=np.complex128)
        ref_cirq = sim.simulate(cirq_circuit(n, ops, values)).final_state_vector
        ref_qiskit = Statevector(qiskit_circuit(n, ops, values)).data
        ref_dense = dense_state(n, ops, values)
        np.testing.assert_allclose(row, ref_dense, atol=1e-10)
        np.testing.assert_allclose(row, ref_cirq, atol=1e-10)
        np.testing.assert_allclose(row, ref_qiskit, atol=1e-10)


@pytest.mark.parametrize("gate", ALL_GATES)
def test_every_gate_in_context_equals_cirq(gate: str) -> None:
    n = 3
    rng = np.random.default_rng(ALL_GATES.index(gate))
    spec = GATES[gate]
    prep: list[Op] = [("RY", (q,), (float(rng.uniform(-3, 3)),)) for q in range(n)]
    prep += [("RX", (q,), (float(rng.uniform(-3, 3)),)) for q in range(n)]
    prep += [("CNOT", (0, 1), ()), ("CNOT", (1, 2), ())]
    params = tuple(Parameter(f"p{i}") for i in range(spec.n_params))
    ops = [*prep, (gate, tuple(range(spec.n_qubits))[::-1], params), ("H", (2,), ())]
    ops.append((gate, tuple(range(n - spec.n_qubits, n)), params))
    circuit = build(n, ops)
    obs = [X(0), Y(1), Z(2), X(0) * Y(1) * Z(2), Z(0) * X(2)]
    names = circuit.parameter_names
    batch = rng.uniform(-4, 4, size=(3, len(names)))
    got = LocalBackend().expectation(circuit, obs, batch if names else None, names=names)
    for row, vals in zip(got, batch, strict=False):
        values = dict(zip(names, vals.tolist(), strict=True))
        np.testing.assert_allclose(row, cirq_expectations(n, ops, values, obs), atol=1e-10)


@FAST
@given(
    n=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
    n_ops=st.integers(0, 14),
)
def test_random_small_circuits_match_dense_reference(n: int, seed: int, n_ops: int) -> None:
    rng = np.random.default_rng(seed)
    ops = random_ops(rng, n, n_ops, ("s", "t"))
    circuit = build(n, ops)
    names = circuit.parameter_names
    batch = rng.uniform(-3, 3, size=(2, len(names)))
    obs = [random_pauli_sum(rng, n, 3), PauliSum((Z(n - 1),))]
    got = LocalBackend().expectation(circuit, obs, batch if names else None, names=names)
    for row, vals in zip(got, batch, strict=False):
        values = dict(zip(names, vals.tolist(), strict=True))
        psi = dense_state(n, ops, values)
        ref = [np.vdot(psi, o.matrix(n) @ psi).real for o in obs]
        np.testing.assert_allclose(row, ref, atol=1e-10)


def test_shared_and_per_sample_columns_are_laid_out_like_separate_bindings() -> None:
    rng = np.random.default_rng(3)
    ops = random_ops(rng, 4, 20, ("x", "w", "v"))
    circuit = build(4, ops)
    obs = [Z(0) * Z(3), X(1) + Y(2)]
    xs = rng.uniform(-2, 2, size=(5, 1))
    backend = LocalBackend()
    got = backend.expectation(circuit, obs, xs, names=["x"], shared={"w": 0.3, "v": -1.2})
    for row, x in zip(got, xs[:, 0], strict=True):
        values = {"x": float(x), "w": 0.3, "v": -1.2}
        np.testing.assert_allclose(row, cirq_expectations(4, ops, values, obs), atol=1e-10)


def test_qubit_zero_is_the_most_significant_bit() -> None:
    c = qc.UnifiedCircuit(3).add_gate("X", 0)
    state = LocalBackend().state(c)[0]
    assert np.argmax(np.abs(state)) == 0b100
    assert LocalBackend().counts(c, shots=10, seed=0) == [{"100": 10}]


def test_observables_from_cirq_and_qiskit_objects() -> None:
    rng = np.random.default_rng(8)
    ops = random_ops(rng, 3, 15)
    circuit = build(3, ops)
    qs = cirq.LineQubit.range(3)
    cirq_obs = cirq.Z(qs[0]) * cirq.X(qs[2]) + 0.5 * cirq.Y(qs[1])
    ours = Z(0) * X(2) + 0.5 * Y(1)
    backend = LocalBackend()
    ref = backend.expectation(circuit, [ours])
    np.testing.assert_allclose(backend.expectation(circuit, [cirq_obs]), ref, atol=1e-12)
    # qiskit labels are little-endian: qiskit qubit j is ours j, so 'XIZ' is Z(0) X(2)
    qk = SparsePauliOp.from_list([("XIZ", 1.0), ("IYI", 0.5)])
    np.testing.assert_allclose(backend.expectation(circuit, [qk]), ref, atol=1e-12)
    z_each = backend.expectation(circuit, [cirq.Z] * 3)
    np.testing.assert_allclose(z_each, backend.expectation(circuit, [Z(0), Z(1), Z(2)]))


def test_converter_path_agrees_when_available() -> None:
    pytest.importorskip("qstore.core.convert.cirq")
    rng = np.random.default_rng(21)
    ops = random_ops(rng, 4, 24)
    circuit = build(4, ops)
    ref = cirq.Simulator(dtype=np.complex128).simulate(
        circuit.to_cirq(), qubit_order=cirq.LineQubit.range(4)
    )
    np.testing.assert_allclose(LocalBackend().state(circuit)[0], ref.final_state_vector, atol=1e-10)


# -- single precision ---------------------------------------------------------------------------
def test_complex64_agrees_with_complex128() -> None:
    rng = np.random.default_rng(4)
    ops = random_ops(rng, 8, 60, ("a", "b"))
    circuit = build(8, ops)
    obs = [random_pauli_sum(rng, 8, 4) for _ in range(3)]
    names = circuit.parameter_names
    batch = rng.uniform(-3, 3, size=(4, len(names)))
    e64 = LocalBackend(dtype="complex64").expectation(circuit, obs, batch, names=names)
    e128 = LocalBackend().expectation(circuit, obs, batch, names=names)
    np.testing.assert_allclose(e64, e128, atol=2e-5)
    cot = rng.normal(size=e128.shape)
    g64 = LocalBackend(dtype="complex64").vjp(circuit, obs, batch, cot, names=names)[0]
    g128 = LocalBackend().vjp(circuit, obs, batch, cot, names=names)[0]
    np.testing.assert_allclose(g64, g128, atol=1e-4)


# -- shots --------------------------------------------------------------------------------------
def _shot_circuit() -> tuple[qc.UnifiedCircuit, list[Op]]:
    ops: list[Op] = [
        ("RY", (0,), (Parameter("a"),)),
        ("RX", (1,), (0.7,)),
        ("CNOT", (0, 1), ()),
        ("RY", (2,), (2 * Parameter("a") + 0.1,)),
        ("CRX", (2, 0), (1.1,)),
        ("H", (1,), ()),
    ]
    return build(3, ops), ops


def test_shot_estimates_within_five_standard_errors_of_exact() -> None:
    circuit, _ = _shot_circuit()
    obs = [Z(0), X(1) * Y(2), 0.5 * Z(2)]
    values = np.array([[0.3], [1.4], [-2.0]])
    backend = LocalBackend()
    exact = backend.expectation(circuit, obs, values)
    shots = 4000
    est = backend.expectation(circuit, obs, values, shots=shots, seed=11)
    coeff = np.array([1.0, 1.0, 0.5])
    se = coeff * np.sqrt(np.clip(1 - (exact / coeff) ** 2, 1e-3, None) / shots)
    assert np.all(np.abs(est - exact) < 5 * se), (est, exact, se)
    again = backend.expectation(circuit, obs, values, shots=shots, seed=11)
    other = backend.expectation(circuit, obs, values, shots=shots, seed=12)
    np.testing.assert_array_equal(est, again)
    assert not np.array_equal(est, other)


def test_pauli_sum_shot_estimate_is_unbiased() -> None:
    circuit, _ = _shot_circuit()
    obs = [0.7 * X(0) * X(1) + 0.4 * Z(1) - 0.2 * Y(2) + 0.1]
    backend = LocalBackend()
    exact = backend.expectation(circuit, obs, [[0.9]])[0, 0]
    runs = [backend.expectation(circuit, obs, [[0.9]], shots=500, seed=s)[0, 0] for s in range(60)]
    mean, sd = float(np.mean(runs)), float(np.std(runs, ddof=1))
    assert abs(mean - exact) < 5 * sd / math.sqrt(len(runs))


def test_samples_follow_the_exact_distribution() -> None:
    circuit, _ = _shot_circuit()
    values = np.array([[0.4], [2.2]])
    backend = LocalBackend()
    probs = backend.probabilities(circuit, values)
    shots = 20000
    samples = backend.sample(circuit, shots, values, seed=5)
    assert samples.shape == (2, shots) and samples.dtype == np.int64
    for row, p in zip(samples, probs, strict=True):
        observed = np.bincount(row, minlength=8)
        expected = shots * p
        sigma = np.sqrt(shots * p * (1 - p)) + 1e-9
        assert np.all(np.abs(observed - expected) < 5 * sigma + 1)
        keep = expected > 5
        chi2 = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
        dof = int(keep.sum()) - 1
        assert chi2 < dof + 5 * math.sqrt(2 * dof) + 5
        assert np.all(observed[p < 1e-14] == 0)
    np.testing.assert_array_equal(samples, backend.sample(circuit, shots, values, seed=5))
    assert not np.array_equal(samples, backend.sample(circuit, shots, values, seed=6))


def test_counts_are_bitstrings_qubit_zero_first_and_sum_to_shots() -> None:
    circuit, ops = _shot_circuit()
    backend = LocalBackend()
    counts = backend.counts(circuit, 3000, [[0.4], [1.0]], seed=2)
    assert len(counts) == 2
    for row, a in zip(counts, (0.4, 1.0), strict=True):
        assert sum(row.values()) == 3000
        assert all(len(k) == 3 and set(k) <= {"0", "1"} for k in row)
        # <Z_0> from counts matches Cirq's exact value within 5 standard errors
        z0 = sum(c * (1 - 2 * int(k[0])) for k, c in row.items()) / 3000
        exact = cirq_expectations(3, ops, {"a": a}, [PauliSum((Z(0),))])[0]
        assert abs(z0 - exact) < 5 * math.sqrt(max(1 - exact**2, 1e-3) / 3000)


def test_backend_seed_makes_unseeded_calls_repeatable() -> None:
    circuit, _ = _shot_circuit()
    a = LocalBackend(seed=7).expectation(circuit, None, [[0.5]], shots=100)
    b = LocalBackend(seed=7).expectation(circuit, None, [[0.5]], shots=100)
    np.testing.assert_array_equal(a, b)


# -- async execute ------------------------------------------------------------------------------
def test_execute_returns_counts_and_exact_probabilities() -> None:
    circuit, ops = _shot_circuit()
    bound = circuit.bind({"a": 0.8})
    backend = LocalBackend(seed=3)
    result = asyncio.run(backend.execute(bound, shots=2000, timeout=30))
    assert isinstance(result, ExecutionResult)
    assert result.shots == 2000 and result.counts is not None
    assert sum(result.counts.values()) == 2000
    exact = asyncio.run(backend.execute(bound, shots=None))
    assert exact.counts is None and exact.probabilities is not None
    assert math.isclose(sum(exact.probabilities.values()), 1.0, abs_tol=1e-12)
    ref = cirq_expectations(3, ops, {"a": 0.8}, [PauliSum((Z(q),)) for q in range(3)])
    assert exact.expectations is not None
    np.testing.assert_allclose(exact.expectations, ref, atol=1e-10)
    for q in range(3):
        assert abs(result.expectation_z(q) - ref[q]) < 5 * math.sqrt(1 / 2000)


def test_execute_times_out_with_a_backend_error() -> None:
    c = qc.UnifiedCircuit(16)
    for q in range(16):
        c.add_gate("H", q).add_gate("RX", q, 0.1 * q)
    for q in range(15):
        c.add_gate("CNOT", [q, q + 1])
    with pytest.raises(BackendError, match="timeout"):
        asyncio.run(LocalBackend().execute(c, shots=1000, timeout=1e-6))


def test_execute_rejects_unbound_circuits() -> None:
    circuit, _ = _shot_circuit()
    with pytest.raises(BindingError, match="'a'"):
        asyncio.run(LocalBackend().execute(circuit, shots=10))


# -- bad input ----------------------------------------------------------------------------------
@pytest.fixture
def circuit() -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "theta").add_gate("RX", 1, "phi")
    return c.add_gate("CNOT", [0, 1])


@pytest.mark.parametrize(
    "values", [[[0.1, 0.2, 0.3]], [[[0.1, 0.2]]], np.zeros((0, 2)), [[0.1]], [[0.1, 0.2], [0.3]]]
)
def test_wrong_binding_shape_is_a_binding_error(circuit: qc.UnifiedCircuit, values: Any) -> None:
    with pytest.raises(BindingError, match=r"shape|values"):
        LocalBackend().expectation(circuit, None, values)


def test_nan_binding_names_the_row_and_column(circuit: qc.UnifiedCircuit) -> None:
    with pytest.raises(NonFiniteParameterError, match="row 1, column 'phi'"):
        LocalBackend().expectation(circuit, None, [[0.1, 0.2], [0.3, float("nan")]])
    with pytest.raises(NonFiniteParameterError):
        LocalBackend().expectation(circuit, None, [[0.1]], names=["theta"], shared={"phi": np.inf})


def test_unknown_and_unbound_names_are_reported(circuit: qc.UnifiedCircuit) -> None:
    with pytest.raises(UnboundParameterError, match=r"'phi'.*thetta|thetta.*'phi'") as info:
        LocalBackend().expectation(circuit, None, [[0.1, 0.2]], names=["theta", "thetta"])
    assert isinstance(info.value, QStoreError)
    with pytest.raises(ParameterError, match="theta"):
        LocalBackend().expectation(circuit, None, None)
    with pytest.raises(BindingError, match="more than once"):
        LocalBackend().expectation(
            circuit, None, [[0.1, 0.2]], names=["theta", "phi"], shared={"phi": 0.0}
        )


def test_bad_observables_and_shots_are_reported(circuit: qc.UnifiedCircuit) -> None:
    with pytest.raises(ObservableError, match="qubit 5"):
        LocalBackend().expectation(circuit, [Z(5)], [[0.1, 0.2]])
    with pytest.raises(ShotsError, match="shots"):
        LocalBackend().expectation(circuit, None, [[0.1, 0.2]], shots=0)
    with pytest.raises(BackendError, match="UnifiedCircuit"):
        LocalBackend().expectation("not a circuit", None, None)  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="dtype"):
        LocalBackend(dtype="float32")


def test_cotangent_shape_mismatch_is_a_binding_error(circuit: qc.UnifiedCircuit) -> None:
    with pytest.raises(BindingError, match="cotangent"):
        LocalBackend().vjp(circuit, [Z(0), Z(1)], [[0.1, 0.2], [0.3, 0.4]], [[1.0, 0.0]])


def test_too_many_qubits_is_refused_before_anything_is_allocated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import qstore.core.backends.local as local

    monkeypatch.setenv("QSTORE_MAX_MEMORY_GB", "0.001")

    def no_compile(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled a circuit that cannot fit in memory")

    # Regression: the check used to run after compilation, which itself builds 2**n tables.
    monkeypatch.setattr(local, "compile_program", no_compile)
    c = qc.UnifiedCircuit(30)
    for q in range(29):
        c.add_gate("CNOT", [q, q + 1])
    c.add_gate("RY", 0, "a")
    backend = LocalBackend()
    start = time.perf_counter()
    for call in (
        lambda: backend.expectation(c, None, [[0.1]]),
        lambda: backend.vjp(c, None, [[0.1]], np.ones((1, 30))),
        lambda: backend.sample(c, 10, [[0.1]]),
        lambda: backend.state(c, [[0.1]]),
        lambda: asyncio.run(backend.execute(c.bind({"a": 0.1}), shots=10)),
    ):
        with pytest.raises(ResourceLimitError, match="30 qubits"):
            call()
    assert time.perf_counter() - start < 1.0
    assert backend.capabilities.max_qubits < 30


def test_memory_check_scales_with_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSTORE_MAX_MEMORY_GB", "0.001")  # ~1 MiB: 6 copies of 16 B amplitudes
    c = qc.UnifiedCircuit(8).add_gate("RY", 0, "a")
    LocalBackend().expectation(c, None, np.zeros((10, 1)))
    with pytest.raises(ResourceLimitError, match="batch of 1000"):
        LocalBackend().expectation(c, None, np.zeros((1000, 1)))
