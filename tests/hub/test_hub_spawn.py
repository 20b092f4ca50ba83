"""A real JupyterHub + configurable-http-proxy spawning through TeamSpawner into the fake Kubernetes API.

The hub runs the shipped spawner/jupyterhub_config.py (see hub_test_config.py); each pod the hub creates is run
by the fake kubelet as a real jupyterhub-singleuser process. One hub for the module; every test stops its servers.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: the prebuilt JupyterLab extension (absent in a checkout where `jlpm build` never ran)
LABEXTENSION = (
    Path(__file__).resolve().parents[2] / "jupyter_mlops" / "labextension" / "package.json"
)
VISION = ["alice", "bob", "carol", "dan", "erin", "frank"]


class FormParser(HTMLParser):
    """Collects the spawn form's profile radio buttons and <select> options."""

    def __init__(self) -> None:
        super().__init__()
        self.profiles: list[str] = []
        self.selects: dict[str, list[str]] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name") == "profile":
            self.profiles.append(a["value"])
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self.selects[self._select] = []
        elif tag == "option" and self._select:
            self.selects[self._select].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def spawn_form(hub, name: str) -> tuple[FormParser, str]:
    s = hub.login(name)
    r = s.get(f"{hub.url}/hub/spawn", timeout=60)
    assert r.status_code == 200, r.text[:500]
    form = FormParser()
    form.feed(r.text)
    return form, r.text


def gpu_cell(page: str, team: str) -> str:
    m = re.search(
        rf'<tr data-team="{team}"><td>{team}</td><td class="mlops-gpus">([^<]*)</td><td>([^<]*)</td>',
        page,
    )
    assert m, page[:2000]
    return f"{m.group(1)} | {m.group(2)}"


def container(pod: dict) -> dict:
    return pod["spec"]["containers"][0]


def env_of(pod: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container(pod)["env"]}


def test_spawn_form_offers_exactly_the_users_team_images_and_gpu_counts(hub):
    form, page = spawn_form(hub, "alice")  # team vision: py, torch; up to 2 GPUs per user
    assert form.profiles == ["py", "torch"]
    assert form.selects["profile-option-torch--gpus"] == ["0", "1", "2"]
    assert "profile-option-py--gpus" not in form.selects  # not a GPU image
    assert form.selects["profile-option-torch--size"] == ["small", "big"]
    assert gpu_cell(page, "vision") == "0 of 4 | nobody"
    assert "{%" not in page and "{{" not in page  # nothing left unrendered

    form, page = spawn_form(hub, "nina")  # team nlp: py, lab; no GPUs, one size
    assert form.profiles == ["py", "lab"]
    assert not any(k.endswith("--gpus") for k in form.selects)
    assert form.selects["profile-option-lab--size"] == ["small"]
    assert 'data-team="vision"' not in page

    form, _ = spawn_form(
        hub, "zoe"
    )  # in both teams: py is offered by both, so she picks whose quota
    assert form.profiles == ["py", "torch", "lab"]
    assert form.selects["profile-option-py--team"] == ["vision", "nlp"]
    assert "profile-option-torch--team" not in form.selects


def test_rest_spawn_with_foreign_image_too_many_gpus_or_unknown_options_is_refused(clean):
    hub = clean
    before = len([b for b in hub.k8s.created if b.get("kind") == "Pod"])
    cases = [
        ({"profile": "lab"}, "image 'lab' is not offered to alice's teams (vision)"),
        (
            {"profile": "torch", "gpus": 8},
            "team vision allows at most 2 GPUs per user; 8 requested",
        ),
        ({"profile": "py", "gpus": 1}, "image 'py' is not GPU-capable"),
        ({"profile": "torch", "image": "evil.example/miner:1"}, "unknown spawn options: image"),
        (
            {"profile": "torch", "extra_resource_limits": {"nvidia.com/gpu": "8"}},
            "unknown spawn options: extra_resource_limits",
        ),
        (
            {"profile": "custom", "image--unlisted-choice": "registry.test/x:1"},
            "custom images are not enabled",
        ),
        ({"profile": "torch", "gpus": "-1"}, "gpus must not be negative"),
        ({"profile": "torch", "gpus": "two"}, "gpus must be a whole number"),
    ]
    for options, message in cases:
        r = hub.spawn("alice", options)
        assert r.status_code == 400, (options, r.status_code, r.text)
        assert message in r.json()["message"], (options, r.json())
        # JupyterHub 6's body format is refused the same way
        r = hub.api("POST", "users/alice/server", data=json.dumps({"user_options": options}))
        assert r.status_code == 400 and message in r.json()["message"]
    assert (
        len([b for b in hub.k8s.created if b.get("kind") == "Pod"]) == before
    )  # no pod was ever requested
    assert "" not in hub.user("alice")["servers"]


def test_spawn_form_post_with_a_crafted_gpu_count_is_refused(clean):
    hub = clean
    s = hub.login("bob")
    s.get(f"{hub.url}/hub/spawn", timeout=60)
    r = s.post(
        f"{hub.url}/hub/spawn",
        timeout=60,
        data={
            "_xsrf": s.cookies.get("_xsrf", ""),
            "profile": "torch",
            "profile-option-torch--gpus": "8",
        },
    )
    assert "team vision allows at most 2 GPUs per user; 8 requested" in r.text
    assert "SpawnException(" not in r.text  # the message alone, as a user reads it
    assert not hub.pods()


def test_concurrent_gpu_spawns_never_exceed_the_team_quota(clean):
    hub = clean
    barrier = threading.Barrier(len(VISION))

    def spawn(name: str):
        barrier.wait()
        return name, hub.spawn(name, {"profile": "torch", "gpus": "1"})

    with ThreadPoolExecutor(len(VISION)) as pool:
        results = list(pool.map(spawn, VISION))
    started = [n for n, r in results if r.status_code in (201, 202)]
    refused = {n: r for n, r in results if r.status_code == 403}
    assert len(started) == 4 and len(refused) == 2, [
        (n, r.status_code, r.text[:200]) for n, r in results
    ]
    for r in refused.values():
        message = r.json()["message"]
        holders = ", ".join(f"{u} (notebook, 1)" for u in sorted(started))
        assert message.startswith(f"team vision: 4 of 4 GPUs in use by {holders}"), message
    for name in started:
        hub.wait_ready(name)
    gpu_pods = [p for p in hub.pods() if "nvidia.com/gpu" in container(p)["resources"]["limits"]]
    assert sorted(
        p["metadata"]["annotations"]["hub.jupyter.org/username"] for p in gpu_pods
    ) == sorted(started)

    # the spawn page of a refused user shows who holds the team's GPUs
    waiting = min(refused)
    _, page = spawn_form(hub, waiting)
    assert (
        gpu_cell(page, "vision")
        == f"4 of 4 | {', '.join(f'{u} (notebook, 1)' for u in sorted(started))}"
    )

    # still full: a retry is refused; stopping one server frees its GPU at once
    assert hub.spawn(waiting, {"profile": "torch", "gpus": 1}).status_code == 403
    hub.stop(started[0])
    r = hub.spawn(waiting, {"profile": "torch", "gpus": 1})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(waiting)
    _, page = spawn_form(hub, started[0])
    assert gpu_cell(page, "vision").startswith("4 of 4 | ")
    assert f"{waiting} (notebook, 1)" in gpu_cell(
        page, "vision"
    ) and f"{started[0]} (notebook, 1)" not in gpu_cell(page, "vision")


def read_progress(hub, name: str, into: list) -> None:
    """Follow the spawn's progress event stream (as the spawn page does) until it ends."""
    import time

    deadline = (
        time.monotonic() + 120
    )  # the spawn request may reach the hub late on a loaded machine
    # until the new spawn is registered, the progress stream replays the user's previous spawn (e.g. one
    # refused in an earlier test): wait for the server entry first
    while "" not in hub.user(name)["servers"]:
        assert time.monotonic() < deadline, f"{name}'s spawn never reached the hub"
        time.sleep(0.05)
    while True:
        r = hub.api("GET", f"users/{name}/server/progress", stream=True, timeout=120)
        if r.status_code == 200:
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    into.append(json.loads(line[5:]))
            return
        assert time.monotonic() < deadline, (
            f"no progress stream for {name}: {r.status_code} {r.text}"
        )
        time.sleep(0.05)


def test_gpu_then_cpu_spawn_manifests(clean):
    hub = clean
    events: list = []
    spawn = threading.Thread(
        target=lambda: events.append(
            hub.spawn("carol", {"profile": "torch", "gpus": 2, "size": "big"})
        )
    )
    spawn.start()
    read_progress(hub, "carol", events)
    spawn.join()
    hub.wait_ready("carol")
    messages = [e.get("message", "") for e in events if isinstance(e, dict)]
    assert any(
        "Requested PyTorch (CUDA) (registry.test/torch:1) on 2 CPU / 2G, 2 GPUs, team vision" in m
        for m in messages
    ), messages
    assert any("Reserved 2 GPUs of team vision: 2 of 4 now in use" in m for m in messages), messages
    assert any("Successfully assigned jhub/jupyter-carol to fake-node-1" in m for m in messages), (
        messages
    )

    pod = hub.pod_of("carol")
    c = container(pod)
    assert c["image"] == "registry.test/torch:1"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert (
        c["resources"]["limits"]["cpu"] == 2.0 and c["resources"]["limits"]["memory"] == 2 * 1024**3
    )
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    sc = c["securityContext"]
    assert (
        sc["runAsUser"] == 1000
        and sc["runAsNonRoot"] is True
        and sc["allowPrivilegeEscalation"] is False
    )
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
    assert {"name": "home", "persistentVolumeClaim": {"claimName": "claim-carol"}} in pod["spec"][
        "volumes"
    ]
    assert {"name": "home", "mountPath": "/home/jovyan"} in c["volumeMounts"]
    assert hub.k8s.find("persistentvolumeclaims", "jhub", "claim-carol") is not None
    env = env_of(pod)
    assert env["JUPYTER_MLOPS_TRACKING_URI"].endswith("/services/mlops-tracking/mlops")
    assert env["JUPYTER_MLOPS_TRACKING_TOKEN"] == env["JUPYTERHUB_API_TOKEN"]
    assert env["MLFLOW_TRACKING_URI"] == env["JUPYTER_MLOPS_TRACKING_URI"]
    assert "NVIDIA_VISIBLE_DEVICES" not in env
    hub.stop("carol")

    # the same user, CPU only, through the spawn form this time: nothing of the GPU spawn survives
    # (the sticky-override pitfall)
    s = hub.login("carol")
    s.get(f"{hub.url}/hub/spawn", timeout=60)
    form = {
        "profile": "torch",
        "profile-option-torch--gpus": "0",
        "profile-option-torch--size": "small",
    }
    r = s.post(
        f"{hub.url}/hub/spawn", data={"_xsrf": s.cookies.get("_xsrf", ""), **form}, timeout=60
    )
    assert r.status_code == 200 and ("/user/carol/" in r.url or "spawn-pending" in r.url), r.url
    hub.wait_ready("carol")
    assert hub.user("carol")["servers"][""]["user_options"] == {
        "profile": "torch",
        "gpus": "0",
        "size": "small",
    }
    pod = hub.pod_of("carol")
    c = container(pod)
    assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert "nvidia.com/gpu" not in c["resources"].get("requests", {})
    assert not pod["spec"].get("nodeSelector")
    assert not pod["spec"].get("tolerations")
    assert env_of(pod)["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert c["resources"]["limits"]["cpu"] == 1.0  # the default size again, not "big"
    assert {"name": "home", "persistentVolumeClaim": {"claimName": "claim-carol"}} in pod["spec"][
        "volumes"
    ]


def test_user_reaches_their_own_server_through_the_proxy(clean):
    hub = clean
    r = hub.spawn("nina", {"profile": "lab"})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready("nina")
    s = hub.login("nina")
    # the browser path: proxy -> single-user server -> OAuth with the hub -> back, with cookies
    r = s.get(f"{hub.url}/user/nina/lab", timeout=60)
    assert r.status_code == 200, r.text[:500]
    assert r.url.startswith(f"{hub.url}/user/nina/lab")
    assert "JupyterLab" in r.text
    if (
        LABEXTENSION.exists()
    ):  # the prebuilt front end is listed among the page's federated extensions
        page_config = json.loads(
            re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', r.text, re.DOTALL).group(1)
        )
        assert "jupyter-mlops" in [e["name"] for e in page_config["federated_extensions"]]
    r = s.get(f"{hub.url}/user/nina/api/status", timeout=30)
    assert r.status_code == 200 and "started" in r.json()
    # the jupyter-mlops server extension answers through the proxy
    r = s.get(f"{hub.url}/user/nina/mlops/api/v1/openapi.json", timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert "/api/v1/openapi.json" in r.json()["paths"]
    r = s.get(f"{hub.url}/user/nina/mlops/api/v1/jobs", timeout=30)
    assert r.status_code == 200, r.text[:300]
    # the tracking routes are relayed to the hub's tracking service, which this hub does not run
    r = s.get(
        f"{hub.url}/user/nina/mlops/api/2.0/mlflow/experiments/search?max_results=10", timeout=30
    )
    assert r.status_code == 503, r.text[:300]
    assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    # another user is not let into nina's server
    other = hub.login("alice")
    r = other.get(f"{hub.url}/user/nina/api/status", timeout=30, allow_redirects=True)
    assert r.status_code == 403


def test_a_kubernetes_quota_refusal_fails_fast_and_frees_the_reservation(clean):
    """Under the team quota, a namespace ResourceQuota (403 from the API server) is the safety net."""
    hub = clean
    hub.k8s.gpu_hard["jhub"] = 1
    try:
        r = hub.spawn("dan", {"profile": "torch", "gpus": 2})
        assert r.status_code == 403, r.text
        assert r.json()["message"].startswith(
            'Kubernetes refused the pod: pods "jupyter-dan" is forbidden: exceeded quota'
        )
    finally:
        del hub.k8s.gpu_hard["jhub"]
    # dan's 2 GPUs went back to the team: the per-user maximum (2) lets him start again at once
    r = hub.spawn("dan", {"profile": "torch", "gpus": 2})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready("dan")


def test_a_restarted_hub_counts_the_gpus_of_servers_still_running(clean):
    """The ledger lives in the hub process; after a restart it is rebuilt from the running pods."""
    hub = clean
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda ng: hub.spawn(ng[0], {"profile": "torch", "gpus": ng[1]}),
                (("erin", 2), ("frank", 1)),
            )
        )
    assert all(r.status_code in (201, 202) for r in results), [r.text for r in results]
    hub.wait_ready("erin")
    hub.wait_ready("frank")
    hub.shutdown()
    hub.launch()
    assert hub.user("erin")["servers"][""]["ready"]  # the hub found its pods again

    r = hub.spawn("alice", {"profile": "torch", "gpus": 2})
    assert r.status_code == 403, r.text
    assert r.json()["message"].startswith(
        "team vision: 3 of 4 GPUs in use by erin (notebook, 2), frank (notebook, 1)"
    )
    hub.stop("erin")  # a server the previous hub process started: its GPUs are freed too
    _, page = spawn_form(hub, "alice")
    assert gpu_cell(page, "vision") == "1 of 4 | frank (notebook, 1)"


def test_a_stale_pod_of_the_same_name_is_replaced_and_the_reservation_kept(clean):
    """KubeSpawner meets 409 Conflict, deletes the stale pod (calling stop() inside start) and retries."""
    import requests

    hub = clean
    stale = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "jupyter-bob",
            "labels": {"component": "singleuser-server"},
            "annotations": {
                "mlops.jupyter.org/team": "vision",
                "mlops.jupyter.org/gpus": "2",
                "mlops.jupyter.org/user": "bob",
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "registry.test/minimal:1",
                    "command": ["sleep", "300"],
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                }
            ]
        },
    }
    r = requests.post(f"{hub.k8s.url}/api/v1/namespaces/jhub/pods", json=stale, timeout=30)
    assert r.status_code == 201, r.text
    assert (
        requests.post(
            f"{hub.k8s.url}/api/v1/namespaces/jhub/pods", json=stale, timeout=30
        ).status_code
        == 409
    )

    r = hub.spawn("bob", {"profile": "torch", "gpus": 1})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready("bob")
    pod = hub.pod_of("bob")
    assert container(pod)["image"] == "registry.test/torch:1"
    assert any(m == "DELETE" and "/pods/jupyter-bob" in u for m, u in hub.k8s.requests)
    # the stale pod's 2 GPUs are no longer counted, bob's new server's 1 is
    _, page = spawn_form(hub, "alice")
    assert gpu_cell(page, "vision") == "1 of 4 | bob (notebook, 1)"
