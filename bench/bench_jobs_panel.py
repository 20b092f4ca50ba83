"""What watching training jobs in JupyterLab costs the server: 100 running jobs, and the
requests the Training jobs panel, the status bar and one open job view send while jobs run.

A real ``jupyter server`` with the extension; ``--jobs`` one-rank jobs that sleep (a shell
script, so the machine is not loaded by them); then, for ``--seconds``, the front end's
polling is replayed at its own pace while jobs are active: the sidebar's
``GET jobs?max_results=50`` every 2 s, the status bar's the same every 2 s, and an open
job view's ``GET jobs/<id>`` plus its rank log read from the last offset every 1 s. The
server process' CPU time (user + system, from /proc) over that window, divided by the wall
time, is the cost, shown beside the same window with no client (the idle baseline: the
jobs' supervision, heartbeats).

    PYTHONPATH=. python bench/bench_jobs_panel.py [--jobs 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

from scale_common import cpu_s  # noqa: E402
from serverproc import JupyterServerProcess  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-jobs-panel-"))
    server = JupyterServerProcess(root=root / "srv").start()
    work = server.work
    (work / "sleep.sh").write_text("sleep 900\n")
    headers = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}

    def call(method: str, path: str, body: dict | None = None) -> bytes:
        req = urllib.request.Request(
            server.url + "mlops/api/v1/" + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers=headers,
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.read()

    ids = []
    try:
        spec = {"name": "sleeper", "script": "sleep.sh", "framework": "generic"}
        for _ in range(args.jobs):
            ids.append(json.loads(call("POST", "jobs", {"spec": spec}))["job"]["job_id"])
        deadline = time.monotonic() + 300
        while True:
            jobs = json.loads(call("GET", "jobs?status=RUNNING&max_results=1000"))["jobs"]
            if len(jobs) >= args.jobs:
                break
            assert time.monotonic() < deadline, f"only {len(jobs)} jobs running"
            time.sleep(1)
        pid = server.proc.pid  # type: ignore[union-attr]

        def window(poll: bool) -> tuple[float, int]:
            stop = threading.Event()
            count = [0]

            def every(period: float, work) -> None:
                while not stop.wait(period):
                    work()
                    count[0] += 1

            offset = [0]

            def view() -> None:
                call("GET", f"jobs/{ids[0]}")
                req = urllib.request.Request(
                    server.url + f"mlops/api/v1/jobs/{ids[0]}/ranks/0/log?offset={offset[0]}",
                    headers=headers,
                )
                with urllib.request.urlopen(req, timeout=60) as r:
                    r.read()
                    offset[0] = int(r.headers.get("X-Log-Offset", offset[0]))

            threads = []
            if poll:
                for period, work in (
                    (2.0, lambda: call("GET", "jobs?max_results=50")),  # the sidebar
                    (2.0, lambda: call("GET", "jobs?max_results=50")),  # the status bar
                    (1.0, view),  # an open job view
                ):
                    t = threading.Thread(target=every, args=(period, work), daemon=True)
                    t.start()
                    threads.append(t)
            # the server's own CPU: its children are the jobs' ranks
            c0, t0 = cpu_s(pid, children=False), time.monotonic()
            time.sleep(args.seconds)
            c1, t1 = cpu_s(pid, children=False), time.monotonic()
            stop.set()
            for t in threads:
                t.join()
            return (c1 - c0) / (t1 - t0), count[0]

        idle, _ = window(False)
        watched, requests = window(True)
        print(f"{args.jobs} running jobs, {args.seconds:.0f} s windows")
        print(f"server CPU, no client:         {100 * idle:.2f} % of one core")
        print(
            f"server CPU, panel + status bar + job view polling: {100 * watched:.2f} % "
            f"({requests} requests; the polling's share {100 * (watched - idle):.2f} %)"
        )
    finally:
        for job_id in ids:
            try:
                call("POST", f"jobs/{job_id}/cancel", {})
            except Exception as e:  # noqa: BLE001 - ended meanwhile
                print(f"cancel {job_id}: {e}", file=sys.stderr)
        server.stop()


if __name__ == "__main__":
    main()
