"""Local deployments against a real Jupyter server: a scikit-learn model deployed and called
over both protocols, a rollout while a client loops requests (zero failures, the answers
switch), a rollback, an alias followed, a killed scoring process restarted, a Jupyter server
restart that re-adopts the processes (not duplicated), a canary split by the router's weights
then dropped and promoted, the CLI, deletion.

The tests of this module run in order on one server and one deployment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pandas as pd
import pytest
import requests
from serverproc import JupyterServerProcess
from sklearn.dummy import DummyClassifier

import jupyter_mlops as mlops
from jupyter_mlops._process import alive

X = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]})
DEADLINE = 120.0


def wait_for(what: str, check, timeout: float = DEADLINE):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = check()
        except (requests.RequestException, KeyError, AssertionError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Env:
    def __init__(self, server: JupyterServerProcess, model: str, name: str) -> None:
        self.server, self.model, self.name = server, model, name
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {server.token}"

    @property
    def api(self) -> str:
        return self.server.url + "mlops/api/v1/deployments"

    def get(self) -> dict:
        r = self.session.get(f"{self.api}/{self.name}", timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["deployment"]

    def dep(self):
        return mlops.get_deployment(self.name, server_url=self.server.url, token=self.server.token)

    def registry(self):
        return mlops.RegistryClient(self.server.db_url)


def serving_pids(env: Env) -> list[int]:
    """Live scoring processes of the deployment but its idle warm spare."""
    spare = env.get()["processes"].get("spare")
    return sorted(set(scoring_pids(env.name)) - {spare})


def scoring_pids(name: str) -> list[int]:
    """Live processes serving deployment ``name`` (by command line)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"jupyter_mlops.registry.serve" in args and name.encode() in args and alive(int(pid)):
            out.append(int(pid))
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    server = JupyterServerProcess(
        root=root / "srv",
        extra_args=[
            "--DeploymentService.stop_on_exit=False",
            "--DeploymentService.health_interval=0.3",
            "--DeploymentService.follow_interval=0.3",
        ],
    )
    (root / "srv" / "data" / "mlops").mkdir(parents=True)
    model = f"clf-{uuid.uuid4().hex[:8]}"
    mlops.set_tracking_uri(server.db_url)
    try:
        mlops.set_experiment("deployments")
        for constant in (0, 1):  # version 1 answers 0, version 2 answers 1
            with mlops.start_run():
                clf = DummyClassifier(strategy="constant", constant=constant).fit(X, [0, 1])
                mlops.log_model(clf, "model", input_example=X, registered_model_name=model)
    finally:
        mlops.set_tracking_uri(None)
    server.start()
    e = Env(server, model, f"dep-{uuid.uuid4().hex[:6]}")
    yield e
    for d in e.session.get(e.api, timeout=60).json().get("deployments", []):  # a failed test's too
        e.session.delete(f"{e.api}/{d['name']}", timeout=60)
    pids = scoring_pids(e.name)
    server.stop()
    for pid in pids + scoring_pids(e.name):
        os.kill(pid, signal.SIGKILL)


def invocations(url: str) -> list:
    r = requests.post(
        url + "/invocations", json={"dataframe_records": X.to_dict("records")}, timeout=30
    )
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def infer(url: str, name: str) -> dict:
    body = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP64", "data": [0.0, 1.0]},
            {"name": "b", "shape": [2], "datatype": "FP64", "data": [1.0, 0.0]},
        ]
    }
    r = requests.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_refusals_name_the_field(env):
    s, api = env.session, env.api
    cases = [
        ({"name": "Bad_Name", "model_uri": f"models:/{env.model}/1"}, 400, "Invalid deployment"),
        ({"name": "x1", "model_uri": f"models:/{env.model}/9"}, 404, "9"),
        (
            {"name": "x1", "model_uri": f"models:/{env.model}/1", "follow_alias": True},
            400,
            "'follow_alias' needs a model URI with an alias",
        ),
        ({"name": "x1", "model_uri": f"models:/{env.model}/1", "replicas": 0}, 400, "'replicas'"),
        (
            {"name": "x1", "model_uri": f"models:/{env.model}/1", "target": "mars"},
            400,
            "Unknown deployment target 'mars'",
        ),
    ]
    for body, status, fragment in cases:
        r = s.post(api, json=body, timeout=30)
        assert r.status_code == status, (body, r.text)
        assert fragment in r.json()["message"], r.text
    assert s.get(f"{api}/nope", timeout=30).status_code == 404


def test_deploy_serves_both_protocols(env):
    dep = mlops.deploy(
        env.name,
        model_uri=f"models:/{env.model}/1",
        target="local",
        server_url=env.server.url,
        token=env.server.token,
    )
    assert dep.status == "READY"
    assert dep.url.startswith("http://127.0.0.1:")
    assert invocations(dep.url) == [0, 0]
    answer = infer(dep.url, env.name)
    assert answer["model_name"] == env.name and answer["model_version"] == "1"
    assert answer["outputs"][0]["data"] == [0, 0]
    metrics = requests.get(dep.url + "/metrics", timeout=30).text
    assert 'version="1"' in metrics and "mlops_scoring_requests_total" in metrics
    # the registry shows where version 1 is deployed
    assert (
        env.registry().get_model_version(env.model, 1).tags[f"mlops.deployment.{env.name}"]
        == dep.url
    )
    listed = env.session.get(env.api, timeout=30).json()
    assert env.name in [d["name"] for d in listed["deployments"]]
    assert listed["targets"][0]["name"] == "local"
    r = env.session.post(
        env.api, json={"name": env.name, "model_uri": f"models:/{env.model}/1"}, timeout=30
    )
    assert r.status_code == 400 and "exists already" in r.json()["message"]


def test_metrics_of_the_served_version(env):
    def scrape() -> dict:
        r = env.session.get(f"{env.api}/{env.name}/metrics", timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    url = env.get()["url"]
    before = scrape()
    for _ in range(3):
        invocations(url)
    requests.post(url + "/invocations", json={"dataframe_records": [{"a": "x"}]}, timeout=30)
    after = scrape()
    assert after["scraped_at"] >= before["scraped_at"]
    [v0], [v1] = before["versions"], after["versions"]
    assert (v1["version"], v1["model_uri"]) == ("1", f"models:/{env.model}/1")
    assert v1["traffic_percent"] == 100 and v1["replicas"] == v1["scraped_replicas"] == 1
    assert v1["requests_total"] - v0["requests_total"] == 4
    assert v1["errors_total"] - v0["errors_total"] == 1  # the bad input's 400
    hist = v1["latency_seconds"]
    assert hist["count"] == v1["requests_total"] and hist["sum"] > 0
    bounds = [le for le, _ in hist["buckets"]]
    counts = [n for _, n in hist["buckets"]]
    assert bounds == sorted(bounds) and counts == sorted(counts) and counts[-1] <= hist["count"]
    # the list shows what serves and its share
    deployments = env.session.get(env.api, timeout=30).json()["deployments"]
    [listed] = [d for d in deployments if d["name"] == env.name]
    assert listed["traffic"] == [
        {"version": "1", "model_uri": f"models:/{env.model}/1", "percent": 100, "replicas": 1}
    ]
    assert listed["target"] == "local" and listed["replicas"] == 1 and listed["url"] == url
    r = env.session.get(f"{env.api}/nope/metrics", timeout=30)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    anonymous = requests.get(f"{env.api}/{env.name}/metrics", timeout=30)
    assert anonymous.status_code in (401, 403)


def test_invoke_relays_the_answer_whatever_its_status(env):
    """``POST .../invoke`` (the Models panel's Try it box): the server sends the request to
    the deployment and relays its answer, an error included; bad invokes are 4xx."""
    url, s = f"{env.api}/{env.name}/invoke", env.session
    r = s.post(url, json={"body": {"dataframe_records": X.to_dict("records")}}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["status_code"] == 200
    assert json.loads(r.json()["body"])["predictions"] == [0, 0]
    v2 = {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
    v2["inputs"].append({"name": "b", "shape": [1], "datatype": "FP64", "data": [0.0]})
    r = s.post(url, json={"protocol": "v2", "body": v2}, timeout=60)
    assert json.loads(r.json()["body"])["model_name"] == env.name, r.text
    r = s.post(url, json={"body": {"no_such_format": []}}, timeout=60)
    assert r.status_code == 200 and r.json()["status_code"] == 400, r.text
    assert "error_code" in json.loads(r.json()["body"])
    for body, fragment in (({"protocol": "grpc", "body": {}}, "'protocol'"), ({}, "'body'")):
        r = s.post(url, json=body, timeout=30)
        assert r.status_code == 400 and fragment in r.json()["message"], r.text
    assert s.post(f"{env.api}/nope/invoke", json={"body": {}}, timeout=30).status_code == 404


def test_rollout_while_a_client_loops_has_no_failed_request(env):
    url = env.get()["url"]
    answers: list = []
    failures: list = []
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    r = s.post(
                        url + "/invocations",
                        timeout=30,
                        json={"dataframe_records": X[:1].to_dict("records")},
                    )
                    if r.status_code == 200:
                        answers.append(r.json()["predictions"][0])
                    else:
                        failures.append((r.status_code, r.text))
                except requests.RequestException as e:
                    failures.append(repr(e))

    t = threading.Thread(target=client)
    t.start()
    try:
        wait_for("first answers", lambda: len(answers) >= 5)
        dep = env.dep().update(model_uri=f"models:/{env.model}/2")
        assert dep.status == "READY"
        n = len(answers)
        wait_for("answers after the rollout", lambda: len(answers) >= n + 20)
    finally:
        stop.set()
        t.join(60)
    assert not failures, failures[:5]
    assert answers[0] == 0 and answers[-1] == 1
    switch = answers.index(1)
    assert set(answers[switch:]) == {1}, "once switched, every answer is the new version's"
    assert infer(url, env.name)["model_version"] == "2"
    assert env.get()["url"] == url  # the same address
    reg = env.registry()
    assert f"mlops.deployment.{env.name}" in reg.get_model_version(env.model, 2).tags
    assert f"mlops.deployment.{env.name}" not in reg.get_model_version(env.model, 1).tags


def test_rollback_then_follow_an_alias(env):
    dep = env.dep().rollback()
    assert dep.model_version == "1" and invocations(dep.url) == [0, 0]
    reg = env.registry()
    reg.set_registered_model_alias(env.model, "champion", 1)
    dep.update(model_uri=f"models:/{env.model}@champion", follow_alias=True)
    # moved straight in the database, as a kernel does: the deployment follows
    reg.set_registered_model_alias(env.model, "champion", 2)
    wait_for(
        "the deployment to follow @champion",
        lambda: env.get()["model_version"] == "2" and env.get()["status"] == "READY",
    )
    assert invocations(dep.url) == [1, 1]
    actions = [(h["action"], h["model_version"]) for h in env.get()["history"]]
    assert actions == [("create", "1"), ("update", "2"), ("rollback", "1"), ("follow", "2")]


def test_a_killed_scoring_process_is_restarted(env):
    before = env.get()
    url, [pid] = before["url"], before["processes"]["scoring"]
    os.kill(pid, signal.SIGKILL)
    after = wait_for(
        "a new scoring process",
        lambda: (
            lambda d: (
                d
                if d["status"] == "READY" and d["processes"]["scoring"] not in ([pid], [])
                else None
            )
        )(env.get()),
    )
    assert after["url"] == url
    wait_for("answers again", lambda: invocations(url) == [1, 1])
    scoring = sorted(after["processes"]["scoring"])
    wait_for("no other scoring process", lambda: serving_pids(env) == scoring)


def test_jupyter_server_restart_readopts_the_processes(env):
    before = env.get()
    url = before["url"]
    env.server.stop()  # stop_on_exit is off: the deployment keeps serving meanwhile
    assert invocations(url) == [1, 1]
    # a scoring process a server started mid-rollout and died before recording: stopped
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", "jupyter_mlops.registry.serve"],
        cwd=env.server.data_dir / "mlops" / "deployments" / env.name,
        start_new_session=True,
    )
    env.server.start()
    after = wait_for(
        "re-adoption",
        lambda: (
            lambda d: (
                d
                if d["status"] == "READY"
                and {k: d["processes"][k] for k in ("router", "scoring")}
                == {k: before["processes"][k] for k in ("router", "scoring")}
                else None
            )
        )(env.get()),
    )
    assert after["url"] == url
    scoring = sorted(before["processes"]["scoring"])
    wait_for("not duplicated", lambda: serving_pids(env) == scoring)
    assert invocations(url) == [1, 1]
    assert orphan.wait(60) is not None


def test_canary_split_by_the_router_then_rollback_and_promote(env):
    dep = env.dep()
    url = dep.url
    # version 1 (answers 0) as a 20 % canary beside version 2 (answers 1)
    dep.update(model_uri=f"models:/{env.model}/1", canary_percent=20, follow_alias=False)
    d = env.get()
    assert {t["version"]: t["percent"] for t in d["traffic"]} == {"2": 80, "1": 20}, d
    assert d["canary"] == {"version": "1", "model_uri": f"models:/{env.model}/1", "percent": 20}
    assert d["model_version"] == "2" and d["url"] == url
    answers = [invocations(url)[0] for _ in range(20)]
    assert answers.count(0) == 4 and answers.count(1) == 16, answers  # weighted round robin
    metrics = env.session.get(f"{env.api}/{env.name}/metrics", timeout=30).json()["versions"]
    seen = {m["version"]: (m["traffic_percent"], m["requests_total"]) for m in metrics}
    assert seen["1"] == (20, 4) and seen["2"][0] == 80 and seen["2"][1] >= 16, metrics
    # rollback drops the canary: version 2 keeps everything, its process is the same
    scoring = list(d["processes"]["scoring"])
    dep.rollback()
    d = env.get()
    assert {t["version"]: t["percent"] for t in d["traffic"]} == {"2": 100} and d["canary"] is None
    assert {invocations(url)[0] for _ in range(6)} == {1}
    wait_for("the canary to stop", lambda: len(serving_pids(env)) == 1)
    assert d["processes"]["scoring"] == [pid for pid in scoring if pid in serving_pids(env)]
    # a canary promoted: all the traffic to version 1, no failed request meanwhile
    dep.update(model_uri=f"models:/{env.model}/1", canary_percent=50)
    assert sorted(invocations(url)[0] for _ in range(4)) == [0, 0, 1, 1]
    dep.promote()
    d = env.get()
    assert d["model_version"] == "1" and d["canary"] is None
    assert {t["version"]: t["percent"] for t in d["traffic"]} == {"1": 100}
    assert {invocations(url)[0] for _ in range(6)} == {0}
    assert [h["action"] for h in d["history"]][-1] == "promote"
    # back to following @champion (version 2) for the tests after this one
    dep.update(model_uri=f"models:/{env.model}@champion", follow_alias=True)
    assert env.get()["model_version"] == "2"
    wait_for("one scoring process", lambda: len(serving_pids(env)) == 1)


def test_cli_status_list_and_delete(env):
    base = [sys.executable, "-m", "jupyter_mlops.cli", "deploy"]
    opts = ["--server-url", env.server.url, "--token", env.server.token]

    def cli(*args: str) -> str:
        p = subprocess.run(
            [*base, *args, *opts],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        assert p.returncode == 0, p.stderr
        return p.stdout

    assert env.name in cli("list")
    status = cli("status", env.name)
    assert "READY" in status and "follow" in status
    procs = env.get()["processes"]
    assert f"deleted {env.name}" in cli("delete", env.name)
    for pid in [procs["router"], *procs["scoring"]]:
        wait_for(f"process {pid} to end", lambda pid=pid: not alive(pid))
    assert env.session.get(f"{env.api}/{env.name}", timeout=30).status_code == 404
    assert f"mlops.deployment.{env.name}" not in env.registry().get_model_version(env.model, 2).tags
