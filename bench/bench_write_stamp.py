"""What stamping ``runs.last_update_time`` costs batched logging (migration 0013).

    PYTHONPATH=. python bench/bench_write_stamp.py [--before REV] [--points 200000]
        [--batches 10,100,1000] [--repeat 5]

Every write to a run also sets its ``last_update_time`` (the runs table's live updates
ask what changed since their last poll). This measures ``log_batch`` of metric points
in batches of 10, 100 and 1,000 (a writer thread's batches under light and heavy
logging) with this tree's store against the store of ``--before`` (default: the commit
before migration 0013 landed), each in a fresh process on its own SQLite file,
alternating the two so the machine's load hits both alike; the median of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from scale_common import alternated, run_child, tree_of

REPO = Path(__file__).resolve().parents[1]
#: The commit that added the stamp (migration 0013); its parent has no stamp.
STAMP_COMMIT = "ba1b8f4"


def child(db: str, points: int, batch: int) -> None:
    """Time ``log_batch`` of ``points`` points in batches of ``batch`` (prints JSON)."""
    import jupyter_mlops
    from jupyter_mlops.tracking.entities import Metric
    from jupyter_mlops.tracking.sqlstore import SqlTrackingStore

    store = SqlTrackingStore(f"sqlite:///{db}", artifact_root=f"{db}.artifacts")
    rid = store.create_run("0", run_name="stamp").info.run_id
    t0 = 1_700_000_000_000
    batches = [
        [Metric(f"m{(i + j) % 10}", float(j), t0 + i + j, i + j) for j in range(batch)]
        for i in range(0, points, batch)
    ]
    store.log_batch(rid, metrics=batches[0])  # warm: statements compiled, pages cached
    started = time.perf_counter()
    for b in batches[1:]:
        store.log_batch(rid, metrics=b)
    elapsed = time.perf_counter() - started
    done = (len(batches) - 1) * batch
    print(json.dumps({"s": elapsed, "points": done, "package": jupyter_mlops.__file__}))


def run(tree: Path, points: int, batch: int, tmp: Path, n: int) -> float:
    db = tmp / f"{tree.name}-{batch}-{n}.db"
    answer = run_child(__file__, tree, str(db), str(points), str(batch))
    return float(answer["points"]) / answer["s"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default=f"{STAMP_COMMIT}^")
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--batches", default="10,100,1000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        db, points, batch = args.child
        child(db, int(points), int(batch))
        return
    with tempfile.TemporaryDirectory(prefix="bench-stamp-") as t:
        tmp = Path(t)
        before = tree_of(args.before, tmp / "before")
        trees = {"before": before, "now": REPO}
        print(
            f"before = {args.before}, now = this tree; points per second, median of {args.repeat}",
            flush=True,
        )
        for batch in (int(b) for b in args.batches.split(",")):
            points = args.points if batch >= 100 else args.points // 10
            rates = alternated(
                args.repeat,
                lambda name, n, points=points, batch=batch: run(trees[name], points, batch, tmp, n),
            )
            b, w = statistics.median(rates["before"]), statistics.median(rates["now"])
            print(
                f"batches of {batch:>5}: before {b:>10,.0f} pts/s, now {w:>10,.0f} pts/s, "
                f"cost {100 * (b - w) / b:+.1f} % (runs: before "
                f"{', '.join(f'{r:,.0f}' for r in rates['before'])}; now "
                f"{', '.join(f'{r:,.0f}' for r in rates['now'])})",
                flush=True,
            )


if __name__ == "__main__":
    main()
