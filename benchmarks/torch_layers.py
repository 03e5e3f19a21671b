"""Reference workload (RW) through PyTorch layers: ``qstore.torch.QuantumLayer`` next to
PennyLane's ``qml.qnn.TorchLayer``, same run.

RW (see PERF.md): n qubits, batch 32, features x ~ U[0, π] of shape [32, n], RY(x_i) encoding,
4 layers of RY and RZ on every qubit then a CNOT chain, <Z_i> on every qubit, loss = sum of
outputs. ``QuantumLayer(n, depth=4)`` with n features is exactly this circuit. Figures are
samples/s = 32 / median seconds of one batch (>= ``--reps`` timed repetitions after a warm-up),
for the forward pass (``torch.no_grad``) and for forward + ``loss.backward()`` (gradient with
respect to the weights), each through the ``nn.Module``.

Contenders: Q-Store ``backend='torch'`` (float32 and float64), Q-Store ``backend='local'``
(the NumPy engine behind the autograd Function, adjoint VJP); PennyLane ``TorchLayer`` on
``lightning.qubit`` with adjoint differentiation (with and without ``device_vjp``) and on
``default.qubit`` with torch backprop, both broadcasting over the batch.

Run (bench environment): ``OMP_NUM_THREADS=1 hatch run bench:python benchmarks/torch_layers.py``
``--profile`` also prints where Q-Store's torch step spends its time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rw import (
    LAYERS,
    data,
    machine_meta,
    print_ratio_table,
    time_contenders,
    write_json,
)

from qstore.sim.lightning.bench import pennylane_rw_circuit
from qstore.torch.bench import torch_steps

Pair = tuple[Callable[[], object], Callable[[], object]]


def _steps(layer: Any, x: Any) -> Pair:
    case = torch_steps(layer, x)
    assert case.forward_grad is not None
    return case.forward, case.forward_grad


def qstore_layer(n: int, backend: str, double: bool) -> Pair:
    import torch

    from qstore.torch import QuantumLayer

    x0, w0 = data(n)
    layer = QuantumLayer(n_qubits=n, depth=LAYERS, backend=backend)
    dtype = torch.float64 if double else torch.float32
    layer = layer.to(dtype)
    with torch.no_grad():
        layer.weights.copy_(torch.as_tensor(w0))
    return _steps(layer, torch.as_tensor(x0, dtype=dtype))


def _rw_qnode(n: int, device: str, **qnode_options: Any) -> Any:
    import pennylane as qml

    dev = qml.device(device, wires=n)
    return qml.qnode(dev, interface="torch", **qnode_options)(pennylane_rw_circuit(n))


def pennylane_layer(n: int, device: str, diff_method: str, device_vjp: bool = False) -> Pair:
    import pennylane as qml
    import torch

    options: dict[str, Any] = {"diff_method": diff_method}
    if device_vjp:
        options["device_vjp"] = True
    x0, w0 = data(n)
    layer = qml.qnn.TorchLayer(_rw_qnode(n, device, **options), {"weights": (LAYERS, n, 2)})
    layer = layer.double()
    with torch.no_grad():
        layer.weights.copy_(torch.as_tensor(w0))
    return _steps(layer, torch.as_tensor(x0))


def check_agreement(n: int) -> float:
    """Largest difference between Q-Store's and PennyLane's outputs (same weights, inputs)."""
    import torch

    from qstore.torch import QuantumLayer

    x0, w0 = data(n)
    ours = QuantumLayer(n_qubits=n, depth=LAYERS).double()
    with torch.no_grad():
        ours.weights.copy_(torch.as_tensor(w0))
        a = ours(torch.as_tensor(x0))
    circuit = _rw_qnode(n, "default.qubit")
    b = torch.stack(circuit(inputs=torch.as_tensor(x0), weights=torch.as_tensor(w0)), dim=-1)
    return float((a - b).abs().max())


def profile(n: int) -> None:
    """Top operators of Q-Store's torch forward + backward (what the time is spent on)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    _, step = qstore_layer(n, "torch", double=False)
    for _ in range(3):
        step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            step()
    print(f"\nProfile, n={n}, 10 steps of forward + backward (backend='torch', float32):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--qubits", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=20.0, help="max seconds per measurement")
    ap.add_argument("--out", help="write JSON results here")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)

    import torch

    contenders: list[tuple[str, Callable[[int], Pair]]] = [
        ("qstore torch float32", lambda n: qstore_layer(n, "torch", False)),
        ("qstore torch float64", lambda n: qstore_layer(n, "torch", True)),
        ("qstore local (autograd.Function, adjoint)", lambda n: qstore_layer(n, "local", False)),
    ]
    if not args.no_peers:
        contenders += [
            (
                "pennylane TorchLayer lightning.qubit adjoint",
                lambda n: pennylane_layer(n, "lightning.qubit", "adjoint"),
            ),
            (
                "pennylane TorchLayer lightning.qubit adjoint device_vjp",
                lambda n: pennylane_layer(n, "lightning.qubit", "adjoint", True),
            ),
            (
                "pennylane TorchLayer default.qubit backprop",
                lambda n: pennylane_layer(n, "default.qubit", "backprop"),
            ),
        ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)", flush=True)

    def agreement(n: int) -> None:
        if not args.no_peers:
            print(f"n={n:2d} max |qstore - pennylane| = {check_agreement(n):.2e}", flush=True)

    results = time_contenders(args.qubits, contenders, args.reps, args.budget, before=agreement)
    print_ratio_table(results, "pennylane", "best peer")
    if args.profile:
        for n in args.qubits:
            profile(n)
    meta = machine_meta(torch_threads=torch.get_num_threads(), torch=torch.__version__)
    write_json(args.out, meta, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
