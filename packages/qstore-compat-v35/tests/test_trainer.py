"""The v3.5 example end to end, the trainer's gradients and its configuration."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

import qstore
from qstore.compat import v3_5
from qstore.compat.v3_5.config import CompatConfigError, TrainingConfig
from qstore.compat.v3_5.gradients import BatchLoss, SubsampledSPSA, core_method, weight_vjp
from qstore.compat.v3_5.model import QuantumModel
from qstore.compat.v3_5.trainer import CompatTrainingError, QuantumTrainer
from qstore.core.errors import QStoreError


class Loader:
    """A v3.5-style loader: an async iterable of (X_batch, one_hot_y), restartable."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    async def _gen(self) -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, len(self.x), self.batch_size):
            yield self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]

    def __aiter__(self) -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        return self._gen()


def two_classes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 rotates qubit 0 towards |1>; class 0 stays near |0>."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.uniform(0.0, 0.3, (n, 8))
    x[:, 0] += 0.7 * labels
    return x, np.eye(2)[labels]


def test_the_v35_example_runs_warns_and_the_loss_falls() -> None:
    np.random.seed(0)  # what made a v3.5 script repeatable (it initialised from np.random)
    x, y = two_classes(100)
    with pytest.warns(DeprecationWarning) as caught:
        cfg = v3_5.TrainingConfig(
            pinecone_api_key="mock-key", quantum_sdk="mock", learning_rate=0.01, batch_size=10,
            epochs=5, n_qubits=8, circuit_depth=2,
        )  # fmt: skip
        bm = v3_5.create_default_backend_manager()
        trainer = v3_5.QuantumTrainer(cfg, bm)
        model = v3_5.QuantumModel(
            input_dim=8, n_qubits=8, output_dim=2, backend=bm.get_backend(), depth=2
        )
        # a second use of a name does not warn again
        v3_5.QuantumModel(input_dim=8, n_qubits=8, output_dim=2, backend=bm.get_backend())
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert len(messages) == 4, messages
    assert any("QuantumTrainer is deprecated; use qstore.QuantumModel" in m for m in messages)
    assert any("random bits" in m and "create_default_backend_manager" in m for m in messages)
    assert bm.get_backend().name == "local"

    history = asyncio.run(trainer.train(model=model, train_loader=Loader(x, y, 10), epochs=5))
    losses = [m.loss for m in history]
    assert [m.epoch for m in history] == [0, 1, 2, 3, 4]
    assert losses[-1] < losses[0] - 0.05, losses
    assert history[-1].accuracy is not None and history[-1].accuracy >= 0.8
    # subsampled SPSA: 10 forward + 2 * 5 perturbed evaluations per batch of 10
    assert all(m.n_circuit_executions == 10 * (10 + 10) for m in history)
    assert trainer.get_training_history() == history

    # the v4 conversion gives the same numbers as the trained model
    converted = qstore.convert_from_v3_5(model)
    np.testing.assert_allclose(converted.predict(x), model.expectations(x), atol=1e-12)
    out = asyncio.run(model.forward(x[0], shots=1000, seed=5))
    np.testing.assert_array_equal(out, converted.predict(x[0], shots=1000, seed=5))


@pytest.mark.parametrize("method", ["parameter_shift", "finite_diff"])
def test_core_gradients_of_the_batch_loss_match_finite_differences(method: str) -> None:
    model = QuantumModel(3, 3, 2, "local", depth=1, seed=0)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, (4, 3)), np.eye(2)[rng.integers(0, 2, 4)]
    loss = BatchLoss()
    cfg = TrainingConfig(
        pinecone_api_key="mock-key", gradient_method=method, shots_per_circuit=None
    )
    pred = model.expectations(x)
    grad = weight_vjp(core_method(cfg, model.backend, 0), model, x, loss.cotangent(pred, y), 0)
    theta, h = model.parameters.copy(), 1e-5
    ref = np.zeros_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        ref[k] = (
            loss(model.expectations(x, parameters=theta + e), y)
            - loss(model.expectations(x, parameters=theta - e), y)
        ) / (2 * h)
    np.testing.assert_allclose(grad, ref, atol=1e-5 if method == "finite_diff" else 1e-8)


@pytest.mark.slow
def test_subsampled_spsa_is_unbiased_on_average() -> None:
    model = QuantumModel(2, 2, 2, "local", depth=1, seed=0)
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-1, 1, (4, 2)), np.eye(2)[[0, 1, 1, 0]]
    loss = BatchLoss()
    exact = weight_vjp(
        core_method(
            TrainingConfig("mock-key", gradient_method="parameter_shift", shots_per_circuit=None),
            model.backend,
            0,
        ),
        model, x, loss.cotangent(model.expectations(x), y), 0,
    )  # fmt: skip
    est = SubsampledSPSA(subsample_size=2, c_initial=0.01, seed=0)
    est.step = 10**6  # a settled perturbation size
    mean = np.mean([est.estimate(model, x, y, loss, shots=None) for _ in range(2000)], axis=0)
    cos = mean @ exact / (np.linalg.norm(mean) * np.linalg.norm(exact))
    assert cos > 0.97, (mean, exact)
    assert np.linalg.norm(mean - exact) < 0.25 * np.linalg.norm(exact)


def test_parameter_shift_training_with_sgd_validation_and_checkpoints(tmp_path: Path) -> None:
    x, y = two_classes(24, seed=3)
    x = x[:, :3]
    cfg = TrainingConfig(
        pinecone_api_key="mock-key", gradient_method="parameter_shift", optimizer="sgd",
        learning_rate=0.2, momentum=0.5, shots_per_circuit=None, checkpoint_interval=2,
        checkpoint_directory=str(tmp_path), seed=1,
    )  # fmt: skip
    trainer = QuantumTrainer(cfg)
    model = QuantumModel(3, 3, 2, "local", depth=1, seed=4)
    history = asyncio.run(trainer.train(model, Loader(x, y, 8), Loader(x, y, 12), epochs=4))
    assert history[-1].loss < history[0].loss
    assert history[-1].val_loss is not None and history[-1].val_loss < history[0].val_loss
    # parameter shift: per batch of 8, 8 forward + 8 samples x 2 shifts x (3 inputs + 9 weights)
    assert history[0].n_circuit_executions == 3 * (8 + 8 * 2 * (3 + 9))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_epoch_1.json", "checkpoint_epoch_3.json"
    ]  # fmt: skip
    again = QuantumModel(3, 3, 2, "local", depth=1, seed=0)
    resumed = QuantumTrainer(cfg)
    asyncio.run(resumed.load_checkpoint(tmp_path / "checkpoint_epoch_3.json", again))
    np.testing.assert_array_equal(again.parameters, model.parameters)
    assert resumed.current_epoch == 4


def test_custom_loss_and_frozen_parameters() -> None:
    x, y = two_classes(16, seed=5)
    cfg = TrainingConfig("mock-key", gradient_method="spsa", shots_per_circuit=None, seed=2)
    trainer = QuantumTrainer(cfg)
    trainer.set_loss_function(lambda p, t: float(np.sum(np.abs(p - t) ** 3)))
    model = QuantumModel(8, 8, 2, "local", depth=1, seed=1)
    model.quantum_layer.freeze_parameters(list(range(12)))
    before = model.parameters.copy()
    metrics = asyncio.run(trainer.train_epoch(model, Loader(x, y, 8), epoch=0))
    assert np.isfinite(metrics.loss)
    np.testing.assert_array_equal(model.parameters[:12], before[:12])
    assert not np.array_equal(model.parameters[12:], before[12:])


def test_unknown_v35_flags_are_reported_once() -> None:
    with pytest.warns(UserWarning, match="enable_circuit_cache, pinecone_environment"):
        cfg = TrainingConfig(
            "mock-key", enable_circuit_cache=True, pinecone_environment="us-west-2"
        )
    assert cfg.ignored_flags == {"enable_circuit_cache": True, "pinecone_environment": "us-west-2"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TrainingConfig("mock-key", enable_circuit_cache=False)  # reported already


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gradient_method": "natural"}, "gradient_method must be one of"),
        ({"learning_rate": 0}, "learning_rate must be a positive number"),
        ({"quantum_sdk": "braket"}, "quantum_sdk must be one of"),
        ({"epochs": 0}, "epochs must be a positive int"),
        ({"shots_per_circuit": -5}, "shots_per_circuit must be a positive int"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(CompatConfigError, match=match) as info:
        TrainingConfig("mock-key", **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, QStoreError)


def test_a_used_up_loader_is_reported() -> None:
    x, y = two_classes(8)

    async def once() -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        yield x, y

    trainer = QuantumTrainer(TrainingConfig("mock-key", shots_per_circuit=None))
    model = QuantumModel(8, 8, 2, "local", depth=1)
    with pytest.raises(CompatTrainingError, match="yielded no batches in epoch 1"):
        asyncio.run(trainer.train(model, once(), epochs=2))


def test_real_pinecone_key_is_reported_not_used() -> None:
    x, y = two_classes(8)
    trainer = QuantumTrainer(TrainingConfig("pc-real-key", shots_per_circuit=None))
    with pytest.warns(UserWarning, match="does not. Keep quantum states in a state store"):
        asyncio.run(trainer.train(QuantumModel(8, 8, 2, "local", depth=1), [(x, y)], epochs=1))
    assert "pc-real-key" not in repr(trainer.config)
