"""Trace ingest in-process, for instruction counts and CPU time per trace (issue 17).

The server's work of ``log-bulk`` (body parsed by the handler's reader, ``log_traces``)
or OTLP protobuf (``parse_protobuf``, ``log_spans``) on bodies of 3-span traces built as
``bench_tracing.py`` builds them, into a new SQLite store. ``--kind otlp-split`` sends each
batch's traces in 3 requests, leaves first, roots last (the order spans end: an exporter's
batches split traces wherever they end), so two of three requests continue stored traces. ``--skip-ingest`` does all but
the ingest loop: under valgrind, a run minus a skipping run is the loop's instructions::

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        python bench/profile_trace_ingest.py --kind bulk --traces 1000

Prints CPU µs per trace of the loop (``--rounds`` best of); ``PYTHONPATH`` picks the code.
The store's planner statistics are not refreshed unless ``--planner-stats`` (a server
runs their ``ANALYZE`` on a thread of its own, at check points of the write count).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tracing import _bulk_bodies, _otlp_body


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=("bulk", "otlp", "otlp-split"), default="bulk")
    ap.add_argument("--traces", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--planner-stats", action="store_true", help="refresh them as a server does")
    args = ap.parse_args()

    from jupyter_mlops.server.trace_body import parse_log_bulk_body
    from jupyter_mlops.tracking import otlp
    from jupyter_mlops.tracking.gcpause import gc_paused
    from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
    from jupyter_mlops.tracking.traces import TraceInfo

    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlTrackingStore(f"sqlite:///{tmp}/p.db", artifact_root=f"{tmp}/art")
        exp = store.create_experiment("ingest")
        if not args.planner_stats:  # its ANALYZE runs on a thread, off the write path
            store.statistics.wrote = lambda: None

        def ingest(bodies: list[bytes]) -> None:
            for body in bodies:
                with gc_paused():  # as the server's ingest routes run
                    ingest_one(body)

        def ingest_one(body: bytes) -> None:
            if args.kind == "bulk":
                # the server's handler decodes the body as it arrives: text here too
                raw = parse_log_bulk_body(body.decode())["traces"]
                store.log_traces([(TraceInfo.from_dict(i["info"]), i["spans"]) for i in raw])
            else:
                store.log_spans(exp, otlp.parse_protobuf(body))

        def make(n: int, first: int) -> list[bytes]:
            if args.kind == "bulk":
                return _bulk_bodies(exp, n, args.batch, offset=first)
            bodies = _otlp_body(n, first, args.batch)
            return (
                [part for b in bodies for part in _split(b)]
                if args.kind == "otlp-split"
                else bodies
            )

        # one batch first, in both modes: imports, compiled statements, caches
        ingest(make(args.batch, 10_000_000))
        for r in range(args.rounds):
            bodies = make(args.traces, r * args.traces)
            if args.skip_ingest:
                continue
            c0 = time.process_time()
            ingest(bodies)
            best = min(best, (time.process_time() - c0) / args.traces * 1e6)
        store.close()
    if not args.skip_ingest:
        print(f"{args.kind}: {best:.1f} µs CPU per trace (best of {args.rounds})")


def _split(body: bytes) -> list[bytes]:
    """An OTLP body of 3-span traces as 3 bodies: every trace's leaf, then middle, then root."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    spans = list(req.resource_spans[0].scope_spans[0].spans)
    return [
        ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans[depth::3])])]
        ).SerializeToString()
        for depth in (2, 1, 0)
    ]


if __name__ == "__main__":
    main()
