"""What ingest checks and keeps of each span (the fast paths of ``span_row``, OTLP's attribute
encoding, the request body's nesting walk): a malformed span anywhere in a batch refuses the
whole batch naming it, nothing written; what is accepted is indexed and read back unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from jupyter_mlops.server.request import MAX_JSON_DEPTH, parse_json_body
from jupyter_mlops.tracking import otlp
from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.errors import TrackingError
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking.traces import TraceInfo


def _span(i: int, j: int, **over: Any) -> dict[str, Any]:
    span = {
        "trace_id": t.hex_to_b64(f"{i:032x}"),
        "span_id": t.hex_to_b64(f"{i:012x}{j:04x}"),
        "parent_span_id": None if j == 0 else t.hex_to_b64(f"{i:012x}{j - 1:04x}"),
        "name": f"step{j}",
        "start_time_unix_nano": 1_000_000_000 + j,
        "end_time_unix_nano": 2_000_000_000 - j,
        "status": {"code": "STATUS_CODE_OK"},
        "attributes": {"mlflow.spanType": '"TOOL"', "mlflow.spanInputs": json.dumps({"i": i})},
        "events": [],
    }
    span.update(over)
    return span


def _trace(exp: str, i: int, *spans: dict[str, Any]) -> tuple[TraceInfo, list[dict[str, Any]]]:
    info = TraceInfo(f"tr-{i:032x}", exp, 1000 + i, state="OK", execution_duration=5)
    return info, list(spans) or [_span(i, 0), _span(i, 1)]


def _count(store: SqlTrackingStore) -> tuple[int, int, int]:
    with store._read() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(tab)).scalar()
            for tab in (t.traces, t.spans, t.span_attributes)
        )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"span_id": "not base64!"}, "Invalid span id"),
        ({"span_id": "AAAAAAAAAAE"}, "Invalid span id"),  # padding missing
        ({"span_id": t.hex_to_b64("01" * 4)}, "expected 8 bytes"),
        ({"span_id": None}, "'span_id' is required"),
        ({"parent_span_id": "AA==AAAAAAE="}, "Invalid span id"),  # data after the padding
        ({"start_time_unix_nano": None}, "'start_time_unix_nano' is required"),
        ({"end_time_unix_nano": "soon"}, "times must be integers"),
        ({"attributes": ["a"]}, "spans[1].attributes: expected an object"),
        ({"attributes": {"blob": "x" * (t.MAX_ATTRIBUTE_BYTES + 1)}}, "attributes['blob']"),
    ],
)
def test_a_bad_span_refuses_the_batch(store: SqlTrackingStore, bad: dict, message: str) -> None:
    exp = store.create_experiment("bad-spans")
    before = _count(store)
    batch = [_trace(exp, 1), _trace(exp, 2, _span(2, 0), _span(2, 1, **bad))]
    with pytest.raises(TrackingError) as e:
        store.log_traces(batch)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert message in e.value.message
    if "span id" not in message and "bytes" not in message:  # an id's message names the id
        assert "spans[1]" in e.value.message
    assert _count(store) == before  # nothing of the batch, not even its good trace


def test_accepted_spans_are_indexed_and_read_back_unchanged(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("good-spans")
    long_key = "k" * 300
    odd = _span(
        3,
        1,
        span_id=f"{3:012x}{1:04x}",  # hex ids pass through
        start_time_unix_nano="1000000001",  # times as JSON strings (protobuf JSON's int64)
        status={"code": "STATUS_CODE_ERROR", "message": "boom"},
        attributes={"n": 5, "obj": {"a": [1, 2]}, long_key: '"v"', "mlflow.spanType": '"LLM"'},
    )
    batch = [_trace(exp, 3, _span(3, 0, status={}), odd)]
    store.log_traces(batch)
    assert store.get_trace_spans(batch[0][0].trace_id) == batch[0][1]
    with store._read() as conn:
        spans = {
            r.span_id: r
            for r in conn.execute(sa.select(t.spans).where(t.spans.c.trace_id == f"tr-{3:032x}"))
        }
        attrs = dict(
            conn.execute(
                sa.select(t.span_attributes.c.key, t.span_attributes.c.value).where(
                    t.span_attributes.c.span_id == f"{3:012x}{1:04x}"
                )
            ).all()
        )
    row = spans[f"{3:012x}{1:04x}"]
    assert (row.status, row.span_type, row.start_time_ns) == ("ERROR", "LLM", 1000000001)
    assert row.parent_span_id == f"{3:012x}{0:04x}"
    assert spans[f"{3:012x}{0:04x}"].status == "UNSET"
    assert attrs == {"n": "5", "obj": '{"a": [1, 2]}', long_key[: t.MAX_TAG_KEY]: "v"}
    found, _ = store.search_traces([exp], "span.attributes.obj LIKE '%[1, 2]%'")
    assert [i.trace_id for i in found] == [f"tr-{3:032x}"]


def test_otlp_attribute_values_are_mlflows_json() -> None:
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "ab" * 16,
                                "spanId": "cd" * 8,
                                "name": "s",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                                "attributes": [
                                    {"key": "text", "value": {"stringValue": 'a"b\\ é😀\n'}},
                                    {"key": "int", "value": {"intValue": "-7"}},
                                    {"key": "big", "value": {"intValue": str(10**20)}},
                                    {"key": "flag", "value": {"boolValue": True}},
                                    {"key": "x", "value": {"doubleValue": 0.5}},
                                    {"key": "list", "value": {"arrayValue": {"values": []}}},
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    (span,) = otlp.parse_json(json.dumps(body).encode())["ab" * 16]
    values = {k: json.loads(v) for k, v in span["attributes"].items()}
    assert values == {
        "text": 'a"b\\ é😀\n',
        "int": -7,
        "big": 10**20,
        "flag": True,
        "x": 0.5,
        "list": [],
        t.ATTR_REQUEST_ID: "tr-" + "ab" * 16,
    }
    assert span["attributes"]["flag"] == "true"


def test_body_nesting_limit() -> None:
    def nested(levels: int) -> str:
        return '{"a": ' + "[" * (levels - 1) + "1" + "]" * (levels - 1) + "}"

    # a body of many traces is wide, not deep: counted by level, accepted
    wide = {"traces": [{"info": {"tags": {"a": "b"}}, "spans": [{"x": [1]}]}] * 500}
    assert parse_json_body(json.dumps(wide)) == wide
    assert parse_json_body(nested(MAX_JSON_DEPTH))["a"]
    for levels in (MAX_JSON_DEPTH + 1, 500):
        with pytest.raises(TrackingError, match="levels deep"):
            parse_json_body(nested(levels))
        with pytest.raises(TrackingError, match="levels deep"):
            parse_json_body(nested(levels).encode())
