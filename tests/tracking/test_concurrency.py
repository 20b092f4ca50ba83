"""Real processes against one store: concurrent first-open migrations, 8 writers on
one SQLite file (no "database is locked", no lost points), migrations and re-open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from jupyter_mlops.tracking import migrate
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from jupyter_mlops.tracking import open_store
    from jupyter_mlops.tracking.entities import Metric

    uri, start_at, worker, shared_run, batches, per_batch = sys.argv[1:7]
    worker, batches, per_batch = int(worker), int(batches), int(per_batch)
    while time.time() < float(start_at):
        time.sleep(0.005)
    store = open_store(uri)  # all workers migrate/open at the same moment
    eid = store.get_experiment_by_name("shared")
    if eid is None:
        try:
            store.create_experiment("shared")
        except Exception as e:  # lost the race: RESOURCE_ALREADY_EXISTS
            assert getattr(e, "error_code", "") == "RESOURCE_ALREADY_EXISTS", e
    eid = store.get_experiment_by_name("shared").experiment_id
    own = store.create_run(eid, run_name=f"w{worker}").info.run_id
    for b in range(batches):
        pts = [Metric("loss", float(b * per_batch + i), 1000 + b * per_batch + i, b * per_batch + i)
               for i in range(per_batch)]
        store.log_batch(own, metrics=pts, params=[(f"p{b}", str(b))], tags=[("batch", str(b))])
        # everyone also appends to one shared run, each under its own key
        store.log_batch(shared_run, metrics=[Metric(f"w{worker}", float(b), b, b)] +
                        [Metric("all", float(worker), b, b)])
        store.heartbeat([own])
    store.update_run_info(own, status="FINISHED", end_time=int(time.time() * 1000))
    print(json.dumps({"run": own}))
    """
)


def _spawn(tmp_path: Path, args: list[str]) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    if not script.exists():
        script.write_text(WORKER)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_workers(
    tmp_path: Path, uri: str, n: int, batches: int, per_batch: int
) -> tuple[str, list[str]]:
    # the shared run lives in a store that exists before the workers start
    setup = SqlTrackingStore(uri)
    shared = setup.create_run("0", run_name="shared").info.run_id
    setup.close()
    start_at = str(time.time() + 3.0)
    procs = [
        _spawn(tmp_path, [uri, start_at, str(w), shared, str(batches), str(per_batch)])
        for w in range(n)
    ]
    runs = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        assert "database is locked" not in err
        runs.append(json.loads(out.strip().splitlines()[-1])["run"])
    return shared, runs


def _check(
    store: SqlTrackingStore, shared: str, runs: list[str], n: int, batches: int, per_batch: int
) -> None:
    for rid in runs:
        run = store.get_run(rid)
        assert run.info.status == "FINISHED"
        hist = store.get_metric_history(rid, "loss")[0]
        assert [m.step for m in hist] == list(range(batches * per_batch))
        assert len(run.data.params) == batches
        assert run.data.metrics["loss"].step == batches * per_batch - 1
    shared_run = store.get_run(shared)
    assert sorted(k for k in shared_run.data.metrics if k.startswith("w")) == sorted(
        f"w{i}" for i in range(n)
    )
    for w in range(n):
        assert [m.step for m in store.get_metric_history(shared, f"w{w}")[0]] == list(
            range(batches)
        )
    assert len(store.get_metric_history(shared, "all")[0]) == n * batches
    series = store.get_metric_series(shared, "all", max_points=10_000)
    assert sum(p.count for p in series) == n * batches


def test_eight_processes_one_sqlite_file(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'shared' / 'mlops.db'}"
    n, batches, per_batch = 8, 10, 300
    shared, runs = _run_workers(tmp_path, uri, n, batches, per_batch)
    store = SqlTrackingStore(uri)
    _check(store, shared, runs, n, batches, per_batch)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: durable commits
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
    store.close()


@pytest.mark.postgres
def test_four_processes_postgres(tmp_path: Path, pg_schema_url: str):
    n, batches, per_batch = 4, 8, 300
    shared, runs = _run_workers(tmp_path, pg_schema_url, n, batches, per_batch)
    store = SqlTrackingStore(pg_schema_url)
    _check(store, shared, runs, n, batches, per_batch)
    store.close()


OPENER = textwrap.dedent(
    """
    import sys, time
    from jupyter_mlops.tracking import open_store
    uri, start_at = sys.argv[1:3]
    while time.time() < float(start_at):
        time.sleep(0.002)
    s = open_store(uri)
    print(s.get_experiment("0").name)
    """
)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_concurrent_first_open_migrates_once(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
):
    uri = (
        f"sqlite:///{tmp_path / 'fresh' / 'mlops.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    script = tmp_path / "opener.py"
    script.write_text(OPENER)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start_at = str(time.time() + 3.0)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), uri, start_at],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "Default"
    store = SqlTrackingStore(uri)
    with store.engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        assert conn.execute(sa.text("SELECT count(*) FROM experiments")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM store_info")).scalar() == 1
    store.close()


def test_fresh_store_reopen_keeps_data_and_artifact_root(store_uri: str, tmp_path: Path):
    root = str(tmp_path / "my-artifacts")
    s1 = SqlTrackingStore(store_uri, artifact_root=root)
    eid = s1.create_experiment("kept")
    rid = s1.create_run(eid).info.run_id
    s1.log_param(rid, "a", "1")
    s1.close()
    s2 = SqlTrackingStore(store_uri)  # no root given: the recorded one
    assert s2.artifact_root == root
    assert s2.get_run(rid).data.params == {"a": "1"}
    with s2.engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    s2.close()
    s3 = SqlTrackingStore(store_uri, artifact_root=str(tmp_path / "moved"))
    s3.close()
    assert SqlTrackingStore(store_uri).artifact_root == str(tmp_path / "moved")


def test_default_artifact_root_beside_sqlite_file(tmp_path: Path):
    s = SqlTrackingStore(f"sqlite:///{tmp_path / 'db' / 'mlops.db'}")
    assert s.artifact_root == str(tmp_path / "db" / "artifacts")
    s.close()


def test_upgrade_from_revision_0001_carries_metric_rows(tmp_path: Path):
    """Revision 0002 packs the per-point rows of 0001 into chunks, losing nothing."""
    from alembic import command

    uri = f"sqlite:///{tmp_path / 'old.db'}"
    engine = migrate.make_engine(uri)
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        command.upgrade(migrate.alembic_config(conn), "0001")
        conn.exec_driver_sql(
            "INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, "
            "lifecycle_stage, artifact_uri) VALUES ('r1', 'old', 0, '', 'RUNNING', 1, 'active', 'x')"
        )
        conn.exec_driver_sql(
            "INSERT INTO latest_metrics (series_id, run_uuid, key, value, timestamp, step, n, "
            "last_step, last_ts, ord_step, ord_ts, ord_step_ts) "
            "VALUES (1, 'r1', 'm', 2999.0, 2999, 2999, 3000, 2999, 2999, 1, 1, 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO metrics (series_id, seq, step, timestamp, value) VALUES (?, ?, ?, ?, ?)",
            [(1, i, i, i, None if i == 7 else float(i)) for i in range(3000)],
        )
    engine.dispose()
    store = SqlTrackingStore(uri)
    hist = store.get_metric_history("r1", "m")[0]
    assert [m.step for m in hist] == list(range(3000))
    assert hist[8].value == 8.0 and hist[7].value != hist[7].value  # NaN kept
    with store.engine.connect() as conn:
        assert not sa.inspect(conn).has_table("metrics")
    store.close()
