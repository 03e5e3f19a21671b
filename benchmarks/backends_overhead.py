"""What the ``qsim`` and ``lightning`` backends cost over the same libraries used directly.

RW (see PERF.md): n qubits, batch 32, RY(x_i) encoding, 4 layers of RY and RZ on every qubit then
a CNOT chain, <Z_i> on every qubit. Each Q-Store backend runs next to its library, same run, same
thread count:

* ``qsim``: ``QsimBackend`` vs ``qsimcirq.QSimSimulator.simulate_expectation_values_sweep`` over
  the 32 bindings of the same circuit (sympy symbols, one ``ParamResolver`` per binding). The
  gradient row of the raw library is the same parameter-shift sweep written by hand: every
  symbol shifted by +-pi/2, one sweep over all shifted resolvers.
* ``lightning``: ``LightningBackend`` vs a PennyLane QNode on ``lightning.qubit`` with parameter
  broadcasting, adjoint differentiation, with and without ``device_vjp`` (the faster counts).

``ratio`` is Q-Store's seconds over the library's: <= 1.10 means the wrapping costs at most 10 %.
Q-Store's gradient rows differentiate with respect to the inputs too (the framework layers need
them); the peers' only with respect to the weights. Times: median of >= ``--reps`` runs after a
warm-up; samples/s = 32 / seconds.

Run (bench environment): ``OMP_NUM_THREADS=1 hatch run bench:python benchmarks/backends_overhead.py
--qubits 8 16``
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from rw import BATCH, LAYERS, data, machine_meta, median_seconds, rw_circuit, write_json

from qstore.core.bench.workload import cirq_rw
from qstore.sim.lightning.bench import pennylane_lightning_case

Runner = Callable[[], object]


def threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS") or 1)


# -- Q-Store ---------------------------------------------------------------------------------------


def qstore_backend(backend: Any, n: int) -> tuple[Runner, Runner]:
    c = rw_circuit(n)[0]
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
        return backend.expectation(c, None, x, names=names, shared=shared)

    def fwd_grad() -> object:
        return backend.value_and_vjp(c, None, x, cot, names=names, shared=shared)

    return fwd, fwd_grad


def qstore_qsim(n: int) -> tuple[Runner, Runner]:
    from qstore.sim.qsim import QsimBackend

    return qstore_backend(QsimBackend(threads=threads()), n)


def qstore_lightning(n: int) -> tuple[Runner, Runner]:
    from qstore.sim.lightning import LightningBackend

    return qstore_backend(LightningBackend(), n)


def qstore_local(n: int) -> tuple[Runner, Runner]:
    from qstore.core.backends.local import LocalBackend

    return qstore_backend(LocalBackend(), n)


# -- the libraries used directly -------------------------------------------------------------------


def raw_qsimcirq(n: int) -> tuple[Runner, Runner]:
    import cirq
    import qsimcirq

    circuit, q, xs, ws = cirq_rw(n)
    observables = [cirq.Z(q[i]) for i in range(n)]
    symbols = xs + ws
    sim = qsimcirq.QSimSimulator(qsim_options={"t": threads()})
    x, w = data(n)
    table = np.concatenate([x, np.broadcast_to(w.reshape(-1), (BATCH, w.size))], axis=1)

    def sweep(rows: np.ndarray) -> np.ndarray:
        resolvers = [cirq.ParamResolver(dict(zip(symbols, r, strict=True))) for r in rows.tolist()]
        res = sim.simulate_expectation_values_sweep(circuit, observables, resolvers, qubit_order=q)
        return np.asarray(res).real

    def fwd() -> object:
        return sweep(table)

    def fwd_grad() -> object:
        # Two-term parameter shift of every symbol, all shifted bindings in one sweep.
        p = table.shape[1]
        shifted = np.broadcast_to(table, (2 * p + 1, *table.shape)).copy()
        for s in range(p):
            shifted[1 + 2 * s, :, s] += math.pi / 2
            shifted[2 + 2 * s, :, s] -= math.pi / 2
        e = sweep(shifted.reshape(-1, p)).reshape(2 * p + 1, BATCH, n).sum(axis=2)
        return e[0], 0.5 * (e[1::2] - e[2::2]).T

    return fwd, fwd_grad


def raw_pennylane(n: int, device_vjp: bool) -> tuple[Runner, Runner]:
    case = pennylane_lightning_case(n, device_vjp)
    assert case.forward_grad is not None
    return case.forward, case.forward_grad


# -- driver ----------------------------------------------------------------------------------------

PAIRS: list[tuple[str, Callable[[int], tuple[Runner, Runner]], list[tuple[str, Any]]]] = [
    ("qsim", qstore_qsim, [("qsimcirq sweep", raw_qsimcirq)]),
    (
        "lightning",
        qstore_lightning,
        [
            ("PennyLane QNode lightning.qubit adjoint", lambda n: raw_pennylane(n, False)),
            ("PennyLane QNode lightning.qubit device_vjp", lambda n: raw_pennylane(n, True)),
        ],
    ),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--qubits", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0, help="max seconds per measurement")
    ap.add_argument("--only", choices=["qsim", "lightning"], help="measure one backend only")
    ap.add_argument("--no-grad", action="store_true", help="forward pass only")
    ap.add_argument("--out", help="write JSON results here")
    args = ap.parse_args(argv)

    rows: list[dict[str, Any]] = []

    def measure(
        n: int, backend: str, name: str, make: Callable[[int], tuple[Runner, Runner]]
    ) -> None:
        try:
            fwd, fg = make(n)
        except ImportError as exc:
            print(f"  skip {name}: {exc}", file=sys.stderr)
            return
        row: dict[str, Any] = {"n": n, "backend": backend, "name": name}
        row["fwd_s"] = median_seconds(fwd, args.reps, args.budget)
        if not args.no_grad:
            row["fwd_grad_s"] = median_seconds(fg, args.reps, args.budget)
        rows.append(row)
        grad = f"  fwd+grad {BATCH / row['fwd_grad_s']:9.1f}" if "fwd_grad_s" in row else ""
        print(f"n={n:2d} {name:46s} fwd {BATCH / row['fwd_s']:9.1f}{grad} samples/s", flush=True)

    for n in args.qubits:
        for backend, ours, peers in PAIRS:
            if args.only and backend != args.only:
                continue
            measure(n, backend, f"qstore {backend}", ours)
            for name, make in peers:
                measure(n, backend, name, make)
        measure(n, "local", "qstore local (context)", qstore_local)

    print()
    print(
        "| n | backend | forward: ours / library (s) | ratio "
        "| fwd+grad: ours / library (s) | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for n in args.qubits:
        for backend, _, _ in PAIRS:
            mine = [r for r in rows if r["n"] == n and r["name"] == f"qstore {backend}"]
            libs = [r for r in rows if r["n"] == n and r["backend"] == backend and r not in mine]
            if not mine or not libs:
                continue
            cells = []
            for key in ("fwd_s", "fwd_grad_s"):
                if key not in mine[0]:
                    cells += ["-", "-"]
                    continue
                best = min(r[key] for r in libs)
                cells += [f"{mine[0][key]:.4f} / {best:.4f}", f"{mine[0][key] / best:.2f}"]
            print(f"| {n} | {backend} | {' | '.join(cells)} |")
    meta = machine_meta(simulator_threads=threads())
    write_json(args.out, meta, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
