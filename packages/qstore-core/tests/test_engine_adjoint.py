"""The one adjoint pass (qstore.core.engine.adjoint) against finite differences: kept states,
un-computed states, traces started from final states, and gradients of initial states."""

from __future__ import annotations

import numpy as np
import pytest

import qstore.core as qc
from qstore.core.engine import adjoint, generic
from qstore.core.engine.program import Program, compile_program
from qstore.core.observables import X, Y, Z, as_observable

OPS = generic.NumpyOps(np.complex128)


def _circuit(n: int) -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(n)
    for i in range(n):
        c.add_gate("RY", i, f"x{i}")
    for layer in range(2):
        for i in range(n):
            c.add_gate("RX", i, f"w{layer}_{i}").add_gate(
                "RZ", i, 2 * qc.Parameter(f"v{layer}_{i}")
            )
        for i in range(n - 1):
            c.add_gate("CNOT", [i, i + 1])
        c.add_gate("CRY", [0, n - 1], f"c{layer}").add_gate(
            "MS", [1, n - 2], [f"m{layer}", 0.2, 0.3]
        )
    return c.add_gate("U3", 1, ["w0_0", "x0", 0.4]).add_gate("RX", 2, qc.Parameter("x1") * "w1_1")


def _program(n: int, with_inputs: bool = True) -> tuple[Program, list[str]]:
    c = _circuit(n)
    names = [f"x{i}" for i in range(n)] if with_inputs else []
    rest = [s for s in c.parameters if s not in names]
    obs = [as_observable(o, n) for o in (Z(0), X(1) * Y(n - 1) + 0.5 * Z(2))]
    return compile_program(c, names + rest, [], obs), names + rest


def _loss(prog: Program, v: np.ndarray, cot: np.ndarray, init: np.ndarray | None = None) -> float:
    return float((generic.expectations(OPS, prog, generic.run(OPS, prog, v, init)) * cot).sum())


@pytest.mark.parametrize("n", [4, 6, 12])  # 12 qubits: layers of several chunks
@pytest.mark.parametrize("keep", [True, False])
def test_gradients_match_finite_differences(n: int, keep: bool) -> None:
    prog, names = _program(n)
    rng = np.random.default_rng(n)
    v = rng.uniform(-2, 2, (2, len(names)))
    cot = rng.normal(size=(2, 2))
    values, gv = adjoint.value_and_vjp(OPS, prog, v, cot, keep=keep)
    np.testing.assert_allclose(values, generic.expectations(OPS, prog, generic.run(OPS, prog, v)))
    h = 1e-6
    cols = range(len(names)) if n < 12 else rng.choice(len(names), 8, replace=False)
    for col in cols:
        step = np.zeros_like(v)
        step[:, col] = h
        for row in range(2):
            one = np.zeros_like(v)
            one[row] = step[row]
            fd = (_loss(prog, v + one, cot) - _loss(prog, v - one, cot)) / (2 * h)
            assert abs(gv[row, col] - fd) < 1e-6, (names[col], row)


def test_a_trace_from_final_states_gives_the_same_gradient() -> None:
    prog, names = _program(5)
    rng = np.random.default_rng(1)
    v = rng.uniform(-2, 2, (3, len(names)))
    cot = rng.normal(size=(3, 2))
    _, want = adjoint.value_and_vjp(OPS, prog, v, cot)
    final = generic.run(OPS, prog, v)
    tr = adjoint.trace_from_final(OPS, prog, v, final)
    got = adjoint.backward(OPS, prog, tr, adjoint.costate(OPS, prog, final, cot))
    assert got.state is None
    np.testing.assert_allclose(got.per_row(OPS), want, atol=1e-12)


def test_gradient_of_the_initial_state() -> None:
    # d/dRe psi_in + i d/dIm psi_in = 2 * lam_in, with lam_in the costate swept back to the start
    prog, names = _program(4, with_inputs=False)
    rng = np.random.default_rng(2)
    v = rng.uniform(-2, 2, (2, len(names)))
    psi = rng.normal(size=(2, 16)) + 1j * rng.normal(size=(2, 16))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    cot = rng.normal(size=(2, 2))
    tr = adjoint.trace(OPS, prog, v, psi)
    lam_in = adjoint.backward(OPS, prog, tr, adjoint.costate(OPS, prog, tr.final, cot)).state
    assert lam_in is not None
    h = 1e-6
    for row, j in [(0, 0), (1, 5), (1, 15)]:
        for unit in (1.0, 1j):
            step = np.zeros_like(psi)
            step[row, j] = h * unit
            fd = (_loss(prog, v, cot, psi + step) - _loss(prog, v, cot, psi - step)) / (2 * h)
            got = 2 * lam_in[row, j]
            assert abs((got.real if unit == 1.0 else got.imag) - fd) < 1e-6


def _shared_circuit(n: int) -> qc.UnifiedCircuit:
    """Per-sample encoding, then layers of one structure with shared weights (stacked into one
    set), a layer with a constant gate in its blocks, and one with blocks of two kinds."""
    c = qc.UnifiedCircuit(n)
    for i in range(n):
        c.add_gate("RY", i, f"x{i}")
    for layer in range(3):
        for i in range(n):
            c.add_gate("RY", i, f"a{layer}_{i}").add_gate("H", i).add_gate(
                "RZ", i, 2 * qc.Parameter(f"b{layer}_{i}")
            )
        for i in range(n - 1):
            c.add_gate("CNOT", [i, i + 1])
    for i in range(n):
        c.add_gate("U3", i, [f"u{i}", 0.3, f"x{i}"]) if i % 2 else c.add_gate("RX", i, f"r{i}")
    return c.add_gate("CRZ", [0, n - 1], "c").add_gate("RZ", 1, qc.Parameter("x1") * "c")


@pytest.mark.parametrize("n", [3, 8, 9, 12])  # chunks of equal and unequal sizes
@pytest.mark.parametrize("keep", [True, False])
def test_shared_columns_get_their_batch_total(n: int, keep: bool) -> None:
    c = _shared_circuit(n)
    inputs = [f"x{i}" for i in range(n)]
    shared = [s for s in c.parameters if s not in inputs]
    obs = [as_observable(o, n) for o in (Z(0), X(1) * Y(n - 1) + 0.5 * Z(2))]
    prog = compile_program(c, inputs, shared, obs)
    # the encoding fuses into the first trainable layer; the other two stack
    assert any(len(s.layers) == 2 and not s.batched for s in prog.sets)
    rng = np.random.default_rng(n)
    bsz = 3
    w = rng.uniform(-2, 2, len(shared))
    v = np.concatenate([rng.uniform(-2, 2, (bsz, n)), np.broadcast_to(w, (bsz, w.size))], 1)
    cot = rng.normal(size=(bsz, 2))
    tr = adjoint.trace(OPS, prog, v, keep=keep)
    got = adjoint.backward(OPS, prog, tr, adjoint.costate(OPS, prog, tr.final, cot))
    assert got.total is not None
    rows = np.asarray(got.rows)
    total = rows[:, n:].sum(axis=0) + np.asarray(got.total)[n:]
    np.testing.assert_allclose(np.asarray(got.total)[:n], 0.0, atol=1e-14)
    h = 1e-6
    cols = range(len(shared)) if n < 12 else rng.choice(len(shared), 10, replace=False)
    for j in cols:
        step = np.zeros_like(v)
        step[:, n + j] = h  # a shared weight moves for every sample
        fd = (_loss(prog, v + step, cot) - _loss(prog, v - step, cot)) / (2 * h)
        assert abs(total[j] - fd) < 1e-6, shared[j]
    for i in range(n):  # per-sample columns: row by row
        for row in range(bsz):
            step = np.zeros_like(v)
            step[row, i] = h
            fd = (_loss(prog, v + step, cot) - _loss(prog, v - step, cot)) / (2 * h)
            assert abs(rows[row, i] - fd) < 1e-6, (inputs[i], row)
