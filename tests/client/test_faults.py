"""Faults under load, with real processes: the server killed with SIGKILL while a client
logs, its PostgreSQL database gone and back (a throwaway PostgreSQL server of the test's
own: the machine's shared one is never touched), and a full disk (a small tmpfs). In
each: the server answers 503/507 with MLflow's error JSON while the fault lasts, recovers
by itself, and nothing a client was told is stored is lost."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from serverproc import free_port

from jupyter_mlops.tracking import open_store

pytestmark = pytest.mark.slow
M = "api/2.0/mlflow/"


def _steps(store, run_id: str, key: str) -> list[int]:
    return [m.step for m in store.get_metric_history(run_id, key)[0]]


def _log_in_background(
    tracking_uri: str, n: int, run_id: str
) -> tuple[threading.Thread, threading.Event]:
    """Our client's fluent API logging ``n`` points of ``m`` into ``run_id``, spread out."""
    import jupyter_mlops as mlops

    progress = threading.Event()

    def log_all() -> None:
        for i in range(n):
            mlops.log_metric("m", i, step=i, run_id=run_id)
            if i == n // 4:
                progress.set()
            if i % 100 == 0:
                time.sleep(0.005)

    mlops.set_tracking_uri(tracking_uri)
    t = threading.Thread(target=log_all)
    t.start()
    return t, progress


def _wait_for(cond, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# -- SIGKILL of the server ----------------------------------------------------------------
def test_server_killed_while_logging_loses_nothing(jupyter_server_process, monkeypatch):
    import jupyter_mlops as mlops

    server = jupyter_server_process()
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", server.token)
    mlops.set_tracking_uri(server.tracking_uri)
    run = mlops.start_run()
    n = 5000
    t, progress = _log_in_background(server.tracking_uri, n, run.info.run_id)
    assert progress.wait(120), "the writer thread did not get going"
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    db = sqlite3.connect(server.db_url[len("sqlite:///") :])
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    server.start()
    t.join(300)
    assert not t.is_alive(), "the writer thread did not finish"
    mlops.end_run()
    mlops.flush()
    store = open_store(server.db_url)
    assert sorted(set(_steps(store, run.info.run_id, "m"))) == list(range(n))
    assert store.get_run(run.info.run_id).info.status == "FINISHED"
    store.close()


# -- PostgreSQL gone and back -------------------------------------------------------------
class ThrowawayPostgres:
    """A PostgreSQL server of the test's own (initdb + pg_ctl on a free port, in a temp
    dir), run as the ``postgres`` user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data, self.log = root / "data", root / "pg.log"
        self.port = free_port()

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        r = self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        assert r.returncode == 0, r.stderr

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        r = self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            opts,
            "-w",
            "-t",
            "120",
            "start",
        )
        assert r.returncode == 0, r.stderr + self.log.read_text(errors="replace")[-2000:]

    def stop(self, mode: str = "immediate") -> None:
        r = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "120", "stop")
        assert r.returncode == 0, r.stderr

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def throwaway_pg() -> Iterator[ThrowawayPostgres]:
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdbs:
        pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    pg = ThrowawayPostgres(Path(initdbs[-1]).parent, root)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg._run("pg_ctl", "-D", str(pg.data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_gone_under_load_is_503_and_recovers(
    jupyter_server_process, throwaway_pg, monkeypatch
):
    import jupyter_mlops as mlops

    server = jupyter_server_process(extra_args=[f"--MLOpsApp.database_url={throwaway_pg.url}"])
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", server.token)
    auth = {"Authorization": f"token {server.token}"}
    api = server.tracking_uri + "/" + M
    mlops.set_tracking_uri(server.tracking_uri)
    run = mlops.start_run()
    n = 5000
    t, progress = _log_in_background(server.tracking_uri, n, run.info.run_id)
    assert progress.wait(120), "the writer thread did not get going"

    throwaway_pg.stop("immediate")

    def down_answer():
        r = requests.get(
            api + "runs/get", params={"run_id": run.info.run_id}, headers=auth, timeout=60
        )
        return [r] if r.status_code != 200 else None  # (a Response of a 5xx is falsy)

    [r] = _wait_for(down_answer, "an answer while the database is down")
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "tracking database is unavailable" in r.json()["message"]
    assert r.headers.get("Retry-After")

    throwaway_pg.start()  # the server is not restarted: it reconnects by itself
    _wait_for(
        lambda: (
            requests.get(
                api + "runs/get", params={"run_id": run.info.run_id}, headers=auth, timeout=60
            ).status_code
            == 200
        ),
        "the server to answer again",
    )
    t.join(300)
    assert not t.is_alive(), "the writer thread did not finish"
    mlops.end_run()
    mlops.flush()
    store = open_store(throwaway_pg.url)
    assert sorted(set(_steps(store, run.info.run_id, "m"))) == list(range(n))
    assert store.get_run(run.info.run_id).info.status == "FINISHED"
    store.close()


# -- a full disk --------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs at ``tmp_path/disk``: mounted where the machine allows it (root in
    CI), else the test is skipped with the reason."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for the full-disk test needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    # unbuffered: a buffered writer would keep the bytes a full disk refused and fail again
    # on close
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def test_full_disk_is_507_and_recovers(jupyter_server_process, small_disk):
    server = jupyter_server_process(
        extra_args=[
            f"--MLOpsApp.database_url=sqlite:///{small_disk / 'mlops.db'}",
            f"--MLOpsApp.artifact_root={small_disk / 'artifacts'}",
        ]
    )
    s = requests.Session()
    s.headers["Authorization"] = f"token {server.token}"
    api = server.tracking_uri + "/"
    exp = s.post(api + M + "experiments/create", json={"name": "full"}).json()["experiment_id"]
    run_id = s.post(api + M + "runs/create", json={"experiment_id": exp}).json()["run"]["info"][
        "run_id"
    ]
    art = f"{api}api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/blob.bin"
    n = 100_000
    bulk = {
        "run_id": run_id,
        "metrics": [
            {
                "key": "m",
                "steps": list(range(n)),
                "timestamps": [1] * n,
                "values": [float(i) for i in range(n)],
            }
        ],
    }
    filler = _fill(small_disk)

    r = s.put(art, data=os.urandom(1 << 20))
    assert r.status_code == 507, r.text
    assert r.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert "No space left on the artifact store" in r.json()["message"]
    r = s.post(api + "api/v1/runs/log-bulk", json=bulk)
    assert r.status_code == 507, r.text
    assert r.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert "No space left on the tracking database's disk" in r.json()["message"]
    assert s.get(api + M + "runs/get", params={"run_id": run_id}).status_code == 200  # reads

    filler.unlink()  # space is back: the same requests succeed, no restart
    assert s.put(art, data=b"x" * (1 << 20)).status_code == 200
    r = s.post(api + "api/v1/runs/log-bulk", json=bulk)
    assert r.status_code == 200, r.text
    hist = s.get(
        api + "api/v1/metrics/series",
        params={"run_id": run_id, "metric_key": "m", "max_points": 10},
    ).json()
    assert sum(p["count"] for p in hist["points"]) == n
    assert s.get(art).content == b"x" * (1 << 20)
    assert "Traceback" not in server.log()
