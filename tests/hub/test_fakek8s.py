"""The fake Kubernetes API behaves like the real one where the hub tests depend on it.

A real kubelet tracks a pod by its uid: once a pod is deleted, nothing its container does (exiting when killed)
changes a later pod of the same name. KubeSpawner relies on that when it replaces a stale pod after a 409.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

# tests/hub is on sys.path (rootdir import mode), as for conftest.py
from fakek8s import FakeKubernetes

#: a stand-in notebook server: listens on the port the kubelet wrote into JUPYTERHUB_SERVICE_URL
SERVE = [
    "python3",
    "-c",
    (
        "import os, http.server, urllib.parse as u; "
        "port = u.urlparse(os.environ['JUPYTERHUB_SERVICE_URL']).port; "
        "http.server.HTTPServer(('127.0.0.1', port), http.server.BaseHTTPRequestHandler).serve_forever()"
    ),
]


def pod(name: str, command: list[str]) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "registry.test/minimal:1",
                    "command": command,
                    "env": [{"name": "JUPYTERHUB_SERVICE_URL", "value": "http://0.0.0.0:8888/"}],
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                }
            ]
        },
    }


def wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def ready(p: dict | None) -> bool:
    s = (p or {}).get("status", {})
    return (
        s.get("phase") == "Running"
        and bool(s.get("podIP"))
        and all(c["ready"] for c in s.get("containerStatuses") or [{"ready": False}])
    )


@pytest.fixture
def k8s(tmp_path: Path) -> Iterator[FakeKubernetes]:
    k = FakeKubernetes(tmp_path)
    k.start()
    try:
        yield k
    finally:
        k.stop()


def test_a_deleted_pods_container_does_not_touch_the_new_pod_of_the_same_name(k8s):
    pods = f"{k8s.url}/api/v1/namespaces/jhub/pods"
    assert (
        requests.post(pods, json=pod("jupyter-bob", ["sleep", "300"]), timeout=30).status_code
        == 201
    )
    wait_for(
        lambda: (
            (k8s.find("pods", "jhub", "jupyter-bob") or {}).get("status", {}).get("phase")
            == "Running"
        ),
        "the stale pod to run",
    )
    old_uid = k8s.find("pods", "jhub", "jupyter-bob")["metadata"]["uid"]
    assert requests.delete(f"{pods}/jupyter-bob", timeout=30).status_code == 200
    wait_for(lambda: k8s.find("pods", "jhub", "jupyter-bob") is None, "the stale pod to go")

    # as KubeSpawner does after a 409: create the same name again as soon as the old one is gone
    assert requests.post(pods, json=pod("jupyter-bob", SERVE), timeout=30).status_code == 201
    new = k8s.find("pods", "jhub", "jupyter-bob")
    assert new["metadata"]["uid"] != old_uid
    wait_for(lambda: ready(k8s.find("pods", "jhub", "jupyter-bob")), "the new pod to be ready")
    # the old container's exit (killed: status -15) is reported for the old uid only, never on the new pod
    wait_for(lambda: old_uid not in k8s.processes, "the old container to be reaped")
    time.sleep(0.5)  # the old kubelet loop polls every 0.2 s: give it the chance to misbehave
    assert ready(k8s.find("pods", "jhub", "jupyter-bob"))
    kinds = [
        (t, o["metadata"].get("uid"))
        for _, k, t, o in k8s.history
        if k == "pods" and o["metadata"]["name"] == "jupyter-bob"
    ]
    assert ("DELETED", old_uid) in kinds
    assert all(
        uid == new["metadata"]["uid"] for t, uid in kinds[kinds.index(("DELETED", old_uid)) + 1 :]
    )


def test_deleting_a_pod_stops_its_process_and_reports_it_gone(k8s):
    pods = f"{k8s.url}/api/v1/namespaces/jhub/pods"
    assert requests.post(pods, json=pod("jupyter-carol", SERVE), timeout=30).status_code == 201
    wait_for(lambda: ready(k8s.find("pods", "jhub", "jupyter-carol")), "the pod to be ready")
    uid = k8s.find("pods", "jhub", "jupyter-carol")["metadata"]["uid"]
    proc = k8s.processes[uid]
    r = requests.delete(f"{pods}/jupyter-carol", timeout=30)
    assert r.status_code == 200 and r.json()["metadata"].get("deletionTimestamp")
    wait_for(lambda: k8s.find("pods", "jhub", "jupyter-carol") is None, "the pod to go")
    assert proc.returncode is not None
    assert requests.get(f"{pods}/jupyter-carol", timeout=30).status_code == 404
