"""``qstore pinecone``: the Pinecone emulator as a server, and index creation.

Usage::

    qstore pinecone emulator [--host 127.0.0.1] [--port 5080] [--api-key KEY]
                             [--error-rate P] [--latency S]
    qstore pinecone create-index NAME --qubits N [--host URL]
"""

from __future__ import annotations

import argparse
import random
from typing import Any, TextIO

__all__ = ["register"]


def _emulator(args: argparse.Namespace, out: TextIO) -> int:
    import uvicorn

    from qstore.pinecone.testing import Fault, PineconeEmulator

    emu = PineconeEmulator(api_key=args.api_key)
    if args.error_rate or args.latency:
        rng = random.Random(args.seed)
        app = emu.app

        async def faulty(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                fail = rng.random() < args.error_rate
                status = rng.choice((429, 500, 503)) if fail else None
                if status is not None or args.latency:
                    emu.inject(Fault(status=status, delay=args.latency, paths=(scope["path"],)))
            await app(scope, receive, send)

        asgi: Any = faulty
    else:
        asgi = emu.app
    out.write(
        f"Pinecone emulator on http://{args.host}:{args.port} (control plane; index hosts are "
        f"http://{args.host}:{args.port}/data/<index>). Ctrl-C stops it.\n"
    )
    out.flush()
    uvicorn.run(asgi, host=args.host, port=args.port, log_level="warning")
    return 0


def _create_index(args: argparse.Namespace, out: TextIO) -> int:
    from qstore.pinecone.store import create_index

    model = create_index(args.name, args.qubits, api_key=args.api_key, host=args.host)
    out.write(f"{args.name}: dimension {2 * 2**args.qubits}, cosine, host {model.host}\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``qstore pinecone`` (entry point in the group ``qstore.cli``)."""
    p = sub.add_parser("pinecone", help="Pinecone state store: emulator server, index creation")
    cmds = p.add_subparsers(dest="pinecone_command", metavar="COMMAND", required=True)
    e = cmds.add_parser(
        "emulator",
        help="run the Pinecone API emulator (in memory) as an HTTP server",
        description="Serve the control plane at http://HOST:PORT and each index at "
        "http://HOST:PORT/data/<index>, for tests and demos without a Pinecone account.",
    )
    e.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    e.add_argument("--port", type=int, default=5080, help="port (default 5080)")
    e.add_argument("--api-key", default=None, help="accept only this API key (default: any)")
    e.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="fraction of requests answered 429/500/503 (fault injection)",
    )
    e.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    e.add_argument("--seed", type=int, default=None, help="seed of the fault injection")
    e.set_defaults(func=_emulator)
    c = cmds.add_parser("create-index", help="create an index for n-qubit states (cosine)")
    c.add_argument("name", help="index name (lowercase letters, digits, '-')")
    c.add_argument("--qubits", type=int, required=True, help="qubits per state (at most 13)")
    c.add_argument("--host", default=None, help="control-plane URL (default Pinecone's)")
    c.add_argument("--api-key", default=None, help="API key (default $PINECONE_API_KEY)")
    c.set_defaults(func=_create_index)
