"""Who is calling the hub-wide tracking service: JupyterHub tokens to users.

:class:`HubIdentityProvider` is a jupyter_server identity provider for a server
running as a JupyterHub service. Each request carries the caller's own hub token
(``Authorization: token|Bearer <t>``, as the MLflow client sends
``MLFLOW_TRACKING_TOKEN``); the hub resolves it through jupyterhub's
``HubAuth`` (cached). The user it returns carries what the access policy needs:
whether they are a hub admin, and their teammates (members of any hub group
they belong to), read with the service's own token (scope ``read:groups``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Any as AnyTrait
from traitlets import Float, default

_AUTH_HEADER = re.compile(r"\s*(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)


@dataclass
class HubUser(User):
    """A hub user, with what the access policy of the multi-user mode reads."""

    admin: bool = False
    groups: tuple[str, ...] = ()
    teammates: frozenset[str] = field(default_factory=frozenset)


class HubIdentityProvider(IdentityProvider):
    """Authenticate every request with the caller's JupyterHub token."""

    hub_auth = AnyTrait(help="jupyterhub.services.auth.HubAuth resolving tokens (from the env).")

    @default("hub_auth")
    def _default_hub_auth(self) -> Any:
        from jupyterhub.services.auth import HubAuth

        # api_token, api_url and access scopes come from the JUPYTERHUB_* environment
        # the hub gives its services.
        return HubAuth(cache_max_age=int(self.cache_seconds), parent=self)

    cache_seconds = Float(
        60.0,
        config=True,
        help="""Seconds a resolved token and a group's members are reused before the
        hub is asked again (a revoked token or a changed group takes effect after that).""",
    )

    _groups: dict[str, tuple[float, frozenset[str]]]

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False  # tokens only: no login page of our own

    @property
    def logout_available(self) -> bool:
        return False

    def validate_security(self, app: Any, ssl_options: dict[str, Any] | None = None) -> None:
        """Every request needs a hub token: nothing for jupyter_server's own token to check."""

    async def get_user(self, handler: web.RequestHandler) -> HubUser | None:  # type: ignore[override]
        match = _AUTH_HEADER.match(handler.request.headers.get("Authorization", ""))
        if not match:
            return None
        auth = self.hub_auth
        model = await auth.user_for_token(match.group(1), sync=False)
        if not model or model.get("kind", "user") != "user":
            return None  # unknown token, or a service's token: runs belong to users
        scopes = getattr(auth, "access_scopes", None)
        if scopes and not auth.check_scopes(scopes, model):
            self.log.warning("jupyter-mlops: %s's token lacks %s", model.get("name"),
                             ", ".join(sorted(scopes)))
            return None
        name = model["name"]
        groups = tuple(model.get("groups") or ())
        teammates: set[str] = set()
        for group in groups:
            teammates |= await self.group_members(group)
        handler._token_authenticated = True  # type: ignore[attr-defined]  # no XSRF check
        return HubUser(
            username=name, name=name, display_name=name,
            admin=bool(model.get("admin")), groups=groups,
            teammates=frozenset(teammates - {name}),
        )

    async def group_members(self, group: str) -> frozenset[str]:
        """Members of a hub group (cached); none if the hub does not tell."""
        if not hasattr(self, "_groups"):
            self._groups = {}
        now = time.monotonic()
        hit = self._groups.get(group)
        if hit and now - hit[0] < self.cache_seconds:
            return hit[1]
        auth = self.hub_auth
        url = f"{auth.api_url.rstrip('/')}/groups/{quote(group, safe='')}"
        request = HTTPRequest(url, headers={"Authorization": f"token {auth.api_token}"},
                              request_timeout=20)
        try:
            response = await AsyncHTTPClient().fetch(request)
            members = frozenset(json.loads(response.body).get("users") or ())
        except HTTPClientError as exc:
            self.log.warning("jupyter-mlops: cannot read members of hub group %s (%s): "
                             "give the service the read:groups scope", group, exc)
            members = frozenset()
        self._groups[group] = (now, members)
        return members
