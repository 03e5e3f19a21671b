"""qstore.TrainingConfig / qstore.QuantumModel on the framework layers (cross-package)."""

from __future__ import annotations

import asyncio
import math
import os
import re
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import qstore
import qstore.core as qc
from qstore.core.backends.base import CostModel
from qstore.core.backends.local import LocalBackend
from qstore.core.routing import CostTracker, FallbackWarning

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


class Recording(LocalBackend):
    """The local simulator, remembering what it ran: gates per circuit, shots, VJP calls."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.ops: list[int] = []
        self.shots_seen: list[int | None] = []
        self.vjp_calls = 0

    def expectation(self, circuit, observables=None, values=None, **kw):
        self.ops.append(len(circuit.operations))
        self.shots_seen.append(kw.get("shots"))
        return super().expectation(circuit, observables, values, **kw)

    def vjp(self, *args, **kw):
        self.vjp_calls += 1
        return super().vjp(*args, **kw)

    def value_and_vjp(self, *args, **kw):
        self.vjp_calls += 1
        return super().value_and_vjp(*args, **kw)


class Priced(LocalBackend):
    """The local simulator at $0.001 per shot (sampling), for budgets during training."""

    @property
    def capabilities(self):
        return replace(super().capabilities, name="priced", cost=CostModel(per_shot=0.001))


def _data(n: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, np.pi, (n, 3))
    y = (np.cos(x[:, 0]) > 0).astype(int)
    return x, y


def _model(backends, entries, **fields):
    cfg = qstore.TrainingConfig(
        n_qubits=3,
        circuit_depth=1,
        backends=entries,
        batch_size=16,
        epochs=fields.pop("epochs", 2),
        learning_rate=fields.pop("learning_rate", 0.1),
        ml_framework=fields.pop("ml_framework", "pytorch"),
        distributed_strategy=fields.pop("distributed_strategy", "single"),
        **fields,
    )
    tracker = CostTracker(cfg.cost_budget, path=":memory:")
    router = qc.SmartBackendRouter(cfg, tracker=tracker, backends=backends, calibrate=False)
    return qstore.QuantumModel(cfg, router=router)


BOTH = [{"name": "rec", "use_for": ["training", "validation"]}]


def test_training_routes_phases_and_reports():
    rec = Recording()
    model = _model({"rec": rec}, BOTH)
    x, y = _data()
    history = asyncio.run(model.train(train_data=(x, y), val_data=_data(16, 1), progress=False))
    assert len(history["loss"]) == 2 and history["train_backend"] == ["rec", "rec"]
    assert all(0 <= a <= 1 for a in history["val_accuracy"])
    perf = model.get_performance_report()
    phases = {(b.backend, b.phase) for b in perf.backends}
    assert phases == {("rec", "training"), ("rec", "validation")}
    # 16 validation rows per epoch, each one circuit: what the backend saw
    val = next(b for b in perf.backends if b.phase == "validation")
    assert val.circuits == 2 * 16
    assert "Performance report" in str(perf) and "Cost report" in str(model.get_cost_report())
    assert model.predict(x[:5]).shape == (5, 2)


def test_gradient_method_is_honoured():
    x, y = _data(16)  # one step of 16 rows
    runs = {}
    for method in ("adjoint", "parameter_shift"):
        rec = Recording()
        model = _model({"rec": rec}, BOTH, gradient_method=method, epochs=1)
        asyncio.run(model.train((x, y), progress=False))
        (usage,) = model.get_performance_report().backends
        runs[method] = (rec, usage.circuits)
    adj, ps = runs["adjoint"], runs["parameter_shift"]
    # adjoint: the forward rows, then one backward pass of the backend over the same rows
    assert adj[0].vjp_calls == 1 and adj[1] == 16 + 16
    # parameter shift: no backend VJP; the forward rows, then two shifted rows per parameter
    # (6 weights, 3 inputs) and row
    # the inputs are data (no gradient wanted): only the 6 weights' gates are shifted
    assert ps[0].vjp_calls == 0 and ps[1] == 16 + 16 * 2 * 6


def test_adaptive_shot_allocation_changes_the_shots_that_run():
    x, y = _data(64)
    fixed = Recording(seed=1)
    asyncio.run(_model({"rec": fixed}, BOTH, shots=100, epochs=2).train((x, y), progress=False))
    assert {s for s in fixed.shots_seen} == {100}
    adaptive = Recording(seed=1)
    model = _model(
        {"rec": adaptive},
        BOTH,
        shots=100,
        epochs=2,
        adaptive_shot_allocation={"min_shots": 20, "max_shots": 5000},
    )
    history = asyncio.run(model.train((x, y), progress=False))
    seen = {s for s in adaptive.shots_seen}
    assert len(seen) > 1 and seen != {100}
    assert all(20 <= s <= 5000 for s in seen)
    # the allocator's choice after each step follows the shot-noise bound of the step before
    alloc = model.shot_allocator
    assert alloc is not None and alloc.history[0] == 100 and alloc.history[1:] != [100] * 7
    assert history["mean_shots"][0] is not None


def test_adaptive_depth_grows_the_circuit_on_a_plateau():
    rec = Recording()
    model = _model(
        {"rec": rec},
        BOTH,
        epochs=4,
        learning_rate=1e-9,  # nothing improves: a plateau from the first epoch
        adaptive_circuit_depth={"patience": 1, "max_depth": 3},
    )
    x, y = _data(16)
    history = asyncio.run(model.train((x, y), val_data=(x, y), progress=False))
    depth = history["depth"]
    assert depth[:3] == [1, 1, 2] and max(depth) <= 3  # grown after one flat epoch
    layer_ops = {1: None, 2: None, 3: None}
    for d in layer_ops:
        c = qc.templates.LayerSpec.create(3, d, "linear", "angle").circuit(3)[0]
        layer_ops[d] = len(c.operations)
    assert set(rec.ops) >= {layer_ops[1], layer_ops[2]}  # deeper circuits ran
    assert rec.ops[-1] == layer_ops[depth[-1]]


def test_budget_running_out_during_training_moves_to_the_fallback():
    entries = [
        {"name": "priced", "type": "qpu", "use_for": "training"},
        {"name": "rec", "type": "simulator", "use_for": "validation"},
    ]
    x, y = _data(32)
    # per step on 'priced' at 100 shots x $0.001: the forward pass, 16 rows = $1.60, then the
    # parameter-shift gradient of the weights (the inputs are data), 16 rows x 2 shifts x 6
    # weights = $19.20
    model = _model(
        {"priced": Priced(seed=0), "rec": Recording()}, entries, shots=100, cost_budget=30.0
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = asyncio.run(model.train((x, y), progress=False))
    # step 1: $20.80; step 2: its forward pass fits ($1.60), its gradient ($19.20 > $7.60
    # left) does not, so the step reruns on the fallback, and training stays there
    assert history["train_backend"] == ["rec", "rec"]
    assert any(issubclass(w.category, FallbackWarning) for w in caught)
    report = model.get_cost_report()
    assert report.used <= 30.0 and report.used == pytest.approx(20.8 + 1.6)
    assert report.left == pytest.approx(30.0 - 22.4)
    assert [b["backend"] for b in report.backends] == ["priced"]


def test_multi_worker_uses_the_distributed_trainer():
    rec = Recording()
    model = _model({"rec": rec}, BOTH, distributed_strategy="multi_worker", epochs=1)
    x, y = _data(32)
    history = asyncio.run(model.train((x, y), progress=False))
    assert math.isfinite(history["loss"][0])
    assert model._handle.trainer is not None  # PyTorchDistributedTrainer ran the epoch


def test_torch_data_objects_are_accepted():
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    x, y = _data(32)
    data = TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y))
    model = _model({"rec": Recording()}, BOTH, epochs=1)
    history = asyncio.run(model.train(DataLoader(data, batch_size=8), progress=False))
    assert len(history["loss"]) == 1


def _example() -> str:
    text = (ROOT / "docs" / "routing.md").read_text(encoding="utf-8")
    block = text.split("<!-- mid-level-example -->", 1)[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@pytest.mark.slow
def test_the_mid_level_example_runs_as_written_against_the_emulator(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("uvicorn")
    from qstore.ionq.testing import running_server

    script = tmp_path / "example.py"
    script.write_text(_example(), encoding="utf-8")
    with running_server(queue_delay=0.0) as server:
        env = dict(
            os.environ,
            IONQ_API_URL=server.base_url,
            IONQ_API_KEY="emulator",
            QSTORE_DATA_DIR=str(tmp_path / "data"),
            QSTORE_CACHE_DIR=str(tmp_path / "cache"),
        )
        out = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        jobs = server.emulator.jobs()
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Cost report" in out.stdout and "Performance report" in out.stdout
    assert "lightning@cuda:0" in out.stderr and "FallbackWarning" in out.stderr
    assert "ionq_simulator" in out.stdout  # validation ran on the (emulated) IonQ simulator
    assert jobs and all(j["backend"] == "simulator" for j in jobs)
    assert (tmp_path / "data" / "costs.sqlite").exists()


@pytest.mark.slow
def test_keras_multi_worker_uses_the_tensorflow_distributed_trainer():
    pytest.importorskip("tensorflow")
    from qstore.tf.distributed import TensorFlowDistributedTrainer

    model = _model(
        {"rec": Recording()},
        BOTH,
        ml_framework="tensorflow",
        distributed_strategy="multi_worker",
        epochs=2,
    )
    x, y = _data(32)
    history = asyncio.run(model.train((x, y), val_data=(x, y), progress=False))
    assert all(math.isfinite(v) for v in history["loss"] + history["val_loss"])
    assert isinstance(model._handle.trainer, TensorFlowDistributedTrainer)
    # the weights trained by the strategy's copy came back: the twin evaluates them
    before = model.predict(x[:4])
    assert before.shape == (4, 2) and np.all(np.isfinite(before))
