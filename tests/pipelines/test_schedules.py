"""Recurring runs: cron in a time zone, persisted next fire time, no double fire
(even with two processes on one database), no catch-up burst, pause/resume."""

from __future__ import annotations

import asyncio
import datetime
import os
from zoneinfo import ZoneInfo

import pytest
from pipehelpers import write

from jupyter_mlops.pipelines.schedules import next_fire
from jupyter_mlops.pipelines.service import PipelineService
from jupyter_mlops.tracking import TrackingError, open_store

HOUR = 3600_000


@pytest.fixture
def ws(tmp_path):
    write(str(tmp_path / "ok.py"), "print('ok')\n")
    write(
        str(tmp_path / "p.pipeline.yaml"),
        "name: sched\nparameters: {n: 1}\nsteps:\n  a: {script: ok.py}\n",
    )
    return tmp_path


def services(tmp_path, n=1, url=None):
    url = url or f"sqlite:///{tmp_path / 'mlops.db'}"
    stores = [open_store(url, artifact_root=str(tmp_path / "art")) for _ in range(n)]
    return [
        PipelineService(
            s,
            str(tmp_path),
            env=dict(os.environ),
            runs_dir=str(tmp_path / ".runs"),
            warm_kernels=0,
            parallelism=2,
        )
        for s in stores
    ]


async def drain(*svcs):
    for svc in svcs:
        for run_id in list(svc.active):
            await svc.wait(run_id)


def test_next_fire_follows_the_zone_wall_clock():
    # 2026-03-29: Paris switches to summer time at 02:00 → 03:00
    before = int(
        datetime.datetime(2026, 3, 27, 12, tzinfo=ZoneInfo("Europe/Paris")).timestamp() * 1000
    )
    t1 = next_fire("30 7 * * *", "Europe/Paris", before)
    t2 = next_fire("30 7 * * *", "Europe/Paris", t1)
    for t in (t1, t2):
        local = datetime.datetime.fromtimestamp(t / 1000, ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (7, 30)
    assert t2 - t1 == 23 * HOUR  # a 23-hour day
    with pytest.raises(TrackingError, match="time zone"):
        next_fire("* * * * *", "Nowhere/Land", before)
    with pytest.raises(TrackingError, match="cron"):
        next_fire("61 * * * *", "UTC", before)


def test_due_schedule_fires_once_even_with_two_processes_and_after_downtime(ws, db_url):
    db_url = db_url if not db_url.startswith("sqlite") else f"sqlite:///{ws / 'mlops.db'}"

    async def main():
        a, b = services(ws, 2, db_url)
        s = await a.create_schedule("p.pipeline.yaml", "*/5 * * * *", "UTC", {"n": 2})
        due = s["next_fire_time"]
        # a server with another workspace on the same database never fires it
        other_root = ws / "elsewhere"
        other_root.mkdir()
        other = PipelineService(
            open_store(db_url), str(other_root), env=dict(os.environ), warm_kernels=0
        )
        assert await other.fire_due(due + 1) == []
        await other.stop()
        # both processes see it due at the same time: one run in all
        started = await asyncio.gather(a.fire_due(due + 1), b.fire_due(due + 1))
        assert sum(len(x) for x in started) == 1
        assert await a.fire_due(due + 2) == [] and await b.fire_due(due + 2) == []
        s2 = await a.get_schedule(s["schedule_id"])
        assert s2["next_fire_time"] == due + 5 * 60_000 and s2["last_fire_time"] == due
        run = await a.get_run(s2["last_run_id"])
        assert run["schedule_id"] == s["schedule_id"] and run["parameters"] == {"n": 2}
        # named after the schedule and the time it was due (UTC here), not at random
        due_at = datetime.datetime.fromtimestamp(due / 1000, datetime.timezone.utc)
        assert run["run_name"] == f"{s['name']} {due_at:%Y-%m-%d %H:%M}"
        # three hours of downtime: one catch-up run, then the next future time
        later = s2["next_fire_time"] + 3 * HOUR
        assert len(await a.fire_due(later)) == 1
        s3 = await a.get_schedule(s["schedule_id"])
        assert later < s3["next_fire_time"] <= later + 5 * 60_000
        # paused: nothing; resumed: next time computed from now, not a burst
        await a.update_schedule(s["schedule_id"], paused=True)
        assert await a.fire_due(s3["next_fire_time"] + HOUR) == []
        s4 = await a.update_schedule(s["schedule_id"], paused=False)
        assert s4["next_fire_time"] > s3["next_fire_time"] or s4["next_fire_time"] > 0
        await drain(a, b)
        for svc in (a, b):
            await svc.stop()
        # a new process (restart) finds the schedule and keeps firing it
        (c,) = services(ws, 1, db_url)
        lst = (await c.list_schedules())["schedules"]
        assert [x["schedule_id"] for x in lst] == [s["schedule_id"]]
        assert len(await c.fire_due(lst[0]["next_fire_time"])) == 1
        await drain(c)
        runs = (await c.list_runs(schedule_id=s["schedule_id"]))["runs"]
        assert len(runs) == 3 and all(r["status"] == "SUCCEEDED" for r in runs)
        await c.stop()

    asyncio.run(main())


def test_schedule_of_a_broken_pipeline_records_the_error(ws):
    async def main():
        (a,) = services(ws)
        s = await a.create_schedule("p.pipeline.yaml", "0 * * * *", "UTC")
        write(str(ws / "p.pipeline.yaml"), "name: sched\nsteps:\n  a: {script: gone.py}\n")
        assert await a.fire_due(s["next_fire_time"]) == []
        s2 = await a.get_schedule(s["schedule_id"])
        assert "gone.py" in s2["last_error"] and s2["next_fire_time"] > s["next_fire_time"]
        await a.stop()

    asyncio.run(main())


def test_migration_0007_keeps_existing_schedules_firing_locally(ws, db_url):
    """A database from before schedule targets: its schedules get ``local`` and still fire."""
    import sqlalchemy as sa
    from alembic import command

    from jupyter_mlops.tracking import migrate

    db_url = db_url if not db_url.startswith("sqlite") else f"sqlite:///{ws / 'mlops.db'}"
    engine = migrate.make_engine(db_url)

    def upgrade(to: str) -> None:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            command.upgrade(migrate.alembic_config(conn), to)

    try:
        upgrade("0006_search_indexes")
        with engine.begin() as conn:
            cols = {c["name"] for c in sa.inspect(conn).get_columns("pipeline_schedules")}
            assert "target" not in cols
            conn.exec_driver_sql(
                "INSERT INTO pipeline_schedules (schedule_id, name, pipeline_path, parameters, "
                "cron, timezone, paused, next_fire_time, created_time) VALUES "
                "('old', 'old', 'p.pipeline.yaml', '{}', '0 * * * *', 'UTC', false, 1000, 1)"
            )
        upgrade("head")
    finally:
        engine.dispose()

    async def main():
        (a,) = services(ws, 1, db_url)
        s = await a.get_schedule("old")
        assert s["target"] == "local"
        started = await a.fire_due(2000)
        assert len(started) == 1
        await drain(a)
        run = await a.get_run(started[0])
        assert run["target"] == "local" and run["status"] == "SUCCEEDED"
        await a.stop()

    asyncio.run(main())
