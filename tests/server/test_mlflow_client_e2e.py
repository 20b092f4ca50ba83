"""The official ``mlflow`` client, unchanged, against a real ``jupyter server``
(subprocess, non-root base URL) with only MLFLOW_TRACKING_URI/_TOKEN set."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent(
    r"""
    import json, os, tempfile, time
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient()
    out = {}
    exp = mlflow.set_experiment("e2e")
    out["experiment_id"] = exp.experiment_id
    work = tempfile.mkdtemp()
    hello = os.path.join(work, "hello.txt")
    with open(hello, "w") as f:
        f.write("hello!")
    tree = os.path.join(work, "tree")
    os.makedirs(os.path.join(tree, "inner"))
    for name, text in [("a.txt", "A"), ("inner/b.txt", "B")]:
        with open(os.path.join(tree, name), "w") as f:
            f.write(text)

    with mlflow.start_run(run_name="parent") as parent:
        pid = parent.info.run_id
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"layers": 3, "opt": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 - 0.1 * step, step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=4)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"t1": "1", "t2": "2"})
        ts = int(time.time() * 1000)
        client.log_batch(pid, metrics=[Metric("batch", float(i), ts, i) for i in range(50)],
                         params=[Param("bp", "1")], tags=[RunTag("bt", "x")])
        mlflow.log_artifact(hello)
        mlflow.log_artifact(hello, "sub")
        mlflow.log_artifacts(tree, "tree")
        mlflow.log_text("some notes", "notes/readme.txt")
        mlflow.log_dict({"k": [1, 2]}, "cfg/config.json")
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        mlflow.log_figure(fig, "plots/fig.png")
        with mlflow.start_run(run_name="child", nested=True) as child:
            cid = child.info.run_id
            mlflow.log_metric("acc", 0.7)
    with mlflow.start_run(run_name="other") as other:
        oid = other.info.run_id
        mlflow.log_metric("acc", 0.3)

    df = mlflow.search_runs(experiment_names=["e2e"], filter_string="metrics.acc > 0.5",
                            order_by=["metrics.acc DESC"])
    out["search"] = list(df["run_id"])
    runs = client.search_runs([exp.experiment_id], order_by=["metrics.acc ASC"])
    out["search_client"] = [r.info.run_id for r in runs]

    run = client.get_run(pid)
    out["params"] = run.data.params
    out["metrics"] = run.data.metrics
    out["tags"] = {k: v for k, v in run.data.tags.items()}
    out["status"] = run.info.status
    out["child_parent"] = client.get_run(cid).data.tags.get("mlflow.parentRunId")
    out["history"] = [(m.step, m.value) for m in client.get_metric_history(pid, "loss")]
    out["batch_len"] = len(client.get_metric_history(pid, "batch"))

    out["root"] = sorted((f.path, f.is_dir) for f in client.list_artifacts(pid))
    out["sub"] = [(f.path, f.file_size) for f in client.list_artifacts(pid, "sub")]
    out["tree"] = sorted(f.path for f in client.list_artifacts(pid, "tree"))
    path = mlflow.artifacts.download_artifacts(run_id=pid, artifact_path="sub/hello.txt")
    out["download_file"] = open(path).read()
    d = mlflow.artifacts.download_artifacts(run_id=pid, artifact_path="tree")
    out["download_dir"] = sorted(
        os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)
    out["load_text"] = mlflow.artifacts.load_text(f"runs:/{pid}/notes/readme.txt")
    out["load_dict"] = mlflow.artifacts.load_dict(f"runs:/{pid}/cfg/config.json")
    out["figure_magic"] = open(mlflow.artifacts.download_artifacts(
        run_id=pid, artifact_path="plots/fig.png"), "rb").read(8).hex()

    client.delete_run(oid)
    out["after_delete"] = [r.info.run_id for r in client.search_runs([exp.experiment_id])]
    out["deleted_stage"] = client.get_run(oid).info.lifecycle_stage
    out["ids"] = {"parent": pid, "child": cid, "other": oid}
    print("RESULT " + json.dumps(out))
    """
)


def test_official_mlflow_client_end_to_end(jupyter_server_process, tmp_path):
    server = jupyter_server_process(base_url="/jh/user/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "JUPYTER_MLOPS_"))}
    env.update(
        MLFLOW_TRACKING_URI=server.tracking_uri,
        MLFLOW_TRACKING_TOKEN=server.token,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",  # a 5xx must fail the test, not stall it
        MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true",
        HOME=str(tmp_path),
    )
    work = tmp_path / "driver"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        check=False,
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, (
        f"{proc.stderr[-4000:]}\n--- server log ---\n{server.log()[-4000:]}"
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])
    ids = out["ids"]

    assert out["search"] == [ids["parent"], ids["child"]]
    assert out["search_client"] == [ids["other"], ids["child"], ids["parent"]]
    assert out["params"] == {"lr": "0.01", "layers": "3", "opt": "adam", "bp": "1"}
    assert out["metrics"]["loss"] == pytest.approx(0.6) and out["metrics"]["acc"] == 0.9
    assert out["metrics"]["batch"] == 49.0
    assert {"stage": "dev", "t1": "1", "t2": "2", "bt": "x"}.items() <= out["tags"].items()
    assert out["tags"]["mlflow.runName"] == "parent"
    assert out["status"] == "FINISHED"
    assert out["child_parent"] == ids["parent"]
    assert [s for s, _ in out["history"]] == [0, 1, 2, 3, 4]
    assert out["history"][0][1] == 1.0
    assert out["batch_len"] == 50
    assert out["root"] == [
        ["cfg", True],
        ["hello.txt", False],
        ["notes", True],
        ["plots", True],
        ["sub", True],
        ["tree", True],
    ]
    assert out["sub"] == [["sub/hello.txt", 6]]
    assert out["tree"] == ["tree/a.txt", "tree/inner"]
    assert out["download_file"] == "hello!"
    assert out["download_dir"] == ["a.txt", os.path.join("inner", "b.txt")]
    assert out["load_text"] == "some notes"
    assert out["load_dict"] == {"k": [1, 2]}
    assert out["figure_magic"] == "89504e470d0a1a0a"  # a PNG
    assert ids["other"] not in out["after_delete"] and out["deleted_stage"] == "deleted"

    # the files are in the server's artifact root, under <exp>/<run>/artifacts
    run_dir = server.data_dir / "mlops" / "artifacts" / out["experiment_id"] / ids["parent"]
    assert (run_dir / "artifacts" / "plots" / "fig.png").stat().st_size > 1000
    assert (run_dir / "artifacts" / "tree" / "inner" / "b.txt").read_text() == "B"
    # and no request was answered with a server fault
    assert re.search(r"\] 5\d\d (GET|POST|PUT|DELETE) ", server.log()) is None
