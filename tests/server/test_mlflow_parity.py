"""Behaviours of MLflow's server that its own REST tests check (docs/mlflow.md,
"Conformance"), against the in-process Jupyter server and a real SQLite store."""

from __future__ import annotations

import time

import pytest

AJAX = "ajax-api/2.0/mlflow/"


@pytest.mark.parametrize(
    ("route", "field", "message"),
    [
        ("metrics/get-history-bulk", "run_id", "GetMetricHistoryBulk request cannot specify"),
        ("metrics/get-history-bulk-interval", "run_ids", "must specify at most 100 run_ids"),
    ],
)
def test_a_thousand_run_ids_in_the_url_get_mlflows_answer(api, route, field, message):
    # 1001 query fields: past tornado's default limit (1000), which answers an empty 400
    # before any handler runs; the server raises it (MLOpsApp.max_query_fields).
    params = [(field, f"id_{i}") for i in range(1000)] + [("metric_key", "key")]
    r = api("GET", AJAX + route, params=params)
    assert r.status == 400, r.body
    assert r.json["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in r.json["message"] and "1000" in r.json["message"]


M = "api/2.0/mlflow/"


@pytest.mark.parametrize(
    ("source", "with_run", "message"),
    [
        ("/tmp", True, "To use a local path as a model version source"),
        ("file:///etc/passwd", False, "To use a local path as a model version source"),
        ("relative/model", True, "To use a local path as a model version source"),
        ("mlflow-artifacts://host:9000/models/../../../", True, "an absolute path must be"),
        ("http://host:9000/models/..%2f..%2fartifacts", True, "an absolute path must be"),
        ("mlflow-artifacts://host:9000/models/artifact%00", True, "an absolute path must be"),
        ("s3://bucket", True, "an absolute path must be"),
    ],
)
def test_model_version_sources_refused_as_mlflow_does(api, source, with_run, message):
    exp = api("POST", M + "experiments/create", {"name": "src"}).json["experiment_id"]
    run_id = api("POST", M + "runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
    assert api("POST", M + "registered-models/create", {"name": "src"}).status == 200
    body = {"name": "src", "source": source, **({"run_id": run_id} if with_run else {})}
    r = api("POST", M + "model-versions/create", body)
    assert r.status == 400, r.body
    assert r.json["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in r.json["message"] and "Invalid model version source" in r.json["message"]
    # nothing written
    r = api("GET", M + "model-versions/search", params={"filter": "name='src'"})
    assert r.json.get("model_versions", []) == []


def test_model_version_sources_accepted_as_mlflow_does(api):
    exp = api("POST", M + "experiments/create", {"name": "ok"}).json["experiment_id"]
    run = api("POST", M + "runs/create", {"experiment_id": exp}).json["run"]["info"]
    assert api("POST", M + "registered-models/create", {"name": "ok"}).status == 200
    for source in (
        f"{run['artifact_uri']}/model",
        "mlflow-artifacts:/models/foo///bar",
        "mlflow-artifacts://host:9000/models/artifact/..../",
        "runs:/a-run-this-server-lacks/model",  # as MLflow's 3.x REST tests expect
        "s3://bucket/path/model",
    ):
        r = api(
            "POST",
            M + "model-versions/create",
            {"name": "ok", "source": source, "run_id": run["run_id"]},
        )
        assert r.status == 200, (source, r.body)
    model = api("POST", M + "logged-models", {"experiment_id": exp}).json["model"]["info"]
    good = {"name": "ok", "source": f"models:/{model['model_id']}", "model_id": model["model_id"]}
    assert api("POST", M + "model-versions/create", good).status == 200
    bad = {**good, "source": "models:/m-0123456789abcdef0123456789abcdef"}
    r = api("POST", M + "model-versions/create", bad)
    assert r.status == 400 and "model_id request parameter" in r.json["message"]
    r = api("POST", M + "model-versions/create", {**good, "source": "file:///path/to/model"})
    assert r.status == 400 and "contained within the artifact directory" in r.json["message"]


def test_logged_model_keeps_a_source_run_id_this_server_lacks(api):
    exp = api("POST", M + "experiments/create", {"name": "lm"}).json["experiment_id"]
    r = api("POST", M + "logged-models", {"experiment_id": exp, "source_run_id": "123"})
    assert r.status == 200, r.body
    model_id = r.json["model"]["info"]["model_id"]
    r = api("GET", M + f"logged-models/{model_id}")
    assert r.json["model"]["info"]["source_run_id"] == "123"


def test_model_versions_ordered_as_mlflow_orders_them(api):
    names = [f"ord{i}" for i in range(3)]
    for name in names:
        assert api("POST", M + "registered-models/create", {"name": name}).status == 200
    for name in names + names[:2]:  # versions 1 of each, then 2 of ord0 and ord1
        body = {"name": name, "source": "runs:/r/model", "run_id": "r"}
        assert api("POST", M + "model-versions/create", body).status == 200
    r = api("GET", M + "model-versions/search", params={"order_by": "version_number DESC"})
    got = [(mv["name"], mv["version"]) for mv in r.json["model_versions"]]
    # the clause, then name ascending (not the newest first) for equal versions
    assert got == [("ord0", "2"), ("ord1", "2"), ("ord0", "1"), ("ord1", "1"), ("ord2", "1")]


def test_metrics_logged_with_a_model_id_are_the_models(api):
    exp = api("POST", M + "experiments/create", {"name": "model-metrics"}).json["experiment_id"]
    run_id = api("POST", M + "runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
    m1 = api("POST", M + "logged-models", {"experiment_id": exp}).json["model"]["info"]
    m2 = api("POST", M + "logged-models", {"experiment_id": exp}).json["model"]["info"]
    point = {"run_id": run_id, "key": "acc", "value": 0.5, "timestamp": 123, "step": 1}
    r = api(
        "POST",
        M + "runs/log-metric",
        {**point, "model_id": m1["model_id"], "dataset_name": "eval", "dataset_digest": "d1"},
    )
    assert r.status == 200, r.body
    batch = {"run_id": run_id, "metrics": [{**point, "key": "f1", "model_id": m2["model_id"]}]}
    assert api("POST", M + "runs/log-batch", batch).status == 200
    got = api("GET", M + f"logged-models/{m1['model_id']}").json["model"]
    assert got["data"]["metrics"] == [
        {
            "key": "acc",
            "value": 0.5,
            "timestamp": 123,
            "step": 1,
            "model_id": m1["model_id"],
            "dataset_name": "eval",
            "dataset_digest": "d1",
            "run_id": run_id,
        }
    ]
    # the run's own history has the point too
    run = api("GET", M + "runs/get", params={"run_id": run_id}).json["run"]
    assert {m["key"] for m in run["data"]["metrics"]} == {"acc", "f1"}

    def search(datasets):
        body = {"experiment_ids": [exp], "datasets": datasets}
        return [
            m["info"]["model_id"]
            for m in api("POST", M + "logged-models/search", body).json.get("models", [])
        ]

    assert search([{"dataset_name": "eval", "dataset_digest": "d1"}]) == [m1["model_id"]]
    assert search([{"dataset_name": "eval"}]) == [m1["model_id"]]
    assert search([{"dataset_name": "eval", "dataset_digest": "other"}]) == []
    # a dataset name longer than MLflow's column: refused, nothing written
    r = api(
        "POST",
        M + "runs/log-metric",
        {**point, "model_id": m2["model_id"], "dataset_name": "x" * 501},
    )
    assert r.status == 400 and r.json["error_code"] == "INVALID_PARAMETER_VALUE"
    got = api("GET", M + f"logged-models/{m2['model_id']}").json["model"]
    assert [m["key"] for m in got["data"]["metrics"]] == ["f1"]


def test_a_copied_version_reads_the_files_of_the_version_it_copies(api):
    # MlflowClient.copy_model_version creates a version whose source is models:/<name>/<v>.
    exp = api("POST", M + "experiments/create", {"name": "cp"}).json["experiment_id"]
    run = api("POST", M + "runs/create", {"experiment_id": exp}).json["run"]["info"]
    assert api("POST", M + "registered-models/create", {"name": "cp"}).status == 200
    original = f"{run['artifact_uri']}/model"
    body = {"name": "cp", "source": original, "run_id": run["run_id"]}
    assert api("POST", M + "model-versions/create", body).status == 200
    r = api("POST", M + "model-versions/create", {"name": "cp", "source": "models:/cp/1"})
    assert r.status == 200, r.body
    assert r.json["model_version"]["source"] == "models:/cp/1"
    r = api("GET", M + "model-versions/get-download-uri", params={"name": "cp", "version": "2"})
    assert r.json["artifact_uri"] == original
    # a copy of a version that does not exist is refused, nothing written
    r = api("POST", M + "model-versions/create", {"name": "cp", "source": "models:/cp/7"})
    assert r.status == 400 and r.json["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Unable to fetch model from model URI source artifact location" in r.json["message"]
    r = api("GET", M + "model-versions/search", params={"filter": "name='cp'"})
    assert sorted(mv["version"] for mv in r.json["model_versions"]) == ["1", "2"]


def test_a_version_that_is_no_integer_gets_mlflows_message(api):
    assert api("POST", M + "registered-models/create", {"name": "vi"}).status == 200
    r = api("GET", M + "model-versions/get", params={"name": "vi", "version": "not a number"})
    assert r.status == 400 and r.json["error_code"] == "INVALID_PARAMETER_VALUE"
    assert r.json["message"] == "Parameter 'version' must be an integer, got 'not a number'."


def test_deleting_a_version_updates_its_registered_model(api):
    assert api("POST", M + "registered-models/create", {"name": "dv"}).status == 200
    body = {"name": "dv", "source": "runs:/r/model", "run_id": "r"}
    created = api("POST", M + "model-versions/create", body).json["model_version"]
    # the same clock as the in-process server's: wait until it is past the creation
    while time.time_ns() // 1_000_000 <= int(created["last_updated_timestamp"]):
        time.sleep(0.001)
    after_creation = time.time_ns() // 1_000_000
    r = api("DELETE", M + "model-versions/delete", {"name": "dv", "version": "1"})
    assert r.status == 200, r.body
    model = api("GET", M + "registered-models/get", params={"name": "dv"}).json
    assert int(model["registered_model"]["last_updated_timestamp"]) >= after_creation
