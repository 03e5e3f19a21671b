"""TrainingConfig validation and round trips; the adaptive schedules' rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

import qstore
from qstore.core.errors import MissingDependencyError, TrainingConfigError
from qstore.core.training import DepthSchedule, ShotSchedule, TrainingConfig, load_framework

SEED_BACKENDS = [
    {"name": "qsim", "type": "simulator", "use_for": "development"},
    {"name": "lightning", "type": "simulator", "device": "cuda:0", "use_for": "training"},
    {"name": "ionq_simulator", "type": "cloud_simulator", "use_for": "validation"},
    {"name": "ionq_hardware", "type": "qpu", "target": "qpu.aria-1", "use_for": "production"},
]


def test_the_seed_config_round_trips_through_a_dict():
    cfg = qstore.TrainingConfig(
        n_qubits=8,
        circuit_depth=4,
        backends=SEED_BACKENDS,
        auto_backend_selection=True,
        routing_priority="balanced",
        cost_budget=100.0,
        batch_size=32,
        epochs=5,
        learning_rate=0.01,
        ml_framework="tensorflow",
        distributed_strategy="auto",
        adaptive_circuit_depth=True,
        adaptive_shot_allocation={"min_shots": 64, "max_shots": 4096},
        gradient_method="parameter_shift",
    )
    data = cfg.to_dict()
    assert data["backends"] == SEED_BACKENDS
    assert TrainingConfig.from_dict(data) == cfg
    assert cfg.shot_schedule == ShotSchedule(min_shots=64, max_shots=4096)
    assert cfg.depth_schedule == DepthSchedule(4, 8, 2, 1e-3)
    assert cfg.backends[3].options() == {"target": "qpu.aria-1"}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("n_qubits", 0, "n_qubits"),
        ("circuit_depth", 1.5, "circuit_depth"),
        ("routing_priority", "fast", "'balanced', 'cost', 'speed'"),
        ("cost_budget", -1.0, "cost_budget"),
        ("learning_rate", 0.0, "learning_rate"),
        ("ml_framework", "jax", "'tensorflow', 'pytorch'"),
        ("distributed_strategy", "ring", "multi_worker"),
        ("gradient_method", "backprop", "parameter_shift"),
        ("adaptive_shot_allocation", {"max_shots": 0}, "max_shots"),
        ("adaptive_circuit_depth", {"patience": 0}, "patience"),
        ("adaptive_circuit_depth", {"speed": 1}, "adaptive_circuit_depth"),
        ("backends", [{"name": "qsim", "use_for": "everything"}], "use_for"),
        ("backends", [{"name": "qsim", "type": "laptop"}], "type"),
        ("backends", [{"name": "lightning", "device": "tpu"}], "device"),
        ("backends", [{"name": "qsim", "colour": "red"}], "colour"),
        ("shots", 0, "shots"),
    ],
)
def test_invalid_fields_raise_errors_that_name_the_field_and_the_fix(field, value, says):
    with pytest.raises(TrainingConfigError) as err:
        TrainingConfig(**{field: value})
    assert says in str(err.value)


def test_framework_aliases_and_unknown_dict_keys():
    assert TrainingConfig(ml_framework="torch").ml_framework == "pytorch"
    assert TrainingConfig(ml_framework="keras").ml_framework == "tensorflow"
    with pytest.raises(TrainingConfigError, match="budget"):
        TrainingConfig.from_dict({"budget": 3})


def test_import_qstore_stays_light_and_exports_the_mid_level_api():
    import subprocess
    import sys

    code = (
        "import sys, qstore; assert 'qstore.core' not in sys.modules; "
        "qstore.TrainingConfig; qstore.QuantumModel; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_unknown_framework_names_the_distribution_to_install():
    with pytest.raises(MissingDependencyError, match="install"):
        load_framework("jax")


def test_shot_allocation_follows_the_shot_noise_bound():
    sched = ShotSchedule.create(None, min_shots=1, max_shots=10**9, target_ratio=0.5, smoothing=1)
    alloc = sched.allocator("parameter_shift")
    rng = np.random.default_rng(0)
    for _ in range(5):
        p, g, c = int(rng.integers(4, 40)), float(rng.uniform(0.01, 2)), float(rng.uniform(0, 3))
        expected = math.ceil(p * 0.5 * c / (0.5**2 * g))
        assert alloc.update(p, g, c) == max(expected, 1)
    # a shrinking gradient (near a minimum) needs more shots
    a = ShotSchedule.create(None, smoothing=1).allocator("parameter_shift")
    far, near = a.update(16, 1.0, 0.5), a.update(16, 0.01, 0.5)
    assert near > far


def test_depth_grows_only_after_patience_epochs_without_improvement():
    ctl = DepthSchedule.create(2, patience=2, max_depth=3).controller()
    losses = [1.0, 0.9, 0.8999, 0.8998, 0.5, 0.5, 0.5, 0.5]
    grown = [ctl.observe(v) for v in losses]
    assert grown == [None, None, None, 3, None, None, None, None]
    assert ctl.depth == 3 and ctl.changes == [(4, 3)]
