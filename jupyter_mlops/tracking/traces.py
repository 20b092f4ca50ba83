"""Traces (MLflow 3 tracing): their rows, their spans' search index, and their data.

A trace is a tree of spans (one call each: name, type, status, times, inputs, outputs,
attributes). What is searched lives in rows (migration ``0011``): the trace's info
(experiment, request time, duration, state, request/response previews, client request
id), its tags and metadata, the runs it is linked to, and per span the indexed fields
(name, type, status, times, parent) with its attribute values cut to
:data:`INDEXED_VALUE_CHARS`. The full span data (``{"spans": [...]}`` in MLflow's
``traces.json`` shape) is not in a row: it is a file in the artifact store, under the
trace's ``mlflow.artifactLocation`` (``<experiment location>/traces/<trace id>/artifacts``),
written by MLflow's client itself (it uploads ``traces.json`` there), by :func:`log_traces`
(our client's batches) or by OTLP ingest (``spans/<batch>.json`` files, merged on read).

Span dicts here are MLflow's (``Span.to_dict()``): ids base64, attribute values JSON
text. Functions take the caller's connection; the store owns transactions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.engine import Connection

from .errors import invalid, not_found
from .schema import metadata
from .validation import INT64

# -- MLflow's names ------------------------------------------------------------------
TRACE_ID_PREFIX = "tr-"
STATES = ("STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS")
#: v2 statuses (``TraceStatus``) and the v3 states they are.
V2_STATUS = {"UNSPECIFIED": "STATE_UNSPECIFIED", "OK": "OK", "ERROR": "ERROR"}
V2_STATUS["IN_PROGRESS"] = "IN_PROGRESS"
V2_STATUS["TRACE_STATUS_UNSPECIFIED"] = "STATE_UNSPECIFIED"
TAG_ARTIFACT_LOCATION = "mlflow.artifactLocation"
TAG_TRACE_NAME = "mlflow.traceName"
META_SOURCE_RUN = "mlflow.sourceRun"
META_SCHEMA_VERSION = "mlflow.trace_schema.version"
ATTR_REQUEST_ID = "mlflow.traceRequestId"
ATTR_SPAN_TYPE = "mlflow.spanType"
ATTR_INPUTS = "mlflow.spanInputs"
ATTR_OUTPUTS = "mlflow.spanOutputs"
TRACE_DATA_FILE = "traces.json"
OTLP_DIR = "spans"
#: Where a trace's spans are (MLflow's tag): ``TRACKING_STORE`` tells MLflow's client to
#: read them through ``traces/batchGet``, not ``traces.json`` under an artifact location.
TAG_SPANS_LOCATION = "mlflow.trace.spansLocation"
SPANS_IN_TRACKING_STORE = "TRACKING_STORE"
#: The batch data files' folder under an experiment's artifact location.
BATCH_DIR = "traces/batches"

# -- limits ----------------------------------------------------------------------------
#: Characters of a request/response preview kept in the row (MLflow's 1000).
PREVIEW_CHARS = 1000
#: Characters of a span attribute value kept in the search index (the full value is in
#: the trace data file).
INDEXED_VALUE_CHARS = 1000
#: Largest span attribute value accepted (bytes of its JSON text): past this a span is
#: refused with 400, not stored in part.
MAX_ATTRIBUTE_BYTES = 4 << 20
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 8000
#: Most traces one search page holds (MLflow's server: 500).
MAX_SEARCH_RESULTS = 500
#: Most trace ids one link-to-run request names (MLflow's).
MAX_LINK_TRACES = 100

#: The integer key of a trace (``traces.trace_key``, migration 0021): it grows with each
#: new trace, so the span tables, keyed and joined by it, take appends where the random
#: text trace ids scattered ~10 index inserts per trace all over their B-trees.
TraceKey = BigInteger().with_variant(Integer(), "sqlite")

traces = Table(
    "traces",
    metadata,
    Column("trace_id", String(64), primary_key=True),
    Column("trace_key", TraceKey, nullable=False, unique=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("client_request_id", String(250), nullable=True),
    Column("request_time", BigInteger, nullable=False),
    Column("execution_duration", BigInteger, nullable=True),
    Column("state", String(32), nullable=False),
    Column("request_preview", String(PREVIEW_CHARS), nullable=True),
    Column("response_preview", String(PREVIEW_CHARS), nullable=True),
    Column("name", String(500), nullable=True),  # the root span's (tag mlflow.traceName)
    # the trace's data as a byte range of a batch file (0015); NULL: its own traces.json
    Column("data_file", String(1000), nullable=True),
    Column("data_offset", BigInteger, nullable=True),
    Column("data_length", BigInteger, nullable=True),
    # bits of IMPLIED_KEYS: tags and metadata held by this row, not by rows of their own
    Column("implied", SmallInteger, nullable=False, server_default=sa.text("0")),
    Index("ix_traces_experiment_time", "experiment_id", "request_time"),
    Index("ix_traces_experiment_duration", "experiment_id", "execution_duration"),
    Index("ix_traces_data_file", "data_file"),
)

trace_tags = Table(
    "trace_tags",
    metadata,
    Column("trace_id", String(64), ForeignKey("traces.trace_id", ondelete="CASCADE")),
    Column("key", String(MAX_TAG_KEY), nullable=False),
    Column("value", String(MAX_TAG_VALUE), nullable=True),
    PrimaryKeyConstraint("trace_id", "key", name="pk_trace_tags"),
)

trace_metadata = Table(
    "trace_metadata",
    metadata,
    Column("trace_id", String(64), ForeignKey("traces.trace_id", ondelete="CASCADE")),
    Column("key", String(MAX_TAG_KEY), nullable=False),
    Column("value", String(MAX_TAG_VALUE), nullable=True),
    PrimaryKeyConstraint("trace_id", "key", name="pk_trace_metadata"),
)

# No foreign key: MLflow links a trace to a run before its client has exported it.
trace_runs = Table(
    "trace_runs",
    metadata,
    Column("trace_id", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    PrimaryKeyConstraint("trace_id", "run_id", name="pk_trace_runs"),
    Index("ix_trace_runs_run", "run_id"),
)

spans = Table(
    "spans",
    metadata,
    Column("trace_key", TraceKey, ForeignKey("traces.trace_key", ondelete="CASCADE")),
    Column("span_id", String(16), nullable=False),
    Column("parent_span_id", String(16), nullable=True),
    Column("name", String(500), nullable=True),
    Column("span_type", String(100), nullable=True),
    Column("status", String(32), nullable=False),
    Column("start_time_ns", BigInteger, nullable=False),
    Column("end_time_ns", BigInteger, nullable=True),
    PrimaryKeyConstraint("trace_key", "span_id", name="pk_spans"),
    Index("ix_spans_name", "name"),
    Index("ix_spans_type", "span_type"),
    Index("ix_spans_status", "status", "trace_key"),  # 0019: a probe per trace seeks both
)

span_attributes = Table(
    "span_attributes",
    metadata,
    Column("trace_key", TraceKey, ForeignKey("traces.trace_key", ondelete="CASCADE")),
    Column("span_id", String(16), nullable=False),
    Column("key", String(MAX_TAG_KEY), nullable=False),
    Column("value", String(INDEXED_VALUE_CHARS), nullable=True),
    PrimaryKeyConstraint("trace_key", "span_id", "key", name="pk_span_attributes"),
)


def link_column(table: Any) -> Any:
    """The column by which a child table's rows (or an alias's) name their trace:
    ``trace_key`` for ``spans`` and ``span_attributes``, ``trace_id`` for the others."""
    return table.c.trace_key if "trace_key" in table.c else table.c.trace_id


def trace_link(table: Any, trace_table: Any = None) -> Any:
    """The join condition of a child table's rows to their trace's row (of ``traces``, or
    of ``trace_table``, an alias of it)."""
    parent = traces if trace_table is None else trace_table
    column = link_column(table)
    return column == parent.c[column.name]


#: Value indexes per dialect (created by migration 0011): PostgreSQL's b-tree takes a
#: prefix of long values, as for run tags (``schema.VALUE_PREFIX_CHARS``).
KEYED_TABLES = ("trace_tags", "trace_metadata", "span_attributes")

_CHILD_TABLES = (span_attributes, spans, trace_runs, trace_metadata, trace_tags)

# -- implied tags and metadata -----------------------------------------------------------
#: Trace tags and metadata that (nearly) every trace carries with a value its ``traces``
#: row holds already (issue 17): stored as a bit of ``traces.implied`` rather than a row
#: (three of a batch trace's 13 rows), answered and searched as if they were rows
#: (:func:`implied_items`, :mod:`.trace_search`). A trace gets the bit only when its value
#: is the implied one (a different value stays a row); bit and row never coexist: a
#: change of the trace's tags, metadata or name turns its bits back into rows first
#: (:func:`materialize_implied`). Migration 0020 moved existing rows to the bits.
#: ``(bit, table, key, implied value)``; a value of None is the trace's ``name``.
IMPLIED_KEYS: tuple[tuple[int, str, str, str | None], ...] = (
    (1, "trace_tags", TAG_TRACE_NAME, None),
    (2, "trace_tags", TAG_SPANS_LOCATION, SPANS_IN_TRACKING_STORE),
    (4, "trace_metadata", META_SCHEMA_VERSION, "3"),
)
_TAG_BITS = {k: bit for bit, table, k, _ in IMPLIED_KEYS if table == "trace_tags"}
_META_BITS = {k: bit for bit, table, k, _ in IMPLIED_KEYS if table == "trace_metadata"}


def implied_key(table: str, key: str) -> tuple[int, Any] | None:
    """The bit of ``traces.implied`` and the implied value (a SQL expression over
    ``traces``) of a tag (``table`` ``trace_tags``) or metadata key; None for the others."""
    for bit, tname, k, value in IMPLIED_KEYS:
        if tname == table and k == key:
            expr = (
                traces.c.name
                if value is None
                else sa.type_coerce(sa.literal_column(f"'{value}'"), String)
            )
            return bit, expr
    return None


def implied_bits(tags: dict[str, str], meta: dict[str, str], name: str | None) -> int:
    """The bits of a new trace whose tags, metadata and ``name`` column are these."""
    bits = 0
    for bit, table, key, value in IMPLIED_KEYS:
        given = (tags if table == "trace_tags" else meta).get(key)
        if given is not None and given == (name if value is None else value):
            bits |= bit
    return bits


def implied_items(bits: int, name: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """The tags and metadata a trace's bits stand for."""
    tags: dict[str, str] = {}
    meta: dict[str, str] = {}
    for bit, table, key, value in IMPLIED_KEYS:
        if bits & bit:
            text = (name or "") if value is None else value
            (tags if table == "trace_tags" else meta)[key] = text
    return tags, meta


def materialize_implied(conn: Connection, trace_ids: Sequence[str], insert_ignore: Any) -> None:
    """Turn these traces' implied tags and metadata into rows (bits cleared): before a
    change of their tags, metadata or name, which then works on rows as it always did."""
    tc = traces.c
    found = list(
        conn.execute(
            sa.select(tc.trace_id, tc.implied, tc.name).where(
                tc.trace_id.in_(list(trace_ids)), tc.implied != 0
            )
        )
    )
    if not found:
        return
    rows: dict[str, list[dict[str, Any]]] = {"trace_tags": [], "trace_metadata": []}
    for tid, bits, name in found:
        tags, meta = implied_items(bits, name)
        rows["trace_tags"] += [{"trace_id": tid, "key": k, "value": v} for k, v in tags.items()]
        rows["trace_metadata"] += [{"trace_id": tid, "key": k, "value": v} for k, v in meta.items()]
    for table, keyed in (
        (trace_tags, rows["trace_tags"]),
        (trace_metadata, rows["trace_metadata"]),
    ):
        if keyed:
            insert_ignore(conn, table, ["trace_id", "key"], keyed)
    conn.execute(traces.update().where(tc.trace_id.in_([r[0] for r in found])).values(implied=0))


# -- entities ----------------------------------------------------------------------------
@dataclass
class TraceInfo:
    """One trace's info, MLflow's ``TraceInfoV3`` fields (times in ms)."""

    trace_id: str
    experiment_id: str
    request_time: int
    state: str = "IN_PROGRESS"
    execution_duration: int | None = None
    client_request_id: str | None = None
    request_preview: str | None = None
    response_preview: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    trace_metadata: dict[str, str] = field(default_factory=dict)
    assessments: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """MLflow's v3 JSON (``TraceInfoV3``: Timestamp and Duration as JSON strings)."""
        out: dict[str, Any] = {
            "trace_id": self.trace_id,
            "trace_location": {
                "type": "MLFLOW_EXPERIMENT",
                "mlflow_experiment": {"experiment_id": self.experiment_id},
            },
            "request_time": ms_to_timestamp(self.request_time),
            "state": self.state,
            "trace_metadata": dict(self.trace_metadata),
            "tags": dict(self.tags),
        }
        if self.client_request_id is not None:
            out["client_request_id"] = self.client_request_id
        if self.request_preview is not None:
            out["request_preview"] = self.request_preview
        if self.response_preview is not None:
            out["response_preview"] = self.response_preview
        if self.execution_duration is not None:
            out["execution_duration"] = ms_to_duration(self.execution_duration)
        if self.assessments:
            out["assessments"] = self.assessments
        return out

    @classmethod
    def from_dict(cls, d: Any) -> TraceInfo:
        """From MLflow's v3 JSON (as :meth:`to_dict` writes it); INVALID_PARAMETER_VALUE
        for what is not."""
        if not isinstance(d, dict):
            raise invalid("Invalid trace info: expected an object")
        loc = d.get("trace_location") or {}
        exp = (
            (loc.get("mlflow_experiment") or {}).get("experiment_id")
            if isinstance(loc, dict)
            else None
        )
        if not exp:
            raise invalid("Invalid trace info: 'trace_location.mlflow_experiment' is required")
        state = d.get("state") or "STATE_UNSPECIFIED"
        if state not in STATES:
            raise invalid(f"Invalid trace info state {state!r}: one of {STATES}")
        tags, meta = d.get("tags") or {}, d.get("trace_metadata") or {}
        if not isinstance(tags, dict) or not isinstance(meta, dict):
            raise invalid("Invalid trace info: 'tags' and 'trace_metadata' are objects")
        info = cls(
            trace_id=_text_field(d, "trace_id", MAX_TRACE_ID) or new_trace_id(),
            experiment_id=str(exp),
            request_time=parse_timestamp(d.get("request_time", 0), "request_time"),
            state=state,
            client_request_id=_text_field(d, "client_request_id", MAX_CLIENT_REQUEST_ID),
            request_preview=_text_field(d, "request_preview"),
            response_preview=_text_field(d, "response_preview"),
            tags=_text_map(tags, "tags"),
            trace_metadata=_text_map(meta, "trace_metadata"),
        )
        if d.get("execution_duration") is not None:
            info.execution_duration = parse_duration(d["execution_duration"], "execution_duration")
        return info

    def to_v2_dict(self) -> dict[str, Any]:
        """MLflow's v2 JSON (``TraceInfo``: ``request_id``, ``timestamp_ms``, ...)."""
        status = {"STATE_UNSPECIFIED": "TRACE_STATUS_UNSPECIFIED"}.get(self.state, self.state)
        out: dict[str, Any] = {
            "request_id": self.trace_id,
            "experiment_id": self.experiment_id,
            "timestamp_ms": self.request_time,
            "status": status,
            "request_metadata": [{"key": k, "value": v} for k, v in self.trace_metadata.items()],
            "tags": [{"key": k, "value": v} for k, v in self.tags.items()],
        }
        if self.execution_duration is not None:
            out["execution_time_ms"] = self.execution_duration
        return out


def ms_to_timestamp(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def ms_to_duration(ms: int) -> str:
    return f"{ms / 1000:.3f}s"


def _in_int64(ms: int, value: Any, name: str) -> int:
    if ms not in INT64:
        raise invalid(f"Invalid value {value!r} for parameter '{name}': out of range")
    return ms


#: Longest trace id and client request id the ``traces`` columns hold.
MAX_TRACE_ID = 64
MAX_CLIENT_REQUEST_ID = 250


def _text_field(d: dict[str, Any], name: str, limit: int | None = None) -> str | None:
    """A text field of a trace info (absent: None), refused when it is not text or is
    longer than its column holds (``limit``; previews are cut instead)."""
    value = d.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid trace info: '{name}' must be a string")
    if limit is not None and len(value) > limit:
        raise invalid(f"Invalid trace info: '{name}' is longer than {limit} characters")
    return value


def _text_map(values: dict[Any, Any], name: str) -> dict[str, str]:
    """Tags or metadata as text: a number or boolean as its text (MLflow's are
    ``map<string, string>``); an object or array is refused, not kept as Python's repr."""
    out = {}
    for k, v in values.items():
        if type(v) is not str:
            if isinstance(v, (dict, list)):
                raise invalid(f"Invalid trace info: {name}['{k}'] must be a string")
            v = str(v)
        out[str(k)] = v
    return out


def parse_timestamp(value: Any, name: str) -> int:
    """Epoch ms from a protobuf JSON Timestamp (RFC 3339 text) or a number of ms."""
    if isinstance(value, bool):
        raise invalid(f"Invalid value {value!r} for parameter '{name}'")
    if isinstance(value, (int, float)):
        try:
            return _in_int64(int(value), value, name)
        except (OverflowError, ValueError):  # inf, nan
            raise invalid(f"Invalid value {value!r} for parameter '{name}'") from None
    if isinstance(value, str):
        text = value.strip()
        try:
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            if "." in text:  # fromisoformat takes at most 6 fraction digits
                head, rest = text.split(".", 1)
                n = len(rest) - len(rest.lstrip("0123456789"))
                text = head + ("." + rest[: min(n, 6)] if n else "") + rest[n:]
            dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return round(dt.timestamp() * 1000)
        except ValueError:
            pass
    raise invalid(f"Invalid value {value!r} for parameter '{name}': expected an RFC 3339 time")


def parse_duration(value: Any, name: str) -> int:
    """Milliseconds from a protobuf JSON Duration (``"1.5s"``) or a number of ms."""
    if isinstance(value, bool):
        raise invalid(f"Invalid value {value!r} for parameter '{name}'")
    try:
        if isinstance(value, (int, float)):
            return _in_int64(int(value), value, name)
        if isinstance(value, str) and value.endswith("s"):
            return _in_int64(round(float(value[:-1]) * 1000), value, name)
    except (OverflowError, ValueError):  # not a number, inf, nan
        pass
    raise invalid(
        f"Invalid value {value!r} for parameter '{name}': expected a duration like '1.5s'"
    )


def new_trace_id() -> str:
    return TRACE_ID_PREFIX + uuid.uuid4().hex


def trace_id_from_otel(trace_id_hex: str) -> str:
    return TRACE_ID_PREFIX + trace_id_hex


_HEX = re.compile(r"[0-9a-fA-F]+")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def b64_to_hex(value: str | None, size: int) -> str | None:
    """A base64 id of a span dict (MLflow's) as hex; hex passes through."""
    if not value:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid span id {value!r}: expected base64 or hex")
    if len(value) == size * 2 and _HEX.fullmatch(value):
        return value.lower()
    # base64.b64decode(validate=True), without its conversions
    if not _B64.fullmatch(value):
        raise invalid(f"Invalid span id {value!r}: expected base64 or hex")
    try:
        raw = binascii.a2b_base64(value)
    except (binascii.Error, ValueError):
        raise invalid(f"Invalid span id {value!r}: expected base64 or hex") from None
    if len(raw) != size:
        raise invalid(f"Invalid span id {value!r}: expected {size} bytes")
    return raw.hex()


def hex_to_b64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode()


def _cut(value: str | None, n: int) -> str | None:
    return None if value is None else value[:n]


# -- span index rows -----------------------------------------------------------------------
@dataclass(slots=True)
class SpanRow:
    """What the index keeps of a span (the rest is in the trace data file)."""

    span_id: str
    parent_span_id: str | None
    name: str
    span_type: str | None
    status: str
    start_time_ns: int
    end_time_ns: int | None
    attributes: dict[str, str]  # key -> JSON text (MLflow's serialized attribute values)


STATUS_NAMES = {
    "STATUS_CODE_OK": "OK",
    "STATUS_CODE_ERROR": "ERROR",
    "STATUS_CODE_UNSET": "UNSET",
    "OK": "OK",
    "ERROR": "ERROR",
    "UNSET": "UNSET",
}


def span_row(span: dict[str, Any], where: str | int) -> SpanRow:
    """The index row of one MLflow span dict; a malformed span is INVALID_PARAMETER_VALUE
    naming ``where`` (``spans[3]``; an int ``i`` is ``spans[i]``, formatted only then)."""
    if not isinstance(span, dict):
        raise invalid(f"Invalid {_where(where)}: expected an object")
    span_id = b64_to_hex(span.get("span_id"), 8)
    if span_id is None:
        raise invalid(f"Invalid {_where(where)}: 'span_id' is required")
    attrs = span.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise invalid(f"Invalid {_where(where)}.attributes: expected an object")
    # the common case (every key and value text, none too long) keeps the span's own
    # dict, which no one changes: no copy per span
    text_attrs: dict[str, str] = attrs
    for k, v in attrs.items():
        if (
            type(v) is not str
            or len(v) > MAX_ATTRIBUTE_BYTES
            or type(k) is not str
            or len(k) > MAX_TAG_KEY
        ):
            text_attrs = _attribute_texts(attrs, where)
            break
    status = span.get("status") or {}
    code = status.get("code") if isinstance(status, dict) else status
    start = span.get("start_time_unix_nano")
    if start is None:
        raise invalid(f"Invalid {_where(where)}: 'start_time_unix_nano' is required")
    end = span.get("end_time_unix_nano")
    try:
        start_ns = start if type(start) is int else int(start)
        end_ns = end if end is None or type(end) is int else int(end)
    except (TypeError, ValueError):
        raise invalid(f"Invalid {_where(where)}: times must be integers (ns)") from None
    if start_ns not in INT64 or (
        end_ns is not None and end_ns not in INT64
    ):  # OTLP's fixed64 holds more than the database's BIGINT
        raise invalid(f"Invalid {_where(where)}: times must be ns below 2**63")
    span_type = text_attrs.get(ATTR_SPAN_TYPE)
    parent = span.get("parent_span_id")
    name = span.get("name")
    return SpanRow(  # positional: a tenth of the call's time went to keywords
        span_id,
        b64_to_hex(parent, 8) if parent else None,
        name if type(name) is str else str(name or ""),
        _json_str(span_type) if span_type is not None else None,
        STATUS_NAMES.get(code, "UNSET") if type(code) is str else _status_name(code),
        start_ns,
        end_ns,
        text_attrs,
    )


def _attribute_texts(attrs: dict[Any, Any], where: str | int) -> dict[str, str]:
    """Span attributes as text (JSON of a value not sent as text), keys cut to
    :data:`MAX_TAG_KEY`; a value past :data:`MAX_ATTRIBUTE_BYTES` is refused."""
    out: dict[str, str] = {}
    for k, v in attrs.items():
        text = v if type(v) is str else json.dumps(v)
        if len(text) > MAX_ATTRIBUTE_BYTES:
            raise invalid(
                f"Invalid {_where(where)}.attributes['{k}']: {len(text)} characters, at most "
                f"{MAX_ATTRIBUTE_BYTES} are accepted per span attribute"
            )
        if type(k) is not str:  # JSON object keys are str already
            k = str(k)
        out[k if len(k) <= MAX_TAG_KEY else k[:MAX_TAG_KEY]] = text
    return out


def _where(where: str | int) -> str:
    return f"spans[{where}]" if isinstance(where, int) else where


def _status_name(code: Any) -> str:
    return STATUS_NAMES.get(str(code or "UNSET"), "UNSET")


def _json_str(text: str) -> str:
    """An attribute's JSON text as the plain string it holds (``'"LLM"'`` -> ``LLM``)."""
    # the hot path of ingest: most values are not strings, or strings without escapes
    if not text.startswith('"'):
        return text
    if "\\" not in text and text.endswith('"') and len(text) > 1:
        return text[1:-1]
    try:
        v = json.loads(text)
    except ValueError:
        return text
    return v if isinstance(v, str) else text


# -- writes --------------------------------------------------------------------------------
def upsert_info(
    conn: Connection, info: TraceInfo, upsert: Any, insert_ignore: Any, *, merge: bool = True
) -> None:
    """Insert the trace or update its info; tags and metadata are merged (a key given
    again takes the new value; :data:`IMPLIED_KEYS` of a new trace become its bits, of an
    existing one rows). Links runs named by metadata ``mlflow.sourceRun``."""
    exists = conn.execute(
        sa.select(traces.c.trace_id).where(traces.c.trace_id == info.trace_id)
    ).first()
    if exists is not None:
        update_infos(conn, [info], upsert, insert_ignore, merge=merge)
        return
    row = _info_row(info)
    tags, meta = info.tags, info.trace_metadata
    bits = implied_bits(tags, meta, row["name"])
    key = new_trace_keys(conn, 1)[0]
    conn.execute(traces.insert(), [{**row, "trace_key": key, "implied": bits}])
    if bits:  # held by the row's bits (IMPLIED_KEYS)
        tags = _not_implied(tags, _TAG_BITS, bits)
        meta = _not_implied(meta, _META_BITS, bits)
    set_keyed(conn, trace_tags, info.trace_id, tags, upsert)
    set_keyed(conn, trace_metadata, info.trace_id, meta, upsert)
    run = info.trace_metadata.get(META_SOURCE_RUN)
    if run:
        link_runs(conn, [info.trace_id], run, insert_ignore)


def _info_row(info: TraceInfo) -> dict[str, Any]:
    """The ``traces`` columns of an info (without its implied bits)."""
    return {
        "trace_id": info.trace_id,
        "experiment_id": int(info.experiment_id),
        "client_request_id": info.client_request_id,
        "request_time": info.request_time,
        "execution_duration": info.execution_duration,
        "state": info.state,
        "request_preview": _cut(info.request_preview, PREVIEW_CHARS),
        "response_preview": _cut(info.response_preview, PREVIEW_CHARS),
        "name": _cut(info.tags.get(TAG_TRACE_NAME), 500),
    }


def update_infos(
    conn: Connection,
    infos: Sequence[TraceInfo],
    upsert: Any,
    insert_ignore: Any,
    *,
    merge: bool = True,
) -> None:
    """Update stored traces' info (:func:`upsert_info` of traces that exist), a statement
    per table for them all: ``merge`` keeps a column the info leaves empty; tags and
    metadata are merged, their implied keys made rows first."""
    if not infos:
        return
    materialize_implied(conn, [i.trace_id for i in infos], insert_ignore)
    # one UPDATE per set of columns (the infos of a batch mostly share theirs)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    tag_rows: list[dict[str, Any]] = []
    meta_rows: list[dict[str, Any]] = []
    runs: dict[str, list[str]] = {}
    for info in infos:
        row = _info_row(info)
        values = {k: v for k, v in row.items() if k != "trace_id" and (v is not None or not merge)}
        by_columns.setdefault(tuple(values), []).append(
            {"b_trace_id": info.trace_id, **{f"b_{k}": v for k, v in values.items()}}
        )
        tag_rows += keyed_rows(info.trace_id, info.tags)
        meta_rows += keyed_rows(info.trace_id, info.trace_metadata)
        run = info.trace_metadata.get(META_SOURCE_RUN)
        if run:
            runs.setdefault(run, []).append(info.trace_id)
    for columns, params in by_columns.items():
        if columns:
            stmt = (
                traces.update()
                .where(traces.c.trace_id == sa.bindparam("b_trace_id"))
                .values({c: sa.bindparam(f"b_{c}") for c in columns})
            )
            conn.execute(stmt, params)
    for table, rows in ((trace_tags, tag_rows), (trace_metadata, meta_rows)):
        if rows:
            upsert(conn, table, ["trace_id", "key"], rows)
    for run, ids in runs.items():
        link_runs(conn, ids, run, insert_ignore)


def set_keyed(
    conn: Connection, table: Table, trace_id: str, values: dict[str, str], upsert: Any
) -> None:
    rows = keyed_rows(trace_id, values)
    if rows:
        upsert(conn, table, ["trace_id", "key"], rows)


def keyed_rows(trace_id: str, values: dict[str, str]) -> list[dict[str, Any]]:
    """A trace's tags or metadata as rows; a key too long is INVALID_PARAMETER_VALUE."""
    rows = []
    for k, v in values.items():
        if len(k) > MAX_TAG_KEY:
            raise invalid(f"Trace tag/metadata key '{k[:50]}...' is longer than {MAX_TAG_KEY}")
        rows.append({"trace_id": trace_id, "key": k, "value": _cut(str(v), MAX_TAG_VALUE)})
    return rows


def link_runs(conn: Connection, trace_ids: Sequence[str], run_id: str, insert_ignore: Any) -> None:
    rows = [{"trace_id": t, "run_id": run_id} for t in dict.fromkeys(trace_ids)]
    if rows:
        insert_ignore(conn, trace_runs, ["trace_id", "run_id"], rows)


#: Span attributes not kept as ``span_attributes`` rows: their values are in other rows
#: already (the trace id; ``spans.span_type``), and search reads them there
#: (:mod:`.trace_search`). Two of a span's four attributes from MLflow's tracer: fewer
#: index rows per trace is most of ingest's time.
UNINDEXED_ATTRIBUTES = frozenset((ATTR_REQUEST_ID, ATTR_SPAN_TYPE))
SPAN_COLUMNS = (
    "trace_key",
    "span_id",
    "parent_span_id",
    "name",
    "span_type",
    "status",
    "start_time_ns",
    "end_time_ns",
)
ATTRIBUTE_COLUMNS = ("trace_key", "span_id", "key", "value")


def _span_index_rows(
    trace_key: int, rows: Iterable[SpanRow]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The index rows of a trace's spans as tuples (:data:`SPAN_COLUMNS`,
    :data:`ATTRIBUTE_COLUMNS`), as the driver takes them."""
    span_rows, attr_rows = [], []
    skip = UNINDEXED_ATTRIBUTES
    for r in rows:
        span_type = r.span_type
        span_rows.append(
            (
                trace_key,
                r.span_id,
                r.parent_span_id,
                r.name[:500],
                None if span_type is None else span_type[:100],
                r.status,
                r.start_time_ns,
                r.end_time_ns,
            )
        )
        for k, v in r.attributes.items():
            if k not in skip:
                attr_rows.append((trace_key, r.span_id, k, _json_str(v)[:INDEXED_VALUE_CHARS]))
    return span_rows, attr_rows


def index_more_spans(conn: Connection, by_trace: Iterable[tuple[int, Iterable[SpanRow]]]) -> None:
    """Index spans of stored traces (by their ``trace_key``), in bulk (a span already
    indexed keeps its first row: a span sent again adds nothing)."""
    span_rows: list[tuple[Any, ...]] = []
    attr_rows: list[tuple[Any, ...]] = []
    for trace_key, rows in by_trace:
        s, a = _span_index_rows(trace_key, rows)
        span_rows += s
        attr_rows += a
    bulk_insert(conn, spans, SPAN_COLUMNS, span_rows, ignore=("trace_key", "span_id"))
    bulk_insert(
        conn, span_attributes, ATTRIBUTE_COLUMNS, attr_rows, ignore=("trace_key", "span_id", "key")
    )


def new_trace_keys(conn: Connection, n: int) -> list[int]:
    """``n`` keys for new traces, in increasing order. SQLite: the next ones after the
    largest (the write transaction holds the database's lock); PostgreSQL: the sequence's."""
    if n <= 0:
        return []
    if conn.dialect.name == "postgresql":
        got = conn.exec_driver_sql(
            f"SELECT nextval('{TRACE_KEY_SEQUENCE}') FROM generate_series(1, %s)", (n,)
        )
        return sorted(r[0] for r in got)
    last = conn.exec_driver_sql("SELECT max(trace_key) FROM traces").scalar() or 0
    return list(range(last + 1, last + 1 + n))


#: PostgreSQL's sequence of ``traces.trace_key`` (migration 0021).
TRACE_KEY_SEQUENCE = "traces_trace_key_seq"


#: A trace's data in a batch file: (file URI, byte offset, byte length).
DataRange = tuple[str, int, int]


#: Span dicts parsed from JSON hold no cycles: the check of every container is skipped.
_BATCH_ENCODER = json.JSONEncoder(check_circular=False)


class SpanList(list):  # type: ignore[type-arg]
    """A trace's span dicts parsed from a request, with the JSON text of their array as
    it was sent (``json_text``, valid JSON: the parser read it). The data file takes
    that text rather than the dicts encoded again; whoever changes the list must drop
    the text (set it to None)."""

    __slots__ = ("json_text",)

    def __init__(self, spans: Iterable[dict[str, Any]] = (), json_text: str | None = None):
        super().__init__(spans)
        self.json_text = json_text


def pack_batch(
    items: Iterable[tuple[str, Sequence[dict[str, Any]]]],
) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """One batch data file: each trace's ``{"spans": [...]}`` (MLflow's ``traces.json``
    text; a :class:`SpanList`'s text as sent) on its own line; returns the bytes and
    each trace's (offset, length)."""
    parts: list[bytes] = []
    offsets: dict[str, tuple[int, int]] = {}
    pos = 0
    encode = _BATCH_ENCODER.encode
    for trace_id, span_dicts in items:
        text = getattr(span_dicts, "json_text", None)
        # the text as sent, unless a line break in it would split the file's line
        if text is not None and "\n" not in text and "\r" not in text:
            data = f'{{"spans": {text}}}'.encode()
        else:
            data = encode({"spans": span_dicts}).encode()
        offsets[trace_id] = (pos, len(data))
        parts.append(data)
        parts.append(b"\n")
        pos += len(data) + 1
    return b"".join(parts), offsets


def set_data_ranges(conn: Connection, moved: Sequence[tuple[str, DataRange]]) -> None:
    """Point traces at their data's new places, one statement for them all."""
    if not moved:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"UPDATE traces SET data_file = {mark}, data_offset = {mark}, data_length = {mark} "
        f"WHERE trace_id = {mark}",
        [(uri, off, length, trace_id) for trace_id, (uri, off, length) in moved],
    )


TRACE_COLUMNS = (
    "trace_id",
    "trace_key",
    "experiment_id",
    "client_request_id",
    "request_time",
    "execution_duration",
    "state",
    "request_preview",
    "response_preview",
    "name",
    "data_file",
    "data_offset",
    "data_length",
    "implied",
)
KEYED_COLUMNS = ("trace_id", "key", "value")


def _not_implied(values: dict[str, str], key_bits: dict[str, int], bits: int) -> dict[str, str]:
    return {k: v for k, v in values.items() if not bits & key_bits.get(k, 0)}


def insert_new(
    conn: Connection,
    batch: Sequence[tuple[TraceInfo, Sequence[SpanRow], DataRange | None]],
    insert_ignore: Any,
) -> None:
    """Traces not stored yet, with their index rows and where their data is: one
    statement per table for the whole batch (the client's batches are new traces; the
    hot path of ingest)."""
    info_rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[Any, ...]] = []
    meta_rows: list[tuple[Any, ...]] = []
    links, span_rows, attr_rows = [], [], []
    keys = new_trace_keys(conn, len(batch))
    for (info, rows, where), key in zip(batch, keys):
        data_file, data_offset, data_length = where or (None, None, None)
        tid = info.trace_id
        name = _cut(info.tags.get(TAG_TRACE_NAME), 500)
        bits = implied_bits(info.tags, info.trace_metadata, name)
        info_rows.append(
            (
                tid,
                key,
                int(info.experiment_id),
                info.client_request_id,
                info.request_time,
                info.execution_duration,
                info.state,
                _cut(info.request_preview, PREVIEW_CHARS),
                _cut(info.response_preview, PREVIEW_CHARS),
                name,
                data_file,
                data_offset,
                data_length,
                bits,
            )
        )
        for out, values, key_bits in (
            (tag_rows, info.tags, _TAG_BITS),
            (meta_rows, info.trace_metadata, _META_BITS),
        ):
            for k, v in values.items():
                if len(k) > MAX_TAG_KEY:
                    raise invalid(
                        f"Trace tag/metadata key '{k[:50]}...' is longer than {MAX_TAG_KEY}"
                    )
                if bits & key_bits.get(k, 0):  # held by the row's bits (IMPLIED_KEYS)
                    continue
                out.append((tid, k, str(v)[:MAX_TAG_VALUE]))
        run = info.trace_metadata.get(META_SOURCE_RUN)
        if run:
            links.append({"trace_id": tid, "run_id": run})
        s_rows, a_rows = _span_index_rows(key, rows)
        span_rows += s_rows
        attr_rows += a_rows
    if not info_rows:
        return
    # in key order: trace ids are random, so their index takes this batch's inserts all
    # over; sorted, each B-tree page is visited once per batch (the span tables' keys
    # grow: their rows are appended in order already, but for their span ids)
    info_rows.sort(key=itemgetter(0))
    span_rows.sort(key=itemgetter(0, 1))
    attr_rows.sort(key=itemgetter(0, 1, 2))
    bulk_insert(conn, traces, TRACE_COLUMNS, info_rows)
    bulk_insert(conn, trace_tags, KEYED_COLUMNS, tag_rows)
    bulk_insert(conn, trace_metadata, KEYED_COLUMNS, meta_rows)
    if links:
        insert_ignore(conn, trace_runs, ["trace_id", "run_id"], links)
    bulk_insert(conn, spans, SPAN_COLUMNS, span_rows)
    bulk_insert(conn, span_attributes, ATTRIBUTE_COLUMNS, attr_rows)


def bulk_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    ignore: Sequence[str] = (),
) -> None:
    """Rows (tuples in ``columns``' order) straight to the driver's ``executemany``: one
    compiled statement, no per-row processing by SQLAlchemy (a third of ingest's time
    went there). The values are plain str/int/None, as the driver takes them. With
    ``ignore`` (a unique key's columns), a row whose key is stored already is skipped."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    prep = conn.dialect.identifier_preparer
    sql = (
        f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    if ignore:
        sql += f" ON CONFLICT ({', '.join(prep.quote(c) for c in ignore)}) DO NOTHING"
    conn.exec_driver_sql(sql, rows)


def info_from_spans(trace_id: str, experiment_id: str, rows: Sequence[SpanRow]) -> TraceInfo:
    """A trace's info as its spans tell it (OTLP producers that never call start_trace):
    times from the spans, state, name and previews from the root span when present."""
    start = min(r.start_time_ns for r in rows) // 1_000_000
    info = TraceInfo(trace_id, experiment_id, start)
    info.trace_metadata[META_SCHEMA_VERSION] = "3"
    root = next((r for r in rows if r.parent_span_id is None), None)
    if root is not None:
        info.tags[TAG_TRACE_NAME] = root.name
        if root.end_time_ns is not None:
            info.execution_duration = (root.end_time_ns - root.start_time_ns) // 1_000_000
        info.state = {"OK": "OK", "ERROR": "ERROR"}.get(root.status, "OK")
        if ATTR_INPUTS in root.attributes:
            info.request_preview = root.attributes[ATTR_INPUTS][:PREVIEW_CHARS]
        if ATTR_OUTPUTS in root.attributes:
            info.response_preview = root.attributes[ATTR_OUTPUTS][:PREVIEW_CHARS]
    return info


def delete(conn: Connection, trace_ids: Sequence[str]) -> int:
    """Delete traces and their rows (the caller deletes their assessments first)."""
    ids = list(trace_ids)
    if not ids:
        return 0
    keys = sa.select(traces.c.trace_key).where(traces.c.trace_id.in_(ids)).scalar_subquery()
    for t in _CHILD_TABLES:
        column = link_column(t)
        conn.execute(t.delete().where(column.in_(keys if column.name == "trace_key" else ids)))
    return conn.execute(traces.delete().where(traces.c.trace_id.in_(ids))).rowcount or 0


# -- reads ---------------------------------------------------------------------------------
def load_infos(conn: Connection, rows: Sequence[Any]) -> list[TraceInfo]:
    """TraceInfos of trace rows, with their tags and metadata, in the rows' order."""
    out = [
        TraceInfo(
            trace_id=r.trace_id,
            experiment_id=str(r.experiment_id),
            request_time=r.request_time,
            state=r.state,
            execution_duration=r.execution_duration,
            client_request_id=r.client_request_id,
            request_preview=r.request_preview,
            response_preview=r.response_preview,
        )
        for r in rows
    ]
    for info, r in zip(out, rows):
        if r.implied:
            info.tags, info.trace_metadata = implied_items(r.implied, r.name)
    by_id = {i.trace_id: i for i in out}
    if not by_id:
        return out
    ids = list(by_id)
    for t, attr in ((trace_tags, "tags"), (trace_metadata, "trace_metadata")):
        for tid, k, v in conn.execute(
            sa.select(t.c.trace_id, t.c.key, t.c.value).where(t.c.trace_id.in_(ids))
        ):
            getattr(by_id[tid], attr)[k] = v if v is not None else ""
    return out


#: Trace ids per statement of :func:`rows_of` on SQLite (under its oldest variable limit).
_IDS_PER_STATEMENT = 900


def rows_of(conn: Connection, columns: Sequence[str], trace_ids: Sequence[str]) -> list[Any]:
    """``columns`` of the stored traces among ``trace_ids`` (rows with attribute access),
    in driver SQL: ingest asks this of every batch, and SQLAlchemy's expanding ``IN`` of
    500 ids cost 4x the query itself (~2 µs per trace)."""
    if not trace_ids:
        return []
    prep = conn.dialect.identifier_preparer
    head = f"SELECT {', '.join(prep.quote(c) for c in columns)} FROM {prep.format_table(traces)}"
    if conn.dialect.name == "postgresql":
        return list(conn.exec_driver_sql(f"{head} WHERE trace_id = ANY(%s)", (list(trace_ids),)))
    ids = list(trace_ids)
    out: list[Any] = []
    for lo in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = tuple(ids[lo : lo + _IDS_PER_STATEMENT])
        marks = ", ".join("?" * len(chunk))
        out += conn.exec_driver_sql(f"{head} WHERE trace_id IN ({marks})", chunk)
    return out


def get_row(conn: Connection, trace_id: str) -> Any:
    row = conn.execute(sa.select(traces).where(traces.c.trace_id == trace_id)).first()
    if row is None:
        raise not_found(f"Trace with ID '{trace_id}' not found.")
    return row


# -- span data <-> OTLP JSON ----------------------------------------------------------------
def any_value(value: Any) -> dict[str, Any]:
    """A value as OTLP's ``AnyValue`` JSON (snake_case, as MLflow's server answers)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int):
        return {"int_value": str(value)}
    if isinstance(value, float):
        return {"double_value": value}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, (list, tuple)):
        return {"array_value": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {
            "kvlist_value": {
                "values": [{"key": str(k), "value": any_value(v)} for k, v in value.items()]
            }
        }
    return {"string_value": str(value)}


def span_to_otlp_json(span: dict[str, Any]) -> dict[str, Any]:
    """One MLflow span dict as an OTLP ``Span`` in JSON (the ``traces/get`` answer)."""
    attrs = []
    for k, v in (span.get("attributes") or {}).items():
        try:
            decoded = json.loads(v) if isinstance(v, str) else v
        except ValueError:
            decoded = v
        attrs.append({"key": k, "value": any_value(decoded)})
    status = span.get("status") or {}
    out: dict[str, Any] = {
        "trace_id": span.get("trace_id"),
        "span_id": span.get("span_id"),
        "name": span.get("name", ""),
        "start_time_unix_nano": str(span.get("start_time_unix_nano") or 0),
        "end_time_unix_nano": str(span.get("end_time_unix_nano") or 0),
        "attributes": attrs,
        "status": {
            "code": status.get("code") or "STATUS_CODE_UNSET",
            "message": status.get("message") or "",
        },
        "events": [
            {
                "name": e.get("name", ""),
                "time_unix_nano": str(e.get("time_unix_nano") or 0),
                "attributes": [
                    {"key": k, "value": any_value(v)}
                    for k, v in (e.get("attributes") or {}).items()
                ],
            }
            for e in span.get("events") or []
        ],
    }
    if span.get("parent_span_id"):
        out["parent_span_id"] = span["parent_span_id"]
    return out


def merge_span_files(parts: Iterable[bytes]) -> list[dict[str, Any]]:
    """Spans of several ``{"spans": [...]}`` files, each span once (first seen), by start."""
    lists = []
    for raw in parts:
        try:
            lists.append(json.loads(raw).get("spans") or [])
        except (ValueError, AttributeError):
            continue
    return merge_spans(lists)


def merge_spans(lists: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Span dicts of several lists, each span once (first seen), by start."""
    seen: dict[str, dict[str, Any]] = {}
    for spans in lists:
        for s in spans:
            if isinstance(s, dict):
                seen.setdefault(str(s.get("span_id")), s)
    return sorted(seen.values(), key=lambda s: int(s.get("start_time_unix_nano") or 0))


# -- correlation of two filters (MLflow's calculate-filter-correlation) ----------------
#: The additive prior of the smoothed figure (Jeffreys').
JEFFREYS = 0.5


def _npmi_cells(n11: float, n10: float, n01: float, n00: float) -> float:
    """Normalized pointwise mutual information of a 2x2 table, clipped to [-1, 1]."""
    import math

    total = n11 + n10 + n01 + n00
    a, b = n11 + n10, n11 + n01
    if a <= 0 or b <= 0 or n11 <= 0:
        return math.nan
    if n10 == 0 and n01 == 0 and n00 == 0:
        return 1.0
    pmi = math.log(n11 * total / (a * b))
    return max(-1.0, min(1.0, pmi / -math.log(n11 / total)))


def npmi(joint: int, first: int, second: int, total: int) -> tuple[float, float]:
    """``(npmi, smoothed npmi)`` of two filters' counts: NaN when either matches nothing,
    -1 when both match but never together (MLflow's policy)."""
    import math

    cells = (joint, first - joint, second - joint, total - first - second + joint)
    if total <= 0 or first == 0 or second == 0 or min(cells) < 0:
        return math.nan, math.nan
    raw = -1.0 if joint == 0 else _npmi_cells(*cells)
    smooth = _npmi_cells(*(c + JEFFREYS for c in cells))
    if cells[1] == 0 and cells[2] == 0 and cells[3] == 0:
        smooth = 1.0
    return raw, smooth


#: The trace tags of the shared service's access rules (server/trace_access.py).
OWNER_TAG = "mlops.owner"
VISIBILITY_TAG = "mlops.visibility"


def owner_clauses(owners: Sequence[str] | None, viewer: str | None) -> list[Any]:
    """The access filter of ``search_traces``: traces owned by ``owners``, without other
    users' private ones (None: no filter)."""
    if owners is None:
        return []
    tags = trace_tags

    def tagged(key: str, *value: Any) -> Any:
        return sa.exists().where(tags.c.trace_id == traces.c.trace_id, tags.c.key == key, *value)

    private = tagged(VISIBILITY_TAG, tags.c.value == "private")
    mine = tagged(OWNER_TAG, tags.c.value == viewer) if viewer else sa.false()
    return [tagged(OWNER_TAG, tags.c.value.in_(list(owners))), sa.or_(mine, ~private)]
