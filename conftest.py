"""Workspace-wide pytest hooks: doctests skip cleanly where an optional library is missing.

``--doctest-modules`` imports every module under ``packages/*/src`` (see the pytest section of
pyproject.toml). Doctests are skipped, with the missing name as reason, when:

* the module's distribution is not installed, or one of its declared requirements is not
  (e.g. qstore-sim-qsim's ``qsimcirq``);
* the module imports an optional library that is not installed (``cirq``, ``qiskit`` ...);
* an example raises :class:`~qstore.core.errors.MissingDependencyError`.

A missing ``qstore`` module is a real error and still fails.
"""

from __future__ import annotations

import doctest
import functools
import importlib
import importlib.metadata
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement


def _missing_dependency(exc: BaseException) -> str | None:
    """What is missing, when ``exc`` says an optional library is not installed."""
    if isinstance(exc, ModuleNotFoundError):
        name = exc.name or ""
        return None if name.split(".")[0] in ("", "qstore") else name
    from qstore.core.errors import MissingDependencyError

    return str(exc) if isinstance(exc, MissingDependencyError) else None


@functools.cache
def _unmet_requirements(distribution: str) -> tuple[str, ...]:
    """The distribution itself, or those of its (non-extra) requirements, not installed."""
    try:
        requires = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return (distribution,)
    missing = []
    for text in requires:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra's requirement
        try:
            importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(req.name)
    return tuple(missing)


def _distribution(path: Path) -> str | None:
    """``packages/qstore-sim-qsim/src/...`` -> ``qstore-sim-qsim``."""
    parts = path.parts
    for i in range(len(parts) - 2):
        if parts[i] == "packages" and parts[i + 2] == "src":
            return parts[i + 1]
    return None


def _module_name(path: Path) -> str | None:
    """``packages/<dist>/src/qstore/torch/engine.py`` -> ``qstore.torch.engine``."""
    parts = list(path.with_suffix("").parts)
    if "src" not in parts:
        return None
    names = parts[len(parts) - parts[::-1].index("src") :]
    if names and names[-1] == "__init__":
        names.pop()
    return ".".join(names) or None


def _skipping_collect(path: Path, collect: Any) -> Any:
    def collect_or_skip() -> Iterable[Any]:
        distribution = _distribution(path)
        unmet = _unmet_requirements(distribution) if distribution else ()
        if unmet:
            pytest.skip(f"{distribution} needs {', '.join(unmet)}", allow_module_level=True)
        # Import under the module's real name first: when an optional library is missing,
        # pytest cannot tell that the module is importable and would guess another name.
        name = _module_name(path)
        if name is not None:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                missing = _missing_dependency(exc)
                if missing is None:
                    raise
                pytest.skip(f"doctests need {missing}", allow_module_level=True)
        yield from collect()

    return collect_or_skip


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Any, parent: pytest.Collector) -> Generator[None, Any, Any]:
    collectors = yield
    for collector in collectors or ():
        if type(collector).__name__ == "DoctestModule":
            collector.collect = _skipping_collect(Path(file_path), collector.collect)
    return collectors


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    except doctest.UnexpectedException as exc:
        missing = _missing_dependency(exc.exc_info[1])
        if missing is None:
            raise
        pytest.skip(f"optional dependency missing: {missing}")
