"""The main-area runs table of an experiment (a tab, like MLflow's runs page), in a real
JupyterLab: opened from the sidebar's compact list, with the searchable key picker,
server-side sort over more runs than one page, column resize, a pinned name column,
grouping by a param, nested runs folding under their parent, and run colours shared
with the compare charts."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from uihelpers import expect, open_run, open_sidebar, set_theme

pytestmark = pytest.mark.ui

PANEL = "#jupyter-mlops-runs"
TAB = '.lm-TabBar-tab[data-id="jupyter-mlops-runs"]'


def _seed(lab: Any) -> dict[str, Any]:
    """An experiment of 130 runs (more than one page of 100): params opt (adam/sgd) and
    lr, metric acc; the best run is the oldest; a parent with two child runs."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-tab-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    base = int(time.time() * 1000) - 3_600_000

    def log(i: int, acc: float, tags: list[dict[str, str]] | None = None) -> str:
        run_id = lab.mlflow(
            "runs/create",
            {
                "experiment_id": exp_id,
                "run_name": f"tab-{i:03d}",
                "start_time": base + i,
                "tags": tags or [],
            },
        )["run"]["info"]["run_id"]
        lab.mlflow(
            "runs/log-batch",
            {
                "run_id": run_id,
                "params": [
                    {"key": "opt", "value": "adam" if i % 3 else "sgd"},
                    {"key": "lr", "value": str(i)},
                ],
                "metrics": [{"key": "acc", "value": acc, "timestamp": base + i, "step": 0}],
            },
        )
        return run_id

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda i: log(i, 1.0 if i == 0 else i / 1000), range(130)))
    parent = log(500, 0.0001)
    kids = [
        log(501 + k, 0.00001, [{"key": "mlflow.parentRunId", "value": parent}]) for k in range(2)
    ]
    sgd = sum(1 for i in range(130) if i % 3 == 0) + (1 if 500 % 3 == 0 else 0)
    sgd += sum(1 for k in range(2) if (501 + k) % 3 == 0)
    return {
        "exp_id": exp_id,
        "best": ids[0],
        "ids": ids,
        "parent": parent,
        "kids": kids,
        "sgd": sgd,
    }


def test_runs_tab_columns_sort_resize_pin_group_nest_and_colours(
    page: Any, lab: Any, screenshot_dir: Any
) -> None:
    seeded = _seed(lab)
    exp_id, parent, kids = seeded["exp_id"], seeded["parent"], seeded["kids"]
    panel = open_sidebar(page, PANEL, TAB)
    panel.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp_id}"]').click()
    sidebar = panel.locator(".jp-mlops-RunsSection")
    # The sidebar keeps a compact list: no user or source columns.
    expect(sidebar.locator('th[data-column="name"]')).to_be_visible()
    expect(sidebar.locator('th[data-column="source"]')).to_have_count(0)
    sidebar.locator(".jp-mlops-Action-table").click()

    tab = page.locator(f"#jupyter-mlops-runs-table-{exp_id}")
    expect(tab).to_be_visible()
    expect(
        page.locator(f'.lm-TabBar-tab[data-id="jupyter-mlops-runs-table-{exp_id}"]')
    ).to_contain_text("Runs: ui-tab-")
    expect(tab.locator(".jp-mlops-RunsView-count")).to_have_text("133 runs")
    for column in ("name", "status", "started", "duration", "user", "source"):
        expect(tab.locator(f'th[data-column="{column}"]')).to_be_visible()
    rows = tab.locator("tr.jp-mlops-RunRow[data-run-id]")
    # Newest first: the parent, its children under it.
    expect(rows.nth(0)).to_have_attribute("data-run-id", parent)
    expect(rows.nth(1)).to_have_attribute("data-depth", "1")

    # Nested runs fold under their parent.
    toggle = tab.locator(f'tr[data-run-id="{parent}"] .jp-mlops-RunRow-toggle')
    toggle.click()
    expect(tab.locator(f'tr[data-run-id="{kids[0]}"]')).to_have_count(0)
    toggle.click()
    expect(tab.locator(f'tr[data-run-id="{kids[0]}"]')).to_be_visible()

    # The key picker asks the server, searchable: choose metrics.acc.
    picker = tab.locator(".jp-mlops-ColumnPicker")
    picker.locator(".jp-mlops-KeyPicker-button").click()
    popup = picker.locator(".jp-mlops-KeyPicker-popup")
    popup.locator(".jp-mlops-KeyPicker-search").fill("AC")
    expect(popup.locator('label[data-column="params.lr"]')).to_have_count(0)
    popup.locator('label[data-column="metrics.acc"] input').check()
    popup.locator(".jp-mlops-KeyPicker-search").fill("")
    popup.locator('label[data-column="params.lr"] input').check()
    picker.locator(".jp-mlops-KeyPicker-button").click()
    expect(popup).to_have_count(0)
    header = tab.locator('th[data-column="metrics.acc"]')
    expect(header).to_be_visible()
    expect(tab.locator('th[data-column="params.lr"]')).to_be_visible()

    # The server sorts all 133 runs: the best (the oldest) comes first.
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(rows.first).to_have_attribute("data-run-id", seeded["best"])
    expect(rows.first.locator("td.jp-mlops-RunRow-num")).to_have_text("1")

    # Resize: drag the source column's edge 600 px to the right.
    source = tab.locator('th[data-column="source"]')
    before = source.bounding_box()
    handle = source.locator(".jp-mlops-ColResize").bounding_box()
    assert before and handle
    page.mouse.move(handle["x"] + 2, handle["y"] + 5)
    page.mouse.down()
    page.mouse.move(handle["x"] + 300, handle["y"] + 5, steps=4)
    page.mouse.move(handle["x"] + 602, handle["y"] + 5, steps=4)
    page.mouse.up()
    page.wait_for_function(
        "(w) => document.querySelector('th[data-column=\"source\"]').getBoundingClientRect().width > w",
        arg=before["width"] + 500,
    )
    # The sort did not change by clicking the handle.
    expect(header).to_have_attribute("aria-sort", "descending")

    # The name column stays put while the table scrolls sideways; the others move.
    first_name = rows.first.locator("td.jp-mlops-RunRow-name")
    name_x = first_name.bounding_box()["x"]
    status_x = rows.first.locator("td").nth(2).bounding_box()["x"]
    tab.locator(".jp-mlops-RunsScroll").evaluate("(el) => { el.scrollLeft = 400; }")
    page.wait_for_function(
        "(x) => document.querySelector('.jp-mlops-RunsTab tr.jp-mlops-RunRow td:nth-child(3)')"
        ".getBoundingClientRect().x < x - 300",
        arg=status_x,
    )
    assert abs(first_name.bounding_box()["x"] - name_x) < 2
    tab.locator(".jp-mlops-RunsScroll").evaluate("(el) => { el.scrollLeft = 0; }")

    # Run colours: the compare view draws each run in its colour in the table.
    chosen = [seeded["best"], seeded["ids"][129]]
    swatches = {}
    for run_id in chosen:
        row = tab.locator(f'tr[data-run-id="{run_id}"]')
        row.locator(".jp-mlops-RunRow-check input").check()
        swatches[run_id] = row.locator(".jp-mlops-Swatch").evaluate(
            "(el) => getComputedStyle(el).backgroundColor"
        )
    assert swatches[chosen[0]] != swatches[chosen[1]]
    tab.locator(".jp-mlops-Action-compare").click()
    compare = page.locator(".jp-mlops-Compare").last
    heads = compare.locator(".jp-mlops-CompareTable").first.locator("thead th")
    expect(heads).to_have_count(3)
    legend = [
        heads.nth(i)
        .locator(".jp-mlops-Swatch")
        .evaluate("(el) => getComputedStyle(el).backgroundColor")
        for i in (1, 2)
    ]
    assert sorted(legend) == sorted(swatches.values())
    page.locator(f'.lm-TabBar-tab[data-id="jupyter-mlops-runs-table-{exp_id}"]').click()
    expect(tab).to_be_visible()

    # Group by a param: the server orders by it; each group says its true count.
    group = tab.locator(".jp-mlops-GroupPicker")
    group.locator(".jp-mlops-KeyPicker-button").click()
    expect(group.locator('fieldset[data-kind="metrics"]')).to_have_count(0)
    group.locator('label[data-column="params.opt"] input').click()
    expect(group.locator(".jp-mlops-KeyPicker-button")).to_have_text("Grouped by params.opt")
    first_group = tab.locator(".jp-mlops-GroupRow").first
    expect(first_group).to_have_attribute("data-group", "adam")
    expect(first_group).to_contain_text("params.opt = adam · ")
    adam = 133 - seeded["sgd"]
    expect(first_group).to_contain_text(f"{adam} runs")
    # Within a group, the chosen sort: the best adam run first.
    expect(rows.first.locator("td.jp-mlops-RunRow-num")).to_have_text("0.128")
    # The sgd group starts after the 87 adam runs and the parent's 2 children.
    tab.locator(".jp-mlops-RunsScroll").evaluate("(el) => { el.scrollTop = 80 * 26; }")
    sgd_group = tab.locator('.jp-mlops-GroupRow[data-group="sgd"]')
    expect(sgd_group).to_contain_text(f"{seeded['sgd']} runs")

    # Theme variables only: the pinned cells follow the theme, and a group's label sits on
    # its row's background (no box of another shade), light and dark.
    cell = tab.locator("td.jp-mlops-Pinned").first
    label = tab.locator(".jp-mlops-GroupRow-label").first
    colours = "(el) => [getComputedStyle(el).backgroundColor, getComputedStyle(el.closest('td')).backgroundColor]"
    light = cell.evaluate("(el) => getComputedStyle(el).backgroundColor")
    label_light, row_light = label.evaluate(colours)
    tab.locator(".jp-mlops-GroupRow").first.screenshot(
        path=str(screenshot_dir / "group-row-light.png")
    )
    set_theme(page, "JupyterLab Dark", light=False)
    dark = cell.evaluate("(el) => getComputedStyle(el).backgroundColor")
    label_dark, row_dark = label.evaluate(colours)
    tab.locator(".jp-mlops-GroupRow").first.screenshot(
        path=str(screenshot_dir / "group-row-dark.png")
    )
    set_theme(page, "JupyterLab Light", light=True)
    assert light != dark
    assert (label_light, label_dark) == (row_light, row_dark) and row_light != row_dark

    # A reload reopens the tabs (this runs table, the compare, a run's detail) and the
    # runs table as it was left: columns, widths, sort and grouping (kept per experiment).
    open_run(page, seeded["best"])
    expect(page.locator(f"#jupyter-mlops-run-{seeded['best']}")).to_be_visible()
    page.locator(f'.lm-TabBar-tab[data-id="jupyter-mlops-runs-table-{exp_id}"]').click()
    width = source.bounding_box()["width"]
    deadline = time.monotonic() + 60
    while True:  # the workspace is saved a moment after each change
        data = lab.api("GET", "lab/api/workspaces/default")["data"]
        layout = json.dumps(data.get("layout-restorer:data", {}))
        view = data.get(f"jupyter-mlops:runs-view:{exp_id}", {})
        if (
            "jupyter-mlops-compare:" in layout
            and "jupyter-mlops-run:{" in layout
            and "jupyter-mlops-runs-table:{" in layout
            and view.get("groupBy") == "params.opt"
        ):
            break
        assert time.monotonic() < deadline, (list(data), view)
        time.sleep(0.5)
    page.reload()
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started !== undefined")
    page.evaluate("() => window.jupyterapp.restored")
    tab = page.locator(f"#jupyter-mlops-runs-table-{exp_id}")
    expect(tab).to_have_count(1, timeout=60_000)
    # Which restored tab is in front depends on which save came last: bring the table forward.
    page.locator(f'.lm-TabBar-tab[data-id="jupyter-mlops-runs-table-{exp_id}"]').click()
    expect(tab).to_be_visible()
    expect(page.locator(f"#jupyter-mlops-run-{seeded['best']}")).to_have_count(1)
    expect(page.locator(".jp-mlops-CompareWidget")).to_have_count(1)
    header = tab.locator('th[data-column="metrics.acc"]')
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(tab.locator('th[data-column="params.lr"]')).to_be_visible()
    expect(tab.locator(".jp-mlops-GroupPicker .jp-mlops-KeyPicker-button")).to_have_text(
        "Grouped by params.opt"
    )
    expect(tab.locator(".jp-mlops-GroupRow").first).to_have_attribute("data-group", "adam")
    restored = tab.locator('th[data-column="source"]').bounding_box()["width"]
    assert abs(restored - width) < 2, (restored, width)


def test_experiment_link_opens_the_runs_tab(page: Any, lab: Any) -> None:
    """MLflow's "View experiment at <uri>/#/experiments/<id>" opens its runs tab."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-tablink-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    lab.mlflow("runs/create", {"experiment_id": exp_id, "run_name": "linked"})
    page.goto(f"{lab.url}mlops/?token={lab.token}#/experiments/{exp_id}")
    tab = page.locator(f"#jupyter-mlops-runs-table-{exp_id}")
    expect(tab).to_be_visible()
    expect(tab.locator("tr.jp-mlops-RunRow", has_text="linked")).to_be_visible()


def test_copy_link_round_trip(page: Any, lab: Any) -> None:
    """'Copy link' on a run (its button, a row's or a tab's context menu) gives the URL
    that opens the same view in JupyterLab."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-link-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    run_id = lab.mlflow("runs/create", {"experiment_id": exp_id, "run_name": "shared"})["run"][
        "info"
    ]["run_id"]
    expected = f"{lab.url}mlops/#/experiments/{exp_id}/runs/{run_id}"

    open_run(page, run_id)
    detail = page.locator(".jp-mlops-RunDetail:visible .jp-mlops-Detail")
    expect(detail.locator("h2")).to_have_text("shared")
    detail.locator(".jp-mlops-CopyLink").click()
    expect(page.locator(".Toastify__toast", has_text=expected)).to_be_visible()

    # From the runs table: a row's context menu, and the tab's (the experiment's link).
    page.evaluate(
        "(experimentId) => window.jupyterapp.commands.execute("
        "'jupyter-mlops:open-runs-table', {experimentId})",
        exp_id,
    )
    tab = page.locator(f"#jupyter-mlops-runs-table-{exp_id}")
    tab.locator(f'tr[data-run-id="{run_id}"]').click(button="right")
    page.locator(".lm-Menu").get_by_text("MLOps: Copy link").click()
    expect(page.locator(".Toastify__toast", has_text=expected).first).to_be_visible()
    page.locator(f'.lm-TabBar-tab[data-id="jupyter-mlops-runs-table-{exp_id}"]').click(
        button="right"
    )
    page.locator(".lm-Menu").get_by_text("MLOps: Copy link").click()
    expect(
        page.locator(".Toastify__toast", has_text=f"{lab.url}mlops/#/experiments/{exp_id}").last
    ).to_be_visible()
    copied = page.evaluate(
        "(runId) => window.jupyterapp.commands.execute('jupyter-mlops:copy-link', {runId})",
        run_id,
    )
    assert copied == expected

    # The round trip: the link opens that run in a fresh JupyterLab.
    base, fragment = copied.split("#", 1)
    page.goto(f"{base}?token={lab.token}#{fragment}")
    reopened = page.locator(f"#jupyter-mlops-run-{run_id}")
    expect(reopened.locator(".jp-mlops-Detail h2")).to_have_text("shared")


def test_live_updates_read_only_what_changed(page: Any, lab: Any) -> None:
    """With the runs tab open, a changed metric updates its cell from the runs changed
    since the last poll (no page is read again); a new run shows up."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-live-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    started = int(time.time() * 1000) - 60_000
    run_id = lab.mlflow(
        "runs/create", {"experiment_id": exp_id, "run_name": "watched", "start_time": started}
    )["run"]["info"]["run_id"]
    lab.mlflow(
        "runs/log-metric",
        {"run_id": run_id, "key": "acc", "value": 0.25, "timestamp": started, "step": 0},
    )
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.evaluate(
        "(experimentId) => window.jupyterapp.commands.execute("
        "'jupyter-mlops:open-runs-table', {experimentId})",
        exp_id,
    )
    tab = page.locator(f"#jupyter-mlops-runs-table-{exp_id}")
    picker = tab.locator(".jp-mlops-ColumnPicker")
    picker.locator(".jp-mlops-KeyPicker-button").click()
    picker.locator('label[data-column="metrics.acc"] input').check()
    picker.locator(".jp-mlops-KeyPicker-button").click()
    cell = tab.locator(f'tr[data-run-id="{run_id}"] td.jp-mlops-RunRow-num')
    expect(cell).to_have_text("0.25")
    # A poll of the changes has happened: the table is live.
    page.wait_for_function(
        "() => performance.getEntriesByType('resource')"
        ".some(e => e.name.includes('/api/v1/runs/changes'))"
    )

    requests.clear()
    lab.mlflow(
        "runs/log-metric",
        {"run_id": run_id, "key": "acc", "value": 0.75, "timestamp": started + 1, "step": 1},
    )
    expect(cell).to_have_text("0.75")
    assert any("/api/v1/runs/changes" in url for url in requests)
    assert not any("/runs/search" in url for url in requests), requests

    second = lab.mlflow("runs/create", {"experiment_id": exp_id, "run_name": "newcomer"})["run"][
        "info"
    ]["run_id"]
    rows = tab.locator("tr.jp-mlops-RunRow[data-run-id]")
    expect(rows.first).to_have_attribute("data-run-id", second)
    expect(tab.locator(".jp-mlops-RunsView-count")).to_have_text("2 runs")


def test_sidebar_list_names_its_columns(page: Any, lab: Any) -> None:
    """The sidebar's compact list at JupyterLab's default sidebar width: the Name header
    reads "Name" (it was blank: the narrow-sidebar style hid the second header, meant for
    Status), and the run names have the room; only Status shrinks to coloured dots."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-compact-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    lab.mlflow("runs/create", {"experiment_id": exp_id, "run_name": "compact-run"})
    panel = open_sidebar(page, PANEL, TAB)
    panel.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp_id}"]').click()
    sidebar = panel.locator(".jp-mlops-RunsSection")
    expect(sidebar.locator("tr.jp-mlops-RunRow", has_text="compact-run")).to_be_visible()
    assert panel.bounding_box()["width"] <= 340  # the narrow layout applies
    readable = """(th) => {
        const scroll = th.closest('.jp-mlops-RunsScroll').getBoundingClientRect();
        const box = th.getBoundingClientRect();
        return {font: parseFloat(getComputedStyle(th).fontSize),
                clipped: th.scrollWidth > th.clientWidth + 1,
                inside: box.left >= scroll.left - 1 && box.right <= scroll.right + 1};
    }"""
    name = sidebar.locator('th[data-column="name"]')
    expect(name).to_have_text("Name")
    shown = name.evaluate(readable)
    assert shown["font"] > 0 and not shown["clipped"] and shown["inside"], shown
    started = sidebar.locator('th[data-column="started"]')
    expect(started).to_contain_text("Started")
    shown = started.evaluate(readable)
    assert shown["font"] > 0 and not shown["clipped"], shown
    # Status is a dot: its header gives up its label (kept in the DOM) for the names' room.
    status = sidebar.locator('th[data-column="status"]')
    expect(status).to_have_text("Status")
    assert status.evaluate(readable)["font"] == 0
