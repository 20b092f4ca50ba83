"""'MLOps: Run MLflow project…' from JupyterLab's file browser: the entry point picked, the form made
from its typed parameters (a server refusal brings the form back with the parameter and the
MLproject line), the run's output followed live, the tracked run recorded as MLflow's."""

from __future__ import annotations

from typing import Any

import pytest
from uihelpers import TIMEOUT_MS, expect

MLPROJECT = """\
name: uiproj
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      label: {type: string, default: base}
    command: "python train.py --alpha {alpha} --label {label}"
  where:
    parameters:
      data: path
    command: "python train.py --alpha 1 --label {data}"
"""

TRAIN = """\
import argparse
import jupyter_mlops as mlops
print("first line of train.py", flush=True)
p = argparse.ArgumentParser()
p.add_argument("--alpha", type=float)
p.add_argument("--label")
a = p.parse_args()
mlops.log_metric("alpha_seen", a.alpha)
print("trained with", a.alpha, a.label, flush=True)
"""


@pytest.fixture(scope="module")
def project(lab: Any) -> str:
    folder = lab.root / "work" / "uiproj"
    folder.mkdir(exist_ok=True)
    (folder / "MLproject").write_text(MLPROJECT)
    (folder / "train.py").write_text(TRAIN)
    return "uiproj"


def _open_form(page: Any, project: str, entry: str) -> Any:
    page.evaluate(
        "(p) => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: p})", project
    )
    item = page.locator('.jp-DirListing-item[title*="MLproject"]').first
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.click(button="right")
    menu = page.locator('.lm-Menu-item[data-command="jupyter-mlops:run-mlflow-project"]')
    expect(menu).to_be_visible()
    menu.click()
    picker = page.locator(".jp-Dialog")
    expect(picker).to_contain_text("Run which entry point?", timeout=TIMEOUT_MS)
    picker.locator("select").select_option(entry)
    picker.locator(".jp-mod-accept").click()
    form = page.locator(".jp-Dialog .jp-mlops-SubmitForm")
    expect(form).to_be_visible(timeout=TIMEOUT_MS)
    return page.locator(".jp-Dialog")


def test_run_mlflow_project_from_the_file_browser(page: Any, lab: Any, project: str) -> None:
    dialog = _open_form(page, project, "main")
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text("uiproj")
    alpha = dialog.locator('input[name="alpha"]')
    expect(alpha).to_have_value("0.5")  # the MLproject's default
    expect(alpha).to_have_attribute("type", "number")  # a float parameter
    expect(dialog.locator('input[name="label"]')).to_have_value("base")
    alpha.fill("0.25")
    dialog.locator('input[name="label"]').fill("from the form")
    dialog.locator(".jp-mod-accept").click()
    expect(dialog).to_have_count(0, timeout=TIMEOUT_MS)

    log = page.locator(".jp-mlops-ProjectLog:visible")
    expect(log.locator(".jp-mlops-ProjectLog-text")).to_contain_text(
        "trained with 0.25 from the form", timeout=TIMEOUT_MS
    )
    status = log.locator(".jp-mlops-ProjectLog-status")
    expect(status).to_have_attribute("data-status", "FINISHED", timeout=TIMEOUT_MS)
    page.screenshot(path=str(lab.root / "project-run.png"))

    exp = lab.api("GET", "mlops/api/2.0/mlflow/experiments/get-by-name?experiment_name=uiproj")
    runs = lab.api(
        "POST",
        "mlops/api/2.0/mlflow/runs/search",
        {"experiment_ids": [exp["experiment"]["experiment_id"]]},
    )["runs"]
    assert len(runs) == 1
    run = runs[0]
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert params == {"alpha": "0.25", "label": "'from the form'"}
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.entryPoint"] == "main"
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"alpha_seen": 0.25}
    assert run["info"]["status"] == "FINISHED"

    # "Open run": the tracked run in the runs panel's run view
    log.get_by_role("button", name="Open run").click()
    detail = page.locator(f'.jp-mlops-Detail[data-run-id="{run["info"]["run_id"]}"]')
    expect(detail).to_be_visible(timeout=TIMEOUT_MS)
    expect(detail).to_contain_text("project.log")  # the command's output, kept as an artifact


def test_a_refused_value_brings_the_form_back(
    page: Any, lab: Any, project: str, allowed_console_errors: list[str]
) -> None:
    allowed_console_errors.append("status of 400")  # the refusal, which the browser logs
    dialog = _open_form(page, project, "where")
    dialog.locator('input[name="data"]').fill("no/such/file.csv")
    dialog.locator(".jp-mod-accept").click()
    error = dialog.locator(".jp-mlops-SubmitForm-serverError")
    expect(error).to_contain_text(
        "MLproject:10: entry_points.where.parameters.data:", timeout=TIMEOUT_MS
    )
    expect(error).to_contain_text("Got value no/such/file.csv for parameter data")
    expect(dialog.locator('input[name="data"]')).to_have_value("no/such/file.csv")
    dialog.locator(".jp-mod-reject").click()
    expect(dialog).to_have_count(0)
