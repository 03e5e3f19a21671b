"""The ``qstore`` namespace holds together however its distributions are installed.

qstore-core ships ``qstore/__init__.py`` (a pkgutil-style namespace) and ``qstore.core``; every
other distribution ships only its own subpackage (``qstore.torch``, ``qstore.sim.qsim``, ...).
These tests build real wheels of qstore-core and of a throwaway plugin, ``qstore-nsprobe``, written
with the same pyproject shape as a real plugin (see docs/development.md), install them into a clean
virtual environment (no system site-packages, no network) as wheels, editable, or a mix, and
import both.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
CORE_DIR = REPO_ROOT / "packages" / "qstore-core"

# The pyproject.toml of a plugin distribution, as docs/development.md prescribes.
PROBE_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.27"]
build-backend = "hatchling.build"

[project]
name = "qstore-nsprobe"
version = "4.0.0a1"
requires-python = ">=3.10"
dependencies = ["qstore-core>=4.0.0a1"]

[project.entry-points."qstore.backends"]
nsprobe = "qstore.nsprobe:ProbeBackend"

[tool.hatch.build]
dev-mode-dirs = ["src"]

[tool.hatch.build.targets.wheel]
packages = ["src/qstore"]
exclude = ["src/qstore/__init__.py", "src/qstore/py.typed"]
"""

PROBE_INIT = '''\
"""A throwaway plugin that only proves the namespace is shared."""


class ProbeBackend:
    name = "nsprobe"
'''

# Runs inside the clean environment; prints where everything was imported from.
IMPORT_CHECK = textwrap.dedent(
    """
    import importlib.metadata, importlib.util, json, sys
    import qstore
    import qstore.core
    import qstore.nsprobe
    print(json.dumps({
        "isolated": sys.prefix != sys.base_prefix,
        "cirq_visible": importlib.util.find_spec("cirq") is not None,
        "qstore": qstore.__file__,
        "core": qstore.core.__file__,
        "nsprobe": qstore.nsprobe.__file__,
        "nsprobe_name": qstore.nsprobe.__name__,
        "probe_backend": qstore.nsprobe.ProbeBackend.name,
        # Loading proves that each entry point names an importable object.
        "backends": {
            ep.name: ep.load().__qualname__
            for ep in importlib.metadata.entry_points(group="qstore.backends")
        },
    }))
    """
)


@dataclass(frozen=True)
class Artifacts:
    """Wheels built once per test session (per xdist worker)."""

    core_wheel: Path
    core_editable: Path
    probe_dir: Path
    probe_wheel: Path
    probe_editable: Path
    runtime_deps: Path  # a directory exposing the host's numpy and tqdm


def _run(args: list[str | os.PathLike[str]], cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(
        [os.fspath(a) for a in args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(map(str, args))}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc.stdout


def _only(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


def _build_wheel(project: Path, distribution: str, out: Path) -> Path:
    """Build a regular wheel through pip, offline (the build backend comes from this env)."""
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--quiet"]
    _run([*pip_wheel, "--no-build-isolation", "--wheel-dir", out, project])
    return _only(out, f"{distribution.replace('-', '_')}-*.whl")


def _build_editable(project: Path, out: Path) -> Path:
    """Build an editable wheel with the PEP 660 hook, as `pip install -e` does."""
    hook = "import sys, hatchling.build as b; print(b.build_editable(sys.argv[1]))"
    name = _run([sys.executable, "-c", hook, out], cwd=project).strip().splitlines()[-1]
    return out / name


def _expose_host_distributions(names: list[str], target: Path) -> Path:
    """Link the host's installed files of `names` (packages and .dist-info) into `target`."""
    target.mkdir()
    for name in names:
        dist = importlib.metadata.distribution(name)
        tops = {f.parts[0] for f in dist.files or () if f.parts[0] != ".."}
        for top in sorted(tops):
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source, target_is_directory=source.is_dir())
    return target


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    pytest.importorskip(
        "hatchling.build",
        reason="building wheels offline needs hatchling in the running environment "
        "(it is part of the hatch `default` environment)",
    )
    root = tmp_path_factory.mktemp("nspackaging")

    probe_dir = root / "qstore-nsprobe"
    package = probe_dir / "src" / "qstore" / "nsprobe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PROBE_INIT)
    (probe_dir / "pyproject.toml").write_text(PROBE_PYPROJECT)

    wheels, editables = root / "wheels", root / "editables"
    return Artifacts(
        core_wheel=_build_wheel(CORE_DIR, "qstore-core", wheels),
        core_editable=_build_editable(CORE_DIR, editables),
        probe_dir=probe_dir,
        probe_wheel=_build_wheel(probe_dir, "qstore-nsprobe", wheels),
        probe_editable=_build_editable(probe_dir, editables),
        runtime_deps=_expose_host_distributions(["numpy", "tqdm"], root / "runtime-deps"),
    )


@pytest.fixture
def clean_env(tmp_path: Path, artifacts: Artifacts) -> Iterator[Path]:
    """A virtual environment without pip or system site-packages; yields its python."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = _run([python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    # numpy and tqdm are qstore-core's only runtime dependencies; reuse the host's copies.
    (Path(purelib.strip()) / "_host_runtime_deps.pth").write_text(f"{artifacts.runtime_deps}\n")
    yield python


def _install(python: Path, *wheels: Path) -> None:
    pip_install = [sys.executable, "-m", "pip", "--python", os.fspath(python), "install", "--quiet"]
    _run([*pip_install, "--no-deps", "--no-index", *wheels])


def test_core_wheel_owns_the_namespace_root(artifacts: Artifacts) -> None:
    with zipfile.ZipFile(artifacts.core_wheel) as wheel:
        names = set(wheel.namelist())
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points_text = wheel.read(entry_points).decode()
    assert {"qstore/__init__.py", "qstore/core/__init__.py", "qstore/py.typed"} <= names
    assert "qstore = qstore.core.cli:main" in entry_points_text
    assert "local = qstore.core.backends.local:LocalBackend" in entry_points_text
    assert "local_cpu = qstore.core.backends.local:LocalBackend" in entry_points_text


def test_plugin_wheel_ships_only_its_subpackage(artifacts: Artifacts) -> None:
    def payload(path: Path) -> set[str]:
        with zipfile.ZipFile(path) as wheel:
            return {n for n in wheel.namelist() if ".dist-info/" not in n}

    probe = payload(artifacts.probe_wheel)
    assert probe == {"qstore/nsprobe/__init__.py"}
    assert not probe & payload(artifacts.core_wheel)


def test_meta_distribution_builds_without_code(tmp_path: Path) -> None:
    wheel = _build_wheel(REPO_ROOT, "qstore", tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert all(".dist-info/" in n for n in names), names
    assert "Requires-Dist: qstore-core>=4.0.0a1" in metadata
    assert "Requires-Dist: qstore-torch>=4.0.0a1; extra == 'torch'" in metadata
    assert "Provides-Extra: all" in metadata


@pytest.mark.parametrize("core_mode", ["wheel", "editable"])
@pytest.mark.parametrize("probe_mode", ["wheel", "editable"])
def test_core_and_plugin_share_the_namespace(
    artifacts: Artifacts, clean_env: Path, core_mode: str, probe_mode: str
) -> None:
    core = artifacts.core_wheel if core_mode == "wheel" else artifacts.core_editable
    probe = artifacts.probe_wheel if probe_mode == "wheel" else artifacts.probe_editable
    _install(clean_env, core, probe)

    report = json.loads(_run([clean_env, "-I", "-c", IMPORT_CHECK], cwd=clean_env.parent))

    assert report["isolated"]
    assert not report["cirq_visible"], "the clean environment sees the host's packages"
    env_root = clean_env.parents[1].resolve()
    core_src = (CORE_DIR / "src" / "qstore").resolve()
    if core_mode == "editable":
        assert Path(report["qstore"]).resolve() == core_src / "__init__.py"
        assert Path(report["core"]).resolve() == core_src / "core" / "__init__.py"
    else:
        assert Path(report["qstore"]).resolve().is_relative_to(env_root)
        assert Path(report["core"]).resolve().is_relative_to(env_root)
    probe_src = (artifacts.probe_dir / "src" / "qstore" / "nsprobe").resolve()
    if probe_mode == "editable":
        assert Path(report["nsprobe"]).resolve() == probe_src / "__init__.py"
    else:
        assert Path(report["nsprobe"]).resolve().is_relative_to(env_root)
    assert report["nsprobe_name"] == "qstore.nsprobe"
    assert report["probe_backend"] == "nsprobe"
    expected = {"local": "LocalBackend", "local_cpu": "LocalBackend", "nsprobe": "ProbeBackend"}
    assert expected.items() <= report["backends"].items()
