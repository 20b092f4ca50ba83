"""The pipeline REST API against a real ``jupyter server`` subprocess (one per module),
and what a server restart does to runs and schedules."""

from __future__ import annotations

import re
import signal
import socket
import time
from dataclasses import dataclass

import pytest
from pipehelpers import Server, write, write_notebook

P = "mlops/api/v1/pipelines"

PIPELINE = """\
name: rest-demo
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
    parameters: {label: "n={{ params.n }}"}
"""


def populate(work):
    write(
        str(work / "make.py"),
        """\
        import sys
        n = int(sys.argv[1].split("=")[1])
        for i in range(n):
            print("line", i, flush=True)
        open("nums.txt", "w").write(" ".join(map(str, range(n))))
        """,
    )
    write_notebook(
        str(work / "report.ipynb"), "label = ''\n", "print(label, open('nums.txt').read())"
    )
    write(str(work / "demo.pipeline.yaml"), PIPELINE)
    write(str(work / "sub" / "bad.pipeline.yaml"), "name: bad\nsteps:\n  a: {script: gone.py}\n")
    write(str(work / "sleep.py"), "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n")
    write(str(work / "long.pipeline.yaml"), "name: long\nsteps:\n  s: {script: sleep.py}\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("pipesrv"))
    (srv.root / "work").mkdir(parents=True)
    populate(srv.root / "work")
    srv.start()
    yield srv
    srv.stop()


def test_validate_reports_issues_with_lines_and_describes_good_pipelines(server):
    status, body, _ = server.call("POST", f"{P}/validate", {"path": "demo.pipeline.yaml"})
    assert status == 200 and body["valid"] is True
    assert body["pipeline"]["parameters"]["n"] == {"type": "integer", "default": 3}
    assert body["order"] == ["make", "report"]
    status, body, _ = server.call("POST", f"{P}/validate", {"path": "sub/bad.pipeline.yaml"})
    assert status == 200 and body["valid"] is False
    issue = body["issues"][0]
    assert issue["file"] == "sub/bad.pipeline.yaml" and issue["line"] == 3
    assert issue["field"] == "steps.a.script" and "gone.py" in issue["message"]
    status, body, _ = server.call("POST", f"{P}/validate", {"text": "name: x\nsteps: {}\n"})
    assert status == 200 and body["valid"] is False
    status, body, _ = server.call("POST", f"{P}/validate", {"path": "../../etc/passwd"})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    status, body, _ = server.call("GET", f"{P}/files")
    assert {"demo.pipeline.yaml", "sub/bad.pipeline.yaml", "long.pipeline.yaml"} <= set(
        body["files"]
    )


def test_submit_refuses_bad_input_with_4xx(server):
    status, body, _ = server.call(
        "POST", f"{P}/runs", {"path": "demo.pipeline.yaml", "parameters": {"n": "many", "m": 1}}
    )
    assert status == 400 and "'n'" in body["message"] and "unknown parameter 'm'" in body["message"]
    status, body, _ = server.call("POST", f"{P}/runs", {"path": "sub/bad.pipeline.yaml"})
    assert status == 400 and body["issues"][0]["line"] == 3
    status, body, _ = server.call("POST", f"{P}/runs", {"path": "nope.pipeline.yaml"})
    assert status == 404
    status, body, _ = server.call("POST", f"{P}/runs", {})
    assert status == 400
    status, body, _ = server.call("GET", f"{P}/runs/0123456789abcdef0123456789abcdef")
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    status, body, _ = (
        server.call("GET", f"{P}/runs", None)
        if False
        else server.call("GET", f"{P}/runs?status=BOGUS")
    )
    assert status == 400


def test_run_status_timings_logs_and_notebook(server):
    status, body, _ = server.call(
        "POST", f"{P}/runs", {"path": "demo.pipeline.yaml", "parameters": {"n": "4"}}
    )
    assert status == 200, body
    run_id = body["run"]["run_id"]
    assert body["run"]["progress"]["total"] == 2
    # follow the first step's log while it runs: the stream ends when the step ends
    status, text, _ = server.call("GET", f"{P}/runs/{run_id}/steps/make/log?follow=true", raw=True)
    assert status == 200 and text.decode().count("line") == 4
    run = server.wait_run(run_id)
    assert run["status"] == "SUCCEEDED" and run["progress"]["done"] == 2
    for step in run["steps"]:
        assert step["status"] == "SUCCEEDED" and step["duration_ms"] >= 0
        assert step["start_time"] and step["end_time"] and step["tracking_run_id"]
    status, data, headers = server.call(
        "GET", f"{P}/runs/{run_id}/steps/make/log?offset=7", raw=True
    )
    assert data.decode().startswith("line 1") or data.decode().startswith(" 0")
    full = server.call("GET", f"{P}/runs/{run_id}/steps/make/log", raw=True)
    assert int(full[2]["X-Log-Offset"]) == len(full[1]) and full[2]["X-Step-Ended"] == "true"
    status, tail, headers = server.call("GET", f"{P}/runs/{run_id}/steps/make/log?tail=7", raw=True)
    assert tail == b"line 3\n" and int(headers["X-Log-Offset"]) == len(full[1])
    status, nb, _ = server.call("GET", f"{P}/runs/{run_id}/steps/report/notebook")
    assert status == 200 and "n=4 0 1 2 3" in str(nb["cells"])
    status, _, _ = server.call("GET", f"{P}/runs/{run_id}/steps/nope/log")
    assert status == 404
    # the parent run is an ordinary tracked run (compare view, MLflow API)
    status, body, _ = server.call("GET", f"mlops/api/2.0/mlflow/runs/get?run_id={run_id}")
    assert status == 200 and body["run"]["info"]["status"] == "FINISHED"
    status, body, _ = server.call("GET", f"{P}/runs?path=demo.pipeline.yaml")
    assert run_id in [r["run_id"] for r in body["runs"]]


def test_cancel_then_conflict_then_retry(server):
    status, body, _ = server.call(
        "POST", f"{P}/runs", {"path": "long.pipeline.yaml", "run_name": "long try"}
    )
    run_id = body["run"]["run_id"]
    assert body["run"]["run_name"] == "long try" and body["run"]["name"] != "long try"
    server.wait_run(run_id, until=("RUNNING",))
    status, body, _ = server.call("POST", f"{P}/runs/{run_id}/cancel")
    assert status == 200 and body["run"]["status"] == "CANCELED"
    assert body["run"]["steps"][0]["status"] == "CANCELED"
    status, body, _ = server.call("POST", f"{P}/runs/{run_id}/cancel")
    assert status == 409 and body["error_code"] == "RESOURCE_CONFLICT"
    # cancel reads no field: a body that is not JSON changes nothing; retry reads fields
    status, body, _ = server.call("POST", f"{P}/runs/{run_id}/cancel", "not json")
    assert status == 409 and body["error_code"] == "RESOURCE_CONFLICT"
    status, body, _ = server.call("POST", f"{P}/runs/{run_id}/retry", "not json")
    assert status == 400 and "not valid JSON" in body["message"]
    status, body, _ = server.call("POST", f"{P}/runs/{run_id}/retry")
    assert status == 200 and body["run"]["retry_of"] == run_id
    assert body["run"]["run_name"] == "long try (retry)"
    new = body["run"]["run_id"]
    listed = {r["run_id"]: r for r in server.call("GET", f"{P}/runs")[1]["runs"]}
    assert listed[new]["run_name"] == "long try (retry)"
    server.wait_run(new, until=("RUNNING",))
    assert server.call("POST", f"{P}/runs/{new}/cancel")[0] == 200


def test_schedules_crud_pause_resume_run_now(server):
    import datetime
    from zoneinfo import ZoneInfo

    # weekdays at an hour 12 h away in Paris: it cannot fire (and change last_run_id) mid-test
    hour = (datetime.datetime.now(ZoneInfo("Europe/Paris")).hour + 12) % 24
    status, body, _ = server.call(
        "POST",
        f"{P}/schedules",
        {
            "path": "demo.pipeline.yaml",
            "cron": f"0 {hour} * * 1-5",
            "timezone": "Europe/Paris",
            "parameters": {"n": 2},
        },
    )
    assert status == 200, body
    sched = body["schedule"]
    sid = sched["schedule_id"]
    assert sched["next_fire_time"] > time.time() * 1000 and not sched["paused"]
    # that hour, Paris time, on a weekday
    nxt = datetime.datetime.fromtimestamp(sched["next_fire_time"] / 1000, ZoneInfo("Europe/Paris"))
    assert (nxt.hour, nxt.minute) == (hour, 0) and nxt.weekday() < 5
    status, body, _ = server.call("PATCH", f"{P}/schedules/{sid}", {"paused": True})
    assert body["schedule"]["paused"] is True
    status, body, _ = server.call("PATCH", f"{P}/schedules/{sid}", {"paused": False})
    assert body["schedule"]["paused"] is False
    status, body, _ = server.call("POST", f"{P}/schedules/{sid}/run")
    assert status == 200 and body["run"]["schedule_id"] == sid
    assert body["run"]["run_name"].startswith(f"{sched['name']} 20")
    assert server.wait_run(body["run"]["run_id"])["status"] == "SUCCEEDED"
    assert (
        server.call("GET", f"{P}/schedules/{sid}")[1]["schedule"]["last_run_id"]
        == body["run"]["run_id"]
    )
    for bad in ({"cron": "every day"}, {"timezone": "Mars/Olympus"}):
        status, body, _ = server.call(
            "POST", f"{P}/schedules", {"path": "demo.pipeline.yaml", "cron": "* * * * *", **bad}
        )
        assert status == 400, body
    assert server.call("DELETE", f"{P}/schedules/{sid}")[0] == 200
    assert server.call("GET", f"{P}/schedules/{sid}")[0] == 404


def test_schedule_edit_renames_retimes_and_refuses_bad_values(server):
    import datetime
    from zoneinfo import ZoneInfo

    _, body, _ = server.call(
        "POST",
        f"{P}/schedules",
        {
            "path": "demo.pipeline.yaml",
            "cron": "0 6 1 1 *",
            "timezone": "UTC",
            "parameters": {"n": 2},
        },
    )
    before = body["schedule"]
    sid = before["schedule_id"]
    assert before["name"] == "rest-demo"
    status, body, _ = server.call(
        "PATCH",
        f"{P}/schedules/{sid}",
        {
            "name": "yearly report",
            "cron": "30 7 2 2 *",
            "timezone": "Asia/Tokyo",
            "parameters": {"n": 5},
        },
    )
    assert status == 200, body
    after = body["schedule"]
    assert (after["name"], after["cron"], after["timezone"]) == (
        "yearly report",
        "30 7 2 2 *",
        "Asia/Tokyo",
    )
    assert after["parameters"] == {"n": 5}
    nxt = datetime.datetime.fromtimestamp(after["next_fire_time"] / 1000, ZoneInfo("Asia/Tokyo"))
    assert (nxt.month, nxt.day, nxt.hour, nxt.minute) == (2, 2, 7, 30)
    # a refused edit changes nothing, and says what is wrong
    for bad, word in (
        ({"cron": "61 25 * * *"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "Mars"),
        ({"parameters": {"n": "many"}}, "n"),
        ({"name": "x" * 129}, "name"),
    ):
        status, body, _ = server.call("PATCH", f"{P}/schedules/{sid}", bad)
        assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
        assert word in body["message"], body
    assert server.call("GET", f"{P}/schedules/{sid}")[1]["schedule"] == after
    assert server.call("DELETE", f"{P}/schedules/{sid}")[0] == 200


def test_restart_fails_interrupted_runs_and_keeps_schedules_firing(tmp_path):
    srv = Server(tmp_path / "srv")
    (srv.root / "work").mkdir(parents=True)
    populate(srv.root / "work")
    srv.start()
    try:
        _, body, _ = srv.call("POST", f"{P}/runs", {"path": "long.pipeline.yaml"})
        crashed = body["run"]["run_id"]
        srv.wait_run(crashed, until=("RUNNING",))
        # a yearly schedule cannot fire (and move its next fire time) while the test runs
        _, body, _ = srv.call(
            "POST",
            f"{P}/schedules",
            {"path": "demo.pipeline.yaml", "cron": "0 0 1 1 *", "timezone": "UTC"},
        )
        sched = body["schedule"]
        srv.stop(signal.SIGKILL)  # a crash: nothing cleaned up
        srv.start()
        run = srv.wait_run(crashed)
        assert run["status"] == "FAILED" and "interrupted" in run["reason"]
        assert run["steps"][0]["status"] == "FAILED"
        _, body, _ = srv.call("GET", f"{P}/schedules/{sched['schedule_id']}")
        assert body["schedule"]["next_fire_time"] == sched["next_fire_time"]
        assert body["schedule"]["paused"] is False
        # a clean stop fails what runs too, with its own reason
        _, body, _ = srv.call("POST", f"{P}/runs", {"path": "long.pipeline.yaml"})
        stopped = body["run"]["run_id"]
        srv.wait_run(stopped, until=("RUNNING",))
        srv.stop()
        srv.start()
        run = srv.wait_run(stopped)
        assert run["status"] == "FAILED" and "server stopped" in run["reason"]
    finally:
        srv.stop()


@dataclass
class PortTakenServer(Server):
    """Started on a port another process holds, with retries: it serves on another one."""

    served: int = 0

    def command(self) -> list[str]:
        return ["--port-retries=50" if a == "--port-retries=0" else a for a in super().command()]

    def _answers(self) -> bool:
        urls = re.findall(r"http://127\.0\.0\.1:(\d+)/", self.log())
        ports = [int(p) for p in urls if int(p) != self.port]
        if not ports:
            return False
        self.served = ports[0]
        held, self.port = self.port, self.served
        try:
            return super()._answers()
        finally:
            self.port = held


def test_steps_are_told_the_port_the_server_took_when_its_own_was_held(tmp_path):
    """The server finds its port after loading the extension: the environment pipeline
    steps inherit (MLFLOW_TRACKING_URI, JUPYTER_MLOPS_SERVER_URL) names the port it
    serves on, not the configured one another process holds."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        srv = PortTakenServer(tmp_path / "srv", port=held.getsockname()[1], answered=True)
        write(
            str(srv.root / "work" / "env.py"),
            """\
            import os
            for name in ("MLFLOW_TRACKING_URI", "JUPYTER_MLOPS_SERVER_URL"):
                print(name, os.environ[name], flush=True)
            """,
        )
        write(
            str(srv.root / "work" / "env.pipeline.yaml"),
            "name: env\nsteps:\n  s: {script: env.py}\n",
        )
        srv.start()
        try:
            srv.port = srv.served
            _, body, _ = srv.call("POST", f"{P}/runs", {"path": "env.pipeline.yaml"})
            run = srv.wait_run(body["run"]["run_id"])
            status, log, _ = srv.call("GET", f"{P}/runs/{run['run_id']}/steps/s/log", raw=True)
            assert run["status"] == "SUCCEEDED" and status == 200, (run, log)
            assert log.decode().split() == [
                "MLFLOW_TRACKING_URI",
                f"http://127.0.0.1:{srv.served}/u/mlops",
                "JUPYTER_MLOPS_SERVER_URL",
                f"http://127.0.0.1:{srv.served}/u/",
            ]
        finally:
            srv.stop()


def test_magic_submits_to_the_server_and_waits(server, monkeypatch, capsys):
    from IPython.core.error import UsageError

    from jupyter_mlops.pipelines.magic import pipeline_magic

    monkeypatch.chdir(server.root / "work")
    monkeypatch.setenv("JUPYTER_MLOPS_SERVER_URL", server.url)
    monkeypatch.setenv("JUPYTER_MLOPS_SERVER_TOKEN", server.token)
    run_id = pipeline_magic(["run", "demo.pipeline.yaml", "n=2"])
    assert "submitted to the Jupyter server" in capsys.readouterr().out
    run = server.call("GET", f"{P}/runs/{run_id}")[1]["run"]
    assert run["status"] == "SUCCEEDED" and run["parameters"] == {"n": 2}
    with pytest.raises(UsageError, match=r"gone\.py"):
        pipeline_magic(["run", "sub/bad.pipeline.yaml"])


def test_targets_lists_local(server):
    status, body, _ = server.call("GET", f"{P}/targets")
    assert status == 200 and body["targets"][0]["name"] == "local" and body["targets"][0]["default"]
