"""The backend registry: entry points, aliases, plugins found at run time, errors that help.

The third-party plugin here is real as far as ``importlib.metadata`` is concerned: a module and a
``.dist-info`` directory (METADATA + entry_points.txt, what pip would write) on ``sys.path``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import qstore.core as qc
from qstore.core import backends
from qstore.core.cli import main
from qstore.core.errors import (
    BackendError,
    BackendNotFoundError,
    MissingDependencyError,
)

CORE_SRC = Path(__file__).resolve().parents[1] / "src"

# What the plugin's own repository would contain; pip turns it into the dist-info written below.
TOY_PYPROJECT = """\
[project]
name = "qstore-toy"
version = "0.3.1"
dependencies = ["qstore-core"]

[project.entry-points."qstore.backends"]
toy = "qstore_toy:ToyBackend"
"""

TOY_MODULE = '''\
"""A third-party backend: the local engine under its own name and capabilities."""

from dataclasses import replace

from qstore.core.backends import LocalBackend


class ToyBackend:
    name = "toy"

    def __init__(self, seed=None):
        self._inner = LocalBackend(seed=seed)

    @property
    def capabilities(self):
        caps = self._inner.capabilities
        return replace(caps, name="toy", max_qubits=12, gradient_methods=("adjoint",))

    def expectation(self, circuit, observables=None, values=None, **kwargs):
        return self._inner.expectation(circuit, observables, values, **kwargs)

    def vjp(self, circuit, observables, values, cotangent, **kwargs):
        return self._inner.vjp(circuit, observables, values, cotangent, **kwargs)

    def sample(self, circuit, shots, values=None, **kwargs):
        return self._inner.sample(circuit, shots, values, **kwargs)

    async def execute(self, circuit, shots=1000, timeout=None):
        result = await self._inner.execute(circuit, shots, timeout)
        return replace(result, backend="toy")
'''

# A plugin whose entry point names a module that is not there (a broken install).
BROKEN_ENTRY_POINTS = "[qstore.backends]\nbroken_toy = qstore_toy_missing_module:Backend\n"


def _dist_info(site: Path, name: str, version: str, entry_points: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def toy_site(tmp_path: Path) -> Path:
    """A site directory holding the qstore-toy and qstore-brokentoy distributions."""
    project = tmp_path / "qstore-toy"
    project.mkdir()
    (project / "pyproject.toml").write_text(TOY_PYPROJECT)
    site = tmp_path / "site"
    site.mkdir()
    (site / "qstore_toy.py").write_text(TOY_MODULE)
    _dist_info(site, "qstore-toy", "0.3.1", "[qstore.backends]\ntoy = qstore_toy:ToyBackend\n")
    _dist_info(site, "qstore-brokentoy", "1.0", BROKEN_ENTRY_POINTS)
    return site


def _activate(site: Path) -> None:
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()


@pytest.fixture
def toy_installed(toy_site: Path) -> Iterator[Path]:
    _activate(toy_site)
    backends.invalidate_cache()
    try:
        yield toy_site
    finally:
        sys.path.remove(str(toy_site))
        sys.modules.pop("qstore_toy", None)
        backends.invalidate_cache()


def _circuit() -> qc.UnifiedCircuit:
    c = qc.UnifiedCircuit(3)
    c.add_gate("H", 0).add_gate("CNOT", [0, 1]).add_gate("RX", 2, "a")
    c.add_gate("CRY", [1, 2], "b").add_gate("RZZ", [0, 2], "c")
    return c


# -- built-ins -------------------------------------------------------------------------------
def test_local_and_its_alias_are_available() -> None:
    assert {"local", "local_cpu"} <= set(backends.available())
    assert type(backends.get("local")) is backends.LocalBackend
    assert type(backends.get("local_cpu")) is backends.LocalBackend


def test_builtins_come_from_the_core_distribution_entry_points() -> None:
    eps = {
        ep.name: ep.value
        for ep in importlib.metadata.entry_points(group=backends.ENTRY_POINT_GROUP)
        if ep.dist is not None and ep.dist.name == "qstore-core"
    }
    info = backends.info("local")
    assert info.distribution == "qstore-core"
    assert info.version == qc.__version__
    if eps:  # qstore-core is installed (editable or not): built-ins are plain entry points
        assert eps["local"] == eps["local_cpu"] == "qstore.core.backends.local:LocalBackend"
        assert info.origin == "entry point"
    else:  # imported from a source tree without metadata: the same names still resolve
        assert info.origin == "built-in"


def test_builtins_resolve_without_distribution_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    # qstore-core imported from a source tree (PYTHONPATH=src) has no entry points at all.
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kwargs: [])
    backends.invalidate_cache()
    try:
        assert {"local", "local_cpu"} <= set(backends.available())
        assert backends.info("local").origin == "built-in"
        assert type(backends.get("local_cpu")) is backends.LocalBackend
    finally:
        monkeypatch.undo()
        backends.invalidate_cache()


def test_info_folds_aliases_and_reports_capabilities() -> None:
    info = backends.info("local_cpu")
    assert info.name == "local_cpu"
    assert info.aliases == ("local",)
    assert info.available and info.reason == ""
    assert info.capabilities is not None
    assert info.capabilities.exact and info.capabilities.vjp
    rows = {i.name: i for i in backends.all_info()}
    assert "local_cpu" not in rows
    assert rows["local"].aliases == ("local_cpu",)
    assert json.loads(json.dumps(rows["local"].as_dict()))["capabilities"]["max_qubits"] > 10
    assert "local, local_cpu" in str(rows["local"])


def test_get_passes_options_and_rejects_unknown_ones() -> None:
    assert backends.get("local", dtype="complex64").dtype == "complex64"
    with pytest.raises(BackendError, match="dtype") as err:
        backends.get("local", precision="double")
    assert "precision" in str(err.value)


def test_names_are_case_insensitive() -> None:
    assert type(backends.get("LOCAL_CPU")) is backends.LocalBackend


def test_unknown_name_lists_installed_and_close_matches() -> None:
    with pytest.raises(BackendNotFoundError) as err:
        backends.get("locl")
    msg = str(err.value)
    assert "Unknown backend 'locl'" in msg
    assert "Did you mean 'local'" in msg
    assert "Installed backends: " in msg and "local_cpu" in msg
    with pytest.raises(KeyError):  # BackendNotFoundError is a KeyError too
        backends.get("nothing_like_it")
    with pytest.raises(BackendNotFoundError, match="must be a string"):
        backends.get(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "distribution", "extra"),
    [
        ("qsim", "qstore-sim-qsim", "qsim"),
        ("lightning", "qstore-sim-lightning", "lightning"),
        ("lightning.gpu", "qstore-sim-lightning", "lightning"),
        ("lightning.kokkos", "qstore-sim-lightning", "lightning"),
        ("ionq_simulator", "qstore-ionq", "ionq"),
        ("ionq_hardware", "qstore-ionq", "ionq"),
    ],
)
def test_known_but_absent_plugins_name_the_distribution(
    name: str, distribution: str, extra: str
) -> None:
    if name in backends.available():
        pytest.skip(f"{distribution} is installed here")
    with pytest.raises(backends.BackendNotInstalledError) as err:
        backends.get(name)
    assert isinstance(err.value, BackendNotFoundError)
    assert isinstance(err.value, MissingDependencyError)
    assert err.value.distribution == distribution
    assert f"pip install {distribution}" in str(err.value)
    assert f'pip install "qstore[{extra}]"' in str(err.value)
    assert name in backends.missing_plugins()


@pytest.mark.parametrize(
    ("attr", "module", "distribution"),
    [
        ("IonQBackend", "qstore.ionq", "qstore-ionq"),
        ("QsimBackend", "qstore.sim.qsim", "qstore-sim-qsim"),
        ("LightningBackend", "qstore.sim.lightning", "qstore-sim-lightning"),
    ],
)
def test_plugin_classes_are_lazy_and_name_the_missing_distribution(
    attr: str, module: str, distribution: str
) -> None:
    try:
        present = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        present = False
    if present:
        pytest.skip(f"{distribution} is installed here")
    with pytest.raises(MissingDependencyError, match=f"pip install {distribution}"):
        getattr(qc.backends, attr)
    with pytest.raises(ImportError, match=distribution):
        exec(f"from qstore.core.backends import {attr}", {})
    assert attr not in vars(backends)  # a failure is not cached


def test_unknown_attributes_are_still_attribute_errors() -> None:
    assert not hasattr(qc.backends, "NoSuchBackend")


# -- run-time registration -------------------------------------------------------------------
class _Custom(backends.LocalBackend):
    name = "custom"


def test_register_get_and_unregister() -> None:
    backends.register("custom_test", _Custom)
    try:
        assert "custom_test" in backends.available()
        assert type(backends.get("custom_test", seed=3)) is _Custom
        info = backends.info("custom_test")
        assert info.origin == "registered" and info.distribution is None
        with pytest.raises(BackendError, match="already taken"):
            backends.register("custom_test", backends.LocalBackend)
        backends.register("custom_test", backends.LocalBackend, replace=True)
        assert type(backends.get("custom_test")) is backends.LocalBackend
    finally:
        backends.unregister("custom_test")
    assert "custom_test" not in backends.available()
    with pytest.raises(BackendNotFoundError):
        backends.unregister("custom_test")


def test_register_as_decorator_and_validation() -> None:
    @backends.register("decorated_test")
    def make(seed: int | None = None) -> backends.LocalBackend:
        return backends.LocalBackend(seed=seed)

    try:
        assert isinstance(backends.get("decorated_test"), backends.LocalBackend)
    finally:
        backends.unregister("decorated_test")
    with pytest.raises(BackendError, match="already taken"):
        backends.register("local", _Custom)
    with pytest.raises(BackendError, match="backend class or a function"):
        backends.register("not_callable", 42)  # type: ignore[call-overload]
    with pytest.raises(BackendError, match="non-empty string"):
        backends.register(" padded ", _Custom)


def test_objects_that_are_not_backends_are_refused() -> None:
    class NotABackend:
        name = "half"

        def expectation(self) -> None: ...

    backends.register("half_test", NotABackend)
    try:
        with pytest.raises(BackendError, match="lacks capabilities, vjp, sample, execute"):
            backends.get("half_test")
        assert not backends.info("half_test").available
    finally:
        backends.unregister("half_test")


def test_backend_that_declares_itself_unavailable_says_why() -> None:
    class Offline(backends.LocalBackend):
        @property
        def capabilities(self) -> qc.Capabilities:
            from dataclasses import replace

            return replace(super().capabilities, available=False, reason="no licence")

    backends.register("offline_test", Offline)
    try:
        info = backends.info("offline_test")
        assert not info.available and info.reason == "no licence"
        assert "unavailable: no licence" in str(info)
    finally:
        backends.unregister("offline_test")


# -- a third-party plugin distribution -------------------------------------------------------
def test_plugin_entry_point_is_a_first_class_backend(toy_installed: Path) -> None:
    assert "toy" in backends.available()
    info = backends.info("toy")
    assert (info.distribution, info.version, info.origin) == ("qstore-toy", "0.3.1", "entry point")
    assert info.target == "qstore_toy:ToyBackend"
    assert info.capabilities is not None and info.capabilities.max_qubits == 12

    toy, local = backends.get("toy", seed=5), backends.get("local", seed=5)
    assert toy.name == "toy"
    c = _circuit()
    values = np.random.default_rng(0).uniform(-3, 3, (4, c.n_parameters))
    np.testing.assert_allclose(
        toy.expectation(c, values=values), local.expectation(c, None, values)
    )
    cot = np.ones((4, 3))
    np.testing.assert_allclose(toy.vjp(c, None, values, cot)[0], local.vjp(c, None, values, cot)[0])
    np.testing.assert_array_equal(
        toy.sample(c, 64, values, seed=1), local.sample(c, 64, values, seed=1)
    )


def test_plugin_installed_after_the_first_scan_is_found(toy_site: Path) -> None:
    backends.invalidate_cache()
    assert "toy" not in backends.available()  # scanned and cached without it
    _activate(toy_site)
    try:
        assert "toy" not in backends.available()  # the cache is not rescanned on every call
        assert backends.get("toy").name == "toy"  # a miss rescans once
        assert "toy" in backends.available(refresh=True)
        assert backends.get("toy", refresh=True).name == "toy"
    finally:
        sys.path.remove(str(toy_site))
        sys.modules.pop("qstore_toy", None)
        backends.invalidate_cache()
    assert "toy" not in backends.available()


def test_broken_plugin_is_listed_unavailable_and_get_names_it(toy_installed: Path) -> None:
    info = backends.info("broken_toy")
    assert not info.available
    assert "qstore-brokentoy" in info.reason and "qstore_toy_missing_module" in info.reason
    with pytest.raises(MissingDependencyError, match="pip install --force-reinstall"):
        backends.get("broken_toy")


def test_cli_lists_the_plugin(toy_installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    toy_row = next(line for line in out.splitlines() if line.startswith("toy "))
    assert "qstore-toy" in toy_row and "0.3.1" in toy_row and "12" in toy_row
    assert "broken_toy: unavailable" in out
    assert main(["backends", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = {b["name"]: b for b in data["backends"]}
    assert names["toy"]["distribution"] == "qstore-toy"
    assert names["toy"]["capabilities"]["max_qubits"] == 12
    assert names["local"]["aliases"] == ["local_cpu"]


def test_cli_in_another_process_discovers_the_plugin(toy_site: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(toy_site), str(CORE_SRC), *filter(None, [env.get("PYTHONPATH")])]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "qstore.core", "backends"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(
        line.startswith("toy ") and "qstore-toy" in line for line in proc.stdout.splitlines()
    )
    assert "local, local_cpu" in proc.stdout


def test_install_hint_names_the_extra() -> None:
    assert backends.install_hint("qstore-ionq") == (
        'pip install qstore-ionq or pip install "qstore[ionq]"'
    )
    assert backends.install_hint("qstore-toy") == "pip install qstore-toy"
