"""Routes of the hub's team operations on a single-user server, and of its notifications.

- ``GET  api/v1/hub/quota``: the team's GPU use (``{"enabled": false}`` off a team hub), proxied to the hub
  with this server's hub token (the status bar polls it);
- ``GET|POST|DELETE api/v1/hub/shares``: who this server is shared with (JupyterHub shares), share it with a
  teammate (``{"user"}``), revoke a share (``{"user"}``); the hub applies the team rule;
- ``GET  api/v1/notifications?after=<seq>``: what this server has to tell its JupyterLabs;
- ``POST api/v1/notifications/<id>/actions/<action>``: a button pressed (e.g. *Keep running*);
- ``GET|POST api/v1/notifications/settings``: the user's notification settings (events, filters,
  e-mail, webhooks; JupyterLab's settings editor posts them), ``{"settings", "smtp"}``;
- ``GET  api/v1/notifications/deliveries?max_results=100``: the e-mail and webhook delivery log;
- ``POST api/v1/notifications/test``: a test e-mail and webhook call to the user's channels.

The polled routes do not count as activity: an open JupyterLab must not keep an idle server from culling.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .base import Unavailable
from .pipelines import ServiceHandler, ServiceRpc

if TYPE_CHECKING:
    from ...hubagent.service import HubAgentService
    from ...notifications.service import NotificationService
    from ..app import MLOpsApp
    from ..request import Fields


def agent(app: MLOpsApp) -> HubAgentService:
    svc = app.hub_agent_service
    if svc is None:
        raise Unavailable()
    return svc


def notifications(app: MLOpsApp) -> NotificationService:
    svc = app.notification_service
    if svc is None:
        raise Unavailable()
    return svc


async def quota(f: Fields, svc: HubAgentService) -> dict[str, Any]:
    return await svc.quota()


async def list_shares(f: Fields, svc: HubAgentService) -> dict[str, Any]:
    return await svc.shares()


async def share(f: Fields, svc: HubAgentService) -> dict[str, Any]:
    return await svc.share(f.string("user", required=True) or "")


async def unshare(f: Fields, svc: HubAgentService) -> dict[str, Any]:
    return await svc.unshare(f.string("user", required=True) or "")


async def list_notifications(f: Fields, svc: NotificationService) -> dict[str, Any]:
    after = f.integer("after", default=0, minimum=0) or 0
    return {"notifications": svc.list(after), "last": svc.last_seq}


async def act(f: Fields, svc: NotificationService, nid: str, action: str) -> dict[str, Any]:
    return await svc.act(nid, action)


async def get_settings(f: Fields, svc: NotificationService) -> dict[str, Any]:
    return svc.get_settings()


async def put_settings(f: Fields, svc: NotificationService) -> dict[str, Any]:
    data = f.data.get("settings", f.data)
    return await asyncio.get_running_loop().run_in_executor(None, svc.put_settings, data)


async def send_test(f: Fields, svc: NotificationService) -> dict[str, Any]:
    return svc.send_test()


async def deliveries(f: Fields, svc: NotificationService) -> dict[str, Any]:
    limit = f.integer("max_results", default=100, minimum=1) or 100
    return svc.delivery_log(min(limit, 1000))


class QuietHandler(ServiceHandler):
    """A polled route: not the user's activity (jupyter_server's ``_track_activity``)."""

    _track_activity = False


_ID = r"([^/]+)"


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(regex under mlops/, handler, kwargs)`` of these routes."""
    table: list[tuple[str, Any, dict[str, ServiceRpc], Any]] = [
        ("api/v1/hub/quota", QuietHandler, {"GET": quota}, agent),
        (
            "api/v1/hub/shares",
            ServiceHandler,
            {"GET": list_shares, "POST": share, "DELETE": unshare},
            agent,
        ),
        ("api/v1/notifications", QuietHandler, {"GET": list_notifications}, notifications),
        (
            "api/v1/notifications/settings",
            ServiceHandler,
            {"GET": get_settings, "POST": put_settings},
            notifications,
        ),
        ("api/v1/notifications/deliveries", ServiceHandler, {"GET": deliveries}, notifications),
        ("api/v1/notifications/test", ServiceHandler, {"POST": send_test}, notifications),
        (f"api/v1/notifications/{_ID}/actions/{_ID}", ServiceHandler, {"POST": act}, notifications),
    ]
    return [(path, cls, {"rpcs": rpcs, "service": svc}) for path, cls, rpcs, svc in table]
