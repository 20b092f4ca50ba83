"""Artifacts at scale (issue 18): one 2 GB file uploaded and downloaded through the
artifact proxy, ours (Jupyter Server + the extension) beside ``mlflow server
--artifacts-destination``, against the speed of a plain disk copy of the same file.

    PYTHONPATH=. python bench/bench_scale_artifacts.py               # 2 GB
    PYTHONPATH=. python bench/bench_scale_artifacts.py --scale 0.25  # 512 MB

Per server, into a run's artifacts (``<exp>/<run>/artifacts/<file>``):

- upload: one streamed ``PUT api/2.0/mlflow-artifacts/artifacts/<path>`` of the file
  (http.client sending 1 MiB blocks with its Content-Length);
- download: a streamed ``GET`` of the same path, and of MLflow's UI route
  ``get-artifact?run_id=&path=``, each written to a file in 1 MiB pieces;
- ``mlflow.log_artifact`` with MLflow's own client (a subprocess) and
  ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true``: on ours a multipart upload (parts of
  ``--part-mb``, sent in parallel by the client); MLflow's server has no multipart for a
  local artifact root, so its client falls back to one PUT there.

Reported: MB/s of each against ``cp`` of the file to a new file beside the servers'
artifact roots (same disk, page-cache writes on every side), and each server's RSS before
and at its peak (sampled every 50 ms): it must not grow with the file (streamed, not
buffered). The test file is made once under /tmp/bench_scale/.
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
from scale_common import CACHE, PY, Server, env, jupyter_server, load, mlflow_server

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


class RssPeak:
    def __init__(self, srv: Server) -> None:
        self.srv, self.peak, self.stop = srv, 0.0, False

    def __enter__(self) -> RssPeak:
        self.before = self.srv.rss_mb()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, self.srv.rss_mb())
            time.sleep(0.05)

    def __exit__(self, *exc: Any) -> None:
        self.stop = True
        self.t.join()


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
    import sys, time, mlflow
    t0 = time.perf_counter()
    mlflow.MlflowClient().log_artifact(sys.argv[2], sys.argv[1], "client")
    print(time.perf_counter() - t0)
    """
)


def client_upload(srv: Server, run_id: str, src: Path, part_mb: int) -> float:
    """Seconds ``mlflow.log_artifact`` takes (MLflow's client, multipart enabled)."""
    extra = {
        "MLFLOW_TRACKING_URI": srv.url,
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
        "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(MB),
        "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(part_mb * MB),
    }
    token = srv.headers.get("Authorization", "").removeprefix("token ")
    if token:
        extra["MLFLOW_TRACKING_TOKEN"] = token
    out = subprocess.run(
        [PY, "-c", CLIENT, str(src), run_id],
        env=env(**extra),
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def transfer(srv: Server, src: Path, tmp: Path, part_mb: int) -> dict[str, float]:
    size = src.stat().st_size
    exp, run_id = make_run(srv)
    path = f"{exp}/{run_id}/artifacts/{src.name}"
    out = tmp / "down.bin"
    res: dict[str, float] = {}
    with RssPeak(srv) as up:
        t0 = time.perf_counter()
        put_file(srv, path, src)
        res["up"] = size / MB / (time.perf_counter() - t0)
    with RssPeak(srv) as down:
        t0 = time.perf_counter()
        get_file(srv, f"{srv.url}/api/2.0/mlflow-artifacts/artifacts/{path}", out, size)
        res["down"] = size / MB / (time.perf_counter() - t0)
    out.unlink()
    with RssPeak(srv) as ui:
        t0 = time.perf_counter()
        get_file(srv, f"{srv.url}/get-artifact", out, size, run_id=run_id, path=src.name)
        res["ui"] = size / MB / (time.perf_counter() - t0)
    if sha256(out) != sha256(src):
        raise RuntimeError("the downloaded file differs from the uploaded one")
    out.unlink()
    url = f"{srv.url}/api/2.0/mlflow-artifacts/artifacts/{path}"
    requests.delete(url, headers=srv.headers, timeout=600).raise_for_status()  # disk room
    with RssPeak(srv) as mpu:
        res["client"] = size / MB / client_upload(srv, run_id, src, part_mb)
    res.update(
        rss0=up.before,
        rss_up=up.peak,
        rss_down=max(down.peak, ui.peak),
        rss_client=mpu.peak,
    )
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
    res: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    try:
        t0 = time.perf_counter()
        subprocess.run(["cp", str(src), str(tmp / "copy.bin")], check=True)
        cp = size / MB / (time.perf_counter() - t0)
        (tmp / "copy.bin").unlink()
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
    print(
        "| artifact | PUT MB/s (% of cp) | GET MB/s (% of cp) | get-artifact MB/s (% of cp) | "
        "mlflow.log_artifact MB/s | server RSS before / peak up / peak down / peak client |"
    )
    print("|---|---|---|---|---|---|")
    print(f"| cp, {size // MB} MB (same disk) | {cp:,.0f} | {cp:,.0f} | {cp:,.0f} | | |")

    def rate(x: float) -> str:
        return f"{x:,.0f} ({100 * x / cp:.0f} %)"

    for name, r in res.items():
        print(
            f"| {name}, {sizes[name] // MB} MB | {rate(r['up'])} | {rate(r['down'])} | "
            f"{rate(r['ui'])} | {r['client']:,.0f} | {r['rss0']:.0f} / {r['rss_up']:.0f} / "
            f"{r['rss_down']:.0f} / {r['rss_client']:.0f} MB |"
        )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
