"""Engines and migrations of the tracking database.

* :func:`normalize_uri` maps ``postgresql://`` to the psycopg 3 driver.
* :func:`make_engine` sets SQLite up for many concurrent writers: WAL, a 30 s busy
  timeout, foreign keys, case-sensitive ``LIKE``, and ``BEGIN IMMEDIATE`` for write
  transactions (connections opened with ``execution_options(write=True)``) so writers
  queue on the lock instead of failing with "database is locked" mid-transaction.
* :func:`upgrade` applies the Alembic migrations shipped in this package under a
  lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so several
  processes opening a new store at once migrate it exactly once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

#: Alembic's version table for this schema (own name: other schemas may share the DB).
VERSION_TABLE = "mlops_tracking_alembic_version"
#: Key of the PostgreSQL advisory lock held while migrating ("mlopsmig").
_PG_LOCK_KEY = 0x6D6C6F70736D6967
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: WAL pages before a commit checkpoints (SQLite's default: 1000, ~4 MB). A batch of
#: traces with random ids dirties pages all over its indexes (~20 MB per 500 traces
#: in a store of 100k); checkpointing every few commits rather than every commit writes
#: a page rewritten by consecutive commits to the database once: 15-20 % more traces/s.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000


def normalize_uri(uri: str) -> str:
    """``postgresql://`` / ``postgres://`` → ``postgresql+psycopg://`` (psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    return uri


def sqlite_path(uri: str) -> str | None:
    """The database file of a ``sqlite:///`` URI (None for in-memory or other dialects)."""
    url = sa.engine.make_url(uri)
    if not url.drivername.startswith("sqlite"):
        return None
    db = url.database or ""
    if db in ("", ":memory:") or db.startswith("file:"):
        return None
    return os.path.abspath(db)


def make_engine(uri: str) -> Engine:
    uri = normalize_uri(uri)
    url = sa.engine.make_url(uri)
    if url.drivername.startswith("sqlite"):
        return _sqlite_engine(uri)
    if not url.drivername.startswith("postgresql"):
        from .errors import invalid

        raise invalid(f"Unsupported tracking database URI scheme '{url.drivername}'")
    return sa.create_engine(uri, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_engine(uri: str) -> Engine:
    path = sqlite_path(uri)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if path is None:
        kwargs["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
    else:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    engine = sa.create_engine(uri, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Transactions are begun by us (below), not implicitly by the driver.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if path is not None:
            _retry_locked(lambda: cur.execute("PRAGMA journal_mode = WAL"))
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA case_sensitive_like = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction: ``BEGIN IMMEDIATE`` on an engine of :func:`make_engine`
    for SQLite, so writers queue on the lock instead of failing mid-transaction."""
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read transaction: one consistent snapshot for multi-query reads."""
    with engine.connect() as conn, conn.begin():
        yield conn


def _retry_locked(fn: Any, deadline_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> Any:
    """Run ``fn``, retrying while SQLite reports the database locked (switching to
    WAL needs a moment of exclusive access when several processes open a new file)."""
    import sqlite3

    end = time.monotonic() + deadline_s
    delay = 0.01
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > end:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "jupyter_mlops.tracking:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", "jupyter_mlops.tracking:migrations")
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar()


def upgrade(engine: Engine, head: str | None = None) -> None:
    """Bring the schema to the newest revision; a no-op when it is there already.

    Checks without a lock first (the common case: an existing, current store), then
    takes the migration lock and lets Alembic do what is still left, so concurrent
    first openers serialize and the later ones find the work done.
    """
    from alembic import command

    head = head or head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            conn.rollback()
            return
        conn.rollback()
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        if current_revision(conn) != head:
            command.upgrade(alembic_config(conn), "head")
