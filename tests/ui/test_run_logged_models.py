"""A run's MLflow 3 logged models in the run view (real JupyterLab, headless
Chromium): a model logged with ``mlops.log_model`` has its files under the
experiment, not among the run's artifacts, so the run view lists it apart and
registers it from there (the server resolves ``runs:/<run>/<name>`` to it).
"""

from __future__ import annotations

from typing import Any

from uihelpers import TIMEOUT_MS, expect, open_run, run_as_user

LOG_MODEL = """\
import jupyter_mlops as mlops
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

X, y = load_iris(return_X_y=True)
with mlops.start_run(run_name="logged-model-run") as run:
    mlops.log_param("max_depth", 2)
    info = mlops.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), "tree")
print(run.info.run_id, info.model_id)
"""


def test_run_view_lists_and_registers_its_logged_model(
    page: Any, lab: Any, screenshot_dir: Any
) -> None:
    run_id, model_id = run_as_user(lab, LOG_MODEL).split()[-2:]

    open_run(page, run_id)
    row = page.locator(f'.jp-mlops-LoggedModel[data-model-id="{model_id}"]')
    expect(row).to_be_visible(timeout=TIMEOUT_MS)
    expect(row).to_have_attribute("data-status", "READY")
    expect(row.locator("th")).to_have_text("tree")
    # not in the run's artifact tree: its files are the logged model's
    expect(page.locator('.jp-mlops-ArtifactItem[data-path="tree"]')).to_have_count(0)
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "run-logged-models.png"))

    row.locator(".jp-mlops-RegisterModel").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("iris-tree")
    dialog.locator(".jp-mod-accept").click()
    view = page.locator('.jp-mlops-ModelsView-body[data-model="iris-tree"]')
    expect(view.locator('.jp-mlops-VersionRow[data-version="1"]')).to_be_visible(timeout=TIMEOUT_MS)
    version = lab.api("GET", "mlops/api/2.0/mlflow/model-versions/get?name=iris-tree&version=1")[
        "model_version"
    ]
    assert (version["model_id"], version["run_id"]) == (model_id, run_id)
    location = lab.api(
        "GET", "mlops/api/2.0/mlflow/model-versions/get-download-uri?name=iris-tree&version=1"
    )["artifact_uri"]
    assert location.endswith(f"/models/{model_id}/artifacts")
