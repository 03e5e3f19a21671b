"""The layers as ordinary torch modules: state dicts, saving, devices and dtypes, DataParallel,
torch.compile and torch.func."""

from __future__ import annotations

import copy
import io
import math
import warnings

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

import qstore.core as qc
from qstore.torch import AmplitudeEncoding, CircuitLayer, ExpectationValue, QuantumLayer


def _model(**kwargs: object) -> nn.Sequential:
    return nn.Sequential(QuantumLayer(4, depth=2, **kwargs), nn.Linear(4, 3))  # type: ignore[arg-type]


def test_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    a = _model(encoding="reupload")
    torch.manual_seed(1)
    b = _model(encoding="reupload")
    x = torch.rand(5, 6)
    assert not torch.allclose(a(x), b(x))
    assert set(a.state_dict()) == {"0.weights", "0.input_scaling", "1.weight", "1.bias"}
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), b(x))
    with pytest.raises(RuntimeError, match="size mismatch"):
        QuantumLayer(4, depth=3).load_state_dict(QuantumLayer(4, depth=2).state_dict())


@pytest.mark.parametrize("backend", ["torch", "local"])
def test_torch_save_and_load(backend: str) -> None:
    torch.manual_seed(2)
    model = _model(backend=backend)
    x = torch.rand(3, 4)
    expected = model(x)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = _model(backend=backend)
    fresh.load_state_dict(torch.load(buf))  # weights_only loading
    torch.testing.assert_close(fresh(x), expected)
    buf = io.BytesIO()
    torch.save(model, buf)  # the whole module: compiled programs are rebuilt after loading
    buf.seek(0)
    whole = torch.load(buf, weights_only=False)
    torch.testing.assert_close(whole(x), expected)
    torch.testing.assert_close(copy.deepcopy(model)(x), expected)


def test_circuit_layer_and_pipeline_pickle() -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x").add_gate("CRX", [0, 1], "w")
    layer = CircuitLayer(c, ["x"])
    pipe = nn.Sequential(AmplitudeEncoding(2), QuantumLayer(2, 1), ExpectationValue([qc.X(1)]))
    x = torch.rand(3, 1)
    s = torch.rand(3, 3)
    layer(x), pipe(s)  # compile and cache programs first
    buf = io.BytesIO()
    torch.save({"layer": layer, "pipe": pipe}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    torch.testing.assert_close(loaded["layer"](x), layer(x))
    torch.testing.assert_close(loaded["pipe"](s), pipe(s))


def test_to_dtype_and_device() -> None:
    torch.manual_seed(3)
    model = _model()
    x = torch.rand(2, 4)
    out32 = model(x)
    model.to(torch.float64)
    assert model[0].weights.dtype == torch.float64
    out64 = model(x.double())
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32, atol=1e-5, rtol=0)
    model.to("cpu").float()
    torch.testing.assert_close(model(x), out32)


def test_autocast_keeps_the_simulation_in_full_precision() -> None:
    torch.manual_seed(8)
    model = nn.Sequential(AmplitudeEncoding(3), QuantumLayer(3, depth=2), ExpectationValue())
    x = torch.rand(4, 8)
    reference = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_like_on_cpu() -> None:
    torch.manual_seed(4)
    layer = QuantumLayer(5, depth=2, entanglement="full").double()
    x = torch.rand(8, 7, dtype=torch.float64)
    cpu = layer(x)
    cpu.sum().backward()
    g_cpu = layer.weights.grad.clone()  # type: ignore[union-attr]
    layer.zero_grad()
    layer.cuda()
    out = layer(x.cuda())
    out.sum().backward()
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), cpu)
    torch.testing.assert_close(layer.weights.grad.cpu(), g_cpu)  # type: ignore[union-attr]


def test_data_parallel() -> None:
    torch.manual_seed(5)
    model = _model()
    x = torch.rand(6, 4)
    dp = nn.DataParallel(model)
    out = dp(x)
    torch.testing.assert_close(out, model(x))
    out.sum().backward()
    assert model[0].weights.grad is not None


def test_torch_func_grad_and_per_sample_gradients_with_vmap() -> None:
    torch.manual_seed(6)
    layer = QuantumLayer(3, depth=2, encoding="reupload").double()
    x = torch.rand(4, 5, dtype=torch.float64)
    params = {k: v.detach() for k, v in layer.named_parameters()}

    def loss(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(layer, p, (xi[None],)).square().sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0))(params, x)
    for i in range(4):
        layer.zero_grad()
        layer(x[i : i + 1]).square().sum().backward()
        for name, p in layer.named_parameters():
            torch.testing.assert_close(per_sample[name][i], p.grad)
    torch.testing.assert_close(vmap(layer)(x), layer(x))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")
def test_torch_compile_runs_and_matches_eager() -> None:
    torch.manual_seed(7)
    eager_layer = QuantumLayer(3, depth=1, entanglement="circular")
    layer = QuantumLayer(3, depth=1, entanglement="circular")
    layer.load_state_dict(eager_layer.state_dict())
    x = torch.rand(4, 5) * math.pi
    eager = eager_layer(x)
    eager.sum().backward()
    torch._dynamo.reset()
    compiled = torch.compile(layer)  # never run eagerly: programs are built while compiling
    with warnings.catch_warnings():
        # inductor generates no code for complex operators and says so; it falls back to aten
        warnings.filterwarnings("ignore", message=".*complex operators.*")
        out = compiled(x)
        out.sum().backward()
    torch.testing.assert_close(out, eager)
    torch.testing.assert_close(layer.weights.grad, eager_layer.weights.grad)
    # once built, the whole forward pass is a single graph
    explanation = torch._dynamo.explain(layer)(x)
    assert explanation.graph_count == 1 and explanation.graph_break_count == 0
