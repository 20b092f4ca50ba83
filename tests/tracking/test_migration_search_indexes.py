"""Migration 0006: search indexes per back end, time fields backfilled, and a downgrade
that gives 0005's indexes back."""

from __future__ import annotations

import time

import sqlalchemy as sa
from migrator import Migrator

from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

BEFORE = "0005_pipeline_owner"


def _index_names(engine: sa.Engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {i["name"] for i in sa.inspect(conn).get_indexes(table)}


def test_upgrade_backfills_and_downgrade_restores(store_uri: str, migrator: Migrator) -> None:
    engine, pg = migrator.engine, migrator.pg
    migrator.up(BEFORE)
    with engine.begin() as conn:
        # rows as an older writer (or a hand-made import) could have left them
        conn.exec_driver_sql(
            "INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
            "VALUES (7, 'old', 'active'), (8, 'empty', 'deleted')"
        )
        conn.exec_driver_sql(
            "INSERT INTO runs (run_uuid, experiment_id, status, start_time, lifecycle_stage) "
            "VALUES ('a' , 7, 'FINISHED', 5000, 'active'), ('b', 7, 'FINISHED', 3000, 'deleted')"
        )
    before = int(time.time() * 1000)
    migrator.up()
    with engine.connect() as conn:
        exp = {
            r.experiment_id: r
            for r in conn.exec_driver_sql(
                "SELECT experiment_id, creation_time, last_update_time, deleted_time FROM experiments"
            )
        }
        run_b = conn.exec_driver_sql("SELECT deleted_time FROM runs WHERE run_uuid = 'b'").scalar()
        run_a = conn.exec_driver_sql("SELECT deleted_time FROM runs WHERE run_uuid = 'a'").scalar()
    assert exp[7].creation_time == 3000  # its first run's start
    assert exp[7].last_update_time == 3000
    assert exp[7].deleted_time is None
    assert exp[8].creation_time >= before  # no runs: the migration's time
    assert exp[8].deleted_time >= before  # deleted at an unknown time: not before now
    assert run_b >= before and run_a is None
    runs_ix, params_ix = _index_names(engine, "runs"), _index_names(engine, "params")
    assert "ix_runs_search_order" in runs_ix and "ix_runs_experiment" not in runs_ix
    if pg:
        assert "ix_params_key_prefix" in params_ix and "ix_params_key" not in params_ix
        assert "ix_tags_key_prefix" in _index_names(engine, "tags")
        # the run id is a key column, so a nested loop over runs (the plan of tables
        # not analyzed yet) probes the index per run instead of scanning the key
        with engine.connect() as conn:
            ddl = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_params_key_prefix' "
                "AND schemaname = current_schema()"
            ).scalar()
        assert ddl.endswith('(key, "left"((value)::text, 200), run_uuid)'), ddl
    else:
        assert "ix_params_key_value" in params_ix

    migrator.down(BEFORE)
    runs_ix, params_ix = _index_names(engine, "runs"), _index_names(engine, "params")
    assert "ix_runs_experiment" in runs_ix and "ix_runs_search_order" not in runs_ix
    assert ("ix_params_key" if pg else "ix_params_key_value") in params_ix
    assert "ix_params_key_prefix" not in params_ix
    # and the store opens (migrating up again) with the data intact
    store = SqlTrackingStore(store_uri)
    try:
        assert store.get_experiment("7").creation_time == 3000
        assert [r.info.run_id for r in store.search_runs(["7"])[0]] == ["a"]
    finally:
        store.close()
