"""``qstore bench``: run benchmark suites, or merge result files into one report::

    qstore bench [SUITE...] [--quick] [--out DIR] [--contenders PAT...] [--qubits N...]
                 [--threads N...] [--reps N] [--budget S] [--max-call S] [--data-dir DIR]
                 [--plugins NAME... | --no-plugins]
    qstore bench report DIR...   merge the JSON files in DIR (from several environments)

Suites: ``rw``, ``circuits``, ``fashion-mnist`` (default: all). Contenders that need a framework
or a peer library come from the installed distributions (entry-point group ``qstore.bench``, see
:mod:`qstore.core.bench.plugins`). With ``--threads``, each setting runs in a child process whose
``OMP_NUM_THREADS`` (and the BLAS, torch and TensorFlow equivalents) is set before any library
starts its thread pools.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import TextIO

from qstore.core.argtypes import positive_float, positive_int
from qstore.core.bench import plugins
from qstore.core.bench.harness import THREAD_VARIABLES, BenchError
from qstore.core.bench.report import write_report
from qstore.core.bench.runner import SUITES, Options, run_suites

__all__ = ["DEFAULT_OUT", "add_parser", "cmd_bench"]

DEFAULT_OUT = os.path.join("benchmarks", "results")

_EPILOG = f"""\
suites: {", ".join(SUITES)} (default: all of them)

examples:
  qstore bench --quick                       all suites, small sizes (a few minutes)
  qstore bench rw --qubits 8 16 --threads 1 2
  qstore bench rw --contenders local pennylane
  qstore bench rw --plugins torch qsim       only these distributions' contenders (and core's)
  qstore bench rw --no-plugins               qstore-core's backends only (no framework imported)
  qstore bench report benchmarks/results     merge JSON from several environments

Results: one JSON file per suite, environment and thread setting in --out, then report.md and
PNG plots there, merged from every JSON file in that directory.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` command to the ``qstore`` command's subparsers."""
    p = sub.add_parser(
        "bench",
        help="run benchmarks against peer libraries (or merge results: bench report DIR)",
        description="Time Q-Store against its peers (PennyLane, qsimcirq, TensorFlow Quantum) "
        "and write JSON results, a Markdown report with ratios, and plots. The framework layers "
        "and the peers are contributed by the installed distributions (qstore-tf, qstore-torch, "
        "qstore-sim-qsim, qstore-sim-lightning).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "items",
        nargs="*",
        metavar="SUITE",
        help=f"suites to run ({', '.join(SUITES)}); or 'report DIR...' to merge result files",
    )
    p.add_argument("--quick", action="store_true", help="small sizes, few repetitions, subsets")
    p.add_argument("--out", default=None, help=f"results directory (default {DEFAULT_OUT})")
    p.add_argument(
        "--contenders",
        nargs="+",
        default=[],
        metavar="PAT",
        help="only contenders whose name contains (or glob-matches) one of these",
    )
    p.add_argument(
        "--qubits", nargs="+", type=positive_int, default=[], metavar="N", help="RW sizes"
    )
    p.add_argument(
        "--threads",
        nargs="+",
        type=positive_int,
        default=[],
        metavar="N",
        help="thread settings, each run in its own process (default: as the environment says)",
    )
    p.add_argument("--reps", type=positive_int, default=None, help="timed repetitions")
    p.add_argument(
        "--budget", type=positive_float, default=None, help="seconds per figure, at most"
    )
    p.add_argument(
        "--max-call",
        type=positive_float,
        default=None,
        help="skip sizes where one call is predicted to take longer than this (seconds)",
    )
    p.add_argument("--epochs", type=positive_int, default=None, help="Fashion-MNIST epochs")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST directory (IDX files)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--plugins",
        nargs="+",
        default=None,
        metavar="NAME",
        help="add only these distributions' contenders (entry-point names of the group "
        "qstore.bench: tf, torch, qsim, lightning, ...; default: every installed one)",
    )
    which.add_argument(
        "--no-plugins",
        action="store_true",
        help="only qstore-core's contenders and the installed backends: load no distribution's "
        "contenders, hence import no framework",
    )
    p.set_defaults(func=cmd_bench)


def _child_argv(args: argparse.Namespace, threads: int) -> list[str]:
    argv = [sys.executable, "-m", "qstore.core", "bench", *args.items, "--threads", str(threads)]
    if args.quick:
        argv.append("--quick")
    if args.no_plugins:
        argv.append("--no-plugins")
    if args.plugins:
        argv += ["--plugins", *args.plugins]
    if args.out:
        argv += ["--out", args.out]
    for flag, values in (("--contenders", args.contenders), ("--qubits", args.qubits)):
        if values:
            argv += [flag, *map(str, values)]
    for flag, value in (
        ("--reps", args.reps),
        ("--budget", args.budget),
        ("--max-call", args.max_call),
        ("--epochs", args.epochs),
        ("--data-dir", args.data_dir),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def _run_with_threads(args: argparse.Namespace, out: TextIO) -> int:
    status = 0
    for threads in args.threads:
        env = dict(os.environ)
        env.update({k: str(threads) for k in THREAD_VARIABLES})
        env["TF_NUM_INTEROP_THREADS"] = str(min(threads, 2))
        out.write(f"-- {threads} thread(s) --\n")
        out.flush()
        status = max(status, subprocess.call(_child_argv(args, threads), env=env))
    return status


def cmd_bench(args: argparse.Namespace, out: TextIO) -> int:
    """Run the suites (or ``report``) as the command line says."""
    items: list[str] = list(args.items)
    if items and items[0] == "report":
        dirs = items[1:] or [args.out or DEFAULT_OUT]
        path, notes = write_report(dirs, args.out)
        for note in notes:
            out.write(note + "\n")
        out.write(f"report: {path}\n")
        return 0
    unknown = [s for s in items if s not in SUITES]
    if unknown:
        raise BenchError(
            f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)} (or 'report DIR')."
        )
    if args.plugins:
        known = plugins.installed()
        unknown = [name for name in args.plugins if name not in known]
        if unknown:
            raise BenchError(
                f"--plugins {' '.join(unknown)}: no installed distribution adds contenders under "
                f"that name; installed: {', '.join(known) or 'none'}."
            )
    here = os.environ.get("OMP_NUM_THREADS")
    if args.threads and (len(args.threads) > 1 or here != str(args.threads[0])):
        return _run_with_threads(args, out)
    options = Options(
        quick=args.quick,
        qubits=tuple(args.qubits),
        contenders=tuple(args.contenders),
        reps=args.reps,
        budget_s=args.budget,
        max_call_s=args.max_call,
        data_dir=args.data_dir,
        extra={"epochs": args.epochs} if args.epochs else {},
        plugins=() if args.no_plugins else (None if args.plugins is None else tuple(args.plugins)),
    )
    run_suites(items, options, args.out or DEFAULT_OUT, out)
    return 0
