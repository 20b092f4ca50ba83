"""What a multipart part's writes cost in the store, this tree against another revision.

    PYTHONPATH=. python bench/bench_mpu_writes.py [--before REV] [--writes 64,256,1024]
        [--mib 256] [--repeat 5] [--dir /dev/shm]

Writes ``--mib`` MiB as four parts in place (``LocalMultipart.part_writer``, then
``write`` in pieces of each ``--writes`` KiB size, then ``commit``; what the artifact
proxy does with a part's body) into a temporary directory (under ``--dir``: a tmpfs keeps
the disk's write-back out of the figures), and reports the CPU seconds per
GB of the writing, each run in a fresh process, this tree and ``--before`` alternated so
the machine's load hits both alike; the median of ``--repeat``. ``--before`` defaults to
the commit before the upload lock (a part's writes take it shared, one ``flock`` pair and
an ``fstat`` per write).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from scale_common import alternated, run_child, tree_of

REPO = Path(__file__).resolve().parents[1]
#: main before the multipart upload lock.
BEFORE = "9d6e813"
PARTS = 4


def child(root: str, mib: int, kib: int) -> None:
    """Write ``mib`` MiB as four parts in pieces of ``kib`` KiB (prints JSON)."""
    import jupyter_mlops
    from jupyter_mlops.tracking.artifacts import LocalArtifactRepository
    from jupyter_mlops.tracking.multipart import LocalMultipart

    piece = os.urandom(kib << 10)
    part = (mib << 20) // PARTS
    mpu = LocalMultipart(LocalArtifactRepository(root))
    uid = mpu.create("d/f.bin", PARTS)
    cpu = 0.0
    for n in range(1, PARTS + 1):
        w = mpu.part_writer("d/f.bin", uid, n, part)
        started = time.process_time()
        for _ in range(part // len(piece)):
            w.write((piece,))
        w.commit()
        cpu += time.process_time() - started
    mpu.complete("d/f.bin", uid, [(n, "") for n in range(1, PARTS + 1)])
    os.unlink(os.path.join(root, "d", "f.bin"))
    print(json.dumps({"cpu": cpu, "bytes": PARTS * part, "package": jupyter_mlops.__file__}))


def lock_cost(root: str, n: int = 100_000) -> float:
    """Microseconds per write the upload lock adds (taken shared and released, mark read)."""
    import fcntl

    from jupyter_mlops.tracking.artifacts import LocalArtifactRepository
    from jupyter_mlops.tracking.multipart import LocalMultipart

    mpu = LocalMultipart(LocalArtifactRepository(root))
    uid = mpu.create("d/lock.bin", 1)
    lock = mpu._lock("d/lock.bin", uid)
    started = time.perf_counter()
    for _ in range(n):
        lock.hold(fcntl.LOCK_SH)
        lock.release()
    elapsed = time.perf_counter() - started
    lock.close()
    mpu.abort("d/lock.bin", uid)
    return 1e6 * elapsed / n


def run(tree: Path, mib: int, kib: int, tmp: Path) -> float:
    answer = run_child(__file__, tree, str(tmp / "root"), str(mib), str(kib))
    return float(answer["cpu"]) / (answer["bytes"] / 1e9)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default=BEFORE)
    ap.add_argument("--writes", default="64,256,1024", help="KiB per write, comma-separated")
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", help="where the temporary directory goes (default: the system's)")
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        root, mib, kib = args.child
        child(root, int(mib), int(kib))
        return
    with tempfile.TemporaryDirectory(prefix="bench-mpu-", dir=args.dir) as t:
        tmp = Path(t)
        trees = {"before": tree_of(args.before, tmp / "before"), "now": REPO}
        print(
            f"before = {args.before}, now = this tree; CPU s per GB written, median of "
            f"{args.repeat}; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for kib in (int(k) for k in args.writes.split(",")):
            cpu = alternated(
                args.repeat,
                lambda name, _n, kib=kib: run(trees[name], args.mib, kib, tmp),
            )
            b, w = statistics.median(cpu["before"]), statistics.median(cpu["now"])
            writes = (1 << 30) // (kib << 10)
            print(
                f"writes of {kib:>5} KiB: before {b:.3f}, now {w:.3f} CPU s per GB "
                f"({1e6 * (w - b) / writes:+.1f} us per write; runs: before "
                f"{', '.join(f'{x:.3f}' for x in cpu['before'])}; now "
                f"{', '.join(f'{x:.3f}' for x in cpu['now'])})",
                flush=True,
            )
        cost = lock_cost(str(tmp / "root"))
        print(f"the lock alone (this tree): {cost:.2f} us per write", flush=True)


if __name__ == "__main__":
    main()
