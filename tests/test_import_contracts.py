"""The layering contracts (``[tool.importlinter]``, run by ``hatch run lint-imports``) see every
distribution of the ``qstore`` namespace, not only qstore-core's directory: contracts that the
code must break are reported broken for core, a framework package and a simulator plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "lint_imports.py"

MUST_BREAK = """
[tool.importlinter]
root_packages = ["qstore"]
include_external_packages = true

[[tool.importlinter.contracts]]
name = "probe core"
type = "forbidden"
source_modules = ["qstore.core"]
forbidden_modules = ["numpy"]

[[tool.importlinter.contracts]]
name = "probe tf"
type = "forbidden"
source_modules = ["qstore.tf"]
forbidden_modules = ["tensorflow"]

[[tool.importlinter.contracts]]
name = "probe qsim"
type = "forbidden"
source_modules = ["qstore.sim.qsim"]
forbidden_modules = ["qstore.core"]
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_installed_distribution_is_covered() -> None:
    sys.path.insert(0, str(TOOL.parent))
    try:
        import lint_imports
    finally:
        sys.path.remove(str(TOOL.parent))
    packages = {name for _, name in lint_imports.workspace_packages().values()}
    assert {"qstore.core", "qstore.tf", "qstore.torch", "qstore.sim.qsim"} <= packages
    assert lint_imports.problems(lint_imports.expose_namespace()) == []


def test_contracts_are_checked_in_every_distribution(tmp_path: Path) -> None:
    config = tmp_path / "contracts.toml"
    config.write_text(MUST_BREAK)
    result = _run(str(config))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Contracts: 0 kept, 3 broken." in out
    assert "qstore.core is not allowed to import numpy" in out
    assert "qstore.tf is not allowed to import tensorflow" in out
    assert "qstore.sim.qsim is not allowed to import qstore.core" in out
