"""The ``qstore`` command (also ``python -m qstore.core``)::

    qstore --version
    qstore backends [--json]      installed backends and their capabilities
    qstore demo [--qubits 8]      build, convert and simulate a small circuit
    qstore demo fashion-mnist     train the hybrid quantum classifier on Fashion-MNIST (with the
                                  trainer that qstore-tf or qstore-torch registers in the
                                  entry-point group ``qstore.demos``)
    qstore bench [SUITE...]       benchmarks against peer libraries (see qstore bench --help;
                                  distributions add contenders through ``qstore.bench``)
    qstore <command> ...          commands added by installed distributions (e.g. qstore ionq)

Other distributions add subcommands through the entry-point group ``qstore.cli``: each entry
point's name is the command and its object a function ``register(subparsers)`` that adds one
parser to the ``argparse`` sub-parsers and sets ``func`` with ``set_defaults(func=...)``, where
``func(args, out) -> int`` runs the command (``out`` is the text stream to print to)::

    [project.entry-points."qstore.cli"]
    ionq = "qstore.ionq.cli:register"

Exit status: 0 on success, 1 on an error (reported in one line, no traceback), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from qstore.core import __version__
from qstore.core.argtypes import int_at_least
from qstore.core.backends import registry
from qstore.core.backends.base import FloatArray
from qstore.core.bench import command as bench_command
from qstore.core.circuit import UnifiedCircuit
from qstore.core.demos import fashion_mnist
from qstore.core.errors import QStoreError

__all__ = ["CLI_ENTRY_POINT_GROUP", "DemoResult", "build_demo_circuit", "main", "run_demo"]

PROG = "qstore"
CLI_ENTRY_POINT_GROUP = "qstore.cli"
"""Entry-point group through which distributions add ``qstore`` subcommands."""

_log = logging.getLogger(__name__)


# -- qstore backends -------------------------------------------------------------------------
def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _backend_rows(infos: Sequence[registry.BackendInfo]) -> list[list[str]]:
    rows = []
    for inf in infos:
        caps = inf.capabilities
        modes = "-"
        grads = "-"
        max_q = "-"
        gpu = "-"
        if caps is not None:
            modes = "+".join(m for m, ok in (("exact", caps.exact), ("shots", caps.shots)) if ok)
            grads = ", ".join(caps.gradient_methods) or "none"
            max_q = str(caps.max_qubits)
            gpu = _yes_no(caps.gpu)
        rows.append(
            [
                ", ".join((inf.name, *inf.aliases)),
                inf.distribution or f"({inf.origin})",
                inf.version or "-",
                _yes_no(inf.available),
                max_q,
                modes or "-",
                grads,
                gpu,
            ]
        )
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, ["-" * w for w in widths], *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _not_installed() -> dict[str, list[str]]:
    by_dist: dict[str, list[str]] = {}
    for name, dist in registry.missing_plugins().items():
        by_dist.setdefault(dist, []).append(name)
    return by_dist


def cmd_backends(args: argparse.Namespace, out: TextIO) -> int:
    """List installed backends with distribution, version and capabilities."""
    infos = registry.all_info(refresh=True)
    missing = _not_installed()
    if args.json:
        data = {
            "backends": [i.as_dict() for i in infos],
            "not_installed": [
                {"names": names, "distribution": dist, "install": registry.install_hint(dist)}
                for dist, names in missing.items()
            ],
        }
        out.write(json.dumps(data, indent=2) + "\n")
        return 0
    header = ["name", "distribution", "version", "available", "max qubits", "exact/shots"]
    header += ["gradients", "GPU"]
    out.write(_table(header, _backend_rows(infos)) + "\n")
    for inf in infos:
        if not inf.available:
            out.write(f"\n{inf.name}: unavailable: {inf.reason}")
    if any(not i.available for i in infos):
        out.write("\n")
    if missing:
        out.write("\nNot installed:\n")
        for dist, names in missing.items():
            out.write(f"  {', '.join(names)}: {registry.install_hint(dist)}\n")
    return 0


# -- qstore demo -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` computed: bindings, exact ⟨Z_i⟩, counts, gradient and timings."""

    circuit: UnifiedCircuit
    backend: str
    theta: FloatArray
    expectations: FloatArray
    counts: Mapping[str, int]
    shots: int
    seed: int
    gradient: FloatArray
    conversions: Mapping[str, str] = field(default_factory=dict)
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    def top_counts(self, k: int = 5) -> list[tuple[str, int]]:
        """The ``k`` most frequent bitstrings (ties broken by bitstring)."""
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def build_demo_circuit(n_qubits: int = 8) -> UnifiedCircuit:
    """H on every qubit, a CNOT chain, then ``add_parameterized_layer('RY', 'theta')``."""
    circuit = UnifiedCircuit(n_qubits, name="demo")
    for q in range(n_qubits):
        circuit.add_gate("H", targets=[q])
    for q in range(n_qubits - 1):
        circuit.add_gate("CNOT", targets=[q, q + 1])
    return circuit.add_parameterized_layer("RY", "theta")


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = (time.perf_counter() - start) * 1e3


def _convert(
    label: str, module: str, extra: str, convert: Callable[[], str], timings: dict[str, float]
) -> str:
    if importlib.util.find_spec(module) is None:
        return f"not installed, skipped (pip install 'qstore-core[{extra}]')"
    try:
        with _timed(timings, f"import {module}"):
            importlib.import_module(module)
        with _timed(timings, f"to {label}"):
            return convert()
    except (QStoreError, ImportError) as exc:
        return f"conversion unavailable: {exc}"


def _cirq_summary(circuit: UnifiedCircuit) -> str:
    c = circuit.to_cirq()
    return (
        f"cirq.Circuit with {len(c.all_qubits())} qubits, "
        f"{sum(1 for _ in c.all_operations())} operations in {len(c)} moments"
    )


def _qiskit_summary(circuit: UnifiedCircuit) -> str:
    q = circuit.to_qiskit()
    return (
        f"qiskit QuantumCircuit with {q.num_qubits} qubits, {q.size()} gates, "
        f"depth {q.depth()}, {q.num_parameters} parameters"
    )


def run_demo(
    n_qubits: int = 8,
    shots: int = 1000,
    seed: int = 7,
    backend: str = "local",
    out: TextIO | None = None,
) -> DemoResult:
    """Build the demo circuit, convert it, simulate it and print what happened.

    The bindings ``theta`` are drawn from ``seed``; the shots are sampled with ``seed`` too, so
    two runs print the same numbers. Returns everything computed, for inspection.
    """
    out = sys.stdout if out is None else out
    timings: dict[str, float] = {}
    with _timed(timings, "build"):
        circuit = build_demo_circuit(n_qubits)
    sim = registry.get(backend)
    theta = np.random.default_rng(seed).uniform(-math.pi, math.pi, n_qubits)
    values = theta[None, :]
    conversions = {
        "Cirq": _convert("Cirq", "cirq", "cirq", lambda: _cirq_summary(circuit), timings),
        "Qiskit": _convert("Qiskit", "qiskit", "qiskit", lambda: _qiskit_summary(circuit), timings),
    }
    with _timed(timings, "exact"):
        z = np.asarray(sim.expectation(circuit, None, values), dtype=np.float64)[0]
    with _timed(timings, "shots"):
        idx = np.asarray(sim.sample(circuit, shots, values, seed=seed))[0]
    uniq, cnt = np.unique(idx, return_counts=True)
    counts = {format(int(u), f"0{n_qubits}b"): int(c) for u, c in zip(uniq, cnt, strict=True)}
    with _timed(timings, "gradient"):
        grad_values, _ = sim.vjp(circuit, None, values, np.ones((1, n_qubits)))
    gradient = np.asarray(grad_values, dtype=np.float64)[0]
    result = DemoResult(
        circuit, backend, theta, z, counts, shots, seed, gradient, conversions, timings
    )
    _print_demo(result, out)
    return result


def _print_demo(r: DemoResult, out: TextIO) -> None:
    n = r.circuit.n_qubits
    w = out.write
    w(f"Q-Store {__version__} demo: {n} qubits on backend {r.backend!r}\n\n")
    w("Circuit: H on every qubit, a CNOT chain, add_parameterized_layer('RY', 'theta')\n")
    w(f"{r.circuit}\n\n")
    for label, text in r.conversions.items():
        w(f"{label + ':':<8}{text}\n")
    w(f"\nBindings (seed {r.seed}):\n")
    for q in range(n):
        w(f"  theta_{q} = {r.theta[q]:+.6f}\n")
    w("\nExact expectations <Z_i>:\n")
    for q in range(n):
        w(f"  <Z_{q}> = {r.expectations[q]:+.6f}\n")
    # H then a CNOT chain leaves |+>^n unchanged; RY(t)|+> has <Z> = -sin(t).
    dev = float(np.max(np.abs(r.expectations + np.sin(r.theta))))
    w(f"  check: max |<Z_i> - (-sin theta_i)| = {dev:.1e}\n")
    w(f"\n{r.shots} shots (seed {r.seed}), top 5 bitstrings (qubit 0 first):\n")
    for bits, c in r.top_counts(5):
        w(f"  {bits}  {c}\n")
    w("\nAdjoint gradient of sum_i <Z_i> with respect to theta:\n")
    for q in range(n):
        w(f"  d/dtheta_{q} = {r.gradient[q]:+.6f}\n")
    dev = float(np.max(np.abs(r.gradient + np.cos(r.theta))))
    w(f"  check: max |gradient_i - (-cos theta_i)| = {dev:.1e}\n")
    times = ", ".join(f"{k} {v:.2f} ms" for k, v in r.timings_ms.items())
    w(f"\nTimings: {times}\n")


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """Run the demo named on the command line with its options."""
    if args.name == "circuit":
        run_demo(args.qubits, args.shots, 7 if args.seed is None else args.seed, args.backend, out)
        return 0
    config = fashion_mnist.DemoConfig(
        framework=args.framework,
        data_dir=args.data_dir,
        download=args.download,
        epochs=args.epochs,
        batch_size=args.batch_size,
        n_train=args.n_train,
        n_test=args.n_test,
        seed=0 if args.seed is None else args.seed,
        out_dir=args.out,
        progress=not args.no_progress,
        save=not args.no_save,
    )
    fashion_mnist.run_fashion_mnist_demo(config, out)
    return 0


# -- entry point -----------------------------------------------------------------------------
def _version() -> str:
    return f"{PROG} {__version__} (qstore-core, Python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``qstore`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Q-Store: quantum machine learning on every simulator and IonQ."
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "backends",
        help="list installed backends and their capabilities",
        description="List the installed backends (entry-point group 'qstore.backends'), with "
        "the distribution that provides each and what it can do.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_backends)

    p = sub.add_parser(
        "demo",
        help="run a demo: a circuit simulated (circuit) or a hybrid model trained (fashion-mnist)",
        description="circuit (the default): build an n-qubit circuit (H, CNOT chain, RY layer), "
        "convert it to Cirq and Qiskit when installed, and simulate it: exact <Z_i>, seeded "
        "shots, adjoint gradient. fashion-mnist: train the hybrid quantum classifier (PCA 64 -> "
        "Dense 32 -> AmplitudeEncoding(6) -> QuantumLayer(6, depth 4) -> <Z> x 6 -> Dense 128 "
        "-> Dense 10) on Fashion-MNIST with Keras (qstore-tf) or PyTorch (qstore-torch), print "
        "the test accuracy and wall time, and save the model and its learning curves. The "
        "framework's distribution provides the model and its training loop (entry-point group "
        "'qstore.demos').",
    )
    p.add_argument(
        "name",
        nargs="?",
        choices=("circuit", "fashion-mnist"),
        default="circuit",
        help="which demo (default circuit)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="random seed (default 7 for circuit, 0 otherwise)"
    )
    g = p.add_argument_group("circuit")
    g.add_argument("--qubits", type=int_at_least(1), default=8, help="qubits (default 8)")
    g.add_argument("--shots", type=int_at_least(1), default=1000, help="shots (default 1000)")
    g.add_argument("--backend", default="local", help="backend name (default local)")
    g = p.add_argument_group("fashion-mnist")
    g.add_argument(
        "--framework",
        choices=fashion_mnist.frameworks(),
        default="keras",
        help="Keras (qstore-tf, the default) or PyTorch (qstore-torch); other installed "
        "distributions may add theirs",
    )
    g.add_argument(
        "--data-dir",
        metavar="DIR",
        help="directory with the four IDX gzip files; default: search $QSTORE_DATA_DIR, "
        "~/.keras/datasets/fashion-mnist, ~/.cache/qstore/datasets/fashion-mnist, "
        "/usr/share/datasets/fashion-mnist",
    )
    g.add_argument(
        "--download",
        action="store_true",
        help="download the official files (MD5-verified; from $QSTORE_FASHION_MNIST_URL when "
        "set) when they are not found",
    )
    g.add_argument("--epochs", type=int_at_least(1), default=3, help="epochs (default 3)")
    g.add_argument("--batch-size", type=int_at_least(1), default=32, help="batch size (default 32)")
    g.add_argument(
        "--n-train",
        type=int_at_least(10),
        metavar="N",
        help="train on a random subset of N training images (default all 60000)",
    )
    g.add_argument(
        "--n-test",
        type=int_at_least(10),
        metavar="N",
        help="test on a random subset of N test images (default all 10000)",
    )
    g.add_argument(
        "--out",
        metavar="DIR",
        default="qstore-demo-fashion-mnist",
        help="where the model, learning curves and summary go "
        "(default ./qstore-demo-fashion-mnist)",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-save", action="store_true", help="save nothing")
    p.set_defaults(func=cmd_demo)

    bench_command.add_parser(sub)
    importlib.import_module("qstore.core.stores._cli").register(sub)
    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Let every installed distribution add its subcommands (group ``qstore.cli``).

    A plugin whose command cannot be loaded is skipped with a warning naming it and the cause,
    so one broken distribution cannot take the whole ``qstore`` command down.
    """
    taken = set(sub.choices)
    for ep in sorted(
        importlib.metadata.entry_points(group=CLI_ENTRY_POINT_GROUP), key=lambda e: e.name
    ):
        if ep.name in taken:
            _log.warning("qstore.cli entry point %r ignored: the command exists already", ep.value)
            continue
        try:
            register = ep.load()
            register(sub)
        except Exception as exc:  # a broken plugin must not break the command line
            dist = ep.dist.name if ep.dist is not None else "?"
            sys.stderr.write(
                f"{PROG}: warning: command {ep.name!r} of {dist} could not be loaded "
                f"({type(exc).__name__}: {exc}); reinstall {dist} to use it\n"
            )
            continue
        taken.add(ep.name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``qstore`` command with ``argv`` (default ``sys.argv[1:]``); returns the status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{PROG}: error: a command is required (see {PROG} --help)\n")
        return 2
    func: Callable[[argparse.Namespace, TextIO], int] = args.func
    try:
        return func(args, sys.stdout)
    except QStoreError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:  # e.g. `qstore backends | head -1`
        _silence_stdout()
        return 1


def _silence_stdout() -> None:
    # Python would report the broken pipe again when flushing stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
