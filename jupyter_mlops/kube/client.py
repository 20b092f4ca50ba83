"""An async client of the Kubernetes REST API, over plain dicts.

Built on :mod:`aiohttp` (connection pooling, streamed watches and logs that stop when the caller
stops reading) rather than ``kubernetes_asyncio``: targets deal in custom resources (TrainJob,
InferenceService, PyTorchJob) that the generated typed models do not know, so a typed client
would only add its import cost and its own configuration and error types. The API is small:

    client = KubeClient(read_kube_config(name, settings))
    job = await client.create(TRAINJOBS, {"metadata": {"name": "j1"}, "spec": {...}})
    job = await client.wait_for(TRAINJOBS, "j1", lambda o: condition(o, "Complete"))
    logs = await client.logs("jobset.sigs.k8s.io/jobset-name=j1", tail_lines=100)
    await client.delete(TRAINJOBS, "j1")

Every failure is a :class:`KubeError` (a :class:`~jupyter_mlops.tracking.errors.TrackingError`,
so the REST layer answers it as a 4xx, or 503 when the cluster does not answer) whose message
names the target, what was asked, and the API server's own ``Status`` message.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..tracking.errors import (
    HTTP_STATUS,
    INVALID_PARAMETER_VALUE,
    PERMISSION_DENIED,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    TrackingError,
)
from .config import KubeConfig
from .resources import EVENTS, PODS, Resource

if TYPE_CHECKING:
    import aiohttp

#: The API's HTTP status → our error code. Its 401 is our 403: a 401 from our own API would
#: tell the browser that *its* Jupyter session is gone.
_CODES = {
    400: INVALID_PARAMETER_VALUE,
    401: PERMISSION_DENIED,
    403: PERMISSION_DENIED,
    404: RESOURCE_DOES_NOT_EXIST,
    409: "RESOURCE_CONFLICT",
    410: "RESOURCE_CONFLICT",
    422: INVALID_PARAMETER_VALUE,
}
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


class KubeError(TrackingError):
    """The API server refused a request, or did not answer (``status`` None).

    ``status`` is the HTTP status, ``reason`` the ``Status`` object's reason (``NotFound``,
    ``AlreadyExists``, ``Forbidden``, ``Conflict``, ``Invalid``, ``Gone``...), ``api_message``
    the API server's own words."""

    def __init__(
        self,
        message: str,
        error_code: str,
        status: int | None = None,
        reason: str | None = None,
        api_message: str | None = None,
    ) -> None:
        super().__init__(message, error_code)
        self.status = status
        self.reason = reason
        self.api_message = api_message

    @property
    def http_status(self) -> int:
        """Ours, from the error code: ``status`` is the remote API's answer, not ours."""
        return HTTP_STATUS.get(self.error_code, 500)

    @property
    def transient(self) -> bool:
        """Worth trying again later: no answer, 429 or a 5xx."""
        return self.status is None or self.status >= 500 or self.status == 429


class WatchEvent(NamedTuple):
    """One event of a watch: ``type`` is ADDED, MODIFIED or DELETED."""

    type: str
    object: dict[str, Any]


class KubeClient:
    """One target's access to one cluster, in its namespace by default. Create it anywhere;
    it opens its connection pool on the first request (on the running event loop) and
    :meth:`close` releases it."""

    def __init__(self, config: KubeConfig) -> None:
        self.config = config
        self.namespace = config.namespace
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- objects -------------------------------------------------------------------------------
    async def get(
        self,
        res: Resource,
        name: str,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """The object (404: :class:`KubeError` with ``status`` 404)."""
        return await self._json("GET", res, name, namespace, subresource, verb="get")

    async def find(
        self, res: Resource, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.get(res, name, namespace=namespace)
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    async def list(
        self,
        res: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict[str, Any]:
        """The list object: ``items`` and ``metadata.resourceVersion`` (to watch from)."""
        return await self._json(
            "GET",
            res,
            None,
            namespace,
            None,
            verb="list",
            params={"labelSelector": label_selector, "fieldSelector": field_selector},
        )

    async def create(
        self, res: Resource, body: Mapping[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        """Create ``body`` (``apiVersion`` and ``kind`` filled in when missing)."""
        body = dict(body)
        body.setdefault("apiVersion", res.api_version)
        if res.kind:
            body.setdefault("kind", res.kind)
        name = (body.get("metadata") or {}).get("name") or (
            (body.get("metadata") or {}).get("generateName")
        )
        return await self._json(
            "POST", res, None, namespace, None, verb="create", body=body, about=name
        )

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        patch_type: str = "merge",
    ) -> dict[str, Any]:
        """Patch the object (``patch_type``: merge, strategic or json; ``subresource``
        ``"status"`` for a controller's status)."""
        if patch_type not in PATCH_TYPES:
            raise ValueError(f"patch_type must be one of {sorted(PATCH_TYPES)}")
        return await self._json(
            "PATCH",
            res,
            name,
            namespace,
            subresource,
            verb="patch",
            body=patch,
            content_type=PATCH_TYPES[patch_type],
        )

    async def replace(
        self,
        res: Resource,
        name: str,
        body: Mapping[str, Any],
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Replace the object; with ``metadata.resourceVersion`` set, a concurrent change
        answers 409 ``Conflict``."""
        body = dict(body)
        body.setdefault("apiVersion", res.api_version)
        if res.kind:
            body.setdefault("kind", res.kind)
        return await self._json("PUT", res, name, namespace, subresource, verb="replace", body=body)

    async def delete(
        self,
        res: Resource,
        name: str,
        *,
        namespace: str | None = None,
        propagation: str = "Background",
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """Delete the object (its dependents too, by ``propagation``); ``missing_ok``: a
        404 returns None."""
        try:
            return await self._json(
                "DELETE",
                res,
                name,
                namespace,
                None,
                verb="delete",
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
            )
        except KubeError as e:
            if missing_ok and e.status == 404:
                return None
            raise

    async def events_for(self, obj: Mapping[str, Any]) -> builtins.list[dict[str, Any]]:
        """The Events about ``obj`` (why a pod is pending, a job failed...), oldest first."""
        meta = obj.get("metadata") or {}
        selector = f"involvedObject.name={meta.get('name')}"
        if obj.get("kind"):
            selector += f",involvedObject.kind={obj['kind']}"
        found = await self.list(
            EVENTS, namespace=meta.get("namespace") or None, field_selector=selector
        )
        items = list(found.get("items") or [])
        items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        return items

    # -- watching ------------------------------------------------------------------------------
    async def watch(
        self,
        res: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout: float = 300.0,
    ) -> AsyncIterator[WatchEvent]:
        """The changes after ``resource_version`` (from a :meth:`list`) for up to ``timeout``
        seconds (the server ends the stream; watch again from the last object's version).
        An expired version raises :class:`KubeError` with ``status`` 410: list again."""
        ns = namespace or self.namespace
        params = {
            "watch": "true",
            "timeoutSeconds": str(max(1, int(timeout))),
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
        }
        what = f"watch {res.key} in namespace {ns!r}"
        resp = await self._send("GET", res.path(ns), what, params=params, read_timeout=timeout + 30)
        try:
            async for line in _lines(resp):
                ev = json.loads(line)
                etype, obj = ev.get("type"), ev.get("object") or {}
                if etype == "ERROR":
                    raise self._error(what, int(obj.get("code") or 500), obj)
                if etype in ("ADDED", "MODIFIED", "DELETED"):
                    yield WatchEvent(etype, obj)
        except Exception as e:
            if not _is_client_error(e):
                raise
            raise self._unreachable(what, e) from None
        finally:
            resp.close()

    async def wait_for(
        self,
        res: Resource,
        name: str,
        predicate: Callable[[dict[str, Any] | None], bool],
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any] | None:
        """Wait until ``predicate(object)`` holds (the object is None while it does not
        exist, or once deleted) and return the object; :class:`asyncio.TimeoutError` after
        ``timeout`` seconds. Watches, listing again when a watch ends or expires."""
        ns = namespace or self.namespace
        selector = f"metadata.name={name}"

        async def loop() -> dict[str, Any] | None:
            while True:
                found = await self.list(res, namespace=ns, field_selector=selector)
                obj = next(iter(found.get("items") or []), None)
                if predicate(obj):
                    return obj
                rv = (found.get("metadata") or {}).get("resourceVersion")
                try:
                    async for ev in self.watch(
                        res, namespace=ns, field_selector=selector, resource_version=rv
                    ):
                        obj = None if ev.type == "DELETED" else ev.object
                        if predicate(obj):
                            return obj
                except KubeError as e:
                    if e.status != 410:
                        raise

        return await asyncio.wait_for(loop(), timeout)

    # -- logs ----------------------------------------------------------------------------------
    async def pod_log(
        self,
        pod: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
    ) -> bytes:
        """A pod's log as it is now (``tail_lines``: only the last lines)."""
        ns = namespace or self.namespace
        resp = await self._send(
            "GET",
            PODS.path(ns, pod, "log"),
            f"read the log of pod {pod!r} in namespace {ns!r}",
            params=_log_params(container, tail_lines, limit_bytes, previous, follow=False),
        )
        try:
            return await resp.read()
        finally:
            resp.release()

    async def follow_pod_log(
        self,
        pod: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
    ) -> AsyncIterator[bytes]:
        """A pod's log as it is written, until the container ends (or the caller stops
        reading: the stream is closed then)."""
        ns = namespace or self.namespace
        what = f"follow the log of pod {pod!r} in namespace {ns!r}"
        resp = await self._send(
            "GET",
            PODS.path(ns, pod, "log"),
            what,
            params=_log_params(container, tail_lines, None, False, True),
            read_timeout=None,
        )
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        except Exception as e:
            if not _is_client_error(e):
                raise
            raise self._unreachable(what, e) from None
        finally:
            resp.close()

    async def logs(
        self,
        label_selector: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
    ) -> dict[str, bytes]:
        """The logs of every pod matching ``label_selector``, by pod name in name order
        (a pod whose container has not started yet: ``b""``)."""
        pods = await self.list(PODS, namespace=namespace, label_selector=label_selector)
        names = sorted(p["metadata"]["name"] for p in pods.get("items") or [])

        async def one(pod: str) -> bytes:
            try:
                return await self.pod_log(
                    pod, namespace=namespace, container=container, tail_lines=tail_lines
                )
            except KubeError as e:
                if e.status in (400, 404):  # waiting to start, or gone meanwhile
                    return b""
                raise

        return dict(zip(names, await asyncio.gather(*(one(n) for n in names))))

    async def pod_proxy(
        self, pod: str, port: int, path: str, *, namespace: str | None = None
    ) -> str:
        """``GET`` ``path`` of a pod's ``port`` through the API server's pod proxy
        (``pods/proxy``): what a pod serves, reached without a route to the pod network."""
        ns = namespace or self.namespace
        resp = await self._send(
            "GET",
            PODS.path(ns, f"{pod}:{port}", "proxy") + "/" + path.lstrip("/"),
            f"read {path!r} of pod {pod!r} in namespace {ns!r}",
        )
        try:
            return (await resp.read()).decode("utf-8", "replace")
        finally:
            resp.release()

    async def close(self) -> None:
        """Release the connection pool (the client opens a new one if used again)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    # -- plumbing ------------------------------------------------------------------------------
    async def _json(
        self,
        method: str,
        res: Resource,
        name: str | None,
        namespace: str | None,
        subresource: str | None,
        *,
        verb: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        about: str | None = None,
    ) -> dict[str, Any]:
        ns = namespace or self.namespace
        path = res.path(ns if res.namespaced else None, name, subresource)
        what = f"{verb} {res.key}"
        if name or about:
            what += f" {name or about!r}"
        if subresource:
            what += f" ({subresource})"
        if res.namespaced:
            what += f" in namespace {ns!r}"
        resp = await self._send(
            method, path, what, params=params, body=body, content_type=content_type
        )
        try:
            data = await resp.read()
        finally:
            resp.release()
        try:
            out = json.loads(data) if data else {}
        except ValueError:
            raise self._unreachable(what, ValueError(f"not JSON: {data[:200]!r}")) from None
        return out if isinstance(out, dict) else {"value": out}

    async def _send(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        read_timeout: float | None = -1.0,
    ) -> aiohttp.ClientResponse:
        import aiohttp

        session = self._get_session()
        headers = {"Accept": "application/json"}
        token = self.config.read_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if read_timeout == -1.0:
            timeout = aiohttp.ClientTimeout(total=self.config.request_timeout)
        else:  # streams: connecting is bounded, reading is not (or by the watch's own length)
            timeout = aiohttp.ClientTimeout(
                total=None, connect=self.config.request_timeout, sock_read=read_timeout
            )
        try:
            resp = await session.request(
                method,
                self.config.api_url + path,
                params=query,
                data=data,
                headers=headers,
                timeout=timeout,
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
            raise self._unreachable(what, e) from None
        if resp.status >= 400:
            try:
                text = await resp.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                text = b""
            finally:
                resp.release()
            try:
                status_obj = json.loads(text)
            except ValueError:
                status_obj = {"message": text.decode("utf-8", "replace")[:500]}
            raise self._error(what, resp.status, status_obj if isinstance(status_obj, dict) else {})
        return resp  # the caller reads (and releases) the body

    def _get_session(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            cfg = self.config
            tls: ssl.SSLContext | bool = True
            if not cfg.verify_tls:
                tls = False
            elif cfg.ca_cert:
                tls = ssl.create_default_context(cafile=cfg.ca_cert)
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, limit=64))
            self._loop = loop
        return self._session

    def _error(self, what: str, code: int, status_obj: Mapping[str, Any]) -> KubeError:
        api_message = str(status_obj.get("message") or "").strip() or None
        reason = status_obj.get("reason") or None
        detail = api_message or f"HTTP {code}"
        tail = f" ({code} {reason})" if reason else f" ({code})"
        error_code = _CODES.get(code, TEMPORARILY_UNAVAILABLE)
        return KubeError(
            f"Kubernetes target {self.config.target!r}: cannot {what}: {detail}"
            f"{tail if api_message else ''}",
            error_code,
            code,
            reason,
            api_message,
        )

    def _unreachable(self, what: str, e: BaseException) -> KubeError:
        why = str(e) or type(e).__name__
        return KubeError(
            f"Kubernetes target {self.config.target!r}: cannot {what}: the API "
            f"server at {self.config.api_url} did not answer ({why})",
            TEMPORARILY_UNAVAILABLE,
        )


def _log_params(
    container: str | None,
    tail_lines: int | None,
    limit_bytes: int | None,
    previous: bool,
    follow: bool,
) -> dict[str, Any]:
    return {
        "container": container,
        "tailLines": tail_lines,
        "limitBytes": limit_bytes,
        "previous": "true" if previous else None,
        "follow": "true" if follow else None,
    }


def _is_client_error(e: BaseException) -> bool:
    import aiohttp

    return isinstance(e, (aiohttp.ClientError, asyncio.TimeoutError, OSError))


async def _lines(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Newline-separated records of a streamed body, however long each is."""
    buf = b""
    async for chunk in resp.content.iter_any():
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line
    if buf.strip():
        yield buf
