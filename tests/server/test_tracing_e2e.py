"""Tracing end to end against a real ``jupyter server`` process: MLflow's own
``@mlflow.trace`` and ``mlflow.search_traces`` unchanged, spans from the OpenTelemetry
SDK over OTLP/HTTP protobuf, assessments, and bad input (4xx, nothing half-written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from serverproc import JupyterServerProcess

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = JupyterServerProcess(root=tmp_path_factory.mktemp("tracing"), base_url="/t/")
    s.start()
    yield s
    s.stop()


def _env(server: JupyterServerProcess, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "JUPYTER_MLOPS_"))}
    env.update(
        MLFLOW_TRACKING_URI=server.tracking_uri,
        MLFLOW_TRACKING_TOKEN=server.token,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true",
        HOME=str(home),
    )
    return env


def _drive(server: JupyterServerProcess, tmp_path: Path, code: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_env(server, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, f"{proc.stderr[-4000:]}\n--- server ---\n{server.log()[-3000:]}"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def _call(
    server: JupyterServerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    req = urllib.request.Request(
        server.tracking_uri + "/" + path,
        data=body,
        method=method,
        headers={"Authorization": f"token {server.token}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw.strip() else {}
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _json(
    server: JupyterServerProcess, method: str, path: str, data: Any = None
) -> tuple[int, Any]:
    body = None if data is None else json.dumps(data).encode()
    return _call(server, method, path, body, {"Content-Type": "application/json"})


MLFLOW_CHAIN = """
import json, mlflow
mlflow.set_experiment("chain")

@mlflow.trace(span_type="TOOL")
def leaf(x):
    return x * 2

@mlflow.trace
def middle(x):
    return leaf(x) + 1

@mlflow.trace(name="top")
def top(x):
    return middle(x) * 10

results = [top(i) for i in range(3)]
mlflow.flush_trace_async_logging()
found = mlflow.search_traces(return_type="list", order_by=["timestamp ASC"])
trace = mlflow.get_trace(found[0].info.trace_id)
spans = {s.span_id: s for s in trace.data.spans}
tree = sorted(
    (s.name, spans[s.parent_id].name if s.parent_id else None, str(s.span_type)) for s in spans.values()
)
tools = mlflow.search_traces(filter_string="span.type = 'TOOL'", return_type="list")
slow = mlflow.search_traces(filter_string="trace.execution_time_ms > 100000000", return_type="list")
print("RESULT " + json.dumps({
    "results": results, "n": len(found), "tree": tree, "state": str(trace.info.state),
    "inputs": trace.data.spans[0].inputs if trace.data.spans[0].name == "top" else None,
    "tools": len(tools), "slow": len(slow), "trace_id": found[0].info.trace_id,
    "experiment_id": found[0].info.experiment_id,
}))
"""


def test_mlflow_trace_decorator_lands_with_its_span_tree(server, tmp_path):
    out = _drive(server, tmp_path, MLFLOW_CHAIN)
    assert out["results"] == [10, 30, 50]
    assert out["n"] == 3
    assert out["tree"] == [
        ["leaf", "middle", "TOOL"],
        ["middle", "top", "UNKNOWN"],
        ["top", None, "UNKNOWN"],
    ]
    assert out["state"].endswith("OK")
    assert out["tools"] == 3  # every trace has a TOOL span: the span index answered
    assert out["slow"] == 0

    # the trace data is in the artifact store, not in a row
    status, got = _json(server, "GET", f"api/3.0/mlflow/traces/get?trace_id={out['trace_id']}")
    assert status == 200
    assert {s["name"] for s in got["trace"]["spans"]} == {"top", "middle", "leaf"}
    artifacts = Path(server.data_dir, "mlops", "artifacts")
    files = list(artifacts.rglob(f"{out['trace_id']}/artifacts/traces.json"))
    assert len(files) == 1

    # feedback on the trace: create, override, delete restores the original
    status, a = _json(
        server,
        "POST",
        f"api/3.0/mlflow/traces/{out['trace_id']}/assessments",
        {"assessment": {"assessment_name": "good", "feedback": {"value": True}}},
    )
    assert status == 200 and a["assessment"]["valid"] is True
    first = a["assessment"]["assessment_id"]
    status, b = _json(
        server,
        "POST",
        f"api/3.0/mlflow/traces/{out['trace_id']}/assessments",
        {
            "assessment": {
                "assessment_name": "good",
                "feedback": {"value": False},
                "overrides": first,
            }
        },
    )
    assert status == 200
    status, again = _json(
        server, "GET", f"api/3.0/mlflow/traces/{out['trace_id']}/assessments/{first}"
    )
    assert again["assessment"]["valid"] is False
    second = b["assessment"]["assessment_id"]
    assert (
        _json(server, "DELETE", f"api/3.0/mlflow/traces/{out['trace_id']}/assessments/{second}")[0]
        == 200
    )
    status, again = _json(
        server, "GET", f"api/3.0/mlflow/traces/{out['trace_id']}/assessments/{first}"
    )
    assert again["assessment"]["valid"] is True


OTEL_SDK = """
import json, os, urllib.request
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

mem = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(mem))
tracer = provider.get_tracer("otel-test")
with tracer.start_as_current_span("agent") as root:
    root.set_attribute("user", "ada")
    with tracer.start_as_current_span("retrieve") as child:
        child.set_attribute("k", 3)
        child.add_event("hit", {"doc": "a"})

req = ExportTraceServiceRequest()
scope = req.resource_spans.add().scope_spans.add()
for s in mem.get_finished_spans():
    p = scope.spans.add()
    p.trace_id = s.context.trace_id.to_bytes(16, "big")
    p.span_id = s.context.span_id.to_bytes(8, "big")
    if s.parent is not None:
        p.parent_span_id = s.parent.span_id.to_bytes(8, "big")
    p.name = s.name
    p.start_time_unix_nano = s.start_time
    p.end_time_unix_nano = s.end_time
    p.status.code = 1
    for k, v in s.attributes.items():
        a = p.attributes.add()
        a.key = k
        if isinstance(v, str):
            a.value.string_value = v
        else:
            a.value.int_value = v
    for e in s.events:
        ev = p.events.add()
        ev.name = e.name
        ev.time_unix_nano = e.timestamp
uri = os.environ["MLFLOW_TRACKING_URI"]
r = urllib.request.Request(uri + "/v1/traces", data=req.SerializeToString(), method="POST",
    headers={"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": os.environ["EXP"],
             "Authorization": "token " + os.environ["MLFLOW_TRACKING_TOKEN"]})
with urllib.request.urlopen(r) as resp:
    status = resp.status
trace_id = "tr-" + format(mem.get_finished_spans()[0].context.trace_id, "032x")
print("RESULT " + json.dumps({"status": status, "trace_id": trace_id}))
"""


def test_otlp_protobuf_from_the_opentelemetry_sdk(server, tmp_path):
    status, exp = _json(server, "POST", "api/2.0/mlflow/experiments/create", {"name": "otel"})
    assert status == 200
    env_exp = exp["experiment_id"]
    os.environ["EXP"] = env_exp
    try:
        out = _drive(server, tmp_path, OTEL_SDK)
    finally:
        del os.environ["EXP"]
    assert out["status"] == 200
    status, got = _json(server, "GET", f"api/3.0/mlflow/traces/get?trace_id={out['trace_id']}")
    assert status == 200, got
    info = got["trace"]["trace_info"]
    assert info["state"] == "OK" and info["tags"]["mlflow.traceName"] == "agent"
    names = {s["name"]: s for s in got["trace"]["spans"]}
    assert set(names) == {"agent", "retrieve"}
    assert {"key": "user", "value": {"string_value": "ada"}} in names["agent"]["attributes"]
    assert names["retrieve"]["events"][0]["name"] == "hit"
    # the span attribute is searchable
    status, found = _json(
        server,
        "POST",
        "api/3.0/mlflow/traces/search",
        {
            "locations": [
                {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": env_exp}}
            ],
            "filter": "span.attributes.user = 'ada'",
        },
    )
    assert [t["trace_id"] for t in found["traces"]] == [out["trace_id"]]


def _count_traces(server: JupyterServerProcess, exp: str) -> int:
    status, found = _json(
        server,
        "POST",
        "api/3.0/mlflow/traces/search",
        {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}]},
    )
    assert status == 200
    return len(found.get("traces", []))


def test_bad_input_is_refused_whole(server):
    status, exp = _json(server, "POST", "api/2.0/mlflow/experiments/create", {"name": "bad"})
    eid = exp["experiment_id"]
    hdr = {"x-mlflow-experiment-id": eid, "Content-Type": "application/x-protobuf"}
    # malformed protobuf
    status, err = _call(server, "POST", "v1/traces", b"\xff\x00garbage", hdr)
    assert status == 400 and err["error_code"] == "INVALID_PARAMETER_VALUE"
    # malformed JSON, and a span without ids
    jhdr = {**hdr, "Content-Type": "application/json"}
    assert _call(server, "POST", "v1/traces", b"{nope", jhdr)[0] == 400
    bad = {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x"}]}]}]}
    status, err = _call(server, "POST", "v1/traces", json.dumps(bad).encode(), jhdr)
    assert status == 400 and "spans[0].traceId" in err["message"]
    # a 5 MB attribute: refused, and the span beside it in the same request is not stored
    big = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "11" * 16,
                                "spanId": "22" * 8,
                                "name": "small",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            },
                            {
                                "traceId": "11" * 16,
                                "spanId": "33" * 8,
                                "name": "huge",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                                "attributes": [
                                    {"key": "blob", "value": {"stringValue": "x" * (5 << 20)}}
                                ],
                            },
                        ]
                    }
                ]
            }
        ]
    }
    status, err = _call(server, "POST", "v1/traces", json.dumps(big).encode(), jhdr)
    assert status == 400 and "blob" in err["message"], err
    assert _count_traces(server, eid) == 0
    # no experiment header
    status, err = _call(
        server, "POST", "v1/traces", b"", {"Content-Type": "application/x-protobuf"}
    )
    assert status == 400 and "x-mlflow-experiment-id" in err["message"]
    # unknown trace ids
    for method, path, body in [
        ("GET", "api/3.0/mlflow/traces/tr-00000000000000000000000000000000", None),
        ("GET", "api/3.0/mlflow/traces/get?trace_id=tr-nope", None),
        ("PATCH", "api/2.0/mlflow/traces/tr-nope/tags", {"key": "a", "value": "b"}),
        (
            "POST",
            "api/3.0/mlflow/traces/tr-nope/assessments",
            {"assessment": {"assessment_name": "x", "feedback": {"value": 1}}},
        ),
    ]:
        status, err = _json(server, method, path, body)
        assert status == 404 and err["error_code"] == "RESOURCE_DOES_NOT_EXIST", (path, err)
    # a bad filter names its position
    status, err = _json(
        server,
        "POST",
        "api/3.0/mlflow/traces/search",
        {
            "locations": [
                {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": eid}}
            ],
            "filter": "span.bogus = 'x'",
        },
    )
    assert status == 400 and "position" in err["message"]


def test_times_past_64_bits_are_400_and_store_nothing(server):
    """OTLP's times are unsigned 64-bit and JSON numbers unbounded; the database holds
    signed 64-bit: such a time is the client's mistake (400), not a server fault."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
    from tracebulk import bulk_trace

    status, exp = _json(server, "POST", "api/2.0/mlflow/experiments/create", {"name": "huge"})
    eid = exp["experiment_id"]
    hdr = {"x-mlflow-experiment-id": eid, "Content-Type": "application/x-protobuf"}
    ok = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="ok", start_time_unix_nano=1)
    late = Span(
        trace_id=b"\x01" * 16, span_id=b"\x03" * 8, name="late", start_time_unix_nano=2**63 + 5
    )
    body = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[ok, late])])]
    ).SerializeToString()
    status, err = _call(server, "POST", "v1/traces", body, hdr)
    assert status == 400 and "'late'" in err["message"] and "2**63" in err["message"], err
    span = {"traceId": "11" * 16, "spanId": "22" * 8, "name": "x", "startTimeUnixNano": "1"}
    span["endTimeUnixNano"] = str(2**64 - 1)
    otlp_json = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    jhdr = {**hdr, "Content-Type": "application/json"}
    status, err = _call(server, "POST", "v1/traces", json.dumps(otlp_json).encode(), jhdr)
    assert status == 400 and err["error_code"] == "INVALID_PARAMETER_VALUE", err
    for info in ({"request_time": 10**30}, {"execution_duration": "1e30s"}):
        trace = bulk_trace(eid, "d0" * 16, 1, [("top", "CHAIN")], inputs={}, info=info)
        status, err = _json(server, "POST", "api/v1/traces/log-bulk", {"traces": [trace]})
        assert status == 400 and err["error_code"] == "INVALID_PARAMETER_VALUE", (info, err)
    assert _count_traces(server, eid) == 0


GENAI_EVALUATE = """
import json, mlflow
from mlflow.genai.scorers import scorer

mlflow.set_experiment("genai-eval")

@scorer
def exact_match(outputs, expectations):
    return outputs == expectations["answer"]

@scorer
def length(outputs):
    return len(str(outputs))

def predict_fn(question):
    return question.upper() if "even" in question else question

data = [
    {"inputs": {"question": f"q{i} {'even' if i % 2 == 0 else 'odd'}"},
     "expectations": {"answer": f"Q{i} EVEN" if i % 2 == 0 else f"q{i} odd"}}
    for i in range(20)
]
result = mlflow.genai.evaluate(data=data, predict_fn=predict_fn, scorers=[exact_match, length])
traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
assessed = sum(1 for t in traces if any(a.name == "exact_match" for a in t.info.assessments))
print("RESULT " + json.dumps({
    "run_id": result.run_id,
    "metrics": {k: v for k, v in result.metrics.items()},
    "traces": len(traces),
    "assessed": assessed,
}))
"""


def test_mlflow_genai_evaluate_with_a_python_scorer_lands_its_results(server, tmp_path):
    out = _drive(server, tmp_path, GENAI_EVALUATE)
    assert out["metrics"]["exact_match/mean"] == 1.0
    assert out["metrics"]["length/mean"] > 0
    assert out["traces"] == 20
    assert out["assessed"] == 20
    status, run = _json(server, "GET", f"api/2.0/mlflow/runs/get?run_id={out['run_id']}")
    assert status == 200
    metrics = {m["key"]: m["value"] for m in run["run"]["data"]["metrics"]}
    assert metrics["exact_match/mean"] == 1.0


MLOPS_CHAIN = """
import json
import jupyter_mlops as mlops

mlops.set_experiment("mlops-chain")

@mlops.trace(span_type="TOOL")
def leaf(x):
    return x * 2

@mlops.trace
def middle(x):
    return leaf(x) + 1

@mlops.trace(name="top")
def top(x):
    return middle(x) * 10

results = [top(i) for i in range(3)]
found = mlops.search_traces(order_by=["timestamp ASC"])  # flushes the writer first
trace = mlops.get_trace(found[0]["trace_id"])
names = {s["span_id"]: s["name"] for s in trace["spans"]}
tree = sorted((s["name"], names.get(s["parent_span_id"])) for s in trace["spans"])
print("RESULT " + json.dumps({"results": results, "n": len(found), "tree": tree}))
"""


def test_mlops_trace_over_http_lands_its_span_tree(server, tmp_path):
    out = _drive(server, tmp_path, MLOPS_CHAIN)
    assert out["results"] == [10, 30, 50]
    assert out["n"] == 3
    assert out["tree"] == [["leaf", "middle"], ["middle", "top"], ["top", None]]


MLFLOW_READS_MLOPS = (
    MLOPS_CHAIN.replace("mlops-chain", "mlflow-reads").split("names = ")[0]
    + """
import mlflow
mlflow.set_experiment("mlflow-reads")
got = mlflow.get_trace(found[0]["trace_id"])  # its data is a range of a batch file
searched = mlflow.search_traces(return_type="list", order_by=["timestamp ASC"])
print("RESULT " + json.dumps({"mtree": sorted(s.name for s in got.data.spans),
                              "spans": trace["spans"], "n_searched": len(searched),
                              "id": found[0]["trace_id"]}))
"""
)


def test_mlflow_reads_traces_from_batch_files(server, tmp_path):
    out = _drive(server, tmp_path, MLFLOW_READS_MLOPS)
    assert out["mtree"] == ["leaf", "middle", "top"]
    assert out["n_searched"] == 3
    # the UI's download answers the trace's data exactly as stored
    status, data = _call(
        server, "GET", f"ajax-api/2.0/mlflow/get-trace-artifact?request_id={out['id']}"
    )
    assert status == 200 and data == {"spans": out["spans"]}


def test_trace_metrics_over_rest(server, tmp_path):
    _drive(server, tmp_path, MLOPS_CHAIN.replace("mlops-chain", "metrics-chain"))
    status, exp = _json(
        server, "GET", "api/2.0/mlflow/experiments/get-by-name?experiment_name=metrics-chain"
    )
    eid = exp["experiment"]["experiment_id"]
    body = {  # as MLflow's client sends it (message_to_json)
        "experiment_ids": [eid],
        "view_type": "SPANS",
        "metric_name": "span_count",
        "aggregations": [{"aggregation_type": "COUNT"}],
        "dimensions": ["span_name"],
        "max_results": 1000,
    }
    status, got = _json(server, "POST", "api/3.0/mlflow/traces/metrics", body)
    assert status == 200, got
    assert {p["dimensions"]["span_name"]: p["values"]["COUNT"] for p in got["data_points"]} == {
        "leaf": 3,
        "middle": 3,
        "top": 3,
    }
    body = {
        "experiment_ids": [eid],
        "view_type": "TRACES",
        "metric_name": "latency",
        "aggregations": [{"aggregation_type": "PERCENTILE", "percentile_value": 95.0}],
    }
    status, got = _json(server, "POST", "api/3.0/mlflow/traces/metrics", body)
    assert status == 200 and list(got["data_points"][0]["values"]) == ["P95.0"], got
    body["metric_name"] = "no_such_metric"
    status, err = _json(server, "POST", "api/3.0/mlflow/traces/metrics", body)
    assert status == 400 and err["error_code"] == "INVALID_PARAMETER_VALUE"


def test_otlp_body_over_the_limit_is_413(server):
    import gzip
    import http.client
    from urllib.parse import urlsplit

    from jupyter_mlops.server.handlers.traces import MAX_OTLP_BODY

    status, exp = _json(server, "POST", "api/2.0/mlflow/experiments/create", {"name": "big"})
    hdr = {
        "Authorization": f"token {server.token}",
        "x-mlflow-experiment-id": exp["experiment_id"],
        "Content-Type": "application/x-protobuf",
    }
    # declared over the limit: refused unread (the body is drained, never parsed)
    url = urlsplit(server.tracking_uri + "/v1/traces")
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    size = MAX_OTLP_BODY + 1
    conn.putrequest("POST", url.path)
    for k, v in {**hdr, "Content-Length": str(size)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    chunk = b"\0" * (1 << 20)
    sent = 0
    while sent < size:
        n = min(len(chunk), size - sent)
        conn.send(chunk[:n])
        sent += n
    r = conn.getresponse()
    err = json.loads(r.read())
    conn.close()
    assert r.status == 413 and "at most" in err["message"], err
    # small on the wire, over the limit once inflated: 413 too
    bomb = gzip.compress(b"\0" * (MAX_OTLP_BODY + 1024), compresslevel=1)
    status, err = _call(server, "POST", "v1/traces", bomb, {**hdr, "Content-Encoding": "gzip"})
    assert status == 413 and "decompressed" in err["message"], err
    assert _count_traces(server, exp["experiment_id"]) == 0
