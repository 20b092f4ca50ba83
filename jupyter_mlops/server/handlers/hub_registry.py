"""The model registry of a hub-spawned team server, relayed to the hub's team registry.

On a server spawned by the team hub with the hub-wide tracking service configured
(``MLOpsApp.hub_registry_url``, by default the service URL the spawner put in
``JUPYTER_MLOPS_TRACKING_URI`` when ``JUPYTERHUB_API_TOKEN`` is set), the routes the
Models panel uses (MLflow's ``registered-models/*`` and ``model-versions/*``, and ``api/v1/registry/lineage``)
are sent on to the service with this server's hub token, i.e. as the server's user; the
service applies the team rules (spawner/GUIDE.md §6) and its answer (status, MLflow's error
JSON) is passed back unchanged. Runs, logged models and the UI's file routes
(``model-versions/get-artifact``, which the service does not serve) stay on this server.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import httpclient, web

from .base import MLOpsHandler

PREFIX = "mlops/"

#: The request headers passed on (the hub token replaces the caller's credentials).
_FORWARDED = ("Content-Type", "Accept", "Range")
#: The answer's headers passed back.
_RETURNED = ("Content-Type", "Content-Disposition", "Content-Range", "Accept-Ranges")


class HubRegistryRelay(MLOpsHandler):
    """One registry route, relayed to the hub's tracking service (``url``)."""

    def initialize(self, name: str, url: str) -> None:  # type: ignore[override]
        super().initialize(name)  # jupyter_server passes the extension's name
        self.url = url.rstrip("/")

    def _target(self) -> str:
        base = self.base_url.rstrip("/") + "/" + PREFIX
        path = self.request.path[len(base) :] if self.request.path.startswith(base) else ""
        path = re.sub(r"^ajax-api/", "api/", path)
        query = self.request.query
        return f"{self.url}/{path}" + (f"?{query}" if query else "")

    async def _relay(self, method: str) -> None:
        headers = {k: v for k in _FORWARDED if (v := self.request.headers.get(k))}
        headers["Authorization"] = f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"
        body = self.request.body if method in ("POST", "PATCH", "DELETE") else None
        try:
            answer = await httpclient.AsyncHTTPClient().fetch(
                self._target(),
                method=method,
                headers=headers,
                body=body,
                allow_nonstandard_methods=True,  # MLflow sends DELETE fields in a body
                raise_error=False,
                request_timeout=120,
                follow_redirects=False,
            )
        except OSError as e:
            self.set_status(503)
            self.set_header("Retry-After", "5")
            self.set_header("Content-Type", "application/json")
            self.finish(
                json.dumps(
                    {
                        "error_code": "TEMPORARILY_UNAVAILABLE",
                        "message": f"The hub's model registry ({self.url}) cannot be reached: {e}",
                    }
                )
            )
            return
        self.set_status(answer.code if answer.code != 599 else 503)
        for name in _RETURNED:
            if name in answer.headers:
                self.set_header(name, answer.headers[name])
        self.finish(answer.body or b"")

    @web.authenticated
    @authorized
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self._relay("GET")

    @web.authenticated
    @authorized
    async def post(self, *args: Any, **kwargs: Any) -> None:
        await self._relay("POST")

    @web.authenticated
    @authorized
    async def patch(self, *args: Any, **kwargs: Any) -> None:
        await self._relay("PATCH")

    @web.authenticated
    @authorized
    async def delete(self, *args: Any, **kwargs: Any) -> None:
        await self._relay("DELETE")


def routes(url: str) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(url regex under mlops/, handler, kwargs)`` of the relayed registry routes."""
    m = re.escape("api/2.0/mlflow/")
    return [
        (regex, HubRegistryRelay, {"url": url})
        for regex in (
            m + r"registered-models/[a-z-]+",
            m + r"model-versions/[a-z-]+",
            re.escape("api/v1/registry/lineage"),
        )
    ]


def default_url() -> str:
    """The hub's tracking service, if this server runs under a hub that pointed it there."""
    uri = os.environ.get("JUPYTER_MLOPS_TRACKING_URI", "")
    if os.environ.get("JUPYTERHUB_API_TOKEN") and uri.startswith(("http://", "https://")):
        return uri
    return ""
