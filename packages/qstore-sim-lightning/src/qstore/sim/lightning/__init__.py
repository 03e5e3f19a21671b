"""PennyLane Lightning as the Q-Store backends ``lightning``, ``lightning.gpu`` and
``lightning.kokkos``.

>>> import qstore.core as qc
>>> backend = qc.backends.get("lightning")
>>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
>>> backend.expectation(c, qc.Z(0) * qc.Z(1)).round(6).tolist()
[[1.0]]
"""

from __future__ import annotations

from qstore.sim.lightning.backend import (
    LightningBackend,
    LightningGPUBackend,
    LightningKokkosBackend,
)

__all__ = ["LightningBackend", "LightningGPUBackend", "LightningKokkosBackend", "__version__"]
__version__ = "4.0.0a1"
