"""Test settings for qstore-torch."""

from __future__ import annotations

import torch

# The tests run small circuits in several pytest-xdist workers at once: one intra-op thread per
# worker avoids oversubscribing the cores (torch's thread pool spins badly when it is).
torch.set_num_threads(1)
