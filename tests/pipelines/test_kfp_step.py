"""The Kubeflow step bootstrap, run as KFP's launcher runs it: the executor's command and
args from the compiled IR, ``{{$}}`` replaced by an executor input whose artifact URIs
point into tmp_path, the executor's env, a real kernel and a real SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from pipehelpers import REPO, write, write_notebook

from jupyter_mlops.pipelines.kubeflow.compiler import KubeflowSettings, compile_pipeline
from jupyter_mlops.pipelines.kubeflow.step import local_path
from jupyter_mlops.pipelines.spec import load_pipeline


@pytest.fixture
def ws(tmp_path):
    """prep (notebook) writes data.txt; train (notebook) reads it and a workspace file,
    logs a metric without start_run and writes model.txt."""
    w = tmp_path / "ws"
    write_notebook(str(w / "prep.ipynb"), "rows = 1\n", "open('data.txt', 'w').write('x' * rows)")
    write_notebook(
        str(w / "nb" / "train.ipynb"),
        "rows = 0\nlabel = ''\nsrc = ''\n",
        """\
        import jupyter_mlops as mlops
        data = open('data.txt').read()
        extra = open('conf/extra.txt').read().strip()
        same = open(src + '/data.txt').read() == data
        mlops.log_metric('rows_seen', len(data) + rows)
        open('model.txt', 'w').write(f'{label}:{extra}:{same}')
        print('trained on', len(data), 'rows')
        """,
    )
    write(str(w / "conf" / "extra.txt"), "tuned\n")
    write(
        str(w / "p.pipeline.yaml"),
        """\
        name: KFP_Step.Test
        parameters:
          rows: {type: integer, default: 3}
          tag: {type: string, default: v1}
        steps:
          prep:
            notebook: prep.ipynb
            parameters: {rows: "{{ params.rows }}"}
            outputs: [data.txt]
          train:
            notebook: nb/train.ipynb
            depends_on: [prep]
            parameters:
              rows: "{{ params.rows }}"
              label: "model-{{ params.tag }}"
              src: "{{ steps.prep.outputs }}"
            inputs: [conf/extra.txt]
            outputs: [model.txt]
        """,
    )
    return w


def compiled(ws, store, **params):
    p = load_pipeline(str(ws / "p.pipeline.yaml"))
    exp = store.create_experiment("kfp-step")
    parent = store.create_run(exp, run_name="parent").info.run_id
    runs = {n: store.create_run(exp, run_name=n).info.run_id for n in p.steps}
    ir = compile_pipeline(
        p,
        params,
        step_run_ids=runs,
        parent_run_id=parent,
        settings=KubeflowSettings(image="img", tracking_uri=store.uri),
    )
    return ir["pipeline_spec"], runs


def launch(spec, step, executor_input, workdir):
    """What KFP's launcher does with the executor: run command + args with ``{{$}}``
    filled, in the executor's env ($$ is Kubernetes' escape of $)."""
    container = spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"]
    argv = [
        a.replace("{{$}}", json.dumps(executor_input))
        for a in container["command"] + container["args"]
    ]
    assert argv[0] == "python3"
    argv[0] = sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    env.update({e["name"]: e["value"].replace("$$", "$") for e in container["env"]})
    env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    return subprocess.run(
        [*argv, "--workdir", str(workdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def read(repo, path):
    with repo.open(path) as f:
        return f.read().decode()


def artifact(uri):
    return {"artifacts": [{"name": "a", "type": {"schemaTitle": "system.Artifact"}, "uri": uri}]}


def test_notebook_step_logs_into_its_run_receives_inputs_and_writes_outputs(ws, store, tmp_path):
    spec, runs = compiled(ws, store, rows=5, tag="v2")
    upstream = tmp_path / "minio-like" / "prep" / "data.txt"  # what prep's pod uploaded
    upstream.parent.mkdir(parents=True)
    upstream.write_text("abcd")
    out = tmp_path / "kfp" / "train" / "model_txt"
    executor_input = {
        "inputs": {
            "parameterValues": {"rows": 5, "label": "model-v2"},
            "artifacts": {"prep__data_txt": artifact(str(upstream))},
        },
        "outputs": {
            "artifacts": {"model_txt": artifact(str(out))},
            "outputFile": str(tmp_path / "kfp" / "executor_output.json"),
        },
    }
    proc = launch(spec, "train", executor_input, tmp_path / "pod")
    assert proc.returncode == 0, proc.stderr
    assert "trained on 4 rows" in proc.stdout  # the cell's output is the pod's log

    # declared output copied to the output artifact's path; the template, the workspace
    # input and the upstream output all resolved in the pod
    assert out.read_text() == "model-v2:tuned:True"
    # the metric logged without start_run landed in the step's pre-created run
    run = store.get_run(runs["train"])
    assert run.data.metrics["rows_seen"].value == 9.0
    assert run.info.status == "FINISHED"
    # the executed notebook (with the injected parameters) and the log are its artifacts
    repo = store.artifact_repo(run.info.artifact_uri)
    names = {f.path for f in repo.list()}
    assert {"output.ipynb", "step.log"} <= names
    nb = nbformat.reads(read(repo, "output.ipynb"), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "rows = 5" in injected[0].source and "label = 'model-v2'" in injected[0].source
    assert "trained on 4 rows" in read(repo, "step.log")
    # the other runs were left alone
    assert "rows_seen" not in store.get_run(runs["prep"]).data.metrics


def executor_input_for(spec, task, produced, storage):
    """What KFP's driver hands a task, from the IR alone: root input defaults and
    constants as parameter values, producers' artifact URIs as inputs, fresh URIs under
    ``storage`` as outputs (recorded in ``produced`` for the consumers)."""
    t = spec["root"]["dag"]["tasks"][task]
    roots = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    values = {}
    for name, src in t.get("inputs", {}).get("parameters", {}).items():
        values[name] = (
            roots[src["componentInputParameter"]]["defaultValue"]
            if "componentInputParameter" in src
            else src["runtimeValue"]["constant"]
        )
    arts = {
        name: artifact(
            produced[
                (
                    src["taskOutputArtifact"]["producerTask"],
                    src["taskOutputArtifact"]["outputArtifactKey"],
                )
            ]
        )
        for name, src in t.get("inputs", {}).get("artifacts", {}).items()
    }
    outs = {}
    comp = spec["components"][t["componentRef"]["name"]]
    for key in comp.get("outputDefinitions", {}).get("artifacts", {}):
        uri = produced[(task, key)] = str(storage / task / key)
        outs[key] = artifact(uri)
    return {
        "inputs": {"parameterValues": values, "artifacts": arts},
        "outputs": {"artifacts": outs},
    }


def test_two_pods_hand_data_over_through_artifacts(ws, store, tmp_path):
    """prep's pod, then train's, each given what KFP's driver would derive from the IR."""
    spec, runs = compiled(ws, store, rows=2)
    produced = {}
    for task in ("prep", "train"):
        proc = launch(
            spec,
            task,
            executor_input_for(spec, task, produced, tmp_path / "root"),
            tmp_path / f"pod-{task}",
        )
        assert proc.returncode == 0, proc.stderr
    assert Path(produced[("prep", "data_txt")]).read_text() == "xx"
    assert Path(produced[("train", "model_txt")]).read_text() == "model-v1:tuned:True"
    assert store.get_run(runs["train"]).data.metrics["rows_seen"].value == 4.0
    assert {store.get_run(r).info.status for r in runs.values()} == {"FINISHED"}


def test_failing_notebook_exits_nonzero_with_the_reason_and_a_failed_run(ws, store, tmp_path):
    write_notebook(str(ws / "prep.ipynb"), "rows = 1\n", "raise ValueError('no data today')")
    spec, runs = compiled(ws, store)
    out = tmp_path / "out" / "data.txt"
    executor_input = {
        "inputs": {"parameterValues": {"rows": 3}},
        "outputs": {"artifacts": {"data_txt": artifact(str(out))}},
    }
    proc = launch(spec, "prep", executor_input, tmp_path / "pod")
    assert proc.returncode == 1
    assert "step 'prep' failed" in proc.stderr and "ValueError: no data today" in proc.stderr
    assert not out.exists()
    run = store.get_run(runs["prep"])
    assert run.info.status == "FAILED"
    assert "no data today" in run.data.tags["mlops.pipeline.error"]
    repo = store.artifact_repo(run.info.artifact_uri)
    nb = nbformat.reads(read(repo, "output.ipynb"), as_version=4)  # kept, failed or not
    assert any(o.get("ename") == "ValueError" for c in nb.cells for o in c.get("outputs", []))


def test_missing_declared_output_and_missing_input_artifact_fail_the_step(ws, store, tmp_path):
    write_notebook(str(ws / "prep.ipynb"), "rows = 1\n", "print('forgot to write')")
    spec, runs = compiled(ws, store)
    proc = launch(
        spec,
        "prep",
        {
            "inputs": {"parameterValues": {"rows": 3}},
            "outputs": {"artifacts": {"data_txt": artifact(str(tmp_path / "o"))}},
        },
        tmp_path / "pod1",
    )
    assert proc.returncode == 1
    assert "declared output(s) not written: data.txt" in proc.stderr

    gone = tmp_path / "never-uploaded"
    proc = launch(
        spec,
        "train",
        {
            "inputs": {
                "parameterValues": {"rows": 3, "label": "model-v1"},
                "artifacts": {"prep__data_txt": artifact(str(gone))},
            },
            "outputs": {"artifacts": {"model_txt": artifact(str(tmp_path / "m"))}},
        },
        tmp_path / "pod2",
    )
    assert proc.returncode == 1
    assert "output 'data.txt' of step 'prep' was not received" in proc.stderr
    assert store.get_run(runs["train"]).info.status == "FAILED"


def test_script_step_parameters_args_env_and_timeout(store, tmp_path):
    w = tmp_path / "ws"
    write(
        str(w / "run.py"),
        """\
        import os, sys, time
        print("argv", sys.argv[1:])
        here = os.environ["WHERE"] == os.environ["JUPYTER_MLOPS_PIPELINE_DIR"]
        print("env", os.environ["GREETING"], here)
        if "--nap=true" in sys.argv:
            time.sleep(120)
        """,
    )
    write(
        str(w / "s.pipeline.yaml"),
        """\
        name: scripted
        parameters: {who: world, nap: false}
        steps:
          hello:
            script: run.py
            args: [--at, "{{ run.id }}"]
            parameters: {nap: "{{ params.nap }}", n: 2}
            env: {GREETING: "hi {{ params.who }} $HOME", WHERE: "{{ pipeline.dir }}"}
            timeout: 2
        """,
    )
    p = load_pipeline(str(w / "s.pipeline.yaml"))
    exp = store.create_experiment("kfp-script")
    parent = store.create_run(exp).info.run_id
    rid = store.create_run(exp).info.run_id
    ir = compile_pipeline(
        p,
        {},
        step_run_ids={"hello": rid},
        parent_run_id=parent,
        settings=KubeflowSettings(image="img", tracking_uri=store.uri),
    )
    spec = ir["pipeline_spec"]
    proc = launch(
        spec, "hello", {"inputs": {"parameterValues": {"nap": False, "n": 2}}}, tmp_path / "pod1"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"argv ['--at', '{parent}', '--nap=false', '--n=2']" in proc.stdout
    assert "env hi world $HOME True" in proc.stdout
    assert store.get_run(rid).info.status == "FINISHED"

    proc = launch(
        spec, "hello", {"inputs": {"parameterValues": {"nap": True, "n": 2.0}}}, tmp_path / "pod2"
    )
    assert proc.returncode == 1
    assert "timed out after 2 s" in proc.stderr
    assert store.get_run(rid).info.status == "FAILED"


def test_bad_executor_input_is_a_usage_error():
    from jupyter_mlops.pipelines.kubeflow.step import main

    assert main(["--archive", "", "--executor_input", "{not json", "--config", "{}"]) == 2


def test_artifact_uris_map_to_the_launchers_mounts():
    assert (
        local_path("minio://mlpipeline/v2/artifacts/p/r/t/out")
        == "/minio/mlpipeline/v2/artifacts/p/r/t/out"
    )
    assert local_path("gs://bucket/a/b") == "/gcs/bucket/a/b"
    assert local_path("s3://bucket/a") == "/s3/bucket/a"
    assert local_path("/tmp/local/out") == "/tmp/local/out"
