#!/usr/bin/env python3
"""Check the layering contracts of the Q-Store workspace with import-linter.

    python tools/lint_imports.py [lint-imports options...]      (or: hatch run lint-imports)

The contracts are in the root ``pyproject.toml`` (``[tool.importlinter]``): qstore-core imports
no framework and no other distribution, the other distributions do not import each other, and
private modules (``_name``) are imported only from within their own package.

Why not ``lint-imports`` alone: import-linter builds its graph with grimp, which reads the
directories of the root package from its import spec. ``qstore`` is a pkgutil-style namespace
(its ``__init__.py`` lives in qstore-core and extends ``__path__`` at import time), so the spec
names qstore-core's directory only: ``qstore.tf``, ``qstore.torch``, ``qstore.sim.*``, ... would
be missing from the graph, and ``lint-imports`` stops with "Module 'qstore.tf' does not exist".
This script imports ``qstore`` and hands grimp the whole ``__path__`` (every installed
distribution's ``src/qstore``). Before running ``lint-imports`` (without a cache, so nothing is
written into the tree) it checks that every workspace distribution installed here is on that
path and named in the independence contract, so that a new distribution cannot go unchecked.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path
from typing import Any

import importlinter.cli

import qstore

if sys.version_info >= (3, 11):
    import tomllib
else:  # import-linter depends on tomli there
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

REPO = Path(__file__).resolve().parents[1]
INDEPENDENCE_CONTRACT = "distributions-independent"


def workspace_packages() -> dict[str, tuple[Path, str]]:
    """``{distribution: (its src/qstore directory, its import package)}`` for the installed
    distributions under ``packages/`` (``qstore.core``, ``qstore.tf``, ``qstore.sim.qsim``...)."""
    found: dict[str, tuple[Path, str]] = {}
    for project in sorted((REPO / "packages").iterdir()):
        root = project / "src" / "qstore"
        if not (project / "pyproject.toml").is_file() or not root.is_dir():
            continue
        try:
            importlib.metadata.distribution(project.name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here: nothing of it to check
        for init in sorted(root.rglob("__init__.py")):
            package = init.parent
            # A distribution's package: the first level with an __init__.py below the namespace.
            if package != root and (
                package.parent == root or not (package.parent / "__init__.py").exists()
            ):
                name = ".".join(("qstore", *package.relative_to(root).parts))
                found[project.name] = (root, name)
                break
    return found


def expose_namespace() -> list[str]:
    """Make ``importlib.util.find_spec('qstore')`` (what grimp asks) name every directory of
    the ``qstore`` namespace, not only qstore-core's; returns them."""
    spec = qstore.__spec__
    if spec is None or spec.submodule_search_locations is None:
        raise SystemExit("qstore has no package spec: is qstore-core installed?")
    locations = [str(Path(p).resolve()) for p in qstore.__path__]
    spec.submodule_search_locations = locations
    return locations


def _contract(config: dict[str, Any], contract_id: str) -> dict[str, Any]:
    for contract in config.get("tool", {}).get("importlinter", {}).get("contracts", []):
        if contract.get("id") == contract_id:
            return dict(contract)
    raise SystemExit(f"lint_imports: no contract with id {contract_id!r} in pyproject.toml")


def problems(locations: list[str]) -> list[str]:
    """What would leave part of the workspace unchecked."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    independent = set(_contract(config, INDEPENDENCE_CONTRACT)["modules"])
    found = []
    for dist, (root, package) in workspace_packages().items():
        if str(root.resolve()) not in locations:
            found.append(
                f"{dist} is installed but {root} is not on qstore.__path__ (install it editable "
                "with a .pth file, see docs/development.md)"
            )
        if package != "qstore.core" and package not in independent:
            found.append(
                f"{package} ({dist}) is missing from the modules of the contract "
                f"{INDEPENDENCE_CONTRACT!r} in pyproject.toml"
            )
    return found


def main(argv: list[str]) -> int:
    """Run ``lint-imports`` over the whole ``qstore`` namespace; returns its exit status."""
    locations = expose_namespace()
    found = problems(locations)
    if found:
        for text in found:
            sys.stderr.write(f"lint_imports: {text}\n")
        return 2
    caching = any(a == "--no-cache" or a.startswith("--cache-dir") for a in argv)
    args = list(argv) if caching else ["--no-cache", *argv]
    try:
        importlinter.cli.lint_imports_command.main(args=args, prog_name="lint-imports")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
