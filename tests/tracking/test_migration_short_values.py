"""Migration 0017: PostgreSQL's partial index of short param/tag values, kept when an
admin built it beforehand (``CREATE INDEX CONCURRENTLY``, docs/scale.md), and removed
by the downgrade; a no-op on SQLite."""

from __future__ import annotations

import sqlalchemy as sa
from migrator import Migrator

from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

BEFORE = "0016_logged_model_metrics"
DEF = "(key, value, run_uuid) WHERE (length((value)::text) <= 200)"


def _defs(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {
            r[0]: r[1]
            for r in conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND indexname LIKE '%%short_value'"
            )
        }


def test_upgrade_keeps_a_prebuilt_index_and_downgrade_removes_it(
    store_uri: str, migrator: Migrator
) -> None:
    engine, pg = migrator.engine, migrator.pg
    migrator.up(BEFORE)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
            "VALUES (7, 'old', 'active')"
        )
        conn.exec_driver_sql(
            "INSERT INTO runs (run_uuid, experiment_id, status, start_time, lifecycle_stage) "
            "VALUES ('a', 7, 'FINISHED', 5000, 'active'), ('b', 7, 'FINISHED', 6000, 'active')"
        )
        long_value = "v" * 5000
        conn.execute(
            sa.text(
                "INSERT INTO params (run_uuid, key, value) VALUES ('a', 'p', 'x'), "
                "('b', 'p', :long)"
            ),
            {"long": long_value},
        )
        if pg:  # as an admin would, ahead of the upgrade (there: CONCURRENTLY)
            conn.exec_driver_sql(
                "CREATE INDEX ix_params_key_short_value ON params (key, value, run_uuid) "
                "WHERE length(value) <= 200"
            )
    migrator.up()
    if pg:
        defs = _defs(engine)
        assert set(defs) == {"ix_params_key_short_value", "ix_tags_key_short_value"}
        assert all(d.endswith(DEF) for d in defs.values()), defs
        with engine.connect() as conn:
            stats = {
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT stxname FROM pg_statistic_ext "
                    "WHERE stxnamespace = current_schema()::regnamespace"
                )
            }
        assert {"st_params_key_value", "st_tags_key_value"} <= stats
    migrator.down(BEFORE)
    if pg:
        assert _defs(engine) == {}
    store = SqlTrackingStore(store_uri)  # migrates up again; the long value still matches
    try:
        assert [r.info.run_id for r in store.search_runs(["7"], "params.p = 'x'")[0]] == ["a"]
        found = store.search_runs(["7"], f"params.p = '{long_value}'")[0]
        assert [r.info.run_id for r in found] == ["b"]
    finally:
        store.close()
