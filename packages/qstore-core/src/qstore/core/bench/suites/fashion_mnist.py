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

The models are :class:`~qstore.core.bench.plugins.TrainingContender` s of the installed
distributions (case ``"fashion-mnist"``: qstore-tf's Keras models and TFQ's, qstore-torch's
PyTorch models), built and trained with the demo's own functions. This module only runs them.

Figures: fit time (median of the repetitions; each builds and fits a fresh model after one
warm-up fit on a few batches), test accuracy, and, for the quantum models, where the time goes:
the quantum block's forward + gradient per batch timed alone, times the steps of the fit.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qstore.core.bench.harness import Result, Run, Timing
from qstore.core.bench.plugins import FASHION_MNIST, Trained, TrainingContender, plugin_contenders
from qstore.core.bench.runner import UNAVAILABLE, Log, Options, add_result, skip_note
from qstore.core.demos.fashion_mnist import (
    BATCH,
    EPOCHS,
    FEATURES,
    VALIDATION_SPLIT,
    Data,
    load_data,
)

QUICK_TRAIN = 4800
QUICK_TEST = 1000
FULL_REPS = 3
REPEAT_BUDGET_S = 150.0  # no further repetitions once a contender has used this much


def models(options: Options, run: Run, log: Log) -> list[TrainingContender]:
    """Every model the installed distributions contribute, the classical twins first (the
    quantum models' profiles compare with their group's twin)."""
    found = plugin_contenders(FASHION_MNIST, TrainingContender, options, run, log)
    return sorted(found, key=lambda m: m.kind != "baseline")


def _warm_up(model: TrainingContender, data: Data) -> None:
    """One short fit: imports, kernel caches and first-call costs out of the timed fits."""
    n = min(len(data.x_train), 8 * BATCH)
    small = Data(data.x_train[:n], data.y_train[:n], data.x_test[:BATCH], data.y_test[:BATCH])
    model.fit(small, 1)


def _profile(
    model: TrainingContender, data: Data, epochs: int, fit_s: float, twin_s: float | None
) -> str:
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


def _python_profile(model: TrainingContender, data: Data, steps: int = 150, top: int = 12) -> str:
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
    candidates = [m for m in models(options, run, log) if options.selected(f"{m.group} {m.name}")]
    if not candidates:
        why = "no model selected" if options.plugins != () else "--no-plugins"
        skip_note(
            run,
            log,
            "the fashion-mnist suite",
            f"{why}: its models come from qstore-tf (Keras, TFQ) and qstore-torch (PyTorch)",
        )
        return
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
    for model in candidates:
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
