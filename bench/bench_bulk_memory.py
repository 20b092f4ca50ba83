"""Server memory under concurrent maximum-size ``api/v1/runs/log-bulk`` requests.

Starts a Jupyter server with jupyter-mlops (SQLite store in a temp dir), creates a
run, builds one log-bulk body just under ``MLOpsApp.max_request_body`` (64 MiB by
default: metric columns of 13-digit timestamps, steps and 17-digit floats, as our
client sends them), then sends it N times at once (8 by default) from N threads.
Reads the server's RSS from /proc: idle before, peak (``VmHWM``, the kernel's own
high-water mark, so no sample is missed) and held 5 s after the last answer. Prints
the figures, the answers' status codes and the wall time.

Usage: ``PYTHONPATH=. python bench/bench_bulk_memory.py [--clients 8] [--mib 64]
[--server-arg --MLOpsApp.max_inflight_bytes=...]``. Target: peak <= 300 MB above idle.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from serverproc import JupyterServerProcess  # noqa: E402


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def body_of(run_id: str, size: int) -> bytes:
    """A log-bulk body of about ``size`` bytes: 10 metrics of equal length."""
    per_point = len("1765000000000,") + len("123456,") + len("0.12345678901234567,")
    points = size // per_point // 10
    t0 = 1_765_000_000_000
    metrics = []
    for k in range(10):
        metrics.append(
            {
                "key": f"m{k}",
                "steps": list(range(points)),
                "timestamps": [t0 + i for i in range(points)],
                "values": [0.12345678901234567 + i * 1e-9 for i in range(points)],
            }
        )
    raw = json.dumps({"run_id": run_id, "metrics": metrics}, separators=(",", ":")).encode()
    return raw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--mib", type=float, default=64)
    ap.add_argument("--server-arg", action="append", default=[])
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        srv = JupyterServerProcess(Path(tmp), extra_args=args.server_arg).start()
        try:
            auth = {"Authorization": f"token {srv.token}", "Content-Type": "application/json"}

            def call(path: str, body: dict) -> dict:
                req = urllib.request.Request(
                    srv.url + "mlops/" + path, data=json.dumps(body).encode(), headers=auth
                )
                with urllib.request.urlopen(req, timeout=600) as r:
                    return json.loads(r.read())

            exp = call("api/2.0/mlflow/experiments/create", {"name": "bulk-mem"})["experiment_id"]
            limit = int(args.mib * 1024 * 1024) - 4096
            template = body_of("0" * 32, limit)  # one body, each client's run id put in
            bodies = []
            for _ in range(args.clients):
                run = call("api/2.0/mlflow/runs/create", {"experiment_id": exp})
                rid = run["run"]["info"]["run_id"].encode()
                bodies.append(template.replace(b'"' + b"0" * 32 + b'"', b'"' + rid + b'"', 1))
            size = len(bodies[0])
            pid = srv.proc.pid
            time.sleep(2)
            idle = rss_kb(pid, "VmRSS")
            statuses: list[int] = []
            lock = threading.Lock()
            start = threading.Barrier(args.clients)

            def send(body: bytes) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=600)
                start.wait()
                conn.request("POST", srv.base_url + "mlops/api/v1/runs/log-bulk", body, auth)
                r = conn.getresponse()
                r.read()
                with lock:
                    statuses.append(r.status)
                conn.close()

            # VmHWM is the process's peak since it started: reset it to now (Linux >= 4.0)
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            t0 = time.monotonic()
            threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - t0
            peak = rss_kb(pid, "VmHWM")
            time.sleep(5)
            held = rss_kb(pid, "VmRSS")
            codes = {c: statuses.count(c) for c in sorted(set(statuses))}
            print(
                json.dumps(
                    {
                        "clients": args.clients,
                        "body_bytes": size,
                        "server_args": args.server_arg,
                        "idle_mb": round(idle / 1024),
                        "peak_mb": round(peak / 1024),
                        "peak_above_idle_mb": round((peak - idle) / 1024),
                        "held_above_idle_mb": round((held - idle) / 1024),
                        "statuses": codes,
                        "wall_s": round(wall, 1),
                    },
                    indent=1,
                )
            )
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
