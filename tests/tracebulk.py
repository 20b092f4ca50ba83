"""Traces as our client's writer sends them in an ``api/v1/traces/log-bulk`` body (MLflow's
span dicts, TraceInfoV3 JSON): the bodies of tests/server/test_trace_bulk_body.py and of
bench/bench_tracing.py (which puts tests/ on its path for this module)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from jupyter_mlops.tracking.traces import hex_to_b64

#: 2023-11-14T22:13:20Z in ns, the traces' request time.
T0 = 1_700_000_000_000_000_000


def bulk_trace(
    exp: str,
    tid: str,
    i: int,
    spans: Sequence[tuple[str, str]],
    *,
    inputs: Any,
    outputs: Sequence[Any] | None = None,
    t0: int = T0,
    events: Sequence[dict[str, Any]] = (),
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One item of the body's ``traces``: trace ``tr-<tid>`` (``tid``: 32 hex digits) in
    experiment ``exp``, its ``spans`` ``(name, span type)`` each the child of the one
    before (span ids from ``i``), each with ``inputs`` (and its item of ``outputs``) and
    ``events``, from ``t0`` (ns) on; ``info`` adds TraceInfoV3 fields. Named after its
    first span."""
    return {
        "info": {
            "trace_id": f"tr-{tid}",
            "trace_location": {
                "type": "MLFLOW_EXPERIMENT",
                "mlflow_experiment": {"experiment_id": exp},
            },
            "request_time": "2023-11-14T22:13:20Z",
            "execution_duration": "0.001s",
            "state": "OK",
            "tags": {"mlflow.traceName": spans[0][0]},
            **(info or {}),
        },
        "spans": [
            {
                "trace_id": hex_to_b64(tid),
                "span_id": hex_to_b64(f"{i:012x}{j:04x}"),
                "parent_span_id": None if j == 0 else hex_to_b64(f"{i:012x}{j - 1:04x}"),
                "name": name,
                "start_time_unix_nano": t0 + j,
                "end_time_unix_nano": t0 + 1000 - j,
                "status": {"code": "STATUS_CODE_OK", "message": ""},
                "attributes": {
                    "mlflow.traceRequestId": json.dumps(f"tr-{tid}"),
                    "mlflow.spanType": json.dumps(kind),
                    "mlflow.spanInputs": json.dumps(inputs),
                    **({} if outputs is None else {"mlflow.spanOutputs": json.dumps(outputs[j])}),
                },
                "events": list(events),
            }
            for j, (name, kind) in enumerate(spans)
        ],
    }
