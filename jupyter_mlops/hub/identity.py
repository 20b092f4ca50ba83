"""Who is calling the hub-wide tracking service: JupyterHub tokens to users.

:class:`HubIdentityProvider` is a jupyter_server identity provider for a server
running as a JupyterHub service. Each request carries the caller's own hub token
(``Authorization: token|Bearer <t>``, as the MLflow client sends
``MLFLOW_TRACKING_TOKEN``); the hub resolves it through jupyterhub's
``HubOAuth`` (cached). A browser gets there through the hub's OAuth instead:
``<service>/oauth_login?next=<path>`` sends it to the hub and back, and a
cookie holds its token from then on (cookie-authenticated writes need the
XSRF token, as everywhere in Jupyter). The user it returns carries what the access policy needs:
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
from tornado.httputil import url_concat
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
        import os

        from jupyterhub.services.auth import HubAuth, HubOAuth

        # api_token, api_url, access scopes and the OAuth client come from the
        # JUPYTERHUB_* environment the hub gives its services (an OAuth client
        # only to services with a URL).
        cls = HubOAuth if os.environ.get("JUPYTERHUB_CLIENT_ID") else HubAuth
        return cls(cache_max_age=int(self.cache_seconds), parent=self)

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

    def get_handlers(self) -> list[tuple[str, object]]:
        from jupyterhub.services.auth import HubOAuth

        if not isinstance(self.hub_auth, HubOAuth):
            return []
        return [("/oauth_login", _OAuthLoginHandler), ("/oauth_callback", _callback_handler())]

    def validate_security(self, app: Any, ssl_options: dict[str, Any] | None = None) -> None:
        """Every request needs a hub token: nothing for jupyter_server's own token to check."""

    async def get_user(self, handler: web.RequestHandler) -> HubUser | None:  # type: ignore[override]
        auth = self.hub_auth
        match = _AUTH_HEADER.match(handler.request.headers.get("Authorization", ""))
        if match:
            token = match.group(1)
        else:  # a browser, after the OAuth dance
            cookie = (
                handler.get_secure_cookie(auth.cookie_name)
                if hasattr(auth, "cookie_name")
                else None
            )
            if not cookie:
                return None
            token = cookie.decode("ascii", "replace")
        model = await auth.user_for_token(token, sync=False)
        if not model or model.get("kind", "user") != "user":
            return None  # unknown token, or a service's token: runs belong to users
        scopes = getattr(auth, "access_scopes", None)
        if scopes and not auth.check_scopes(scopes, model):
            self.log.warning(
                "jupyter-mlops: %s's token lacks %s", model.get("name"), ", ".join(sorted(scopes))
            )
            return None
        name = model["name"]
        if "groups" not in model or "admin" not in model:
            # a token with fewer scopes (an OAuth cookie): ask with the service's own
            model = {**model, **await self._hub_get(f"users/{quote(name, safe='')}")}
        groups = tuple(model.get("groups") or ())
        teammates: set[str] = set()
        for group in groups:
            teammates |= await self.group_members(group)
        if match:
            handler._token_authenticated = True  # type: ignore[attr-defined]  # no XSRF check
        return HubUser(
            username=name,
            name=name,
            display_name=name,
            admin=bool(model.get("admin")),
            groups=groups,
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
        members = frozenset(
            (await self._hub_get(f"groups/{quote(group, safe='')}")).get("users") or ()
        )
        self._groups[group] = (now, members)
        return members

    async def _hub_get(self, path: str) -> dict[str, Any]:
        """GET the hub's REST API with the service's token; {} (logged) if refused."""
        auth = self.hub_auth
        request = HTTPRequest(
            f"{auth.api_url.rstrip('/')}/{path}",
            headers={"Authorization": f"token {auth.api_token}"},
            request_timeout=20,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as exc:
            self.log.warning(
                "jupyter-mlops: hub API %s refused (%s): the service's role needs "
                "read:groups and read:users",
                path,
                exc,
            )
            return {}
        data = json.loads(response.body)
        return data if isinstance(data, dict) else {}


def _provider_auth(handler: web.RequestHandler) -> Any:
    return handler.settings["identity_provider"].hub_auth


class _OAuthLoginHandler(web.RequestHandler):
    """``oauth_login?next=<path>``: start the hub's OAuth flow for a browser."""

    def get(self) -> None:
        auth = _provider_auth(self)
        base = self.settings.get("base_url", "/")
        next_url = self.get_argument("next", "") or base + "mlops/api/2.0/mlflow/experiments/search"
        if not next_url.startswith(base) or next_url.startswith("//"):
            raise web.HTTPError(400, "next must be a path of this service")
        params: dict[str, str] = {}
        verifier = None
        if getattr(auth, "pkce_enabled", False):
            verifier, challenge, method = auth.generate_pkce_code_challenge()
            params |= {"code_challenge": challenge, "code_challenge_method": method}
        params["state"] = auth.set_state_cookie(self, next_url=next_url, code_verifier=verifier)
        self.redirect(url_concat(auth.login_url, params))


def _callback_handler() -> type:
    from jupyterhub.services.auth import HubOAuthCallbackHandler

    class Callback(HubOAuthCallbackHandler):
        """The hub's redirect back: trade the code for a token, keep it in a cookie."""

        @property
        def hub_auth(self) -> Any:
            return _provider_auth(self)

        @hub_auth.setter
        def hub_auth(self, value: Any) -> None:
            pass

    return Callback
