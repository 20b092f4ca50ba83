"""``jupyter mlops db upgrade``: creates the store, is idempotent, fails cleanly."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import REPO, assert_failed_cleanly, cli_env

from jupyter_mlops.tracking import migrate, open_store


def test_creates_default_store_then_is_idempotent(run_cli, tmp_path: Path) -> None:
    head = migrate.head_revision()
    db = tmp_path / "jupyter-data" / "mlops" / "mlops.db"
    first = run_cli("db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert db.is_file()
    assert f"created the store at sqlite:///{db}" in first.stdout
    assert f"schema revision {head}" in first.stdout

    again = run_cli("db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert "is up to date" in again.stdout and head in again.stdout

    # The store is usable and its artifacts go beside the database, as the server's.
    store = open_store(f"sqlite:///{db}")
    try:
        assert store.artifact_root == str(tmp_path / "jupyter-data" / "mlops" / "artifacts")
        assert store.get_experiment_by_name("Default") is not None
    finally:
        store.close()


def test_explicit_url_bare_path_and_artifact_root(run_cli, tmp_path: Path) -> None:
    db = tmp_path / "sub" / "dir" / "t.db"
    root = tmp_path / "art"
    proc = run_cli("db", "upgrade", "--database-url", str(db), "--artifact-root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert db.is_file()
    assert not (tmp_path / "jupyter-data" / "mlops" / "mlops.db").exists()
    store = open_store(f"sqlite:///{db}")
    try:
        assert store.artifact_root == str(root)
    finally:
        store.close()


def test_tracking_uri_env_names_the_store(run_cli, tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    env = cli_env(tmp_path, JUPYTER_MLOPS_TRACKING_URI=f"sqlite:///{db}")
    proc = run_cli("db", "upgrade", env=env)
    assert proc.returncode == 0, proc.stderr
    assert db.is_file()
    # An http tracking URI is not a database: the default store is used.
    env = cli_env(tmp_path, JUPYTER_MLOPS_TRACKING_URI="http://127.0.0.1:1/mlops")
    proc = run_cli("db", "upgrade", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "jupyter-data" / "mlops" / "mlops.db").is_file()


def test_failures_are_one_line(run_cli, tmp_path: Path) -> None:
    line = assert_failed_cleanly(run_cli("db", "upgrade", "--database-url", "http://127.0.0.1:1/x"))
    assert "database URL" in line
    line = assert_failed_cleanly(
        run_cli("db", "upgrade", "--database-url", "mysql://u@127.0.0.1/x")
    )
    assert "mysql" in line.lower()
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        assert_failed_cleanly(run_cli("db", "upgrade", "--database-url", str(ro / "x" / "t.db")))


def test_usage_errors_exit_2(run_cli) -> None:
    assert_failed_cleanly(run_cli(), code=2)
    assert_failed_cleanly(run_cli("db"), code=2)
    assert_failed_cleanly(run_cli("db", "downgrade"), code=2)
    assert_failed_cleanly(run_cli("gc", "--older-than", "soon"), code=2)
    helped = run_cli("import-mlflow", "--help")
    assert helped.returncode == 0 and "--artifacts-root" in helped.stdout


def test_jupyter_dispatches_to_the_console_script(tmp_path: Path) -> None:
    """``jupyter mlops`` finds ``jupyter-mlops`` on PATH: a script made as pip makes
    console scripts (``sys.exit(main())``) stands in for the installed one."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "jupyter-mlops"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom jupyter_mlops.cli import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    env = cli_env(tmp_path)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter", "mlops", "db", "upgrade"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "created the store" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "jupyter", "mlops", "gc", "--older-than", "x"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2


@pytest.mark.postgres
def test_postgres_upgrade_is_idempotent(run_cli) -> None:
    """On a throwaway database: the shared test database may be mid-migration by
    other tests' stores."""
    base = os.environ.get("JUPYTER_MLOPS_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("JUPYTER_MLOPS_TEST_POSTGRES_URL is not set")
    import uuid

    import psycopg
    import sqlalchemy as sa

    name = f"mlops_cli_db_{uuid.uuid4().hex[:8]}"
    admin = sa.engine.make_url(base).set(drivername="postgresql")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin.set(database=name).render_as_string(hide_password=False)
        first = run_cli("db", "upgrade", "--database-url", url)
        assert first.returncode == 0, first.stderr
        assert f"created the store at {url}" in first.stdout
        again = run_cli("db", "upgrade", "--database-url", url)
        assert again.returncode == 0, again.stderr
        assert f"up to date: schema revision {migrate.head_revision()}" in again.stdout
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_store_from_a_newer_version_is_refused_in_one_line(run_cli, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "t.db"
    assert run_cli("db", "upgrade", "--database-url", str(db)).returncode == 0
    con = sqlite3.connect(db)
    con.execute(f"UPDATE {migrate.VERSION_TABLE} SET version_num = 'ffff9999'")
    con.commit()
    con.close()
    line = assert_failed_cleanly(run_cli("db", "upgrade", "--database-url", str(db)))
    assert "ffff9999" in line and "newer" in line
    assert_failed_cleanly(run_cli("gc", "--database-url", str(db)))
