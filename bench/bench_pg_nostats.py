"""A new PostgreSQL store before its tables have planner statistics: runs logged through
the store into a database of its own (autovacuum's ``ANALYZE`` not yet run), then a
search ordered by a metric with a metric and a param filter, planned (``EXPLAIN``) and
timed under a ``statement_timeout``; then the same after an explicit ``ANALYZE``.

    PYTHONPATH=. python bench/bench_pg_nostats.py --runs 150
    PYTHONPATH=/work/main python bench/bench_pg_nostats.py    # the code of another checkout

The store's code is whatever ``PYTHONPATH`` names (the script does not put its own
checkout first), so one script measures two checkouts on the same kind of data.

The database (``pganalyze_<random>`` in the PostgreSQL at ``$BENCH_PG``) is dropped at
the end. Its tables' autovacuum is turned off, so that only the store (or the script's
own ``ANALYZE``) takes their statistics; whether the store did shows in the
``reltuples`` printed after logging (-1: never analyzed).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import uuid
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from jupyter_mlops.tracking.entities import Metric
from jupyter_mlops.tracking.migrate import normalize_uri
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
TABLES = ("runs", "params", "tags", "latest_metrics")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")


def stats(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT relname, reltuples::bigint FROM pg_class WHERE oid = ANY(ARRAY["
            + ", ".join(f"to_regclass('{t}')" for t in TABLES)
            + "]::oid[]) ORDER BY relname"
        ).all()
    return ", ".join(f"{name} {n}" for name, n in rows)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=150)
    ap.add_argument("--timeout", type=float, default=20, help="statement_timeout, seconds")
    ap.add_argument("--filter", default="metrics.acc > 0.5 and params.optimizer = 'adam'")
    ap.add_argument("--order", default="metrics.metric_0 DESC")
    args = ap.parse_args()

    db = f"pganalyze_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalize_uri(f"{PG}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{db}"')
    opts = quote(f"-c statement_timeout={int(args.timeout * 1000)}")
    url = f"{PG}/{db}?options={opts}"
    print(f"load average: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}; database {db}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = SqlTrackingStore(url, artifact_root=tmp)
            try:
                run(store, args)
            finally:
                store.close()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{db}" WITH (FORCE)')
        admin.dispose()


def run(store: SqlTrackingStore, args: argparse.Namespace) -> None:
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for t in TABLES:  # as on this machine's server: autovacuum never comes
            conn.exec_driver_sql(f"ALTER TABLE {t} SET (autovacuum_enabled = off)")
    eid = store.create_experiment("nostats")
    t0 = time.perf_counter()
    for i in range(args.runs):
        rid = store.create_run(eid, run_name=f"r{i}", tags={"team": "ab"[i % 2]}).info.run_id
        store.log_batch(
            rid,
            metrics=[
                Metric("acc", (i * 37 % 100) / 100, 0, 0),
                *(Metric(f"metric_{k}", math.sin(i + k), 0, 0) for k in range(3)),
            ],
            params=[
                ("optimizer", OPTIMIZERS[i % 4]),
                *((f"param_{k}", str(i % 10)) for k in range(3)),
            ],
        )
    print(f"logged {args.runs} runs in {time.perf_counter() - t0:.1f} s")
    print(f"reltuples after logging: {stats(store.engine)}")
    explain_and_time(store, eid, args, "as logged")
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE " + ", ".join(TABLES))
    print(f"\nreltuples after ANALYZE: {stats(store.engine)}")
    explain_and_time(store, eid, args, "after ANALYZE")


def explain_and_time(
    store: SqlTrackingStore, eid: str, args: argparse.Namespace, label: str
) -> None:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        seen.append((statement, params))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    t0 = time.perf_counter()
    try:
        res, _ = store.search_runs([eid], args.filter, max_results=100, order_by=[args.order])
        outcome = f"{len(res)} runs"
    except sa.exc.OperationalError as e:
        outcome = f"cancelled by statement_timeout ({type(e.orig).__name__})"
    wall = time.perf_counter() - t0
    sa.event.remove(store.engine, "before_cursor_execute", record)
    print(f"\n== {label}: search {args.filter!r} order by {args.order}: {wall:.3f} s, {outcome}")
    with store.engine.connect() as conn:
        for statement, params in seen:
            if "latest_metrics AS ob0" not in statement or "set_config" in statement:
                continue
            plan = conn.exec_driver_sql("EXPLAIN " + statement, params).all()
            print("\n".join(r[0] for r in plan))
            break  # the first part (runs with the metric): the one that is planned badly


if __name__ == "__main__":
    main()
