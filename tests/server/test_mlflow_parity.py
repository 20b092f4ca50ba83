"""Behaviours of MLflow's server that its own REST tests check (docs/mlflow.md,
"Conformance"), against the in-process Jupyter server and a real SQLite store."""

from __future__ import annotations

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
