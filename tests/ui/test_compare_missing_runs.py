"""The compare view when some of its runs do not exist (purged since a compare tab was
saved, a mistyped link, a store copied without its newest runs), in a real JupyterLab:
the runs that exist are compared at once (tables, parallel coordinates inked) and the
missing ids are named, instead of an error and no chart at all."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from uihelpers import TIMEOUT_MS, expect, log_run

pytestmark = pytest.mark.ui

#: Whether a canvas has any non-transparent pixel (every pixel is read).
INKED = """(c) => {
    if (!c.width || !c.height) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) { if (d[i] !== 0) return true; }
    return false;
}"""


def test_compare_shows_the_runs_found_and_names_the_missing(
    page: Any, lab: Any, allowed_console_errors: list[str]
) -> None:
    # The browser logs the missing run's 404 (runs/get); the view names it.
    allowed_console_errors.append("status of 404 (Not Found)")
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-cmp-miss-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    a = log_run(lab, exp_id, "found-a", "0.1", [0.5])
    b = log_run(lab, exp_id, "found-b", "0.01", [0.7])
    c = log_run(lab, exp_id, "found-c", "0.001", [0.9])
    gone = uuid.uuid4().hex  # no such run
    page.evaluate(
        "(ids) => { void window.jupyterapp.commands.execute("
        "'jupyter-mlops:compare-runs', {runIds: ids}); }",
        [a, gone, b, c],
    )
    view = page.locator(".jp-mlops-CompareWidget:visible .jp-mlops-Compare")
    expect(view.locator("h2")).to_have_text("Comparing 3 runs", timeout=TIMEOUT_MS)
    missing = view.locator(".jp-mlops-CompareMissing")
    expect(missing).to_contain_text(gone)
    expect(view.locator(".jp-mlops-Error")).to_have_count(0)
    heads = view.locator(".jp-mlops-CompareParams thead th")
    expect(heads).to_have_text(["", "found-a", "found-b", "found-c"])
    # A chart at once: parallel coordinates (lr and acc differ) drawn, no choice needed.
    parallel = view.locator(".jp-mlops-Parallel")
    expect(parallel).to_be_visible()
    page.wait_for_function(INKED, arg=parallel.element_handle(), timeout=TIMEOUT_MS)
