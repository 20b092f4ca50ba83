"""``jupyter mlops import-mlflow``: a store filled by the real ``mlflow`` client
(file store and SQLite) comes across whole, re-imports add nothing, interrupted
imports are completed, and bad sources fail in one line."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import assert_failed_cleanly, cli_env

from jupyter_mlops.tracking import TrackingError, open_store
from jupyter_mlops.tracking.entities import ALL, Metric

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent


def _make_source(workdir: Path, uri: str) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    env = cli_env(workdir, MLFLOW_ALLOW_FILE_STORE="true")  # the file store is opt-in in MLflow 3
    out = workdir / "expected.json"
    proc = subprocess.run(
        [sys.executable, str(HERE / "make_mlflow_store.py"), uri, str(workdir), str(out)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


class _Sources(dict):
    """kind -> (SOURCE, expected): each kind of MLflow store is made on first use."""

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base

    def __missing__(self, kind: str) -> tuple[str, dict]:
        work = self.base / kind
        if kind == "file":
            value = (str(work / "mlruns"), _make_source(work, f"file:{work / 'mlruns'}"))
        else:
            url = f"sqlite:///{work / 'mlflow.db'}"
            value = (url, _make_source(work, url))
        self[kind] = value
        return value


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> _Sources:
    return _Sources(tmp_path_factory.mktemp("mlflow-src"))


def _points(history: list[Metric]) -> list[list]:
    return sorted([m.step, m.timestamp, "NaN" if math.isnan(m.value) else m.value] for m in history)


def _stored(points: list[list]) -> list[list]:
    """What a store keeps of a source's points: an identical point (step, timestamp, value) once, as MLflow's
    database stores do (its file store keeps repeats, and the source logs one on purpose)."""
    return sorted(map(list, {tuple(p) for p in points}))


def _artifacts(store, artifact_uri: str) -> dict[str, str]:
    repo = store.artifact_repo(artifact_uri)
    found, stack = {}, [""]
    while stack:
        for info in repo.list(stack.pop()):
            if info.is_dir:
                stack.append(info.path)
            else:
                found[info.path] = repo.open(info.path).read().decode()
    return found


def assert_store_matches(url: str, expected: dict) -> None:
    store = open_store(url)
    try:
        exps = {e.name: e for e in store.search_experiments(view_type=ALL)[0]}
        for name, exp in expected["experiments"].items():
            assert name in exps, name
            assert exps[name].lifecycle_stage == exp["lifecycle_stage"], name
            assert exps[name].tags == exp["tags"], name
        for run_id, want in expected["runs"].items():
            run = store.get_run(run_id)
            info = run.info
            assert exps[want["experiment"]].experiment_id == info.experiment_id
            for field in (
                "run_name",
                "status",
                "start_time",
                "end_time",
                "user_id",
                "lifecycle_stage",
            ):
                assert getattr(info, field) == want[field], (want["run_name"], field)
            assert run.data.params == want["params"], want["run_name"]
            assert run.data.tags == want["tags"], want["run_name"]
            assert set(run.data.metrics) == set(want["metrics"])
            for key, points in want["metrics"].items():
                history, _ = store.get_metric_history(run_id, key)
                assert _points(history) == _stored(points), (want["run_name"], key)
            assert _artifacts(store, info.artifact_uri) == want["artifacts"], want["run_name"]
        assert len(
            store.search_runs([e.experiment_id for e in exps.values()], run_view_type=ALL)[0]
        ) == len(expected["runs"])
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_import_everything_then_reimport_adds_nothing(
    run_cli, tmp_path: Path, sources, kind
) -> None:
    source, expected = sources[kind]
    url = f"sqlite:///{tmp_path / 'dest.db'}"
    first = run_cli("import-mlflow", source, "--database-url", url)
    assert first.returncode == 0, first.stdout + first.stderr
    n_runs = len(expected["runs"])
    assert f"runs: {n_runs} imported, 0 completed, 0 already there" in first.stdout
    assert "experiment 'Default': exists (id 0), merging into it" in first.stdout
    assert "experiment 'abandoned': deleted, as in the source" in first.stdout
    assert "[1/" in first.stdout  # per-run progress
    assert_store_matches(url, expected)

    again = run_cli("import-mlflow", source, "--database-url", url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"runs: 0 imported, 0 completed, {n_runs} already there" in again.stdout
    assert "added 0 params, 0 tags, 0 metric points, 0 artifact files" in again.stdout
    assert "experiment 'abandoned': exists (deleted)" in again.stdout
    assert_store_matches(url, expected)


def test_merges_into_existing_experiment_and_completes_partial_runs(
    run_cli, tmp_path: Path, sources
) -> None:
    source, expected = sources["sqlite"]
    broken_id = next(k for k, r in expected["runs"].items() if r["run_name"] == "broken")
    parent_id = next(k for k, r in expected["runs"].items() if r["run_name"] == "parent")
    parent = expected["runs"][parent_id]
    url = f"sqlite:///{tmp_path / 'dest.db'}"
    store = open_store(url)
    try:
        # What an interrupted import leaves: runs made, part of their data written.
        exp = store.create_experiment("tabular", tags={"owner": "me"})
        store.create_run(exp, run_name="broken", run_id=broken_id, start_time=1)
        store.log_batch(broken_id, metrics=[Metric("loss", 3.0, 1_700_000_000_000, 0)])
        vision = store.create_experiment("vision: resnet #1")
        run = store.create_run(
            vision, run_name="parent", run_id=parent_id, start_time=parent["start_time"]
        )
        loss = parent["metrics"]["loss"][:40]
        store.log_batch(
            parent_id,
            metrics=[Metric("loss", v, ts, s) for s, ts, v in loss],
            params=[("lr", "0.01")],
        )
        store.artifact_repo(run.info.artifact_uri).put("model.txt", b"weights")
        unrelated = store.create_run(exp, run_name="mine").info.run_id
    finally:
        store.close()

    proc = run_cli("import-mlflow", source, "--database-url", url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "experiment 'tabular': exists (id" in proc.stdout and "merging into it" in proc.stdout
    assert f"run {broken_id} 'broken': completed" in proc.stdout
    assert f"run {parent_id} 'parent': completed" in proc.stdout
    assert "5 imported, 2 completed" in proc.stdout

    store = open_store(url)
    try:
        broken = store.get_run(broken_id)
        assert broken.info.status == "FAILED" and broken.info.end_time == 1_700_000_123_000
        history, _ = store.get_metric_history(broken_id, "loss")
        assert _points(history) == _stored(expected["runs"][broken_id]["metrics"]["loss"])
        history, _ = store.get_metric_history(parent_id, "loss")
        assert _points(history) == sorted(parent["metrics"]["loss"])  # no duplicates
        full = store.get_run(parent_id)
        assert full.data.params == parent["params"] and full.info.status == "FINISHED"
        assert _artifacts(store, full.info.artifact_uri) == parent["artifacts"]
        tabular = store.get_experiment_by_name("tabular")
        assert tabular.tags == {"owner": "me"}
        assert store.get_run(unrelated).info.run_name == "mine"
    finally:
        store.close()


def test_selected_experiments_only(run_cli, tmp_path: Path, sources) -> None:
    source, _ = sources["file"]
    url = f"sqlite:///{tmp_path / 'dest.db'}"
    proc = run_cli("import-mlflow", source, "--database-url", url, "--experiment", "tabular")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "importing 1 experiments" in proc.stdout
    store = open_store(url)
    try:
        names = {e.name for e in store.search_experiments(view_type=ALL)[0]}
        assert names == {"Default", "tabular"}
    finally:
        store.close()
    line = assert_failed_cleanly(
        run_cli("import-mlflow", source, "--database-url", url, "--experiment", "nope")
    )
    assert "'nope'" in line and "'tabular'" in line


def test_proxied_artifacts_need_artifacts_root(run_cli, tmp_path: Path, sources) -> None:
    """Runs logged through ``mlflow server`` have ``mlflow-artifacts:/`` URIs; their
    files are under the server's --artifacts-destination."""
    source, expected = sources["sqlite"]
    db = tmp_path / "mlflow.db"
    shutil.copy(source[len("sqlite:///") :], db)
    served = tmp_path / "served"
    con = sqlite3.connect(db)
    for run_id, artifact_uri in con.execute("SELECT run_uuid, artifact_uri FROM runs").fetchall():
        exp_id = con.execute(
            "SELECT experiment_id FROM runs WHERE run_uuid = ?", (run_id,)
        ).fetchone()[0]
        rel = f"{exp_id}/{run_id}/artifacts"
        if os.path.isdir(artifact_uri):
            shutil.copytree(artifact_uri, served / rel)
        con.execute(
            "UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?",
            (f"mlflow-artifacts:/{rel}", run_id),
        )
    con.commit()
    con.close()
    url = f"sqlite:///{tmp_path / 'dest.db'}"

    proc = run_cli("import-mlflow", f"sqlite:///{db}", "--database-url", url)
    line = assert_failed_cleanly(proc)
    assert "problems" in line
    assert "--artifacts-root" in proc.stdout

    proc = run_cli(
        "import-mlflow", f"sqlite:///{db}", "--database-url", url, "--artifacts-root", str(served)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_store_matches(url, expected)

    # A URI that climbs out of the artifacts root is refused, not followed.
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "x.txt").write_text("private")
    parent_id = next(k for k, r in expected["runs"].items() if r["run_name"] == "parent")
    con = sqlite3.connect(db)
    con.execute(
        "UPDATE runs SET artifact_uri = 'mlflow-artifacts:/../secret' WHERE run_uuid = ?",
        (parent_id,),
    )
    con.commit()
    con.close()
    proc = run_cli(
        "import-mlflow", f"sqlite:///{db}", "--database-url", url, "--artifacts-root", str(served)
    )
    assert_failed_cleanly(proc)
    assert "leaves --artifacts-root" in proc.stdout
    assert_store_matches(url, expected)  # x.txt was not copied


def test_bad_sources_fail_in_one_line(run_cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dest.db'}"
    line = assert_failed_cleanly(
        run_cli("import-mlflow", str(tmp_path / "missing"), "--database-url", url)
    )
    assert "no such directory" in line
    line = assert_failed_cleanly(run_cli("import-mlflow", str(tmp_path), "--database-url", url))
    assert "not an MLflow file store" in line
    missing_db = tmp_path / "nope.db"
    line = assert_failed_cleanly(
        run_cli("import-mlflow", f"sqlite:///{missing_db}", "--database-url", url)
    )
    assert "no such database file" in line
    assert not missing_db.exists()  # looking did not create it
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    line = assert_failed_cleanly(
        run_cli("import-mlflow", f"sqlite:///{other}", "--database-url", url)
    )
    assert "not an MLflow tracking database" in line
    (tmp_path / "afile.db").write_text("x")
    line = assert_failed_cleanly(
        run_cli("import-mlflow", str(tmp_path / "afile.db"), "--database-url", url)
    )
    assert "sqlite:///" in line
    broken = tmp_path / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "meta.yaml").write_text('name: [unclosed\n  - : :\n"x')
    assert_failed_cleanly(run_cli("import-mlflow", str(tmp_path / "broken"), "--database-url", url))
    assert_failed_cleanly(run_cli("import-mlflow"), code=2)


def test_items_the_store_refuses_are_reported_and_the_rest_imported(
    run_cli, tmp_path: Path, sources
) -> None:
    source, expected = sources["file"]
    copy = tmp_path / "mlruns"
    shutil.copytree(source, copy)
    parent_id = next(k for k, r in expected["runs"].items() if r["run_name"] == "parent")
    run_dir = next(copy.glob(f"*/{parent_id}"))
    # Not what MLflow writes, but what a hand-edited mlruns may hold.
    (run_dir / "params" / "bad?key").write_text("1")
    (run_dir / "tags" / "bad tag?").write_text("1")
    (run_dir / "params" / "huge").write_text("x" * 7000)  # the store truncates it to 6000
    meta = run_dir / "meta.yaml"  # artifacts from the copy, not the original
    meta.write_text(meta.read_text().replace(source, str(copy)))
    (tmp_path / "private.txt").write_text("private")
    os.symlink(tmp_path / "private.txt", run_dir / "artifacts" / "link.txt")
    (run_dir.parent / "tags" / "bad?tag").write_text("1")  # on the experiment
    fold1 = next(k for k, r in expected["runs"].items() if r["run_name"] == "fold-1")
    (run_dir.parent / fold1 / "meta.yaml").write_text(
        "run_id: 'unterminated\n"
    )  # unreadable: skipped
    url = f"sqlite:///{tmp_path / 'dest.db'}"

    proc = run_cli("import-mlflow", str(copy), "--database-url", url)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "jupyter mlops: error: 5 problems" in proc.stderr
    assert "artifact link.txt links outside the run" in proc.stdout
    assert "tag 'bad?tag' not imported" in proc.stdout
    assert f"WARNING: run skipped: {run_dir.parent / fold1 / 'meta.yaml'}" in proc.stdout
    assert (
        "param 'bad?key' not imported" in proc.stdout
        and "tag 'bad tag?' not imported" in proc.stdout
    )
    store = open_store(url)
    try:
        run = store.get_run(parent_id)
        assert run.data.params == {**expected["runs"][parent_id]["params"], "huge": "x" * 6000}
        assert _artifacts(store, run.info.artifact_uri) == expected["runs"][parent_id]["artifacts"]
        assert run.data.tags == expected["runs"][parent_id]["tags"]
        assert run.info.status == "FINISHED"
        fold0 = next(k for k, r in expected["runs"].items() if r["run_name"] == "fold-0")
        assert store.get_run(fold0).data.params == {"fold": "0"}
        with pytest.raises(TrackingError):
            store.get_run(fold1)
        exp = store.get_experiment_by_name("vision: resnet #1")
        assert exp.tags == expected["experiments"]["vision: resnet #1"]["tags"]
    finally:
        store.close()
    again = run_cli("import-mlflow", str(copy), "--database-url", url)
    assert "jupyter mlops: error: 5 problems" in again.stderr
    assert "'huge'" not in again.stdout  # a truncated value is not a conflict


@pytest.mark.postgres
def test_mlflow_on_postgres_into_a_postgres_store(run_cli, tmp_path: Path) -> None:
    """An MLflow server's PostgreSQL database as the source (``postgresql://`` is
    read with psycopg 3 when psycopg2 is not installed, as here), imported into a
    jupyter-mlops store on PostgreSQL; each in a throwaway database."""
    base = os.environ.get("JUPYTER_MLOPS_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("JUPYTER_MLOPS_TEST_POSTGRES_URL is not set")
    import uuid

    import psycopg
    import sqlalchemy as sa

    suffix = uuid.uuid4().hex[:8]
    names = {"src": f"mlops_cli_src_{suffix}", "dest": f"mlops_cli_dest_{suffix}"}
    admin = sa.engine.make_url(base).set(drivername="postgresql")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        src, dest = (
            admin.set(database=names[k]).render_as_string(hide_password=False)
            for k in ("src", "dest")
        )
        expected = _make_source(
            tmp_path / "work", src.replace("postgresql://", "postgresql+psycopg://")
        )
        args = ("import-mlflow", src, "--database-url", dest)
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert_store_matches(dest, expected)
        again = run_cli(*args)
        assert again.returncode == 0 and "0 imported, 0 completed" in again.stdout
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
