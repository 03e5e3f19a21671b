"""Parameter shift shifts only the gates of the weights when the inputs need no gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

import qstore.core as qc
from qstore.core.adapter import ExpectationAdapter
from qstore.core.backends.local import LocalBackend
from qstore.core.gradients import ParameterShiftGradient
from qstore.core.observables import Z


class _Counting(LocalBackend):
    """The local backend, counting the rows it is asked to evaluate."""

    rows = 0

    def expectation(
        self, circuit: Any, observables: Any = None, values: Any = None, **kw: Any
    ) -> Any:
        type(self).rows += 0 if values is None else int(np.atleast_2d(values).shape[0])
        return super().expectation(circuit, observables, values, **kw)


def _circuit() -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(3)
    for q in range(3):
        c.add_gate("RY", q, f"x{q}")  # inputs only
    for q in range(3):
        c.add_gate("RX", q, f"w{q}")  # weights only
    c.add_gate("CNOT", [0, 1]).add_gate("RZ", 2, qc.Parameter("x0") * qc.Parameter("w2"))
    return c


def test_weights_only_gradient_is_the_same_with_fewer_circuits() -> None:
    c = _circuit()
    x = np.random.default_rng(0).uniform(0, 3, (4, 3))
    shared = {"w0": 0.3, "w1": -0.7, "w2": 1.1}
    cot = np.random.default_rng(1).normal(size=(4, 2))
    obs = [Z(0), Z(1) * Z(2)]
    backend = _Counting()
    grad = ParameterShiftGradient(backend)
    _Counting.rows = 0
    gv, gs = grad.vjp(c, obs, x, cot, names=["x0", "x1", "x2"], shared=shared)
    all_rows = _Counting.rows
    _Counting.rows = 0
    gv0, gs0 = grad.vjp(c, obs, x, cot, names=["x0", "x1", "x2"], shared=shared, inputs=False)
    np.testing.assert_allclose(gs0, gs, atol=1e-12)
    assert not gv0.any() and gv.any()
    # 7 gate parameters have shifts; without the inputs' gradient, the 3 RY(x) are not shifted
    assert _Counting.rows == all_rows * 4 // 7
    # and the adjoint reference agrees
    _, ref = LocalBackend().vjp(c, obs, x, cot, names=["x0", "x1", "x2"], shared=shared)
    np.testing.assert_allclose(gs0, ref, atol=1e-10)


def test_the_adapter_passes_it_on() -> None:
    c = _circuit()
    ad = ExpectationAdapter(
        c, _Counting(), ["x0", "x1", "x2"], ["w0", "w1", "w2"], gradient_method="parameter_shift"
    )
    fwd = ad.forward(np.full((2, 3), 0.4), np.array([0.1, 0.2, 0.3]))
    _Counting.rows = 0
    _, gw = ad.vjp(fwd, np.ones((2, 3)))
    full = _Counting.rows
    _Counting.rows = 0
    gx0, gw0 = ad.vjp(fwd, np.ones((2, 3)), inputs=False)
    np.testing.assert_allclose(gw0, gw, atol=1e-12)
    assert not gx0.any() and _Counting.rows < full
