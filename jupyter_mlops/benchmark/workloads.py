"""The workloads of ``jupyter mlops bench``, each against a running server over REST, each in
an experiment of its own (``mlops-bench-<what>-<time>``), at ``scale`` x issue 18's sizes:

- ``write``: ``100 x scale`` writers at once, each logging ``100k x scale`` points of two
  series in batches through the client's write path (``api/v1/runs/log-bulk``): points/s,
  p50/p99 time to acknowledge a batch, and the points counted back per series (lost or
  duplicated points are reported, never hidden);
- ``search``: ``1M x scale`` runs (20 params, 10 metrics, 5 tags) created over REST, then
  ``runs/search`` filtered on a metric and a param, ordered by a metric, pages of 100; and
  the first and last page of the search followed by page tokens;
- ``series``: one metric of ``10M x scale`` points: the chart's down-sampled read (first
  draw), a zoom into a tenth of it, and the paged history export.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .rest import Api, BenchError
from .stats import ms, pct, summary

T0 = 1_700_000_000_000
#: Issue 18's full sizes (scale 1).
FULL = {"writers": 100, "points": 100_000, "runs": 1_000_000, "series": 10_000_000}
SEARCH = "metrics.acc > 0.5 and params.optimizer = 'adam'"
ORDER = ["metrics.metric_0 DESC"]


@dataclass
class Report:
    """What a workload measured: Markdown rows ``(measure, figure)`` and problems found."""

    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def add(self, measure: str, text: str, **figures: float) -> None:
        self.rows.append((measure, text))
        self.figures.update(figures)


def sized(full: int, scale: float, least: int = 1) -> int:
    return max(least, round(full * scale))


def experiment(api: Api, what: str) -> str:
    name = f"mlops-bench-{what}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    return str(api.post("api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"])


def new_run(api: Api, exp_id: str, name: str) -> str:
    body = {"experiment_id": exp_id, "run_name": name, "start_time": int(time.time() * 1000)}
    return str(api.post("api/2.0/mlflow/runs/create", body)["run"]["info"]["run_id"])


def counted(api: Api, run_id: str, key: str) -> int:
    """Points stored in a series (the down-sampled read's bucket counts add up to them)."""
    points = api.get("api/v1/metrics/series", run_id=run_id, metric_key=key, max_points=1000)
    return sum(int(p.get("count", 1)) for p in points.get("points", []))


def write(api: Api, scale: float, batch: int = 1000) -> tuple[Report, list[str]]:
    """Concurrent writers through ``api/v1/runs/log-bulk``."""
    writers = sized(FULL["writers"], scale)
    points = sized(FULL["points"], scale, least=batch)
    per_series = points // 2
    report = Report(f"write: {writers} writers x {points:,} points (2 series, batches of {batch})")
    exp_id = experiment(api, "write")
    acks: list[float] = []

    def writer(w: int) -> str:
        run_id = new_run(api, exp_id, f"writer-{w}")
        step = 0
        while step < per_series:
            steps = list(range(step, min(per_series, step + batch // 2)))
            stamps = [T0 + s for s in steps]
            body = {
                "run_id": run_id,
                "metrics": [
                    {
                        "key": k,
                        "steps": steps,
                        "timestamps": stamps,
                        "values": [s * 0.5 for s in steps],
                    }
                    for k in ("loss", "acc")
                ],
            }
            took, _ = api.timed("POST", "api/v1/runs/log-bulk", body)
            acks.append(took)
            step = steps[-1] + 1
        api.post("api/2.0/mlflow/runs/update", {"run_id": run_id, "status": "FINISHED"})
        return run_id

    t = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        run_ids = list(pool.map(writer, range(writers)))
    wall = time.perf_counter() - t
    total = writers * per_series * 2
    report.add(
        "aggregate throughput",
        f"{total / wall:,.0f} points/s ({total:,} in {wall:.1f} s)",
        points_per_s=total / wall,
    )
    report.add(
        "time to acknowledge a batch",
        f"p50 {ms(pct(acks, 50))}, p99 {ms(pct(acks, 99))} ({len(acks)} batches)",
        ack_p50=pct(acks, 50),
        ack_p99=pct(acks, 99),
    )
    wrong = [
        f"{rid} {key}: {n:,} points stored, {per_series:,} logged"
        for rid in run_ids
        for key in ("loss", "acc")
        if (n := counted(api, rid, key)) != per_series
    ]
    report.problems += wrong
    report.add("lost or duplicated points", "none" if not wrong else f"{len(wrong)} series wrong")
    return report, [exp_id]


def _run_body(rng: random.Random, i: int) -> dict[str, Any]:
    params = [{"key": f"param_{j}", "value": str(rng.randrange(10))} for j in range(19)]
    params.append({"key": "optimizer", "value": rng.choice(("adam", "sgd", "rmsprop", "adamw"))})
    metrics = [
        {
            "key": "acc" if j == 9 else f"metric_{j}",
            "value": rng.random(),
            "timestamp": T0 + i,
            "step": 0,
        }
        for j in range(10)
    ]
    tags = [{"key": f"tag_{j}", "value": rng.choice("abc")} for j in range(5)]
    return {"params": params, "metrics": metrics, "tags": tags}


def search(api: Api, scale: float, repeat: int = 5, threads: int = 8) -> tuple[Report, list[str]]:
    """``runs/search`` over runs made over REST."""
    n = sized(FULL["runs"], scale, least=200)
    report = Report(f"search: {n:,} runs x 20 params, 10 metrics, 5 tags")
    exp_id = experiment(api, "search")

    def make(i: int) -> None:
        rng = random.Random(i)
        run_id = new_run(api, exp_id, f"run-{i}")
        api.post("api/2.0/mlflow/runs/log-batch", {"run_id": run_id, **_run_body(rng, i)})

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(make, range(n)))
    report.add("runs created over REST", f"{n / (time.perf_counter() - t):,.0f} runs/s")

    def body(token: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "experiment_ids": [exp_id],
            "filter": SEARCH,
            "order_by": ORDER,
            "max_results": 100,
        }
        if token:
            out["page_token"] = token
        return out

    times = [api.timed("POST", "api/2.0/mlflow/runs/search", body())[0] for _ in range(repeat)]
    report.add(
        "filter metric+param, order by metric, page of 100",
        summary(times),
        search_median=sorted(times)[len(times) // 2],
    )
    pages: list[float] = []
    token: str | None = None
    while True:
        took, answer = api.timed("POST", "api/2.0/mlflow/runs/search", body(token))
        pages.append(took)
        token = answer.get("next_page_token")
        if not token:
            break
    report.add(
        f"paging by tokens: first and last of {len(pages)} pages",
        f"{ms(pages[0])}, {ms(pages[-1])}",
        first_page=pages[0],
        last_page=pages[-1],
    )
    return report, [exp_id]


def series(
    api: Api, scale: float, batch: int = 100_000, repeat: int = 5
) -> tuple[Report, list[str]]:
    """One long metric: down-sampled reads and the paged export."""
    n = sized(FULL["series"], scale, least=1000)
    report = Report(f"series: one metric of {n:,} points")
    exp_id = experiment(api, "series")
    run_id = new_run(api, exp_id, "long")
    for start in range(0, n, batch):
        steps = list(range(start, min(n, start + batch)))
        metric = {
            "key": "loss",
            "steps": steps,
            "timestamps": [T0 + s for s in steps],
            "values": [1 / (1 + s) for s in steps],
        }
        api.post("api/v1/runs/log-bulk", {"run_id": run_id, "metrics": [metric]})
    read: Callable[..., Any] = lambda **q: api.timed(  # noqa: E731 - one call, named
        "GET", "api/v1/metrics/series", run_id=run_id, metric_key="loss", max_points=1000, **q
    )[0]
    draws = [read() for _ in range(repeat)]
    report.add("chart first draw (≤ 1000 min/max buckets)", summary(draws), first_draw=min(draws))
    lo, hi = n // 2, n // 2 + max(1, n // 10)
    report.add(
        "zoom into a tenth", summary([read(start_step=lo, end_step=hi) for _ in range(repeat)])
    )
    t = time.perf_counter()
    token, seen = None, 0
    while True:
        answer = api.get(
            "api/2.0/mlflow/metrics/get-history",
            run_id=run_id,
            metric_key="loss",
            max_results=25_000,
            page_token=token,
        )
        seen += len(answer.get("metrics", []))
        token = answer.get("next_page_token")
        if not token:
            break
    wall = time.perf_counter() - t
    report.add(
        "history export, pages of 25,000",
        f"{seen:,} points in {wall:.1f} s ({seen / wall:,.0f} points/s)",
    )
    if seen != n:
        report.problems.append(f"the export gave {seen:,} points of {n:,}")
    return report, [exp_id]


WORKLOADS: dict[str, Callable[[Api, float], tuple[Report, list[str]]]] = {
    "write": write,
    "search": search,
    "series": series,
}


def cleanup(api: Api, experiment_ids: list[str]) -> None:
    """Delete the bench's experiments (their runs go with them; ``jupyter mlops gc`` frees
    the space)."""
    for exp_id in experiment_ids:
        try:
            api.post("api/2.0/mlflow/experiments/delete", {"experiment_id": exp_id})
        except BenchError:
            pass  # already gone, or the user may not delete: reported experiments stay
