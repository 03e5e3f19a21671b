"""The exception hierarchy of Q-Store.

Every error the library raises on purpose is a :class:`QStoreError`. Subclasses also derive from
the matching built-in (``ValueError``, ``KeyError``, ``ImportError`` ...) so that ordinary
``except ValueError`` code keeps working.
"""

from __future__ import annotations


class QStoreError(Exception):
    """Root of every error raised by Q-Store."""


class CircuitError(QStoreError, ValueError):
    """A circuit was built or used incorrectly."""


class UnknownGateError(CircuitError):
    """A gate name or type is not in the gate table."""


class GateArityError(CircuitError):
    """A gate got the wrong number of qubits or parameters."""


class QubitIndexError(CircuitError):
    """A qubit index is out of range or repeated within one gate."""


class ParameterError(QStoreError, ValueError):
    """A parameter, symbol or expression is invalid."""


class UnboundParameterError(ParameterError):
    """A symbol has no value at a point where a number is required."""


class NonFiniteParameterError(ParameterError):
    """A parameter value is NaN or infinite."""


class BindingError(ParameterError):
    """A batch of parameter bindings has the wrong shape or contents."""


class ObservableError(QStoreError, ValueError):
    """An observable is malformed or does not fit the circuit."""


class SerializationError(QStoreError, ValueError):
    """A serialised circuit (JSON, QASM) is malformed or of an unsupported version."""


class ConversionError(QStoreError, ValueError):
    """A circuit cannot be converted to or from another library's form."""


class MissingDependencyError(QStoreError, ImportError):
    """An optional dependency is needed; the message names the extra or package to install."""


class BackendError(QStoreError, RuntimeError):
    """A backend failed to run a circuit."""


class BackendNotFoundError(QStoreError, KeyError):
    """No backend is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class CapabilityError(BackendError):
    """A backend was asked for something it does not support (too many qubits, shots ...)."""


class ResourceLimitError(CapabilityError):
    """A simulation would need more memory than allowed; refused before allocating."""


class GradientError(QStoreError, ValueError):
    """A gradient cannot be computed as requested."""


class CotangentError(BindingError):
    """A cotangent (the gradient flowing back into expectations) has the wrong shape or holds
    NaN or infinity."""


class LayerConfigError(QStoreError, ValueError):
    """A framework layer (``qstore.torch``, ``qstore.tf``) was configured with an invalid value
    or an impossible combination of options; raised at construction."""


class ShotsError(LayerConfigError):
    """A number of shots is not a positive integer (``None`` asks for exact expectations).

    Raised by every backend, gradient and layer alike (one check:
    :func:`qstore.core.validation.check_shots`); a layer raises it at construction, so it is a
    :class:`LayerConfigError` too."""


class LayerInputError(QStoreError, ValueError):
    """A framework layer received an input of the wrong shape, dtype or device."""


def require(module: str, extra: str, distribution: str = "qstore-core") -> MissingDependencyError:
    """Build the error raised when an optional ``module`` is missing.

    >>> err = require("cirq", "cirq")
    >>> "pip install" in str(err)
    True
    """
    return MissingDependencyError(
        f"This feature needs the optional package {module!r}, which is not installed. "
        f"Install it with: pip install '{distribution}[{extra}]'"
    )


class RoutingError(BackendError):
    """No backend the configuration allows can run a circuit here; the message lists each
    candidate with the reason it was skipped."""


class BudgetExceededError(RoutingError):
    """A paid execution does not fit in what is left of the cost budget.

    ``remaining`` and ``cost`` (US dollars) and ``backend`` say which job did not fit.
    """

    def __init__(
        self, message: str, *, remaining: float = 0.0, cost: float = 0.0, backend: str = ""
    ) -> None:
        super().__init__(message)
        self.remaining = remaining
        self.cost = cost
        self.backend = backend


class CostLedgerError(QStoreError, RuntimeError):
    """The cost ledger (SQLite) cannot be opened, read or written."""


class TrainingConfigError(QStoreError, ValueError):
    """A ``qstore.TrainingConfig`` field, or an argument of ``QuantumModel.train``, is invalid."""
