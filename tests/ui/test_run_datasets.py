"""Datasets in the run views (real JupyterLab, headless Chromium): the official mlflow
client logs a pandas dataset for training and another for evaluation; the run detail's
Datasets section shows name, context, digest, source, profile and schema, and the compare
view tells which run used which data."""

from __future__ import annotations

from typing import Any

from uihelpers import TIMEOUT_MS, expect, open_run, run_as_user

LOG_INPUTS = """\
import mlflow, pandas as pd
train = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})
test = pd.DataFrame({"a": [4], "b": [3.5]})
mlflow.set_experiment("ui-datasets")
with mlflow.start_run(run_name="trained") as run:
    mlflow.log_input(mlflow.data.from_pandas(train, source="/data/train.csv", name="train"),
                     context="training")
    mlflow.log_input(mlflow.data.from_pandas(test, source="/data/test.csv", name="test"),
                     context="eval")
with mlflow.start_run(run_name="other") as other:
    mlflow.log_input(mlflow.data.from_pandas(train, source="/data/train.csv", name="train"),
                     context="training")
print(run.info.run_id, other.info.run_id)
"""


def test_run_detail_and_compare_show_datasets(page: Any, lab: Any, screenshot_dir: Any) -> None:
    run_id, other_id = run_as_user(lab, LOG_INPUTS).split()[-2:]

    open_run(page, run_id)
    section = page.locator(".jp-mlops-Datasets:visible")
    expect(section).to_be_visible(timeout=TIMEOUT_MS)
    train = section.locator('.jp-mlops-Dataset[data-name="train"]')
    expect(train).to_have_attribute("data-context", "training")
    expect(train.locator(".jp-mlops-Dataset-source")).to_have_text("local: /data/train.csv")
    expect(train.locator('.jp-mlops-Dataset-profile[data-key="num_rows"] td')).to_have_text("3")
    expect(train.locator(".jp-mlops-Dataset-schema")).to_have_text("a: long, b: double")
    expect(section.locator('.jp-mlops-Dataset[data-name="test"]')).to_have_attribute(
        "data-context", "eval"
    )
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "run-datasets.png"))

    page.evaluate(
        "(ids) => { void window.jupyterapp.commands.execute("
        "'jupyter-mlops:compare-runs', {runIds: ids}); }",
        [run_id, other_id],
    )
    table = page.locator(".jp-mlops-CompareWidget:visible .jp-mlops-CompareDatasets")
    expect(table).to_be_visible(timeout=TIMEOUT_MS)
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td")).to_have_text(["training", "training"])
    expect(rows.nth(1).locator("td")).to_have_text(["eval", "—"])
