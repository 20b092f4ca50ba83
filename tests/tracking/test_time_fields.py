"""MLflow's time fields: experiments' creation_time / last_update_time (bumped by rename,
tags, delete and restore) and runs' deleted_time (set on delete, cleared on restore)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from jupyter_mlops.tracking.entities import RunInfo
from jupyter_mlops.tracking.schema import experiments

LONG_AGO = 1_000  # a last_update_time no operation of this test can leave in place


def _age(store, eid: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            experiments.update()
            .where(experiments.c.experiment_id == int(eid))
            .values(last_update_time=LONG_AGO)
        )


def _updated(store, eid: str) -> int:
    return store.get_experiment(eid).last_update_time


def test_experiment_times(store):
    before = int(time.time() * 1000)
    eid = store.create_experiment("timed")
    exp = store.get_experiment(eid)
    assert before <= exp.creation_time == exp.last_update_time <= int(time.time() * 1000)
    as_json = exp.to_dict()
    assert as_json["creation_time"] == exp.creation_time
    assert as_json["last_update_time"] == exp.last_update_time

    steps = [
        lambda: store.rename_experiment(eid, "timed-2"),
        lambda: store.set_experiment_tag(eid, "k", "v"),
        lambda: store.delete_experiment_tag(eid, "k"),
        lambda: store.delete_experiment(eid),
        lambda: store.restore_experiment(eid),
    ]
    for step in steps:
        _age(store, eid)
        step()
        assert _updated(store, eid) >= before, step
    # what changes nothing leaves it alone, and creation_time never moves
    _age(store, eid)
    store.rename_experiment(eid, "timed-2")  # the same name
    assert _updated(store, eid) == LONG_AGO
    assert store.get_experiment(eid).creation_time == exp.creation_time


def test_run_deleted_time(store):
    rid = store.create_run("0").info.run_id
    info = store.get_run(rid).info
    assert info.deleted_time is None and "deleted_time" not in info.to_dict()
    before = int(time.time() * 1000)
    store.delete_run(rid)
    info = store.get_run(rid).info
    assert before <= info.deleted_time <= int(time.time() * 1000)
    assert RunInfo.from_dict(info.to_dict()).deleted_time == info.deleted_time
    store.restore_run(rid)
    assert store.get_run(rid).info.deleted_time is None


def test_deleting_an_experiment_stamps_its_runs(store):
    eid = store.create_experiment("with-runs")
    rid = store.create_run(eid).info.run_id
    store.delete_experiment(eid)
    stamped = store.get_run(rid).info.deleted_time
    assert stamped is not None
    with store.engine.connect() as conn:
        exp_deleted = conn.execute(
            sa.select(experiments.c.deleted_time).where(experiments.c.experiment_id == int(eid))
        ).scalar()
    assert exp_deleted == stamped
    store.restore_experiment(eid)
    assert store.get_run(rid).info.deleted_time is None


def test_purge_older_than_follows_deleted_time(store):
    young = store.create_run("0").info.run_id
    old = store.create_run("0").info.run_id
    store.delete_run(young)
    store.delete_run(old)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE runs SET deleted_time = {LONG_AGO} WHERE run_uuid = '{old}'")
    assert store.purge_deleted_runs(older_than_ms=86_400_000) == [old]
    assert store.get_run(young).info.lifecycle_stage == "deleted"
