"""The Models panel in a real JupyterLab (headless Chromium): a scikit-learn
model directory among a run's artifacts (the layout before MLflow 3's logged
models), written through the Python API against the lab's own store, is
registered from the run's artifact tree, moved to Production (after a
confirmation), given an alias, and linked back to its run.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from uihelpers import TIMEOUT_MS, expect, open_run, open_sidebar, run_as_user, run_notebook

pytestmark = pytest.mark.ui

LOG_MODEL = """\
import jupyter_mlops as mlops
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import tempfile

from jupyter_mlops.registry.flavors import save_model

X, y = load_iris(return_X_y=True)
clf = LogisticRegression(max_iter=300).fit(X, y)
# (mlops.log_model writes an MLflow 3 logged model, outside the run's artifacts)
model_dir = tempfile.mkdtemp()
save_model(clf, model_dir, input_example=X[:3])
with mlops.start_run(run_name="ui-iris-model") as run:
    mlops.log_param("max_iter", 300)
    mlops.log_artifacts(model_dir, "classifier")
print(run.info.run_id)
"""


@pytest.fixture(scope="module")
def logged_run(lab: Any) -> str:
    """Log a model as a user's script would, against the lab's REST API."""
    return run_as_user(lab, LOG_MODEL).strip().splitlines()[-1]


def test_register_from_artifacts_and_promote(
    page: Any, lab: Any, logged_run: str, screenshot_dir: Any
) -> None:
    open_run(page, logged_run)
    folder = page.locator('.jp-mlops-ArtifactItem[data-path="classifier"]')
    expect(folder).to_be_visible(timeout=TIMEOUT_MS)
    # Not a model folder until opened: the button appears next to MLmodel.
    folder.click()
    expect(page.locator('.jp-mlops-ArtifactItem[data-path="classifier/MLmodel"]')).to_be_visible(
        timeout=TIMEOUT_MS
    )
    register = page.locator('.jp-mlops-RegisterModel[data-path="classifier"]')
    expect(register).to_be_visible()
    register.click()
    dialog = page.locator(".jp-Dialog")
    # Not "Register model as a model" (issue 10, 12): what is registered, and where.
    expect(dialog.locator(".jp-Dialog-header")).to_have_text(
        "Register \u201cclassifier\u201d in the model registry"
    )
    name_input = dialog.locator("input")
    expect(name_input).to_have_value("classifier")
    name_input.fill("iris-ui")
    dialog.locator(".jp-mod-accept").click()

    view = page.locator('.jp-mlops-ModelsView-body[data-model="iris-ui"]')
    expect(view).to_be_visible(timeout=TIMEOUT_MS)
    # The model's tab has its icon, as the runs' tabs do.
    tab = page.locator('.lm-TabBar-tab[data-id="jupyter-mlops-model-iris-ui"]')
    expect(tab.locator(".lm-TabBar-tabIcon svg")).to_have_count(1)
    row = view.locator('.jp-mlops-VersionRow[data-version="1"]')
    expect(row).to_have_attribute("data-stage", "None", timeout=TIMEOUT_MS)

    # Moving a stage asks first; cancelling changes nothing.
    row.locator(".jp-mlops-StageSelect").select_option("Production")
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Move version 1 of iris-ui from None to Production?")
    dialog.locator(".jp-mod-reject").click()
    expect(row).to_have_attribute("data-stage", "None")
    assert _version(lab, "iris-ui", "1")["current_stage"] == "None"

    row.locator(".jp-mlops-StageSelect").select_option("Production")
    dialog = page.locator(".jp-Dialog")
    dialog.locator('input[name="archive_existing_versions"]').check()
    dialog.locator(".jp-mod-accept").click()
    expect(row).to_have_attribute("data-stage", "Production", timeout=TIMEOUT_MS)
    expect(row.locator(".jp-mlops-StageBadge")).to_have_text("Production")
    version = _version(lab, "iris-ui", "1")
    assert version["current_stage"] == "Production"
    assert version["run_id"] == logged_run
    assert version["source"].endswith("classifier")

    # Aliases: set, shown, removed.
    row.locator(".jp-mlops-AliasAdd").click()
    page.locator(".jp-Dialog input").fill("champion")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    badge = row.locator('.jp-mlops-AliasBadge[data-alias="champion"]')
    expect(badge).to_be_visible(timeout=TIMEOUT_MS)
    resolved = lab.api(
        "GET", "mlops/api/2.0/mlflow/registered-models/alias?name=iris-ui&alias=champion"
    )
    assert resolved["model_version"]["version"] == "1"

    # The sidebar lists the model with its Production version.
    page.locator('.lm-TabBar-tab[data-id="jupyter-mlops-models"]').click()
    item = page.locator('#jupyter-mlops-models .jp-mlops-ModelItem[data-model="iris-ui"]')
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    expect(item.locator('.jp-mlops-StageBadge[data-stage="Production"]')).to_have_text(
        "Production v1", timeout=TIMEOUT_MS
    )
    expect(item).to_contain_text("@champion@v1")
    page.screenshot(path=str(screenshot_dir / "models-view.png"))

    badge.locator(".jp-mlops-AliasRemove").click()
    expect(badge).to_have_count(0, timeout=TIMEOUT_MS)

    # The run link opens the run the model came from (lineage names it).
    run_link = row.locator(".jp-mlops-VersionRun")
    expect(run_link).to_have_text("ui-iris-model", timeout=TIMEOUT_MS)
    run_link.click()
    expect(
        page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab:has-text("ui-iris-model")').first
    ).to_be_visible(timeout=TIMEOUT_MS)


def _version(lab: Any, name: str, version: str) -> dict[str, Any]:
    return lab.api("GET", f"mlops/api/2.0/mlflow/model-versions/get?name={name}&version={version}")[
        "model_version"
    ]


NOTEBOOK_CELL = """\
import jupyter_mlops as mlops
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
with mlops.start_run(run_name="nb-tree"):
    info = mlops.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), "tree",
                           registered_model_name="iris-nb")
print("registered", info.registered_model_version)
"""


def test_version_links_to_its_source_notebook(page: Any, lab: Any) -> None:
    """A model logged and registered from a notebook cell: the version's
    lineage names the notebook, and its link opens it."""
    path = "train_tree.ipynb"
    run_notebook(page, lab, path, NOTEBOOK_CELL, "registered 1")
    # Close it (unsaved outputs discarded) so the link must open it again.
    page.evaluate("() => window.jupyterapp.shell.currentWidget.dispose()")
    tab = page.locator(f'.lm-DockPanel-tabBar .lm-TabBar-tab:has-text("{path}")')
    expect(tab).to_have_count(0)

    page.evaluate("() => window.jupyterapp.commands.execute('jupyter-mlops:open-models')")
    item = page.locator('#jupyter-mlops-models .jp-mlops-ModelItem[data-model="iris-nb"]')
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.click()
    view = page.locator('.jp-mlops-ModelsView-body[data-model="iris-nb"]')
    row = view.locator('.jp-mlops-VersionRow[data-version="1"]')
    link = row.locator(".jp-mlops-VersionNotebook")
    expect(link).to_have_text(path, timeout=TIMEOUT_MS)
    expect(row.locator(".jp-mlops-VersionRun")).to_have_text("nb-tree")
    link.click()
    expect(tab).to_be_visible(timeout=TIMEOUT_MS)


def test_panel_says_it_is_loading_on_a_slow_connection(page: Any) -> None:
    """While the first answer is on its way the panel says so (it was blank)."""
    held: list[Any] = []
    pattern = "**/mlops/api/2.0/mlflow/registered-models/search*"
    page.route(pattern, lambda route: held.append(route))
    panel = open_sidebar(
        page, "#jupyter-mlops-models", '.lm-TabBar-tab[data-id="jupyter-mlops-models"]'
    )
    loading = panel.locator(".jp-mlops-Placeholder-loading")
    expect(loading).to_contain_text("Loading models")
    page.unroute(pattern)
    assert held  # the first answer was held back; unroute lets it through
    expect(loading).to_have_count(0)
    expect(panel.locator(".jp-mlops-ModelList")).to_be_visible()


def test_model_links_open_the_model_and_copy_link_gives_them(page: Any, lab: Any) -> None:
    """MLflow UI's `#/models/<name>/versions/<v>` opens that model inside JupyterLab, and
    "Copy link" on a model's tab, a model version or a pipeline run gives the URL of the same
    view (issue 10, point 2)."""
    name = f"linked-{uuid.uuid4().hex[:6]}"
    exp_id = lab.mlflow("experiments/create", {"name": name})["experiment_id"]
    run_id = lab.mlflow("runs/create", {"experiment_id": exp_id})["run"]["info"]["run_id"]
    lab.mlflow("registered-models/create", {"name": name})
    lab.mlflow(
        "model-versions/create",
        {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id},
    )
    page.goto(f"{lab.url}mlops/?token={lab.token}#/models/{name}/versions/1")
    view = page.locator(f'.jp-mlops-ModelsView-body[data-model="{name}"]')
    expect(view).to_be_visible(timeout=TIMEOUT_MS)
    expect(view.locator('.jp-mlops-VersionRow[data-version="1"]')).to_be_visible()
    assert "#" not in page.url  # opened once: a reload restores the layout instead

    # "Copy link" on the model's tab (its context menu) gives the model's link.
    tab = page.locator(f'.lm-TabBar-tab[data-id="jupyter-mlops-model-{name}"]')
    tab.click(button="right")
    page.locator(".lm-Menu").get_by_text("MLOps: Copy link").click()
    expect(
        page.locator(".Toastify__toast", has_text=f"{lab.url}mlops/#/models/{name}")
    ).to_be_visible()

    copied = page.evaluate(
        "(a) => window.jupyterapp.commands.execute('jupyter-mlops:copy-link', a)",
        {"model": name, "version": "1"},
    )
    assert copied == f"{lab.url}mlops/#/models/{name}/versions/1"
    copied = page.evaluate(
        "(a) => window.jupyterapp.commands.execute('jupyter-mlops:copy-link', a)",
        {"pipelineRunId": "abc123"},
    )
    assert copied == f"{lab.url}mlops/#/pipelines/runs/abc123"
