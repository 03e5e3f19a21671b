"""``GradientMethod.compute``: the forms of ``parameters=``/``values=``, what ``loss_fn`` gets.

Reference: the state ``circuit.unitary(values) |0...0>`` with dense Pauli matrices, and
central finite differences of the loss computed from it (no backend involved).
"""

from __future__ import annotations

import asyncio
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

import qstore.core as qc
from qstore.core.backends.local import LocalBackend
from qstore.core.errors import (
    BindingError,
    GradientError,
    MissingDependencyError,
    UnboundParameterError,
)
from qstore.core.gradients import METHODS, GradientResult, ParameterShiftGradient

N = 4
Z = np.diag([1.0, -1.0])


def seed_circuit(n: int = N) -> qc.UnifiedCircuit:
    """The seed's low-level circuit: H on every qubit, a CNOT chain, a layer of RY(theta_i)."""
    c = qc.UnifiedCircuit(n_qubits=n)
    for i in range(n):
        c.add_gate("H", targets=[i])
    for i in range(n - 1):
        c.add_gate("CNOT", targets=[i, i + 1])
    return c.add_parameterized_layer("RY", "theta")


def z_expectations(c: qc.UnifiedCircuit, values: Mapping[str, float]) -> np.ndarray[Any, Any]:
    psi = c.unitary(dict(values))[:, 0]
    out = []
    for q in range(c.n_qubits):
        op = np.array([[1.0]])
        for k in range(c.n_qubits):
            op = np.kron(op, Z if k == q else np.eye(2))
        out.append(float(np.real(np.vdot(psi, op @ psi))))
    return np.asarray(out)


def fd_gradient(
    c: qc.UnifiedCircuit, loss: Callable[[Any], float], point: Mapping[str, float]
) -> dict[str, float]:
    h = 1e-6
    grads = {}
    for name in point:
        up, down = dict(point), dict(point)
        up[name] += h
        down[name] -= h
        grads[name] = (loss(z_expectations(c, up)) - loss(z_expectations(c, down))) / (2 * h)
    return grads


def loss(e: Any) -> float:
    return float(np.sum((e - 0.3) ** 2) + e[0] * e[-1])


def compute(method: Any, *args: Any, **kwargs: Any) -> GradientResult:
    return asyncio.run(method.compute(*args, **kwargs))


def test_the_seeds_call_differentiates_at_zero_and_says_so() -> None:
    c = seed_circuit()
    g = ParameterShiftGradient(LocalBackend())
    with pytest.warns(UserWarning, match="differentiating at 0.0") as record:
        r = compute(g, circuit=c, loss_fn=loss, parameters=c.parameters)
    assert all(f"theta_{i}" in str(record[0].message) for i in range(N))
    point = dict.fromkeys(c.parameters, 0.0)
    ref = fd_gradient(c, loss, point)
    assert list(r.gradients) == list(c.parameters)
    for name, value in ref.items():
        assert r.gradients[name] == pytest.approx(value, abs=1e-6)
    assert r.loss == pytest.approx(loss(z_expectations(c, point)), abs=1e-12)


@pytest.mark.parametrize("form", ["mapping", "parameter_keys", "values_mapping", "values_array"])
def test_every_form_of_parameters_and_values_gives_the_same_point(form: str) -> None:
    c = seed_circuit()
    theta = np.random.default_rng(4).uniform(-math.pi, math.pi, N)
    point = dict(zip(c.parameters, theta.tolist(), strict=True))
    g = METHODS["adjoint"](LocalBackend())
    kwargs: dict[str, Any] = {
        "mapping": {"parameters": point},
        "parameter_keys": {"parameters": {c.parameters[k]: v for k, v in point.items()}},
        "values_mapping": {"parameters": c.parameters, "values": point},
        "values_array": {"parameters": c.parameters, "values": theta},
    }[form]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every value is given: no warning
        r = compute(g, circuit=c, loss_fn=loss, **kwargs)
    ref = fd_gradient(c, loss, point)
    for name, value in ref.items():
        assert r.gradients[name] == pytest.approx(value, abs=1e-6)
    np.testing.assert_allclose(r.expectations, z_expectations(c, point), atol=1e-12)


def test_loss_fn_receives_a_float64_vector_of_the_expectations() -> None:
    c = seed_circuit(3)
    point = {"theta_0": 0.4, "theta_1": -0.2, "theta_2": 1.3}
    seen: list[Any] = []

    def spy(e: Any) -> float:
        seen.append(e)
        return float(e[1])

    r = compute(ParameterShiftGradient(LocalBackend()), c, spy, point)
    first = seen[0]
    assert type(first) is np.ndarray and first.dtype == np.float64 and first.shape == (3,)
    np.testing.assert_allclose(first, z_expectations(c, point), atol=1e-12)
    first[:] = 99.0  # a copy: changing it does not change the result
    np.testing.assert_allclose(r.expectations, z_expectations(c, point), atol=1e-12)

    seen.clear()
    obs = [qc.Z(0) * qc.Z(1), qc.X(2), qc.Z(2)]
    compute(ParameterShiftGradient(LocalBackend()), c, spy, point, observables=obs)
    assert seen[0].shape == (3,)


def test_only_the_named_symbols_are_differentiated_the_others_held_fixed() -> None:
    c = seed_circuit(3)
    point = {"theta_0": 0.4, "theta_1": -0.2, "theta_2": 1.3}
    g = ParameterShiftGradient(LocalBackend())
    r = compute(g, c, loss, ["theta_1"], values=point)
    assert list(r.gradients) == ["theta_1"]
    ref = fd_gradient(c, loss, point)
    assert r.gradients["theta_1"] == pytest.approx(ref["theta_1"], abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"parameters": {"nope": 0.1}}, BindingError, r"no symbol\(s\) \['nope'\]"),
        (
            {"parameters": ["theta_0"], "values": {"theta_0": 0.1, "typo": 1.0}},
            BindingError,
            r"\['typo'\]",
        ),
        ({"parameters": {"theta_0": 0.1}}, UnboundParameterError, "theta_1"),
        ({"parameters": ["theta_0", "theta_1"], "values": [0.1]}, BindingError, "expected 2"),
        (
            {"parameters": {"theta_0": 0.1, "theta_1": None}, "values": [0.1, 0.2]},
            BindingError,
            "already gives values",
        ),
        (
            {"parameters": {"theta_0": 2 * qc.Parameter("w"), "theta_1": 0.0}},
            BindingError,
            "expression",
        ),
        ({"parameters": {}}, GradientError, "empty"),
        ({"parameters": 3}, GradientError, "parameters must"),
        ({"parameters": {"theta_0": "x", "theta_1": 0.0}}, BindingError, "real number"),
    ],
)
def test_bad_parameters_name_the_problem(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    c = seed_circuit(2)
    g = ParameterShiftGradient(LocalBackend())
    with pytest.raises(error, match=match):
        compute(g, c, loss, **kwargs)


def test_the_seeds_call_on_the_ionq_native_circuit_names_the_original_symbols() -> None:
    # qc.compilers.IonQNativeCompiler().compile(circuit) keeps the symbols, so
    # parameters=circuit.parameters names the compiled circuit's symbols too.
    try:
        compiler = qc.compilers.IonQNativeCompiler()
    except MissingDependencyError:
        pytest.skip("qstore-ionq is not installed")
    c = seed_circuit(3)
    compiled = compiler.compile(c)
    point = {"theta_0": 0.4, "theta_1": -0.2, "theta_2": 1.3}
    g = ParameterShiftGradient(LocalBackend())
    r = compute(g, circuit=compiled, loss_fn=loss, parameters=c.parameters, values=point)
    ref = fd_gradient(c, loss, point)  # of the original circuit
    for name, value in ref.items():
        assert r.gradients[name] == pytest.approx(value, abs=1e-6)
