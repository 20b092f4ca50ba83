"""The base handler: authentication, MLflow's error JSON, store calls off the loop.

An endpoint is a plain function ``rpc(fields, store) -> dict`` (see
:data:`Rpc`); :class:`RpcHandler` parses the request, runs the function in the
extension's thread pool (the store is synchronous SQLAlchemy) and writes its
answer. So the endpoint modules hold only what each call means.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Callable, Mapping
from http.client import responses
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ...tracking.errors import TrackingError, invalid
from ..request import Fields

if TYPE_CHECKING:
    from ...tracking.store import TrackingStore
    from ..app import MLOpsApp

#: An endpoint: the request's fields and the store in, the response object out.
Rpc = Callable[[Fields, "TrackingStore"], Any]

AUTH_RESOURCE = "mlops"

# HTTP status -> MLflow error code, for errors raised by tornado or jupyter_server.
_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "BAD_REQUEST",
    413: "INVALID_PARAMETER_VALUE",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
}


#: The message of a request refused for want of credentials.
NOT_AUTHENTICATED = (
    "Not authenticated: send a valid token as 'Authorization: token <token>' (the clients read it "
    "from JUPYTER_MLOPS_TRACKING_TOKEN or MLFLOW_TRACKING_TOKEN), or log in to the server first"
)


class Unavailable(TrackingError):
    def __init__(self) -> None:
        super().__init__("The tracking server is shutting down.", "TEMPORARILY_UNAVAILABLE")


def to_json(obj: Any) -> str:
    """JSON without bare NaN/Infinity tokens (invalid JSON): they become MLflow's strings."""
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_clean_floats(obj), allow_nan=False, separators=(",", ":"))


def _clean_floats(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


class MLOpsHandler(ExtensionHandlerMixin, APIHandler):
    """Every jupyter-mlops handler: authenticated, authorized on ``mlops``,
    errors as ``{"error_code", "message"}``. (jupyter_server skips the XSRF
    check for token-authenticated requests, which is what the MLflow client sends.)"""

    auth_resource = AUTH_RESOURCE

    @property
    def mlops(self) -> MLOpsApp:
        return self.extensionapp  # type: ignore[return-value]

    @property
    def store(self) -> TrackingStore:
        # Multi-user mode: a view of the store checking each call against the
        # caller (server/access.py); otherwise the store itself.
        if not self.mlops.multi_user:
            return self.mlops.store
        return self.mlops.store_for(self.current_user)  # type: ignore[no-any-return]

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work (store calls, file I/O) in the extension's pool."""
        return await self.mlops.run_blocking(fn, *args)

    def send_json(self, text: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(text)

    def send_tracking_error(self, err: TrackingError) -> None:
        self.send_json(json.dumps(err.to_json()), err.http_status)

    def send_internal_error(self, exc: BaseException) -> None:
        """A fault of ours: the traceback goes to the log, a plain message to the client."""
        self.log.error(
            "jupyter-mlops: %s %s failed\n%s",
            self.request.method,
            self.request.path,
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )
        body = {"error_code": "INTERNAL_ERROR", "message": f"Internal error: {type(exc).__name__}"}
        self.send_json(json.dumps(body), 500)

    async def guarded(self, work: Callable[[], Any]) -> None:
        """Await ``work`` and turn whatever it raises into MLflow's error JSON."""
        try:
            await work()
        except web.HTTPError:
            raise
        except Exception as exc:
            if self._finished or self._headers_written:
                # Mid-stream (a download): the status is gone; cut the response short
                # so the client sees an incomplete body rather than a wrong one.
                self.log.error("jupyter-mlops: %s %s failed mid-response", self.request.method,
                               self.request.path, exc_info=exc)
                if not self._finished and self.request.connection is not None:
                    self.request.connection.close()
            elif isinstance(exc, TrackingError):
                self.send_tracking_error(exc)
            elif isinstance(exc, NotImplementedError):
                msg = str(exc) or "Not implemented by this tracking store."
                self.send_tracking_error(TrackingError(msg, "NOT_IMPLEMENTED"))
            else:
                self.send_internal_error(exc)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors raised by tornado/jupyter_server (403, 404, 405, ...) as MLflow JSON."""
        exc_info = kwargs.get("exc_info")
        message = responses.get(status_code, "Unknown HTTP Error")
        if exc_info:
            exc = exc_info[1]
            if isinstance(exc, TrackingError):
                status_code = exc.http_status
                self.set_status(status_code)
                message = exc.message
            elif isinstance(exc, web.HTTPError):
                message = exc.log_message % exc.args if exc.log_message and exc.args else (
                    exc.log_message or exc.reason or message
                )
            else:  # tornado already logged the traceback
                message = f"Internal error: {type(exc).__name__}"
        if status_code in (401, 403) and not getattr(self, "_jupyter_current_user", None):
            # No user: say what to send rather than a bare "Forbidden", or "'_xsrf' argument
            # missing" to an API client whose token was wrong.
            message = f"{NOT_AUTHENTICATED} ({message})"
        code = _STATUS_CODES.get(status_code, "INTERNAL_ERROR" if status_code >= 500 else
                                 "BAD_REQUEST")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error_code": code, "message": message}))


class RpcHandler(MLOpsHandler):
    """One route: its verbs map to endpoint functions (``{"GET": rpc, ...}``).

    GET fields come from the query string, other verbs' from the JSON body,
    whose size is capped (``body_limit``, default ``MLOpsApp.max_request_body``).
    A verb without a function answers 405.
    """

    def initialize(  # type: ignore[override]
        self,
        name: str,
        rpcs: Mapping[str, Rpc],
        body_limit: int | None = None,
        body_limit_message: str | None = None,
    ) -> None:
        super().initialize(name)
        self.rpcs = rpcs
        self.body_limit = body_limit
        self.body_limit_message = body_limit_message

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._dispatch("GET")

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self._dispatch("POST")

    async def _dispatch(self, method: str) -> None:
        rpc = self.rpcs.get(method)
        if rpc is None:
            raise web.HTTPError(405, f"{method} is not supported on {self.request.path}")
        query = self.request.query_arguments
        body = self.request.body
        limit = self.body_limit or self.mlops.max_request_body

        def invoke() -> str:
            if method == "GET":
                fields = Fields.from_query(query)
            else:
                if len(body) > limit:
                    msg = self.body_limit_message or (
                        "Request bodies must be at most {limit} bytes, got a request of size "
                        "{size} (MLOpsApp.max_request_body)."
                    )
                    raise invalid(msg.format(limit=limit, size=len(body)))
                fields = Fields.from_body(body)
            return to_json(rpc(fields, self.store))

        async def work() -> None:
            self.send_json(await self.run(invoke))

        await self.guarded(work)
