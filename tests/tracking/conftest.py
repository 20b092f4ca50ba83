"""Store fixtures: every store test runs on SQLite (tmp_path) and on PostgreSQL
(``JUPYTER_MLOPS_TEST_POSTGRES_URL``; each test gets its own schema, dropped after)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

PG_URL = os.environ.get("JUPYTER_MLOPS_TEST_POSTGRES_URL")
PG_SKIP_REASON = "PostgreSQL tests need JUPYTER_MLOPS_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"


def _pg_admin(url: str):
    import sqlalchemy as sa

    from jupyter_mlops.tracking.migrate import normalize_uri

    return sa.create_engine(normalize_uri(url), isolation_level="AUTOCOMMIT")


@contextmanager
def _pg_schema() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = _pg_admin(PG_URL)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema; the URL selects it through ``search_path``."""
    with _pg_schema() as url:
        yield url


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlops.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture(scope="module", params=BACKENDS)
def module_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One store per backend shared by a module's read-only tests."""
    tmp = tmp_path_factory.mktemp("store")
    if request.param == "sqlite":
        s = SqlTrackingStore(f"sqlite:///{tmp / 'mlops.db'}")
        yield s
        s.close()
        return
    with _pg_schema() as url:
        s = SqlTrackingStore(url, artifact_root=str(tmp / "artifacts"))
        yield s
        s.close()


@pytest.fixture
def store(store_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    s = SqlTrackingStore(store_uri, artifact_root=str(tmp_path / "artifacts"))
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    s = SqlTrackingStore(f"sqlite:///{tmp_path / 'mlops.db'}")
    yield s
    s.close()
