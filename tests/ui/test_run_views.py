"""Run detail, compare, filter and status bar in a real JupyterLab (headless
Chromium). Data goes in through a notebook kernel or the REST API, as users'
code would send it; the panels must show it by themselves.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from uihelpers import (
    TIMEOUT_MS,
    expect,
    log_run,
    notebook,
    open_run,
    open_sidebar,
    run_notebook,
    set_theme,
)

pytestmark = pytest.mark.ui

PANEL = "#jupyter-mlops-runs"
TAB = '.lm-TabBar-tab[data-id="jupyter-mlops-runs"]'
LIVE_TIMEOUT_MS = TIMEOUT_MS
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _open_panel(page: Any) -> Any:
    return open_sidebar(page, PANEL, TAB)


def _select_experiment(panel: Any, exp_id: str) -> None:
    item = panel.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp_id}"]')
    expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    item.click()
    expect(item).to_have_attribute("aria-selected", "true")


def _canvas_has_ink(locator: Any) -> bool:
    """Whether a canvas has any non-transparent pixel (something was drawn)."""
    return bool(
        locator.evaluate(
            """(c) => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 3; i < d.length; i += 4) { if (d[i] !== 0) return true; }
                return false;
            }"""
        )
    )


def test_running_notebook_run_appears_and_detail_draws_charts(
    page: Any, lab: Any, screenshot_dir: Path
) -> None:
    """A cell starts a run and logs metrics without ending it: the run shows
    as Running, its detail draws a chart, and the status bar names it."""
    name = f"ui-running-{uuid.uuid4().hex[:6]}"
    source = (
        "import jupyter_mlops as mlops\n"
        f"mlops.set_experiment({name!r})\n"
        "run = mlops.start_run(run_name='live-notebook')\n"
        "mlops.log_params({'lr': 0.01, 'layers': 3})\n"
        "for i in range(200):\n"
        "    mlops.log_metric('loss', 1.0 / (i + 1), step=i)\n"
        "mlops.set_tag('stage', 'dev')\n"
        "mlops.flush() if hasattr(mlops, 'flush') else None\n"
        "print('logging')\n"
    )
    path = f"{name}.ipynb"
    panel = _open_panel(page)
    run_notebook(page, lab, path, source, "logging")

    item = panel.locator(".jp-mlops-ExperimentItem", has_text=name)
    expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    item.click()
    row = panel.locator("tr.jp-mlops-RunRow", has_text="live-notebook")
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".jp-mlops-Status")).to_have_text("Running")

    # The status bar names the notebook's active run.
    status = page.locator(".jp-mlops-ActiveRun")
    expect(status).to_contain_text("live-notebook", timeout=LIVE_TIMEOUT_MS)

    # "Show runs of this notebook" (the notebook is the current widget).
    page.evaluate(
        "() => { void window.jupyterapp.commands.execute('jupyter-mlops:notebook-runs'); }"
    )
    box = panel.get_by_label("Filter runs")
    expect(box).to_have_value(
        f"tags.`mlops.source.notebook_path` = '{path}'", timeout=LIVE_TIMEOUT_MS
    )
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(panel.locator(".jp-mlops-Filter-error")).to_have_count(0)

    row.dblclick()
    detail = page.locator(".jp-mlops-RunDetail:visible .jp-mlops-Detail")
    expect(detail.locator("h2")).to_have_text("live-notebook", timeout=LIVE_TIMEOUT_MS)
    expect(detail.locator(".jp-mlops-Params")).to_contain_text("layers")
    expect(detail.locator(".jp-mlops-Overview")).to_contain_text(path)
    canvas = detail.locator('.jp-mlops-Chart[data-metric="loss"] canvas').first
    expect(canvas).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    page.wait_for_function(
        """(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    for (let i = 3; i < d.length; i += 4) if (d[i]) return true; return false; }""",
        arg=canvas.element_handle(),
        timeout=TIMEOUT_MS,
    )
    # Axis options redraw the chart: log scale and wall time.
    detail.locator(".jp-mlops-ChartOptions-log").check()
    detail.locator(".jp-mlops-ChartOptions-xaxis").select_option("wall")
    expect(detail.locator('.jp-mlops-Chart[data-metric="loss"] canvas').first).to_be_visible()

    # Tags are editable.
    detail.get_by_label("Tag key").fill("reviewed")
    detail.get_by_label("Tag value").fill("yes")
    detail.get_by_role("button", name="Set tag").click()
    expect(detail.locator('.jp-mlops-Tags tr[data-key="reviewed"]')).to_contain_text("yes")
    run_id = detail.get_attribute("data-run-id")
    tags = {
        t["key"]: t["value"]
        for t in lab.api("GET", f"mlops/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]["data"][
            "tags"
        ]
    }
    assert tags["reviewed"] == "yes"

    # The source notebook link opens the notebook.
    detail.locator(".jp-mlops-NotebookLink").click()
    expect(page.locator(".lm-TabBar-tab.jp-mod-current", has_text=path)).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "run-detail-running.png"))
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:interrupt-kernel')")


def test_detail_shows_description_and_artifacts(page: Any, lab: Any) -> None:
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-art-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    run = lab.mlflow("runs/create", {"experiment_id": exp_id, "run_name": "with-artifacts"})["run"]
    run_id = run["info"]["run_id"]
    lab.mlflow(
        "runs/set-tag",
        {
            "run_id": run_id,
            "key": "mlflow.note.content",
            "value": "# Notes\n**bold** <script>window.pwned=1</script>",
        },
    )
    base = f"mlops/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/"
    import urllib.request

    for name, body in [
        ("metrics.csv", b"epoch,acc\n1,0.5\n2,0.75\n"),
        ("conf/config.json", b'{"lr": 0.01}'),
        ("report.html", b"<h1>Report</h1><script>parent.pwned=2</script>"),
        ("analysis.ipynb", json.dumps(notebook("print('from artifact')")).encode()),
    ]:
        req = urllib.request.Request(
            lab.url + base + name,
            data=body,
            method="PUT",
            headers={"Authorization": f"token {lab.token}"},
        )
        urllib.request.urlopen(req, timeout=30).read()

    _open_panel(page)
    page.evaluate(
        "(runId) => window.jupyterapp.commands.execute('jupyter-mlops:open-run', {runId})", run_id
    )
    detail = page.locator(".jp-mlops-RunDetail:visible .jp-mlops-Detail")
    expect(detail.locator("h2")).to_have_text("with-artifacts", timeout=LIVE_TIMEOUT_MS)
    md = detail.locator(".jp-mlops-Markdown")
    expect(md.locator("h1")).to_contain_text("Notes")
    expect(md.locator("strong")).to_have_text("bold")
    expect(md.locator("script")).to_have_count(0)

    detail.locator('.jp-mlops-ArtifactItem[data-path="metrics.csv"]').click()
    csv = detail.locator(".jp-mlops-ArtifactCsv")
    expect(csv.locator("th")).to_have_text(["epoch", "acc"])
    expect(csv.locator("tbody tr")).to_have_count(2)

    detail.locator('.jp-mlops-ArtifactItem[data-path="conf"]').click()
    detail.locator('.jp-mlops-ArtifactItem[data-path="conf/config.json"]').click()
    expect(detail.locator(".jp-mlops-ArtifactText")).to_contain_text('"lr": 0.01')

    detail.locator('.jp-mlops-ArtifactItem[data-path="report.html"]').click()
    frame = detail.locator("iframe.jp-mlops-ArtifactHtml")
    expect(frame).to_have_attribute("sandbox", "")
    expect(page.frame_locator("iframe.jp-mlops-ArtifactHtml").locator("h1")).to_have_text("Report")
    assert page.evaluate("() => window.pwned") is None

    # A notebook artifact opens read-only from the store: nothing is written into the
    # workspace, no kernel starts; "Save a copy…" is the one way a copy lands there.
    before = {c["name"] for c in lab.api("GET", "api/contents")["content"]}
    detail.locator('.jp-mlops-ArtifactItem[data-path="analysis.ipynb"]').click()
    detail.get_by_role("button", name="Open analysis.ipynb in JupyterLab").click()
    nb = page.locator(".jp-NotebookPanel.jp-mlops-ArtifactDocument:visible")
    expect(nb.locator(".jp-Cell").first).to_contain_text("from artifact", timeout=TIMEOUT_MS)
    opened = page.evaluate(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            return {path: w.context.path, writable: w.context.contentsModel.writable,
                    canSave: w.context.canSave, session: !!w.sessionContext.session};
        }"""
    )
    assert opened == {
        "path": f"mlops-artifacts:runs/{run_id}/analysis.ipynb",
        "writable": False,
        "canSave": False,
        "session": False,
    }
    assert {c["name"] for c in lab.api("GET", "api/contents")["content"]} == before
    # where: a save dialog (a file browser and a name), here into a sub-folder
    folder = f"copies-{run_id[:6]}"
    lab.api("PUT", f"api/contents/{folder}", {"type": "directory"})
    nb.locator(".jp-mlops-SaveCopy").click()
    dialog = page.locator(".jp-Dialog")
    name = dialog.locator('input[name="save-name"]')
    expect(name).to_have_value("analysis.ipynb")
    dialog.locator(".jp-DirListing-item", has_text=folder).dblclick()
    expect(dialog.locator(".jp-BreadCrumbs")).to_contain_text(folder, timeout=TIMEOUT_MS)
    copy = f"copy-{run_id[:6]}.ipynb"
    name.fill(copy)
    dialog.get_by_role("button", name="Save").click()
    saved = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=copy)
    expect(saved).to_be_visible()
    written = lab.api("GET", f"api/contents/{folder}/{copy}")
    assert written["writable"] is True
    assert "from artifact" in "".join(written["content"]["cells"][0]["source"])


def test_compare_two_runs_and_malformed_filter(
    page: Any, lab: Any, screenshot_dir: Path, allowed_console_errors: list[str]
) -> None:
    # The browser logs the malformed filter's 400 answer; the panel shows it.
    allowed_console_errors.append("status of 400 (Bad Request)")
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-cmp-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    a = log_run(lab, exp_id, "run-a", "0.1", [0.1, 0.4, 0.6, 0.7])
    b = log_run(lab, exp_id, "run-b", "0.01", [0.2, 0.5, 0.8, 0.9])
    log_run(lab, exp_id, "run-c", "0.001", [0.1, 0.2, 0.3, 0.35], optimizer="sgd")
    panel = _open_panel(page)
    _select_experiment(panel, exp_id)
    runs = panel.locator(".jp-mlops-RunsSection")
    expect(runs.locator("tr.jp-mlops-RunRow")).to_have_count(3, timeout=LIVE_TIMEOUT_MS)

    # A malformed filter: the server's message inline, no stale rows under it.
    box = runs.get_by_label("Filter runs")
    box.fill("metrics.acc >> 0.5")
    box.press("Enter")
    error = runs.locator(".jp-mlops-Filter-error")
    expect(error).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(error).to_contain_text("metrics.acc >> 0.5")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(runs.locator("tr.jp-mlops-RunRow")).to_have_count(0)
    expect(runs.locator(".jp-mlops-RunsView-count")).to_have_text("")
    page.screenshot(path=str(screenshot_dir / "filter-error.png"))
    # A good filter narrows the list and clears the error.
    box.fill("metrics.acc > 0.5")
    box.press("Enter")
    expect(error).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    expect(runs.locator("tr.jp-mlops-RunRow")).to_have_count(2, timeout=LIVE_TIMEOUT_MS)

    # Sort by a chosen metric column.
    runs.locator(".jp-mlops-ColumnChooser summary").click()
    runs.locator(".jp-mlops-ColumnChooser-list label", has_text="metrics.acc").locator(
        "input"
    ).check()
    runs.locator(".jp-mlops-ColumnChooser summary").click()
    header = runs.locator('th[data-column="metrics.acc"]')
    expect(header).to_be_visible()
    # A metric sorts best (highest) first, then the other way.
    header.click()
    expect(runs.locator("tr.jp-mlops-RunRow").first).to_have_attribute("data-run-id", b)
    header.click()
    expect(runs.locator("tr.jp-mlops-RunRow").first).to_have_attribute("data-run-id", a)

    # The column choice is kept in the settings registry.
    saved = lab.api("GET", "lab/api/settings/jupyter-mlops:plugin")["settings"]
    assert saved.get("columns") == ["metrics.acc"]

    for run_id in (a, b):
        runs.locator(f'tr[data-run-id="{run_id}"] .jp-mlops-RunRow-check input').check()
    compare = runs.locator(".jp-mlops-Action-compare")
    expect(compare).to_have_text("Compare (2)")
    compare.click()

    view = page.locator(".jp-mlops-CompareWidget:visible .jp-mlops-Compare")
    expect(view.locator("h2")).to_have_text("Comparing 2 runs", timeout=LIVE_TIMEOUT_MS)
    params = view.locator(".jp-mlops-CompareParams")
    expect(params.locator("thead th")).to_contain_text(["", "run-a", "run-b"])
    expect(params.locator('tr[data-key="lr"]')).to_have_class("jp-mlops-mod-differs")
    expect(params.locator('tr[data-key="model"]')).to_be_visible()
    view.locator(".jp-mlops-DiffOnly").check()
    expect(params.locator('tr[data-key="model"]')).to_have_count(0)
    expect(params.locator('tr[data-key="lr"]')).to_be_visible()

    for key in ("acc", "loss"):
        chart = view.locator(f'.jp-mlops-Chart[data-metric="{key}"]')
        expect(chart.locator("canvas").first).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        expect(chart.locator(".u-legend")).to_contain_text("run-a")
        expect(chart.locator(".u-legend")).to_contain_text("run-b")
    assert _canvas_has_ink(view.locator(".jp-mlops-Parallel"))
    assert _canvas_has_ink(view.locator(".jp-mlops-Scatter"))

    # A log scale per numeric axis (lr: 0.1, 0.01), shared by both plots; an axis with
    # zero or negative values cannot be log (its toggle is disabled).
    parallel = view.locator(".jp-mlops-Parallel")
    linear = parallel.evaluate("(c) => c.toDataURL()")
    lr = view.locator('.jp-mlops-LogToggles input.jp-mlops-LogAxis[data-axis="params.lr"]')
    expect(lr).to_be_enabled()
    lr.check()
    expect(lr).to_be_checked()
    page.wait_for_function(
        "([c, before]) => c.toDataURL() !== before", arg=[parallel.element_handle(), linear]
    )
    assert _canvas_has_ink(parallel)
    view.locator("select.jp-mlops-ScatterX").select_option("params.lr")
    expect(view.locator('.jp-mlops-LogToggle:has-text("log X") input')).to_be_checked()
    view.locator('.jp-mlops-LogToggle:has-text("log X") input').uncheck()
    expect(lr).not_to_be_checked()

    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    page.screenshot(path=str(screenshot_dir / "compare-light.png"), full_page=True)
    set_theme(page, "JupyterLab Dark", light=False)
    page.screenshot(path=str(screenshot_dir / "compare-dark.png"), full_page=True)
    set_theme(page, "JupyterLab Light", light=True)


def test_delete_a_run_and_undo(page: Any, lab: Any) -> None:
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-del-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    keep = log_run(lab, exp_id, "keep", "0.1", [0.5])
    gone = log_run(lab, exp_id, "gone", "0.2", [0.6])
    panel = _open_panel(page)
    _select_experiment(panel, exp_id)
    runs = panel.locator(".jp-mlops-RunsSection")
    row = runs.locator(f'tr[data-run-id="{gone}"]')
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    row.locator(".jp-mlops-RunRow-check input").check()
    runs.locator(".jp-mlops-Action-delete").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Delete 1 run?")
    dialog.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    assert (
        lab.api("GET", f"mlops/api/2.0/mlflow/runs/get?run_id={gone}")["run"]["info"][
            "lifecycle_stage"
        ]
        == "deleted"
    )
    # The confirmation offers to undo: the run comes back.
    expect(dialog).to_contain_text("1 run deleted.")
    dialog.get_by_role("button", name="Undo").click()
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    assert (
        lab.api("GET", f"mlops/api/2.0/mlflow/runs/get?run_id={gone}")["run"]["info"][
            "lifecycle_stage"
        ]
        == "active"
    )
    expect(runs.locator(f'tr[data-run-id="{keep}"]')).to_be_visible()


def test_compare_a_hundred_and_one_runs(page: Any, lab: Any) -> None:
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-many-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    ids = []
    for i in range(101):
        rid = lab.mlflow("runs/create", {"experiment_id": exp_id, "run_name": f"m{i:03d}"})["run"][
            "info"
        ]["run_id"]
        lab.api(
            "POST",
            "mlops/api/v1/runs/log-bulk",
            {
                "run_id": rid,
                "params": [{"key": "seed", "value": str(i)}],
                "metrics": [
                    {
                        "key": "loss",
                        "steps": [0, 1, 2],
                        "timestamps": [1, 2, 3],
                        "values": [1.0, 0.5 + i / 1000, 0.25],
                    }
                ],
            },
        )
        ids.append(rid)
    _open_panel(page)
    page.evaluate(
        "(ids) => { void window.jupyterapp.commands.execute("
        "'jupyter-mlops:compare-runs', {runIds: ids}); }",
        ids,
    )
    view = page.locator(".jp-mlops-CompareWidget:visible .jp-mlops-Compare")
    expect(view.locator("h2")).to_have_text("Comparing 101 runs", timeout=LIVE_TIMEOUT_MS)
    # Every run is a column, in the order asked.
    heads = view.locator(".jp-mlops-CompareParams thead th")
    expect(heads).to_have_count(102)
    expect(heads.nth(1)).to_have_text("m000")
    expect(heads.nth(101)).to_have_text("m100")
    # Room for each run: columns keep their width and the table scrolls sideways under a
    # pinned key column (not 101 columns squeezed into the tab).
    table = view.locator(".jp-mlops-CompareParams .jp-mlops-TableScroll")
    layout = table.evaluate(
        """(s) => {
            const cell = s.querySelector('tbody td');
            const key = s.querySelector('tbody th[scope="row"]');
            const before = key.getBoundingClientRect().left;
            s.scrollLeft = s.scrollWidth;
            const after = key.getBoundingClientRect().left;
            const far = s.querySelectorAll('tbody tr')[0].lastElementChild.getBoundingClientRect();
            return {wide: s.scrollWidth > 3 * s.clientWidth, cell: cell.offsetWidth,
                    font: parseFloat(getComputedStyle(cell).fontSize),
                    moved: s.scrollLeft > 0, pinned: Math.abs(after - before) < 1,
                    farVisible: far.right <= s.getBoundingClientRect().right + 1};
        }"""
    )
    assert layout["wide"] and layout["moved"] and layout["pinned"] and layout["farVisible"]
    assert layout["cell"] >= 7 * layout["font"]  # at least ~8em, not a few characters
    chart = view.locator('.jp-mlops-Chart[data-metric="loss"]')
    expect(chart.locator(".u-legend .u-series")).to_have_count(102, timeout=LIVE_TIMEOUT_MS)
    assert _canvas_has_ink(view.locator(".jp-mlops-Parallel"))


def test_restore_a_deleted_experiment(page: Any, lab: Any) -> None:
    name = f"ui-restore-{uuid.uuid4().hex[:6]}"
    exp_id = lab.mlflow("experiments/create", {"name": name})["experiment_id"]
    lab.mlflow("experiments/delete", {"experiment_id": exp_id})
    panel = _open_panel(page)
    item = panel.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp_id}"]')
    expect(item).to_have_count(0)
    page.evaluate(
        "() => { void window.jupyterapp.commands.execute('jupyter-mlops:restore-experiment'); }"
    )
    dialog = page.locator(".jp-Dialog")
    dialog.locator("select").select_option(f"{name} ({exp_id})")
    dialog.get_by_role("button", name="Restore").click()
    expect(item).to_contain_text(name, timeout=LIVE_TIMEOUT_MS)
    got = lab.api("GET", f"mlops/api/2.0/mlflow/experiments/get?experiment_id={exp_id}")
    assert got["experiment"]["lifecycle_stage"] == "active"


def test_charts_of_a_single_point_and_of_a_millisecond_series(page: Any, lab: Any) -> None:
    """A metric logged once shows its value and a dot; a series logged within milliseconds
    gets a readable wall-time axis (the chart draws, its x-range is at least 2 s)."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-chart-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    t0 = int(time.time() * 1000)
    run_id = lab.mlflow(
        "runs/create", {"experiment_id": exp_id, "run_name": "once", "start_time": t0}
    )["run"]["info"]["run_id"]
    lab.mlflow(
        "runs/log-batch",
        {
            "run_id": run_id,
            "metrics": [{"key": "final", "value": 0.5, "timestamp": t0, "step": 3}]
            + [
                {"key": "fast", "value": v, "timestamp": t0 + i, "step": i}
                for i, v in enumerate([0.1, 0.2, 0.3])
            ],
        },
    )
    open_run(page, run_id)
    detail = page.locator(f'.jp-mlops-Detail[data-run-id="{run_id}"]')
    single = detail.locator('.jp-mlops-Chart[data-metric="final"]')
    expect(single.locator(".jp-mlops-Chart-single")).to_have_text(" = 0.5 (step 3)")
    expect(single.locator(".uplot canvas")).to_have_count(1)
    detail.locator(".jp-mlops-ChartOptions-xaxis").select_option("wall")
    fast = detail.locator('.jp-mlops-Chart[data-metric="fast"]')
    expect(fast.locator(".uplot canvas")).to_have_count(1)
    # Three points 2 ms apart: the axis spans two seconds around them, not years.
    expect(fast.locator(".jp-mlops-Chart-plot")).to_have_attribute("data-x-span", "2")


def test_links_the_mlflow_client_prints_open_the_run(browser: Any, lab: Any) -> None:
    """`View run at <uri>/#/experiments/<id>/runs/<id>` (the server redirects mlops/ to
    JupyterLab, the browser keeps the fragment) opens that run's detail; the experiment
    link selects the experiment in the sidebar."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-link-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    run_id = log_run(lab, exp_id, "linked-run", "0.1", [0.5, 0.6])
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        pg = context.new_page()
        pg.goto(f"{lab.url}mlops/?token={lab.token}#/experiments/{exp_id}/runs/{run_id}")
        detail = pg.locator(f'.jp-mlops-Detail[data-run-id="{run_id}"]')
        expect(detail).to_be_visible()
        expect(detail.locator("h2")).to_have_text("linked-run")
        selected = pg.locator(".jp-mlops-ExperimentItem.jp-mod-selected")
        expect(selected).to_have_attribute("data-experiment-id", exp_id)
        # The fragment is consumed: a reload restores the layout instead.
        assert "#" not in pg.url
    finally:
        context.close()


def test_arrow_keys_move_between_runs(page: Any, lab: Any) -> None:
    """Arrow keys move the selection between rows (as in the file browser); Space ticks."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-keys-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    first = log_run(lab, exp_id, "key-a", "0.1", [0.5])
    second = log_run(lab, exp_id, "key-b", "0.2", [0.6])
    panel = _open_panel(page)
    _select_experiment(panel, exp_id)
    rows = panel.locator(".jp-mlops-RunsSection tr.jp-mlops-RunRow")
    expect(rows).to_have_count(2)
    top = rows.nth(0)
    top.click()
    expect(top).to_have_attribute("aria-selected", "true")
    # The keys go to the focused row (``open_in`` waited until JupyterLab's own start-up
    # focus moves were over: its late Launcher took the focus from this row).
    expect(top).to_be_focused()
    top_id = top.get_attribute("data-run-id")
    other = second if top_id == first else first
    page.keyboard.press("ArrowDown")
    below = panel.locator(f'tr[data-run-id="{other}"]')
    expect(below).to_have_attribute("aria-selected", "true")
    expect(below).to_be_focused()
    page.keyboard.press("Space")
    expect(below.locator(".jp-mlops-RunRow-check input")).to_be_checked()
    page.keyboard.press("ArrowUp")
    expect(top).to_have_attribute("aria-selected", "true")
