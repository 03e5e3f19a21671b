"""IonQ for Q-Store: backends, native-gate compiler, API client and emulator.

>>> import qstore.core as qc
>>> from qstore.ionq import IonQNativeCompiler
>>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
>>> IonQNativeCompiler(target="qpu.aria-1").compile(c).n_two_qubit_gates
1

* :class:`IonQBackend` (registered as ``ionq_simulator`` and ``ionq_hardware`` through
  :class:`IonQSimulatorBackend` and :class:`IonQHardwareBackend`): a minibatch is one job.
* :class:`IonQNativeCompiler` and :func:`circuit_to_ionq_json`: GPI/GPI2/MS(/ZZ), symbols kept.
* :class:`IonQClient`: async httpx client with retries, exactly-once submission, cancellation.
* :mod:`qstore.ionq.testing`: the API emulator (``create_app``), also ``qstore ionq emulator``.
* :data:`PRICES`, :class:`PriceTable`, :data:`TARGETS`: prices and targets as data.
"""

from __future__ import annotations

from typing import Any

from qstore.ionq.backend import (
    IonQBackend,
    IonQHardwareBackend,
    IonQSimulatorBackend,
    JobRecord,
    ionq_key_to_bits,
)
from qstore.ionq.client import IonQClient, RetryPolicy
from qstore.ionq.compiler import (
    IonQNativeCompiler,
    NativeCompilation,
    circuit_to_ionq_json,
    ionq_json_to_circuit,
)
from qstore.ionq.errors import (
    IonQAPIError,
    IonQAuthenticationError,
    IonQCompilerError,
    IonQConfigError,
    IonQError,
    IonQJobFailedError,
    IonQRateLimitError,
    IonQTimeoutError,
)
from qstore.ionq.targets import PRICES, TARGETS, Price, PriceTable, Target, get_target

__version__ = "4.0.0a1"

__all__ = [
    "PRICES",
    "TARGETS",
    "IonQAPIError",
    "IonQAuthenticationError",
    "IonQBackend",
    "IonQClient",
    "IonQCompilerError",
    "IonQConfigError",
    "IonQError",
    "IonQHardwareBackend",
    "IonQJobFailedError",
    "IonQNativeCompiler",
    "IonQRateLimitError",
    "IonQSimulatorBackend",
    "IonQTimeoutError",
    "JobRecord",
    "NativeCompilation",
    "Price",
    "PriceTable",
    "RetryPolicy",
    "Target",
    "__version__",
    "circuit_to_ionq_json",
    "create_emulator_app",
    "get_target",
    "ionq_json_to_circuit",
    "ionq_key_to_bits",
]


def __getattr__(name: str) -> Any:
    # The emulator needs starlette (the 'emulator' extra); import it only when asked for.
    if name == "create_emulator_app":
        from qstore.ionq.testing import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
