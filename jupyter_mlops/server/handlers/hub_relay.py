"""A hub-spawned team server's tracking UI, relayed to the hub-wide tracking service.

On a server the team hub spawned with its tracking service configured, kernels log to
that service (the spawner sets ``JUPYTER_MLOPS_TRACKING_URI``/``MLFLOW_TRACKING_URI`` to
it), not to this server's store. So the routes the panels read and write are sent on to
the service, as this server's user (the server's ``$JUPYTERHUB_API_TOKEN``, which the hub
issued to that user: the service applies its per-user and per-team rules to it):

- ``tracking`` (``MLOpsApp.hub_tracking_url``): MLflow's tracking API (experiments, runs,
  metrics, datasets, artifacts lists), the artifacts proxy, MLflow 3's logged models and
  traces, and our ``api/v1`` run routes (count, changes, keys, series, bulk logging);
- ``registry`` (``MLOpsApp.hub_registry_url``): registered models, model versions, lineage.

The answer (status, MLflow's error JSON, files) is streamed back as it arrives, with
back-pressure: a slow browser slows the read from the service, nothing is held whole. So is
a request's body (uploads, logged batches): the request to the service is opened in
``prepare``, before the body is read, and each chunk goes on as it comes (a slow service
slows the caller's upload); a body over ``MLOpsApp.max_artifact_upload`` is answered 413.
A service that cannot be reached or does not answer in time gives 503 with
``TEMPORARILY_UNAVAILABLE`` and what to check. Routes the service does not serve are
translated into ones it does: ``get-artifact``, ``model-versions/get-artifact`` and a
logged model's ``artifacts/files`` (``artifacts/directories``) become a read of the object's
artifact URI and then a download (a listing) from the service's artifacts proxy; ``api/v1/metrics/series-bulk`` becomes
one ``metrics/series`` call per run. Everything else (pipelines, jobs, deployments,
notifications, evaluation datasets) is served by this server; its services track their runs
on the service all the same (``server/team_store.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote, urlencode

from jupyter_server.auth.decorator import authorized
from tornado import httpclient, httputil, web

from ...hubagent.runs import default_tracking_url
from ...tracking.errors import TrackingError
from ..request import Fields, missing
from . import artifacts, mlflow_api, registry, traces, ui, v1
from .base import DeferredXsrf, MLOpsHandler
from .mlflow_ui import mlflow_path

PREFIX = "mlops/"

#: The request headers passed on (the hub token replaces the caller's credentials).
_FORWARDED = ("Content-Type", "Accept", "Range", "If-None-Match", "If-Modified-Since")
#: The answer's headers passed back.
_RETURNED = (
    "Content-Length",
    "Content-Disposition",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Retry-After",
    "X-Content-Type-Options",
)
#: The artifacts proxy of the service, under its ``mlops/``.
PROXY = "api/2.0/mlflow-artifacts/artifacts/"
#: Hub calls in flight at once for one ``series-bulk`` request.
FAN_OUT = 8
#: Verbs whose body is relayed; those that may send one without a length (chunked).
_BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_CHUNKED_METHODS = ("POST", "PUT", "PATCH")
#: Chunks of a request body (tornado's, 64 KiB) held on their way to the service.
_PIPE_CHUNKS = 4
#: Put in a body's pipe when its caller went away: the service's request fails.
_ABORT: Any = object()


def hub_token() -> str:
    """This server's hub token: the hub issued it to the server's user."""
    return os.environ.get("JUPYTERHUB_API_TOKEN", "")


def default_url() -> str:
    """The hub's tracking service, if this server runs under a hub that pointed it there."""
    return default_tracking_url()


def unavailable(url: str, why: str) -> TrackingError:
    return TrackingError(
        f"The hub's tracking service ({url}) cannot be reached: {why}. Retry in a moment; if it "
        "lasts, ask the hub's admin whether the service runs (spawner/GUIDE.md §6).",
        "TEMPORARILY_UNAVAILABLE",
    )


class _Exchange:
    """One request to the service and what its answer's callbacks saw."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.head = asyncio.Event()
        # A redirect is never the service's own answer (it redirects nothing): the path
        # leads elsewhere, e.g. to the hub's login when no service is registered there.
        self.redirect: list[str] = []
        self.abandoned = False
        self.fetch: asyncio.Future[Any] | None = None


def too_large(size: int, limit: int) -> TrackingError:
    return TrackingError(
        f"The request body is {size} bytes; this server relays at most {limit} bytes to the "
        "hub's tracking service (MLOpsApp.max_artifact_upload).",
        "INVALID_PARAMETER_VALUE",
        413,
    )


@web.stream_request_body
class HubRelay(DeferredXsrf):
    """A route sent on to the hub's tracking service (``url``, its ``.../mlops``)."""

    #: Whether the route's request bodies are relayed (streamed in ``prepare``).
    relays_body = True
    _pipe: asyncio.Queue[Any] | None = None
    _exchange: _Exchange | None = None
    _refusal: TrackingError | None = None

    def initialize(self, name: str, url: str) -> None:  # type: ignore[override]
        super().initialize(name)  # jupyter_server passes the extension's name
        self.url = url.rstrip("/")

    @property
    def timeout(self) -> float:
        return float(self.mlops.hub_relay_timeout)

    def relative_path(self) -> str:
        """The request's path under this server's ``mlops/`` (the service's too)."""
        base = self.base_url.rstrip("/") + "/" + PREFIX
        return self.request.path[len(base) :] if self.request.path.startswith(base) else ""

    def _forwarded(self) -> dict[str, str]:
        headers = {k: v for k in _FORWARDED if (v := self.request.headers.get(k))}
        headers["Authorization"] = f"token {hub_token()}"
        return headers

    async def call_json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        """GET a JSON answer of the service; its error as a :class:`TrackingError`."""
        url = f"{self.url}/{path}" + (f"?{urlencode(query, doseq=True)}" if query else "")
        try:
            answer = await httpclient.AsyncHTTPClient().fetch(
                url,
                headers={"Authorization": f"token {hub_token()}", "Accept": "application/json"},
                raise_error=False,
                request_timeout=self.timeout,
                follow_redirects=False,
            )
        except (OSError, httpclient.HTTPClientError) as e:  # unreachable, or a timeout
            raise unavailable(self.url, str(e)) from None
        try:
            data = json.loads(answer.body or b"{}")
        except ValueError:
            data = None
        if answer.code >= 400 or not isinstance(data, dict):
            if isinstance(data, dict) and "error_code" in data:
                raise HubError(answer.code, data)
            raise TrackingError(
                f"The hub's tracking service answered {answer.code} to {path}.",
                "TEMPORARILY_UNAVAILABLE" if answer.code >= 500 else "BAD_REQUEST",
            )
        return data

    def open_exchange(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        body_producer: Callable[[Callable[[bytes], Any]], Any] | None = None,
    ) -> _Exchange:
        """Send one request to the service (its body given whole, or written by
        ``body_producer`` as the caller's arrives); the answer is read by :meth:`answer`."""
        ex = _Exchange()

        def on_header(line: str) -> None:
            if ex.abandoned:
                return
            lines = ex.lines
            if line.startswith("HTTP/"):
                lines.clear()  # a 1xx answer's head is followed by the real one
            if line.strip():
                lines.append(line)
            elif lines and not ex.head.is_set() and not lines[0].startswith("HTTP/1.1 1"):
                if httputil.parse_response_start_line(lines[0].strip()).code // 100 == 3:
                    found = httputil.HTTPHeaders.parse("".join(lines[1:]))
                    ex.redirect.append(found.get("Location", "?"))
                else:
                    self._answer_head(lines)
                ex.head.set()

        def on_chunk(chunk: bytes) -> Any:
            if ex.abandoned:
                raise ConnectionAbortedError("the relay gave up on this answer")
            if ex.redirect:
                return None
            self.write(chunk)
            return self.flush()  # the client awaits it: back-pressure on the service's read

        headers = self._forwarded()
        if body_producer is not None and self.request.headers.get("Content-Length"):
            headers["Content-Length"] = self.request.headers["Content-Length"]
        ex.fetch = asyncio.ensure_future(
            httpclient.AsyncHTTPClient().fetch(
                url,
                method=method,
                headers=headers,
                body=body,
                body_producer=body_producer,
                allow_nonstandard_methods=True,  # MLflow sends DELETE fields in a body
                raise_error=False,
                connect_timeout=self.timeout,
                # the answer starts within self.timeout (below); a file may take longer
                request_timeout=max(self.timeout, float(self.mlops.hub_relay_download_timeout)),
                follow_redirects=False,
                decompress_response=False,  # passed on as it is (Content-Length stays right)
                header_callback=on_header,
                streaming_callback=on_chunk,
            )
        )
        return ex

    async def answer(self, ex: _Exchange) -> None:
        """Stream the service's answer back unchanged; 503 when the service is unreachable
        or its answer does not start within the timeout (from now: the request was sent)."""
        fetch = ex.fetch
        assert fetch is not None
        started = asyncio.ensure_future(ex.head.wait())
        waiting: set[asyncio.Future[Any]] = {fetch, started}
        try:
            await asyncio.wait(waiting, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
        if not fetch.done() and not ex.head.is_set():
            ex.abandoned = True
            fetch.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise unavailable(self.url, f"no answer within {self.timeout:g} s")
        try:
            await fetch
        except (OSError, httpclient.HTTPClientError) as e:
            if not self._headers_written:
                raise unavailable(self.url, str(e)) from None
            raise ConnectionError(f"the hub's answer was cut off: {e}") from None
        if ex.redirect:
            raise unavailable(
                self.url, f"it redirects to {ex.redirect[0]}, so no service answers at that URL"
            )
        if not ex.head.is_set():
            self._answer_head(ex.lines)
        # (APIHandler.finish would say JSON for any answer)
        self.finish(set_content_type=self._headers.get("Content-Type", "application/json"))

    async def stream(self, url: str, method: str = "GET", body: bytes | None = None) -> None:
        """Send one request to the service and stream its answer back (:meth:`answer`)."""
        await self.answer(self.open_exchange(url, method, body))

    def _answer_head(self, lines: list[str]) -> None:
        if not lines:
            return
        start = httputil.parse_response_start_line(lines[0].strip())
        headers = httputil.HTTPHeaders.parse("".join(lines[1:]))
        self.set_status(start.code, start.reason or None)
        self.set_header("Content-Type", headers.get("Content-Type", "application/json"))
        for name in _RETURNED:
            if name in headers:
                self.set_header(name, headers[name])

    def target(self) -> str:
        query = self.request.query
        return f"{self.url}/{self.relative_path()}" + (f"?{query}" if query else "")

    # -- the request body, streamed to the service as it arrives --------------------------
    async def prepare(self) -> None:  # type: ignore[override]
        """Open the request to the service before the caller's body is read, for a caller
        allowed to write (anyone else's body is drained unread and refused by the verb):
        the body then goes on chunk by chunk, never held whole. A declared body larger than
        ``MLOpsApp.max_artifact_upload`` is drained unread and answered 413 (past
        ``ServerApp.max_body_size`` tornado closes the connection instead)."""
        await super().prepare()
        method = self.request.method or "GET"
        if self._finished or not self.relays_body or method not in _BODY_METHODS:
            return
        if (
            not self.current_user
            or self._xsrf_refusal is not None
            or not self.authorizer.is_authorized(
                self, self.current_user, "write", self.auth_resource
            )
        ):
            return
        limit = self.mlops.max_artifact_upload
        declared = self.request.headers.get("Content-Length")
        size = int(declared) if declared and declared.strip().isdigit() else None
        if size is not None and size > limit:
            # Answered once the body is drained: answered at once (the connection then
            # closed under a sender), the hub's proxy would pass on its own empty 503.
            self._refusal = too_large(size, limit)
            return
        if size is None and method not in _CHUNKED_METHODS:
            return  # (a DELETE without a length sends no body)
        # a chunked body past the limit: tornado cuts the connection
        self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]
        pipe: asyncio.Queue[Any] = asyncio.Queue(maxsize=_PIPE_CHUNKS)

        async def produce(write: Callable[[bytes], Any]) -> None:
            while (chunk := await pipe.get()) is not None:
                if chunk is _ABORT:
                    raise ConnectionAbortedError("the caller went away mid-body")
                await write(chunk)

        self._pipe = pipe
        self._exchange = self.open_exchange(self.target(), method, body_producer=produce)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self._pipe is None:
            return None  # drained unread (refused, or a route that relays no body)
        return self._feed(chunk)

    async def _feed(self, item: bytes | None) -> None:
        """Hand a chunk to the service's request; waits while the service reads slower
        than the caller sends (back-pressure); dropped once the service is done."""
        pipe, ex = self._pipe, self._exchange
        if pipe is None or ex is None or ex.fetch is None or ex.fetch.done():
            return
        put = asyncio.ensure_future(pipe.put(item))
        await asyncio.wait({put, ex.fetch}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()

    def on_connection_close(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:  # the service's request fails, instead of waiting for the rest
            with contextlib.suppress(asyncio.QueueFull):
                pipe.put_nowait(_ABORT)
        super().on_connection_close()

    async def relay(self) -> None:
        self.refuse_if_forged()
        refusal = self._refusal
        if refusal is not None:
            self.send_tracking_error(refusal)
            return
        method = self.request.method or "GET"
        ex = self._exchange
        if ex is not None:  # the body went on as it came: end it, then read the answer
            await self._feed(None)
            self._pipe = None
            await self.guarded(lambda: self.answer(ex))
            return
        await self.guarded(lambda: self.stream(self.target(), method))

    @web.authenticated
    @authorized
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.relay()

    @web.authenticated
    @authorized
    async def post(self, *args: Any, **kwargs: Any) -> None:
        await self.relay()

    @web.authenticated
    @authorized
    async def put(self, *args: Any, **kwargs: Any) -> None:
        await self.relay()

    @web.authenticated
    @authorized
    async def patch(self, *args: Any, **kwargs: Any) -> None:
        await self.relay()

    @web.authenticated
    @authorized
    async def delete(self, *args: Any, **kwargs: Any) -> None:
        await self.relay()


class HubError(TrackingError):
    """An error answer of the service, passed on with its status and fields."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message", "")), str(body["error_code"]), status)
        self.body = body

    def to_json(self) -> dict[str, Any]:
        return dict(self.body)


class HubDownloadRelay(HubRelay):
    """A file route the service lacks (``get-artifact``, ``model-versions/get-artifact``,
    a logged model's ``artifacts/files``): the object's artifact URI is read from the
    service as the user, then the file streamed from the service's artifacts proxy
    (which checks the user's access again)."""

    relays_body = False

    def initialize(  # type: ignore[override]
        self, name: str, url: str, locate: Callable[[HubDownloadRelay, Fields], Any]
    ) -> None:
        super().initialize(name, url)
        self.locate = locate

    @web.authenticated
    @authorized
    async def get(self, *args: Any, **kwargs: Any) -> None:
        async def work() -> None:
            uri, rel = await self.locate(self, Fields.from_query(self.request.query_arguments))
            await self.stream(f"{self.url}/{PROXY}{quote(proxy_path(uri, rel))}")

        await self.guarded(work)

    post = put = patch = delete = MLOpsHandler._refuse_unsupported  # type: ignore[assignment]


def proxy_path(uri: str, rel: str) -> str:
    """``rel`` under an ``mlflow-artifacts:`` URI, as a path of the artifacts proxy."""
    m = re.match(r"^mlflow-artifacts:(?://[^/]*)?/*(.*)$", uri)
    if m is None:
        raise TrackingError(
            f"The artifacts at '{uri}' are not served by the hub's artifacts proxy; "
            "read them with a client that reaches that store.",
            "NOT_IMPLEMENTED",
        )
    return "/".join(p for p in (m.group(1).strip("/"), rel) if p)


def _path(f: Fields) -> str:
    path = f.string("path")
    if path is None:
        raise missing("path")
    return mlflow_path(path)


async def _run_file(h: HubDownloadRelay, f: Fields) -> tuple[str, str]:
    rel = _path(f)
    run = await h.call_json("api/2.0/mlflow/runs/get", {"run_id": f.run_id()})
    return str(run["run"]["info"]["artifact_uri"]), rel


async def _model_version_file(h: HubDownloadRelay, f: Fields) -> tuple[str, str]:
    rel = _path(f)
    query = {
        "name": f.string("name", required=True) or "",
        "version": f.ident("version", required=True) or "",
    }
    uri = await h.call_json("api/2.0/mlflow/model-versions/get-download-uri", query)
    return str(uri["artifact_uri"]), rel


async def _logged_model_file(h: HubDownloadRelay, f: Fields) -> tuple[str, str]:
    rel = mlflow_path(f.string("artifact_file_path", required=True))
    model_id = h.path_kwargs["model_id"]
    model = await h.call_json(f"api/2.0/mlflow/logged-models/{quote(model_id, safe='')}")
    info = model["model"].get("info", model["model"])
    return str(info["artifact_uri"]), rel


class HubLoggedModelListing(HubRelay):
    """A logged model's ``artifacts/directories`` (the service lacks it): the model's
    artifact URI read as the user, then the service's proxy listing of that directory,
    with paths relative to the model's root as this server answers them."""

    relays_body = False

    @web.authenticated
    @authorized
    async def get(self, model_id: str) -> None:
        async def work() -> None:
            f = Fields.from_query(self.request.query_arguments)
            rel = mlflow_path(f.string("artifact_directory_path"))
            model = await self.call_json(f"api/2.0/mlflow/logged-models/{quote(model_id, safe='')}")
            info = model["model"].get("info", model["model"])
            where = proxy_path(str(info["artifact_uri"]), rel)
            listing = await self.call_json(PROXY.rstrip("/"), {"path": where})
            files = [
                {**fi, "path": "/".join(p for p in (rel, str(fi.get("path", ""))) if p)}
                for fi in listing.get("files", [])
            ]
            self.send_json(json.dumps({"files": files} if files else {}))

        await self.guarded(work)

    post = put = patch = delete = MLOpsHandler._refuse_unsupported  # type: ignore[assignment]


class HubSeriesBulk(HubRelay):
    """``api/v1/metrics/series-bulk`` (the compare view's charts): one ``metrics/series``
    call to the service per run, a few at once, answered as this server answers it."""

    relays_body = False

    @web.authenticated
    @authorized
    async def get(self, *args: Any, **kwargs: Any) -> None:
        async def work() -> None:
            asked = ui.bulk_request(Fields.from_query(self.request.query_arguments))
            gate = asyncio.Semaphore(FAN_OUT)

            async def one(run_id: str) -> dict[str, Any]:
                query = {
                    "run_id": run_id,
                    "metric_key": asked.key,
                    "max_points": asked.max_points,
                    "x_axis": asked.x_axis,
                }
                async with gate:
                    got = await self.call_json("api/v1/metrics/series", query)
                return {"run_id": run_id, "points": got.get("points", [])}

            series = await asyncio.gather(*(one(r) for r in asked.run_ids))
            self.send_json(json.dumps({"series": series}))

        await self.guarded(work)

    post = put = patch = delete = MLOpsHandler._refuse_unsupported  # type: ignore[assignment]


Route = tuple[str, Any, dict[str, Any]]


def _escaped(paths: Iterable[tuple[str, Any]]) -> list[str]:
    return [re.escape(path) for path, _ in paths]


def tracking_routes(url: str) -> list[Route]:
    """``(url regex under mlops/, handler, kwargs)`` of the relayed tracking routes: every
    route of the tables the service serves (so a route added there is relayed too), and
    the translated file and bulk routes."""
    regexes = _escaped(mlflow_api.routes() + v1.routes())
    regexes += [regex for regex, _c, _k in artifacts.routes() + traces.routes()]
    lm = re.escape("api/2.0/mlflow/logged-models")
    regexes += [r for r, _c, _k in registry.routes() if r.startswith(lm)]
    regexes.append(re.escape("api/2.0/mlflow/runs/outputs"))
    kw = {"url": url}
    lm_files = r"api/2\.0/mlflow/logged-models/(?P<model_id>[^/]+)/artifacts/"
    return [
        (r"get-artifact", HubDownloadRelay, {**kw, "locate": _run_file}),
        (r"/?model-versions/get-artifact", HubDownloadRelay, {**kw, "locate": _model_version_file}),
        (lm_files + "files", HubDownloadRelay, {**kw, "locate": _logged_model_file}),
        (lm_files + "directories", HubLoggedModelListing, kw),
        (re.escape("api/v1/metrics/series-bulk"), HubSeriesBulk, kw),
        *[(regex, HubRelay, kw) for regex in regexes],
    ]


def registry_routes(url: str) -> list[Route]:
    """The relayed registry routes (the Models panel's)."""
    m = re.escape("api/2.0/mlflow/")
    return [
        (regex, HubRelay, {"url": url})
        for regex in (
            m + r"registered-models/[a-z-]+",
            m + r"model-versions/[a-z-]+",
            re.escape("api/v1/registry/lineage"),
        )
    ]


def routes(tracking_url: str, registry_url: str) -> list[Route]:
    """The relayed routes for these service URLs (an empty one keeps that part local)."""
    out: list[Route] = []
    if tracking_url:
        out.extend(tracking_routes(tracking_url))
    if registry_url:
        out.extend(registry_routes(registry_url))
    return out
