"""Real notebooks: a Jupyter server subprocess with the extension, kernels
opened through its sessions API, cells executed in them, results read back
through the server's MLflow REST API.

One server for the module (its workspace a git repository), two kernels.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from serverproc import JupyterServerProcess

requests = pytest.importorskip("requests")
jupyter_client = pytest.importorskip("jupyter_client")

TOKEN = "kernel-test-token"
REMOTE = "https://bob:hunter2@git.example.org/lab/notebooks.git"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.org",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _notebook(source: str) -> str:
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": "c1",
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
            ],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        indent=1,
    )


@dataclass
class Server(JupyterServerProcess):
    """``jupyter server`` with JupyterLab and jupyter-mlops at ``/``; its workspace
    (``work``) is a git repository, as a user's often is."""

    base_url: str = "/"
    token: str = TOKEN
    lab: bool = True

    def env(self) -> dict[str, str]:
        return {**super().env(), "JUPYTER_PLATFORM_DIRS": "0"}

    @property
    def runtime_dir(self) -> Path:
        return self.root / "runtime"

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"token {TOKEN}", **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def api(self, method: str, path: str, **kw: Any) -> Any:
        r = self.request(method, path, **kw)
        assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text}"
        return r.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("nbserver"))
    repo = srv.work
    (repo / "work").mkdir(parents=True)
    (repo / "README.md").write_text("notebooks\n")
    _git(repo, "init", "-q")
    _git(repo, "remote", "add", "origin", REMOTE)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "start")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class Kernel:
    """A notebook session on the server and a client on its kernel."""

    def __init__(self, server: Server, nb_path: str, first_cell: str = "") -> None:
        self.server = server
        (server.work / nb_path).write_text(_notebook(first_cell))
        session = server.api(
            "POST",
            "api/sessions",
            json={
                "path": nb_path,
                "name": nb_path.rsplit("/", 1)[-1],
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
        )
        self.session_id = session["id"]
        self.kernel_id = session["kernel"]["id"]
        conn = server.runtime_dir / f"kernel-{self.kernel_id}.json"
        deadline = time.monotonic() + 60
        while not conn.exists():
            assert time.monotonic() < deadline, f"no connection file {conn}"
            time.sleep(0.1)
        self.client = jupyter_client.BlockingKernelClient(connection_file=str(conn))
        self.client.load_connection_file()
        self.client.start_channels()
        self._wait_ready(deadline + 90)

    def _wait_ready(self, deadline: float) -> None:
        """Ask for kernel_info until the kernel answers. (The client's own
        wait_for_ready takes a heartbeat not yet seen, on a slow start-up, for
        a dead kernel.)"""
        from queue import Empty

        while True:
            msg_id = self.client.kernel_info()
            try:
                while self.client.get_shell_msg(timeout=2)["parent_header"].get("msg_id") != msg_id:
                    pass
                # IOPub subscriptions connect late: ready once it carries our status too.
                while self.client.get_iopub_msg(timeout=1)["parent_header"].get("msg_id") != msg_id:
                    pass
                return
            except Empty:
                assert time.monotonic() < deadline, "the kernel did not answer kernel_info"

    def run(self, code: str) -> tuple[dict[str, Any], str]:
        """Execute a cell; return (reply content, stdout + stderr text)."""
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = self.client.execute_interactive(code, timeout=120, output_hook=hook)
        return reply["content"], "".join(out)

    def ok(self, code: str) -> str:
        content, text = self.run(code)
        assert content["status"] == "ok", (
            f"{code!r} failed: {content.get('ename')}: {content.get('evalue')}\n{text}"
        )
        return text

    def close(self) -> None:
        self.client.stop_channels()
        self.server.request("DELETE", f"api/sessions/{self.session_id}")


@pytest.fixture(scope="module")
def magics_kernel(server: Server) -> Iterator[Kernel]:
    k = Kernel(server, "work/exp.ipynb", "%load_ext jupyter_mlops")
    yield k
    k.close()


@pytest.fixture(scope="module")
def plain_kernel(server: Server) -> Iterator[Kernel]:
    k = Kernel(server, "plain.ipynb", "import jupyter_mlops as mlops")
    yield k
    k.close()


def get_run(server: Server, run_id: str) -> dict[str, Any]:
    run = server.api("GET", "mlops/api/2.0/mlflow/runs/get", params={"run_id": run_id})["run"]
    data = run.get("data", {})
    return {
        "info": run["info"],
        "params": {p["key"]: p["value"] for p in data.get("params", [])},
        "metrics": {m["key"]: m for m in data.get("metrics", [])},
        "tags": {t["key"]: t["value"] for t in data.get("tags", [])},
    }


def get_artifact(server: Server, run: dict[str, Any], path: str) -> bytes:
    uri = run["info"]["artifact_uri"]
    assert uri.startswith("mlflow-artifacts:/"), uri
    prefix = uri[len("mlflow-artifacts:") :].strip("/")
    r = server.request("GET", f"mlops/api/2.0/mlflow-artifacts/artifacts/{prefix}/{path}")
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
    return r.content


def run_id_in(text: str) -> str:
    m = re.search(r"\b([0-9a-f]{32})\b", text)
    assert m, text
    return m.group(1)


def check_source_tags(server: Server, run: dict[str, Any], nb_path: str) -> None:
    tags = run["tags"]
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert tags["mlflow.source.name"] == nb_path
    assert tags["mlops.source.notebook_path"] == nb_path
    assert tags["mlflow.source.git.commit"] == _git(server.work, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.repoURL"] == "https://git.example.org/lab/notebooks.git"
    assert tags["mlflow.source.git.dirty"] == "true"  # the notebooks are not committed
    snapshot = get_artifact(server, run, "source/" + nb_path.rsplit("/", 1)[-1])
    assert snapshot == (server.work / nb_path).read_bytes()


def test_line_magics_in_a_notebook(server: Server, magics_kernel: Kernel) -> None:
    k = magics_kernel
    k.ok("%load_ext jupyter_mlops")
    started = k.ok("%mlops start nb-run --experiment nb-exp")
    run_id = run_id_in(started)
    k.ok("%mlops param alpha=0.5 solver=adam")
    k.ok("%mlops metric rmse=0.25 --step 1")
    k.ok("%mlops metric rmse=0.125 --step 2")
    k.ok("%mlops tag team=vision")
    status = k.ok("%mlops status")
    assert run_id in status and "nb-exp" in status
    k.ok("%mlops end")

    content, text = k.run("%mlops end")
    assert content["status"] == "error"
    assert "no active run" in text and "Traceback" not in text

    run = get_run(server, run_id)
    assert run["info"]["status"] == "FINISHED"
    assert run["info"]["run_name"] == "nb-run"
    assert run["params"] == {"alpha": "0.5", "solver": "adam"}
    assert run["metrics"]["rmse"]["value"] == 0.125 and int(run["metrics"]["rmse"]["step"]) == 2
    assert run["tags"]["team"] == "vision"
    exp = server.api(
        "GET",
        "mlops/api/2.0/mlflow/experiments/get",
        params={"experiment_id": run["info"]["experiment_id"]},
    )["experiment"]
    assert exp["name"] == "nb-exp"
    check_source_tags(server, run, "work/exp.ipynb")


def test_cell_magic_in_a_notebook(server: Server, magics_kernel: Kernel) -> None:
    k = magics_kernel
    k.ok("%load_ext jupyter_mlops")
    cell = "import jupyter_mlops as m\nm.log_metric('answer', 6 * 7)\nprint(m.active_run().info.run_id)"
    run_id = run_id_in(k.ok(f"%%mlops run cell-run\n{cell}"))
    run = get_run(server, run_id)
    assert run["info"]["status"] == "FINISHED"
    assert run["metrics"]["answer"]["value"] == 42
    assert get_artifact(server, run, "source/cell.py").decode().rstrip("\n") == cell
    check_source_tags(server, run, "work/exp.ipynb")

    content, text = k.run(
        "%%mlops run broken\nimport jupyter_mlops as m\nprint(m.active_run().info.run_id)\n1 / 0"
    )
    assert content["status"] == "error" and content["ename"] == "ZeroDivisionError"
    failed = get_run(server, run_id_in(text))
    assert failed["info"]["status"] == "FAILED"
    assert k.ok("import jupyter_mlops as m; print(m.active_run())").strip() == "None"


def test_fluent_api_with_no_configuration(server: Server, plain_kernel: Kernel) -> None:
    k = plain_kernel
    text = k.ok(
        "import jupyter_mlops as mlops\n"
        "run = mlops.start_run()\n"
        "mlops.log_metric('loss', 0.5, step=0)\n"
        "mlops.log_metric('loss', 0.25, step=1)\n"
        "mlops.log_param('epochs', 2)\n"
        "mlops.end_run()\n"
        "print(run.info.run_id, mlops.get_tracking_uri())"
    )
    run_id = run_id_in(text)
    run = get_run(server, run_id)
    assert run["info"]["status"] == "FINISHED"
    assert run["metrics"]["loss"]["value"] == 0.25
    assert run["params"] == {"epochs": "2"}
    check_source_tags(server, run, "plain.ipynb")


def test_renamed_notebook_found_through_the_sessions_api(
    server: Server, plain_kernel: Kernel
) -> None:
    """After a rename the kernel's JPY_SESSION_NAME / __session__ name a file
    that is gone (they change only on restart); the sessions API has the new path."""
    from jupyter_mlops.client.source import session_path_for_kernel

    k = plain_kernel
    assert session_path_for_kernel(server.url, TOKEN, k.kernel_id) == "plain.ipynb"
    assert session_path_for_kernel(server.url, "wrong-token", k.kernel_id) is None
    assert session_path_for_kernel(server.url, TOKEN, "no-such-kernel") is None

    # What JupyterLab does on a rename: move the file, then point the session at it.
    server.api("PATCH", "api/contents/plain.ipynb", json={"path": "renamed.ipynb"})
    server.api(
        "PATCH",
        f"api/sessions/{k.session_id}",
        json={"path": "renamed.ipynb", "name": "renamed.ipynb"},
    )
    out = k.ok(
        "import os, json\n"
        "from jupyter_mlops.client.source import capture_source\n"
        "tags, files = capture_source()\n"
        "print(json.dumps({'env': os.environ.get('JPY_SESSION_NAME'), 'tags': tags, 'files': [n for n, _ in files]}))"
    )
    got = json.loads(out.strip().splitlines()[-1])
    assert got["env"].endswith("plain.ipynb")  # stale, as the reference says
    assert got["tags"]["mlflow.source.type"] == "NOTEBOOK"
    assert got["tags"]["mlflow.source.name"] == "renamed.ipynb"
    assert got["tags"]["mlops.source.notebook_path"] == "renamed.ipynb"
    assert got["files"] == ["renamed.ipynb"]
