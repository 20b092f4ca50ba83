"""Kubeflow Pipelines targets through a real ``jupyter server`` and a fake KFP API server over
real HTTP (tests/pipelines/kfpfake.py): targets listed, submission (the spec KFP receives),
statuses and tracked runs following KFP's progress, logs, cancel, KFP's refusals, and a server
restart in the middle of a run."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from kfpfake import FakeKfp
from pgschema import fresh_schema
from pipehelpers import Server, write, write_notebook

P = "mlops/api/v1/pipelines"
MLFLOW = "mlops/api/2.0/mlflow"
TOKEN = "sa-token-team-a"

PIPELINE = """\
name: kfp-demo
parameters:
  n: {type: integer, default: 3}
steps:
  make:
    script: make.py
    parameters: {n: "{{ params.n }}"}
    outputs: [nums.txt]
  report:
    notebook: report.ipynb
    depends_on: [make]
"""


@pytest.fixture(scope="module")
def kfp():
    fake = FakeKfp({TOKEN: "team-a"}).start()
    yield fake
    fake.stop()


def target_config(srv: Server, kfp: FakeKfp, database_url: str | None = None) -> None:
    token = srv.root / "kfp-token"
    token.write_text(TOKEN + "\n")
    common = {
        "endpoint": kfp.url,
        "image": "ghcr.io/example/mlops-step:1",
        "tracking_uri": "http://mlops-tracking.team-a:5000",
        "token_path": str(token),
        "poll_interval": 0.1,
    }
    cfg = {
        "PipelineService": {
            "kubeflow_targets": {
                "cluster": {
                    **common,
                    "namespace": "team-a",
                    "display_name": "Team A cluster",
                    "ui_url": "https://kubeflow.example/_/pipeline",
                },
                "team-b": {**common, "namespace": "team-b"},
                "broken": {**common, "endpoint": "ftp://kfp.example"},
            }
        }
    }
    if database_url:
        cfg["MLOpsApp"] = {"database_url": database_url}
    (srv.root / "config").mkdir(parents=True, exist_ok=True)
    (srv.root / "config" / "jupyter_server_config.json").write_text(json.dumps(cfg))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory, kfp):
    """The server, its store in SQLite or in a fresh PostgreSQL schema."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_schema("kfp")) if request.param == "postgres" else None
        srv = Server(tmp_path_factory.mktemp("kfpsrv"))
        work = srv.root / "work"
        write(str(work / "make.py"), "import sys\nprint(sys.argv[1:])\n")
        write_notebook(str(work / "report.ipynb"), None, "print('report')")
        write(str(work / "demo.pipeline.yaml"), PIPELINE)
        target_config(srv, kfp, url)
        srv.start()
        stack.callback(srv.stop)
        yield srv


def until(check, what: str, timeout: float = 90):
    """Poll ``check`` (a callable returning a truthy value when done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def get_run(server: Server, run_id: str) -> dict:
    status, body, _ = server.call("GET", f"{P}/runs/{run_id}")
    assert status == 200, body
    return body["run"]


def steps(run: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in run["steps"]}


def tracked(server: Server, run_id: str) -> dict:
    status, body, _ = server.call("GET", f"{MLFLOW}/runs/get?run_id={run_id}")
    assert status == 200, body
    return body["run"]


def _artifact_url(server: Server, run_id: str, path: str) -> str:
    uri = tracked(server, run_id)["info"]["artifact_uri"]
    assert uri.startswith("mlflow-artifacts:/"), uri
    return f"mlops/api/2.0/mlflow-artifacts/artifacts/{uri[len('mlflow-artifacts:/') :]}/{path}"


def put_artifact(server: Server, run_id: str, path: str, data: bytes) -> None:
    import urllib.request

    req = urllib.request.Request(
        server.url + _artifact_url(server, run_id, path),
        data=data,
        method="PUT",
        headers={"Authorization": f"token {server.token}"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200


def get_artifact(server: Server, run_id: str, path: str) -> bytes:
    status, data, _ = server.call("GET", _artifact_url(server, run_id, path), raw=True)
    assert status == 200, data
    return data


def submit(server: Server, **body) -> dict:
    status, out, _ = server.call(
        "POST", f"{P}/runs", {"path": "demo.pipeline.yaml", "target": "cluster", **body}
    )
    assert status == 200, out
    return out["run"]


def test_targets_listed_and_unknown_or_broken_ones_refused(server):
    status, body, _ = server.call("GET", f"{P}/targets")
    assert status == 200
    targets = {t["name"]: t for t in body["targets"]}
    assert list(targets) == ["local", "cluster", "team-b"]  # 'broken' is left out
    assert targets["local"]["kind"] == "local" and targets["local"]["default"] is True
    assert targets["cluster"]["kind"] == "kubeflow"
    assert targets["cluster"]["display_name"] == "Team A cluster"
    assert targets["cluster"]["ui_url"] == "https://kubeflow.example/_/pipeline"
    status, body, _ = server.call(
        "POST", f"{P}/runs", {"path": "demo.pipeline.yaml", "target": "nowhere"}
    )
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'nowhere'" in body["message"] and "'local', 'cluster', 'team-b'" in body["message"]
    status, body, _ = server.call(
        "POST", f"{P}/runs", {"path": "demo.pipeline.yaml", "target": "broken"}
    )
    assert status == 400
    assert "kubeflow_targets['broken'].endpoint" in body["message"], body
    assert "kubeflow_targets['broken'].endpoint: must be an http(s) URL" in server.log()


def test_submit_follows_kfp_to_success_with_tracked_runs_and_logs(server, kfp):
    run = submit(server, parameters={"n": 5}, run_name="first")
    run_id = run["run_id"]
    assert run["target"] == "cluster" and run["status"] == "QUEUED"
    remote = kfp.run()
    assert (
        run["external_url"] == f"https://kubeflow.example/_/pipeline/#/runs/details/{remote.run_id}"
    )
    # what KFP received: a valid spec (the fake checks it), our parameters, our tracked runs
    assert remote.body["runtime_config"]["parameters"] == {"n": 5}
    assert remote.body["display_name"] == "first"
    assert remote.spec["root"]["inputDefinitions"]["parameters"]["n"]["defaultValue"] == 5
    exp = kfp.experiments[remote.body["experiment_id"]]
    assert exp["display_name"] == "kfp-demo" and exp["namespace"] == "team-a"
    children = {s["name"]: s["tracking_run_id"] for s in run["steps"]}
    assert all(children.values())
    spec_text = json.dumps(remote.spec)
    for child in children.values():
        assert child in spec_text  # each step's pod logs into its own tracked run
    child = tracked(server, children["make"])
    assert {"key": "mlflow.parentRunId", "value": run_id} in child["data"]["tags"]
    assert child["data"]["params"] == [{"key": "n", "value": "5"}]  # the step's, filled

    kfp.advance(remote.run_id)  # the run starts, `make` runs
    run = until(
        lambda: (
            (r := get_run(server, run_id))["status"] == "RUNNING"
            and steps(r)["make"] == "RUNNING"
            and r
        ),
        "make RUNNING",
    )
    assert steps(run) == {"make": "RUNNING", "report": "PENDING"}
    kfp.append_log(remote.run_id, "make", "line from the pod\n")
    status, text, headers = server.call("GET", f"{P}/runs/{run_id}/steps/make/log", raw=True)
    assert status == 200 and b"line from the pod" in text
    assert headers["X-Step-Ended"] == "false"

    kfp.advance(remote.run_id)  # make succeeds, report runs
    run = until(
        lambda: (
            steps(r := get_run(server, run_id)) == {"make": "SUCCEEDED", "report": "RUNNING"} and r
        ),
        "report RUNNING",
    )
    until(
        lambda: tracked(server, children["make"])["info"]["status"] == "FINISHED",
        "make's tracked run FINISHED",
    )
    assert tracked(server, children["report"])["info"]["status"] == "RUNNING"

    # what the step bootstrap in report's pod uploads to its tracked run before it exits
    nb = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    put_artifact(server, children["report"], "output.ipynb", nb.encode())
    put_artifact(server, children["report"], "step.log", b"the step's own log\n")
    kfp.advance(remote.run_id)  # report succeeds: the run too
    run = until(
        lambda: (r := get_run(server, run_id))["status"] == "SUCCEEDED" and r, "run SUCCEEDED"
    )
    assert steps(run) == {"make": "SUCCEEDED", "report": "SUCCEEDED"}
    assert run["progress"]["done"] == 2 and run["end_time"]
    assert tracked(server, run_id)["info"]["status"] == "FINISHED"
    assert tracked(server, children["report"])["info"]["status"] == "FINISHED"
    kfp.forget_logs()  # pods recycled: the log was kept when the step ended
    status, text, headers = server.call("GET", f"{P}/runs/{run_id}/steps/make/log", raw=True)
    assert status == 200 and b"line from the pod" in text and b"make: done" in text
    assert headers["X-Step-Ended"] == "true"
    status, listing, _ = server.call("GET", f"{MLFLOW}/artifacts/list?run_id={children['make']}")
    assert status == 200 and "step.log" in {f["path"] for f in listing.get("files", [])}
    # report's pod uploaded its executed notebook and log: the panel opens that notebook,
    # and the pod's own step.log is not replaced by the pod log
    report = next(s for s in run["steps"] if s["name"] == "report")
    assert report["has_notebook"] is True
    status, body, _ = server.call("GET", f"{P}/runs/{run_id}/steps/report/notebook")
    assert status == 200 and body["nbformat"] == 4
    assert get_artifact(server, children["report"], "step.log") == b"the step's own log\n"


def test_a_failed_task_fails_the_run_and_skips_what_follows(server, kfp):
    run_id = submit(server)["run_id"]
    remote = kfp.run()
    kfp.advance(remote.run_id)
    kfp.advance(remote.run_id, fail={"make": "exit code 3"})
    assert remote.state == "FAILED"
    run = until(lambda: (r := get_run(server, run_id))["status"] == "FAILED" and r, "FAILED")
    assert steps(run) == {"make": "FAILED", "report": "SKIPPED"}
    assert run["reason"] == "step(s) failed: make"
    make = next(s for s in run["steps"] if s["name"] == "make")
    assert make["error"] == "exit code 3"
    assert tracked(server, make["tracking_run_id"])["info"]["status"] == "FAILED"
    assert tracked(server, run_id)["info"]["status"] == "FAILED"


def test_cancel_terminates_the_kfp_run(server, kfp):
    run_id = submit(server)["run_id"]
    remote = kfp.run()
    kfp.advance(remote.run_id)
    until(lambda: get_run(server, run_id)["status"] == "RUNNING", "RUNNING")
    status, body, _ = server.call("POST", f"{P}/runs/{run_id}/cancel")
    assert status == 200 and body["run"]["status"] == "CANCELING"
    assert remote.state == "CANCELING"  # terminated there
    assert ("POST", f"/pipeline/apis/v2beta1/runs/{remote.run_id}:terminate") in kfp.requests
    kfp.finish_cancel(remote.run_id)
    run = until(lambda: (r := get_run(server, run_id))["status"] == "CANCELED" and r, "CANCELED")
    assert steps(run) == {"make": "CANCELED", "report": "CANCELED"}
    assert tracked(server, run_id)["info"]["status"] == "KILLED"
    status, body, _ = server.call("POST", f"{P}/runs/{run_id}/cancel")
    assert status == 409
    # a retry goes to the same target with the same parameters
    status, body, _ = server.call("POST", f"{P}/runs/{run_id}/retry")
    assert status == 200, body
    retry = body["run"]
    assert retry["target"] == "cluster" and retry["retry_of"] == run_id
    assert kfp.run().run_id != remote.run_id
    assert kfp.run().body["runtime_config"]["parameters"] == {"n": 3}


def test_kfp_refusals_become_clear_errors(server, kfp):
    before = len(kfp.runs)
    # the token's service account is not bound to team-b: refused before anything is created
    status, body, _ = server.call(
        "POST", f"{P}/runs", {"path": "demo.pipeline.yaml", "target": "team-b"}
    )
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED"
    assert "Kubeflow target 'team-b' refused" in body["message"]
    assert "namespace 'team-b'" in body["message"] and "not authorized" in body["message"]
    status, listed, _ = server.call("GET", f"{P}/runs?name=kfp-demo")
    assert all(r["target"] != "team-b" for r in listed["runs"])
    # refused at run creation: the request fails, the run is kept FAILED with the reason
    kfp.refuse_runs = (403, "PermissionDenied: quota exceeded for namespace team-a")
    try:
        status, body, _ = server.call(
            "POST", f"{P}/runs", {"path": "demo.pipeline.yaml", "target": "cluster"}
        )
    finally:
        kfp.refuse_runs = None
    assert status == 403 and "quota exceeded" in body["message"]
    assert len(kfp.runs) == before
    status, listed, _ = server.call("GET", f"{P}/runs?name=kfp-demo&max_results=1")
    failed = listed["runs"][0]
    assert failed["status"] == "FAILED" and failed["target"] == "cluster"
    assert failed["reason"].startswith("Kubeflow did not accept the run")
    assert "quota exceeded" in failed["reason"]
    assert tracked(server, failed["run_id"])["info"]["status"] == "FAILED"


def test_a_restarted_server_watches_its_kubeflow_runs_again(server, kfp):
    run_id = submit(server)["run_id"]
    remote = kfp.run()
    kfp.advance(remote.run_id)
    until(
        lambda: (
            (r := get_run(server, run_id))["status"] == "RUNNING" and steps(r)["make"] == "RUNNING"
        ),
        "make RUNNING",
    )
    server.stop()
    kfp.advance(remote.run_id)  # the run goes on while nobody watches
    kfp.unavailable = 3  # and KFP hiccups when the server comes back
    server.start()
    run = get_run(server, run_id)
    assert run["status"] in ("RUNNING", "SUCCEEDED")  # not failed like a local run
    kfp.advance(remote.run_id)
    run = until(
        lambda: (r := get_run(server, run_id))["status"] == "SUCCEEDED" and r,
        "SUCCEEDED after the restart",
    )
    assert steps(run) == {"make": "SUCCEEDED", "report": "SUCCEEDED"}
    assert run["reason"] is None
    assert tracked(server, run_id)["info"]["status"] == "FINISHED"


def test_steps_named_like_kfp_nodes_map_to_their_own_tasks(server, kfp):
    """GetRun lists KFP's own nodes (the workflow, root, root-driver, <task>-driver and each
    task's executor pod) among the tasks: steps named root, executor or *-driver still
    follow their own task, not one of those."""
    write(
        str(server.root / "work" / "names.pipeline.yaml"),
        """\
        name: kfp-names
        steps:
          root: {script: make.py}
          executor: {script: make.py}
          other: {script: make.py}
          other-driver: {script: make.py}
        """,
    )
    run_id = submit(server, path="names.pipeline.yaml")["run_id"]
    remote = kfp.run()
    tasks = set(remote.spec["root"]["dag"]["tasks"])
    assert "other" in tasks and not tasks & {"root", "executor", "other-driver"}
    kfp.advance(remote.run_id)  # the run starts: every step runs
    shown = [t["display_name"] for t in kfp._task_details(remote)]
    assert {"root", "root-driver", "executor", "other-driver"} <= set(shown)  # KFP's own
    until(lambda: set(steps(get_run(server, run_id)).values()) == {"RUNNING"}, "all RUNNING")
    status, text, _ = server.call("GET", f"{P}/runs/{run_id}/steps/executor/log", raw=True)
    assert status == 200 and b"executor-" in text and b"other" not in text
    kfp.advance(remote.run_id, fail={"other": "exit code 2"})
    run = until(lambda: (r := get_run(server, run_id))["status"] == "FAILED" and r, "FAILED")
    assert steps(run) == {
        "root": "SUCCEEDED",
        "executor": "SUCCEEDED",
        "other": "FAILED",
        "other-driver": "SUCCEEDED",
    }
    assert run["reason"] == "step(s) failed: other"


def test_schedule_on_a_target_runs_there(server, kfp):
    import datetime

    # daily at an hour 12 h away: it cannot fire on its own (a second KFP run) mid-test
    hour = (datetime.datetime.now(datetime.timezone.utc).hour + 12) % 24
    body = {"path": "demo.pipeline.yaml", "cron": f"0 {hour} * * *", "parameters": {"n": 4}}
    status, out, _ = server.call("POST", f"{P}/schedules", {**body, "target": "nowhere"})
    assert status == 400 and out["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'nowhere'" in out["message"] and "'local', 'cluster', 'team-b'" in out["message"]
    status, out, _ = server.call("POST", f"{P}/schedules", body)
    assert status == 200 and out["schedule"]["target"] == "local"  # the default
    sid = out["schedule"]["schedule_id"]
    status, out, _ = server.call("PATCH", f"{P}/schedules/{sid}", {"target": "nowhere"})
    assert status == 400 and "'local', 'cluster', 'team-b'" in out["message"]
    status, out, _ = server.call("PATCH", f"{P}/schedules/{sid}", {"target": "cluster"})
    assert status == 200 and out["schedule"]["target"] == "cluster"
    status, out, _ = server.call("GET", f"{P}/schedules")
    assert {x["schedule_id"]: x["target"] for x in out["schedules"]}[sid] == "cluster"
    before = set(kfp.runs)
    status, out, _ = server.call("POST", f"{P}/schedules/{sid}/run")
    assert status == 200, out
    run = out["run"]
    assert run["target"] == "cluster" and run["schedule_id"] == sid
    (kfp_id,) = set(kfp.runs) - before  # KFP received it, with the schedule's parameters
    assert kfp.run(kfp_id).body["runtime_config"]["parameters"] == {"n": 4}
    while kfp.advance(kfp_id) not in ("SUCCEEDED", "FAILED"):
        pass
    assert until(lambda: get_run(server, run["run_id"])["status"] == "SUCCEEDED", "SUCCEEDED")
    status, out, _ = server.call("DELETE", f"{P}/schedules/{sid}")
    assert status == 200


def test_due_schedule_fires_on_its_target_and_records_a_removed_one(tmp_path, kfp):
    """fire_due submits to the schedule's target; once that target is gone from the config
    the schedule records why in last_error and moves on (no second try at the same time)."""
    import asyncio
    import os

    from jupyter_mlops.pipelines.service import PipelineService
    from jupyter_mlops.tracking import open_store

    srv = Server(tmp_path)  # only for target_config's layout
    target_config(srv, kfp)
    targets = json.loads((tmp_path / "config" / "jupyter_server_config.json").read_text())[
        "PipelineService"
    ]["kubeflow_targets"]
    write(str(tmp_path / "make.py"), "print('made')\n")
    write_notebook(str(tmp_path / "report.ipynb"), None, "print('report')")
    write(str(tmp_path / "demo.pipeline.yaml"), PIPELINE)
    url = f"sqlite:///{tmp_path / 'mlops.db'}"

    def service(kubeflow_targets: dict) -> PipelineService:
        return PipelineService(
            open_store(url, artifact_root=str(tmp_path / "art")),
            str(tmp_path),
            env=dict(os.environ),
            runs_dir=str(tmp_path / ".runs"),
            warm_kernels=0,
            kubeflow_targets=kubeflow_targets,
        )

    async def main() -> None:
        svc = service({"cluster": targets["cluster"]})
        s = await svc.create_schedule(
            "demo.pipeline.yaml", "*/5 * * * *", "UTC", {"n": 6}, target="cluster"
        )
        assert s["target"] == "cluster"
        before = set(kfp.runs)
        (run_id,) = await svc.fire_due(s["next_fire_time"])
        (kfp_id,) = set(kfp.runs) - before
        assert kfp.run(kfp_id).body["runtime_config"]["parameters"] == {"n": 6}
        run = await svc.get_run(run_id)
        assert run["target"] == "cluster" and run["schedule_id"] == s["schedule_id"]
        await svc.stop()  # the KFP run goes on there; nobody needs to watch it here

        gone = service({})  # the target was removed from the config since
        s2 = await gone.get_schedule(s["schedule_id"])
        assert await gone.fire_due(s2["next_fire_time"]) == []
        s3 = await gone.get_schedule(s["schedule_id"])
        assert "Unknown target 'cluster'" in s3["last_error"]
        assert s3["next_fire_time"] > s2["next_fire_time"] and s3["last_run_id"] == run_id
        assert await gone.fire_due(s2["next_fire_time"]) == []  # not fired twice
        assert set(kfp.runs) - before == {kfp_id}
        await gone.stop()

    asyncio.run(main())


def test_magic_runs_on_a_target_through_the_server(server, kfp, monkeypatch, capsys):
    """``%mlops pipeline run FILE --target NAME`` in a kernel of the server: the server
    submits to KFP and the magic follows the run to its end."""
    import threading

    from IPython.core.error import UsageError

    from jupyter_mlops.pipelines.magic import pipeline_magic

    monkeypatch.chdir(server.root / "work")
    monkeypatch.setenv("JUPYTER_MLOPS_SERVER_URL", server.url)
    monkeypatch.setenv("JUPYTER_MLOPS_SERVER_TOKEN", server.token)
    before = set(kfp.runs)

    def drive() -> None:  # KFP's side: run the submission to the end
        kfp_id = until(lambda: next(iter(set(kfp.runs) - before), None), "the magic's run")
        while kfp.advance(kfp_id) not in ("SUCCEEDED", "FAILED"):
            pass

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    run_id = pipeline_magic(["run", "demo.pipeline.yaml", "--target", "cluster", "n=8"])
    driver.join(30)
    out = capsys.readouterr().out
    assert "submitted to the Jupyter server, on cluster (2 steps)" in out
    assert "https://kubeflow.example/_/pipeline/#/runs/details/" in out
    assert f"run {run_id}: SUCCEEDED" in out
    (kfp_id,) = set(kfp.runs) - before
    assert kfp.run(kfp_id).body["runtime_config"]["parameters"] == {"n": 8}
    assert get_run(server, run_id)["target"] == "cluster"
    with pytest.raises(
        UsageError,
        match="Unknown target 'nowhere'; configured targets: 'local', 'cluster', 'team-b'",
    ):
        pipeline_magic(["run", "demo.pipeline.yaml", "--target=nowhere"])
    with pytest.raises(UsageError, match="--target needs a NAME"):
        pipeline_magic(["run", "demo.pipeline.yaml", "--target"])
    assert set(kfp.runs) - before == {kfp_id}
    # a kernel without the server: the configuration of targets is out of reach
    monkeypatch.delenv("JUPYTER_MLOPS_SERVER_URL")
    with pytest.raises(UsageError) as refused:
        pipeline_magic(["run", "demo.pipeline.yaml", "--target", "cluster"])
    assert "needs the Jupyter server" in str(refused.value)
    assert "jupyter mlops pipeline run demo.pipeline.yaml --target cluster" in str(refused.value)


def test_cli_runs_on_a_target_from_the_server_config(tmp_path, kfp):
    import os
    import subprocess
    import sys
    import threading

    from pipehelpers import REPO

    srv = Server(tmp_path)  # only for its layout: the CLI reads the same config files
    work = tmp_path / "work"
    write(str(work / "make.py"), "print('made')\n")
    write_notebook(str(work / "report.ipynb"), None, "print('report')")
    write(str(work / "demo.pipeline.yaml"), PIPELINE)
    target_config(srv, kfp)
    before = set(kfp.runs)

    def drive() -> None:  # KFP's side: run the submission to the end
        run_id = until(lambda: next(iter(set(kfp.runs) - before), None), "the CLI's run", 120)
        while kfp.advance(run_id) not in ("SUCCEEDED", "FAILED"):
            pass

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    env.update(
        PYTHONPATH=str(REPO),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_mlops.pipelines.cli",
            "pipeline",
            "run",
            "demo.pipeline.yaml",
            "--target",
            "cluster",
            "-p",
            "n=7",
            "--database-url",
            str(tmp_path / "store.db"),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    driver.join(30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "started on cluster (2 steps)" in r.stdout
    assert "https://kubeflow.example/_/pipeline/#/runs/details/" in r.stdout
    assert "report: SUCCEEDED" in r.stdout and ": SUCCEEDED" in r.stdout.splitlines()[-1]
    remote = kfp.run(next(iter(set(kfp.runs) - before)))
    assert remote.body["runtime_config"]["parameters"] == {"n": 7}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_mlops.pipelines.cli",
            "pipeline",
            "run",
            "demo.pipeline.yaml",
            "--target",
            "elsewhere",
            "--database-url",
            str(tmp_path / "store.db"),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 1 and "Unknown target 'elsewhere'" in r.stderr
    assert "'local', 'cluster', 'team-b'" in r.stderr


def test_client_reports_what_kfp_refuses(kfp):
    """The checks KFP makes (and the fake mirrors), as the client reports them."""
    from jupyter_mlops.pipelines.kubeflow.client import KfpClient, KfpError

    client = KfpClient("cluster", kfp.url, "team-a", token=lambda: TOKEN)
    assert client.healthz()["multi_user"] is True
    exp = client.experiment_id("client-checks")
    assert client.experiment_id("client-checks") == exp  # found, not created twice
    with pytest.raises(KfpError) as e:
        client._call(
            "POST",
            "/apis/v2beta1/experiments",
            json_body={"display_name": "client-checks", "namespace": "team-a"},
        )
    assert e.value.status == 409 and "already exists" in e.value.message
    with pytest.raises(KfpError) as e:
        KfpClient("cluster", kfp.url, "team-a", token=lambda: None).find_experiment("x")
    assert e.value.status == 401 and e.value.error_code == "PERMISSION_DENIED"
    assert e.value.http_status == 403  # ours: a 401 would end the browser's Jupyter session
    assert "Check the target's token" in e.value.message

    good = {
        "pipelineInfo": {"name": "p"},
        "schemaVersion": "2.1.0",
        "components": {"comp-a": {"executorLabel": "exec-a"}},
        "deploymentSpec": {"executors": {"exec-a": {"container": {"image": "x"}}}},
        "root": {
            "dag": {"tasks": {"a": {"taskInfo": {"name": "a"}, "componentRef": {"name": "comp-a"}}}}
        },
    }

    def refused(mutate) -> str:
        spec = json.loads(json.dumps(good))
        mutate(spec)
        with pytest.raises(KfpError) as e:
            client.create_run({"display_name": "r", "experiment_id": exp, "pipeline_spec": spec})
        assert e.value.status == 400 and e.value.error_code == "INVALID_PARAMETER_VALUE"
        return e.value.message

    assert "schema version 2.1.0" in refused(lambda s: s.update(schemaVersion="2.0.0"))
    assert "does not match" in refused(lambda s: s["pipelineInfo"].update(name="Bad_Name"))
    assert "root is missing" in refused(lambda s: s.pop("root"))
    assert "cannot find component ref name=comp-b" in refused(
        lambda s: s["root"]["dag"]["tasks"]["a"].update(componentRef={"name": "comp-b"})
    )
    assert "executor(label=exec-a) not found" in refused(
        lambda s: s["deploymentSpec"]["executors"].clear()
    )
    run = client.create_run({"display_name": "r", "experiment_id": exp, "pipeline_spec": good})
    assert client.get_run(run["run_id"])["state"] == "PENDING"
    with pytest.raises(KfpError) as e:
        client.get_run("nope")
    assert e.value.status == 404 and e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(KfpError) as e:
        KfpClient(
            "cluster", "http://127.0.0.1:9/pipeline", token=lambda: TOKEN, timeout=5
        ).healthz()
    assert e.value.status is None and e.value.transient
    assert "unreachable" in e.value.message
