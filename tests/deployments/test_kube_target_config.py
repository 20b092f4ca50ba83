"""The Kubernetes deployment targets' settings (checked at start-up, errors naming target and
field) and the objects they write (no cluster needed: the manifests are plain dicts)."""

from __future__ import annotations

import pytest

import jupyter_mlops.deployments.service  # noqa: F401 - registers the deployment kinds
from jupyter_mlops.deployments.kserve import KServeTarget
from jupyter_mlops.deployments.kubeapps import KubeAppsTarget, canary_split
from jupyter_mlops.deployments.local import DeploymentItem
from jupyter_mlops.targets import build_targets

API = {"api_url": "https://k8s.example:6443", "namespace": "models"}


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"kind": "kserve", "namespace": "m"}, "targets['t'].api_url: required"),
        (
            {"kind": "kserve", "deployment_mode": "Standard", "scale_to_zero": True, **API},
            "targets['t'].scale_to_zero: needs deployment_mode Knative",
        ),
        ({"kind": "kserve", "max_replicas": -1, **API}, "targets['t'].max_replicas: must be"),
        ({"kind": "kserve", "replicas": 3, **API}, "targets['t']: unknown setting(s) 'replicas'"),
        ({"kind": "kserve", "image": "r/{model}:1", **API}, "targets['t'].image: a template"),
        (
            {"kind": "kubernetes", "service_type": "NodePort", **API},
            "targets['t'].node_address: required with service_type NodePort",
        ),
        ({"kind": "kubernetes", "service_type": "Ingress", **API}, "targets['t'].service_type"),
        ({"kind": "kubernetes", "env": {"A": 1}, **API}, "targets['t'].env: A: the value"),
        ({"kind": "kubernetes", "poll_interval": 0, **API}, "targets['t'].poll_interval"),
    ],
)
def test_mistakes_name_target_and_field(settings, fragment):
    targets, errors = build_targets("deployments", {"t": settings}, "targets")
    assert targets == {} and fragment in errors["t"], errors


def item(replicas: int = 2, resources: dict | None = None) -> DeploymentItem:
    row = {"name": "churn", "replicas": replicas, "resources": resources}
    return DeploymentItem("churn", "t", None, row)


def test_kserve_predictor_is_our_image_scaling_to_zero():
    targets, errors = build_targets(
        "deployments",
        {"t": {"kind": "kserve", "scale_to_zero": True, "max_replicas": 5, **API}},
        "targets",
    )
    assert not errors
    t = targets["t"]
    assert isinstance(t, KServeTarget) and t.supports_canary
    body = t.manifest(item(resources={"cpu": "1"}), "models:/churn/4", "4", "reg/churn:4", 20)
    assert body["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    pred = body["spec"]["predictor"]
    assert (pred["minReplicas"], pred["maxReplicas"], pred["canaryTrafficPercent"]) == (0, 5, 20)
    [c] = pred["containers"]
    assert c["name"] == "kserve-container" and c["image"] == "reg/churn:4"
    assert c["command"] == ["python", "-m", "jupyter_mlops.registry.serve"]
    assert c["args"][:1] == ["/opt/ml/model"] and "churn" in c["args"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["resources"] == {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    assert "model" not in pred  # a custom container: no runtime, no storageUri
    standard, _ = build_targets(
        "deployments", {"s": {"kind": "kserve", "deployment_mode": "RawDeployment", **API}}, "t"
    )
    assert standard["s"].deployment_mode == "Standard" and not standard["s"].supports_canary


def test_plain_target_objects_and_canary_split():
    targets, errors = build_targets(
        "deployments", {"t": {"kind": "kubernetes", "max_replicas": 6, **API}}, "targets"
    )
    assert not errors
    t = targets["t"]
    assert isinstance(t, KubeAppsTarget)
    dep = t.deployment(item(), "models:/churn/4", "4", "reg/churn:4", "canary", 1)
    assert dep["metadata"]["name"] == "churn-canary"
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["mlops.jupyter.org/deployment"] == "churn"
    assert labels["mlops.jupyter.org/model-version"] == "4"
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    svc = t.service(item())
    assert svc["spec"]["selector"] == {"mlops.jupyter.org/deployment": "churn"}  # both tracks
    hpa = t.hpa(item(), 2)
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 6
    assert t.hpa(item(), 6) is None  # nothing to scale
    assert t._url(svc) == "http://churn.models.svc.cluster.local"
    assert canary_split(5, 20) == (4, 1)
    assert canary_split(2, 20) == (1, 1)
    assert canary_split(10, 30) == (7, 3)
