"""The qsim simulator (qsimcirq) as the Q-Store backend ``qsim``.

>>> import qstore.core as qc
>>> backend = qc.backends.get("qsim", threads=1)
>>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
>>> backend.expectation(c, qc.Z(0) * qc.Z(1)).round(5).tolist()
[[1.0]]
"""

from __future__ import annotations

from qstore.sim.qsim.backend import QsimBackend

__all__ = ["QsimBackend", "__version__"]
__version__ = "4.0.0a1"
