"""``qstore ionq ...``: the emulator server, targets and queue state, cost estimates, jobs.

    qstore ionq emulator [--host 127.0.0.1] [--port 8765] [--queue-delay S] [--fault-... P]
    qstore ionq backends [--json] [--offline]
    qstore ionq estimate --target qpu.aria-1 --shots 1000 (--circuit FILE | --1q N --2q M)
    qstore ionq jobs [--limit 20] [--status completed]

Registered through the ``qstore.cli`` entry point ``ionq = "qstore.ionq.cli:register"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any, TextIO

from qstore.core.circuit import UnifiedCircuit
from qstore.ionq.client import IonQClient
from qstore.ionq.compiler import IonQNativeCompiler
from qstore.ionq.errors import IonQConfigError
from qstore.ionq.targets import PRICES, TARGETS, get_target

__all__ = ["register"]


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, got {text!r}") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability is in [0, 1], got {p}")
    return p


def _seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if s < 0:
        raise argparse.ArgumentTypeError(f"seconds must be >= 0, got {s}")
    return s


def register(subparsers: Any) -> None:
    """Add the ``ionq`` command to the ``qstore`` command line."""
    p = subparsers.add_parser(
        "ionq",
        help="IonQ: API emulator, targets and queues, cost estimates, jobs",
        description="IonQ tools. The API is found at $IONQ_API_URL (default IonQ's cloud); the "
        "key in $IONQ_API_KEY.",
    )
    sub = p.add_subparsers(dest="ionq_command", metavar="SUBCOMMAND")
    p.set_defaults(func=_usage(p))

    e = sub.add_parser(
        "emulator",
        help="run the local IonQ API emulator (uvicorn)",
        description="Serve the IonQ API emulator; clients use it with "
        "IONQ_API_URL=http://HOST:PORT/v0.4. Fault probabilities are per request.",
    )
    e.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    e.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    e.add_argument("--queue-delay", type=_seconds, default=0.0, help="seconds jobs wait queued")
    e.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only this key (repeatable; default: any non-empty key)",
    )
    e.add_argument("--seed", type=int, default=None, help="seed for faults and sampling")
    for kind, what in (
        ("rate-limit", "429 with Retry-After"),
        ("server-error", "500/502/503"),
        ("lost-response", "processed, then 504"),
        ("slow-response", "processed, answered after --slow-seconds"),
        ("job-failure", "jobs that end failed"),
    ):
        e.add_argument(f"--fault-{kind}", type=_probability, default=0.0, metavar="P", help=what)
    e.add_argument("--retry-after", type=_seconds, default=1.0, help="Retry-After of 429s")
    e.add_argument("--slow-seconds", type=_seconds, default=5.0, help="delay of slow responses")
    e.set_defaults(func=_cmd_emulator)

    b = sub.add_parser("backends", help="IonQ targets: status, qubits, queue, prices")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.add_argument("--offline", action="store_true", help="known targets and prices only")
    b.set_defaults(func=_cmd_backends)

    s = sub.add_parser(
        "estimate",
        help="cost of a job from the price table (and the API's estimate with --online)",
    )
    s.add_argument("--target", default="qpu.aria-1", help="target (default qpu.aria-1)")
    s.add_argument("--shots", type=int, default=1000, help="shots (default 1000)")
    s.add_argument(
        "--circuit", type=Path, help="a circuit in Q-Store JSON (UnifiedCircuit.to_json)"
    )
    s.add_argument("--1q", dest="n_1q", type=int, default=0, help="one-qubit gates")
    s.add_argument("--2q", dest="n_2q", type=int, default=0, help="two-qubit gates")
    s.add_argument("--qubits", type=int, default=1, help="qubits (with --1q/--2q)")
    s.add_argument("--online", action="store_true", help="also ask GET /jobs/estimate")
    s.set_defaults(func=_cmd_estimate)

    j = sub.add_parser("jobs", help="list recent jobs of the account")
    j.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    j.add_argument("--status", default=None, help="only jobs with this status")
    j.set_defaults(func=_cmd_jobs)


def _usage(parser: argparse.ArgumentParser) -> Any:
    def run(args: argparse.Namespace, out: TextIO) -> int:
        parser.print_help(out)
        return 2

    return run


def _cmd_emulator(args: argparse.Namespace, out: TextIO) -> int:
    from qstore.ionq.testing import Faults, serve

    faults = Faults(
        rate_limit=args.fault_rate_limit,
        server_error=args.fault_server_error,
        lost_response=args.fault_lost_response,
        slow_response=args.fault_slow_response,
        job_failure=args.fault_job_failure,
        retry_after=args.retry_after,
        slow_seconds=args.slow_seconds,
    )
    out.write(
        f"IonQ API emulator on http://{args.host}:{args.port}/v0.4\n"
        f"  export IONQ_API_URL=http://{args.host}:{args.port}/v0.4\n"
    )
    out.flush()
    serve(
        args.host,
        args.port,
        api_keys=args.api_keys,
        queue_delay=args.queue_delay,
        faults=faults,
        seed=args.seed,
    )
    return 0


def _cmd_backends(args: argparse.Namespace, out: TextIO) -> int:
    rows: list[dict[str, Any]]
    if args.offline:
        rows = [
            {"backend": t.name, "status": "-", "qubits": t.qubits, "average_queue_time": None}
            for t in TARGETS.values()
        ]
    else:
        rows = asyncio.run(_fetch_backends())
    for row in rows:
        name = str(row.get("backend", ""))
        key = name if name in TARGETS or name == "simulator" else f"qpu.{name}"
        price = PRICES.get(key)
        row["price_1q_usd"] = price.price_1q if price else None
        row["price_2q_usd"] = price.price_2q if price else None
        row["minimum_usd"] = price.minimum if price else None
    if args.json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return 0
    header = [
        "backend",
        "status",
        "qubits",
        "queue (s)",
        "$/1q gate-shot",
        "$/2q gate-shot",
        "min $",
    ]
    table = [header]
    for row in rows:
        queue = row.get("average_queue_time")
        table.append(
            [
                str(row.get("backend")),
                str(row.get("status")),
                str(row.get("qubits")),
                "-" if queue is None else f"{float(queue) / 1000:.1f}",
                _fmt(row["price_1q_usd"]),
                _fmt(row["price_2q_usd"]),
                _fmt(row["minimum_usd"]),
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    return 0


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:g}"


async def _fetch_backends() -> list[dict[str, Any]]:
    async with IonQClient() as client:
        return await client.backends()


def _cmd_estimate(args: argparse.Namespace, out: TextIO) -> int:
    target = get_target(args.target).name
    n1, n2, qubits = args.n_1q, args.n_2q, args.qubits
    if args.circuit is not None:
        try:
            circuit = UnifiedCircuit.from_json(args.circuit.read_text(encoding="utf-8"))
        except OSError as exc:
            raise IonQConfigError(f"Cannot read {str(args.circuit)!r}: {exc}") from None
        native = IonQNativeCompiler(target if target != "simulator" else "qpu.aria-1")
        comp = native.compile_with_frames(circuit)
        n1, n2, qubits = comp.n_1q, comp.n_2q, circuit.n_qubits
    cost = PRICES.estimate(target, args.shots, n1, n2)
    out.write(
        f"{target}: {args.shots} shots, {n1} one-qubit and {n2} two-qubit gates on {qubits} "
        f"qubits -> ${cost:.2f} (price table)\n"
    )
    if args.online:
        est = asyncio.run(_fetch_estimate(target, args.shots, n1, n2, qubits))
        out.write(
            f"API estimate: {est.get('estimated_cost')} {est.get('cost_unit', 'usd')}, "
            f"queue {est.get('current_predicted_queue_time')} ms\n"
        )
    return 0


async def _fetch_estimate(target: str, shots: int, n1: int, n2: int, q: int) -> dict[str, Any]:
    async with IonQClient() as client:
        return await client.estimate(target, shots=shots, n_1q=n1, n_2q=n2, qubits=q)


def _cmd_jobs(args: argparse.Namespace, out: TextIO) -> int:
    async def fetch() -> dict[str, Any]:
        async with IonQClient() as client:
            return await client.list_jobs(args.limit, status=args.status)

    page = asyncio.run(fetch())
    for job in page.get("jobs", []):
        out.write(
            f"{job.get('id')}  {job.get('status', ''):<10} {job.get('backend', ''):<14} "
            f"{job.get('name') or ''}\n"
        )
    if not page.get("jobs"):
        out.write("no jobs\n")
    return 0
