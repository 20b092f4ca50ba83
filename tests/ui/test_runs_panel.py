"""The MLOps sidebar in a real JupyterLab, in headless Chromium.

Data goes in through the server's REST API, as a notebook or the ``mlflow``
client would send it; the panel must show it by itself (polling), with no
manual refresh.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from uihelpers import TIMEOUT_MS, expect, open_sidebar, run_notebook, set_theme

pytestmark = pytest.mark.ui

PANEL = "#jupyter-mlops-runs"
TAB = '.lm-TabBar-tab[data-id="jupyter-mlops-runs"]'
LIVE_TIMEOUT_MS = TIMEOUT_MS


def _open_panel(page: Any) -> Any:
    """Open the sidebar by clicking its tab, as a user would."""
    return open_sidebar(page, PANEL, TAB)


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_panel_has_a_sidebar_tab_and_lists_experiments(page: Any, lab: Any) -> None:
    names = [f"ui-list-{uuid.uuid4().hex[:6]}-{i}" for i in range(2)]
    ids = [lab.mlflow("experiments/create", {"name": n})["experiment_id"] for n in names]

    tab = page.locator(TAB)
    expect(tab).to_be_visible()
    expect(tab).to_have_attribute("title", re.compile("MLOps"))
    panel = _open_panel(page)

    for exp_id, name in zip(ids, names):
        item = panel.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp_id}"]')
        expect(item).to_contain_text(name)
    # Nothing hard-coded: the list renders every active experiment the API has.
    listed = lab.mlflow("experiments/search", {"max_results": 1000})["experiments"]
    expect(panel.locator(".jp-mlops-ExperimentItem")).to_have_count(len(listed))


def test_run_logged_through_rest_appears_without_refresh(
    page: Any, lab: Any, screenshot_dir: Path
) -> None:
    name = f"ui-live-{uuid.uuid4().hex[:6]}"
    exp_id = lab.mlflow("experiments/create", {"name": name})["experiment_id"]
    panel = _open_panel(page)

    item = panel.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp_id}"]')
    expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    item.click()
    expect(item).to_have_attribute("aria-selected", "true")
    runs = panel.locator(".jp-mlops-RunsSection")
    expect(runs).to_contain_text("No runs in this experiment yet")

    started = _now_ms()
    run = lab.mlflow(
        "runs/create",
        {"experiment_id": exp_id, "run_name": "live-run", "start_time": started},
    )["run"]
    run_id = run["info"]["run_id"]
    lab.mlflow(
        "runs/log-metric",
        {"run_id": run_id, "key": "loss", "value": 0.25, "timestamp": started, "step": 0},
    )

    row = runs.locator(f'tr[data-run-id="{run_id}"]')
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row).to_contain_text("live-run")
    expect(row.locator(".jp-mlops-Status")).to_have_text("Running")
    expect(runs).to_contain_text("1 run")

    lab.mlflow(
        "runs/update",
        {"run_id": run_id, "status": "FINISHED", "end_time": started + 83_000},
    )
    expect(row.locator(".jp-mlops-Status")).to_have_text("Finished", timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".jp-mlops-RunRow-duration")).to_have_text("1m 23s")

    # A second run lands above the first (newest first).
    second = lab.mlflow(
        "runs/create",
        {"experiment_id": exp_id, "run_name": "second-run", "start_time": started + 1000},
    )["run"]["info"]["run_id"]
    expect(runs.locator("tbody tr").first).to_have_attribute(
        "data-run-id", second, timeout=LIVE_TIMEOUT_MS
    )
    expect(runs.locator("tbody tr")).to_have_count(2)

    row.click()
    expect(row).to_have_attribute("aria-selected", "true")

    set_theme(page, "JupyterLab Light", light=True)
    light_bg = panel.evaluate("(el) => getComputedStyle(el).backgroundColor")
    page.screenshot(path=str(screenshot_dir / "runs-panel-light.png"))

    set_theme(page, "JupyterLab Dark", light=False)
    dark_bg = panel.evaluate("(el) => getComputedStyle(el).backgroundColor")
    page.screenshot(path=str(screenshot_dir / "runs-panel-dark.png"))
    # The panel follows the theme (theme variables, no hard-coded colours).
    assert light_bg != dark_bg
    set_theme(page, "JupyterLab Light", light=True)


def _set_refresh_interval(lab: Any, seconds: float) -> None:
    lab.api(
        "PUT",
        "lab/api/settings/jupyter-mlops:plugin",
        {"raw": json.dumps({"refreshInterval": seconds})},
    )


def test_palette_commands_open_and_refresh_the_panel(page: Any, lab: Any) -> None:
    # Automatic refresh off: only "MLOps: Refresh" (or reopening) reloads.
    _set_refresh_interval(lab, 0)
    try:
        lab.open_in(page)
        expect(page.locator(PANEL)).to_be_hidden()

        # The focus is in the main area (open_in waited for it): no click, which could
        # land on a Launcher card and open a notebook.
        page.keyboard.press("Control+Shift+C")
        palette = page.locator(".lm-CommandPalette")
        expect(palette).to_be_visible()
        palette.locator("input").fill("MLOps")
        items = palette.locator(".lm-CommandPalette-item")
        refresh = palette.locator('.lm-CommandPalette-item[data-command="jupyter-mlops:refresh"]')
        expect(refresh).to_have_count(1)
        expect(refresh).to_contain_text("MLOps: Refresh")
        items.filter(has_text="MLOps: Open runs panel").click()
        panel = page.locator(PANEL)
        expect(panel).to_be_visible()
        expect(panel.locator(".jp-mlops-ExperimentItem").first).to_be_visible()

        name = f"ui-refresh-{uuid.uuid4().hex[:6]}"
        exp_id = lab.mlflow("experiments/create", {"name": name})["experiment_id"]
        page.keyboard.press("Control+Shift+C")
        palette.locator("input").fill("MLOps: Refresh")
        refresh.click()
        expect(panel.locator(f'[data-experiment-id="{exp_id}"]')).to_contain_text(name)
    finally:
        _set_refresh_interval(lab, 5)


def test_every_palette_item_of_ours_reads_mlops_verb_object(page: Any, lab: Any) -> None:
    """One naming scheme for our commands in the palette: "MLOps: <Verb> <object>"."""
    # The page fixture opened JupyterLab and waited until it settled: the palette stays open
    # (any command run closes it and clears its query) and the keys reach JupyterLab.
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette")
    expect(palette).to_be_visible()
    palette.locator("input").fill("")  # every item, whatever query the palette had
    ours = palette.locator(
        '.lm-CommandPalette-item[data-command^="jupyter-mlops"] .lm-CommandPalette-itemLabel'
    )
    expect(ours.first).to_be_attached()
    labels = ours.all_text_contents()
    # Read from the open palette, not from one a command closed meanwhile.
    expect(palette).to_be_visible()
    assert len(labels) >= 20, labels
    assert [t for t in labels if not re.match(r"MLOps: [A-Z][a-z]+\b", t)] == []


def test_new_experiment_from_the_toolbar(page: Any, lab: Any) -> None:
    panel = _open_panel(page)
    name = f"ui-new-{uuid.uuid4().hex[:6]}"
    panel.locator('.jp-SidePanel-toolbar [data-command="jupyter-mlops:create-experiment"]').click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_be_visible()
    dialog.locator("input").fill(name)
    dialog.locator("input").press("Enter")
    expect(dialog).to_be_hidden()

    selected = panel.locator(".jp-mlops-ExperimentItem.jp-mod-selected")
    expect(selected).to_contain_text(name, timeout=LIVE_TIMEOUT_MS)
    # It exists on the server, created through the front end's REST client.
    created = lab.api(
        "GET", f"mlops/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"
    )["experiment"]
    assert created["name"] == name
    assert selected.get_attribute("data-experiment-id") == created["experiment_id"]
    expect(panel.locator(".jp-mlops-RunsSection")).to_contain_text("No runs in this experiment yet")


def test_run_logged_from_a_notebook_cell_appears(page: Any, lab: Any) -> None:
    """The whole path: a notebook cell logs with ``jupyter_mlops`` (the kernel
    finds the server's store with no configuration) and the panel shows it."""
    name = f"ui-nb-{uuid.uuid4().hex[:6]}"
    source = (
        "import jupyter_mlops as mlops\n"
        f"mlops.set_experiment({name!r})\n"
        "with mlops.start_run(run_name='from-notebook'):\n"
        "    mlops.log_metric('loss', 0.5, step=1)\n"
        "print('logged')\n"
    )
    panel = _open_panel(page)
    run_notebook(page, lab, f"{name}.ipynb", source, "logged")

    item = panel.locator(".jp-mlops-ExperimentItem", has_text=name)
    expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    item.click()
    row = panel.locator("tr.jp-mlops-RunRow", has_text="from-notebook")
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".jp-mlops-Status")).to_have_text("Finished", timeout=LIVE_TIMEOUT_MS)


def test_panel_explains_a_missing_server_extension(browser: Any, lab_without_api: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        lab_without_api.open_in(page)
        panel = _open_panel(page)
        error = panel.locator(".jp-mlops-ExperimentsSection .jp-mlops-Placeholder-error")
        expect(error).to_contain_text("Could not load experiments")
        expect(error).to_contain_text("server extension")
        expect(error.get_by_role("button", name="Retry")).to_be_visible()
        expect(panel.locator(".jp-mlops-ExperimentItem")).to_have_count(0)
    finally:
        context.close()


def test_rename_and_delete_from_the_context_menu(page: Any, lab: Any) -> None:
    name = f"ui-ctx-{uuid.uuid4().hex[:6]}"
    exp_id = lab.mlflow("experiments/create", {"name": name})["experiment_id"]
    panel = _open_panel(page)
    item = panel.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp_id}"]')
    expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)

    menu = page.locator(".lm-Menu")
    item.click(button="right")
    menu.get_by_text("MLOps: Rename experiment…").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill(name + "-renamed")
    dialog.get_by_role("button", name="Rename").click()
    expect(item).to_contain_text(name + "-renamed")
    got = lab.api("GET", f"mlops/api/2.0/mlflow/experiments/get?experiment_id={exp_id}")
    assert got["experiment"]["name"] == name + "-renamed"

    item.click(button="right")
    menu.get_by_text("MLOps: Delete experiment…").click()
    expect(dialog).to_contain_text(name + "-renamed")
    dialog.get_by_role("button", name="Delete").click()
    expect(item).to_have_count(0)
    got = lab.api("GET", f"mlops/api/2.0/mlflow/experiments/get?experiment_id={exp_id}")
    assert got["experiment"]["lifecycle_stage"] == "deleted"


def test_runs_table_sorts_counts_and_pages_on_the_server(
    page: Any, lab: Any, allowed_console_errors: list[str]
) -> None:
    """More runs than one page (100): the server sorts, filters and counts them all, rows
    are read as they scroll into view, and child runs stay under their parent."""
    allowed_console_errors.append("status of 400 (Bad Request)")
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-page-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    base = _now_ms() - 3_600_000
    values = random.Random(7).sample(range(1, 10_000), 230)
    values[0] = 10_000  # the best run is the oldest: not among the newest 100

    def log(i: int, acc: float, tags: list[dict[str, str]] | None = None) -> str:
        run_id = lab.mlflow(
            "runs/create",
            {
                "experiment_id": exp_id,
                "run_name": f"run-{i:03d}",
                "start_time": base + i,
                "tags": tags or [],
            },
        )["run"]["info"]["run_id"]
        lab.mlflow(
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{"key": "acc", "value": acc, "timestamp": base + i, "step": 0}],
            },
        )
        return run_id

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda iv: log(iv[0], iv[1] / 10_000), enumerate(values)))
    best = ids[values.index(max(values))]
    # A parent with the worst score, and two children newer than every other run:
    # sorted alone, they would land far from it.
    parent = log(900, -1.0)
    kids = [
        log(901 + k, -0.5 - k, [{"key": "mlflow.parentRunId", "value": parent}]) for k in range(2)
    ]

    panel = _open_panel(page)
    panel.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp_id}"]').click()
    runs = panel.locator(".jp-mlops-RunsSection")
    # The true count, not the first page's.
    expect(runs.locator(".jp-mlops-RunsView-count")).to_have_text("233 runs")
    rows = runs.locator("tr.jp-mlops-RunRow[data-run-id]")
    # Newest first: the parent, then its children under it.
    expect(rows.nth(0)).to_have_attribute("data-run-id", parent)
    expect(rows.nth(1)).to_have_attribute("data-depth", "1")

    runs.locator(".jp-mlops-ColumnChooser summary").click()
    runs.locator(".jp-mlops-ColumnChooser-list label", has_text="metrics.acc").locator(
        "input"
    ).check()
    runs.locator(".jp-mlops-ColumnChooser summary").click()
    runs.locator('th[data-column="metrics.acc"]').click()
    expect(runs.locator('th[data-column="metrics.acc"]')).to_have_attribute(
        "aria-sort", "descending"
    )
    # The best of all 233 runs, though it is not among the newest 100.
    expect(rows.first).to_have_attribute("data-run-id", best)

    # Scrolling reaches the last run: the worst parent, its children under it.
    scroller = runs.locator(".jp-mlops-RunsScroll")
    scroller.evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    last_child = runs.locator(f'tr.jp-mlops-RunRow[data-run-id="{kids[1]}"]')
    expect(last_child).to_be_visible()
    expect(last_child).to_have_attribute("data-depth", "1")
    expect(runs.locator(f'tr.jp-mlops-RunRow[data-run-id="{parent}"]')).to_be_visible()
    assert runs.locator(f'tr.jp-mlops-RunRow[data-run-id="{kids[0]}"]').count() == 1
    # Both children right under their parent, though kids[0] (-0.5) outscores it (-1.0):
    # as pipeline step runs (tagged mlflow.parentRunId) sit under their pipeline run.
    order = rows.evaluate_all("(rs) => rs.map(r => r.dataset.runId)")
    at = order.index(parent)
    assert set(order[at + 1 : at + 3]) == set(kids), order[at - 2 :]
    # Children fold under their parent.
    runs.locator(f'tr[data-run-id="{parent}"] .jp-mlops-RunRow-toggle').click()
    expect(last_child).to_have_count(0)
    runs.locator(f'tr[data-run-id="{parent}"] .jp-mlops-RunRow-toggle').click()
    expect(last_child).to_be_visible()

    # A filter: the server's count over every page.
    box = runs.get_by_label("Filter runs")
    box.fill("metrics.acc > 0.5")
    box.press("Enter")
    expected = sum(1 for v in values if v / 10_000 > 0.5)
    expect(runs.locator(".jp-mlops-RunsView-count")).to_have_text(f"{expected} runs")
    # A bad filter: its error, and no rows or count of the last good one.
    box.fill("metrics.acc >> 0.5")
    box.press("Enter")
    expect(runs.locator(".jp-mlops-Filter-error")).to_contain_text("metrics.acc >> 0.5")
    expect(rows).to_have_count(0)
    expect(runs.locator(".jp-mlops-RunsView-count")).to_have_text("")
