"""Batches split over threads (qstore.core.engine.threads) give what one thread gives."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

from qstore.core.backends.local import LocalBackend
from qstore.core.bench.workload import rw_circuit
from qstore.core.engine import threads
from qstore.core.observables import X, Z


def test_row_parts_cover_the_batch_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSTORE_ENGINE_WORKERS", "3")
    monkeypatch.setattr(threads, "SPLIT_MIN_AMPLITUDES", 1)
    parts = threads.row_parts(3, 7)
    assert [(p.start, p.stop) for p in parts] == [(0, 2), (2, 4), (4, 7)]
    monkeypatch.setattr(threads, "SPLIT_MIN_AMPLITUDES", 1 << 20)
    assert threads.row_parts(3, 7) == [slice(0, 7)]  # small states: one part
    monkeypatch.setenv("QSTORE_ENGINE_WORKERS", "1")
    monkeypatch.setattr(threads, "SPLIT_MIN_AMPLITUDES", 1)
    assert threads.row_parts(3, 7) == [slice(0, 7)]


def test_a_split_batch_gives_the_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    circuit, inputs, weights = rw_circuit(5, 2)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, np.pi, (7, 5))
    shared = {w: float(v) for w, v in zip(weights, rng.uniform(-2, 2, len(weights)), strict=True)}
    obs = [Z(0), X(1) * Z(4) + 0.5 * Z(2)]
    cot = rng.normal(size=(7, 2))
    be = LocalBackend()

    def everything() -> list[np.ndarray]:
        kw = {"names": inputs, "shared": shared}
        e, gv, gs = be.value_and_vjp(circuit, obs, x, cot, **kw)
        return [e, gv, gs, be.expectation(circuit, obs, x, **kw), be.state(circuit, x, **kw)]

    monkeypatch.setenv("QSTORE_ENGINE_WORKERS", "1")
    want = everything()
    monkeypatch.setenv("QSTORE_ENGINE_WORKERS", "3")
    monkeypatch.setattr(threads, "SPLIT_MIN_AMPLITUDES", 1)
    assert len(threads.row_parts(5, 7)) == 3
    got = everything()
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-12)
    # and the gradient is right: the shared weights against central differences
    h = 1e-6
    for j in (0, len(weights) - 1):
        up = dict(shared, **{weights[j]: shared[weights[j]] + h})
        dn = dict(shared, **{weights[j]: shared[weights[j]] - h})
        fd = (
            (be.expectation(circuit, obs, x, names=inputs, shared=up) * cot).sum()
            - (be.expectation(circuit, obs, x, names=inputs, shared=dn) * cot).sum()
        ) / (2 * h)
        assert abs(got[2][j] - fd) < 1e-6


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_splits_batches_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSTORE_ENGINE_WORKERS", "2")
    monkeypatch.setattr(threads, "SPLIT_MIN_AMPLITUDES", 1)
    circuit, inputs, weights = rw_circuit(3, 1)
    x = np.random.default_rng(0).uniform(0, 3, (6, 3))
    shared = dict.fromkeys(weights, 0.3)
    be = LocalBackend()
    want = be.expectation(circuit, None, x, names=inputs, shared=shared)  # the parent's pool runs
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_child_expectation, (x,)).get(timeout=60)
    np.testing.assert_allclose(got, want, atol=1e-12)


def _child_expectation(x: np.ndarray) -> np.ndarray:
    circuit, inputs, weights = rw_circuit(3, 1)
    assert len(threads.row_parts(3, x.shape[0])) == 2  # the split is taken in the child
    return LocalBackend().expectation(
        circuit, None, x, names=inputs, shared=dict.fromkeys(weights, 0.3)
    )
