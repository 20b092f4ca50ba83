"""Artifacts at scale (issue 18): one 2 GB file uploaded and downloaded through the
artifact proxy (``api/2.0/mlflow-artifacts/artifacts/<path>``), ours (Jupyter Server +
the extension) beside ``mlflow server --artifacts-destination``, against the speed of a
plain disk copy of the same file on the same machine.

    PYTHONPATH=. python bench/bench_scale_artifacts.py               # 2 GB
    PYTHONPATH=. python bench/bench_scale_artifacts.py --scale 0.25  # 512 MB

Upload: one streamed ``PUT`` of the file's bytes (requests reads the file as it sends);
download: a streamed ``GET`` written to a file in 1 MiB pieces. Reported: MB/s of each
against ``cp`` of the file to a new file beside the servers' artifact roots (same disk,
page-cache writes on every side), and each server's RSS before and at its peak (sampled every 50 ms): it must not grow with
the file (streamed, not buffered). The test file is made once under /tmp/bench_scale/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests
from scale_common import CACHE, Server, jupyter_server, load, mlflow_server

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


def transfer(srv: Server, src: Path, out: Path) -> dict[str, float]:
    url = f"{srv.url}/api/2.0/mlflow-artifacts/artifacts/bench/{src.name}"
    size = src.stat().st_size
    with RssPeak(srv) as up, open(src, "rb") as f:
        t0 = time.perf_counter()
        r = requests.put(url, data=f, headers=srv.headers, timeout=3600)
        r.raise_for_status()
        t_up = time.perf_counter() - t0
    with RssPeak(srv) as down:
        t0 = time.perf_counter()
        with requests.get(url, headers=srv.headers, stream=True, timeout=3600) as r:
            r.raise_for_status()
            with open(out, "wb") as f:
                for piece in r.iter_content(MB):
                    f.write(piece)
        t_down = time.perf_counter() - t0
    if out.stat().st_size != size:
        raise RuntimeError(f"downloaded {out.stat().st_size} bytes of {size}")
    out.unlink()
    return {
        "up": size / MB / t_up,
        "down": size / MB / t_down,
        "rss0": up.before,
        "rss_up": up.peak,
        "rss_down": down.peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=1.0, help="x 2 GB")
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    size = int(2048 * args.scale) * MB
    src = make_file(size)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-artifacts-", dir=str(CACHE)))
    print(f"{size // MB} MB; load average {load()}; {shutil.disk_usage(tmp).free // MB:,} MB free")
    try:
        t0 = time.perf_counter()
        subprocess.run(["cp", str(src), str(tmp / "copy.bin")], check=True)
        cp = size / MB / (time.perf_counter() - t0)
        (tmp / "copy.bin").unlink()
        res = {}
        srv = jupyter_server(tmp / "ours", f"sqlite:///{tmp / 'ours.db'}")
        try:
            res["jupyter-mlops"] = transfer(srv, src, tmp / "down.bin")
        finally:
            srv.stop()
        shutil.rmtree(tmp / "ours" / "artifacts", ignore_errors=True)
        if not args.skip_mlflow:
            msrv = mlflow_server(tmp / "mlflow", f"sqlite:///{tmp / 'mlflow.db'}")
            try:
                res["mlflow"] = transfer(msrv, src, tmp / "down.bin")
            finally:
                msrv.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average after: {load()}\n")
    print(
        f"| {size // MB} MB artifact | upload MB/s (% of cp) | download MB/s (% of cp) | "
        "server RSS before / peak up / peak down |"
    )
    print("|---|---|---|---|")
    print(f"| cp (same disk) | {cp:,.0f} | {cp:,.0f} | |")
    for name, r in res.items():
        print(
            f"| {name} | {r['up']:,.0f} ({100 * r['up'] / cp:.0f} %) | "
            f"{r['down']:,.0f} ({100 * r['down'] / cp:.0f} %) | "
            f"{r['rss0']:.0f} / {r['rss_up']:.0f} / {r['rss_down']:.0f} MB |"
        )


if __name__ == "__main__":
    main()
