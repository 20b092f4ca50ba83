"""``search_traces`` and ``trace_counts`` at 100k traces with rare and common filters
(issue 17): the store's calls timed with the filter driver and newest-traces window on
(``trace_search``'s defaults, "after") and off (``DRIVE_MAX_ROWS = WINDOW_TRACES = 0``:
the plain statement, what PostgreSQL ran before the driver served it, "before"),
alternated; with ``--explain``, each page statement's ``EXPLAIN (ANALYZE)`` (execution
time and top plan nodes).

    PYTHONPATH=. python bench/explain_trace_search.py --pg postgresql://postgres@127.0.0.1:5432/test
    PYTHONPATH=. python bench/explain_trace_search.py --sqlite /tmp/traces.db
    PYTHONPATH=/work/main python bench/explain_trace_search.py --sqlite ... --modes after

The store's code is whatever ``PYTHONPATH`` names (to time another checkout's "after").

Data: ``bench_tracing.py``'s ``populate_mlops`` (3 spans, 3 tags per trace), plus what
``bench/RESULTS.md``'s "rare LIKE/ILIKE" section added: 20 traces spread over the time
range with a span ``rare`` (status ``ERROR``) and tag ``user = 'rarely'``, a span
attribute ``model`` on every leaf span (``"gpt-4"``, ``"nopx"`` on the 20), a span
``old`` in the 1,000 oldest traces, a second experiment of 1,000 traces with the span
``elsewhere``; then ``VACUUM ANALYZE`` (PostgreSQL) or ``ANALYZE``. Built once into the
schema ``--schema`` of the PostgreSQL database (or the SQLite file) and reused;
``--drop`` drops the schema at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tracing import populate_mlops

from jupyter_mlops.tracking import trace_search
from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.migrate import normalize_uri
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

COMMON = [
    "tags.env = 'prod' AND trace.status = 'OK'",
    "span.type = 'TOOL' AND trace.execution_time_ms > 1000",
    "span.name = 'leaf'",
    "span.name LIKE 'lea%'",
    "span.attributes.model = '\"gpt-4\"'",
    "span.attributes.input LIKE '%question%'",
]
RARE = [
    "span.name = 'nope'",
    "span.name = 'rare'",
    "span.name LIKE 'nop%'",
    "span.name LIKE 'rar%'",
    "span.name ILIKE 'RAR%'",
    "tags.user LIKE 'rare%'",
    "span.attributes.model LIKE '\"nop%'",
    "span.name LIKE '%are'",
    "tags.user LIKE '%are%'",
    "span.status = 'ERROR'",
    "span.status != 'OK'",
    "span.attributes.model != '\"gpt-4\"'",
    "span.attributes.input LIKE '%needle%'",
    "span.attributes.input LIKE '%nothing%'",
    "span.attributes.input ILIKE '%NEEDLE%'",
    "span.name = 'old'",
    "span.name = 'old' AND tags.env = 'prod'",
    "span.name = 'elsewhere'",
    "trace.status = 'IN_PROGRESS'",
]
MODES = {
    "before": (0, 0, 0),
    "after": (
        trace_search.DRIVE_MAX_ROWS,
        trace_search.WINDOW_TRACES,
        trace_search.FALLBACK_MAX_ROWS,
    ),
}


def set_mode(mode: str) -> None:
    drive, window, fallback = MODES[mode]
    trace_search.DRIVE_MAX_ROWS = drive
    trace_search.WINDOW_TRACES = window
    trace_search.FALLBACK_MAX_ROWS = fallback


def build(store: SqlTrackingStore, url: str, artifacts: str, n: int) -> str:
    """The experiment of the bench data, populated first if the store has none."""
    with store._read() as conn:
        row = conn.exec_driver_sql(
            "SELECT experiment_id FROM experiments WHERE name = 'search-bench'"
        ).first()
    if row is not None:
        return str(row[0])
    t0 = time.perf_counter()
    exp = populate_mlops(url, artifacts, n)
    step = n // 20
    rare = [f"tr-{i * step + 7:032x}" for i in range(20)]
    base = 1_700_000_000_000
    with store._write() as conn:
        key_of = dict(conn.exec_driver_sql("SELECT trace_id, trace_key FROM traces").all())
        rare_keys = [key_of[tid] for tid in rare]
        conn.execute(
            t.spans.insert(),
            [
                {
                    "trace_key": key_of[tid],
                    "span_id": f"{k:012x}0003",
                    "parent_span_id": None,
                    "name": "rare",
                    "span_type": "TOOL",
                    "status": "ERROR",
                    "start_time_ns": 0,
                    "end_time_ns": 1,
                }
                for k, tid in enumerate(rare)
            ],
        )
        tags = t.trace_tags
        conn.execute(
            tags.update()
            .where(tags.c.trace_id.in_(rare), tags.c.key == "user")
            .values(value="rarely")
        )
        conn.exec_driver_sql(
            "INSERT INTO span_attributes (trace_key, span_id, key, value) "
            "SELECT trace_key, span_id, 'model', '\"gpt-4\"' FROM spans WHERE name = 'leaf'"
        )
        a = t.span_attributes
        conn.execute(a.update().where(a.c.trace_key.in_(rare_keys)).values(value='"nopx"'))
        conn.exec_driver_sql(
            "INSERT INTO span_attributes (trace_key, span_id, key, value) "
            "SELECT s.trace_key, s.span_id, 'input', '\"question ' || t.trace_id || '/' "
            "|| s.span_id || '\"' FROM spans s JOIN traces t ON t.trace_key = s.trace_key"
        )
        conn.execute(
            a.update()
            .where(a.c.trace_key.in_(rare_keys), a.c.key == "input")
            .values(value=a.c.value.op("||")('" needle'))
        )
        conn.execute(
            t.spans.insert(),
            [
                {
                    "trace_key": key_of[f"tr-{i:032x}"],
                    "span_id": f"{i:012x}0004",
                    "parent_span_id": None,
                    "name": "old",
                    "span_type": "TOOL",
                    "status": "OK",
                    "start_time_ns": 0,
                    "end_time_ns": 1,
                }
                for i in range(1000)
            ],
        )
    other = store.create_experiment("search-bench-other")
    with store._write() as conn:
        ids = [f"tr-e{i:031x}" for i in range(1000)]
        keys = t.new_trace_keys(conn, len(ids))
        conn.execute(
            t.traces.insert(),
            [
                {
                    "trace_id": tid,
                    "trace_key": keys[i],
                    "experiment_id": int(other),
                    "request_time": base + i * 10,
                    "execution_duration": 5,
                    "state": "OK",
                    "name": "top",
                }
                for i, tid in enumerate(ids)
            ],
        )
        conn.execute(
            t.spans.insert(),
            [
                {
                    "trace_key": keys[i],
                    "span_id": f"{i:012x}0000",
                    "parent_span_id": None,
                    "name": "elsewhere",
                    "span_type": "CHAIN",
                    "status": "OK",
                    "start_time_ns": 0,
                    "end_time_ns": 1,
                }
                for i, tid in enumerate(ids)
            ],
        )
    if store.dialect == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    else:
        with store._write() as conn:
            conn.exec_driver_sql("ANALYZE")
    print(f"built {n} traces in {time.perf_counter() - t0:.0f} s", flush=True)
    return exp


def timed(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def explain(store: SqlTrackingStore, exp: str, flt: str, nodes: int) -> str:
    """The page statements of the search as the store runs them, each's EXPLAIN ANALYZE."""
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT traces.trace_id"):
            seen.append((statement, params))

    sa.event.listen(store.engine, "before_cursor_execute", listen)
    try:
        store.search_traces([exp], flt, 100, ["timestamp_ms DESC"])
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", listen)
    out = []
    with store.engine.connect() as conn:
        for statement, params in seen:
            if store.dialect == "postgresql":
                lines = [
                    r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE) " + statement, params)
                ]
                ms = next(x for x in lines if x.startswith("Execution Time")).split(":")[1]
                plan = [x.strip() for x in lines if "->" in x or x is lines[0]][:nodes]
                out.append(f"    {ms.strip()}: " + " | ".join(plan))
            else:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
                out.append("    " + " | ".join(r[-1] for r in rows[:nodes]))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pg", help="a PostgreSQL database URL")
    ap.add_argument("--schema", default="bench_trace_search")
    ap.add_argument("--sqlite", help="a SQLite file (made if missing)")
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7, help="best of this many per round")
    ap.add_argument("--rounds", type=int, default=2, help="before/after alternations")
    ap.add_argument("--counts", action="store_true", help="time trace_counts too")
    ap.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each page")
    ap.add_argument("--nodes", type=int, default=4, help="plan lines shown by --explain")
    ap.add_argument("--only", help="filters containing this text")
    ap.add_argument("--modes", default="before,after", help="which of before,after to run")
    ap.add_argument("--drop", action="store_true", help="drop the schema at the end")
    args = ap.parse_args()
    if bool(args.pg) == bool(args.sqlite):
        ap.error("one of --pg and --sqlite")
    if args.pg:
        admin = sa.create_engine(normalize_uri(args.pg), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{args.schema}"')
        sep = "&" if "?" in args.pg else "?"
        url = f"{args.pg}{sep}options={quote(f'-csearch_path={args.schema}')}"
    else:
        url = f"sqlite:///{args.sqlite}"
    filters = [f for f in COMMON + RARE if not args.only or args.only in f]
    for mode in set(MODES) - set(args.modes.split(",")):
        del MODES[mode]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = SqlTrackingStore(url, artifact_root=tmp)
            try:
                exp = build(store, url, tmp, args.traces)
                run(store, exp, filters, args)
            finally:
                store.close()
    finally:
        if args.pg and args.drop:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{args.schema}" CASCADE')
        if args.pg:
            admin.dispose()


def run(store: SqlTrackingStore, exp: str, filters: list[str], args: argparse.Namespace) -> None:
    def load() -> str:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())

    results: dict[tuple[str, str, str], list[float]] = {}
    for r in range(args.rounds):
        print(f"round {r + 1}, load {load()}", flush=True)
        for mode in MODES if r % 2 == 0 else reversed(MODES):
            set_mode(mode)
            for flt in filters:
                ms = timed(
                    lambda flt=flt: store.search_traces([exp], flt, 100, ["timestamp_ms DESC"]),
                    args.repeat,
                )
                results.setdefault((flt, "page", mode), []).append(ms)
                if args.counts:
                    ms = timed(lambda flt=flt: store.trace_counts([exp], flt, None), args.repeat)
                    results.setdefault((flt, "count", mode), []).append(ms)
    print(f"load {load()}; best of {args.repeat} per round, ms (wall, in-process store call)")
    print(f"| filter | call | {' | '.join(MODES)} |")
    print(f"|---|---|{'---|' * len(MODES)}")
    for flt in filters:
        for call in ("page", "count") if args.counts else ("page",):
            cells = [
                "–".join(dict.fromkeys(f"{x:.2f}" for x in sorted(results[(flt, call, m)])))
                for m in MODES
            ]
            print(f"| `{flt}` | {call} | {' | '.join(cells)} |")
    if args.explain:
        for mode in MODES:
            set_mode(mode)
            print(f"EXPLAIN ANALYZE, {mode} (page statements as run):")
            for flt in filters:
                print(f"  {flt}\n{explain(store, exp, flt, args.nodes)}")


if __name__ == "__main__":
    main()
