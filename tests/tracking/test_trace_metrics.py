"""MLflow 3's trace metrics over the trace index (``traces/metrics``): counts, latency
percentiles, token usage, span cost, assessment values, dimensions and time buckets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_mlops.tracking import trace_metrics as tm
from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.errors import TrackingError
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking.traces import TraceInfo


def _span(i: int, j: int, name: str, kind: str, ms: int, attrs: dict[str, Any]) -> dict[str, Any]:
    start = 1_000_000_000_000 + i * 10**9
    return {
        "span_id": t.hex_to_b64(f"{i:012x}{j:04x}"),
        "parent_span_id": None if j == 0 else t.hex_to_b64(f"{i:012x}{0:04x}"),
        "name": name,
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + ms * 1_000_000,
        "status": {"code": "STATUS_CODE_ERROR" if i == 3 else "STATUS_CODE_OK"},
        "attributes": {"mlflow.spanType": json.dumps(kind), **attrs},
    }


@pytest.fixture
def exp(store: SqlTrackingStore) -> str:
    """Four traces: latency 10..40 ms, tokens 100..400 in / 10..40 out, an LLM span each
    with a cost and a model, trace 3 an error; feedback on traces 0-2."""
    exp = store.create_experiment("metrics")
    records = []
    for i in range(4):
        info = TraceInfo(
            f"tr-{i:032x}",
            exp,
            1_000_000 + i * 3_600_000,  # an hour apart
            state="ERROR" if i == 3 else "OK",
            execution_duration=10 * (i + 1),
        )
        info.tags[t.TAG_TRACE_NAME] = "chat" if i < 2 else "agent"
        info.trace_metadata["mlflow.trace.tokenUsage"] = json.dumps(
            {"input_tokens": 100 * (i + 1), "output_tokens": 10 * (i + 1)}
        )
        info.trace_metadata["mlflow.trace.session"] = f"s{i % 2}"
        cost = json.dumps({"input_cost": 0.5 * (i + 1), "total_cost": 1.0 * (i + 1)})
        records.append(
            (
                info,
                [
                    _span(i, 0, "root", "CHAIN", 10 * (i + 1), {}),
                    _span(
                        i,
                        1,
                        "llm",
                        "LLM",
                        5,
                        {"mlflow.llm.cost": cost, "mlflow.llm.model": '"gpt"'},
                    ),
                ],
            )
        )
    store.log_traces(records)
    for i, value in enumerate([True, False, 4]):
        store.create_assessment(
            f"tr-{i:032x}",
            {
                "assessment_name": "good" if i < 2 else "score",
                "feedback": {"value": value},
                "source": {"source_type": "HUMAN", "source_id": "me"},
            },
        )
    return exp


def _q(store: SqlTrackingStore, exp: str, view: str, metric: str, *aggs: str, **kw: Any) -> Any:
    parsed = [
        tm.Aggregation("PERCENTILE", float(a[1:])) if a.startswith("P") else tm.Aggregation(a)
        for a in aggs
    ]
    q = tm.MetricsQuery(
        [int(exp)],
        view,
        metric,
        parsed,
        kw.pop("dimensions", []),
        kw.pop("filters", []),
        **kw,
    )
    return store.trace_metrics(q)


def test_trace_view(store: SqlTrackingStore, exp: str) -> None:
    got = _q(store, exp, "TRACES", "trace_count", "COUNT", dimensions=["trace_status"])
    assert [(p["dimensions"], p["values"]) for p in got] == [
        ({"trace_status": "ERROR"}, {"COUNT": 1.0}),
        ({"trace_status": "OK"}, {"COUNT": 3.0}),
    ]
    (lat,) = _q(store, exp, "TRACES", "latency", "AVG", "MIN", "MAX", "P50", "P90")
    assert lat["values"] == {
        "AVG": 25.0,
        "MIN": 10.0,
        "MAX": 40.0,
        "P50.0": 25.0,
        "P90.0": pytest.approx(37.0),
    }
    assert lat["metric_name"] == "latency"
    (p99,) = _q(store, exp, "TRACES", "latency", "P99")  # a percentile alone
    assert p99["values"] == {"P99.0": pytest.approx(39.7)}
    by_name = _q(store, exp, "TRACES", "input_tokens", "SUM", dimensions=["trace_name"])
    assert {p["dimensions"]["trace_name"]: p["values"]["SUM"] for p in by_name} == {
        "agent": 700.0,
        "chat": 300.0,
    }
    (sessions,) = _q(store, exp, "TRACES", "session_count", "COUNT")
    assert sessions["values"] == {"COUNT": 2.0}
    # MLflow's filter form and a time bucket per hour
    ok = _q(
        store,
        exp,
        "TRACES",
        "output_tokens",
        "SUM",
        filters=["trace.status = 'OK'"],
        time_interval_seconds=3600,
    )
    assert [p["values"]["SUM"] for p in ok] == [10.0, 20.0, 30.0]
    assert ok[0]["dimensions"]["time_bucket"] == "1970-01-01T00:00:00+00:00"
    assert ok[1]["dimensions"]["time_bucket"] == "1970-01-01T01:00:00+00:00"
    # the trace search grammar too
    (few,) = _q(store, exp, "TRACES", "trace_count", "COUNT", filters=["trace.name = 'chat'"])
    assert few["values"] == {"COUNT": 2.0}


def test_span_and_assessment_views(store: SqlTrackingStore, exp: str) -> None:
    spans = _q(store, exp, "SPANS", "span_count", "COUNT", dimensions=["span_type"])
    assert {p["dimensions"]["span_type"]: p["values"]["COUNT"] for p in spans} == {
        "CHAIN": 4.0,
        "LLM": 4.0,
    }
    (lat,) = _q(store, exp, "SPANS", "latency", "MAX", filters=["span.name = 'root'"])
    assert lat["values"] == {"MAX": 40.0}
    (cost,) = _q(store, exp, "SPANS", "total_cost", "SUM", dimensions=["span_model_name"])
    assert cost == {
        "metric_name": "total_cost",
        "dimensions": {"span_model_name": "gpt"},
        "values": {"SUM": 10.0},
    }
    vals = _q(store, exp, "ASSESSMENTS", "assessment_value", "AVG", dimensions=["assessment_name"])
    assert {p["dimensions"]["assessment_name"]: p["values"]["AVG"] for p in vals} == {
        "good": 0.5,  # true 1, false 0
        "score": 4.0,
    }
    counts = _q(
        store,
        exp,
        "ASSESSMENTS",
        "assessment_count",
        "COUNT",
        dimensions=["assessment_value"],
        filters=["assessment.name = 'good'"],
    )
    assert {p["dimensions"]["assessment_value"]: p["values"]["COUNT"] for p in counts} == {
        "false": 1.0,
        "true": 1.0,
    }


@pytest.mark.parametrize(
    ("view", "metric", "agg", "dims", "filters", "message"),
    [
        ("TRACES", "span_count", "COUNT", [], [], "metric_name must be one of"),
        ("TRACES", "latency", "SUM", [], [], "invalid aggregation_type"),
        ("TRACES", "latency", "AVG", ["span_name"], [], "invalid dimension"),
        ("TRACES", "trace_count", "COUNT", [], ["span.name = 'x'"], "only supported for SPANS"),
        ("NOPE", "latency", "AVG", [], [], "view_type must be one of"),
    ],
)
def test_refused_as_mlflow_does(
    store: SqlTrackingStore,
    exp: str,
    view: str,
    metric: str,
    agg: str,
    dims: list[str],
    filters: list[str],
    message: str,
) -> None:
    with pytest.raises(TrackingError, match=message) as e:
        _q(store, exp, view, metric, agg, dimensions=dims, filters=filters)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
