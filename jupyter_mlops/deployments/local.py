"""The ``local`` deployment target: scoring processes on this machine, supervised by the
Jupyter server.

Each deployment has a router process on a stable port (its URL, see :mod:`.router`) and
``replicas`` scoring processes (``python -m jupyter_mlops.registry.serve``) on ports of their
own. All run in their own session, so they outlive the Jupyter server when
``DeploymentService.stop_on_exit`` is off; their pids, ports and start times are recorded in
the deployment's ``state`` so the next server re-adopts them (a pid is only taken back if its
start time is the recorded one: a reused pid is not ours).

Supervision: every ``health_interval`` each process is checked (alive, and the scoring
processes' ``/v2/health/ready``); a dead one, or one failing its check three times in a row, is
replaced after a backoff that doubles on every failure (reset once a process stayed up for
30 s). A rollout starts the new version's processes, waits until they are ready, switches the
router to them, then lets the old ones drain and stop. A canary starts the new version's
processes beside the served ones and gives them a weight in the router (its share of the
requests); promote makes them the served ones, rollback drains them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._process import alive
from ..targets import LOCAL, Target, TargetContext
from ..tracking.errors import TrackingError
from .metrics import ServingSet, scrape

if TYPE_CHECKING:
    from .service import DeploymentService

#: Seconds a process must stay up for its deployment's restart backoff to start over.
STABLE_SECONDS = 30.0
#: Failed health checks in a row before a live scoring process is replaced.
UNHEALTHY_AFTER = 3


class RolloutFailed(Exception):
    """New processes did not become ready (the message says why, with their log's tail)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_time(pid: int) -> str | None:
    """The process' start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


@dataclass
class Proc:
    """A process of a deployment (the router or a scoring process)."""

    pid: int
    port: int
    start: str | None
    log: str
    version: str | None = None
    uri: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = field(default_factory=time.monotonic)
    bad_checks: int = 0
    #: ``main`` (the served version) or ``canary`` (a canary rollout's version).
    track: str = "main"

    def running(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return alive(self.pid) and start_time(self.pid) == self.start

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "port": self.port,
            "start": self.start,
            "log": self.log,
            "version": self.version,
            "uri": self.uri,
            "track": self.track,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Proc:
        return cls(
            int(d["pid"]),
            int(d["port"]),
            d.get("start"),
            str(d.get("log") or ""),
            d.get("version"),
            d.get("uri"),
            track=str(d.get("track") or "main"),
        )


@dataclass
class Running:
    """What the target keeps of one deployment while it supervises it."""

    name: str
    token: str
    router: Proc | None = None
    replicas: list[Proc] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0
    next_restart: float = 0.0
    #: What should run: the served URI and version, and how many scoring processes.
    uri: str | None = None
    version: str | None = None
    desired: int = 1
    #: A warm spare: a scoring process with the served model's imports done, waiting on its
    #: stdin for the next version to serve (DeploymentService.warm_spare).
    spare: Proc | None = None
    #: A canary rollout: ``{"uri", "version", "percent", "desired"}`` (its processes are the
    #: replicas of track ``canary``; the router gives them ``percent`` of the requests).
    canary: dict[str, Any] | None = None

    def track(self, name: str) -> list[Proc]:
        return [p for p in self.replicas if p.track == name]

    def wants(self) -> list[tuple[str, str | None, str | None, int]]:
        """``(track, uri, version, processes)`` of what should run."""
        out = [("main", self.uri, self.version, self.desired)]
        if self.canary is not None:
            c = self.canary
            out.append(("canary", c["uri"], c.get("version"), int(c["desired"])))
        return out

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "token": self.token,
            "host": socket.gethostname(),
            "router": self.router.to_json() if self.router else None,
            "replicas": [p.to_json() for p in self.replicas],
            "spare": self.spare.pid if self.spare is not None else None,
        }
        c = self.canary
        if c is not None:  # what the service shows and acts on (as a cluster target's)
            out["canary"] = c
            out["memo"] = {
                "canary": {
                    "version": c.get("version"),
                    "model_uri": c["uri"],
                    "percent": c["percent"],
                }
            }
            out["traffic"] = [
                {
                    "version": self.version,
                    "model_uri": self.uri,
                    "percent": 100 - int(c["percent"]),
                    "replicas": len(self.track("main")),
                },
                {
                    "version": c.get("version"),
                    "model_uri": c["uri"],
                    "percent": int(c["percent"]),
                    "replicas": len(self.track("canary")),
                },
            ]
        return out


@dataclass
class DeploymentItem:
    """A deployment as the service hands it to a target: ``id`` is its name, ``ref`` where it
    runs (local: ``host:<router pid>``), ``row`` its stored record; for a submit, the resolved
    URI and version to serve and why (``create``, ``update``, ``rollback``, ``follow``,
    ``restart``)."""

    id: str
    target: str
    ref: str | None
    row: dict[str, Any]
    uri: str | None = None
    version: str | None = None
    action: str = "restart"
    #: A canary rollout: the share of the requests (1-99) the new version gets.
    canary: int | None = None


class DeploymentContext(TargetContext[DeploymentItem]):
    """What a deployment target may do (jupyter_mlops/targets.py): record the deployment's
    state (``transition``, ``record``), where it runs (``set_ref``), keep logs, and say that
    traffic moved to a version (``switched``: history and registry tags)."""

    def __init__(
        self,
        service: DeploymentService,
        switched: Callable[[dict[str, Any], str | None, str, str, str], Awaitable[None]],
    ) -> None:
        self.svc = service
        self.store = service.store
        self.log = service.log  # type: ignore[assignment]
        #: switched(row, version, served_uri, url, action): traffic moved (history, tags)
        self.switched = switched

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.svc.call(fn, *args, **kwargs)

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        """The tags of a registered model version (blocking: use :meth:`call`)."""
        mv = self.svc._registry().get_model_version(name, version)
        return {t["key"]: t["value"] for t in mv.get("tags") or []}

    async def record(self, name: str, **values: Any) -> None:
        """Update the deployment's stored columns (status, reason, url, state, ...); a
        FAILED status outside a rollout is told (the service's ``status_recorded``)."""
        await self.svc.call(self.svc.db.update, name, **values)
        if "status" in values:
            self.svc.status_recorded(name, values["status"], values.get("reason"))

    async def transition(
        self, item: DeploymentItem, status: str | None, *, reason: str | None = None, **fields: Any
    ) -> bool:
        """A new status (its ``reason`` replaces the last; ``status`` None: only ``fields``,
        and ``reason`` when given). Deployments do not end, so this always records."""
        values = dict(fields)
        if status is not None:
            values.update(status=status, reason=reason)
        elif reason is not None:
            values["reason"] = reason
        await self.record(item.id, **values)
        return True

    async def observed(
        self,
        item: DeploymentItem,
        generation: int,
        status: str | None,
        *,
        reason: str | None = None,
        **fields: Any,
    ) -> bool:
        """:meth:`transition` for what a target saw outside a rollout: written only while
        no rollout is under way and none started since ``generation`` (a status read
        before a request started one must not stand for its outcome). False: not written."""
        values = dict(fields)
        if status is not None:
            values.update(status=status, reason=reason)
        elif reason is not None:
            values["reason"] = reason
        return bool(await self.call(self.svc.db.update_observed, item.id, generation, **values))

    async def set_ref(self, item: DeploymentItem, ref: str) -> None:
        item.ref = ref
        await self.record(item.id, owner=ref)

    async def append_log(
        self, item: DeploymentItem, data: bytes, *, part: str | None = None
    ) -> None:
        path = os.path.join(self.svc.deployments_dir, item.id, f"{part or 'deployment'}.log")

        def write() -> None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "ab") as f:
                f.write(data)

        await self.call(write)

    def create_child_run(
        self, item: DeploymentItem, name: str, *, tags: Any = None, params: Any = None
    ) -> str:
        raise TrackingError(
            "A deployment has no tracked run to add child runs to.", "NOT_IMPLEMENTED"
        )


class LocalTarget(Target[DeploymentItem, DeploymentContext]):
    """Deployments as processes on this machine (see the module's docstring)."""

    kind = "local"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "canary": True}

    def __init__(self, service: DeploymentService, ctx: DeploymentContext) -> None:
        super().__init__(LOCAL, "This machine (processes supervised by the Jupyter server)")
        self.svc = service
        #: The service's context (the same one it passes to every call).
        self.ctx = ctx
        self.running: dict[str, Running] = {}
        #: Whether :meth:`stop` leaves the processes serving (DeploymentService.stop_on_exit).
        self.keep_running = False
        self._closing = False
        #: Replaced processes finishing their requests (after a rollout).
        self._draining: set[asyncio.Task[None]] = set()

    # -- processes --------------------------------------------------------------------------
    def _dir(self, name: str) -> str:
        d = os.path.join(self.svc.deployments_dir, name)
        os.makedirs(d, exist_ok=True)
        return d

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(
        self, name: str, kind: str, args: list[str], env: dict[str, str], stdin: int | None = None
    ) -> Proc:
        d = self._dir(name)
        log = os.path.join(d, f"{kind}.log")
        with open(log, "ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(args[2:])}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                env=env,
                cwd=d,
                start_new_session=True,
            )
        return Proc(popen.pid, 0, start_time(popen.pid), log, popen=popen)

    def _model_dir(self, name: str, uri: str) -> str:
        """A local directory with the model of ``uri`` (blocking: run in a thread). Stored
        models are copied once per deployment and version, so scoring processes load a
        directory: they neither open the database nor import its driver (a faster start, and
        a restart that does not depend on the store)."""
        import re
        import shutil
        import tempfile

        from ..registry.api import download_model

        if os.path.isdir(uri):
            return uri
        root = os.path.join(self._dir(name), "models")
        target = os.path.join(root, re.sub(r"[^A-Za-z0-9_.-]+", "_", uri).strip("_"))
        if os.path.isfile(os.path.join(target, "MLmodel")):
            return target
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".download-", dir=root)
        try:
            local = download_model(uri, tmp, self.svc.store.uri)
            if os.path.realpath(local) != os.path.realpath(tmp):
                return str(local)  # already a directory on this machine
            os.replace(tmp, target)
            return target
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def _local_model(self, name: str, uri: str) -> str:
        from ..tracking.errors import TrackingError

        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, self._model_dir, name, uri
            )
        except (TrackingError, OSError) as e:
            raise RolloutFailed(f"cannot read the model {uri}: {e}") from None

    def _start_spare(self, run: Running, dep: dict[str, Any], model_dir: str) -> None:
        """Keep a warm spare for the deployment's next rollout or restart: a scoring process
        that loaded ``model_dir`` (the served version) to import what it needs, then waits
        (``--standby``). Its stdin is our pipe: it exits when this server does."""
        if not self.svc.warm_spare or self._closing:
            return
        if run.spare is not None and run.spare.running():
            return
        args = [
            self.svc.python or sys.executable,
            "-m",
            "jupyter_mlops.registry.serve",
            model_dir,
            "--model-name",
            dep["name"],
            "--standby",
        ]
        run.spare = self._spawn(dep["name"], "scoring", args, self._env(), stdin=subprocess.PIPE)

    def _take_spare(self, run: Running | None, cmd: dict[str, Any]) -> Proc | None:
        """The deployment's spare, told what to serve (None: there is none, or it died)."""
        import json

        spare = run.spare if run is not None else None
        if run is not None:
            run.spare = None
        if spare is None or spare.popen is None or spare.popen.stdin is None:
            return None
        if not spare.running():
            spare.popen.poll()
            return None
        try:
            spare.popen.stdin.write((json.dumps(cmd) + "\n").encode())
            spare.popen.stdin.close()
        except OSError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(spare.pid, signal.SIGKILL)
            return None
        spare.started_at = time.monotonic()
        return spare

    def _start_scoring(
        self, dep: dict[str, Any], uri: str, version: str | None, model_dir: str
    ) -> Proc:
        port = free_port()
        spare = self._take_spare(
            self.running.get(dep["name"]),
            {
                "model_uri": model_dir,
                "port": port,
                "model_name": dep["name"],
                "model_version": version,
                "max_body_size": self.svc.max_body_size,
            },
        )
        if spare is not None:
            spare.port, spare.version, spare.uri = port, version, uri
            return spare
        args = [
            self.svc.python or sys.executable,
            "-m",
            "jupyter_mlops.registry.serve",
            model_dir,
            "--port",
            str(port),
            "--model-name",
            dep["name"],
            "--max-body-size",
            str(self.svc.max_body_size),
        ]
        if version:
            args += ["--model-version", version]
        p = self._spawn(dep["name"], "scoring", args, self._env())
        p.port, p.version, p.uri = port, version, uri
        return p

    def _start_router(self, run: Running, port: int) -> Proc:
        args = [
            self.svc.python or sys.executable,
            "-m",
            "jupyter_mlops.deployments.router",
            "--name",
            run.name,
            "--port",
            str(port),
            "--max-body-size",
            str(self.svc.max_body_size),
        ]
        for r in run.track("main"):
            args += ["--backend", f"127.0.0.1:{r.port}"]
        env = self._env()
        env["JUPYTER_MLOPS_ROUTER_TOKEN"] = run.token
        p = self._spawn(run.name, "router", args, env)
        p.port = port
        return p

    async def _http(
        self,
        method: str,
        port: int,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 2.0,
    ) -> int:
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest

        req = HTTPRequest(
            f"http://127.0.0.1:{port}{path}",
            method=method,
            body=body,
            headers=headers,
            request_timeout=timeout,
            connect_timeout=timeout,
        )
        try:
            r = await AsyncHTTPClient().fetch(req, raise_error=False)
        except Exception:  # noqa: BLE001 - not answering is the answer
            return 0
        return int(r.code)

    async def _wait_ready(self, procs: list[Proc], path: str) -> None:
        deadline = time.monotonic() + self.svc.ready_timeout
        pending = list(procs)
        while pending:
            for p in list(pending):
                if not p.running():
                    raise RolloutFailed(
                        f"the process exited (code {p.exit_code()}) before it "
                        f"was ready: {_tail(p.log)}"
                    )
                if await self._http("GET", p.port, path) == 200:
                    pending.remove(p)
            if pending:
                if time.monotonic() > deadline:
                    raise RolloutFailed(
                        f"not ready after {self.svc.ready_timeout:.0f} s "
                        f"(DeploymentService.ready_timeout): "
                        f"{_tail(pending[0].log)}"
                    )
                await asyncio.sleep(0.02)

    async def _stop(self, procs: list[Proc], graceful: bool = True) -> None:
        """SIGTERM (scoring processes drain their requests), SIGKILL after the drain timeout."""
        for p in procs:
            if p.running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        deadline = time.monotonic() + (self.svc.drain_timeout if graceful else 5)
        while any(p.running() for p in procs):
            if time.monotonic() > deadline:
                for p in procs:
                    if p.running():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(p.pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
            await asyncio.sleep(0.02)

    async def _switch(self, run: Running) -> None:
        """Point the router at ``run.replicas`` (the call returns once it routes there)."""
        import json

        assert run.router is not None

        def addresses(procs: list[Proc]) -> list[str]:
            return [f"127.0.0.1:{r.port}" for r in procs]

        if run.canary is None:
            doc: dict[str, Any] = {"backends": addresses(run.replicas)}
        else:
            share = int(run.canary["percent"])
            doc = {
                "groups": [
                    {"backends": addresses(run.track("main")), "weight": 100 - share},
                    {"backends": addresses(run.track("canary")), "weight": share},
                ]
            }
        body = json.dumps(doc).encode()
        code = await self._http(
            "PUT",
            run.router.port,
            "/_mlops/router",
            body,
            {"X-MLOps-Router-Token": run.token, "Content-Type": "application/json"},
            timeout=10,
        )
        if code != 200:
            raise RolloutFailed(
                f"the router on port {run.router.port} refused the switch (HTTP {code})"
            )

    async def _ensure_router(self, run: Running, dep: dict[str, Any]) -> str:
        """The router running (started on the deployment's port if it has one): its URL."""
        if run.router is not None and run.router.running():
            return _url(run.router.port)
        port = _port_of(dep.get("url")) or free_port()
        for attempt in range(2):
            router = self._start_router(run, port)
            try:
                await self._wait_ready([router], "/_mlops/router")
            except RolloutFailed as e:
                await self._stop([router], graceful=False)
                if attempt == 0 and "cannot listen" in _tail(router.log):
                    self.ctx.log.warning(
                        "jupyter-mlops: deployment %s: port %d is taken, its URL changes",
                        run.name,
                        port,
                    )
                    port = free_port()
                    continue
                raise RolloutFailed(f"the router did not start: {e}") from None
            run.router = router
            return _url(port)
        raise RolloutFailed("the router did not start")  # pragma: no cover

    # -- the target interface ---------------------------------------------------------------
    async def submit(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        """Serve ``item.uri`` (version ``item.version``): start, or roll out with no failed
        request. Raises :class:`RolloutFailed` (the old version keeps serving)."""
        self.ctx = ctx
        dep, uri, version, action = item.row, item.uri, item.version, item.action
        assert uri is not None
        run = self._running(dep)
        if item.canary is not None:
            await self._canary(item, run)
            return
        async with run.lock:
            url = await self._ensure_router(run, dep)
            old = run.replicas
            model_dir = await self._local_model(dep["name"], uri)
            new = [
                self._start_scoring(dep, uri, version, model_dir) for _ in range(dep["replicas"])
            ]
            try:
                await self._wait_ready(new, "/v2/health/ready")
            except RolloutFailed:
                await self._stop(new, graceful=False)
                raise
            run.replicas = new
            canary = run.canary
            run.uri, run.version, run.desired = uri, version, int(dep["replicas"])
            run.canary = None  # an update replaces a canary too
            try:
                await self._switch(run)
            except RolloutFailed:
                run.replicas, run.canary = old, canary
                await self._stop(new, graceful=False)
                raise
            run.failures = 0
            self._start_spare(run, dep, model_dir)
            await ctx.transition(item, None, state=run.state(), url=url)
            await ctx.set_ref(item, _owner(run))
            await ctx.switched(dep, version, uri, url, action)
            self._watch(run, dep)
            # all traffic is on the new version: READY now, the old processes drain meanwhile
            await ctx.transition(item, "READY")
            self._drain(old)

    async def _canary(self, item: DeploymentItem, run: Running) -> None:
        """Start ``item.uri`` beside the served version and give it ``item.canary`` percent
        of the requests (a canary already there is replaced)."""
        dep, uri, version = item.row, item.uri, item.version
        assert uri is not None and item.canary is not None
        async with run.lock:
            if run.uri is None or not run.track("main"):
                raise RolloutFailed("a canary needs a version that serves already")
            url = await self._ensure_router(run, dep)
            model_dir = await self._local_model(dep["name"], uri)
            count = canary_replicas(int(dep["replicas"]), item.canary)
            new = [self._start_scoring(dep, uri, version, model_dir) for _ in range(count)]
            for p in new:
                p.track = "canary"
            try:
                await self._wait_ready(new, "/v2/health/ready")
            except RolloutFailed:
                await self._stop(new, graceful=False)
                raise
            old, canary = run.track("canary"), run.canary
            run.replicas = run.track("main") + new
            run.canary = {"uri": uri, "version": version, "percent": item.canary, "desired": count}
            try:
                await self._switch(run)
            except RolloutFailed:
                run.replicas, run.canary = run.track("main") + old, canary
                await self._stop(new, graceful=False)
                raise
            self._start_spare(run, dep, model_dir)
            await self.ctx.transition(item, None, state=run.state(), url=url)
            await self.ctx.transition(item, "READY")
            self._drain(old)

    async def promote(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        """The canary's version gets all the traffic: its processes (and more, up to the
        replicas) become the served ones; the others drain and stop."""
        run = self.running.get(item.id)
        if run is None or run.canary is None:
            raise RolloutFailed("no canary runs")
        dep = item.row
        async with run.lock:
            c = run.canary
            keep = run.track("canary")
            model_dir = await self._local_model(dep["name"], c["uri"])
            more = [
                self._start_scoring(dep, c["uri"], c.get("version"), model_dir)
                for _ in range(run.desired - len(keep))
            ]
            try:
                await self._wait_ready(more, "/v2/health/ready")
            except RolloutFailed:
                await self._stop(more, graceful=False)
                raise
            old = run.track("main")
            for p in keep + more:
                p.track = "main"
            run.replicas = keep + more
            run.uri, run.version, run.canary = c["uri"], c.get("version"), None
            await self._switch(run)
            url = dep.get("url") or ""
            await ctx.transition(item, None, state=run.state())
            await ctx.switched(dep, run.version, run.uri, url, "promote")
            await ctx.transition(item, "READY")
            self._drain(old)

    async def abort(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        """The canary gets no more requests; its processes drain and stop."""
        run = self.running.get(item.id)
        if run is None or run.canary is None:
            raise RolloutFailed("no canary runs")
        async with run.lock:
            old = run.track("canary")
            run.replicas, run.canary = run.track("main"), None
            await self._switch(run)
            await ctx.transition(item, None, state=run.state())
            await ctx.transition(item, "READY")
            self._drain(old)

    def _drain(self, procs: list[Proc]) -> None:
        """Let replaced processes finish their requests and stop, meanwhile."""
        if procs:
            task = asyncio.ensure_future(self._stop(procs))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)

    async def attach(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        """Take back the processes a previous server left running, or start the deployment
        again (on its URL) when they are gone."""
        self.ctx = ctx
        dep = item.row
        state = dep.get("state") or {}
        run = self._running(dep, state.get("token"))
        router = Proc.from_json(state["router"]) if state.get("router") else None
        replicas = [Proc.from_json(r) for r in state.get("replicas") or []]
        if router is not None and router.running():
            run.router = router
        else:
            router = None
        kept = [r for r in replicas if r.running()]
        run.replicas = kept
        known = {p.pid for p in kept} | ({router.pid} if router is not None else set())
        await self._stop(self._orphans(dep["name"], known), graceful=False)
        run.uri, run.version = dep.get("served_uri"), dep.get("model_version")
        run.desired = int(dep["replicas"])
        run.canary = state.get("canary")
        if router is not None and kept:
            self.ctx.log.info(
                "jupyter-mlops: deployment %s re-adopted (router pid %d, scoring pid(s) %s)",
                dep["name"],
                router.pid,
                ", ".join(str(r.pid) for r in kept),
            )
            # a server that died mid-rollout left UPDATING behind: what runs now is what serves
            status = None if dep.get("status") in ("READY", "FAILED") else "READY"
            if run.uri is not None:
                with contextlib.suppress(RolloutFailed):
                    self._start_spare(run, dep, await self._local_model(dep["name"], run.uri))
            await ctx.transition(item, status, state=run.state())
            await ctx.set_ref(item, _owner(run))
            self._watch(run, dep)
            return
        if dep.get("served_uri"):
            await self._stop(kept, graceful=False)
            run.replicas, run.canary = [], None
            await ctx.transition(item, "STARTING")
            item.uri, item.version, item.action = (
                dep["served_uri"],
                dep.get("model_version"),
                "restart",
            )
            await self.submit(item, ctx)

    def _orphans(self, name: str, known: set[int]) -> list[Proc]:
        """Processes of this deployment that its record does not name: started by a server
        that died before recording them (mid-rollout). Found by their working directory,
        the deployment's own, and their command line."""
        d = os.path.realpath(self._dir(name))
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in known or int(entry) == os.getpid():
                continue
            try:
                if os.readlink(f"/proc/{entry}/cwd") != d:
                    continue
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if (
                b"jupyter_mlops.registry.serve" in args
                or b"jupyter_mlops.deployments.router" in args
            ):
                pid = int(entry)
                out.append(Proc(pid, 0, start_time(pid), ""))
        if out:
            self.ctx.log.warning(
                "jupyter-mlops: deployment %s: stopping %d process(es) a "
                "previous server started but did not record: %s",
                name,
                len(out),
                ", ".join(str(p.pid) for p in out),
            )
        return out

    async def cancel(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        """Stop the deployment's processes (its router first, then the scoring processes)."""
        dep = item.row
        run = self.running.pop(dep["name"], None)
        if run is None:
            run = self._running(dep)
            self.running.pop(dep["name"], None)
            state = dep.get("state") or {}
            run.router = Proc.from_json(state["router"]) if state.get("router") else None
            run.replicas = [Proc.from_json(r) for r in state.get("replicas") or []]
        watcher = self.watchers.get(item.id)
        if watcher is not None:
            watcher.cancel()
        async with run.lock:
            procs = ([run.router] if run.router else []) + run.replicas
            procs += [run.spare] if run.spare is not None else []
            await self._stop([p for p in procs if p.running()], graceful=False)
        import shutil

        shutil.rmtree(
            os.path.join(self.svc.deployments_dir, dep["name"], "models"), ignore_errors=True
        )

    async def serving(self, item: DeploymentItem) -> list[ServingSet]:
        """What serves now, its ``/metrics`` scraped: one version gets all the traffic (a
        rollout switches it at once)."""
        run = self.running.get(item.id)
        if run is not None:
            procs, uri, version, canary = list(run.replicas), run.uri, run.version, run.canary
        else:  # not supervised by this server (yet): what its record says
            state = item.row.get("state") or {}
            procs = [Proc.from_json(r) for r in state.get("replicas") or []]
            uri, version = item.row.get("served_uri"), item.row.get("model_version")
            canary = state.get("canary")
        if uri is None:
            return []
        share = int(canary["percent"]) if canary else 0
        out = []
        for track, u, v, percent in (
            ("main", uri, version, 100 - share),
            *([("canary", canary["uri"], canary.get("version"), share)] if canary else []),
        ):
            mine = [p for p in procs if p.track == track]
            texts = await scrape(_url(p.port) for p in mine if p.port)
            out.append(ServingSet(v, u, percent, len(mine), texts))
        return out

    async def logs(self, item: DeploymentItem, *, part: str | None = None) -> bytes | None:
        """The processes' logs (``part``: ``scoring`` or ``router``; None: both, headed)."""
        d = os.path.join(self.svc.deployments_dir, item.id)

        def read() -> bytes | None:
            out = []
            for kind in (part,) if part else ("scoring", "router"):
                path = os.path.join(d, f"{kind}.log")
                if os.path.isfile(path):
                    with open(path, "rb") as f:
                        data = f.read()
                    out.append(data if part else f"==> {kind}.log <==\n".encode() + data)
            return b"\n".join(out) if out else None

        return await asyncio.get_running_loop().run_in_executor(None, read)

    async def stop(self) -> None:
        """The server stops: stop watching; stop the processes too unless
        :attr:`keep_running`."""
        self._closing = True
        await self.watchers.stop()
        if self._draining:
            await asyncio.wait(list(self._draining), timeout=self.svc.drain_timeout + 10)
        spares = [r.spare for r in self.running.values() if r.spare is not None]
        await self._stop([p for p in spares if p.running()], graceful=False)
        if not self.keep_running:
            for run in list(self.running.values()):
                procs = ([run.router] if run.router else []) + run.replicas
                await self._stop([p for p in procs if p.running()])
        for run in self.running.values():
            for p in ([run.router] if run.router else []) + run.replicas:
                if p.popen is not None:  # reap what exited; the rest live on in their session
                    p.popen.poll()

    # -- supervision ------------------------------------------------------------------------
    def _running(self, dep: dict[str, Any], token: str | None = None) -> Running:
        run = self.running.get(dep["name"])
        if run is None:
            token = token or (dep.get("state") or {}).get("token") or secrets.token_hex(16)
            run = self.running[dep["name"]] = Running(dep["name"], token)
        return run

    def _watch(self, run: Running, dep: dict[str, Any]) -> None:
        row = dict(dep)
        self.watchers.start(run.name, lambda: self._supervise(run, row))

    async def _supervise(self, run: Running, dep: dict[str, Any]) -> None:
        while not self._closing:
            await asyncio.sleep(self.svc.health_interval)
            try:
                async with run.lock:
                    await self._check(run, dep)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep supervising; say what failed
                self.ctx.log.warning("jupyter-mlops: deployment %s: %s", run.name, e)
                await self.ctx.record(run.name, status="RESTARTING", reason=str(e))

    async def _check(self, run: Running, dep: dict[str, Any]) -> None:
        bad: list[tuple[Proc, str]] = []
        for p in run.replicas:
            if not p.running():
                code = p.exit_code()
                how = f" with code {code}" if code is not None else ""
                bad.append((p, f"the scoring process (pid {p.pid}) exited{how}"))
            elif await self._http("GET", p.port, "/v2/health/ready") != 200:
                p.bad_checks += 1
                if p.bad_checks >= UNHEALTHY_AFTER:
                    bad.append(
                        (
                            p,
                            f"the scoring process (pid {p.pid}) failed "
                            f"{p.bad_checks} health checks",
                        )
                    )
            else:
                p.bad_checks = 0
        router_down = run.router is None or not run.router.running()
        dead_ids = {id(p) for p, _ in bad}
        short = {
            track: want - sum(1 for p in run.track(track) if id(p) not in dead_ids)
            for track, _, _, want in run.wants()
        }
        missing = sum(max(0, n) for n in short.values())
        if not bad and not router_down and (missing <= 0 or run.uri is None):
            return
        now = time.monotonic()
        if run.failures and now < run.next_restart:
            return
        stable = bool(bad) and all(now - p.started_at > STABLE_SECONDS for p, _ in bad)
        run.failures = 1 if stable else run.failures + 1
        delay = min(
            self.svc.restart_backoff * 2 ** (run.failures - 1), self.svc.restart_backoff_max
        )
        run.next_restart = now + delay
        why = "; ".join(w for _, w in bad) or (
            "the router exited" if router_down else f"{missing} scoring process(es) missing"
        )
        self.ctx.log.warning(
            "jupyter-mlops: deployment %s: %s; restarting (failure %d in a "
            "row, next retry in %.1f s)",
            run.name,
            why,
            run.failures,
            delay,
        )
        status = "FAILED" if run.failures >= 5 else "RESTARTING"
        detail = _tail(bad[0][0].log, 400) if bad else ""
        await self.ctx.record(
            run.name,
            status=status,
            reason=(
                f"{why}; restarting (failure {run.failures} in a row)"
                + (f": {detail}" if detail else "")
            ),
        )
        dead = {id(p) for p, _ in bad}
        await self._stop([p for p, _ in bad], graceful=False)
        run.replicas = [p for p in run.replicas if id(p) not in dead]
        if router_down:
            run.router = None
            url = await self._ensure_router(run, dep)
            if url != dep.get("url"):
                dep["url"] = url
                await self.ctx.record(run.name, url=url)
        if missing > 0 and run.uri is not None:
            for track, uri, version, _ in run.wants():
                if short[track] <= 0 or uri is None:
                    continue
                model_dir = await self._local_model(run.name, uri)
                new = [
                    self._start_scoring(dep, uri, version, model_dir) for _ in range(short[track])
                ]
                for p in new:
                    p.track = track
                try:
                    await self._wait_ready(new, "/v2/health/ready")
                except RolloutFailed:
                    await self._stop(new, graceful=False)
                    raise
                run.replicas += new
                self._start_spare(run, dep, model_dir)
        await self._switch(run)
        await self.ctx.record(run.name, state=run.state(), status="READY", reason=None)


def canary_replicas(replicas: int, percent: int) -> int:
    """Scoring processes of a canary: its share of the replicas, at least one (the router's
    weights, not the process counts, split the requests)."""
    return max(1, min(replicas, round(replicas * percent / 100)))


def _owner(run: Running) -> str:
    """Where a local deployment runs: ``host:<router pid>``."""
    return f"{socket.gethostname()}:{run.router.pid if run.router else 0}"


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _port_of(url: str | None) -> int | None:
    if not url:
        return None
    tail = url.rstrip("/").rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _tail(path: str, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
