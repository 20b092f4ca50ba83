"""MLflow project REST routes under ``{base_url}mlops/api/v1/projects``.

HTTP only, over :class:`~jupyter_mlops.projects.service.ProjectService` (the app's
``MLOpsApp.project_service``): ``inspect`` (entry points and parameter types, for the
JupyterLab form), ``runs`` (start one: the tracked run's id at once, the environment
and the command in the background), a run's state, its cancel and its log (from an
offset, or followed until the run ends, as a stream with its own class).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...tracking.errors import invalid
from ..request import Fields
from .base import Unavailable
from .logstream import FollowedLogHandler
from .pipelines import ServiceHandler, ServiceRpc

if TYPE_CHECKING:
    from ...projects.service import ProjectService
    from ..app import MLOpsApp

ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")


def service(app: MLOpsApp) -> ProjectService:
    """The app's project service; 503 while it is not there (multi-user mode, stopping)."""
    svc = app.project_service
    if svc is None:
        raise Unavailable()
    return svc


def _uri(f: Fields) -> str:
    uri = f.string("uri")
    if not uri:
        raise invalid(
            "'uri' is required: a project directory (relative to the server root), "
            "a git URL (URL#subdir) or an archive."
        )
    return uri


def _params(f: Fields) -> dict[str, Any]:
    raw = f.data.get("parameters")
    if raw is None:
        return {}
    if isinstance(raw, list):  # [{"key", "value"}] like MLflow's params
        return dict(f.key_values("parameters"))
    if not isinstance(raw, dict):
        raise invalid("'parameters' must be an object of name: value.")
    bad = next((k for k, v in raw.items() if isinstance(v, (dict, list))), None)
    if bad is not None:
        raise invalid(f"parameter {bad!r}: a string or a number.")
    return {str(k): v for k, v in raw.items() if v is not None}


async def inspect(f: Fields, svc: ProjectService) -> dict[str, Any]:
    return {"project": await svc.inspect(_uri(f), f.string("version"))}


async def submit(f: Fields, svc: ProjectService) -> dict[str, Any]:
    manager = f.string("env_manager")
    if manager is not None and manager not in ENV_MANAGERS:
        raise invalid(f"'env_manager' must be one of {', '.join(ENV_MANAGERS)}.")
    run = await svc.submit(
        _uri(f),
        entry_point=f.string("entry_point") or "main",
        parameters=_params(f),
        version=f.string("version"),
        env_manager=manager,
        experiment_name=f.string("experiment_name"),
        experiment_id=f.string("experiment_id"),
        run_name=f.string("run_name"),
    )
    return {"run": run}


async def get_run(f: Fields, svc: ProjectService, run_id: str) -> dict[str, Any]:
    return {"run": svc.describe(svc.get(run_id))}


async def cancel(f: Fields, svc: ProjectService, run_id: str) -> dict[str, Any]:
    return {"run": await svc.cancel(run_id)}


class LogHandler(FollowedLogHandler):
    """A project run's output from ``offset`` (or its ``tail``); ``follow=true`` streams
    until the run ends."""

    ended_header = "X-Run-Ended"

    async def read(
        self, path: tuple[str, ...], offset: int, limit: int, tail: int | None
    ) -> tuple[bytes, int, bool]:
        svc = service(self.mlops)
        return await svc.read(svc.read_log, path[0], offset, limit, tail)


_ID = r"([^/]+)"
_P = "api/v1/projects"


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(regex under mlops/, handler, kwargs)`` of every project route."""
    table: list[tuple[str, dict[str, ServiceRpc]]] = [
        ("/inspect", {"POST": inspect}),
        ("/runs", {"POST": submit}),
        (f"/runs/{_ID}", {"GET": get_run}),
        (f"/runs/{_ID}/cancel", {"POST": cancel}),
    ]
    out: list[tuple[str, Any, dict[str, Any]]] = [
        (_P + path, ServiceHandler, {"rpcs": rpcs, "service": service}) for path, rpcs in table
    ]
    out.append((_P + f"/runs/{_ID}/log", LogHandler, {}))  # a stream: its own class
    return out
