"""Suite ``fashion-mnist``: the seed's hybrid model trained end to end, Keras and PyTorch.

Data: Fashion-MNIST pixels / 255, PCA to 64 components (fitted on the training images),
standardised. Model (SPEC §4.1, first shape)::

    Input(64) -> Dense(32, relu) -> AmplitudeEncoding(6) -> QuantumLayer(6, depth=4)
              -> ExpectationValue(Z x 6) -> Dense(128, relu) -> Dropout(0.2) -> Dense(10, softmax)

trained with Adam, batch 32, validation split 0.2 (the last 20 %, as Keras takes it), 3 epochs,
next to:

* the *classical twin*: ``Dense(6, tanh)`` in place of the three quantum layers — the framework's
  floor, in Keras and in PyTorch (target: Q-Store's fit time at most 2x its twin's);
* the same model on TensorFlow Quantum (``Dense(6)`` angles -> ``RY`` encoding -> 4 x (``RY``,
  ``RZ``, CNOT chain) -> ``⟨Z_i⟩``, adjoint), where TFQ is installed (target: 5x faster).

Figures: fit time (median of the repetitions; each builds and fits a fresh model after one
warm-up fit on a few batches), test accuracy, and, for the quantum models, where the time goes:
the quantum block's forward + gradient per batch timed alone, times the steps of the fit.
"""

from __future__ import annotations

import cProfile
import math
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.bench import workload as wl
from qstore.core.bench.harness import Result, Run, Timing
from qstore.core.bench.runner import UNAVAILABLE, Log, Options, add_result, skip_note
from qstore.core.demos import fashion_mnist as demo
from qstore.core.demos.fashion_mnist import (
    BATCH,
    DEPTH,
    EPOCHS,
    FEATURES,
    N_QUBITS,
    VALIDATION_SPLIT,
    Data,
    load_data,
)

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

QUICK_TRAIN = 4800
QUICK_TEST = 1000
FULL_REPS = 3
REPEAT_BUDGET_S = 150.0  # no further repetitions once a contender has used this much


@dataclass(frozen=True)
class Trained:
    """One fit: its seconds and the test accuracy reached."""

    fit_s: float
    accuracy: float


@dataclass(frozen=True)
class Model:
    """A contender: ``fit(data, epochs) -> Trained`` and optionally its quantum block's timer."""

    name: str
    group: str
    kind: str
    fit: Callable[[Data, int], Trained]
    quantum_step: Callable[[], Callable[[], object]] | None = None


# -- Keras -----------------------------------------------------------------------------------
def _keras() -> Any:
    wl.tf_module()  # thread settings first
    return demo.keras_module()


def _keras_fit(block: Any) -> Callable[[Data, int], Trained]:
    def fit(data: Data, epochs: int) -> Trained:
        keras = _keras()
        keras.utils.set_random_seed(0)
        model = demo.build_keras_model(keras, block)
        history = demo.fit_keras(model, data, epochs)
        _, acc = demo.evaluate_keras(model, data)
        return Trained(history.fit_s, acc)

    return fit


def _qstore_tf_block(keras: Any) -> list[Any]:
    return demo._keras_quantum_block(keras)


def _keras_block_step(make_block: Callable[[Any], list[Any]]) -> Callable[[], Callable[[], object]]:
    """Forward + gradient of the quantum block alone on one batch, in ``tf.function``."""

    def setup() -> Callable[[], object]:
        keras = _keras()
        tf = wl.tf_module()
        block = make_block(keras)
        x = tf.constant(np.random.default_rng(0).normal(size=(BATCH, 32)), dtype=tf.float32)
        h = x
        for layer in block:
            h = layer(h)
        variables = [v for layer in block for v in layer.trainable_variables]

        def step() -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                h = x
                for layer in block:
                    h = layer(h)
                loss = tf.reduce_sum(h)
            return tape.gradient(loss, [x, *variables])

        compiled = tf.function(step)
        return lambda: compiled()[0].numpy()

    return setup


def _tfq_block(keras: Any) -> list[Any]:
    """``Dense(6)`` angles -> RW circuit on TFQ's adjoint expectation op, as Keras layers."""
    import cirq
    import sympy
    import tensorflow as tf
    import tensorflow_quantum as tfq

    circuit, qubits, xs, ws = wl.cirq_rw(cirq, sympy, N_QUBITS, DEPTH)
    op = tfq.differentiators.Adjoint().generate_differentiable_op(
        analytic_op=tfq.get_expectation_op()
    )

    class TFQCircuit(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.program = tfq.convert_to_tensor([circuit])
            self.names = tf.constant([str(s) for s in xs + ws])
            self.ops = tfq.convert_to_tensor([[cirq.Z(q) for q in qubits]])
            self.w = self.add_weight(
                shape=(len(ws),),
                initializer=keras.initializers.RandomUniform(0.0, 2 * math.pi),
                name="weights",
            )

        def call(self, angles: Any) -> Any:
            b = tf.shape(angles)[0]
            values = tf.concat([angles, tf.tile(self.w[None, :], [b, 1])], axis=1)
            return op(tf.tile(self.program, [b]), self.names, values, tf.tile(self.ops, [b, 1]))

        def compute_output_shape(self, input_shape: Any) -> Any:
            return (input_shape[0], N_QUBITS)

    return [keras.layers.Dense(N_QUBITS), TFQCircuit()]


# -- PyTorch ---------------------------------------------------------------------------------
def _torch_fit(block: demo.Block) -> Callable[[Data, int], Trained]:
    def fit(data: Data, epochs: int) -> Trained:
        torch = wl.torch_module()
        torch.manual_seed(0)
        model = demo.build_torch_model(torch, block)
        history = demo.fit_torch(model, data, epochs)
        _, acc = demo.evaluate_torch(model, data)
        return Trained(history.fit_s, acc)

    return fit


def _torch_block_step() -> Callable[[], object]:
    torch = wl.torch_module()
    block = torch.nn.Sequential(*demo._torch_quantum_block())
    x = torch.randn(BATCH, 32, requires_grad=True)

    def step() -> object:
        block.zero_grad(set_to_none=True)
        x.grad = None
        loss = block(x).sum()
        loss.backward()
        return loss

    return step


def models() -> list[Model]:
    """Every model of the suite (those whose library is missing are skipped)."""
    return [
        Model("classical Dense(6, tanh)", "keras", "baseline", _keras_fit("classical")),
        Model(
            "qstore.tf quantum",
            "keras",
            "qstore",
            _keras_fit("quantum"),
            _keras_block_step(_qstore_tf_block),
        ),
        Model(
            "tfq quantum", "keras", "peer", _keras_fit(_tfq_block), _keras_block_step(_tfq_block)
        ),
        Model("classical Linear(6) + tanh", "pytorch", "baseline", _torch_fit("classical")),
        Model(
            "qstore.torch quantum",
            "pytorch",
            "qstore",
            _torch_fit("quantum"),
            _torch_block_step,
        ),
    ]


def _warm_up(model: Model, data: Data) -> None:
    """One short fit: imports, kernel caches and first-call costs out of the timed fits."""
    n = min(len(data.x_train), 8 * BATCH)
    small = Data(data.x_train[:n], data.y_train[:n], data.x_test[:BATCH], data.y_test[:BATCH])
    model.fit(small, 1)


def _profile(model: Model, data: Data, epochs: int, fit_s: float, twin_s: float | None) -> str:
    """Where the time goes: the quantum block timed alone, against the whole fit."""
    assert model.quantum_step is not None
    step = model.quantum_step()
    timing = Timing.from_times(_times(step, reps=20))
    steps = data.train_steps() * epochs
    quantum_s = timing.median_s * steps
    lines = [
        f"fit: {fit_s:.2f} s for {steps} training steps ({1e3 * fit_s / steps:.2f} ms/step, "
        "validation included)",
        f"quantum block (encoding + circuit + expectations), forward + gradient of one batch "
        f"alone: {1e3 * timing.median_s:.3f} ms -> {quantum_s:.2f} s over the fit "
        f"({100 * quantum_s / fit_s:.0f} %)",
    ]
    if twin_s is not None:
        lines.append(
            f"classical twin's fit (framework, optimizer, data, classical layers): "
            f"{twin_s:.2f} s; the quantum model costs {fit_s - twin_s:+.2f} s more "
            f"({fit_s / twin_s:.2f}x)"
        )
        lines.append(
            f"not explained by the block alone (per-step costs of the quantum layers inside the "
            f"model, compilation, noise): {fit_s - twin_s - quantum_s:+.2f} s"
        )
    return "\n".join(lines)


def _python_profile(model: Model, data: Data, steps: int = 150, top: int = 12) -> str:
    """The functions where a short fit (``steps`` batches, one epoch) spends its own time.

    Python-level (cProfile): eager PyTorch shows its operators one by one; Keras' compiled
    train step shows up as the TensorFlow call that runs the whole graph.
    """
    n = min(len(data.x_train), int(steps * BATCH / (1 - VALIDATION_SPLIT)))
    small = Data(data.x_train[:n], data.y_train[:n], data.x_test[:BATCH], data.y_test[:BATCH])
    prof = cProfile.Profile()
    prof.runcall(model.fit, small, 1)
    stats = pstats.Stats(prof)
    total = max(float(getattr(stats, "total_tt", 0.0)), 1e-9)
    rows = []
    for (path, line, func), (_, ncalls, tottime, cumtime, _) in getattr(stats, "stats", {}).items():
        where = "/".join(Path(path).parts[-2:]) if path != "~" else "builtin"
        rows.append((tottime, cumtime, ncalls, f"{where}:{line}({func})"))
    rows.sort(reverse=True)
    lines = [f"Python profile of a {n}-sample, 1-epoch fit ({total:.2f} s), by own time:"]
    lines += [
        f"  {tt:7.3f} s {100 * tt / total:5.1f} %  {calls:>8d} calls  {name}"
        for tt, _, calls, name in rows[:top]
    ]
    return "\n".join(lines)


def _times(fn: Callable[[], object], reps: int) -> list[float]:
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run(options: Options, run: Run, log: Log) -> None:
    """Fit every selected model; record fit time, accuracy and the profile of the quantum ones."""
    from qstore.core.datasets.fashion_mnist import DatasetNotFoundError

    quick = options.quick
    epochs = int(options.extra.get("epochs") or (1 if quick else EPOCHS))
    reps = options.reps if options.reps is not None else (1 if quick else FULL_REPS)
    try:
        t0 = time.perf_counter()
        data = load_data(
            options.data_dir, QUICK_TRAIN if quick else None, QUICK_TEST if quick else None
        )
    except DatasetNotFoundError as exc:
        skip_note(run, log, "the fashion-mnist suite", exc)
        return
    log(
        f"  data: {len(data.x_train)} train ({VALIDATION_SPLIT:.0%} for validation), "
        f"{len(data.x_test)} test, PCA {FEATURES} in {time.perf_counter() - t0:.1f} s; "
        f"{epochs} epoch(s), batch {BATCH}, {reps} repetition(s)"
    )
    run.options["fashion-mnist"] = {
        "n_train": len(data.x_train),
        "n_test": len(data.x_test),
        "epochs": epochs,
        "batch": BATCH,
        "validation_split": VALIDATION_SPLIT,
        "reps": reps,
    }
    twins: dict[str, float] = {}
    for model in models():
        if not options.selected(f"{model.group} {model.name}"):
            continue
        try:
            _warm_up(model, data)
        except UNAVAILABLE as exc:
            skip_note(run, log, f"{model.group} {model.name}", f"not available here ({exc})")
            continue
        except Exception as exc:  # reported; the other models still run
            skip_note(
                run, log, f"{model.group} {model.name}", f"failed: {type(exc).__name__}: {exc}"
            )
            continue
        fits: list[Trained] = []
        spent = 0.0
        while len(fits) < reps and (not fits or spent < REPEAT_BUDGET_S):
            trained = model.fit(data, epochs)
            fits.append(trained)
            spent += trained.fit_s
            log(
                f"  {model.group}: {model.name}: fit {trained.fit_s:.2f} s, test accuracy "
                f"{100 * trained.accuracy:.1f} %"
            )
        timing = Timing.from_times([f.fit_s for f in fits])
        accuracy = float(np.median([f.accuracy for f in fits]))
        common: dict[str, Any] = {"group": model.group, "kind": model.kind}
        extra = {"epochs": epochs, "accuracies": [f.accuracy for f in fits]}
        add_result(
            run,
            log,
            Result.seconds("fashion-mnist", model.name, "fit time", timing, extra=extra, **common),
        )
        add_result(
            run,
            log,
            Result(
                "fashion-mnist",
                model.name,
                "test accuracy",
                accuracy,
                "fraction",
                reps=len(fits),
                **common,
            ),
        )
        if model.kind == "baseline":
            twins[model.group] = timing.median_s
        if model.quantum_step is not None:
            try:
                text = _profile(model, data, epochs, timing.median_s, twins.get(model.group))
                text += "\n" + _python_profile(model, data)
            except Exception as exc:  # the profile is extra information: note and go on
                text = f"profile failed: {type(exc).__name__}: {exc}"
            run.profiles[f"{model.group} {model.name}"] = text
            log("    " + text.replace("\n", "\n    "))
