"""Deployments on Kubernetes targets against the fake API server (tests/hub/fakek8s.py) with
fake KServe, Deployment and Service controllers (kubefakes.py) that run each pod's scoring
server as a local process: a KServe InferenceService and a plain Deployment + Service, each
deployed and called over both protocols through its URL, a canary then promoted, a canary
rolled back, a crash loop whose reason shows, a Jupyter server restart that re-attaches, and
configuration errors naming target and field.

The tests of this module run in order on one fake cluster and one Jupyter server."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import requests
from serverproc import JupyterServerProcess
from sklearn.dummy import DummyClassifier

import jupyter_mlops as mlops

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
from fakek8s import FakeKubernetes
from kubefakes import ISVC, FakeServing

X = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]})
NS = "models"
DEADLINE = 180.0


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
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Env:
    def __init__(self, server: JupyterServerProcess, k8s: FakeKubernetes, model: str) -> None:
        self.server, self.k8s, self.model = server, k8s, model
        self.images: dict[str, str] = {}
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {server.token}"

    @property
    def api(self) -> str:
        return self.server.url + "mlops/api/v1/deployments"

    def get(self, name: str) -> dict:
        r = self.session.get(f"{self.api}/{name}", timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["deployment"]

    def dep(self, name: str):
        return mlops.get_deployment(name, server_url=self.server.url, token=self.server.token)

    def deploy(self, name: str, version: int | str, target: str, **kw):
        return mlops.deploy(
            name,
            model_uri=f"models:/{self.model}/{version}",
            target=target,
            server_url=self.server.url,
            token=self.server.token,
            **kw,
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("kubedeploy")
    k8s = FakeKubernetes(root / "k8s")
    (root / "k8s").mkdir()
    k8s.start()
    serving = FakeServing(k8s)
    server = JupyterServerProcess(root=root / "srv")
    (root / "srv" / "data" / "mlops").mkdir(parents=True)
    (root / "srv" / "config").mkdir(parents=True)
    common = {"api_url": k8s.url, "namespace": NS, "poll_interval": 0.3, "ready_timeout": 120}
    config = {
        "DeploymentService": {
            "targets": {
                "kserve": {"kind": "kserve", **common},
                "plain": {
                    "kind": "kubernetes",
                    "service_type": "NodePort",
                    "node_address": "127.0.0.1",
                    "max_replicas": 4,
                    **common,
                },
                "nourl": {"kind": "kserve", "namespace": NS},
                "badmode": {"kind": "kserve", "deployment_mode": "Turbo", **common},
                "mars": {"kind": "mars"},
            }
        }
    }
    (root / "srv" / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
    model = f"clf-{uuid.uuid4().hex[:8]}"
    mlops.set_tracking_uri(server.db_url)
    try:
        mlops.set_experiment("kube-deployments")
        for constant in (0, 1):  # version 1 answers 0, version 2 answers 1
            with mlops.start_run():
                clf = DummyClassifier(strategy="constant", constant=constant).fit(X, [0, 1])
                mlops.log_model(clf, "model", input_example=X, registered_model_name=model)
        with mlops.start_run():  # version 3: its image holds no model (the server exits)
            clf = DummyClassifier(strategy="constant", constant=0).fit(X, [0, 1])
            mlops.log_model(clf, "model", registered_model_name=model)
        reg = mlops.RegistryClient(server.db_url)
        from jupyter_mlops.registry.api import download_model

        for v in (1, 2, 3):
            image = f"registry.example/{model}:{v}"
            # what `jupyter mlops models build-image --tag` records (and bakes in)
            reg.set_model_version_tag(model, v, "mlops.image", image)
            local = root / "images" / str(v)
            local.mkdir(parents=True)
            if v != 3:
                download_model(f"models:/{model}/{v}", str(local), server.db_url)
            serving.images[image] = str(local)
    finally:
        mlops.set_tracking_uri(None)
    server.start()
    e = Env(server, k8s, model)
    e.images = {str(v): str(root / "images" / str(v)) for v in (1, 2, 3)}
    yield e
    for d in e.session.get(e.api, timeout=60).json().get("deployments", []):
        e.session.delete(f"{e.api}/{d['name']}", timeout=60)
    server.stop()
    k8s.call(serving.close)
    k8s.stop()
    assert not k8s.controller_errors, k8s.controller_errors


def invocations(url: str, rows: int = 2) -> list:
    r = requests.post(
        url + "/invocations", json={"dataframe_records": X[:rows].to_dict("records")}, timeout=30
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


def status_is(env: Env, name: str, status: str):
    """A check for wait_for: the deployment once it has ``status``."""

    def check():
        d = env.get(name)
        return d if d["status"] == status else None

    return check


def split(traffic: list[dict]) -> dict[str, int]:
    return {t["version"]: t["percent"] for t in traffic}


def test_configuration_errors_name_target_and_field(env):
    listed = env.session.get(env.api, timeout=30).json()
    targets = {t["name"]: t for t in listed["targets"]}
    assert set(targets) == {"local", "kserve", "plain"}
    assert targets["kserve"]["kind"] == "kserve" and targets["kserve"]["namespace"] == NS
    assert targets["plain"]["kind"] == "kubernetes" and targets["plain"]["canary"] is True
    cases = {
        "nourl": "targets['nourl'].api_url: required",
        "badmode": "targets['badmode'].deployment_mode: must be Knative or Standard",
        "mars": "targets['mars'].kind: unknown kind 'mars'",
    }
    for target, fragment in cases.items():
        r = env.session.post(
            env.api,
            json={"name": "x1", "model_uri": f"models:/{env.model}/1", "target": target},
            timeout=30,
        )
        assert r.status_code == 400 and fragment in r.json()["message"], r.text
    log = env.server.log_path.read_text()
    assert "c.DeploymentService.targets['nourl'].api_url: required" in log
    # a Kubernetes target serves registered versions (with their image), not a directory
    r = env.session.post(
        env.api,
        json={"name": "x1", "model_uri": env.images["1"], "target": "kserve"},
        timeout=30,
    )
    assert r.status_code == 400 and "registered model versions" in r.json()["message"], r.text
    assert env.session.get(f"{env.api}/x1", timeout=30).status_code == 404


def test_kserve_deploys_a_custom_container_and_serves_both_protocols(env):
    dep = env.deploy("isvc", 1, "kserve")
    assert dep.status == "READY", dep.reason
    isvc = env.k8s.find(ISVC, NS, "isvc")
    pred = isvc["spec"]["predictor"]
    [container] = pred["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == f"registry.example/{env.model}:1"
    assert "model" not in pred and "storageUri" not in json.dumps(pred)  # no MLServer
    assert container["args"][container["args"].index("--model-name") + 1] == "isvc"
    url = dep.url
    assert url == isvc["status"]["url"]
    assert invocations(url) == [0, 0]
    answer = infer(url, "isvc")
    assert answer["model_name"] == "isvc" and answer["model_version"] == "1"
    d = env.get("isvc")
    assert split(d["traffic"]) == {"1": 100} and d["canary"] is None
    assert "jupyter-mlops scoring server" in dep.logs()
    metrics = env.session.get(f"{env.api}/isvc/metrics", timeout=30).json()
    [v] = metrics["versions"]
    assert v["version"] == "1" and v["scraped_replicas"] == 1 and v["requests_total"] >= 2


def test_kserve_canary_20_percent_then_promote(env):
    dep = env.dep("isvc").update(model_uri=f"models:/{env.model}/2", canary_percent=20)
    d = env.get("isvc")
    assert split(d["traffic"]) == {"1": 80, "2": 20}, d
    assert d["canary"] == {"version": "2", "model_uri": f"models:/{env.model}/2", "percent": 20}
    assert env.k8s.find(ISVC, NS, "isvc")["spec"]["predictor"]["canaryTrafficPercent"] == 20
    answers = [invocations(d["url"], 1)[0] for _ in range(20)]
    assert answers.count(1) == 4 and answers.count(0) == 16, answers
    assert d["model_version"] == "1"  # what serves most is still version 1
    dep.promote()
    d = env.get("isvc")
    assert split(d["traffic"]) == {"2": 100} and d["canary"] is None
    assert "canaryTrafficPercent" not in env.k8s.find(ISVC, NS, "isvc")["spec"]["predictor"]
    assert {invocations(d["url"], 1)[0] for _ in range(10)} == {1}
    assert d["model_version"] == "2"
    assert [(h["action"], h["model_version"]) for h in d["history"]] == [
        ("create", "1"),
        ("promote", "2"),
    ]


def test_kserve_canary_rolled_back(env):
    dep = env.dep("isvc").update(model_uri=f"models:/{env.model}/1", canary_percent=30)
    assert split(env.get("isvc")["traffic"]) == {"2": 70, "1": 30}
    dep.rollback()
    d = env.get("isvc")
    assert split(d["traffic"]) == {"2": 100} and d["canary"] is None
    # KServe's rollback: the canary pinned at 0 %, the previous revision keeps everything
    assert env.k8s.find(ISVC, NS, "isvc")["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert {invocations(d["url"], 1)[0] for _ in range(10)} == {1}


def test_kserve_crash_loop_shows_the_reason(env):
    # an update whose container crashes: the rollout fails, version 2 keeps serving
    dep = env.dep("isvc")
    with pytest.raises(mlops.TrackingError) as e:
        dep.update(model_uri=f"models:/{env.model}/3")
    assert "RevisionFailed" in str(e.value), e.value
    d = env.get("isvc")
    assert d["status"] == "READY" and d["model_version"] == "2"
    assert "CrashLoopBackOff" in d["reason"] or "RevisionFailed" in d["reason"], d["reason"]
    assert invocations(d["url"], 1) == [1]
    # a first deployment that crashes: FAILED, the reason names the crash and its exit
    with pytest.raises(mlops.TrackingError):
        env.deploy("broken", 3, "kserve")
    d = env.get("broken")
    assert d["status"] == "FAILED", d
    assert "RevisionFailed" in d["reason"] and "exit code 1" in d["reason"], d["reason"]


def test_plain_deployment_service_canary_promote_rollback(env):
    dep = env.deploy("plain", 1, "plain", replicas=2)
    assert dep.status == "READY", dep.reason
    url = dep.url
    assert url.startswith("http://127.0.0.1:")
    assert invocations(url) == [0, 0]
    assert infer(url, "plain")["model_version"] == "1"
    names = {d["metadata"]["name"] for d in env.k8s.snapshot("deployments.apps", NS)}
    assert names == {"plain"}
    [svc] = [s for s in env.k8s.snapshot("services", NS) if s["metadata"]["name"] == "plain"]
    assert svc["spec"]["selector"] == {"mlops.jupyter.org/deployment": "plain"}
    [hpa] = env.k8s.snapshot("horizontalpodautoscalers.autoscaling", NS)
    assert hpa["spec"]["maxReplicas"] == 4 and hpa["spec"]["minReplicas"] == 2
    # canary: a second Deployment behind the same Service, replicas in proportion
    dep.update(model_uri=f"models:/{env.model}/2", canary_percent=50)
    d = env.get("plain")
    assert split(d["traffic"]) == {"1": 50, "2": 50}, d
    canary = env.k8s.find("deployments.apps", NS, "plain-canary")
    assert canary["spec"]["replicas"] == 1
    assert env.k8s.find("deployments.apps", NS, "plain")["spec"]["replicas"] == 1
    assert {invocations(url, 1)[0] for _ in range(10)} == {0, 1}
    dep.promote()
    d = env.get("plain")
    assert split(d["traffic"]) == {"2": 100} and d["model_version"] == "2"
    wait_for(
        "the canary Deployment to go",
        lambda: env.k8s.find("deployments.apps", NS, "plain-canary") is None,
    )
    assert {invocations(url, 1)[0] for _ in range(6)} == {1}
    # a canary rolled back: its Deployment goes, version 2 keeps all the traffic
    dep.update(model_uri=f"models:/{env.model}/1", canary_percent=50)
    dep.rollback()
    d = env.get("plain")
    assert split(d["traffic"]) == {"2": 100}
    assert env.k8s.find("deployments.apps", NS, "plain-canary") is None


def test_plain_deployment_crash_loop_keeps_the_served_version(env):
    dep = env.dep("plain")
    url = dep.url
    # a crash loop: the reason shows, version 2 keeps serving
    with pytest.raises(mlops.TrackingError) as e:
        dep.update(model_uri=f"models:/{env.model}/3")
    assert "CrashLoopBackOff" in str(e.value), e.value
    d = env.get("plain")
    assert d["status"] == "READY" and d["model_version"] == "2"
    assert invocations(url, 1) == [1]
    tmpl = env.k8s.find("deployments.apps", NS, "plain")["spec"]["template"]
    assert tmpl["metadata"]["labels"]["mlops.jupyter.org/model-version"] == "2"  # written back


def test_jupyter_server_restart_reattaches(env):
    before = {n: env.get(n) for n in ("isvc", "plain")}
    env.server.stop()
    env.server.start()
    for name, b in before.items():
        d = wait_for(f"{name} after the restart", status_is(env, name, "READY"))
        assert d["url"] == b["url"] and split(d["traffic"]) == split(b["traffic"])
        assert invocations(d["url"], 1) == [1]
    # watched again: the InferenceService deleted behind its back shows
    env.k8s.call(env.k8s.delete_object, ISVC, NS, "isvc")
    d = wait_for("the deletion to show", status_is(env, "isvc", "FAILED"))
    assert "does not exist" in d["reason"]


def test_delete_removes_the_cluster_objects(env):
    names = {d["name"] for d in env.session.get(env.api, timeout=60).json()["deployments"]}
    assert {"isvc", "plain"} <= names
    for name in names:  # "broken" too, when the crash-loop test got to make it
        r = env.session.delete(f"{env.api}/{name}", timeout=60)
        assert r.status_code == 200, r.text
    wait_for(
        "the objects to go",
        lambda: not env.k8s.snapshot("deployments.apps", NS) and not env.k8s.snapshot(ISVC, NS),
    )
    assert not [s for s in env.k8s.snapshot("services", NS) if s["metadata"]["name"] == "plain"]
    wait_for("the pods to go", lambda: not env.k8s.snapshot("pods", NS))
