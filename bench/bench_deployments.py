"""Deployment speed: cold start of a scoring process against ``mlflow models serve``, and
rollouts of a local deployment under a client loop.

Cold start: from process spawn to the first 200 on ``/ping``, for ``python -m
jupyter_mlops.registry.serve <dir>`` (what a deployment and a model image start) and
``mlflow models serve -m <dir> --env-manager local``, on the same model directory,
alternating, ``--starts`` each (median shown).

Rollout: a real ``jupyter server`` with the extension, two registered versions of a model,
one deployment; a client thread loops single-row ``/invocations`` through the deployment's
URL while the deployment is updated ``--rollouts`` times between the two versions. For each:
time from the PATCH request to the first answer of the new version (after which every answer
is the new version's: checked), to status READY, and failed requests (must be 0). Also the
latency through the deployment's router against the scoring process directly.

    PYTHONPATH=. python bench/bench_deployments.py [--starts 5] [--rollouts 4] [--gap 5]
        [--no-spare]

Rollouts use the deployment's warm spare (DeploymentService.warm_spare, on by default): a
scoring process started after each rollout with the served model's imports done; ``--gap``
seconds between rollouts let it warm (rollouts are minutes apart in practice);
``--no-spare`` measures the same without it. The cold-start part also times a spare from its
command to the first 200.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

from bench_scoring import free_port, make_model  # noqa: E402


def cold_start(cmd: list[str], port: int, env: dict[str, str], log: str) -> float:
    t0 = time.perf_counter()
    with open(log, "ab") as out:
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while True:
            if p.poll() is not None:
                raise SystemExit(f"{cmd[:4]} exited with {p.returncode}: see {log}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/ping")
                if c.getresponse().status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.005)
    finally:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def spare_start(model_dir: str, env: dict[str, str], log: str) -> float:
    """A warm spare (``serve DIR --standby``, imports done by loading DIR): from the command
    on its stdin to the first 200 on ``/ping`` (what a rollout waits for)."""
    port = free_port()
    with open(log, "wb") as out:
        p = subprocess.Popen(
            [sys.executable, "-m", "jupyter_mlops.registry.serve", model_dir, "--standby"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        while b"standby: ready" not in Path(log).read_bytes():
            if p.poll() is not None:
                raise SystemExit(f"the spare exited with {p.returncode}: see {log}")
            time.sleep(0.01)
        t0 = time.perf_counter()
        assert p.stdin is not None
        p.stdin.write(json.dumps({"model_uri": model_dir, "port": port}).encode() + b"\n")
        p.stdin.close()
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/ping")
                if c.getresponse().status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.005)
    finally:
        p.terminate()
        p.wait(20)


def bench_cold_start(work: str, starts: int) -> None:
    model_dir = os.path.join(work, "model")
    make_model(model_dir)
    env = dict(os.environ, PYTHONPATH=REPO, MLFLOW_TRACKING_URI=f"file://{work}/mlruns")
    ours: list[float] = []
    theirs: list[float] = []
    spare: list[float] = []
    for _ in range(starts):
        spare.append(spare_start(model_dir, env, os.path.join(work, "s.log")))
        port = free_port()
        ours.append(
            cold_start(
                [
                    sys.executable,
                    "-m",
                    "jupyter_mlops.registry.serve",
                    model_dir,
                    "--port",
                    str(port),
                ],
                port,
                env,
                os.path.join(work, "o.log"),
            )
        )
        port = free_port()
        theirs.append(
            cold_start(
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
                    str(port),
                ],
                port,
                env,
                os.path.join(work, "m.log"),
            )
        )
    a, b = statistics.median(ours), statistics.median(theirs)
    print(
        f"\ncold start, process spawn -> first 200 on /ping, median of {starts} "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    print("| measure | jupyter-mlops | mlflow models serve | ratio |")
    print("|---|---|---|---|")
    print(
        f"| cold start (s) | {a:.2f} (min {min(ours):.2f}) | {b:.2f} (min {min(theirs):.2f}) "
        f"| {a / b:.2f} of MLflow's |"
    )
    c = statistics.median(spare)
    print(
        f"| warm spare: command -> first 200 (s) | {c:.2f} (min {min(spare):.2f}) | "
        f"{b:.2f} (min {min(theirs):.2f}) | {c / b:.3f} of MLflow's |"
    )


def bench_rollouts(work: str, rollouts: int, gap: float, spare: bool) -> None:
    import pandas as pd
    import requests
    from serverproc import JupyterServerProcess
    from sklearn.dummy import DummyClassifier

    import jupyter_mlops as mlops

    root = Path(work) / ("srv" if spare else "srv-no-spare")
    server = JupyterServerProcess(
        root=root,
        extra_args=[
            "--DeploymentService.health_interval=1",
            f"--DeploymentService.warm_spare={spare}",
        ],
    )
    (root / "data" / "mlops").mkdir(parents=True)
    X = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]})
    mlops.set_tracking_uri(server.db_url)
    mlops.set_experiment("bench")
    for constant in (0, 1):
        with mlops.start_run():
            mlops.log_model(
                DummyClassifier(strategy="constant", constant=constant).fit(X, [0, 1]),
                "model",
                input_example=X,
                registered_model_name="bench",
            )
    mlops.set_tracking_uri(None)
    server.start()
    s = requests.Session()
    s.headers["Authorization"] = f"token {server.token}"
    api = server.url + "mlops/api/v1/deployments"
    try:
        t0 = time.perf_counter()
        dep = s.post(api, json={"name": "bench", "model_uri": "models:/bench/1"}).json()
        while dep["deployment"]["status"] != "READY":
            time.sleep(0.02)
            dep = s.get(api + "/bench").json()
        create_s = time.perf_counter() - t0
        url = dep["deployment"]["url"]
        body = json.dumps({"dataframe_records": [{"a": 0.0, "b": 1.0}]}).encode()
        answers: list[tuple[float, int]] = []
        failures: list[str] = []
        stop = threading.Event()

        def client() -> None:
            port = int(url.rsplit(":", 1)[1])
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while not stop.is_set():
                try:
                    conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    if r.status == 200:
                        answers.append((time.perf_counter(), json.loads(data)["predictions"][0]))
                    else:
                        failures.append(f"{r.status} {data[:100]!r}")
                except (OSError, http.client.HTTPException) as e:
                    failures.append(repr(e))
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        t = threading.Thread(target=client)
        t.start()
        rows = []
        try:
            time.sleep(1)
            for i in range(rollouts):
                time.sleep(gap)  # rollouts are minutes apart: the spare is warm by then
                version, answer = (2, 1) if i % 2 == 0 else (1, 0)
                n0 = len(answers)
                t0 = time.perf_counter()
                s.patch(f"{api}/bench", json={"model_uri": f"models:/bench/{version}"})
                while s.get(api + "/bench").json()["deployment"]["status"] != "READY":
                    time.sleep(0.02)
                ready = time.perf_counter() - t0
                while not any(a == answer for _, a in answers[n0:]):
                    time.sleep(0.005)
                first = next(ts for ts, a in answers[n0:] if a == answer) - t0
                time.sleep(0.5)
                later = [a for ts, a in answers[n0:] if ts > t0 + first]
                assert set(later) == {answer}, "an old answer after the switch"
                rows.append((first, ready))
        finally:
            stop.set()
            t.join()
        # latency through the router vs the scoring process itself
        d = s.get(api + "/bench").json()["deployment"]
        direct_port = json.loads(json.dumps(d["processes"]))  # pids only: find the port
        state_port = None
        import sqlalchemy as sa

        engine = sa.create_engine(server.db_url)
        with engine.connect() as c:
            state = json.loads(
                c.execute(sa.text("select state from deployments where name='bench'")).scalar()
            )
            state_port = state["replicas"][0]["port"]
        del direct_port

        def p50(port: int, n: int = 1000) -> float:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            lat = []
            for _ in range(n):
                t1 = time.perf_counter()
                conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                conn.getresponse().read()
                lat.append(time.perf_counter() - t1)
            return statistics.median(lat) * 1000

        router_port = int(url.rsplit(":", 1)[1])
        p50(router_port, 200)
        via_router, direct = p50(router_port), p50(state_port)
        print(
            f"\nrollouts of a local deployment under a client loop, warm spare {spare} "
            f"({len(answers)} requests answered, {len(failures)} failed; load average "
            f"{os.getloadavg()[0]:.1f})"
        )
        print("| measure | median | max |")
        print("|---|---|---|")
        print(f"| create -> READY (s) | {create_s:.2f} | |")
        firsts = [r[0] for r in rows]
        readys = [r[1] for r in rows]
        print(
            f"| rollout: request -> all traffic on the new version (s) | "
            f"{statistics.median(firsts):.2f} | {max(firsts):.2f} |"
        )
        print(
            f"| rollout: request -> READY (the old process drains after) (s) | "
            f"{statistics.median(readys):.2f} | {max(readys):.2f} |"
        )
        print(f"| failed requests during {rollouts} rollouts | {len(failures)} | |")
        print(
            f"| p50 latency through the router / direct (ms) | {via_router:.2f} / {direct:.2f} | |"
        )
        if failures:
            print("failures:", failures[:5])
        s.delete(api + "/bench")
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=5, help="cold starts (0: none)")
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--gap", type=float, default=5.0, help="seconds between rollouts")
    ap.add_argument(
        "--no-spare", action="store_true", help="also measure rollouts without the warm spare"
    )
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-deploy-")
    try:
        if args.starts:
            bench_cold_start(work, args.starts)
        bench_rollouts(work, args.rollouts, args.gap, spare=True)
        if args.no_spare:
            bench_rollouts(work, args.rollouts, args.gap, spare=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
