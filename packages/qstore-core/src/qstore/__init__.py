"""Q-Store: quantum machine learning for Keras and PyTorch.

``qstore`` is a namespace shared by several distributions: ``qstore-core`` owns this file and
``qstore.core``; ``qstore-torch``, ``qstore-tf``, ``qstore-sim-qsim`` and the others add their own
subpackages (``qstore.torch``, ``qstore.tf``, ``qstore.sim.qsim`` ...), installed normally or in
editable mode, in any mix.
"""

from __future__ import annotations

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)

__version__ = "4.0.0a1"
