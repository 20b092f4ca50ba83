"""server/access.py: the multi-user rules on a real SQLite store (the hub test drives them over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_mlops.server.access import AccessPolicy, Caller, GuardedStore
from jupyter_mlops.tracking.entities import Metric
from jupyter_mlops.tracking.errors import TrackingError
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

ALICE = Caller("alice", teammates=frozenset({"bob"}))
BOB = Caller("bob", teammates=frozenset({"alice"}))
CAROL = Caller("carol")
ADA = Caller("ada", admin=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    s = SqlTrackingStore(f"sqlite:///{tmp_path / 'mlops.db'}", artifact_root=str(tmp_path / "art"))
    yield s
    s.close()


def as_(store: SqlTrackingStore, caller: Caller, **policy: bool) -> GuardedStore:
    return GuardedStore(store, caller, AccessPolicy(**policy))


def code(exc: pytest.ExceptionInfo[TrackingError]) -> str:
    return exc.value.error_code


def test_team_writes_only_when_configured(store: SqlTrackingStore) -> None:
    exp = as_(store, ALICE).create_experiment("e")
    run = as_(store, ALICE).create_run(exp, run_name="r").info.run_id
    with pytest.raises(TrackingError) as e:
        as_(store, BOB).log_metric(run, Metric("m", 1.0, 1, 0))
    assert code(e) == "PERMISSION_DENIED"
    as_(store, BOB, team_can_write=True).log_metric(run, Metric("m", 1.0, 1, 0))
    with pytest.raises(TrackingError) as e:  # no team, no writing: the run stays hidden
        as_(store, CAROL, team_can_write=True).log_param(run, "p", "v")
    assert code(e) == "RESOURCE_DOES_NOT_EXIST"
    assert store.get_run(run).data.metrics["m"].value == 1.0


def test_experiments_are_managed_by_their_owner_or_an_admin(store: SqlTrackingStore) -> None:
    exp = as_(store, BOB).create_experiment("bobs", tags={"mlops.owner": "alice"})
    assert store.get_experiment(exp).tags["mlops.owner"] == "bob"
    for caller in (ALICE, CAROL):
        with pytest.raises(TrackingError) as e:
            as_(store, caller).rename_experiment(exp, "mine")
        assert code(e) == "PERMISSION_DENIED"
    with pytest.raises(TrackingError) as e:
        as_(store, BOB).set_experiment_tag(exp, "mlops.owner", "carol")
    assert code(e) == "PERMISSION_DENIED"
    as_(store, BOB).set_experiment_tag(exp, "purpose", "demo")
    as_(store, ADA).rename_experiment(exp, "renamed by admin")
    with pytest.raises(TrackingError) as e:  # the Default experiment has no owner
        as_(store, BOB).delete_experiment("0")
    assert code(e) == "PERMISSION_DENIED"
    with pytest.raises(TrackingError) as e:
        as_(store, BOB).create_experiment("elsewhere", "/tmp/other-team")
    assert code(e) == "PERMISSION_DENIED"


def test_admin_sees_private_runs_and_heartbeats_skip_others(store: SqlTrackingStore) -> None:
    exp = as_(store, ALICE).create_experiment("e")
    secret = as_(store, ALICE).create_run(exp, tags={"mlops.visibility": "private"}).info.run_id
    runs, _ = as_(store, ADA).search_runs([exp])
    assert [r.info.run_id for r in runs] == [secret]
    assert as_(store, BOB).search_runs([exp])[0] == []
    assert as_(store, ADA).count_runs([exp]) == 1
    assert as_(store, BOB).count_runs([exp]) == 0
    as_(store, BOB).heartbeat([secret, "f" * 32])  # neither is bob's: ignored, not an error
    assert store.kill_stale_runs(0, now=2**50) == []  # only runs that beat are reaped
    as_(store, ALICE).heartbeat([secret])
    assert store.kill_stale_runs(0, now=2**50) == [secret]


def test_store_methods_without_a_rule_are_refused(store: SqlTrackingStore) -> None:
    with pytest.raises(TrackingError) as e:
        as_(store, ADA).purge_deleted_runs()
    assert code(e) == "PERMISSION_DENIED"


def test_artifact_paths_are_checked_per_run(store: SqlTrackingStore) -> None:
    exp = as_(store, ALICE).create_experiment("e")
    run = as_(store, ALICE).create_run(exp).info.run_id
    alice = as_(store, ALICE).artifact_repo(store.artifact_root)
    alice.put(f"{exp}/{run}/artifacts/a.txt", b"x")
    bob = as_(store, BOB).artifact_repo(store.artifact_root)
    assert bob.open(f"{exp}/{run}/artifacts/a.txt").read() == b"x"
    with pytest.raises(TrackingError) as e:
        bob.delete(f"{exp}/{run}/artifacts/a.txt")
    assert code(e) == "PERMISSION_DENIED"
    with pytest.raises(TrackingError) as e:  # a run filed under another experiment's path
        bob.open(f"999/{run}/artifacts/a.txt")
    assert code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(TrackingError) as e:
        bob.list(exp)
    assert code(e) == "PERMISSION_DENIED"
    assert [f.path for f in as_(store, ADA).artifact_repo(store.artifact_root).list(exp)]
