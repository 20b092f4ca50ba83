"""Tracing benchmark, side by side with MLflow 3.x in one run.

Measures:
  1. caller cost of one traced call with 3 nested spans (median µs per call):
     ``@mlops.trace`` (SQLite URI and over HTTP) vs ``@mlflow.trace`` (SQLite store and
     against ``mlflow server``);
  2. ingest over HTTP: traces/s from the client's call until durable (``mlops.trace``
     batches), and the server alone (ready ``api/v1/traces/log-bulk`` bodies of 1000
     traces, each answered once durable) vs ``@mlflow.trace`` to ``mlflow server``;
  2b. concurrent ingest (``--clients``, ``--batch``; ``--ingest-only`` runs just this):
     N client processes sending ready bodies back to back to ``log-bulk`` (JSON) and to
     OTLP ``v1/traces`` (protobuf), traces/s and the server's CPU time per trace;
  3. ``search_traces`` over 100k traces (3 spans each, tags) through each server's REST
     API: median ms of a filtered, ordered first page, same data in both (MLflow's rows
     written with SQL into the database its server created).

Usage: ``PYTHONPATH=. python bench/bench_tracing.py [--quick] [--skip-mlflow]``.
Targets (issue 17): caller cost <= 50 µs; search over 100k traces <= 100 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tracebulk
from bench_client import jupyter_server, mlflow_server, run_py
from scale_common import cpu_s
from tracebulk import T0, bulk_trace

CHAIN = """
def leaf(x):
    return x + 1
def middle(x):
    return leaf(x) * 2
def top(x):
    return middle(x) - 1
"""


def caller_cost(lib: str, uri: str, n: int, token: str = "") -> float:
    """Median µs of one call of a 3-level traced chain (batches of 100 calls)."""
    deco = "mlops.trace" if lib == "mlops" else "mlflow.trace"
    setup = (
        "import jupyter_mlops as mlops\nmlops.set_tracking_uri(URI)\nmlops.set_experiment('bench')"
        if lib == "mlops"
        else "import mlflow\nmlflow.set_tracking_uri(URI)\nmlflow.set_experiment('bench')"
    )
    flush = "mlops.flush()" if lib == "mlops" else "mlflow.flush_trace_async_logging()"
    chain = CHAIN.replace("def ", f"@{deco}\ndef ")
    code = f"""
import time, statistics, os
URI = {uri!r}
{setup}
{chain}
for i in range(20):
    top(i)
{flush}
per = []
for b in range({n} // 100):
    t = time.perf_counter_ns()
    for i in range(100):
        top(i)
    per.append((time.perf_counter_ns() - t) / 100 / 1000)
{flush}
print(statistics.median(per))
"""
    extra = {"MLFLOW_TRACKING_TOKEN": token, "JUPYTER_MLOPS_TRACKING_TOKEN": token} if token else {}
    return float(run_py(code, **extra).strip().splitlines()[-1])


def ingest(lib: str, uri: str, n: int, token: str = "") -> float:
    """Traces/s from the first call until all are durable (flushed)."""
    deco = "mlops.trace" if lib == "mlops" else "mlflow.trace"
    setup = (
        "import jupyter_mlops as mlops\nmlops.set_tracking_uri(URI)\nmlops.set_experiment('ingest')"
        if lib == "mlops"
        else "import mlflow\nmlflow.set_tracking_uri(URI)\nmlflow.set_experiment('ingest')"
    )
    flush = "mlops.flush()" if lib == "mlops" else "mlflow.flush_trace_async_logging()"
    chain = CHAIN.replace("def ", f"@{deco}\ndef ")
    code = f"""
import time
URI = {uri!r}
{setup}
{chain}
top(0)
{flush}
t = time.perf_counter()
for i in range({n}):
    top(i)
{flush}
print({n} / (time.perf_counter() - t))
"""
    extra = {"MLFLOW_TRACKING_TOKEN": token, "JUPYTER_MLOPS_TRACKING_TOKEN": token} if token else {}
    return float(run_py(code, **extra).strip().splitlines()[-1])


def _trace_hex(kind: str, i: int) -> str:
    """Trace ``i``'s 32 hex digits: random-looking, as every tracer draws them (MLflow's
    and ours from ``uuid4``, OpenTelemetry's from its random generator), so each index
    keyed by trace id takes its inserts all over, not at its end; deterministic, and
    ``kind`` keeps the routes' and the search data's ids apart. ``SEQUENTIAL_IDS=1``:
    ``kind`` + ``i`` in hex (the bench before 2026-12-06 17:50, appends only)."""
    if os.environ.get("SEQUENTIAL_IDS") == "1":
        return f"{kind}{i:030x}"
    return hashlib.blake2b(f"{kind}{i}".encode(), digest_size=16).hexdigest()


def _bulk_bodies(exp: str, n: int, per_batch: int, offset: int = 0) -> list[bytes]:
    """``api/v1/traces/log-bulk`` bodies of ``n`` 3-span traces, as our client's writer
    sends them (MLflow span dicts, TraceInfoV3 JSON)."""
    bodies = []
    for start in range(offset, offset + n, per_batch):
        items = [
            bulk_trace(
                exp,
                _trace_hex("b0", i),
                i,
                [("top", "CHAIN"), ("middle", "CHAIN"), ("leaf", "TOOL")],
                inputs={"x": i},
                outputs=[i, i + 1, i + 2],
                t0=T0 + i * 1_000_000,
                info={
                    "request_preview": json.dumps({"x": i}),
                    "response_preview": str(i),
                    "trace_metadata": {"mlflow.trace_schema.version": "3"},
                },
            )
            for i in range(start, min(offset + n, start + per_batch))
        ]
        bodies.append(json.dumps({"traces": items}).encode())
    return bodies


def ingest_raw(url: str, token: str, n: int, per_batch: int = 1000) -> float:
    """The server alone: traces/s of ready ``log-bulk`` bodies sent back to back (each
    answered once durable), from the first request to the last answer."""
    req = urllib.request.Request(
        url + "/api/2.0/mlflow/experiments/create",
        data=json.dumps({"name": "ingest-raw"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"token {token}"},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        exp = json.loads(r.read())["experiment_id"]
    bodies = _bulk_bodies(exp, n, per_batch)
    t = time.perf_counter()
    for body in bodies:
        req = urllib.request.Request(
            url + "/api/v1/traces/log-bulk",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": f"token {token}"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=300) as r:
            r.read()
    return n / (time.perf_counter() - t)


def _otlp_body(n: int, start: int, per_batch: int) -> list[bytes]:
    """OTLP/HTTP protobuf bodies (``ExportTraceServiceRequest``) of ``n`` 3-span traces,
    ``per_batch`` traces each: what an OpenTelemetry SDK's batch span processor sends
    (its default, 512 spans per export, is ~170 such traces)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

    bodies = []
    for lo in range(start, start + n, per_batch):
        spans = []
        for i in range(lo, min(start + n, lo + per_batch)):
            tid = bytes.fromhex(_trace_hex("c0", i))
            t0 = 1_700_000_000_000_000_000 + i * 1_000_000
            for j, name in enumerate(("top", "middle", "leaf")):
                spans.append(
                    Span(
                        trace_id=tid,
                        span_id=bytes.fromhex(f"{i + 1:012x}{j + 1:04x}"),
                        parent_span_id=b"" if j == 0 else bytes.fromhex(f"{i + 1:012x}{j:04x}"),
                        name=name,
                        start_time_unix_nano=t0 + j,
                        end_time_unix_nano=t0 + 1000 - j,
                        status=Status(code=1),
                        attributes=[
                            KeyValue(key="input", value=AnyValue(string_value=f"question {i}")),
                            KeyValue(key="k", value=AnyValue(int_value=j)),
                        ],
                    )
                )
        req = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
        )
        bodies.append(req.SerializeToString())
    return bodies


def _send_all(args: tuple[str, str, str, list[bytes], dict[str, str], Any]) -> int:
    """One client process: its bodies back to back, each answered once durable."""
    url, token, route, bodies, headers, start = args
    import urllib.request as ur

    start.wait()
    for body in bodies:
        req = ur.Request(
            url + route,
            data=body,
            headers={**({"Authorization": f"token {token}"} if token else {}), **headers},
            method="POST",
        )
        for _ in range(100):
            try:
                with ur.urlopen(req, timeout=600) as r:
                    r.read()
                break
            except ur.HTTPError as e:  # 503 while the server's body budget is taken: retry
                text = e.read().decode(errors="replace")[:300]
                if e.code != 503:
                    raise RuntimeError(f"{e.code}: {text}") from None
                time.sleep(float(e.headers.get("Retry-After") or 1))
    return len(bodies)


def ingest_concurrent(
    url: str, token: str, pid: int, kind: str, clients: int, n: int, per_batch: int
) -> dict[str, float]:
    """``clients`` processes each sending ready bodies of ``per_batch`` 3-span traces
    (``n`` in all) back to back to ``log-bulk`` (kind ``bulk``) or OTLP ``v1/traces``
    (kind ``otlp``, protobuf): traces/s from the first request to the last answer, and
    the server's CPU time per trace (what bounds the rate on a shared machine)."""
    import multiprocessing as mp

    auth = {"Authorization": f"token {token}"} if token else {}
    req = urllib.request.Request(
        url + "/api/2.0/mlflow/experiments/create",
        data=json.dumps({"name": f"ingest-{kind}-{clients}-{per_batch}-{n}"}).encode(),
        headers={"Content-Type": "application/json", **auth},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        exp = json.loads(r.read())["experiment_id"]
    each = n // clients
    # new trace ids in every measure (a trace sent again is an update: another path)
    first = int(exp) * 10_000_000
    ctx = mp.get_context("fork")
    start = ctx.Manager().Event()
    jobs = []
    for c in range(clients):
        if kind == "bulk":
            bodies = _bulk_bodies(exp, each, per_batch, offset=first + c * each)
            route, headers = "/api/v1/traces/log-bulk", {"Content-Type": "application/json"}
        else:
            bodies = _otlp_body(each, first + c * each, per_batch)
            route = "/v1/traces"
            headers = {"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": exp}
        jobs.append((url, token, route, bodies, headers, start))
    with ctx.Pool(clients) as pool:
        res = pool.map_async(_send_all, jobs)
        time.sleep(0.5)  # the processes are up and waiting
        cpu0, t0 = cpu_s(pid), time.perf_counter()
        start.set()
        res.get()
        wall, cpu = time.perf_counter() - t0, cpu_s(pid) - cpu0
    total = each * clients
    return {"per_s": total / wall, "server_cpu_us_per_trace": cpu / total * 1e6}


def _trace_rows(i: int, base: int) -> dict:
    """One synthetic trace: 3 spans, 2 tags, a status; the same for both stores."""
    return {
        "id": f"tr-{i:032x}",
        "ts": base + i * 10,
        "dur": 5 + (i * 7919) % 2000,
        "status": "ERROR" if i % 17 == 0 else "OK",
        "tags": {"env": "prod" if i % 3 else "dev", "user": f"u{i % 50}"},
    }


def populate_mlops(db_url: str, artifact_root: str, n: int) -> str:
    from jupyter_mlops.tracking import traces as t
    from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

    store = SqlTrackingStore(db_url, artifact_root=artifact_root)
    exp = store.create_experiment("search-bench")
    base = 1_700_000_000_000
    # the index rows only (search reads no data file), in big transactions
    with store._write() as conn:
        for start in range(0, n, 5000):
            infos, span_rows, tag_rows = [], [], []
            keys = t.new_trace_keys(conn, min(n, start + 5000) - start)
            for i, key in zip(range(start, min(n, start + 5000)), keys):
                r = _trace_rows(i, base)
                infos.append(
                    {
                        "trace_id": r["id"],
                        "trace_key": key,
                        "experiment_id": int(exp),
                        "request_time": r["ts"],
                        "execution_duration": r["dur"],
                        "state": r["status"],
                        "request_preview": f'{{"q": "question {i}"}}',
                        "response_preview": f'"answer {i}"',
                        "name": "top",
                    }
                )
                for k, v in {**r["tags"], "mlflow.traceName": "top"}.items():
                    tag_rows.append({"trace_id": r["id"], "key": k, "value": v})
                for j, (name, kind) in enumerate(
                    (("top", "CHAIN"), ("middle", "CHAIN"), ("leaf", "TOOL"))
                ):
                    span_rows.append(
                        {
                            "trace_key": key,
                            "span_id": f"{i:012x}{j:04x}",
                            "parent_span_id": None if j == 0 else f"{i:012x}{j - 1:04x}",
                            "name": name,
                            "span_type": kind,
                            "status": "OK",
                            "start_time_ns": r["ts"] * 1_000_000,
                            "end_time_ns": (r["ts"] + r["dur"]) * 1_000_000,
                        }
                    )
            conn.execute(t.traces.insert(), infos)
            conn.execute(t.trace_tags.insert(), tag_rows)
            conn.execute(t.spans.insert(), span_rows)
    if store.dialect == "sqlite":
        with store._write() as conn:
            conn.exec_driver_sql("ANALYZE")
    store.close()
    return exp


def populate_mlflow(db_path: Path, url: str, n: int) -> str:
    import sqlite3

    req = urllib.request.Request(
        url + "/api/2.0/mlflow/experiments/create",
        data=json.dumps({"name": "search-bench"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        exp = json.loads(r.read())["experiment_id"]
    base = 1_700_000_000_000
    con = sqlite3.connect(db_path)
    cols = {row[1] for row in con.execute("PRAGMA table_info(trace_info)")}
    infos, tags = [], []
    for i in range(n):
        r = _trace_rows(i, base)
        row = {
            "request_id": r["id"],
            "experiment_id": int(exp),
            "timestamp_ms": r["ts"],
            "execution_time_ms": r["dur"],
            "status": r["status"],
            "request_preview": f'{{"q": "question {i}"}}',
            "response_preview": f'"answer {i}"',
        }
        if "trace_name" in cols:
            row["trace_name"] = "top"
        infos.append(row)
        for k, v in {**r["tags"], "mlflow.traceName": "top"}.items():
            tags.append((k, v, r["id"]))
    keys = list(infos[0])
    con.executemany(
        f"INSERT INTO trace_info ({','.join(keys)}) VALUES ({','.join('?' * len(keys))})",
        [tuple(row[k] for k in keys) for row in infos],
    )
    con.executemany("INSERT INTO trace_tags (key, value, request_id) VALUES (?, ?, ?)", tags)
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return exp


def search_ms(url: str, exp: str, token: str | None, flt: str, repeat: int) -> float:
    body = json.dumps(
        {
            "locations": [
                {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}
            ],
            "filter": flt,
            "max_results": 100,
            "order_by": ["timestamp_ms DESC"],
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    times = []
    n = None
    for _ in range(repeat):
        req = urllib.request.Request(
            url + "/api/3.0/mlflow/traces/search", data=body, headers=headers, method="POST"
        )
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=120) as r:
            got = json.loads(r.read())
        times.append((time.perf_counter() - t) * 1000)
        n = len(got.get("traces", []))
    assert n == 100, f"expected a full page, got {n}"
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--search-traces", type=int, help="traces searched (100k; 20k with --quick)")
    ap.add_argument("--ingest-only", action="store_true", help="only the concurrent ingest")
    ap.add_argument("--clients", default="1,4,8", help="concurrent senders to measure")
    ap.add_argument("--batch", type=int, default=500, help="traces per request")
    ap.add_argument("--ingest-traces", type=int, help="traces per concurrent measure")
    args = ap.parse_args()
    n_calls = 2000 if args.quick else 20000
    n_ingest = 2000 if args.quick else 10000
    n_search = args.search_traces or (20000 if args.quick else 100000)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        srv, url, token = jupyter_server(root / "jup")
        n_conc = args.ingest_traces or (12000 if args.quick else 40000)
        try:
            for c in (int(x) for x in args.clients.split(",")):
                for kind in ("bulk", "otlp"):
                    got = ingest_concurrent(url, token, srv.proc.pid, kind, c, n_conc, args.batch)
                    key = f"ingest_{kind}_{c}clients_{args.batch}per_request"
                    out[key + "_per_s"] = got["per_s"]
                    out[key + "_server_cpu_us"] = got["server_cpu_us_per_trace"]
                    print(key, got, f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)
            if args.ingest_only:
                srv.stop()
                if not args.skip_mlflow:  # the same OTLP bodies to MLflow's server
                    (root / "mlf").mkdir()
                    msrv, murl = mlflow_server(root / "mlf")
                    try:
                        n_ml = max(args.batch, n_conc // 10)
                        got = ingest_concurrent(
                            murl, "", msrv.proc.pid, "otlp", 1, n_ml, args.batch
                        )
                        key = f"ingest_mlflow_otlp_1clients_{args.batch}per_request"
                        out[key + "_per_s"] = got["per_s"]
                        out[key + "_server_cpu_us"] = got["server_cpu_us_per_trace"]
                        print(key, got, f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)
                    finally:
                        msrv.stop()
                out["load_1m"] = os.getloadavg()[0]
                print(json.dumps(out, indent=1))
                return
            out["caller_mlops_sqlite_us"] = caller_cost("mlops", f"sqlite:///{root}/c.db", n_calls)
            out["caller_mlops_http_us"] = caller_cost("mlops", url, n_calls, token)
            out["ingest_mlops_http_per_s"] = ingest("mlops", url, n_ingest, token)
            out["ingest_mlops_log_bulk_per_s"] = ingest_raw(url, token, n_ingest * 2)
            db = root / "jup" / "data" / "mlops" / "mlops.db"
            exp = populate_mlops(
                f"sqlite:///{db}", str(root / "jup" / "data" / "mlops" / "artifacts"), n_search
            )
            for label, flt in (
                ("search_mlops_tags_ms", "tags.env = 'prod' AND trace.status = 'OK'"),
                ("search_mlops_span_ms", "span.type = 'TOOL' AND trace.execution_time_ms > 1000"),
            ):
                out[label] = search_ms(url, exp, token, flt, 10)
        finally:
            srv.stop()
        if not args.skip_mlflow:
            (root / "mlf").mkdir()
            msrv, murl = mlflow_server(root / "mlf")
            try:
                n_ml = max(200, n_calls // 20)
                out["caller_mlflow_sqlite_us"] = caller_cost(
                    "mlflow", f"sqlite:///{root}/m.db", n_ml
                )
                out["caller_mlflow_server_us"] = caller_cost("mlflow", murl, n_ml)
                out["ingest_mlflow_server_per_s"] = ingest("mlflow", murl, max(200, n_ingest // 20))
                mexp = populate_mlflow(root / "mlf" / "mlflow.db", murl, n_search)
                out["search_mlflow_tags_ms"] = search_ms(
                    murl, mexp, None, "tags.env = 'prod' AND trace.status = 'OK'", 10
                )
            finally:
                msrv.stop()
    out["n_search_traces"] = n_search
    out["load_1m"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
