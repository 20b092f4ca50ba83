"""``jupyter mlops run`` against ``mlflow run`` on the same MLflow project, side by side.

Overhead before the entry point's first line: from the moment the command is started (a
subprocess, as from a terminal) to the ``time.time()`` the entry point writes as its first
statement, with a warm environment (the project's virtualenv already made by an earlier
run of the same tool), both recording into the same tracking server (a Jupyter server with
the extension, over HTTP: the only store both clients share). Also: the first (cold) run of
each, which creates the environment, and the entry point's whole run to the process exit.

    python bench/bench_projects.py [--repeat 7] [--env-manager virtualenv|local]

Runs alternate ours and MLflow's, so load from other processes hits both. ``mlflow run
--env-manager virtualenv`` needs the ``virtualenv`` package and pyenv; when it cannot make
its environment here the bench says so and compares both with ``--env-manager local``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PY = sys.executable
REPO = Path(__file__).resolve().parent.parent

MLPROJECT = """\
name: bench
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      out: string
      alpha: {type: float, default: 0.5}
    command: "python probe.py {out} --alpha {alpha}"
"""
PYTHON_ENV = 'python: "{v}"\nbuild_dependencies: [pip]\ndependencies: []\n'
PROBE = """\
import time
t = time.time()
import sys
with open(sys.argv[1], "w") as f:
    f.write(repr(t))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path) -> tuple[subprocess.Popen, str, str]:
    port, token = free_port(), "bench-token"
    for d in ("work", "data", "config", "runtime"):
        (root / d).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "JUPYTER_DATA_DIR": str(root / "data"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
    }
    log = open(root / "server.log", "wb")  # noqa: SIM115 - the server's, closed at exit
    proc = subprocess.Popen(
        [
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
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/mlops"
    deadline = time.monotonic() + 120
    while True:
        try:
            req = urllib.request.Request(
                url + "/health", headers={"Authorization": f"token {token}"}
            )
            with urllib.request.urlopen(req, timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the Jupyter server did not come up") from None
            time.sleep(0.3)
    return proc, url, token


def run_once(cmd: list[str], env: dict[str, str], out: Path) -> tuple[float, float]:
    """(seconds to the entry point's first line, seconds to the command's exit)."""
    out.unlink(missing_ok=True)
    start = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    end = time.time()
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    return float(out.read_text()) - start, end - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--env-manager", default="virtualenv", choices=["virtualenv", "local"])
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-projects-"))
    project = tmp / "project"
    project.mkdir()
    (project / "MLproject").write_text(MLPROJECT)
    (project / "python_env.yaml").write_text(
        PYTHON_ENV.format(v="{}.{}".format(*sys.version_info[:2]))
    )
    (project / "probe.py").write_text(PROBE)
    server, url, token = start_server(tmp / "server")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))},
        "PATH": os.pathsep.join([os.path.dirname(PY), os.environ.get("PATH", "")]),
        "JUPYTER_DATA_DIR": str(tmp / "client-data"),
        "JUPYTER_MLOPS_TRACKING_URI": url,
        "JUPYTER_MLOPS_TRACKING_TOKEN": token,
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_TRACKING_TOKEN": token,
        "MLFLOW_EXPERIMENT_NAME": "bench-projects",
    }
    out = tmp / "first-line"
    load = os.getloadavg()[0]
    try:

        def commands(manager: str) -> dict[str, list[str]]:
            common = [str(project), "-P", f"out={out}", "--env-manager", manager]
            return {
                "jupyter mlops run": [PY, "-m", "jupyter_mlops.cli", "run", *common],
                "mlflow run": [PY, "-m", "mlflow", "run", *common],
            }

        manager = args.env_manager
        cold: dict[str, tuple[float, float]] = {}
        for name, cmd in commands(manager).items():
            try:
                cold[name] = run_once(cmd, env, out)
            except RuntimeError as e:
                if name != "mlflow run" or manager == "local":
                    raise
                print(f"mlflow run --env-manager {manager} failed here; comparing with local:\n{e}")
                manager = "local"
                cold = {}
                break
        if manager != args.env_manager:
            for name, cmd in commands(manager).items():
                cold[name] = run_once(cmd, env, out)
        first: dict[str, list[float]] = {n: [] for n in cold}
        total: dict[str, list[float]] = {n: [] for n in cold}
        ours_venv: list[float] = []
        for _ in range(args.repeat):
            for name, cmd in commands(manager).items():
                a, b = run_once(cmd, env, out)
                first[name].append(a)
                total[name].append(b)
            if manager != args.env_manager:  # ours with its (warm) virtualenv as well
                ours_venv.append(
                    run_once(commands(args.env_manager)["jupyter mlops run"], env, out)[0]
                )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)

    bare = []
    for _ in range(args.repeat):
        start = time.time()
        subprocess.run([PY, str(project / "probe.py"), str(out)], check=True)
        bare.append(float(out.read_text()) - start)

    med = {n: statistics.median(v) for n, v in first.items()}
    print(
        f"\nbench_projects: env manager {manager}, {args.repeat} warm runs each, "
        f"CPython {sys.version.split()[0]}, load average {load:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print("| measure | jupyter mlops run | mlflow run | ratio |")
    print("|---|---|---|---|")
    ours, theirs = med["jupyter mlops run"], med["mlflow run"]
    print(
        f"| start → entry point's first line, warm env, median s | {ours:.3f} | {theirs:.3f} "
        f"| {theirs / ours:.1f}x |"
    )
    print(
        "| same, min / max s | "
        f"{min(first['jupyter mlops run']):.3f} / {max(first['jupyter mlops run']):.3f} | "
        f"{min(first['mlflow run']):.3f} / {max(first['mlflow run']):.3f} | |"
    )
    t_ours = statistics.median(total["jupyter mlops run"])
    t_theirs = statistics.median(total["mlflow run"])
    print(
        f"| start → exit, warm env, median s | {t_ours:.3f} | {t_theirs:.3f} | {t_theirs / t_ours:.1f}x |"
    )
    print(
        f"| first run (environment created), start → first line s | "
        f"{cold['jupyter mlops run'][0]:.3f} | {cold['mlflow run'][0]:.3f} | |"
    )
    if ours_venv:
        print(
            f"| start → first line, ours with --env-manager {args.env_manager} (warm, reused), "
            f"median s | {statistics.median(ours_venv[1:] or ours_venv):.3f} | (could not run) | |"
        )
    print(f"| reference: `python probe.py` alone, median s | {statistics.median(bare):.3f} | | |")
    print(
        f"\noverhead ours / MLflow's: {ours / theirs:.2f} (target ≤ 0.33) "
        f"{'met' if ours <= theirs / 3 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
