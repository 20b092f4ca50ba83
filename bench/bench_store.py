"""Tracking store benchmark: jupyter-mlops' SqlTrackingStore against MLflow's own
``SqlAlchemyStore`` on the same data, both on SQLite files in a temporary directory.

    PYTHONPATH=. python bench/bench_store.py            # everything (a few minutes)
    PYTHONPATH=. python bench/bench_store.py --quick    # smaller data, a smoke run
    PYTHONPATH=. python bench/bench_store.py --only log,history,series,search
    PYTHONPATH=. python bench/bench_store.py --skip-mlflow --ours-uri 'postgresql://...'

Measured (wall time, best of ``--repeat`` for reads):

* log: 1,000,000 points (10 keys x 100k steps) sent as a writer thread would, in
  batches of ``--batch`` points mixing all keys; MLflow gets the same points in its
  maximum batch of 1000 metrics per ``log_batch``.
* history: ``get_metric_history`` of one 100k-point series.
* series: ``get_metric_series`` (<= 1000 min/max buckets) of a 1M-point series, whole
  and zoomed; MLflow has no down-sampled read, its baseline is the full history.
* search: ``search_runs`` over 10,000 runs with 20 params and 10 metrics each,
  filtered on a metric and a param and ordered by a metric. Our store is filled through
  its API (then VACUUM ANALYZEd on PostgreSQL, as autovacuum would); MLflow's tables are
  bulk-inserted (its API would take many minutes).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jupyter_mlops.tracking.entities import Metric
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

RESULTS: list[tuple[str, float, float | None]] = []
OURS_URI: str | None = None  # --ours-uri: run our side on another database (e.g. PostgreSQL)


def open_ours(tmp: str) -> SqlTrackingStore:
    return SqlTrackingStore(
        OURS_URI or f"sqlite:///{tmp}/ours.db", artifact_root=f"{tmp}/artifacts"
    )


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def report(name: str, ours: float, theirs: float | None) -> None:
    RESULTS.append((name, ours, theirs))
    ratio = f"{theirs / ours:8.1f}x" if theirs else "       -"
    t = f"{theirs * 1000:10.1f} ms" if theirs else "           -"
    print(f"{name:58s} ours {ours * 1000:10.1f} ms   mlflow {t}   speed-up {ratio}", flush=True)


def mlflow_store(tmp: str) -> Any:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return SqlAlchemyStore(f"sqlite:///{tmp}/mlflow.db", f"{tmp}/mlflow-artifacts")


# -- log ---------------------------------------------------------------------------


def points(n_keys: int, n_steps: int, batch: int) -> list[list[tuple[str, float, int, int]]]:
    """Batches of (key, value, timestamp, step) in the order a writer thread sends them:
    each batch holds the next steps of every key."""
    rng = random.Random(1)
    per_key = max(1, batch // n_keys)
    t0 = 1_700_000_000_000
    out = []
    for s0 in range(0, n_steps, per_key):
        b = []
        for k in range(n_keys):
            key = f"metric_{k}"
            for s in range(s0, min(n_steps, s0 + per_key)):
                b.append((key, rng.random(), t0 + s * 10, s))
        out.append(b)
    return out


def bench_log(tmp: str, args: argparse.Namespace) -> tuple[SqlTrackingStore, str]:
    batches = points(10, args.steps, args.batch)
    n = sum(len(b) for b in batches)
    ours = open_ours(tmp)
    rid = ours.create_run("0", run_name="log").info.run_id
    our_batches = [[Metric(k, v, t, s) for k, v, t, s in b] for b in batches]
    t_ours, _ = timed(lambda: [ours.log_batch(rid, metrics=b) for b in our_batches])
    # the columnar path of POST api/v1/runs/log-bulk
    rid2 = ours.create_run("0", run_name="bulk").info.run_id
    col_batches = []
    for b in batches:
        cols: dict[str, tuple[list, list, list]] = {}
        for k, v, t, s in b:
            c = cols.setdefault(k, ([], [], []))
            c[0].append(s)
            c[1].append(t)
            c[2].append(v)
        col_batches.append([(k, *c) for k, c in cols.items()])
    t_bulk, _ = timed(lambda: [ours.log_bulk(rid2, metrics=b) for b in col_batches])
    t_mlflow = None
    if not args.skip_mlflow:
        from mlflow.entities import Metric as MMetric

        ml = mlflow_store(tmp)
        mrid = ml.create_run("0", "bench", 0, [], "log").info.run_id
        m_points = [MMetric(k, v, t, s) for b in batches for k, v, t, s in b]
        m_points = m_points[: args.mlflow_points]
        chunks = [m_points[i : i + 1000] for i in range(0, len(m_points), 1000)]
        t_part, _ = timed(lambda: [ml.log_batch(mrid, c, [], []) for c in chunks])
        t_mlflow = t_part * n / len(m_points)  # extrapolated when fewer points were sent
        if len(m_points) < n:
            print(f"  (MLflow got {len(m_points)} points, time scaled to {n})")
    report(f"log_batch {n:,} points (batches of {args.batch:,})", t_ours, t_mlflow)
    report(f"log_bulk (columnar) {n:,} points", t_bulk, t_mlflow)
    return ours, rid


def bench_history(ours: SqlTrackingStore, rid: str, tmp: str, args: argparse.Namespace) -> None:
    t_ours, (hist, _) = timed(lambda: ours.get_metric_history(rid, "metric_0"), args.repeat)
    t_ml = None
    if not args.skip_mlflow:
        from mlflow.entities import Metric as MMetric

        ml = mlflow_store(tmp)
        mrid = ml.create_run("0", "bench", 0, [], "history").info.run_id
        pts = [MMetric("metric_0", m.value, m.timestamp, m.step) for m in hist]
        for i in range(0, len(pts), 1000):
            ml.log_batch(mrid, pts[i : i + 1000], [], [])
        t_ml, _ = timed(lambda: ml.get_metric_history(mrid, "metric_0"), args.repeat)
    report(f"get_metric_history {len(hist):,} points", t_ours, t_ml)
    t_cols, _ = timed(lambda: ours.get_metric_history_columns(rid, "metric_0"), args.repeat)
    report(f"get_metric_history_columns {len(hist):,} points (no Metric objects)", t_cols, t_ml)


def bench_series(tmp: str, args: argparse.Namespace) -> None:
    ours = open_ours(tmp)
    rid = ours.create_run("0", run_name="series").info.run_id
    n = args.series_points
    rng = random.Random(2)
    t0 = 1_700_000_000_000
    for s0 in range(0, n, 50_000):
        steps = list(range(s0, min(n, s0 + 50_000)))
        ours.log_bulk(
            rid, metrics=[("big", steps, [t0 + s for s in steps], [rng.random() for _ in steps])]
        )
    t, pts = timed(lambda: ours.get_metric_series(rid, "big", 1000), args.repeat)
    report(f"get_metric_series {n:,} points -> {len(pts)} buckets (step)", t, None)
    t, pts = timed(
        lambda: ours.get_metric_series(rid, "big", 1000, x_axis="timestamp"), args.repeat
    )
    report(f"get_metric_series {n:,} points -> {len(pts)} buckets (timestamp)", t, None)
    lo, hi = n // 3, n // 3 + n // 4
    t, pts = timed(
        lambda: ours.get_metric_series(rid, "big", 1000, start_step=lo, end_step=hi), args.repeat
    )
    report(f"get_metric_series zoom {hi - lo:,} steps -> {len(pts)} buckets", t, None)
    t, pts = timed(
        lambda: ours.get_metric_series(rid, "big", 1000, start_step=lo, end_step=lo + 800),
        args.repeat,
    )
    report(f"get_metric_series zoom 801 steps -> {len(pts)} exact points", t, None)
    if not args.skip_mlflow and args.series_mlflow:
        t_h, (hist, _) = timed(lambda: ours.get_metric_history(rid, "big"))
        report(f"  (ours: full get_metric_history of {len(hist):,} points)", t_h, None)


# -- search --------------------------------------------------------------------------


def search_data(n_runs: int) -> list[dict[str, Any]]:
    rng = random.Random(3)
    out = []
    t0 = 1_700_000_000_000
    for i in range(n_runs):
        out.append(
            {
                "run_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "name": f"run-{i}",
                "start": t0 + i * 1000,
                "params": {f"param_{j}": str(rng.randint(0, 9)) for j in range(20)}
                | {"optimizer": rng.choice(["adam", "sgd", "rmsprop", "adamw"])},
                "metrics": {f"metric_{j}": rng.random() for j in range(9)} | {"acc": rng.random()},
                "tags": {"team": rng.choice(["a", "b", "c"])},
            }
        )
    return out


def fill_ours(store: SqlTrackingStore, data: list[dict[str, Any]]) -> str:
    eid = store.create_experiment(f"search-{uuid.uuid4().hex[:6]}")
    for r in data:
        store.create_run(
            eid, start_time=r["start"], run_name=r["name"], run_id=r["run_id"], tags=r["tags"]
        )
        store.log_batch(
            r["run_id"],
            metrics=[Metric(k, v, r["start"], 0) for k, v in r["metrics"].items()],
            params=list(r["params"].items()),
        )
    return eid


def fill_mlflow(ml: Any, data: list[dict[str, Any]]) -> str:
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )

    eid = ml.create_experiment(f"search-{uuid.uuid4().hex[:6]}")
    run_rows, param_rows, metric_rows, tag_rows = [], [], [], []
    for r in data:
        rid = r["run_id"]
        run_rows.append(
            {
                "run_uuid": rid,
                "name": r["name"],
                "source_type": "LOCAL",
                "source_name": "",
                "entry_point_name": "",
                "user_id": "bench",
                "status": "FINISHED",
                "start_time": r["start"],
                "end_time": r["start"] + 1,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": f"/tmp/{rid}",
                "experiment_id": int(eid),
            }
        )
        param_rows += [{"run_uuid": rid, "key": k, "value": v} for k, v in r["params"].items()]
        tag_rows += [{"run_uuid": rid, "key": k, "value": v} for k, v in r["tags"].items()]
        tag_rows.append({"run_uuid": rid, "key": "mlflow.runName", "value": r["name"]})
        metric_rows += [
            {
                "run_uuid": rid,
                "key": k,
                "value": v,
                "timestamp": r["start"],
                "step": 0,
                "is_nan": False,
            }
            for k, v in r["metrics"].items()
        ]
    with ml.engine.begin() as conn:
        conn.execute(SqlRun.__table__.insert(), run_rows)
        conn.execute(SqlParam.__table__.insert(), param_rows)
        conn.execute(SqlTag.__table__.insert(), tag_rows)
        conn.execute(SqlMetric.__table__.insert(), metric_rows)
        conn.execute(SqlLatestMetric.__table__.insert(), metric_rows)
    return eid


def bench_search(tmp: str, args: argparse.Namespace) -> None:
    data = search_data(args.runs)
    ours = open_ours(tmp)
    t_fill, eid = timed(lambda: fill_ours(ours, data))
    print(f"  (filled our store with {len(data):,} runs through its API in {t_fill:.1f} s)")
    if ours.dialect == "postgresql":
        # what autovacuum does after a bulk load (and does not, where it is off): the
        # planner needs statistics, index-only scans need the visibility map
        with ours.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    ml = None
    if not args.skip_mlflow:
        ml = mlflow_store(tmp)
        meid = fill_mlflow(ml, data)
    cases = [
        (
            "filter metric+param, order by metric, 100 per page",
            "metrics.acc > 0.5 and params.optimizer = 'adam'",
            ["metrics.metric_0 DESC"],
            100,
        ),
        (
            "filter metric+param, order by metric, 1000 per page",
            "metrics.acc > 0.5 and params.optimizer = 'adam'",
            ["metrics.metric_0 DESC"],
            1000,
        ),
        ("no filter, default order, 100 per page", None, None, 100),
        (
            "narrow filter (param_3 = '7' and metric_1 > 0.9)",
            "params.param_3 = '7' and metrics.metric_1 > 0.9",
            ["metrics.acc ASC"],
            1000,
        ),
    ]
    for name, flt, order, page in cases:
        t, (res, _) = timed(
            partial(ours.search_runs, [eid], flt, max_results=page, order_by=order), args.repeat
        )
        t_ml = None
        if ml is not None:
            t_ml, (mres) = timed(
                partial(ml.search_runs, [meid], flt, 1, page, order, None), args.repeat
            )
            ids_ml = [r.info.run_id for r in mres]
            ids = [r.info.run_id for r in res]
            if ids != ids_ml:
                print("  WARNING: results differ from MLflow's", len(ids), len(ids_ml))
        report(f"search_runs {len(data):,} runs: {name} ({len(res)} runs)", t, t_ml)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small data for a smoke run")
    ap.add_argument("--only", default="log,history,series,search")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--steps", type=int, default=100_000, help="steps per key for 'log' (10 keys)")
    ap.add_argument("--batch", type=int, default=50_000, help="points per log_batch call")
    ap.add_argument(
        "--mlflow-points",
        type=int,
        default=1_000_000,
        help="points sent to MLflow in 'log' (time is scaled up to the full count)",
    )
    ap.add_argument("--series-points", type=int, default=1_000_000)
    ap.add_argument("--series-mlflow", action="store_true")
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--ours-uri",
        default=None,
        help="database for our store instead of a SQLite file, e.g. "
        "postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%%3Dbench "
        "(an empty schema or database)",
    )
    args = ap.parse_args()
    global OURS_URI
    OURS_URI = args.ours_uri
    if args.quick:
        args.steps, args.series_points, args.runs, args.mlflow_points = (
            10_000,
            100_000,
            1000,
            20_000,
        )
    only = set(args.only.split(","))
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        ours = rid = None
        if "log" in only or "history" in only:
            ours, rid = bench_log(tmp, args)
        if "history" in only:
            bench_history(ours, rid, tmp, args)
        if "series" in only:
            bench_series(tmp, args)
        if "search" in only:
            bench_search(tmp, args)


if __name__ == "__main__":
    main()
