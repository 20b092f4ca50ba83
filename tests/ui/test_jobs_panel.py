"""The Training jobs sidebar in a real JupyterLab (headless Chromium): a 2 × 2 stdlib job
is submitted from the panel's form, its view shows the nodes × ranks grid go Running →
Succeeded and a rank's log; a long job run from a ``*.job.yaml`` in the file browser is
cancelled from its view.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from uihelpers import TIMEOUT_MS, expect, open_sidebar

pytestmark = pytest.mark.ui

PANEL = "#jupyter-mlops-jobs"
TAB = '.lm-TabBar-tab[data-id="jupyter-mlops-jobs"]'

# Each rank waits for the test's go-ahead, so the test sees every rank RUNNING first.
HELLO = """\
import os, sys, time
rank, size = os.environ["JUPYTER_MLOPS_RANK"], os.environ["JUPYTER_MLOPS_WORLD_SIZE"]
who = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--who=")][0]
print(f"rank {rank} of {size} waiting, node {os.environ['JUPYTER_MLOPS_NODE_RANK']}", flush=True)
while not os.path.exists("go"):
    time.sleep(0.1)
print(f"rank {rank} of {size} says hello to {who}", flush=True)
"""

SLEEPER = """\
import os, time
print("sleeper rank", os.environ["JUPYTER_MLOPS_RANK"], "started", flush=True)
time.sleep(600)
"""

LONG_JOB = """\
name: ui-long
framework: generic
script: sleeper.py
nodes: 1
procs_per_node: 2
params:
  pause: {type: integer, default: 600, description: seconds to sleep}
"""


def _open_panel(page: Any) -> Any:
    return open_sidebar(page, PANEL, TAB)


def _job_view(page: Any) -> Any:
    view = page.locator(".jp-mlops-JobView:visible")
    expect(view).to_have_count(1, timeout=TIMEOUT_MS)
    return view


def test_submit_watch_ranks_and_read_a_log(page: Any, lab: Any, screenshot_dir: Any) -> None:
    folder = lab.root / "work" / "jobs"
    folder.mkdir(exist_ok=True)
    (folder / "hello.py").write_text(textwrap.dedent(HELLO))

    panel = _open_panel(page)
    panel.locator(".jp-mlops-JobSubmit").click()
    dialog = page.locator(".jp-Dialog")
    form = dialog.locator(".jp-mlops-JobForm")
    expect(form).to_be_visible(timeout=TIMEOUT_MS)
    expect(form.locator('select[name="target"]')).to_have_value("local")
    # Nothing to run yet: the dialog comes back naming the field.
    dialog.locator(".jp-mod-accept").click()
    entry_error = page.locator('.jp-mlops-FormField[data-param="entry"] .jp-mlops-FormField-error')
    expect(entry_error).to_contain_text("choose the script", timeout=TIMEOUT_MS)
    form = page.locator(".jp-Dialog .jp-mlops-JobForm")
    form.locator('input[name="entry"]').fill("jobs/hello.py")
    form.locator('input[name="name"]').fill("ui-hello")
    form.locator('input[name="nodes"]').fill("2")
    form.locator('input[name="procsPerNode"]').fill("2")
    form.locator('textarea[name="params"]').fill("who=tester")
    form.locator('textarea[name="env"]').fill("PYTHONUNBUFFERED=1")
    expect(entry_error).to_have_count(0)
    page.locator(".jp-Dialog .jp-mod-accept").click()

    view = _job_view(page)
    body = view.locator(".jp-mlops-JobView-body")
    cells = view.locator(".jp-mlops-RankCell")
    expect(cells).to_have_count(4, timeout=TIMEOUT_MS)
    # Two rows (nodes) of two ranks, in rank order.
    expect(view.locator('.jp-mlops-RankGrid tr[data-node="1"] .jp-mlops-RankCell')).to_have_count(2)
    ranks = view.locator('.jp-mlops-RankGrid tr[data-node="1"] .jp-mlops-RankCell')
    assert [ranks.nth(i).get_attribute("data-rank") for i in range(2)] == ["2", "3"]
    expect(view.locator('.jp-mlops-RankCell[data-status="RUNNING"]')).to_have_count(
        4, timeout=TIMEOUT_MS
    )
    expect(body).to_have_attribute("data-status", "RUNNING")
    # The status bar follows the running job.
    status_item = page.locator(".jp-mlops-JobsStatus")
    expect(status_item).to_contain_text("job ui-hello: 4/4 ranks running", timeout=TIMEOUT_MS)
    # Rank 0's log is shown and followed.
    log = view.locator(".jp-mlops-JobLog-text")
    expect(log).to_contain_text("rank 0 of 4 waiting, node 0", timeout=TIMEOUT_MS)
    expect(view.locator(".jp-mlops-PipelineLog-follow")).to_be_visible()
    expect(view.locator(".jp-mlops-JobCancel")).to_be_enabled()
    page.screenshot(path=str(screenshot_dir / "job-running.png"))

    (folder / "go").write_text("")
    expect(view.locator('.jp-mlops-RankCell[data-status="SUCCEEDED"]')).to_have_count(
        4, timeout=TIMEOUT_MS
    )
    expect(body).to_have_attribute("data-status", "SUCCEEDED", timeout=TIMEOUT_MS)
    # Cells take their state's tint from the theme: a finished rank is not the plain background.
    tint, plain = view.locator('.jp-mlops-RankCell[data-rank="0"]').evaluate(
        """(cell) => {
            const probe = document.createElement('div');
            probe.style.background = 'var(--jp-layout-color2)';
            document.body.appendChild(probe);
            const plain = getComputedStyle(probe).backgroundColor;
            probe.remove();
            return [getComputedStyle(cell).backgroundColor, plain];
        }"""
    )
    assert tint != plain
    expect(view.locator(".jp-mlops-JobCancel")).to_be_disabled()
    expect(log).to_contain_text("rank 0 of 4 says hello to tester", timeout=TIMEOUT_MS)
    view.locator('.jp-mlops-RankCell[data-rank="3"]').click()
    expect(log).to_have_attribute("data-rank", "3")
    expect(log).to_contain_text("rank 3 of 4 waiting, node 1", timeout=TIMEOUT_MS)
    expect(log).to_contain_text("rank 3 of 4 says hello to tester")
    expect(log).not_to_contain_text("rank 0 of 4")
    expect(status_item).to_have_text("", timeout=TIMEOUT_MS)

    # Listed in the sidebar; the server agrees.
    job_id = body.get_attribute("data-job-id")
    item = _open_panel(page).locator(f'.jp-mlops-JobItem[data-job-id="{job_id}"]')
    expect(item).to_have_attribute("data-status", "SUCCEEDED", timeout=TIMEOUT_MS)
    job = lab.api("GET", f"mlops/api/v1/jobs/{job_id}")["job"]
    assert job["status"] == "SUCCEEDED"
    assert job["parameters"] == {"who": "tester"}
    assert (job["nodes"], job["procs_per_node"]) == (2, 2)

    # The tracked run opens in its detail view.
    view.locator(".jp-mlops-JobRunLink").click()
    detail = page.locator(f"#jupyter-mlops-run-{job['run_id']}")
    expect(detail).to_be_visible(timeout=TIMEOUT_MS)


def test_cancel_a_long_job_run_from_the_file_browser(page: Any, lab: Any) -> None:
    folder = lab.root / "work" / "longjob"
    folder.mkdir(exist_ok=True)
    (folder / "sleeper.py").write_text(SLEEPER)
    (folder / "long.job.yaml").write_text(LONG_JOB)
    page.evaluate(
        "(p) => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: p})", "longjob"
    )
    item = page.locator('.jp-DirListing-item[title*="long.job.yaml"]').first
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.click(button="right")
    entry = page.locator('.lm-Menu-item[data-command="jupyter-mlops:run-job-file"]')
    expect(entry).to_be_visible()
    entry.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text("ui-long", timeout=TIMEOUT_MS)
    expect(dialog.locator('input[name="pause"]')).to_have_value("600")
    dialog.locator(".jp-mod-accept").click()

    view = _job_view(page)
    expect(view.locator('.jp-mlops-RankCell[data-status="RUNNING"]')).to_have_count(
        2, timeout=TIMEOUT_MS
    )
    log = view.locator(".jp-mlops-JobLog-text")
    expect(log).to_contain_text("sleeper rank 0 started", timeout=TIMEOUT_MS)
    # Cancel asks first; saying no leaves the job running.
    view.locator(".jp-mlops-JobCancel").click()
    confirm = page.locator(".jp-Dialog")
    expect(confirm).to_contain_text("Cancel training job")
    confirm.get_by_role("button", name="Cancel", exact=True).click()
    expect(confirm).to_have_count(0)
    body = view.locator(".jp-mlops-JobView-body")
    expect(body).to_have_attribute("data-status", "RUNNING")
    view.locator(".jp-mlops-JobCancel").click()
    confirm.get_by_role("button", name="Cancel job").click()
    expect(body).to_have_attribute("data-status", "CANCELED", timeout=TIMEOUT_MS)
    expect(view.locator('.jp-mlops-RankCell[data-status="RUNNING"]')).to_have_count(0)
    job_id = body.get_attribute("data-job-id")
    job = lab.api("GET", f"mlops/api/v1/jobs/{job_id}")["job"]
    assert job["status"] == "CANCELED"
    assert job["parameters"] == {"pause": 600}
    assert all(r["status"] != "RUNNING" for r in job["ranks"])
