"""Reference workload (RW): now the ``rw`` suite of ``qstore bench``; this script forwards to it.

    python benchmarks/rw.py --qubits 8 16         same as: qstore bench rw --qubits 8 16

The workload, the contenders and the timing live in ``qstore.core.bench`` (``workload.py``,
``suites/rw.py``, ``harness.py``). The names below stay importable for the scripts that share
RW's data and timing, and the helpers those scripts share: timing a list of contenders, the
ratio table and the JSON record (``benchmarks/torch_layers.py``, ``tf_layers.py``,
``backends_overhead.py``).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from qstore.core.bench.harness import measure
from qstore.core.bench.workload import BATCH, LAYERS, rw_circuit, rw_data
from qstore.core.cli import main as qstore_main

__all__ = [
    "BATCH",
    "LAYERS",
    "data",
    "machine_meta",
    "main",
    "median_seconds",
    "print_ratio_table",
    "rw_circuit",
    "time_contenders",
    "write_json",
]

Pair = tuple[Callable[[], object], Callable[[], object]]


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RW features ``[32, n]`` and weights ``[4, n, 2]``."""
    return rw_data(n, seed=seed)


def median_seconds(fn: Callable[[], object], reps: int, budget_s: float) -> float:
    """Median seconds of ``fn()`` after a warm-up (at least ``reps`` calls, within the budget)."""
    return measure(fn, reps=reps, budget_s=budget_s, min_time_s=0.0).median_s


def time_contenders(
    qubits: Sequence[int],
    contenders: Sequence[tuple[str, Callable[[int], Pair]]],
    reps: int,
    budget_s: float,
    skip: tuple[type[BaseException], ...] = (ImportError,),
    before: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Samples/s of every contender's ``(forward, forward + gradient)`` at every size, printed
    as they come; a contender whose set-up raises one of ``skip`` is left out with a note."""
    results: list[dict[str, Any]] = []
    width = max((len(name) for name, _ in contenders), default=0)
    for n in qubits:
        if before is not None:
            before(n)
        for name, make in contenders:
            try:
                fwd, fg = make(n)
            except skip as exc:
                print(f"  skip {name}: {type(exc).__name__}: {exc}"[:200], file=sys.stderr)
                continue
            t_fwd = median_seconds(fwd, reps, budget_s)
            t_grad = median_seconds(fg, reps, budget_s)
            row = {"n": n, "name": name, "fwd": BATCH / t_fwd, "fwd_grad": BATCH / t_grad}
            results.append(row)
            print(
                f"n={n:2d} {name:{width}s} fwd {row['fwd']:10.1f}  "
                f"fwd+grad {row['fwd_grad']:10.1f} samples/s",
                flush=True,
            )
    return results


def print_ratio_table(results: Sequence[dict[str, Any]], peer_prefix: str, peer_label: str) -> None:
    """Markdown table of ``time_contenders``' results with ratios against the best contender
    whose name starts with ``peer_prefix``, size by size."""
    print()
    print(
        "| n | contender | forward (samples/s) | forward + gradient (samples/s) "
        f"| fwd vs {peer_label} | fwd+grad vs {peer_label} |"
    )
    print("|---|---|---|---|---|---|")
    for n in sorted({r["n"] for r in results}):
        rows = [r for r in results if r["n"] == n]
        peers = [r for r in rows if r["name"].startswith(peer_prefix)]
        best_f = max((r["fwd"] for r in peers), default=None)
        best_g = max((r["fwd_grad"] for r in peers), default=None)
        for r in rows:
            rf = f"{r['fwd'] / best_f:.2f}x" if best_f else "-"
            rg = f"{r['fwd_grad'] / best_g:.2f}x" if best_g else "-"
            print(f"| {n} | {r['name']} | {r['fwd']:.1f} | {r['fwd_grad']:.1f} | {rf} | {rg} |")


def machine_meta(**extra: Any) -> dict[str, Any]:
    """Date, machine, CPUs, thread variables and Python version, plus ``extra``."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        },
        "python": platform.python_version(),
        **extra,
    }


def write_json(path: str | None, meta: dict[str, Any], results: Sequence[dict[str, Any]]) -> None:
    """``{"meta": ..., "results": ...}`` to ``path`` (nothing when it is ``None``)."""
    if path:
        with open(path, "w") as fh:
            json.dump({"meta": meta, "results": list(results)}, fh, indent=2)


def main(argv: list[str] | None = None) -> int:
    return qstore_main(["bench", "rw", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
