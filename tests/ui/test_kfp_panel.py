"""A Kubeflow Pipelines target in the Pipelines panel (real JupyterLab, headless Chromium, the
fake KFP API server of tests/pipelines/kfpfake.py): the configured target is offered in the
submit dialog, a run submitted there follows KFP's progress in the run view, which links to
the run in the KFP UI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from serverproc import REPO, child_env, start_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))
from kfpfake import FakeKfp  # (the fake lives with the pipeline tests)
from uihelpers import wait_until_settled

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.ui

LABEXTENSION = REPO / "jupyter_mlops" / "labextension"
TOKEN = "mlops-ui-token"
KFP_TOKEN = "sa-token-team-a"
UI_URL = "https://kubeflow.example/_/pipeline"
TIMEOUT_MS = 60_000
PANEL = "#jupyter-mlops-pipelines"
TAB = '.lm-TabBar-tab[data-id="jupyter-mlops-pipelines"]'

PIPELINE = """\
name: ui-kfp
parameters:
  n: {type: integer, default: 2}
steps:
  prepare:
    script: prepare.py
    parameters: {n: "{{ params.n }}"}
  train:
    script: train.py
    depends_on: [prepare]
"""


@dataclass
class KfpLab:
    """``jupyter lab`` whose server has a Kubeflow target pointing at the fake."""

    url: str
    root: Path
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api(self, method: str, path: str) -> dict[str, Any]:
        req = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {TOKEN}"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def answers(self) -> bool:
        try:
            self.api("GET", "api/status")
        except urllib.error.HTTPError:
            return False
        return True

    def open_in(self, pg: Any) -> None:
        pg.goto(f"{self.url}lab?reset&token={TOKEN}")
        pg.wait_for_selector("#jp-main-dock-panel", timeout=TIMEOUT_MS)
        wait_until_settled(pg)


@pytest.fixture(scope="module")
def kfp() -> Iterator[FakeKfp]:
    fake = FakeKfp({KFP_TOKEN: "team-a"}).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, kfp: FakeKfp) -> Iterator[KfpLab]:
    """Overrides the folder's ``lab``: this one is configured with a Kubeflow target."""
    if not (LABEXTENSION / "package.json").exists():
        pytest.fail(f"the front end is not built ({LABEXTENSION} is missing): run `jlpm build`")
    tmp = tmp_path_factory.mktemp("kfplab")
    for d in ("work", "data", "config", "runtime", "home", "labextensions"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    (tmp / "labextensions" / "jupyter-mlops").symlink_to(LABEXTENSION, target_is_directory=True)
    (tmp / "config" / "labconfig").mkdir()
    (tmp / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
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
                            "ui_url": UI_URL,
                            "poll_interval": 0.2,
                        }
                    }
                }
            }
        )
    )
    work = tmp / "work"
    (work / "ui-kfp.pipeline.yaml").write_text(PIPELINE)
    (work / "prepare.py").write_text("print('prepared')\n")
    (work / "train.py").write_text("print('trained')\n")
    log_path = tmp / "lab.log"
    labs: list[KfpLab] = []

    def launch(port: int) -> subprocess.Popen:
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--port={port}",
            "--port-retries=0",
            "--ip=127.0.0.1",
            "--no-browser",
            f"--ServerApp.token={TOKEN}",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={work}",
            "--ServerApp.jpserver_extensions={'jupyter_mlops': True}",
            f"--LabApp.extra_labextensions_path={tmp / 'labextensions'}",
            "--LabApp.expose_app_in_browser=True",
        ]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                env=child_env(tmp),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        labs.append(KfpLab(f"http://127.0.0.1:{port}/", tmp, proc, log_path))
        return proc

    start_server(launch, lambda port: labs[-1].answers(), log_path, "jupyter lab")
    lab = labs[-1]
    yield lab
    if lab.proc.poll() is None:
        lab.proc.send_signal(signal.SIGTERM)
        try:
            lab.proc.wait(20)
        except subprocess.TimeoutExpired:
            lab.proc.kill()
            lab.proc.wait(10)


def test_submit_to_kubeflow_and_open_the_run_in_kfp(
    page: Any, lab: KfpLab, kfp: FakeKfp, screenshot_dir: Path
) -> None:
    panel = page.locator(PANEL)
    if not panel.is_visible():
        page.locator(TAB).click()
    expect(panel).to_be_visible(timeout=TIMEOUT_MS)
    panel.locator(".jp-mlops-PipelinesRefresh").click()
    item = panel.locator('.jp-mlops-PipelineFile[data-path="ui-kfp.pipeline.yaml"]')
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.locator(".jp-mlops-PipelineFile-run").click()
    form = page.locator(".jp-Dialog .jp-mlops-SubmitForm")
    expect(form).to_be_visible(timeout=TIMEOUT_MS)

    # the configured target is offered beside this server, and says where the run goes
    target = form.locator('select[name="target"]')
    expect(target).to_have_value("local")
    expect(target.locator("option")).to_have_text(
        ["This server (local)", "Team A cluster (cluster)"]
    )
    target.select_option("cluster")
    expect(form).to_contain_text("Runs on Kubeflow Pipelines in namespace team-a")
    form.locator('input[name="n"]').fill("4")
    page.locator(".jp-Dialog .jp-mod-accept").click()

    view = page.locator(".jp-mlops-PipelineRunView:visible")
    expect(view).to_have_count(1, timeout=TIMEOUT_MS)
    expect(view.locator(".jp-mlops-PipelineRunView-target")).to_have_text("on cluster")
    remote = kfp.run()
    assert remote.body["runtime_config"]["parameters"] == {"n": 4}
    link = view.locator(".jp-mlops-PipelineExternal")
    expect(link).to_have_text("Open in Kubeflow")
    expect(link).to_have_attribute("href", f"{UI_URL}/#/runs/details/{remote.run_id}")
    expect(link).to_have_attribute("target", "_blank")

    # the view follows what KFP reports
    status = view.locator(".jp-mlops-PipelineRunView-header .jp-mlops-PipelineStatus")
    kfp.advance(remote.run_id)
    expect(view.locator('.jp-mlops-DagNode[data-step="prepare"]')).to_have_attribute(
        "data-status", "RUNNING", timeout=TIMEOUT_MS
    )
    expect(status).to_have_text("RUNNING", timeout=TIMEOUT_MS)
    kfp.advance(remote.run_id)
    kfp.advance(remote.run_id)
    expect(status).to_have_text("SUCCEEDED", timeout=TIMEOUT_MS)
    expect(view.locator('.jp-mlops-DagNode[data-status="SUCCEEDED"]')).to_have_count(2)
    view.locator('.jp-mlops-DagNode[data-step="train"]').click()
    expect(view.locator(".jp-mlops-PipelineLog-text")).to_contain_text(
        "train: done", timeout=TIMEOUT_MS
    )
    page.screenshot(path=str(screenshot_dir / "pipeline-run-kubeflow.png"))


def test_schedule_on_kubeflow_from_the_panel(page: Any, lab: KfpLab) -> None:
    """With a Kubeflow target configured, the schedule form offers it (create and edit) and
    the schedule list names it."""
    panel = page.locator(PANEL)
    if not panel.is_visible():
        page.locator(TAB).click()
    expect(panel).to_be_visible(timeout=TIMEOUT_MS)
    panel.locator(".jp-mlops-PipelinesRefresh").click()
    item = panel.locator('.jp-mlops-PipelineFile[data-path="ui-kfp.pipeline.yaml"]')
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.locator(".jp-mlops-PipelineFile-schedule").click()
    form = page.locator(".jp-Dialog .jp-mlops-SubmitForm")
    expect(form).to_be_visible(timeout=TIMEOUT_MS)
    target = form.locator('select[name="target"]')
    expect(target).to_have_value("local")
    target.select_option("cluster")
    form.locator('input[name="cron"]').fill("0 0 1 1 *")  # 1 January: never during the test
    form.locator('input[name="timezone"]').fill("UTC")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0, timeout=TIMEOUT_MS)

    sched = panel.locator(".jp-mlops-ScheduleItem")
    expect(sched).to_have_count(1, timeout=TIMEOUT_MS)
    expect(sched.locator(".jp-mlops-ScheduleItem-target")).to_contain_text("on cluster")
    [stored] = lab.api("GET", "mlops/api/v1/pipelines/schedules")["schedules"]
    assert stored["target"] == "cluster"

    sched.locator(".jp-mlops-ScheduleItem-edit").click()
    form = page.locator(".jp-Dialog .jp-mlops-SubmitForm")
    expect(form.locator('select[name="target"]')).to_have_value("cluster", timeout=TIMEOUT_MS)
    form.locator('select[name="target"]').select_option("local")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0, timeout=TIMEOUT_MS)
    expect(sched.locator(".jp-mlops-ScheduleItem-target")).to_have_count(0, timeout=TIMEOUT_MS)
    [stored] = lab.api("GET", "mlops/api/v1/pipelines/schedules")["schedules"]
    assert stored["target"] == "local"
