"""Our client against a stock ``mlflow server`` (the peer): no ``api/v1``, so
writes fall back to MLflow's ``runs/log-batch`` within its limits and runs
get server-made ids."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from serverproc import start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    pytest.importorskip("mlflow")  # run as `python -m mlflow`: no console script on PATH needed
    root: Path = tmp_path_factory.mktemp("mlflow-server")
    log_path = root / "server.log"

    def launch(port: int) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    f"sqlite:///{root / 'mlflow.db'}",
                    "--artifacts-destination",
                    str(root / "artifacts"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def answers(port: int) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
            return r.status == 200

    proc, port = start_server(launch, answers, log_path, "mlflow server")
    url = f"http://127.0.0.1:{port}"
    yield url
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def test_logging_into_a_stock_mlflow_server(mlflow_server):
    import mlflow

    import jupyter_mlops as mlops

    mlops.set_tracking_uri(mlflow_server)
    mlops.set_experiment("from-jupyter-mlops")
    with mlops.start_run(run_name="peer") as run:
        mlops.log_params({f"p{i}": i for i in range(150)})  # > 100 params per log-batch
        for i in range(2500):  # > 1000 metrics per log-batch
            mlops.log_metric("loss", i / 10, step=i)
        mlops.set_tag("k", "v")
        mlops.log_text("hi", "a/b.txt")
    run_id = run.info.run_id

    peer = mlflow.MlflowClient(tracking_uri=mlflow_server)
    got = peer.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert len(got.data.params) == 150 and got.data.params["p149"] == "149"
    assert got.data.tags["k"] == "v" and got.data.tags["mlflow.runName"] == "peer"
    history = peer.get_metric_history(run_id, "loss")
    assert sorted(m.step for m in history) == list(range(2500))
    assert [f.path for f in peer.list_artifacts(run_id, "a")] == ["a/b.txt"]
    assert mlops.search_runs()["run_id"].tolist() == [run_id]
