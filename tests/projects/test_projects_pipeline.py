"""A ``project:`` step: checked against its MLproject at validation (lines of both files),
run locally into the step's tracked run with parameters from the pipeline and upstream
outputs, and compiled to KFP IR (the project's files embedded, its docker_env image) that
the fake KFP API accepts and whose executor runs the entry point as a pod would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kfpfake import FakeKfp
from projhelpers import REPO, make_project

from jupyter_mlops.pipelines.kubeflow.client import KfpClient
from jupyter_mlops.pipelines.kubeflow.compiler import KubeflowSettings, compile_pipeline
from jupyter_mlops.pipelines.spec import PipelineInvalid, load_pipeline
from jupyter_mlops.tracking import open_store

PIPELINE = """\
name: churn-pipe
parameters:
  alpha: {type: float, default: 0.3}
steps:
  prep:
    script: prep.py
    outputs: [data.csv]
  train:
    project: churn
    entry_point: main
    env_manager: local
    parameters: {alpha: "{{ params.alpha }}", epochs: 2}
    depends_on: [prep]
  where:
    project: churn
    entry_point: where
    env_manager: local
    parameters: {out: "{{ steps.prep.outputs }}/data.csv"}
    depends_on: [prep]
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    make_project(tmp_path / "churn")
    (tmp_path / "prep.py").write_text("open('data.csv', 'w').write('rows\\n')\n")
    (tmp_path / "p.pipeline.yaml").write_text(PIPELINE)
    return tmp_path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
    )
    return env


def test_validation_names_both_files(ws: Path) -> None:
    bad = PIPELINE.replace("epochs: 2}", 'epochs: "many"}').replace(
        "    parameters: {out:", "    parameters: {nothing:"
    )
    (ws / "bad.pipeline.yaml").write_text(bad)
    with pytest.raises(PipelineInvalid) as e:
        load_pipeline(str(ws / "bad.pipeline.yaml"))
    text = [str(i) for i in e.value.issues]
    assert any(
        t.startswith(f"{ws / 'bad.pipeline.yaml'}:12: steps.train.parameters.epochs:")
        and "expected an int, got 'many' (churn/MLproject:8)" in t
        for t in text
    ), text
    assert any(
        "steps.where.parameters" in t
        and "'out' of entry point 'where' has no default" in t
        and "(churn/MLproject:13)" in t
        for t in text
    ), text
    (ws / "bad2.pipeline.yaml").write_text(PIPELINE.replace("entry_point: where", "entry_point: x"))
    with pytest.raises(
        PipelineInvalid, match=r":16: steps.where.entry_point: .*no entry point 'x'"
    ):
        load_pipeline(str(ws / "bad2.pipeline.yaml"))


def test_project_step_runs_locally_into_the_step_run(ws: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'mlops.db'}"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_mlops.cli",
            "pipeline",
            "run",
            str(ws / "p.pipeline.yaml"),
            "--database-url",
            db,
            "--runs-dir",
            str(tmp_path / "runs"),
            "--root",
            str(ws),
        ],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    store = open_store(db)
    exp = store.get_experiment_by_name("churn-pipe")
    runs, _ = store.search_runs([exp.experiment_id], "", "ACTIVE_ONLY", 100)
    by_step = {r.data.tags.get("mlops.pipeline.step"): r for r in runs}
    train = by_step["train"]
    assert train.info.status == "FINISHED"
    assert train.data.tags["mlflow.source.type"] == "PROJECT"
    assert train.data.tags["mlflow.project.entryPoint"] == "main"
    assert train.data.tags["mlflow.source.name"] == str(ws / "churn")
    assert train.data.params["alpha"] == "0.3" and train.data.params["epochs"] == "2"
    assert train.data.params["label"] == "'a b'"  # the project's default, as MLflow logs it
    assert train.data.metrics["loss"].step == 1  # mlops.* in the entry point: the step's run
    where = by_step["where"]
    assert where.info.status == "FINISHED"
    # the path parameter came from prep's output, in the step's working directory
    produced = Path(where.data.params["out"])
    assert produced.name == "data.csv" and produced.read_text() == sys.prefix


def test_compiled_for_kubeflow_and_run_as_a_pod(ws: Path, tmp_path: Path) -> None:
    (ws / "churn" / "MLproject").write_text(
        (ws / "churn" / "MLproject")
        .read_text()
        .replace("python_env: python_env.yaml", "docker_env:\n  image: reg.example/churn:1")
    )
    p = load_pipeline(str(ws / "p.pipeline.yaml"))
    db = f"sqlite:///{tmp_path / 'kfp.db'}"
    store = open_store(db)
    exp = store.create_experiment("kfp-project")
    parent = store.create_run(exp, run_name="parent").info.run_id
    runs = {n: store.create_run(exp, run_name=n).info.run_id for n in p.steps}
    ir = compile_pipeline(
        p,
        {"alpha": 0.6},
        step_run_ids=runs,
        parent_run_id=parent,
        settings=KubeflowSettings(image="reg.example/mlops-step:1", tracking_uri=db),
    )
    spec = ir["pipeline_spec"]
    executors = spec["deploymentSpec"]["executors"]
    train = executors["exec-train"]["container"]
    assert train["image"] == "reg.example/churn:1"  # the project's docker_env image
    assert executors["exec-prep"]["container"]["image"] == "reg.example/mlops-step:1"
    config = json.loads(train["args"][train["args"].index("--config") + 1])
    assert (config["kind"], config["path"], config["entry_point"]) == ("project", "churn", "main")
    assert spec["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]["alpha"] == {
        "componentInputParameter": "alpha"
    }

    kfp = FakeKfp({"t0ken": "team-a"}).start()
    try:
        client = KfpClient("cluster", kfp.url, "team-a", token=lambda: "t0ken")
        created = client.create_run(
            {
                "display_name": "churn-pipe",
                "experiment_id": client.experiment_id("churn"),
                "pipeline_spec": ir,
            }
        )
        assert created["state"] in ("PENDING", "RUNNING"), created
    finally:
        kfp.stop()

    # what KFP's launcher does in the pod: the executor's command with {{$}} filled
    upstream = tmp_path / "object-store" / "prep" / "data.csv"  # what prep's pod uploaded
    upstream.parent.mkdir(parents=True)
    upstream.write_text("rows\n")
    art = {
        "artifacts": [
            {"name": "a", "type": {"schemaTitle": "system.Artifact"}, "uri": str(upstream)}
        ]
    }
    executor_input = {
        "inputs": {
            "parameterValues": {"alpha": 0.6, "epochs": 2},
            "artifacts": {"prep__data_csv": art},
        },
        "outputs": {},
    }
    argv = [
        a.replace("{{$}}", json.dumps(executor_input)) for a in train["command"] + train["args"]
    ]
    argv[0] = sys.executable
    env = _env(tmp_path)
    env.update({e["name"]: e["value"].replace("$$", "$") for e in train["env"]})
    pod = subprocess.run(
        [*argv, "--workdir", str(tmp_path / "pod")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pod.returncode == 0, pod.stdout[-3000:] + pod.stderr[-3000:]
    assert "first line of train.py" in pod.stdout
    run = store.get_run(runs["train"])
    assert run.data.tags["mlflow.project.entryPoint"] == "main"
    assert run.data.params["alpha"] == "0.6"
    assert run.data.metrics["loss"].step == 1


def test_unknown_keys_outside_project_steps(ws: Path) -> None:
    (ws / "x.pipeline.yaml").write_text(
        textwrap.dedent(
            """\
            name: x
            steps:
              prep:
                script: prep.py
                entry_point: main
            """
        )
    )
    with pytest.raises(
        PipelineInvalid, match=r":5: steps.prep.entry_point: 'entry_point' is for project steps"
    ):
        load_pipeline(str(ws / "x.pipeline.yaml"))
