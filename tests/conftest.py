"""Shared fixtures: a real Jupyter server with the jupyter-mlops extension.

- in-process (pytest-jupyter): ``jp_serverapp`` / ``jp_fetch`` with the extension
  enabled and its store in ``tmp_path`` (``mlops_db_url``);
- out-of-process: ``jupyter_server_process`` starts ``jupyter server`` as a
  subprocess (own data dir, token and base URL) and can stop and restart it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest_plugins = ("pytest_jupyter.jupyter_server",)

REPO = Path(__file__).resolve().parent.parent
MLOPS_EXTENSION = "jupyter_mlops"


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Installed server extensions a tracking test does not need (each adds start-up time).
_OTHER_EXTENSIONS = ("jupyterlab", "jupyter_lsp", "notebook_shim", "notebook",
                     "jupyter_server_terminals", "jupyter_server_ydoc", "jupyter_collaboration")


@dataclass
class JupyterServerProcess:
    """A ``jupyter server`` subprocess with jupyter-mlops enabled."""

    root: Path
    base_url: str = "/jh/user/"
    token: str = "mlops-test-token"
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    #: Also load JupyterLab and the other installed server extensions (slower start).
    lab: bool = False
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    @property
    def tracking_uri(self) -> str:
        return self.url + "mlops"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'mlops' / 'mlops.db'}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_", "JUPYTERHUB_"))}
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            JUPYTER_DATA_DIR=str(self.data_dir),
            JUPYTER_CONFIG_DIR=str(self.root / "config"),
            JUPYTER_RUNTIME_DIR=str(self.root / "runtime"),
            HOME=str(self.root / "home"),
        )
        return env

    def _extensions(self) -> str:
        exts = {MLOPS_EXTENSION: True}
        if not self.lab:
            exts.update({name: False for name in _OTHER_EXTENSIONS})
        return repr(exts)

    def start(self, timeout: float = 60) -> JupyterServerProcess:
        for d in ("work", "home", "config", "runtime", "data"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.log_path = self.root / "server.log"
        cmd = [
            sys.executable, "-m", "jupyter_server",
            f"--port={self.port}", "--port-retries=0", "--ip=127.0.0.1", "--no-browser",
            "--allow-root", f"--ServerApp.token={self.token}",
            f"--ServerApp.base_url={self.base_url}",
            f"--ServerApp.root_dir={self.root / 'work'}",
            f"--ServerApp.jpserver_extensions={self._extensions()}",
            *self.extra_args,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{self.log()}")
            try:
                req = urllib.request.Request(
                    self.url + "mlops/health", headers={"Authorization": f"token {self.token}"}
                )
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter server did not start:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Stop the way an admin does (SIGTERM: clean shutdown); returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)

    def restart(self) -> JupyterServerProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


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
