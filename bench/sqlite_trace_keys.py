"""What random trace ids cost the trace tables' indexes on SQLite, and what an integer
trace key would save (issue 17): a design measurement, raw ``sqlite3``, no server.

The index rows of 3-span traces (1 ``traces`` row, 3 ``spans``, 6 ``span_attributes``:
the shape ``bench_tracing.py`` ingests) are inserted in 500-trace transactions (WAL,
``synchronous = FULL``, foreign keys on, rows sorted by key as ``traces.insert_new``
does), and the wall and CPU time per trace is printed for every 20,000 traces:

- ``current``: the store's own tables (their DDL read from a store this script creates),
  keyed by the text trace id, with random ids, as tracers draw them;
- ``sequential``: the same tables with ids that grow (appends only: the old bench);
- ``integer-key``: a proposal: ``traces`` keyed by an integer that grows with each new
  trace (``trace_key``, the row id), its ``trace_id`` a unique column, and the span
  tables keyed and joined by ``trace_key``; random trace ids.

    PYTHONPATH=. python bench/sqlite_trace_keys.py --traces 100000
    PYTHONPATH=. python bench/sqlite_trace_keys.py --variants current --pragma wal_autocheckpoint=10000
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

INTEGER_KEY_DDL = """
CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE traces (
 trace_key INTEGER PRIMARY KEY, trace_id VARCHAR(64) NOT NULL UNIQUE,
 experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id) ON DELETE CASCADE,
 client_request_id VARCHAR(250), request_time BIGINT NOT NULL, execution_duration BIGINT,
 state VARCHAR(32) NOT NULL, request_preview VARCHAR(1000), response_preview VARCHAR(1000),
 name VARCHAR(500), data_file VARCHAR(1000), data_offset BIGINT, data_length BIGINT,
 implied SMALLINT DEFAULT 0 NOT NULL);
CREATE INDEX ix_traces_experiment_time ON traces (experiment_id, request_time);
CREATE INDEX ix_traces_experiment_duration ON traces (experiment_id, execution_duration);
CREATE INDEX ix_traces_data_file ON traces (data_file);
CREATE TABLE spans (
 trace_key INTEGER NOT NULL REFERENCES traces (trace_key) ON DELETE CASCADE,
 span_id VARCHAR(16) NOT NULL, parent_span_id VARCHAR(16), name VARCHAR(500),
 span_type VARCHAR(100), status VARCHAR(32) NOT NULL, start_time_ns BIGINT NOT NULL,
 end_time_ns BIGINT, PRIMARY KEY (trace_key, span_id));
CREATE INDEX ix_spans_name ON spans (name);
CREATE INDEX ix_spans_type ON spans (span_type);
CREATE INDEX ix_spans_status ON spans (status, trace_key);
CREATE TABLE span_attributes (
 trace_key INTEGER NOT NULL REFERENCES traces (trace_key) ON DELETE CASCADE,
 span_id VARCHAR(16) NOT NULL, "key" VARCHAR(250) NOT NULL, value VARCHAR(1000),
 PRIMARY KEY (trace_key, span_id, "key"));
CREATE INDEX ix_span_attributes_key_value ON span_attributes ("key", value, trace_key);
"""

TRACE_COLUMNS = (
    "trace_id, experiment_id, client_request_id, request_time, execution_duration, state,"
    " request_preview, response_preview, name, data_file, data_offset, data_length, implied"
)
SPANS = (("top", "CHAIN"), ("middle", "CHAIN"), ("leaf", "TOOL"))


def store_ddl(tmp: Path) -> str:
    """The DDL of the store's experiments and trace tables, from a new store."""
    from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

    store = SqlTrackingStore(f"sqlite:///{tmp}/store.db", artifact_root=f"{tmp}/art")
    store.close()
    conn = sqlite3.connect(tmp / "store.db")
    names = ("experiments", "traces", "spans", "span_attributes")
    rows = conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name IN (?, ?, ?, ?) AND sql IS NOT NULL"
        " ORDER BY type = 'index', rowid",
        names,
    ).fetchall()
    conn.close()
    return ";\n".join(sql for (sql,) in rows) + ";"


def trace_id(i: int, sequential: bool) -> str:
    if sequential:
        return f"tr-b0{i:030x}"
    return "tr-" + hashlib.blake2b(str(i).encode(), digest_size=16).hexdigest()


def batch_rows(lo: int, n: int, key_of: Any) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """A batch's rows; each ``traces`` row starts with the trace's key (``key_of(i)``:
    its id and the key its span rows carry)."""
    traces, spans, attrs = [], [], []
    for i in range(lo, lo + n):
        tid, key = key_of(i)
        preview = f'{{"x": {i}}}'
        traces.append(
            (key, tid, 1, None, 1_700_000_000_000 + i, 1, "OK", preview, str(i), "top")
            + (f"/art/1/traces/batches/{lo}.jsonl", i * 300, 300, 7)
        )
        for j, (name, span_type) in enumerate(SPANS):
            span_id = f"{i + 1:012x}{j + 1:04x}"
            t0 = 1_700_000_000_000_000_000 + i * 1_000_000
            spans.append((key, span_id, None, name, span_type, "OK", t0 + j, t0 + 1000 - j))
            attrs.append((key, span_id, "mlflow.spanInputs", preview))
            attrs.append((key, span_id, "mlflow.spanOutputs", str(i + j)))
    traces.sort(key=lambda r: r[1])
    spans.sort(key=lambda r: r[:2])
    attrs.sort(key=lambda r: r[:3])
    return traces, spans, attrs


def run(variant: str, ddl: str, n: int, batch: int, pragmas: list[str], tmp: Path) -> None:
    path = tmp / f"{variant}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON", *pragmas):
        conn.execute(f"PRAGMA {pragma}")
    conn.executescript(ddl)
    conn.execute("INSERT INTO experiments (experiment_id, name) VALUES (1, 'e')")
    sequential = variant == "sequential"
    integer_key = variant == "integer-key"
    marks = ", ".join("?" * 13)
    wall, cpu = time.perf_counter(), time.process_time()
    for lo in range(0, n, batch):
        conn.execute("BEGIN IMMEDIATE")
        if integer_key:  # the writer holds the lock: the next keys are its own
            last = conn.execute("SELECT coalesce(max(trace_key), 0) FROM traces").fetchone()[0]
            traces, spans, attrs = batch_rows(
                lo, batch, lambda i, first=last + 1 - lo: (trace_id(i, False), first + i)
            )
            conn.executemany(
                f"INSERT INTO traces (trace_key, {TRACE_COLUMNS}) VALUES (?, {marks})", traces
            )
        else:
            traces, spans, attrs = batch_rows(
                lo, batch, lambda i: (trace_id(i, sequential), trace_id(i, sequential))
            )
            conn.executemany(
                f"INSERT INTO traces ({TRACE_COLUMNS}) VALUES ({marks})", [r[1:] for r in traces]
            )
        conn.executemany("INSERT INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?)", spans)
        conn.executemany("INSERT INTO span_attributes VALUES (?, ?, ?, ?)", attrs)
        conn.execute("COMMIT")
        done = lo + batch
        if done % 20_000 == 0 or done >= n:
            w, c = time.perf_counter() - wall, time.process_time() - cpu
            span = done % 20_000 or 20_000
            print(
                f"{variant:12} traces {done - span:>7,}-{done:<7,} "
                f"wall {1e6 * w / span:6.1f} µs  CPU {1e6 * c / span:6.1f} µs per trace",
                flush=True,
            )
            wall, cpu = time.perf_counter(), time.process_time()
    conn.close()
    print(f"{variant:12} database {path.stat().st_size / 1e6:.0f} MB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500, help="traces per transaction")
    ap.add_argument("--variants", default="current,integer-key,sequential")
    ap.add_argument("--pragma", action="append", default=[], help="e.g. cache_size=-65536")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        current = store_ddl(Path(tmp))
        for variant in args.variants.split(","):
            ddl = INTEGER_KEY_DDL if variant == "integer-key" else current
            run(variant, ddl, args.traces, args.batch, args.pragma, Path(tmp))


if __name__ == "__main__":
    main()
