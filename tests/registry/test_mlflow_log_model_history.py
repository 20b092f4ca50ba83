"""The official ``mlflow`` client's ``log_model`` re-logs the run's metrics with the
model's id (``runs/log-batch``): the run's history keeps each point once, as MLflow's
own store does, on SQLite and PostgreSQL behind a real ``jupyter server``."""

from __future__ import annotations

import contextlib
import textwrap

import pytest
from pgschema import fresh_schema
from test_mlflow_registry_e2e import run_driver

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")
pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent(
    r"""
    import json, warnings
    warnings.simplefilter("ignore")
    import numpy as np
    import mlflow, mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    client = MlflowClient()
    mlflow.set_experiment("hist")
    with mlflow.start_run() as run:
        rid = run.info.run_id
        for step in range(3):
            mlflow.log_metrics({"loss": 1.0 / (step + 1), "acc": 0.5 + step / 10}, step=step)
        mlflow.log_metric("loss", 0.25, step=2)  # same step, new value: a point of its own
        # (its requirements given: mlflow infers them by running a Python that imports the
        # model's modules, seconds on a loaded machine; they are not what this test reads)
        info = mlflow.sklearn.log_model(
            LogisticRegression().fit(X, y), name="m", step=2, pip_requirements=["scikit-learn"]
        )
    out = {
        k: [(m.step, m.value) for m in client.get_metric_history(rid, k)] for k in ("loss", "acc")
    }
    model = client.get_logged_model(info.model_id)
    out["model"] = sorted((m.key, m.step, m.value) for m in model.metrics)
    print("RESULT " + json.dumps(out))
    """
)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_model_after_metrics_keeps_history_without_copies(
    jupyter_server_process, tmp_path, backend
):
    with contextlib.ExitStack() as stack:
        args = []
        if backend == "postgresql":
            url = stack.enter_context(fresh_schema("lm"))
            args = [f"--MLOpsApp.database_url={url}"]
        server = jupyter_server_process(extra_args=args)
        out = run_driver(server, tmp_path, DRIVER)
        server.stop()
    assert out["loss"] == [[0, 1.0], [1, 0.5], [2, 1 / 3], [2, 0.25]]
    assert out["acc"] == [[0, 0.5], [1, 0.6], [2, 0.7]]
    assert out["model"] == [["acc", 2, 0.7], ["loss", 2, 0.25], ["loss", 2, 1 / 3]]
