"""A finished trace (the root :class:`~.tracing.Span` and its children) as MLflow's JSON:
the trace info (``TraceInfoV3``) and the span dicts (``Span.to_dict()``: base64 ids,
attribute values as JSON text). Runs on the writer thread, so the traced caller never
pays for serialization.
"""

from __future__ import annotations

import base64
import inspect
import json
from typing import Any


def _inputs(sig: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if sig is None:
        return {"args": list(args), **kwargs}
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": list(args), **kwargs}
    return dict(bound.arguments)


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return json.dumps(str(value))


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def trace_payload(root: Any, experiment_id: str, run_id: str | None) -> dict[str, Any]:
    """One finished trace as ``{"info": TraceInfoV3 JSON, "spans": [span dicts]}``."""
    from ..tracking.traces import PREVIEW_CHARS, ms_to_duration, ms_to_timestamp

    spans: list[dict[str, Any]] = []
    stack = [root]
    while stack:
        s = stack.pop()
        stack.extend(s._children)
        inputs = s.inputs
        if isinstance(inputs, tuple) and len(inputs) == 3:
            inputs = _inputs(*inputs)
        attrs = {k: _dump(v) for k, v in s.attributes.items()}
        attrs["mlflow.traceRequestId"] = json.dumps(root.request_id)
        attrs["mlflow.spanType"] = json.dumps(s.span_type)
        if inputs is not None:
            attrs["mlflow.spanInputs"] = _dump(inputs)
        if s.outputs is not None:
            attrs["mlflow.spanOutputs"] = _dump(s.outputs)
        spans.append(
            {
                "trace_id": _b64(root.trace_id),
                "span_id": _b64(s.span_id),
                "parent_span_id": _b64(s.parent.span_id) if s.parent is not None else None,
                "name": s.name,
                "start_time_unix_nano": s.start_ns,
                "end_time_unix_nano": s.end_ns,
                "events": [
                    {"name": n, "time_unix_nano": t, "attributes": a} for n, t, a in s.events
                ],
                "status": {"code": f"STATUS_CODE_{s.status}", "message": s.status_message},
                "attributes": attrs,
                "links": [],
            }
        )
    spans.sort(key=lambda d: d["start_time_unix_nano"])
    root_attrs = spans[0]["attributes"] if spans else {}
    start_ms = root.start_ns // 1_000_000
    metadata = {"mlflow.trace_schema.version": "3"}
    if run_id:
        metadata["mlflow.sourceRun"] = run_id
    info: dict[str, Any] = {
        "trace_id": root.request_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": str(experiment_id)},
        },
        "request_time": ms_to_timestamp(start_ms),
        "execution_duration": ms_to_duration(
            ((root.end_ns or root.start_ns) - root.start_ns) // 1_000_000
        ),
        "state": "ERROR" if root.status == "ERROR" else "OK",
        "trace_metadata": metadata,
        "tags": {"mlflow.traceName": root.name},
    }
    if "mlflow.spanInputs" in root_attrs:
        info["request_preview"] = root_attrs["mlflow.spanInputs"][:PREVIEW_CHARS]
    if "mlflow.spanOutputs" in root_attrs:
        info["response_preview"] = root_attrs["mlflow.spanOutputs"][:PREVIEW_CHARS]
    return {"info": info, "spans": spans}
