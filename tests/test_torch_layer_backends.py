"""qstore.torch.QuantumLayer on every installed backend: the outputs and gradients (weights and
inputs) that come back through the backend autograd Function equal the native torch engine's."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
qs_torch = pytest.importorskip("qstore.torch")

import qstore.core as qc  # noqa: E402


@pytest.mark.parametrize("name", qc.backends.available())  # names only: nothing imported yet
def test_quantum_layer_on_backend_matches_the_torch_engine(name: str) -> None:
    info = qc.backends.info(name)
    if not info.available:
        pytest.skip(f"backend {name!r} is not usable here: {info.reason}")
    torch.manual_seed(0)
    reference = qs_torch.QuantumLayer(3, depth=2, entanglement="full").double()
    layer = qs_torch.QuantumLayer(3, depth=2, entanglement="full", backend=name).double()
    layer.load_state_dict(reference.state_dict())
    x = torch.rand(4, 5, dtype=torch.float64) * 3
    cot = torch.randn(4, 3, dtype=torch.float64)
    results = []
    for module in (layer, reference):
        xi = x.clone().requires_grad_()
        out = module(xi)
        grads = torch.autograd.grad((out * cot).sum(), [xi, module.weights])
        results.append((out.detach(), *grads))
    # single-precision simulators (qsim) agree to about 1e-6
    for got, want in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
