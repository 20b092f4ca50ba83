"""Bad input answers 4xx with MLflow's error JSON (never 5xx, which the MLflow
client would retry for minutes), writes nothing, and no path escapes the root."""

from __future__ import annotations

import json
import math
import os
import time
import urllib.parse
from pathlib import Path

import pytest

M = "api/2.0/mlflow/"
ART = "api/2.0/mlflow-artifacts/artifacts"


def now() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def run(api) -> tuple[str, str]:
    exp_id = api("POST", M + "experiments/create", {"name": "bad-input"}).json["experiment_id"]
    r = api("POST", M + "runs/create", {"experiment_id": exp_id, "start_time": now()})
    return exp_id, r.json["run"]["info"]["run_id"]


def assert_client_error(r, status: int = 400, code: str = "INVALID_PARAMETER_VALUE") -> dict:
    assert r.status == status, (r.status, r.body[:500])
    body = json.loads(r.body)
    assert set(body) >= {"error_code", "message"} and body["error_code"] == code, body
    return body


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"run_id": ',
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'"just a string"',
        b"null",
        b"42",
    ],
)
def test_malformed_json_is_400(api, run, body):
    for path in (
        "runs/log-metric",
        "runs/log-batch",
        "runs/create",
        "runs/search",
        "experiments/create",
    ):
        assert_client_error(api("POST", M + path, body))
    assert_client_error(api("POST", "api/v1/runs/log-bulk", body))


@pytest.mark.parametrize(
    "field,value",
    [
        ("value", "abc"),
        ("value", [1]),
        ("value", {"x": 1}),
        ("value", True),
        ("timestamp", "yesterday"),
        ("timestamp", 1.5),
        ("timestamp", 2**70),
        ("step", "one"),
        ("key", 5),
        ("key", None),
    ],
)
def test_wrong_types_in_log_metric(api, run, field, value):
    _, run_id = run
    body = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": now(), "step": 0}
    body[field] = value
    msg = assert_client_error(api("POST", M + "runs/log-metric", body))["message"]
    assert f"'{field}'" in msg
    r = api("GET", M + "metrics/get-history", params={"run_id": run_id, "metric_key": "m"})
    assert r.json.get("metrics", []) == []  # nothing was written


def test_wrong_types_elsewhere(api, run):
    exp_id, run_id = run
    cases = [
        (M + "experiments/create", {"name": ["a"]}),
        (M + "experiments/create", {"name": "x", "tags": "not-a-list"}),
        (M + "experiments/create", {"name": "x", "tags": [{"value": "no key"}]}),
        (M + "runs/create", {"experiment_id": exp_id, "start_time": "soon"}),
        (M + "runs/create", {"experiment_id": {"id": 1}}),
        (M + "runs/search", {"experiment_ids": exp_id}),
        (M + "runs/search", {"experiment_ids": [exp_id], "max_results": "many"}),
        (M + "runs/search", {"experiment_ids": [exp_id], "order_by": "metrics.m"}),
        (M + "runs/search", {"experiment_ids": [exp_id], "run_view_type": "SOME"}),
        (M + "runs/log-parameter", {"run_id": run_id, "key": "p", "value": 3}),
        (M + "runs/log-batch", {"run_id": run_id, "metrics": {"key": "m"}}),
        (M + "runs/log-batch", {"run_id": run_id, "metrics": ["m"]}),
        (M + "runs/log-batch", {"run_id": run_id, "params": [{"key": "p", "value": {}}]}),
        (M + "runs/update", {"run_id": run_id, "end_time": "later"}),
        (
            "api/v1/runs/log-bulk",
            {"run_id": run_id, "metrics": [{"key": "m", "values": "1,2", "timestamps": [1]}]},
        ),
        (
            "api/v1/runs/log-bulk",
            {"run_id": run_id, "metrics": [{"key": "m", "values": [1], "timestamps": ["t"]}]},
        ),
        ("api/v1/runs/heartbeat", {"run_ids": "abc"}),
    ]
    for path, body in cases:
        assert_client_error(api("POST", path, body))
    assert_client_error(
        api(
            "GET",
            M + "metrics/get-history",
            params={"run_id": run_id, "metric_key": "m", "max_results": "x"},
        )
    )
    assert_client_error(
        api(
            "GET",
            "api/v1/metrics/series",
            params={"run_id": run_id, "metric_key": "m", "max_points": "-1"},
        )
    )
    run = api("GET", M + "runs/get", params={"run_id": run_id}).json["run"]
    assert "params" not in run["data"] and "metrics" not in run["data"]


def test_unknown_run_or_experiment_is_404(api):
    missing = "0" * 32
    t = now()
    for path, body in [
        ("runs/log-metric", {"run_id": missing, "key": "m", "value": 1, "timestamp": t}),
        ("runs/log-parameter", {"run_id": missing, "key": "p", "value": "1"}),
        ("runs/set-tag", {"run_id": missing, "key": "t", "value": "1"}),
        ("runs/log-batch", {"run_id": missing, "params": [{"key": "p", "value": "1"}]}),
        ("runs/update", {"run_id": missing, "status": "FINISHED"}),
        ("runs/delete", {"run_id": missing}),
        ("experiments/delete", {"experiment_id": "987654"}),
        ("experiments/update", {"experiment_id": "987654", "new_name": "n"}),
    ]:
        assert_client_error(api("POST", M + path, body), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_client_error(
        api("GET", M + "artifacts/list", params={"run_id": missing}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_client_error(
        api(
            "POST",
            "api/v1/runs/log-bulk",
            {"run_id": missing, "metrics": [{"key": "m", "values": [1.0], "timestamps": [t]}]},
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_oversized_bodies(api, jp_serverapp, run):
    _, run_id = run
    t = now()
    # log-batch: more than MLflow's 1 MB (the store would take it; the REST API does not)
    metrics = [{"key": "k" * 200, "value": 1.0, "timestamp": t, "step": i} for i in range(1000)]
    body = json.dumps({"run_id": run_id, "metrics": metrics * 4})
    assert len(body) > 1_000_000
    assert_client_error(api("POST", M + "runs/log-batch", body))
    # any JSON body above MLOpsApp.max_request_body
    app = jp_serverapp.extension_manager.extension_apps["jupyter_mlops"]
    app_obj = next(iter(app))
    limit = app_obj.max_request_body
    app_obj.max_request_body = 10_000
    try:
        r = api(
            "POST",
            "api/v1/runs/log-bulk",
            json.dumps({"run_id": run_id, "params": [{"key": "p", "value": "x" * 20_000}]}),
        )
        assert "max_request_body" in assert_client_error(r)["message"]
    finally:
        app_obj.max_request_body = limit
    run = api("GET", M + "runs/get", params={"run_id": run_id}).json["run"]
    assert "params" not in run["data"] and "metrics" not in run["data"]


def test_nan_and_infinity_round_trip_as_valid_json(api, run):
    _, run_id = run
    t = now()
    for step, value in enumerate(["NaN", "Infinity", "-Infinity", 1.5]):
        r = api(
            "POST",
            M + "runs/log-metric",
            {"run_id": run_id, "key": "m", "value": value, "timestamp": t, "step": step},
        )
        assert r.status == 200, r.body
    # a bare NaN token (Python's json.dumps writes one) is read too
    r = api(
        "POST",
        M + "runs/log-metric",
        f'{{"run_id": "{run_id}", "key": "n", "value": NaN, "timestamp": {t}}}',
    )
    assert r.status == 200, r.body
    r = api("GET", M + "metrics/get-history", params={"run_id": run_id, "metric_key": "m"})
    text = r.body.decode()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the response"))
    values = [m["value"] for m in json.loads(text)["metrics"]]
    assert values[:3] == ["NaN", "Infinity", "-Infinity"] and values[3] == 1.5
    r = api("GET", M + "runs/get", params={"run_id": run_id})
    latest = {m["key"]: m["value"] for m in json.loads(r.body)["run"]["data"]["metrics"]}
    assert latest["n"] == "NaN"
    r = api("GET", "api/v1/metrics/series", params={"run_id": run_id, "metric_key": "m"})
    json.loads(r.body, parse_constant=lambda c: pytest.fail(f"bare {c} in the series"))
    assert not any(
        isinstance(p["value"], float) and math.isnan(p["value"]) for p in r.json["points"]
    )


TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e/%2e%2e/secret.txt",
    "1/%2e%2e/%2e%2e/%2e%2e/escape.txt",
    "1/..%2f..%2f..%2fescape.txt",
    "%2fetc%2fpasswd",
    "1/run/artifacts/..\\..\\..\\escape.txt",
    "1/..%5c..%5cescape.txt",
    "%2e%2e",
]


@pytest.mark.parametrize("traversal", TRAVERSALS)
def test_artifact_path_traversal_is_refused(api, jp_serverapp, tmp_path, traversal):
    base = jp_serverapp.base_url + "mlops/" + ART + "/"
    before = set(tmp_path.rglob("*"))
    for method, body in (("PUT", b"owned"), ("GET", None), ("DELETE", None)):
        r = api(method, base + traversal, body=body, raw_path=True)
        assert 400 <= r.status < 500, (method, traversal, r.status)
        assert json.loads(r.body)["error_code"]
    r = api("GET", ART, params={"path": urllib.parse.unquote(traversal)})
    assert 400 <= r.status < 500 and json.loads(r.body)["error_code"]
    after = set(tmp_path.rglob("*"))
    new = [p for p in after - before if "owned" in _read(p)]
    assert new == [], f"{traversal} wrote {new}"
    assert not Path("/etc/escape.txt").exists()
    assert not (tmp_path.parent / "escape.txt").exists()


def test_run_artifact_list_path_traversal(api, run):
    _, run_id = run
    for path in ("../..", "../../../etc", "/etc", "sub/../../x"):
        assert_client_error(
            api("GET", M + "artifacts/list", params={"run_id": run_id, "path": path})
        )


def test_artifacts_land_under_the_root(api, run, tmp_path):
    exp_id, run_id = run
    r = api("PUT", f"{ART}/{exp_id}/{run_id}/artifacts/./a//b/c.txt", b"ok")
    assert r.status == 200
    root = tmp_path / "artifacts"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert [p.relative_to(root).as_posix() for p in files] == [
        f"{exp_id}/{run_id}/artifacts/a/b/c.txt"
    ]


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace") if p.is_file() and os.path.getsize(p) < 100 else ""
    except OSError:
        return ""


def test_a_server_fault_is_internal_error_json_with_the_traceback_logged(
    api, run, mlops_db_url, jp_serverapp
):
    """Not a client mistake: the database lost a table behind the server's back."""
    import io
    import logging
    import sqlite3

    app = next(iter(jp_serverapp.extension_manager.extension_apps["jupyter_mlops"]))
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    app.log.addHandler(handler)

    _, run_id = run
    db = sqlite3.connect(mlops_db_url[len("sqlite:///") :])
    db.execute("DROP TABLE params")
    db.commit()
    db.close()
    try:
        r = api("POST", M + "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"})
    finally:
        app.log.removeHandler(handler)
    assert r.status == 500
    assert json.loads(r.body)["error_code"] == "INTERNAL_ERROR"
    assert "params" not in json.loads(r.body)["message"]  # no SQL details to the client
    assert "Traceback" in logged.getvalue() and "runs/log-parameter" in logged.getvalue()


def test_artifact_path_conflicts_are_client_errors(api, run):
    exp_id, run_id = run
    base = f"{ART}/{exp_id}/{run_id}/artifacts"
    assert api("PUT", f"{base}/sub/f.txt", b"x").status == 200
    assert_client_error(api("PUT", f"{base}/sub", b"y"))  # a directory
    assert_client_error(api("PUT", f"{base}/sub/f.txt/g.txt", b"y"))  # under a file
    assert api("GET", f"{base}/sub/f.txt").body == b"x"
    assert_client_error(api("GET", f"{base}/sub"), 404, "RESOURCE_DOES_NOT_EXIST")
