"""Gradients with respect to weights and inputs: torch autograd on the native engine and the
backend autograd Function, against ``torch.autograd.gradcheck`` (finite differences, float64)
and the core's adjoint and parameter-shift VJPs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch.func import functional_call

import qstore.core as qc
from qstore.core.backends.base import Capabilities
from qstore.core.backends.local import LocalBackend
from qstore.torch import AmplitudeEncoding, CircuitLayer, ExpectationValue, QuantumLayer


def _gradcheck(module: torch.nn.Module, x: torch.Tensor) -> bool:
    """gradcheck of ``module(x)`` in all of its parameters and in ``x``."""
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]

    def fn(x: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return functional_call(module, dict(zip(names, ps, strict=True)), (x,))

    inputs = (x.detach().clone().requires_grad_(), *params)
    return bool(torch.autograd.gradcheck(fn, inputs, atol=1e-6, rtol=1e-5))


@pytest.mark.parametrize("backend", ["torch", "local"])
@pytest.mark.parametrize(
    ("encoding", "n_features", "entanglement"),
    [("angle", 3, "linear"), ("angle", 7, "full"), ("reupload", 4, "circular")],
)
def test_gradcheck_weights_and_inputs(
    backend: str, encoding: str, n_features: int, entanglement: str
) -> None:
    torch.manual_seed(0)
    layer = QuantumLayer(
        3, depth=2, backend=backend, encoding=encoding, entanglement=entanglement
    ).double()
    assert _gradcheck(layer, torch.rand(3, n_features, dtype=torch.float64) * math.pi)


@pytest.mark.parametrize("encoding", ["angle", "amplitude"])
def test_gradcheck_when_shared_layers_run_as_one_matrix(encoding: str) -> None:
    """Deep enough for the engine's unitary plan (trailing shared layers as one matrix)."""
    from qstore.core.engine import generic

    torch.manual_seed(2)
    layer = QuantumLayer(3, depth=4, encoding=encoding).double()
    x = torch.rand(4, 3 if encoding == "angle" else 8, dtype=torch.float64) + 0.1
    assert _gradcheck(layer, x)
    prog = next(iter(layer._templates.values())).program(True)
    plan = prog.cache.get("generic.unitary_plan")
    assert isinstance(plan, generic.UnitaryPlan)
    assert sum(s.count for s in plan.segments if isinstance(s, generic.LayerStack)) >= 3


def test_gradcheck_through_amplitude_encoding_and_states() -> None:
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        AmplitudeEncoding(3),
        QuantumLayer(3, depth=2, entanglement="full"),
        ExpectationValue(observables=[qc.Z(0) * qc.Z(1), qc.X(2) + 0.5 * qc.Y(0)]),
    ).double()
    assert _gradcheck(model, torch.rand(4, 6, dtype=torch.float64) + 0.1)


@pytest.mark.parametrize("numpy_max", [0, 12])  # torch's own tensors, then NumPy
def test_gradcheck_of_the_adjoint_node_on_both_array_libraries(
    numpy_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adjoint node takes inputs and weights apart: features, weights and states, on
    ``TorchOps`` and on NumPy, against finite differences."""
    from qstore.torch import engine

    monkeypatch.setattr(engine, "NUMPY_MAX_QUBITS", numpy_max)
    torch.manual_seed(3)
    layer = QuantumLayer(3, depth=3, entanglement="circular").double()
    assert _gradcheck(layer, torch.rand(4, 3, dtype=torch.float64) * math.pi)
    model = torch.nn.Sequential(
        AmplitudeEncoding(3), QuantumLayer(3, depth=2), ExpectationValue()
    ).double()
    assert _gradcheck(model, torch.rand(4, 8, dtype=torch.float64) + 0.1)


@pytest.mark.parametrize("backend", ["torch", "local"])
def test_gradcheck_circuit_layer_with_products(backend: str) -> None:
    x, w, t = qc.Parameter("x"), qc.Parameter("w"), qc.Parameter("t")
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, x).add_gate("CRX", [0, 1], x * w + 0.2)
    c.add_gate("RZZ", [0, 1], 2 * t).add_gate("RX", 0, t).add_gate("U3", 1, [w, t, x])
    layer = CircuitLayer(c, ["x"], observables=[qc.X(0), qc.Z(0) * qc.Y(1)], backend=backend)
    assert _gradcheck(layer.double(), torch.rand(5, 1, dtype=torch.float64))


def test_torch_gradients_equal_the_core_adjoint() -> None:
    torch.manual_seed(2)
    layer = QuantumLayer(4, depth=3, entanglement="circular").double()
    x = (torch.rand(6, 4, dtype=torch.float64) * math.pi).requires_grad_()
    cot = torch.randn(6, 4, dtype=torch.float64)
    (layer(x) * cot).sum().backward()
    b = layer.bindings(x)
    value, g_inputs, g_weights = LocalBackend().value_and_vjp(
        b.circuit, None, b.inputs.numpy(), cot.numpy(), names=b.input_names, shared=b.weights
    )
    assert x.grad is not None and layer.weights.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), g_inputs, atol=1e-12)  # angle: columns are x
    np.testing.assert_allclose(layer.weights.grad.reshape(-1).numpy(), g_weights, atol=1e-12)
    np.testing.assert_allclose(layer(x).detach().numpy(), value, atol=1e-12)


def test_float32_gradients_agree_with_float64() -> None:
    torch.manual_seed(3)
    single = QuantumLayer(5, depth=2, encoding="reupload")
    double = QuantumLayer(5, depth=2, encoding="reupload").double()
    double.load_state_dict(single.state_dict())
    x = torch.rand(4, 9) * math.pi
    single(x).sum().backward()
    double(x.double()).sum().backward()
    for a, b in zip(single.parameters(), double.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        torch.testing.assert_close(a.grad.double(), b.grad, atol=2e-5, rtol=0)


class ExpectationOnly:
    """A backend without a VJP (like a remote service): only expectations."""

    name = "expectation_only"

    def __init__(self) -> None:
        self.inner = LocalBackend()
        self.calls = 0

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(name=self.name, max_qubits=20, gradient_methods=("parameter_shift",))

    def expectation(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.expectation(*args, **kwargs)


def _grads(layer: torch.nn.Module, x: torch.Tensor, cot: torch.Tensor) -> list[torch.Tensor]:
    x = x.detach().clone().requires_grad_()
    out = layer(x)
    return [t.detach() for t in torch.autograd.grad((out * cot).sum(), [x, *layer.parameters()])]


def test_parameter_shift_for_backends_without_a_vjp() -> None:
    torch.manual_seed(4)
    reference = QuantumLayer(3, depth=2, encoding="reupload").double()
    backend = ExpectationOnly()
    layer = QuantumLayer(3, depth=2, encoding="reupload", backend=backend).double()
    layer.load_state_dict(reference.state_dict())
    x = torch.rand(4, 5, dtype=torch.float64) * math.pi
    cot = torch.randn(4, 3, dtype=torch.float64)
    got, want = _grads(layer, x, cot), _grads(reference, x, cot)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    # one call forward, one batched call for all shifts backward: no per-sample loop
    assert backend.calls == 2


@pytest.mark.parametrize(("method", "atol"), [("parameter_shift", 1e-10), ("finite_diff", 1e-5)])
def test_gradient_method_can_be_chosen(method: str, atol: float) -> None:
    torch.manual_seed(5)
    reference = QuantumLayer(3, depth=1).double()
    layer = QuantumLayer(3, depth=1, backend="local", gradient_method=method).double()
    layer.load_state_dict(reference.state_dict())
    x = torch.rand(2, 3, dtype=torch.float64)
    cot = torch.randn(2, 3, dtype=torch.float64)
    for a, b in zip(_grads(layer, x, cot), _grads(reference, x, cot), strict=True):
        torch.testing.assert_close(a, b, atol=atol, rtol=0)


def test_shots_estimate_the_exact_values() -> None:
    torch.manual_seed(6)
    exact = QuantumLayer(2, depth=1).double()
    sampled = QuantumLayer(
        2, depth=1, backend="local", shots=20_000, backend_options={"seed": 11}
    ).double()
    sampled.load_state_dict(exact.state_dict())
    x = torch.rand(3, 2, dtype=torch.float64)
    torch.testing.assert_close(sampled(x), exact(x), atol=0.03, rtol=0)
    # gradients by parameter shift on the sampled backend
    cot = torch.ones(3, 2, dtype=torch.float64)
    for a, b in zip(_grads(sampled, x, cot), _grads(exact, x, cot), strict=True):
        torch.testing.assert_close(a, b, atol=0.1, rtol=0)


def test_numpy_nodes_of_encoding_and_measurement_match_torch_autograd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the CPU, amplitude encoding and measurement are one NumPy-backed node each; their
    values and gradients equal torch autograd through the torch expressions (forced by
    ``NUMPY_MAX_QUBITS = 0``), an all-zero row and non-diagonal observables included."""
    from qstore.torch import engine
    from qstore.torch.encoding import amplitude_encode

    torch.manual_seed(5)
    x = torch.rand(5, 6, dtype=torch.float64) - 0.3
    x[2] = 0.0
    g_state = torch.randn(5, 8, dtype=torch.complex128)
    ev = ExpectationValue(observables=[qc.Z(0) * qc.Z(1), qc.X(2) + 0.5 * qc.Y(0), qc.Z(2)])
    psi = torch.randn(5, 8, dtype=torch.complex128)
    psi = psi / torch.linalg.vector_norm(psi, dim=1, keepdim=True)
    g_obs = torch.randn(5, 3, dtype=torch.float64)

    def run() -> tuple[torch.Tensor, ...]:
        xi = x.clone().requires_grad_()
        s = amplitude_encode(xi, 3)
        (gx,) = torch.autograd.grad(s, xi, g_state)
        pi = psi.clone().requires_grad_()
        e = ev(pi)
        (gp,) = torch.autograd.grad(e, pi, g_obs)
        return s.detach(), gx, e.detach(), gp

    fast = run()
    monkeypatch.setattr(engine, "NUMPY_MAX_QUBITS", 0)
    slow = run()
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert torch.equal(fast[0][2], torch.eye(8, dtype=torch.complex128)[0])  # |000>
    assert torch.all(fast[1][2] == 0)  # ... with zero gradient


def test_amplitude_encoding_node_keeps_float32() -> None:
    from qstore.torch.encoding import amplitude_encode

    x = torch.rand(3, 4, requires_grad=True)
    s = amplitude_encode(x, 2)
    assert s.dtype == torch.complex64
    s.real.sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32


def test_second_derivatives_refuse_the_adjoint_nodes_and_work_through_torch_func() -> None:
    """The adjoint nodes give first derivatives only: differentiating their gradient again
    raises instead of returning a silently wrong result; ``torch.func`` traces the circuit op
    by op, so its second derivatives are right (forward over reverse and reverse over reverse,
    checked against finite differences)."""
    torch.manual_seed(4)
    model = torch.nn.Sequential(
        AmplitudeEncoding(2), QuantumLayer(2, depth=1), ExpectationValue()
    ).double()
    x = torch.rand(3, 4, dtype=torch.float64) + 0.1
    w = dict(model.named_parameters())
    name = next(iter(w))
    # squared outputs: the cotangent entering the nodes depends on the weights too
    (g,) = torch.autograd.grad((model(x) ** 2).sum(), w[name], create_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        g.sum().backward()

    def loss(p: torch.Tensor) -> torch.Tensor:
        return (functional_call(model, {name: p}, (x,)) ** 2).sum()

    p0 = w[name].detach().clone()
    hess = torch.func.hessian(loss)(p0).reshape(p0.numel(), p0.numel())
    again = torch.func.jacrev(torch.func.grad(loss))(p0).reshape(p0.numel(), p0.numel())
    torch.testing.assert_close(again, hess, atol=1e-12, rtol=0)
    grad = torch.func.grad(loss)
    h = 1e-5
    for k in range(p0.numel()):
        step = torch.zeros_like(p0).reshape(-1)
        step[k] = h
        step = step.reshape(p0.shape)
        fd = (grad(p0 + step) - grad(p0 - step)).reshape(-1) / (2 * h)
        torch.testing.assert_close(hess[k], fd, atol=1e-7, rtol=0)


@pytest.mark.parametrize("numpy_max", [0, 20])  # torch's own kernels, then NumPy
def test_inference_gives_the_training_forward_pass(
    numpy_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without gradients the layers run a forward pass of their own (NumPy on the CPU, no
    states kept); it must give what the training forward pass gives."""
    from qstore.torch import engine

    monkeypatch.setattr(engine, "NUMPY_MAX_QUBITS", numpy_max)
    torch.manual_seed(6)
    model = torch.nn.Sequential(
        AmplitudeEncoding(3), QuantumLayer(3, depth=2), ExpectationValue()
    ).double()
    layer = QuantumLayer(3, depth=2, encoding="reupload").double()
    x = torch.rand(5, 8, dtype=torch.float64) + 0.1
    xa = torch.rand(5, 4, dtype=torch.float64)
    for module, inp in ((model, x), (layer, xa)):
        trained = module(inp)
        assert trained.requires_grad
        with torch.no_grad():
            inferred = module(inp)
        torch.testing.assert_close(inferred, trained.detach(), atol=1e-12, rtol=0)


def test_half_precision_angles_are_simulated_in_single_precision() -> None:
    """bfloat16 bindings given to the engine directly are widened before the gates are built,
    with gradients and without."""
    from qstore.core.engine.program import compile_program
    from qstore.torch import engine

    c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
    prog = compile_program(c, ["x"], observables=[qc.Z(0) + 0])
    x = torch.tensor([[1.0], [2.0]], dtype=torch.bfloat16)
    want = torch.cos(x.float())
    with torch.no_grad():
        torch.testing.assert_close(engine.expectations(prog, x), want, atol=1e-6, rtol=0)
    xg = x.clone().requires_grad_()
    got = engine.expectations(prog, xg)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    got.sum().backward()
    assert xg.grad is not None and xg.grad.dtype == torch.bfloat16
    torch.testing.assert_close(xg.grad.float(), -torch.sin(x.float()), atol=1e-2, rtol=0)
