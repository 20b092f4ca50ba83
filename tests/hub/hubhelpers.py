"""Helpers of tests/hub (imported as ``hubhelpers``: tests/hub is on sys.path): the teams file of the test
hub and ``Hub``, a real JupyterHub process (with configurable-http-proxy) driven over its REST API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serverproc import ServerExited, free_port, lost_port_race, wait_ready

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: the prebuilt JupyterLab extension (built by `jlpm build`; absent in a checkout that was never built)
LABEXTENSION = REPO / "jupyter_mlops" / "labextension" / "package.json"

#: The variables hub_test_config.py reads its ports from.
PORT_VARS = ("MLOPS_TEST_PROXY_PORT", "MLOPS_TEST_HUB_PORT", "MLOPS_TEST_PROXY_API_PORT")

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


@dataclass
class Hub:
    url: str
    token: str
    proc: subprocess.Popen | None
    k8s: Any
    log: Path
    workdir: Path
    env: dict

    #: The jupyterhub config file (in tests/hub) this hub runs with.
    config = "hub_test_config.py"
    #: Whether the spawner points servers at a hub-wide tracking service (``tracking_url``).
    #: Tests of a hub without one turn it off: a team server's services record their runs
    #: on the service it is given, so a job there fails when none answers.
    advertise_tracking = True

    def answers(self) -> bool:
        """Whether the hub is up: its REST API answers through the proxy."""
        import requests

        return requests.get(f"{self.url}/hub/api/", timeout=10).status_code == 200

    def launch(self) -> None:
        """Start jupyterhub (and with it configurable-http-proxy) and wait until it answers."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(HERE / self.config)],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_ready(self.proc, self.answers, lambda: self.tail(120), "jupyterhub")

    def launch_on_free_ports(self, *more_port_vars: str) -> None:
        """Give the hub, its proxy and its API (and ``more_port_vars``, e.g. a service) free ports
        and launch; on new ones if another process took one first (the hub exits saying so)."""
        for attempt in range(5):
            ports = {var: free_port() for var in (*PORT_VARS, *more_port_vars)}
            self.url = f"http://127.0.0.1:{ports['MLOPS_TEST_PROXY_PORT']}"
            self.env.update({var: str(port) for var, port in ports.items()})
            if self.advertise_tracking:
                self.env["JUPYTER_MLOPS_HUB_TRACKING_URL"] = (
                    f"{self.url}/services/mlops-tracking/mlops"
                )
            else:
                self.env.pop("JUPYTER_MLOPS_HUB_TRACKING_URL", None)
            offset = self.log.stat().st_size if self.log.exists() else 0
            try:
                self.launch()
                return
            except ServerExited:
                if attempt == 4 or not lost_port_race(
                    self.log.read_bytes()[offset:].decode(errors="replace")
                ):
                    raise

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

    def spawn_all(self, options: dict[str, dict | None]) -> None:
        """Ask for every user's server at once (``{user: spawn options}``), each accepted
        (201 or 202): the hub answers a spawn request only once the server is up or after its
        ``slow_spawn_timeout`` (10 s), so asked one by one, servers start one by one."""
        with ThreadPoolExecutor(len(options)) as pool:
            replies = list(pool.map(self.spawn, options, options.values()))
        for name, r in zip(options, replies):
            assert r.status_code in (201, 202), (name, r.status_code, r.text)

    def wait_ready(self, name: str, timeout: float = 240) -> dict:
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

    def stop(self, name: str, timeout: float = 120) -> None:
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
