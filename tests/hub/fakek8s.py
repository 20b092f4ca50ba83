"""A small Kubernetes API server and kubelet for testing the hub without a cluster.

The API server speaks the parts of the core/v1 REST API that KubeSpawner uses, over real HTTP: create, get,
list (label and field selectors) and delete of pods, persistentvolumeclaims, events, services and secrets; list
and watch with resourceVersion (JSON-lines streams, replay from a version, timeoutSeconds); 404 / 409 / 403 as
``Status`` objects; a ResourceQuota-like hard GPU limit per namespace (403 "exceeded quota").

The kubelet starts a real process for each pod (the container's command, or the image's default
``jupyterhub-singleuser``) with the container's environment (as the test's own user: it cannot switch to
``runAsUser``), refuses to run a container as root when
``runAsNonRoot`` is set, mounts the pod's PersistentVolumeClaim as a directory, reports the pod Running with pod IP
127.0.0.1 once its port accepts connections, posts Events as it goes, and kills the process when the pod is
deleted. Like a real kubelet it tracks each pod by its uid, not its name: a deleted pod's process and status
updates never touch a later pod of the same name (KubeSpawner replaces a stale pod that way). All pods share
127.0.0.1, so on create the API server maps each pod's named port ``notebook-port`` to a free loopback port (as a
mutating admission webhook may); the kubelet rewrites ``JUPYTERHUB_SERVICE_URL`` to match.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

KINDS = {
    "pods": "Pod",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "events": "Event",
    "services": "Service",
    "secrets": "Secret",
}


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


def _selector(text: str) -> list[tuple[str, str, bool]]:
    out = []
    for term in filter(None, (text or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            out.append((k.strip(), v.strip(), False))
        else:
            k, v = term.split("=", 1)
            out.append((k.strip(), v.strip().lstrip("="), True))
    return out


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
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.history: list[tuple[int, str, str, dict]] = []  # (rv, kind, type, object)
        self.rv = 0
        self.created: list[dict] = []  # every create request body as received (what the hub sent)
        self.requests: list[tuple[str, str]] = []
        self.gpu_hard: dict[str, int] = {}  # namespace -> ResourceQuota requests.nvidia.com/gpu
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
        app = web.Application()
        app.router.add_route("GET", "/api/v1/namespaces/{ns}/{kind}", self.list_or_watch)
        app.router.add_route("POST", "/api/v1/namespaces/{ns}/{kind}", self.create)
        app.router.add_route("GET", "/api/v1/namespaces/{ns}/{kind}/{name}", self.get)
        app.router.add_route("DELETE", "/api/v1/namespaces/{ns}/{kind}/{name}", self.delete)
        app.router.add_route("POST", "/api/v1/namespaces", self.create_namespace)
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

    async def _emit(self, kind: str, etype: str, obj: dict) -> None:
        with self.lock:
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            key = (kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
            if etype == "DELETED":
                self.objects.pop(key, None)
            else:
                self.objects[key] = obj
            self.history.append((self.rv, kind, etype, copy.deepcopy(obj)))
        tick, self._tick = self._tick, asyncio.Event()
        assert tick is not None
        tick.set()

    async def post_event(self, pod: dict, reason: str, message: str, etype: str = "Normal") -> None:
        meta = pod["metadata"]
        name = f"{meta['name']}.{uuid.uuid4().hex[:10]}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now(),
            },
            "involvedObject": {
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "apiVersion": "v1",
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
    def _matches(self, obj: dict, labels: list, fields: list) -> bool:
        obj_labels = obj.get("metadata", {}).get("labels") or {}
        for k, v, eq in labels:
            if (obj_labels.get(k) == v) != eq:
                return False
        for k, v, eq in fields:
            if (str(_get_path(obj, k)) == v) != eq:
                return False
        return True

    async def list_or_watch(self, request: web.Request) -> web.StreamResponse:
        ns, kind = request.match_info["ns"], request.match_info["kind"]
        self.requests.append(("GET", str(request.rel_url)))
        if kind not in KINDS:
            return status(
                404, "NotFound", f"the server could not find the requested resource ({kind})"
            )
        q = request.query
        labels, fields = (
            _selector(q.get("labelSelector", "")),
            _selector(q.get("fieldSelector", "")),
        )
        if q.get("watch", "").lower() in ("true", "1"):
            return await self._watch(request, ns, kind, labels, fields)
        with self.lock:
            items = [
                copy.deepcopy(o)
                for (k, n, _), o in self.objects.items()
                if k == kind and n == ns and self._matches(o, labels, fields)
            ]
            rv = str(self.rv)
        return web.json_response(
            {
                "kind": f"{KINDS[kind]}List",
                "apiVersion": "v1",
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
                        if rv > sent and k == kind and o["metadata"]["namespace"] == ns
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

    async def get(self, request: web.Request) -> web.Response:
        ns, kind, name = (
            request.match_info["ns"],
            request.match_info["kind"],
            request.match_info["name"],
        )
        obj = self.find(kind, ns, name)
        if obj is None:
            return status(404, "NotFound", f'{kind} "{name}" not found')
        return web.json_response(obj)

    async def create_namespace(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(body, status=201)

    async def create(self, request: web.Request) -> web.Response:
        ns, kind = request.match_info["ns"], request.match_info["kind"]
        self.requests.append(("POST", str(request.rel_url)))
        if kind not in KINDS:
            return status(
                404, "NotFound", f"the server could not find the requested resource ({kind})"
            )
        body = await request.json()
        with self.lock:
            self.created.append(copy.deepcopy(body))
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            return status(
                422, "Invalid", f"{KINDS[kind]} is invalid: metadata.name: Required value"
            )
        if self.find(kind, ns, name) is not None:
            return status(409, "AlreadyExists", f'{kind} "{name}" already exists')
        if kind == "pods":
            refusal = self._quota_refusal(ns, body)
            if refusal:
                return status(403, "Forbidden", refusal)
        meta.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=now())
        if kind == "pods":
            body["status"] = {"phase": "Pending", "conditions": [], "qosClass": "Guaranteed"}
            self._map_ports(body)
        elif kind == "persistentvolumeclaims":
            body["status"] = {"phase": "Bound"}
        await self._emit(kind, "ADDED", body)
        if kind == "pods":
            task = asyncio.ensure_future(self._run_pod(ns, name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(self.find(kind, ns, name), status=201)

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
        ns, kind, name = (
            request.match_info["ns"],
            request.match_info["kind"],
            request.match_info["name"],
        )
        self.requests.append(("DELETE", str(request.rel_url)))
        obj = self.find(kind, ns, name)
        if obj is None:
            return status(404, "NotFound", f'{kind} "{name}" not found')
        if kind == "pods":
            obj["metadata"]["deletionTimestamp"] = now()
            await self._emit(kind, "MODIFIED", obj)
            task = asyncio.ensure_future(self._terminate_pod(ns, name, obj["metadata"]["uid"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return web.json_response(self.find(kind, ns, name) or obj)
        await self._emit(kind, "DELETED", obj)
        return web.json_response(obj)

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
        await self._emit("pods", "MODIFIED", pod)
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
            p["containerPort"]
            for p in container.get("ports", [])
            if p.get("name") == "notebook-port"
        )
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        env["JUPYTERHUB_SERVICE_URL"] = env.get(
            "JUPYTERHUB_SERVICE_URL", "http://0.0.0.0:8888/"
        ).replace("0.0.0.0:8888", f"127.0.0.1:{port}")
        home = self._mount_home(pod)
        proc_env = {
            # the image's tools (jupyter, jupyterhub-singleuser) are on its PATH: this interpreter's
            "PATH": os.pathsep.join([os.path.dirname(sys.executable),
                                     os.environ.get("PATH", "/usr/bin:/bin")]),
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
        # readiness: a TCP probe on the notebook port
        while proc.returncode is None:
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
            proc.kill()
            await proc.wait()
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
