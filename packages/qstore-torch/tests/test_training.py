"""A small hybrid model learns a real task: scikit-learn's 8x8 digits, 3 against 8."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from qstore.torch import QuantumLayer

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.mark.slow
def test_hybrid_model_learns_digits_three_versus_eight() -> None:
    """64 pixels (as angles in [0, π/2]) straight into 8 qubits: the angle encoding uploads them
    in 8 chunks over 3 trainable layers; a Linear head; Adam for 10 epochs. Reaches 96-98 %
    held-out accuracy here (over seeds); chance is about 50 %."""
    x_all, y_all = sklearn_datasets.load_digits(return_X_y=True)
    keep = (y_all == 3) | (y_all == 8)
    x = torch.tensor(x_all[keep] / 16.0 * (math.pi / 2), dtype=torch.float32)
    y = torch.tensor((y_all[keep] == 8).astype(np.int64))
    torch.manual_seed(0)
    order = torch.randperm(len(y))
    x, y = x[order], y[order]
    n_train = int(0.75 * len(y))
    model = nn.Sequential(QuantumLayer(n_qubits=8, depth=3), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    start = time.perf_counter()
    for _ in range(10):
        for i in range(0, n_train, 32):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (model(x[n_train:]).argmax(dim=1) == y[n_train:]).float().mean().item()
    assert accuracy >= 0.9, accuracy
    assert seconds < 120, seconds  # 1-5 s on one core; generous for loaded CI machines
