"""Many writers (issue 18): N client processes logging at once into one tracking server
on PostgreSQL, ours (Jupyter Server + the extension) beside ``mlflow server``, each on
its own database of the same PostgreSQL.

    PYTHONPATH=. python bench/bench_scale_writers.py                # 100 writers x 100k points
    PYTHONPATH=. python bench/bench_scale_writers.py --scale 0.1    # 10 writers x 10k points
    PYTHONPATH=. python bench/bench_scale_writers.py --writers 8 --points 2000 --skip-mlflow

Every writer process creates ``--runs`` runs (``runs/create``) and logs its points over
them, two metric keys per run, in batches, acknowledged one by one:

* ``mlflow log_batch``: MLflow's client (``MlflowClient.log_batch``, its maximum of 1000
  metrics per call) against each server: the same client and request on both sides.
* ``--client rest``: the request ``log_batch`` sends (``POST api/2.0/mlflow/runs/log-batch``,
  one JSON object per point) made with ``requests``, for runs of many writers: MLflow's
  client costs each process ~150 MB, too much for 100 of them on a small machine.
* ``ours log-bulk``: our columnar route (``POST api/v1/runs/log-bulk``, what the
  jupyter-mlops client sends), ``--bulk`` points per request.

Reported: aggregate throughput (points / wall time from the common start to the last
writer's end), p50/p99 time to acknowledge a batch, and the check that every series
holds exactly its points (no point lost, none duplicated: counted per series in the
database at the end), and each server's CPU time (user + system, its processes): a
figure of its own work that the machine's load does not inflate. Ours is one Jupyter
Server (``--store-threads``: ``MLOpsApp.store_threads``); MLflow is ``mlflow server
--workers 4`` with a SQLAlchemy pool of 5 + 5 connections per worker
(``MLFLOW_SQLALCHEMYSTORE_POOL_SIZE`` / ``_MAX_OVERFLOW``: with one worker and its default
pool, 100 writers got ``QueuePool limit ... reached`` errors). The last lines give the
ratio of throughputs and of p99s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scale_common import (
    DB_PREFIX,
    ensure_db,
    jupyter_server,
    load,
    mlflow_pg_url,
    mlflow_server,
    ms,
    pct,
    pg_exec,
    pg_url,
)

KEYS = ("loss", "acc")
T0 = 1_700_000_000_000


def plan(points: int, runs: int) -> list[list[int]]:
    """Steps per run: ``points`` split over ``runs`` runs, each logging both keys."""
    per_series = points // (runs * len(KEYS))
    return [list(range(per_series)) for _ in range(runs)]


def writer(
    w: int, mode: str, url: str, headers: dict[str, str], exp_id: str, args: Any, start: float
) -> dict[str, Any]:
    """One client process: create its runs, log its points, return ack latencies."""
    import requests

    client: Any = None
    if mode == "mlflow":
        os.environ["MLFLOW_TRACKING_URI"] = url
        if "Authorization" in headers:
            os.environ["MLFLOW_TRACKING_TOKEN"] = headers["Authorization"].split()[1]
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # a failure must show, not retry
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient(url)
    s = requests.Session()
    s.headers.update(headers)
    while time.time() < start:
        time.sleep(0.01)
    lat: list[float] = []
    run_ids = []
    for r, steps in enumerate(plan(args.points, args.runs)):
        t = time.perf_counter()
        if client is not None:
            rid = client.create_run(exp_id, run_name=f"w{w}-r{r}").info.run_id
        else:
            resp = s.post(
                f"{url}/api/2.0/mlflow/runs/create",
                json={"experiment_id": exp_id, "run_name": f"w{w}-r{r}", "start_time": T0},
                timeout=600,
            )
            resp.raise_for_status()
            rid = resp.json()["run"]["info"]["run_id"]
        lat.append(time.perf_counter() - t)
        run_ids.append(rid)
        size = args.bulk if mode == "bulk" else args.batch
        per_key = max(1, size // len(KEYS))
        for i in range(0, len(steps), per_key):
            chunk = steps[i : i + per_key]
            t = time.perf_counter()
            if mode == "rest":
                body = {
                    "run_id": rid,
                    "metrics": [
                        {"key": k, "value": float(st) * (j + 1), "timestamp": T0 + st, "step": st}
                        for j, k in enumerate(KEYS)
                        for st in chunk
                    ],
                }
                resp = s.post(f"{url}/api/2.0/mlflow/runs/log-batch", json=body, timeout=600)
                if resp.status_code != 200:  # the server's reason, not only the status
                    raise RuntimeError(f"log-batch: {resp.status_code} {resp.text[:300]}")
            elif client is not None:
                client.log_batch(
                    rid,
                    metrics=[
                        Metric(k, float(st) * (j + 1), T0 + st, st)
                        for j, k in enumerate(KEYS)
                        for st in chunk
                    ],
                    synchronous=True,
                )
            else:
                body = {
                    "run_id": rid,
                    "metrics": [
                        {
                            "key": k,
                            "steps": chunk,
                            "timestamps": [T0 + st for st in chunk],
                            "values": [float(st) * (j + 1) for st in chunk],
                        }
                        for j, k in enumerate(KEYS)
                    ],
                }
                resp = s.post(f"{url}/api/v1/runs/log-bulk", data=json.dumps(body), timeout=600)
                resp.raise_for_status()
            lat.append(time.perf_counter() - t)
    return {"lat": lat, "run_ids": run_ids, "end": time.time()}


def ours_args(args: argparse.Namespace) -> list[str]:
    return [f"--MLOpsApp.store_threads={args.store_threads}"] if args.store_threads else []


def _writer_entry(a: tuple[Any, ...]) -> dict[str, Any]:
    return writer(*a)


def count_series(side: str, db: str, run_ids: list[str]) -> tuple[int, int, int]:
    """(points stored, distinct (series, step), series) over the writers' runs."""
    ids = ",".join(f"'{r}'" for r in run_ids)
    if side == "mlflow":
        rows = pg_exec(
            "SELECT count(*), count(DISTINCT (run_uuid, key, step)), "
            f"count(DISTINCT (run_uuid, key)) FROM metrics WHERE run_uuid IN ({ids})",
            db,
        )
        return rows[0]
    from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

    store = SqlTrackingStore(pg_url(db))
    total = distinct = series = 0
    for rid in run_ids:
        for k in KEYS:
            steps = store.get_metric_history_columns(rid, k)[0]
            total += len(steps)
            distinct += len(set(steps))
            series += 1 if steps else 0
    store.engine.dispose()
    return total, distinct, series


def count_rest(url: str, headers: dict[str, str], run_ids: list[str]) -> tuple[int, int, int]:
    """As :func:`count_series`, read back over REST (``metrics/get-history``, paged)."""
    import requests

    s = requests.Session()
    s.headers.update(headers)
    total = distinct = series = 0
    for rid in run_ids:
        for k in KEYS:
            steps, token = [], None
            while True:
                params = {"run_id": rid, "metric_key": k, "max_results": 100_000}
                if token:
                    params["page_token"] = token
                r = s.get(f"{url}/api/2.0/mlflow/metrics/get-history", params=params, timeout=600)
                r.raise_for_status()
                body = r.json()
                steps += [m["step"] for m in body.get("metrics", [])]
                token = body.get("next_page_token")
                if not token:
                    break
            total += len(steps)
            distinct += len(set(steps))
            series += 1 if steps else 0
    return total, distinct, series


class Remote:
    """A deployment given by ``--url``/``--token`` (nothing started or stopped here)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"token {token}"} if token else {}

    def rss_mb(self) -> float:
        return 0.0

    def cpu_s(self) -> float:
        return 0.0

    def stop(self) -> None:
        pass


def run_side(label: str, mode: str, side: str, args: argparse.Namespace) -> dict[str, Any]:
    if side == "mlflow" and args.mlflow_points:
        # Same writers, fewer points each: a rate; MLflow would take hours at full size.
        args = argparse.Namespace(**{**vars(args), "points": args.mlflow_points})
    db = f"{DB_PREFIX}writers_{side}"
    srv: Any
    if args.url:
        srv = Remote(args.url, args.token)
    else:
        ensure_db(db, fresh=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-writers-{side}-"))
        srv = (
            jupyter_server(tmp, pg_url(db), *ours_args(args))
            if side == "ours"
            else mlflow_server(
                tmp,
                mlflow_pg_url(db),
                args.mlflow_workers,
                MLFLOW_SQLALCHEMYSTORE_POOL_SIZE=str(args.mlflow_pool),
                MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW=str(args.mlflow_overflow),
            )
        )
    try:
        import requests

        r = requests.post(
            f"{srv.url}/api/2.0/mlflow/experiments/create",
            json={"name": f"bench-writers-{int(time.time())}"},
            headers=srv.headers,
            timeout=120,
        )
        r.raise_for_status()
        exp_id = r.json()["experiment_id"]
        cpu0 = srv.cpu_s()
        start = time.time() + 3 + args.writers * 0.15  # every process imported and waiting
        ctx = mp.get_context("spawn")
        with ctx.Pool(args.writers) as pool:
            jobs = [
                (w, mode, srv.url, srv.headers, exp_id, args, start) for w in range(args.writers)
            ]
            results = pool.map(_writer_entry, jobs, chunksize=1)
        wall = max(x["end"] for x in results) - start
        rss = srv.rss_mb()
        cpu = srv.cpu_s() - cpu0
    finally:
        srv.stop()
    lat = [t for x in results for t in x["lat"]]
    run_ids = [r for x in results for r in x["run_ids"]]
    expected = len(run_ids) * len(KEYS) * (args.points // (args.runs * len(KEYS)))
    if args.url:
        total, distinct, series = count_rest(srv.url, srv.headers, run_ids)
    else:
        total, distinct, series = count_series(side, db, run_ids)
    out = {
        "label": label,
        "points": expected,
        "wall": wall,
        "rate": expected / wall,
        "p50": pct(lat, 50),
        "p99": pct(lat, 99),
        "mean": statistics.mean(lat),
        "stored": total,
        "distinct": distinct,
        "series": series,
        "ok": total == distinct == expected and series == len(run_ids) * len(KEYS),
        "rss": rss,
        "cpu": cpu,
        "load": load(),
    }
    print(
        f"{label}: {expected:,} points in {wall:.1f} s = {out['rate']:,.0f} points/s; "
        f"ack p50 {ms(out['p50'])} p99 {ms(out['p99'])}; stored {total:,} "
        f"(distinct {distinct:,}, series {series}) {'OK' if out['ok'] else 'MISMATCH'}; "
        f"server RSS {rss:.0f} MB, CPU {cpu:.1f} s ({cpu * 1000 / max(1, expected / 1000):.1f} "
        f"ms per 1k points); load {out['load']}",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=1.0, help="x (100 writers, 100k points each)")
    ap.add_argument("--writers", type=int, default=None)
    ap.add_argument("--points", type=int, default=None, help="points per writer")
    ap.add_argument(
        "--mlflow-points",
        type=int,
        default=None,
        help="points per writer on MLflow's side (default: --points); its throughput is a rate, "
        "so fewer points measure it in minutes where the full size takes hours",
    )
    ap.add_argument("--runs", type=int, default=5, help="runs each writer creates")
    ap.add_argument("--batch", type=int, default=1000, help="points per MLflow log_batch")
    ap.add_argument("--bulk", type=int, default=10_000, help="points per ours log-bulk")
    ap.add_argument("--mlflow-workers", type=int, default=4, help="mlflow server --workers")
    ap.add_argument(
        "--mlflow-pool", type=int, default=5, help="MLflow's SQLAlchemy pool size per worker"
    )
    ap.add_argument(
        "--mlflow-overflow",
        type=int,
        default=5,
        help="MLflow's SQLAlchemy pool overflow per worker",
    )
    ap.add_argument("--store-threads", type=int, default=None, help="ours: MLOpsApp.store_threads")
    ap.add_argument(
        "--client",
        choices=("mlflow", "rest"),
        default="mlflow",
        help="log_batch through MLflow's client, or its request made with requests (lighter)",
    )
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument(
        "--url",
        help="a running deployment's tracking URL (e.g. https://hub/user/me/mlops or the hub "
        "service's): measure it instead of starting servers (no MLflow side)",
    )
    ap.add_argument("--token", help="its API token (sent as 'Authorization: token ...')")
    ap.add_argument(
        "--modes",
        default="bulk,batch",
        help="ours: bulk (log-bulk) and/or batch (MLflow's client log_batch)",
    )
    args = ap.parse_args()
    if args.url:
        args.skip_mlflow = True
    args.writers = args.writers or max(1, round(100 * args.scale))
    args.points = args.points or max(1000, round(100_000 * args.scale))
    print(
        f"{args.writers} writers x {args.points:,} points ({args.runs} runs each); "
        f"load average {load()}",
        flush=True,
    )
    res = []
    how = "MLflow's client" if args.client == "mlflow" else "REST (MLflow client's request)"
    modes = args.modes.split(",")
    if "bulk" in modes:
        res.append(run_side(f"ours log-bulk ({args.bulk} points/request)", "bulk", "ours", args))
    if "batch" in modes:
        res.append(run_side(f"ours, {how} log_batch", args.client, "ours", args))
    if not args.skip_mlflow:
        res.append(run_side(f"mlflow server, {how} log_batch", args.client, "mlflow", args))
    print(
        "\n| writers | points/s | ack p50 | ack p99 | points stored (expected) | server RSS "
        "| server CPU per 1k points | load |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in res:
        print(
            f"| {r['label']} | {r['rate']:,.0f} | {ms(r['p50'])} | {ms(r['p99'])} | "
            f"{r['stored']:,} ({r['points']:,}) {'exact' if r['ok'] else 'MISMATCH'} | "
            f"{r['rss']:.0f} MB | {r['cpu'] * 1e6 / max(1, r['points']):.1f} ms | {r['load']} |"
        )
    if len(res) > 1 and res[-1]["label"].startswith("mlflow"):
        ml = res[-1]
        for r in res[:-1]:
            print(
                f"{r['label']} vs {ml['label']}: throughput {r['rate'] / ml['rate']:.1f}x, "
                f"p99 {ml['p99'] / r['p99']:.1f}x lower"
            )


if __name__ == "__main__":
    main()
