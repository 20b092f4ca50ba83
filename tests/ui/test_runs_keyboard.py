"""Keyboard on the runs tables, in a real JupyterLab: arrow keys move between rows, Space
ticks the focused row and Enter opens that run's detail (as in JupyterLab's file browser),
in the main-area runs tab and in the sidebar's compact list (issue 10, point 10)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from uihelpers import TIMEOUT_MS, expect, open_sidebar

pytestmark = pytest.mark.ui


def _experiment(lab: Any) -> tuple[str, list[str]]:
    """An experiment of three runs, newest last (the tables list newest first)."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-enter-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    t0 = int(time.time() * 1000) - 60_000
    ids = [
        lab.mlflow(
            "runs/create",
            {"experiment_id": exp_id, "run_name": f"enter-{i}", "start_time": t0 + i * 1000},
        )["run"]["info"]["run_id"]
        for i in range(3)
    ]
    return exp_id, ids


def _enter_opens(page: Any, scope: Any, down: int, run_id: str, name: str) -> None:
    """From the first row, ``down`` ArrowDown presses reach ``run_id``'s row; Space ticks it
    and Space again unticks it; Enter there opens its detail in the main area."""
    rows = scope.locator("tr.jp-mlops-RunRow[data-run-id]")
    rows.first.click()
    expect(rows.first).to_be_focused()
    for _ in range(down):
        page.keyboard.press("ArrowDown")
    target = scope.locator(f'tr.jp-mlops-RunRow[data-run-id="{run_id}"]')
    expect(target).to_be_focused()
    expect(target).to_have_attribute("aria-selected", "true")
    tick = target.locator(".jp-mlops-RunRow-check input")
    page.keyboard.press("Space")
    expect(tick).to_be_checked()
    expect(scope.locator(".jp-mlops-RunRow-check input:checked")).to_have_count(1)
    page.keyboard.press("Space")
    expect(tick).not_to_be_checked()
    page.keyboard.press("Enter")
    detail = page.locator(f'#jupyter-mlops-run-{run_id} .jp-mlops-Detail[data-run-id="{run_id}"]')
    expect(detail).to_be_visible(timeout=TIMEOUT_MS)
    expect(detail.locator("h2")).to_have_text(name)
    # The detail is the current tab (opened, not only created behind the table).
    current = page.evaluate("() => window.jupyterapp.shell.currentWidget?.id")
    assert current == f"jupyter-mlops-run-{run_id}"


def test_enter_on_a_row_of_the_runs_tab_opens_its_run(page: Any, lab: Any) -> None:
    exp_id, ids = _experiment(lab)
    page.evaluate(
        "(experimentId) => window.jupyterapp.commands.execute("
        "'jupyter-mlops:open-runs-table', {experimentId})",
        exp_id,
    )
    tab = page.locator(f"#jupyter-mlops-runs-table-{exp_id}")
    rows = tab.locator("tr.jp-mlops-RunRow[data-run-id]")
    expect(rows).to_have_count(3, timeout=TIMEOUT_MS)
    # Newest first: enter-2, enter-1, enter-0; the middle one is opened.
    expect(rows.first).to_have_attribute("data-run-id", ids[2])
    _enter_opens(page, tab, 1, ids[1], "enter-1")
    # Only that run was opened.
    expect(page.locator(f"#jupyter-mlops-run-{ids[2]}")).to_have_count(0)


def test_enter_on_a_row_of_the_sidebar_list_opens_its_run(page: Any, lab: Any) -> None:
    exp_id, ids = _experiment(lab)
    panel = open_sidebar(
        page, "#jupyter-mlops-runs", '.lm-TabBar-tab[data-id="jupyter-mlops-runs"]'
    )
    item = panel.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp_id}"]')
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.click()
    rows = panel.locator(".jp-mlops-RunsSection tr.jp-mlops-RunRow[data-run-id]")
    expect(rows).to_have_count(3, timeout=TIMEOUT_MS)
    expect(rows.first).to_have_attribute("data-run-id", ids[2])
    _enter_opens(page, panel.locator(".jp-mlops-RunsSection"), 2, ids[0], "enter-0")
