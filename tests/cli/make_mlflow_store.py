"""Fill an MLflow tracking store with the real ``mlflow`` client (test-only).

Usage: ``python make_mlflow_store.py TRACKING_URI WORKDIR OUT.json``. Logs a bit of
everything the importer must carry over and writes, as JSON, what MLflow itself
reads back (through ``MlflowClient``), for the tests to compare against.
"""

from __future__ import annotations

import json
import math
import os
import sys

import mlflow
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

uri, workdir, out = sys.argv[1:4]
os.chdir(workdir)
mlflow.set_tracking_uri(uri)
client = MlflowClient()

exp_a = mlflow.create_experiment("vision: resnet #1", tags={"team": "cv", "group/sub": "x"})
exp_b = mlflow.create_experiment("tabular")
exp_gone = mlflow.create_experiment("abandoned")

os.makedirs("files/plots", exist_ok=True)
with open("files/model.txt", "w") as f:
    f.write("weights")
with open("files/plots/curve.csv", "w") as f:
    f.write("step,loss\n0,1.0\n1,0.5\n")

mlflow.set_experiment(experiment_id=exp_a)
with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_params({"lr": "0.01", "layers": "50", "opt/name": "adam", "long": "v" * 500})
    mlflow.set_tags({"stage": "dev", "note": "two\nlines"})
    for step in range(120):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    for step in range(0, 10, 3):
        mlflow.log_metric("val/acc", 0.5 + step / 100, step=step)
    mlflow.log_metric("weird", float("nan"), step=1)
    mlflow.log_artifact("files/model.txt")
    mlflow.log_artifacts("files/plots", artifact_path="plots")
    for fold in range(2):
        with mlflow.start_run(run_name=f"fold-{fold}", nested=True):
            mlflow.log_param("fold", str(fold))
            mlflow.log_metric("acc", 0.8 + fold / 10)

with mlflow.start_run(run_name="deleted-one") as dead:
    mlflow.log_param("x", "1")
    mlflow.log_metric("m", 1.0)
    mlflow.log_artifact("files/model.txt")
client.delete_run(dead.info.run_id)

mlflow.set_experiment(experiment_id=exp_b)
failed = client.create_run(exp_b, run_name="broken", tags={"kind": "failing"})
client.log_metric(failed.info.run_id, "loss", 3.0, timestamp=1_700_000_000_000, step=0)
client.log_metric(failed.info.run_id, "loss", 2.0, timestamp=1_700_000_000_500, step=1)
client.log_metric(failed.info.run_id, "loss", 2.0, timestamp=1_700_000_000_500, step=1)
client.set_terminated(failed.info.run_id, status="FAILED", end_time=1_700_000_123_000)
still = client.create_run(exp_b, run_name="still-running")
client.log_param(still.info.run_id, "k", "v")

mlflow.set_experiment(experiment_id=exp_gone)
with mlflow.start_run(run_name="in-abandoned"):
    mlflow.log_metric("m", 2.0)
client.delete_experiment(exp_gone)


def _value(v: float) -> float | str:
    return "NaN" if math.isnan(v) else v


def describe() -> dict:
    experiments = {}
    for e in client.search_experiments(view_type=ViewType.ALL):
        experiments[e.name] = {
            "experiment_id": e.experiment_id,
            "lifecycle_stage": e.lifecycle_stage,
            "tags": dict(e.tags),
        }
    runs = {}
    for r in client.search_runs(
        [e["experiment_id"] for e in experiments.values()], run_view_type=ViewType.ALL
    ):
        info = r.info
        metrics = {}
        for key in r.data.metrics:
            metrics[key] = [
                [m.step, m.timestamp, _value(m.value)]
                for m in client.get_metric_history(info.run_id, key)
            ]
        arts: dict[str, str] = {}
        stack = [""]
        while stack:
            for fi in client.list_artifacts(info.run_id, stack.pop() or None):
                if fi.is_dir:
                    stack.append(fi.path)
                else:
                    with open(
                        client.download_artifacts(info.run_id, fi.path, dst_path=workdir + "/dl")
                    ) as f:
                        arts[fi.path] = f.read()
        exp_name = next(
            n for n, e in experiments.items() if e["experiment_id"] == info.experiment_id
        )
        runs[info.run_id] = {
            "experiment": exp_name,
            "run_name": info.run_name,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "user_id": info.user_id,
            "lifecycle_stage": info.lifecycle_stage,
            "params": dict(r.data.params),
            "tags": dict(r.data.tags),
            "metrics": metrics,
            "artifacts": arts,
            "artifact_uri": info.artifact_uri,
        }
    return {"experiments": experiments, "runs": runs}


with open(out, "w") as f:
    json.dump(describe(), f, indent=1)
