"""``qc.compilers`` and ``UnifiedCircuit.to_ionq_*``: plugin code reached lazily from core.

Without qstore-ionq, each raises ``MissingDependencyError`` naming what to install (tested by
hiding the module); with it, they are qstore-ionq's own objects (tested only where it imports).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import pytest

import qstore.core as qc
from qstore.core import compilers
from qstore.core.errors import MissingDependencyError


@pytest.fixture
def without_ionq(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import qstore.ionq`` fail as it does when qstore-ionq is not installed."""
    monkeypatch.setitem(sys.modules, "qstore.ionq", None)  # type: ignore[arg-type]
    monkeypatch.delitem(compilers.__dict__, "IonQNativeCompiler", raising=False)


def bell() -> qc.UnifiedCircuit:
    return qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])


def test_compilers_is_reachable_from_qc_and_lists_the_plugin_compiler() -> None:
    assert qc.compilers is compilers
    assert "IonQNativeCompiler" in dir(qc.compilers)
    assert compilers.__all__ == ["IonQNativeCompiler"]
    with pytest.raises(AttributeError, match="NoSuchCompiler"):
        _ = qc.compilers.NoSuchCompiler


@pytest.mark.usefixtures("without_ionq")
def test_missing_plugin_names_the_distribution_to_install() -> None:
    with pytest.raises(MissingDependencyError) as info:
        _ = qc.compilers.IonQNativeCompiler
    message = str(info.value)
    assert "qstore.core.compilers.IonQNativeCompiler" in message
    assert "pip install qstore-ionq" in message and '"qstore[ionq]"' in message
    assert isinstance(info.value, ImportError)  # `except ImportError` code keeps working
    assert "IonQNativeCompiler" not in compilers.__dict__  # a failure is not cached


@pytest.mark.usefixtures("without_ionq")
@pytest.mark.parametrize(
    ("method", "kwargs", "what"),
    [
        ("to_ionq_json", {}, "UnifiedCircuit.to_ionq_json(gateset='qis')"),
        ("to_ionq_json", {"gateset": "native"}, "UnifiedCircuit.to_ionq_json(gateset='native')"),
        ("to_ionq_native", {}, "UnifiedCircuit.to_ionq_json(gateset='native')"),
    ],
)
def test_ionq_json_without_the_plugin_says_what_to_install(
    method: str, kwargs: dict[str, Any], what: str
) -> None:
    with pytest.raises(MissingDependencyError, match="pip install qstore-ionq") as info:
        getattr(bell(), method)(**kwargs)
    assert what in str(info.value)


def test_ionq_json_forwards_every_argument_to_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in qstore.ionq that records its calls: checks core's side of the contract
    # (argument names and defaults) independently of the plugin's progress.
    calls: list[tuple[qc.UnifiedCircuit, dict[str, Any]]] = []

    def circuit_to_ionq_json(circuit: qc.UnifiedCircuit, **kwargs: Any) -> dict[str, Any]:
        calls.append((circuit, kwargs))
        return {"qubits": circuit.n_qubits, "circuit": []}

    stand_in = types.ModuleType("qstore.ionq")
    stand_in.circuit_to_ionq_json = circuit_to_ionq_json  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qstore.ionq", stand_in)
    c = bell()
    assert c.to_ionq_json() == {"qubits": 2, "circuit": []}
    c.to_ionq_native(optimize=False, target="qpu.forte-1")
    c.to_ionq_json(gateset="native", target="qpu.aria-1")
    assert [kw for _, kw in calls] == [
        {"gateset": "qis", "optimize": True, "target": None},
        {"gateset": "native", "optimize": False, "target": "qpu.forte-1"},
        {"gateset": "native", "optimize": True, "target": "qpu.aria-1"},
    ]
    assert all(circuit is c for circuit, _ in calls)


def _ionq_plugin() -> Any:
    try:
        mod = importlib.import_module("qstore.ionq")
    except ImportError:
        pytest.skip("qstore-ionq is not installed")
    if not hasattr(mod, "IonQNativeCompiler") or not hasattr(mod, "circuit_to_ionq_json"):
        pytest.skip("the installed qstore-ionq has no native compiler yet")
    return mod


def test_with_the_plugin_installed_core_returns_its_compiler_and_json() -> None:
    ionq = _ionq_plugin()
    assert qc.compilers.IonQNativeCompiler is ionq.IonQNativeCompiler
    c = bell()
    assert c.to_ionq_native() == ionq.circuit_to_ionq_json(c, gateset="native", optimize=True)
    assert c.to_ionq_json() == ionq.circuit_to_ionq_json(c, gateset="qis", optimize=True)
