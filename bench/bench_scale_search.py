"""Search at scale (issue 18): ``runs/search`` over REST end to end on 1,000,000 runs
(20 params, 10 metrics, 5 tags each) in one experiment on PostgreSQL, and 100k runs on
SQLite; ours (Jupyter Server + the extension) beside ``mlflow server`` on the same data.

    PYTHONPATH=. python bench/bench_scale_search.py                 # 1M runs, PostgreSQL
    PYTHONPATH=. python bench/bench_scale_search.py --scale 0.1     # 100k runs
    PYTHONPATH=. python bench/bench_scale_search.py --sqlite        # + 100k (x scale) on SQLite
    PYTHONPATH=. python bench/bench_scale_search.py --skip-mlflow --pages 1000

The dataset is generated once per size as COPY files under /tmp/bench_scale/ and bulk
loaded (``COPY`` with the tables' secondary indexes dropped and rebuilt, then ``VACUUM
ANALYZE`` as autovacuum would) into two databases of the PostgreSQL at ``$BENCH_PG``
(``bench_search_ours_<n>``, ``bench_search_mlflow_<n>``), each created with its own
server's schema (our Alembic migrations; MLflow's ``SqlAlchemyStore``). They are kept
for the next run; ``--fresh`` reloads them. Every run has one point per metric (its
latest value is what search reads; no history chunks are written).

Measured per case: the wall time of ``POST api/2.0/mlflow/runs/search`` (keep-alive
session, JSON parsed), median and best of ``--repeat``; paging: page 1, 10, 100 and
1000 of an ordered search, following each server's own page tokens (ours) or jumping
with MLflow's offset token (``{"offset": N}``, which both servers accept).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests
from scale_common import (
    CACHE,
    DB_PREFIX,
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

EXP_ID = 1  # the experiment every generated run is in (the first created after Default)
T0 = 1_700_000_000_000
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")

CASES = [
    (
        "filter metric+param, order by metric, page of 100",
        "metrics.acc > 0.5 and params.optimizer = 'adam'",
        ["metrics.metric_0 DESC"],
        100,
    ),
    ("no filter, default order, page of 100", "", [], 100),
    ("no filter, order by metric, page of 100", "", ["metrics.metric_0 DESC"], 100),
    (
        "narrow filter (param_3 = '7' and metric_1 > 0.99), order by metric",
        "params.param_3 = '7' and metrics.metric_1 > 0.99",
        ["metrics.acc ASC"],
        100,
    ),
    ("filter on a tag, default order, page of 100", "tags.team = 'a'", [], 100),
]
PAGING = ("metrics.acc > 0.5 and params.optimizer = 'adam'", ["metrics.metric_0 DESC"])


# -- dataset ------------------------------------------------------------------------


def generate(n: int) -> Path:
    """COPY text files of ``n`` runs under the cache (made once per size)."""
    d = CACHE / f"search_{n}"
    if (d / "done").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    rng = random.Random(18)
    # ids in sorted order (their b-tree indexes load in order); start times shuffled
    ids = sorted(uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(n))
    starts = list(range(n))
    rng.shuffle(starts)
    rnd = rng.random
    files = {
        k: open(d / f"{k}.tsv", "w", buffering=1 << 20)  # noqa: SIM115
        for k in ("runs_ours", "runs_mlflow", "params", "tags", "lm_ours", "metrics_mlflow")
    }
    ro, rm, pa, ta, lo, mm = files.values()
    for i, rid in enumerate(ids):
        start = T0 + starts[i] * 1000
        name = f"run-{starts[i]}"
        art = f"/tmp/bench_scale/artifacts/{rid}"
        ro.write(
            f"{rid}\t{name}\t{EXP_ID}\tbench\tFINISHED\t{start}\t{start + 1000}\tactive\t{art}\t{start + 1000}\n"
        )
        rm.write(
            f"{rid}\t{name}\tLOCAL\t\t\tbench\tFINISHED\t{start}\t{start + 1000}\t\tactive\t{art}\t{EXP_ID}\n"
        )
        pa.write(
            "".join(f"{rid}\tparam_{j}\t{int(rnd() * 10)}\n" for j in range(19))
            + f"{rid}\toptimizer\t{OPTIMIZERS[int(rnd() * 4)]}\n"
        )
        ta.write(
            f"{rid}\tmlflow.runName\t{name}\n{rid}\tmlflow.user\tbench\n"
            f"{rid}\tmlflow.source.type\tLOCAL\n{rid}\tmlflow.source.name\tbench.py\n"
            f"{rid}\tteam\t{'abc'[int(rnd() * 3)]}\n"
        )
        for j in range(10):
            key = "acc" if j == 9 else f"metric_{j}"
            v = repr(rnd())
            lo.write(f"{rid}\t{key}\t{v}\t{start}\t0\t1\t0\t{start}\tt\tt\tt\n")
            mm.write(f"{rid}\t{key}\t{v}\t{start}\t0\tf\n")
    for f in files.values():
        f.close()
    (d / "done").write_text(str(n))
    print(f"  generated {n:,} runs in {time.perf_counter() - t:.0f} s -> {d}", flush=True)
    return d


OURS_COPY = [
    (
        "runs",
        "run_uuid,name,experiment_id,user_id,status,start_time,end_time,lifecycle_stage,"
        "artifact_uri,last_update_time",
        "runs_ours",
    ),
    ("params", "run_uuid,key,value", "params"),
    ("tags", "run_uuid,key,value", "tags"),
    (
        "latest_metrics",
        "run_uuid,key,value,timestamp,step,n,last_step,last_ts,ord_step,ord_ts,ord_step_ts",
        "lm_ours",
    ),
]
MLFLOW_COPY = [
    (
        "runs",
        "run_uuid,name,source_type,source_name,entry_point_name,user_id,status,start_time,"
        "end_time,source_version,lifecycle_stage,artifact_uri,experiment_id",
        "runs_mlflow",
    ),
    ("params", "run_uuid,key,value", "params"),
    ("tags", "run_uuid,key,value", "tags"),
    ("metrics", "run_uuid,key,value,timestamp,step,is_nan", "metrics_mlflow"),
    ("latest_metrics", "run_uuid,key,value,timestamp,step,is_nan", "metrics_mlflow"),
]


def make_schema(side: str, url: str) -> None:
    """Create the side's schema and the experiment the runs go into (id EXP_ID)."""
    if side == "ours":
        from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

        store: Any = SqlTrackingStore(url, artifact_root="/tmp/bench_scale/artifacts")
    else:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore(url, "/tmp/bench_scale/mlflow-artifacts")
    eid = store.create_experiment("scale")
    if str(eid) != str(EXP_ID):
        raise RuntimeError(f"{side}: the bench experiment got id {eid}, expected {EXP_ID}")
    store.engine.dispose()


def _generate_sql(side: str, n: int) -> list[str]:
    """INSERT … SELECT statements that fill the side's tables with ``n`` runs inside
    PostgreSQL: the same rows on both sides (ids and values are hashes of the run's
    number), no files, no client round trip per row. Rows are inserted in run-id order
    so the primary keys' b-trees are appended to, not split at random."""
    h = "hashtextextended(g.rid, {})"
    frac = f"(({h} & 9007199254740991)::float8 / 9007199254740992.0)"  # [0, 1), 53 bits
    ml = side == "mlflow"
    runs_cols = (
        "run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
        "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id"
        if ml
        else "run_uuid, name, experiment_id, user_id, status, start_time, end_time, "
        "lifecycle_stage, artifact_uri, last_update_time"
    )
    art = "'/tmp/bench_scale/artifacts/' || g.rid"
    runs_vals = (
        f"g.rid, g.name, 'LOCAL', '', '', 'bench', 'FINISHED', g.st, g.st + 1000, '', "
        f"'active', {art}, {EXP_ID}"
        if ml
        else f"g.rid, g.name, {EXP_ID}, 'bench', 'FINISHED', g.st, g.st + 1000, 'active', "
        f"{art}, g.st + 1000"
    )
    metric = f"(CASE WHEN j = 9 THEN 'acc' ELSE 'metric_' || j END), {frac.format('100 + j')}"
    lm = (
        f"INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan) "
        f"SELECT g.rid, {metric}, g.st, 0, false FROM g, generate_series(0, 9) j"
        if ml
        else "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, n, last_step, "
        "last_ts, ord_step, ord_ts, ord_step_ts) "
        f"SELECT g.rid, {metric}, g.st, 0, 1, 0, g.st, true, true, true "
        "FROM g, generate_series(0, 9) j"
    )
    out = [
        # a permutation of start times (7919 is prime, coprime with n = 10^k)
        "CREATE TEMP TABLE g AS SELECT md5('run' || i) AS rid, "
        f"{T0}::bigint + ((i::bigint * 7919) % {n}) * 1000 AS st, "
        f"'run-' || ((i::bigint * 7919) % {n}) AS name "
        f"FROM generate_series(0, {n - 1}) i ORDER BY 1",
        f"INSERT INTO runs ({runs_cols}) SELECT {runs_vals} FROM g",
        "INSERT INTO params (run_uuid, key, value) SELECT g.rid, k, v FROM g, LATERAL ("
        f"SELECT 'param_' || j AS k, abs({h.format('j')} % 10)::text AS v "
        "FROM generate_series(0, 18) j UNION ALL "
        f"SELECT 'optimizer', (ARRAY['adam', 'sgd', 'rmsprop', 'adamw'])[abs({h.format(19)} % 4) + 1]"
        ") p",
        "INSERT INTO tags (run_uuid, key, value) SELECT g.rid, k, v FROM g, LATERAL (VALUES "
        "('mlflow.runName', g.name), ('mlflow.user', 'bench'), ('mlflow.source.type', 'LOCAL'), "
        "('mlflow.source.name', 'bench.py'), "
        f"('team', (ARRAY['a', 'b', 'c'])[abs({h.format(20)} % 3) + 1])) t(k, v)",
        lm,
    ]
    if ml:  # MLflow keeps every point in `metrics` too (here: the one point)
        out.append(
            "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan) "
            "SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics"
        )
    return out


def load_pg(side: str, n: int, fresh: bool) -> str:
    """The side's database holding the dataset (generated now unless already there)."""
    import psycopg

    db = f"{DB_PREFIX}search_{side}_{n}"
    url = pg_url(db) if side == "ours" else mlflow_pg_url(db)
    if ensure_db(db, fresh) and pg_exec("SELECT to_regclass('bench_loaded')", db)[0][0]:
        return url
    if not fresh and pg_exec("SELECT to_regclass('runs')", db)[0][0]:
        ensure_db(db, fresh=True)  # a half-loaded database from an interrupted run
    t = time.perf_counter()
    make_schema(side, url)
    tables = ["runs", "params", "tags", "latest_metrics"] + (
        ["metrics"] if side == "mlflow" else []
    )
    conn = psycopg.connect(pg_url(db))
    try:
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")  # no FK triggers per row
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '512MB'")  # index builds sort in memory
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND "
                "tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                (tables,),
            )
            indexes = cur.fetchall()
            for name, _ in indexes:
                cur.execute(f'DROP INDEX "{name}"')
            for sql in _generate_sql(side, n):
                cur.execute(sql)  # type: ignore[arg-type]
                what = sql.split(" (")[0].split(" AS ")[0]
                print(f"  {side}: {what} ({time.perf_counter() - t:.0f} s)", flush=True)
            for _, ddl in indexes:
                cur.execute(ddl)
            print(f"  {side}: indexes rebuilt ({time.perf_counter() - t:.0f} s)", flush=True)
            cur.execute("CREATE TABLE bench_loaded (n int)")
        conn.commit()
    finally:
        conn.close()
    pg_exec("VACUUM ANALYZE", db)
    print(f"  {side}: {n:,} runs loaded into {db} in {time.perf_counter() - t:.0f} s", flush=True)
    return url


def load_sqlite(side: str, n: int, data: Path) -> str:
    path = CACHE / f"search_{side}_{n}.db"
    url = f"sqlite:///{path}"
    if path.exists() and (CACHE / f"search_{side}_{n}.done").exists():
        return url
    path.unlink(missing_ok=True)
    t = time.perf_counter()
    make_schema(side, url)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = OFF")
    for table, cols, fname in OURS_COPY if side == "ours" else MLFLOW_COPY:
        marks = ",".join("?" * len(cols.split(",")))
        with open(data / f"{fname}.tsv") as f:
            rows = (
                [
                    None if x == "" and side == "mlflow" else {"t": 1, "f": 0}.get(x, x)
                    for x in line.rstrip("\n").split("\t")
                ]
                for line in f
            )
            conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    (CACHE / f"search_{side}_{n}.done").touch()
    print(f"  {side}: {n:,} runs loaded into {path} in {time.perf_counter() - t:.0f} s", flush=True)
    return url


# -- REST --------------------------------------------------------------------------


class Client:
    def __init__(self, base: str, headers: dict[str, str], server: Any = None) -> None:
        self.server = server  # its CPU time per request is printed beside the wall time
        self.url = base + "/api/2.0/mlflow/runs/search"
        self.s = requests.Session()
        self.s.headers.update(headers)

    def search(
        self, flt: str, order: list[str], page: int, token: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "experiment_ids": [str(EXP_ID)],
            "filter": flt,
            "order_by": order,
            "max_results": page,
        }
        if token:
            body["page_token"] = token
        r = self.s.post(self.url, json=body, timeout=600)
        if r.status_code != 200:
            raise RuntimeError(f"{self.url} answered {r.status_code}: {r.text[:500]}")
        return dict(r.json())


def offset_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def run_cases(
    label: str, ours: Client, theirs: Client | None, args: argparse.Namespace
) -> list[str]:
    rows = []
    for name, flt, order, page in CASES:
        cpu0 = ours.server.cpu_s() if ours.server else 0.0
        t, res = timed(lambda f=flt, o=order, n=page: ours.search(f, o, n), args.repeat)
        if ours.server:
            cpu = (ours.server.cpu_s() - cpu0) / args.repeat * 1000
            name = f"{name}; server CPU {cpu:.0f} ms/request"
        ids = [r["info"]["run_id"] for r in res.get("runs", [])]
        tm: list[float] | None = None
        if theirs is not None:
            tm, mres = timed(
                lambda f=flt, o=order, n=page: theirs.search(f, o, n),  # type: ignore[union-attr]
                args.mlflow_repeat,
            )
            mids = [r["info"]["run_id"] for r in mres.get("runs", [])]
            if mids != ids:
                print(f"  WARNING: {name}: pages differ from MLflow's", flush=True)
        row = _row(f"{label}: {name} ({len(ids)} runs)", t, tm)
        rows.append(row)
        print(row, flush=True)
    return rows


def _row(name: str, t: list[float], tm: list[float] | None) -> str:
    med = statistics.median(t)
    mmed = statistics.median(tm) if tm else None
    ratio = f"{mmed / med:,.0f}x" if mmed else ""
    return f"| {name} | {ms(med)} (best {ms(min(t))}) | {ms(mmed)} | {ratio} |"


def run_paging(
    label: str, ours: Client, theirs: Client | None, args: argparse.Namespace
) -> list[str]:
    """Pages 1..N following our tokens; the same pages of MLflow by offset token."""
    flt, order = PAGING
    marks = [m for m in (1, 10, 100, 1000) if m <= args.pages]
    times: dict[int, float] = {}
    token: str | None = None
    seen: set[str] = set()
    total = 0
    for p in range(1, args.pages + 1):
        t0 = time.perf_counter()
        res = ours.search(flt, order, 100, token)
        dt = time.perf_counter() - t0
        if p in marks:
            times[p] = dt
        ids = [r["info"]["run_id"] for r in res.get("runs", [])]
        total += len(ids)
        seen.update(ids)
        token = res.get("next_page_token")
        if not token:
            break
    rows = []
    if len(seen) != total:
        print(f"  WARNING: paging returned {total - len(seen)} duplicate runs", flush=True)
    for p in marks:
        if p not in times:
            continue
        again = [
            timed(lambda p=p: ours.search(flt, order, 100, offset_token((p - 1) * 100)), 1)[0][0]
            for _ in range(3)
        ]
        tm = None
        if theirs is not None:
            tm, _ = timed(
                lambda p=p: theirs.search(
                    flt, order, 100, offset_token((p - 1) * 100) if p > 1 else None
                ),
                args.mlflow_repeat,
            )
        row = _row(
            f"{label}: page {p} of the filtered metric-ordered search (ours: by its own token "
            f"{ms(times[p])}; by offset token, median of 3)",
            again,
            tm,
        )
        rows.append(row)
        print(row, flush=True)
    return rows


def bench(label: str, ours_url: str, ml_url: str | None, args: argparse.Namespace) -> list[str]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-search-"))
    srv = jupyter_server(tmp / "ours", ours_url)
    msrv = mlflow_server(tmp / "mlflow", ml_url) if ml_url else None
    try:
        ours = Client(srv.url, srv.headers, srv)
        theirs = Client(msrv.url, msrv.headers) if msrv else None
        for c in (ours, theirs):  # warm up: connections, caches
            if c is not None:
                c.search(*PAGING, 100)
        rows = run_cases(label, ours, theirs, args)
        if args.pages:
            rows += run_paging(label, ours, theirs, args)
        return rows
    finally:
        srv.stop()
        if msrv:
            msrv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=1.0, help="x 1,000,000 runs (0.1: 100k)")
    ap.add_argument("--sqlite", action="store_true", help="also 100k x scale runs on SQLite")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--mlflow-repeat", type=int, default=3)
    ap.add_argument("--pages", type=int, default=1000, help="pages walked (0: no paging)")
    ap.add_argument("--fresh", action="store_true", help="regenerate the databases")
    args = ap.parse_args()
    print(f"load average before: {load()}", flush=True)
    rows = []
    if not args.skip_pg:
        n = int(1_000_000 * args.scale)
        ours = load_pg("ours", n, args.fresh)
        ml = None if args.skip_mlflow else load_pg("mlflow", n, args.fresh)
        rows += bench(f"PostgreSQL {n:,} runs", ours, ml, args)
    if args.sqlite:
        n = int(100_000 * args.scale)
        data = generate(n)
        ours = load_sqlite("ours", n, data)
        ml = None if args.skip_mlflow else load_sqlite("mlflow", n, data)
        rows += bench(f"SQLite {n:,} runs", ours, ml, args)
    print(f"\nload average after: {load()}\n")
    print("| search over REST | jupyter-mlops | mlflow | ratio |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
