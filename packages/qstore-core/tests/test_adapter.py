"""The external-backend adapter of the framework layers (qstore.core.adapter)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import qstore.core as qc
from qstore.core.adapter import (
    ExpectationAdapter,
    KeepsForward,
    UnitaryAdapter,
    backend_gradient,
    check_state_options,
    resolve_gradient,
)
from qstore.core.backends.base import Capabilities
from qstore.core.backends.local import LocalBackend
from qstore.core.errors import LayerConfigError, LayerInputError
from qstore.core.templates import LayerSpec

FloatArray = npt.NDArray[np.float64]


def _layer(n: int = 3, depth: int = 2, n_features: int = 4) -> tuple[Any, list[str], list[str]]:
    return LayerSpec.create(n, depth).circuit(n_features)


class Counting:
    """A ``local`` backend that records every call and the rows it simulated."""

    name = "counting"

    def __init__(self, gradient: str = "adjoint", keeps: bool = False) -> None:
        self.inner = LocalBackend()
        self.gradient = gradient
        self.calls: list[tuple[str, int]] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name=self.name, max_qubits=20, gradient_methods=(self.gradient,), vjp=True
        )

    def expectation(
        self, circuit: Any, observables: Any = None, values: Any = None, **kw: Any
    ) -> Any:
        self.calls.append(("expectation", np.asarray(values).shape[0]))
        return self.inner.expectation(circuit, observables, values, **kw)

    def value_and_vjp(
        self, circuit: Any, observables: Any, values: Any, cot: Any, **kw: Any
    ) -> Any:
        self.calls.append(("value_and_vjp", np.asarray(values).shape[0]))
        return self.inner.value_and_vjp(circuit, observables, values, cot, **kw)

    def vjp(self, circuit: Any, observables: Any, values: Any, cot: Any, **kw: Any) -> Any:
        self.calls.append(("vjp", np.asarray(values).shape[0]))
        return self.inner.vjp(circuit, observables, values, cot, **kw)


class KeepingCounting(Counting):
    """The same, with a forward pass that keeps what the VJP needs (here: the bindings)."""

    def value_and_vjp_fn(
        self,
        circuit: Any,
        observables: Any,
        values: Any,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, Any]:
        self.calls.append(("value_and_vjp_fn", np.asarray(values).shape[0]))
        out = self.inner.expectation(circuit, observables, values, names=names, shared=shared)

        def finish(cot: FloatArray) -> tuple[FloatArray, FloatArray]:
            self.calls.append(("vjp_fn", cot.shape[0]))
            _, gv, gs = self.inner.value_and_vjp(
                circuit, observables, values, cot, names=names, shared=shared
            )
            return gv, gs

        return out, finish


def _finite_diff(ad: ExpectationAdapter, x: FloatArray, w: FloatArray, cot: FloatArray) -> Any:
    h = 1e-6

    def f(xx: FloatArray, ww: FloatArray) -> float:
        return float((ad(xx, ww) * cot).sum())

    gx = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        gx[idx] = (f(x + e, w) - f(x - e, w)) / (2 * h)
    gw = np.array([(f(x, w + h * e) - f(x, w - h * e)) / (2 * h) for e in np.eye(w.size)])
    return gx, gw


def test_gradient_method_is_resolved_from_the_backend_capabilities() -> None:
    local = LocalBackend()
    assert backend_gradient(local) == "adjoint"
    assert str(resolve_gradient(local)) == "adjoint (the backend's vjp)"
    assert resolve_gradient(local, shots=100).method == "parameter_shift"
    assert not resolve_gradient(local, "finite_diff").by_backend
    shift = Counting("parameter_shift")
    assert backend_gradient(shift) == "parameter_shift"
    # a backend whose own gradient is parameter shift is shifted by core: shifted rows only
    assert resolve_gradient(shift) == resolve_gradient(shift, "parameter_shift")
    assert not resolve_gradient(shift).by_backend
    assert resolve_gradient(KeepingCounting("parameter_shift")).by_backend


@pytest.mark.parametrize(
    ("backend", "kwargs", "match"),
    [
        ("local", {"gradient_method": "magic"}, "gradient_method must be one of"),
        ("local", {"gradient_method": "adjoint", "shots": 10}, "cannot be combined with shots"),
        ("local", {"shots": 0}, "shots must be a positive int"),
        ("local", {"shots": True}, "shots must be a positive int"),
        ("local", {"backend_options": {"colour": 1}}, "do not fit backend 'local'"),
        (LocalBackend(), {"backend_options": {"seed": 1}}, "only apply when backend is given"),
        (object(), {}, "lacks expectation, capabilities"),
        (Counting("parameter_shift"), {"gradient_method": "adjoint"}, "is parameter_shift"),
        ("local", {"observables": [qc.Z(7)]}, "Invalid observables for 3 qubits"),
    ],
)
def test_impossible_configurations_raise_at_construction(
    backend: Any, kwargs: dict[str, Any], match: str
) -> None:
    c, names, wnames = _layer()
    with pytest.raises(LayerConfigError, match=match):
        ExpectationAdapter(c, backend, names, wnames, **kwargs)


@pytest.mark.parametrize("method", ["auto", "adjoint", "parameter_shift", "finite_diff"])
def test_vjp_matches_finite_differences(method: str) -> None:
    c, names, wnames = _layer()
    rng = np.random.default_rng(3)
    x, w = rng.uniform(0, 3, (4, len(names))), rng.uniform(0, 6, len(wnames))
    cot = rng.normal(size=(4, 3))
    ad = ExpectationAdapter(c, "local", names, wnames, gradient_method=method)
    fwd = ad.forward(x, w)
    ref = LocalBackend().expectation(
        c, None, x, names=names, shared=dict(zip(wnames, w, strict=True))
    )
    np.testing.assert_allclose(fwd.values, ref, atol=1e-12)
    gx, gw = ad.vjp(fwd, cot)
    fx, fw = _finite_diff(ad, x, w, cot)
    tol = 1e-5 if method == "finite_diff" else 1e-8
    np.testing.assert_allclose(gx, fx, atol=tol)
    np.testing.assert_allclose(gw, fw, atol=tol)


def test_parameter_shift_backward_never_resimulates_the_forward_rows() -> None:
    c, names, wnames = _layer(n=2, depth=1, n_features=2)
    be = Counting("parameter_shift")
    ad = ExpectationAdapter(c, be, names, wnames)
    x, w = np.full((3, 2), 0.4), np.linspace(0.1, 0.4, 4)
    fwd = ad.forward(x, w)
    ad.vjp(fwd, np.ones((3, 2)))
    # 2 + 4 symbolic angles, two shifted evaluations each, for 3 samples; no unshifted rows
    assert be.calls == [("expectation", 3), ("expectation", 2 * 6 * 3)]


def test_a_backend_that_keeps_its_forward_pass_simulates_it_once() -> None:
    c, names, wnames = _layer()
    be = KeepingCounting()
    assert isinstance(be, KeepsForward)
    ad = ExpectationAdapter(c, be, names, wnames)
    x, w = np.full((2, 4), 0.3), np.linspace(0, 1, 12)
    fwd = ad.forward(x, w)
    gx, gw = ad.vjp(fwd, np.ones((2, 3)))
    assert be.calls == [("value_and_vjp_fn", 2), ("vjp_fn", 2)]
    ref = ExpectationAdapter(c, "local", names, wnames)
    rx, rw = ref.vjp(ref.forward(x, w), np.ones((2, 3)))
    np.testing.assert_allclose(gx, rx, atol=1e-12)
    np.testing.assert_allclose(gw, rw, atol=1e-12)
    ad.forward(x, w, keep=False)  # inference keeps nothing: a plain expectation call
    assert be.calls[-1] == ("expectation", 2)


def test_backend_vjp_is_one_fused_call_in_the_backward_pass() -> None:
    c, names, wnames = _layer()
    be = Counting()
    ad = ExpectationAdapter(c, be, names, wnames)
    fwd = ad.forward(np.zeros((2, 4)), np.zeros(12))
    ad.vjp(fwd, np.ones((2, 3)))
    assert be.calls == [("expectation", 2), ("value_and_vjp", 2)]


def test_shots_go_through_forward_and_gradient_with_seeded_backends() -> None:
    c, names, wnames = _layer(n=2, depth=1, n_features=2)
    x, w = np.array([[0.3, 1.1]]), np.array([0.2, 0.5, 0.9, 0.1])
    runs = []
    for _ in range(2):
        ad = ExpectationAdapter(c, LocalBackend(seed=5), names, wnames, shots=4000)
        fwd = ad.forward(x, w)
        runs.append((fwd.values, *ad.vjp(fwd, np.ones((1, 2)))))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    exact = ExpectationAdapter(c, "local", names, wnames)
    e = exact.forward(x, w)
    np.testing.assert_allclose(runs[0][0], e.values, atol=0.06)  # ~4 sigma for 4000 shots
    np.testing.assert_allclose(runs[0][2], exact.vjp(e, np.ones((1, 2)))[1], atol=0.15)


def test_bad_shapes_raise_input_errors() -> None:
    c, names, wnames = _layer()
    ad = ExpectationAdapter(c, "local", names, wnames)
    with pytest.raises(LayerInputError, match=r"inputs must have shape \[batch, 4\]"):
        ad(np.zeros((2, 3)), np.zeros(12))
    with pytest.raises(LayerInputError, match="weights must have 12 values, got 2"):
        ad(np.zeros((2, 4)), np.zeros(2))
    fwd = ad.forward(np.zeros((2, 4)), np.zeros(12))
    with pytest.raises(LayerInputError, match="cotangent must have the shape"):
        ad.vjp(fwd, np.zeros((2, 2)))
    empty = ad.forward(np.zeros((0, 4)), np.zeros(12))
    assert empty.values.shape == (0, 3) and ad.vjp(empty, np.zeros((0, 3)))[0].shape == (0, 4)


def test_unitary_matches_the_circuit_and_its_vjp_finite_differences() -> None:
    c, _, wnames = LayerSpec.create(2, 2, "circular").circuit(None)
    w = np.random.default_rng(1).uniform(0, 6, len(wnames))
    ua = UnitaryAdapter.on_backend(c, "local", wnames)
    u = ua.unitary(w)
    np.testing.assert_allclose(u, c.unitary(dict(zip(wnames, w, strict=True))), atol=1e-12)
    g = np.random.default_rng(2).normal(size=(4, 4)) + 1j * np.random.default_rng(3).normal(
        size=(4, 4)
    )

    def loss(ww: FloatArray) -> float:
        uu = c.unitary(dict(zip(wnames, ww, strict=True)))
        return float((g.real * uu.real + g.imag * uu.imag).sum())

    h = 1e-6
    fd = [(loss(w + h * e) - loss(w - h * e)) / (2 * h) for e in np.eye(w.size)]
    np.testing.assert_allclose(ua.vjp(w, g), fd, atol=1e-7)


def test_state_options_and_unshiftable_weights_are_refused() -> None:
    check_state_options("parameter_shift", None)
    with pytest.raises(LayerConfigError, match="shots=3 cannot apply"):
        check_state_options("auto", 3)
    with pytest.raises(LayerConfigError, match="'adjoint' cannot apply"):
        check_state_options("adjoint", None)
    c = qc.UnifiedCircuit(1).add_gate("RY", 0, 2 * qc.Parameter("w"))
    with pytest.raises(LayerConfigError, match="not plain angles"):
        UnitaryAdapter.on_backend(c, "local", ["w"])
    twice = qc.UnifiedCircuit(1).add_gate("RY", 0, "w").add_gate("RX", 0, "w")
    with pytest.raises(LayerConfigError, match="not plain angles"):
        UnitaryAdapter.on_backend(twice, "local", ["w"])


def test_local_backend_simulates_the_forward_pass_once_per_training_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qstore.core.engine import adjoint, generic

    runs = {"trace": 0, "run": 0}
    trace, run = adjoint.trace, generic.run

    def counted_trace(*a: Any, **k: Any) -> Any:
        runs["trace"] += 1
        return trace(*a, **k)

    def counted_run(*a: Any, **k: Any) -> Any:
        runs["run"] += 1
        return run(*a, **k)

    monkeypatch.setattr(adjoint, "trace", counted_trace)
    monkeypatch.setattr(generic, "run", counted_run)
    c, names, wnames = _layer()
    assert isinstance(LocalBackend(), KeepsForward)
    ad = ExpectationAdapter(c, "local", names, wnames)
    x, w = np.full((3, 4), 0.2), np.linspace(0, 2, 12)
    cot = np.random.default_rng(0).normal(size=(3, 3))
    fwd = ad.forward(x, w)
    gx, gw = ad.vjp(fwd, cot)
    assert runs == {"trace": 1, "run": 0}
    _, rx, rw = LocalBackend().value_and_vjp(
        c, None, x, cot, names=names, shared=dict(zip(wnames, w, strict=True))
    )
    np.testing.assert_allclose(gx, rx, atol=1e-12)
    np.testing.assert_allclose(gw, rw, atol=1e-12)
