"""``jupyter mlops run`` end to end against a real server (one per module), compared with
the official ``mlflow run`` on the same project: the same tags and parameters, the entry
point's ``mlops.*`` and ``mlflow.*`` calls in that run, environments made once and reused,
git repositories by ``file://`` URL with ``#subdir`` and ``--version``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from projhelpers import git, make_project, mlops_run, run_env
from serverproc import JupyterServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = JupyterServerProcess(root=tmp_path_factory.mktemp("projects-server")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("projects-work")


@pytest.fixture(scope="module")
def env(server: JupyterServerProcess, workspace: Path) -> dict[str, str]:
    return run_env(server.tracking_uri, server.token, workspace / "data")


@pytest.fixture(scope="module")
def client(server: JupyterServerProcess):
    from mlflow import MlflowClient

    os.environ["MLFLOW_TRACKING_TOKEN"] = server.token
    yield MlflowClient(server.tracking_uri)
    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)


@pytest.fixture(scope="module")
def project(workspace: Path) -> Path:
    return make_project(workspace / "churn")


def _run_id(client, experiment: str) -> str:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, runs
    return runs[0].info.run_id


#: Tags whose values differ between two runs of the same project by nature.
PER_RUN = {"mlflow.runName"}


def test_tags_and_params_match_mlflow_run(client, project: Path, env: dict[str, str]) -> None:
    args = [str(project), "-e", "main", "-P", "alpha=0.25", "-P", "extra=x y"]
    common = ["--env-manager", "local"]
    theirs = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", *args, *common, "--experiment-name", "peer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert theirs.returncode == 0, theirs.stderr[-3000:]
    ours = mlops_run([*args, *common, "--experiment-name", "ours"], env)
    assert ours.returncode == 0, ours.stderr[-3000:]
    assert "first line of train.py" in ours.stdout

    peer = client.get_run(_run_id(client, "peer"))
    mine = client.get_run(_run_id(client, "ours"))
    assert peer.info.status == mine.info.status == "FINISHED"
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
    assert set(mine.data.tags) == set(peer.data.tags), (mine.data.tags, peer.data.tags)
    for key, value in peer.data.tags.items():
        if key not in PER_RUN:
            assert mine.data.tags[key] == value, key
    assert mine.data.tags["mlflow.source.type"] == "PROJECT"
    assert mine.data.tags["mlflow.project.entryPoint"] == "main"
    assert mine.data.tags["mlflow.project.backend"] == "local"
    losses = client.get_metric_history(mine.info.run_id, "loss")  # mlops.* in the entry point
    assert [m.step for m in losses] == [0, 1, 2]


def test_mlflow_calls_in_the_entry_point_log_into_the_run(
    client, project: Path, env: dict[str, str]
) -> None:
    out = mlops_run(
        [str(project), "--env-manager", "local", "--experiment-name", "mlflow-calls"],
        {**env, "PROJECT_TEST_CLIENT": "mlflow"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run = client.get_run(_run_id(client, "mlflow-calls"))  # one run: the project's
    assert run.data.tags["from_mlflow"] == "yes"
    assert run.data.metrics == {"acc": 0.9}
    assert run.data.tags["mlflow.project.entryPoint"] == "main"
    assert run.info.status == "FINISHED"


def test_refused_before_anything_starts(client, project: Path, env: dict[str, str]) -> None:
    out = mlops_run([str(project), "-P", "alpha=high", "--experiment-name", "refused"], env)
    assert out.returncode == 1
    assert (
        "MLproject:7: entry_points.main.parameters.alpha: parameter 'alpha' (float): expected a float, got 'high'"
        in out.stderr
    )
    assert client.get_experiment_by_name("refused") is None  # nothing was created
    out = mlops_run([str(project), "-e", "evaluate"], env)
    assert out.returncode == 1 and "no entry point 'evaluate'" in out.stderr


def test_virtualenv_created_once_then_reused(
    client, project: Path, env: dict[str, str], workspace: Path
) -> None:
    where = workspace / "where.txt"
    where.write_text("")  # a path parameter must exist
    args = [str(project), "-e", "where", "-P", f"out={where}", "--env-manager", "virtualenv"]
    first = mlops_run([*args, "--experiment-name", "venv"], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "creating environment virtualenv-" in first.stderr
    prefix = where.read_text()
    assert prefix != sys.prefix and os.path.basename(prefix).startswith("virtualenv-")
    assert os.path.exists(prefix + ".log")  # the creation's log is kept
    marker = os.stat(os.path.join(prefix, ".mlops-ready")).st_mtime_ns

    second = mlops_run([*args, "--experiment-name", "venv"], env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "creating environment" not in second.stderr
    assert f"environment {os.path.basename(prefix)} reused" in second.stderr
    assert where.read_text() == prefix
    assert os.stat(os.path.join(prefix, ".mlops-ready")).st_mtime_ns == marker

    exp = client.get_experiment_by_name("venv")
    runs = client.search_runs([exp.experiment_id])
    assert [r.data.tags["mlflow.project.env"] for r in runs] == ["virtualenv", "virtualenv"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.params["out"] for r in runs} == {str(where)}


def test_git_repository_with_subdirectory_and_version(
    client, workspace: Path, env: dict[str, str]
) -> None:
    repo = workspace / "repo"
    make_project(repo / "models" / "churn")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "models" / "churn" / "train.py").write_text("print('feature branch')\n")
    git(repo, "commit", "-q", "-am", "second")
    git(repo, "checkout", "-q", "main")
    uri = f"file://{repo}#models/churn"

    by_commit = mlops_run(
        [uri, "--version", first, "--env-manager", "local", "--experiment-name", "git"],
        {**env, "PROJECT_TEST_CLIENT": "none"},
    )
    assert by_commit.returncode == 0, by_commit.stderr[-3000:]
    assert "first line of train.py" in by_commit.stdout
    by_branch = mlops_run(
        [uri, "-v", "feature", "--env-manager", "local", "--experiment-name", "git2"], env
    )
    assert by_branch.returncode == 0, by_branch.stderr[-3000:]
    assert "feature branch" in by_branch.stdout

    tags = client.get_run(_run_id(client, "git")).data.tags
    assert tags["mlflow.source.name"] == uri
    assert tags["mlflow.source.git.commit"] == first
    assert tags["mlflow.source.git.repoURL"] == f"file://{repo}"
    assert "mlflow.source.git.branch" not in tags
    tags = client.get_run(_run_id(client, "git2")).data.tags
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "feature")
    assert tags["mlflow.source.git.branch"] == "feature"

    missing = mlops_run([f"file://{repo}#models/nope", "--env-manager", "local"], env)
    assert missing.returncode == 1 and "Could not find subdirectory models/nope" in missing.stderr


def test_python_api_and_failures(client, project: Path, server, workspace: Path) -> None:
    import jupyter_mlops as mlops

    env_before = dict(os.environ)
    os.environ.update(
        JUPYTER_MLOPS_TRACKING_TOKEN=server.token, JUPYTER_DATA_DIR=str(workspace / "data")
    )
    try:
        lines: list[str] = []
        submitted = mlops.projects.run(
            str(project),
            "check.sh",
            parameters={"who": "api"},
            env_manager="local",
            experiment_name="api",
            synchronous=False,
            tracking_uri=server.tracking_uri,
            log_path=str(workspace / "api.log"),
            echo=lines.append,
        )
        assert submitted.wait() is True
        assert submitted.status == submitted.get_status() == "FINISHED"
        assert "shell entry point --who" in (workspace / "api.log").read_text()
        run = client.get_run(submitted.run_id)
        assert run.data.tags["mlflow.project.entryPoint"] == "check.sh"
        assert run.data.params == {"who": "api"}
        assert [f.path for f in client.list_artifacts(submitted.run_id)] == ["project.log"]

        (project / "fail.sh").write_text("echo failing; exit 3\n")
        with pytest.raises(mlops.projects.ProjectError, match="exited with status 3"):
            mlops.projects.run(
                str(project),
                "fail.sh",
                env_manager="local",
                tracking_uri=server.tracking_uri,
                experiment_name="api",
                log_path=str(workspace / "fail.log"),
                echo=lines.append,
            )
        failed = [
            r for r in client.search_runs([run.info.experiment_id]) if r.info.status == "FAILED"
        ]
        assert len(failed) == 1
        assert failed[0].data.tags["mlops.project.error"] == "the entry point exited with status 3"
    finally:
        os.environ.clear()
        os.environ.update(env_before)


def test_cancel_kills_the_command(client, project: Path, server, workspace: Path) -> None:
    import jupyter_mlops as mlops

    (project / "sleep.sh").write_text("echo sleeping; sleep 600\n")
    os.environ["JUPYTER_MLOPS_TRACKING_TOKEN"] = server.token
    try:
        submitted = mlops.projects.run(
            str(project),
            "sleep.sh",
            env_manager="local",
            synchronous=False,
            tracking_uri=server.tracking_uri,
            log_path=str(workspace / "sleep.log"),
            echo=lambda _l: None,
        )
        deadline = time.monotonic() + 120
        log = workspace / "sleep.log"
        while not log.exists() or "sleeping" not in log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        submitted.cancel()
        assert submitted.status == "KILLED"
        assert client.get_run(submitted.run_id).info.status == "KILLED"
    finally:
        os.environ.pop("JUPYTER_MLOPS_TRACKING_TOKEN", None)


def test_archive(client, project: Path, workspace: Path, env: dict[str, str]) -> None:
    import shutil

    archive = shutil.make_archive(str(workspace / "churn"), "gztar", project.parent, "churn")
    out = mlops_run(
        [
            f"{archive}#churn",
            "-e",
            "check.sh",
            "--env-manager",
            "local",
            "--experiment-name",
            "tgz",
        ],
        env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "shell entry point" in out.stdout
    tags = client.get_run(_run_id(client, "tgz")).data.tags
    assert tags["mlflow.source.name"] == f"{archive}#churn"
    assert json.dumps(tags)  # plain strings


# -- REST (the JupyterLab form's routes) ------------------------------------------------
def call(srv: JupyterServerProcess, method: str, path: str, body=None, raw: bool = False):
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(
        srv.url + "mlops/api/v1/projects" + path,
        data=data,
        method=method,
        headers={"Authorization": f"token {srv.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            text = r.read().decode()
            return r.status, (text if raw else json.loads(text)), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode()), dict(e.headers)


def test_rest_inspect_run_and_log(client, server: JupyterServerProcess) -> None:
    make_project(server.work / "rest" / "churn")
    status, body, _ = call(server, "POST", "/inspect", {"uri": "rest/churn"})
    assert status == 200, body
    eps = {e["name"]: e for e in body["project"]["entry_points"]}
    assert list(eps) == ["main", "where"]
    assert [(p["name"], p["type"], p["default"]) for p in eps["main"]["parameters"]] == [
        ("alpha", "float", 0.5),
        ("epochs", "int", 3),
        ("label", "string", "a b"),
    ]
    assert body["project"]["env"] == "python"

    status, body, _ = call(
        server, "POST", "/runs", {"uri": "rest/churn", "parameters": {"alpha": "high"}}
    )
    assert status == 400
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"].startswith("MLproject:7: entry_points.main.parameters.alpha:")

    status, body, _ = call(
        server,
        "POST",
        "/runs",
        {
            "uri": "rest/churn",
            "entry_point": "main",
            "parameters": {"alpha": 0.75, "epochs": "2"},
            "env_manager": "local",
            "experiment_name": "rest",
            "run_name": "from-the-form",
        },
    )
    assert status == 200, body
    run_id = body["run"]["run_id"]
    assert body["run"]["command"].startswith("python train.py --alpha 0.75 --epochs 2")

    text, offset, deadline = "", 0, time.monotonic() + 180
    while True:
        status, part, headers = call(server, "GET", f"/runs/{run_id}/log?offset={offset}", raw=True)
        assert status == 200
        text += part
        offset = int(headers["X-Log-Offset"])
        if headers["X-Run-Ended"] == "true":
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    assert "first line of train.py" in text and "succeeded" in text
    status, body, _ = call(server, "GET", f"/runs/{run_id}")
    assert body["run"]["status"] == "FINISHED"

    run = client.get_run(run_id)
    assert run.info.run_name == "from-the-form"
    assert run.data.params["alpha"] == "0.75"
    assert run.data.tags["mlflow.source.type"] == "PROJECT"
    assert "project.log" in [f.path for f in client.list_artifacts(run_id)]


def test_rest_refusals(server: JupyterServerProcess, workspace: Path) -> None:
    make_project(workspace / "outside")
    status, body, _ = call(server, "POST", "/inspect", {"uri": str(workspace / "outside")})
    assert status == 403 and "outside the server's root" in body["message"]
    status, body, _ = call(server, "POST", "/inspect", {"uri": f"file://{workspace}/outside"})
    assert status == 403
    status, body, _ = call(server, "POST", "/runs", {"uri": ""})
    assert status == 400 and "'uri' is required" in body["message"]
    status, body, _ = call(server, "POST", "/runs", {"uri": "rest/churn", "env_manager": "pip"})
    assert status == 400 and "env_manager" in body["message"]
    status, body, _ = call(server, "GET", "/runs/nope")
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    (server.work / "broken").mkdir(exist_ok=True)
    (server.work / "broken" / "MLproject").write_text("entry_points:\n  main:\n    command: [x\n")
    status, body, _ = call(server, "POST", "/inspect", {"uri": "broken"})
    assert status == 400 and body["message"].startswith("MLproject:")


def test_a_target_from_a_kernel_goes_to_its_server(
    server: JupyterServerProcess, env: dict[str, str]
) -> None:
    """In a kernel or terminal of the server (JUPYTER_MLOPS_SERVER_URL), ``--target NAME``
    submits the project's job to that server: a target it does not have is refused with
    its configured ones, and no experiment is made."""
    make_project(server.work / "kernel-churn")
    out = mlops_run(
        ["kernel-churn", "--target", "gpu", "--experiment-name", "never-made"],
        {**env, "JUPYTER_MLOPS_SERVER_URL": server.url, "JUPYTER_MLOPS_SERVER_TOKEN": server.token},
        cwd=server.work,
    )
    assert out.returncode == 1
    assert "target 'gpu': Unknown target 'gpu'; configured targets: 'local'." in out.stderr
    from mlflow import MlflowClient

    os.environ["MLFLOW_TRACKING_TOKEN"] = server.token
    try:
        assert MlflowClient(server.tracking_uri).get_experiment_by_name("never-made") is None
    finally:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
