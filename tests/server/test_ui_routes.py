"""REST routes of the JupyterLab panels (``jupyter_mlops/server/handlers/ui.py``)
against the in-process Jupyter server and a real SQLite store."""

from __future__ import annotations

import time

M = "api/2.0/mlflow/"
BULK = "api/v1/metrics/series-bulk"


def _run(api, exp_id: str, name: str, n: int) -> str:
    r = api(
        "POST",
        M + "runs/create",
        {"experiment_id": exp_id, "run_name": name, "start_time": int(time.time() * 1000)},
    )
    assert r.status == 200, r.body
    run_id = r.json["run"]["info"]["run_id"]
    if n:
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
                        "values": [float(i % 50) for i in range(n)],
                    }
                ],
            },
        )
        assert r.status == 200, r.body
    return run_id


def _error(r, status: int, code: str) -> dict:
    assert r.status == status, (r.status, r.body)
    assert r.json["error_code"] == code
    assert r.json["message"]
    return r.json


def test_series_bulk_gives_each_runs_downsampled_series(api):
    exp_id = api("POST", M + "experiments/create", {"name": "bulk"}).json["experiment_id"]
    a = _run(api, exp_id, "a", 3000)
    b = _run(api, exp_id, "b", 10)
    c = _run(api, exp_id, "no-metric", 0)

    r = api(
        "GET",
        BULK,
        params=[
            ("run_ids", a),
            ("run_ids", b),
            ("run_ids", c),
            ("run_ids", a),
            ("metric_key", "loss"),
            ("max_points", "100"),
        ],
    )
    assert r.status == 200, r.body
    series = r.json["series"]
    # In the order asked, duplicates once; a run without the metric has no points.
    assert [s["run_id"] for s in series] == [a, b, c]
    pa, pb, pc = (s["points"] for s in series)
    assert 0 < len(pa) <= 100 and sum(p["count"] for p in pa) == 3000
    assert min(p["min"] for p in pa) == 0.0 and max(p["max"] for p in pa) == 49.0
    assert [p["step"] for p in pb] == list(range(10))
    assert pc == []
    # The same as the single-run route.
    one = api(
        "GET",
        "api/v1/metrics/series",
        params={"run_id": a, "metric_key": "loss", "max_points": "100"},
    ).json["points"]
    assert one == pa

    by_time = api(
        "GET", BULK, params={"run_ids": b, "metric_key": "loss", "x_axis": "timestamp"}
    ).json["series"][0]["points"]
    assert [p["timestamp"] for p in by_time] == [1_700_000_000_000 + i for i in range(10)]


def test_series_bulk_bad_input_is_a_clear_4xx(api):
    exp_id = api("POST", M + "experiments/create", {"name": "bulk-bad"}).json["experiment_id"]
    a = _run(api, exp_id, "a", 5)
    _error(api("GET", BULK, params={"metric_key": "loss"}), 400, "INVALID_PARAMETER_VALUE")
    _error(api("GET", BULK, params={"run_ids": a}), 400, "INVALID_PARAMETER_VALUE")
    _error(
        api("GET", BULK, params={"run_ids": a, "metric_key": "loss", "x_axis": "wall"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    _error(
        api("GET", BULK, params={"run_ids": a, "metric_key": "loss", "max_points": "0"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    too_many = [("run_ids", f"{i:032x}") for i in range(201)] + [("metric_key", "loss")]
    body = _error(api("GET", BULK, params=too_many), 400, "INVALID_PARAMETER_VALUE")
    assert "200" in body["message"]
    _error(
        api("GET", BULK, params={"run_ids": "f" * 32, "metric_key": "loss"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert api("GET", BULK, params={"run_ids": a, "metric_key": "loss"}, auth=False).status == 403


def test_series_bulk_is_in_the_openapi_document(api):
    doc = api("GET", "api/v1/openapi.json").json
    op = doc["paths"]["/api/v1/metrics/series-bulk"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"run_ids", "metric_key", "max_points"}
