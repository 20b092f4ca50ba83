"""What an unexpected exception means for the caller.

Handlers answer :class:`TrackingError` themselves; anything else reaching
:meth:`~.handlers.base.MLOpsHandler.guarded` is looked up here first, so that

- a client's input that only fails deep down (JSON nested past the recursion
  limit, a lone surrogate, a file name longer than the file system allows, a
  query too large for the database) is a 400 with MLflow's error JSON;
- a server-side condition says what happened with a status clients retry: a full
  disk is 507 ``RESOURCE_EXHAUSTED`` ("No space left on the artifact store"), a
  database that is unreachable, restarting or locked is 503
  ``TEMPORARILY_UNAVAILABLE``. Both recover by themselves once the condition ends
  (the SQL engine checks pooled connections before use).

Everything else stays a 500 ``INTERNAL_ERROR`` with the traceback in the log.
"""

from __future__ import annotations

import errno

from ..tracking.errors import (
    INSUFFICIENT_STORAGE,
    RESOURCE_EXHAUSTED,
    TEMPORARILY_UNAVAILABLE,
    TrackingError,
    invalid,
)

_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# SQLite's complaints about a statement too large for it: the request's size, not a fault.
_SQLITE_TOO_LARGE = (
    "expression tree is too large",
    "too many sql variables",
    "string or blob too big",
    "too many terms",
    "parser stack overflow",
)
_SQLITE_BUSY = ("database is locked", "database table is locked", "unable to open database")


def no_space(where: str) -> TrackingError:
    return TrackingError(
        f"No space left on the {where}: the write was not done; free space and retry.",
        RESOURCE_EXHAUSTED,
        status=INSUFFICIENT_STORAGE,
    )


def unavailable(why: str) -> TrackingError:
    return TrackingError(
        f"The tracking database is unavailable ({why}); retry later.", TEMPORARILY_UNAVAILABLE
    )


def _first_line(exc: BaseException | None, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line[:limit]


def classify(exc: BaseException, storage: str = "server's disk") -> TrackingError | None:
    """The error to answer for ``exc``, or None for a fault of ours (a 500).

    ``storage`` names what a handler writes to ("artifact store"), for disk-full messages.
    """
    if isinstance(exc, RecursionError):
        return invalid("The request is nested too deeply to be read.")
    if isinstance(exc, UnicodeEncodeError) and "surrogate" in str(exc):
        return invalid(
            "The request holds a lone UTF-16 surrogate (such as \\ud800), "
            "which is not a Unicode character."
        )
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        if exc.errno in _NO_SPACE:
            return no_space(storage)
        if exc.errno == errno.ENAMETOOLONG:
            return invalid(
                "A name in the path is too long for the file system (at most 255 bytes per name)."
            )
    return _database(exc)


def _database(exc: BaseException) -> TrackingError | None:
    mod = type(exc).__module__
    if not mod.startswith("sqlalchemy"):
        return None
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError):  # pool exhausted
        return unavailable("all its connections are busy")
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    orig = exc.orig
    text = str(orig).lower()
    omod = type(orig).__module__
    if omod.startswith("sqlite3"):
        if "database or disk is full" in text or "disk is full" in text:
            return no_space("tracking database's disk")
        if any(t in text for t in _SQLITE_TOO_LARGE):
            return invalid(f"The request is too large for the database ({_first_line(orig)}).")
        if isinstance(exc, sa_exc.OperationalError) and any(t in text for t in _SQLITE_BUSY):
            return unavailable(_first_line(orig))
        return None
    if omod.startswith("psycopg"):
        sqlstate = getattr(orig, "sqlstate", None) or ""
        if sqlstate == "53100":  # disk_full
            return no_space("tracking database's disk")
        if sqlstate == "54001":  # statement_too_complex
            return invalid(f"The request is too large for the database ({_first_line(orig)}).")
        if (
            exc.connection_invalidated
            or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
            or sqlstate.startswith(("08", "57P"))
        ):
            # connection refused or lost, server shutting down or starting up
            return unavailable(_first_line(orig))
    return None
