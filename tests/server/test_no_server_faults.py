"""Odd values in every field of every JSON route never make the server fail:
the answer is a 2xx or a 4xx with MLflow's error JSON, never a 5xx (which the
MLflow client would retry for minutes)."""

from __future__ import annotations

import itertools
import json

import pytest

M = "api/2.0/mlflow/"
ODD = [
    None,
    "",
    "x",
    0,
    -1,
    2**63,
    -(2**63) - 1,
    2**64,
    1.5,
    True,
    [],
    {},
    ["a"],
    [2**63],
    [{"key": "k"}],
    [{"key": 5, "value": []}],
    "NaN",
    "a" * 300,
    "../x",
    "\u0000",
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def mlops_db_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_db_url")
    return f"sqlite:///{tmp_path / 'mlops.db'}"


@pytest.fixture
def jp_server_config(jp_server_config: dict) -> dict:
    # MLflow's trace page waits for each trace id it does not find (5 s by default: MLflow
    # exports traces from a queue); the odd ids here are never stored, so no wait is needed.
    jp_server_config["MLOpsApp"]["trace_page_wait"] = 0.01
    return jp_server_config


def _fields(verb: str, op: dict) -> list[str]:
    if verb == "post":
        if "requestBody" not in op:  # a POST that takes no body (a test delivery, an action)
            return []
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        # OTLP's ExportTraceServiceRequest (v1/traces) has no flat fields: its malformed
        # payloads are tested in tests/server/test_tracing_e2e.py
        return list(schema.get("properties", {}))
    return [p["name"] for p in op.get("parameters", [])]


def test_odd_values_in_any_field_never_give_a_5xx(api):
    doc = api("GET", "api/v1/openapi.json").json
    exp = api("POST", M + "experiments/create", {"name": "odd"}).json["experiment_id"]
    run = api("POST", M + "runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
    counter = itertools.count()
    valid = {
        "run_id": run,
        "experiment_id": exp,
        "key": "k",
        "value": "1",
        "timestamp": 1,
        "metric_key": "k",
    }
    faults, calls = [], 0
    for path, item in doc["paths"].items():
        if "{" in path or path == "/":  # raw-body and redirect routes: tested elsewhere
            continue
        if path.startswith("/ajax-api/") and "/api/" + path[len("/ajax-api/") :] in doc["paths"]:
            continue  # the same handler as its api/2.0 or api/3.0 route
        for verb in ("get", "post"):
            if verb not in item:
                continue
            if verb == "post" and "application/json" not in item[verb].get("requestBody", {}).get(
                "content", {"application/json": None}
            ):
                continue  # a raw body (upload-artifact): tested elsewhere
            fields = _fields(verb, item[verb])
            for field, value in itertools.product(fields, ODD):
                body = {k: v for k, v in valid.items() if k in fields}
                # names must be fresh, or the call fails for the wrong reason
                body.update({k: f"n{next(counter)}" for k in ("name", "new_name") if k in fields})
                body[field] = value
                if verb == "post":
                    r = api("POST", path.lstrip("/"), json.dumps(body))
                else:
                    r = api(
                        "GET",
                        path.lstrip("/"),
                        params=[
                            (k, v if isinstance(v, str) else json.dumps(v))
                            for k, v in body.items()
                            if v is not None
                        ],
                    )
                calls += 1
                if r.status >= 500 or (r.status >= 400 and "error_code" not in r.json):
                    faults.append((verb, path, field, value, r.status, r.body[:200]))
    assert calls > 500
    assert faults == [], "\n".join(map(repr, faults))
