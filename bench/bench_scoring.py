"""Scoring server speed: ``jupyter mlops serve`` against ``mlflow models serve
--env-manager local`` on the same scikit-learn model, side by side, on both of our
protocols: MLflow's ``/invocations`` and the Open Inference Protocol's
``/v2/models/<name>/infer`` (mlflow's server speaks only ``/invocations``: that is what
our V2 numbers are compared with).

One model directory (written by jupyter-mlops in MLflow's format, which both
servers load), the same single-row ``dataframe_split`` request, one keep-alive
HTTP connection per client thread. Rounds alternate between the servers so
both see the same background load on a shared machine. Beside the wall-clock
figures, the servers' CPU time per request (user + system of the server process
and its children, mlflow's uvicorn workers, over the single-connection rounds):
on a machine so loaded that a request mostly waits for a CPU, that is what the
throughput ratio of an idle machine comes from.

    PYTHONPATH=. python bench/bench_scoring.py [--requests 2000] [--threads 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model(path: str, n_features: int = 20) -> list[str]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from jupyter_mlops.registry.flavors import save_model

    rng = np.random.default_rng(0)
    cols = [f"f{i}" for i in range(n_features)]
    X = pd.DataFrame(rng.normal(size=(2000, n_features)), columns=cols)
    y = (X["f0"] + X["f1"] * 0.5 > 0).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    save_model(model, path, input_example=X[:2])
    return cols


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on {port} did not start")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, grew = {pid}, True
    while grew:
        more = {p for p, (ppid, _) in table.items() if ppid in tree} - tree
        grew = bool(more)
        tree |= more
    return sum(table[p][1] for p in tree if p in table) / ticks


def one_connection(
    port: int, body: bytes, n: int, latencies: list[float] | None, path: str = "/invocations"
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, body, headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit(f"{port}: HTTP {r.status} {data[:200]!r}")
        if latencies is not None:
            latencies.append(time.perf_counter() - t0)
    conn.close()


def latency_round(port: int, body: bytes, n: int, path: str = "/invocations") -> list[float]:
    lat: list[float] = []
    one_connection(port, body, n, lat, path)
    return lat


def throughput_round(
    port: int, body: bytes, threads: int, per_thread: int, path: str = "/invocations"
) -> float:
    ts = [
        threading.Thread(target=one_connection, args=(port, body, per_thread, None, path))
        for _ in range(threads)
    ]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return threads * per_thread / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000, help="single-row requests per server")
    ap.add_argument("--threads", type=int, default=4, help="client threads for throughput")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="bench-scoring-")
    procs: list[subprocess.Popen] = []
    try:
        model_dir = os.path.join(work, "model")
        cols = make_model(model_dir)
        body = json.dumps(
            {"dataframe_split": {"columns": cols, "data": [[0.1] * len(cols)]}}
        ).encode()
        env = dict(os.environ, PYTHONPATH=REPO, MLFLOW_TRACKING_URI=f"file://{work}/mlruns")
        ours_port, theirs_port = free_port(), free_port()
        ours = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_mlops.cli",
                "serve",
                model_dir,
                "--port",
                str(ours_port),
            ],
            env=env,
            stdout=open(os.path.join(work, "ours.log"), "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        procs.append(ours)
        theirs = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                model_dir,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(theirs_port),
            ],
            env=env,
            # a log file, not a pipe: an undrained pipe stalls the server
            stdout=open(os.path.join(work, "mlflow.log"), "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        procs.append(theirs)
        wait_ready(ours_port, ours)
        wait_ready(theirs_port, theirs)
        v2_body = json.dumps(
            {"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [0.1]} for c in cols]}
        ).encode()
        # (port, path, body) of each measured endpoint; the model is served as "model"
        servers = {
            "jupyter-mlops /invocations": (ours_port, "/invocations", body),
            "jupyter-mlops V2 infer": (ours_port, "/v2/models/model/infer", v2_body),
            "mlflow /invocations": (theirs_port, "/invocations", body),
        }
        for port, path, b in servers.values():  # warm-up
            latency_round(port, b, 200, path)
        lat: dict[str, list[float]] = {k: [] for k in servers}
        tput: dict[str, list[float]] = {k: [] for k in servers}
        cpu: dict[str, float] = dict.fromkeys(servers, 0.0)
        pids = {
            "jupyter-mlops /invocations": ours.pid,
            "jupyter-mlops V2 infer": ours.pid,
            "mlflow /invocations": theirs.pid,
        }
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for name, (port, path, b) in servers.items():
                before = tree_cpu(pids[name])
                lat[name] += latency_round(port, b, per_round, path)
                cpu[name] += tree_cpu(pids[name]) - before
                tput[name].append(
                    throughput_round(port, b, args.threads, max(1, per_round // args.threads), path)
                )
        load = os.getloadavg()[0]
        print(
            f"\nsingle-row requests per endpoint: {len(lat['mlflow /invocations'])}; "
            f"{args.threads} client threads for throughput; load average {load:.1f}"
        )
        print(
            "| measure | jupyter-mlops /invocations | jupyter-mlops V2 infer | "
            "mlflow models serve /invocations | ratios (ours/theirs) |"
        )
        print("|---|---|---|---|---|")

        def pct(v: list[float], q: float) -> float:
            return sorted(v)[int(q * (len(v) - 1))] * 1000

        names = list(servers)
        rows = [
            ("p50 latency, 1 connection (ms)", [pct(lat[n], 0.5) for n in names], True),
            ("p95 latency, 1 connection (ms)", [pct(lat[n], 0.95) for n in names], True),
            (
                "throughput, 1 connection (req/s)",
                [1 / statistics.median(lat[n]) for n in names],
                False,
            ),
            (
                f"throughput, {args.threads} connections (req/s, median of rounds)",
                [statistics.median(tput[n]) for n in names],
                False,
            ),
            (
                "server CPU per request, 1 connection (ms)",
                [cpu[n] * 1000 / len(lat[n]) for n in names],
                True,
            ),
        ]
        for label, (a, v2, b), lower_better in rows:
            r1, r2 = (b / a, b / v2) if lower_better else (a / b, v2 / b)
            print(f"| {label} | {a:.2f} | {v2:.2f} | {b:.2f} | {r1:.1f}x, V2 {r2:.1f}x |")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("BENCH_KEEP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
