"""The official ``mlflow`` client's model logging and registry calls, unchanged,
against a real ``jupyter server`` subprocess with our extension (MLflow 3:
logged models, ``runs/outputs``, skops sklearn models, aliases, stages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")
pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent(
    r"""
    import json, warnings
    warnings.simplefilter("ignore")
    import numpy as np
    import mlflow, mlflow.sklearn, mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sklearn.linear_model import LogisticRegression
    # the models' requirements, given: mlflow infers them by running a Python that imports
    # the model's modules (sklearn, skops: 5-20 s a model on a loaded machine); none is read here
    REQS = ["scikit-learn"]

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    m = LogisticRegression().fit(X, y)
    client = MlflowClient()
    out = {}
    mlflow.set_experiment("reg")
    with mlflow.start_run() as run:
        rid = run.info.run_id
        mlflow.log_metric("acc", 0.5)
        info = mlflow.sklearn.log_model(m, name="m", input_example=X[:2], pip_requirements=REQS)
    out["model_id"] = info.model_id
    out["model_uri"] = info.model_uri
    lm = client.get_logged_model(info.model_id)
    out["logged_status"] = str(lm.status)
    out["logged_run"] = lm.source_run_id
    out["logged_metrics"] = [(x.key, x.value, x.step, x.model_id) for x in lm.metrics]
    # log_model re-logs the run's metrics with the model id: the history keeps each point once
    out["history"] = [(x.key, x.value, x.step) for x in client.get_metric_history(rid, "acc")]
    out["artifact_location"] = lm.artifact_location
    v1 = mlflow.register_model(f"runs:/{rid}/m", "bm")
    v2 = mlflow.register_model(f"runs:/{rid}/m", "bm")
    out["versions"] = [v1.version, v2.version]
    out["v1_source"] = v1.source
    client.set_registered_model_alias("bm", "champion", "1")
    out["aliases"] = client.get_registered_model("bm").aliases
    out["by_alias"] = client.get_model_version_by_alias("bm", "champion").version
    out["pred_alias"] = mlflow.pyfunc.load_model("models:/bm@champion").predict(X).tolist()
    client.transition_model_version_stage("bm", "2", "Production")
    client.transition_model_version_stage("bm", "1", "Production", archive_existing_versions=True)
    out["stages"] = {v.version: v.current_stage for v in client.search_model_versions("name='bm'")}
    out["latest"] = sorted((v.version, v.current_stage) for v in client.get_latest_versions("bm"))
    out["latest_prod"] = [v.version for v in client.get_latest_versions("bm", ["Production"])]
    out["search"] = [r.name for r in client.search_registered_models(filter_string="name LIKE 'b%'")]
    out["pred_run"] = mlflow.pyfunc.load_model(f"runs:/{rid}/m").predict(X).tolist()
    out["pred_stage"] = mlflow.pyfunc.load_model("models:/bm/Production").predict(X).tolist()
    out["pred_version"] = mlflow.sklearn.load_model("models:/bm/2").predict(X).tolist()
    try:
        client.create_registered_model("bm")
    except MlflowException as e:
        out["dup"] = [e.error_code, e.message]
    try:
        client.transition_model_version_stage("bm", "1", "Bogus")
    except MlflowException as e:
        out["bad_stage"] = [e.error_code, e.message]
    try:
        client.get_model_version("bm", "9")
    except MlflowException as e:
        out["missing_version"] = e.error_code
    client.rename_registered_model("bm", "bm2")
    out["renamed"] = client.get_registered_model("bm2").aliases
    client.delete_registered_model_alias("bm2", "champion")
    client.delete_model_version("bm2", "2")
    out["after_delete"] = [v.version for v in client.search_model_versions("name='bm2'")]
    client.delete_registered_model("bm2")
    try:
        client.get_registered_model("bm2")
    except MlflowException as e:
        out["gone"] = e.error_code
    out["run_id"] = rid
    print("RESULT " + json.dumps(out))
    """
)


def run_driver(server, tmp_path, code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "JUPYTER_MLOPS_"))}
    env.update(
        MLFLOW_TRACKING_URI=server.tracking_uri,
        MLFLOW_TRACKING_TOKEN=server.token,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true",
        PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")])),
        HOME=str(tmp_path),
    )
    work = tmp_path / "driver"
    work.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"{proc.stderr[-4000:]}\n--- server log ---\n{server.log()[-4000:]}"
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def test_mlflow_log_model_register_alias_stage_and_load(jupyter_server_process, tmp_path):
    server = jupyter_server_process(base_url="/jh/user/")
    out = run_driver(server, tmp_path, DRIVER)
    expected = [0, 1, 0, 1]
    assert out["model_id"].startswith("m-")
    assert out["logged_status"].endswith("READY")
    assert out["logged_run"] == out["run_id"]
    # mlflow re-logs the run's step-0 metrics with the model's id: linked once
    assert out["logged_metrics"] == [["acc", 0.5, 0, out["model_id"]]]
    assert out["history"] == [["acc", 0.5, 0]]
    assert out["artifact_location"].endswith(f"/models/{out['model_id']}/artifacts")
    assert out["versions"] == ["1", "2"]
    assert out["v1_source"] == f"models:/{out['model_id']}"
    assert out["aliases"] == {"champion": "1"}
    assert out["by_alias"] == "1"
    assert out["pred_alias"] == expected
    assert out["stages"] == {"1": "Production", "2": "Archived"}
    assert out["latest"] == [["1", "Production"], ["2", "Archived"]]
    assert out["latest_prod"] == ["1"]
    assert out["search"] == ["bm"]
    assert out["pred_run"] == expected
    assert out["pred_stage"] == expected
    assert out["pred_version"] == expected
    assert out["dup"][0] == "RESOURCE_ALREADY_EXISTS"
    assert "already exists" in out["dup"][1]
    assert out["bad_stage"][0] == "INVALID_PARAMETER_VALUE"
    assert "Invalid Model Version stage: Bogus" in out["bad_stage"][1]
    assert out["missing_version"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["renamed"] == {"champion": "1"}
    assert out["after_delete"] == ["1"]
    assert out["gone"] == "RESOURCE_DOES_NOT_EXIST"


BOTH_WAYS = textwrap.dedent(
    r"""
    import json, warnings
    warnings.simplefilter("ignore")
    import numpy as np, pandas as pd
    import mlflow, mlflow.sklearn, mlflow.pyfunc
    from mlflow import MlflowClient
    import jupyter_mlops as mlops
    from sklearn.ensemble import RandomForestClassifier

    # the models' requirements, given: mlflow infers them by running a Python that imports
    # the model's modules (sklearn, skops: 5-20 s a model on a loaded machine); none is read here
    REQS = ["scikit-learn"]

    X = pd.DataFrame({"a": [0.0, 1.0, 0.2, 0.9], "b": [1.0, 0.0, 0.9, 0.1]})
    y = np.array([0, 1, 0, 1])
    m = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    out = {}
    mlflow.set_experiment("both")
    mlops.set_experiment("both")

    # logged by jupyter-mlops (an MLflow 3 logged model), read and loaded by mlflow
    with mlops.start_run() as run:
        mlops.log_param("n_estimators", 5)
        mlops.log_metric("acc", 1.0)
        info = mlops.log_model(m, "model", input_example=X[:2], registered_model_name="ours")
    mlops.flush()
    client = MlflowClient()
    rid = run.info.run_id
    out["ours_model_id"] = info.model_id
    out["ours_run"] = rid
    out["ours_version"] = info.registered_model_version
    out["ours_outputs"] = [
        (o.model_id, o.step) for o in client.get_run(rid).outputs.model_outputs
    ]
    lm = client.get_logged_model(info.model_id)
    out["ours_logged"] = [str(lm.status), lm.source_run_id, lm.name, lm.params,
                          [(x.key, x.value, x.model_id) for x in lm.metrics]]
    out["ours_location"] = lm.artifact_location
    found = client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string="name = 'model'")
    out["ours_found"] = [x.model_id for x in found]
    out["mlflow_lists_ours"] = sorted(
        f.path for f in client.list_artifacts(rid, "model"))
    out["mlflow_loads_ours_id"] = mlflow.pyfunc.load_model(info.model_uri).predict(X).tolist()
    out["mlflow_loads_ours_run"] = mlflow.pyfunc.load_model(
        f"runs:/{rid}/model").predict(X).tolist()
    mv = mlflow.register_model(f"runs:/{rid}/model", "ours")
    # (mlflow's ModelVersion drops model_id: read it back with our client)
    ours_v2 = mlops.RegistryClient().get_model_version("ours", mv.version)
    out["mlflow_registers_ours"] = [mv.version, mv.source, ours_v2.model_id, ours_v2.run_id]
    out["mlflow_loads_ours_registry"] = mlflow.pyfunc.load_model("models:/ours/1").predict(
        X).tolist()
    out["mlflow_sig_cols"] = mlflow.models.get_model_info(info.model_uri).signature.inputs.input_names()
    out["ours_loads_mlflow_registered"] = mlops.load_model("models:/ours/2").predict(X).tolist()

    # logged by mlflow (logged models, skops / pickle / cloudpickle), loaded by jupyter-mlops
    uris = {}
    for fmt in ("skops", "pickle", "cloudpickle"):
        with mlflow.start_run() as r:
            extra = {"skops_trusted_types": ["sklearn.tree._tree.Tree"]} if fmt == "skops" else {}
            mlflow.sklearn.log_model(
                m, name="m", serialization_format=fmt, pip_requirements=REQS, **extra)
        uris[fmt] = f"runs:/{r.info.run_id}/m"
        out["theirs_outputs_" + fmt] = len(client.get_run(r.info.run_id).outputs.model_outputs)
        out["ours_loads_" + fmt] = mlops.load_model(uris[fmt]).predict(X).tolist()
    mv = mlflow.register_model(uris["skops"], "theirs")
    MlflowClient().set_registered_model_alias("theirs", "champion", mv.version)
    out["ours_loads_alias"] = mlops.load_model("models:/theirs@champion").predict(X).tolist()
    c = mlops.RegistryClient()
    out["our_client_aliases"] = c.get_registered_model("theirs").aliases
    out["our_client_versions"] = [v.version for v in c.search_model_versions("name = 'theirs'")]
    print("RESULT " + json.dumps(out))
    """
)


def test_models_load_both_ways_between_mlflow_and_mlops(jupyter_server_process, tmp_path):
    server = jupyter_server_process()
    out = run_driver(server, tmp_path, BOTH_WAYS)
    expected = [0, 1, 0, 1]
    mid = out["ours_model_id"]
    assert out["ours_version"] == "1"
    assert out["ours_outputs"] == [[mid, 0]]
    status, source_run, name, params, metrics = out["ours_logged"]
    assert status.endswith("READY")
    assert (source_run, name, params) == (out["ours_run"], "model", {"n_estimators": "5"})
    assert metrics == [["acc", 1.0, mid]]
    assert out["ours_location"].endswith(f"/models/{mid}/artifacts")
    assert out["ours_found"] == [mid]
    assert "model/MLmodel" in out["mlflow_lists_ours"]
    assert out["mlflow_loads_ours_id"] == expected
    assert out["mlflow_loads_ours_run"] == expected
    assert out["mlflow_registers_ours"] == ["2", f"models:/{mid}", mid, out["ours_run"]]
    assert out["ours_loads_mlflow_registered"] == expected
    assert out["mlflow_loads_ours_registry"] == expected
    assert out["mlflow_sig_cols"] == ["a", "b"]
    for fmt in ("skops", "pickle", "cloudpickle"):
        assert out["ours_loads_" + fmt] == expected, fmt
        assert out["theirs_outputs_" + fmt] == 1, fmt
    assert out["ours_loads_alias"] == expected
    assert out["our_client_aliases"] == {"champion": "1"}
    assert out["our_client_versions"] == ["1"]
