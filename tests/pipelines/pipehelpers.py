"""Small real notebooks and scripts for pipeline tests."""

from __future__ import annotations

import os
import textwrap

import nbformat
import pytest


def write_notebook(path: str, params: str | None, *cells: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if params is not None:
        nb.cells.append(nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}))
    for c in cells:
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(c)))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    nbformat.write(nb, path)
    return path


def write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


@pytest.fixture
def ws(tmp_path):
    """A workspace directory with a notebook and a script."""
    write_notebook(str(tmp_path / "prep.ipynb"), "rows = 10\nname = 'x'\n",
                   "print('rows', rows)")
    write(str(tmp_path / "train.py"), "import sys\nprint(sys.argv[1:])\n")
    return tmp_path


# -- a jupyter server subprocess with the extension --------------------------------------
import json as _json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Server:
    """``jupyter server`` with only jupyter-mlops, its own data dir and workspace."""

    token = "pipe-token"

    def __init__(self, root: Path, base_url: str = "/u/") -> None:
        self.root = root
        self.work = root / "work"
        self.base_url = base_url
        self.proc: subprocess.Popen | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    def start(self, timeout: float = 90) -> Server:
        for d in ("work", "data", "config", "runtime", "home"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_", "JUPYTERHUB_"))}
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                   JUPYTER_DATA_DIR=str(self.root / "data"),
                   JUPYTER_CONFIG_DIR=str(self.root / "config"),
                   JUPYTER_RUNTIME_DIR=str(self.root / "runtime"), HOME=str(self.root / "home"))
        exts = {"jupyter_mlops": True, **{n: False for n in (
            "jupyterlab", "jupyter_lsp", "notebook_shim", "notebook", "jupyter_server_terminals",
            "jupyter_server_ydoc", "jupyter_collaboration")}}
        cmd = [sys.executable, "-m", "jupyter_server", f"--port={self.port}", "--port-retries=0",
               "--ip=127.0.0.1", "--no-browser", "--allow-root", f"--ServerApp.token={self.token}",
               f"--ServerApp.base_url={self.base_url}", f"--ServerApp.root_dir={self.work}",
               f"--ServerApp.jpserver_extensions={exts!r}", "--PipelineService.schedule_interval=0.5",
               "--PipelineService.parallelism=2", "--PipelineService.warm_kernels=1"]
        log = open(self.root / "server.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + self.log())
            try:
                if self.call("GET", "mlops/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start:\n" + self.log())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def log(self) -> str:
        p = self.root / "server.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def call(self, method: str, path: str, body=None, raw: bool = False, timeout: float = 60):
        """(status, JSON or bytes, headers)."""
        data = _json.dumps(body).encode() if body is not None else (b"" if method in ("POST", "PATCH") else None)
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                payload, status, headers = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            payload, status, headers = e.read(), e.code, e.headers
        return status, payload if raw else _json.loads(payload or b"null"), headers

    def wait_run(self, run_id: str, until=("SUCCEEDED", "FAILED", "CANCELED"), timeout: float = 120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body, _ = self.call("GET", f"mlops/api/v1/pipelines/runs/{run_id}")
            assert status == 200, body
            if body["run"]["status"] in until:
                return body["run"]
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} still {body['run']['status']}")


PG_URL = os.environ.get("JUPYTER_MLOPS_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """The store's URL: SQLite in tmp_path, or a fresh PostgreSQL schema (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mlops.db'}"
        return
    if not PG_URL:
        pytest.skip("set JUPYTER_MLOPS_TEST_POSTGRES_URL to run the PostgreSQL variant")
    import urllib.parse
    import uuid

    import sqlalchemy as sa

    from jupyter_mlops.tracking.migrate import normalize_uri

    schema = f"pipe_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalize_uri(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={urllib.parse.quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
