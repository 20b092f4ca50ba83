"""Fixtures for the client: real SQLite and PostgreSQL stores, a clean process
state per test, and helpers to run scripts in child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_ENV_CLEARED = (
    "JUPYTER_MLOPS_TRACKING_URI",
    "JUPYTER_MLOPS_TRACKING_TOKEN",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
    "JUPYTER_MLOPS_RUN_ID",
)


@pytest.fixture(autouse=True)
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Own data and spool directories, short heartbeats, no inherited URIs;
    afterwards end leftover runs and stop this test's writer threads."""
    for var in _ENV_CLEARED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_MLOPS_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("JUPYTER_MLOPS_HEARTBEAT_INTERVAL", "0.2")
    yield
    import jupyter_mlops as mlops
    from jupyter_mlops.client.writer import close_all

    while mlops.active_run() is not None:
        try:
            mlops.end_run()
        except Exception:  # noqa: BLE001, S110 - a refused end still leaves the stack; close_all follows
            pass
    mlops.set_tracking_uri(None)
    close_all()


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for this session, dropped afterwards."""
    url = os.environ.get("JUPYTER_MLOPS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("JUPYTER_MLOPS_TEST_POSTGRES_URL is not set")
    import psycopg

    name = f"mlops_client_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.rsplit("/", 1)[0] + "/" + name
    from jupyter_mlops.client.writer import close_all

    close_all()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlops.db'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture
def mlops(store_uri: str):
    """The fluent API pointed at a fresh store (or a fresh experiment in the
    session's PostgreSQL database)."""
    import jupyter_mlops

    jupyter_mlops.set_tracking_uri(store_uri)
    jupyter_mlops.set_experiment(f"exp-{uuid.uuid4().hex[:8]}")
    return jupyter_mlops


class Scripts:
    """Run Python code in child interpreters (real processes, this checkout)."""

    @staticmethod
    def env(**extra: str) -> dict[str, str]:
        return child_env(**extra)

    @staticmethod
    def run(code: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return run_script(code, timeout, **env)

    @staticmethod
    def start(code: str, **env: str) -> subprocess.Popen[str]:
        return start_script(code, **env)


@pytest.fixture
def scripts() -> Scripts:
    return Scripts()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_CLEARED}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_script(code: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; fail the test with its output if it fails."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


def start_script(code: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=child_env(**env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
