"""Shared pieces of the scale benches (issue 18): PostgreSQL databases, the two servers
(Jupyter with the extension, ``mlflow server``) on a chosen database, timing helpers.

Databases are created in the PostgreSQL at ``--pg`` (default 127.0.0.1:5432, trust
auth) and kept between runs (a generated dataset is reused when its marker matches);
``--fresh`` drops the bench's own databases, never any other. Their names start with
``$BENCH_DB_PREFIX`` (default ``bench_``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
CACHE = Path(os.environ.get("BENCH_SCALE_CACHE", "/tmp/bench_scale"))
#: Every database a scale bench creates starts with this (and no other is touched):
#: on a shared server, a prefix of your own keeps the benches' databases apart.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "bench_")


def load() -> str:
    """The machine's load average, for the record."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    e["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    e.update(extra)
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, headers: dict[str, str] | None = None, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


class Server:
    """A server subprocess; ``url`` is the tracking base (…/api/2.0/mlflow/ below it)."""

    def __init__(
        self,
        cmd: list[str],
        url: str,
        health: str,
        headers: dict[str, str],
        cwd: Path,
        **extra: str,
    ) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.url, self.headers = url, headers
        self.log = open(cwd / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, env=env(**extra), cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            wait_http(health, headers)
        except Exception:
            self.stop()
            raise

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process and its children have used:
        per request, what a quiet machine would show as the server's share of the wall
        time (on a loaded one the wall time also waits for a core)."""
        return cpu_s(self.proc.pid)

    def rss_mb(self) -> float:
        """Resident memory of the server process and its children (MB)."""
        total = 0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def cpu_s(pid: int, children: bool = True) -> float:
    """CPU seconds (user + system, from /proc) a process has used so far, with its live
    descendants' unless ``children`` is false; a process gone meanwhile counts as 0."""
    total = 0
    for p in [pid, *(_children(pid) if children else [])]:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out += [k, *_children(k)]
    return out


def jupyter_server(root: Path, database_url: str, *extra_args: str) -> Server:
    """Jupyter Server with the extension on ``database_url``; token auth."""
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
        f"--MLOpsApp.database_url={database_url}",
        f"--MLOpsApp.artifact_root={root / 'artifacts'}",
        *extra_args,
    ]
    url = f"http://127.0.0.1:{port}/mlops"
    headers = {"Authorization": f"token {token}"}
    return Server(
        cmd,
        url,
        url + "/health",
        headers,
        root,
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
    )


def mlflow_server(root: Path, backend_uri: str, workers: int = 1, **extra_env: str) -> Server:
    """``mlflow server`` on ``backend_uri`` with its artifact proxy under ``root``
    (``extra_env``: e.g. MLflow's SQLAlchemy pool variables)."""
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
        str(workers),
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    if workers > 1:  # uvicorn kills a worker that misses its 5 s health ping: on a loaded
        # machine that dropped requests mid-answer, which is not MLflow's own speed
        cmd += ["--uvicorn-opts", "--timeout-worker-healthcheck 300"]
    url = f"http://127.0.0.1:{port}"
    return Server(cmd, url, url + "/health", {}, root, **extra_env)


# -- PostgreSQL ------------------------------------------------------------------


def pg_url(db: str) -> str:
    return f"{PG}/{db}"


def mlflow_pg_url(db: str) -> str:
    """The URL MLflow's SQLAlchemy store needs for the installed driver (psycopg 3)."""
    return pg_url(db).replace("postgresql://", "postgresql+psycopg://", 1)


def pg_exec(sql: str, db: str = "postgres") -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(pg_url(db), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description else []


def ensure_db(db: str, fresh: bool = False) -> bool:
    """Create database ``db`` (a bench database: name starts with ``DB_PREFIX``); True
    if it already existed (and was kept)."""
    assert db.startswith(DB_PREFIX), db  # never touch another database
    exists = bool(pg_exec(f"SELECT 1 FROM pg_database WHERE datname = '{db}'"))
    if exists and fresh:
        pg_exec(f'DROP DATABASE "{db}" WITH (FORCE)')
        exists = False
    if not exists:
        pg_exec(f'CREATE DATABASE "{db}"')
    return exists


# -- timing ----------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Wall seconds of ``repeat`` calls and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def pct(xs: Sequence[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:,.1f} ms"


def summary(xs: Sequence[float]) -> str:
    return f"median {ms(statistics.median(xs))}, best {ms(min(xs))}"


# -- this tree against another revision, each measurement in a fresh process ----------------


def tree_of(rev: str, into: Path) -> Path:
    """The ``jupyter_mlops`` package as it was at ``rev`` (git archive), under ``into``."""
    into.mkdir(parents=True)
    archive = into / "tree.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "archive", rev, "jupyter_mlops"], cwd=REPO, stdout=f, check=True)
    with tarfile.open(archive) as t:
        t.extractall(into, filter="data")
    return into


def run_child(script: str, tree: Path, *args: str) -> dict[str, Any]:
    """``python <script> --child <args>`` with ``tree``'s package first on the path: the
    JSON of its last line, whose ``package`` (``jupyter_mlops.__file__``) must be the tree's,
    not the installed package."""
    out = subprocess.run(
        [PY, script, "--child", *args],
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert answer["package"].startswith(str(tree)), answer["package"]
    return answer


def alternated(
    repeat: int, measure: Callable[[str, int], float], names: Sequence[str] = ("before", "now")
) -> dict[str, list[float]]:
    """``measure(name, n)`` for each name, ``repeat`` rounds, the order reversed every other
    round so that the machine's load (and what warms up) hits every name alike."""
    out: dict[str, list[float]] = {name: [] for name in names}
    for n in range(repeat):
        for name in names if n % 2 == 0 else reversed(names):
            out[name].append(measure(name, n))
    return out
