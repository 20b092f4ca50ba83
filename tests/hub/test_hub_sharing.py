"""Sharing a server with a teammate on a real hub (JupyterHub shares + proxy + TeamSpawner + the fake Kubernetes
API): nina (team nlp) shares her JupyterLab server from its jupyter-mlops extension (``api/v1/hub/shares``, which
asks the hub's ``/hub/api/mlops/shares``) with zoe (nlp too), who then reaches it through the hub with her own token;
alice (vision) is refused with the rule; hugo (on no team, in a group the admin added with
``c.TeamOps.share_groups``) may be shared with; revoking works; nobody can go around the team rule through JupyterHub's own
shares API (users hold no ``shares`` scope)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hubhelpers import LABEXTENSION, Hub

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

pytestmark = pytest.mark.slow


def _token(hub: Hub, who: str) -> str:
    r = hub.api("POST", f"users/{who}/tokens", data=json.dumps({"note": "sharing test"}))
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _as(hub: Hub, token: str, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"token {token}"}
    return requests.request(
        method, hub.url + path, headers=headers, timeout=60, allow_redirects=False, **kw
    )


def _hub_shares(hub: Hub, token: str) -> list[str]:
    """Whom nina's server is shared with, as the hub records it (JupyterHub's shares table)."""
    r = _as(hub, token, "GET", "/hub/api/mlops/shares/nina")
    assert r.status_code == 200, r.text
    return [s["user"] for s in r.json()["shares"]]


@pytest.fixture
def ninas_server(clean: Hub) -> Iterator[Hub]:
    hub = clean
    for name in ("nina", "zoe", "alice", "hugo"):
        assert hub.api("POST", f"users/{name}").status_code in (201, 409)
    r = hub.spawn("nina", {"profile": "lab"})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready("nina")
    yield hub


def test_share_with_a_teammate_refuse_outsiders_and_revoke(ninas_server: Hub) -> None:
    hub = ninas_server
    nina = _token(hub, "nina")
    shares = "/user/nina/mlops/api/v1/hub/shares"
    deadline = time.monotonic() + 120
    while (r := _as(hub, nina, "GET", shares)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)  # the extension is up once the route answers
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["enabled"] and state["server"] == "nina/" and state["shares"] == [], state
    assert "zoe" in state["candidates"] and "alice" not in state["candidates"], state
    # the admin widened sharing to the helpdesk group (c.TeamOps.share_groups in this hub's config)
    assert "hugo" in state["candidates"], state
    assert state["url"].endswith("/user/nina/"), state

    zoe_before = _token(hub, "zoe")
    assert _as(hub, zoe_before, "GET", "/user/nina/api/status").status_code == 403

    # outside the team: refused, saying why
    r = _as(hub, nina, "POST", shares, json={"user": "alice"})
    assert r.status_code == 403, r.text
    assert r.json()["error_code"] == "PERMISSION_DENIED"
    assert "only with members of your teams (nlp)" in r.json()["message"], r.text
    # nor can nina go around the rule through JupyterHub's own shares API
    r = _as(hub, nina, "POST", "/hub/api/shares/nina/", json={"user": "alice"})
    assert r.status_code == 403, r.text
    assert _hub_shares(hub, nina) == []

    # a teammate: shared, and zoe opens nina's server through the hub with her own token
    r = _as(hub, nina, "POST", shares, json={"user": "zoe"})
    assert r.status_code == 200, r.text
    assert [s["user"] for s in r.json()["shares"]] == ["zoe"]
    assert "zoe" not in r.json()["candidates"]
    zoe = _token(hub, "zoe")
    r = _as(hub, zoe, "GET", "/user/nina/api/status")
    assert r.status_code == 200, r.text
    r = _as(hub, zoe, "GET", "/user/nina/mlops/api/v1/jobs")
    assert r.status_code == 200, r.text
    # this hub runs no tracking service: the tracking routes nina's server relays to it say so
    r = _as(hub, zoe, "GET", "/user/nina/mlops/api/2.0/mlflow/experiments/search")
    assert r.status_code == 503, r.text
    assert "no service answers at that URL" in r.json()["message"], r.text
    # zoe may use nina's server, not manage its shares
    r = _as(hub, zoe, "POST", "/hub/api/mlops/shares/nina", json={"user": "alice"})
    assert r.status_code == 403, r.text
    assert _hub_shares(hub, nina) == ["zoe"]

    # hugo is on no team, but in a group the admin added: shared, he reaches the server; revoked
    r = _as(hub, nina, "POST", shares, json={"user": "hugo"})
    assert r.status_code == 200, r.text
    assert [s["user"] for s in r.json()["shares"]] == ["hugo", "zoe"]
    assert _as(hub, _token(hub, "hugo"), "GET", "/user/nina/api/status").status_code == 200
    r = _as(hub, nina, "DELETE", shares, json={"user": "hugo"})
    assert r.status_code == 200 and [s["user"] for s in r.json()["shares"]] == ["zoe"], r.text

    # revoked: gone from the hub, and a token of zoe's is refused again
    r = _as(hub, nina, "DELETE", shares, json={"user": "zoe"})
    assert r.status_code == 200 and r.json()["shares"] == [], r.text
    assert _hub_shares(hub, nina) == []
    assert _as(hub, _token(hub, "zoe"), "GET", "/user/nina/api/status").status_code == 403

    if LABEXTENSION.exists() and Path(CHROMIUM).exists():
        _share_from_the_dialog(hub)


def _share_from_the_dialog(hub: Hub) -> None:
    """The same from JupyterLab: MLOps: Share server… in the palette, pick zoe, Share; the list shows her; Revoke."""
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{hub.url}/hub/login")
            page.fill("input[name=username]", "nina")
            page.fill("input[name=password]", "pw")
            page.click("input[type=submit], button[type=submit]")
            page.goto(f"{hub.url}/user/nina/lab")
            page.locator(".jp-LauncherCard").first.wait_for(timeout=180_000)
            page.locator(".jp-LauncherCard").first.click(trial=True)  # JupyterLab has the focus
            page.keyboard.press("Control+Shift+C")
            palette = page.locator(".lm-CommandPalette-input")
            palette.wait_for(timeout=30_000)
            palette.fill("Share")
            page.locator(".lm-CommandPalette-item", has_text="MLOps: Share server…").first.click()
            dialog = page.locator(".jp-mlops-Share")
            expect(dialog).to_contain_text("Not shared with anyone", timeout=60_000)
            expect(dialog.locator(".jp-mlops-Share-link")).to_have_text(f"{hub.url}/user/nina/lab")
            expect(dialog.locator("select option", has_text="alice")).to_have_count(0)
            dialog.locator("select").select_option("zoe")
            dialog.locator(".jp-mlops-Share-add").click()
            expect(dialog.locator(".jp-mlops-Share-list")).to_contain_text("zoe", timeout=30_000)
            assert _hub_shares(hub, _token(hub, "nina")) == ["zoe"]
            dialog.locator(".jp-mlops-Share-revoke").click()
            expect(dialog).to_contain_text("Not shared with anyone", timeout=30_000)
            assert _hub_shares(hub, _token(hub, "nina")) == []
        finally:
            browser.close()
