"""Artifacts at scale (issue 18): one 2 GB file uploaded and downloaded through the
artifact proxy, ours (Jupyter Server + the extension) beside ``mlflow server
--artifacts-destination``, against the speed of a plain disk copy of the same file.

    PYTHONPATH=. python bench/bench_scale_artifacts.py               # 2 GB
    PYTHONPATH=. python bench/bench_scale_artifacts.py --scale 0.25  # 512 MB

Per server, into a run's artifacts (``<exp>/<run>/artifacts/<file>``):

- ``PUT``: one streamed ``PUT api/2.0/mlflow-artifacts/artifacts/<path>`` of the file
  (http.client sending 1 MiB blocks with its Content-Length);
- ``GET``: a streamed ``GET`` of the same path, and of MLflow's UI route
  ``get-artifact?run_id=&path=``, each written to a file in 1 MiB pieces;
- MLflow's own client (a subprocess; its import not timed): ``log_artifact`` as one ``PUT``,
  ``log_artifact`` with ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true`` (on ours a multipart
  upload, parts of ``--part-mb`` sent in parallel; MLflow's server has no multipart for a
  local artifact root, so its client falls back to one PUT there), and
  ``mlflow.artifacts.download_artifacts``.

Reported: MB/s of each against ``cp`` of the file to a new file beside the servers'
artifact roots (same disk, page-cache writes on every side); the CPU seconds the server and
the client spent per GB (what a loaded machine has to find for them, where wall time
mostly says how busy the machine was); each server's RSS before and at its peak (sampled
every 50 ms): it must not grow with the file (streamed, not buffered). The test file is
made once under /tmp/bench_scale/.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests
from scale_common import CACHE, PY, Server, cpu_s, env, jupyter_server, load, mlflow_server

MB = 1024 * 1024


def make_file(size: int) -> Path:
    path = CACHE / f"artifact_{size // MB}MB.bin"
    if path.exists() and path.stat().st_size == size:
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MB)
    with open(path, "wb") as f:
        for _ in range(size // MB):
            f.write(block)
    return path


class Measure:
    """One transfer: its wall time, the server's RSS (before, peak: sampled every 50 ms) and
    CPU seconds, and the client's CPU seconds (this thread's: the raw PUT and GETs)."""

    def __init__(self, srv: Server) -> None:
        self.srv, self.peak, self.stop = srv, 0.0, False

    def __enter__(self) -> Measure:
        self.before = self.srv.rss_mb()
        self.cpu0 = cpu_s(self.srv.proc.pid)
        self.client0 = time.thread_time()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        self.t0 = time.perf_counter()
        return self

    def _run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, self.srv.rss_mb())
            time.sleep(0.05)

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.t0
        self.server_cpu = cpu_s(self.srv.proc.pid) - self.cpu0
        self.client_cpu = time.thread_time() - self.client0
        self.stop = True
        self.t.join()


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def make_run(srv: Server) -> tuple[str, str]:
    api = f"{srv.url}/api/2.0/mlflow"
    r = requests.post(
        f"{api}/experiments/create", json={"name": f"bench-{time.time_ns()}"}, headers=srv.headers
    )
    r.raise_for_status()
    exp = r.json()["experiment_id"]
    r = requests.post(f"{api}/runs/create", json={"experiment_id": exp}, headers=srv.headers)
    r.raise_for_status()
    return exp, r.json()["run"]["info"]["run_id"]


def put_file(srv: Server, path: str, src: Path) -> None:
    """One PUT of ``src`` sent in 1 MiB blocks (requests would send 8 KiB ones)."""
    u = urlsplit(srv.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=3600, blocksize=MB)
    with open(src, "rb") as f:
        headers = {**srv.headers, "Content-Length": str(src.stat().st_size)}
        conn.request("PUT", f"{u.path}/api/2.0/mlflow-artifacts/artifacts/{path}", f, headers)
        r = conn.getresponse()
        body = r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError(f"upload: {r.status} {body[:300]!r}")


def get_file(srv: Server, url: str, out: Path, size: int, **params: str) -> None:
    with requests.get(url, params=params, headers=srv.headers, stream=True, timeout=3600) as r:
        r.raise_for_status()
        with open(out, "wb") as f:
            for piece in r.iter_content(MB):
                f.write(piece)
    if out.stat().st_size != size:
        raise RuntimeError(f"downloaded {out.stat().st_size} bytes of {size}")


CLIENT = textwrap.dedent(
    """
    import os, sys, time, mlflow
    from mlflow.artifacts import download_artifacts
    what, src, run_id = sys.argv[1:4]
    t0, c0 = time.perf_counter(), time.process_time()
    if what == "download":
        download_artifacts(run_id=run_id, artifact_path=src, dst_path=sys.argv[4])
    else:
        mlflow.MlflowClient().log_artifact(run_id, src, what)
    print(time.perf_counter() - t0, time.process_time() - c0)
    """
)


def mlflow_client(srv: Server, what: str, *args: str, part_mb: int = 100) -> tuple[float, float]:
    """Wall and CPU seconds MLflow's client takes (its import not counted): ``what`` is the artifact directory to log ``args[0]``
    into (``multipart``: with MLflow's proxy multipart upload enabled), or ``download``."""
    extra = {"MLFLOW_TRACKING_URI": srv.url}
    if what == "multipart":
        extra.update(
            MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD="true",
            MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE=str(MB),
            MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=str(part_mb * MB),
        )
    token = srv.headers.get("Authorization", "").removeprefix("token ")
    if token:
        extra["MLFLOW_TRACKING_TOKEN"] = token
    out = subprocess.run(
        [PY, "-c", CLIENT, what, *args],
        env=env(**extra),
        check=True,
        capture_output=True,
        text=True,
    )
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


#: The transfers, in the order run, and their columns' names.
OPS = {
    "put": "PUT",
    "get": "GET",
    "ui": "get-artifact",
    "client_put": "mlflow log_artifact (one PUT)",
    "client_mpu": "mlflow log_artifact (multipart)",
    "client_get": "mlflow download_artifacts",
}


def transfer(srv: Server, src: Path, tmp: Path, part_mb: int) -> dict[str, dict[str, float]]:
    size = src.stat().st_size
    exp, run_id = make_run(srv)
    rel = f"{exp}/{run_id}/artifacts"
    url = f"{srv.url}/api/2.0/mlflow-artifacts/artifacts/{rel}"
    out = tmp / "down.bin"
    res: dict[str, dict[str, float]] = {}

    def record(op: str, m: Measure, client: tuple[float, float] | None = None) -> None:
        gb = size / (1 << 30)
        wall, client_cpu = client or (m.wall, m.client_cpu)
        res[op] = {
            "mb_s": size / MB / wall,
            "server_cpu_gb": m.server_cpu / gb,
            "client_cpu_gb": client_cpu / gb,
            "rss0": m.before,
            "rss_peak": m.peak,
        }
        print(f"  {OPS[op]}: {res[op]['mb_s']:,.0f} MB/s; load {load()}", flush=True)

    def check_and_drop(path: Path) -> None:
        if sha256(path) != digest:
            raise RuntimeError("the downloaded file differs from the uploaded one")
        path.unlink()

    digest = sha256(src)
    with Measure(srv) as m:
        put_file(srv, f"{rel}/{src.name}", src)
    record("put", m)
    with Measure(srv) as m:
        get_file(srv, f"{url}/{src.name}", out, size)
    record("get", m)
    check_and_drop(out)
    with Measure(srv) as m:
        get_file(srv, f"{srv.url}/get-artifact", out, size, run_id=run_id, path=src.name)
    record("ui", m)
    check_and_drop(out)
    requests.delete(f"{url}/{src.name}", headers=srv.headers, timeout=600).raise_for_status()
    with Measure(srv) as m:
        client = mlflow_client(srv, "one", str(src), run_id)
    record("client_put", m, client)
    with Measure(srv) as m:
        client = mlflow_client(srv, "download", f"one/{src.name}", run_id, str(tmp / "dl"))
    record("client_get", m, client)
    (got,) = (tmp / "dl").rglob(src.name)
    check_and_drop(got)
    requests.delete(f"{url}/one", headers=srv.headers, timeout=600).raise_for_status()
    with Measure(srv) as m:
        client = mlflow_client(srv, "multipart", str(src), run_id, part_mb=part_mb)
    record("client_mpu", m, client)
    requests.delete(f"{url}/multipart", headers=srv.headers, timeout=600).raise_for_status()
    return res


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * MB):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=1.0, help="x 2 GB")
    ap.add_argument("--mlflow-scale", type=float, help="x 2 GB for MLflow's side (default --scale)")
    ap.add_argument(
        "--part-mb", type=int, default=100, help="multipart part size (MLflow's default)"
    )
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    size = int(2048 * args.scale) * MB
    src = make_file(size)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-artifacts-", dir=str(CACHE)))
    print(f"{size // MB} MB; load average {load()}; {shutil.disk_usage(tmp).free // MB:,} MB free")
    res: dict[str, dict[str, dict[str, float]]] = {}
    sizes: dict[str, int] = {}
    try:
        c0, t0 = _children_cpu(), time.perf_counter()
        subprocess.run(["cp", str(src), str(tmp / "copy.bin")], check=True)
        cp = size / MB / (time.perf_counter() - t0)
        cp_cpu = (_children_cpu() - c0) / (size / (1 << 30))
        (tmp / "copy.bin").unlink()
        print(f"cp: {cp:,.0f} MB/s; load {load()}", flush=True)
        srv = jupyter_server(tmp / "ours", f"sqlite:///{tmp / 'ours.db'}")
        try:
            res["jupyter-mlops"] = transfer(srv, src, tmp, args.part_mb)
            sizes["jupyter-mlops"] = size
        finally:
            srv.stop()
        shutil.rmtree(tmp / "ours" / "artifacts", ignore_errors=True)
        print(f"ours done; load average {load()}", flush=True)
        if not args.skip_mlflow:
            msize = int(2048 * (args.mlflow_scale or args.scale)) * MB
            msrc = make_file(msize)
            msrv = mlflow_server(tmp / "mlflow", f"sqlite:///{tmp / 'mlflow.db'}")
            try:
                res["mlflow server"] = transfer(msrv, msrc, tmp, args.part_mb)
                sizes["mlflow server"] = msize
            finally:
                msrv.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average after: {load()}\n")
    names = list(res)
    print(
        f"| MB/s (% of cp {cp:,.0f} MB/s, {size // MB} MB, cp CPU {cp_cpu:.2f} s/GB) | "
        + " | ".join(f"{n}, {sizes[n] // MB} MB" for n in names)
        + " |"
    )
    print("|---" * (len(names) + 1) + "|")
    for op, label in OPS.items():
        cells = [
            f"{res[n][op]['mb_s']:,.0f} ({100 * res[n][op]['mb_s'] / cp:.0f} %)" for n in names
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print(
        "| CPU s per GB: server / client; server RSS MB before -> peak | "
        + " | ".join(names)
        + " |"
    )
    print("|---" * (len(names) + 1) + "|")
    for op, label in OPS.items():
        cells = [
            f"{r['server_cpu_gb']:.2f} / {r['client_cpu_gb']:.2f}; "
            f"{r['rss0']:.0f} -> {r['rss_peak']:.0f}"
            for r in (res[n][op] for n in names)
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(json.dumps({"cp": cp, "cp_cpu_gb": cp_cpu, **res}))


if __name__ == "__main__":
    main()
