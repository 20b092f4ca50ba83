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
back-pressure: a slow browser slows the read from the service, nothing is held whole.
A service that cannot be reached or does not answer in time gives 503 with
``TEMPORARILY_UNAVAILABLE`` and what to check. Routes the service does not serve are
translated into ones it does: ``get-artifact``, ``model-versions/get-artifact`` and a
logged model's ``artifacts/files`` (``artifacts/directories``) become a read of the object's
artifact URI and then a download (a listing) from the service's artifacts proxy; ``api/v1/metrics/series-bulk`` becomes
one ``metrics/series`` call per run. Everything else (pipelines, jobs, deployments,
notifications, evaluation datasets) stays on this server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlencode

from jupyter_server.auth.decorator import authorized
from tornado import httpclient, httputil, web

from ...hubagent.runs import default_tracking_url
from ...tracking.errors import TrackingError
from ..request import Fields, missing
from . import artifacts, mlflow_api, registry, traces, ui, v1
from .base import MLOpsHandler
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


class HubRelay(MLOpsHandler):
    """A route sent on to the hub's tracking service (``url``, its ``.../mlops``)."""

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

    async def stream(self, url: str, method: str = "GET", body: bytes | None = None) -> None:
        """Send one request to the service and stream its answer back unchanged; 503 when
        the service is unreachable or its answer does not start within the timeout."""
        lines: list[str] = []
        head = asyncio.Event()
        abandoned = False
        # A redirect is never the service's own answer (it redirects nothing): the path
        # leads elsewhere, e.g. to the hub's login when no service is registered there.
        redirect: list[str] = []

        def on_header(line: str) -> None:
            if abandoned:
                return
            if line.startswith("HTTP/"):
                lines.clear()  # a 1xx answer's head is followed by the real one
            if line.strip():
                lines.append(line)
            elif lines and not head.is_set() and not lines[0].startswith("HTTP/1.1 1"):
                if httputil.parse_response_start_line(lines[0].strip()).code // 100 == 3:
                    found = httputil.HTTPHeaders.parse("".join(lines[1:]))
                    redirect.append(found.get("Location", "?"))
                else:
                    self._answer_head(lines)
                head.set()

        def on_chunk(chunk: bytes) -> Any:
            if abandoned:
                raise ConnectionAbortedError("the relay gave up on this answer")
            if redirect:
                return None
            self.write(chunk)
            return self.flush()  # the client awaits it: back-pressure on the service's read

        fetch = asyncio.ensure_future(
            httpclient.AsyncHTTPClient().fetch(
                url,
                method=method,
                headers=self._forwarded(),
                body=body,
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
        started = asyncio.ensure_future(head.wait())
        waiting: set[asyncio.Future[Any]] = {fetch, started}
        try:
            await asyncio.wait(waiting, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
        if not fetch.done() and not head.is_set():
            abandoned = True
            fetch.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise unavailable(self.url, f"no answer within {self.timeout:g} s")
        try:
            await fetch
        except (OSError, httpclient.HTTPClientError) as e:
            if not self._headers_written:
                raise unavailable(self.url, str(e)) from None
            raise ConnectionError(f"the hub's answer was cut off: {e}") from None
        if redirect:
            raise unavailable(
                self.url, f"it redirects to {redirect[0]}, so no service answers at that URL"
            )
        if not head.is_set():
            self._answer_head(lines)
        # (APIHandler.finish would say JSON for any answer)
        self.finish(set_content_type=self._headers.get("Content-Type", "application/json"))

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

    async def relay(self) -> None:
        query = self.request.query
        target = f"{self.url}/{self.relative_path()}" + (f"?{query}" if query else "")
        method = self.request.method or "GET"
        body = self.request.body if method in ("POST", "PUT", "PATCH", "DELETE") else None
        await self.guarded(lambda: self.stream(target, method, body))

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
