"""Routes of the hub's team operations on a single-user server, and of its notifications.

- ``GET  api/v1/hub/quota``: the team's GPU use (``{"enabled": false}`` off a team hub), proxied to the hub
  with this server's hub token (the status bar polls it);
- ``GET  api/v1/notifications?after=<seq>``: what this server has to tell its JupyterLabs;
- ``POST api/v1/notifications/<id>/actions/<action>``: a button pressed (e.g. *Keep running*).

The polled routes do not count as activity: an open JupyterLab must not keep an idle server from culling.
"""

from __future__ import annotations

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


async def list_notifications(f: Fields, svc: NotificationService) -> dict[str, Any]:
    after = f.integer("after", default=0, minimum=0) or 0
    return {"notifications": svc.list(after), "last": svc.last_seq}


async def act(f: Fields, svc: NotificationService, nid: str, action: str) -> dict[str, Any]:
    return await svc.act(nid, action)


class QuietHandler(ServiceHandler):
    """A polled route: not the user's activity (jupyter_server's ``_track_activity``)."""

    _track_activity = False


_ID = r"([^/]+)"


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(regex under mlops/, handler, kwargs)`` of these routes."""
    table: list[tuple[str, Any, dict[str, ServiceRpc], Any]] = [
        ("api/v1/hub/quota", QuietHandler, {"GET": quota}, agent),
        ("api/v1/notifications", QuietHandler, {"GET": list_notifications}, notifications),
        (f"api/v1/notifications/{_ID}/actions/{_ID}", ServiceHandler, {"POST": act}, notifications),
    ]
    return [(path, cls, {"rpcs": rpcs, "service": svc}) for path, cls, rpcs, svc in table]
