"""The peers that the simulator distributions add to ``qstore bench`` measure the reference
workload itself: at a small size, each peer's forward pass gives the same ⟨Z_i⟩ (summed over the
batch and the qubits) as qstore-core's ``local`` backend on the same features and weights. A peer
that ran another circuit, another binding order or other data would make every ratio in the
benchmark report meaningless. (TensorFlow Quantum's is checked in qstore-tf's tests, in the
``tfq`` environment.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qstore.core.backends.local import LocalBackend
from qstore.core.bench import Contender
from qstore.core.bench.plugins import CASES, installed
from qstore.core.bench.workload import backend_case

N = 4


def _total(value: Any) -> float:
    """A forward call's result (array, list of arrays, torch or PennyLane scalar) summed."""
    if hasattr(value, "detach"):
        value = value.detach().numpy()
    return float(np.sum(np.real(np.asarray(value, dtype=complex))))


def _local_total() -> float:
    return _total(backend_case(N, LocalBackend()).forward())


def _check_peers(module: Any) -> list[str]:
    reference = _local_total()
    checked = []
    for case in CASES:
        if case == "fashion-mnist":
            continue
        for contender in module.contenders(case):
            assert isinstance(contender, Contender) and contender.kind == "peer"
            value = _total(contender.setup(N).forward())
            assert value == pytest.approx(reference, abs=1e-5), (case, contender.name)
            checked.append(contender.name)
    return checked


@pytest.mark.slow
def test_qsimcirq_peers_run_rw() -> None:
    module = pytest.importorskip("qstore.sim.qsim.bench")
    assert installed().get("qsim") == "qstore-sim-qsim"
    assert set(_check_peers(module)) == {"qsimcirq sweep", "qsimcirq, one circuit each"}


@pytest.mark.slow
def test_pennylane_peers_run_rw() -> None:
    module = pytest.importorskip("qstore.sim.lightning.bench")
    pytest.importorskip("torch")  # default.qubit's peer backpropagates with torch
    assert installed().get("lightning") == "qstore-sim-lightning"
    assert set(_check_peers(module)) == {
        "pennylane lightning.qubit adjoint",
        "pennylane lightning.qubit adjoint device_vjp",
        "pennylane default.qubit torch backprop",
        "pennylane lightning.qubit",
    }
    # The gradient calls run too (what "forward+gradient" times).
    for contender in module.contenders("rw"):
        grad = contender.setup(N).forward_grad
        assert grad is not None and np.all(np.isfinite(np.asarray(_as_array(grad()))))


def _as_array(value: Any) -> Any:
    return value.detach().numpy() if hasattr(value, "detach") else value
