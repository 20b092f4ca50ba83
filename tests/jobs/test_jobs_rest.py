"""Training jobs through a real ``jupyter server`` with jupyter-mlops: ``api/v1/jobs`` and
``mlops.jobs.submit`` in a process that has the server's variables (as a kernel of it has),
the ``jupyter mlops job`` CLI, and a server killed with SIGKILL leaving no process behind."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from jobhelpers import (
    REPO,
    SLEEPER_SCRIPT,
    all_dead,
    env_without_tracking,
    pid_files,
    pids_of,
    wait_for,
    write,
)
from serverproc import JupyterServerProcess, child_env

from jupyter_mlops.tracking import open_store

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = JupyterServerProcess(tmp_path_factory.mktemp("jobs-server"))
    srv.start()
    write(srv.work / "sleeper.py", SLEEPER_SCRIPT)
    write(
        srv.work / "hello.py",
        """\
        import argparse, os
        import jupyter_mlops as mlops
        ap = argparse.ArgumentParser()
        ap.add_argument("--greeting")
        a = ap.parse_args()
        rank = int(os.environ["JUPYTER_MLOPS_RANK"])
        print(a.greeting, "from rank", rank, "of", os.environ["JUPYTER_MLOPS_WORLD_SIZE"])
        mlops.log_metric("seen", rank)          # rank 0's only
        """,
    )
    write(
        srv.work / "hello.job.yaml",
        """\
        name: hello
        framework: generic
        script: hello.py
        nodes: 2
        params:
          greeting: hi
        """,
    )
    write(
        srv.work / "bad.job.yaml",
        """\
        name: bad
        script: hello.py
        nodes: 0
        resources: {gpus: 1}
        """,
    )
    yield srv
    srv.stop()


def call(srv, method, path, body=None, raw=False):
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(
        srv.url + "mlops/api/v1/jobs" + path,
        data=data,
        method=method,
        headers={"Authorization": f"token {srv.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            payload = r.read()
            return r.status, (payload.decode() if raw else json.loads(payload)), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def job_of(srv, job_id):
    return call(srv, "GET", f"/{job_id}")[1]["job"]


def test_submit_a_file_watch_it_and_read_every_ranks_log(server):
    status, body, _ = call(
        server, "POST", "", {"path": "hello.job.yaml", "parameters": {"greeting": "hello"}}
    )
    assert status == 200, body
    job = body["job"]
    assert job["nodes"] == 2 and job["framework"] == "generic" and job["run_id"] == job["job_id"]
    job = wait_for(
        lambda: (j := job_of(server, job["job_id"]))["status"] in ("SUCCEEDED", "FAILED") and j,
        "the job to end",
    )
    assert job["status"] == "SUCCEEDED", job
    assert [r["status"] for r in job["ranks"]] == ["SUCCEEDED", "SUCCEEDED"]
    status, text, headers = call(server, "GET", f"/{job['job_id']}/ranks/1/log", raw=True)
    assert text == "hello from rank 1 of 2\n" and headers["X-Job-Ended"] == "true"
    assert headers["X-Log-Offset"] == str(len(text))
    _, tail, _ = call(server, "GET", f"/{job['job_id']}/ranks/0/log?tail=8", raw=True)
    assert tail == "rank 0 of 2\n"[-8:]
    _, rest, _ = call(server, "GET", f"/{job['job_id']}/ranks/0/log?offset=6&follow=true", raw=True)
    assert rest == "from rank 0 of 2\n"  # followed to the end: the job had ended
    assert call(server, "GET", f"/{job['job_id']}/ranks/2/log")[0] == 404
    listed = call(server, "GET", "?name=hello")[1]["jobs"]
    assert job["job_id"] in [j["job_id"] for j in listed]
    # the tracked run, through MLflow's REST API of the same server
    req = urllib.request.Request(
        server.url + f"mlops/api/2.0/mlflow/runs/get?run_id={job['run_id']}",
        headers={"Authorization": f"token {server.token}"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        run = json.loads(r.read())["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"greeting": "hello"}
    keys = [m["key"] for m in run["data"]["metrics"]]
    assert [k for k in keys if not k.startswith("system/")] == ["seen"]
    assert "system/cpu_utilization_percentage" in keys  # the job's system metrics
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.source.name"] == "hello.job.yaml" and tags["mlops.job.shape"] == "2x1"
    assert tags["mlflow.user"] == getpass.getuser()


def test_invalid_jobs_are_400_with_issues_naming_file_line_and_field(server):
    status, body, _ = call(server, "POST", "", {"path": "bad.job.yaml"})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    issues = {(i["file"], i["line"], i["field"]) for i in body["issues"]}
    assert ("bad.job.yaml", 3, "nodes") in issues
    assert ("bad.job.yaml", 4, "resources.gpus") in issues
    status, body, _ = call(server, "POST", "/validate", {"path": "hello.job.yaml"})
    assert status == 200 and body["valid"] and body["job"]["nodes"] == 2
    status, body, _ = call(server, "POST", "", {"path": "hello.job.yaml", "target": "k8s"})
    assert status == 400 and "Unknown target 'k8s'" in body["message"]
    status, body, _ = call(server, "POST", "", {"path": "../outside.job.yaml"})
    assert status == 400 and "outside the workspace" in body["message"]
    status, body, _ = call(
        server, "POST", "", {"path": "hello.job.yaml", "parameters": {"greting": "x"}}
    )
    assert status == 400 and "unknown parameter 'greting'" in body["message"]
    assert call(server, "GET", "/0123456789abcdef")[0] == 404
    targets = call(server, "GET", "/targets")[1]["targets"]
    assert targets[0]["name"] == "local" and targets[0]["kind"] == "local"


def test_client_in_a_kernel_submits_to_the_server_and_cancels(server):
    """``mlops.jobs.submit`` in a process with the server's variables (what a kernel of
    this server gets) goes through the REST API; cancel leaves no process."""
    out = server.work / "client-out"
    out.mkdir()
    script = write(
        server.work / "client.py",
        f"""\
        import json, sys, time
        import jupyter_mlops as mlops
        job = mlops.jobs.submit("hello.py", framework="generic", nodes=1, procs_per_node=3,
                                params={{"greeting": "hey"}}, env={{"X": "1"}})
        print("status", job.wait(timeout=300))
        print("log", repr(job.logs(rank=2)))
        sleeper = mlops.jobs.submit("sleeper.py", framework="pytorch", nodes=2,
                                    args=[{str(out)!r}])
        while len(list(__import__("pathlib").Path({str(out)!r}).glob("pids-*.json"))) < 2:
            time.sleep(0.05)
        print("cancel", sleeper.cancel(), sleeper.run_id == sleeper.job_id)
        """,
    )
    env = child_env(
        server.root,
        JUPYTER_MLOPS_SERVER_URL=server.url,
        JUPYTER_MLOPS_SERVER_TOKEN=server.token,
        JUPYTER_MLOPS_TRACKING_URI=server.tracking_uri,
        JUPYTER_MLOPS_TRACKING_TOKEN=server.token,
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=server.work,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "status SUCCEEDED" in proc.stdout
    assert "log 'hey from rank 2 of 3\\n'" in proc.stdout
    assert "cancel CANCELED True" in proc.stdout
    records = pid_files(out, 2)
    wait_for(lambda: all_dead(pids_of(records)), "the cancelled job's processes to be gone")
    jobs = call(server, "GET", "?status=CANCELED")[1]["jobs"]
    assert any(j["name"] == "sleeper" for j in jobs)


def test_cli_job_run_prints_progress(tmp_path):
    write(tmp_path / "w.py", "import os\nprint('rank', os.environ['RANK'])\n")
    write(tmp_path / "ok.job.yaml", "name: cli-ok\nscript: w.py\nnodes: 2\n")
    write(
        tmp_path / "fails.job.yaml",
        "name: cli-fails\nscript: w.py\nnodes: 1\nprocs_per_node: 2\nparams: {x: 1}\n",
    )
    env = dict(
        env_without_tracking(), PYTHONPATH=str(REPO), JUPYTER_DATA_DIR=str(tmp_path / "data")
    )
    db = tmp_path / "cli.db"

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "jupyter_mlops.cli", "job", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    r = cli("validate", "ok.job.yaml")
    assert r.returncode == 0 and "valid job 'cli-ok': pytorch, 2 node(s) x 1" in r.stdout
    r = cli("run", "ok.job.yaml", "--logs", "--database-url", str(db))
    assert r.returncode == 0, r.stderr
    assert "] job cli-ok: SUCCEEDED" in r.stdout  # (RUNNING too, unless it ended first)
    assert "[rank 1] rank 1" in r.stdout and "[rank 0] rank 0" in r.stdout
    job_id = r.stdout.split("job cli-ok: ", 1)[1].split()[0]
    assert f"job cli-ok {job_id}: SUCCEEDED in" in r.stdout
    store = open_store(f"sqlite:///{db}")
    assert store.get_run(job_id).info.status == "FINISHED"
    store.close()
    r = cli("run", "fails.job.yaml", "-p", "x=oops", "--database-url", str(db))
    assert r.returncode == 1 and "parameter 'x': 'oops' is not an integer" in r.stderr


def test_a_killed_server_leaves_no_rank_when_it_starts_again(server):
    out = server.work / "orphans"
    out.mkdir()
    status, body, _ = call(
        server,
        "POST",
        "",
        {
            "spec": {
                "name": "orphaned",
                "script": "sleeper.py",
                "args": [str(out)],
                "nodes": 2,
                "procs_per_node": 2,
            }
        },
    )
    assert status == 200, body
    job_id = body["job"]["job_id"]
    records = wait_for(lambda: pid_files(out, 4), "every rank to start")
    server.stop(signal.SIGKILL)
    assert not all_dead(pids_of(records))
    server.start()
    wait_for(lambda: all_dead(pids_of(records)), "the leftover ranks to be killed")
    job = wait_for(
        lambda: (j := job_of(server, job_id))["status"] == "FAILED" and j,
        "the job to be marked FAILED",
    )
    assert job["reason"].startswith("interrupted: the process running it (")
    assert os.path.exists(server.data_dir / "mlops" / "mlops.db")
