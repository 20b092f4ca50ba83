"""Fixtures for tests/hub: a real JupyterHub (with configurable-http-proxy) using TeamSpawner against our fake
Kubernetes API and kubelet (fakek8s.py). One hub per test module; tests stop the servers they start."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterator

import pytest
from hubhelpers import HERE, LABEXTENSION, REPO, TEST_TEAMS, Hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Hub]:
    """A hub on a fake cluster; a test module without a tracking service in mind sets
    ``HUB_ADVERTISES_TRACKING = False`` (``Hub.advertise_tracking``)."""

    from fakek8s import FakeKubernetes, Runtime

    if not shutil.which("configurable-http-proxy"):
        pytest.skip(
            "configurable-http-proxy is not installed (npm install -g configurable-http-proxy)"
        )
    workdir = tmp_path_factory.mktemp("hub")
    # this interpreter's console script first: the venv's bin need not be on PATH
    singleuser = (
        shutil.which("jupyterhub-singleuser", path=os.path.dirname(sys.executable))
        or shutil.which("jupyterhub-singleuser")
        or "jupyterhub-singleuser"
    )
    # what each test image has baked in: jupyter-mlops on the path, and a server config (its extensions)
    small, lab = workdir / "image-small", workdir / "image-lab"
    for d, exts in (
        (
            small,
            {
                "jupyterlab": False,
                "jupyter_lsp": False,
                "notebook_shim": False,
                "notebook": False,
                "jupyter_server_terminals": False,
            },
        ),
        (lab, {"jupyter_mlops": True}),
    ):
        d.mkdir()
        config: dict = {"ServerApp": {"jpserver_extensions": exts}}
        if d == lab:
            # jobs may claim GPUs on this GPU-less machine (the team quota is what these tests check)
            config["TrainingService"] = {"local_gpus": ["0", "1", "2", "3"]}
        (d / "jupyter_server_config.json").write_text(json.dumps(config))
    small_env = {"PYTHONPATH": str(REPO), "JUPYTER_CONFIG_DIR": str(small)}
    (workdir / "nvml").mkdir()
    lab_env = {
        # the lab image has "nvidia-ml-py": our stand-in, whose GPUs the tests set per user
        "PYTHONPATH": os.pathsep.join([str(HERE / "fakenvml"), str(REPO)]),
        "FAKE_NVML_DIR": str(workdir / "nvml"),
        "JUPYTER_CONFIG_DIR": str(lab),
        "JUPYTER_MLOPS_HUB_REPORT_INTERVAL": "1",
    }
    if LABEXTENSION.exists():
        # the image has the package installed: its prebuilt JupyterLab extension is on the data path
        (lab / "data" / "labextensions").mkdir(parents=True)
        (lab / "data" / "labextensions" / "jupyter-mlops").symlink_to(LABEXTENSION.parent)
        lab_env["JUPYTER_PATH"] = str(lab / "data")
    runtimes = {
        "registry.test/minimal:1": Runtime([singleuser], small_env),
        "registry.test/torch:1": Runtime([singleuser], small_env),
        "registry.test/lab-mlops:1": Runtime([singleuser], lab_env),
    }
    k8s = FakeKubernetes(workdir, runtimes, Runtime([singleuser], small_env))
    k8s.start()

    (workdir / "teams.yaml").write_text(TEST_TEAMS)
    kubeconfig = workdir / "kubeconfig.json"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": k8s.url}}],
                "users": [{"name": "fake", "user": {"token": "fake"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            }
        )
    )
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "KUBECONFIG": str(kubeconfig),
        "JUPYTER_MLOPS_TEAMS": str(workdir / "teams.yaml"),
        "MLOPS_TEST_WORKDIR": str(workdir),
        "MLOPS_TEST_K8S_URL": k8s.url,
        "MLOPS_TEST_ADMIN_TOKEN": token,
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    hub = Hub("", token, None, k8s, workdir / "jupyterhub.log", workdir, env)
    hub.advertise_tracking = getattr(request.module, "HUB_ADVERTISES_TRACKING", True)
    try:
        hub.launch_on_free_ports()
        yield hub
    finally:
        try:
            hub.shutdown()
        finally:
            k8s.stop()


@pytest.fixture
def clean(hub: Hub) -> Iterator[Hub]:
    """The hub, with every server stopped after the test."""
    try:
        yield hub
    finally:
        hub.stop_all()
