"""The helpers that simulator plugins share (:mod:`qstore.core.backends.plugin`), checked
without a plugin installed: parameter maps against the core's compiled programs, observable
splitting, template caching and the batch API of the mixin on a fixed-state toy backend."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import qstore.core as qc
from qstore.core.backends.plugin import (
    FloatArray,
    ObservableTerms,
    ParameterMap,
    SimulatorPluginMixin,
    Template,
    affine_parameters,
    cached_template,
    counts_from_indices,
    lower_template,
    probabilities_from_states,
    split_observables,
)
from qstore.core.errors import (
    BackendError,
    BindingError,
    NonFiniteParameterError,
    ObservableError,
    ShotsError,
)
from qstore.core.observables import as_observables, identity


@dataclass
class _Names(Template[str]):
    """A template whose operations are gate names."""


def _circuit() -> qc.UnifiedCircuit:
    a, b = qc.Parameter("a"), qc.Parameter("b")
    return (
        qc.UnifiedCircuit(2)
        .add_gate("RX", 0, a)
        .add_gate("CNOT", [0, 1])
        .add_gate("RZ", 1, 2 * a * b + 0.5)
        .add_gate("U3", 1, [b, 0.3, a])
    )


def test_parameter_map_evaluates_expressions_and_their_transpose() -> None:
    c = _circuit()
    values = np.random.default_rng(0).uniform(-2, 2, (3, 1))
    pmap = ParameterMap.build(c, ["a"], ["b"])
    full = pmap.layout(values, {"b": 0.7})
    theta = pmap.theta(full)
    # Reference: bind each row and read the gates' numbers.
    for row, a in enumerate(values[:, 0]):
        bound = c.bind({"a": float(a), "b": 0.7})
        expect = [float(x) for op in bound for x in op.numeric_params()]
        np.testing.assert_allclose(theta[row], expect, atol=1e-12)
    # The chain rule is the transpose of the map's Jacobian: check by finite differences.
    gtheta = np.random.default_rng(1).normal(size=(3, pmap.n_theta))
    got = pmap.chain_rule(full, gtheta)
    h = 1e-6
    for col in range(full.shape[1]):
        step = np.zeros_like(full)
        step[:, col] = h
        fd = ((pmap.theta(full + step) - pmap.theta(full - step)) / (2 * h) * gtheta).sum(axis=1)
        np.testing.assert_allclose(got[:, col], fd, atol=1e-7)
    assert pmap.symbolic.tolist() == [True, True, True, False, True]
    assert pmap.slots == ((0,), (), (1,), (2, 3, 4))


def test_parameter_map_refuses_bad_bindings() -> None:
    pmap = ParameterMap.build(_circuit(), ["a", "b"])
    with pytest.raises(BindingError, match="shape"):
        pmap.layout([[1.0, 2.0, 3.0]], None)
    with pytest.raises(BindingError, match="per-sample"):
        pmap.layout(None, None)
    with pytest.raises(NonFiniteParameterError):
        pmap.layout([[np.nan, 1.0]], None)
    with pytest.raises(BindingError, match="more than once"):
        ParameterMap.build(_circuit(), ["a", "a", "b"])


def test_split_observables_separates_constants() -> None:
    obs = [qc.Z(0) * qc.Z(1) + 0.5, identity(2.0), -1.5 * qc.X(1)]
    terms = split_observables(as_observables(obs, 2), 2)
    assert terms.constants.tolist() == [0.5, 2.0, 0.0]
    assert terms.active == (0, 2)
    assert terms.n_obs == 3
    assert [terms.words[w] for w in terms.per_obs[2]] == [(((1, "X"),), -1.5)]
    with pytest.raises(ObservableError, match="qubit 3"):
        split_observables(as_observables([qc.Z(3)], 4), 2)


def test_lowering_helpers() -> None:
    c = _circuit().measure()
    pmap = ParameterMap.build(c, ["a", "b"])
    ops = lower_template(c, pmap.slots, lambda gate, qubits, cols: [(gate, q) for q in cols])
    assert ops == (("RX", 0), ("RZ", 1), ("U3", 2), ("U3", 3), ("U3", 4))

    class Op:
        def __init__(self, col: int, scale: float, offset: float) -> None:
            self.col, self.scale, self.offset = col, scale, offset

    theta = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = affine_parameters([Op(1, 2.0, 0.5), Op(0, -1.0, 0.0)], theta)
    assert out.tolist() == [[4.5, -1.0], [8.5, -3.0]]
    assert affine_parameters([], theta).shape == (2, 0)


def test_cached_template_is_kept_on_the_circuit() -> None:
    c = _circuit()
    calls: list[int] = []

    def lower(circuit: qc.UnifiedCircuit, slots: Sequence[Sequence[int]]) -> tuple[str, ...]:
        calls.append(1)
        return tuple(op.gate for op in circuit)

    t1 = cached_template(_Names, "test", c, None, {"b": 1.0}, lower)
    t2 = cached_template(_Names, "test", c, None, {"b": 2.0}, lower)
    assert t1 is t2 and len(calls) == 1
    assert t1.pmap.names == ("a", "b") and t1.ops == ("RX", "CNOT", "RZ", "U3")
    with pytest.raises(BackendError, match="UnifiedCircuit"):
        cached_template(_Names, "test", "circuit", None, None, lower)  # type: ignore[arg-type]


def test_result_helpers() -> None:
    probs = probabilities_from_states(np.array([[1.0, 1.0j], [2.0, 0.0]]))
    assert probs.tolist() == [[0.5, 0.5], [1.0, 0.0]]
    assert counts_from_indices(np.array([0, 3, 3, 1]), 2) == {"00": 1, "01": 1, "11": 2}


class _Bell(SimulatorPluginMixin[_Names]):
    """Every circuit ends in the Bell state (|00> + |11>) / sqrt(2)."""

    name = "bell"

    def __init__(self) -> None:
        self._rng = np.random.default_rng(5)

    def _template(
        self,
        circuit: qc.UnifiedCircuit,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> _Names:
        return cached_template(_Names, "bell", circuit, names, shared, lambda c, s: ())

    def _bell(self, rows: int) -> npt.NDArray[np.complex128]:
        return np.tile(np.array([1, 0, 0, 1], dtype=np.complex128) / np.sqrt(2), (rows, 1))

    def state(
        self,
        circuit: qc.UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> npt.NDArray[np.complex128]:
        _, _, theta = self._prepare(circuit, values, names, shared)
        return self._bell(theta.shape[0])

    def _run_expectations(
        self, tpl: _Names, terms: ObservableTerms, theta: FloatArray
    ) -> FloatArray:
        return np.tile(terms.constants, (theta.shape[0], 1))

    def _gate_vjp(
        self, tpl: _Names, terms: ObservableTerms, theta: FloatArray, cot: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        return self._run_expectations(tpl, terms, theta), np.ones(theta.shape) * cot.sum()

    def _basis_states(
        self, tpl: _Names, theta: FloatArray, basis: tuple[tuple[int, str], ...]
    ) -> Any:
        return self._bell(theta.shape[0])


def test_mixin_batch_api() -> None:
    b = _Bell()
    c = qc.UnifiedCircuit(2).add_gate("RX", 0, "t")
    values = [[0.1], [0.2]]
    assert b.probabilities(c, values).tolist() == [[0.5, 0.0, 0.0, 0.5]] * 2
    idx = b.sample(c, 100, values, seed=3)
    assert idx.shape == (2, 100) and set(np.unique(idx).tolist()) <= {0, 3}
    assert all(set(row) <= {"00", "11"} for row in b.counts(c, 50, values, seed=3))
    est = b.expectation(c, [qc.Z(0) * qc.Z(1) + 1.0], values, shots=200, seed=1)
    assert est.tolist() == [[2.0], [2.0]]
    gv, gs = b.vjp(c, [identity()], values, [[1.0], [2.0]])
    assert gv.shape == (2, 1) and gs.shape == (0,)
    with pytest.raises(BindingError, match="cotangent"):
        b.value_and_vjp(c, [identity()], values, [1.0, 2.0, 3.0])
    with pytest.raises(ShotsError):
        b.sample(c, 0, values)
    res = asyncio.run(b.execute(qc.UnifiedCircuit(2), shots=None))
    assert res.probabilities == pytest.approx({"00": 0.5, "11": 0.5})
    assert res.expectations is not None and np.allclose(res.expectations, 0.0)
    res = asyncio.run(b.execute(qc.UnifiedCircuit(2), shots=10))
    assert res.counts is not None and sum(res.counts.values()) == 10
