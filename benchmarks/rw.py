"""Reference workload (RW) on the engine: Q-Store ``local`` next to PennyLane, same run.

RW (see PERF.md): n qubits, batch 32, RY(x_i) encoding, 4 layers of RY and RZ on every qubit then
a CNOT chain, <Z_i> on every qubit, loss = sum of outputs. Figures are samples/s = 32 / median
seconds of one batch (>= ``--reps`` timed repetitions after a warm-up), for the forward pass and
for forward + gradient with respect to the weights.

Run (bench environment): ``hatch run bench:python benchmarks/rw.py --qubits 8 16``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np

BATCH = 32
LAYERS = 4


def rw_circuit(n: int, layers: int = LAYERS) -> Any:
    import qstore.core as qc

    c = qc.UnifiedCircuit(n, name=f"rw{n}")
    for i in range(n):
        c.add_gate("RY", i, f"x_{i}")
    for layer in range(layers):
        for i in range(n):
            c.add_gate("RY", i, f"w_{layer}_{i}_0")
            c.add_gate("RZ", i, f"w_{layer}_{i}_1")
        for i in range(n - 1):
            c.add_gate("CNOT", [i, i + 1])
    return c


def median_seconds(fn: Callable[[], object], reps: int, budget_s: float) -> float:
    fn()  # warm-up (compilation, caches)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < reps or (time.perf_counter() - start < budget_s and len(times) < 3 * reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s and len(times) >= 1:
            break
    return statistics.median(times)


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, np.pi, (BATCH, n))
    w = rng.uniform(0.0, 2 * np.pi, (LAYERS, n, 2))
    return x, w


def qstore_local(n: int, dtype: str) -> tuple[Callable[[], object], Callable[[], object]]:
    from qstore.core.backends.local import LocalBackend

    c = rw_circuit(n)
    be = LocalBackend(dtype=dtype)
    x, w = data(n)
    names = [f"x_{i}" for i in range(n)]
    shared = {
        f"w_{layer}_{i}_{k}": float(w[layer, i, k])
        for layer in range(LAYERS)
        for i in range(n)
        for k in range(2)
    }
    cot = np.ones((BATCH, n))

    def fwd() -> object:
        return be.expectation(c, None, x, names=names, shared=shared).sum()

    def fwd_grad() -> object:
        return be.value_and_vjp(c, None, x, cot, names=names, shared=shared)

    return fwd, fwd_grad


def pennylane_lightning(
    n: int, device_vjp: bool
) -> tuple[Callable[[], object], Callable[[], object]]:
    import pennylane as qml
    from pennylane import numpy as pnp

    dev = qml.device("lightning.qubit", wires=n)
    x, w0 = data(n)
    xs = pnp.array(x, requires_grad=False)
    w = pnp.array(w0, requires_grad=True)

    @qml.qnode(dev, diff_method="adjoint", device_vjp=device_vjp)
    def circuit(weights: Any, inputs: Any) -> Any:
        for i in range(n):
            qml.RY(inputs[:, i], wires=i)
        for layer in range(LAYERS):
            for i in range(n):
                qml.RY(weights[layer, i, 0], wires=i)
                qml.RZ(weights[layer, i, 1], wires=i)
            for i in range(n - 1):
                qml.CNOT(wires=[i, i + 1])
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    def loss(weights: Any) -> Any:
        return pnp.sum(pnp.stack(circuit(weights, xs)))

    grad = qml.grad(loss)
    return (lambda: loss(w)), (lambda: grad(w))


def pennylane_default_torch(n: int) -> tuple[Callable[[], object], Callable[[], object]]:
    import pennylane as qml
    import torch

    dev = qml.device("default.qubit", wires=n)
    x, w0 = data(n)
    xt = torch.tensor(x)
    w = torch.tensor(w0, requires_grad=True)

    @qml.qnode(dev, interface="torch", diff_method="backprop")
    def circuit(weights: Any, inputs: Any) -> Any:
        for i in range(n):
            qml.RY(inputs[:, i], wires=i)
        for layer in range(LAYERS):
            for i in range(n):
                qml.RY(weights[layer, i, 0], wires=i)
                qml.RZ(weights[layer, i, 1], wires=i)
            for i in range(n - 1):
                qml.CNOT(wires=[i, i + 1])
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    def fwd() -> object:
        with torch.no_grad():
            return torch.stack(circuit(w, xt)).sum()

    def fwd_grad() -> object:
        w.grad = None
        loss = torch.stack(circuit(w, xt)).sum()
        loss.backward()
        return w.grad

    return fwd, fwd_grad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--qubits", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=20.0, help="max seconds per measurement")
    ap.add_argument("--out", help="write JSON results here")
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args(argv)

    contenders: list[
        tuple[str, Callable[[int], tuple[Callable[[], object], Callable[[], object]]]]
    ] = [
        ("qstore local complex128", lambda n: qstore_local(n, "complex128")),
        ("qstore local complex64", lambda n: qstore_local(n, "complex64")),
    ]
    if not args.no_peers:
        contenders += [
            ("pennylane lightning.qubit adjoint", lambda n: pennylane_lightning(n, False)),
            (
                "pennylane lightning.qubit adjoint device_vjp",
                lambda n: pennylane_lightning(n, True),
            ),
            ("pennylane default.qubit torch backprop", pennylane_default_torch),
        ]
    results: list[dict[str, Any]] = []
    for n in args.qubits:
        for name, make in contenders:
            try:
                fwd, fg = make(n)
            except ImportError as exc:
                print(f"  skip {name}: {exc}", file=sys.stderr)
                continue
            tf = median_seconds(fwd, args.reps, args.budget)
            tg = median_seconds(fg, args.reps, args.budget)
            row = {"n": n, "name": name, "fwd": BATCH / tf, "fwd_grad": BATCH / tg}
            results.append(row)
            print(
                f"n={n:2d} {name:48s} fwd {row['fwd']:10.1f}  "
                f"fwd+grad {row['fwd_grad']:10.1f} samples/s",
                flush=True,
            )
    print()
    print(
        "| n | contender | forward (samples/s) | forward + gradient (samples/s) "
        "| fwd+grad vs best PennyLane |"
    )
    print("|---|---|---|---|---|")
    for n in args.qubits:
        rows = [r for r in results if r["n"] == n]
        peers = [r for r in rows if r["name"].startswith("pennylane")]
        best = max((r["fwd_grad"] for r in peers), default=None)
        for r in rows:
            ratio = f"{r['fwd_grad'] / best:.1f}x" if best else "-"
            print(f"| {n} | {r['name']} | {r['fwd']:.1f} | {r['fwd_grad']:.1f} | {ratio} |")
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        },
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"meta": meta, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
