"""A hub-spawned team server's tracking UI reads the hub's tracking service (issue 16).

The hub of test_tracking_service.py (real JupyterHub, configurable-http-proxy, the service in
multi-user mode; its servers get the service's URL as the spawner gives it). alice logs runs to the
service as her kernels do (the official mlflow client with her hub token); the routes the Runs panel,
run detail, compare and the artifact viewer call on *her server* answer them; bob (her team) reads
them through his server and may not change them; carol (another team) is refused through hers. A
large artifact downloads through the relay byte for byte, and a run ended on the service becomes a
notification in alice's JupyterLab (her server polls the service), not in bob's."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from test_tracking_service import _mlflow_as
from test_tracking_service import hub as service_hub  # noqa: F401  (its hub, as a fixture here)

API = "api/2.0/mlflow/"
#: The artifact streamed through the relay: several of tornado's chunks.
BIG = 3 * 1024 * 1024 + 17
DEADLINE = 120.0
#: The servers' MLOpsApp.max_artifact_upload.
LIMIT = 8 * 1024 * 1024


def _server(hub: Any, who: str, method: str, path: str, **kw: Any) -> requests.Response:
    """A call to ``who``'s team server, under its ``mlops/``, as the panels make it."""
    return requests.request(
        method,
        f"{hub.url}/user/{who}/mlops/{path}",
        headers={"Authorization": f"token {hub.tokens[who]}"},
        timeout=120,
        **kw,
    )


def _error(r: requests.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.json()["error_code"] == code, r.text


@pytest.fixture(scope="module")
def servers(request: pytest.FixtureRequest) -> Iterator[Any]:
    """alice's, bob's and carol's servers, which look for ended runs every second."""
    hub = request.getfixturevalue("service_hub")
    config = hub.workdir / "server-config" / "jupyter_server_config.json"
    settings = json.loads(config.read_text())
    settings["HubRunsService"] = {"poll_interval": 1}
    # what a server relays in one request body (the uploads below stay under it)
    settings.setdefault("MLOpsApp", {})["max_artifact_upload"] = LIMIT
    config.write_text(json.dumps(settings))
    try:
        hub.spawn_all(dict.fromkeys(("alice", "bob", "carol")))
        for name in ("alice", "bob", "carol"):
            hub.wait_ready(name)
        yield hub
    finally:
        hub.stop_all()


@pytest.fixture(scope="module")
def logged(servers: Any) -> dict[str, Any]:
    """alice's run on the service: a param, a metric over 3 steps, a large artifact; finished."""
    hub = servers
    blob = bytes(range(256)) * (BIG // 256) + b"x" * (BIG % 256)
    (hub.workdir / "weights.bin").write_bytes(blob)
    with _mlflow_as(hub, "alice") as client:
        exp_id = client.create_experiment("relay-vision")
        run_id = client.create_run(exp_id, run_name="relayed").info.run_id
        client.log_param(run_id, "lr", "0.01")
        for step in range(3):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        client.log_artifact(run_id, str(hub.workdir / "weights.bin"))
        client.set_terminated(run_id)
    return {"exp": exp_id, "run": run_id, "sha": hashlib.sha256(blob).hexdigest()}


def test_the_runs_panel_of_alices_server_shows_her_runs_on_the_service(
    servers: Any, logged: dict[str, Any]
) -> None:
    hub, exp, run = servers, logged["exp"], logged["run"]
    r = _server(hub, "alice", "POST", API + "experiments/search", json={"max_results": 1000})
    assert r.status_code == 200, r.text
    assert "relay-vision" in [e["name"] for e in r.json()["experiments"]]
    r = _server(hub, "alice", "POST", API + "runs/search", json={"experiment_ids": [exp]})
    assert [x["info"]["run_id"] for x in r.json()["runs"]] == [run], r.text
    r = _server(hub, "alice", "POST", "api/v1/runs/count", json={"experiment_ids": [exp]})
    assert r.json() == {"count": 1}, r.text
    r = _server(hub, "alice", "POST", "api/v1/runs/keys", json={"experiment_ids": [exp]})
    assert r.status_code == 200, r.text
    assert r.json().get("params") == ["lr"] and r.json().get("metrics") == ["loss"], r.text
    # run detail (the UI's ajax-api alias too)
    r = _server(hub, "alice", "GET", "ajax-api/2.0/mlflow/runs/get", params={"run_id": run})
    info = r.json()["run"]["info"]
    assert info["user_id"] == "alice" and info["status"] == "FINISHED", r.text
    r = _server(
        hub,
        "alice",
        "GET",
        API + "metrics/get-history",
        params={"run_id": run, "metric_key": "loss"},
    )
    assert [m["step"] for m in r.json()["metrics"]] == [0, 1, 2], r.text
    # charts: the down-sampled series, and compare's bulk series (not served by the service:
    # one series call per run)
    r = _server(
        hub, "alice", "GET", "api/v1/metrics/series", params={"run_id": run, "metric_key": "loss"}
    )
    assert [p["step"] for p in r.json()["points"]] == [0, 1, 2], r.text
    r = _server(
        hub,
        "alice",
        "GET",
        "api/v1/metrics/series-bulk",
        params={"run_ids": [run], "metric_key": "loss", "max_points": 10},
    )
    assert r.status_code == 200, r.text
    [series] = r.json()["series"]
    assert series["run_id"] == run and len(series["points"]) == 3
    r = _server(hub, "alice", "GET", API + "artifacts/list", params={"run_id": run})
    assert [(f["path"], f.get("file_size")) for f in r.json()["files"]] == [("weights.bin", BIG)]
    # nothing of it is in the server's own store: the relay answered
    r = _server(hub, "alice", "GET", "api/v1/pipelines/targets")
    assert r.status_code == 200, r.text


def _download(response: requests.Response) -> tuple[int, str]:
    """(chunks, sha256) of a streamed body."""
    digest, chunks = hashlib.sha256(), 0
    for chunk in response.iter_content(chunk_size=256 * 1024):
        digest.update(chunk)
        chunks += 1
    return chunks, digest.hexdigest()


def test_artifacts_stream_through_the_relay(servers: Any, logged: dict[str, Any]) -> None:
    """The artifact viewer's proxy path and the MLflow UI's get-artifact (translated into the
    service's proxy) give the same bytes, in several chunks, with their length."""
    hub, exp, run = servers, logged["exp"], logged["run"]
    for path, params in (
        (f"{API[:-7]}mlflow-artifacts/artifacts/{exp}/{run}/artifacts/weights.bin", None),
        ("get-artifact", {"run_id": run, "path": "weights.bin"}),
    ):
        with _server(hub, "alice", "GET", path, params=params, stream=True) as r:
            assert r.status_code == 200, r.text
            assert r.headers.get("Content-Length") == str(BIG), r.headers
            chunks, sha = _download(r)
        assert sha == logged["sha"] and chunks > 1, path
    _error(
        _server(hub, "alice", "GET", "get-artifact", params={"run_id": run, "path": "../x"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    _error(
        _server(hub, "alice", "GET", "get-artifact", params={"run_id": run, "path": "nope.bin"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_the_services_rules_apply_through_each_users_server(
    servers: Any, logged: dict[str, Any]
) -> None:
    hub, exp, run = servers, logged["exp"], logged["run"]
    # bob (same team) sees alice's run and its files through his server, and cannot change it
    r = _server(hub, "bob", "GET", API + "runs/get", params={"run_id": run})
    assert r.status_code == 200 and r.json()["run"]["info"]["user_id"] == "alice", r.text
    r = _server(hub, "bob", "POST", API + "runs/search", json={"experiment_ids": [exp]})
    assert [x["info"]["run_id"] for x in r.json()["runs"]] == [run], r.text
    with _server(
        hub,
        "bob",
        "GET",
        "get-artifact",
        params={"run_id": run, "path": "weights.bin"},
        stream=True,
    ) as r:
        assert r.status_code == 200 and _download(r)[1] == logged["sha"]
    _error(
        _server(
            hub, "bob", "POST", API + "runs/set-tag", json={"run_id": run, "key": "k", "value": "v"}
        ),
        403,
        "PERMISSION_DENIED",
    )
    _error(
        _server(hub, "bob", "POST", API + "runs/delete", json={"run_id": run}),
        403,
        "PERMISSION_DENIED",
    )
    # carol (another team): the run does not exist for her, nor its files or series
    r = _server(hub, "carol", "POST", API + "runs/search", json={"experiment_ids": [exp]})
    assert r.status_code == 200 and not r.json().get("runs"), r.text
    for path, params in (
        (API + "runs/get", {"run_id": run}),
        ("get-artifact", {"run_id": run, "path": "weights.bin"}),
        (f"{API[:-7]}mlflow-artifacts/artifacts/{exp}/{run}/artifacts/weights.bin", None),
        ("api/v1/metrics/series-bulk", {"run_ids": [run], "metric_key": "loss"}),
    ):
        _error(_server(hub, "carol", "GET", path, params=params), 404, "RESOURCE_DOES_NOT_EXIST")
    # without the user's own credentials nothing is relayed
    r = requests.get(
        f"{hub.url}/user/alice/mlops/{API}runs/get", params={"run_id": run}, timeout=60
    )
    assert r.status_code in (302, 401, 403), r.status_code
    r = requests.get(
        f"{hub.url}/user/alice/mlops/{API}runs/get",
        params={"run_id": run},
        headers={"Authorization": f"token {hub.tokens['carol']}"},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code in (302, 403, 404), r.status_code


def _notified(hub: Any, who: str, name: str) -> list[dict[str, Any]]:
    r = _server(hub, who, "GET", "api/v1/notifications")
    assert r.status_code == 200, r.text
    return [n for n in r.json()["notifications"] if f"'{name}'" in n.get("message", "")]


def _wait_notified(hub: Any, who: str, name: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = _notified(hub, who, name)
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{who} was not told that {name} ended; hub log:\n{hub.tail()}")


def test_a_run_ended_on_the_service_is_told_in_its_owners_jupyterlab(servers: Any) -> None:
    """The run is ended on the service directly (as a kernel's client ends it), not through the
    server: alice's server finds it and tells her, with the run's link; bob's server, which
    looks at the same team runs, tells him only of his own."""
    hub = servers
    with _mlflow_as(hub, "alice") as client:
        exp_id = client.create_experiment("relay-notify")
        alices = client.create_run(exp_id, run_name="alice-long-training").info.run_id
        client.set_terminated(alices, status="FAILED")
    with _mlflow_as(hub, "bob") as client:
        bobs_exp = client.create_experiment("relay-notify-bob")
        client.set_terminated(
            client.create_run(bobs_exp, run_name="bob-sweep").info.run_id, status="FINISHED"
        )
    [told] = _wait_notified(hub, "alice", "alice-long-training")
    assert "failed" in told["message"] and "relay-notify" in told["message"], told
    assert told["link"] == f"#/experiments/{exp_id}/runs/{alices}", told
    _wait_notified(hub, "bob", "bob-sweep")
    # bob's server saw alice's ended run (same team) in the look that found his: not told to him
    assert _notified(hub, "bob", "alice-long-training") == []
    assert _notified(hub, "alice", "bob-sweep") == []


def test_a_logged_models_files_through_the_relay(servers: Any) -> None:
    """A logged model's files and directories (the service serves neither route): read through
    alice's server from the service's artifacts proxy; carol is refused."""
    hub = servers
    model_dir = hub.workdir / "relay-model"
    (model_dir / "data").mkdir(parents=True)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    (model_dir / "data" / "weights.txt").write_text("w=1\n")
    with _mlflow_as(hub, "alice") as client:
        exp_id = client.create_experiment("relay-models")
        model = client.create_logged_model(experiment_id=exp_id, name="clf")
        client.log_model_artifacts(model.model_id, str(model_dir))
    base = f"{API}logged-models/{model.model_id}/artifacts/"
    r = _server(hub, "alice", "GET", base + "directories", params={"artifact_directory_path": ""})
    assert r.status_code == 200, r.text
    assert sorted(f["path"] for f in r.json()["files"]) == ["MLmodel", "data"], r.text
    r = _server(
        hub, "alice", "GET", base + "directories", params={"artifact_directory_path": "data"}
    )
    assert [f["path"] for f in r.json()["files"]] == ["data/weights.txt"], r.text
    r = _server(hub, "alice", "GET", base + "files", params={"artifact_file_path": "MLmodel"})
    assert r.status_code == 200 and r.text == "flavors: {}\n", r.text
    r = _server(hub, "carol", "GET", base + "files", params={"artifact_file_path": "MLmodel"})
    assert r.status_code in (403, 404), r.text
    assert r.json()["error_code"] in ("PERMISSION_DENIED", "RESOURCE_DOES_NOT_EXIST"), r.text


PIPELINE = """\
name: relay-pipeline
experiment: relay-pipelines
steps:
  train:
    script: train.py
"""


def test_a_pipeline_run_on_alices_server_is_tracked_on_the_service(servers: Any) -> None:
    """The server's own services record their runs where its Runs panel reads (the service):
    the pipeline's run and its step's, into which the step's process logs a metric; bob (her
    team) reads them through his server, carol (another team) does not see them."""
    hub = servers
    home = hub.workdir / "home" / "alice"
    (home / "train.py").write_text("import jupyter_mlops as mlops\nmlops.log_metric('acc', 0.75)\n")
    (home / "relay.pipeline.yaml").write_text(PIPELINE)
    r = _server(hub, "alice", "POST", "api/v1/pipelines/runs", json={"path": "relay.pipeline.yaml"})
    assert r.status_code == 200, r.text
    run_id = r.json()["run"]["run_id"]
    deadline = time.monotonic() + DEADLINE
    while True:
        r = _server(hub, "alice", "GET", f"api/v1/pipelines/runs/{run_id}")
        assert r.status_code == 200, r.text
        pipeline = r.json()["run"]
        if pipeline["status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            break
        assert time.monotonic() < deadline, f"still {pipeline['status']}:\n{hub.tail()}"
        time.sleep(0.5)
    assert pipeline["status"] == "SUCCEEDED", pipeline
    [step] = pipeline["steps"]
    # the Runs panel's calls (relayed): both runs are alice's, on the service
    r = _server(hub, "alice", "GET", API + "runs/get", params={"run_id": run_id})
    assert r.status_code == 200, r.text
    info = r.json()["run"]["info"]
    assert info["user_id"] == "alice" and info["status"] == "FINISHED", info
    exp = info["experiment_id"]
    r = _server(hub, "bob", "POST", API + "runs/search", json={"experiment_ids": [exp]})
    runs = {x["info"]["run_id"]: x for x in r.json()["runs"]}
    assert set(runs) == {run_id, step["tracking_run_id"]}, r.text
    metrics = runs[step["tracking_run_id"]]["data"].get("metrics", [])
    assert [(m["key"], m["value"]) for m in metrics] == [("acc", 0.75)], runs
    with _mlflow_as(hub, "alice") as client:  # on the service itself, not a server's store
        assert client.get_run(run_id).info.run_name == info["run_name"]
    r = _server(hub, "carol", "POST", API + "runs/search", json={"experiment_ids": [exp]})
    assert r.status_code == 200 and not r.json().get("runs"), r.text
    # told once, as a pipeline: a run alice ends afterwards is told (so her server looked at the
    # service since the pipeline ended), the pipeline's runs are not told again as runs
    with _mlflow_as(hub, "alice") as client:
        client.set_terminated(client.create_run(exp, run_name="after-the-pipeline").info.run_id)
    _wait_notified(hub, "alice", "after-the-pipeline")
    r = _server(hub, "alice", "GET", "api/v1/notifications")
    links = [n.get("link", "") for n in r.json()["notifications"]]
    assert f"#/pipelines/runs/{run_id}" in links, links
    assert not [
        x
        for x in links
        if x.endswith((run_id, step["tracking_run_id"]))
        and "/runs/" in x
        and not x.startswith("#/pipelines/")
    ], links


def test_uploads_stream_through_the_relay_and_a_too_large_one_is_413(
    servers: Any, logged: dict[str, Any]
) -> None:
    """An artifact PUT through alice's server reaches the service byte for byte, with its length
    or chunked (the body is passed on as it arrives); a body declared larger than the server
    relays is answered 413 in MLflow's error JSON, and nothing of it reaches the service."""
    hub, exp, run = servers, logged["exp"], logged["run"]
    proxy = f"{API[:-7]}mlflow-artifacts/artifacts/{exp}/{run}/artifacts/"
    blob = hashlib.sha256(b"seed").digest() * (BIG // 32)

    def pieces() -> Iterator[bytes]:  # no length: sent chunked
        for i in range(0, len(blob), 100_000):
            yield blob[i : i + 100_000]

    for name, body in (("sized.bin", blob), ("chunked.bin", pieces())):
        r = _server(hub, "alice", "PUT", proxy + name, data=body)
        assert r.status_code == 200, r.text
        with _mlflow_as(hub, "alice") as client:  # read from the service itself
            got = client.download_artifacts(run, name, str(hub.workdir))
        assert Path(got).read_bytes() == blob, name
    # bob may read alice's run, not write into it: refused by the service, through his server
    _error(_server(hub, "bob", "PUT", proxy + "bobs.bin", data=b"x"), 403, "PERMISSION_DENIED")
    # too large: refused once sent, in MLflow's error JSON (through the hub's proxy, which passes
    # on no answer given before the body was read)
    r = _server(hub, "alice", "PUT", proxy + "huge.bin", data=bytes(LIMIT + 1))
    assert r.status_code == 413, (r.status_code, r.text[:300])
    error = r.json()
    assert error["error_code"] == "INVALID_PARAMETER_VALUE", error
    assert "max_artifact_upload" in error["message"], error
    with _mlflow_as(hub, "alice") as client:
        assert "huge.bin" not in [f.path for f in client.list_artifacts(run)]
