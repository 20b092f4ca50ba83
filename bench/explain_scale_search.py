"""The plans of one ``search_runs`` call (issue 18): every statement the store runs for
it, with PostgreSQL's ``EXPLAIN (ANALYZE, BUFFERS)`` or SQLite's ``EXPLAIN QUERY PLAN``
and its own time, then the call's time in-process (median and best of ``--repeat``).

    PYTHONPATH=. python bench/explain_scale_search.py postgresql://postgres@127.0.0.1:5432/bench_search_ours_1000000 \\
        --filter "params.param_3 = '7' and metrics.metric_1 > 0.99" --order "metrics.acc ASC"
    PYTHONPATH=. python bench/explain_scale_search.py sqlite:////tmp/bench_scale/search_ours_100000.db --page 1000

``--page N`` follows the tokens to page N first and explains that page. ``--no-migrate``
opens the database without migrating it: with ``PYTHONPATH`` at an older checkout, the
same data measures the code before a change.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa

from jupyter_mlops.tracking.sqlstore import SqlTrackingStore


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("url")
    ap.add_argument("--experiment", default="1")
    ap.add_argument("--filter", default="metrics.acc > 0.5 and params.optimizer = 'adam'")
    ap.add_argument("--order", action="append", help="order_by clause (repeatable)")
    ap.add_argument("--max-results", type=int, default=100)
    ap.add_argument("--page", type=int, default=1, help="explain this page (tokens followed)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--no-migrate",
        action="store_true",
        help="open the store as it is (older code on a newer schema, for before/after figures)",
    )
    args = ap.parse_args()
    if args.no_migrate:
        import jupyter_mlops.tracking.sqlstore as sqlstore

        sqlstore.upgrade = lambda engine: None  # type: ignore[assignment]
    order = args.order or []
    store = SqlTrackingStore(args.url)
    print(f"load average: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")

    def call(token: str | None) -> str | None:
        return store.search_runs(
            [args.experiment],
            args.filter or None,
            max_results=args.max_results,
            order_by=order,
            page_token=token,
        )[1]

    token = None
    for _ in range(args.page - 1):
        token = call(token)
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        seen.append((statement, params))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    call(token)
    sa.event.remove(store.engine, "before_cursor_execute", record)
    pg = store.dialect == "postgresql"
    with store.engine.connect() as conn:
        for statement, params in seen:
            if not statement.lstrip().upper().startswith("SELECT") or "set_config" in statement:
                continue
            print("\n" + statement.strip()[:2000])
            if pg:
                conn.exec_driver_sql(
                    "SELECT set_config('max_parallel_workers_per_gather', '0', false), "
                    "set_config('jit', 'off', false)"
                )
                plan = conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, params
                ).fetchall()
                print("\n".join(r[0] for r in plan))
            else:
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).fetchall()
                print("\n".join(f"  {r[-1]}" for r in plan))
                t = time.perf_counter()
                conn.exec_driver_sql(statement, params).fetchall()
                print(f"  ({(time.perf_counter() - t) * 1000:.1f} ms)")
    times, cpu = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        call(token)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    # CPU time of this process (SQLite's work included; PostgreSQL's is its server's):
    # what a quiet machine would show, where the wall time waits for a core under load
    print(
        f"\nsearch_runs page {args.page}: median {statistics.median(times):.1f} ms, "
        f"best {min(times):.1f} ms, process CPU median {statistics.median(cpu):.1f} ms "
        f"({args.repeat} calls), "
        f"load {'/'.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    store.close()


if __name__ == "__main__":
    main()
