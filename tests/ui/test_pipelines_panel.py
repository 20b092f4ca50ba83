"""The Pipelines sidebar in a real JupyterLab (headless Chromium): a two-step
pipeline written into the lab root is submitted from the panel's form, its run
view shows the DAG going green and a step's log, and a long run is cancelled.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import pytest
from uihelpers import (
    KERNEL_TIMEOUT_MS,
    TIMEOUT_MS,
    expect,
    notebook,
    open_sidebar,
    run_notebook,
    set_theme,
)

pytestmark = pytest.mark.ui

PANEL = "#jupyter-mlops-pipelines"
TAB = '.lm-TabBar-tab[data-id="jupyter-mlops-pipelines"]'

PIPELINE = """\
name: ui-tiny
description: Greets, then sleeps.
parameters:
  who: {type: string, description: who to greet}
  pause: {type: float, default: 0.5}
  mode: {type: string, default: fast, enum: [fast, full]}
steps:
  greet:
    script: greet.py
    parameters: {who: "{{ params.who }}"}
  rest:
    script: rest.py
    depends_on: [greet]
    parameters: {pause: "{{ params.pause }}"}
"""

GREET = """\
import sys
who = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--who=")][0]
print(f"hello {who} from the greet step", flush=True)
"""

REST = """\
import sys, time
pause = float([a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--pause=")][0])
print("resting", pause, flush=True)
time.sleep(pause)
print(f"rested {pause} seconds", flush=True)
"""


@pytest.fixture
def pipeline_file(lab: Any) -> str:
    folder = lab.root / "work" / "flows"
    folder.mkdir(exist_ok=True)
    (folder / "tiny.pipeline.yaml").write_text(PIPELINE)
    (folder / "greet.py").write_text(textwrap.dedent(GREET))
    (folder / "rest.py").write_text(textwrap.dedent(REST))
    return "flows/tiny.pipeline.yaml"


def _open_panel(page: Any) -> Any:
    return open_sidebar(page, PANEL, TAB)


def _open_submit_dialog(page: Any, path: str) -> Any:
    panel = _open_panel(page)
    panel.locator(".jp-mlops-PipelinesRefresh").click()
    item = panel.locator(f'.jp-mlops-PipelineFile[data-path="{path}"]')
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.locator(".jp-mlops-PipelineFile-run").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-mlops-SubmitForm")).to_be_visible(timeout=TIMEOUT_MS)
    return dialog


def _run_view(page: Any) -> Any:
    view = page.locator(".jp-mlops-PipelineRunView:visible")
    expect(view).to_have_count(1, timeout=TIMEOUT_MS)
    return view


def test_submit_watch_and_read_log(
    page: Any, lab: Any, pipeline_file: str, screenshot_dir: Any
) -> None:
    dialog = _open_submit_dialog(page, pipeline_file)
    # The form follows the declared parameters: types, defaults, enum choices.
    form = dialog.locator(".jp-mlops-SubmitForm")
    expect(form.locator('input[name="pause"]')).to_have_value("0.5")
    expect(form.locator('input[name="pause"]')).to_have_attribute("type", "number")
    expect(form.locator('select[name="mode"] option')).to_have_text(["fast", "full"])
    expect(form.locator('select[name="target"]')).to_have_value("local")
    # The run name it will use, shown and editable: the pipeline's name and the time.
    expect(form.locator('input[name="run_name"]')).to_have_value(
        re.compile(r"^ui-tiny \d{4}-\d\d-\d\d \d\d:\d\d$")
    )
    form.locator('input[name="run_name"]').fill("tester run")
    # The required parameter left empty: the dialog comes back saying so.
    dialog.locator(".jp-mod-accept").click()
    error = page.locator('.jp-mlops-FormField[data-param="who"] .jp-mlops-FormField-error')
    expect(error).to_have_text("required")
    page.locator('.jp-mlops-SubmitForm input[name="who"]').fill("tester")
    expect(error).to_have_count(0)
    page.locator(".jp-Dialog .jp-mod-accept").click()

    view = _run_view(page)
    status = view.locator(".jp-mlops-PipelineRunView-header .jp-mlops-PipelineStatus")
    expect(status).to_have_text("SUCCEEDED", timeout=TIMEOUT_MS)
    expect(view.locator(".jp-mlops-PipelineRunView-progress")).to_have_text("2 of 2 steps done")
    expect(view.locator(".jp-mlops-PipelineRunView-name")).to_have_text("tester run")
    expect(view.locator(".jp-mlops-PipelineRunView-pipeline")).to_have_text("ui-tiny")
    nodes = view.locator(".jp-mlops-DagNode")
    expect(nodes).to_have_count(2)
    expect(view.locator('.jp-mlops-DagNode[data-status="SUCCEEDED"]')).to_have_count(2)
    expect(view.locator(".jp-mlops-DagEdge")).to_have_count(1)
    # Steps are laid out left to right in dependency order.
    greet_box = view.locator('.jp-mlops-DagNode[data-step="greet"]').bounding_box()
    rest_box = view.locator('.jp-mlops-DagNode[data-step="rest"]').bounding_box()
    assert greet_box["x"] + greet_box["width"] <= rest_box["x"]

    view.locator('.jp-mlops-DagNode[data-step="greet"]').click()
    log = view.locator(".jp-mlops-PipelineLog-text")
    expect(log).to_have_attribute("data-step", "greet")
    expect(log).to_contain_text("hello tester from the greet step", timeout=TIMEOUT_MS)
    view.locator('.jp-mlops-DagNode[data-step="rest"]').click()
    expect(log).to_contain_text("rested 0.5 seconds", timeout=TIMEOUT_MS)
    expect(view.locator(".jp-mlops-PipelineCancel")).to_be_disabled()

    # The run is listed in the sidebar; the server agrees it succeeded.
    panel = _open_panel(page)
    run_id = view.locator(".jp-mlops-PipelineRunView-body").get_attribute("data-run-id")
    item = panel.locator(f'.jp-mlops-PipelineRunItem[data-run-id="{run_id}"]')
    expect(item).to_have_attribute("data-status", "SUCCEEDED", timeout=TIMEOUT_MS)
    expect(item.locator(".jp-mlops-PipelineRunItem-name")).to_have_text("tester run")
    run = lab.api("GET", f"mlops/api/v1/pipelines/runs/{run_id}")["run"]
    assert run["status"] == "SUCCEEDED"
    assert run["parameters"] == {"who": "tester", "pause": 0.5, "mode": "fast"}

    # Step boxes take their colours from the theme (a status tint over the
    # theme's background), light and dark.
    view.locator(".jp-mlops-PipelineRunView-body").scroll_into_view_if_needed()
    page.locator('.lm-TabBar-tab:has-text("tester run")').first.click()
    rect = view.locator('.jp-mlops-DagNode[data-step="greet"] rect')
    fills = {}
    for theme, light in (("JupyterLab Light", True), ("JupyterLab Dark", False)):
        set_theme(page, theme, light)
        fill, expected = rect.evaluate(
            """(r) => {
                const probe = document.createElement('div');
                probe.style.color = 'var(--jp-layout-color1)';
                document.body.appendChild(probe);
                const want = getComputedStyle(probe).color;
                probe.remove();
                return [getComputedStyle(r).fill, want];
            }"""
        )
        assert fill != expected  # tinted, not the plain background
        fills[theme] = fill
        page.screenshot(
            path=str(screenshot_dir / f"pipeline-run-{'light' if light else 'dark'}.png")
        )
    assert fills["JupyterLab Light"] != fills["JupyterLab Dark"]
    set_theme(page, "JupyterLab Light", True)


def test_cancel_a_long_run(page: Any, lab: Any, pipeline_file: str) -> None:
    dialog = _open_submit_dialog(page, pipeline_file)
    form = dialog.locator(".jp-mlops-SubmitForm")
    form.locator('input[name="who"]').fill("sleeper")
    form.locator('input[name="pause"]').fill("600")
    form.locator('select[name="mode"]').select_option("full")
    dialog.locator(".jp-mod-accept").click()

    view = _run_view(page)
    rest = view.locator('.jp-mlops-DagNode[data-step="rest"]')
    expect(rest).to_have_attribute("data-status", "RUNNING", timeout=TIMEOUT_MS)
    rest.click()
    log = view.locator(".jp-mlops-PipelineLog-text")
    expect(log).to_contain_text("resting 600.0", timeout=TIMEOUT_MS)  # followed live
    expect(view.locator(".jp-mlops-PipelineLog-follow")).to_be_visible()
    expect(view.locator(".jp-mlops-PipelineRetry")).to_be_disabled()
    # Cancel asks first; saying no leaves the run going.
    view.locator(".jp-mlops-PipelineCancel").click()
    confirm = page.locator(".jp-Dialog")
    expect(confirm).to_contain_text("Cancel pipeline run")
    confirm.get_by_role("button", name="Cancel", exact=True).click()
    expect(confirm).to_have_count(0)
    expect(rest).to_have_attribute("data-status", "RUNNING")
    view.locator(".jp-mlops-PipelineCancel").click()
    confirm.get_by_role("button", name="Cancel run").click()
    status = view.locator(".jp-mlops-PipelineRunView-header .jp-mlops-PipelineStatus")
    expect(status).to_have_text("CANCELED", timeout=TIMEOUT_MS)
    # The run view shows what it ran with.
    expect(view.locator('.jp-mlops-PipelineRunView-params dd[data-param="mode"]')).to_have_text(
        "mode = full"
    )
    # Not "2 of 2 steps done": the rest step was stopped.
    expect(view.locator(".jp-mlops-PipelineRunView-progress")).to_have_text(
        "1 of 2 steps succeeded"
    )
    expect(rest).not_to_have_attribute("data-status", "RUNNING", timeout=TIMEOUT_MS)
    run_id = view.locator(".jp-mlops-PipelineRunView-body").get_attribute("data-run-id")
    run = lab.api("GET", f"mlops/api/v1/pipelines/runs/{run_id}")["run"]
    assert run["status"] == "CANCELED"
    assert run["parameters"]["mode"] == "full"
    # Retry is offered once it ended: a new run reusing the greet step's
    # success, shown in a view of its own (cancelled in turn).
    retry = view.locator(".jp-mlops-PipelineRetry")
    expect(retry).to_be_enabled()
    retry.click()
    new_body = page.locator(
        f'.jp-mlops-PipelineRunView-body[data-run-id]:visible:not([data-run-id="{run_id}"])'
    )
    expect(new_body).to_have_count(1, timeout=TIMEOUT_MS)
    new_id = new_body.get_attribute("data-run-id")
    new_rest = new_body.locator('.jp-mlops-DagNode[data-step="rest"]')
    expect(new_rest).to_have_attribute("data-status", "RUNNING", timeout=TIMEOUT_MS)
    new_body.locator(".jp-mlops-PipelineCancel").click()
    confirm.get_by_role("button", name="Cancel run").click()
    expect(
        new_body.locator(".jp-mlops-PipelineRunView-header .jp-mlops-PipelineStatus")
    ).to_have_text("CANCELED", timeout=TIMEOUT_MS)
    retried = lab.api("GET", f"mlops/api/v1/pipelines/runs/{new_id}")["run"]
    assert retried["retry_of"] == run_id
    assert retried["parameters"] == run["parameters"]


def test_run_pipeline_from_the_file_browser(page: Any, pipeline_file: str) -> None:
    page.evaluate(
        "(p) => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: p})", "flows"
    )
    item = page.locator('.jp-DirListing-item[title*="tiny.pipeline.yaml"]').first
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.click(button="right")
    entry = page.locator('.lm-Menu-item[data-command="jupyter-mlops:run-pipeline"]')
    expect(entry).to_be_visible()
    entry.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-mlops-SubmitForm")).to_be_visible(timeout=TIMEOUT_MS)
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text("ui-tiny")
    dialog.locator(".jp-mod-reject").click()
    expect(dialog).to_have_count(0)


def test_invalid_pipeline_names_its_issues(page: Any, lab: Any) -> None:
    """An invalid file is refused before the form: each issue with its line."""
    folder = lab.root / "work" / "broken"
    folder.mkdir(exist_ok=True)
    (folder / "bad.pipeline.yaml").write_text(
        "name: bad\nsteps:\n  only:\n    script: missing.py\n    depends_on: [ghost]\n"
    )
    panel = _open_panel(page)
    panel.locator(".jp-mlops-PipelinesRefresh").click()
    item = panel.locator('.jp-mlops-PipelineFile[data-path="broken/bad.pipeline.yaml"]')
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.locator(".jp-mlops-PipelineFile-run").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("The pipeline is not valid", timeout=TIMEOUT_MS)
    expect(dialog).to_contain_text("unknown step 'ghost'")
    expect(dialog).to_contain_text("missing.py")
    expect(dialog.locator(".jp-mlops-SubmitForm")).to_have_count(0)
    dialog.locator(".jp-mod-accept, .jp-mod-reject").first.click()
    expect(dialog).to_have_count(0)
    assert lab.api("GET", "mlops/api/v1/pipelines/runs?path=broken/bad.pipeline.yaml")["runs"] == []


def test_open_executed_notebook_of_a_step(page: Any, lab: Any) -> None:
    """A notebook step's executed copy opens in JupyterLab with its outputs, read-only from
    the store: nothing is written into the workspace and no kernel starts (issue 10, 7)."""
    folder = lab.root / "work" / "nbflow"
    folder.mkdir(exist_ok=True)
    (folder / "square.ipynb").write_text(
        json.dumps(notebook(("n = 2", ["parameters"]), "print('squared', n * n)"))
    )
    (folder / "nb.pipeline.yaml").write_text(
        "name: ui-nb\nparameters:\n  n: {type: integer, default: 7}\n"
        "steps:\n  square:\n    notebook: square.ipynb\n"
        '    parameters: {n: "{{ params.n }}"}\n'
    )
    dialog = _open_submit_dialog(page, "nbflow/nb.pipeline.yaml")
    expect(dialog.locator('input[name="n"]')).to_have_value("7")
    dialog.locator(".jp-mod-accept").click()
    view = _run_view(page)
    status = view.locator(".jp-mlops-PipelineRunView-header .jp-mlops-PipelineStatus")
    expect(status).to_have_text("SUCCEEDED", timeout=KERNEL_TIMEOUT_MS)
    expect(view.locator(".jp-mlops-PipelineLog-text")).to_contain_text("squared 49")
    # The pipeline run's tab has its icon (issue 10, 12).
    run_tab = page.locator('.lm-TabBar-tab[data-id^="jupyter-mlops-pipeline-run-"]').last
    expect(run_tab.locator(".lm-TabBar-tabIcon svg")).to_have_count(1)
    before = {c["name"] for c in lab.api("GET", "api/contents")["content"]}
    folder_before = {c["name"] for c in lab.api("GET", "api/contents/nbflow")["content"]}
    view.locator(".jp-mlops-PipelineNotebook").click()
    output = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output")
    expect(output.filter(has_text="squared 49")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(page.locator(".jp-NotebookPanel.jp-mlops-ArtifactDocument:visible")).to_have_count(1)
    opened = page.evaluate(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            return {path: w.context.path, writable: w.context.contentsModel.writable,
                    canSave: w.context.canSave, session: !!w.sessionContext.session};
        }"""
    )
    assert opened["path"].startswith("mlops-artifacts:pipelines/"), opened
    assert "/square/" in opened["path"] and opened["path"].endswith("-square.ipynb"), opened
    assert (opened["writable"], opened["canSave"], opened["session"]) == (False, False, False)
    # No copy in the workspace (no mlops-artifacts/ folder, no checkpoint beside the source).
    assert {c["name"] for c in lab.api("GET", "api/contents")["content"]} == before
    assert {c["name"] for c in lab.api("GET", "api/contents/nbflow")["content"]} == folder_before


def test_panel_says_it_is_loading_on_a_slow_connection(page: Any, pipeline_file: str) -> None:
    """While the first answer is on its way the panel says so (it was blank)."""
    held: list[Any] = []
    page.route("**/mlops/api/v1/pipelines/files*", lambda route: held.append(route))
    panel = _open_panel(page)
    loading = panel.locator(".jp-mlops-Placeholder-loading")
    expect(loading).to_contain_text("Loading pipelines")
    page.unroute("**/mlops/api/v1/pipelines/files*")
    assert held  # the first answer was held back; unroute lets it through
    expect(loading).to_have_count(0)
    expect(panel.locator(f'.jp-mlops-PipelineFile[data-path="{pipeline_file}"]')).to_be_visible()


def test_pipeline_run_link_opens_it_and_copy_link_gives_it(
    page: Any, lab: Any, pipeline_file: str
) -> None:
    """`#/pipelines/runs/<id>` opens that pipeline run's view inside JupyterLab, and "Copy
    link" on its tab gives that URL (issue 10, point 2)."""
    run = lab.api(
        "POST",
        "mlops/api/v1/pipelines/runs",
        {"path": pipeline_file, "parameters": {"who": "linker", "pause": 0}, "run_name": "linked"},
    )["run"]
    run_id = run["run_id"]
    expected = f"{lab.url}mlops/#/pipelines/runs/{run_id}"
    page.goto(f"{lab.url}mlops/?token={lab.token}#/pipelines/runs/{run_id}")
    body = page.locator(f'.jp-mlops-PipelineRunView-body[data-run-id="{run_id}"]')
    expect(body).to_be_visible(timeout=TIMEOUT_MS)
    expect(body.locator(".jp-mlops-PipelineRunView-name")).to_have_text("linked")
    assert "#" not in page.url  # opened once: a reload restores the layout instead
    tab = page.locator(f'.lm-TabBar-tab[data-id="jupyter-mlops-pipeline-run-{run_id}"]')
    tab.click(button="right")
    page.locator(".lm-Menu").get_by_text("MLOps: Copy link").click()
    expect(page.locator(".Toastify__toast", has_text=expected)).to_be_visible()


THREE_STEPS = """\
name: ui-three
steps:
  a: {script: ok.py}
  b: {script: ok.py, depends_on: [a]}
  c: {script: fails.py, depends_on: [b]}
"""


def test_magic_in_a_notebook_loads_once_and_counts_succeeded_steps(page: Any, lab: Any) -> None:
    """In a notebook: a second `%load_ext jupyter_mlops` says all is in place (not IPython's
    "already loaded. To reload it" nor an error), and `%mlops pipeline run` counts the steps
    that succeeded: 2 of 3 prints "2/3", never "3/3" (issue 10, point 12)."""
    folder = lab.root / "work" / "threeflow"
    folder.mkdir(exist_ok=True)
    (folder / "three.pipeline.yaml").write_text(THREE_STEPS)
    (folder / "ok.py").write_text("print('ok')\n")
    (folder / "fails.py").write_text("import sys\nsys.exit(4)\n")
    run_notebook(
        page,
        lab,
        "threeflow/magic.ipynb",
        [
            "%load_ext jupyter_mlops",
            "%load_ext jupyter_mlops",
            "%mlops pipeline run three.pipeline.yaml",
        ],
        "%mlops and %%mlops are ready",
    )
    cells = page.locator(".jp-NotebookPanel:visible .jp-CodeCell")
    again = cells.nth(1).locator(".jp-OutputArea-output")
    expect(again).to_contain_text(
        "jupyter-mlops is already loaded: %mlops and %%mlops are ready",
        timeout=KERNEL_TIMEOUT_MS,
    )
    expect(again).not_to_contain_text("To reload it")
    expect(
        cells.nth(1).locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        )
    ).to_have_count(0)
    progress = cells.nth(2).locator(".jp-OutputArea")
    expect(progress).to_contain_text("FAILED", timeout=KERNEL_TIMEOUT_MS)
    expect(progress).to_contain_text(re.compile(r" 2/3 c: FAILED"))
    expect(progress).to_contain_text(re.compile(r" [12]/3 b: SUCCEEDED"))
    assert "3/3" not in progress.inner_text()
