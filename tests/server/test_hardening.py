"""Issue 11's findings, each with its family: inputs that used to fail deep inside the
server (500s, connection resets) answer 4xx with MLflow's error JSON naming the field,
with short messages. One in-process server for the module."""

from __future__ import annotations

import json
import time

import pytest

M = "api/2.0/mlflow/"
ART = "api/2.0/mlflow-artifacts/artifacts"


def now() -> int:
    return int(time.time() * 1000)


def client_error(r, status: int = 400, code: str = "INVALID_PARAMETER_VALUE") -> str:
    assert r.status == status, (r.status, r.body[:300])
    body = json.loads(r.body)
    assert body["error_code"] == code, body
    assert len(r.body) < 2000, "messages stay short"
    return body["message"]


@pytest.fixture
def run(api) -> tuple[str, str]:
    name = f"hard-{time.monotonic_ns()}"
    exp_id = api("POST", M + "experiments/create", {"name": name}).json["experiment_id"]
    r = api("POST", M + "runs/create", {"experiment_id": exp_id, "start_time": now()})
    return exp_id, r.json["run"]["info"]["run_id"]


def json_post_routes(api) -> list[str]:
    doc = api("GET", "api/v1/openapi.json").json
    out = []
    for path, item in doc["paths"].items():
        op = item.get("post")
        if op and "{" not in path and "application/json" in json.dumps(op.get("requestBody", {})):
            out.append(path.lstrip("/"))
    assert len(out) >= 25
    return out


# 1. nesting ----------------------------------------------------------------------------
def test_deeply_nested_json_is_a_400_on_every_json_route(api):
    deep = "x"
    for _ in range(70):  # past the 64 levels, well within the parser's recursion limit
        deep = [deep]  # type: ignore[assignment]
    bodies = [
        b"[" * 100_000,
        b'{"name":' + b"[" * 100_000,
        b'{"a":' * 5000,
        json.dumps({"name": "x", "tags": deep}).encode(),
    ]
    for path in json_post_routes(api):
        for body in bodies:
            r = api("POST", path, body)
            assert 400 <= r.status < 500, (path, r.status, r.body[:200])
            assert "error_code" in r.json


def test_nesting_message_names_the_limit(api, run):
    _, run_id = run
    deep = {"run_id": run_id, "key": "k", "value": 1.0, "timestamp": 1}
    inner: object = "x"
    for _ in range(70):
        inner = [inner]
    deep["extra"] = inner
    msg = client_error(api("POST", M + "runs/log-metric", deep))
    assert "64 levels" in msg


# 2. lone surrogates -------------------------------------------------------------------
@pytest.mark.parametrize(
    "path,body,field",
    [
        (M + "experiments/create", '{"name":"\\ud800"}', "name"),
        (M + "runs/set-tag", '{"run_id":"RUN","key":"\\udfff","value":"v"}', "key"),
        (M + "runs/set-tag", '{"run_id":"RUN","key":"k","value":"a\\ud800b"}', "value"),
        (
            M + "runs/log-batch",
            '{"run_id":"RUN","params":[{"key":"p","value":"\\uDBFF"}]}',
            "params[0].value",
        ),
        (M + "runs/create", '{"experiment_id":"EXP","run_name":"\\ud800"}', "run_name"),
        (
            M + "runs/search",
            '{"experiment_ids":["EXP"],"filter":"params.a = \'\\ud800\'"}',
            "filter",
        ),
        (M + "registered-models/create", '{"name":"m","description":"\\ud800"}', "description"),
        (
            "api/v1/runs/log-bulk",
            '{"run_id":"RUN","tags":[{"key":"\\ud800x","value":"v"}]}',
            "tags[0].key",
        ),
    ],
)
def test_lone_surrogates_are_a_400_naming_the_field(api, run, path, body, field):
    exp_id, run_id = run
    body = body.replace("RUN", run_id).replace("EXP", exp_id)
    r = api("POST", path, body.encode())
    msg = client_error(r)
    if field:
        assert f"'{field}'" in msg and "surrogate" in msg, msg


def test_surrogate_pairs_are_characters(api, run):
    _, run_id = run
    r = api(
        "POST",
        M + "runs/set-tag",
        b'{"run_id":"%s","key":"k","value":"\\ud83d\\ude00"}' % run_id.encode(),
    )
    assert r.status == 200, r.body
    got = api("GET", M + "runs/get", params={"run_id": run_id}).json
    assert {"key": "k", "value": "\U0001f600"} in got["run"]["data"]["tags"]


# 4. huge filters ----------------------------------------------------------------------
def test_huge_filters_are_refused_before_the_database(api, run):
    exp_id, _ = run
    many = " AND ".join(f"params.p{i} = 'x'" for i in range(2001))
    msg = client_error(api("POST", M + "runs/search", {"experiment_ids": [exp_id], "filter": many}))
    assert "200 comparisons" in msg and len(msg) < 300
    r = api("POST", M + "experiments/search", {"filter": " AND ".join(["name = 'a'"] * 2001)})
    client_error(r)
    ids = ",".join(f"'{i:032x}'" for i in range(10_001))
    client_error(
        api(
            "POST",
            M + "runs/search",
            {"experiment_ids": [exp_id], "filter": f"attributes.run_id IN ({ids})"},
        )
    )
    # at the limits, the database takes them
    ok = " AND ".join(f"params.p{i} != 'x'" for i in range(200))
    r = api("POST", M + "runs/search", {"experiment_ids": [exp_id], "filter": ok})
    assert r.status == 200, r.body[:300]
    ids = ",".join(f"'{i:032x}'" for i in range(10_000))
    r = api(
        "POST",
        M + "runs/search",
        {"experiment_ids": [exp_id], "filter": f"attributes.run_id IN ({ids})"},
    )
    assert r.status == 200, r.body[:300]


# 5. long names in artifact paths -------------------------------------------------------
def test_artifact_names_longer_than_the_file_system_allows(api, run):
    exp_id, run_id = run
    base = f"{ART}/{exp_id}/{run_id}/artifacts/"
    for name in ("f" * 300, "d" * 256 + "/f.txt", "é" * 128):
        msg = client_error(api("PUT", base + name, b"data"))
        assert "255 bytes" in msg
        assert client_error(api("GET", base + name), 400)
    r = api("PUT", base + "g" * 255, b"data")
    assert r.status == 200, r.body
    client_error(api("GET", ART, params={"path": f"{exp_id}/{'x' * 300}"}))


# 6. registry tag limits ---------------------------------------------------------------
def test_registry_tags_have_mlflows_limits(api):
    name = f"m-{time.monotonic_ns()}"
    big_key = "k" * (1 << 20)
    msg = client_error(
        api(
            "POST",
            M + "registered-models/create",
            {"name": name, "tags": [{"key": big_key, "value": "v"}]},
        )
    )
    assert "maximum length of 250" in msg and len(msg) < 400
    assert api("POST", M + "registered-models/create", {"name": name}).status == 200
    client_error(
        api("POST", M + "registered-models/set-tag", {"name": name, "key": "k" * 251, "value": "v"})
    )
    r = api("POST", M + "registered-models/set-tag", {"name": name, "key": "k" * 250, "value": "v"})
    assert r.status == 200, r.body
    client_error(
        api(
            "POST",
            M + "registered-models/set-tag",
            {"name": name, "key": "k", "value": "v" * 100_001},
        )
    )
    got = api("GET", M + "registered-models/get", params={"name": name}).json
    assert [t["key"] for t in got["registered_model"]["tags"]] == ["k" * 250]


# 7 (family). messages never echo a huge input ------------------------------------------
def test_errors_do_not_echo_huge_inputs(api, run):
    exp_id, run_id = run
    huge = "x" * 5_000_000
    for path, body in [
        (M + "runs/search", {"experiment_ids": [exp_id], "filter": huge}),
        (M + "runs/search", {"experiment_ids": [exp_id], "filter": f"params.a = '{huge}"}),
        (M + "experiments/get-by-name", {"experiment_name": huge}),
        (M + "runs/log-metric", {"run_id": run_id, "key": "k", "value": huge, "timestamp": 1}),
        (M + "runs/delete", {"run_id": huge}),
    ]:
        r = api(
            "POST" if "get-by-name" not in path else "GET",
            path,
            body if "get-by-name" not in path else None,
            params=None if "get-by-name" not in path else {"experiment_name": huge[:50_000]},
        )
        assert 400 <= r.status < 500, (path, r.status)
        assert len(r.body) < 2000, (path, len(r.body))


# 9. a deleted experiment's rename -----------------------------------------------------
def test_renaming_a_deleted_experiment_is_a_400(api, run):
    exp_id, _ = run
    assert api("POST", M + "experiments/delete", {"experiment_id": exp_id}).status == 200
    msg = client_error(
        api("POST", M + "experiments/update", {"experiment_id": exp_id, "new_name": f"n-{exp_id}"}),
        400,
        "INVALID_STATE",
    )
    assert "non-active" in msg


# 8 (admission). request bodies are refused before they are read -----------------------
def test_bodies_over_the_limit_are_refused_unread(api, run):
    _, run_id = run
    limit = 1_000_000  # runs/log-batch's own limit (MLflow's)
    body = json.dumps({"run_id": run_id, "tags": [{"key": "t", "value": "v" * limit}]})
    msg = client_error(api("POST", M + "runs/log-batch", body))
    assert str(limit) in msg
    got = api("GET", M + "runs/get", params={"run_id": run_id}).json
    assert "t" not in {t["key"] for t in got["run"]["data"].get("tags", [])}


# 13. verbs a route lacks --------------------------------------------------------------
def test_missing_verbs_ask_for_credentials_first(api, jp_base_url):
    for verb, path in [
        ("GET", "api/v1/pipelines/validate"),
        ("GET", "api/v1/runs/log-bulk"),
        ("DELETE", M + "runs/create"),
        ("PUT", M + "experiments/search"),
        ("POST", f"{ART}/1/x/artifacts/f.txt"),
        ("PATCH", "health"),
    ]:
        r = api(verb, path, b"{}" if verb != "GET" else None, auth=False)
        assert r.status in (401, 403), (verb, path, r.status)
        r = api(verb, path, b"{}" if verb != "GET" else None)
        assert r.status == 405, (verb, path, r.status)
        assert r.json["error_code"] == "BAD_REQUEST"


def test_a_busy_server_answers_503_and_recovers(api, run, jp_serverapp, jp_asyncio_loop):
    """While the server-wide body budget is taken, a write waits unread for
    ``inflight_wait`` seconds, then answers 503 (clients retry); room again, it is served."""
    _, run_id = run
    app = next(iter(jp_serverapp.extension_manager.extension_apps["jupyter_mlops"]))
    app.inflight_wait = 0.2
    budget = app.body_budget
    assert jp_asyncio_loop.run_until_complete(budget.acquire(budget.limit, 0))  # all of it
    body = {
        "run_id": run_id,
        "metrics": [{"key": "m", "steps": [1], "timestamps": [1], "values": [1.0]}],
    }
    try:
        r = api("POST", "api/v1/runs/log-bulk", body)
        assert r.status == 503, r.body
        assert r.json["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "MLOpsApp.max_inflight_bytes" in r.json["message"]
        assert r.headers.get("Retry-After")
        assert api("GET", M + "runs/get", params={"run_id": run_id}).status == 200  # reads
    finally:
        budget.release(budget.limit)
    assert api("POST", "api/v1/runs/log-bulk", body).status == 200
    assert budget.used == 0
