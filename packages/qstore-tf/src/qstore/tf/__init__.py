"""``qstore.tf``: Keras 3 quantum layers on TensorFlow, TFQ interop, multi-worker training.

>>> import keras
>>> import qstore.tf as qs_tf
>>> model = keras.Sequential(
...     [keras.Input((64,)), qs_tf.layers.QuantumLayer(n_qubits=8, depth=4), keras.layers.Dense(10)]
... )
>>> model.output_shape
(None, 10)
"""

from __future__ import annotations

from qstore.tf import layers
from qstore.tf.distributed import DistributedConfig, TensorFlowDistributedTrainer
from qstore.tf.layers import AmplitudeEncoding, ExpectationValue, QuantumLayer

__version__ = "4.0.0a1"

__all__ = [
    "AmplitudeEncoding",
    "DistributedConfig",
    "ExpectationValue",
    "QuantumLayer",
    "TensorFlowDistributedTrainer",
    "__version__",
    "layers",
]
