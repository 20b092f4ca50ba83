"""Client benchmark, side by side with MLflow 3.x in one run.

Measures:
  1. import cost: wall time of ``python -c "import X"`` and ``-X importtime``'s
     cumulative figure for the package (jupyter_mlops vs mlflow);
  2. caller cost of one ``log_metric`` call (median µs): ours on SQLite and over
     HTTP, ``mlflow.log_metric`` on SQLite and against an ``mlflow server``;
  3. 1M points (10 keys x 100k steps) logged and flushed durable: local SQLite
     store and over HTTP to a Jupyter server with the extension;
  4. client peak RSS while logging 10M points into SQLite.

Usage: ``PYTHONPATH=. python bench/bench_client.py [--quick] [--skip-mlflow]
[--append-results]``. Targets: log_metric <= 20 µs median; 1M local <= 5 s;
1M over HTTP <= 10 s; import <= 150 ms; RSS < 100 MB at 10M points.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    e["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    e.update(extra)
    return e


def run_py(code: str, timeout: float = 1800, **extra: str) -> str:
    proc = subprocess.run(
        [PY, "-c", textwrap.dedent(code)],
        env=env(**extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, headers: dict[str, str] | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers or {}), timeout=2
            ) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


class Server:
    """A server subprocess (Jupyter with the extension, or mlflow server)."""

    def __init__(
        self, cmd: list[str], health: str, headers: dict[str, str] | None, cwd: Path, **extra: str
    ) -> None:
        self.log = open(cwd / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, env=env(**extra), cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_http(health, headers)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def jupyter_server(root: Path) -> tuple[Server, str, str]:
    port, token = free_port(), "bench-token"
    for d in ("work", "data", "config", "runtime"):
        (root / d).mkdir(parents=True, exist_ok=True)
    cmd = [
        PY,
        "-m",
        "jupyter_server",
        f"--port={port}",
        "--port-retries=0",
        "--ip=127.0.0.1",
        "--no-browser",
        "--allow-root",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root / 'work'}",
        "--ServerApp.jpserver_extensions={'jupyter_mlops': True}",
    ]
    url = f"http://127.0.0.1:{port}/mlops"
    srv = Server(
        cmd,
        url + "/health",
        {"Authorization": f"token {token}"},
        root,
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
    )
    return srv, url, token


def mlflow_server(root: Path) -> tuple[Server, str]:
    port = free_port()
    cmd = [
        PY,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    url = f"http://127.0.0.1:{port}"
    return Server(cmd, url + "/health", None, root), url


# -- 1. import ----------------------------------------------------------------
def import_cost(module: str, repeat: int) -> tuple[float, float]:
    """(median wall ms of a fresh interpreter that imports it, -X importtime
    cumulative ms of the package itself)."""

    def wall(code: str) -> float:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run([PY, "-c", code], env=env(), check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000

    total = wall(f"import {module}")
    proc = subprocess.run(
        [PY, "-X", "importtime", "-c", f"import {module}"],
        env=env(),
        capture_output=True,
        text=True,
        check=True,
    )
    cum = 0.0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$", line.rstrip())
        if m and m.group(2) == module:
            cum = int(m.group(1)) / 1000
    return total, cum


# -- 2. caller cost -------------------------------------------------------------
OURS_CALLER = """
import statistics, time, jupyter_mlops as mlops
mlops.set_tracking_uri({uri!r})
mlops.start_run()
lm, pc = mlops.log_metric, time.perf_counter_ns
for i in range(2000):
    lm("warm", 1.0, step=i)
ns = []
for i in range({n}):
    t = pc(); lm("loss", 0.5, step=i); ns.append(pc() - t)
mlops.end_run()
print(statistics.median(ns) / 1000)
"""

MLFLOW_CALLER = """
import statistics, time, mlflow
mlflow.set_tracking_uri({uri!r})
mlflow.start_run()
lm, pc = mlflow.log_metric, time.perf_counter_ns
for i in range(20):
    lm("warm", 1.0, step=i)
ns = []
for i in range({n}):
    t = pc(); lm("loss", 0.5, step=i); ns.append(pc() - t)
mlflow.end_run()
print(statistics.median(ns) / 1000)
"""


# -- 3. 1M points durable ---------------------------------------------------------
MILLION = """
import time, jupyter_mlops as mlops
mlops.set_tracking_uri({uri!r})
run = mlops.start_run()
keys = [f"k{{k}}" for k in range(10)]
lm = mlops.log_metric
t = time.perf_counter()
for step in range({steps}):
    for key in keys:
        lm(key, step * 0.001, step=step)
t_log = time.perf_counter() - t
mlops.flush()
t_all = time.perf_counter() - t
mlops.end_run()
n = len(mlops.get_metric_history(run.info.run_id, "k9"))
assert n == {steps}, n
print(t_log, t_all)
"""

# -- 4. RSS ------------------------------------------------------------------------
RSS = """
import threading, time, jupyter_mlops as mlops
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
peak = [0.0]
stop = False
def sample():
    while not stop:
        peak[0] = max(peak[0], rss()); time.sleep(0.2)
mlops.set_tracking_uri({uri!r})
run = mlops.start_run()
base = rss()
threading.Thread(target=sample, daemon=True).start()
keys = [f"k{{k}}" for k in range(10)]
lm = mlops.log_metric
t = time.perf_counter()
for step in range({steps}):
    for key in keys:
        lm(key, step * 0.001, step=step)
mlops.flush()
elapsed = time.perf_counter() - t
stop = True
peak[0] = max(peak[0], rss())
hwm = [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
mlops.end_run()
print(base, peak[0], hwm, elapsed)
"""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--skip-mlflow", action="store_true", help="no MLflow side")
    ap.add_argument("--skip-rss", action="store_true", help="skip the 10M-point RSS run")
    ap.add_argument(
        "--append-results", action="store_true", help="append a section to bench/RESULTS.md"
    )
    args = ap.parse_args()
    mlflow_ok = not args.skip_mlflow and shutil.which("mlflow") is not None
    tmp = Path(tempfile.mkdtemp(prefix="bench-client-"))
    rows: list[tuple[str, str, str, str]] = []  # (what, ours, mlflow, ratio)

    def ratio(ours: float, theirs: float | None, higher_is_better: bool = False) -> str:
        if theirs is None or not ours:
            return "n/a"
        r = theirs / ours if not higher_is_better else ours / theirs
        return f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x"

    print(f"# client benchmark ({'quick' if args.quick else 'full'}) in {tmp}", flush=True)

    # 1. import
    reps = 3 if args.quick else 7
    ours_wall, ours_cum = import_cost("jupyter_mlops", reps)
    ml_wall = ml_cum = None
    if mlflow_ok:
        ml_wall, ml_cum = import_cost("mlflow", reps)
    bare, _ = import_cost("os", reps)
    rows.append(
        (
            f"`python -c 'import X'` wall ms (bare interpreter: {bare:.0f})",
            f"{ours_wall:.0f}",
            f"{ml_wall:.0f}" if ml_wall is not None else "n/a",
            ratio(ours_wall, ml_wall),
        )
    )
    rows.append(
        (
            "`-X importtime` cumulative ms",
            f"{ours_cum:.1f}",
            f"{ml_cum:.0f}" if ml_cum is not None else "n/a",
            ratio(ours_cum, ml_cum),
        )
    )
    print(rows[-2], rows[-1], flush=True)

    # servers
    jsrv, jurl, jtoken = jupyter_server(tmp / "jupyter")
    msrv = murl = None
    if mlflow_ok:
        (tmp / "mlflow").mkdir()
        msrv, murl = mlflow_server(tmp / "mlflow")
    try:
        # 2. caller cost
        n_ours = 20_000 if args.quick else 100_000
        n_ml = 50 if args.quick else 300
        ours_sql = float(run_py(OURS_CALLER.format(uri=f"sqlite:///{tmp / 'caller.db'}", n=n_ours)))
        ours_http = float(
            run_py(OURS_CALLER.format(uri=jurl, n=n_ours), JUPYTER_MLOPS_TRACKING_TOKEN=jtoken)
        )
        ml_sql = ml_http = None
        if mlflow_ok:
            ml_sql = float(
                run_py(MLFLOW_CALLER.format(uri=f"sqlite:///{tmp / 'mlflow-caller.db'}", n=n_ml))
            )
            ml_http = float(run_py(MLFLOW_CALLER.format(uri=murl, n=n_ml)))
        rows.append(
            (
                "log_metric caller µs (median), SQLite",
                f"{ours_sql:.2f}",
                f"{ml_sql:,.0f}" if ml_sql else "n/a",
                ratio(ours_sql, ml_sql),
            )
        )
        rows.append(
            (
                "log_metric caller µs (median), HTTP server",
                f"{ours_http:.2f}",
                f"{ml_http:,.0f}" if ml_http else "n/a",
                ratio(ours_http, ml_http),
            )
        )
        print(rows[-2], rows[-1], flush=True)

        # 3. 1M points durable
        steps = 10_000 if args.quick else 100_000
        label = f"{steps * 10 // 1000}k" if steps < 100_000 else "1M"
        _t_log, t_all = map(
            float,
            run_py(MILLION.format(uri=f"sqlite:///{tmp / 'million.db'}", steps=steps)).split(),
        )
        rows.append((f"{label} points logged + flushed, local SQLite (s)", f"{t_all:.2f}", "", ""))
        _t_log_h, t_all_h = map(
            float,
            run_py(
                MILLION.format(uri=jurl, steps=steps), JUPYTER_MLOPS_TRACKING_TOKEN=jtoken
            ).split(),
        )
        rows.append(
            (f"{label} points logged + flushed, HTTP to Jupyter (s)", f"{t_all_h:.2f}", "", "")
        )
        print(rows[-2], rows[-1], flush=True)
    finally:
        jsrv.stop()
        if msrv is not None:
            msrv.stop()

    # 4. RSS
    if not args.skip_rss:
        steps = 100_000 if args.quick else 1_000_000
        base, peak, hwm, el = map(
            float, run_py(RSS.format(uri=f"sqlite:///{tmp / 'rss.db'}", steps=steps)).split()
        )
        label = "1M" if args.quick else "10M"
        rows.append(
            (
                f"client RSS MB logging {label} points (start / peak sampled / VmHWM)",
                f"{base:.0f} / {peak:.0f} / {hwm:.0f}",
                "",
                f"{el:.0f} s",
            )
        )
        print(rows[-1], flush=True)

    table = ["| measure | jupyter-mlops | mlflow 3.17.2 | ratio |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    print("\n".join(table))
    if args.append_results:
        with open(REPO / "bench" / "RESULTS.md", "a") as f:
            f.write(
                f"\n## Client\n\n`python bench/bench_client.py{' --quick' if args.quick else ''}`, "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, 2-core VM shared with other "
                "jobs (figures are indicative). MLflow side: `mlflow.log_metric` (synchronous, its "
                "default) on SQLite and against `mlflow server` (1 worker, SQLite).\n\n"
                + "\n".join(table)
                + "\n"
            )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
