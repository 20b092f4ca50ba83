"""Fixtures for tests/hub: a real JupyterHub (with configurable-http-proxy) using TeamSpawner against our fake
Kubernetes API and kubelet (fakek8s.py). One hub per test module; tests stop the servers they start."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: the prebuilt JupyterLab extension (built by `jlpm build`; absent in a checkout that was never built)
LABEXTENSION = REPO / "jupyter_mlops" / "labextension" / "package.json"

TEST_TEAMS = """\
images:
  py:
    image: registry.test/minimal:1
    display_name: Python
    description: a small CPU image
  torch:
    image: registry.test/torch:1
    display_name: PyTorch (CUDA)
    gpu: true
  lab:
    image: registry.test/lab-mlops:1
    display_name: JupyterLab with jupyter-mlops
sizes:
  small: {cpu: 1, memory: 1G}
  big: {cpu: 2, memory: 2G}
gpu:
  node_selector: {nvidia.com/gpu.present: "true"}
  tolerations:
    - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
teams:
  vision:
    groups: [vision, vision-guests]
    images: [py, torch]
    max_gpus_per_user: 2
    gpu_quota: 4
  nlp:
    groups: [nlp]
    images: [py, lab]
    sizes: [small]
defaults:
  image: py
  size: small
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Hub:
    url: str
    token: str
    proc: subprocess.Popen | None
    k8s: Any
    log: Path
    workdir: Path
    env: dict

    def launch(self) -> None:
        """Start jupyterhub (and with it configurable-http-proxy) and wait until its API answers."""
        import requests

        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(HERE / "hub_test_config.py")],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyterhub did not come up:\n{self.tail()}")
            time.sleep(0.3)

    def shutdown(self) -> None:
        """Stop the hub process (user pods keep running: cleanup_servers is off, as in a z2jh upgrade)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def api(self, method: str, path: str, **kw: Any) -> Any:
        import requests

        headers = {"Authorization": f"token {self.token}", **kw.pop("headers", {})}
        return requests.request(
            method,
            f"{self.url}/hub/api/{path.lstrip('/')}",
            headers=headers,
            timeout=kw.pop("timeout", 120),
            **kw,
        )

    def user(self, name: str) -> dict:
        r = self.api("GET", f"users/{name}")
        r.raise_for_status()
        return r.json()

    def spawn(self, name: str, options: dict | None = None) -> Any:
        return self.api("POST", f"users/{name}/server", data=json.dumps(options or {}))

    def wait_ready(self, name: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.user(name)["servers"].get("")
            if server and server.get("ready"):
                return server
            if server is None:
                raise AssertionError(
                    f"{name}'s server went away while starting; hub log:\n{self.tail()}"
                )
            time.sleep(0.3)
        raise AssertionError(f"{name}'s server not ready in {timeout}s; hub log:\n{self.tail()}")

    def stop(self, name: str, timeout: float = 60) -> None:
        r = self.api("DELETE", f"users/{name}/server")
        assert r.status_code in (202, 204, 400), r.text  # 400: not running
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            servers = self.user(name)["servers"]
            if "" not in servers:
                return
            time.sleep(0.2)
        raise AssertionError(f"{name}'s server did not stop; hub log:\n{self.tail()}")

    def stop_all(self) -> None:
        running = [u["name"] for u in self.api("GET", "users").json() if u.get("servers")]
        with ThreadPoolExecutor(max(1, len(running))) as pool:
            list(pool.map(self.stop, running))

    def pods(self) -> list[dict]:
        return self.k8s.snapshot("pods", "jhub")

    def pod_of(self, name: str) -> dict:
        pods = [
            p
            for p in self.pods()
            if p["metadata"]["annotations"].get("hub.jupyter.org/username") == name
        ]
        assert len(pods) == 1, [p["metadata"]["name"] for p in self.pods()]
        return pods[0]

    def login(self, name: str) -> Any:
        import requests

        s = requests.Session()
        s.get(f"{self.url}/hub/login", timeout=30)
        r = s.post(
            f"{self.url}/hub/login",
            data={"username": name, "password": "pw", "_xsrf": s.cookies.get("_xsrf", "")},
            timeout=30,
        )
        r.raise_for_status()
        return s

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:

    from fakek8s import FakeKubernetes, Runtime

    if not shutil.which("configurable-http-proxy"):
        pytest.skip(
            "configurable-http-proxy is not installed (npm install -g configurable-http-proxy)"
        )
    workdir = tmp_path_factory.mktemp("hub")
    singleuser = shutil.which("jupyterhub-singleuser") or "jupyterhub-singleuser"
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
        (d / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": exts}})
        )
    small_env = {"PYTHONPATH": str(REPO), "JUPYTER_CONFIG_DIR": str(small)}
    lab_env = {"PYTHONPATH": str(REPO), "JUPYTER_CONFIG_DIR": str(lab)}
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
    proxy_port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "KUBECONFIG": str(kubeconfig),
        "JUPYTER_MLOPS_TEAMS": str(workdir / "teams.yaml"),
        "JUPYTER_MLOPS_HUB_TRACKING_URL": f"http://127.0.0.1:{proxy_port}/services/mlops-tracking/mlops",
        "MLOPS_TEST_WORKDIR": str(workdir),
        "MLOPS_TEST_PROXY_PORT": str(proxy_port),
        "MLOPS_TEST_HUB_PORT": str(free_port()),
        "MLOPS_TEST_PROXY_API_PORT": str(free_port()),
        "MLOPS_TEST_K8S_URL": k8s.url,
        "MLOPS_TEST_ADMIN_TOKEN": token,
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    hub = Hub(
        f"http://127.0.0.1:{proxy_port}", token, None, k8s, workdir / "jupyterhub.log", workdir, env
    )
    try:
        hub.launch()
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
