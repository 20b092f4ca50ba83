"""Team operations on a real hub (JupyterHub + proxy + TeamSpawner + the fake Kubernetes API and kubelet):
GPU usage from the persisted history, the quota seen from a team server, training jobs in the team quota,
GPU-aware idle culling with its JupyterLab warning and *Keep running*, and resizing a server.

Team ``ops`` (quota 3 GPUs, short culling timeouts) is added to the test teams here; its users' servers run
the lab image (jupyter-mlops, reporting every second, with a stand-in NVML whose GPUs the tests set per user).
The tests drive cull passes themselves (``POST /hub/api/mlops/cull`` with the admin token) instead of waiting
for the culler service's rhythm.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from hubhelpers import LABEXTENSION, REPO, TEST_TEAMS, Hub

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

pytestmark = pytest.mark.slow

# GPUs, quotas and culling: this hub runs no tracking service, so its spawner points
# servers at none (a team server's jobs then track their runs in its own store).
HUB_ADVERTISES_TRACKING = False

# warned once idle for GPU_TIMEOUT - WARN_BEFORE (6 s: what the test has, after Keep running,
# to close its browser and ask for the pass that must not warn again), stopped WARN_BEFORE later
GPU_TIMEOUT = 9
WARN_BEFORE = 3
OPS_TEAM = f"""\
  ops:
    groups: [ops]
    images: [py, torch, lab, labgpu]
    max_gpus_per_user: 2
    gpu_quota: 3
    culling:
      cpu_timeout: {GPU_TIMEOUT}s
      gpu_timeout: {GPU_TIMEOUT}s
      warn_before: {WARN_BEFORE}s
      gpu_threshold: 10
      exempt_users: [ruth]
"""
OPS_USERS = ["olga", "oscar", "pia", "quinn", "ruth"]


def ops_teams() -> str:
    text = TEST_TEAMS.replace(
        "sizes:\n",
        "  labgpu:\n    image: registry.test/lab-mlops:1\n    display_name: JupyterLab (GPU)\n"
        "    gpu: true\nsizes:\n",
        1,
    )
    return text.replace("defaults:\n", OPS_TEAM + "defaults:\n", 1)


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 120, hub: Hub | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(
        f"timed out waiting for {what}" + (f"; hub log:\n{hub.tail()}" if hub else "")
    )


@pytest.fixture(scope="module")
def ops(hub: Hub) -> Iterator[Hub]:
    (hub.workdir / "teams.yaml").write_text(ops_teams())  # re-read by the hub on its next use
    for name in OPS_USERS:
        r = hub.api("POST", f"users/{name}")
        assert r.status_code in (201, 409), r.text
    r = hub.api("POST", "groups/ops", data=json.dumps({"users": OPS_USERS}))
    assert r.status_code in (201, 409), r.text
    hub.tokens = {}  # type: ignore[attr-defined]
    for name in [*OPS_USERS, "alice", "nina"]:
        r = hub.api("POST", f"users/{name}/tokens", data=json.dumps({"note": "ops test"}))
        assert r.status_code == 201, r.text
        hub.tokens[name] = r.json()["token"]  # type: ignore[attr-defined]
    yield hub


def as_user(hub: Hub, who: str, method: str, path: str, **kw: Any) -> requests.Response:
    """A request with ``who``'s own hub token: ``path`` under the proxy (``/hub/api/...``, ``/user/...``)."""
    headers = {"Authorization": f"token {hub.tokens[who]}", **kw.pop("headers", {})}  # type: ignore[attr-defined]
    return requests.request(method, f"{hub.url}{path}", headers=headers, timeout=60, **kw)


def set_gpus(hub: Hub, user: str, count: int, utilization: float) -> None:
    (hub.workdir / "nvml" / user).write_text(f"{count} {utilization}")


def cull(hub: Hub) -> list[dict]:
    r = hub.api("POST", "mlops/cull")
    assert r.status_code == 200, r.text
    return r.json()["actions"]


def events(hub: Hub) -> list[dict]:
    with sqlite3.connect(hub.workdir / "jupyterhub-mlops-usage.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("select * from mlops_hub_usage_events order by id")]


def start(hub: Hub, user: str, options: dict) -> None:
    r = hub.spawn(user, options)
    assert r.status_code in (201, 202), r.text


def reported(hub: Hub, user: str) -> None:
    """Wait until the user's server reports to the hub (its extension started)."""
    wait_for(
        f"{user}'s server to report",
        lambda: (
            as_user(hub, user, "GET", f"/user/{user}/mlops/api/v1/hub/quota").status_code == 200
            and as_user(hub, user, "GET", "/hub/api/mlops/quota").json()["teams"]
        ),
        hub=hub,
    )


def test_gpu_hours_from_spawns_and_stops_and_who_may_read_them(ops: Hub, tmp_path) -> None:
    hub = ops
    start(hub, "alice", {"profile": "torch", "gpus": 2})
    hub.wait_ready("alice")
    hub.stop("alice")
    rows = [e for e in events(hub) if e["user"] == "alice"]
    assert [(e["event"], e["gpus"]) for e in rows] == [("start", 2), ("stop", 2)]
    expected = 2 * (rows[1]["ts"] - rows[0]["ts"]) / 3600
    assert expected > 0

    r = hub.api("GET", "mlops/usage", params={"since": "1d"})  # the admin: everybody
    assert r.status_code == 200, r.text
    users = {(u["team"], u["user"]): u for u in r.json()["users"]}
    assert users[("vision", "alice")]["gpu_hours"] == pytest.approx(expected, abs=1e-3)
    assert users[("vision", "alice")]["notebook_gpu_hours"] == pytest.approx(expected, abs=1e-3)

    # alice reads her own figures and her team's, not another team's nor another user's
    r = as_user(hub, "alice", "GET", "/hub/api/mlops/usage")
    assert r.status_code == 200, r.text
    assert {t["team"] for t in r.json()["teams"]} == {"vision"}
    assert {u["user"] for u in r.json()["users"]} == {"alice"}
    r = as_user(hub, "alice", "GET", "/hub/api/mlops/usage", params={"team": "nlp"})
    assert r.status_code == 403 and r.json() == {
        "error_code": "PERMISSION_DENIED",
        "message": "alice is not in team nlp",
        "status": 403,
    }
    r = as_user(hub, "alice", "GET", "/hub/api/mlops/usage", params={"user": "bob"})
    assert r.status_code == 403 and "only their own usage" in r.json()["message"]
    r = as_user(hub, "nina", "GET", "/hub/api/mlops/usage")
    assert r.status_code == 200 and "vision" not in r.text
    r = as_user(hub, "alice", "GET", "/hub/api/mlops/usage", params={"since": "yesterday"})
    assert r.status_code == 400 and "not a duration" in r.json()["message"]
    assert requests.get(f"{hub.url}/hub/api/mlops/usage", timeout=30).status_code == 403

    # the admin's command line, over the hub's REST API and from the database directly
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "JUPYTERHUB_API_URL": f"{hub.url}/hub/api",
        "JUPYTERHUB_API_TOKEN": hub.token,
    }
    cli = [sys.executable, "-m", "jupyter_mlops.cli", "hub", "usage", "--since", "1d", "--csv"]
    over_rest = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert over_rest.returncode == 0, over_rest.stderr
    line = next(x for x in over_rest.stdout.splitlines() if x.startswith("vision,alice,"))
    assert float(line.split(",")[2]) == pytest.approx(expected, abs=1e-3)
    db = f"sqlite:///{hub.workdir / 'jupyterhub-mlops-usage.sqlite'}"
    direct = subprocess.run(
        [*cli, "--database-url", db], env=env, capture_output=True, text=True, timeout=120
    )
    assert direct.returncode == 0, direct.stderr
    assert line in direct.stdout.splitlines()
    env["JUPYTERHUB_API_TOKEN"] = hub.tokens["alice"]  # type: ignore[attr-defined]
    denied = subprocess.run(
        [*cli, "--team", "nlp"], env=env, capture_output=True, text=True, timeout=120
    )
    assert denied.returncode == 1 and "hub refused (403): alice is not in team nlp" in denied.stderr


def test_resizing_keeps_the_home_volume_and_is_checked_against_the_quota(ops: Hub) -> None:
    hub = ops
    try:
        hub.spawn_all(
            {
                user: {"profile": "torch", "gpus": gpus, "size": "small"}
                for user, gpus in (("bob", 2), ("carol", 1), ("dan", 1))
            }
        )
        for user in ("bob", "carol", "dan"):
            hub.wait_ready(user)
        claim = hub.k8s.find("persistentvolumeclaims", "jhub", "claim-carol")
        assert claim is not None
        hub.stop("carol")
        # more GPUs than the team has left: refused like any spawn, her home volume untouched
        r = hub.spawn("carol", {"profile": "torch", "gpus": 2, "size": "big"})
        assert r.status_code == 403, r.text
        assert r.json()["message"] == (
            "team vision: 3 of 4 GPUs in use by bob (notebook, 2), dan (notebook, 1); "
            "2 more requested by carol"
        )
        # a bigger size preset with the GPU she had: fits, on the same home volume
        start(hub, "carol", {"profile": "torch", "gpus": 1, "size": "big"})
        hub.wait_ready("carol")
        pod = hub.pod_of("carol")
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert (limits["nvidia.com/gpu"], limits["cpu"]) == ("1", 2.0)
        assert {"name": "home", "persistentVolumeClaim": {"claimName": "claim-carol"}} in pod[
            "spec"
        ]["volumes"]
        again = hub.k8s.find("persistentvolumeclaims", "jhub", "claim-carol")
        assert (
            again["metadata"]["uid"] == claim["metadata"]["uid"]
        )  # the same volume, not a new one
    finally:
        hub.stop_all()


def test_jobs_reserve_team_gpus_and_the_status_route_shows_them(ops: Hub) -> None:
    """Team ops has 3 GPUs: two concurrent 2-GPU jobs from olga's server, one runs, one is refused."""
    hub = ops
    try:
        start(hub, "olga", {"profile": "lab"})
        hub.wait_ready("olga")
        reported(hub, "olga")
        release = hub.workdir / "release-jobs"
        spec = {
            "name": "train-ddp",
            "framework": "generic",
            "code": f"import os, time\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.2)\n",
            "resources": {"gpu": 2},
        }
        results: list[requests.Response] = []

        def submit() -> None:
            results.append(
                as_user(hub, "olga", "POST", "/user/olga/mlops/api/v1/jobs", json={"spec": spec})
            )

        threads = [threading.Thread(target=submit) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 429], [r.text for r in results]
        refused = next(r for r in results if r.status_code == 429).json()
        assert refused == {
            "error_code": "RESOURCE_EXHAUSTED",
            "message": "team ops: 2 of 3 GPUs in use by olga (job train-ddp, 2); "
            "2 more requested by olga for job train-ddp",
        }
        job = next(r for r in results if r.status_code == 200).json()["job"]

        # the status bar's route, through olga's server: the job holds 2 of the team's 3
        q = as_user(hub, "olga", "GET", "/user/olga/mlops/api/v1/hub/quota").json()
        assert q["enabled"] is True and q["team"] == "ops"
        (team,) = q["teams"]
        assert (team["team"], team["gpus"], team["gpu_quota"]) == ("ops", 2, 3)
        assert [(h["user"], h["kind"], h["name"], h["gpus"]) for h in team["holders"]] == [
            ("olga", "job", "train-ddp", 2)
        ]
        if LABEXTENSION.exists() and Path(CHROMIUM).exists():
            status_bar_shows(hub, "olga", "ops · GPUs 2/3", "olga: job train-ddp, 2 GPUs")
        release.write_text("")
        wait_for(
            "the job to end",
            lambda: (
                as_user(hub, "olga", "GET", f"/user/olga/mlops/api/v1/jobs/{job['job_id']}").json()[
                    "job"
                ]["status"]
                == "SUCCEEDED"
            ),
            hub=hub,
        )
        q = as_user(hub, "olga", "GET", "/user/olga/mlops/api/v1/hub/quota").json()
        assert q["teams"][0]["gpus"] == 0  # freed when the job ended
        kinds = [(e["event"], e["name"]) for e in events(hub) if e["kind"] == "job"]
        assert kinds == [("lease", "train-ddp"), ("stop", "train-ddp")]
    finally:
        hub.stop("olga")


@contextmanager
def lab_page(hub: Hub, user: str) -> Iterator[Any]:
    """Headless Chromium logged in to the hub, on the user's JupyterLab."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{hub.url}/hub/login")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", "pw")
            page.click("input[type=submit], button[type=submit]")
            page.goto(f"{hub.url}/user/{user}/lab")
            yield page
        finally:
            browser.close()


def status_bar_shows(hub: Hub, user: str, text: str, holder: str) -> None:
    """The status bar's team item says ``text``; its popup lists ``holder``."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with lab_page(hub, user) as page:
        item = page.locator(".jp-mlops-TeamQuota")
        sync_api.expect(item).to_have_text(text, timeout=120_000)
        item.click()
        popup = page.locator(".jp-mlops-TeamQuota-popup")
        sync_api.expect(popup).to_contain_text(holder, timeout=30_000)


def _notifications(hub: Hub, user: str) -> list[dict]:
    r = as_user(hub, user, "GET", f"/user/{user}/mlops/api/v1/notifications")
    assert r.status_code == 200, r.text
    return [n for n in r.json()["notifications"] if not n["dismissed"]]


def _busy_kernel(hub: Hub, user: str) -> str:
    """Start a kernel in the user's server and keep it busy (an execute_request over its websocket)."""
    import asyncio
    import uuid

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    r = as_user(hub, user, "POST", f"/user/{user}/api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    url = f"{hub.url.replace('http', 'ws', 1)}/user/{user}/api/kernels/{kid}/channels"
    headers = {"Authorization": f"token {hub.tokens[user]}"}  # type: ignore[attr-defined]

    async def execute() -> None:
        ws = await websocket_connect(HTTPRequest(url, headers=headers))
        msg_id = uuid.uuid4().hex
        await ws.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": user,
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": "import time; time.sleep(600)", "silent": False},
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        ws.close()

    asyncio.run(execute())
    wait_for(
        f"{user}'s kernel to be busy",
        lambda: (
            as_user(hub, user, "GET", f"/user/{user}/api/kernels/{kid}").json()["execution_state"]
            == "busy"
        ),
        hub=hub,
    )
    return kid


def test_idle_gpu_servers_are_warned_then_culled_and_working_ones_kept(ops: Hub) -> None:
    hub = ops
    set_gpus(hub, "oscar", 2, 0)  # idle GPUs
    set_gpus(hub, "pia", 1, 80)  # training in a notebook: busy GPU
    set_gpus(hub, "quinn", 1, 0)
    set_gpus(hub, "ruth", 1, 0)  # exempt
    try:
        hub.spawn_all(
            {
                "oscar": {"profile": "labgpu", "gpus": 2},
                "pia": {"profile": "labgpu", "gpus": 1},
                "quinn": {"profile": "labgpu", "gpus": 0},  # a CPU server, with a busy kernel
            }
        )
        for user in ("oscar", "pia", "quinn"):
            hub.wait_ready(user)
            reported(hub, user)
        _busy_kernel(hub, "quinn")

        # oscar's server is idle: warned first, in JupyterLab, with Keep running
        warned = wait_for(
            "oscar's warning",
            lambda: [a for a in cull(hub) if a["user"] == "oscar" and a["action"] == "warn"],
            timeout=GPU_TIMEOUT * 4,
        )
        assert warned[0]["message"].startswith("This server holds 2 GPUs and has been idle for ")
        assert warned[0]["message"].endswith(f"; it stops in {WARN_BEFORE} s")
        (note,) = wait_for("the warning in oscar's server", lambda: _notifications(hub, "oscar"))
        assert note["type"] == "warning" and note["actions"] == [
            {"id": "keep", "label": "Keep running"}
        ]

        # Keep running: in JupyterLab (the notification's button) when a browser is at hand, else the request
        # that button posts; either way postponed, the warning withdrawn
        if LABEXTENSION.exists() and Path(CHROMIUM).exists():
            with lab_page(hub, "oscar") as page:
                sync_api = pytest.importorskip("playwright.sync_api")
                toast = page.get_by_text("This server holds 2 GPUs and has been idle for")
                sync_api.expect(toast.first).to_be_visible(timeout=120_000)
                page.get_by_role("button", name="Keep running").first.click()
                wait_for("the warning withdrawn", lambda: _notifications(hub, "oscar") == [])
        else:
            r = as_user(
                hub,
                "oscar",
                "POST",
                f"/user/oscar/mlops/api/v1/notifications/{note['id']}/actions/keep",
                json={},
            )
            assert r.status_code == 200, r.text
        assert not [a for a in cull(hub) if a["user"] == "oscar"]
        assert _notifications(hub, "oscar") == []

        # idle again: warned again, then stopped when the warning runs out, and its GPUs freed at once
        wait_for(
            "oscar's second warning",
            lambda: [a for a in cull(hub) if a["user"] == "oscar" and a["action"] == "warn"],
            timeout=GPU_TIMEOUT * 4,
        )
        stopped = wait_for(
            "oscar's cull",
            lambda: [a for a in cull(hub) if a["user"] == "oscar" and a["action"] == "stop"],
            timeout=WARN_BEFORE * 4,
        )
        assert stopped[0]["message"].startswith("idle for ")
        q = as_user(hub, "pia", "GET", "/hub/api/mlops/quota").json()
        assert q["teams"][0]["gpus"] == 1  # pia's; oscar's 2 freed before his pod is even gone
        wait_for("oscar's server to stop", lambda: "" not in hub.user("oscar")["servers"], hub=hub)
        (culled,) = [e for e in events(hub) if e["event"] == "cull"]
        assert (culled["user"], culled["gpus"]) == ("oscar", 2)
        assert (
            culled["reason"].startswith("idle for ")
            and "GPU utilization under 10 %" in culled["reason"]
        )

        # pia's GPU at 80 % and quinn's busy kernel kept them, well past the timeout (quinn's CPU server has the
        # same timeout: idle, it would have gone with oscar's)
        assert hub.user("pia")["servers"][""]["ready"] and hub.user("quinn")["servers"][""]["ready"]
        assert not [a for a in cull(hub) if a["user"] in ("pia", "quinn")]
    finally:
        hub.stop_all()
