"""MLflow's REST contract, endpoint by endpoint, against the in-process server
(SQLite, and PostgreSQL when JUPYTER_MLOPS_TEST_POSTGRES_URL is set): fields,
answers, error JSON and status codes as in the reference (§4–§8)."""

from __future__ import annotations

import time

import pytest

M = "api/2.0/mlflow/"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def mlops_db_url(request, tmp_path):
    """The whole contract on both databases the server supports."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_db_url")
    return f"sqlite:///{tmp_path / 'mlops.db'}"


def now() -> int:
    return int(time.time() * 1000)


def make_run(api, name: str = "exp", **create) -> tuple[str, str]:
    r = api("POST", M + "experiments/create", {"name": name})
    assert r.status == 200, r.body
    exp_id = r.json["experiment_id"]
    r = api("POST", M + "runs/create", {"experiment_id": exp_id, "start_time": now(), **create})
    assert r.status == 200, r.body
    return exp_id, r.json["run"]["info"]["run_id"]


def assert_error(r, status: int, code: str, text: str | None = None) -> None:
    assert r.status == status, (r.status, r.body)
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    if text is not None:
        assert text in body["message"], body["message"]


# -- experiments -------------------------------------------------------------
def test_experiment_lifecycle(api):
    r = api(
        "POST", M + "experiments/create", {"name": "exp-a", "tags": [{"key": "team", "value": "a"}]}
    )
    assert r.status == 200
    exp_id = r.json["experiment_id"]
    assert isinstance(exp_id, str)

    r = api("GET", M + "experiments/get", params={"experiment_id": exp_id})
    exp = r.json["experiment"]
    assert exp["name"] == "exp-a" and exp["lifecycle_stage"] == "active"
    assert exp["artifact_location"] == f"mlflow-artifacts:/{exp_id}"
    assert {"key": "team", "value": "a"} in exp["tags"]

    r = api("GET", M + "experiments/get-by-name", params={"experiment_name": "exp-a"})
    assert r.json["experiment"]["experiment_id"] == exp_id

    # duplicate name: 400 RESOURCE_ALREADY_EXISTS (not 409), what set_experiment expects
    r = api("POST", M + "experiments/create", {"name": "exp-a"})
    assert_error(r, 400, "RESOURCE_ALREADY_EXISTS")

    assert (
        api("POST", M + "experiments/update", {"experiment_id": exp_id, "new_name": "exp-b"})
    ).json == {}
    r = api("GET", M + "experiments/get", params={"experiment_id": exp_id})
    assert r.json["experiment"]["name"] == "exp-b"

    api(
        "POST",
        M + "experiments/set-experiment-tag",
        {"experiment_id": exp_id, "key": "k", "value": "v"},
    )
    r = api("GET", M + "experiments/get", params={"experiment_id": exp_id})
    assert {"key": "k", "value": "v"} in r.json["experiment"]["tags"]
    r = api("POST", M + "experiments/delete-experiment-tag", {"experiment_id": exp_id, "key": "k"})
    assert r.status == 200 and r.json == {}
    r = api("GET", M + "experiments/get", params={"experiment_id": exp_id})
    assert {"key": "k", "value": "v"} not in r.json["experiment"].get("tags", [])

    assert (api("POST", M + "experiments/delete", {"experiment_id": exp_id})).json == {}
    r = api("GET", M + "experiments/get", params={"experiment_id": exp_id})
    assert r.json["experiment"]["lifecycle_stage"] == "deleted"
    # a deleted experiment's name stays taken
    assert_error(
        api("POST", M + "experiments/create", {"name": "exp-b"}), 400, "RESOURCE_ALREADY_EXISTS"
    )
    r = api("POST", M + "experiments/search", {"view_type": "ACTIVE_ONLY"})
    assert exp_id not in [e["experiment_id"] for e in r.json.get("experiments", [])]
    r = api("POST", M + "experiments/search", {"view_type": "DELETED_ONLY"})
    assert exp_id in [e["experiment_id"] for e in r.json["experiments"]]

    assert (api("POST", M + "experiments/restore", {"experiment_id": exp_id})).json == {}
    r = api("GET", M + "experiments/get", params={"experiment_id": exp_id})
    assert r.json["experiment"]["lifecycle_stage"] == "active"


def test_default_experiment_and_search_get_and_post(api):
    r = api("GET", M + "experiments/get", params={"experiment_id": "0"})
    assert r.status == 200 and r.json["experiment"]["name"] == "Default"
    api("POST", M + "experiments/create", {"name": "s1"})
    api("POST", M + "experiments/create", {"name": "s2"})
    r_get = api(
        "GET", M + "experiments/search", params=[("max_results", "10"), ("order_by", "name ASC")]
    )
    r_post = api("POST", M + "experiments/search", {"max_results": 10, "order_by": ["name ASC"]})
    assert r_get.status == r_post.status == 200
    names_get = [e["name"] for e in r_get.json["experiments"]]
    names_post = [e["name"] for e in r_post.json["experiments"]]
    assert names_get == names_post
    assert {"Default", "s1", "s2"} <= set(names_get)


def test_experiment_errors(api):
    assert_error(
        api("GET", M + "experiments/get-by-name", params={"experiment_name": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Could not find experiment with name 'nope'",
    )
    assert_error(
        api("GET", M + "experiments/get", params={"experiment_id": "999"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert_error(
        api("POST", M + "experiments/create", {}),
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'name'",
    )
    assert_error(
        api("GET", M + "experiments/get"),
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'experiment_id'",
    )
    assert_error(
        api("POST", M + "experiments/update", {"experiment_id": "0"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'new_name'",
    )
    assert_error(
        api("POST", M + "experiments/search", {"max_results": 50001}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


# -- runs --------------------------------------------------------------------
def test_run_create_get_update(api):
    exp_id, _ = make_run(api, "runs")
    start = now()
    r = api(
        "POST",
        M + "runs/create",
        {
            "experiment_id": exp_id,
            "user_id": "alice",
            "run_name": "r1",
            "start_time": start,
            "tags": [{"key": "mlflow.user", "value": "alice"}],
        },
    )
    run = r.json["run"]
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] and len(info["run_id"]) == 32
    assert info["run_name"] == "r1" and info["status"] == "RUNNING"
    assert info["start_time"] == start and info["experiment_id"] == exp_id
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/{info['run_id']}/artifacts"
    assert info["lifecycle_stage"] == "active"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.user"] == "alice" and tags["mlflow.runName"] == "r1"
    run_id = info["run_id"]

    # both run_id and the deprecated run_uuid are accepted
    for field in ("run_id", "run_uuid"):
        r = api("GET", M + "runs/get", params={field: run_id})
        assert r.status == 200 and r.json["run"]["info"]["run_id"] == run_id

    end = now()
    r = api("POST", M + "runs/update", {"run_uuid": run_id, "status": "FINISHED", "end_time": end})
    assert r.status == 200
    assert r.json["run_info"]["status"] == "FINISHED" and r.json["run_info"]["end_time"] == end
    r = api("POST", M + "runs/update", {"run_id": run_id, "run_name": "renamed"})
    assert r.json["run_info"]["run_name"] == "renamed"
    assert r.json["run_info"]["status"] == "FINISHED"  # fields not sent stay as they were

    # a run without a name gets one
    r = api("POST", M + "runs/create", {"experiment_id": exp_id})
    assert r.json["run"]["info"]["run_name"]


def test_run_errors(api):
    assert_error(
        api("GET", M + "runs/get", params={"run_id": "deadbeef"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_error(
        api("GET", M + "runs/get"),
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'run_id'. See the API docs",
    )
    assert_error(
        api("POST", M + "runs/create", {"experiment_id": "424242"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    _, run_id = make_run(api, "errs")
    assert_error(
        api("POST", M + "runs/update", {"run_id": run_id, "status": "BOGUS"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        api("POST", M + "runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.0}),
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'timestamp'",
    )


def test_delete_restore_and_search(api):
    exp_id, a = make_run(api, "search")
    r = api("POST", M + "runs/create", {"experiment_id": exp_id, "start_time": now()})
    b = r.json["run"]["info"]["run_id"]
    ts = now()
    api(
        "POST",
        M + "runs/log-metric",
        {"run_id": a, "key": "acc", "value": 0.9, "timestamp": ts, "step": 0},
    )
    api(
        "POST",
        M + "runs/log-metric",
        {"run_id": b, "key": "acc", "value": 0.4, "timestamp": ts, "step": 0},
    )
    r = api("POST", M + "runs/search", {"experiment_ids": [exp_id], "filter": "metrics.acc > 0.5"})
    assert [x["info"]["run_id"] for x in r.json["runs"]] == [a]
    r = api(
        "POST", M + "runs/search", {"experiment_ids": [exp_id], "order_by": ["metrics.acc ASC"]}
    )
    assert [x["info"]["run_id"] for x in r.json["runs"]] == [b, a]

    assert (api("POST", M + "runs/delete", {"run_id": b})).json == {}
    r = api("GET", M + "runs/get", params={"run_id": b})
    assert r.json["run"]["info"]["lifecycle_stage"] == "deleted"
    r = api("POST", M + "runs/search", {"experiment_ids": [exp_id]})
    assert [x["info"]["run_id"] for x in r.json["runs"]] == [a]
    r = api(
        "POST", M + "runs/search", {"experiment_ids": [exp_id], "run_view_type": "DELETED_ONLY"}
    )
    assert [x["info"]["run_id"] for x in r.json["runs"]] == [b]
    assert (api("POST", M + "runs/restore", {"run_id": b})).json == {}
    r = api("POST", M + "runs/search", {"experiment_ids": [exp_id]})
    assert {x["info"]["run_id"] for x in r.json["runs"]} == {a, b}

    # an empty result is {} (unset repeated fields are omitted)
    r = api("POST", M + "runs/search", {"experiment_ids": [exp_id], "filter": "metrics.acc > 5"})
    assert r.status == 200 and r.json.get("runs", []) == []
    assert_error(
        api("POST", M + "runs/search", {"experiment_ids": [exp_id], "max_results": 50001}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        api(
            "POST",
            M + "runs/search",
            {"experiment_ids": [exp_id], "filter": "metrics.acc > 1 or x"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_search_runs_pages(api):
    exp_id, _ = make_run(api, "pages")
    for _ in range(4):
        api("POST", M + "runs/create", {"experiment_id": exp_id, "start_time": now()})
    seen, token = [], None
    for _ in range(10):
        body = {"experiment_ids": [exp_id], "max_results": 2}
        if token:
            body["page_token"] = token
        r = api("POST", M + "runs/search", body)
        seen += [x["info"]["run_id"] for x in r.json.get("runs", [])]
        token = r.json.get("next_page_token")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 5


def test_v1_count_runs_matches_search_over_all_pages(api):
    exp_id, first = make_run(api, "count")
    for i in range(4):
        rid = api("POST", M + "runs/create", {"experiment_id": exp_id, "start_time": now()}).json[
            "run"
        ]["info"]["run_id"]
        api(
            "POST",
            M + "runs/log-metric",
            {"run_id": rid, "key": "m", "value": i, "timestamp": now(), "step": 0},
        )
    api("POST", M + "runs/delete", {"run_id": first})

    def count(**body):
        return api("POST", "api/v1/runs/count", {"experiment_ids": [exp_id], **body})

    assert count().json == {"count": 4}
    assert count(filter="metrics.m >= 2").json == {"count": 2}
    assert count(run_view_type="ALL").json == {"count": 5}
    assert count(run_view_type="DELETED_ONLY").json == {"count": 1}
    assert api("POST", "api/v1/runs/count", {"experiment_ids": ["9" * 30]}).json == {"count": 0}
    assert_error(count(filter="metrics.m >> 2"), 400, "INVALID_PARAMETER_VALUE", "metrics.m >> 2")


def test_v1_run_keys_lists_and_searches_the_keys_of_active_runs(api):
    exp_id, first = make_run(api, "keys")
    other, _ = make_run(api, "keys-other")
    for i in range(3):
        rid = api("POST", M + "runs/create", {"experiment_id": exp_id, "start_time": now()}).json[
            "run"
        ]["info"]["run_id"]
        api(
            "POST",
            M + "runs/log-batch",
            {
                "run_id": rid,
                "params": [{"key": f"lr_{i}", "value": "0.1"}, {"key": "LrX", "value": "8"}],
                "metrics": [{"key": "val_Loss", "value": 1.0, "timestamp": now(), "step": 0}],
                "tags": [{"key": "team", "value": "a"}],
            },
        )
    api("POST", M + "runs/log-parameter", {"run_id": first, "key": "gone", "value": "1"})
    api("POST", M + "runs/delete", {"run_id": first})

    def keys(**body):
        return api("POST", "api/v1/runs/keys", {"experiment_ids": [exp_id], **body})

    got = keys().json
    # Distinct and sorted; the deleted run's key is not offered.
    assert got["params"] == ["LrX", "lr_0", "lr_1", "lr_2"]
    assert got["metrics"] == ["val_Loss"]
    assert "team" in got["tags"] and "gone" not in got["params"]
    # Case-insensitive contains; LIKE's wildcards are plain characters.
    assert keys(search="LOSS").json["metrics"] == ["val_Loss"]
    assert keys(search="r_").json["params"] == ["lr_0", "lr_1", "lr_2"]
    assert keys(search="%").json["params"] == []
    assert keys(search="lr", max_results=2).json["params"] == ["LrX", "lr_0"]
    assert api("POST", "api/v1/runs/keys", {"experiment_ids": [other]}).json["params"] == []
    assert_error(keys(max_results=0), 400, "INVALID_PARAMETER_VALUE", "max_results")


def test_v1_changed_runs_answers_only_runs_changed_since_the_last_poll(api):
    exp_id, first = make_run(api, "changes")
    second = api("POST", M + "runs/create", {"experiment_id": exp_id, "start_time": now()}).json[
        "run"
    ]["info"]["run_id"]

    def changes(since):
        r = api("POST", "api/v1/runs/changes", {"experiment_ids": [exp_id], "since": since})
        assert r.status == 200, r.body
        return r.json

    start = changes(0)
    assert {r["info"]["run_id"] for r in start["runs"]} == {first, second}
    assert start["truncated"] is False
    # Nothing changed: nothing to download.
    idle = changes(start["now"] + 1)
    assert idle["runs"] == [] and idle["now"] >= start["now"]
    mark = idle["now"]
    while now() <= mark:  # the next write gets a later millisecond
        pass
    api(
        "POST",
        M + "runs/log-metric",
        {"run_id": second, "key": "m", "value": 2.0, "timestamp": now(), "step": 1},
    )
    got = changes(mark + 1)
    assert [r["info"]["run_id"] for r in got["runs"]] == [second]
    assert got["runs"][0]["data"]["metrics"][0]["value"] == 2.0
    mark = got["now"]
    while now() <= mark:
        pass
    api("POST", M + "runs/delete", {"run_id": first})
    gone = changes(mark + 1)["runs"]
    assert [(r["info"]["run_id"], r["info"]["lifecycle_stage"]) for r in gone] == [
        (first, "deleted")
    ]
    limited = api(
        "POST", "api/v1/runs/changes", {"experiment_ids": [exp_id], "since": 0, "max_results": 1}
    ).json
    assert len(limited["runs"]) == 1 and limited["truncated"] is True
    r = api("POST", "api/v1/runs/changes", {"experiment_ids": [exp_id]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "since")


# -- logging -----------------------------------------------------------------
def test_log_metric_param_tag_and_history(api):
    _, run_id = make_run(api, "logging")
    t0 = now()
    for step, value in enumerate([0.5, 0.4, 0.3]):
        r = api(
            "POST",
            M + "runs/log-metric",
            {
                "run_uuid": run_id,
                "run_id": run_id,
                "key": "loss",
                "value": value,
                "timestamp": t0 + step,
                "step": step,
            },
        )
        assert r.status == 200 and r.json == {}
    r = api("POST", M + "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.01"})
    assert r.json == {}
    # the same value again is fine, a different one is refused
    assert (
        api("POST", M + "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.01"})
    ).status == 200
    assert_error(
        api("POST", M + "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.02"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    api("POST", M + "runs/set-tag", {"run_id": run_id, "key": "t", "value": "1"})
    api("POST", M + "runs/set-tag", {"run_id": run_id, "key": "t", "value": "2"})

    run = (api("GET", M + "runs/get", params={"run_id": run_id})).json["run"]
    metrics = {m["key"]: m for m in run["data"]["metrics"]}
    assert metrics["loss"]["value"] == 0.3 and metrics["loss"]["step"] == 2  # latest only
    assert {"key": "lr", "value": "0.01"} in run["data"]["params"]
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["t"] == "2"

    r = api("POST", M + "runs/delete-tag", {"run_id": run_id, "key": "t"})
    assert r.status == 200
    run = (api("GET", M + "runs/get", params={"run_id": run_id})).json["run"]
    assert "t" not in {t["key"] for t in run["data"].get("tags", [])}

    r = api(
        "GET",
        M + "metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss", "max_results": "25000"},
    )
    assert [(m["step"], m["value"]) for m in r.json["metrics"]] == [(0, 0.5), (1, 0.4), (2, 0.3)]
    r = api(
        "GET",
        M + "metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss", "max_results": "1"},
    )
    assert len(r.json["metrics"]) == 1 and r.json["next_page_token"]
    r2 = api(
        "GET",
        M + "metrics/get-history",
        params={
            "run_id": run_id,
            "metric_key": "loss",
            "max_results": "5",
            "page_token": r.json["next_page_token"],
        },
    )
    assert [m["step"] for m in r2.json["metrics"]] == [1, 2]
    assert_error(
        api(
            "GET",
            M + "metrics/get-history",
            params={"run_id": run_id, "metric_key": "loss", "max_results": "0"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        api("GET", M + "metrics/get-history", params={"run_id": run_id}),
        400,
        "INVALID_PARAMETER_VALUE",
        "'metric_key'",
    )


def test_log_batch(api):
    _, run_id = make_run(api, "batch")
    t = now()
    r = api(
        "POST",
        M + "runs/log-batch",
        {
            "run_id": run_id,
            "metrics": [{"key": "m", "value": i, "timestamp": t, "step": i} for i in range(10)],
            "params": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
            "tags": [{"key": "x", "value": "y"}],
        },
    )
    assert r.status == 200 and r.json == {}
    run = (api("GET", M + "runs/get", params={"run_id": run_id})).json["run"]
    assert {p["key"] for p in run["data"]["params"]} == {"a", "b"}
    r = api("GET", M + "metrics/get-history", params={"run_id": run_id, "metric_key": "m"})
    assert len(r.json["metrics"]) == 10

    # MLflow's limits: 1000 metrics, 100 params, 100 tags, 1000 in all
    assert_error(
        api(
            "POST",
            M + "runs/log-batch",
            {"run_id": run_id, "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
        "at most 100 params. Got 101 params",
    )
    assert_error(
        api(
            "POST",
            M + "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{"key": "m", "value": 1, "timestamp": t} for _ in range(1001)],
            },
        ),
        400,
        "INVALID_PARAMETER_VALUE",
        "at most 1000 metrics",
    )
    assert_error(
        api(
            "POST",
            M + "runs/log-batch",
            {"run_id": run_id, "tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
        "at most 100 tags",
    )
    assert_error(
        api(
            "POST", M + "runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1}]}
        ),
        400,
        "INVALID_PARAMETER_VALUE",
        "'metrics[0].timestamp'",
    )
    assert_error(
        api(
            "POST",
            M + "runs/log-batch",
            {"run_id": run_id, "params": [{"key": "d", "value": "1"}, {"key": "d", "value": "2"}]},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    # nothing of the refused batches was written
    r = api("GET", M + "metrics/get-history", params={"run_id": run_id, "metric_key": "m"})
    assert len(r.json["metrics"]) == 10


def test_log_batch_body_limit(api):
    _, run_id = make_run(api, "big")
    body = {"run_id": run_id, "tags": [{"key": "k", "value": "x" * 1_000_001}]}
    assert_error(
        api("POST", M + "runs/log-batch", body),
        400,
        "INVALID_PARAMETER_VALUE",
        "must be at most 1000000 bytes",
    )


def test_artifacts_list_and_logged_models_and_server_info(api):
    exp_id, run_id = make_run(api, "arts")
    base = f"api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts"
    assert (api("PUT", base + "/hello.txt", b"hello!")).status == 200
    assert (api("PUT", base + "/sub/deep.txt", b"deep")).status == 200

    r = api("GET", M + "artifacts/list", params={"run_id": run_id})
    assert r.json["root_uri"] == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts"
    files = {f["path"]: f for f in r.json["files"]}
    assert files["hello.txt"] == {"path": "hello.txt", "is_dir": False, "file_size": 6}
    assert files["sub"]["is_dir"] is True and "file_size" not in files["sub"]
    r = api("GET", M + "artifacts/list", params={"run_id": run_id, "path": "sub"})
    assert r.json["files"] == [{"path": "sub/deep.txt", "is_dir": False, "file_size": 4}]

    r = api(
        "POST", M + "logged-models/search", {"experiment_ids": [exp_id], "filter": "name = 'sub'"}
    )
    assert r.status == 200 and r.json == {}
    r = api("GET", "api/3.0/mlflow/server-info")
    assert r.json["multipart_uploads_enabled"] is False


def test_artifact_proxy(api):
    exp_id, run_id = make_run(api, "proxy")
    base = f"api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts"
    payload = bytes(range(256)) * 5000  # 1.28 MB, binary
    r = api(
        "PUT",
        base + "/model/weights.bin",
        payload,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status == 200 and r.json == {}
    r = api("GET", base + "/model/weights.bin")
    assert r.status == 200 and r.body == payload
    assert "attachment" in r.headers["Content-Disposition"]
    assert r.headers["Content-Length"] == str(len(payload))

    # listing: paths relative to the listed directory
    r = api(
        "GET", "api/2.0/mlflow-artifacts/artifacts", params={"path": f"{exp_id}/{run_id}/artifacts"}
    )
    assert r.json == {"files": [{"path": "model", "is_dir": True}]}
    r = api(
        "GET",
        "api/2.0/mlflow-artifacts/artifacts",
        params={"path": f"{exp_id}/{run_id}/artifacts/model"},
    )
    assert r.json == {
        "files": [{"path": "weights.bin", "is_dir": False, "file_size": len(payload)}]
    }
    # a file or a missing path lists as {}
    r = api(
        "GET",
        "api/2.0/mlflow-artifacts/artifacts",
        params={"path": f"{exp_id}/{run_id}/artifacts/model/weights.bin"},
    )
    assert r.status == 200 and r.json == {}

    # HTML is served as text so it cannot script the Jupyter origin
    api("PUT", base + "/page.html", b"<script>alert(1)</script>")
    r = api("GET", base + "/page.html")
    assert r.headers["Content-Type"].startswith("text/plain")

    assert (api("DELETE", base + "/model/weights.bin")).json == {}
    assert_error(api("GET", base + "/model/weights.bin"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api("GET", base + "/nothing-here"), 404, "RESOURCE_DOES_NOT_EXIST")


# -- v1 ----------------------------------------------------------------------
def test_v1_create_with_id_bulk_series_heartbeat(api):
    exp_id, _ = make_run(api, "v1")
    run_id = "ab" * 16
    r = api(
        "POST",
        "api/v1/runs/create",
        {"experiment_id": exp_id, "run_id": run_id, "run_name": "spooled"},
    )
    assert r.status == 200 and r.json["run"]["info"]["run_id"] == run_id
    assert_error(
        api("POST", "api/v1/runs/create", {"experiment_id": exp_id, "run_id": "../../etc"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )

    n = 5000
    r = api(
        "POST",
        "api/v1/runs/log-bulk",
        {
            "run_id": run_id,
            "metrics": [
                {
                    "key": "loss",
                    "steps": list(range(n)),
                    "timestamps": [1_700_000_000_000 + i for i in range(n)],
                    "values": [float(i % 100) for i in range(n)],
                }
            ],
            "params": [{"key": "p", "value": "1"}],
            "tags": [{"key": "t", "value": "x"}],
        },
    )
    assert r.status == 200 and r.json == {}
    r = api("GET", M + "metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
    assert len(r.json["metrics"]) == n

    r = api(
        "GET",
        "api/v1/metrics/series",
        params={"run_id": run_id, "metric_key": "loss", "max_points": "100"},
    )
    points = r.json["points"]
    assert 0 < len(points) <= 100
    assert min(p["min"] for p in points) == 0.0 and max(p["max"] for p in points) == 99.0
    assert sum(p["count"] for p in points) == n
    assert_error(
        api(
            "GET",
            "api/v1/metrics/series",
            params={"run_id": run_id, "metric_key": "loss", "x_axis": "wall"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )

    assert_error(
        api(
            "POST",
            "api/v1/runs/log-bulk",
            {
                "run_id": run_id,
                "metrics": [{"key": "x", "steps": [1, 2], "timestamps": [1], "values": [1.0, 2.0]}],
            },
        ),
        400,
        "INVALID_PARAMETER_VALUE",
        "same length",
    )

    r = api("POST", "api/v1/runs/heartbeat", {"run_ids": [run_id]})
    assert r.status == 200 and r.json == {}


def test_unknown_route_and_wrong_method_answer_json(api):
    assert_error(api("GET", "api/2.0/mlflow/nope"), 404, "ENDPOINT_NOT_FOUND")
    r = api("GET", M + "runs/create")
    assert r.status == 405 and r.json["error_code"]
    r = api("GET", "health")
    assert r.status == 200 and r.json == {"status": "OK"}


def test_mlflow_run_links_open_jupyterlab(api, jp_base_url):
    for path in ("", "/"):
        r = api("GET", f"{jp_base_url}mlops{path}", raw_path=True)
        assert r.status == 302 and r.headers["Location"] == f"{jp_base_url}lab"
