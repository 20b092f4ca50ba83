"""What ingest checks and keeps of each span (the fast paths of ``span_row``, OTLP's attribute
encoding, the request body's nesting walk): a malformed span anywhere in a batch refuses the
whole batch naming it, nothing written; what is accepted is indexed and read back unchanged."""

from __future__ import annotations

import base64
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


def _info_dict(exp: str, i: int, **over: Any) -> dict[str, Any]:
    info = _trace(exp, i)[0].to_dict()
    info.update(over)
    return info


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        # more than the columns hold: PostgreSQL refused them (a 500), SQLite kept them
        ({"trace_id": "tr-" + "0" * 62}, "'trace_id' is longer than 64"),
        ({"client_request_id": "c" * 251}, "'client_request_id' is longer than 250"),
        ({"client_request_id": 5}, "'client_request_id' must be a string"),
        ({"request_preview": {"a": 1}}, "'request_preview' must be a string"),
        ({"tags": {"a": {"b": 1}}}, "tags['a'] must be a string"),  # was kept as "{'b': 1}"
        ({"trace_metadata": {"m": [1]}}, "trace_metadata['m'] must be a string"),
        # times past the BIGINT columns: the driver's OverflowError (a 500) before
        ({"request_time": 10**30}, "'request_time': out of range"),
        ({"execution_duration": "1e30s"}, "'execution_duration'"),
        ({"request_time": float("inf")}, "'request_time'"),
    ],
)
def test_a_bad_trace_info_refuses_the_batch(
    store: SqlTrackingStore, bad: dict, message: str
) -> None:
    exp = store.create_experiment("bad-infos")
    before = _count(store)
    with pytest.raises(TrackingError) as e:
        batch = [_trace(exp, 1), (TraceInfo.from_dict(_info_dict(exp, 2, **bad)), [_span(2, 0)])]
        store.log_traces(batch)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert message in e.value.message
    assert _count(store) == before


def test_an_experiment_id_past_64_bits_is_not_found(store: SqlTrackingStore) -> None:
    huge = "9" * 30  # the driver raised on binding it: a 500
    with pytest.raises(TrackingError) as e:
        store.log_traces([(TraceInfo.from_dict(_info_dict(huge, 1)), [_span(1, 0)])])
    assert e.value.http_status == 404
    with pytest.raises(TrackingError) as e:
        store.log_spans(huge, {f"{1:032x}": [_span(1, 0)]})
    assert e.value.http_status == 404
    with pytest.raises(TrackingError) as e:
        store.get_experiment(huge)
    assert e.value.http_status == 404


def test_a_span_time_past_64_bits_refuses_the_batch(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("late-spans")
    before = _count(store)
    for bad in ({"start_time_unix_nano": 2**63}, {"end_time_unix_nano": 2**64 - 1}):
        with pytest.raises(TrackingError) as e:
            store.log_traces([_trace(exp, 1), _trace(exp, 2, _span(2, 0), _span(2, 1, **bad))])
        assert "spans[1]" in e.value.message and "2**63" in e.value.message
    assert _count(store) == before


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
            for r in conn.execute(
                sa.select(t.spans)
                .join(t.traces, t.trace_link(t.spans))
                .where(t.traces.c.trace_id == f"tr-{3:032x}")
            )
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


def test_otlp_protobuf_reads_as_its_json_does() -> None:
    """The protobuf reader (its own fast path: ids straight to base64, values straight to
    JSON text) gives the span dicts OTLP/JSON's reader gives for the same spans."""
    pytest.importorskip("opentelemetry.proto")
    from google.protobuf.json_format import MessageToJson
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import (
        AnyValue,
        ArrayValue,
        KeyValue,
        KeyValueList,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

    def kv(key: str, **value: Any) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(**value))

    attrs = [
        kv("text", string_value='a"b\\ é😀\n'),
        kv("int", int_value=-7),
        kv("x", double_value=0.5),
        kv("flag", bool_value=True),
        kv("raw", bytes_value=b"\x00\xff"),
        kv("list", array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue()])),
        kv("map", kvlist_value=KeyValueList(values=[kv("q", string_value="z")])),
        KeyValue(key="unset", value=AnyValue()),
    ]
    child = Span(
        trace_id=bytes.fromhex("ab" * 16),
        span_id=bytes.fromhex("cd" * 8),
        parent_span_id=bytes.fromhex("ef" * 8),
        name="child",
        start_time_unix_nano=5,
        end_time_unix_nano=0,
        status=Status(code=2, message="boom"),
        attributes=attrs,
        events=[Span.Event(name="e", time_unix_nano=6, attributes=[kv("m", int_value=3)])],
    )
    root = Span(
        trace_id=bytes.fromhex("12" * 16),
        span_id=bytes.fromhex("34" * 8),
        name="root",
        start_time_unix_nano=1,
        end_time_unix_nano=9,
        status=Status(code=1),
    )
    req = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(scope_spans=[ScopeSpans(spans=[child]), ScopeSpans(spans=[root])]),
            ResourceSpans(scope_spans=[ScopeSpans(spans=[child])]),
        ]
    )
    got = otlp.parse_protobuf(req.SerializeToString())
    assert got == otlp.parse_json(MessageToJson(req).encode())
    assert list(got) == ["ab" * 16, "12" * 16] and len(got["ab" * 16]) == 2
    (span, _again) = got["ab" * 16]
    assert span["span_id"] == t.hex_to_b64("cd" * 8)
    assert span["parent_span_id"] == t.hex_to_b64("ef" * 8)
    assert span["end_time_unix_nano"] is None
    assert span["status"] == {"code": "STATUS_CODE_ERROR", "message": "boom"}
    assert json.loads(span["attributes"]["text"]) == 'a"b\\ é😀\n'
    assert span["attributes"]["raw"] == json.dumps(base64.b64encode(b"\x00\xff").decode())
    assert span["attributes"]["unset"] == "null"
    assert got["12" * 16][0]["parent_span_id"] is None
    # each trace's data-file text, made by formatting, is what json.dumps makes of it
    for spans in got.values():
        assert spans.json_text == json.dumps(list(spans))
    # a bad id names the span, as before
    bad = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[root, Span(trace_id=b"")])])]
    )
    with pytest.raises(TrackingError, match=r"scopeSpans\[0\]\.spans\[1\]\.traceId"):
        otlp.parse_protobuf(bad.SerializeToString())
    bad.resource_spans[0].scope_spans[0].spans[1].trace_id = bytes(16)
    with pytest.raises(TrackingError, match="non-zero"):
        otlp.parse_protobuf(bad.SerializeToString())
    bad.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01" * 16
    with pytest.raises(TrackingError, match=r"spans\[1\]\.spanId"):
        otlp.parse_protobuf(bad.SerializeToString())


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
