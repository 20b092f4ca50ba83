"""Pipeline REST routes under ``{base_url}mlops/api/v1/pipelines/``.

Thin over :class:`~jupyter_mlops.pipelines.service.PipelineService`, which the
app owns (``MLOpsApp.pipeline_service``: built, started and stopped with the
extension, so schedules fire and interrupted runs are reconciled without a
request). Shapes are built for the Pipelines panel: a run carries per-step
status, attempts and timings plus ``progress``; a step's log is read from an
offset, or followed (``follow=true``) as a chunked stream until the step ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...tracking.errors import invalid
from ..request import Fields
from .base import RpcHandler, Unavailable, to_json
from .logstream import FollowedLogHandler

if TYPE_CHECKING:
    from ...pipelines.service import PipelineService
    from ..app import MLOpsApp

BODY_LIMIT = 1 << 20
SCHEDULE_NAME_MAX = 128  # pipeline_schedules.name is a String(128): longer is a 400, not a DB error
RUN_STATUSES = ("QUEUED", "RUNNING", "CANCELING", "SUCCEEDED", "FAILED", "CANCELED")
MAX_FILES = 1000

#: An endpoint: the request's fields, the service and the path's parts (run id, step,
#: schedule id) in, the response object out. Awaited on the event loop: the service's
#: calls are coroutines that keep blocking work off it.
PipelineRpc = Callable[..., Awaitable[Any]]
#: The same shape serves the routes of the app's other services (``jobs.py``).
ServiceRpc = PipelineRpc


class JsonText(str):
    """An answer that is JSON text already (an executed notebook, sent as stored)."""


class PlainText(str):
    """An answer sent as ``text/plain`` (a log's tail)."""


def service(app: MLOpsApp) -> PipelineService:
    """The app's pipeline service; 503 while it is not there (multi-user mode, stopping)."""
    svc = app.pipeline_service
    if svc is None:
        raise Unavailable()
    return svc


def _params(f: Fields) -> dict[str, Any] | None:
    raw = f.data.get("parameters")
    if raw is None:
        return None
    if isinstance(raw, list):  # [{"key", "value"}] like MLflow's params
        return dict(f.key_values("parameters"))
    if not isinstance(raw, dict):
        raise invalid("'parameters' must be an object of name: value.")
    return raw


def _source(f: Fields) -> tuple[str | None, str | None]:
    path, text = f.string("path"), f.text("text", default="") or None
    if path is None and text is None:
        raise invalid("Give 'path' (relative to the server root) or 'text' (YAML).")
    return path, text


# -- pipelines ------------------------------------------------------------------------------
async def validate(f: Fields, svc: PipelineService) -> dict[str, Any]:
    from ...pipelines.service import PipelineError

    path, text = _source(f)
    svc.prewarm()  # a submission usually follows: start kernels now
    try:
        p = await svc.ctx.read(svc.load, path, text)
    except PipelineError as e:
        return {"valid": False, "issues": [i.to_dict() for i in e.issues]}
    return {"valid": True, "issues": [], **svc.describe(p)}


async def files(f: Fields, svc: PipelineService) -> dict[str, Any]:
    from ...pipelines.spec import find_pipeline_files

    svc.prewarm()  # the Pipelines panel is open: runs are likely
    return {"files": await svc.ctx.read(find_pipeline_files, svc.root_dir, MAX_FILES)}


async def targets(f: Fields, svc: PipelineService) -> dict[str, Any]:
    """Where runs can go (the submit dialog's target selector)."""
    return {"targets": svc.list_targets()}


# -- runs -----------------------------------------------------------------------------------
async def list_runs(f: Fields, svc: PipelineService) -> dict[str, Any]:
    status = f.string("status")
    if status is not None and status not in RUN_STATUSES:
        raise invalid(f"'status' must be one of {', '.join(RUN_STATUSES)}.")
    return await svc.list_runs(
        status=status,
        path=f.string("path"),
        name=f.string("name"),
        schedule_id=f.string("schedule_id"),
        max_results=f.integer("max_results", default=100, minimum=1, maximum=1000) or 100,
        offset=f.integer("offset", default=0, minimum=0) or 0,
    )


async def submit(f: Fields, svc: PipelineService) -> dict[str, Any]:
    path, text = _source(f)
    target = f.string("target", default="local") or "local"
    svc.target(target)  # an unknown target is refused before anything is read
    run = await svc.submit(path, text, _params(f), run_name=f.string("run_name"), target=target)
    return {"run": run}


async def get_run(f: Fields, svc: PipelineService, run_id: str) -> dict[str, Any]:
    return {"run": await svc.get_run(run_id)}


async def cancel(f: Fields, svc: PipelineService, run_id: str) -> dict[str, Any]:
    return {"run": await svc.cancel(run_id)}


async def retry(f: Fields, svc: PipelineService, run_id: str) -> dict[str, Any]:
    return {"run": await svc.retry(run_id, _params(f))}


async def notebook(f: Fields, svc: PipelineService, run_id: str, step: str) -> JsonText:
    """The executed copy of a notebook step (also readable while it runs)."""
    path = await svc.ctx.read(svc.notebook_file, run_id, step)
    data = await svc.ctx.read(_read, path)
    return JsonText(data.decode("utf-8"))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# -- schedules ------------------------------------------------------------------------------
async def list_schedules(f: Fields, svc: PipelineService) -> dict[str, Any]:
    return await svc.list_schedules()


async def create_schedule(f: Fields, svc: PipelineService) -> dict[str, Any]:
    sched = await svc.create_schedule(
        f.string("path", required=True) or "",
        f.string("cron", required=True) or "",
        f.string("timezone", default="UTC") or "UTC",
        _params(f),
        f.string("name", max_length=SCHEDULE_NAME_MAX),
        f.boolean("paused", default=False),
        f.string("target", default="local") or "local",
    )
    return {"schedule": sched}


async def get_schedule(f: Fields, svc: PipelineService, schedule_id: str) -> dict[str, Any]:
    return {"schedule": await svc.get_schedule(schedule_id)}


async def update_schedule(f: Fields, svc: PipelineService, schedule_id: str) -> dict[str, Any]:
    paused = f.boolean("paused") if f.has("paused") else None
    return {
        "schedule": await svc.update_schedule(
            schedule_id,
            paused=paused,
            cron=f.string("cron"),
            timezone=f.string("timezone"),
            parameters=_params(f),
            name=f.string("name", max_length=SCHEDULE_NAME_MAX),
            target=f.string("target"),
        )
    }


async def delete_schedule(f: Fields, svc: PipelineService, schedule_id: str) -> dict[str, Any]:
    await svc.delete_schedule(schedule_id)
    return {}


async def run_schedule_now(f: Fields, svc: PipelineService, schedule_id: str) -> dict[str, Any]:
    return {"run": await svc.run_schedule_now(schedule_id)}


# -- handlers -------------------------------------------------------------------------------
class _Deferred(Fields):
    """The request's fields, read when an endpoint first asks for one (``data``,
    ``query``, ``prefix`` come from the parsed fields): endpoints that read none
    (cancel, delete, run now, get) never refuse a body or query they ignore."""

    def __init__(self, read: Callable[[], Fields]) -> None:
        self._read = read
        self._fields: Fields | None = None

    def __getattr__(self, name: str) -> Any:
        if self._fields is None:
            self._fields = self._read()
        return getattr(self._fields, name)


class PipelineHandler(RpcHandler):
    """One pipeline route: its verbs map to endpoint functions (``rpcs``, as for
    :class:`RpcHandler`), awaited with the fields (GET: the query string; others: the
    JSON body, at most ``BODY_LIMIT`` bytes), the app's pipeline service and the path's
    parts. A verb without a function answers 405. Another service's routes pass
    ``service`` (the app → that service, 503 while it is not there)."""

    def initialize(  # type: ignore[override]
        self,
        name: str,
        rpcs: Mapping[str, PipelineRpc],
        service: Callable[[MLOpsApp], Any] = service,
    ) -> None:
        super().initialize(
            name,
            rpcs,  # type: ignore[arg-type]
            body_limit=BODY_LIMIT,
            body_limit_message="Request bodies must be at most {limit} bytes.",
        )
        self.service_of = service

    _body: str | bytes = b""

    @web.authenticated
    @authorized
    async def get(self, *path: str) -> None:  # type: ignore[override]
        await self._call("GET", path)

    @web.authenticated
    @authorized
    async def post(self, *path: str) -> None:  # type: ignore[override]
        await self._call("POST", path)

    @web.authenticated
    @authorized
    async def patch(self, *path: str) -> None:
        await self._call("PATCH", path)

    @web.authenticated
    @authorized
    async def delete(self, *path: str) -> None:
        await self._call("DELETE", path)

    def _fields(self, method: str) -> Fields:
        if method == "GET":
            return Fields.from_query(self.request.query_arguments)
        return Fields.from_body(self._body)

    async def _call(self, method: str, path: tuple[str, ...]) -> None:
        self.refuse_if_forged()
        rpc = cast("PipelineRpc | None", self.rpcs.get(method))
        if rpc is None:
            raise web.HTTPError(405)
        if self._refusal is not None:  # too large, or the server busy: said before reading
            self.send_tracking_error(self._refusal)
            return
        self._body = self.take_body()

        async def work() -> None:
            fields = _Deferred(lambda: self._fields(method))
            answer = await rpc(fields, self.service_of(self.mlops), *path)
            if isinstance(answer, PlainText):
                self.set_header("Content-Type", "text/plain; charset=utf-8")
                self.finish(str(answer))
                return
            self.send_json(answer if isinstance(answer, JsonText) else to_json(answer))

        await self.guarded(work)


#: What serves the endpoint-function routes of every service.
ServiceHandler = PipelineHandler


class LogHandler(FollowedLogHandler):
    """A step's log from ``offset``; ``follow=true`` streams until the step ends."""

    ended_header = "X-Step-Ended"

    async def read(
        self, path: tuple[str, ...], offset: int, limit: int, tail: int | None
    ) -> tuple[bytes, int, bool]:
        run_id, step = path
        return await service(self.mlops).step_log(run_id, step, offset, limit, tail)


_ID = r"([^/]+)"
_P = "api/v1/pipelines/"


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(regex under mlops/, handler, kwargs)`` of every pipeline route."""
    table: list[tuple[str, dict[str, PipelineRpc]]] = [
        ("validate", {"POST": validate}),
        ("files", {"GET": files}),
        ("targets", {"GET": targets}),
        ("runs", {"GET": list_runs, "POST": submit}),
        (f"runs/{_ID}", {"GET": get_run}),
        (f"runs/{_ID}/cancel", {"POST": cancel}),
        (f"runs/{_ID}/retry", {"POST": retry}),
        (f"runs/{_ID}/steps/{_ID}/notebook", {"GET": notebook}),
        ("schedules", {"GET": list_schedules, "POST": create_schedule}),
        (
            f"schedules/{_ID}",
            {"GET": get_schedule, "PATCH": update_schedule, "DELETE": delete_schedule},
        ),
        (f"schedules/{_ID}/run", {"POST": run_schedule_now}),
    ]
    out: list[tuple[str, Any, dict[str, Any]]] = [
        (_P + path, PipelineHandler, {"rpcs": rpcs}) for path, rpcs in table
    ]
    out.append((_P + f"runs/{_ID}/steps/{_ID}/log", LogHandler, {}))  # a stream: its own class
    return out
