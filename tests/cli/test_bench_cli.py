"""``jupyter mlops bench`` at a tiny scale against a real Jupyter server with jupyter-mlops
(a subprocess): every workload runs over REST, the figures are printed (Markdown and JSON),
nothing is lost, and the bench's experiments are deleted afterwards unless ``--keep``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from serverproc import JupyterServerProcess, child_env

SCALE = "0.0002"  # 20 writers' worth of nothing: 1 writer x 1,000 points, 200 runs, 2,000 points


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServerProcess]:
    srv = JupyterServerProcess(tmp_path_factory.mktemp("bench-server"))
    yield srv.start()
    srv.stop()


def bench(server: JupyterServerProcess, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = child_env(tmp)
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "bench", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def experiments(server: JupyterServerProcess) -> list[dict]:
    r = requests.post(
        server.tracking_uri + "/api/2.0/mlflow/experiments/search",
        json={"max_results": 1000, "view_type": "ACTIVE_ONLY"},
        headers={"Authorization": f"token {server.token}"},
        timeout=60,
    )
    r.raise_for_status()
    return [e for e in r.json().get("experiments", []) if e["name"].startswith("mlops-bench-")]


def test_bench_runs_every_workload_and_cleans_up(server: JupyterServerProcess, tmp_path: Path):
    url = ["--url", server.tracking_uri, "--token", server.token]
    done = bench(server, tmp_path, *url, "--scale", SCALE, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["scale"] == float(SCALE) and out["load"]
    titles = [w["title"] for w in out["workloads"]]
    assert titles == [
        "write: 1 writers x 1,000 points (2 series, batches of 1000)",
        "search: 200 runs x 20 params, 10 metrics, 5 tags",
        "series: one metric of 2,000 points",
    ]
    for w in out["workloads"]:
        assert w["problems"] == [], w
    write, search, series = (w["figures"] for w in out["workloads"])
    assert write["points_per_s"] > 0 and 0 < write["ack_p50"] <= write["ack_p99"]
    assert search["first_page"] > 0 and search["last_page"] > 0 and series["first_draw"] > 0
    rows = dict(out["workloads"][0]["rows"])
    assert rows["lost or duplicated points"] == "none"
    assert experiments(server) == []  # deleted afterwards

    kept = bench(server, tmp_path, *url, "--scale", SCALE, "--only", "write", "--keep")
    assert kept.returncode == 0, kept.stderr
    assert "| write: 1 writers x 1,000 points" in kept.stdout
    assert "aggregate throughput" in kept.stdout and "client load" in kept.stdout
    assert [e["name"].split("-")[2] for e in experiments(server)] == ["write"]


def test_bench_refuses_bad_input_in_one_line(server: JupyterServerProcess, tmp_path: Path):
    url = ["--url", server.tracking_uri, "--token", server.token]
    bad = bench(server, tmp_path, *url, "--only", "write,nope")
    assert bad.returncode == 1 and "unknown workload(s) nope" in bad.stderr
    bad = bench(server, tmp_path, *url, "--scale", "2")
    assert bad.returncode == 1 and "--scale must be in (0, 1]" in bad.stderr
    bad = bench(server, tmp_path, "--url", server.tracking_uri, "--token", "wrong")
    assert bad.returncode == 1 and "cannot use" in bad.stderr and "answered 40" in bad.stderr
    bad = bench(server, tmp_path, "--url", "ftp://example.org")
    assert bad.returncode == 1 and "http(s) tracking URI" in bad.stderr
