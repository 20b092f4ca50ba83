"""The hub-wide tracking service: a real JupyterHub launches `jupyter mlops service` (multi-user mode) and
users reach it through the hub's proxy with their own hub tokens, with the official mlflow client and plain
REST. alice, bob and vic share the hub group vision (vic maintains its models); carol is in nlp; ada is a
hub admin. The store is
PostgreSQL (a fresh schema) when JUPYTER_MLOPS_TEST_POSTGRES_URL is set, else SQLite."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from hubhelpers import REPO, TEST_TEAMS, Hub
from pgschema import PG_URL, fresh_schema

SERVICE = "mlops-tracking"
API = "api/2.0/mlflow/"


@contextmanager
def _database(tmp: Path) -> Iterator[str]:
    """A fresh PostgreSQL schema (dropped after), else a SQLite file."""
    if not PG_URL:
        yield f"sqlite:///{tmp / 'service.db'}"
        return
    with fresh_schema("svc") as url:
        yield url


class ServiceHub(Hub):
    """The test hub started with tracking_hub_config.py (which launches the service)."""

    tokens: dict[str, str]

    config = "tracking_hub_config.py"

    def answers(self) -> bool:
        """Up when the service answers through the proxy (unauthenticated: 403 from the service itself)."""
        r = requests.get(self.service_url + API + "experiments/search", timeout=10)
        return r.headers.get("Content-Type", "").startswith("application/json")

    @property
    def service_url(self) -> str:
        return f"{self.url}/services/{SERVICE}/mlops/"

    def call(
        self, who: str | None, method: str, path: str, body: dict | None = None, **params: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return requests.request(
            method,
            self.service_url + API + path,
            headers=headers,
            params=params or None,
            data=json.dumps(body) if body is not None else None,
            timeout=60,
        )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHub]:
    if not shutil.which("configurable-http-proxy"):
        pytest.skip(
            "configurable-http-proxy is not installed (npm install -g configurable-http-proxy)"
        )
    workdir = tmp_path_factory.mktemp("tracking-hub")
    with _database(workdir) as db:
        token = secrets.token_hex(16)
        (workdir / "teams.yaml").write_text(TEST_TEAMS)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "JUPYTER_MLOPS_TEAMS": str(workdir / "teams.yaml"),
            "MLOPS_TEST_WORKDIR": str(workdir),
            "MLOPS_TEST_K8S_URL": "http://127.0.0.1:9",  # nothing is spawned here
            "MLOPS_TEST_ADMIN_TOKEN": token,
            "MLOPS_TEST_SERVICE_DB": db,
            "MLOPS_TEST_SERVICE_ARTIFACTS": str(workdir / "artifacts"),
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        h = ServiceHub("", token, None, None, workdir / "jupyterhub.log", workdir, env)
        try:
            h.launch_on_free_ports("MLOPS_TEST_SERVICE_PORT")
            h.tokens = {}
            for name in ("alice", "bob", "carol", "ada", "vic"):
                r = h.api("POST", f"users/{name}")  # ada is not in a group: create her
                assert r.status_code in (201, 409), r.text
                r = h.api(
                    "POST", f"users/{name}/tokens", data=json.dumps({"note": "tracking test"})
                )
                assert r.status_code == 201, r.text
                h.tokens[name] = r.json()["token"]
            yield h
        finally:
            h.shutdown()


def _error(r: requests.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json()["error_code"] == code, r.text


@contextmanager
def _mlflow_as(hub: ServiceHub, who: str) -> Iterator[Any]:
    """The official mlflow client, configured as a pod's kernel is: the service URL and the user's token."""
    from mlflow.tracking import MlflowClient

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_URI")}
    os.environ["MLFLOW_TRACKING_TOKEN"] = hub.tokens[who]
    os.environ["MLFLOW_TRACKING_URI"] = hub.service_url.rstrip("/")
    try:
        yield MlflowClient(tracking_uri=hub.service_url.rstrip("/"))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_requests_without_a_valid_hub_token_are_refused(hub: ServiceHub) -> None:
    r = hub.call(None, "GET", "experiments/search")
    assert r.status_code in (401, 403), r.text
    assert r.json()["error_code"] in ("UNAUTHENTICATED", "PERMISSION_DENIED")
    r = requests.get(
        hub.service_url + API + "experiments/search",
        headers={"Authorization": "token not-a-hub-token"},
        timeout=30,
    )
    assert r.status_code in (401, 403), r.text


def test_team_reads_owner_writes_outsider_sees_nothing(hub: ServiceHub) -> None:
    with _mlflow_as(hub, "alice") as client:
        exp_id = client.create_experiment("vision-detector")
        run = client.create_run(exp_id, run_name="baseline")
        run_id = run.info.run_id
        client.log_param(run_id, "lr", "0.01")
        for step in range(3):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        (tmp := hub.workdir / "report.txt").write_text("confusion matrix")
        client.log_artifact(run_id, str(tmp))
        client.set_terminated(run_id)
        assert client.get_run(run_id).info.user_id == "alice"
        assert client.get_experiment(exp_id).tags["mlops.owner"] == "alice"

    # bob (same team) sees the run, through the mlflow client too, and cannot change it
    with _mlflow_as(hub, "bob") as client:
        seen = client.get_run(run_id)
        assert seen.data.params == {"lr": "0.01"} and seen.data.metrics["loss"] == pytest.approx(
            1 / 3
        )
        assert [r.info.run_id for r in client.search_runs([exp_id])] == [run_id]
    _error(
        hub.call(
            "bob",
            "POST",
            "runs/log-metric",
            {"run_id": run_id, "key": "loss", "value": 0.0, "timestamp": 1},
        ),
        403,
        "PERMISSION_DENIED",
    )
    _error(
        hub.call("bob", "POST", "runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"}),
        403,
        "PERMISSION_DENIED",
    )
    _error(hub.call("bob", "POST", "runs/delete", {"run_id": run_id}), 403, "PERMISSION_DENIED")
    _error(
        hub.call("bob", "POST", "experiments/update", {"experiment_id": exp_id, "new_name": "x"}),
        403,
        "PERMISSION_DENIED",
    )
    _error(
        hub.call("bob", "POST", "experiments/delete", {"experiment_id": exp_id}),
        403,
        "PERMISSION_DENIED",
    )

    # artifacts: bob reads alice's file, cannot overwrite it; carol cannot even see it
    art = f"{hub.service_url}api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/report.txt"
    as_ = {who: {"Authorization": f"token {hub.tokens[who]}"} for who in hub.tokens}
    r = requests.get(art, headers=as_["bob"], timeout=30)
    assert r.status_code == 200 and r.content == b"confusion matrix", r.text
    _error(
        requests.put(art, data=b"forged", headers=as_["bob"], timeout=30), 403, "PERMISSION_DENIED"
    )
    _error(requests.get(art, headers=as_["carol"], timeout=30), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(
        requests.get(
            f"{hub.service_url}api/2.0/mlflow-artifacts/artifacts",
            params={"path": exp_id},
            headers=as_["carol"],
            timeout=30,
        ),
        403,
        "PERMISSION_DENIED",
    )
    assert requests.get(art, headers=as_["alice"], timeout=30).content == b"confusion matrix"

    # bob logs his own run in alice's experiment: his, and alice sees it
    r = hub.call("bob", "POST", "runs/create", {"experiment_id": exp_id, "run_name": "bob-try"})
    assert r.status_code == 200, r.text
    bob_run = r.json()["run"]["info"]["run_id"]
    assert (
        hub.call(
            "bob", "POST", "runs/log-parameter", {"run_id": bob_run, "key": "lr", "value": "0.1"}
        ).status_code
        == 200
    )
    assert hub.call("alice", "GET", "runs/get", run_id=bob_run).status_code == 200

    # carol (another team) sees neither run: as if they did not exist
    _error(hub.call("carol", "GET", "runs/get", run_id=run_id), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(
        hub.call(
            "carol",
            "POST",
            "runs/log-metric",
            {"run_id": run_id, "key": "loss", "value": 0.0, "timestamp": 1},
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    r = hub.call("carol", "POST", "runs/search", {"experiment_ids": [exp_id]})
    assert r.status_code == 200 and r.json().get("runs", []) == [], r.text

    # the owner still changes her run; the admin sees both runs
    assert (
        hub.call(
            "alice", "POST", "runs/set-tag", {"run_id": run_id, "key": "note", "value": "ok"}
        ).status_code
        == 200
    )
    r = hub.call("ada", "POST", "runs/search", {"experiment_ids": [exp_id]})
    assert {x["info"]["run_id"] for x in r.json()["runs"]} == {run_id, bob_run}


def test_private_runs_are_invisible_to_the_team(hub: ServiceHub) -> None:
    exp_id = hub.call("alice", "POST", "experiments/create", {"name": "vision-private"}).json()[
        "experiment_id"
    ]
    r = hub.call(
        "alice",
        "POST",
        "runs/create",
        {
            "experiment_id": exp_id,
            "run_name": "secret",
            "tags": [{"key": "mlops.visibility", "value": "private"}],
        },
    )
    private = r.json()["run"]["info"]["run_id"]
    shared = hub.call("alice", "POST", "runs/create", {"experiment_id": exp_id}).json()["run"][
        "info"
    ]["run_id"]

    _error(hub.call("bob", "GET", "runs/get", run_id=private), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(
        hub.call("bob", "GET", "metrics/get-history", run_id=private, metric_key="loss"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    r = hub.call("bob", "POST", "runs/search", {"experiment_ids": [exp_id]})
    assert [x["info"]["run_id"] for x in r.json()["runs"]] == [shared]
    r = hub.call("alice", "POST", "runs/search", {"experiment_ids": [exp_id]})
    assert {x["info"]["run_id"] for x in r.json()["runs"]} == {private, shared}
    assert hub.call("ada", "GET", "runs/get", run_id=private).status_code == 200


def test_identity_in_the_body_is_overridden(hub: ServiceHub) -> None:
    exp_id = hub.call(
        "bob",
        "POST",
        "experiments/create",
        {"name": "bob-forged", "tags": [{"key": "mlops.owner", "value": "alice"}]},
    ).json()["experiment_id"]
    exp = hub.call("bob", "GET", "experiments/get", experiment_id=exp_id).json()["experiment"]
    assert {t["key"]: t["value"] for t in exp["tags"]}["mlops.owner"] == "bob"

    r = hub.call(
        "bob",
        "POST",
        "runs/create",
        {
            "experiment_id": exp_id,
            "user_id": "alice",
            "tags": [{"key": "mlflow.user", "value": "alice"}],
        },
    )
    assert r.status_code == 200, r.text
    run = r.json()["run"]
    assert run["info"]["user_id"] == "bob"
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["mlflow.user"] == "bob"
    run_id = run["info"]["run_id"]
    _error(
        hub.call(
            "bob",
            "POST",
            "runs/set-tag",
            {"run_id": run_id, "key": "mlflow.user", "value": "alice"},
        ),
        403,
        "PERMISSION_DENIED",
    )
    _error(
        hub.call(
            "bob",
            "POST",
            "runs/log-batch",
            {"run_id": run_id, "tags": [{"key": "mlflow.user", "value": "alice"}]},
        ),
        403,
        "PERMISSION_DENIED",
    )
    # so alice cannot change it either
    _error(
        hub.call("alice", "POST", "runs/update", {"run_id": run_id, "status": "FAILED"}),
        403,
        "PERMISSION_DENIED",
    )


def test_a_browser_logs_in_through_the_hub_oauth(hub: ServiceHub) -> None:
    session = (
        requests.Session()
    )  # carol logs in to the hub (not following it to her server's spawn)
    session.get(f"{hub.url}/hub/login", timeout=30)
    r = session.post(
        f"{hub.url}/hub/login",
        allow_redirects=False,
        timeout=30,
        data={"username": "carol", "password": "pw", "_xsrf": session.cookies.get("_xsrf", "")},
    )
    assert r.status_code == 302, r.text
    target = f"/services/{SERVICE}/mlops/{API}experiments/search"
    assert session.get(hub.url + target, timeout=30).status_code == 403
    r = session.get(
        f"{hub.service_url.rsplit('mlops/', 1)[0]}oauth_login", params={"next": target}, timeout=60
    )
    assert r.status_code == 200, (r.status_code, r.url, r.text[:300])
    assert r.url.endswith(target)
    assert "experiments" in r.json()
    # the cookie identifies carol: alice's run stays hidden from her, her own is hers
    exp_id = hub.call("alice", "POST", "experiments/create", {"name": "browser"}).json()[
        "experiment_id"
    ]
    alices = hub.call("alice", "POST", "runs/create", {"experiment_id": exp_id}).json()["run"][
        "info"
    ]
    carols = hub.call("carol", "POST", "runs/create", {"experiment_id": exp_id}).json()["run"][
        "info"
    ]
    get = f"{hub.service_url}{API}runs/get"
    _error(
        session.get(get, params={"run_id": alices["run_id"]}, timeout=30),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert session.get(get, params={"run_id": carols["run_id"]}, timeout=30).status_code == 200
    # a cookie-authenticated write needs the XSRF token (another site cannot forge it)
    r = session.post(
        f"{hub.service_url}{API}runs/set-tag",
        timeout=30,
        data=json.dumps({"run_id": carols["run_id"], "key": "k", "value": "v"}),
    )
    assert r.status_code == 403, r.text


def test_token_scopes_decide_access(hub: ServiceHub) -> None:
    """A server's token carries few scopes: access to the service is enough (the team comes from the hub);
    a token without access:services for this service is refused."""
    exp_id = hub.call("alice", "POST", "experiments/create", {"name": "scopes"}).json()[
        "experiment_id"
    ]
    run_id = hub.call("alice", "POST", "runs/create", {"experiment_id": exp_id}).json()["run"][
        "info"
    ]["run_id"]

    def token(scopes: list[str]) -> str:
        r = hub.api("POST", "users/bob/tokens", data=json.dumps({"scopes": scopes}))
        assert r.status_code == 201, r.text
        return r.json()["token"]

    narrow = token([f"access:services!service={SERVICE}"])
    r = requests.get(
        f"{hub.service_url}{API}runs/get",
        params={"run_id": run_id},
        headers={"Authorization": f"token {narrow}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text  # bob's team, found with the service's own hub access
    other = token(["read:users:name!user"])
    r = requests.get(
        f"{hub.service_url}{API}runs/get",
        params={"run_id": run_id},
        headers={"Authorization": f"token {other}"},
        timeout=30,
    )
    assert r.status_code == 403, r.text


def _run_in_alices_pod(hub: ServiceHub, tmp_path: Path, code: str) -> list[str]:
    """Run ``code`` as a script in alice's pod would: jupyter_mlops' own client pointed at the service by the
    spawner's JUPYTER_MLOPS_TRACKING_URI/_TOKEN; returns its output lines."""
    script = tmp_path / "pod_script.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "JUPYTER_MLOPS_"))}
    env |= {
        "PYTHONPATH": str(REPO),
        "JUPYTER_MLOPS_TRACKING_URI": hub.service_url.rstrip("/"),
        "JUPYTER_MLOPS_TRACKING_TOKEN": hub.tokens["alice"],
    }
    out = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def test_our_client_in_a_pod_logs_to_the_service(hub: ServiceHub, tmp_path: Path) -> None:
    """What a kernel in a team pod does: jupyter_mlops' own client, pointed at the service by the spawner's
    JUPYTER_MLOPS_TRACKING_URI/_TOKEN (its api/v1 bulk writes and heartbeats go through the access check)."""
    run_id = _run_in_alices_pod(
        hub,
        tmp_path,
        "import jupyter_mlops as mlops\n"
        "mlops.set_experiment('pod-training')\n"
        "with mlops.start_run(run_name='epochs') as run:\n"
        "    mlops.log_param('lr', 0.01)\n"
        "    for step in range(200):\n"
        "        mlops.log_metric('loss', 1.0 / (step + 1), step=step)\n"
        "print(run.info.run_id)\n",
    )[-1]

    r = hub.call("bob", "GET", "runs/get", run_id=run_id)
    assert r.status_code == 200, r.text
    run = r.json()["run"]
    assert run["info"]["user_id"] == "alice" and run["info"]["status"] == "FINISHED"
    r = hub.call("bob", "GET", "metrics/get-history", run_id=run_id, metric_key="loss")
    assert len(r.json()["metrics"]) == 200
    _error(hub.call("carol", "GET", "runs/get", run_id=run_id), 404, "RESOURCE_DOES_NOT_EXIST")


def test_our_client_logs_a_model_to_the_service(hub: ServiceHub, tmp_path: Path) -> None:
    """mlops.log_model in a pod makes an MLflow 3 logged model on the service (as it does locally: no
    fallback to the run's artifacts), registers it as a team model, and loads it back by every URI."""
    *_, printed, run_id = _run_in_alices_pod(
        hub,
        tmp_path,
        "import jupyter_mlops as mlops\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X = [[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]]\n"
        "mlops.set_experiment('pod-models')\n"
        "with mlops.start_run() as run:\n"
        "    info = mlops.log_model(LogisticRegression().fit(X, [0, 1, 0, 1]), 'model',\n"
        "                           registered_model_name='pod-classifier')\n"
        "print(info.model_uri, info.model_id, info.registered_model_version,\n"
        "      mlops.load_model(info.model_uri).predict(X).tolist(),\n"
        "      mlops.load_model('models:/pod-classifier/1').predict(X).tolist())\n"
        "print(run.info.run_id)\n",
    )
    uri, model_id, version, *_ = printed.split(" ", 3)
    assert uri == f"models:/{model_id}" and model_id.startswith("m-") and version == "1", printed
    assert printed.endswith("[0, 1, 0, 1] [0, 1, 0, 1]"), printed
    r = hub.call("alice", "GET", f"logged-models/{model_id}")
    info = r.json()["model"]["info"]
    assert info["status"] == "LOGGED_MODEL_READY" and info["source_run_id"] == run_id, r.text
    tags = {t["key"]: t["value"] for t in info["tags"]}
    assert tags["mlops.owner"] == "alice", tags
    r = hub.call("alice", "GET", "runs/get", run_id=run_id)
    assert r.json()["run"]["outputs"]["model_outputs"][0]["model_id"] == model_id, r.text
    rm = hub.call("bob", "GET", "registered-models/get", name="pod-classifier").json()
    assert rm["registered_model"]["user_id"] == "alice", rm
    assert {t["key"]: t["value"] for t in rm["registered_model"]["tags"]} == {
        "mlops.team": "vision"
    }


def _register_team_model(hub: ServiceHub) -> dict[str, str]:
    """alice (official mlflow client) logs and registers vision-detector v1 with alias champion."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    X = [[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]]
    with _mlflow_as(hub, "alice") as client:
        mlflow.set_tracking_uri(hub.service_url.rstrip("/"))
        try:
            exp_id = client.create_experiment("vision-registry")
            with mlflow.start_run(experiment_id=exp_id) as run:
                info = mlflow.sklearn.log_model(
                    LogisticRegression().fit(X, [0, 1, 0, 1]), name="detector"
                )
            mv = mlflow.register_model(info.model_uri, "vision-detector")
            client.set_registered_model_alias("vision-detector", "champion", mv.version)
            client.set_model_version_tag("vision-detector", mv.version, "reviewed", "yes")
        finally:
            mlflow.set_tracking_uri(None)
    return {
        "experiment_id": exp_id,
        "run_id": run.info.run_id,
        "model_id": info.model_id,
        "version": mv.version,
    }


def test_team_model_registry(hub: ServiceHub, tmp_path: Path) -> None:
    """alice registers a team model; bob (her team) loads it with the official mlflow client and cannot
    change it; vic (the team's maintainer) promotes it; carol (another team) is refused everywhere."""
    import mlflow

    ids = _register_team_model_once(hub)
    rm = hub.call("alice", "GET", "registered-models/get", name="vision-detector").json()
    assert rm["registered_model"]["user_id"] == "alice"
    assert {t["key"]: t["value"] for t in rm["registered_model"]["tags"]}["mlops.team"] == "vision"

    X = [[0.0, 1.0], [1.0, 0.0]]
    (tmp_path / "bob").mkdir()
    with _mlflow_as(hub, "bob") as client:
        mlflow.set_tracking_uri(hub.service_url.rstrip("/"))
        try:
            model = mlflow.pyfunc.load_model(
                "models:/vision-detector@champion", dst_path=str(tmp_path / "bob")
            )
            assert model.predict(X).tolist() == [0, 1]
            names = [m.name for m in client.search_registered_models()]
            assert "vision-detector" in names, names
            from mlflow.exceptions import MlflowException

            with pytest.raises(MlflowException) as e:
                client.transition_model_version_stage(
                    "vision-detector", ids["version"], "Production"
                )
            assert e.value.error_code == "PERMISSION_DENIED"
        finally:
            mlflow.set_tracking_uri(None)
    _error(
        hub.call(
            "bob",
            "POST",
            "registered-models/set-tag",
            {"name": "vision-detector", "key": "mlops.team", "value": "nlp"},
        ),
        403,
        "PERMISSION_DENIED",
    )
    # the team's maintainer promotes it; only the owner moves it to another team
    r = hub.call(
        "vic",
        "POST",
        "model-versions/transition-stage",
        {
            "name": "vision-detector",
            "version": ids["version"],
            "stage": "Production",
            "archive_existing_versions": False,
        },
    )
    assert r.status_code == 200 and r.json()["model_version"]["current_stage"] == "Production", (
        r.text
    )
    _error(
        hub.call(
            "vic",
            "POST",
            "registered-models/set-tag",
            {"name": "vision-detector", "key": "mlops.visibility", "value": "private"},
        ),
        403,
        "PERMISSION_DENIED",
    )
    # a team that is not one's own is refused at creation
    _error(
        hub.call(
            "carol",
            "POST",
            "registered-models/create",
            {"name": "nlp-pretends", "tags": [{"key": "mlops.team", "value": "vision"}]},
        ),
        403,
        "PERMISSION_DENIED",
    )
    # private: the team no longer sees it
    assert (
        hub.call(
            "alice",
            "POST",
            "registered-models/create",
            {"name": "alice-draft", "tags": [{"key": "mlops.visibility", "value": "private"}]},
        ).status_code
        == 200
    )
    _error(
        hub.call("bob", "GET", "registered-models/get", name="alice-draft"),
        403,
        "PERMISSION_DENIED",
    )
    r = hub.call("bob", "GET", "registered-models/search", max_results=1000)
    assert "alice-draft" not in {m["name"] for m in r.json().get("registered_models", [])}
    assert hub.call("ada", "GET", "registered-models/get", name="alice-draft").status_code == 200


def _fill(pattern: str, ids: dict[str, str]) -> str:
    """The route's path for alice's objects: path groups get her logged model's id and a tag key."""
    from routewalk import sample_path

    path = sample_path(pattern, ids["model_id"])
    return path.replace(f"{ids['model_id']}/f.txt", "mlops.note")


def test_other_team_is_refused_on_every_registry_route(hub: ServiceHub) -> None:
    """carol (nlp) on every route and verb of the registry's route table (whoever adds one), each call aimed
    at alice's team model: 403, and searches leave alice's models out. Nothing of alice's changed."""
    from jupyter_mlops.server.handlers import registry

    ids = _register_team_model_once(hub)
    body = {
        "name": "vision-detector",
        "new_name": "carols-now",
        "version": ids["version"],
        "alias": "champion",
        "key": "mlops.note",
        "value": "carol was here",
        "description": "carol was here",
        "stage": "Archived",
        "archive_existing_versions": False,
        "source": f"models:/{ids['model_id']}",
        "run_id": ids["run_id"],
        "model_id": ids["model_id"],
        "experiment_id": ids["experiment_id"],
        "source_run_id": ids["run_id"],
        "status": "LOGGED_MODEL_UPLOAD_FAILED",
        "tags": [{"key": "mlops.note", "value": "carol"}],
        "params": [{"key": "p", "value": "carol"}],
        "models": [{"model_id": ids["model_id"], "step": 0}],
        "experiment_ids": [ids["experiment_id"]],
    }
    faults, calls = [], 0
    for pattern, _cls, kwargs in registry.routes():
        path = _fill(pattern, ids)
        for verb in kwargs["rpcs"]:
            url = hub.service_url + path
            headers = {"Authorization": f"Bearer {hub.tokens['carol']}"}
            if verb == "GET":
                r = requests.get(url, params=body, headers=headers, timeout=60)
            else:
                r = requests.request(verb, url, data=json.dumps(body), headers=headers, timeout=60)
            calls += 1
            if path.endswith("/search"):  # listings (unfiltered): answered, without alice's models
                text = r.text
                if r.status_code != 200 or "vision-detector" in text or ids["model_id"] in text:
                    faults.append((verb, path, r.status_code, text[:200]))
            elif r.status_code != 403 or r.json().get("error_code") != "PERMISSION_DENIED":
                faults.append((verb, path, r.status_code, r.text[:200]))
    assert calls >= 30
    assert faults == [], "\n".join(map(repr, faults))
    # alice's model is as she left it
    r = hub.call("alice", "GET", "registered-models/get", name="vision-detector")
    assert r.status_code == 200, r.text
    mv = hub.call(
        "alice", "GET", "model-versions/get", name="vision-detector", version=ids["version"]
    )
    assert "mlops.note" not in {t["key"] for t in mv.json()["model_version"].get("tags", [])}
    logged = hub.call("alice", "GET", f"logged-models/{ids['model_id']}").json()["model"]["info"]
    assert logged["status"] == "LOGGED_MODEL_READY", logged
    # and its files: carol cannot read them through the artifacts proxy, bob can
    uri = hub.call(
        "bob",
        "GET",
        "model-versions/get-download-uri",
        name="vision-detector",
        version=ids["version"],
    )
    path = uri.json()["artifact_uri"].split("mlflow-artifacts:/", 1)[1]
    art = f"{hub.service_url}api/2.0/mlflow-artifacts/artifacts/{path}/MLmodel"
    assert (
        requests.get(
            art, headers={"Authorization": f"token {hub.tokens['bob']}"}, timeout=30
        ).status_code
        == 200
    )
    r = requests.get(art, headers={"Authorization": f"token {hub.tokens['carol']}"}, timeout=30)
    assert r.status_code in (403, 404), r.text


_REGISTERED: dict[str, str] = {}


def _register_team_model_once(hub: ServiceHub) -> dict[str, str]:
    """vision-detector, registered by test_team_model_registry or here (tests may run alone)."""
    if not _REGISTERED:
        r = hub.call("alice", "GET", "registered-models/get", name="vision-detector")
        if r.status_code == 200:
            mv = hub.call(
                "alice", "GET", "registered-models/alias", name="vision-detector", alias="champion"
            ).json()["model_version"]
            logged = hub.call("alice", "GET", f"logged-models/{mv['model_id']}").json()["model"][
                "info"
            ]
            _REGISTERED.update(
                experiment_id=logged["experiment_id"],
                run_id=logged["source_run_id"],
                model_id=mv["model_id"],
                version=mv["version"],
            )
        else:
            _REGISTERED.update(_register_team_model(hub))
    return _REGISTERED


def test_evaluation_routes_are_refused_on_the_service(hub: ServiceHub) -> None:
    """Evaluation datasets and scorers have no per-experiment rules on the shared service yet: every
    evaluation route answers NOT_IMPLEMENTED with what to do instead (after authentication)."""
    from routewalk import sample_path

    from jupyter_mlops.server.handlers import evaluation

    base = f"{hub.url}/services/{SERVICE}/mlops/"
    for pattern, _cls, _kw in evaluation.routes():
        r = requests.post(
            base + sample_path(pattern),
            headers={"Authorization": f"Bearer {hub.tokens['alice']}"},
            data=b"{}",
            timeout=60,
        )
        assert r.status_code == 501, (pattern, r.status_code, r.text[:200])
        assert r.json()["error_code"] == "NOT_IMPLEMENTED"
        assert "hub-wide tracking service" in r.json()["message"]


def test_a_private_run_id_is_not_revealed_by_create(hub: ServiceHub) -> None:
    """Issue 11 #12: api/v1/runs/create with the id of a run the caller cannot see
    answers as for a free id (a run under a new id), not RESOURCE_ALREADY_EXISTS."""
    exp_id = hub.call("alice", "POST", "experiments/create", {"name": "vision-ids"}).json()[
        "experiment_id"
    ]
    private = hub.call(
        "alice",
        "POST",
        "runs/create",
        {"experiment_id": exp_id, "tags": [{"key": "mlops.visibility", "value": "private"}]},
    ).json()["run"]["info"]["run_id"]
    _error(hub.call("bob", "GET", "runs/get", run_id=private), 404, "RESOURCE_DOES_NOT_EXIST")
    r = requests.post(
        hub.service_url + "api/v1/runs/create",
        headers={"Authorization": f"Bearer {hub.tokens['bob']}"},
        data=json.dumps({"experiment_id": exp_id, "run_id": private}),
        timeout=60,
    )
    assert r.status_code == 200, r.text
    mine = r.json()["run"]["info"]
    assert mine["run_id"] != private and mine["user_id"] == "bob"
    _error(hub.call("bob", "GET", "runs/get", run_id=private), 404, "RESOURCE_DOES_NOT_EXIST")
    assert (
        hub.call("alice", "GET", "runs/get", run_id=private).json()["run"]["info"]["user_id"]
        == "alice"
    )
    # a taken id the caller can see still answers MLflow's RESOURCE_ALREADY_EXISTS
    r = requests.post(
        hub.service_url + "api/v1/runs/create",
        headers={"Authorization": f"Bearer {hub.tokens['alice']}"},
        data=json.dumps({"experiment_id": exp_id, "run_id": private}),
        timeout=60,
    )
    _error(r, 400, "RESOURCE_ALREADY_EXISTS")


def test_auth_walk_of_every_service_route(hub: ServiceHub) -> None:
    """Every route of the service's route table (whoever adds one), every verb, and the
    kinds of bad credentials: 401 or 403, through the hub's proxy."""
    from routewalk import BAD_CREDENTIALS, VERBS, sample_path

    from jupyter_mlops.server.handlers import fallback, multi_user_handlers

    base = f"{hub.url}/services/{SERVICE}/"
    faults, calls = [], 0
    # one connection kept alive (not a new session and connection through the proxy per
    # request: ~1/5 of the walk's time); no cookie of an answer is kept, so each request
    # carries only its own credentials
    session = requests.Session()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    for pattern, _cls, _kw in [*multi_user_handlers(), fallback()]:
        url = base + sample_path(pattern)
        tries = [(v, BAD_CREDENTIALS[0]) for v in VERBS]
        tries += [(v, c) for v in ("GET", "POST") for c in BAD_CREDENTIALS[1:]]
        for verb, (kind, headers, query) in tries:
            r = session.request(
                verb,
                url,
                headers=headers,
                params=query or None,
                data=b"{}" if verb in ("POST", "PUT", "PATCH") else None,
                allow_redirects=False,
                timeout=60,
            )
            calls += 1
            if r.status_code not in (401, 403):
                faults.append((verb, pattern, kind, r.status_code, r.text[:120]))
    assert calls > 200
    assert faults == [], "\n".join(map(repr, faults))


def test_a_team_servers_models_panel_reads_the_hub_registry(hub: ServiceHub) -> None:
    """On a hub-spawned server (the spawner's JUPYTER_MLOPS_TRACKING_URI names the service), the registry
    routes the Models panel calls are relayed to the service as the server's user: alice's server lists and
    tags her team's model; carol's (another team) gets 403 and does not list it."""
    _register_team_model_once(hub)
    try:
        hub.spawn_all(dict.fromkeys(("alice", "carol")))
        for name in ("alice", "carol"):
            hub.wait_ready(name)

        def server(who: str, method: str, path: str, **kw: Any) -> requests.Response:
            return requests.request(
                method,
                f"{hub.url}/user/{who}/mlops/{API}{path}",
                headers={"Authorization": f"token {hub.tokens[who]}"},
                timeout=120,
                **kw,
            )

        r = server("alice", "GET", "registered-models/search", params={"max_results": 100})
        assert r.status_code == 200, r.text
        assert "vision-detector" in [m["name"] for m in r.json()["registered_models"]], r.text
        r = server(
            "alice",
            "POST",
            "registered-models/set-tag",
            json={"name": "vision-detector", "key": "via", "value": "alice-server"},
        )
        assert r.status_code == 200, r.text
        rm = hub.call("bob", "GET", "registered-models/get", name="vision-detector").json()
        tags = {t["key"]: t["value"] for t in rm["registered_model"]["tags"]}
        assert tags["via"] == "alice-server", rm

        r = server("carol", "GET", "registered-models/search", params={"max_results": 100})
        assert r.status_code == 200, r.text
        assert "vision-detector" not in [
            m["name"] for m in r.json().get("registered_models", [])
        ], r.text
        _error(
            server("carol", "GET", "registered-models/get", params={"name": "vision-detector"}),
            403,
            "PERMISSION_DENIED",
        )
        _error(
            server(
                "carol",
                "POST",
                "registered-models/set-tag",
                json={"name": "vision-detector", "key": "via", "value": "carol"},
            ),
            403,
            "PERMISSION_DENIED",
        )
    finally:
        hub.stop_all()


# -- MLflow traces on the service (server/trace_access.py) --------------------------------------
TRACED = """
import json, os, mlflow
mlflow.set_tracking_uri(os.environ["HUB_TRACKING_URI"])
mlflow.set_experiment("vision-agents")

@mlflow.trace(span_type="TOOL")
def leaf(x):
    return x * 2

@mlflow.trace
def middle(x):
    return leaf(x) + 1

@mlflow.trace(name="top")
def top(x):
    return middle(x) * 10

with mlflow.start_run() as run:
    results = [top(i) for i in range(2)]
mlflow.flush_trace_async_logging()
found = mlflow.search_traces(return_type="list", order_by=["timestamp ASC"])
trace = mlflow.get_trace(found[0].info.trace_id)
print("RESULT " + json.dumps({
    "results": results, "ids": [t.info.trace_id for t in found],
    "experiment_id": found[0].info.experiment_id, "run_id": run.info.run_id,
    "names": sorted(s.name for s in trace.data.spans),
}))
"""

READ = """
import json, os, mlflow
mlflow.set_tracking_uri(os.environ["HUB_TRACKING_URI"])
exp = mlflow.get_experiment_by_name("vision-agents")
found = mlflow.search_traces(locations=[exp.experiment_id], return_type="list")
names = []
for t in found:
    names.append(sorted(s.name for s in mlflow.get_trace(t.info.trace_id).data.spans))
print("RESULT " + json.dumps({"ids": [t.info.trace_id for t in found], "names": names}))
"""


def _mlflow(hub: ServiceHub, who: str, code: str, tmp_path: Path) -> dict[str, Any]:
    """The official mlflow client in a process of its own, as ``who`` (a pod's kernel)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "JUPYTER_MLOPS_"))}
    env.update(
        HUB_TRACKING_URI=hub.service_url.rstrip("/"),
        MLFLOW_TRACKING_TOKEN=hub.tokens[who],
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        HOME=str(tmp_path),
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


def _call(
    hub: ServiceHub, who: str, method: str, path: str, body: Any = None, **kw: Any
) -> requests.Response:
    """``path`` under the service's ``mlops/`` (v2, v3 and OTLP routes alike)."""
    return requests.request(
        method,
        hub.service_url + path,
        headers={"Authorization": f"Bearer {hub.tokens[who]}", **kw.pop("headers", {})},
        data=json.dumps(body) if body is not None else None,
        timeout=60,
        **kw,
    )


_TRACES: dict[str, Any] = {}


def _alice_traces(hub: ServiceHub, tmp_path: Path) -> dict[str, Any]:
    """alice's traced chain, once per module (tests may run alone)."""
    if not _TRACES:
        out = _mlflow(hub, "alice", TRACED, tmp_path)
        r = _call(
            hub,
            "alice",
            "POST",
            f"api/3.0/mlflow/traces/{out['ids'][0]}/assessments",
            {"assessment": {"assessment_name": "good", "feedback": {"value": True}}},
        )
        assert r.status_code == 200, r.text
        out["assessment_id"] = r.json()["assessment"]["assessment_id"]
        _TRACES.update(out)
    return _TRACES


def _search_ids(hub: ServiceHub, who: str, experiment_id: str) -> set[str]:
    r = _call(
        hub,
        who,
        "POST",
        "api/3.0/mlflow/traces/search",
        {
            "locations": [{"mlflow_experiment": {"experiment_id": experiment_id}}],
            "max_results": 500,
        },
    )
    assert r.status_code == 200, r.text
    return {t["trace_id"] for t in r.json().get("traces", [])}


def test_alice_traces_with_mlflow_and_her_team_reads_them(hub: ServiceHub, tmp_path: Path) -> None:
    out = _alice_traces(hub, tmp_path)
    assert out["results"] == [10, 30]
    assert len(out["ids"]) == 2
    assert out["names"] == ["leaf", "middle", "top"]
    info = _call(hub, "alice", "GET", f"api/3.0/mlflow/traces/{out['ids'][0]}").json()
    assert info["trace"]["trace_info"]["tags"]["mlops.owner"] == "alice"
    # bob (vision) finds and reads them with the official client, span trees included
    (tmp_path / "bob").mkdir()
    seen = _mlflow(hub, "bob", READ, tmp_path / "bob")
    assert set(out["ids"]) <= set(seen["ids"])
    assert seen["names"][0] == ["leaf", "middle", "top"]
    # ... but changes nothing of hers
    r = _call(
        hub,
        "bob",
        "PATCH",
        f"api/3.0/mlflow/traces/{out['ids'][0]}/tags",
        {"key": "reviewed", "value": "bob"},
    )
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
    r = _call(
        hub,
        "bob",
        "POST",
        "api/3.0/mlflow/traces/delete-traces",
        {"experiment_id": out["experiment_id"], "max_timestamp_millis": 2**62},
    )
    assert r.status_code == 200 and r.json()["traces_deleted"] == 0, r.text
    assert set(out["ids"]) <= _search_ids(hub, "alice", out["experiment_id"])
    # carol (nlp) sees none of them
    assert not set(out["ids"]) & _search_ids(hub, "carol", out["experiment_id"])


def test_a_private_trace_is_its_owners(hub: ServiceHub, tmp_path: Path) -> None:
    out = _alice_traces(hub, tmp_path)
    r = _call(
        hub,
        "alice",
        "PATCH",
        f"api/3.0/mlflow/traces/{out['ids'][1]}/tags",
        {"key": "mlops.visibility", "value": "private"},
    )
    assert r.status_code == 200, r.text
    r = _call(hub, "bob", "GET", f"api/3.0/mlflow/traces/{out['ids'][1]}")
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
    bob_sees = _search_ids(hub, "bob", out["experiment_id"])
    assert out["ids"][0] in bob_sees and out["ids"][1] not in bob_sees
    assert out["ids"][1] in _search_ids(hub, "alice", out["experiment_id"])
    assert _call(hub, "ada", "GET", f"api/3.0/mlflow/traces/{out['ids'][1]}").status_code == 200
    # the identity tag is the service's
    r = _call(
        hub,
        "alice",
        "PATCH",
        f"api/3.0/mlflow/traces/{out['ids'][1]}/tags",
        {"key": "mlops.owner", "value": "bob"},
    )
    assert r.status_code == 403, r.text


def _otlp(trace_hex: str, name: str) -> dict[str, Any]:
    span = {
        "traceId": trace_hex,
        "spanId": "22" * 8,
        "name": name,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
    }
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def test_otlp_spans_become_the_senders_traces(hub: ServiceHub, tmp_path: Path) -> None:
    out = _alice_traces(hub, tmp_path)
    headers = {"Content-Type": "application/json", "x-mlflow-experiment-id": out["experiment_id"]}
    trace_hex = "5a" * 16
    r = _call(hub, "alice", "POST", "v1/traces", _otlp(trace_hex, "agent"), headers=headers)
    assert r.status_code == 200, r.text
    trace_id = f"tr-{trace_hex}"
    got = _call(hub, "bob", "GET", "api/3.0/mlflow/traces/get", params={"trace_id": trace_id})
    assert got.status_code == 200, got.text
    assert [s["name"] for s in got.json()["trace"]["spans"]] == ["agent"]
    assert got.json()["trace"]["trace_info"]["tags"]["mlops.owner"] == "alice"
    # carol adding spans to alice's trace: refused, nothing added
    r = _call(hub, "carol", "POST", "v1/traces", _otlp(trace_hex, "carols"), headers=headers)
    assert r.status_code == 403, r.text
    got = _call(hub, "alice", "GET", "api/3.0/mlflow/traces/get", params={"trace_id": trace_id})
    assert [s["name"] for s in got.json()["trace"]["spans"]] == ["agent"]


def _fill_trace_route(pattern: str, ids: dict[str, Any]) -> str:
    """The route's path aimed at alice's trace and assessment."""
    from routewalk import sample_path

    values = {"trace_id": ids["ids"][0], "request_id": ids["ids"][0]}
    values["assessment_id"] = ids["assessment_id"]
    filled = re.sub(
        r"\(\?P<(\w+)>[^)]*\)", lambda m: re.escape(values.get(m.group(1), "x1")), pattern
    )
    return sample_path(filled)


def test_other_team_is_refused_on_every_trace_route(hub: ServiceHub, tmp_path: Path) -> None:
    """carol (nlp) on every route and verb of the tracing route table (whoever adds one), each call aimed at
    alice's trace: 403; searches and aggregates answer without alice's traces. Nothing of alice's changed."""
    from jupyter_mlops.server.handlers import traces

    ids = _alice_traces(hub, tmp_path)
    trace_id, exp = ids["ids"][0], ids["experiment_id"]
    info = {
        "trace_id": trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": exp},
        },
        "request_time": "2024-01-01T00:00:00Z",
        "state": "OK",
        "tags": {"mlops.note": "carol"},
    }
    body = {
        "trace": {"trace_info": info},
        "traces": [{"info": info, "spans": []}],
        "trace_id": trace_id,
        "request_id": trace_id,
        "trace_ids": [trace_id],
        "request_ids": [trace_id],
        "run_id": ids["run_id"],
        "experiment_id": exp,
        "experiment_ids": [exp],
        "locations": [{"mlflow_experiment": {"experiment_id": exp}}],
        "key": "mlops.note",
        "value": "carol was here",
        "assessment": {"assessment_name": "good", "feedback": {"value": False}},
        "update_mask": "feedback",
        "metric_name": "trace_count",
        "filter_string1": "trace.status = 'OK'",
        "filter_string2": "trace.status = 'ERROR'",
        "timestamp_ms": 1,
        "status": "OK",
        "request_metadata": [{"key": "mlflow.sourceRun", "value": ids["run_id"]}],
    }
    headers = {"Authorization": f"Bearer {hub.tokens['carol']}"}
    faults, calls = [], 0
    for pattern, _cls, kwargs in traces.routes():
        path = _fill_trace_route(pattern, ids)
        url = hub.service_url + path
        verbs = list(kwargs.get("rpcs", {})) or (["POST"] if path == "v1/traces" else ["GET"])
        for verb in verbs:
            if path == "v1/traces":
                r = requests.post(
                    url,
                    data=json.dumps(_otlp(trace_id[3:], "carols")),
                    headers={
                        **headers,
                        "Content-Type": "application/json",
                        "x-mlflow-experiment-id": exp,
                    },
                    timeout=60,
                )
            elif verb == "GET":
                r = requests.get(url, params=body, headers=headers, timeout=60)
            else:
                r = requests.request(verb, url, data=json.dumps(body), headers=headers, timeout=60)
            calls += 1
            if path.endswith(("/metrics", "/calculate-filter-correlation")):
                # aggregates count only what carol may read: none of alice's traces
                got = r.json() if r.status_code == 200 else {}
                counted = [v for p in got.get("data_points", []) for v in p["values"].values()]
                if r.status_code != 200 or got.get("total_count") or any(counted):
                    faults.append((verb, path, r.status_code, r.text[:200]))
            elif "search" in path or (path.endswith("mlflow/traces") and verb == "GET"):
                # listings answer without alice's traces (a query string cannot carry v3's
                # location objects: GET .../search is a 400 whoever asks)
                answered = r.status_code == 200 or (verb == "GET" and r.status_code == 400)
                if not answered or trace_id in r.text:
                    faults.append((verb, path, r.status_code, r.text[:200]))
            elif r.status_code != 403 or r.json().get("error_code") != "PERMISSION_DENIED":
                faults.append((verb, path, r.status_code, r.text[:200]))
    assert calls >= 20
    assert faults == [], "\n".join(map(repr, faults))
    # alice's own aggregates count her traces
    r = _call(hub, "alice", "POST", "api/3.0/mlflow/traces/calculate-filter-correlation", body)
    assert r.status_code == 200 and r.json()["total_count"] >= 2, r.text
    # alice's trace is as she left it
    got = _call(hub, "alice", "GET", "api/3.0/mlflow/traces/get", params={"trace_id": trace_id})
    assert got.status_code == 200, got.text
    tags = got.json()["trace"]["trace_info"]["tags"]
    assert "mlops.note" not in tags and tags["mlops.owner"] == "alice"
    a = _call(
        hub, "alice", "GET", f"api/3.0/mlflow/traces/{trace_id}/assessments/{ids['assessment_id']}"
    )
    assert a.json()["assessment"]["feedback"]["value"] is True, a.text
    # nor can carol read its data through the artifacts proxy; bob can
    art = f"{hub.service_url}api/2.0/mlflow-artifacts/artifacts/{exp}/traces/{trace_id}/artifacts/traces.json"
    assert requests.get(art, headers=headers, timeout=30).status_code == 403
    bob = {"Authorization": f"Bearer {hub.tokens['bob']}"}
    assert requests.get(art, headers=bob, timeout=30).status_code == 200
    batches = f"{hub.service_url}api/2.0/mlflow-artifacts/artifacts/{exp}/traces/batches"
    assert requests.get(batches, headers=bob, timeout=30).status_code == 403


GENAI_EVALUATE = """
import json, os, mlflow
from mlflow.genai.scorers import scorer
mlflow.set_tracking_uri(os.environ["HUB_TRACKING_URI"])
mlflow.set_experiment("vision-eval")

@scorer
def exact_match(outputs, expectations):
    return outputs == expectations["answer"]

def predict_fn(question):
    return question.upper()

data = [
    {"inputs": {"question": f"q{i}"}, "expectations": {"answer": f"Q{i}" if i % 4 else "no"}}
    for i in range(8)
]
result = mlflow.genai.evaluate(data=data, predict_fn=predict_fn, scorers=[exact_match])
traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
print("RESULT " + json.dumps({
    "run_id": result.run_id,
    "experiment_id": mlflow.get_experiment_by_name("vision-eval").experiment_id,
    "metrics": dict(result.metrics),
    "ids": [t.info.trace_id for t in traces],
    "assessed": sum(1 for t in traces if any(a.name == "exact_match" for a in t.info.assessments)),
}))
"""


def test_genai_evaluate_against_the_service(hub: ServiceHub, tmp_path: Path) -> None:
    """mlflow.genai.evaluate in a team server's kernel (tracking URI: the service) with a plain
    Python scorer: its run, traces and per-row feedback land as the caller's; the team reads
    them, another team does not."""
    out = _mlflow(hub, "alice", GENAI_EVALUATE, tmp_path)
    assert out["metrics"]["exact_match/mean"] == 0.75, out
    assert len(out["ids"]) == 8 and out["assessed"] == 8, out
    info = _call(hub, "alice", "GET", f"api/3.0/mlflow/traces/{out['ids'][0]}").json()
    assert info["trace"]["trace_info"]["tags"]["mlops.owner"] == "alice"
    run = hub.call("bob", "GET", "runs/get", run_id=out["run_id"])
    assert run.status_code == 200, run.text
    metrics = {m["key"]: m["value"] for m in run.json()["run"]["data"]["metrics"]}
    assert metrics["exact_match/mean"] == 0.75
    assert set(out["ids"]) <= _search_ids(hub, "bob", out["experiment_id"])
    assert not set(out["ids"]) & _search_ids(hub, "carol", out["experiment_id"])
    _error(
        hub.call("carol", "GET", "runs/get", run_id=out["run_id"]), 404, "RESOURCE_DOES_NOT_EXIST"
    )
