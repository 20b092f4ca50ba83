"""MLflow 3's tracing REST API: traces (v2 and v3 routes), assessments, the OTLP/HTTP
ingest route (``v1/traces``) and the UI's ``get-trace-artifact``.

Endpoint functions ``(fields, store)`` as everywhere (:class:`TraceHandler` adds the
path parameters to the fields); storage is :mod:`jupyter_mlops.tracking.trace_store`'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...tracking import traces as t
from ...tracking.errors import TrackingError, invalid
from ...tracking.gcpause import gc_paused
from ...tracking.traces import TraceInfo, parse_duration, parse_timestamp
from ..request import Fields
from .base import MLOpsHandler, PathRpcHandler, Rpc, RpcHandler

if TYPE_CHECKING:
    from ...tracking.store import TrackingStore

#: The header naming the experiment OTLP spans go to (MLflow's).
EXPERIMENT_HEADER = "x-mlflow-experiment-id"
#: Largest OTLP request body (bytes).
MAX_OTLP_BODY = 64 << 20


def _experiment_ids(f: Fields, required: bool = False) -> list[str]:
    asked = f.strings("experiment_ids", ids=True)
    if required and not asked:
        raise invalid("Missing value for required parameter 'experiment_ids'.")
    return asked


def _kv_list(f: Fields, name: str) -> dict[str, str]:
    """``[{"key","value"}]`` (v2) or ``{key: value}`` (v3 maps)."""
    raw = f.data.get(name)
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {str(k): "" if v is None else str(v) for k, v in raw.items()}
    return dict(f.key_values(name))


def _info_from_v3(raw: Any) -> TraceInfo:
    if not isinstance(raw, dict):
        raise invalid("Missing value for required parameter 'trace.trace_info'.")
    f = Fields(raw, prefix="trace.trace_info")
    loc = raw.get("trace_location") or {}
    exp = (
        (loc.get("mlflow_experiment") or {}).get("experiment_id") if isinstance(loc, dict) else None
    )
    if not exp:
        raise invalid("Missing value for required parameter 'trace.trace_info.trace_location'.")
    state = f.string("state") or "STATE_UNSPECIFIED"
    if state not in t.STATES:
        raise invalid(f"Invalid value {state!r} for 'trace.trace_info.state': one of {t.STATES}")
    req = raw.get("request_time")
    info = TraceInfo(
        trace_id=f.string("trace_id") or t.new_trace_id(),
        experiment_id=str(exp),
        request_time=parse_timestamp(req, "trace_info.request_time") if req is not None else 0,
        state=state,
        client_request_id=f.string("client_request_id"),
        request_preview=f.text("request_preview") or None,
        response_preview=f.text("response_preview") or None,
        tags=_kv_list(f, "tags"),
        trace_metadata=_kv_list(f, "trace_metadata"),
    )
    dur = raw.get("execution_duration")
    if dur is not None:
        info.execution_duration = parse_duration(dur, "trace_info.execution_duration")
    return info


# -- v3 traces ---------------------------------------------------------------------
def start_trace_v3(f: Fields, store: TrackingStore) -> dict[str, Any]:
    trace = f.data.get("trace")
    if not isinstance(trace, dict):
        raise invalid("Missing value for required parameter 'trace'.")
    info = store.start_trace(_info_from_v3(trace.get("trace_info")))
    return {"trace": {"trace_info": info.to_dict()}}


def get_trace_info_v3(f: Fields, store: TrackingStore) -> dict[str, Any]:
    info = store.get_trace_info(f.string("trace_id", required=True) or "")
    return {"trace": {"trace_info": info.to_dict()}}


def get_trace(f: Fields, store: TrackingStore) -> dict[str, Any]:
    trace_id = f.string("trace_id", required=True) or ""
    info = store.get_trace_info(trace_id)
    spans = store.get_trace_spans(trace_id)
    return {
        "trace": {
            "trace_info": info.to_dict(),
            "spans": [t.span_to_otlp_json(s) for s in spans],
        }
    }


def batch_get_traces(f: Fields, store: TrackingStore) -> dict[str, Any]:
    out = []
    for trace_id in f.strings("trace_ids"):
        info = store.get_trace_info(trace_id)
        spans = store.get_trace_spans(trace_id)
        out.append({"trace_info": info.to_dict(), "spans": [t.span_to_otlp_json(s) for s in spans]})
    return {"traces": out} if out else {}


def _search_args(f: Fields) -> dict[str, Any]:
    return {
        "filter_string": f.string("filter"),
        "max_results": f.integer(
            "max_results", default=100, minimum=1, maximum=t.MAX_SEARCH_RESULTS
        )
        or 100,
        "order_by": f.strings("order_by") or None,
        "page_token": f.string("page_token"),
    }


def search_traces_v3(f: Fields, store: TrackingStore) -> dict[str, Any]:
    exps = []
    for i, loc in enumerate(f.objects("locations")):
        m = loc.data.get("mlflow_experiment")
        if not isinstance(m, dict) or not m.get("experiment_id"):
            raise invalid(f"Invalid locations[{i}]: an MLflow experiment location is required")
        exps.append(str(m["experiment_id"]))
    if not exps:
        raise invalid("Missing value for required parameter 'locations'.")
    infos, token = store.search_traces(exps, **_search_args(f))
    out: dict[str, Any] = {"traces": [i.to_dict() for i in infos]} if infos else {}
    if token:
        out["next_page_token"] = token
    return out


def link_to_run(f: Fields, store: TrackingStore) -> dict[str, Any]:
    ids = f.strings("trace_ids")
    if not ids:
        raise invalid("Missing value for required parameter 'trace_ids'.")
    store.link_traces_to_run(ids, f.string("run_id", required=True) or "")
    return {}


def trace_metrics(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """``traces/metrics`` (MLflow's ``QueryTraceMetrics``): see :mod:`.trace_metrics`."""
    from ...tracking import trace_metrics as tm
    from ...tracking.validation import experiment_int_ids

    name = f.string("metric_name", required=True) or ""
    if name not in tm.METRIC_NAMES:
        raise invalid(f"Unknown trace metric {name!r}: one of {sorted(tm.METRIC_NAMES)}.")
    view = f.string("view_type") or tm.TRACES
    if view.isdigit():  # the proto enum's number
        view = {"1": tm.TRACES, "2": tm.SPANS, "3": tm.ASSESSMENTS}.get(view, view)
    aggs = []
    for i, o in enumerate(f.objects("aggregations")):
        kind = o.string("aggregation_type", required=True) or ""
        if kind.isdigit():
            kind = dict(enumerate(tm.AGGREGATIONS, start=1)).get(int(kind), kind)
        if kind not in tm.AGGREGATIONS:
            raise invalid(
                f"Invalid aggregations[{i}].aggregation_type {kind!r}: one of {tm.AGGREGATIONS}"
            )
        pct = o.number("percentile_value") if kind == "PERCENTILE" else None
        aggs.append(tm.Aggregation(kind, None if pct is None else float(pct)))
    q = tm.MetricsQuery(
        experiment_ids=experiment_int_ids(_experiment_ids(f)),
        view=view,
        metric=name,
        aggregations=aggs or [tm.Aggregation("COUNT")],
        dimensions=f.strings("dimensions"),
        filters=f.strings("filters"),
        time_interval_seconds=f.integer("time_interval_seconds"),
        start_time_ms=f.integer("start_time_ms"),
        end_time_ms=f.integer("end_time_ms"),
        max_results=f.integer(
            "max_results", default=tm.MAX_RESULTS, minimum=1, maximum=tm.MAX_RESULTS
        )
        or tm.MAX_RESULTS,
    )
    points = store.trace_metrics(q)
    return {"data_points": points} if points else {}


def filter_correlation(f: Fields, store: TrackingStore) -> dict[str, Any]:
    exps = _experiment_ids(f, required=True)
    return store.trace_correlation(
        exps,
        f.string("filter_string1", required=True) or "",
        f.string("filter_string2", required=True) or "",
        f.string("base_filter"),
    )


def set_trace_tag(f: Fields, store: TrackingStore) -> dict[str, Any]:
    trace_id = f.string("trace_id", required=True) or ""
    store.set_trace_tag(trace_id, f.string("key", required=True) or "", f.text("value"))
    return {}


def delete_trace_tag(f: Fields, store: TrackingStore) -> dict[str, Any]:
    trace_id = f.string("trace_id", required=True) or ""
    store.delete_trace_tag(trace_id, f.string("key", required=True) or "")
    return {}


def delete_traces(f: Fields, store: TrackingStore) -> dict[str, Any]:
    n = store.delete_traces(
        f.experiment_id() or "",
        max_timestamp_millis=f.integer("max_timestamp_millis"),
        max_traces=f.integer("max_traces", minimum=1),
        trace_ids=f.strings("request_ids") or None,
    )
    return {"traces_deleted": n}


# -- v2 traces ---------------------------------------------------------------------
def start_trace_v2(f: Fields, store: TrackingStore) -> dict[str, Any]:
    info = store.start_trace_v2(
        f.experiment_id() or "",
        f.integer("timestamp_ms", required=True) or 0,
        _kv_list(f, "request_metadata"),
        _kv_list(f, "tags"),
    )
    return {"trace_info": info.to_v2_dict()}


def trace_v2(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """``PATCH traces/{id}`` (v2 end) and ``GET traces/{id}`` (v3 info)."""
    return get_trace_info_v3(f, store)


def end_trace_v2(f: Fields, store: TrackingStore) -> dict[str, Any]:
    status = f.string("status") or "OK"
    state = t.V2_STATUS.get(status)
    if state is None:
        raise invalid(f"Invalid value {status!r} for parameter 'status'")
    info = store.end_trace_v2(
        f.string("request_id", required=True) or "",
        f.integer("timestamp_ms", required=True) or 0,
        state,
        _kv_list(f, "request_metadata"),
        _kv_list(f, "tags"),
    )
    return {"trace_info": info.to_v2_dict()}


def get_trace_info_v2(f: Fields, store: TrackingStore) -> dict[str, Any]:
    info = store.get_trace_info(f.string("request_id", required=True) or "")
    return {"trace_info": info.to_v2_dict()}


def search_traces_v2(f: Fields, store: TrackingStore) -> dict[str, Any]:
    exps = _experiment_ids(f, required=True)
    infos, token = store.search_traces(exps, **_search_args(f))
    out: dict[str, Any] = {"traces": [i.to_v2_dict() for i in infos]} if infos else {}
    if token:
        out["next_page_token"] = token
    return out


def log_bulk(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """``api/v1/traces/log-bulk``: whole traces (our client's batches), each
    ``{"info": TraceInfoV3 JSON, "spans": [MLflow span dicts]}``; all or nothing."""
    raw = f.data.get("traces")
    if not isinstance(raw, list) or not raw:
        raise invalid("Missing value for required parameter 'traces'.")
    records = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("spans"), list):
            raise invalid(f"Invalid traces[{i}]: an object with 'info' and 'spans' is required")
        records.append((TraceInfo.from_dict(item.get("info")), item["spans"]))
    store.log_traces(records)
    return {}


# -- assessments -------------------------------------------------------------------
def create_assessment(f: Fields, store: TrackingStore) -> dict[str, Any]:
    trace_id = f.string("trace_id", required=True) or ""
    body = f.data.get("assessment")
    return {"assessment": store.create_assessment(trace_id, body)}  # type: ignore[arg-type]


def get_assessment(f: Fields, store: TrackingStore) -> dict[str, Any]:
    a = store.get_assessment(
        f.string("trace_id", required=True) or "", f.string("assessment_id", required=True) or ""
    )
    return {"assessment": a}


def update_assessment(f: Fields, store: TrackingStore) -> dict[str, Any]:
    changes = f.data.get("assessment")
    if not isinstance(changes, dict):
        raise invalid("Missing value for required parameter 'assessment'.")
    mask = f.data.get("update_mask")
    if isinstance(mask, dict):
        mask = ",".join(mask.get("paths") or [])
    if not isinstance(mask, str) or not mask.strip():
        raise invalid("Missing value for required parameter 'update_mask'.")
    a = store.update_assessment(
        f.string("trace_id", required=True) or "",
        f.string("assessment_id", required=True) or "",
        changes,
        [m for m in mask.split(",") if m.strip()],
    )
    return {"assessment": a}


def delete_assessment(f: Fields, store: TrackingStore) -> dict[str, Any]:
    store.delete_assessment(
        f.string("trace_id", required=True) or "", f.string("assessment_id", required=True) or ""
    )
    return {}


# -- handlers ----------------------------------------------------------------------
class TraceHandler(PathRpcHandler):
    """A tracing route: fields from the query and JSON body plus path parameters."""


class BulkTraceHandler(TraceHandler):
    """``api/v1/traces/log-bulk``: a batch of whole traces, parsed and stored with the
    cyclic GC paused; each trace's spans keep their JSON text for its data file
    (:mod:`..trace_body`)."""

    bulk_ingest = True

    def body_parser(self) -> Callable[[str | bytes], dict[str, Any]]:
        from ..trace_body import parse_log_bulk_body

        return parse_log_bulk_body


class OtlpHandler(RpcHandler):
    """``POST v1/traces``: OTLP/HTTP spans (protobuf or JSON), experiment from the
    ``x-mlflow-experiment-id`` header; answers OTLP's ``ExportTraceServiceResponse``
    (``{}``). Malformed payloads are 400 with MLflow's error JSON, nothing stored.

    The body is read as the other large-body routes' are: declared within
    :data:`MAX_OTLP_BODY` (else 413, unread) and admitted by the server's body budget
    (else 503 with ``Retry-After``, which OTLP exporters retry)."""

    storage_name = "artifact store"
    binary_body = True
    too_large_status = 413

    def initialize(self, name: str) -> None:  # type: ignore[override]
        super().initialize(
            name,
            {},
            body_limit=MAX_OTLP_BODY,
            body_limit_message=(
                "OTLP request bodies must be at most {limit} bytes, got a request of size "
                "{size}: send fewer spans per request."
            ),
        )

    def takes_body(self, method: str) -> bool:
        return method == "POST"

    @web.authenticated
    @authorized
    async def post(self) -> None:
        from ...tracking import otlp

        self.refuse_if_forged()
        if self._refusal is not None:
            self.send_tracking_error(self._refusal)
            return
        holder = [self.take_body()]

        async def work() -> None:
            exp = self.request.headers.get(EXPERIMENT_HEADER)
            if not exp:
                raise invalid(f"Missing required header '{EXPERIMENT_HEADER}'")
            ctype = (self.request.headers.get("Content-Type") or "").split(";")[0].strip()
            encoding = (self.request.headers.get("Content-Encoding") or "").lower()
            store = self.store

            def ingest() -> None:
                with gc_paused():
                    parse_and_store()

            def parse_and_store() -> None:
                body, holder[0] = holder[0], b""
                raw = body.encode() if isinstance(body, str) else body
                if encoding == "gzip":
                    raw = _gunzip(raw, MAX_OTLP_BODY)
                elif encoding not in ("", "identity"):
                    raise invalid(f"Unsupported Content-Encoding '{encoding}'")
                if ctype == "application/json":
                    by_trace = otlp.parse_json(raw)
                elif ctype in ("application/x-protobuf", "application/protobuf", ""):
                    by_trace = otlp.parse_protobuf(raw)
                else:
                    raise invalid(
                        f"Unsupported Content-Type '{ctype}': send application/x-protobuf "
                        "or application/json"
                    )
                store.log_spans(exp, by_trace)

            await self.run(ingest)
            if ctype == "application/json":
                self.send_json("{}")
            else:
                self.set_header("Content-Type", "application/x-protobuf")
                self.finish(b"")

        await self.guarded(work)


def _gunzip(data: bytes, limit: int) -> bytes:
    """A gzip body, refused (413) when it inflates past ``limit``: the cap holds for
    what is parsed, not only for what was sent."""
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error:
        raise invalid("Invalid OTLP payload: not gzip") from None
    if len(out) > limit or d.unconsumed_tail:
        raise TrackingError(
            f"OTLP request bodies must be at most {limit} bytes once decompressed",
            "INVALID_PARAMETER_VALUE",
            413,
        )
    if not d.eof:
        raise invalid("Invalid OTLP payload: not gzip (truncated)")
    return out


class TraceArtifactHandler(MLOpsHandler):
    """``GET ajax-api/2.0/mlflow/get-trace-artifact?request_id=``: the trace's data
    (``{"spans": [...]}``) as the attachment ``traces.json`` (MLflow's UI route)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        async def work() -> None:
            fields = Fields.from_query(self.request.query_arguments)
            trace_id = fields.string("request_id") or fields.string("trace_id", required=True)
            store = self.store
            spans = await self.run(store.get_trace_spans, trace_id or "")
            self.set_header("Content-Type", "application/json")
            self.set_header("Content-Disposition", "attachment; filename=traces.json")
            self.finish(json.dumps({"spans": spans}))

        await self.guarded(work)


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(url regex under mlops/, handler, kwargs)`` of every tracing route."""
    v2 = re.escape("api/2.0/mlflow/traces")
    v3 = re.escape("api/3.0/mlflow/traces")
    tid = r"/(?P<trace_id>[^/]+)"
    rid = r"/(?P<request_id>[^/]+)"
    table: list[tuple[str, Mapping[str, Rpc]]] = [
        (v3, {"POST": start_trace_v3}),
        (v3 + "/get", {"GET": get_trace}),
        (v3 + "/batchGet", {"GET": batch_get_traces, "POST": batch_get_traces}),
        (v3 + "/search", {"POST": search_traces_v3, "GET": search_traces_v3}),
        (v3 + "/metrics", {"POST": trace_metrics}),
        (v3 + "/calculate-filter-correlation", {"POST": filter_correlation}),
        (v3 + "/link-to-run", {"POST": link_to_run}),
        (v3 + "/delete-traces", {"POST": delete_traces}),
        (v3 + tid + "/assessments", {"POST": create_assessment}),
        (
            v3 + tid + r"/assessments/(?P<assessment_id>[^/]+)",
            {"GET": get_assessment, "PATCH": update_assessment, "DELETE": delete_assessment},
        ),
        (v3 + tid + "/tags", {"PATCH": set_trace_tag, "DELETE": delete_trace_tag}),
        (v3 + tid, {"GET": get_trace_info_v3}),
        (v2, {"POST": start_trace_v2, "GET": search_traces_v2}),
        (v2 + "/delete-traces", {"POST": delete_traces}),
        (v2 + "/link-to-run", {"POST": link_to_run}),
        (v2 + rid + "/info", {"GET": get_trace_info_v2}),
        (v2 + tid + "/tags", {"PATCH": set_trace_tag, "DELETE": delete_trace_tag}),
        (v2 + rid, {"PATCH": end_trace_v2}),
    ]
    out: list[tuple[str, Any, dict[str, Any]]] = [
        (regex, TraceHandler, {"rpcs": rpcs}) for regex, rpcs in table
    ]
    out.append(
        (re.escape("api/v1/traces/log-bulk"), BulkTraceHandler, {"rpcs": {"POST": log_bulk}})
    )
    out.append(("v1/traces", OtlpHandler, {}))
    out.append((re.escape("ajax-api/2.0/mlflow/get-trace-artifact"), TraceArtifactHandler, {}))
    return out
