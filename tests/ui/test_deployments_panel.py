"""Deployments from the Models panel in a real JupyterLab (headless Chromium): a scikit-learn
model version is deployed on the local target from its version row, shows READY with its URL
and traffic, answers the **Try it** box (an error inline too), is rolled to a new version and
back, and is deleted after a confirmation.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from uihelpers import TIMEOUT_MS, expect, open_sidebar, run_as_user, set_theme

pytestmark = pytest.mark.ui

PANEL = "#jupyter-mlops-models"
TAB = '.lm-TabBar-tab[data-id="jupyter-mlops-models"]'
#: A scoring process starts Python, imports scikit-learn and loads the model: slow when loaded.
READY_MS = 180_000

LOG_MODELS = """\
import pandas as pd
from sklearn.dummy import DummyClassifier

import jupyter_mlops as mlops

X = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]})
mlops.set_experiment("ui-deployments")
for constant in (0, 1):  # version 1 answers 0, version 2 answers 1
    with mlops.start_run():
        clf = DummyClassifier(strategy="constant", constant=constant).fit(X, [0, 1])
        mlops.log_model(clf, "model", input_example=X, registered_model_name="{model}")
print("ok")
"""


@pytest.fixture(scope="module")
def model(lab: Any) -> str:
    name = f"ui-clf-{uuid.uuid4().hex[:6]}"
    run_as_user(lab, LOG_MODELS.replace("{model}", name))
    # the image `models build-image` would record on version 1
    lab.mlflow(
        "model-versions/set-tag",
        {"name": name, "version": "1", "key": "mlops.image", "value": "registry.local/clf:1"},
    )
    return name


def _answer(view: Any) -> Any:
    return view.locator(".jp-mlops-TryIt-response")


def test_deploy_try_roll_and_delete(
    page: Any, lab: Any, model: str, screenshot_dir: Any, allowed_console_errors: list[str]
) -> None:
    panel = open_sidebar(page, PANEL, TAB)
    panel.locator(".jp-mlops-ModelsRefresh").click()
    panel.locator(f'.jp-mlops-ModelItem[data-model="{model}"]').click()
    mview = page.locator(f'.jp-mlops-ModelsView-body[data-model="{model}"]')
    row1 = mview.locator('.jp-mlops-VersionRow[data-version="1"]')
    expect(row1).to_be_visible(timeout=TIMEOUT_MS)
    expect(row1.locator(".jp-mlops-VersionImage")).to_have_text("registry.local/clf:1")

    row1.locator(".jp-mlops-VersionDeploy").click()
    dialog = page.locator(".jp-Dialog")
    form = dialog.locator(".jp-mlops-DeployForm")
    expect(form).to_be_visible(timeout=TIMEOUT_MS)
    expect(form.locator(".jp-mlops-DeployForm-uri")).to_have_text(f"models:/{model}/1")
    expect(form.locator('input[name="name"]')).to_have_value(model)
    expect(form.locator('select[name="target"]')).to_have_value("local")
    # A name that is no DNS label is refused next to the field.
    form.locator('input[name="name"]').fill("Bad_Name")
    dialog.locator(".jp-mod-accept").click()
    error = page.locator('.jp-mlops-FormField[data-param="name"] .jp-mlops-FormField-error')
    expect(error).to_contain_text("lower-case", timeout=TIMEOUT_MS)
    name = f"ui-dep-{uuid.uuid4().hex[:4]}"
    page.locator('.jp-Dialog input[name="name"]').fill(name)
    expect(error).to_have_count(0)
    page.locator(".jp-Dialog .jp-mod-accept").click()

    view = page.locator(f'.jp-mlops-DeploymentView-body[data-deployment="{name}"]')
    expect(view).to_have_attribute("data-status", "READY", timeout=READY_MS)
    expect(view.locator(".jp-mlops-DeploymentView-split")).to_have_text("v1 100%")
    url = view.locator(".jp-mlops-DeploymentUrl-text").inner_text()
    try:
        lab.api("GET", f"mlops/api/v1/deployments/{name}/metrics")
    except AssertionError as e:  # a server without the metrics route: the UI asks once
        assert "-> 404" in str(e), e
        allowed_console_errors.append("status of 404 (Not Found)")
    assert url.startswith("http://127.0.0.1:")
    # The sidebar lists it, ready, with its URL and split.
    item = panel.locator(f'.jp-mlops-DeploymentItem[data-deployment="{name}"]')
    expect(item).to_have_attribute("data-status", "READY", timeout=TIMEOUT_MS)
    expect(item.locator(".jp-mlops-DeploymentUrl-text")).to_have_text(url)
    expect(item.locator(".jp-mlops-DeploymentItem-split")).to_contain_text("v1 100%")

    # Try it: prefilled from the model's input example; the answer shows.
    request = view.locator(".jp-mlops-TryIt-request")
    expect(request).to_have_value(re.compile("dataframe_split"), timeout=TIMEOUT_MS)
    assert json.loads(request.input_value()) == _example()
    view.locator(".jp-mlops-TryIt-send").click()
    answer = _answer(view)
    expect(answer).to_have_attribute("data-status", "200", timeout=TIMEOUT_MS)
    assert json.loads(answer.locator(".jp-mlops-TryIt-body").inner_text()) == {
        "predictions": [0, 0]
    }
    # A request the model refuses: its error inline, not a dialog.
    request.fill('{"no_such_format": []}')
    view.locator(".jp-mlops-TryIt-send").click()
    expect(answer).to_have_attribute("data-status", "400", timeout=TIMEOUT_MS)
    expect(answer).to_have_class("jp-mlops-TryIt-response jp-mod-error")
    expect(answer).to_contain_text("error_code")
    request.fill("{not json")
    view.locator(".jp-mlops-TryIt-send").click()
    expect(answer).to_contain_text("not valid JSON")
    # The error's tint comes from the theme: not the plain background, and not the same in
    # light and dark.
    tints = {}
    for theme, light in (("JupyterLab Dark", False), ("JupyterLab Light", True)):
        set_theme(page, theme, light)
        tint, plain = answer.evaluate(
            """(el) => {
                const probe = document.createElement('div');
                probe.style.background = 'var(--jp-layout-color1)';
                document.body.appendChild(probe);
                const plain = getComputedStyle(probe).backgroundColor;
                probe.remove();
                return [getComputedStyle(el).backgroundColor, plain];
            }"""
        )
        assert tint != plain
        tints[theme] = tint
        page.screenshot(path=str(screenshot_dir / f"deployment-{'light' if light else 'dark'}.png"))
    assert tints["JupyterLab Dark"] != tints["JupyterLab Light"]

    # Roll to version 2: the split and the answers follow.
    view.locator('select[name="version"]').select_option("2")
    view.locator(".jp-mlops-DeploymentRoll").click()
    expect(view.locator(".jp-mlops-DeploymentView-split")).to_have_text("v2 100%", timeout=READY_MS)
    expect(view).to_have_attribute("data-status", "READY", timeout=READY_MS)
    expect(view.locator('.jp-mlops-DeploymentHistory tr[data-version="2"]')).to_have_count(1)
    request.fill(json.dumps(_example()))
    view.locator(".jp-mlops-TryIt-send").click()
    expect(answer).to_have_attribute("data-status", "200", timeout=TIMEOUT_MS)
    assert json.loads(answer.locator(".jp-mlops-TryIt-body").inner_text()) == {
        "predictions": [1, 1]
    }
    expect(item.locator(".jp-mlops-DeploymentItem-split")).to_contain_text(
        "v2 100%", timeout=TIMEOUT_MS
    )
    # The version shows where it is deployed.
    page.evaluate(
        "(name) => window.jupyterapp.commands.execute('jupyter-mlops:open-model', {name})", model
    )
    row2 = mview.locator('.jp-mlops-VersionRow[data-version="2"]')
    expect(row2.locator(f'.jp-mlops-VersionDeployment[data-deployment="{name}"]')).to_be_visible(
        timeout=TIMEOUT_MS
    )
    row2.locator(f'.jp-mlops-VersionDeployment[data-deployment="{name}"]').click()

    # Rollback: version 1 again.
    view.locator(".jp-mlops-DeploymentRollback").click()
    expect(view.locator(".jp-mlops-DeploymentView-split")).to_have_text("v1 100%", timeout=READY_MS)
    dep = lab.api("GET", f"mlops/api/v1/deployments/{name}")["deployment"]
    assert dep["model_version"] == "1"
    assert [h["model_version"] for h in dep["history"]] == ["1", "2", "1"]

    # Delete asks first.
    view.locator(".jp-mlops-DeploymentDelete").click()
    confirm = page.locator(".jp-Dialog")
    expect(confirm).to_contain_text("Delete deployment")
    confirm.get_by_role("button", name="Delete").click()
    expect(view).to_have_count(0, timeout=TIMEOUT_MS)
    expect(item).to_have_count(0, timeout=TIMEOUT_MS)
    listed = lab.api("GET", "mlops/api/v1/deployments")["deployments"]
    assert name not in [d["name"] for d in listed]


def _example() -> dict[str, Any]:
    return {"dataframe_split": {"columns": ["a", "b"], "data": [[0.0, 1.0], [1.0, 0.0]]}}
