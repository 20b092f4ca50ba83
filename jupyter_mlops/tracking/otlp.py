"""OTLP/HTTP trace payloads (``ExportTraceServiceRequest``, protobuf or JSON) read into
MLflow's span dicts, grouped by trace.

Protobuf is decoded with ``opentelemetry-proto`` (the OpenTelemetry project's generated
classes); JSON follows the OTLP/JSON mapping (lowerCamelCase or snake_case field names,
trace and span ids as hex). Attribute values become MLflow's serialized form (JSON
text), as MLflow's server stores them, and each span gets MLflow's
``mlflow.traceRequestId`` attribute (``tr-<otel trace id>``). Anything malformed is
INVALID_PARAMETER_VALUE naming where (``resourceSpans[0].scopeSpans[1].spans[2]``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import invalid
from .traces import ATTR_REQUEST_ID, SpanList, trace_id_from_otel

_STATUS = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}


def _id_hex(value: Any, size: int, where: str, base64_ids: bool) -> str:
    """A trace/span id as hex: bytes (protobuf), hex text (OTLP/JSON) or base64 text."""
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        try:
            raw = bytes.fromhex(value) if not base64_ids else base64.b64decode(value)
        except ValueError:
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError:
                raise invalid(f"Invalid OTLP payload: {where} is not hex") from None
    else:
        raise invalid(f"Invalid OTLP payload: {where} is missing")
    if len(raw) != size or not any(raw):
        raise invalid(f"Invalid OTLP payload: {where} must be {size} non-zero bytes")
    return raw.hex()


def _json_any(v: Any, where: str) -> Any:
    """An OTLP/JSON ``AnyValue`` as a Python value."""
    if not isinstance(v, dict) or not v:
        return None
    ((kind, inner),) = list(v.items())[:1]
    k = kind.replace("_", "").lower()
    if k == "stringvalue":
        return str(inner)
    if k == "boolvalue":
        return bool(inner)
    if k == "intvalue":
        try:
            return int(inner)
        except (TypeError, ValueError):
            raise invalid(f"Invalid OTLP payload: {where} intValue {inner!r}") from None
    if k == "doublevalue":
        try:
            return float(inner)
        except (TypeError, ValueError):
            raise invalid(f"Invalid OTLP payload: {where} doubleValue {inner!r}") from None
    if k == "arrayvalue":
        return [_json_any(x, where) for x in (inner or {}).get("values", [])]
    if k == "kvlistvalue":
        return {
            kv.get("key", ""): _json_any(kv.get("value"), where)
            for kv in (inner or {}).get("values", [])
        }
    if k == "bytesvalue":
        return str(inner)
    raise invalid(f"Invalid OTLP payload: {where} has an unknown value kind '{kind}'")


def _pb_any(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_pb_any(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_any(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def _get(d: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in d:
            return d[n]
    return None


_encode_str = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _dumps(v: Any) -> str:
    """``json.dumps(v)``, with the values of most attributes (text, whole numbers) made
    without the encoder's set-up: the hot path of OTLP ingest, once per attribute."""
    if type(v) is str:
        return _encode_str(v)  # type: ignore[no-any-return]
    if type(v) is int:
        return str(v)
    return json.dumps(v)


def _mlflow_span(
    trace_hex: str,
    span_hex: str,
    parent_hex: str | None,
    name: str,
    start: int,
    end: int,
    attrs: dict[str, Any],
    status_code: str,
    status_message: str,
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    serialized = {k: _dumps(v) for k, v in attrs.items()}
    serialized[ATTR_REQUEST_ID] = _encode_str(trace_id_from_otel(trace_hex))
    return {
        "trace_id": base64.b64encode(bytes.fromhex(trace_hex)).decode(),
        "span_id": base64.b64encode(bytes.fromhex(span_hex)).decode(),
        "parent_span_id": base64.b64encode(bytes.fromhex(parent_hex)).decode()
        if parent_hex
        else None,
        "name": name,
        "start_time_unix_nano": start,
        "end_time_unix_nano": end or None,
        "events": events,
        "status": {"code": status_code, "message": status_message},
        "attributes": serialized,
        "links": [],
    }


def _pb_text(v: Any) -> str:
    """An ``AnyValue`` straight to MLflow's serialized form (JSON text): text and whole
    numbers without building the Python value first (most attributes are those)."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return _encode_str(v.string_value)  # type: ignore[no-any-return]
    if kind == "int_value":
        return str(v.int_value)
    return json.dumps(None if kind is None else _pb_any(v))


_ZERO_IDS = {16: bytes(16), 8: bytes(8)}


def _pb_id(raw: bytes, size: int, where: str) -> bytes:
    """A protobuf trace/span id's bytes, checked (``where`` names it in the error)."""
    if len(raw) != size or raw == _ZERO_IDS[size]:
        raise invalid(f"Invalid OTLP payload: {where} must be {size} non-zero bytes")
    return raw


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def parse_protobuf(body: bytes) -> dict[str, list[dict[str, Any]]]:
    """``{otel trace id hex: [MLflow span dict, ...]}`` of a protobuf request.

    The hot path of OTLP ingest, once per span: ids go from bytes to base64 directly
    (a trace's once), attribute values to JSON text directly, and the span's position
    (``resourceSpans[0]...``) is spelled only for an error."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except (DecodeError, ValueError) as e:
        raise invalid(f"Invalid OTLP payload: not an ExportTraceServiceRequest ({e})") from None
    out: dict[str, list[dict[str, Any]]] = {}
    # per trace id (bytes): its span list, base64 id and mlflow.traceRequestId attribute
    traces: dict[bytes, tuple[list[dict[str, Any]], str, str]] = {}
    status_names = _STATUS
    for i, rs in enumerate(req.resource_spans):
        for j, ss in enumerate(rs.scope_spans):
            for k, sp in enumerate(ss.spans):
                traw = sp.trace_id
                known = traces.get(traw)
                if known is None:
                    where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                    th = _pb_id(traw, 16, where + ".traceId").hex()
                    known = ([], _b64(traw), _encode_str(trace_id_from_otel(th)))
                    traces[traw] = known
                    out[th] = known[0]
                spans, trace_b64, request_id = known
                sraw = sp.span_id
                if len(sraw) != 8 or sraw == _ZERO_IDS[8]:
                    _pb_id(sraw, 8, f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}].spanId")
                praw = sp.parent_span_id
                serialized = {a.key: _pb_text(a.value) for a in sp.attributes}
                serialized[ATTR_REQUEST_ID] = request_id
                status = sp.status
                events = sp.events
                spans.append(
                    {
                        "trace_id": trace_b64,
                        "span_id": _b64(sraw),
                        "parent_span_id": _b64(praw) if praw else None,
                        "name": sp.name,
                        "start_time_unix_nano": sp.start_time_unix_nano,
                        "end_time_unix_nano": sp.end_time_unix_nano or None,
                        "events": [
                            {
                                "name": e.name,
                                "time_unix_nano": e.time_unix_nano,
                                "attributes": {a.key: _pb_any(a.value) for a in e.attributes},
                            }
                            for e in events
                        ]
                        if events
                        else [],
                        "status": {
                            "code": status_names.get(status.code, "STATUS_CODE_UNSET"),
                            "message": status.message,
                        },
                        "attributes": serialized,
                        "links": [],
                    }
                )
    for th, spans in out.items():  # their data file's text, made once here
        out[th] = SpanList(spans, "[" + ", ".join([_span_json(s) for s in spans]) + "]")
    return out


_EVENTS_JSON = json.JSONEncoder(check_circular=False).encode


def _span_json(span: dict[str, Any]) -> str:
    """``json.dumps(span)`` of a span dict as :func:`parse_protobuf` makes it (same keys,
    same order, same text), by formatting: its attribute values are JSON text already
    and its ids base64, so only names, messages and attributes need escaping (with the
    encoder's own string escaping): about half the encoder's time, measured."""
    parent = span["parent_span_id"]
    parent_text = "null" if parent is None else f'"{parent}"'
    end = span["end_time_unix_nano"]
    status = span["status"]
    events = span["events"]
    attrs = ", ".join(
        [_encode_str(k) + ": " + _encode_str(v) for k, v in span["attributes"].items()]
    )
    return (
        f'{{"trace_id": "{span["trace_id"]}", "span_id": "{span["span_id"]}", '
        f'"parent_span_id": {parent_text}, '
        f'"name": {_encode_str(span["name"])}, '
        f'"start_time_unix_nano": {span["start_time_unix_nano"]}, '
        f'"end_time_unix_nano": {"null" if end is None else end}, '
        f'"events": {_EVENTS_JSON(events) if events else "[]"}, '
        f'"status": {{"code": "{status["code"]}", "message": {_encode_str(status["message"])}}}, '
        f'"attributes": {{{attrs}}}, "links": []}}'
    )


def parse_json(body: bytes) -> dict[str, list[dict[str, Any]]]:
    """The same from OTLP/JSON."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise invalid("Invalid OTLP payload: the body is not JSON") from None
    if not isinstance(data, dict):
        raise invalid("Invalid OTLP payload: expected a JSON object")
    out: dict[str, list[dict[str, Any]]] = {}
    for i, rs in enumerate(_get(data, "resourceSpans", "resource_spans") or []):
        for j, ss in enumerate(_get(rs, "scopeSpans", "scope_spans") or []):
            for k, sp in enumerate(_get(ss, "spans") or []):
                where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                if not isinstance(sp, dict):
                    raise invalid(f"Invalid OTLP payload: {where} is not an object")
                th = _id_hex(_get(sp, "traceId", "trace_id"), 16, where + ".traceId", False)
                sh = _id_hex(_get(sp, "spanId", "span_id"), 8, where + ".spanId", False)
                parent = _get(sp, "parentSpanId", "parent_span_id")
                ph = _id_hex(parent, 8, where + ".parentSpanId", False) if parent else None
                try:
                    start = int(_get(sp, "startTimeUnixNano", "start_time_unix_nano") or 0)
                    end = int(_get(sp, "endTimeUnixNano", "end_time_unix_nano") or 0)
                except (TypeError, ValueError):
                    raise invalid(f"Invalid OTLP payload: {where} times are not integers") from None
                attrs = {
                    a.get("key", ""): _json_any(a.get("value"), f"{where}.attributes")
                    for a in sp.get("attributes") or []
                    if isinstance(a, dict)
                }
                status = sp.get("status") or {}
                code = status.get("code", 0)
                if isinstance(code, str):
                    code_name = code if code.startswith("STATUS_CODE_") else "STATUS_CODE_UNSET"
                else:
                    code_name = _STATUS.get(int(code), "STATUS_CODE_UNSET")
                events = [
                    {
                        "name": e.get("name", ""),
                        "time_unix_nano": int(_get(e, "timeUnixNano", "time_unix_nano") or 0),
                        "attributes": {
                            a.get("key", ""): _json_any(a.get("value"), f"{where}.events")
                            for a in e.get("attributes") or []
                        },
                    }
                    for e in sp.get("events") or []
                    if isinstance(e, dict)
                ]
                out.setdefault(th, []).append(
                    _mlflow_span(
                        th,
                        sh,
                        ph,
                        str(sp.get("name", "")),
                        start,
                        end,
                        attrs,
                        code_name,
                        str(status.get("message", "")),
                        events,
                    )
                )
    return out
