"""Simulator selection: installed candidates, measured calibration, the on-disk cache."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qstore.core as qc
from qstore.core import backends
from qstore.core.backends import selection
from qstore.core.backends.selection import Calibration, SimulationBackendManager
from qstore.core.errors import BackendError, CapabilityError


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QSTORE_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def calibrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the backends timed, in order (the real measurement still runs)."""
    seen: list[str] = []
    real = selection._time_workload

    def counting(backend: Any, *args: Any) -> float:
        seen.append(backend.name)
        return real(backend, *args)

    monkeypatch.setattr(selection, "_time_workload", counting)
    return seen


@contextmanager
def registered(name: str, factory: Callable[..., Any]) -> Iterator[None]:
    backends.register(name, factory)
    try:
        yield
    finally:
        backends.unregister(name)


def _variant(name: str, **caps: Any) -> type[backends.LocalBackend]:
    """The local engine declaring other capabilities under another name."""

    class Variant(backends.LocalBackend):
        @property
        def capabilities(self) -> qc.Capabilities:
            return replace(super().capabilities, name=name, **caps)

    Variant.name = name
    return Variant


def test_auto_select_picks_an_installed_simulator() -> None:
    name = qc.SimulationBackendManager.auto_select(4)
    assert name in backends.available()
    assert backends.info(name).capabilities.remote is False  # type: ignore[union-attr]


def test_calibration_is_cached_on_disk(cache_dir: Path, calibrations: list[str]) -> None:
    first = SimulationBackendManager.auto_select(6, explain=True)
    path = cache_dir / "calibration.json"
    assert first.cache_path == str(path) and path.exists()
    assert "local" in calibrations and not first.chosen.from_cache
    n_runs, mtime = len(calibrations), path.stat().st_mtime_ns

    second = SimulationBackendManager.auto_select(6, explain=True)
    assert len(calibrations) == n_runs  # nothing measured again
    assert path.stat().st_mtime_ns == mtime  # nothing written
    assert second.chosen.from_cache
    assert second.chosen.calibration == first.chosen.calibration

    data = json.loads(path.read_text())
    (key,) = [k for k in data["entries"] if k.startswith("local|")]
    name, version, n, host = key.split("|")
    assert (name, version, n, host) == ("local", qc.__version__, "6", selection.host_fingerprint())


def test_new_backend_version_invalidates_its_timings(
    cache_dir: Path, calibrations: list[str]
) -> None:
    SimulationBackendManager.auto_select(5)
    path = cache_dir / "calibration.json"
    old = path.read_text().replace(f"|{qc.__version__}|", "|3.9.0|")
    path.write_text(old.replace(f'"version": "{qc.__version__}"', '"version": "3.9.0"'))
    n_runs = calibrations.count("local")
    SimulationBackendManager.auto_select(5)
    assert calibrations.count("local") == n_runs + 1  # other installed simulators may re-run too
    assert "3.9.0" not in path.read_text()  # the stale entry is gone, not just shadowed


def test_corrupt_cache_is_recomputed(cache_dir: Path, calibrations: list[str]) -> None:
    path = cache_dir / "calibration.json"
    path.write_text('{"schema": 1, "entries": {"local|')
    chosen = SimulationBackendManager.auto_select(4)
    assert chosen in calibrations
    assert calibrations.count("local") == 1
    assert len(calibrations) == len(set(calibrations))  # each candidate timed once
    assert any(k.startswith("local|") for k in json.loads(path.read_text())["entries"])


def test_unwritable_cache_does_not_stop_selection(cache_dir: Path) -> None:
    blocker = cache_dir / "file"
    blocker.write_text("not a directory")
    manager = SimulationBackendManager(blocker / "sub" / "calibration.json")
    assert manager.select(3).name == "local"


def test_explain_lists_candidates_and_exclusions() -> None:
    class Broken(backends.LocalBackend):
        name = "broken_sel"

        def expectation(self, *args: Any, **kwargs: Any) -> Any:
            raise BackendError("device fell over")

    class Wrong(backends.LocalBackend):
        name = "wrong_sel"

        def expectation(self, *args: Any, **kwargs: Any) -> Any:
            return np.zeros_like(super().expectation(*args, **kwargs))

    tiny = _variant("tiny_sel", max_qubits=3)
    remote = _variant("remote_sel", remote=True)
    with (
        registered("broken_sel", Broken),
        registered("wrong_sel", Wrong),
        registered("tiny_sel", tiny),
        registered("remote_sel", remote),
    ):
        sel = SimulationBackendManager.auto_select(4, explain=True)
    assert sel.name == "local"
    by_name = {c.name: c for c in sel.candidates}
    assert by_name["local"].eligible and by_name["local"].score is not None
    assert "device fell over" in by_name["broken_sel"].reasons[0]
    assert "differ from the reference" in by_name["wrong_sel"].reasons[0]
    assert by_name["tiny_sel"].reasons == ("supports at most 3 qubits",)
    assert "remote" in by_name["remote_sel"].reasons[0]
    text = str(sel)
    assert text.startswith("Selected 'local' for 4 qubits")
    for name in ("local", "broken_sel", "wrong_sel", "tiny_sel", "remote_sel"):
        assert name in text
    assert "excluded: calibration failed: BackendError: device fell over" in text
    assert json.loads(json.dumps(sel.as_dict()))["name"] == "local"


def test_gpu_backends_follow_has_gpu() -> None:
    gpu = _variant("gpu_sel", gpu=True)
    with registered("gpu_sel", gpu):
        detected = SimulationBackendManager.auto_select(3, explain=True)
        refused = SimulationBackendManager.auto_select(3, has_gpu=False, explain=True)
    assert detected.has_gpu and detected.gpu_detected
    assert {c.name for c in detected.candidates if c.eligible} >= {"local", "gpu_sel"}
    assert not refused.has_gpu and not refused.gpu_detected
    (excluded,) = [c for c in refused.candidates if c.name == "gpu_sel"]
    assert not excluded.eligible and "has_gpu=False" in excluded.reasons[0]


def test_prefer_speed_trades_precision_for_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fixed timings make the ranking deterministic: the single-precision one is twice as fast.
    seconds = {"local": 2e-3, "single_sel": 1e-3}
    monkeypatch.setattr(selection, "_time_workload", lambda backend, *a: seconds[backend.name])
    single = _variant("single_sel", dtypes=("complex64",))
    with registered("single_sel", single):
        fast = SimulationBackendManager.auto_select(5, prefer_speed=True, explain=True)
        exact = SimulationBackendManager.auto_select(5, prefer_speed=False, explain=True)
    assert fast.name == "single_sel"
    assert exact.name == "local"
    assert exact.chosen.precision == 1.0
    assert [c.name for c in exact.candidates][:2] == ["local", "single_sel"]


def test_larger_circuits_are_extrapolated_from_two_sizes() -> None:
    sel = SimulationBackendManager(calibration_qubits=5).select(8)
    cal = sel.chosen.calibration
    assert cal is not None and [m for m, _ in cal.points] == [1, 5]
    assert sel.chosen.seconds is not None and sel.chosen.seconds >= cal.points[-1][1]


def test_calibration_model_through_two_points() -> None:
    def work(m: int) -> float:
        return float(m * 2**m)

    cal = Calibration(((6, 1e-3 + 1e-7 * work(6)), (10, 1e-3 + 1e-7 * work(10))))
    assert cal.predict(20) == pytest.approx(1e-3 + 1e-7 * work(20))
    assert cal.predict(10) == cal.points[1][1]
    flat = Calibration(((6, 2e-3), (10, 1e-3)))  # noise: no growth measured
    assert flat.predict(12) == pytest.approx(1e-3 * work(12) / work(10))


def test_nothing_fits_raises_with_reasons() -> None:
    with pytest.raises(CapabilityError, match="at most"):
        SimulationBackendManager.auto_select(200)
    with pytest.raises(CapabilityError, match="positive int"):
        SimulationBackendManager.auto_select(0)
