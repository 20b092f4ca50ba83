"""A throwaway PostgreSQL schema per test (imported as ``pgschema``: tests/ is on sys.path).

The server at ``JUPYTER_MLOPS_TEST_POSTGRES_URL`` is shared by every test (and by other
test sessions): each store gets a schema of its own, selected through ``search_path`` in
the URL, and dropped afterwards, so no test sees another's experiments.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

PG_URL = os.environ.get("JUPYTER_MLOPS_TEST_POSTGRES_URL")
SKIP_REASON = (
    "set JUPYTER_MLOPS_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) "
    "to run the PostgreSQL variant"
)


@contextmanager
def fresh_schema(prefix: str) -> Iterator[str]:
    """The URL of a new, empty schema named ``<prefix>_<random>``; skips the test without
    a PostgreSQL server."""
    if not PG_URL:
        pytest.skip(SKIP_REASON)
    import sqlalchemy as sa

    from jupyter_mlops.tracking.migrate import normalize_uri

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalize_uri(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
