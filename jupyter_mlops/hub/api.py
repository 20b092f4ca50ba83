"""The hub's REST API for team operations, under ``/hub/api/mlops/`` (``c.JupyterHub.extra_handlers``).

Served by the hub process itself, so every request is authenticated by the hub (tokens, or the hub's cookie)
and reads the live GPU ledger; the history is in the hub side's own database (:mod:`.usage`).

====================================  ==========================================================================
``GET  usage?since=30d[&team&user]``  GPU-hours per user and team (admins: all; users: their own rows and their
                                      teams' totals); ``&format=csv`` for a CSV
``GET  quota``                        the caller's teams: GPUs in use of the quota, who holds them (servers, jobs)
``POST leases``                       a job reserves GPUs of its server's team (403 with who holds them)
``PUT|DELETE leases/<id>``            renew / end a job's lease (its owner)
``POST servers/<user>[/<name>]/activity``  a single-user server's report; answers its notifications
``POST servers/<user>[/<name>]/keep``      *Keep running*: postpone the cull of that server
``POST cull``                         one cull pass (the culler service, ``admin:servers``)
``GET|POST|DELETE shares/<user>[/<name>]``  a server's shares (JupyterHub 5+ shares), with teammates only
====================================  ==========================================================================
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from tornado import web
from traitlets import Enum, Float, List, Unicode
from traitlets.config import Configurable

from . import state
from .ops import HubOps, running_servers
from .policy import SpawnRefused
from .teams import Team, TeamsConfig, parse_duration
from .usage import UsageHistory

PREFIX = r"/api/mlops"


class TeamOps(Configurable):
    """Settings of the hub's team operations (``c.TeamOps.<name>``)."""

    usage_database_url = Unicode(
        os.environ.get("JUPYTER_MLOPS_HUB_USAGE_DB", "sqlite:///jupyterhub-mlops-usage.sqlite"),
        config=True,
        help="""SQLAlchemy URL of the usage history (spawns, stops, culls, job leases), e.g.
        postgresql://hub@db/jupyterhub or sqlite:////srv/jupyterhub/mlops-usage.sqlite (relative SQLite paths
        are relative to the hub's working directory, where jupyterhub.sqlite lives). Default
        $JUPYTER_MLOPS_HUB_USAGE_DB, else sqlite:///jupyterhub-mlops-usage.sqlite.""",
    )
    job_lease_seconds = Float(
        180.0,
        config=True,
        help="""Seconds a job's GPU lease lasts unless its server renews it (every activity report does): a
        server that dies frees its jobs' GPUs after this long, e.g. 180.""",
    )
    report_stale_seconds = Float(
        300.0,
        config=True,
        help="""A server's activity report older than this no longer protects it from culling (what it said
        was working may have ended), e.g. 300.""",
    )
    sharing = Enum(
        ["team", "anyone", "off"],
        "team",
        config=True,
        help="""Whom users may share their servers with from JupyterLab's Share... (JupyterHub shares):
        "team" (members of the hub groups of their teams in teams.yaml, plus share_groups), "anyone" (every hub
        user) or "off".""",
    )
    share_groups = List(
        Unicode(),
        config=True,
        help="""Hub groups whose members anyone may share a server with besides their teammates, e.g.
        ["support", "instructors"].""",
    )


def authenticated(method: Any) -> Any:
    """403 (JSON) without a hub token or login: not tornado's redirect to a login page."""

    @functools.wraps(method)
    def wrapper(self: MLOpsAPIHandler, *args: Any, **kwargs: Any) -> Any:
        if self.current_user is None:
            raise web.HTTPError(403, "a hub token or login is required")
        return method(self, *args, **kwargs)

    return wrapper


_shared: HubOps | None = None
#: stops the culler started, until they end
_stopping: set[asyncio.Future[Any]] = set()


def shared_ops(config: Any = None, log: Any = None) -> HubOps:
    """The hub process's ``HubOps`` over TeamSpawner's ledger, its history attached (built on first use)."""
    global _shared
    if _shared is None:
        settings = TeamOps(config=config)
        teams_file = state.DEFAULT_TEAMS_FILE
        if config is not None and "teams_file" in config.TeamSpawner:
            teams_file = config.TeamSpawner.teams_file
        history = UsageHistory(settings.usage_database_url)
        state.LEDGER.listener = history
        ops = HubOps(
            state.LEDGER,
            lambda: state.TEAMS.get(teams_file, log or _log()),
            lease_seconds=settings.job_lease_seconds,
            stale_seconds=settings.report_stale_seconds,
        )
        ops.history = history  # type: ignore[attr-defined]
        _shared = ops
    return _shared


def _log() -> Any:
    import logging

    return logging.getLogger("jupyter_mlops.hub")


class MLOpsAPIHandler(APIHandler):
    """JSON in and out; errors as ``{"error_code", "message"}`` (MLflow's shape), never an HTML page."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        if isinstance(exc, web.HTTPError) and exc.log_message and exc.args:
            message = exc.log_message % exc.args
        code = {
            400: "INVALID_PARAMETER_VALUE",
            403: "PERMISSION_DENIED",
            404: "RESOURCE_DOES_NOT_EXIST",
        }
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "error_code": getattr(exc, "error_code", None)
                    or code.get(status_code, "INTERNAL_ERROR"),
                    "message": message,
                    "status": status_code,
                }
            )
        )

    @property
    def ops(self) -> HubOps:
        return shared_ops(self.config, self.log)

    @property
    def teams_config(self) -> TeamsConfig:
        return self.ops.teams()

    def caller(self) -> Any:
        user = self.current_user
        if user is None:
            raise web.HTTPError(403, "a hub token or login is required")
        return user

    def is_admin(self) -> bool:
        """Admins (and admin services such as the culler): the unfiltered admin:servers scope."""
        return "admin:servers" in getattr(self, "expanded_scopes", set())

    def caller_name(self) -> str:
        user = self.caller()
        if getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "this route is for users' tokens")
        return str(user.name)

    def user_teams(self, name: str | None = None) -> list[Team]:
        if name is None:
            user = self.caller()
        else:
            user = self.find_user(name)
            if user is None:
                return []
        groups = [g.name for g in getattr(user, "groups", [])]
        return self.teams_config.teams_for_groups(groups)

    def json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        return body

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


def _window(handler: MLOpsAPIHandler) -> tuple[float, float]:
    now = time.time()
    try:
        since = now - parse_duration(handler.get_argument("since", "30d"))
        until_arg = handler.get_argument("until", None)
        until = now - parse_duration(until_arg) if until_arg else now
    except ValueError as e:
        raise web.HTTPError(400, "since/until: %s", str(e)) from None
    return since, until


class UsageHandler(MLOpsAPIHandler):
    """GPU-hours per user and team over a window."""

    @authenticated
    def get(self) -> None:
        since, until = _window(self)
        team = self.get_argument("team", None)
        user = self.get_argument("user", None)
        history: UsageHistory = self.ops.history  # type: ignore[attr-defined]
        report = history.report(since, until)
        if not self.is_admin():
            me = self.caller_name()
            mine = {t.name for t in self.user_teams()}
            if user is not None and user != me:
                raise web.HTTPError(403, "%s may read only their own usage, not %s's", me, user)
            if team is not None and team not in mine:
                raise web.HTTPError(403, "%s is not in team %s", me, team)
            report.users = {k: v for k, v in report.users.items() if k[1] == me}
            report.teams = {k: v for k, v in report.teams.items() if k in mine}
        if team is not None:
            report.users = {k: v for k, v in report.users.items() if k[0] == team}
            report.teams = {k: v for k, v in report.teams.items() if k == team}
        if user is not None:
            report.users = {k: v for k, v in report.users.items() if k[1] == user}
        if self.get_argument("format", "json") == "csv":
            self.set_header("Content-Type", "text/csv")
            self.finish(report.to_csv())
            return
        self.send(report.to_json())


class QuotaHandler(MLOpsAPIHandler):
    """The caller's teams: GPUs in use of the quota and who holds them."""

    @authenticated
    def get(self) -> None:
        team = self.get_argument("team", None)
        if self.is_admin() and self.current_user.kind != "user":
            teams = list(self.teams_config.teams.values())
        else:
            teams = self.user_teams()
            if self.is_admin():
                teams = list(self.teams_config.teams.values())
        if team is not None:
            chosen = [t for t in teams if t.name == team]
            if not chosen:
                raise web.HTTPError(403, "%s is not in team %s", self.caller().name, team)
            teams = chosen
        self.send({"user": self.caller().name, "teams": self.ops.quota(teams)})


class LeasesHandler(MLOpsAPIHandler):
    """A job reserves GPUs of a team it belongs to."""

    @authenticated
    def post(self) -> None:
        me = self.caller_name()
        body = self.json_body()
        gpus, name, team_name = body.get("gpus"), body.get("name"), body.get("team")
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            raise web.HTTPError(400, "gpus must be a whole number of at least 1, got %r", gpus)
        if not isinstance(name, str) or not name.strip():
            raise web.HTTPError(400, "name (the job's name) is required")
        teams = self.user_teams()
        if team_name is not None:
            team = next((t for t in teams if t.name == team_name), None)
            if team is None:
                raise web.HTTPError(403, "%s is not in team %s", me, team_name)
        elif teams:
            team = teams[0]
        else:
            raise web.HTTPError(403, "%s is in no team", me)
        try:
            alloc, usage = self.ops.lease(me, team, gpus, name.strip()[:200])
        except SpawnRefused as e:
            self.send({"error_code": "RESOURCE_EXHAUSTED", "message": e.message}, 403)
            return
        self.send(
            {
                "id": alloc.key.split("/", 1)[1],
                "team": team.name,
                "gpus": gpus,
                "expires": alloc.expires,
                "in_use": usage.gpus,
                "gpu_quota": team.gpu_quota,
            },
            201,
        )


class LeaseHandler(MLOpsAPIHandler):
    @authenticated
    def put(self, lease_id: str) -> None:
        alloc = self.ops.renew(self.caller_name(), lease_id)
        if alloc is None:
            raise web.HTTPError(404, "no lease %s of yours", lease_id)
        self.send({"id": lease_id, "expires": alloc.expires})

    @authenticated
    def delete(self, lease_id: str) -> None:
        reason = self.get_argument("reason", "job ended")
        if not self.ops.end_lease(self.caller_name(), lease_id, reason[:500]):
            raise web.HTTPError(404, "no lease %s of yours", lease_id)
        self.set_status(204)
        self.finish()


class _ServerHandler(MLOpsAPIHandler):
    def own_server(self, user: str, server: str | None) -> tuple[str, str]:
        if self.caller_name() != user:
            raise web.HTTPError(403, "only %s's own server may do this", user)
        return user, (server or "").lstrip("/")


class ActivityHandler(_ServerHandler):
    """A single-user server's report (our extension): activity, what is working, GPU utilization."""

    @authenticated
    def post(self, user: str, server: str | None = None) -> None:
        user, name = self.own_server(user, server)
        body = self.json_body()
        team = body.get("team") if isinstance(body.get("team"), str) else None
        self.send(self.ops.report(user, name, body, team))


class KeepHandler(_ServerHandler):
    @authenticated
    def post(self, user: str, server: str | None = None) -> None:
        user, name = self.own_server(user, server)
        self.ops.keep(user, name)
        self.send({"kept": True})


class CullHandler(MLOpsAPIHandler):
    """One cull pass; stops go through the hub (the spawner's stop frees nothing twice)."""

    @authenticated
    async def post(self) -> None:
        if not self.is_admin():
            raise web.HTTPError(403, "a cull pass needs the admin:servers scope")
        # the users the hub holds in memory (every user with a running server): no database query per server
        servers = running_servers(list(self.users.values()), self.ops.ledger)
        actions = self.ops.cull_pass(servers)
        for a in actions:
            if a.kind == "stop" and not a.dry_run:
                user = self.find_user(a.info.alloc.user)
                if user is not None:
                    task = asyncio.ensure_future(self._stop(user, a.info.alloc.name))
                    _stopping.add(task)  # held until done (the loop keeps only weak references)
                    task.add_done_callback(_stopping.discard)
        self.send(
            {
                "servers": len(servers),
                "actions": [
                    {
                        "action": a.kind,
                        "user": a.info.alloc.user,
                        "server": a.info.alloc.name,
                        "message": a.message,
                        "dry_run": a.dry_run,
                    }
                    for a in actions
                ],
            }
        )

    async def _stop(self, user: Any, name: str) -> None:
        try:
            await self.stop_single_user(user, name)
        except Exception:
            self.log.exception("jupyter-mlops culler: stopping %s/%s failed", user.name, name)


class SharesHandler(_ServerHandler):
    """A server's shares (JupyterHub's, granted here with the hub's authority so that the team rule holds:
    users need, and should get, no ``shares`` scope of their own)."""

    def _server(self, user: str, server: str | None) -> tuple[Any, Any]:
        if self.is_admin() and self.current_user.kind == "user":
            name = (server or "").lstrip("/")
        else:
            user, name = self.own_server(user, server)
        owner = self.find_user(user)
        spawner = owner.orm_user.orm_spawners.get(name) if owner is not None else None
        if spawner is None:
            raise web.HTTPError(404, "%s has no server %r to share", user, name)
        return owner, spawner

    def _allowed(self, owner: Any) -> tuple[set[str], str]:
        """Who ``owner`` may share with, and why not anyone else (the refusal's reason)."""
        from jupyterhub import orm

        settings = TeamOps(config=self.config)
        if settings.sharing == "off":
            return set(), "sharing servers is turned off on this hub (c.TeamOps.sharing)"
        if settings.sharing == "anyone":
            return {n for (n,) in self.db.query(orm.User.name)} - {owner.name}, ""
        teams = self.user_teams(owner.name)
        groups = {g for t in teams for g in t.groups} | set(settings.share_groups)
        names: set[str] = set()
        for group in sorted(groups):
            found = orm.Group.find(self.db, name=group)
            if found is not None:
                names |= {u.name for u in found.users}
        team_names = ", ".join(t.name for t in teams) or "none"
        return names - {owner.name}, f"only with members of your teams ({team_names})"

    def _shares(self, spawner: Any) -> list[dict[str, Any]]:
        out = []
        for share in spawner.shares:
            item: dict[str, Any] = {"created_at": share.created_at.isoformat() + "Z"}
            if share.user is not None:
                item["user"] = share.user.name
            else:
                item["group"] = share.group.name
            out.append(item)
        return sorted(out, key=lambda i: (i.get("user") or "", i.get("group") or ""))

    def _model(self, owner: Any, spawner: Any) -> dict[str, Any]:
        allowed, why = self._allowed(owner)
        shares = self._shares(spawner)
        shared = {s["user"] for s in shares if "user" in s}
        return {
            "server": f"{owner.name}/{spawner.name}",
            "url": owner.server_url(spawner.name),
            "sharing": TeamOps(config=self.config).sharing,
            "rule": why,
            "shares": shares,
            "candidates": sorted(allowed - shared),
        }

    @authenticated
    def get(self, user: str, server: str | None = None) -> None:
        owner, spawner = self._server(user, server)
        self.send(self._model(owner, spawner))

    def _target(self) -> str:
        name = (
            self.json_body().get("user") if self.request.body else self.get_argument("user", None)
        )
        if not isinstance(name, str) or not name:
            raise web.HTTPError(400, "user (whom to share with) is required")
        return name

    @authenticated
    def post(self, user: str, server: str | None = None) -> None:
        from jupyterhub import orm

        owner, spawner = self._server(user, server)
        target = self._target()
        allowed, why = self._allowed(owner)
        if target not in allowed:
            if target == owner.name:
                raise web.HTTPError(400, "%s's server is already theirs", target)
            raise web.HTTPError(
                403,
                "%s cannot share %s with %s: %s",
                owner.name,
                owner.name + "/" + spawner.name,
                target,
                why,
            )
        found = self.find_user(target)
        if found is None:
            raise web.HTTPError(404, "no hub user %s", target)
        orm.Share.grant(self.db, spawner, found.orm_user)
        self.log.info(
            "jupyter-mlops: %s shared %s/%s with %s",
            self.caller().name,
            owner.name,
            spawner.name,
            target,
        )
        self.send(self._model(owner, spawner), 201)

    @authenticated
    def delete(self, user: str, server: str | None = None) -> None:
        from jupyterhub import orm

        owner, spawner = self._server(user, server)
        target = self._target()
        found = self.find_user(target)
        if found is not None:  # revoking a share that is not there (or a user gone) is done
            orm.Share.revoke(self.db, spawner, found.orm_user)
        self.send(self._model(owner, spawner))


_USER = r"/servers/([^/]+)(/[^/]*)?"


def handlers() -> list[tuple[str, type]]:
    """``c.JupyterHub.extra_handlers``: JupyterHub serves them under ``/hub``."""
    return [
        (PREFIX + r"/usage", UsageHandler),
        (PREFIX + r"/quota", QuotaHandler),
        (PREFIX + r"/leases", LeasesHandler),
        (PREFIX + r"/leases/([^/]+)", LeaseHandler),
        (PREFIX + _USER + r"/activity", ActivityHandler),
        (PREFIX + _USER + r"/keep", KeepHandler),
        (PREFIX + r"/cull", CullHandler),
        (PREFIX + r"/shares/([^/]+)(/[^/]*)?", SharesHandler),
    ]


__all__ = ["TeamOps", "handlers", "shared_ops"]
