"""Training jobs on Kubernetes: Kubeflow Trainer v2 ``TrainJob`` and the v1 operator's
``PyTorchJob`` / ``TFJob``.

Configured as ``c.TrainingService.targets = {name: {"kind": "trainjob" | "pytorchjob" |
"tfjob", ...}}`` (:data:`OWN_FIELDS` plus the cluster's :data:`~jupyter_mlops.kube.KUBE_FIELDS`),
each checked at start-up with errors naming the target and the field.

A job becomes one object (``<name>-<id8>``, labelled ``jupyter-mlops/job-id``) whose container
runs :mod:`.podrun` with the job's entry point shipped inside the object
(:mod:`jupyter_mlops.embed`, ``max_embedded_bytes``), as Kubeflow pipeline steps ship theirs.
The watcher follows the object (its conditions → our states, the reason shown) and its pods
(each pod is a node: its ranks' states; its log, split by the ``[rank N]`` marks, becomes the
ranks' logs), until it ends; cancel deletes the object (its pods go with it); after a restart
the job is followed again from its recorded ``namespace/name``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from typing import Any, ClassVar

from ..embed import IGNORE_FILE, EmbedError, collect, pack
from ..kube.client import KubeClient, KubeError
from ..kube.config import KUBE_FIELDS, KubeConfig, read_kube_config
from ..kube.resources import PODS, Resource, condition
from ..kube.watch import follow_object
from ..targets import ConfigReader, Target
from ..tracking.errors import invalid
from .local import now_ms, rank_log
from .spec import JobSpec
from .target import JobItem, TrainingContext, read_rank_log

TRAINJOBS = Resource("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob")
PYTORCHJOBS = Resource("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob")
TFJOBS = Resource("kubeflow.org", "v1", "tfjobs", "TFJob")
#: The label that ties an object (and, through the controllers, its pods) to our job.
JOB_LABEL = "jupyter-mlops/job-id"
KUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: A target's own settings (next to KUBE_FIELDS).
OWN_FIELDS = (
    "display_name",
    "image",
    "images",
    "tracking_uri",
    "env",
    "queue",
    "max_embedded_bytes",
    "gpu_resource",
    "service_account",
)
#: Variables the controllers set themselves (Trainer's webhook refuses a TrainJob whose
#: env names them), and ours.
RESERVED_ENV = re.compile(r"^(PET_.*|MASTER_ADDR|MASTER_PORT|WORLD_SIZE|RANK|TF_CONFIG)$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_RANK_LINE = re.compile(rb"^\[rank (\d+)\] ")
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")


def object_name(job_name: str, job_id: str) -> str:
    """An RFC 1035 label (≤ 63) from the job's name and id: ``ddp-mnist-1a2b3c4d``."""
    base = re.sub(r"[^a-z0-9-]+", "-", job_name.lower()).strip("-")
    if not base or not base[0].isalpha():
        base = "job-" + base
    return f"{base[:50].rstrip('-')}-{job_id[:8]}"


def _entry_outside(spec: JobSpec) -> str | None:
    """The entry file (or project directory) when it lies outside the job's directory: it
    ships beside it, under its own name."""
    if spec.entry_kind == "project":
        path: str | None = os.path.normpath(os.path.join(spec.base_dir, spec.entry))
    else:
        path = spec.entry_path()
    if path is None:
        return None
    base = os.path.abspath(spec.base_dir)
    full = os.path.abspath(path)
    # a project entry may be the job's directory itself (``project: .``): it ships as it
    return None if full == base or full.startswith(base + os.sep) else path


def ship_code(spec: JobSpec, limit: int, setting: str) -> str:
    """The job's directory (``base_dir``: the job file's, or the one it was submitted from:
    the ranks' working directory locally), packed for the pod to unpack as its own, so a
    script's modules and files travel with it; version control, virtual environments and
    caches stay behind (:data:`~jupyter_mlops.embed.DEFAULT_IGNORE`), and so does what the
    directory's ``.mlopsignore`` lists. An entry point outside it ships beside it.
    :class:`~jupyter_mlops.embed.EmbedError` when it does not fit in ``limit``."""
    where = f"job {spec.name!r}: "
    base = os.path.abspath(spec.base_dir)
    files: dict[str, str | bytes] = {}
    if os.path.isdir(base):
        files.update(collect(base, limit, setting, where))
    outside = _entry_outside(spec)
    if outside is not None and os.path.isdir(outside):
        files.update(collect(outside, limit, setting, where, os.path.basename(outside) + "/"))
    elif outside is not None:
        files[os.path.basename(outside)] = outside
    try:
        return pack(files, limit, setting, where)
    except EmbedError as e:
        raise EmbedError(
            f"{e}. The job ships its directory {base}: list what it does not need in "
            f"{os.path.join(base, IGNORE_FILE)} (one pattern a line, as in .gitignore)"
        ) from None


def resources(res: dict[str, Any], gpu_resource: str) -> dict[str, Any]:
    """requests = limits of one node (a namespace's ResourceQuota wants requests)."""
    amounts: dict[str, str] = {}
    if res.get("cpu") not in (None, 0, "0"):
        amounts["cpu"] = str(res["cpu"])
    if res.get("memory") not in (None, 0, "0"):
        amounts["memory"] = str(res["memory"])
    if res.get("gpu"):
        amounts[gpu_resource] = str(int(res["gpu"]))
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


class KubeTrainingTarget(Target[JobItem, TrainingContext]):
    """What the three kinds share: settings, shipping, watching, logs, cancel."""

    resource: ClassVar[Resource]
    #: The frameworks this kind's controller sets up.
    frameworks: ClassVar[tuple[str, ...]] = ("pytorch",)
    extra_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        name: str,
        kube: KubeConfig,
        settings: dict[str, Any],
        display_name: str | None = None,
    ) -> None:
        super().__init__(name, display_name or f"{self.resource.kind} in {kube.namespace}")
        self.kube = kube
        self.client = KubeClient(kube)
        self.image: str = settings["image"]
        self.images: list[str] = list(settings.get("images") or [])
        self.tracking_uri: str | None = settings.get("tracking_uri")
        self.env: dict[str, str] = dict(settings.get("env") or {})
        self.queue: str | None = settings.get("queue")
        self.max_embedded_bytes: int = int(settings.get("max_embedded_bytes") or 1_000_000)
        self.gpu_resource: str = settings.get("gpu_resource") or "nvidia.com/gpu"
        self.service_account: str | None = settings.get("service_account")
        self.settings = settings
        #: How errors name the size limit.
        self.limit_setting = f"c.TrainingService.targets[{name!r}].max_embedded_bytes"
        self._cancelled: set[str] = set()
        self._state: dict[str, tuple[str | None, str | None]] = {}

    # -- configuration ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, name: str, settings: ConfigReader) -> KubeTrainingTarget:
        settings.check_unknown({*KUBE_FIELDS, *OWN_FIELDS, *cls.extra_fields})
        kube = read_kube_config(name, settings)
        out: dict[str, Any] = {
            "image": settings.text("image", required=True),
            "tracking_uri": settings.text("tracking_uri"),
            "queue": settings.text("queue"),
            "gpu_resource": settings.text("gpu_resource", default="nvidia.com/gpu"),
            "service_account": settings.text("service_account"),
            "max_embedded_bytes": int(
                settings.number(
                    "max_embedded_bytes", 1_000_000, low=1000, high=1_400_000, what="bytes"
                )
            ),
        }
        images = settings.raw.get("images") or []
        if not isinstance(images, list) or not all(isinstance(i, str) and i for i in images):
            raise settings.error("images", "must be a list of image names")
        if images and out["image"] not in images:
            raise settings.error("image", f"{out['image']!r} is not in images {images}")
        out["images"] = images
        env = settings.str_map("env", "variable name")
        for k, v in env.items():
            if not _ENV_NAME.match(k) or RESERVED_ENV.match(k):
                raise settings.error(f"env.{k}", "not a variable name a job may set")
            if not isinstance(v, str):
                raise settings.error(f"env.{k}", "must be a string")
        out["env"] = env
        out.update(cls.read_extra(settings))
        return cls(name, kube, out, settings.text("display_name"))

    @classmethod
    def read_extra(cls, settings: ConfigReader) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "namespace": self.kube.namespace,
            "resource": self.resource.key,
            "frameworks": list(self.frameworks),
            "image": self.image,
            "images": self.allowed_images() or [self.image],
        }

    def allowed_images(self) -> list[str]:
        """The admin's list: ``images``, or the team's images of the hub's teams.yaml
        when this server was spawned for a team (``JUPYTER_MLOPS_TEAM``)."""
        if self.images:
            return list(self.images)
        team, path = os.environ.get("JUPYTER_MLOPS_TEAM"), os.environ.get("JUPYTER_MLOPS_TEAMS")
        if not team or not path or not os.path.isfile(path):
            return []
        try:
            from ..hub.teams import load_teams

            cfg = load_teams(path)
        except Exception:  # noqa: BLE001 - an unreadable teams.yaml: only the target's image
            return [self.image]
        t = cfg.teams.get(team)
        if t is None:
            return [self.image]
        return [cfg.images[i].image for i in t.images if i in cfg.images] or [self.image]

    # -- the object ------------------------------------------------------------------------
    def image_of(self, spec: JobSpec) -> str:
        return spec.image or self.image

    def archive(self, item: JobItem) -> str:
        """The job's code as it ships inside the object (packed once per submission)."""
        if item.shipped is None:
            item.shipped = ship_code(item.spec, self.max_embedded_bytes, self.limit_setting)
        return item.shipped

    def shipped_spec(self, spec: JobSpec) -> dict[str, Any]:
        """The spec as the pod reads it: entry paths are the archive's names."""
        out = spec.to_dict()
        outside = _entry_outside(spec)
        if outside is not None:
            base = os.path.basename(outside)
            out[spec.entry_kind] = (
                f"{base}:{spec.entry.rsplit(':', 1)[1]}" if spec.entry_kind == "function" else base
            )
        return out

    def container_env(self, item: JobItem, tracking: dict[str, str]) -> list[dict[str, Any]]:
        env = {**self.env, **item.spec.env, **tracking}
        if self.tracking_uri:
            env["JUPYTER_MLOPS_TRACKING_URI"] = self.tracking_uri
        env.update(
            {
                "JUPYTER_MLOPS_JOB_ID": item.id,
                "JUPYTER_MLOPS_JOB_NAME": item.spec.name,
                "JUPYTER_MLOPS_JOB_RUN_ID": item.id,
                "JUPYTER_MLOPS_JOB_EXPERIMENT_ID": item.experiment_id,
                "JUPYTER_MLOPS_JOB_ATTEMPT": "1",
                "JUPYTER_MLOPS_JOB_TARGET": self.name,
                "JUPYTER_MLOPS_PARAMS": json.dumps(item.params, default=str),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if item.spec.log_all_ranks:
            env["JUPYTER_MLOPS_JOB_LOG_RANKS"] = "all"
        return [{"name": k, "value": v.replace("$", "$$")} for k, v in env.items()]

    def container(self, item: JobItem, tracking: dict[str, str], name: str) -> dict[str, Any]:
        config = {"spec": self.shipped_spec(item.spec), "params": item.params}
        out: dict[str, Any] = {
            "name": name,
            "image": self.image_of(item.spec),
            "command": ["python3", "-m", "jupyter_mlops.jobs.podrun"],
            "args": [
                "--archive",
                self.archive(item),
                "--config",
                json.dumps(config, separators=(",", ":")),
            ],
            "env": self.container_env(item, tracking),
        }
        res = resources(item.spec.resources, self.gpu_resource)
        if res:
            out["resources"] = res
        return out

    def labels(self, item: JobItem) -> dict[str, str]:
        out = {JOB_LABEL: item.id, "app.kubernetes.io/managed-by": "jupyter-mlops"}
        if self.queue:
            out[KUEUE_LABEL] = self.queue
        return out

    def manifest(self, item: JobItem, name: str, tracking: dict[str, str]) -> dict[str, Any]:
        raise NotImplementedError

    # -- what the controller made of it ----------------------------------------------------
    def pod_selector(self, name: str) -> str:
        raise NotImplementedError

    def node_of(self, pod: dict[str, Any]) -> int | None:
        """Which node of the job a pod is (None: not one of its nodes)."""
        raise NotImplementedError

    def state_of(self, obj: dict[str, Any]) -> tuple[str | None, str | None]:
        """(our status or None when the object says nothing yet, the reason)."""
        raise NotImplementedError

    # -- the target interface --------------------------------------------------------------
    async def validate(self, item: JobItem) -> None:
        await asyncio.to_thread(self.check, item)  # reads the job's directory

    def check(self, item: JobItem) -> None:
        """What :meth:`validate` refuses (a 400 naming the field); packs the job's code."""
        spec = item.spec
        if spec.framework not in self.frameworks:
            raise invalid(
                f"Target {self.name!r} ({self.resource.kind}) runs "
                f"{' or '.join(self.frameworks)} jobs, not {spec.framework!r}."
            )
        allowed = self.allowed_images()
        image = self.image_of(spec)
        if allowed and image not in allowed:
            raise invalid(
                f"image: {image!r} is not allowed on target {self.name!r} "
                f"(allowed: {', '.join(allowed)})."
            )
        for k in spec.env:
            if not _ENV_NAME.match(k) or RESERVED_ENV.match(k):
                raise invalid(
                    f"env.{k}: the {self.resource.kind} controller sets this variable (or "
                    "Kubernetes refuses the name); a job may not set it."
                )
        gpu = spec.resources.get("gpu")
        if gpu is not None and (isinstance(gpu, bool) or not float(gpu).is_integer() or gpu < 0):
            raise invalid(f"resources.gpu: must be a whole number on Kubernetes (got {gpu!r}).")
        try:
            self.archive(item)
        except EmbedError as e:
            raise invalid(str(e)) from None

    async def submit(self, item: JobItem, ctx: TrainingContext) -> None:
        name = object_name(item.spec.name, item.id)
        body = await asyncio.to_thread(self.manifest, item, name, ctx.tracking_env())
        await self.client.create(self.resource, body)
        await ctx.set_ref(item, f"{self.kube.namespace}/{name}")
        await ctx.append_log(
            item,
            f"[jupyter-mlops] created {self.resource.kind} {self.kube.namespace}/{name} "
            f"on target {self.name!r}\n".encode(),
        )
        self.watchers.start(item.id, lambda: self._watch(item, ctx))

    async def attach(self, item: JobItem, ctx: TrainingContext) -> None:
        if not item.ref:
            await ctx.transition(item, "FAILED", reason="interrupted before its object was created")
            return
        await ctx.append_log(item, f"[jupyter-mlops] following {item.ref} again\n".encode())
        self.watchers.start(item.id, lambda: self._watch(item, ctx))

    async def cancel(self, item: JobItem, ctx: TrainingContext) -> None:
        self._cancelled.add(item.id)
        if item.id not in self.watchers and item.ref:  # nobody follows it: end it here
            self.watchers.start(item.id, lambda: self._watch(item, ctx))
        if item.ref:
            ns, name = item.ref.split("/", 1)
            await self.client.delete(
                self.resource, name, namespace=ns, propagation="Foreground", missing_ok=True
            )

    async def logs(self, item: JobItem, *, part: str | None = None) -> bytes | None:
        return await read_rank_log(item, part)

    async def stop(self) -> None:
        await super().stop()  # the cluster's jobs go on; the next start follows them again
        with contextlib.suppress(Exception):
            await self.client.close()

    # -- watching --------------------------------------------------------------------------
    async def _watch(self, item: JobItem, ctx: TrainingContext) -> None:
        assert item.ref
        ns, name = item.ref.split("/", 1)
        watch = _JobWatch(self, item, ctx, ns, name)
        await watch.run()


class _JobWatch:
    """One job followed until it ends: the object, its pods, their logs."""

    def __init__(
        self, target: KubeTrainingTarget, item: JobItem, ctx: TrainingContext, ns: str, name: str
    ) -> None:
        self.t = target
        self.item = item
        self.ctx = ctx
        self.ns = ns
        self.name = name
        self.procs = item.spec.procs_per_node if item.spec.framework != "tensorflow" else 1
        self.last: tuple[str | None, str | None] = (None, None)
        self.started = False
        self.pods: dict[str, dict[str, Any]] = {}
        self.followers: dict[str, asyncio.Task[None]] = {}
        self.rank_rows: dict[int, dict[str, Any]] = {}
        self.failed_pod: str | None = None

    async def run(self) -> None:
        result: list[tuple[str, str | None]] = []

        async def on_change(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                if self.item.id in self.t._cancelled:
                    result.append(("CANCELED", "cancelled"))
                else:
                    result.append(("FAILED", f"the {self.t.resource.kind} {self.name} was deleted"))
                return True
            status, reason = self.t.state_of(obj)
            if status in TERMINAL:
                if status == "FAILED" and self.failed_pod:
                    reason = f"{reason}; {self.failed_pod}"
                result.append((status, reason))
                return True
            if status is not None:
                await self.set(status, reason)
            return False

        async def on_trouble(error: KubeError | None) -> None:
            text = f"not watched right now: {error.message}" if error else "watched again"
            await self.ctx.append_log(self.item, f"[jupyter-mlops] {text}\n".encode())

        pods_task = asyncio.ensure_future(self._follow_pods())
        try:
            await follow_object(
                self.t.client,
                self.t.resource,
                self.name,
                on_change,
                namespace=self.ns,
                on_trouble=on_trouble,
            )
            status, reason = result[0]
            if status == "CANCELED":
                await self._pods_gone(60)
            await self._refresh_pods()
            if status == "FAILED" and self.failed_pod and self.failed_pod not in (reason or ""):
                reason = f"{reason}; {self.failed_pod}"
            if self.followers:  # the ranks' logs complete before they are kept
                await asyncio.wait(list(self.followers.values()), timeout=30)
        finally:
            pods_task.cancel()
            for f in self.followers.values():
                f.cancel()
        final = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED", "CANCELED": "CANCELED"}[status]
        ended = [
            {**row, "status": final if row["status"] in ("PENDING", "RUNNING") else row["status"]}
            for row in self.rank_rows.values()
        ]
        if ended:
            await self.ctx.record_ranks(self.item, ended)
        self.t._cancelled.discard(self.item.id)
        await self.ctx.transition(self.item, status, reason=reason)

    async def set(self, status: str, reason: str | None) -> None:
        if (status, reason) == self.last:
            return
        self.last = (status, reason)
        extra: dict[str, Any] = {}
        if status == "RUNNING" and not self.started:
            self.started = True
            extra = {"start_time": now_ms(), "attempt": 1}
        await self.ctx.transition(self.item, status, reason=reason, **extra)

    # pods ---------------------------------------------------------------------------------
    async def _follow_pods(self) -> None:
        selector = self.t.pod_selector(self.name)
        while True:
            try:
                found = await self.t.client.list(PODS, namespace=self.ns, label_selector=selector)
                for pod in found.get("items") or []:
                    await self._pod(pod)
                rv = (found.get("metadata") or {}).get("resourceVersion")
                async for ev in self.t.client.watch(
                    PODS, namespace=self.ns, label_selector=selector, resource_version=rv
                ):
                    if ev.type != "DELETED":
                        await self._pod(ev.object)
            except KubeError:
                await asyncio.sleep(2)

    async def _refresh_pods(self) -> None:
        with contextlib.suppress(KubeError):
            found = await self.t.client.list(
                PODS, namespace=self.ns, label_selector=self.t.pod_selector(self.name)
            )
            for pod in found.get("items") or []:
                await self._pod(pod)

    async def _pods_gone(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                found = await self.t.client.list(
                    PODS, namespace=self.ns, label_selector=self.t.pod_selector(self.name)
                )
            except KubeError:
                return
            if not found.get("items"):
                return
            await asyncio.sleep(0.2)

    async def _pod(self, pod: dict[str, Any]) -> None:
        node = self.t.node_of(pod)
        if node is None:
            return
        pname = pod["metadata"]["name"]
        status = pod.get("status") or {}
        phase = status.get("phase") or "Pending"
        self.pods[pname] = pod
        terminated: dict[str, Any] = {}
        for cs in status.get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or terminated
        ours = {"Pending": "PENDING", "Running": "RUNNING", "Succeeded": "SUCCEEDED"}.get(
            phase, "FAILED"
        )
        code = terminated.get("exitCode")
        error = None
        if ours == "FAILED":
            error = f"pod {pname} (node {node}) exited with status {code}"
            if self.failed_pod is None:
                self.failed_pod = error
        rows = []
        for local in range(self.procs):
            rank = node * self.procs + local
            row = {
                "rank": rank,
                "status": ours,
                "exit_code": code,
                "error": error,
                "pid": None,
            }
            old = self.rank_rows.get(rank)
            if old is not None and old["status"] == ours:
                continue
            if ours == "RUNNING" or (old is None and ours != "PENDING"):
                row["start_time"] = now_ms()
            if ours in ("SUCCEEDED", "FAILED"):
                row["end_time"] = now_ms()
            self.rank_rows[rank] = row
            rows.append(row)
        if rows:
            await self.ctx.record_ranks(self.item, rows)
        if ours == "RUNNING" and self.last[0] in (None, "QUEUED"):
            await self.set("RUNNING", None)
        if phase != "Pending" and pname not in self.followers:
            self.followers[pname] = asyncio.ensure_future(self._follow_log(pname, node))

    async def _follow_log(self, pod: str, node: int) -> None:
        """The pod's log from its start, split into the node's ranks' logs."""
        ranks = [node * self.procs + i for i in range(self.procs)]
        files = {r: rank_log(self.item.job_dir, r) for r in ranks}
        await asyncio.to_thread(_truncate, list(files.values()))  # from the start again
        partial = b""
        try:
            async for chunk in self.t.client.follow_pod_log(pod, namespace=self.ns):
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                self._write(lines, files, ranks[0])
        except KubeError:
            return
        if partial:
            self._write([partial], files, ranks[0])

    def _write(self, lines: list[bytes], files: dict[int, str], first: int) -> None:
        out: dict[int, list[bytes]] = {}
        for line in lines:
            m = _RANK_LINE.match(line)
            rank = int(m.group(1)) if m else first
            if m is not None and rank in files:
                line = line[m.end() :]
            elif m is not None:
                rank = first
            out.setdefault(rank, []).append(line + b"\n")
        for rank, chunks in out.items():
            with open(files[rank], "ab") as f:
                f.write(b"".join(chunks))


def _truncate(paths: list[str]) -> None:
    for path in paths:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb"):
            pass


# -- the kinds ---------------------------------------------------------------------------------
class TrainJobTarget(KubeTrainingTarget):
    """Kubeflow Trainer v2: a ``TrainJob`` referring to a (Cluster)TrainingRuntime."""

    kind = "trainjob"
    resource = TRAINJOBS
    extra_fields = ("runtime", "runtime_kind")

    @classmethod
    def read_extra(cls, settings: ConfigReader) -> dict[str, Any]:
        kind = settings.text("runtime_kind", default="ClusterTrainingRuntime")
        if kind not in ("ClusterTrainingRuntime", "TrainingRuntime"):
            raise settings.error(
                "runtime_kind", "must be 'ClusterTrainingRuntime' or 'TrainingRuntime'"
            )
        return {
            "runtime": settings.text("runtime", default="torch-distributed"),
            "runtime_kind": kind,
        }

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "runtime": self.settings["runtime"]}

    def manifest(self, item: JobItem, name: str, tracking: dict[str, str]) -> dict[str, Any]:
        c = self.container(item, tracking, "node")
        trainer: dict[str, Any] = {
            "image": c["image"],
            "command": c["command"],
            "args": c["args"],
            "env": c["env"],
            "numNodes": item.spec.nodes,
            "numProcPerNode": item.spec.procs_per_node,
        }
        if "resources" in c:
            trainer["resourcesPerNode"] = c["resources"]
        spec: dict[str, Any] = {
            "runtimeRef": {
                "name": self.settings["runtime"],
                "kind": self.settings["runtime_kind"],
                "apiGroup": "trainer.kubeflow.org",
            },
            "trainer": trainer,
        }
        if item.spec.timeout:
            spec["activeDeadlineSeconds"] = int(max(1, item.spec.timeout))
        return {
            "apiVersion": TRAINJOBS.api_version,
            "kind": "TrainJob",
            "metadata": {"name": name, "labels": self.labels(item)},
            "spec": spec,
        }

    def pod_selector(self, name: str) -> str:
        return f"jobset.sigs.k8s.io/jobset-name={name},jobset.sigs.k8s.io/replicatedjob-name=node"

    def node_of(self, pod: dict[str, Any]) -> int | None:
        meta = pod.get("metadata") or {}
        index = (meta.get("labels") or {}).get("batch.kubernetes.io/job-completion-index") or (
            meta.get("annotations") or {}
        ).get("batch.kubernetes.io/job-completion-index")
        return int(index) if index is not None and str(index).isdigit() else None

    def state_of(self, obj: dict[str, Any]) -> tuple[str | None, str | None]:
        return trainjob_state(obj)


def trainjob_state(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """A TrainJob's conditions as our state (v2 has no Created or Running condition: running
    comes from its pods)."""
    for ctype, ours in (("Failed", "FAILED"), ("Complete", "SUCCEEDED")):
        c = condition(obj, ctype)
        if c is not None and c.get("status") == "True":
            return ours, _reason(c)
    c = condition(obj, "Suspended")
    if c is not None and c.get("status") == "True":
        return "QUEUED", _reason(c) or "suspended (waiting for admission)"
    return None, None


def launcher_manifest(
    spec: JobSpec,
    params: dict[str, Any],
    job_id: str,
    *,
    image: str,
    tracking: dict[str, str],
    runtime: str = "torch-distributed",
    runtime_kind: str = "ClusterTrainingRuntime",
    queue: str | None = None,
    max_embedded_bytes: int = 1_000_000,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The TrainJob a Kubeflow pipeline's ``train:`` step creates from its pod
    (:mod:`.launcher`): the job ``spec`` with ``params``, logging into the run ``job_id``.
    Raises ``TrackingError`` (400) for what a TrainJob target would refuse."""
    target = TrainJobTarget(
        "kubeflow",
        KubeConfig(target="kubeflow", api_url="https://kubernetes.default.svc", namespace="-"),
        {
            "image": image,
            "runtime": runtime,
            "runtime_kind": runtime_kind,
            "queue": queue,
            "max_embedded_bytes": max_embedded_bytes,
            "env": dict(env or {}),
        },
    )
    target.limit_setting = "max_embedded_bytes"
    item = JobItem(job_id, "kubeflow", None, spec, params, "")
    target.check(item)
    return target.manifest(item, object_name(spec.name, job_id), tracking)


class _V1Target(KubeTrainingTarget):
    """The legacy operator's jobs: replica specs and ``runPolicy``."""

    #: spec field of the replica specs, the container name the webhook requires.
    replica_field: ClassVar[str]
    container_name: ClassVar[str]

    def replicas(self, item: JobItem) -> dict[str, int]:
        raise NotImplementedError

    def manifest(self, item: JobItem, name: str, tracking: dict[str, str]) -> dict[str, Any]:
        spec = item.spec
        c = self.container(item, tracking, self.container_name)
        pod_spec: dict[str, Any] = {"containers": [c]}
        if self.service_account:
            pod_spec["serviceAccountName"] = self.service_account
        replica_specs = {
            rtype: {
                "replicas": count,
                "restartPolicy": spec.restart_policy,
                "template": {"metadata": {"labels": self.labels(item)}, "spec": pod_spec},
            }
            for rtype, count in self.replicas(item).items()
            if count > 0
        }
        run_policy: dict[str, Any] = {"cleanPodPolicy": "None", "backoffLimit": spec.max_restarts}
        if spec.timeout:
            run_policy["activeDeadlineSeconds"] = int(max(1, spec.timeout))
        if self.queue:
            run_policy["schedulingPolicy"] = {"queue": self.queue}
        body_spec: dict[str, Any] = {"runPolicy": run_policy, self.replica_field: replica_specs}
        if self.kind == "pytorchjob":
            body_spec["nprocPerNode"] = str(spec.procs_per_node)
        return {
            "apiVersion": self.resource.api_version,
            "kind": self.resource.kind,
            "metadata": {"name": name, "labels": self.labels(item)},
            "spec": body_spec,
        }

    def pod_selector(self, name: str) -> str:
        return f"training.kubeflow.org/job-name={name}"

    def state_of(self, obj: dict[str, Any]) -> tuple[str | None, str | None]:
        for ctype, ours in (("Failed", "FAILED"), ("Succeeded", "SUCCEEDED")):
            c = condition(obj, ctype)
            if c is not None and c.get("status") == "True":
                return ours, _reason(c)
        latest: tuple[str | None, str | None] = (None, None)
        for c in (obj.get("status") or {}).get("conditions") or []:  # the operator's order
            if c.get("status") != "True":
                continue
            mapped = {
                "Created": "QUEUED",
                "Suspended": "QUEUED",
                "Running": "RUNNING",
                "Restarting": "RESTARTING",
            }.get(c.get("type"))
            if mapped is not None:
                latest = (mapped, _reason(c) if mapped != "RUNNING" else None)
        return latest


class PyTorchJobTarget(_V1Target):
    """``PyTorchJob`` (kubeflow.org/v1): a Master and ``nodes - 1`` Workers."""

    kind = "pytorchjob"
    resource = PYTORCHJOBS
    replica_field = "pytorchReplicaSpecs"
    container_name = "pytorch"

    def replicas(self, item: JobItem) -> dict[str, int]:
        return {"Master": 1, "Worker": item.spec.nodes - 1}

    def node_of(self, pod: dict[str, Any]) -> int | None:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        rtype = labels.get("training.kubeflow.org/replica-type", "").lower()
        index = labels.get("training.kubeflow.org/replica-index", "")
        if not index.isdigit():
            return None
        return {"master": 0, "worker": int(index) + 1}.get(rtype)


class TFJobTarget(_V1Target):
    """``TFJob`` (kubeflow.org/v1): ``nodes`` Workers, one process each (worker 0 chief)."""

    kind = "tfjob"
    resource = TFJOBS
    frameworks = ("tensorflow",)
    replica_field = "tfReplicaSpecs"
    container_name = "tensorflow"

    def replicas(self, item: JobItem) -> dict[str, int]:
        return {"Worker": item.spec.nodes}

    def check(self, item: JobItem) -> None:
        if item.spec.procs_per_node != 1:
            raise invalid(
                f"procs_per_node: a TFJob runs one process per replica; use nodes: "
                f"{item.spec.world_size} and procs_per_node: 1 on target {self.name!r}."
            )
        super().check(item)

    def node_of(self, pod: dict[str, Any]) -> int | None:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get("training.kubeflow.org/replica-type", "").lower() != "worker":
            return None
        index = labels.get("training.kubeflow.org/replica-index", "")
        return int(index) if index.isdigit() else None


def _reason(c: dict[str, Any]) -> str | None:
    reason, message = c.get("reason") or "", c.get("message") or ""
    text = f"{reason}: {message}" if reason and message else reason or message
    return text or None
