"""``qstore stores``: the installed state stores (entry-point group ``qstore.stores``)."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from qstore.core.stores import registry

__all__ = ["cmd_stores", "register"]


def cmd_stores(args: argparse.Namespace, out: TextIO) -> int:
    """List installed stores with distribution, version and whether they import."""
    infos = registry.all_info()
    missing = {n: d for n, d in registry.KNOWN_STORES.items() if n not in {i.name for i in infos}}
    if args.json:
        data = {
            "stores": [i.as_dict() for i in infos],
            "not_installed": [
                {"name": n, "distribution": d, "install": f"pip install {d}"}
                for n, d in missing.items()
            ],
        }
        out.write(json.dumps(data, indent=2) + "\n")
        return 0
    header = ["name", "distribution", "version", "available", "target"]
    rows = [
        [
            i.name,
            i.distribution or f"({i.origin})",
            i.version or "-",
            "yes" if i.loadable else "no",
            i.target,
        ]
        for i in infos
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    for i in infos:
        if not i.loadable:
            out.write(f"\n{i.name}: unavailable: {i.reason}\n")
    if missing:
        out.write("\nNot installed:\n")
        for n, d in missing.items():
            out.write(f"  {n}: pip install {d}\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``stores`` command to the ``qstore`` command line."""
    p = sub.add_parser(
        "stores",
        help="list installed quantum state stores",
        description="List the installed state stores (entry-point group 'qstore.stores'), with "
        "the distribution that provides each and whether it can be imported.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_stores)
