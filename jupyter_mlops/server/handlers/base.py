"""The base handler: authentication, MLflow's error JSON, store calls off the loop.

An endpoint is a plain function ``rpc(fields, store) -> dict`` (see
:data:`Rpc`); :class:`RpcHandler` parses the request, runs the function in the
extension's thread pool (the store is synchronous SQLAlchemy) and writes its
answer. So the endpoint modules hold only what each call means.
"""

from __future__ import annotations

import asyncio
import codecs
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

from ...tracking.errors import TEMPORARILY_UNAVAILABLE, TrackingError, invalid
from ...tracking.gcpause import gc_paused
from ..faults import classify
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


#: Longest error message sent: the rest of a message that quotes a huge input is cut.
MAX_MESSAGE = 1000


def short_message(message: str, limit: int = MAX_MESSAGE) -> str:
    if len(message) <= limit:
        return message
    return message[:limit] + f"... ({len(message) - limit} more characters not shown)"


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
            return self.mlops.request_store
        return self.mlops.store_for(self.current_user)  # type: ignore[no-any-return]

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        limit = self.mlops.max_url_length
        if not self._finished and len(self.request.uri or "") > limit:
            self.send_tracking_error(
                invalid(
                    f"The request URL is {len(self.request.uri or '')} bytes long; at most {limit} "
                    "are accepted (MLOpsApp.max_url_length): send long lists in a POST body."
                )
            )

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work (store calls, file I/O) in the extension's pool."""
        return await self.mlops.run_blocking(fn, *args)

    def send_json(self, text: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(text)

    def send_tracking_error(self, err: TrackingError) -> None:
        body = err.to_json()  # some errors add fields (a pipeline's "issues")
        body["message"] = short_message(err.message)
        if err.http_status == 503:
            self.set_header("Retry-After", "5")
        self.send_json(json.dumps(body), err.http_status)

    #: What this handler writes to, for the message of a full disk ("artifact store").
    storage_name = "server's disk"

    @web.authenticated
    async def _refuse_unsupported(self, *args: Any, **kwargs: Any) -> None:
        """A verb this route lacks: a stranger learns nothing (403, as on every route);
        a user is told the verb is not supported (405)."""
        if isinstance(self, DeferredXsrf):
            self.refuse_if_forged()
        raise web.HTTPError(405, f"{self.request.method} is not supported on {self.request.path}")

    get = post = put = patch = delete = head = _refuse_unsupported  # type: ignore[assignment]

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
                self.log.error(
                    "jupyter-mlops: %s %s failed mid-response",
                    self.request.method,
                    self.request.path,
                    exc_info=exc,
                )
                if not self._finished and self.request.connection is not None:
                    self.request.connection.close()  # type: ignore[attr-defined]  # HTTP1Connection
            elif isinstance(exc, TrackingError):
                self.send_tracking_error(exc)
            elif isinstance(exc, NotImplementedError):
                msg = str(exc) or "Not implemented by this tracking store."
                self.send_tracking_error(TrackingError(msg, "NOT_IMPLEMENTED"))
            else:
                known = classify(exc, self.storage_name)
                if known is None:
                    self.send_internal_error(exc)
                else:
                    if known.http_status >= 500:
                        self.log.warning(
                            "jupyter-mlops: %s %s: %s (%s)",
                            self.request.method,
                            self.request.path,
                            known.message,
                            exc,
                        )
                    self.send_tracking_error(known)

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
                message = (
                    exc.log_message % exc.args
                    if exc.log_message and exc.args
                    else (exc.log_message or exc.reason or message)
                )
            else:  # tornado already logged the traceback
                message = f"Internal error: {type(exc).__name__}"
        if status_code in (401, 403) and not getattr(self, "_jupyter_current_user", None):
            # No user: say what to send rather than a bare "Forbidden", or "'_xsrf' argument
            # missing" to an API client whose token was wrong.
            message = f"{NOT_AUTHENTICATED} ({message})"
        code = _STATUS_CODES.get(
            status_code, "INTERNAL_ERROR" if status_code >= 500 else "BAD_REQUEST"
        )
        if exc_info and isinstance(exc_info[1], TrackingError):
            code = exc_info[1].error_code
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error_code": code, "message": short_message(message)}))


class DeferredXsrf(MLOpsHandler):
    """For handlers that stream their body (``@web.stream_request_body``): tornado checks
    XSRF before ``prepare``, i.e. before the body is read, and a refusal then closes the
    connection on a client still sending (it sees a reset, not an answer). The check's
    verdict is kept and raised by the verb's method, once the body is drained: every verb
    of such a handler must call :meth:`refuse_if_forged` first."""

    _xsrf_refusal: web.HTTPError | None = None

    def check_xsrf_cookie(self) -> None:
        """Tornado checks XSRF before ``prepare``, i.e. before the body is read; a refusal
        then closes the connection on a client still sending (a reset, not an answer).
        The check's verdict is kept and raised once the body is drained
        (:meth:`refuse_if_forged`)."""
        try:
            super().check_xsrf_cookie()
        except web.HTTPError as e:
            self._xsrf_refusal = e

    def refuse_if_forged(self) -> None:
        if self._xsrf_refusal is not None:
            raise self._xsrf_refusal


class BodyBudget:
    """Bytes of request bodies admitted at once, server-wide (``MLOpsApp.max_inflight_bytes``).

    A request reserves its ``Content-Length`` (or its route's limit, for a chunked body)
    before its body is read, and gives it back when answered. While the budget is taken
    a request waits, unread (the socket applies back-pressure to its sender), up to
    ``MLOpsApp.inflight_wait`` seconds, then is answered 503 so its client retries. A
    request larger than the whole budget is admitted alone. So the memory the server
    spends on bodies is bounded by the budget, whatever clients send at once.
    Event-loop only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: list[asyncio.Future[None]] = []

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    async def acquire(self, size: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._fits(size):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.used += size
        return True

    def release(self, size: int) -> None:
        self.used = max(0, self.used - size)
        if size >= TRIM_AFTER:
            give_back_memory()
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)


#: A body this large was parsed into many objects: once it is answered, the C allocator is
#: asked to return the freed pages (glibc keeps them otherwise: measured, a 64 MiB log-bulk
#: left ~300 MB held after its answer; see bench/RESULTS.md).
TRIM_AFTER = 8 << 20
_libc: Any = None


def give_back_memory() -> None:
    """``malloc_trim(0)`` where the C library has it (glibc); nothing elsewhere."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


def busy(budget: BodyBudget) -> TrackingError:
    return TrackingError(
        f"The server is busy: {budget.used} bytes of requests are being handled "
        f"(MLOpsApp.max_inflight_bytes = {budget.limit}); retry later.",
        TEMPORARILY_UNAVAILABLE,
    )


@web.stream_request_body
class RpcHandler(DeferredXsrf):
    """One route: its verbs map to endpoint functions (``{"GET": rpc, ...}``).

    GET fields come from the query string, other verbs' from the JSON body,
    whose size is capped (``body_limit``, default ``MLOpsApp.max_request_body``).
    The body is read only once the request is authenticated, declared within the
    cap and admitted by the server's :class:`BodyBudget`; otherwise it is drained
    unread and the request refused (413-style 400, or 503 while the server is busy).
    A verb without a function answers 405.
    """

    #: The body so far, decoded as it arrives (so the bytes and a decoded copy are never
    #: held at once: json.loads(bytes) would copy a 64 MiB body into a 64 MiB str).
    _buf: list[Any] | None = None
    #: Keep the body as bytes (a binary payload: OTLP's protobuf), not UTF-8 text.
    binary_body = False
    #: HTTP status of a body over the limit (MLflow's routes: 400, its code for it).
    too_large_status: int | None = None
    _size = 0
    _decoder: Any = None
    _held = 0
    _refusal: TrackingError | None = None

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

    @property
    def limit(self) -> int:
        return self.body_limit or self.mlops.max_request_body

    def too_large(self, size: int | str) -> TrackingError:
        msg = self.body_limit_message or (
            "Request bodies must be at most {limit} bytes, got a request of size "
            "{size} (MLOpsApp.max_request_body)."
        )
        return TrackingError(
            msg.format(limit=self.limit, size=size),
            "INVALID_PARAMETER_VALUE",
            self.too_large_status,
        )

    def takes_body(self, method: str) -> bool:
        """Whether ``method`` reads a body on this route (else it is drained unread)."""
        return method in self.rpcs

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self._finished or self.request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return
        if (
            not self.current_user
            or not self.takes_body(self.request.method or "")
            or self._xsrf_refusal is not None
        ):
            return  # refused by the verb's method; the body is drained unread
        declared = self.request.headers.get("Content-Length")
        size = int(declared) if declared and declared.strip().isdigit() else None
        if size is not None and size > self.limit:
            self._refusal = self.too_large(size)
            return
        want = self.limit if size is None else size
        budget = self.mlops.body_budget
        if not await budget.acquire(want, self.mlops.inflight_wait):
            self._refusal = busy(budget)
            return
        self._held = want
        self._buf = []
        if not self.binary_body:
            self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def data_received(self, chunk: bytes) -> None:
        buf = self._buf
        if buf is None:
            return
        self._size += len(chunk)
        if self._size > self.limit:  # a chunked body past its cap
            self._buf = None
            self._refusal = self.too_large(f"over {self.limit}")
            return
        if self._decoder is None:
            buf.append(chunk)
            return
        try:
            buf.append(self._decoder.decode(chunk))
        except UnicodeDecodeError:
            self._buf = None
            self._refusal = invalid("The request body is not valid JSON: it is not UTF-8 text.")

    def on_finish(self) -> None:
        self._release()
        super().on_finish()

    def on_connection_close(self) -> None:
        self._release()
        super().on_connection_close()

    def take_body(self) -> str | bytes:
        """The body read under the budget, as text (handed over once: the handler keeps
        no copy)."""
        buf, self._buf = self._buf, None
        if buf is None:
            return self.request.body
        if self._decoder is None:
            data = b"".join(buf)
            buf.clear()
            return data
        try:
            buf.append(self._decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            return b"\xff"  # a truncated character: refused as not JSON
        text = "".join(buf)
        buf.clear()
        return text

    def _release(self) -> None:
        self._buf = None
        if self._held:
            held, self._held = self._held, 0
            self.mlops.body_budget.release(held)

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._dispatch("GET")

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self._dispatch("POST")

    async def _dispatch(self, method: str) -> None:
        self.refuse_if_forged()
        rpc = self.rpcs.get(method)
        if rpc is None:
            raise web.HTTPError(405, f"{method} is not supported on {self.request.path}")
        if self._refusal is not None:
            self.send_tracking_error(self._refusal)
            return
        query = self.request.query_arguments
        holder = [self.take_body()]

        def invoke() -> str:
            if method == "GET":
                fields = Fields.from_query(query)
            else:
                body, holder[0] = holder[0], b""
                fields = Fields.from_body(body)
                del body  # the parsed fields are all that is kept
            return to_json(rpc(fields, self.store))

        async def work() -> None:
            self.send_json(await self.run(invoke))

        await self.guarded(work)


class PathRpcHandler(RpcHandler):
    """An :class:`RpcHandler` whose route has path parameters (``(?P<trace_id>...)``):
    they join the fields (query string and JSON body; MLflow sends DELETE fields in the
    body). Endpoints get :meth:`target` (the store; the registry for its routes)."""

    #: A bulk-ingest route: its body is parsed and stored with the cyclic GC paused
    #: (:mod:`jupyter_mlops.tracking.gcpause`).
    bulk_ingest = False

    def target(self, user: Any) -> Any:
        """What the endpoints get, for the caller ``user`` (called in the pool)."""
        return self.store

    def body_parser(self) -> Callable[[str | bytes], dict[str, Any]]:
        """What reads the JSON body into the fields (a route may read its own shape
        faster; its answers and errors stay :func:`~..request.parse_json_body`'s)."""
        from ..request import parse_json_body

        return parse_json_body

    @web.authenticated
    @authorized
    async def get(self, *args: str, **kwargs: str) -> None:  # type: ignore[override]
        await self._call("GET", kwargs)

    @web.authenticated
    @authorized
    async def post(self, *args: str, **kwargs: str) -> None:  # type: ignore[override]
        await self._call("POST", kwargs)

    @web.authenticated
    @authorized
    async def patch(self, *args: str, **kwargs: str) -> None:
        await self._call("PATCH", kwargs)

    @web.authenticated
    @authorized
    async def delete(self, *args: str, **kwargs: str) -> None:
        await self._call("DELETE", kwargs)

    async def _call(self, method: str, path_args: dict[str, str]) -> None:
        self.refuse_if_forged()
        rpc = self.rpcs.get(method)
        if rpc is None:
            raise web.HTTPError(405, f"{method} is not supported on {self.request.path}")
        if self._refusal is not None:
            self.send_tracking_error(self._refusal)
            return
        query = self.request.query_arguments
        body = self.take_body()
        user = self.current_user

        def invoke() -> str:
            if not self.bulk_ingest:
                return call()
            with gc_paused():
                return call()

        def call() -> str:
            parse_json_body = self.body_parser()
            if method == "GET":
                data: dict[str, Any] = dict(Fields.from_query(query).data)
            else:
                data = {
                    k: v[0] if len(v) == 1 else v for k, v in Fields.from_query(query).data.items()
                }
                data.update(parse_json_body(body))
            for k, v in path_args.items():
                data[k] = [v] if method == "GET" else v
            return to_json(rpc(Fields(data, query=method == "GET"), self.target(user)))

        async def work() -> None:
            self.send_json(await self.run(invoke))

        await self.guarded(work)
