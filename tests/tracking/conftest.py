"""Store fixtures: every store test runs on SQLite (tmp_path) and on PostgreSQL
(``JUPYTER_MLOPS_TEST_POSTGRES_URL``; each test gets its own schema, dropped after)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from migrator import Migrator
from pgschema import fresh_schema

from jupyter_mlops.tracking import migrate
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema; the URL selects it through ``search_path``."""
    with fresh_schema("t") as url:
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
    with fresh_schema("t") as url:
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


@pytest.fixture
def migrator(store_uri: str) -> Iterator[Migrator]:
    """A :class:`Migrator` on the test's empty database (``store_uri``), disposed after."""
    m = Migrator(migrate.make_engine(store_uri))
    yield m
    m.engine.dispose()
