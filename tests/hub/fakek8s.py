"""A small Kubernetes API server and kubelet for tests, without a cluster.

The API server speaks the Kubernetes REST API over real HTTP, generically: every served resource
type (core ``/api/v1/...`` and grouped ``/apis/<group>/<version>/...``, namespaced) supports
create, get, list (label and field selectors), replace (PUT, with the ``resourceVersion``
precondition: 409 ``Conflict``), patch (merge, strategic-merge taken as merge, JSON patch),
delete (dependents found by ``ownerReferences`` are deleted too) and the ``status`` subresource
(spec and status written apart; ``metadata.generation`` counts spec changes); list and watch with
resourceVersion (JSON-lines streams, replay from a version, timeoutSeconds), in a namespace or, without
one, in all of them. Refusals are
``Status`` objects: 404 (also for a resource type nobody registered, as for a missing CRD), 409
``AlreadyExists`` / ``Conflict``, 422 ``Invalid``, 401 when :attr:`FakeKubernetes.tokens` is set
and the bearer token is not one of them, 403 for what :meth:`FakeKubernetes.forbid` forbids (RBAC's
message) and a ResourceQuota-like hard GPU limit per namespace (403 "exceeded quota").

Custom resources: :meth:`FakeKubernetes.register` serves a type (what installing its CRD does;
``namespaced=False`` for a cluster-scoped one, whose objects are stored under namespace ``""``);
:meth:`FakeKubernetes.add_controller` registers a fake controller, an ``async fn(k8s, event,
obj)`` called on the server's loop for each ADDED, MODIFIED (spec or metadata changed: status
writes do not call it again) and DELETED object of that type. A controller does what the real
one would with the fake's own tools: :meth:`create_object` (a pod it creates is run by the
kubelet), :meth:`set_status`, :meth:`set_condition`, :meth:`wait_pod`.

The kubelet starts a real process for each pod (the container's command, or the image's default
``jupyterhub-singleuser``) with the container's environment (as the test's own user: it cannot
switch to ``runAsUser``), refuses to run a container as root when ``runAsNonRoot`` is set, mounts
the pod's PersistentVolumeClaim as a directory, reports the pod Running (with pod IP 127.0.0.1
once its ``notebook-port`` accepts connections, or at once for a pod without one), posts Events
as it goes, serves the container's output as the pod's log (``tailLines``, ``limitBytes``,
``follow``), and kills the process when the pod is deleted. Like a real kubelet it tracks each pod
by its uid, not its name: a deleted pod's process and status updates never touch a later pod of
the same name (KubeSpawner replaces a stale pod that way). All pods share 127.0.0.1, so on create
the API server maps each pod's named port ``notebook-port`` to a free loopback port (as a mutating
admission webhook may); the kubelet rewrites ``JUPYTERHUB_SERVICE_URL`` to match.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import socket
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class ResourceType:
    """A served resource type; ``key`` is how the fake stores it: ``plural`` for the core API,
    ``plural.group`` otherwise (``trainjobs.trainer.kubeflow.org``)."""

    group: str
    version: str
    plural: str
    kind: str
    status_subresource: bool = True
    namespaced: bool = True

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


CORE = [
    ResourceType("", "v1", "pods", "Pod"),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    ResourceType("", "v1", "events", "Event", status_subresource=False),
    ResourceType("", "v1", "services", "Service"),
    ResourceType("", "v1", "secrets", "Secret", status_subresource=False),
    ResourceType("", "v1", "configmaps", "ConfigMap", status_subresource=False),
    ResourceType("apps", "v1", "deployments", "Deployment"),
    ResourceType("batch", "v1", "jobs", "Job"),
]
#: An object's event for a controller: ADDED, MODIFIED or DELETED, and the object (a copy).
Controller = Callable[["FakeKubernetes", str, dict], Awaitable[None]]


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    """A port for a pod's server to listen on (the kubelet's process binds it later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


def _get_path(obj: dict, dotted: str) -> Any:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _selector(text: str) -> list[tuple[str, str | None, bool]]:
    """``k=v``, ``k==v``, ``k!=v``, ``k`` (exists), ``!k`` (absent) → (key, value, equal)."""
    out: list[tuple[str, str | None, bool]] = []
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            out.append((k.strip(), v.strip(), False))
        elif "=" in term:
            k, v = term.split("=", 1)
            out.append((k.strip(), v.strip().lstrip("="), True))
        elif term.startswith("!"):
            out.append((term[1:].strip(), None, False))
        else:
            out.append((term, None, True))
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(doc: Any, ops: list) -> Any:
    """RFC 6902 add / replace / remove / test (what controllers and clients use)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1] if parts else ""
        kind = op["op"]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(idx, op["value"])
            elif kind == "replace":
                parent[idx] = op["value"]
            elif kind == "remove":
                parent.pop(idx)
            elif kind == "test" and parent[idx] != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        elif kind in ("add", "replace"):
            if kind == "replace" and last not in parent:
                raise ValueError(f"replace: no value at {op['path']}")
            parent[last] = op["value"]
        elif kind == "remove":
            if last not in parent:
                raise ValueError(f"remove: no value at {op['path']}")
            del parent[last]
        elif kind == "test" and parent.get(last) != op["value"]:
            raise ValueError(f"test failed at {op['path']}")
    return doc


@dataclass
class Runtime:
    """How the kubelet runs an image: a default command and extra environment (what the image would bake in)."""

    command: list[str] = field(default_factory=lambda: ["jupyterhub-singleuser"])
    env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)


class FakeKubernetes:
    """The API server state and its aiohttp application; run it with :meth:`start` (a background thread)."""

    def __init__(
        self,
        workdir: Path,
        runtimes: dict[str, Runtime] | None = None,
        default_runtime: Runtime | None = None,
    ) -> None:
        self.workdir = workdir
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        for rt in CORE:
            self.types[(rt.group, rt.version, rt.plural)] = rt
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.history: list[tuple[int, str, str, dict]] = []  # (rv, kind, type, object)
        self.rv = 0
        self.created: list[dict] = []  # every create request body as received (what the hub sent)
        self.requests: list[tuple[str, str]] = []
        self.gpu_hard: dict[str, int] = {}  # namespace -> ResourceQuota requests.nvidia.com/gpu
        #: bearer tokens the API accepts (None: any request, as the hub tests' kubeconfig sends)
        self.tokens: set[str] | None = None
        self.forbidden: set[tuple[str, str, str | None]] = set()  # (verb, key, namespace or None)
        self.controllers: dict[str, list[Controller]] = {}
        self.controller_errors: list[str] = []  # what a test's controller raised
        self.runtimes = runtimes or {}
        self.default_runtime = default_runtime or Runtime()
        # pod uid -> its container's process; uids of pods being deleted (their container must not start)
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self._deleting: set[str] = set()
        self.logs: dict[tuple[str, str], Path] = {}
        self._tick: asyncio.Event | None = None  # replaced (after being set) on every change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()
        self.port = 0
        self.lock = threading.Lock()

    # ---- lifecycle -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="fake-k8s", daemon=True)
        self._thread.start()
        ready.wait(30)

    async def _serve(self) -> None:
        self._tick = asyncio.Event()
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("POST", "/api/v1/namespaces", self.create_namespace)
        app.router.add_route(
            "GET", "/api/v1/namespaces/{ns}/pods/{name}/proxy/{path:.*}", self.pod_proxy
        )
        # namespaced paths first: /apis/g/v/namespaces/ns/x must not read as cluster-scoped
        for scope in ("/namespaces/{ns}/{plural}", "/{plural}"):
            for prefix in ("/api/{version}", "/apis/{group}/{version}"):
                coll = prefix + scope
                app.router.add_route("GET", coll, self.list_or_watch)
                app.router.add_route("POST", coll, self.create)
                app.router.add_route("GET", coll + "/{name}", self.get)
                app.router.add_route("PUT", coll + "/{name}", self.replace)
                app.router.add_route("PATCH", coll + "/{name}", self.patch)
                app.router.add_route("DELETE", coll + "/{name}", self.delete)
                app.router.add_route("GET", coll + "/{name}/{sub}", self.get)
                app.router.add_route("PUT", coll + "/{name}/{sub}", self.replace)
                app.router.add_route("PATCH", coll + "/{name}/{sub}", self.patch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        # port 0: the kernel picks a free port as it binds (no window for another process to take it)
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 60) -> Any:
        """Run a coroutine function on the server's loop from the test thread."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(fn(*args), self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            for key in list(self.processes):
                await self._kill(key)
            for task in list(self._tasks):
                task.cancel()
            assert self._runner is not None
            await self._runner.cleanup()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            self.call(shutdown, timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread:
                self._thread.join(10)

    # ---- what tests set up ---------------------------------------------------------------------------------
    def register(
        self,
        group: str,
        version: str,
        plural: str,
        kind: str,
        status_subresource: bool = True,
        namespaced: bool = True,
    ) -> str:
        """Serve a resource type (what installing its CRD does); its storage key. Objects of a
        cluster-scoped type (``namespaced=False``) are stored under the namespace ``""``."""
        rt = ResourceType(group, version, plural, kind, status_subresource, namespaced)
        self.types[(group, version, plural)] = rt
        return rt.key

    def add_controller(self, key: str, fn: Controller) -> None:
        """Call ``fn(k8s, event, obj)`` on the server's loop for each ADDED, MODIFIED (not by a
        status write) or DELETED object of the type ``key`` (``plural[.group]``)."""
        self.controllers.setdefault(key, []).append(fn)

    def forbid(self, verb: str, key: str, namespace: str | None = None) -> None:
        """Answer 403 to ``verb`` (get, list, watch, create, update, patch, delete) on ``key``
        (in ``namespace``, or anywhere), with RBAC's message."""
        self.forbidden.add((verb, key, namespace))

    # ---- state ---------------------------------------------------------------------------------------------
    def snapshot(self, kind: str, ns: str | None = None) -> list[dict]:
        with self.lock:
            return [
                copy.deepcopy(o)
                for (k, n, _), o in self.objects.items()
                if k == kind and ns in (None, n)
            ]

    def find(self, kind: str, ns: str, name: str) -> dict | None:
        with self.lock:
            o = self.objects.get((kind, ns, name))
            return copy.deepcopy(o) if o else None

    async def _emit(self, kind: str, etype: str, obj: dict, notify: bool = True) -> None:
        with self.lock:
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            key = (kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if etype == "DELETED":
                self.objects.pop(key, None)
            else:
                self.objects[key] = obj
            self.history.append((self.rv, kind, etype, copy.deepcopy(obj)))
        tick, self._tick = self._tick, asyncio.Event()
        assert tick is not None
        tick.set()
        if notify:
            for fn in self.controllers.get(kind, []):
                self._spawn(self._control(fn, kind, etype, copy.deepcopy(obj)))

    async def _control(self, fn: Controller, kind: str, etype: str, obj: dict) -> None:
        try:
            await fn(self, etype, obj)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a broken test controller: say so to the test
            import traceback

            traceback.print_exc()
            name = obj["metadata"]["name"]
            self.controller_errors.append(f"{kind} {name} {etype}: {type(e).__name__}: {e}")

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def changed(self, timeout: float) -> None:
        """Until the next change of any object (or ``timeout`` seconds)."""
        tick = self._tick
        assert tick is not None
        try:
            await asyncio.wait_for(tick.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    # ---- controllers' tools (on the server's loop) ---------------------------------------------------------
    async def create_object(self, kind: str, ns: str, body: dict) -> dict:
        """Create an object as a controller does (pods are run by the kubelet)."""
        rt = self._type_by_key(kind)
        body = copy.deepcopy(body)
        body.setdefault("apiVersion", rt.api_version)
        body.setdefault("kind", rt.kind)
        out = await self._create(rt, ns, body)
        if not isinstance(out, dict):
            raise RuntimeError(f"create {kind} in {ns}: {out.text}")  # a refusal
        return out

    async def set_status(self, kind: str, ns: str, name: str, **changes: Any) -> dict | None:
        """Merge ``changes`` into an object's ``status`` (None: the object is gone)."""
        obj = self.find(kind, ns, name)
        if obj is None:
            return None
        obj["status"] = merge_patch(obj.get("status") or {}, changes)
        await self._emit(kind, "MODIFIED", obj, notify=False)
        return obj

    async def set_condition(
        self,
        kind: str,
        ns: str,
        name: str,
        ctype: str,
        cstatus: str = "True",
        reason: str = "",
        message: str = "",
    ) -> dict | None:
        """Set one ``status.conditions`` entry (metav1.Condition's fields)."""
        obj = self.find(kind, ns, name)
        if obj is None:
            return None
        conds = [
            c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") != ctype
        ]
        conds.append(
            {
                "type": ctype,
                "status": cstatus,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now(),
            }
        )
        return await self.set_status(kind, ns, name, conditions=conds)

    async def wait_pod(self, ns: str, name: str, timeout: float = 600) -> dict | None:
        """Until the pod ended (Succeeded or Failed; its last state) or is gone (None)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            pod = self.find("pods", ns, name)
            if pod is None or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                return pod
            await self.changed(max(0.05, deadline - loop.time()))
        raise asyncio.TimeoutError(f"pod {ns}/{name} did not end")

    async def post_event(self, pod: dict, reason: str, message: str, etype: str = "Normal") -> None:
        meta = pod["metadata"]
        name = f"{meta['name']}.{uuid.uuid4().hex[:10]}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": meta.get("namespace") or "default",
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now(),
            },
            "involvedObject": {
                "kind": pod.get("kind", "Pod"),
                "name": meta["name"],
                "namespace": meta.get("namespace") or "default",
                "uid": meta.get("uid"),
                "apiVersion": pod.get("apiVersion", "v1"),
            },
            "reason": reason,
            "message": message,
            "type": etype,
            "count": 1,
            "firstTimestamp": now(),
            "lastTimestamp": now(),
            "eventTime": None,
            "source": {"component": "fake-kubelet"},
        }
        await self._emit("events", "ADDED", event)

    # ---- HTTP handlers -------------------------------------------------------------------------------------
    def _type_by_key(self, key: str) -> ResourceType:
        return next(rt for rt in self.types.values() if rt.key == key)

    def _resolve(self, request: web.Request, verb: str) -> ResourceType | web.Response:
        """The request's resource type, or the refusal (401, 403, 404)."""
        m = request.match_info
        self.requests.append((request.method, str(request.rel_url)))
        if self.tokens is not None:
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                return status(401, "Unauthorized", "Unauthorized")
        rt = self.types.get((m.get("group", ""), m["version"], m["plural"]))
        if rt is None:
            return status(
                404, "NotFound", f"the server could not find the requested resource ({m['plural']})"
            )
        ns = m.get("ns", "")
        if bool(ns) != rt.namespaced and not (verb in ("list", "watch") and rt.namespaced):
            return status(
                404, "NotFound", f"the server could not find the requested resource ({m['plural']})"
            )
        if (verb, rt.key, ns) in self.forbidden or (verb, rt.key, None) in self.forbidden:
            name = m.get("name")
            what = f'{rt.key} "{name}"' if name else rt.key
            return status(
                403,
                "Forbidden",
                f'{what} is forbidden: User "system:serviceaccount:{ns}:default" cannot {verb} '
                f'resource "{rt.plural}" in API group "{rt.group}" in the namespace "{ns}"',
            )
        return rt

    def _matches(self, obj: dict, labels: list, fields: list) -> bool:
        obj_labels = obj.get("metadata", {}).get("labels") or {}
        for k, v, eq in labels:
            if v is None:
                if (k in obj_labels) != eq:
                    return False
            elif (obj_labels.get(k) == v) != eq:
                return False
        return all((str(_get_path(obj, k)) == v) == eq for k, v, eq in fields)
        return True

    async def list_or_watch(self, request: web.Request) -> web.StreamResponse:
        watching = request.query.get("watch", "").lower() in ("true", "1")
        rt = self._resolve(request, "watch" if watching else "list")
        if isinstance(rt, web.Response):
            return rt
        ns, kind = request.match_info.get("ns", ""), rt.key
        q = request.query
        labels, fields = (
            _selector(q.get("labelSelector", "")),
            _selector(q.get("fieldSelector", "")),
        )
        if watching:
            return await self._watch(request, ns, kind, labels, fields)
        with self.lock:
            items = [
                copy.deepcopy(o)
                for (k, n, _), o in self.objects.items()
                if k == kind and (n == ns or not ns) and self._matches(o, labels, fields)
            ]
            rv = str(self.rv)
        return web.json_response(
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": rv},
                "items": items,
            }
        )

    async def _watch(
        self, request: web.Request, ns: str, kind: str, labels: list, fields: list
    ) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 300)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sent = since
        try:
            while loop.time() < deadline:
                tick = self._tick
                assert tick is not None
                with self.lock:
                    events = [
                        (rv, t, o)
                        for rv, k, t, o in self.history
                        if rv > sent
                        and k == kind
                        and (not ns or o["metadata"].get("namespace", "") == ns)
                    ]
                for rv, etype, obj in events:
                    sent = rv
                    if self._matches(obj, labels, fields):
                        line = json.dumps({"type": etype, "object": obj}) + "\n"
                        await resp.write(line.encode())
                if events:
                    continue
                try:
                    await asyncio.wait_for(tick.wait(), max(0.05, deadline - loop.time()))
                except asyncio.TimeoutError:
                    pass
        except (ConnectionResetError, asyncio.CancelledError, GeneratorExit):
            return resp
        try:
            await resp.write_eof()
        except ConnectionResetError:
            pass
        return resp

    async def get(self, request: web.Request) -> web.StreamResponse:
        rt = self._resolve(request, "get")
        if isinstance(rt, web.Response):
            return rt
        ns, name, sub = (
            request.match_info.get("ns", ""),
            request.match_info["name"],
            request.match_info.get("sub"),
        )
        if sub == "log" and rt.key == "pods":
            return await self.pod_log(request, ns, name)
        if sub not in (None, "status"):
            return status(404, "NotFound", "the server could not find the requested resource")
        obj = self.find(rt.key, ns, name)
        if obj is None:
            return status(404, "NotFound", f'{rt.key} "{name}" not found')
        return web.json_response(obj)

    async def create_namespace(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(body, status=201)

    async def create(self, request: web.Request) -> web.Response:
        rt = self._resolve(request, "create")
        if isinstance(rt, web.Response):
            return rt
        body = await request.json()
        with self.lock:
            self.created.append(copy.deepcopy(body))
        out = await self._create(rt, request.match_info.get("ns", ""), body)
        return out if isinstance(out, web.Response) else web.json_response(out, status=201)

    async def _create(self, rt: ResourceType, ns: str, body: dict) -> dict | web.Response:
        kind = rt.key
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            return status(422, "Invalid", f"{rt.kind} is invalid: metadata.name: Required value")
        if self.find(kind, ns, name) is not None:
            return status(409, "AlreadyExists", f'{kind} "{name}" already exists')
        if kind == "pods":
            refusal = self._quota_refusal(ns, body)
            if refusal:
                return status(403, "Forbidden", refusal)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        if rt.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if kind == "pods":
            body["status"] = {"phase": "Pending", "conditions": [], "qosClass": "Guaranteed"}
            self._map_ports(body)
        elif kind == "persistentvolumeclaims":
            body["status"] = {"phase": "Bound"}
        elif rt.status_subresource:
            body.pop("status", None)  # written through the status subresource only
        await self._emit(kind, "ADDED", body)
        if kind == "pods":
            self._spawn(self._run_pod(ns, name))
        return self.find(kind, ns, name) or body

    def _write(self, rt: ResourceType, old: dict, new: dict, sub: str | None) -> dict:
        """What a PUT or PATCH of ``new`` over ``old`` stores (spec and status kept apart)."""
        if sub == "status":
            out = copy.deepcopy(old)
            out["status"] = new.get("status")
            return out
        out = copy.deepcopy(new)
        keep = (
            "uid",
            "namespace",
            "name",
            "creationTimestamp",
            "generation",
            "resourceVersion",
            "deletionTimestamp",
        )
        meta = out.setdefault("metadata", {})
        for k in keep:
            if k in old["metadata"]:
                meta[k] = old["metadata"][k]
            else:
                meta.pop(k, None)
        if rt.status_subresource or rt.key == "pods":
            out["status"] = copy.deepcopy(old.get("status"))
        if {k: v for k, v in out.items() if k not in ("metadata", "status")} != {
            k: v for k, v in old.items() if k not in ("metadata", "status")
        }:
            meta["generation"] = int(old["metadata"].get("generation") or 1) + 1
        return out

    async def _update(
        self, request: web.Request, verb: str, compute: Callable[[dict], dict]
    ) -> web.Response:
        rt = self._resolve(request, verb)
        if isinstance(rt, web.Response):
            return rt
        ns, name, sub = (
            request.match_info.get("ns", ""),
            request.match_info["name"],
            request.match_info.get("sub"),
        )
        if sub not in (None, "status") or (sub == "status" and not rt.status_subresource):
            return status(404, "NotFound", "the server could not find the requested resource")
        old = self.find(rt.key, ns, name)
        if old is None:
            return status(404, "NotFound", f'{rt.key} "{name}" not found')
        try:
            new = compute(old)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return status(422, "Invalid", f"{rt.kind} {name!r} is invalid: {e}")
        want_rv = (new.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"].get("resourceVersion"):
            return status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rt.key} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        stored = self._write(rt, old, new, sub)
        await self._emit(rt.key, "MODIFIED", stored, notify=sub != "status")
        return web.json_response(self.find(rt.key, ns, name) or stored)

    async def replace(self, request: web.Request) -> web.Response:
        body = await request.json()
        return await self._update(request, "update", lambda old: body)

    async def patch(self, request: web.Request) -> web.Response:
        ctype = request.headers.get("Content-Type", "")
        body = await request.json()
        if "json-patch" in ctype:
            return await self._update(request, "patch", lambda old: json_patch(old, body))
        # merge-patch; strategic merge taken as a merge patch (lists are replaced)
        return await self._update(request, "patch", lambda old: merge_patch(old, body))

    async def pod_log(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        pod = self.find("pods", ns, name)
        if pod is None:
            return status(404, "NotFound", f'pods "{name}" not found')
        path = self.logs.get((ns, name))
        container = pod["spec"]["containers"][0]["name"]
        if path is None or not path.exists():
            return status(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating',
            )
        q = request.query
        tail = int(q["tailLines"]) if q.get("tailLines") else None
        limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        data = path.read_bytes()
        if tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail:]) if tail else b""
        if limit is not None:
            data = data[:limit]
        if q.get("follow", "").lower() not in ("true", "1"):
            return web.Response(body=data, content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        uid = pod["metadata"]["uid"]
        offset = path.stat().st_size
        try:
            await resp.write(data)
            while True:
                proc = self.processes.get(uid)
                ended = proc is None or proc.returncode is not None
                size = path.stat().st_size
                if size > offset:
                    with open(path, "rb") as f:  # noqa: ASYNC230 - a local log file
                        f.seek(offset)
                        chunk = f.read(size - offset)
                    offset += len(chunk)
                    await resp.write(chunk)
                    continue
                if ended:
                    break
                await asyncio.sleep(0.1)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    async def pod_proxy(self, request: web.Request) -> web.StreamResponse:
        """``GET pods/<name>[:<port>]/proxy/<path>``: what the pod serves there. Pods share
        127.0.0.1: a controller that moved a container port records the real one in the
        pod's annotation ``fakek8s/port.<port>``."""
        if self.tokens is not None:
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                return status(401, "Unauthorized", "Unauthorized")
        ns, target = request.match_info["ns"], request.match_info["name"]
        name, _, port = target.partition(":")
        pod = self.find("pods", ns, name)
        if pod is None:
            return status(404, "NotFound", f'pods "{name}" not found')
        port = (pod["metadata"].get("annotations") or {}).get(f"fakek8s/port.{port}", port)
        import aiohttp

        url = f"http://127.0.0.1:{port}/{request.match_info['path']}"
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r,
            ):
                body = await r.read()
                return web.Response(body=body, status=r.status, content_type=r.content_type)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
            return status(503, "ServiceUnavailable", f"error trying to reach service: {e}")

    def _quota_refusal(self, ns: str, pod: dict) -> str | None:
        hard = self.gpu_hard.get(ns)
        if hard is None:
            return None

        def gpus(p: dict) -> int:
            return sum(
                int(
                    (c.get("resources") or {}).get("requests", {}).get("nvidia.com/gpu", 0)
                    or (c.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu", 0)
                )
                for c in p.get("spec", {}).get("containers", [])
            )

        used = sum(gpus(p) for p in self.snapshot("pods", ns))
        want = gpus(pod)
        if want and used + want > hard:
            return (
                f'pods "{pod["metadata"]["name"]}" is forbidden: exceeded quota: gpu-quota, requested: '
                f"requests.nvidia.com/gpu={want}, used: requests.nvidia.com/gpu={used}, "
                f"limited: requests.nvidia.com/gpu={hard}"
            )
        return None

    def _map_ports(self, pod: dict) -> None:
        for c in pod.get("spec", {}).get("containers", []):
            for p in c.get("ports") or []:
                if p.get("name") == "notebook-port":
                    p["containerPort"] = free_port()

    async def delete(self, request: web.Request) -> web.Response:
        rt = self._resolve(request, "delete")
        if isinstance(rt, web.Response):
            return rt
        ns, name = request.match_info.get("ns", ""), request.match_info["name"]
        obj = self.find(rt.key, ns, name)
        if obj is None:
            return status(404, "NotFound", f'{rt.key} "{name}" not found')
        return web.json_response(await self._delete(rt.key, obj))

    async def delete_object(self, kind: str, ns: str, name: str) -> dict | None:
        """Delete an object as a controller does (None: it was not there)."""
        obj = self.find(kind, ns, name)
        return None if obj is None else await self._delete(kind, obj)

    async def _delete(self, kind: str, obj: dict) -> dict:
        ns, name, uid = (
            obj["metadata"].get("namespace", ""),
            obj["metadata"]["name"],
            obj["metadata"]["uid"],
        )
        if kind == "pods":
            obj["metadata"]["deletionTimestamp"] = now()
            await self._emit(kind, "MODIFIED", obj, notify=False)
            self._spawn(self._terminate_pod(ns, name, uid))
            out = self.find(kind, ns, name) or obj
        else:
            await self._emit(kind, "DELETED", obj)
            out = obj
        # the garbage collector: what this object owned goes with it
        with self.lock:
            owned = [
                (k, copy.deepcopy(o))
                for (k, n, _), o in self.objects.items()
                if n == ns
                and any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
            ]
        for k, o in owned:
            if not o["metadata"].get("deletionTimestamp"):
                await self._delete(k, o)
        return out

    # ---- kubelet -------------------------------------------------------------------------------------------
    def _current(self, ns: str, name: str, uid: str) -> dict | None:
        """The pod ``ns/name`` if it is still the one with ``uid`` and not being deleted."""
        pod = self.find("pods", ns, name)
        if (
            pod is None
            or pod["metadata"].get("uid") != uid
            or pod["metadata"].get("deletionTimestamp")
        ):
            return None
        return pod

    async def _set_status(self, ns: str, name: str, uid: str, **changes: Any) -> dict | None:
        # a status update for a pod uid that is gone (or going) must not land on a newer pod of the same name
        pod = self._current(ns, name, uid)
        if pod is None:
            return None
        pod["status"].update(changes)
        await self._emit("pods", "MODIFIED", pod, notify=False)
        return pod

    def _container_status(self, pod: dict, ready: bool, state: dict) -> list[dict]:
        c = pod["spec"]["containers"][0]
        return [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": f"fake://{c['image']}",
                "ready": ready,
                "restartCount": 0,
                "started": ready,
                "state": state,
            }
        ]

    async def _run_pod(self, ns: str, name: str) -> None:
        pod = self.find("pods", ns, name)
        assert pod is not None
        pod_uid = pod["metadata"]["uid"]
        spec = pod["spec"]
        container = spec["containers"][0]
        await self.post_event(pod, "Scheduled", f"Successfully assigned {ns}/{name} to fake-node-1")
        csc = container.get("securityContext") or {}
        psc = spec.get("securityContext") or {}
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root and (uid is None or int(uid) == 0):
            msg = "Error: container has runAsNonRoot and image will run as root"
            await self.post_event(pod, "Failed", msg, "Warning")
            await self._set_status(
                ns,
                name,
                pod_uid,
                containerStatuses=self._container_status(
                    pod,
                    False,
                    {"waiting": {"reason": "CreateContainerConfigError", "message": msg}},
                ),
            )
            return
        await self.post_event(
            pod, "Pulled", f'Container image "{container["image"]}" already present on machine'
        )

        runtime = self.runtimes.get(container["image"], self.default_runtime)
        port = next(
            (
                p["containerPort"]
                for p in container.get("ports") or []
                if p.get("name") == "notebook-port"
            ),
            None,
        )
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        if port is not None:
            env["JUPYTERHUB_SERVICE_URL"] = env.get(
                "JUPYTERHUB_SERVICE_URL", "http://0.0.0.0:8888/"
            ).replace("0.0.0.0:8888", f"127.0.0.1:{port}")
        home = self._mount_home(pod)
        proc_env = {
            # the image's tools (jupyter, jupyterhub-singleuser) are on its PATH: this interpreter's
            "PATH": os.pathsep.join(
                [os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")]
            ),
            "LANG": "C.UTF-8",
            "HOME": str(home),
            **runtime.env,
            **env,
        }
        argv = (container.get("command") or []) + (container.get("args") or []) or list(
            runtime.command
        )
        argv = argv + runtime.extra_args
        if os.geteuid() == 0 and "jupyter" in os.path.basename(argv[0]):
            # the tests may run as root, where the image would run as runAsUser (checked above)
            argv.append("--allow-root")
        log = self.workdir / f"{ns}-{name}.log"
        self.logs[(ns, name)] = log
        await self.post_event(pod, "Created", "Created container notebook")
        with open(log, "wb") as out:  # noqa: ASYNC230 - opening a local log file is instant
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=proc_env,
                cwd=str(home),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[pod_uid] = proc
        if self._current(ns, name, pod_uid) is None or pod_uid in self._deleting:
            # deleted while the container was being created: the deletion found no process to stop
            await self._kill(pod_uid)
            return
        await self.post_event(pod, "Started", "Started container notebook")
        await self._set_status(
            ns,
            name,
            pod_uid,
            phase="Running",
            podIP=None,
            hostIP="127.0.0.1",
            startTime=now(),
            containerStatuses=self._container_status(pod, False, {"running": {"startedAt": now()}}),
        )
        # readiness: a TCP probe on the notebook port (a pod without one is ready once started)
        while proc.returncode is None and port is not None:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.2)
        if proc.returncode is None:
            await self._set_status(
                ns,
                name,
                pod_uid,
                podIP="127.0.0.1",
                podIPs=[{"ip": "127.0.0.1"}],
                conditions=[{"type": "Ready", "status": "True"}],
                containerStatuses=self._container_status(
                    pod, True, {"running": {"startedAt": now()}}
                ),
            )
        code = await proc.wait()
        await self._set_status(
            ns,
            name,
            pod_uid,
            phase="Failed" if code else "Succeeded",
            containerStatuses=self._container_status(
                pod,
                False,
                {"terminated": {"exitCode": code, "reason": "Error" if code else "Completed"}},
            ),
        )

    def _mount_home(self, pod: dict) -> Path:
        claim = None
        for v in pod["spec"].get("volumes") or []:
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
        home = self.workdir / "volumes" / (claim or f"emptydir-{pod['metadata']['name']}")
        home.mkdir(parents=True, exist_ok=True)
        return home

    async def _kill(self, uid: str) -> None:
        proc = self.processes.pop(uid, None)
        if proc is None or proc.returncode is not None:
            return
        try:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            # on a loaded machine the process may have ended meanwhile (kill then finds no process)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 30)
        except ProcessLookupError:
            pass

    async def _terminate_pod(self, ns: str, name: str, uid: str) -> None:
        self._deleting.add(uid)
        pod = self.find("pods", ns, name)
        if pod is not None and pod["metadata"]["uid"] == uid:
            await self.post_event(pod, "Killing", "Stopping container notebook")
        await self._kill(uid)
        pod = self.find("pods", ns, name)
        if pod is not None and pod["metadata"]["uid"] == uid:  # not a newer pod of the same name
            await self._emit("pods", "DELETED", pod)
