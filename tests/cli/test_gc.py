"""``jupyter mlops gc``: purges deleted runs and their artifacts, nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clihelpers import assert_failed_cleanly

from jupyter_mlops.tracking import TrackingError, open_store
from jupyter_mlops.tracking.entities import Metric


def _make_run(store, exp_id: str, name: str) -> str:
    run = store.create_run(exp_id, run_name=name, start_time=1_700_000_000_000)
    rid = run.info.run_id
    store.log_batch(
        rid,
        metrics=[Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(50)],
        params=[("lr", "0.1")],
        tags=[("team", "a")],
    )
    repo = store.artifact_repo(run.info.artifact_uri)
    repo.put("model/weights.bin", b"\x00" * 1000)
    repo.put("notes.txt", name.encode())
    return rid


@pytest.fixture
def populated(tmp_path: Path):
    db = tmp_path / "t.db"
    store = open_store(f"sqlite:///{db}", str(tmp_path / "art"))
    exp = store.create_experiment("gc-test")
    other_exp = store.create_experiment("doomed")
    keep = _make_run(store, exp, "keep")
    gone = _make_run(store, exp, "gone")
    in_deleted_exp = _make_run(store, other_exp, "with-experiment")
    store.delete_run(gone)
    store.delete_experiment(other_exp)
    yield store, f"sqlite:///{db}", {"keep": keep, "gone": gone, "exp": in_deleted_exp}
    store.close()


def _artifact_dir(store, run_id: str) -> str:
    return store.artifact_repo(store.get_run(run_id).info.artifact_uri).root


def test_gc_purges_deleted_runs_and_their_artifacts(run_cli, populated) -> None:
    store, url, ids = populated
    dirs = {k: _artifact_dir(store, rid) for k, rid in ids.items()}
    assert all(os.path.isfile(os.path.join(d, "notes.txt")) for d in dirs.values())

    dry = run_cli("gc", "--database-url", url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert ids["gone"] in dry.stdout and ids["exp"] in dry.stdout and ids["keep"] not in dry.stdout
    assert store.get_run(ids["gone"]).info.lifecycle_stage == "deleted"
    assert os.path.isfile(os.path.join(dirs["gone"], "notes.txt"))

    # Deleted just now: not older than a day, so kept.
    young = run_cli("gc", "--database-url", url, "--older-than", "1d")
    assert young.returncode == 0, young.stderr
    assert "purged 0 runs" in young.stdout and "kept" in young.stdout
    assert store.get_run(ids["gone"]).info.run_id == ids["gone"]
    dry_old = run_cli("gc", "--database-url", url, "--dry-run", "--older-than", "1d")
    assert "would purge 0" in dry_old.stdout

    proc = run_cli("gc", "--database-url", url)
    assert proc.returncode == 0, proc.stderr
    assert f"purged run {ids['gone']} 'gone'" in proc.stdout
    assert "2 artifact files" in proc.stdout
    assert "purged 2 runs" in proc.stdout

    for key in ("gone", "exp"):
        with pytest.raises(TrackingError) as err:
            store.get_run(ids[key])
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert not os.path.exists(dirs[key])
        assert not os.path.exists(os.path.dirname(dirs[key]))  # the empty run dir too

    kept = store.get_run(ids["keep"])
    assert kept.data.params == {"lr": "0.1"} and kept.data.tags["team"] == "a"
    history, _ = store.get_metric_history(ids["keep"], "loss")
    assert len(history) == 50
    repo = store.artifact_repo(kept.info.artifact_uri)
    assert repo.open("notes.txt").read() == b"keep"
    assert repo.open("model/weights.bin").read() == b"\x00" * 1000

    again = run_cli("gc", "--database-url", url)
    assert again.returncode == 0 and "purged 0 runs" in again.stdout


def test_gc_on_default_store_and_bad_url(run_cli, tmp_path: Path) -> None:
    db = tmp_path / "jupyter-data" / "mlops" / "mlops.db"
    proc = run_cli("gc")
    assert proc.returncode == 0, proc.stderr
    assert "nothing to remove" in proc.stdout and not db.exists()  # not created by looking
    assert run_cli("db", "upgrade").returncode == 0
    proc = run_cli("gc")
    assert proc.returncode == 0, proc.stderr
    assert "purged 0 runs" in proc.stdout
    assert_failed_cleanly(run_cli("gc", "--database-url", "postgresql://nobody@127.0.0.1:1/x"))
