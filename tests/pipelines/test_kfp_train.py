"""A pipeline's ``train:`` step compiled for Kubeflow Pipelines: a launcher step whose container
creates the job's TrainJob and waits for it. The compiled spec is accepted by the fake KFP API
server (kfpfake.py); the launcher's own command then runs as a process against the fake
Kubernetes API (tests/hub/fakek8s.py) with the fake Trainer controller (tests/jobs), whose pods
the fake kubelet runs: the training logs into the step's run, a failing job fails the step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS / "hub"))
sys.path.insert(0, str(TESTS / "jobs"))

import kubecontrollers  # noqa: E402
from fakek8s import FakeKubernetes  # noqa: E402
from kfpfake import FakeKfp  # noqa: E402

from jupyter_mlops.pipelines.kubeflow.compiler import (  # noqa: E402
    CompileError,
    KubeflowSettings,
    check_references,
    compile_pipeline,
)
from jupyter_mlops.pipelines.spec import load_pipeline  # noqa: E402
from jupyter_mlops.tracking import open_store  # noqa: E402

TOKEN = "tok-train"

TRAIN = """\
import os, sys
import jupyter_mlops as mlops
rank = int(os.environ["RANK"])
print("rank", rank, "of", os.environ["WORLD_SIZE"], "lr", sys.argv[1:], flush=True)
for step in range(3):
    mlops.log_metric("acc", 0.5 + 0.1 * step, step=step)
if os.environ.get("FAIL_RANK") == str(rank):
    sys.exit(4)
"""


@pytest.fixture(scope="module")
def k8s(tmp_path_factory):
    k = FakeKubernetes(Path(tmp_path_factory.mktemp("k8s")))
    k.start()
    kubecontrollers.install(k)
    try:
        yield k
    finally:
        k.stop()


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "ddp.job.yaml").write_text(
        "name: ddp\nframework: pytorch\nscript: train.py\nnodes: 2\nparams:\n  lr: 0.1\n"
    )
    (tmp_path / "p.pipeline.yaml").write_text(
        "name: trainpipe\n"
        "parameters:\n  lr: 0.01\n"
        "steps:\n"
        "  prep:\n    script: train.py\n"
        "  fit:\n    train: ddp.job.yaml\n    depends_on: [prep]\n"
        "    parameters: {lr: '{{ params.lr }}'}\n"
        "    resources: {cpu: 1}\n"
    )
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield tmp_path, store
    store.close()


def compiled(tmp_path: Path, store, env: dict | None = None, **settings) -> tuple[dict, dict]:
    exp = store.create_experiment(f"kfp-train-{uuid.uuid4().hex[:8]}")
    runs = {s: store.create_run(exp, run_name=s).info.run_id for s in ("prep", "fit")}
    p = load_pipeline(str(tmp_path / "p.pipeline.yaml"))
    if env:
        p.steps["fit"].env.update(env)
    cfg = KubeflowSettings(image="registry.test/train:1", tracking_uri=store.uri, **settings)
    ir = compile_pipeline(p, {"lr": 0.02}, step_run_ids=runs, parent_run_id="parent", settings=cfg)
    return ir, runs


def launcher_of(ir: dict) -> dict:
    execs = ir["pipeline_spec"]["deploymentSpec"]["executors"]
    return execs["exec-fit"]["container"]


def run_launcher(container: dict, k8s, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {e["name"]: e["value"].replace("$$", "$") for e in container.get("env", [])}
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
        JUPYTER_MLOPS_KUBE_API_URL=k8s.url,
        JUPYTER_MLOPS_KUBE_NAMESPACE="team-a",
    )
    return subprocess.run(
        container["command"] + container["args"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_train_step_compiles_to_a_launcher_that_kfp_accepts(ws):
    tmp_path, store = ws
    ir, runs = compiled(tmp_path, store, train_queue="team-q")
    spec = ir["pipeline_spec"]
    assert check_references(spec) == []
    c = launcher_of(ir)
    assert c["command"] == ["python3", "-m", "jupyter_mlops.jobs.launcher"]
    tj = json.loads(c["args"][1])
    assert tj["kind"] == "TrainJob" and tj["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    assert tj["metadata"]["name"] == f"ddp-{runs['fit'][:8]}"
    assert tj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-q"
    assert tj["spec"]["runtimeRef"]["name"] == "torch-distributed"
    trainer = tj["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["image"] == "registry.test/train:1"
    assert trainer["resourcesPerNode"]["requests"] == {"cpu": "1"}  # the step's resources
    env = {e["name"]: e["value"] for e in trainer["env"]}
    assert env["JUPYTER_MLOPS_JOB_RUN_ID"] == runs["fit"]  # the training logs into the step
    assert json.loads(env["JUPYTER_MLOPS_PARAMS"]) == {"lr": 0.02}  # {{ params.lr }} filled
    assert env["JUPYTER_MLOPS_PIPELINE_STEP"] == "fit"
    # the DAG keeps its order, and the KFP API server takes the run
    assert spec["root"]["dag"]["tasks"]["fit"]["dependentTasks"] == ["prep"]
    kfp = FakeKfp({TOKEN: "team-a"}).start()
    try:
        from jupyter_mlops.pipelines.kubeflow.client import KfpClient

        client = KfpClient("cluster", kfp.url, "team-a", token=lambda: TOKEN)
        exp = client.experiment_id("train-steps")
        run = client.create_run({"display_name": "r", "experiment_id": exp, "pipeline_spec": spec})
        assert client.get_run(run["run_id"])["state"] == "PENDING"
    finally:
        kfp.stop()


def test_train_step_errors_name_the_step_and_field(ws):
    tmp_path, store = ws
    (tmp_path / "ddp.job.yaml").write_text(
        "name: ddp\nframework: tensorflow\nscript: train.py\nnodes: 2\nparams:\n  lr: 0.1\n"
    )
    with pytest.raises(CompileError, match=r"step 'fit': .*runs pytorch jobs, not 'tensorflow'"):
        compiled(tmp_path, store)
    (tmp_path / "ddp.job.yaml").write_text(
        "name: ddp\nframework: pytorch\nscript: train.py\nparams:\n  lr: 0.1\n"
    )
    (tmp_path / "p.pipeline.yaml").write_text(
        "name: trainpipe\nparameters:\n  lr: 0.01\nsteps:\n  fit:\n    train: ddp.job.yaml\n"
    )
    with pytest.raises(CompileError, match=r"step 'fit': .*over 100 bytes \(max_embedded_bytes\)"):
        compiled(tmp_path, store, max_embedded_bytes=100)


@pytest.mark.timeout(600)
def test_the_launcher_runs_the_trainjob_to_its_end(ws, k8s):
    tmp_path, store = ws
    ir, runs = compiled(tmp_path, store)
    r = run_launcher(launcher_of(ir), k8s)
    assert r.returncode == 0, r.stdout + r.stderr
    name = f"ddp-{runs['fit'][:8]}"
    assert f"created TrainJob team-a/{name}" in r.stdout
    assert f"TrainJob team-a/{name} completed" in r.stdout
    assert "[rank 1] rank 1 of 2" in r.stdout  # every node's log, in the step's log
    tj = k8s.find(kubecontrollers.TRAINJOBS, "team-a", name)
    assert tj is not None and any(c["type"] == "Complete" for c in tj["status"]["conditions"])
    history, _ = store.get_metric_history(runs["fit"], "acc")
    assert [m.value for m in history] == pytest.approx([0.5, 0.6, 0.7])  # rank 0's


@pytest.mark.timeout(600)
def test_a_failing_trainjob_fails_the_launcher_step(ws, k8s):
    tmp_path, store = ws
    ir, _runs = compiled(tmp_path, store, env={"FAIL_RANK": "1"})
    r = run_launcher(launcher_of(ir), k8s)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "failed: FailedJobs" in r.stdout


def test_a_kubeflow_targets_config_sets_the_runtime_and_queue_of_train_steps(ws):
    """``train_runtime``, ``train_runtime_kind`` and ``train_queue`` of a pipeline target
    (``c.PipelineService.kubeflow_targets``) reach the TrainJob its ``train:`` steps create;
    a wrong one is refused naming the target and the field."""
    from jupyter_mlops.pipelines.kubeflow.target import (
        KubeflowTarget,
        TargetConfigError,
        parse_target,
    )

    tmp_path, store = ws
    raw = {
        "endpoint": "http://kfp.test",
        "image": "registry.test/train:1",
        "tracking_uri": store.uri,
        "token": "t",
        "train_runtime": "torch-gpu",
        "train_runtime_kind": "TrainingRuntime",
        "train_queue": "vision-q",
    }
    settings = KubeflowTarget(parse_target("gpu", raw)).settings()
    exp = store.create_experiment(f"kfp-train-{uuid.uuid4().hex[:8]}")
    runs = {s: store.create_run(exp, run_name=s).info.run_id for s in ("prep", "fit")}
    p = load_pipeline(str(tmp_path / "p.pipeline.yaml"))
    ir = compile_pipeline(p, {}, step_run_ids=runs, parent_run_id="parent", settings=settings)
    tj = json.loads(launcher_of(ir)["args"][1])
    assert tj["spec"]["runtimeRef"] == {
        "name": "torch-gpu",
        "kind": "TrainingRuntime",
        "apiGroup": "trainer.kubeflow.org",
    }
    assert tj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "vision-q"
    # unset: the defaults, no queue label
    plain = {k: v for k, v in raw.items() if not k.startswith("train_")}
    settings = KubeflowTarget(parse_target("gpu", plain)).settings()
    ir = compile_pipeline(p, {}, step_run_ids=runs, parent_run_id="parent", settings=settings)
    tj = json.loads(launcher_of(ir)["args"][1])
    assert tj["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert tj["spec"]["runtimeRef"]["kind"] == "ClusterTrainingRuntime"
    assert "kueue.x-k8s.io/queue-name" not in tj["metadata"]["labels"]
    for key, value, says in (
        ("train_runtime_kind", "Runtime", "ClusterTrainingRuntime, TrainingRuntime"),
        ("train_queue", "Team Q", "not a Kubernetes object name"),
        ("train_runtime", 3, "train_runtime"),
    ):
        with pytest.raises(TargetConfigError) as e:
            parse_target("gpu", {**raw, key: value})
        assert "'gpu'" in str(e.value) and key in str(e.value) and says in str(e.value)
