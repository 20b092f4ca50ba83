"""Errors of the tracking domain, carrying MLflow's error codes.

The REST layer turns a :class:`TrackingError` into MLflow's error JSON
(``{"error_code": ..., "message": ...}``) with the HTTP status MLflow uses for
that code, so the official ``mlflow`` client reacts exactly as it does against
an MLflow server (for example ``set_experiment`` keys on
``RESOURCE_DOES_NOT_EXIST``).
"""

from __future__ import annotations

# error_code -> HTTP status, as in mlflow/exceptions.py (ERROR_CODE_TO_HTTP_STATUS)
HTTP_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_CONFLICT": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL_ERROR": 500,
    # MLflow answers 500 for INVALID_STATE, which its client retries for minutes; ours
    # are all a client acting on an object in the wrong state (renaming a deleted
    # experiment): a client mistake, so 400 with MLflow's code.
    "INVALID_STATE": 400,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
}

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
BAD_REQUEST = "BAD_REQUEST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
INVALID_STATE = "INVALID_STATE"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
#: HTTP status of a server whose disk is full (WebDAV's "Insufficient Storage").
INSUFFICIENT_STORAGE = 507


class TrackingError(Exception):
    """An error with an MLflow error code; ``str(err)`` is the message."""

    def __init__(
        self, message: str, error_code: str = INVALID_PARAMETER_VALUE, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status

    @property
    def http_status(self) -> int:
        """MLflow's status for the code, unless the error names its own (507: disk full)."""
        return self.status or HTTP_STATUS.get(self.error_code, 500)

    def to_json(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}

    def __repr__(self) -> str:
        return f"TrackingError({self.error_code}: {self.message})"


def invalid(message: str) -> TrackingError:
    """A client's mistake: a bad value, a missing field, a malformed filter."""
    return TrackingError(message, INVALID_PARAMETER_VALUE)


def not_found(message: str) -> TrackingError:
    return TrackingError(message, RESOURCE_DOES_NOT_EXIST)


def already_exists(message: str) -> TrackingError:
    return TrackingError(message, RESOURCE_ALREADY_EXISTS)
