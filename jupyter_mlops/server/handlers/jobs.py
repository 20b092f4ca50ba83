"""Training job REST routes under ``{base_url}mlops/api/v1/jobs``.

HTTP only, over :class:`~jupyter_mlops.jobs.service.TrainingService` (the app's
``MLOpsApp.training_service``: built, started and stopped with the app): endpoint
functions ``async (fields, service, *path parts) -> answer`` in a route table, served by
the same :class:`~.pipelines.ServiceHandler` as the pipeline routes; a rank's log (from an
offset, its tail, or followed until the job ends) is a stream with its own class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...tracking.errors import invalid
from ..request import Fields
from .base import Unavailable
from .logstream import FollowedLogHandler
from .pipelines import ServiceHandler, ServiceRpc

if TYPE_CHECKING:
    from ...jobs.service import TrainingService
    from ..app import MLOpsApp

JOB_STATUSES = ("QUEUED", "RUNNING", "RESTARTING", "CANCELING", "SUCCEEDED", "FAILED", "CANCELED")


def service(app: MLOpsApp) -> TrainingService:
    """The app's training service; 503 while it is not there (multi-user mode, stopping)."""
    svc = app.training_service
    if svc is None:
        raise Unavailable()
    return svc


def _object(f: Fields, name: str) -> dict[str, Any] | None:
    raw = f.data.get(name)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid(f"'{name}' must be an object.")
    return raw


def _params(f: Fields) -> dict[str, Any] | None:
    raw = f.data.get("parameters")
    if raw is None:
        return None
    if isinstance(raw, list):  # [{"key", "value"}] like MLflow's params
        return dict(f.key_values("parameters"))
    if not isinstance(raw, dict):
        raise invalid("'parameters' must be an object of name: value.")
    return raw


def _source(f: Fields) -> tuple[str | None, str | None, dict[str, Any] | None]:
    path, text, spec = f.string("path"), f.text("text", default="") or None, _object(f, "spec")
    if path is None and text is None and spec is None:
        raise invalid(
            "Give 'path' (a *.job.yaml relative to the server root), 'text' (YAML) "
            "or 'spec' (an object)."
        )
    return path, text, spec


async def validate(f: Fields, svc: TrainingService) -> dict[str, Any]:
    from ...jobs.service import JobError

    path, text, spec = _source(f)
    try:
        job = await svc.read(svc.load, path, text, spec, f.string("base_dir"))
    except JobError as e:
        return {"valid": False, "issues": [i.to_dict() for i in e.issues]}
    return {"valid": True, "issues": [], "job": job.to_dict()}


async def targets(f: Fields, svc: TrainingService) -> dict[str, Any]:
    return {"targets": svc.list_targets()}


async def list_jobs(f: Fields, svc: TrainingService) -> dict[str, Any]:
    status = f.string("status")
    if status is not None and status not in JOB_STATUSES:
        raise invalid(f"'status' must be one of {', '.join(JOB_STATUSES)}.")
    return await svc.list_jobs(
        status=status,
        name=f.string("name"),
        max_results=f.integer("max_results", default=100, minimum=1, maximum=1000) or 100,
        offset=f.integer("offset", default=0, minimum=0) or 0,
    )


async def submit(f: Fields, svc: TrainingService) -> dict[str, Any]:
    path, text, spec = _source(f)
    target = f.string("target", default="local") or "local"
    svc.target_check(target)  # an unknown target is refused before anything is read
    tags = _object(f, "source_tags") or {}
    job = await svc.submit(
        path,
        text,
        _params(f),
        spec=spec,
        base_dir=f.string("base_dir"),
        run_name=f.string("run_name"),
        target=target,
        source_tags={str(k): str(v) for k, v in tags.items()},
    )
    return {"job": job}


async def get_job(f: Fields, svc: TrainingService, job_id: str) -> dict[str, Any]:
    return {"job": await svc.get_job(job_id)}


async def cancel(f: Fields, svc: TrainingService, job_id: str) -> dict[str, Any]:
    return {"job": await svc.cancel(job_id)}


class LogHandler(FollowedLogHandler):
    """A rank's log from ``offset`` (or its ``tail``); ``follow=true`` streams until the
    job ends."""

    ended_header = "X-Job-Ended"

    async def read(
        self, path: tuple[str, ...], offset: int, limit: int, tail: int | None
    ) -> tuple[bytes, int, bool]:
        job_id, rank = path
        if not rank.isdigit():
            raise invalid(f"rank must be a number, got {rank!r}.")
        svc = service(self.mlops)
        return await svc.read(svc.read_log, job_id, int(rank), offset, limit, tail)  # type: ignore[no-any-return]


_ID = r"([^/]+)"
_J = "api/v1/jobs"


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(regex under mlops/, handler, kwargs)`` of every job route."""
    table: list[tuple[str, dict[str, ServiceRpc]]] = [
        ("", {"GET": list_jobs, "POST": submit}),
        ("/validate", {"POST": validate}),
        ("/targets", {"GET": targets}),
        (f"/{_ID}", {"GET": get_job}),
        (f"/{_ID}/cancel", {"POST": cancel}),
    ]
    out: list[tuple[str, Any, dict[str, Any]]] = [
        (_J + path, ServiceHandler, {"rpcs": rpcs, "service": service}) for path, rpcs in table
    ]
    out.append((_J + f"/{_ID}/ranks/{_ID}/log", LogHandler, {}))  # a stream: its own class
    return out
