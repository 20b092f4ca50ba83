"""A project run on a Kubernetes training target (``jupyter mlops run --target NAME``,
``mlops.projects.run(target=...)``, ``mlops.jobs.submit(project_dir)``): a TrainJob whose
replica runs the entry point's command. The fake Kubernetes API (tests/hub/fakek8s.py) with
the fake Trainer controller (tests/jobs/kubecontrollers.py) runs the pod's real command as a
local process; the run is compared with what the official ``mlflow run`` records for the
same project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from projhelpers import MLPROJECT, REPO, make_project

TESTS = Path(__file__).resolve().parents[1]
for _folder in ("hub", "jobs"):
    if str(TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(TESTS / _folder))

import kubecontrollers  # noqa: E402
from fakek8s import FakeKubernetes  # noqa: E402

from jupyter_mlops.jobs.client import build_spec  # noqa: E402
from jupyter_mlops.jobs.service import TrainingService  # noqa: E402
from jupyter_mlops.tracking import open_store  # noqa: E402
from jupyter_mlops.tracking.errors import TrackingError  # noqa: E402

IMAGE = "registry.test/train:1"
DOCKER_IMAGE = "registry.test/churn-env:3"
#: Tags whose values differ between two runs by nature, or by where they ran.
DIFFERENT = {"mlflow.runName", "mlflow.project.backend"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def k8s(tmp_path_factory: pytest.TempPathFactory):
    k = FakeKubernetes(Path(tmp_path_factory.mktemp("k8s")))
    k.start()
    kubecontrollers.install(k)
    try:
        yield k
    finally:
        k.stop()


def _target(k8s: FakeKubernetes) -> dict:
    return {"kind": "trainjob", "api_url": k8s.url, "namespace": "team-a", "image": IMAGE}


def _env(tmp_path: Path, k8s: FakeKubernetes) -> dict[str, str]:
    """No tracking variables of ours; the server's configuration (its targets) in a
    config directory the command reads as a server would."""
    conf = tmp_path / "jupyter-config"
    conf.mkdir(exist_ok=True)
    (conf / "jupyter_server_config.json").write_text(
        json.dumps({"TrainingService": {"targets": {"tj": _target(k8s)}}})
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_", "JPY_"))
    }
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        JUPYTER_CONFIG_DIR=str(conf),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
    )
    return env


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _trainjob(k8s: FakeKubernetes, run_id: str) -> dict:
    return next(
        b
        for b in k8s.created
        if b.get("kind") == "TrainJob" and run_id[:8] in b["metadata"]["name"]
    )


def test_a_project_runs_as_a_trainjob_recorded_as_mlflow_run_records_it(
    tmp_path: Path, k8s: FakeKubernetes
) -> None:
    project = make_project(tmp_path / "churn")
    env = _env(tmp_path, k8s)
    args = [str(project), "-e", "main", "-P", "alpha=0.25", "-P", "extra=x y"]
    ours_db = f"sqlite:///{tmp_path / 'ours.db'}"
    out = _cli(
        ["run", *args, "--target", "tj", "--experiment-name", "ours", "--tracking-uri", ours_db],
        {**env, "PROJECT_TEST_CLIENT": "mlops"},
        tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # the entry point's output, from the TrainJob's pod, in the terminal
    assert "first line of train.py" in out.stdout
    assert "python train.py --alpha 0.25 --epochs 3 --label 'a b' --extra 'x y'" in out.stdout

    peer_db = f"sqlite:///{tmp_path / 'peer.db'}"
    theirs = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", *args, "--env-manager", "local"]
        + ["--experiment-name", "peer"],
        env={
            **env,
            "MLFLOW_TRACKING_URI": peer_db,
            "PROJECT_TEST_CLIENT": "none",
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert theirs.returncode == 0, theirs.stderr[-3000:]
    from mlflow import MlflowClient

    peer_client = MlflowClient(peer_db)
    (peer,) = peer_client.search_runs([peer_client.get_experiment_by_name("peer").experiment_id])

    store = open_store(ours_db)
    try:
        exp = store.get_experiment_by_name("ours")
        runs, _ = store.search_runs([exp.experiment_id], "", "ACTIVE_ONLY", 10)
        assert len(runs) == 1
        mine = runs[0]
        assert mine.info.status == "FINISHED"
        assert (
            mine.data.params
            == peer.data.params
            == {
                "alpha": "0.25",
                "epochs": "3",
                "label": "'a b'",
                "extra": "'x y'",
            }
        )
        theirs_tags = {k: v for k, v in peer.data.tags.items() if k.startswith("mlflow.")}
        mine_tags = {k: v for k, v in mine.data.tags.items() if k.startswith("mlflow.")}
        assert set(mine_tags) == set(theirs_tags), (mine_tags, theirs_tags)
        for key, value in theirs_tags.items():
            if key not in DIFFERENT:
                assert mine_tags[key] == value, key
        assert mine_tags["mlflow.source.type"] == "PROJECT"
        assert mine_tags["mlflow.project.backend"] == "trainjob"
        assert mine.data.tags["mlops.job.target"] == "tj"
        # the entry point's mlops.log_metric went to the run, from the pod
        assert mine.data.metrics["loss"].step == 2
        run_id = mine.info.run_id
    finally:
        store.close()
    tj = _trainjob(k8s, run_id)
    assert tj["spec"]["trainer"]["image"] == IMAGE  # a python_env project: the target's image

    # a target that is not configured is refused naming the ones that are; nothing is made
    out = _cli(
        ["run", str(project), "--target", "nope", "--experiment-name", "nowhere"]
        + ["--tracking-uri", ours_db],
        env,
        tmp_path,
    )
    assert out.returncode == 1
    assert "Unknown target 'nope'; configured targets: 'local', 'tj'" in out.stderr
    store = open_store(ours_db)
    try:
        assert store.get_experiment_by_name("nowhere") is None
    finally:
        store.close()
    # --target local is the local runner, unchanged
    out = _cli(
        ["run", str(project), "--target", "local", "--env-manager", "local"]
        + ["--experiment-name", "here", "--tracking-uri", ours_db],
        {**env, "PROJECT_TEST_CLIENT": "none"},
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    store = open_store(ours_db)
    try:
        exp = store.get_experiment_by_name("here")
        (here,), _ = store.search_runs([exp.experiment_id], "", "ACTIVE_ONLY", 10)
        assert here.data.tags["mlflow.project.backend"] == "local"
        assert "mlops.job" not in here.data.tags
    finally:
        store.close()


DOCKER_MLPROJECT = MLPROJECT.replace(
    "python_env: python_env.yaml", f"docker_env:\n  image: {DOCKER_IMAGE}"
)


async def test_a_docker_env_project_runs_in_its_image_from_the_python_api(
    tmp_path: Path, k8s: FakeKubernetes
) -> None:
    """``mlops.jobs.submit(project_dir, entry_point=...)``'s spec on the training service:
    the TrainJob's image is the project's docker_env image, recorded as MLflow records a
    docker run; parameters are checked against the MLproject before anything is stored."""
    work = tmp_path / "work"
    project = make_project(work / "churn")
    (project / "MLproject").write_text(DOCKER_MLPROJECT)
    (project / "python_env.yaml").unlink()
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_", "JPY_"))
    }
    env.update(JUPYTER_MLOPS_TRACKING_URI=store.uri, PROJECT_TEST_CLIENT="none")
    svc = TrainingService(
        store, str(work), env=env, jobs_dir=str(tmp_path / "jobs"), targets={"tj": _target(k8s)}
    )
    await svc.start()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        spec = build_spec("churn", entry_point="main", params={"epochs": 2})
        assert spec["project"] == "churn" and spec["name"] == "churn"
        bad = build_spec("churn", entry_point="main", params={"alpha": "high"})
        with pytest.raises(
            TrackingError, match=r"MLproject:8: .*alpha.*expected a float, got 'high'"
        ):
            await svc.submit(spec=bad, base_dir=str(work), target="tj")
        job = await svc.submit(spec=spec, base_dir=str(work), target="tj")
        job = await svc.wait(job["job_id"], 300)
    finally:
        os.chdir(cwd)
        await svc.stop()
    try:
        log = svc.read_log(job["job_id"], 0)[0].decode()
        assert job["status"] == "SUCCEEDED", (job["reason"], log)
        assert "python train.py --alpha 0.5 --epochs 2 --label 'a b'" in log
        assert _trainjob(k8s, job["run_id"])["spec"]["trainer"]["image"] == DOCKER_IMAGE
        run = store.get_run(job["run_id"])
        tags = run.data.tags
        assert tags["mlflow.source.type"] == "PROJECT"
        assert tags["mlflow.project.entryPoint"] == "main"
        assert tags["mlflow.project.backend"] == "trainjob"
        assert tags["mlflow.project.env"] == "docker"
        assert tags["mlflow.docker.image.uri"] == DOCKER_IMAGE
        assert run.data.params == {"alpha": "0.5", "epochs": "2", "label": "'a b'"}
        exp = store.get_experiment(run.info.experiment_id)
        runs, _ = store.search_runs([exp.experiment_id], "", "ACTIVE_ONLY", 10)
        assert len(runs) == 1  # the refused submission stored nothing
    finally:
        store.close()


def test_from_a_kernel_a_git_project_goes_to_the_servers_target(
    tmp_path: Path, k8s: FakeKubernetes
) -> None:
    """In a kernel or terminal of a server (``JUPYTER_MLOPS_SERVER_URL``) the job goes to
    that server's training service and its Kubernetes target; a git URI is fetched inside
    the server's root (the server takes projects only from there) and removed after."""
    from mlflow import MlflowClient
    from projhelpers import git
    from serverproc import JupyterServerProcess

    repo = tmp_path / "repo"
    make_project(repo / "models" / "churn")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    commit = git(repo, "rev-parse", "HEAD")
    srv = JupyterServerProcess(root=tmp_path / "server")
    (srv.root / "config").mkdir(parents=True)
    (srv.root / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"TrainingService": {"targets": {"tj": _target(k8s)}}})
    )
    srv.work.mkdir(parents=True)
    srv.start()
    try:
        env = _env(tmp_path, k8s)
        env.update(
            JUPYTER_MLOPS_SERVER_URL=srv.url,
            JUPYTER_MLOPS_SERVER_TOKEN=srv.token,
            JUPYTER_MLOPS_TRACKING_URI=srv.tracking_uri,
            JUPYTER_MLOPS_TRACKING_TOKEN=srv.token,
            PROJECT_TEST_CLIENT="none",
        )
        uri = f"file://{repo}#models/churn"
        out = _cli(
            ["run", uri, "-P", "epochs=1", "--target", "tj", "--experiment-name", "kernel"],
            env,
            srv.work,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:] + srv.log()[-3000:]
        assert "first line of train.py" in out.stdout
        assert not [p.name for p in srv.work.iterdir() if p.name.startswith("mlops-project")]
        os.environ["MLFLOW_TRACKING_TOKEN"] = srv.token
        try:
            client = MlflowClient(srv.tracking_uri)
            (run,) = client.search_runs([client.get_experiment_by_name("kernel").experiment_id])
        finally:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert tags["mlflow.source.name"] == uri
        assert tags["mlflow.source.git.commit"] == commit
        assert tags["mlflow.source.git.repoURL"] == f"file://{repo}"
        assert "mlflow.source.git.branch" not in tags  # no --version: MLflow sets none
        assert tags["mlflow.project.backend"] == "trainjob"
        assert run.data.params["epochs"] == "1"
    finally:
        srv.stop()
