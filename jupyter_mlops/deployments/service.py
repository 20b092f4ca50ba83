"""``DeploymentService``: named, persistent model services, handed to a target.

A deployment is a row of the ``deployments`` table (model URI as given — a version, a stage
or an alias —, target, replicas, resources, status, URL, whether it follows its alias) plus
the history of the versions it served. The service validates, persists and hands the work to
the target (``local``: :class:`.local.LocalTarget`). Rollouts, restarts and deletion of one
deployment never overlap (one lock each). A deployment that follows its alias is rolled to
the alias' new version when the alias moves (checked every ``follow_interval`` seconds: kernels
may move it straight in the database). The registered version being served carries the tag
``mlops.deployment.<name>`` (its URL), so the registry shows where a version is deployed.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Dict, Float, Int, Unicode, default

from ..events import Event
from ..services import Service
from ..targets import LOCAL, build_targets, register_target_kind, unknown_target
from ..tracking.errors import TrackingError, invalid, not_found
from .db import DeploymentDB, now_ms
from .local import DeploymentContext, DeploymentItem, LocalTarget, RolloutFailed
from .metrics import summarize

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore

register_target_kind("deployments", "kserve", "jupyter_mlops.deployments.kserve:KServeTarget")
register_target_kind(
    "deployments", "kubernetes", "jupyter_mlops.deployments.kubeapps:KubeAppsTarget"
)

NAME_RE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
#: Model version tag naming where the version is deployed (value: the URL).
DEPLOYED_TAG = "mlops.deployment."
STATUSES = ("PENDING", "STARTING", "READY", "UPDATING", "RESTARTING", "FAILED", "STOPPED")
MAX_REPLICAS = 16


class Conflict(TrackingError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "RESOURCE_CONFLICT")


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(registered name or "", version-ish, alias)`` of a ``models:/`` URI (``("", None,
    None)`` for other URIs)."""
    m = re.fullmatch(r"models:/([^/@]+)@([^/]+)/?", uri)
    if m:
        return m.group(1), None, m.group(2)
    m = re.fullmatch(r"models:/([^/@]+)/([^/]+)/?", uri)
    if m and not m.group(1).startswith("m-"):
        return m.group(1), m.group(2), None
    return "", None, None


class DeploymentService(Service):
    """Model deployments: local scoring processes supervised by this server."""

    deployments_dir = Unicode(
        config=True,
        help="""Where local deployments keep their process logs
        (default: ``<jupyter data dir>/mlops/deployments``).""",
    )
    stop_on_exit = Bool(
        True,
        config=True,
        help="""Stop the local deployments' processes when the Jupyter server stops (they start
        again with the next server). False: they keep serving while no server runs, and the
        next server re-adopts them (not restarted, not duplicated).""",
    )
    health_interval = Float(
        1.0,
        config=True,
        help="""Seconds between health checks of a local deployment's processes (alive, and
        ``/v2/health/ready`` answering); a dead process, or one failing three checks in a row,
        is replaced.""",
    )
    restart_backoff = Float(
        0.5,
        config=True,
        help="""Seconds before the first restart of a crashed scoring process; doubled on each
        further failure in a row (a process that stayed up 30 s starts the count over).""",
    )
    restart_backoff_max = Float(
        30.0,
        config=True,
        help="Longest wait between restarts of a crashing deployment.",
    )
    ready_timeout = Float(
        120.0,
        config=True,
        help="""Seconds a new scoring process has to load its model and answer
        ``/v2/health/ready`` before its rollout fails (the old version keeps serving).""",
    )
    drain_timeout = Float(
        30.0,
        config=True,
        help="""Seconds a replaced scoring process may take to finish the requests it holds
        before it is killed.""",
    )
    follow_interval = Float(
        2.0,
        config=True,
        help="""Seconds between checks of the aliases that deployments follow (a moved alias
        rolls its deployments to the alias' new version).""",
    )
    max_body_size = Int(
        20 * 1024 * 1024,
        config=True,
        help="""Largest request body a deployment accepts, in bytes (larger ones get 413
        before they are read).""",
    )
    python = Unicode(
        "",
        config=True,
        help="Python interpreter of the scoring processes (default: the server's own).",
    )
    warm_spare = Bool(
        True,
        config=True,
        help="""Keep one warm spare scoring process per local deployment: started after each
        rollout with the served model's imports done (numpy, pandas, its flavor's library),
        it serves the next version (or replaces a crashed process) after loading only the
        model, so a rollout takes well under the seconds of a cold start. Costs one idle
        process' memory per deployment. False: every rollout starts a fresh interpreter.""",
    )
    targets = Dict(
        config=True,
        help="""Kubernetes clusters deployments can go to, by target name (``local``, this
        machine, is always there), e.g. ``{"kserve": {"kind": "kserve", "api_url":
        "https://k8s.example:6443", "namespace": "models", "token_path": "/var/run/token"},
        "plain": {"kind": "kubernetes", "namespace": "models", "service_type": "ClusterIP",
        "max_replicas": 5}}``. ``kind``: ``kserve`` (a KServe InferenceService with a
        custom-container predictor; settings ``deployment_mode`` Knative|Standard,
        ``scale_to_zero``, ``max_replicas``) or ``kubernetes`` (Deployment + Service + HPA;
        ``service_type`` ClusterIP|NodePort|LoadBalancer, ``service_port``, ``node_address``,
        ``max_replicas``, ``cpu_utilization``, ``cluster_domain``). Both: the cluster's
        ``api_url``, ``namespace``, ``token``/``token_path``, ``ca_cert``, ``verify_tls``,
        ``request_timeout`` (in a pod: its service account by default), ``image`` (template
        with {name}, {version}, {deployment}, used when the model version has no
        ``mlops.image`` tag), ``image_pull_policy``, ``image_pull_secrets``,
        ``service_account``, ``env``, ``ready_timeout`` (600 s), ``poll_interval`` (5 s),
        ``display_name``. Checked at start-up: a target with a mistake is left out and the
        error, naming target and field, logged (and given to requests that name it).""",
    )

    @default("deployments_dir")
    def _default_deployments_dir(self) -> str:
        from jupyter_core.paths import jupyter_data_dir

        return os.path.join(jupyter_data_dir(), "mlops", "deployments")

    def __init__(self, store: TrackingStore, root_dir: str, **kwargs: Any) -> None:
        super().__init__(store, root_dir, **kwargs)
        self.db = DeploymentDB(self.engine)
        self._io = ThreadPoolExecutor(1, thread_name_prefix="mlops-deployments")
        #: What targets may do with deployments (jupyter_mlops/targets.py's interface).
        self.ctx = DeploymentContext(self, self._switched)
        self.local = LocalTarget(self, self.ctx)
        configured, errors = build_targets("deployments", self.targets, "targets")
        #: Where deployments can go, by name: ``local`` first, then the configured clusters.
        self.by_name: dict[str, Any] = {LOCAL: self.local, **configured}
        #: Configured targets left out, with why (named in refusals to deploy there).
        self.target_errors: dict[str, str] = errors
        for e in errors.values():
            self.log.error("jupyter-mlops: c.DeploymentService.%s", e)
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._follower: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False
        #: Deployments being rolled out: their outcome is told once the rollout ends.
        self._rolling: set[str] = set()
        #: Deployments whose failure was told (until they record another status).
        self._failed: set[str] = set()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Re-adopt (or start again) every local deployment of this machine; follow aliases."""
        if self._stopped:  # stopped before its turn to start came (an in-process test server)
            return
        self._started = True
        host = socket.gethostname()
        for dep in await self.call(self.db.list):
            state = dep.get("state") or {}
            if dep["target"] == LOCAL and state.get("host", host) != host:
                continue
            if dep["generation"] > dep["observed_generation"]:  # a server stopped mid-rollout
                await self.call(
                    self.db.end_rollout,
                    dep["name"],
                    dep["generation"],
                    "interrupted: the Jupyter server stopped during the rollout",
                )
            if dep["target"] not in self.by_name:
                self.log.warning(
                    "jupyter-mlops: deployment %s: its target %r is not configured now",
                    dep["name"],
                    dep["target"],
                )
                continue
            self._spawn(self._attach(dep))
        self._follower = asyncio.ensure_future(self._follow_loop())

    async def _attach(self, dep: dict[str, Any]) -> None:
        async with self._lock(dep["name"]):
            try:
                await self.by_name[dep["target"]].attach(self._item(dep), self.ctx)
            except RolloutFailed as e:
                await self._record(dep["name"], status="FAILED", reason=str(e))
                self.status_recorded(dep["name"], "FAILED", f"could not start again: {e}")

    async def stop(self) -> None:
        self._stopped = True
        if self._follower is not None:
            self._follower.cancel()
        for task in list(self._tasks):
            task.cancel()
        for name, target in self.by_name.items():
            if name != LOCAL:
                with contextlib.suppress(Exception):
                    await target.stop()
        stop = self.stop_on_exit
        local = self.local
        local.keep_running = not stop
        await local.stop()
        if stop:
            for name in list(self.local.running):
                with contextlib.suppress(Exception):
                    await self.call(
                        self.db.update,
                        name,
                        status="STOPPED",
                        state=None,
                        owner=None,
                        reason="stopped with the Jupyter server "
                        "(DeploymentService.stop_on_exit); starts with the next one",
                    )
        self._io.shutdown(wait=True)

    # -- helpers ----------------------------------------------------------------------------
    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, lambda: fn(*args, **kwargs))

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _record(self, name: str, **values: Any) -> None:
        await self.call(self.db.update, name, **values)

    def announce(self, name: str, outcome: str, status: str, reason: str) -> None:
        """Tell the bus how a rollout ended, or that a serving deployment failed."""
        self.publish(
            Event(
                kind="deployment", outcome=outcome, id=name, name=name, status=status, reason=reason
            )
        )

    def status_recorded(self, name: str, status: str, reason: str | None) -> None:
        """A target recorded ``status``: a change to FAILED is told, unless a rollout is
        under way (it tells its own outcome); watchers that record FAILED again are not."""
        if status != "FAILED":
            self._failed.discard(name)
        elif name not in self._rolling and name not in self._failed and not self._stopped:
            self._failed.add(name)
            self.announce(name, "failed", "FAILED", reason or "")

    def _registry(self) -> Any:
        """The registry beside the store: the server's own, or on a hub team server the
        hub's team registry (the one its Models panel shows)."""
        from ..registry.client import registry_backend

        return registry_backend(self.store)

    def resolve(self, uri: str) -> tuple[str, str | None, str | None]:
        """``(served URI, registered name, version)``: what ``uri`` means now (an alias or
        stage resolved to its version); errors name the URI."""
        name, which, alias = parse_model_uri(uri)
        reg = self._registry()
        if alias is not None:
            mv = reg.get_model_version_by_alias(name, alias)
            return f"models:/{name}/{mv['version']}", name, str(mv["version"])
        if which is not None:
            if which.isdigit():
                reg.get_model_version(name, which)  # exists?
                return uri.rstrip("/"), name, which
            versions = (
                reg.get_latest_versions(name)
                if which.lower() == "latest"
                else reg.get_latest_versions(name, [which])
            )
            if not versions:
                raise not_found(f"No versions of model '{name}' in stage '{which}' ({uri}).")
            v = str(max(int(x["version"]) for x in versions))
            return f"models:/{name}/{v}", name, v
        if uri.startswith(("models:/", "runs:/")) or "://" in uri:
            return uri, None, None
        path = os.path.abspath(os.path.expanduser(uri))
        if not os.path.isfile(os.path.join(path, "MLmodel")):
            raise not_found(f"No model directory at '{uri}' (no MLmodel file there).")
        return path, None, None

    async def _switched(
        self, dep: dict[str, Any], version: str | None, uri: str, url: str, action: str
    ) -> None:
        """Traffic moved to ``uri``: tags on the registered versions say where they serve."""
        name = dep["name"]
        old_name, old_version = dep.get("model_name"), dep.get("model_version")
        reg = self._registry()
        new_name = parse_model_uri(uri)[0] or None

        def tags() -> None:
            if old_name and old_version and (old_name, old_version) != (new_name, version):
                with contextlib.suppress(TrackingError):
                    reg.delete_model_version_tag(old_name, old_version, DEPLOYED_TAG + name)
            if new_name and version:
                try:
                    reg.set_model_version_tag(new_name, version, DEPLOYED_TAG + name, url)
                except TrackingError as e:
                    if e.error_code != "PERMISSION_DENIED":
                        raise
                    # a teammate's model on the hub's team registry: it serves all the same
                    self.log.warning(
                        "jupyter-mlops: deployment %s serves %s v%s; its registry tag was not "
                        "written: %s",
                        name,
                        new_name,
                        version,
                        e,
                    )

        await self.call(tags)
        await self._record(name, model_name=new_name, model_version=version, served_uri=uri)
        if action != "restart" and uri != dep.get("served_uri"):
            await self.call(self.db.add_history, name, action, uri, new_name, version)
        dep.update(model_name=new_name, model_version=version, served_uri=uri, url=url)

    # -- the API ----------------------------------------------------------------------------
    def present(
        self, dep: dict[str, Any], history: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        state = dep.get("state") or {}
        out = {
            k: dep[k]
            for k in (
                "name",
                "model_uri",
                "target",
                "replicas",
                "follow_alias",
                "status",
                "reason",
                "url",
                "model_name",
                "model_version",
                "created_time",
                "updated_time",
            )
        }
        out["resources"] = dep.get("resources") or {}
        out["served_uri"] = dep.get("served_uri")
        # the rollout a request started, the last that ended, and why that one failed
        out["generation"] = int(dep.get("generation") or 0)
        out["observed_generation"] = int(dep.get("observed_generation") or 0)
        out["rollout_error"] = dep.get("rollout_error")
        out["traffic"] = self.traffic(dep)
        canary = (state.get("memo") or {}).get("canary")
        out["canary"] = (
            {k: canary.get(k) for k in ("version", "model_uri", "percent")} if canary else None
        )
        if dep["target"] == "local":
            out["processes"] = {
                "router": (state.get("router") or {}).get("pid"),
                "scoring": [r.get("pid") for r in state.get("replicas") or []],
                "spare": state.get("spare"),
            }
            out["ports"] = {
                "router": (state.get("router") or {}).get("port"),
                "scoring": [r.get("port") for r in state.get("replicas") or []],
            }
        if history is not None:
            out["history"] = history
        return out

    @staticmethod
    def traffic(dep: dict[str, Any]) -> builtins.list[dict[str, Any]]:
        """The versions served now and their share of the requests: what the target recorded
        (a canary splits), else all of it to the served version."""
        state = dep.get("state") or {}
        if isinstance(state.get("traffic"), list):
            return list(state["traffic"])
        if not dep.get("served_uri"):
            return []
        return [
            {
                "version": dep.get("model_version"),
                "model_uri": dep["served_uri"],
                "percent": 100,
                "replicas": dep["replicas"],
            }
        ]

    async def get(self, name: str) -> dict[str, Any]:
        dep = await self.call(self.db.get, name)
        if dep is None:
            raise not_found(f"No deployment named '{name}'.")
        return self.present(dep, await self.call(self.db.history, name))

    async def list(self) -> list[dict[str, Any]]:
        return [self.present(d) for d in await self.call(self.db.list)]

    def list_targets(self) -> builtins.list[dict[str, Any]]:
        return [t.describe() for t in self.by_name.values()]

    @staticmethod
    def _item(
        dep: dict[str, Any],
        uri: str | None = None,
        version: str | None = None,
        action: str = "restart",
    ) -> DeploymentItem:
        return DeploymentItem(
            dep["name"], dep["target"], dep.get("owner"), dep, uri, version, action
        )

    def _target(self, name: str) -> Any:
        target = self.by_name.get(name)
        if target is None:
            if name in self.target_errors:
                raise unknown_target(name, self.by_name, self.target_errors)
            raise invalid(
                f"Unknown deployment target '{name}': the targets are {', '.join(self.by_name)}."
            )
        return target

    @staticmethod
    def _check_replicas(replicas: Any) -> int:
        if type(replicas) is not int or not 1 <= replicas <= MAX_REPLICAS:
            raise invalid(
                f"'replicas' must be an integer from 1 to {MAX_REPLICAS}, got {replicas!r}."
            )
        return replicas

    @staticmethod
    def _check_resources(resources: Any) -> dict[str, str]:
        if resources is None:
            return {}
        if not isinstance(resources, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in resources.items()
        ):
            raise invalid(
                "'resources' must be an object of name: quantity, e.g. "
                '{"cpu": "500m", "memory": "1Gi"}.'
            )
        return {k: str(v) for k, v in resources.items()}

    async def create(
        self,
        name: str,
        model_uri: str,
        target: str = "local",
        replicas: int = 1,
        resources: dict[str, Any] | None = None,
        follow_alias: bool = False,
    ) -> dict[str, Any]:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise invalid(
                f"Invalid deployment name {name!r}: lower-case letters, digits and "
                "'-', starting with a letter, at most 63 characters (a DNS label)."
            )
        if not isinstance(model_uri, str) or not model_uri.strip():
            raise invalid(
                "'model_uri' is required (models:/<name>/<version>, "
                "models:/<name>@<alias>, runs:/..., or a model directory)."
            )
        tgt = self._target(target)
        replicas = self._check_replicas(replicas)
        res = self._check_resources(resources)
        alias = parse_model_uri(model_uri)[2]
        if follow_alias and alias is None:
            raise invalid(
                f"'follow_alias' needs a model URI with an alias "
                f"(models:/<name>@<alias>), got '{model_uri}'."
            )
        served, _, version = await self.call(self.resolve, model_uri)
        await self._check(tgt, name, served, None)
        now = now_ms()
        row = {
            "name": name,
            "model_uri": model_uri,
            "target": target,
            "replicas": replicas,
            "resources": res or None,
            "follow_alias": bool(follow_alias),
            "status": "STARTING",
            "alias_version": version if alias else None,
            "created_time": now,
            "updated_time": now,
            "owner": None,
            "generation": 1,
            "observed_generation": 0,
        }
        if not await self.call(self.db.insert, row):
            raise TrackingError(
                f"A deployment named '{name}' exists already.", "RESOURCE_ALREADY_EXISTS"
            )
        dep = await self.call(self.db.get, name)
        self._spawn(self._rollout(tgt, dep, 1, served, version, "create"))
        return self.present(dep)

    async def _check(self, tgt: Any, name: str, served: str, canary: int | None) -> None:
        """What the target refuses before anything is stored or changed (a 4xx): a canary
        where it cannot split traffic, a cluster model without an image."""
        if tgt is self.local:  # its router splits the traffic of a canary by weight
            return
        item = DeploymentItem(name, tgt.name, None, {"name": name}, served)
        tgt.model_of(served)
        await tgt.validate_change(item, canary)
        await tgt.image_for(self.ctx, item, served)

    async def _rollout(
        self,
        tgt: Any,
        dep: dict[str, Any],
        generation: int,
        served: str,
        version: str | None,
        action: str,
        canary: int | None = None,
    ) -> None:
        """Rollout ``generation``: hand it to the target; its end (with why it failed) is
        recorded with the status it leaves, in one write (clients wait for it)."""
        name = dep["name"]
        async with self._lock(name):
            fresh = await self.call(self.db.get, name)
            if fresh is None:  # deleted meanwhile
                return
            item = self._item(fresh, served, version, action)
            item.canary = canary
            self._rolling.add(name)
            self._failed.discard(name)
            try:
                await tgt.submit(item, self.ctx)
            except RolloutFailed as e:
                ok = fresh.get("served_uri") is not None
                why = f"{action} to {served} failed: {e}"
                await self._end(name, generation, why, status="READY" if ok else "FAILED")
                self.announce(name, "failed", "READY" if ok else "FAILED", why)
                return
            except Exception as e:  # the deployment says what went wrong
                self.log.exception("jupyter-mlops: deployment %s: %s failed", name, action)
                why = f"{action} failed: {type(e).__name__}: {e}"
                await self._end(name, generation, why, status="FAILED")
                self.announce(name, "failed", "FAILED", why)
                return
            finally:
                self._rolling.discard(name)
            await self._end(name, generation, None)
            what = f"{action}: serving {served}" + (f" to {canary}%" if canary else "")
            self.announce(name, "succeeded", "READY", what)

    async def _end(self, name: str, generation: int, error: str | None, **values: Any) -> None:
        """Rollout ``generation`` ended (``error``: why it failed, which is also the
        deployment's ``reason``)."""
        if error is not None:
            values["reason"] = error
        await self.call(self.db.end_rollout, name, generation, error, **values)

    async def update(
        self,
        name: str,
        model_uri: str | None = None,
        replicas: int | None = None,
        follow_alias: bool | None = None,
        resources: dict[str, Any] | None = None,
        action: str = "update",
        canary_percent: int | None = None,
    ) -> dict[str, Any]:
        dep = await self.call(self.db.get, name)
        if dep is None:
            raise not_found(f"No deployment named '{name}'.")
        if canary_percent is not None:
            if type(canary_percent) is not int or not 1 <= canary_percent <= 99:
                raise invalid(
                    f"'canary_percent' must be an integer from 1 to 99, got {canary_percent!r}."
                )
            if model_uri is None or not dep.get("served_uri"):
                raise invalid(
                    "A canary needs a new 'model_uri' beside a version that serves already."
                )
        # a rollout that settled may hold the lock a moment longer: the next one waits for it
        if dep["status"] in ("STARTING", "UPDATING"):
            raise Conflict(
                f"Deployment '{name}' is {dep['status'].lower()}: wait until it is "
                "READY before changing it."
            )
        values: dict[str, Any] = {"reason": None}
        uri = model_uri if model_uri is not None else dep["model_uri"]
        if model_uri is not None:
            if not isinstance(model_uri, str) or not model_uri.strip():
                raise invalid("'model_uri' must be a model URI.")
            values["model_uri"] = model_uri
        if replicas is not None:
            values["replicas"] = self._check_replicas(replicas)
        if resources is not None:
            values["resources"] = self._check_resources(resources) or None
        follow = dep["follow_alias"] if follow_alias is None else bool(follow_alias)
        alias = parse_model_uri(uri)[2]
        if follow and alias is None:
            raise invalid(
                f"'follow_alias' needs a model URI with an alias "
                f"(models:/<name>@<alias>), got '{uri}'."
            )
        values["follow_alias"] = follow
        served, _, version = await self.call(self.resolve, uri)
        tgt = self._target(dep["target"])
        await self._check(tgt, name, served, canary_percent)
        if alias is not None:
            values["alias_version"] = version
        canary_now = ((dep.get("state") or {}).get("memo") or {}).get("canary")
        roll = (
            canary_percent is not None
            or canary_now is not None
            or served != dep.get("served_uri")
            or values.get("replicas", dep["replicas"]) != dep["replicas"]
            or dep["status"] in ("FAILED", "STOPPED")
        )
        if roll:
            values["status"] = "UPDATING"
            generation = await self.call(self.db.start_rollout, name, **values)
        else:
            await self.call(self.db.update, name, **values)
        dep = await self.call(self.db.get, name)
        if roll:
            self._spawn(
                self._rollout(tgt, dep, generation, served, version, action, canary_percent)
            )
        return self.present(dep)

    async def _canary_step(self, name: str, step: str) -> dict[str, Any]:
        """Promote the deployment's canary, or roll it back (``step``: promote, abort)."""
        dep = await self.call(self.db.get, name)
        if dep is None:
            raise not_found(f"No deployment named '{name}'.")
        # a rollout that settled may hold the lock a moment longer: the next one waits for it
        if dep["status"] in ("STARTING", "UPDATING"):
            raise Conflict(
                f"Deployment '{name}' is {dep['status'].lower()}: wait until it is "
                "READY before changing it."
            )
        if not ((dep.get("state") or {}).get("memo") or {}).get("canary"):
            raise invalid(f"Deployment '{name}' has no canary to {step}.")
        tgt = self._target(dep["target"])
        generation = await self.call(self.db.start_rollout, name, status="UPDATING", reason=None)

        async def run() -> None:
            async with self._lock(name):
                fresh = await self.call(self.db.get, name)
                if fresh is None:
                    return
                item = self._item(fresh, action=step)
                try:
                    await (tgt.promote if step == "promote" else tgt.abort)(item, self.ctx)
                except RolloutFailed as e:
                    await self._end(name, generation, f"{step} failed: {e}", status="READY")
                except Exception as e:  # the deployment says what went wrong
                    self.log.exception("jupyter-mlops: deployment %s: %s failed", name, step)
                    why = f"{step} failed: {type(e).__name__}: {e}"
                    await self._end(name, generation, why, status="READY")
                else:
                    await self._end(name, generation, None)

        self._spawn(run())
        return self.present(await self.call(self.db.get, name))

    async def promote(self, name: str) -> dict[str, Any]:
        """The canary's version gets all the traffic."""
        return await self._canary_step(name, "promote")

    async def rollback(self, name: str) -> dict[str, Any]:
        """Serve the version served before the current one again (during a canary: drop the
        canary, what served keeps all the traffic)."""
        dep = await self.call(self.db.get, name)
        if dep is None:
            raise not_found(f"No deployment named '{name}'.")
        if ((dep.get("state") or {}).get("memo") or {}).get("canary"):
            return await self._canary_step(name, "abort")
        history = await self.call(self.db.history, name)
        current = dep.get("served_uri")
        previous = next((h for h in reversed(history[:-1]) if h["model_uri"] != current), None)
        if previous is None:
            raise invalid(
                f"Deployment '{name}' has served no other version: nothing to roll back to."
            )
        # The alias no longer decides: stop following it (it would roll forward again).
        return await self.update(
            name, model_uri=previous["model_uri"], follow_alias=False, action="rollback"
        )

    async def delete(self, name: str) -> None:
        async with self._lock(name):
            dep = await self.call(self.db.get, name)
            if dep is None:
                raise not_found(f"No deployment named '{name}'.")
            tgt = self.by_name.get(dep["target"])
            if tgt is not None:  # a target no longer configured: its objects stay there
                await tgt.cancel(self._item(dep), self.ctx)
            reg = self._registry()

            def untag() -> None:
                if dep.get("model_name") and dep.get("model_version"):
                    with contextlib.suppress(TrackingError):
                        reg.delete_model_version_tag(
                            dep["model_name"], dep["model_version"], DEPLOYED_TAG + name
                        )

            await self.call(untag)
            await self.call(self.db.delete, name)
        self._locks.pop(name, None)

    async def metrics(self, name: str) -> dict[str, Any]:
        """The deployment's scoring metrics scraped now, one entry per serving version
        (:mod:`.metrics`)."""
        dep = await self.call(self.db.get, name)
        if dep is None:
            raise not_found(f"No deployment named '{name}'.")
        scraped_at = now_ms()
        sets = await self._target(dep["target"]).serving(self._item(dep))
        return {"name": name, "scraped_at": scraped_at, "versions": summarize(sets)}

    async def logs(self, name: str, tail: int) -> str:
        """The last ``tail`` bytes of the deployment's logs."""
        dep = await self.call(self.db.get, name)
        if dep is None:
            raise not_found(f"No deployment named '{name}'.")
        data = await self._target(dep["target"]).logs(self._item(dep)) or b""
        return data[-tail:].decode("utf-8", "replace")

    # -- following aliases ------------------------------------------------------------------
    async def _follow_loop(self) -> None:
        while True:
            await asyncio.sleep(self.follow_interval)
            try:
                await self.follow_aliases()
            except asyncio.CancelledError:
                raise
            except Exception:  # try again next time
                self.log.exception("jupyter-mlops: following model aliases failed")

    async def follow_aliases(self) -> builtins.list[str]:
        """Roll the deployments whose alias moved; their names."""
        rolled = []
        for dep in await self.call(self.db.list):
            if not dep["follow_alias"] or dep["status"] not in ("READY", "FAILED"):
                continue
            if self._lock(dep["name"]).locked():
                continue
            name, _, alias = parse_model_uri(dep["model_uri"])
            if alias is None:
                continue
            try:
                mv = await self.call(self._registry().get_model_version_by_alias, name, alias)
            except TrackingError:
                continue  # the alias was removed: keep serving what runs
            version = str(mv["version"])
            if version == dep.get("alias_version"):
                continue
            self.log.info(
                "jupyter-mlops: deployment %s follows %s@%s to version %s",
                dep["name"],
                name,
                alias,
                version,
            )
            with contextlib.suppress(Conflict):
                await self.update(dep["name"], action="follow")
                rolled.append(dep["name"])
        return rolled
