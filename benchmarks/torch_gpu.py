"""qstore.torch on a GPU: the one-node adjoint (``TorchOps`` on CUDA) against the CPU path, and
its speed against autograd op by op on the reference workload (batch 32, forward + gradient).

Needs only torch with CUDA and NumPy: from the repository root,

    PYTHONPATH=packages/qstore-core/src:packages/qstore-torch/src python benchmarks/torch_gpu.py

Prints the largest output and gradient differences (float64) between the GPU and the CPU, then
samples/s per register size and mode, and writes them to ``$OUT/torch_gpu.json`` (or /tmp).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from typing import Any

import numpy as np
import torch

import qstore.torch as qt
from qstore.torch import engine


def agreement(results: dict[str, Any]) -> None:
    """The same layer and weights on the CPU (NumPy adjoint) and the GPU (TorchOps adjoint)."""
    for n in (4, 8, 12):
        torch.manual_seed(0)
        cpu = qt.QuantumLayer(n_qubits=n, depth=3).double()
        x = torch.rand(16, n, dtype=torch.float64) * 3
        out = cpu(x)
        out.pow(2).sum().backward()
        gpu = qt.QuantumLayer(n_qubits=n, depth=3).double().cuda()
        gpu.load_state_dict(cpu.state_dict())
        xg = x.cuda().requires_grad_(True)
        og = gpu(xg)
        og.pow(2).sum().backward()
        assert cpu.weights.grad is not None and gpu.weights.grad is not None
        d_out = (og.detach().cpu() - out.detach()).abs().max().item()
        d_grad = (gpu.weights.grad.cpu() - cpu.weights.grad).abs().max().item()
        results[f"n{n}_max_diff_out"] = d_out
        results[f"n{n}_max_diff_grad"] = d_grad
        print(f"n={n}: max |out diff| {d_out:.1e}, max |grad diff| {d_grad:.1e}")


def speed(results: dict[str, Any]) -> None:
    """Forward + gradient samples/s, adjoint node vs autograd op by op."""
    for n in (16, 20, 22):
        layer = qt.QuantumLayer(n_qubits=n, depth=4).cuda()
        x = torch.rand(32, n, device="cuda") * 3

        def step(layer: Any = layer, x: torch.Tensor = x) -> None:
            layer(x).sum().backward()

        for mode in ("adjoint", "autograd"):
            importlib.reload(engine)
            engine.DEVICE_ADJOINT_MAX_QUBITS = 64 if mode == "adjoint" else 0
            step()
            torch.cuda.synchronize()
            times = []
            for _ in range(5):
                start = time.perf_counter()
                step()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            rate = 32 / float(np.median(times))
            peak = torch.cuda.max_memory_allocated() / 2**30
            results[f"n{n}_{mode}_samples_per_s"] = rate
            print(f"n={n} {mode}: {rate:.1f} samples/s, peak memory {peak:.2f} GiB")
            torch.cuda.reset_peak_memory_stats()


def main() -> None:
    print("torch", torch.__version__, "device", torch.cuda.get_device_name(0))
    results: dict[str, Any] = {}
    agreement(results)
    speed(results)
    path = os.path.join(os.environ.get("OUT", "/tmp"), "torch_gpu.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
