"""Registry REST endpoints in an in-process server: MLflow's shapes, and MLflow's
error JSON with a 4xx (never a 500) for bad input."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

M = "mlops/api/2.0/mlflow/"


@pytest.fixture
def call(jp_fetch, jp_asyncio_loop):
    """Synchronous calls, each running the server's own loop until answered."""

    async def do(method: str, path: str, body=None, params=None):
        kwargs = {"method": method, "params": params or {}, "allow_nonstandard_methods": True}
        if body is not None or method in ("POST", "PATCH", "DELETE"):
            kwargs["body"] = json.dumps(body or {})
        try:
            r = await jp_fetch(*(M + path).split("/"), **kwargs)
        except HTTPClientError as e:
            assert e.response is not None
            return e.code, json.loads(e.response.body)
        return r.code, json.loads(r.body or b"{}")

    return lambda *a, **k: jp_asyncio_loop.run_until_complete(do(*a, **k))


def _run(call) -> tuple[str, str]:
    _code, exp = call("POST", "experiments/create", {"name": "e"})
    _code, run = call(
        "POST",
        "runs/create",
        {
            "experiment_id": exp["experiment_id"],
            "tags": [
                {"key": "mlflow.source.name", "value": "train.ipynb"},
                {"key": "mlflow.source.git.commit", "value": "abc123"},
                {"key": "mlops.source.notebook_path", "value": "work/train.ipynb"},
            ],
        },
    )
    return exp["experiment_id"], run["run"]["info"]["run_id"]


def test_registered_model_and_versions_shapes(call):
    exp_id, run_id = _run(call)
    code, body = call(
        "POST",
        "registered-models/create",
        {"name": "clf", "description": "d", "tags": [{"key": "team", "value": "ml"}]},
    )
    assert code == 200
    rm = body["registered_model"]
    assert rm["name"] == "clf" and rm["description"] == "d"
    assert rm["tags"] == [{"key": "team", "value": "ml"}]
    assert isinstance(rm["creation_timestamp"], int)

    code, body = call("POST", "registered-models/create", {"name": "clf"})
    assert (code, body["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    assert body["message"] == "Registered Model (name=clf) already exists."

    code, body = call(
        "POST",
        "model-versions/create",
        {"name": "clf", "source": f"runs:/{run_id}/model", "run_id": run_id},
    )
    mv = body["model_version"]
    assert (mv["version"], mv["current_stage"], mv["status"]) == ("1", "None", "READY")
    assert mv["run_id"] == run_id
    # lineage tags copied from the run
    tags = {t["key"]: t["value"] for t in mv["tags"]}
    assert tags == {
        "mlflow.source.name": "train.ipynb",
        "mlflow.source.git.commit": "abc123",
        "mlops.source.notebook_path": "work/train.ipynb",
    }

    code, body = call(
        "GET", "model-versions/get-download-uri", params={"name": "clf", "version": "1"}
    )
    assert body["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts/model"

    assert (
        call(
            "POST", "registered-models/alias", {"name": "clf", "alias": "champion", "version": "1"}
        )
    ) == (200, {})
    code, body = call("GET", "registered-models/alias", params={"name": "clf", "alias": "champion"})
    assert body["model_version"]["aliases"] == ["champion"]
    code, body = call("GET", "registered-models/get", params={"name": "clf"})
    assert body["registered_model"]["aliases"] == [{"alias": "champion", "version": "1"}]
    assert [v["version"] for v in body["registered_model"]["latest_versions"]] == ["1"]

    code, body = call(
        "PATCH", "model-versions/update", {"name": "clf", "version": "1", "description": "first"}
    )
    assert body["model_version"]["description"] == "first"
    code, body = call("GET", "model-versions/search", params={"filter": "name='clf'"})
    assert [v["version"] for v in body["model_versions"]] == ["1"]
    code, body = call(
        "GET", "registered-models/search", params={"filter": "tags.team = 'ml'", "max_results": "1"}
    )
    assert [m["name"] for m in body["registered_models"]] == ["clf"]
    assert (call("DELETE", "registered-models/delete", {"name": "clf"})) == (200, {})
    code, body = call("GET", "registered-models/get", params={"name": "clf"})
    assert (code, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_lineage_route(jp_fetch, jp_asyncio_loop, call):
    _exp, run_id = _run(call)
    call("POST", "registered-models/create", {"name": "m"})
    call(
        "POST",
        "model-versions/create",
        {"name": "m", "source": f"runs:/{run_id}/model", "run_id": run_id},
    )
    r = jp_asyncio_loop.run_until_complete(
        jp_fetch("mlops", "api", "v1", "registry", "lineage", params={"name": "m", "version": "1"})
    )
    body = json.loads(r.body)
    assert body["run"]["run_id"] == run_id
    assert body["source"]["name"] == "train.ipynb"
    assert body["source"]["git_commit"] == "abc123"
    assert body["source"]["notebook"] == "work/train.ipynb"


@pytest.mark.parametrize(
    "method,path,body,params,code,error",
    [
        ("POST", "registered-models/create", {}, None, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "registered-models/create", {"name": 5}, None, 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "registered-models/get", None, {"name": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        (
            "GET",
            "model-versions/get",
            None,
            {"name": "x", "version": "abc"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            "model-versions/create",
            {"name": "nope", "source": "s3://b/k"},
            None,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "POST",
            "model-versions/transition-stage",
            {"name": "x", "version": "1", "stage": "Bogus", "archive_existing_versions": False},
            None,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "GET",
            "registered-models/search",
            None,
            {"filter": "name ~ 'x'"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "GET",
            "registered-models/search",
            None,
            {"page_token": "???"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "GET",
            "registered-models/search",
            None,
            {"max_results": "100000"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            "registered-models/alias",
            {"name": "x", "alias": "v1", "version": "1"},
            None,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("GET", "logged-models/m-123", None, None, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "logged-models", {"experiment_id": "999"}, None, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("PATCH", "logged-models/m-1", {"status": "WHAT"}, None, 400, "INVALID_PARAMETER_VALUE"),
        (
            "POST",
            "logged-models/search",
            {"filter": "name = "},
            None,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            "runs/outputs",
            {"run_id": "nope", "models": [{"model_id": "m-1"}]},
            None,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        ("GET", "registered-models/create", None, None, 405, "BAD_REQUEST"),
    ],
)
def test_bad_input_is_a_4xx_with_mlflow_error_json(call, method, path, body, params, code, error):
    got, answer = call(method, path, body, params)
    assert (got, answer["error_code"]) == (code, error), answer
    assert answer["message"]


def test_logged_models_lifecycle(call):
    exp_id, run_id = _run(call)
    code, body = call(
        "POST",
        "logged-models",
        {
            "experiment_id": exp_id,
            "name": "m",
            "source_run_id": run_id,
            "params": [{"key": "C", "value": "1.0"}],
            "tags": [{"key": "a", "value": "b"}],
        },
    )
    assert code == 200
    info = body["model"]["info"]
    mid = info["model_id"]
    assert mid.startswith("m-") and info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/models/{mid}/artifacts"
    assert body["model"]["data"]["params"] == [{"key": "C", "value": "1.0"}]
    code, body = call("PATCH", f"logged-models/{mid}", {"model_id": mid, "status": 2})
    assert body["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    assert (call("PATCH", f"logged-models/{mid}/tags", {"tags": [{"key": "x", "value": "y"}]}))[
        0
    ] == 200
    assert (call("DELETE", f"logged-models/{mid}/tags/a"))[0] == 200
    assert (
        call("POST", "runs/outputs", {"run_id": run_id, "models": [{"model_id": mid, "step": 0}]})
    ) == (200, {})
    code, body = call(
        "POST", "logged-models/search", {"experiment_ids": [exp_id], "filter": "name = 'm'"}
    )
    assert [m["info"]["model_id"] for m in body["models"]] == [mid]
    assert body["models"][0]["info"]["tags"] == [{"key": "x", "value": "y"}]
    code, body = call(
        "POST", "logged-models/search", {"experiment_ids": [exp_id], "filter": "name = 'other'"}
    )
    assert body == {}
    assert (call("DELETE", f"logged-models/{mid}"))[0] == 200
    assert (call("GET", f"logged-models/{mid}"))[0] == 404


def test_run_outputs_and_registering_a_runs_path_that_is_a_logged_model(call):
    """runs/get lists the run's logged models (run.outputs.model_outputs), and
    model-versions/create with runs:/<run>/<name> (the Models panel's register
    call) points at that logged model's files when the run has none there."""
    exp_id, run_id = _run(call)
    assert "outputs" not in call("GET", "runs/get", params={"run_id": run_id})[1]["run"]
    _code, body = call(
        "POST", "logged-models", {"experiment_id": exp_id, "name": "m", "source_run_id": run_id}
    )
    mid = body["model"]["info"]["model_id"]
    call("POST", "runs/outputs", {"run_id": run_id, "models": [{"model_id": mid, "step": 3}]})
    run = call("GET", "runs/get", params={"run_id": run_id})[1]["run"]
    assert run["outputs"] == {"model_outputs": [{"model_id": mid, "step": 3}]}
    call("POST", "registered-models/create", {"name": "r"})
    code, body = call(
        "POST",
        "model-versions/create",
        {"name": "r", "source": f"runs:/{run_id}/m", "run_id": run_id},
    )
    assert code == 200
    assert (body["model_version"]["source"], body["model_version"]["model_id"]) == (
        f"runs:/{run_id}/m",
        mid,
    )
    _code, body = call(
        "GET", "model-versions/get-download-uri", params={"name": "r", "version": "1"}
    )
    assert body["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/models/{mid}/artifacts"
    # a path that is neither run files nor a logged model stays the run's path
    _code, body = call(
        "POST", "model-versions/create", {"name": "r", "source": f"runs:/{run_id}/x"}
    )
    assert "model_id" not in body["model_version"]
    _code, body = call(
        "GET", "model-versions/get-download-uri", params={"name": "r", "version": "2"}
    )
    assert body["artifact_uri"].endswith(f"/{run_id}/artifacts/x")


def test_rest_registry_store_answers_as_the_sql_store(jupyter_server_process):
    """RestRegistryStore (what an http(s):// client uses) over a server's routes gives
    what SqlRegistryStore gives over the same database, for every logged-model call and
    the registry's: same dicts, same errors."""
    from jupyter_mlops.client.rest_store import RestTrackingStore
    from jupyter_mlops.registry.client import registry_backend
    from jupyter_mlops.registry.rest_store import RestRegistryStore
    from jupyter_mlops.registry.sqlstore import SqlRegistryStore
    from jupyter_mlops.tracking import TrackingError, open_store

    server = jupyter_server_process()
    rest_tracking = RestTrackingStore(server.tracking_uri, token=server.token)
    sql_tracking = open_store(server.db_url)
    try:
        rest = registry_backend(rest_tracking)
        sql = registry_backend(sql_tracking)
        assert isinstance(rest, RestRegistryStore) and isinstance(sql, SqlRegistryStore)
        exp = rest_tracking.create_experiment("rest-registry")
        run_id = rest_tracking.create_run(exp).info.run_id
        lm = rest.create_logged_model(exp, "m", run_id, params={"a": "1"}, tags={"t": "x"})
        mid = lm["info"]["model_id"]
        rest.set_logged_model_tags(mid, {"u": "y"})
        rest.delete_logged_model_tag(mid, "t")
        rest.log_logged_model_params(mid, {"b": "2"})
        rest.finalize_logged_model(mid, "LOGGED_MODEL_READY")
        rest.log_outputs(run_id, [(mid, 3)])
        got = rest.get_logged_model(mid)
        assert got == sql.get_logged_model(mid)
        assert got["info"]["tags"] == [{"key": "u", "value": "y"}]
        assert got["data"]["params"] == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
        assert rest.run_outputs(run_id) == sql.run_outputs(run_id) == [{"model_id": mid, "step": 3}]
        assert rest.search_logged_models([exp]) == sql.search_logged_models([exp])
        rest.create_registered_model("rr", tags={"team": "ml"}, description="d")
        v = rest.create_model_version("rr", f"models:/{mid}", run_id)
        assert v == sql.get_model_version("rr", "1")
        rest.set_registered_model_alias("rr", "champion", "1")
        assert rest.get_registered_model("rr") == sql.get_registered_model("rr")
        assert rest.lineage("rr", "1") == sql.lineage("rr", "1")
        rest.delete_logged_model(mid)
        for store in (rest, sql):
            with pytest.raises(TrackingError) as e:
                store.get_logged_model(mid)
            assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    finally:
        sql_tracking.close()
