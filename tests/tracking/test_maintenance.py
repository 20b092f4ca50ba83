"""Heartbeats, killing stale runs, purging deleted runs."""

from __future__ import annotations

import time

from jupyter_mlops.tracking.entities import Metric


def test_kill_stale_runs(store):
    live = store.create_run("0").info.run_id
    stale = store.create_run("0").info.run_id
    never = store.create_run("0").info.run_id  # no heartbeat: another client's run
    done = store.create_run("0").info.run_id
    store.heartbeat([stale, done], now=1_000)
    store.update_run_info(done, status="FINISHED", end_time=5)
    store.heartbeat([live], now=100_000)
    killed = store.kill_stale_runs(older_than_ms=30_000, now=101_000)
    assert killed == [stale]
    info = store.get_run(stale).info
    assert info.status == "KILLED" and info.end_time == 1_000
    assert store.get_run(live).info.status == "RUNNING"
    assert store.get_run(never).info.status == "RUNNING"
    assert store.get_run(done).info.status == "FINISHED"
    assert store.kill_stale_runs(older_than_ms=30_000, now=101_000) == []
    store.heartbeat([])  # nothing to do


def test_purge_deleted_runs(store):
    keep = store.create_run("0").info.run_id
    gone = store.create_run("0").info.run_id
    recent = store.create_run("0").info.run_id
    for rid in (keep, gone, recent):
        store.log_batch(
            rid,
            metrics=[Metric("m", float(i), i, i) for i in range(2500)],
            params=[("p", "1")],
            tags=[("t", "1")],
        )
    store.delete_run(gone)
    time.sleep(0.05)
    store.delete_run(recent)
    assert store.purge_deleted_runs(older_than_ms=3_600_000) == []
    purged = store.purge_deleted_runs(older_than_ms=0)
    assert sorted(purged) == sorted([gone, recent])
    for rid in purged:
        try:
            store.get_run(rid)
            raise AssertionError("purged run still there")
        except Exception as e:  # noqa: BLE001
            assert getattr(e, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"
    with store.engine.connect() as conn:
        for table in ("metric_chunks", "metric_blocks"):
            n = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            assert n > 0  # the kept run's
        n_series = conn.exec_driver_sql("SELECT count(*) FROM latest_metrics").scalar()
        assert n_series == 1
    assert len(store.get_metric_history(keep, "m")[0]) == 2500
    assert store.purge_deleted_runs() == []
