"""Small real notebooks and scripts, a pipeline server subprocess and the store URL for pipeline tests."""

from __future__ import annotations

import json as _json
import os
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import nbformat
import pytest
from pgschema import fresh_schema
from serverproc import REPO, JupyterServerProcess  # noqa: F401 - REPO for the pipeline tests


def write_notebook(path: str, params: str | None, *cells: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
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
    write_notebook(str(tmp_path / "prep.ipynb"), "rows = 10\nname = 'x'\n", "print('rows', rows)")
    write(str(tmp_path / "train.py"), "import sys\nprint(sys.argv[1:])\n")
    return tmp_path


# -- a jupyter server subprocess with the extension --------------------------------------
#: Fast schedule ticks and a warm kernel, so REST tests do not wait on the defaults.
PIPELINE_ARGS = (
    "--PipelineService.schedule_interval=0.5",
    "--PipelineService.parallelism=2",
    "--PipelineService.warm_kernels=1",
)


@dataclass
class Server(JupyterServerProcess):
    """``jupyter server`` with only jupyter-mlops, its own data dir and workspace
    (``root/work``), and the pipeline service's test settings; ``extra_args`` adds more."""

    base_url: str = "/u/"
    token: str = "pipe-token"

    def __post_init__(self) -> None:
        self.extra_args = [*PIPELINE_ARGS, *self.extra_args]

    def call(self, method: str, path: str, body=None, raw: bool = False, timeout: float = 60):
        """(status, JSON or bytes, headers)."""
        data = (
            _json.dumps(body).encode()
            if body is not None
            else (b"" if method in ("POST", "PATCH") else None)
        )
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                payload, status, headers = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            payload, status, headers = e.read(), e.code, e.headers
        return status, payload if raw else _json.loads(payload or b"null"), headers

    def wait_run(
        self, run_id: str, until=("SUCCEEDED", "FAILED", "CANCELED"), timeout: float = 180
    ):
        deadline = time.monotonic() + timeout
        while True:
            status, body, _ = self.call("GET", f"mlops/api/v1/pipelines/runs/{run_id}")
            assert status == 200, body
            if body["run"]["status"] in until:
                return body["run"]
            assert time.monotonic() < deadline, f"run {run_id} still {body['run']['status']}"
            time.sleep(0.2)


def wait_dead(pid: int, timeout: float = 60) -> None:
    """Wait until ``pid`` no longer runs (a kill signal is delivered asynchronously)."""
    from jupyter_mlops.pipelines.proctree import alive

    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, (
            f"process {pid} still runs {timeout:.0f} s after its kill"
        )
        time.sleep(0.05)


@pytest.fixture
def store(tmp_path):
    """A SQLite store in tmp_path, its artifacts in tmp_path/art."""
    from jupyter_mlops.tracking import open_store

    s = open_store(f"sqlite:///{tmp_path / 'mlops.db'}", artifact_root=str(tmp_path / "art"))
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """The store's URL: SQLite in tmp_path, or a fresh PostgreSQL schema (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mlops.db'}"
        return
    with fresh_schema("pipe") as url:
        yield url
