"""A canary rollout from the Models panel's deployment view, in a real JupyterLab (headless
Chromium) whose server has a KServe target on the fake Kubernetes API server
(tests/hub/fakek8s.py, with tests/deployments/kubefakes.py's controllers running each pod's
scoring server as a local process): version 1 deployed from its version row, version 2
rolled out as a 20 % canary (the split and the traffic bar show both versions, the metrics
count each version's requests), promoted to all the traffic, then rolled back to version 1.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from uihelpers import TIMEOUT_MS, expect, open_sidebar, run_as_user

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deployments"))
from fakek8s import FakeKubernetes
from kubefakes import FakeServing

pytestmark = pytest.mark.ui

PANEL = "#jupyter-mlops-models"
TAB = '.lm-TabBar-tab[data-id="jupyter-mlops-models"]'
NS = "models"
#: A pod's scoring server starts Python, imports scikit-learn and loads the model.
READY_MS = 180_000

LOG_MODELS = """\
import pandas as pd
from sklearn.dummy import DummyClassifier

import jupyter_mlops as mlops
from jupyter_mlops.registry.api import download_model

X = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]})
mlops.set_experiment("ui-canary")
for constant in (0, 1):  # version 1 answers 0, version 2 answers 1
    with mlops.start_run():
        clf = DummyClassifier(strategy="constant", constant=constant).fit(X, [0, 1])
        mlops.log_model(clf, "model", input_example=X, registered_model_name="{model}")
for v in (1, 2):  # what building each version's image bakes in
    download_model(f"models:/{model}/{v}", f"images/{v}")
print("ok")
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeServing]]:
    """The fake Kubernetes API server (its URL) and its fake KServe controller."""
    root = tmp_path_factory.mktemp("k8s")
    k8s = FakeKubernetes(root)
    k8s.start()
    serving = FakeServing(k8s)
    yield k8s.url, serving
    k8s.call(serving.close)
    k8s.stop()
    assert not k8s.controller_errors, k8s.controller_errors


@pytest.fixture(scope="module")
def lab(start_lab: Any, cluster: tuple[str, FakeServing]) -> Any:
    """This module's JupyterLab (``page`` opens it): its server has a KServe target."""
    target = {"kind": "kserve", "api_url": cluster[0], "namespace": NS, "poll_interval": 0.3}
    return start_lab({"DeploymentService": {"targets": {"kserve": target}}})


def test_canary_split_promote_and_rollback(page: Any, lab: Any, cluster: Any) -> None:
    serving = cluster[1]
    model = f"ui-canary-{uuid.uuid4().hex[:6]}"
    assert "ok" in run_as_user(lab, LOG_MODELS.replace("{model}", model))
    for v in (1, 2):  # the images `models build-image` records (and the fake cluster runs)
        image = f"registry.local/{model}:{v}"
        lab.mlflow(
            "model-versions/set-tag",
            {"name": model, "version": str(v), "key": "mlops.image", "value": image},
        )
        serving.images[image] = str(lab.root / "images" / str(v))

    panel = open_sidebar(page, PANEL, TAB)
    panel.locator(".jp-mlops-ModelsRefresh").click()
    panel.locator(f'.jp-mlops-ModelItem[data-model="{model}"]').click()
    mview = page.locator(f'.jp-mlops-ModelsView-body[data-model="{model}"]')
    mview.locator('.jp-mlops-VersionRow[data-version="1"] .jp-mlops-VersionDeploy').click()
    form = page.locator(".jp-Dialog .jp-mlops-DeployForm")
    expect(form).to_be_visible(timeout=TIMEOUT_MS)
    name = f"canary-{uuid.uuid4().hex[:4]}"
    form.locator('input[name="name"]').fill(name)
    form.locator('select[name="target"]').select_option("kserve")
    page.locator(".jp-Dialog .jp-mod-accept").click()

    view = page.locator(f'.jp-mlops-DeploymentView-body[data-deployment="{name}"]')
    split = view.locator(".jp-mlops-DeploymentView-split")
    expect(view).to_have_attribute("data-status", "READY", timeout=READY_MS)
    expect(split).to_have_text("v1 100%")

    # Version 2 as a 20 % canary: both versions serve, the bar shows the split.
    view.locator('select[name="version"]').select_option("2")
    view.locator('input[name="canary"]').fill("20")
    view.locator(".jp-mlops-DeploymentRoll").click()
    expect(split).to_have_text("v1 80% · v2 20%", timeout=READY_MS)
    expect(view).to_have_attribute("data-status", "READY", timeout=READY_MS)
    bar = view.locator(".jp-mlops-TrafficBar-part")
    expect(bar).to_have_text(["v1 80%", "v2 20%"])
    url = view.locator(".jp-mlops-DeploymentUrl-text").inner_text()
    body = {"dataframe_records": [{"a": 0.0, "b": 1.0}]}
    answers = [
        requests.post(url + "/invocations", json=body, timeout=60).json()["predictions"][0]
        for _ in range(10)
    ]
    assert sorted(answers) == [0] * 8 + [1] * 2, answers  # the gateway follows the split
    metrics = lab.api("GET", f"mlops/api/v1/deployments/{name}/metrics")["versions"]
    counted = {m["version"]: (m["traffic_percent"], m["requests_total"]) for m in metrics}
    assert counted == {"1": (80, 8), "2": (20, 2)}, metrics
    # the view's sparklines scrape the same metrics: a request rate shows
    expect(
        view.locator('.jp-mlops-Sparkline[data-metric="rate"] .jp-mlops-Sparkline-value')
    ).not_to_have_text("–", timeout=TIMEOUT_MS)

    # Promote: version 2 takes all the traffic.
    view.locator(".jp-mlops-DeploymentPromote").click()
    expect(split).to_have_text("v2 100%", timeout=READY_MS)
    expect(view).to_have_attribute("data-status", "READY", timeout=READY_MS)
    expect(bar).to_have_count(0)
    expect(view.locator(".jp-mlops-DeploymentPromote")).to_have_count(0)

    # Rollback: version 1 again.
    view.locator(".jp-mlops-DeploymentRollback").click()
    expect(split).to_have_text("v1 100%", timeout=READY_MS)
    expect(view).to_have_attribute("data-status", "READY", timeout=READY_MS)
    dep = lab.api("GET", f"mlops/api/v1/deployments/{name}")["deployment"]
    assert [(h["action"], h["model_version"]) for h in dep["history"]] == [
        ("create", "1"),
        ("promote", "2"),
        ("rollback", "1"),
    ]
    assert requests.post(url + "/invocations", json=body, timeout=60).json() == {"predictions": [0]}
    lab.api("DELETE", f"mlops/api/v1/deployments/{name}")
