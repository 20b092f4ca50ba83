"""Shared fixtures: a real Jupyter server with the jupyter-mlops extension.

- in-process (pytest-jupyter): ``jp_serverapp`` / ``jp_fetch`` with the extension
  enabled and its store in ``tmp_path`` (``mlops_db_url``);
- out-of-process: ``jupyter_server_process`` starts ``jupyter server`` as a
  subprocess (own data dir, token and base URL) and can stop and restart it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serverproc import MLOPS_EXTENSION, JupyterServerProcess

pytest_plugins = ("pytest_jupyter.jupyter_server",)

#: What a jupyter-mlops kernel or terminal, a hub pod or an MLflow user's shell exports.
_INHERITED = ("JUPYTER_MLOPS_", "MLFLOW_", "JUPYTERHUB_", "JPY_")


def pytest_configure(config: pytest.Config) -> None:
    """Tests must not depend on the shell that runs them: drop the tracking, MLflow and hub
    variables it may carry (they would point tests, and defaults read at import, at a real
    store or hub); the test settings (JUPYTER_MLOPS_TEST_*) stay."""
    for name in list(os.environ):
        if name.startswith(_INHERITED) and not name.startswith("JUPYTER_MLOPS_TEST_"):
            del os.environ[name]


@pytest.fixture
def mlops_db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlops.db'}"


@pytest.fixture
def jp_server_config(mlops_db_url: str, tmp_path: Path) -> dict:
    return {
        "ServerApp": {
            # (terminals off: not needed, and they only add start-up time)
            "jpserver_extensions": {MLOPS_EXTENSION: True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "MLOpsApp": {
            "database_url": mlops_db_url,
            "artifact_root": str(tmp_path / "artifacts"),
        },
    }


@pytest.fixture
def jupyter_server_process(tmp_path: Path):
    """Factory: ``jupyter_server_process(base_url="/jh/user/")`` returns a started
    server; every server it started is stopped at the end of the test."""
    started: list[JupyterServerProcess] = []

    def start(**kwargs) -> JupyterServerProcess:
        server = JupyterServerProcess(root=tmp_path / f"server{len(started)}", **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
