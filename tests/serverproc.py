"""Real server subprocesses for tests (imported as ``serverproc``: tests/ is on sys.path).

- ``free_port``: a loopback port nobody listens on right now;
- ``wait_ready``: poll a started process until it answers, with a deadline generous
  enough for a loaded CI machine (it only costs time when the server is broken);
- ``start_server``: start a server on a free port and wait until it answers; when it exits
  because another process took the port between ``free_port`` and its bind (``lost_port_race``),
  start it again on a new port instead of failing the test;
- ``stop_process``: stop a server subprocess (killed if it does not end in time);
- ``JupyterServerProcess``: ``jupyter server`` with jupyter-mlops, its own data, config and
  runtime dirs, token and base URL, which can be stopped (cleanly or by a crash) and started
  again on the same port.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MLOPS_EXTENSION = "jupyter_mlops"
#: Seconds a server may take to answer after its start on a loaded machine.
START_TIMEOUT = 120.0
#: What servers log when their port is taken (jupyter server, tornado, Node, uvicorn).
_PORT_TAKEN = ("already in use", "is not available", "EADDRINUSE", "address in use")

# Installed server extensions a tracking test does not need (each adds start-up time).
OTHER_EXTENSIONS = (
    "jupyterlab",
    "jupyter_lsp",
    "notebook_shim",
    "notebook",
    "jupyter_server_terminals",
    "jupyter_server_ydoc",
    "jupyter_collaboration",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lost_port_race(log_text: str) -> bool:
    """Whether a start-up log says the port was taken."""
    return any(marker in log_text for marker in _PORT_TAKEN)


class ServerExited(RuntimeError):
    """The process ended before it answered."""


def wait_ready(
    proc: subprocess.Popen,
    ready: Callable[[], bool],
    log: Callable[[], str],
    what: str,
    timeout: float = START_TIMEOUT,
) -> None:
    """Poll ``ready()`` (connection errors count as not ready) until it is true; raise
    :class:`ServerExited` if ``proc`` ends first, RuntimeError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServerExited(f"{what} exited ({proc.returncode}):\n{log()[-5000:]}")
        try:
            if ready():
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer in {timeout:.0f} s:\n{log()[-5000:]}")
        time.sleep(0.2)


def start_server(
    launch: Callable[[int], subprocess.Popen],
    answers: Callable[[int], bool],
    log_path: Path,
    what: str,
    port: int | None = None,
    timeout: float = START_TIMEOUT,
) -> tuple[subprocess.Popen, int]:
    """``launch(port)`` a server (its output appended to ``log_path``) and wait until
    ``answers(port)``; returns (process, port). Without ``port``, a free one, and a new one
    if another process took it first (the server exits saying so). A given ``port`` (a
    restart: clients know it) is tried again until its other holder has gone."""
    for attempt in range(5):
        chosen = port or free_port()
        offset = log_path.stat().st_size if log_path.exists() else 0
        proc = launch(chosen)
        try:
            wait_ready(
                proc,
                lambda port=chosen: answers(port),
                lambda: log_path.read_text(errors="replace"),
                what,
                timeout,
            )
            return proc, chosen
        except ServerExited:
            if attempt == 4 or not lost_port_race(
                log_path.read_bytes()[offset:].decode(errors="replace")
            ):
                raise
            if port:
                time.sleep(1)
        except RuntimeError:
            proc.kill()
            proc.wait(30)
            raise
    raise AssertionError("unreachable")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """Send ``sig`` (SIGTERM: a clean shutdown) and wait for the exit, killing the process
    if it has not ended after ``timeout`` s; returns the exit code."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(30)


def child_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a server under ``root``: this checkout importable, its own Jupyter
    dirs and HOME, no Jupyter, tracking or hub variables inherited from the shell running
    the tests (e.g. a developer's JUPYTER_PATH, or a kernel's JUPYTER_MLOPS_TRACKING_URI)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER_", "JPY_", "MLFLOW_", "JUPYTERHUB_"))
    }
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        HOME=str(root / "home"),
        **extra,
    )
    return env


@dataclass
class JupyterServerProcess:
    """A ``jupyter server`` subprocess with jupyter-mlops enabled; its workspace is
    ``root/work`` and its store ``root/data/mlops/mlops.db``."""

    root: Path
    base_url: str = "/jh/user/"
    token: str = "mlops-test-token"
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    #: Also load JupyterLab and the other installed server extensions (slower start).
    lab: bool = False
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    #: Whether it answered once: a restart keeps the port clients already know.
    answered: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    @property
    def tracking_uri(self) -> str:
        return self.url + "mlops"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'mlops' / 'mlops.db'}"

    def env(self) -> dict[str, str]:
        return child_env(self.root)

    def _extensions(self) -> str:
        exts = {MLOPS_EXTENSION: True}
        if not self.lab:
            exts.update(dict.fromkeys(OTHER_EXTENSIONS, False))
        return repr(exts)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--port={self.port}",
            "--port-retries=0",
            "--ip=127.0.0.1",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.base_url={self.base_url}",
            f"--ServerApp.root_dir={self.work}",
            f"--ServerApp.jpserver_extensions={self._extensions()}",
            *self.extra_args,
        ]

    def _answers(self) -> bool:
        req = urllib.request.Request(
            self.url + "mlops/health", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status == 200

    def start(self, timeout: float = START_TIMEOUT) -> JupyterServerProcess:
        for d in ("work", "home", "config", "runtime", "data"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.log_path = self.root / "server.log"

        def launch(port: int) -> subprocess.Popen:
            self.port = port
            with open(self.log_path, "ab") as log:
                return subprocess.Popen(
                    self.command(), env=self.env(), stdout=log, stderr=subprocess.STDOUT
                )

        self.proc, self.port = start_server(
            launch,
            lambda port: self._answers(),
            self.log_path,
            "jupyter server",
            port=self.port if self.answered else None,
            timeout=timeout,
        )
        self.answered = True
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        """Stop the way an admin does (SIGTERM: clean shutdown) or, with SIGKILL, a crash;
        returns the exit code."""
        proc, self.proc = self.proc, None
        return stop_process(proc, sig, timeout) if proc else None

    def restart(self) -> JupyterServerProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace")
            if self.log_path and self.log_path.exists()
            else ""
        )
