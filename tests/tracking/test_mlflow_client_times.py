"""The official ``mlflow`` client reads MLflow's experiment time fields from our REST
API, and a deleted run's JSON carries ``deleted_time`` (SQLite and PostgreSQL stores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent(
    r"""
    import json, os
    import requests
    from mlflow import MlflowClient

    c = MlflowClient()
    out = {}
    eid = c.create_experiment("times")
    e = c.get_experiment(eid)
    out["created"], out["updated"] = e.creation_time, e.last_update_time
    c.set_experiment_tag(eid, "k", "v")
    out["after_tag"] = c.get_experiment(eid).last_update_time
    out["by_name"] = c.get_experiment_by_name("times").creation_time
    out["searched"] = [x.creation_time for x in c.search_experiments() if x.experiment_id == eid]
    rid = c.create_run(eid).info.run_id
    c.delete_run(rid)
    out["stage"] = c.get_run(rid).info.lifecycle_stage
    raw = requests.get(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/get",
                       params={"run_id": rid},
                       headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]})
    out["deleted_time"] = raw.json()["run"]["info"].get("deleted_time")
    c.restore_run(rid)
    raw = requests.get(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/get",
                       params={"run_id": rid},
                       headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]})
    out["restored_keys"] = sorted(raw.json()["run"]["info"])
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_mlflow_client_sees_time_fields(jupyter_server_process, tmp_path, backend, request):
    extra = []
    if backend == "postgresql":
        extra = [f"--MLOpsApp.database_url={request.getfixturevalue('pg_schema_url')}"]
    server = jupyter_server_process(extra_args=extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "JUPYTER_MLOPS_"))}
    env.update(
        MLFLOW_TRACKING_URI=server.tracking_uri,
        MLFLOW_TRACKING_TOKEN=server.token,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        HOME=str(tmp_path),
    )
    before = int(time.time() * 1000)
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    after = int(time.time() * 1000)
    assert proc.returncode == 0, (
        f"{proc.stderr[-4000:]}\n--- server log ---\n{server.log()[-4000:]}"
    )
    out = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert before <= out["created"] <= after
    assert out["updated"] == out["created"]
    assert out["created"] <= out["after_tag"] <= after
    assert out["by_name"] == out["created"] and out["searched"] == [out["created"]]
    assert out["stage"] == "deleted"
    assert before <= out["deleted_time"] <= after
    assert "deleted_time" not in out["restored_keys"] and "start_time" in out["restored_keys"]
