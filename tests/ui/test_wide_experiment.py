"""A wide experiment (issue 18): 5,000 distinct metric keys and 5,000 param keys over a few
runs, in a real JupyterLab. The runs tab's key picker searches the server's keys (a bounded
list, never all of them), a chosen key becomes a column with its values; the compare view
renders a bounded number of rows, charts and axis choices, narrowed by one key search, and
asks for the series of the charts it shows only."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from uihelpers import expect, open_run

pytestmark = pytest.mark.ui

KEYS = 5000
RUNS = 4


def _seed(lab: Any) -> dict[str, Any]:
    """``RUNS`` runs, each with all ``KEYS`` metrics (``layer_NNNN.loss``) and params
    (``cfg_NNNN``): value ``i * KEYS + k`` in run ``i``."""
    exp_id = lab.mlflow("experiments/create", {"name": f"ui-wide-{uuid.uuid4().hex[:6]}"})[
        "experiment_id"
    ]
    ids = []
    for i in range(RUNS):
        run_id = lab.mlflow("runs/create", {"experiment_id": exp_id, "run_name": f"wide-{i}"})[
            "run"
        ]["info"]["run_id"]
        lab.api(
            "POST",
            "mlops/api/v1/runs/log-bulk",
            {
                "run_id": run_id,
                "metrics": [
                    {
                        "key": f"layer_{k:04d}.loss",
                        "steps": [0, 1],
                        "timestamps": [1_700_000_000_000, 1_700_000_001_000],
                        "values": [float(i * KEYS + k), float(i * KEYS + k) / 2],
                    }
                    for k in range(KEYS)
                ],
                "params": [
                    {"key": f"cfg_{k:04d}", "value": str(i * KEYS + k)} for k in range(KEYS)
                ],
            },
        )
        ids.append(run_id)
    return {"exp_id": exp_id, "ids": ids}


def test_wide_experiment_picker_and_compare_stay_bounded(page: Any, lab: Any) -> None:
    seeded = _seed(lab)
    exp_id, ids = seeded["exp_id"], seeded["ids"]
    series_requests: list[str] = []
    run_series: list[str] = []
    page.on(
        "request",
        lambda r: series_requests.append(r.url) if "metrics/series-bulk" in r.url else None,
    )
    page.on(
        "request",
        lambda r: run_series.append(r.url) if "metrics/series?" in r.url else None,
    )

    searches: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            searches.append(json.loads(r.post_data or "{}"))
            if "mlflow/runs/search" in r.url
            else None
        ),
    )

    page.evaluate(
        "(experimentId) => { void window.jupyterapp.commands.execute("
        "'jupyter-mlops:open-runs-table', {experimentId}); }",
        exp_id,
    )
    tab = page.locator(f"#jupyter-mlops-runs-table-{exp_id}")
    expect(tab.locator("tr.jp-mlops-RunRow[data-run-id]")).to_have_count(RUNS)
    # The tab asks for the keys its rows show, not the runs' 10,000 (issue 18).
    assert searches and all(s.get("data_keys", {}).get("params") == [] for s in searches)
    assert all(s["data_keys"]["metrics"] == [] for s in searches), searches

    # The key picker lists a bounded page of the server's keys, and says there are more.
    picker = tab.locator(".jp-mlops-ColumnPicker")
    picker.locator(".jp-mlops-KeyPicker-button").click()
    popup = picker.locator(".jp-mlops-KeyPicker-popup")
    metrics = popup.locator('fieldset[data-kind="metrics"]')
    expect(metrics.locator("label")).to_have_count(200)
    expect(metrics).to_contain_text("More keys: type to narrow the list")
    # A search reaches any key, here the last of each kind.
    popup.locator(".jp-mlops-KeyPicker-search").fill("4999")
    expect(metrics.locator("label")).to_have_count(1)
    popup.locator('label[data-column="metrics.layer_4999.loss"] input').check()
    popup.locator('label[data-column="params.cfg_4999"] input').check()
    picker.locator(".jp-mlops-KeyPicker-button").click()
    row = tab.locator(f'tr[data-run-id="{ids[2]}"]')
    expect(tab.locator('th[data-column="metrics.layer_4999.loss"]')).to_be_visible()
    # Run 2's latest layer_4999.loss is 14999 / 2 (4 significant digits); its cfg_4999 14999.
    expect(row.locator("td.jp-mlops-RunRow-num").last).to_have_text("7500")
    expect(row.locator("td[title='14999']")).to_have_count(1)
    # The new columns' keys were read for the rows, only those.
    assert any(
        s["data_keys"]["metrics"] == ["layer_4999.loss"]
        and s["data_keys"]["params"] == ["cfg_4999"]
        for s in searches
    ), searches

    # Compare: bounded tables, charts and choices; one search narrows them all.
    page.evaluate(
        "(ids) => { void window.jupyterapp.commands.execute('jupyter-mlops:compare-runs', "
        "{runIds: ids}); }",
        ids,
    )
    compare = page.locator(".jp-mlops-Compare").last
    params = compare.locator(".jp-mlops-CompareParams tbody tr")
    expect(params).to_have_count(100)
    expect(compare.locator(".jp-mlops-CompareMetrics tbody tr")).to_have_count(100)
    expect(compare.locator(".jp-mlops-CompareParams .jp-mlops-CompareMore")).to_have_text(
        f"Show {KEYS - 100} more"
    )
    charts = compare.locator(".jp-mlops-Charts > *")
    expect(charts).to_have_count(12)
    expect(compare.locator(".jp-mlops-CompareMoreCharts")).to_contain_text(f"{KEYS - 12} not shown")
    expect(compare.locator(".jp-mlops-Charts .jp-mlops-Muted")).to_have_count(0)  # all drawn
    # Series were asked for the 12 charts shown, not for 5,000 keys.
    assert len(series_requests) == 12, series_requests
    axes = compare.locator(".jp-mlops-AxisChooser")
    axes.locator("summary").click()
    assert axes.locator("label").count() <= 200 + 10
    expect(axes).to_contain_text("more keys: search to narrow the list")
    assert compare.locator(".jp-mlops-ScatterX option").count() <= 200 + 1

    compare.locator(".jp-mlops-CompareSearch").fill("0042")
    expect(params).to_have_count(1)
    expect(params.first).to_have_attribute("data-key", "cfg_0042")
    expect(params.first.locator("td")).to_have_text([str(i * KEYS + 42) for i in range(RUNS)])
    expect(charts).to_have_count(1)
    expect(compare.locator(".jp-mlops-Charts .jp-mlops-Muted")).to_have_count(0)
    assert len(series_requests) == 13  # only the newly shown chart's series
    expect(compare.locator(".jp-mlops-ScatterX option", has_text="params.cfg_0042")).to_have_count(
        1
    )

    # "More" shows more.
    compare.locator(".jp-mlops-CompareSearch").fill("")
    compare.locator(".jp-mlops-CompareParams .jp-mlops-CompareMore").click()
    expect(params).to_have_count(600)

    # A wide run's detail: bounded tables and charts, series read for the charts shown.
    open_run(page, ids[1])
    detail = page.locator(f"#jupyter-mlops-run-{ids[1]}")
    expect(detail.locator(".jp-mlops-Params tbody tr")).to_have_count(100)
    expect(detail.locator(".jp-mlops-Metrics tbody tr")).to_have_count(100)
    expect(detail.locator(".jp-mlops-Charts > *")).to_have_count(12)
    expect(detail.locator(".jp-mlops-Charts .jp-mlops-Chart").first).to_contain_text(
        "layer_0000.loss"
    )
    assert len(run_series) == 12, run_series
    detail.locator(".jp-mlops-RunMoreCharts").click()
    expect(detail.locator(".jp-mlops-Charts > *")).to_have_count(24)
    detail.locator(".jp-mlops-Params .jp-mlops-RunMore").click()
    expect(detail.locator(".jp-mlops-Params tbody tr")).to_have_count(600)
