"""MLflow's GraphQL endpoint (``jupyter_mlops/server/handlers/mlflow_graphql.py``) against
the in-process Jupyter server and a real SQLite store: MLflow's schema and answers."""

from __future__ import annotations

import time

import pytest

M = "api/2.0/mlflow/"


def gql(api, query: str, variables: dict | None = None, path: str = "graphql") -> dict:
    body: dict = {"query": query}
    if variables is not None:
        body["variables"] = variables
    r = api("POST", path, body)
    assert r.status == 200, r.body
    return r.json


@pytest.fixture
def run(api):
    """An experiment with one run: a metric (3 points, one NaN), two artifacts, a version."""
    exp = api("POST", M + "experiments/create", {"name": "gql"}).json["experiment_id"]
    r = api(
        "POST",
        M + "runs/create",
        {"experiment_id": exp, "run_name": "r1", "start_time": int(time.time() * 1000)},
    )
    run_id = r.json["run"]["info"]["run_id"]
    for step, value in enumerate([0.5, 0.25, 0.125]):
        body = {"run_id": run_id, "key": "loss", "value": value, "timestamp": 10 + step}
        assert api("POST", M + "runs/log-metric", {**body, "step": step}).status == 200
    body = {"run_id": run_id, "key": "odd", "value": "NaN", "timestamp": 5, "step": 7}
    assert api("POST", M + "runs/log-metric", body).status == 200
    for path in ("a.txt", "sub/b.txt"):
        params = {"run_uuid": run_id, "path": path}
        r = api("POST", "ajax-api/2.0/mlflow/upload-artifact", b"hello", params=params)
        assert r.status == 200, r.body
    assert api("POST", M + "registered-models/create", {"name": "gqlmodel"}).status == 200
    body = {"name": "gqlmodel", "source": f"runs:/{run_id}/model", "run_id": run_id}
    assert api("POST", M + "model-versions/create", body).status == 200
    return exp, run_id


def test_get_run_answers_mlflows_shapes(api, run):
    exp, run_id = run
    out = gql(
        api,
        """query q($id: String) @component(name: "Test") {
          mlflowGetRun(input: {runId: $id}) {
            run {
              info { runId status startTime endTime }
              data { metrics { key value step timestamp } }
              experiment { experimentId name }
              modelVersions { name version source }
            }
            apiError { code }
          }
        }""",
        {"id": run_id},
    )
    assert out["errors"] is None
    got = out["data"]["mlflowGetRun"]
    assert got["apiError"] is None
    info = got["run"]["info"]
    assert info["runId"] == run_id and info["status"] == "RUNNING"
    # int64 as strings (MLflow's LongString); an unset end_time is the protobuf default
    assert isinstance(info["startTime"], str) and int(info["startTime"]) > 0
    assert info["endTime"] == "0"
    metrics = {m["key"]: m for m in got["run"]["data"]["metrics"]}
    assert metrics["loss"] == {"key": "loss", "value": 0.125, "step": "2", "timestamp": "12"}
    assert metrics["odd"]["value"] is None  # NaN: null, as MLflow answers
    assert got["run"]["experiment"] == {"experimentId": exp, "name": "gql"}
    assert got["run"]["modelVersions"] == [
        {"name": "gqlmodel", "version": "1", "source": f"runs:/{run_id}/model"}
    ]


def test_search_runs_history_artifacts_datasets(api, run):
    exp, run_id = run
    out = gql(
        api,
        f"""mutation {{
          mlflowSearchRuns(input: {{experimentIds: ["{exp}"], runViewType: ACTIVE_ONLY}}) {{
            runs {{ info {{ runId runName }} }}
          }}
        }}""",
    )
    assert out["data"]["mlflowSearchRuns"]["runs"] == [{"info": {"runId": run_id, "runName": "r1"}}]

    out = gql(
        api,
        f"""{{ h: mlflowGetMetricHistoryBulkInterval(
              input: {{runIds: ["{run_id}"], metricKey: "loss", maxResults: 2}}) {{
            metrics {{ step value runId }} }} }}""",
    )
    # evenly sampled, first and last kept
    assert out["data"]["h"]["metrics"] == [
        {"step": "0", "value": 0.5, "runId": run_id},
        {"step": "2", "value": 0.125, "runId": run_id},
    ]

    query = """query files($id: String, $p: String) {
      mlflowListArtifacts(input: {runId: $id, path: $p}) { files { path isDir fileSize } }
    }"""
    files = gql(api, query, {"id": run_id})["data"]["mlflowListArtifacts"]["files"]
    assert files == [
        {"path": "a.txt", "isDir": False, "fileSize": "5"},
        {"path": "sub", "isDir": True, "fileSize": "0"},
    ]
    files = gql(api, query, {"id": run_id, "p": "sub"})["data"]["mlflowListArtifacts"]["files"]
    assert files == [{"path": "sub/b.txt", "isDir": False, "fileSize": "5"}]

    body = {
        "run_id": run_id,
        "datasets": [
            {
                "dataset": {"name": "train", "digest": "d1", "source_type": "code", "source": "{}"},
                "tags": [{"key": "mlflow.data.context", "value": "training"}],
            }
        ],
    }
    assert api("POST", M + "runs/log-inputs", body).status == 200
    out = gql(
        api,
        f"""mutation {{ mlflowSearchDatasets(input: {{experimentIds: ["{exp}"]}}) {{
            datasetSummaries {{ experimentId name digest context }} }} }}""",
        path="ajax-api/graphql",
    )
    assert out["data"]["mlflowSearchDatasets"]["datasetSummaries"] == [
        {"experimentId": exp, "name": "train", "digest": "d1", "context": "training"}
    ]

    out = gql(
        api,
        """{ mlflowSearchModelVersions(input: {filter: "name='gqlmodel'", maxResults: 5}) {
            modelVersions { name version runId status } } }""",
    )
    assert out["data"]["mlflowSearchModelVersions"]["modelVersions"] == [
        {"name": "gqlmodel", "version": "1", "runId": run_id, "status": "READY"}
    ]


def test_errors_are_mlflows_messages(api):
    # A call that fails: its field is null, the message is the REST API's.
    out = gql(
        api, '{ mlflowGetExperiment(input: {experimentId: "98765"}) { experiment { name } } }'
    )
    assert out["data"] == {"mlflowGetExperiment": None}
    assert len(out["errors"]) == 1 and "98765" in out["errors"][0]
    # A query the schema refuses: no data, the validation message.
    out = gql(api, '{ mlflowGetRun(input: {runId: "x"}) { nope } }')
    assert out["data"] is None and "nope" in out["errors"][0]
    # The echo field MLflow's server has for its clients' checks.
    out = gql(api, 'query t { test(inputString: "abc") { output } }')
    assert out == {"data": {"test": {"output": "abc"}}, "errors": None}


def test_query_shape_limits(api):
    roots = " ".join(f'k{i}: test(inputString: "a") {{ output }}' for i in range(11))
    out = gql(api, "{ " + roots + " }")
    assert out["data"] is None
    assert out["errors"][0].startswith("GraphQL queries should have at most 10 root fields")
    aliases = " ".join(f"e{i}: experiment {{ name }}" for i in range(11))
    out = gql(api, '{ mlflowGetExperiment(input: {experimentId: "0"}) { ' + aliases + " } }")
    assert "should have at most 10 aliases, got 11 aliases" in out["errors"][0]
    inner = "name"
    for _ in range(12):
        inner = f"name {{ {inner} }}"
    out = gql(api, "{ mlflowGetExperiment { experiment { " + inner + " } } }")
    assert out["errors"] == ["Query exceeds maximum depth of 10"]
    wide = " ".join(f"f{i} {{ name }}" for i in range(1001))
    out = gql(api, "{ mlflowGetExperiment { experiment { " + wide + " } } }")
    assert out["errors"] == ["Query exceeds maximum total selections of 1000"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": 3},
        {"query": "{ test(inputString: "},
        {"query": "{ test { output } }", "variables": [1]},
        {"query": "{ test { output } }", "operationName": 5},
    ],
)
def test_bad_requests_get_mlflows_error_json(api, body):
    r = api("POST", "graphql", body)
    assert r.status == 400, r.body
    assert r.json["error_code"] == "INVALID_PARAMETER_VALUE" and r.json["message"]


def test_get_with_query_string(api):
    params = {"query": "query q($s: String) { test(inputString: $s) { output } }"}
    r = api("GET", "graphql", params={**params, "variables": '{"s": "x"}'})
    assert r.status == 200, r.body
    assert r.json["data"] == {"test": {"output": "x"}}
