"""Migration 0019: the index on span status (``span.status = 'ERROR'`` is searched from
it, issue 17), created on upgrade over existing spans and dropped on downgrade."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from migrator import Migrator

from jupyter_mlops.tracking import migrate
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

REVISION = "0019_span_status_index"


def _has_index(engine: sa.Engine) -> bool:
    return "ix_spans_status" in {i["name"] for i in sa.inspect(engine).get_indexes("spans")}


def test_upgrade_indexes_span_status_and_downgrade_drops_it(
    store_uri: str, migrator: Migrator
) -> None:
    engine = migrator.engine
    with engine.connect() as conn:
        scripts = ScriptDirectory.from_config(migrate.alembic_config(conn))
    before = scripts.get_revision(REVISION).down_revision
    assert isinstance(before, str)
    migrator.up(before)
    assert not _has_index(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
            "VALUES (7, 'old', 'active')"
        )
        conn.exec_driver_sql(
            "INSERT INTO traces (trace_id, experiment_id, request_time, state) "
            "VALUES ('tr-1', 7, 1000, 'ERROR'), ('tr-2', 7, 2000, 'OK')"
        )
        conn.exec_driver_sql(
            "INSERT INTO spans (trace_id, span_id, name, status, start_time_ns) "
            "VALUES ('tr-1', 'a', 'root', 'ERROR', 1), ('tr-2', 'b', 'root', 'OK', 2)"
        )
    migrator.up(REVISION)
    assert _has_index(engine)
    migrator.down(before)
    assert not _has_index(engine)
    store = SqlTrackingStore(store_uri)  # migrates up again: the old span is found
    try:
        found, _ = store.search_traces(["7"], "span.status = 'ERROR'")
        assert [i.trace_id for i in found] == ["tr-1"]
    finally:
        store.close()
