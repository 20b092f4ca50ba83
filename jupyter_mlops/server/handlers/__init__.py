"""The REST handlers of the extension, all under ``{base_url}mlops/``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tornado import web

from . import (
    artifacts,
    artifacts_mpu,
    deployments,
    evaluation,
    hub_relay,
    hubops,
    jobs,
    mlflow_api,
    mlflow_graphql,
    mlflow_ui,
    pipelines,
    projects,
    registry,
    trace_page,
    traces,
    ui,
    v1,
)
from .base import MLOpsHandler, RpcHandler

PREFIX = "mlops/"


class NotFoundHandler(MLOpsHandler):
    """Anything else under ``mlops/``: MLflow's ENDPOINT_NOT_FOUND as JSON."""

    def _not_found(self) -> None:
        raise web.HTTPError(404, f"No endpoint {self.request.method} {self.request.path}")

    @web.authenticated
    def get(self) -> None:
        self._not_found()

    @web.authenticated
    def post(self) -> None:
        self._not_found()

    @web.authenticated
    def put(self) -> None:
        self._not_found()

    @web.authenticated
    def patch(self) -> None:
        self._not_found()

    @web.authenticated
    def delete(self) -> None:
        self._not_found()


class NotOnSharedServiceHandler(MLOpsHandler):
    """A route the multi-user mode does not serve (evaluation datasets, scorers): after
    authentication, MLflow's NOT_IMPLEMENTED with where to send them instead."""

    MESSAGE = (
        "{path}: MLflow evaluation datasets and scorers are not served by the hub-wide "
        "tracking service (no per-experiment access rules for them yet). Log them to your own "
        "Jupyter server: unset MLFLOW_TRACKING_URI/JUPYTER_MLOPS_TRACKING_URI in the kernel, or "
        "point them at <your server>/mlops."
    )

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise web.HTTPError(501, self.MESSAGE.format(path=self.request.path))

    get = post = put = patch = delete = web.authenticated(_refuse)  # type: ignore[assignment]


Route = tuple[str, Any, dict[str, Any]]


def with_ajax_aliases(routes: list[Route]) -> list[Route]:
    """Each MLflow route (``api/2.0/...``, ``api/3.0/...``) also under ``ajax-api/``, the
    prefix the MLflow UI uses (MLflow's server registers both, ``_get_paths``)."""
    out: list[Route] = []
    for regex, cls, kwargs in routes:
        out.append((regex, cls, kwargs))
        rest = regex[len(PREFIX) :] if regex.startswith(PREFIX) else ""
        if rest.startswith(("api/2", "api/3")):
            out.append((PREFIX + "ajax-" + rest, cls, kwargs))
    return out


def handlers(
    openapi_document: Callable[[str], dict[str, Any]],
    hub_registry_url: str = "",
    hub_tracking_url: str = "",
) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(url regex relative to base_url, handler class, kwargs)`` of every route;
    ``openapi_document(server_url)`` is what ``api/v1/openapi.json`` serves; with
    ``hub_tracking_url`` / ``hub_registry_url`` the tracking / registry routes are
    relayed to the hub's tracking service (hub_relay.py)."""
    return with_ajax_aliases(_handlers(openapi_document, hub_registry_url, hub_tracking_url))


def _handlers(
    openapi_document: Callable[[str], dict[str, Any]],
    hub_registry_url: str,
    hub_tracking_url: str,
) -> list[Route]:
    out: list[tuple[str, Any, dict[str, Any]]] = []
    # The hub relay first: its routes replace the local ones of the same paths.
    relayed = hub_relay.routes(hub_tracking_url, hub_registry_url)
    out.extend((PREFIX + r, c, k) for r, c, k in relayed)
    # Registry first: it serves the logged-models routes of MLflow 3's model logging.
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in registry.routes())
    # MLflow 3's tracing: traces, assessments, OTLP ingest (v1/traces)
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in traces.routes())
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in trace_page.routes())
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in evaluation.routes())
    for path, kwargs in mlflow_api.routes() + v1.routes() + ui.routes():
        out.append((PREFIX + re.escape(path), RpcHandler, kwargs))
    for regex, cls, kwargs in artifacts.routes() + artifacts_mpu.routes():
        out.append((PREFIX + regex, cls, kwargs))
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in mlflow_ui.routes())
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in mlflow_graphql.routes())
    out.append(
        (
            PREFIX + re.escape("api/v1/openapi.json"),
            v1.OpenAPIHandler,
            {"document": openapi_document},
        )
    )
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in pipelines.routes())
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in deployments.routes())
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in jobs.routes())
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in projects.routes())
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in hubops.routes())
    out.append(("mlops/?", v1.UIRedirectHandler, {}))
    return out


def multi_user_handlers() -> list[tuple[str, Any, dict[str, Any]]]:
    """The routes of the multi-user mode (the hub-wide service): MLflow's tracking API, its
    model registry (MLflow 3's logged models too), its artifacts proxy and the ``api/v1``
    extras our client uses, MLflow's tracing (traces, assessments, OTLP), all through the
    access-checked stores (``access.py``, ``registry_access.py``, ``trace_access.py``).
    Evaluation routes answer NOT_IMPLEMENTED; pipelines and UI routes are not there."""
    out: list[tuple[str, Any, dict[str, Any]]] = [
        (PREFIX + regex, cls, kwargs) for regex, cls, kwargs in registry.routes()
    ]
    out.extend((PREFIX + regex, cls, kwargs) for regex, cls, kwargs in traces.routes())
    # MLflow's client asks the server's version before it sends spans over OTLP
    out.append((PREFIX + "version", mlflow_ui.VersionHandler, {}))
    out.extend(
        (PREFIX + regex, NotOnSharedServiceHandler, {}) for regex, _cls, _kw in evaluation.routes()
    )
    out.extend(
        (PREFIX + re.escape(path), RpcHandler, kwargs)
        for path, kwargs in mlflow_api.routes() + v1.routes()
    )
    out.extend(
        (PREFIX + regex, cls, kwargs)
        for regex, cls, kwargs in artifacts.routes() + artifacts_mpu.routes()
    )
    return with_ajax_aliases(out)


def fallback() -> tuple[str, Any, dict[str, Any]]:
    """Registered last: unknown paths under ``mlops/`` answer JSON, not an HTML page."""
    return (PREFIX + r"(?:.*)", NotFoundHandler, {})
