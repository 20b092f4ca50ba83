"""Many writers at once (issue 18, the small-scale check of bench/bench_scale_writers.py):
8 client processes create runs and log into one server at the same time, through our
columnar ``api/v1/runs/log-bulk`` and MLflow's ``runs/log-batch``; at the end every
series holds exactly its points, none lost and none duplicated (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from pgschema import fresh_schema
from serverproc import JupyterServerProcess, child_env

WRITERS = 8
RUNS = 2  # per writer
STEPS = 300  # per series; two series (loss, acc) per run

WRITER = textwrap.dedent(
    """
    import json, sys, requests
    url, token, exp_id, w, runs, steps = sys.argv[1:]
    s = requests.Session()
    s.headers["Authorization"] = "token " + token
    out = []
    for r in range(int(runs)):
        resp = s.post(url + "/api/2.0/mlflow/runs/create",
                      json={"experiment_id": exp_id, "run_name": f"w{w}-r{r}"}, timeout=300)
        resp.raise_for_status()
        rid = resp.json()["run"]["info"]["run_id"]
        out.append(rid)
        for i in range(0, int(steps), 50):
            chunk = list(range(i, min(int(steps), i + 50)))
            if (int(w) + r) % 2:  # MLflow's batch route
                metrics = [{"key": k, "value": st * (j + 1.0), "timestamp": 1000 + st, "step": st}
                           for j, k in enumerate(("loss", "acc")) for st in chunk]
                resp = s.post(url + "/api/2.0/mlflow/runs/log-batch",
                              json={"run_id": rid, "metrics": metrics}, timeout=300)
            else:  # our columnar route
                metrics = [{"key": k, "steps": chunk, "timestamps": [1000 + st for st in chunk],
                            "values": [st * (j + 1.0) for st in chunk]}
                           for j, k in enumerate(("loss", "acc"))]
                resp = s.post(url + "/api/v1/runs/log-bulk",
                              json={"run_id": rid, "metrics": metrics}, timeout=300)
            resp.raise_for_status()
    print(json.dumps(out))
    """
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request, tmp_path: Path):
    if request.param == "postgresql":
        with fresh_schema("writers") as url:
            srv = JupyterServerProcess(tmp_path, extra_args=[f"--MLOpsApp.database_url={url}"])
            yield srv.start()
            srv.stop()
    else:
        srv = JupyterServerProcess(tmp_path)
        yield srv.start()
        srv.stop()


def test_concurrent_writers_lose_and_duplicate_nothing(server, tmp_path: Path):
    url = server.tracking_uri
    s = requests.Session()
    s.headers["Authorization"] = f"token {server.token}"
    r = s.post(url + "/api/2.0/mlflow/experiments/create", json={"name": "writers"}, timeout=60)
    r.raise_for_status()
    exp_id = r.json()["experiment_id"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                url,
                server.token,
                exp_id,
                str(w),
                str(RUNS),
                str(STEPS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(tmp_path),
            text=True,
        )
        for w in range(WRITERS)
    ]
    run_ids = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        run_ids += json.loads(out)
    assert len(set(run_ids)) == WRITERS * RUNS
    found = s.post(
        url + "/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [exp_id], "max_results": 1000},
        timeout=60,
    ).json()["runs"]
    assert sorted(x["info"]["run_id"] for x in found) == sorted(run_ids)
    for rid in run_ids:
        for j, key in enumerate(("loss", "acc")):
            points, token = [], None
            while True:
                params = {"run_id": rid, "metric_key": key, "max_results": 250}
                if token:
                    params["page_token"] = token
                body = s.get(
                    url + "/api/2.0/mlflow/metrics/get-history", params=params, timeout=60
                ).json()
                points += body.get("metrics", [])
                token = body.get("next_page_token")
                if not token:
                    break
            steps = sorted(p["step"] for p in points)
            assert steps == list(range(STEPS)), (rid, key, len(steps))
            assert all(p["value"] == p["step"] * (j + 1.0) for p in points)
