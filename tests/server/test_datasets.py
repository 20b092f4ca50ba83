"""Datasets and run inputs over MLflow's REST API: ``runs/log-inputs`` stores them, ``runs/get``
and ``runs/search`` return them, ``experiments/search-datasets`` (the MLflow UI's route, under
``ajax-api`` too) summarises them; bad input is a 4xx with nothing half-written."""

from __future__ import annotations

import json

import pytest

CONTEXT = "mlflow.data.context"


def _dataset(name: str, digest: str, **extra: str) -> dict:
    return {
        "name": name,
        "digest": digest,
        "source_type": "local",
        "source": json.dumps({"uri": f"/data/{name}.csv"}),
        **extra,
    }


def _input(dataset: dict, context: str | None = None, **tags: str) -> dict:
    tag_list = [{"key": k, "value": v} for k, v in tags.items()]
    if context:
        tag_list.append({"key": CONTEXT, "value": context})
    return {"dataset": dataset, "tags": tag_list}


@pytest.fixture
def make_run(api):
    def make(exp_name: str) -> tuple[str, str]:
        r = api("POST", "api/2.0/mlflow/experiments/create", {"name": exp_name})
        exp_id = r.json["experiment_id"]
        r = api("POST", "api/2.0/mlflow/runs/create", {"experiment_id": exp_id})
        return exp_id, r.json["run"]["info"]["run_id"]

    return make


def test_log_inputs_round_trip_and_dataset_summaries(api, make_run):
    exp_id, run_id = make_run("datasets")
    schema = json.dumps({"mlflow_colspec": [{"name": "a", "type": "long", "required": True}]})
    profile = json.dumps({"num_rows": 2, "num_elements": 6})
    train = _dataset("train", "f0f3e026", schema=schema, profile=profile)
    evals = _dataset("eval", "0badc0de")
    r = api(
        "POST",
        "api/2.0/mlflow/runs/log-inputs",
        {
            "run_id": run_id,
            "datasets": [
                _input(train, "training", foo="baz"),
                _input(evals, "eval"),
                _input(train, "ignored"),
            ],  # the same (name, digest) again counts once
        },
    )
    assert r.status == 200 and r.json == {}

    got = api("GET", "api/2.0/mlflow/runs/get", params={"run_id": run_id}).json["run"]
    inputs = got["inputs"]["dataset_inputs"]
    assert [i["dataset"]["name"] for i in inputs] == ["train", "eval"]
    assert inputs[0]["dataset"] == train
    assert inputs[0]["tags"] == [
        {"key": "foo", "value": "baz"},
        {"key": CONTEXT, "value": "training"},
    ]
    assert "schema" not in inputs[1]["dataset"]

    # logging the same dataset again is a no-op; a new one is appended
    api(
        "POST",
        "api/2.0/mlflow/runs/log-inputs",
        {"run_id": run_id, "datasets": [_input(train, "other"), _input(_dataset("test", "d3"))]},
    )
    got = api("GET", "api/2.0/mlflow/runs/get", params={"run_id": run_id}).json["run"]
    assert [i["dataset"]["name"] for i in got["inputs"]["dataset_inputs"]] == [
        "train",
        "eval",
        "test",
    ]

    # a second run of the experiment reuses the stored dataset (its first source wins)
    r = api("POST", "api/2.0/mlflow/runs/create", {"experiment_id": exp_id})
    run2 = r.json["run"]["info"]["run_id"]
    moved = {**train, "source": json.dumps({"uri": "/elsewhere.csv"})}
    api(
        "POST",
        "api/2.0/mlflow/runs/log-inputs",
        {"run_id": run2, "datasets": [_input(moved, "training")]},
    )
    found = api("POST", "api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id]}).json["runs"]
    by_id = {r["info"]["run_id"]: r for r in found}
    assert by_id[run2]["inputs"]["dataset_inputs"][0]["dataset"] == train
    assert len(by_id[run_id]["inputs"]["dataset_inputs"]) == 3

    for prefix in ("api", "ajax-api"):
        r = api(
            "POST", f"{prefix}/2.0/mlflow/experiments/search-datasets", {"experiment_ids": [exp_id]}
        )
        assert r.status == 200
        assert r.json["dataset_summaries"] == [
            {"experiment_id": exp_id, "name": "eval", "digest": "0badc0de", "context": "eval"},
            {"experiment_id": exp_id, "name": "test", "digest": "d3"},
            {"experiment_id": exp_id, "name": "train", "digest": "f0f3e026", "context": "training"},
        ]


def test_log_inputs_with_logged_models(api, make_run):
    exp_id, run_id = make_run("model-inputs")
    model = api("POST", "api/2.0/mlflow/logged-models", {"experiment_id": exp_id}).json["model"]
    model_id = model["info"]["model_id"]
    r = api(
        "POST",
        "api/2.0/mlflow/runs/log-inputs",
        {"run_id": run_id, "models": [{"model_id": model_id}]},
    )
    assert r.status == 200
    got = api("GET", "api/2.0/mlflow/runs/get", params={"run_id": run_id}).json["run"]
    assert got["inputs"] == {"model_inputs": [{"model_id": model_id}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"datasets": []}, "Missing value for required parameter 'run_id'"),
        (
            {"datasets": [{"dataset": {**_dataset("d", "1"), "profile": "x" * (10 << 20)}}]},
            "datasets[0].dataset.profile",
        ),
        ({"datasets": [{"dataset": _dataset("d", "x" * 37)}]}, "datasets[0].dataset.digest"),
        (
            {"datasets": [{"dataset": {**_dataset("d", "1"), "source_type": "no such type!"}}]},
            "datasets[0].dataset.source_type",
        ),
        (
            {"datasets": [{"dataset": {**_dataset("d", "1"), "source_type": ""}}]},
            "datasets[0].dataset.source_type",
        ),
        (
            {"datasets": [{"dataset": {"name": "d", "digest": "1", "source_type": "local"}}]},
            "datasets[0].dataset.source",
        ),
        (
            {
                "datasets": [
                    {"dataset": _dataset("ok", "1")},
                    {"dataset": _dataset("bad", "2"), "tags": [{"key": "k"}]},
                ]
            },
            "datasets[1].tags[0].value",
        ),
        ({"datasets": "nope"}, "datasets"),
        ({"models": [{}]}, "models[0].model_id"),
    ],
)
def test_bad_inputs_are_refused_whole(api, make_run, body, message):
    _, run_id = make_run(f"bad-{abs(hash(message))}")
    if "'run_id'" not in message:
        body = {"run_id": run_id, **body}
    r = api("POST", "api/2.0/mlflow/runs/log-inputs", body)
    assert r.status == 400, r.body
    assert r.json["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in r.json["message"]
    got = api("GET", "api/2.0/mlflow/runs/get", params={"run_id": run_id}).json["run"]
    assert got["inputs"] == {}  # nothing half-written


def test_inputs_of_deleted_or_missing_runs_are_refused(api, make_run):
    _, run_id = make_run("deleted-run")
    api("POST", "api/2.0/mlflow/runs/delete", {"run_id": run_id})
    r = api(
        "POST",
        "api/2.0/mlflow/runs/log-inputs",
        {"run_id": run_id, "datasets": [_input(_dataset("d", "1"))]},
    )
    assert r.status == 400
    assert r.json["message"] == (
        f"The run {run_id} must be in the 'active' state. Current state is deleted."
    )
    api("POST", "api/2.0/mlflow/runs/restore", {"run_id": run_id})
    got = api("GET", "api/2.0/mlflow/runs/get", params={"run_id": run_id}).json["run"]
    assert got["inputs"] == {}
    r = api(
        "POST",
        "api/2.0/mlflow/runs/log-inputs",
        {"run_id": "0" * 32, "datasets": [_input(_dataset("d", "1"))]},
    )
    assert r.status == 404 and r.json["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_search_datasets_checks_its_experiment_ids(api):
    url = "ajax-api/2.0/mlflow/experiments/search-datasets"
    for body in ({}, {"experiment_ids": []}):
        r = api("POST", url, body)
        assert r.status == 400
        assert "must specify at least one experiment_id" in r.json["message"]
    r = api("POST", url, {"experiment_ids": [str(i) for i in range(21)]})
    assert r.status == 400 and "cannot specify more than 20" in r.json["message"]
    r = api("POST", url, {"experiment_ids": ["999999", "not-a-number"]})
    assert r.status == 200 and r.json == {}


def test_mlflow_ui_routes(api, make_run):
    """MLflow's UI routes: version, get-artifact (MLflow's filename and types, an empty file
    too), upload-artifact, the bulk histories, logged-model files; paths checked."""
    r = api("GET", "version")
    assert r.status == 200 and r.body == b"3.17.2"
    assert r.headers["Content-Type"].startswith("text/plain")
    exp_id, run_id = make_run("ui-routes")
    for name, data in (("MLmodel", b"flavors: {}\n"), ("ünï.txt", b"x")):
        r = api(
            "POST",
            "ajax-api/2.0/mlflow/upload-artifact",
            data,
            params={"run_uuid": run_id, "path": f"d/{name}"},
        )
        assert r.status == 200, r.body
    r = api(
        "PUT", f"api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/d/empty.png", b""
    )
    assert r.status == 200
    r = api("GET", "get-artifact", params={"run_id": run_id, "path": "d/MLmodel"})
    assert r.status == 200 and r.body == b"flavors: {}\n"
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["Content-Disposition"] == "attachment; filename=MLmodel"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    r = api("GET", "get-artifact", params={"run_id": run_id, "path": "d/empty.png"})
    assert r.headers["Content-Type"] == "image/png"
    r = api("GET", "get-artifact", params={"run_id": run_id, "path": "d/ünï.txt"})
    assert r.headers["Content-Disposition"] == (
        "attachment; filename=uni.txt; filename*=UTF-8''%C3%BCn%C3%AF.txt"
    )
    for path in ("../x", "/etc/passwd"):
        r = api("GET", "get-artifact", params={"run_id": run_id, "path": path})
        assert r.status == 400 and r.json["message"] == "Invalid path"
    r = api(
        "POST",
        "ajax-api/2.0/mlflow/upload-artifact",
        b"",
        params={"run_uuid": run_id, "path": "a.txt"},
    )
    assert r.status == 400 and r.json["message"] == "Request must specify data."

    for step in range(10):
        api(
            "POST",
            "api/2.0/mlflow/runs/log-metric",
            {"run_id": run_id, "key": "m", "value": step / 10, "timestamp": 1, "step": step},
        )
    r = api(
        "GET",
        "ajax-api/2.0/mlflow/metrics/get-history-bulk",
        params=[("run_id", run_id), ("metric_key", "m")],
    )
    assert [p["step"] for p in r.json["metrics"]] == list(range(10))
    assert {p["run_id"] for p in r.json["metrics"]} == {run_id}
    r = api(
        "GET",
        "ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
        params=[("run_ids", run_id), ("metric_key", "m"), ("max_results", "4")],
    )
    assert [p["step"] for p in r.json["metrics"]] == [0, 3, 6, 9]  # first and last kept
    r = api(
        "GET",
        "ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
        params=[("run_ids", run_id), ("metric_key", "m"), ("start_step", "2")],
    )
    assert r.status == 400 and "both must be specified" in r.json["message"]
