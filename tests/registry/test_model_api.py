"""``mlops.log_model`` / ``load_model`` / ``register_model`` and ``RegistryClient``
against a SQLite store in-process: MLflow's files, every URI form, every
serialization format, custom ``PythonModel``s, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.tracking.errors import TrackingError

X = pd.DataFrame({"a": [0.0, 1.0, 0.2, 0.9], "b": [1.0, 0.0, 0.9, 0.1]})
Y = [0, 1, 0, 1]


@pytest.fixture
def uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("JUPYTER_MLOPS_TRACKING_URI", "MLFLOW_TRACKING_URI", "JUPYTER_MLOPS_SERVER_URL"):
        monkeypatch.delenv(var, raising=False)
    u = f"sqlite:///{tmp_path / 'mlops.db'}"
    mlops.set_tracking_uri(u)
    mlops.set_experiment("models")
    yield u
    mlops.end_run()
    mlops.set_tracking_uri(None)


@pytest.fixture(scope="module")
def model():
    return LogisticRegression().fit(X, Y)


def test_log_model_writes_mlflow_format_and_loads_by_every_uri(uri, model, tmp_path):
    with mlops.start_run() as run:
        info = mlops.log_model(
            model,
            "model",
            input_example=X[:2],
            pip_requirements=["extra-pkg==1.0"],
            registered_model_name="clf",
        )
    assert info.model_id.startswith("m-")
    assert info.model_uri == f"models:/{info.model_id}"
    assert info.registered_model_version == "1"
    d = mlops.load_model(info.model_uri).model_dir
    files = set(os.listdir(d))
    assert {
        "MLmodel",
        "model.pkl",
        "requirements.txt",
        "python_env.yaml",
        "conda.yaml",
        "input_example.json",
        "serving_input_example.json",
    } <= files
    mlmodel = yaml.safe_load(Path(d, "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "cloudpickle"
    assert mlmodel["run_id"] == run.info.run_id
    assert mlmodel["model_id"] == mlmodel["model_uuid"] == info.model_id
    assert mlmodel["artifact_path"] == info.artifact_path
    assert [c["name"] for c in json.loads(mlmodel["signature"]["inputs"])] == ["a", "b"]
    reqs = Path(d, "requirements.txt").read_text().split()
    assert "extra-pkg==1.0" in reqs and any(r.startswith("scikit-learn==") for r in reqs)

    client = mlops.RegistryClient()
    client.set_registered_model_alias("clf", "champion", 1)
    client.transition_model_version_stage("clf", 1, "Staging")
    for u in (
        info.model_uri,
        f"runs:/{run.info.run_id}/model",
        "models:/clf/1",
        "models:/clf@champion",
        "models:/clf/Staging",
        "models:/clf/latest",
        d,
    ):
        assert mlops.load_model(u).predict(X).tolist() == Y, u
    rm = client.get_registered_model("clf")
    assert rm.aliases == {"champion": "1"}
    assert [v.current_stage for v in rm.latest_versions] == ["Staging"]
    lineage = client.get_model_version_lineage("clf", 1)
    assert lineage["run"]["run_id"] == run.info.run_id
    mv = client.get_model_version("clf", 1)
    assert (mv.source, mv.model_id, mv.run_id) == (info.model_uri, info.model_id, run.info.run_id)


def test_log_model_creates_an_mlflow3_logged_model(uri, model, tmp_path):
    """A logged model in the run's experiment, linked as the run's output, its
    files under <experiment>/models/<model_id>/artifacts (none in the run's
    artifacts), READY, carrying the run's params, source tags and step metrics."""
    from jupyter_mlops.registry.client import registry_backend

    with mlops.start_run() as run:
        mlops.log_param("C", 1.0)
        mlops.set_tag("mlflow.source.name", "train.ipynb")
        mlops.log_metric("acc", 0.75, step=0)
        mlops.log_metric("acc", 0.5, step=1)
        mlops.log_metric("loss", 0.2)
        info = mlops.log_model(model, "clf", params={"extra": 2}, tags={"team": "a"})
    rid, exp_id = run.info.run_id, run.info.experiment_id
    client = mlops.MlopsClient()
    backend = registry_backend(client.store)
    lm = backend.get_logged_model(info.model_id)
    assert lm["info"]["status"] == "LOGGED_MODEL_READY"
    assert lm["info"]["experiment_id"] == exp_id
    assert lm["info"]["source_run_id"] == rid
    assert lm["info"]["name"] == "clf"
    assert lm["info"]["artifact_uri"] == info.artifact_path
    assert info.artifact_path.endswith(f"{exp_id}/models/{info.model_id}/artifacts")
    tags = {t["key"]: t["value"] for t in lm["info"]["tags"]}
    assert tags["mlflow.source.name"] == "train.ipynb" and tags["team"] == "a"
    assert {p["key"]: p["value"] for p in lm["data"]["params"]} == {"C": "1.0", "extra": "2"}
    assert sorted((m["key"], m["value"], m["step"]) for m in lm["data"]["metrics"]) == [
        ("acc", 0.75, 0),
        ("loss", 0.2, 0),
    ]
    assert {m["model_id"] for m in lm["data"]["metrics"]} == {info.model_id}
    assert backend.run_outputs(rid) == [{"model_id": info.model_id, "step": 0}]
    assert "clf" not in {f.path for f in client.list_artifacts(rid)}  # MLflow 3: not in the run
    repo = client.store.artifact_repo(info.artifact_path)
    assert {f.path for f in repo.list("")} >= {"MLmodel", "model.pkl", "requirements.txt"}
    # runs:/<run>/<name> resolves to it, for loading and for registering
    assert mlops.load_model(f"runs:/{rid}/clf").model_id == info.model_id
    mv = mlops.register_model(f"runs:/{rid}/clf", "from-run")
    assert (mv.source, mv.model_id, mv.run_id) == (f"models:/{info.model_id}", info.model_id, rid)


def test_runs_uri_loads_a_model_in_the_run_artifacts(uri, model, tmp_path):
    """The layout before MLflow 3 (and of MLflow 2 clients): a model directory
    among the run's artifacts. runs:/ loads it and registers it by run path."""
    from jupyter_mlops.registry.flavors import save_model

    save_model(model, str(tmp_path / "saved"), input_example=X[:2])
    with mlops.start_run() as run:
        mlops.log_artifacts(str(tmp_path / "saved"), "old/model")
    model_uri = f"runs:/{run.info.run_id}/old/model"
    assert mlops.load_model(model_uri).predict(X).tolist() == Y
    mv = mlops.register_model(model_uri, "old-layout")
    assert (mv.source, mv.model_id) == (model_uri, None)
    assert mlops.load_model("models:/old-layout/1").predict(X).tolist() == Y


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle", "skops"])
def test_serialization_formats(uri, model, fmt):
    if fmt == "skops":
        pytest.importorskip("skops")
    with mlops.start_run():
        info = mlops.log_model(model, "m", serialization_format=fmt)
    loaded = mlops.load_model(info.model_uri)
    assert loaded.metadata["flavors"]["sklearn"]["serialization_format"] == fmt
    assert loaded.predict(X).tolist() == Y


class Plus(mlops.PythonModel):
    def load_context(self, context):
        self.offset = float(Path(context.artifacts["offset"]).read_text())

    def predict(self, context, model_input, params=None):
        return np.asarray(model_input, dtype=float) + self.offset


class WithPredict:
    def predict(self, data):
        return [len(data)]


def test_python_models(uri, tmp_path):
    off = tmp_path / "offset.txt"
    off.write_text("10")
    with mlops.start_run():
        a = mlops.log_model(Plus(), "plus", artifacts={"offset": str(off)})
        b = mlops.log_model(WithPredict(), "obj")
    assert mlops.load_model(a.model_uri).predict([1, 2]).tolist() == [11.0, 12.0]
    assert mlops.load_model(b.model_uri).predict([1, 2, 3]) == [3]


def test_register_and_errors(uri, model):
    with mlops.start_run() as run:
        mlops.log_model(model, "m")
    v1 = mlops.register_model(f"runs:/{run.info.run_id}/m", "x")
    v2 = mlops.register_model(f"runs:/{run.info.run_id}/m", "x")
    assert (v1.version, v2.version) == ("1", "2")
    with pytest.raises(TrackingError, match="No versions of model 'x' in stage 'Production'"):
        mlops.load_model("models:/x/Production")
    with pytest.raises(TrackingError) as e:
        mlops.load_model("models:/x@nope")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(TrackingError, match="No model at 'nothing'"):
        mlops.load_model(f"runs:/{run.info.run_id}/nothing")
    with pytest.raises(TrackingError, match="no predict method"), mlops.start_run() as bad:
        mlops.log_model(object(), "bad")
    # a model that cannot be saved leaves no logged model behind
    from jupyter_mlops.registry.client import registry_backend

    backend = registry_backend(mlops.MlopsClient().store)
    assert backend.search_logged_models([bad.info.experiment_id], "name = 'bad'")[0] == []
    with pytest.raises(TrackingError, match="Invalid model name"):
        mlops.log_model(model, "../escape")
