"""Package metadata claims only what exists: every ``qstore-*`` distribution named by an extra of
the ``qstore`` meta distribution, of qstore-core, or by an install line of the README, is a
project under ``packages/``; and ``qstore[all]`` installs every one of them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _projects() -> dict[str, Path]:
    found = {}
    for pyproject in sorted(REPO.glob("packages/*/pyproject.toml")):
        name = tomllib.loads(pyproject.read_text("utf-8"))["project"]["name"]
        found[name] = pyproject.parent
    return found


def _ours(requirements: list[str]) -> set[str]:
    return {r.name for r in map(Requirement, requirements) if r.name.startswith("qstore-")}


def test_every_extra_names_an_existing_distribution() -> None:
    projects = _projects()
    for pyproject in (REPO / "pyproject.toml", REPO / "packages/qstore-core/pyproject.toml"):
        extras = tomllib.loads(pyproject.read_text("utf-8"))["project"]["optional-dependencies"]
        for extra, requirements in extras.items():
            assert _ours(requirements) <= set(projects), (pyproject, extra)


def test_the_all_extra_installs_every_distribution() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    assert _ours(meta["optional-dependencies"]["all"]) | _ours(meta["dependencies"]) == set(
        _projects()
    )


def test_readme_install_lines_name_existing_directories() -> None:
    text = (REPO / "README.md").read_text("utf-8")
    paths = set(re.findall(r"\./packages/(qstore-[a-z0-9-]+)", text))
    assert paths and paths <= {p.name for p in _projects().values()}
    # The extras table names each distribution and the extra that installs it.
    meta = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    for extra, requirements in meta["optional-dependencies"].items():
        for name in _ours(requirements) - {"qstore-core"}:
            if extra != "all":
                assert f"| `{extra}` | `{name}` |" in text, (extra, name)
    for row in re.findall(r"^\| `[a-z]+` \| `(qstore-[a-z0-9-]+)` \|", text, flags=re.M):
        assert row in _projects(), row
