"""Deployment REST routes under ``{base_url}mlops/api/v1/deployments``.

Thin over :class:`~jupyter_mlops.deployments.service.DeploymentService`, which the app owns
(``MLOpsApp.deployment_service``): endpoint functions ``async (fields, service, *path)`` in a
route table, served by the same :class:`~.pipelines.ServiceHandler` as the pipeline, job and
project routes (``docs/deployments.md``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ...tracking.errors import INVALID_STATE, TEMPORARILY_UNAVAILABLE, TrackingError, invalid
from ..request import Fields
from .base import Unavailable
from .pipelines import PlainText, ServiceHandler, ServiceRpc

if TYPE_CHECKING:
    from ...deployments.service import DeploymentService
    from ..app import MLOpsApp

#: Largest log tail one request returns.
MAX_LOG_TAIL = 16 << 20
#: Seconds an ``invoke`` waits for the deployment's answer.
INVOKE_TIMEOUT = 60.0
#: Largest deployment answer ``invoke`` relays (bytes).
INVOKE_MAX_ANSWER = 4 << 20
#: The scoring routes ``invoke`` may call, by protocol (``{name}``: the deployment).
INVOKE_PATHS = {"mlflow": "invocations", "v2": "v2/models/{name}/infer"}


def service(app: MLOpsApp) -> DeploymentService:
    """The app's deployment service; 503 while it is not there (multi-user mode, stopping)."""
    svc = app.deployment_service
    if svc is None:
        raise Unavailable()
    return svc


def _int(f: Fields, key: str) -> int | None:
    v = f.data.get(key)
    if v is not None and type(v) is not int:
        raise invalid(f"'{key}' must be an integer, got {v!r}.")
    return v


def _bool(f: Fields, key: str) -> bool | None:
    v = f.data.get(key)
    if v is not None and not isinstance(v, bool):
        raise invalid(f"'{key}' must be true or false, got {v!r}.")
    return v


def _obj(f: Fields, key: str) -> dict[str, Any] | None:
    v = f.data.get(key)
    if v is not None and not isinstance(v, dict):
        raise invalid(f"'{key}' must be an object.")
    return v


# -- endpoints ------------------------------------------------------------------------------
async def list_deployments(f: Fields, svc: DeploymentService) -> dict[str, Any]:
    return {"deployments": await svc.list(), "targets": svc.list_targets()}


async def create(f: Fields, svc: DeploymentService) -> dict[str, Any]:
    name = f.string("name")
    if not name:
        raise invalid("'name' is required.")
    replicas = _int(f, "replicas")
    return {
        "deployment": await svc.create(
            name,
            f.string("model_uri") or "",
            f.string("target", default="local") or "local",
            replicas=1 if replicas is None else replicas,
            resources=_obj(f, "resources"),
            follow_alias=bool(_bool(f, "follow_alias")),
        )
    }


async def get(f: Fields, svc: DeploymentService, name: str) -> dict[str, Any]:
    return {"deployment": await svc.get(name)}


async def update(f: Fields, svc: DeploymentService, name: str) -> dict[str, Any]:
    return {
        "deployment": await svc.update(
            name,
            model_uri=f.string("model_uri"),
            replicas=_int(f, "replicas"),
            follow_alias=_bool(f, "follow_alias"),
            resources=_obj(f, "resources"),
            canary_percent=_int(f, "canary_percent"),
        )
    }


async def promote(f: Fields, svc: DeploymentService, name: str) -> dict[str, Any]:
    return {"deployment": await svc.promote(name)}


async def delete(f: Fields, svc: DeploymentService, name: str) -> dict[str, Any]:
    await svc.delete(name)
    return {}


async def rollback(f: Fields, svc: DeploymentService, name: str) -> dict[str, Any]:
    return {"deployment": await svc.rollback(name)}


async def metrics(f: Fields, svc: DeploymentService, name: str) -> dict[str, Any]:
    return await svc.metrics(name)


async def logs(f: Fields, svc: DeploymentService, name: str) -> PlainText:
    tail = f.integer("tail", default=65536, minimum=1, maximum=MAX_LOG_TAIL) or 65536
    return PlainText(await svc.logs(name, tail))


async def invoke(f: Fields, svc: DeploymentService, name: str) -> dict[str, Any]:
    """Send ``body`` to the deployment's scoring route and relay its answer, whatever its
    status: the Models panel's Try it box (a browser may not reach the deployment's URL)."""
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    protocol = f.string("protocol", default="mlflow") or "mlflow"
    if protocol not in INVOKE_PATHS:
        raise invalid(f"'protocol' must be one of {', '.join(INVOKE_PATHS)}, got {protocol!r}.")
    if "body" not in f.data:
        raise invalid("'body' is required: the JSON request to send to the deployment.")
    dep = await svc.get(name)
    if not dep.get("url"):
        raise TrackingError(
            f"Deployment '{name}' has no URL yet (status {dep.get('status')}).", INVALID_STATE
        )
    url = f"{str(dep['url']).rstrip('/')}/{INVOKE_PATHS[protocol].format(name=name)}"
    request = HTTPRequest(
        url,
        method="POST",
        body=json.dumps(f.data["body"]),
        headers={"Content-Type": "application/json"},
        request_timeout=INVOKE_TIMEOUT,
    )
    client = AsyncHTTPClient(max_body_size=INVOKE_MAX_ANSWER)
    try:
        answer = await client.fetch(request, raise_error=False)
    except Exception as e:  # noqa: BLE001 - no answer at all: say why, as a 503
        raise TrackingError(
            f"Deployment '{name}' did not answer at {url}: {e}", TEMPORARILY_UNAVAILABLE
        ) from None
    if answer.code == 599:  # tornado's code for a connection or timeout failure
        raise TrackingError(
            f"Deployment '{name}' did not answer at {url}: {answer.error}",
            TEMPORARILY_UNAVAILABLE,
        )
    return {
        "status_code": answer.code,
        "content_type": answer.headers.get("Content-Type", ""),
        "body": (answer.body or b"").decode("utf-8", "replace"),
    }


_ID = r"([^/]+)"
_P = "api/v1/deployments"


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(regex under mlops/, handler, kwargs)`` of every deployment route."""
    table: list[tuple[str, dict[str, ServiceRpc]]] = [
        ("", {"GET": list_deployments, "POST": create}),
        (f"/{_ID}", {"GET": get, "PATCH": update, "DELETE": delete}),
        (f"/{_ID}/rollback", {"POST": rollback}),
        (f"/{_ID}/promote", {"POST": promote}),
        (f"/{_ID}/logs", {"GET": logs}),
        (f"/{_ID}/metrics", {"GET": metrics}),
        (f"/{_ID}/invoke", {"POST": invoke}),
    ]
    return [(_P + path, ServiceHandler, {"rpcs": rpcs, "service": service}) for path, rpcs in table]
