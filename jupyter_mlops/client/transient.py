"""Telling "the store is unreachable, try again later" apart from "the store
said no". The first kind is spooled and replayed; the second surfaces to the
user with the store's message. A third, "the store refused our token", is
spooled but not retried until the token changes (see the writer)."""

from __future__ import annotations

from ..tracking.errors import UNAUTHENTICATED, TrackingError


class StoreUnavailable(Exception):
    """The store could not be reached (connection refused, timeout, 5xx, 429)."""


class AuthRefused(TrackingError):
    """The store refused the client's token (or the lack of one): neither an
    outage nor a refusal of the data, and nothing gets in until the token is
    fixed. Error code ``UNAUTHENTICATED``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, UNAUTHENTICATED)


def is_transient(exc: BaseException) -> bool:
    """True for failures that say nothing about the data, only about the store's
    reachability: they are worth spooling and retrying."""
    if isinstance(exc, StoreUnavailable):
        return True
    if getattr(exc, "error_code", None) == "TEMPORARILY_UNAVAILABLE":
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    mod = type(exc).__module__
    if mod.startswith(("requests", "urllib3")):
        # requests.ConnectionError / Timeout / ChunkedEncodingError ...
        return True
    if mod.startswith("sqlalchemy"):
        # OperationalError covers "database is locked", a PostgreSQL server that
        # went away and connection refused; IntegrityError etc. are real errors.
        name = type(exc).__name__
        return name in (
            "OperationalError",
            "InterfaceError",
            "DisconnectionError",
            "TimeoutError",
        ) or bool(getattr(exc, "connection_invalidated", False))
    if mod.startswith(("psycopg", "sqlite3")):
        return type(exc).__name__ in ("OperationalError", "InterfaceError")
    return False
