"""Long series (issue 18): one run with 10,000,000 points in one metric on PostgreSQL;
the chart's reads over REST, ours beside ``mlflow server`` on the same points.

    PYTHONPATH=. python bench/bench_scale_series.py               # 10M points
    PYTHONPATH=. python bench/bench_scale_series.py --scale 0.1   # 1M points

* first draw: ours ``GET api/v1/metrics/series`` (<= 1000 min/max buckets over the whole
  series); MLflow's chart read ``GET ajax-api/2.0/mlflow/metrics/get-history-bulk-interval``
  (its UI's sampled history: ``max_results`` points spread over the steps).
* zoom: the same two calls over a window of 1% of the steps (ours: exact min/max
  buckets of the window; MLflow: its sampled points of the window).
* export: ``GET api/2.0/mlflow/metrics/get-history`` paged (``--page`` points a page,
  following ``next_page_token``) through the whole series: time, and the server's RSS
  before and at its peak (sampled every 50 ms), which must stay flat (a page at a time).
  MLflow's export is measured on ``--mlflow-export`` points only (it pages by offset over
  a full read of the series per page: measured at scale it does not finish).

Our points are written with the store's ``log_bulk`` (columnar, 100k points a call);
MLflow's with one ``INSERT ... SELECT generate_series`` into its ``metrics`` table (and
its ``latest_metrics`` row). Databases ``bench_series_ours_<n>``/``bench_series_mlflow_<n>``
are kept for the next run (``--fresh`` reloads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests
from scale_common import (
    DB_PREFIX,
    Server,
    ensure_db,
    jupyter_server,
    load,
    mlflow_pg_url,
    mlflow_server,
    ms,
    pg_exec,
    pg_url,
    timed,
)

T0 = 1_700_000_000_000
RUN_ID = "5e" * 16  # the same run id on both sides


def value(step: int) -> float:
    return ((step * 7919) % 10007) / 10007.0


def load_ours(n: int, fresh: bool) -> str:
    db = f"{DB_PREFIX}series_ours_{n}"
    if ensure_db(db, fresh) and pg_exec("SELECT to_regclass('bench_loaded')", db)[0][0]:
        return pg_url(db)
    ensure_db(db, fresh=True)
    from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

    t = time.perf_counter()
    store = SqlTrackingStore(pg_url(db), artifact_root="/tmp/bench_scale/artifacts")
    store.create_run("0", run_name="long", run_id=RUN_ID, start_time=T0)
    step = 100_000
    for s0 in range(0, n, step):
        steps = list(range(s0, min(n, s0 + step)))
        store.log_bulk(
            RUN_ID, metrics=[("loss", steps, [T0 + s for s in steps], [value(s) for s in steps])]
        )
    store.engine.dispose()
    pg_exec("CREATE TABLE bench_loaded (n int)", db)
    pg_exec("VACUUM ANALYZE", db)
    print(f"  ours: {n:,} points logged in {time.perf_counter() - t:.0f} s", flush=True)
    return pg_url(db)


def load_mlflow(n: int, fresh: bool) -> str:
    db = f"{DB_PREFIX}series_mlflow_{n}"
    if ensure_db(db, fresh) and pg_exec("SELECT to_regclass('bench_loaded')", db)[0][0]:
        return mlflow_pg_url(db)
    ensure_db(db, fresh=True)
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    t = time.perf_counter()
    store = SqlAlchemyStore(mlflow_pg_url(db), "/tmp/bench_scale/mlflow-artifacts")
    rid = store.create_run("0", "bench", T0, [], "long").info.run_id
    store.engine.dispose()
    val = "((s::bigint * 7919) % 10007)::float8 / 10007.0"  # s * 7919 overflows int4
    pg_exec(
        "SET session_replication_role = replica;"  # re-key the run and its tags at once
        f"UPDATE runs SET run_uuid = '{RUN_ID}' WHERE run_uuid = '{rid}';"
        f"UPDATE tags SET run_uuid = '{RUN_ID}' WHERE run_uuid = '{rid}';"
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
        f"SELECT 'loss', {val}, {T0} + s, '{RUN_ID}', s, false "
        f"FROM generate_series(0, {n - 1}) s;"
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
        f"SELECT 'loss', {val}, {T0} + s, s, false, '{RUN_ID}' FROM (SELECT {n - 1} s) x;"
        "CREATE TABLE bench_loaded (n int)",
        db,
    )
    pg_exec("VACUUM ANALYZE", db)
    print(f"  mlflow: {n:,} points inserted in {time.perf_counter() - t:.0f} s", flush=True)
    return mlflow_pg_url(db)


class RssPeak:
    """Samples a server's RSS every 50 ms while in a ``with`` block."""

    def __init__(self, srv: Server) -> None:
        self.srv, self.peak, self.stop = srv, 0.0, False

    def __enter__(self) -> RssPeak:
        self.before = self.srv.rss_mb()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, self.srv.rss_mb())
            time.sleep(0.05)

    def __exit__(self, *exc: Any) -> None:
        self.stop = True
        self.t.join()


def export(srv: Server, page: int, limit: int | None) -> tuple[float, int, RssPeak]:
    s = requests.Session()
    s.headers.update(srv.headers)
    got, token = 0, None
    with RssPeak(srv) as rss:
        t0 = time.perf_counter()
        while True:
            params: dict[str, Any] = {"run_id": RUN_ID, "metric_key": "loss", "max_results": page}
            if token:
                params["page_token"] = token
            r = s.get(f"{srv.url}/api/2.0/mlflow/metrics/get-history", params=params, timeout=3600)
            r.raise_for_status()
            body = r.json()
            got += len(body.get("metrics", []))
            token = body.get("next_page_token")
            if not token or (limit and got >= limit):
                break
        dt = time.perf_counter() - t0
    return dt, got, rss


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=1.0, help="x 10,000,000 points")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--page", type=int, default=100_000, help="points per get-history page")
    ap.add_argument("--mlflow-export", type=int, default=200_000, help="points MLflow exports")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--skip-export", action="store_true", help="only the chart's reads")
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    n = int(10_000_000 * args.scale)
    print(f"{n:,} points; load average {load()}", flush=True)
    ours_url = load_ours(n, args.fresh)
    ml_url = None if args.skip_mlflow else load_mlflow(n, args.fresh)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-series-"))
    srv = jupyter_server(tmp / "ours", ours_url)
    msrv = mlflow_server(tmp / "mlflow", ml_url) if ml_url else None
    rows = []
    try:
        s = requests.Session()
        s.headers.update(srv.headers)
        lo = n // 2
        hi = lo + n // 100

        def ours_series(**kw: Any) -> int:
            r = s.get(
                f"{srv.url}/api/v1/metrics/series",
                params={"run_id": RUN_ID, "metric_key": "loss", "max_points": 1000, **kw},
                timeout=600,
            )
            r.raise_for_status()
            return len(r.json()["points"])

        def ml_interval(**kw: Any) -> int:
            assert msrv is not None
            r = requests.get(
                f"{msrv.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                params={"run_ids": RUN_ID, "metric_key": "loss", "max_results": 1000, **kw},
                timeout=3600,
            )
            r.raise_for_status()
            return len(r.json().get("metrics", []))

        for name, kw, mkw in (
            ("first draw, whole series", {}, {}),
            (
                f"zoom to 1% ({hi - lo:,} steps)",
                {"start_step": lo, "end_step": hi},
                {"start_step": lo, "end_step": hi},
            ),
        ):
            ours_series(**kw)
            cpu0 = srv.cpu_s()
            t, npts = timed(lambda kw=kw: ours_series(**kw), args.repeat)
            cpu = (srv.cpu_s() - cpu0) / args.repeat
            tm, mpts = None, None
            if msrv:
                tm, mpts = timed(lambda mkw=mkw: ml_interval(**mkw), 3)
            med, mmed = statistics.median(t), (statistics.median(tm) if tm else None)
            row = (
                f"| {name} | {ms(med)} (best {ms(min(t))}; {npts} buckets; server CPU "
                f"{ms(cpu)}; load {load()}) | "
                f"{ms(mmed)}{f' ({mpts} points)' if mpts is not None else ''} | "
                f"{f'{mmed / med:,.0f}x' if mmed else ''} |"
            )
            print(row, flush=True)
            rows.append(row)
        if not args.skip_export:
            dt, got, rss = export(srv, args.page, None)
            row = (
                f"| export: get-history paged ({args.page:,}/page), {got:,} points | {dt:.1f} s "
                f"({got / dt:,.0f} points/s), server RSS {rss.before:.0f} -> peak {rss.peak:.0f} MB | "
            )
            if msrv:
                mdt, mgot, mrss = export(
                    msrv, min(args.page, args.mlflow_export), args.mlflow_export
                )
                row += (
                    f"first {mgot:,} points: {mdt:.1f} s ({mgot / mdt:,.0f} points/s), server RSS "
                    f"{mrss.before:.0f} -> peak {mrss.peak:.0f} MB | |"
                )
            else:
                row += " - | |"
            print(row, flush=True)
            rows.append(row)
    finally:
        srv.stop()
        if msrv:
            msrv.stop()
    print(f"\nload average after: {load()}\n")
    print(f"| {n:,}-point series over REST | jupyter-mlops | mlflow | ratio |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
