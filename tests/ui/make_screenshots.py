"""Screenshots of the panels for the README (``docs/images/``), from demo data
in a real JupyterLab and headless Chromium:

    PYTHONPATH=. python tests/ui/make_screenshots.py

Writes ``runs-panel``, ``runs-tab``, ``run-detail``, ``compare`` and ``pipeline-schedule-edit``
in light and dark (``*-light.png`` / ``*-dark.png``), ``run-logged-models-light``,
``pipeline-run-kubeflow-light``, ``training-job-light`` and ``deployment-light``, quantized
to 256 colours to stay small. The Kubeflow target is the fake KFP API server of the pipeline
tests (tests/pipelines/kfpfake.py). Arguments pick scenes (``runs``, ``pipelines``,
``jobs``, ``deployments``; default all): ``python tests/ui/make_screenshots.py jobs``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "images"
for _folder in ("tests", "tests/ui", "tests/pipelines"):
    sys.path.insert(0, str(REPO / _folder))
_spec = importlib.util.spec_from_file_location(
    "ui_conftest", Path(__file__).with_name("conftest.py")
)
assert _spec and _spec.loader
ui = importlib.util.module_from_spec(_spec)
sys.modules["ui_conftest"] = ui
_spec.loader.exec_module(ui)

import uihelpers  # noqa: E402  (needs the test folders on sys.path)
from kfpfake import FakeKfp  # noqa: E402

KFP_TOKEN = "sa-token-team-a"
KFP_UI = "https://kubeflow.example/_/pipeline"
PIPELINE = """\
name: train-and-evaluate
parameters:
  dataset: {type: string, default: mnist}
  C: {type: float, default: 1.0}
steps:
  prepare:
    script: prepare.py
    parameters: {dataset: "{{ params.dataset }}"}
  train:
    script: train.py
    parameters: {C: "{{ params.C }}"}
    depends_on: [prepare]
  evaluate:
    script: evaluate.py
    depends_on: [train]
"""
LOG_MODEL = """\
import jupyter_mlops as mlops
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

X, y = load_iris(return_X_y=True)
with mlops.start_run(run_id={run_id!r}):
    mlops.log_model(DecisionTreeClassifier(max_depth=3).fit(X, y), "classifier")
"""


def demo(lab: ui.Lab) -> tuple[str, list[str]]:
    """An experiment of a small learning-rate / depth sweep with curves,
    tags, a description and artifacts."""
    rng = random.Random(3)
    exp = lab.mlflow("experiments/create", {"name": "mnist-sweep"})["experiment_id"]
    ids = []
    t0 = int(time.time() * 1000) - 3_600_000
    for i, (lr, layers) in enumerate([(0.1, 2), (0.03, 2), (0.01, 3), (0.003, 3), (0.001, 4)]):
        start = t0 + i * 600_000
        run = lab.mlflow(
            "runs/create",
            {
                "experiment_id": exp,
                "run_name": f"lr{lr}-d{layers}",
                "start_time": start,
                "tags": [
                    {"key": "mlops.source.notebook_path", "value": "notebooks/train.ipynb"},
                    {"key": "mlflow.source.name", "value": "train.ipynb"},
                    {"key": "mlflow.user", "value": "ada"},
                    {
                        "key": "mlflow.source.git.commit",
                        "value": "3f9c2e1b7a0d4c55e6f8a9b0c1d2e3f4a5b6c7d8",
                    },
                    {"key": "mlflow.source.git.dirty", "value": "true" if i == 2 else "false"},
                ],
            },
        )["run"]
        rid = run["info"]["run_id"]
        n = 400
        rate = 3 * lr**0.5 + 0.05 * layers
        loss = [2.3 * math.exp(-rate * s / 40) + 0.05 + rng.random() * 0.04 for s in range(n)]
        acc = [min(0.995, 1 - x / 2.5 + rng.random() * 0.01) for x in loss]
        lab.api(
            "POST",
            "mlops/api/v1/runs/log-bulk",
            {
                "run_id": rid,
                "metrics": [
                    {
                        "key": k,
                        "steps": list(range(n)),
                        "timestamps": [start + s * 1500 for s in range(n)],
                        "values": v,
                    }
                    for k, v in (("loss", loss), ("accuracy", acc))
                ],
                "params": [
                    {"key": "lr", "value": str(lr)},
                    {"key": "layers", "value": str(layers)},
                    {"key": "batch_size", "value": "128"},
                    {"key": "optimizer", "value": "adam"},
                ],
                "tags": [
                    {
                        "key": "mlflow.note.content",
                        "value": f"## Sweep point {i + 1}\nAdam, **lr={lr}**, {layers} hidden layers.\n\n"
                        "- early stopping off\n- seed 0",
                    }
                ],
            },
        )
        if i == 2:  # the run shown in the run detail has a logged model
            uihelpers.run_as_user(lab, LOG_MODEL.format(run_id=rid))
        status = "RUNNING" if i == 4 else "FINISHED"
        lab.mlflow(
            "runs/update",
            {"run_id": rid, "status": status, "end_time": None if i == 4 else start + n * 1500},
        )
        base = f"mlops/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts/"
        for name, body in [
            ("confusion.csv", b"label,predicted_0,predicted_1\n0,980,20\n1,31,969\n"),
            ("model/config.json", json.dumps({"lr": lr, "layers": layers}).encode()),
        ]:
            urllib.request.urlopen(
                urllib.request.Request(
                    lab.url + base + name,
                    data=body,
                    method="PUT",
                    headers={"Authorization": f"token {lab.token}"},
                ),
                timeout=30,
            ).read()
        ids.append(rid)
    return exp, ids


def configure_kubeflow(tmp: Path, kfp: FakeKfp) -> None:
    """The lab's Kubeflow target (the fake KFP API server) and a pipeline to run on it."""
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    (tmp / "kfp-token").write_text(KFP_TOKEN)
    (tmp / "config" / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "PipelineService": {
                    "kubeflow_targets": {
                        "cluster": {
                            "endpoint": kfp.url,
                            "namespace": "team-a",
                            "display_name": "Team A cluster",
                            "image": "ghcr.io/example/mlops-step:1",
                            "tracking_uri": "http://mlops.team-a:5000",
                            "token_path": str(tmp / "kfp-token"),
                            "ui_url": KFP_UI,
                            "poll_interval": 0.2,
                        }
                    }
                }
            }
        )
    )
    work = tmp / "work"
    work.mkdir(parents=True, exist_ok=True)
    (work / "train-and-evaluate.pipeline.yaml").write_text(PIPELINE)
    for step in ("prepare", "train", "evaluate"):
        (work / f"{step}.py").write_text(f"print('{step}')\n")


def shrink(path: Path) -> None:
    from PIL import Image

    img = Image.open(path).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def set_theme(page: Any, light: bool) -> str:
    """Switch the theme; the file name suffix of its screenshots."""
    uihelpers.set_theme(page, "JupyterLab Light" if light else "JupyterLab Dark", light)
    page.wait_for_timeout(800)
    return "light" if light else "dark"


def runs_scenes(page: Any, exp: str, ids: list[str]) -> list[Path]:
    """Runs panel, run detail (charts, then artifacts and logged models) and compare."""
    from playwright.sync_api import expect

    shots: list[Path] = []
    page.locator('.lm-TabBar-tab[data-id="jupyter-mlops-runs"]').click()
    page.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp}"]').click()
    runs = page.locator(".jp-mlops-RunsSection")
    expect(runs.locator("tr.jp-mlops-RunRow")).to_have_count(5, timeout=30_000)
    for rid in ids[1:3]:
        runs.locator(f'tr[data-run-id="{rid}"] .jp-mlops-RunRow-check input').check()
    runs.locator(f'tr[data-run-id="{ids[2]}"]').dblclick()
    page.evaluate("() => window.getSelection().removeAllRanges()")
    detail = page.locator(".jp-mlops-RunDetail:visible .jp-mlops-Detail")
    expect(detail.locator(".jp-mlops-Chart canvas").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(800)
    for light in (True, False):
        suffix = set_theme(page, light)
        # Run detail beside the runs panel, scrolled to the charts.
        page.evaluate(f"() => window.jupyterapp.shell.activateById('jupyter-mlops-run-{ids[2]}')")
        page.locator(".jp-mlops-RunDetail:visible .jp-mlops-Metrics").scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        shots.append(OUT / f"run-detail-{suffix}.png")
        page.screenshot(path=str(shots[-1]))
        page.locator(
            ".jp-mlops-RunDetail:visible .jp-mlops-Detail-header"
        ).scroll_into_view_if_needed()
        shots.append(OUT / f"runs-panel-{suffix}.png")
        page.screenshot(path=str(shots[-1]))
        if light:
            # Artifacts (a CSV previewed) and the run's logged model.
            rd = page.locator(".jp-mlops-RunDetail:visible")
            rd.locator('.jp-mlops-ArtifactItem[data-path="confusion.csv"]').click()
            expect(rd.locator(".jp-mlops-ArtifactCsv")).to_be_visible(timeout=30_000)
            expect(rd.locator(".jp-mlops-LoggedModel")).to_have_count(1, timeout=30_000)
            rd.locator(".jp-mlops-RunModels").evaluate("(el) => el.scrollIntoView({block: 'end'})")
            page.wait_for_timeout(300)
            shots.append(OUT / "run-logged-models-light.png")
            page.screenshot(path=str(shots[-1]))
            rd.locator(".jp-mlops-Detail-header").scroll_into_view_if_needed()
    # The experiment's runs tab (main area): chosen param and metric columns, sorted by
    # accuracy on the server, grouped by depth; the sidebar's compact list beside it.
    page.evaluate(
        "(id) => { void window.jupyterapp.commands.execute('jupyter-mlops:open-runs-table',"
        " {experimentId: id}); }",
        exp,
    )
    tab = page.locator(f"#jupyter-mlops-runs-table-{exp}")
    expect(tab.locator("tr.jp-mlops-RunRow")).to_have_count(5, timeout=30_000)
    picker = tab.locator(".jp-mlops-ColumnPicker")
    picker.locator(".jp-mlops-KeyPicker-button").click()
    for column in ("params.lr", "params.layers", "metrics.accuracy", "metrics.loss"):
        picker.locator(f'label[data-column="{column}"] input').check()
    picker.locator(".jp-mlops-KeyPicker-button").click()
    header = tab.locator('th[data-column="metrics.accuracy"]')
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    group = tab.locator(".jp-mlops-GroupPicker")
    group.locator(".jp-mlops-KeyPicker-button").click()
    group.locator('label[data-column="params.layers"] input').click()
    expect(tab.locator(".jp-mlops-GroupRow").first).to_be_visible(timeout=30_000)
    page.evaluate("() => window.getSelection().removeAllRanges()")
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    for light in (False, True):
        suffix = set_theme(page, light)
        shots.append(OUT / f"runs-tab-{suffix}.png")
        page.screenshot(path=str(shots[-1]))
    page.evaluate("() => window.jupyterapp.shell.expandLeft()")
    # Compare all five (dark is current; light after).
    set_theme(page, False)
    page.evaluate(
        "(ids) => window.jupyterapp.commands.execute('jupyter-mlops:compare-runs', {runIds: ids})",
        ids,
    )
    view = page.locator(".jp-mlops-CompareWidget:visible .jp-mlops-Compare")
    expect(view.locator('.jp-mlops-Chart[data-metric="loss"] canvas').first).to_be_visible(
        timeout=30_000
    )
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    view.locator(".jp-mlops-DiffOnly").check()
    page.wait_for_timeout(800)
    view.locator(".jp-mlops-Section-title", has_text="Charts").scroll_into_view_if_needed()
    shots.append(OUT / "compare-dark.png")
    page.screenshot(path=str(shots[-1]))
    set_theme(page, True)
    view.locator(".jp-mlops-Section-title", has_text="Parallel").evaluate(
        "(el) => el.scrollIntoView({block: 'start'})"
    )
    shots.append(OUT / "compare-light.png")
    page.screenshot(path=str(shots[-1]))
    page.evaluate("() => window.jupyterapp.shell.expandLeft()")
    return shots


def widen_left(page: Any, pixels: int) -> None:
    """Drag the left sidebar's edge, so that file names in the Pipelines panel fit."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:visible").first
    box = handle.bounding_box()
    assert box, "the left sidebar's handle is not on screen"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + pixels, y, steps=5)
    page.mouse.up()


def pipelines_scenes(page: Any, kfp: FakeKfp) -> list[Path]:
    """A run on the Kubeflow target, and the Edit dialog of a schedule on it."""
    from playwright.sync_api import expect

    shots: list[Path] = []
    panel = uihelpers.open_sidebar(
        page, "#jupyter-mlops-pipelines", '.lm-TabBar-tab[data-id="jupyter-mlops-pipelines"]'
    )
    widen_left(page, 70)
    panel.locator(".jp-mlops-PipelinesRefresh").click()
    item = panel.locator('.jp-mlops-PipelineFile[data-path="train-and-evaluate.pipeline.yaml"]')
    expect(item).to_be_visible(timeout=30_000)
    dialog = page.locator(".jp-Dialog")
    form = dialog.locator(".jp-mlops-SubmitForm")

    item.locator(".jp-mlops-PipelineFile-run").click()
    form.locator('select[name="target"]').select_option("cluster")
    dialog.locator(".jp-mod-accept").click()
    view = page.locator(".jp-mlops-PipelineRunView:visible")
    expect(view.locator(".jp-mlops-PipelineExternal")).to_have_text(
        "Open in Kubeflow", timeout=30_000
    )
    remote = kfp.run()
    while kfp.advance(remote.run_id) != "SUCCEEDED":
        pass
    status = view.locator(".jp-mlops-PipelineRunView-header .jp-mlops-PipelineStatus")
    expect(status).to_have_text("SUCCEEDED", timeout=30_000)
    view.locator('.jp-mlops-DagNode[data-step="train"]').click()
    expect(view.locator(".jp-mlops-PipelineLog-text")).to_contain_text("train", timeout=30_000)
    panel.locator(".jp-mlops-PipelinesRefresh").click()
    expect(panel).to_contain_text("3/3", timeout=30_000)
    page.mouse.move(640, 700)  # no hover highlight on the Refresh button
    page.wait_for_timeout(300)
    shots.append(OUT / "pipeline-run-kubeflow-light.png")
    page.screenshot(path=str(shots[-1]))

    item.locator(".jp-mlops-PipelineFile-schedule").click()
    form.locator('select[name="target"]').select_option("cluster")
    form.locator('input[name="cron"]').fill("0 6 * * 1-5")
    form.locator('input[name="timezone"]').fill("Europe/Paris")
    form.locator('input[name="run_name"]').fill("weekday retrain")
    dialog.locator(".jp-mod-accept").click()
    expect(dialog).to_have_count(0, timeout=30_000)
    sched = panel.locator(".jp-mlops-ScheduleItem")
    expect(sched.locator(".jp-mlops-ScheduleItem-target")).to_contain_text(
        "on cluster", timeout=30_000
    )
    for light in (True, False):
        suffix = set_theme(page, light)
        sched.locator(".jp-mlops-ScheduleItem-edit").click()
        expect(form.locator('select[name="target"]')).to_have_value("cluster", timeout=30_000)
        page.wait_for_timeout(300)
        shots.append(OUT / f"pipeline-schedule-edit-{suffix}.png")
        page.screenshot(path=str(shots[-1]))
        dialog.locator(".jp-mod-reject").click()
        expect(dialog).to_have_count(0, timeout=30_000)
    return shots


JOB_SCRIPT = """\
import os, time
rank = os.environ["JUPYTER_MLOPS_RANK"]
print(f"rank {rank}: epoch 1/3 loss 0.71", flush=True)
print(f"rank {rank}: epoch 2/3 loss 0.42", flush=True)
while not os.path.exists("go-" + rank):
    time.sleep(0.1)
print(f"rank {rank}: epoch 3/3 loss 0.27", flush=True)
"""
DEPLOY_MODELS = """\
import pandas as pd
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops

X = pd.DataFrame({"tenure": [1.0, 30.0, 4.0, 50.0], "monthly": [80.0, 20.0, 70.0, 25.0]})
mlops.set_experiment("churn")
for c in (1.0, 0.1):
    with mlops.start_run():
        clf = LogisticRegression(C=c).fit(X, [1, 0, 1, 0])
        mlops.log_model(clf, "model", input_example=X.head(2), registered_model_name="churn")
"""


def jobs_scenes(page: Any, lab: ui.Lab) -> list[Path]:
    """A 2 x 2 job half done: the grid with finished and running ranks, a rank's log."""
    from playwright.sync_api import expect

    folder = lab.root / "work" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(JOB_SCRIPT)
    spec = {"name": "ddp-demo", "script": "train.py", "framework": "pytorch", "nodes": 2}
    spec.update(procs_per_node=2, params={"lr": 0.05, "epochs": 3})
    job = lab.api("POST", "mlops/api/v1/jobs", {"spec": spec, "base_dir": "train"})["job"]
    uihelpers.open_sidebar(
        page, "#jupyter-mlops-jobs", '.lm-TabBar-tab[data-id="jupyter-mlops-jobs"]'
    )
    page.evaluate(
        "(id) => window.jupyterapp.commands.execute('jupyter-mlops:open-job', {jobId: id})",
        job["job_id"],
    )
    view = page.locator(".jp-mlops-JobView:visible")
    expect(view.locator('.jp-mlops-RankCell[data-status="RUNNING"]')).to_have_count(
        4, timeout=60_000
    )
    for rank in (0, 2):
        (folder / f"go-{rank}").write_text("")
    expect(view.locator('.jp-mlops-RankCell[data-status="SUCCEEDED"]')).to_have_count(
        2, timeout=60_000
    )
    view.locator('.jp-mlops-RankCell[data-rank="3"]').click()
    expect(view.locator(".jp-mlops-JobLog-text")).to_contain_text("epoch 2/3", timeout=60_000)
    page.mouse.move(640, 700)
    page.wait_for_timeout(2500)  # the sidebar and the status bar catch up
    shots = [OUT / "training-job-light.png"]
    page.screenshot(path=str(shots[-1]))
    lab.api("POST", f"mlops/api/v1/jobs/{job['job_id']}/cancel", {})
    return shots


def deployments_scenes(page: Any, lab: ui.Lab) -> list[Path]:
    """A model served with traffic on it: the Deployments list, the view, Try it."""
    from playwright.sync_api import expect

    uihelpers.run_as_user(lab, DEPLOY_MODELS)
    api = "mlops/api/v1/deployments"
    lab.api("POST", api, {"name": "churn", "model_uri": "models:/churn/1"})
    deadline = time.monotonic() + 180
    while lab.api("GET", f"{api}/churn")["deployment"]["status"] != "READY":
        assert time.monotonic() < deadline, "the deployment did not become ready"
        time.sleep(0.5)
    body = {"dataframe_records": [{"tenure": 3.0, "monthly": 75.0}]}
    uihelpers.open_sidebar(
        page, "#jupyter-mlops-models", '.lm-TabBar-tab[data-id="jupyter-mlops-models"]'
    )
    widen_left(page, 60)
    page.evaluate(
        "() => window.jupyterapp.commands.execute('jupyter-mlops:open-deployment', {name: 'churn'})"
    )
    view = page.locator(".jp-mlops-DeploymentView:visible")
    expect(view.locator(".jp-mlops-TryIt-request")).to_have_value(
        re.compile("dataframe_split"), timeout=60_000
    )
    for i in range(24):  # traffic for the sparklines: a varying load over a dozen scrapes
        for _ in range(3 + (i * 7) % 11):
            lab.api("POST", f"{api}/churn/invoke", {"body": body})
        time.sleep(0.7)
    view.locator(".jp-mlops-TryIt-send").click()
    expect(view.locator(".jp-mlops-TryIt-response")).to_have_attribute(
        "data-status", "200", timeout=60_000
    )
    page.mouse.move(640, 700)
    page.wait_for_timeout(500)
    shots = [OUT / "deployment-light.png"]
    page.screenshot(path=str(shots[-1]))
    lab.api("DELETE", f"{api}/churn")
    return shots


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-shots-"))
    kfp = FakeKfp({KFP_TOKEN: "team-a"}).start()
    configure_kubeflow(tmp, kfp)
    lab = ui._start_lab(tmp)
    try:
        exp, ids = demo(lab)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=ui.CHROMIUM, headless=True, args=ui.CHROMIUM_ARGS
            )
            page = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
            lab.open_in(page)
            # Pop-up notifications (runs finishing as the demo is logged) would cover the panels.
            page.add_style_tag(content=".Toastify { display: none !important; }")
            wanted = set(sys.argv[1:]) or {"runs", "pipelines", "jobs", "deployments"}
            shots = []
            if "runs" in wanted:
                shots += runs_scenes(page, exp, ids)
            if "pipelines" in wanted:
                shots += pipelines_scenes(page, kfp)
            if "jobs" in wanted:
                set_theme(page, True)
                shots += jobs_scenes(page, lab)
            if "deployments" in wanted:
                set_theme(page, True)
                shots += deployments_scenes(page, lab)
            browser.close()
        for shot in shots:
            shrink(shot)
            print(shot.relative_to(REPO), shot.stat().st_size // 1024, "KB")
    finally:
        ui._stop_lab(lab)
        kfp.stop()


if __name__ == "__main__":
    main()
