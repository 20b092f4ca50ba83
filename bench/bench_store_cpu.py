"""Process CPU time of the tracking store's metric paths, to compare two checkouts on a
shared machine (wall times there vary by 2x between rounds; CPU time much less).

    python bench/bench_store_cpu.py [ROOT] [--repeat N]

``ROOT`` is a checkout to import ``jupyter_mlops`` from (default: this one), e.g. one
extracted with ``git archive <commit> jupyter_mlops | tar -x -C /tmp/before``. Run
before and after alternately, several rounds, and compare the minima. SQLite in a
temporary directory; 100k points in 10 keys, 10 calls each for the write paths; one
100k-point series for the reads. Prints the best of ``--repeat`` per measure, in ms.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ap = argparse.ArgumentParser()
ap.add_argument(
    "root", nargs="?", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
ap.add_argument("--repeat", type=int, default=3)
args = ap.parse_args()
sys.path.insert(0, args.root)

from jupyter_mlops.tracking.entities import Metric  # noqa: E402 - after sys.path points at the tree under test
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore  # noqa: E402 - after sys.path points at the tree under test

logging.getLogger("alembic").setLevel(logging.WARNING)


def cpu(fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(args.repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best * 1000


with tempfile.TemporaryDirectory(prefix="bench-store-cpu-") as tmp:
    s = SqlTrackingStore(f"sqlite:///{tmp}/db.db", artifact_root=tmp)
    exp = s.create_experiment("e")

    def bulk() -> None:
        rid = s.create_run(exp).info.run_id
        for b in range(10):
            steps = list(range(b * 1000, (b + 1) * 1000))
            vals = [float(i) for i in range(1000)]
            s.log_bulk(rid, [(f"k{k}", steps, [1] * 1000, vals) for k in range(10)])

    def batch() -> None:
        rid = s.create_run(exp).info.run_id
        for b in range(10):
            s.log_batch(
                rid,
                [
                    Metric(f"k{k}", float(i), 1, b * 1000 + i)
                    for k in range(10)
                    for i in range(1000)
                ],
            )

    rid = s.create_run(exp).info.run_id
    for b in range(10):
        steps = list(range(b * 10_000, (b + 1) * 10_000))
        s.log_bulk(rid, [("big", steps, [1] * 10_000, [float(i % 97) for i in range(10_000)])])
    measures = {
        "log_bulk 100k points (10 keys, 10 calls)": bulk,
        "log_batch 100k Metric (10 keys, 10 calls)": batch,
        "get_metric_history 100k": lambda: s.get_metric_history(rid, "big"),
        "get_metric_history_columns 100k": lambda: s.get_metric_history_columns(rid, "big"),
        "get_metric_series 100k -> 1000 (step)": lambda: s.get_metric_series(rid, "big", 1000),
        "get_metric_series zoom 25k steps": lambda: s.get_metric_series(
            rid, "big", 1000, start_step=50_000, end_step=75_000
        ),
    }
    for name, fn in measures.items():
        print(f"{name:46s} {cpu(fn):8.1f} ms")
    s.close()
