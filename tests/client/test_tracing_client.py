"""``mlops.trace`` / ``mlops.start_span`` into a real store (SQLite, and PostgreSQL where
the suite has it): the span tree, inputs and outputs, exceptions, run links, search,
assessments; and the trace store's filter grammar and deletes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pgschema import fresh_schema

import jupyter_mlops as mlops


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def uri(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mlops.db'}"
        return
    with fresh_schema("trc") as url:
        yield url


@mlops.trace(span_type="TOOL")
def leaf(x: int) -> int:
    return x * 2


@mlops.trace
def middle(x: int) -> int:
    with mlops.start_span("inner", span_type="CHAIN") as span:
        span.set_attribute("note", "hi")
    return leaf(x) + 1


@mlops.trace(name="top")
def top(x: int) -> int:
    return middle(x) * 10


@mlops.trace
def broken() -> None:
    raise ValueError("nope")


def _spans_by_name(trace: dict) -> dict[str, dict]:
    return {s["name"]: s for s in trace["spans"]}


def test_three_level_chain_lands_as_a_span_tree(uri, tmp_path):
    mlops.set_tracking_uri(uri)
    mlops.set_experiment("traced")
    with mlops.start_run() as run:
        assert top(2) == 50
    for i in range(3):
        top(i)
    with pytest.raises(ValueError):
        broken()

    found = mlops.search_traces(order_by=["timestamp ASC"])
    assert len(found) == 5
    first = found[0]
    assert first["state"] == "OK" and first["tags"]["mlflow.traceName"] == "top"
    assert json.loads(first["request_preview"]) == {"x": 2}
    assert first["response_preview"] == "50"
    trace = mlops.get_trace(first["trace_id"])
    spans = _spans_by_name(trace)
    assert set(spans) == {"top", "middle", "inner", "leaf"}
    parent = {s["name"]: s["parent_span_id"] for s in trace["spans"]}
    assert parent["top"] is None
    assert parent["middle"] == spans["top"]["span_id"]
    assert parent["inner"] == spans["middle"]["span_id"]
    assert parent["leaf"] == spans["middle"]["span_id"]
    assert json.loads(spans["leaf"]["attributes"]["mlflow.spanType"]) == "TOOL"
    assert json.loads(spans["inner"]["attributes"]["note"]) == "hi"

    # the grammar over the index: run link, span type, status, attributes, latency
    linked = mlops.search_traces(filter_string=f"attribute.run_id = '{run.info.run_id}'")
    assert [t["trace_id"] for t in linked] == [first["trace_id"]]
    assert len(mlops.search_traces(filter_string="span.type = 'TOOL'")) == 4
    errors = mlops.search_traces(filter_string="trace.status = 'ERROR'")
    assert len(errors) == 1
    failed = mlops.get_trace(errors[0]["trace_id"])
    assert failed["spans"][0]["status"]["code"] == "STATUS_CODE_ERROR"
    assert failed["spans"][0]["events"][0]["name"] == "exception"
    assert len(mlops.search_traces(filter_string="span.attributes.note = 'hi'")) == 4
    # the span type and the trace id are no span_attributes rows; still searchable
    tool = "span.attributes.mlflow.spanType = 'TOOL'"
    assert len(mlops.search_traces(filter_string=tool)) == 4
    assert len(mlops.search_traces(filter_string="span.content LIKE '%TOOL%'")) == 4
    assert len(mlops.search_traces(filter_string="trace.text LIKE '%RERANK%'")) == 0
    by_id = f"span.attributes.mlflow.traceRequestId = '{first['trace_id']}'"
    assert [t["trace_id"] for t in mlops.search_traces(filter_string=by_id)] == [first["trace_id"]]
    assert len(mlops.search_traces(filter_string=f"span.content LIKE '{first['trace_id']}'")) == 1
    assert len(mlops.search_traces(filter_string="trace.execution_time_ms >= 0")) == 5
    assert (
        mlops.search_traces(filter_string="tags.mlflow.traceName = 'broken'")[0]["trace_id"]
        == errors[0]["trace_id"]
    )

    # feedback and expectations
    fb = mlops.log_feedback(first["trace_id"], "correct", True, rationale="checked")
    ex = mlops.log_expectation(first["trace_id"], "answer", {"value": 50})
    assert fb["valid"] is True and fb["feedback"]["value"] is True
    assert json.loads(ex["expectation"]["serialized_value"]["value"]) == {"value": 50}
    again = mlops.get_trace(first["trace_id"])["info"]
    assert {a["assessment_name"] for a in again["assessments"]} == {"correct", "answer"}


def test_trace_store_deletes_and_refuses_bad_filters(uri, tmp_path):
    from jupyter_mlops.tracking.errors import TrackingError
    from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

    mlops.set_tracking_uri(uri)
    exp = mlops.set_experiment("deletes").experiment_id
    for i in range(4):
        top(i)
    found = mlops.search_traces()
    store = SqlTrackingStore(uri)  # the artifact root the client's store recorded
    try:
        # the client's batches are batch data files (one per batch), read by range
        assert found[0]["tags"]["mlflow.trace.spansLocation"] == "TRACKING_STORE"
        batches = store.artifact_repo(store.get_experiment(exp).artifact_location)
        assert batches.list("traces/batches")
        assert store.delete_traces(exp, trace_ids=[found[0]["trace_id"]]) == 1
        assert store.delete_traces(exp, max_timestamp_millis=10**15, max_traces=2) == 2
        left = store.search_traces([exp])[0]
        assert len(left) == 1
        assert {s["name"] for s in store.get_trace_spans(left[0].trace_id)} >= {
            "top",
            "middle",
            "leaf",
        }
        assert store.delete_traces(exp, trace_ids=[left[0].trace_id]) == 1
        assert batches.list("traces/batches") == []  # no trace left: no file left
        for bad in ("span.nope = 'x'", "trace.timestamp_ms = 'x'", "tags.a = 1", "x.y = 'z'"):
            with pytest.raises(TrackingError, match=r"position|Invalid"):
                store.search_traces([exp], bad)
        with pytest.raises(TrackingError) as e:
            store.get_trace_info("tr-unknown")
        assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    finally:
        store.close()
