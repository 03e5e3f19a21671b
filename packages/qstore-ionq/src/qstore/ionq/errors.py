"""The errors of ``qstore.ionq``, all subclasses of :class:`qstore.core.errors.QStoreError`.

None of them ever carries the API key: messages name the status, the endpoint (without query
secrets), IonQ's error text and the request id, and say what to do.
"""

from __future__ import annotations

from qstore.core.errors import BackendError, CircuitError

__all__ = [
    "IonQAPIError",
    "IonQAuthenticationError",
    "IonQCompilerError",
    "IonQConfigError",
    "IonQError",
    "IonQJobFailedError",
    "IonQRateLimitError",
    "IonQTimeoutError",
]


class IonQError(BackendError):
    """Root of the errors raised while talking to IonQ (or its emulator)."""


class IonQConfigError(IonQError, ValueError):
    """A backend or client option is invalid (target, noise model, shots, timeouts ...)."""


class IonQCompilerError(CircuitError):
    """A circuit cannot be lowered to IonQ's gates (unbound symbols in JSON, unknown gate ...)."""


class IonQAPIError(IonQError):
    """The API answered with an error status that retrying cannot fix (or retries ran out).

    Attributes:
        status: the HTTP status code.
        code: IonQ's error code or type, when the body had one.
        request_id: the ``x-request-id`` header, for IonQ support.
    """

    def __init__(
        self, message: str, status: int = 0, code: str = "", request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id


class IonQAuthenticationError(IonQAPIError):
    """401/403: the API key is missing, wrong or not allowed to do this."""


class IonQRateLimitError(IonQAPIError):
    """429 answered more often than the retry policy allows."""


class IonQTimeoutError(IonQError, TimeoutError):
    """A request or a job did not finish within the timeout the caller set."""


class IonQJobFailedError(IonQError):
    """The job reached the ``failed`` (or ``canceled``/``deleted``) state instead of completing.

    Attributes:
        job_id: the job's id.
        status: its final status.
        failure: IonQ's ``failure`` object (``{"code": ..., "error": ...}``), if any.
    """

    def __init__(
        self, message: str, job_id: str, status: str, failure: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status
        self.failure = dict(failure or {})
