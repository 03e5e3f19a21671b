"""The array-generic engine (used by the torch and TensorFlow layers) against the NumPy engine
and against dense unitaries built by ``UnifiedCircuit.unitary``."""

from __future__ import annotations

import numpy as np
import pytest

import qstore.core as qc
from qstore.core import templates
from qstore.core.backends.local import LocalBackend
from qstore.core.engine import generic
from qstore.core.observables import X, Y, Z, as_observable


def _circuit(n: int) -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(n)
    for i in range(n):
        c.add_gate("RY", i, f"x{i}")
    c.add_gate("H", 1).add_gate("GPI2", n - 1, "w_a")
    for layer in range(2):
        for i in range(n):
            c.add_gate("RX", i, f"w{layer}_{i}").add_gate(
                "RZ", i, 2 * qc.Parameter(f"v{layer}_{i}") + 0.1
            )
        for i in range(n - 1):
            c.add_gate("CNOT", [i, i + 1])
    c.add_gate("CRY", [0, 2], "w_b").add_gate("RZZ", [1, n - 1], "w_c").add_gate("CZ", [0, n - 1])
    c.add_gate("RX", 0, qc.Parameter("x1") * qc.Parameter("w_c")).add_gate("SWAP", [0, 2])
    c.add_gate("MS", [n - 1, 1], ["w_a", "x2", 0.7]).add_gate("U3", 2, ["w_b", 0.3, "x0"])
    return c


@pytest.mark.parametrize("observables", [None, "mixed"])
@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_generic_forward_matches_dense_unitary(observables: str | None, dtype: str) -> None:
    n = 4
    rng = np.random.default_rng(7)
    c = _circuit(n)
    obs = [Z(0), Z(1) * Z(2), X(3) + 0.5 * Y(0) * X(1)] if observables else None
    names = [f"x{i}" for i in range(n)]
    shared = {k: float(rng.uniform(-3, 3)) for k in c.parameter_names if k not in names}
    xs = rng.uniform(0, np.pi, (5, n))
    be = LocalBackend(dtype=dtype)
    prog = be.program(c, obs, names, shared)
    values = np.concatenate([xs, np.tile([shared[k] for k in prog.names[n:]], (5, 1))], axis=1)
    ops = generic.NumpyOps(np.complex64 if dtype == "complex64" else np.complex128)
    got = generic.forward(ops, prog, ops.to_real(values))
    ol = [as_observable(o) for o in obs] if obs else [Z(i) + 0 for i in range(n)]
    ref = []
    for row in xs:
        vals = dict(shared, **{f"x{i}": row[i] for i in range(n)})
        psi = c.unitary(vals)[:, 0]
        ref.append([np.real(psi.conj() @ o.matrix(n) @ psi) for o in ol])
    tol = 1e-5 if dtype == "complex64" else 1e-12
    np.testing.assert_allclose(got, np.array(ref), atol=tol)
    np.testing.assert_allclose(
        be.expectation(c, obs, xs, names=names, shared=shared), np.array(ref), atol=tol
    )


# -- trailing shared layers as one matrix ------------------------------------------------------
class _NoPlanOps(generic.NumpyOps):
    unitary_max_qubits = 0


def _stacked_circuit(n: int) -> qc.UnifiedCircuit:
    """Per-sample encoding, then shared layers of two structures, constant and general gates."""
    c = qc.UnifiedCircuit(n)
    for i in range(n):
        c.add_gate("RY", i, f"x{i}")
    for layer in range(3):  # one structure, repeated: a stack of three
        for i in range(n):
            c.add_gate("RY", i, f"a{layer}_{i}").add_gate("RZ", i, f"b{layer}_{i}")
        for i in range(n - 1):
            c.add_gate("CNOT", [i, i + 1])
    c.add_gate("CRY", [0, 2], "g").add_gate("T", 1).add_gate("CZ", [0, n - 1])
    for layer in range(2):  # another structure (a constant gate inside, a phase permutation)
        for i in range(n):
            c.add_gate("H", i).add_gate("RX", i, f"c{layer}_{i}")
        c.add_gate("CZ", [0, 1]).add_gate("SWAP", [1, 2]).add_gate("X", 0)
    return c


def test_unitary_plan_stacks_layers_of_one_structure() -> None:
    c, inputs, weights = templates.layer_circuit(6, 4)
    be = LocalBackend()
    prog = be.program(c, None, inputs, dict.fromkeys(weights, 0.0))
    plan = generic.unitary_plan(prog)
    assert plan is not None and plan.start == 2  # the encoded first layer and its permutation
    assert [type(s).__name__ for s in plan.segments] == ["LayerStack"]
    assert plan.segments[0].count == 3  # type: ignore[union-attr]
    big = templates.layer_circuit(generic.UNITARY_MAX_QUBITS + 1, 4)
    prog = be.program(big[0], None, big[1], dict.fromkeys(big[2], 0.0))
    assert generic.unitary_plan(prog) is None


@pytest.mark.parametrize("with_state", [False, True])
def test_unitary_plan_gives_the_same_states(with_state: bool) -> None:
    n = 4
    rng = np.random.default_rng(3)
    c = _stacked_circuit(n)
    names = [f"x{i}" for i in range(n)]
    shared = {k: float(rng.uniform(-3, 3)) for k in c.parameter_names if k not in names}
    xs = rng.uniform(0, np.pi, (6, n))
    prog = LocalBackend().program(c, None, names, shared)
    plan = generic.unitary_plan(prog)
    assert plan is not None and any(isinstance(s, generic.LayerStack) for s in plan.segments)
    assert any(not isinstance(s, generic.LayerStack) for s in plan.segments)
    values = np.concatenate([xs, np.tile([shared[k] for k in prog.names[n:]], (6, 1))], axis=1)
    init = None
    if with_state:
        init = rng.normal(size=(6, 1 << n)) + 1j * rng.normal(size=(6, 1 << n))
        init /= np.linalg.norm(init, axis=1, keepdims=True)
    ops, plain = generic.NumpyOps(), _NoPlanOps()
    got = generic.run(ops, prog, ops.to_real(values), initial_state=init)
    ref = generic.run(plain, prog, plain.to_real(values), initial_state=init)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    row = dict(shared, **{f"x{i}": xs[0, i] for i in range(n)})
    dense = c.unitary(row)
    start = np.eye(1 << n)[0] if init is None else init[0]
    np.testing.assert_allclose(got[0], dense @ start, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "source", "dest"),
    [
        ((2, 3, 4, 5), [1], [0]),
        ((2, 3, 4, 5), [2], [1]),
        ((2, 3, 4, 5), [0], [3]),
        ((2, 3, 4, 5), [1, 3], [3, 0]),
        ((2, 3, 4, 5), [-1], [1]),
        ((2, 3, 4, 5, 6), [1, 2], [-2, -1]),
        ((2, 3), [0, 1], [1, 0]),
    ],
)
def test_numpy_ops_moveaxis_matches_numpy(shape, source, dest) -> None:
    x = np.arange(np.prod(shape)).reshape(shape)
    got = generic.NumpyOps().moveaxis(x, source, dest)
    assert np.array_equal(got, np.moveaxis(x, source, dest))


def test_numpy_ops_moveaxis_refuses_repeated_axes() -> None:
    with pytest.raises(ValueError, match="bad axes"):
        generic.NumpyOps().moveaxis(np.zeros((2, 3, 4)), [0, 0], [1, 2])


def test_numpy_ops_dagger_is_the_conjugate_transpose_in_row_major_layout() -> None:
    rng = np.random.default_rng(2)
    m = rng.normal(size=(3, 4, 4)) + 1j * rng.normal(size=(3, 4, 4))
    got = generic.dagger(generic.NumpyOps(), m)
    assert np.array_equal(got, np.conj(np.swapaxes(m, -1, -2)))
    assert got.flags.c_contiguous


@pytest.mark.parametrize("shape", [(32, 8, 8), (5, 4, 2), (3, 2, 32)])
def test_numpy_ops_apply_left_matches_a_stacked_product(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(5)
    d = shape[1]
    k = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    x = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    np.testing.assert_allclose(generic.NumpyOps().apply_left(k, x), np.matmul(k, x), atol=1e-12)
