"""The array-generic engine (used by the torch and TensorFlow layers) against the NumPy engine
and against dense unitaries built by ``UnifiedCircuit.unitary``."""

from __future__ import annotations

import numpy as np
import pytest

import qstore.core as qc
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
