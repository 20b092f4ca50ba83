"""The store keeps the planner statistics of the tables a search reads, on a thread of
its own (``stats_keeper``): PostgreSQL's (``planner_stats.refresh``) and SQLite's
(``refresh_sqlite``). Without them a search ordered by a metric with
a metric and a param filter was planned as nested loops of scans: 50 runs 3.6 s, 100
runs over a minute (``bench/RESULTS.md``). Autovacuum is turned off on the tables here,
so only the store can have analyzed them."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jupyter_mlops.tracking import planner_stats
from jupyter_mlops.tracking.entities import Metric
from jupyter_mlops.tracking.schema import runs, store_info
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking.stats_keeper import StatisticsKeeper
from jupyter_mlops.tracking.traces import TraceInfo, hex_to_b64


@pytest.fixture
def pg_store(pg_schema_url: str, tmp_path: Path):
    s = SqlTrackingStore(pg_schema_url, artifact_root=str(tmp_path / "artifacts"))
    s.statistics.wait()
    with s.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for t in planner_stats.SEARCH_TABLES:
            conn.exec_driver_sql(f"ALTER TABLE {t} SET (autovacuum_enabled = off)")
    yield s
    s.close()


def reltuples(store: SqlTrackingStore) -> dict[str, float]:
    """Each search table's row count as of its last ANALYZE (once the store's refreshes
    asked for so far have run): -1 never analyzed, 0 when empty (the migrations analyze
    params and tags as they index them)."""
    store.statistics.wait()
    with store.engine.connect() as conn:
        return {
            t: conn.execute(
                sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": t}
            ).scalar_one()
            for t in planner_stats.SEARCH_TABLES
        }


def log_runs(store: SqlTrackingStore, eid: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        rid = store.create_run(eid, run_name=f"r{i}").info.run_id
        store.log_batch(
            rid, metrics=[Metric("acc", i / n, 0, 0)], params=[("optimizer", "ab"[i % 2])]
        )
        ids.append(rid)
    return ids


def insert_runs(store: SqlTrackingStore, eid: str, first: int, n: int) -> None:
    """Runs written another way than the store's ``create_run`` (a bulk load)."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time,"
            " lifecycle_stage, artifact_uri)"
            f" SELECT md5(g::text), 'bulk', {int(eid)}, '', 'FINISHED', g, 'active', ''"
            f" FROM generate_series({first}, {first + n - 1}) AS g"
        )
        counted_at_commit(conn)


def counted_at_commit(conn: sa.Connection) -> None:
    """The session's changed-row counters reach the catalog when its transaction ends,
    not up to ~10 s later (PostgreSQL 15+), so the next refresh sees them."""
    conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")


@pytest.mark.postgres
def test_logged_runs_get_statistics_once_there_are_a_few(pg_store):
    store = pg_store
    eid = store.create_experiment(f"stats-{uuid.uuid4().hex}")
    assert max(reltuples(store).values()) <= 0
    log_runs(store, eid, planner_stats.MIN_RUNS - 1)
    stats = reltuples(store)
    assert max(stats.values()) <= 0, f"fewer runs than MIN_RUNS: left alone: {stats}"

    log_runs(store, eid, 40)
    stats = reltuples(store)
    assert stats["runs"] >= planner_stats.MIN_RUNS, stats
    assert min(stats.values()) > 0, stats
    store.statistics.wait()
    with store.engine.connect() as conn:
        columns = conn.execute(
            sa.text(
                "SELECT tablename || '.' || attname FROM pg_stats "
                "WHERE schemaname = current_schema() AND attname IN ('key', 'value')"
            )
        ).scalars()
        assert {"params.key", "params.value", "latest_metrics.value"} <= set(columns)


@pytest.mark.postgres
def test_logged_traces_get_statistics(pg_store):
    """Without them a trace search page of 4 over 1,200 traces was planned as nested
    scans and took minutes on PostgreSQL (tests/tracking/test_trace_search_driver.py)."""
    store = pg_store
    eid = store.create_experiment(f"traces-{uuid.uuid4().hex}")

    def trace(i: int) -> tuple[TraceInfo, list[dict[str, Any]]]:
        tid = f"{i:032x}"
        span = {
            "trace_id": hex_to_b64(tid),
            "span_id": hex_to_b64(f"{i:016x}"),
            "parent_span_id": None,
            "name": "root",
            "start_time_unix_nano": 1_000_000_000 + i,
            "end_time_unix_nano": 2_000_000_000 + i,
            "status": {"code": "STATUS_CODE_OK"},
            "attributes": {"mlflow.spanType": '"CHAIN"', "k": '"v"'},
            "events": [],
        }
        return TraceInfo(f"tr-{tid}", eid, 1000 + i, "OK", 5, tags={"env": "prod"}), [span]

    def trace_stats() -> dict[str, float]:
        store.statistics.wait()
        with store.engine.connect() as conn:
            return {
                t: conn.execute(
                    sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"),
                    {"t": t},
                ).scalar_one()
                for t in planner_stats.TRACE_TABLES
            }

    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for t in planner_stats.TRACE_TABLES:
            conn.exec_driver_sql(f"ALTER TABLE {t} SET (autovacuum_enabled = off)")
    store.log_traces([trace(i) for i in range(planner_stats.MIN_RUNS - 1)])
    stats = trace_stats()
    assert max(stats.values()) <= 0, f"fewer traces than MIN_RUNS: left alone: {stats}"
    store.log_traces([trace(i) for i in range(planner_stats.MIN_RUNS, 60)])
    stats = trace_stats()
    assert stats["traces"] > 0 and stats["spans"] > 0 and stats["trace_tags"] > 0, stats


@pytest.mark.postgres
def test_metrics_logged_after_the_runs_were_created_get_statistics(pg_store):
    store = pg_store
    eid = store.create_experiment(f"stats-{uuid.uuid4().hex}")
    ids = [store.create_run(eid, run_name=f"r{i}").info.run_id for i in range(40)]
    assert reltuples(store)["runs"] >= planner_stats.MIN_RUNS
    assert reltuples(store)["latest_metrics"] <= 0  # no metric yet
    for rid in ids:
        store.log_batch(rid, metrics=[Metric("acc", 0.5, 0, 0)], params=[("p", "x")])
    stats = reltuples(store)
    assert stats["latest_metrics"] > 0 and stats["params"] > 0, stats


@pytest.mark.postgres
def test_statistics_are_taken_again_when_a_table_doubles(pg_store):
    store = pg_store
    eid = store.create_experiment(f"stats-{uuid.uuid4().hex}")
    insert_runs(store, eid, 1, 200)
    assert planner_stats.refresh(store.engine) == ["runs"]
    assert reltuples(store)["runs"] == 200
    insert_runs(store, eid, 201, 10)
    assert planner_stats.refresh(store.engine) == [], "grown by 5%: left to autovacuum"
    insert_runs(store, eid, 211, 1000)
    assert planner_stats.refresh(store.engine) == ["runs"]
    assert reltuples(store)["runs"] == 1210


def estimated_rows(store: SqlTrackingStore, key: str) -> float:
    """The planner's estimate of the params rows of ``key``."""
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN (FORMAT JSON) SELECT run_uuid FROM params WHERE key = %s", (key,)
        ).scalar_one()
    return plan[0]["Plan"]["Plan Rows"]


@pytest.mark.postgres
def test_new_keys_get_statistics_once_their_writes_are_counted(pg_store):
    """A store analyzed at 200 runs, then a grid of 24 runs with params of their own: 48
    rows that neither double a table nor reach autovacuum's tenth, but which the
    statistics estimated at one row (a search of the grid was nested loops, each
    repeating the next). Once PostgreSQL counts the grid's writes, a check takes them."""
    store = pg_store
    eid = store.create_experiment(f"stats-{uuid.uuid4().hex}")
    insert_runs(store, eid, 1, 200)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO params (key, value, run_uuid) SELECT 'opt', 'a', run_uuid FROM runs"
        )
        counted_at_commit(conn)
    planner_stats.refresh(store.engine)
    assert reltuples(store)["params"] == 200
    grid = store.create_experiment(f"grid-{uuid.uuid4().hex}")
    with store.statistics.refreshing:  # no refresh before the estimate below
        for i in range(24):
            rid = store.create_run(grid, run_name=f"g{i}").info.run_id
            store.log_batch(rid, params=[("a", str(i % 3)), ("b", "xy"[i % 2])])
        assert estimated_rows(store, "b") < 5  # the new key: about one row
    # the store's sessions report their counts within ~10 s of their last write
    deadline = time.monotonic() + 30
    while changed_rows(store, "params") < 48 and reltuples(store)["params"] != 248:
        assert time.monotonic() < deadline, "the grid's writes were never counted"
        time.sleep(0.2)
    store.statistics.request()
    assert reltuples(store)["params"] == 248
    assert estimated_rows(store, "b") >= 20


def changed_rows(store: SqlTrackingStore, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT pg_stat_get_mod_since_analyze(to_regclass(:t))"), {"t": table}
        ).scalar_one()


def test_a_check_follows_the_last_writes_once_they_settle():
    """A write that is no check point asks for one ``settle_s`` later, so the last writes
    of a burst are checked though no check point follows them; a closed keeper's pending
    check is dropped."""
    calls: list[float] = []
    keeper = StatisticsKeeper(lambda: calls.append(time.monotonic()), "settle", settle_s=0.2)
    keeper.wrote()
    keeper.wrote()  # writes 1 and 2: check points
    keeper.wait()
    checked = len(calls)
    wrote_at = time.monotonic()
    keeper.wrote()  # write 3: none
    deadline = time.monotonic() + 10
    while len(calls) == checked:
        assert time.monotonic() < deadline, "no check followed write 3"
        time.sleep(0.05)
    keeper.wait()
    assert len(calls) == checked + 1 and calls[-1] >= wrote_at + 0.2
    closed = StatisticsKeeper(lambda: calls.append(time.monotonic()), "closed", settle_s=0.2)
    closed.wrote()
    closed.wrote()
    closed.wait()
    before = len(calls)
    closed.wrote()  # write 3, then close before the 0.2 s are up
    closed.close()
    time.sleep(0.5)
    assert len(calls) == before


@pytest.mark.postgres
def test_a_store_opened_on_unanalyzed_runs_analyzes_them(pg_store, pg_schema_url, tmp_path):
    """Runs written by other stores (each with too few writes for its checks) or loaded
    in bulk: the next store opened takes the statistics."""
    store = pg_store
    eid = store.create_experiment(f"stats-{uuid.uuid4().hex}")
    log_runs(store, eid, 2)
    store.close()  # a store that wrote and went: no check of its own comes later
    insert_runs(store, eid, 1, 200)
    assert reltuples(store)["runs"] <= 0
    other = SqlTrackingStore(pg_schema_url, artifact_root=str(tmp_path / "artifacts"))
    try:
        assert reltuples(other)["runs"] == 202
    finally:
        other.close()


def test_the_check_schedule():
    due = [n for n in range(1, 5000) if planner_stats.check_due(n)]
    assert due == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3072, 4096]


def add_runs(store: SqlTrackingStore, eid: str, n: int) -> None:
    """``n`` runs written another way than the store's (a bulk load: no check counted)."""
    with store.engine.begin() as conn:
        conn.execute(
            runs.insert(),
            [
                {
                    "run_uuid": uuid.uuid4().hex,
                    "experiment_id": int(eid),
                    "status": "FINISHED",
                    "lifecycle_stage": "active",
                    "start_time": i,
                }
                for i in range(n)
            ],
        )
        if store.dialect == "postgresql":
            counted_at_commit(conn)


def analyzed_runs(store: SqlTrackingStore) -> float | None:
    """The runs the store's statistics were taken at (None: never), once the refreshes
    asked for so far have run."""
    store.statistics.wait()
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            seen = conn.execute(
                sa.select(store_info.c.value).where(store_info.c.key == "analyzed_runs")
            ).scalar()
            return None if seen is None else float(seen)
        n = conn.execute(
            sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('runs')")
        ).scalar_one()
        return None if n < 0 else n


def test_a_write_does_not_wait_for_the_statistics(store):
    """The write that crosses a check point returns while the refresh it asked for is
    held back (the test holds the keeper's lock): ANALYZE runs after, off the write."""
    if store.dialect == "postgresql":  # only the store analyzes (300 runs are autovacuum's)
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ALTER TABLE runs SET (autovacuum_enabled = off)")
    eid = store.create_experiment(f"stats-{uuid.uuid4().hex}")
    add_runs(store, eid, 300)
    assert analyzed_runs(store) is None
    with store.statistics.refreshing:
        rid = store.create_run(eid, run_name="first write").info.run_id  # a check point
        store.log_batch(rid, metrics=[Metric("acc", 0.5, 0, 0)])  # and another
        threads = [t.name for t in threading.enumerate()]
        assert f"planner-stats-{store.uri}" in threads
        with store.engine.connect() as conn:  # not analyzed while the write returned
            if store.dialect == "sqlite":
                assert (
                    conn.exec_driver_sql(
                        "SELECT count(*) FROM store_info WHERE key = 'analyzed_runs'"
                    ).scalar_one()
                    == 0
                )
            else:
                assert (
                    conn.exec_driver_sql(
                        "SELECT reltuples FROM pg_class WHERE oid = to_regclass('runs')"
                    ).scalar_one()
                    < 0
                )
    assert analyzed_runs(store) == 301


def test_sqlite_statistics_are_taken_again_when_the_runs_double(sqlite_store):
    store = sqlite_store
    eid = store.create_experiment(f"stats-{uuid.uuid4().hex}")
    add_runs(store, eid, planner_stats.SQLITE_MIN_RUNS - 2)
    rid = store.create_run(eid).info.run_id  # write 1: a check, too few runs
    assert analyzed_runs(store) is None
    add_runs(store, eid, 50)
    store.log_batch(rid, params=[("p", "1")])  # write 2
    assert analyzed_runs(store) == planner_stats.SQLITE_MIN_RUNS + 49
    add_runs(store, eid, 50)
    store.log_batch(rid, params=[("q", "1")])  # write 3: no check
    store.log_batch(rid, params=[("r", "1")])  # write 4: grown by a third: left as is
    assert analyzed_runs(store) == planner_stats.SQLITE_MIN_RUNS + 49
    add_runs(store, eid, 200)
    for i in range(4):  # writes 5-8: the 8th checks
        store.log_batch(rid, params=[(f"s{i}", "1")])
    assert analyzed_runs(store) == planner_stats.SQLITE_MIN_RUNS + 299
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar_one() > 0


def test_a_closed_store_starts_no_refresh(store):
    """Closed, a store asks for no refresh: none starts (one that did would wait on the
    lock the test holds, so it would still be there to see)."""
    eid = store.create_experiment(f"stats-{uuid.uuid4().hex}")
    add_runs(store, eid, 300)
    store.close()
    with store.statistics.refreshing:
        store.statistics.request()
        store.statistics.wrote()  # write 1 of a store: a check point
        assert f"planner-stats-{store.uri}" not in [t.name for t in threading.enumerate()]
