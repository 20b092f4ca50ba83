"""What the Kubernetes deployment targets share (``kserve``: :mod:`.kserve`; ``kubernetes``:
:mod:`.kubeapps`).

A deployment on a cluster runs the model's image (``jupyter mlops models build-image``
records it on the model version as the tag ``mlops.image``; else the target's ``image``
template names it) with our scoring server as its entry point, on port 8080. The target
writes the cluster objects through :class:`~jupyter_mlops.kube.KubeClient`, waits for a
rollout to be ready (or failed: :class:`~.local.RolloutFailed`, the old version keeps
serving), then polls the objects every ``poll_interval`` seconds and records what they say:
status (with the reason the conditions or the pods give), URL and traffic split. A target
never keeps anything the cluster does not: after a Jupyter server restart it reads the
objects again (:meth:`attach`).

Subclasses implement :meth:`KubeTarget.apply` (write the objects for a version, optionally as
a canary), :meth:`KubeTarget.observe` (read them into an :class:`Observation`),
:meth:`KubeTarget.promote_canary`, :meth:`KubeTarget.drop_canary` and :meth:`KubeTarget.delete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..targets import ConfigReader, Target, TargetConfigError
from ..tracking.errors import invalid
from .image import IMAGE_TAG, MODEL_DIR, PORT
from .local import DeploymentContext, DeploymentItem, RolloutFailed
from .metrics import ServingSet

if TYPE_CHECKING:
    from ..kube import KubeClient, KubeConfig

#: Labels on every object (and pod) of a deployment.
LABEL_DEPLOYMENT = "mlops.jupyter.org/deployment"
LABEL_VERSION = "mlops.jupyter.org/model-version"
MANAGED_BY = {"app.kubernetes.io/managed-by": "jupyter-mlops"}
#: Annotations saying what an object (or a pod template) serves.
ANN_URI = "mlops.jupyter.org/model-uri"
ANN_VERSION = "mlops.jupyter.org/model-version"
#: The settings every Kubernetes deployment target reads beside the cluster's (KUBE_FIELDS).
COMMON_FIELDS = (
    "display_name",
    "image",
    "image_pull_policy",
    "image_pull_secrets",
    "service_account",
    "env",
    "ready_timeout",
    "poll_interval",
)
#: Characters a label value may hold (a model version is digits; a URI is an annotation).
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class Observation:
    """What the cluster objects of a deployment say now."""

    #: The service's vocabulary: STARTING, READY, UPDATING, FAILED, STOPPED.
    status: str
    reason: str | None
    url: str | None
    #: ``[{"version", "model_uri", "percent", "replicas", ...}]`` of what serves.
    traffic: list[dict[str, Any]] = field(default_factory=list)
    #: The objects are settled: the controllers saw their last change and serve it.
    ready: bool = False
    #: The version the spec asks for failed (crash loop, image pull error...).
    failed: bool = False
    #: Extra state the target keeps between polls (revision names...).
    memo: dict[str, Any] = field(default_factory=dict)


def label_value(value: str | None) -> str:
    return _LABEL_VALUE.sub("-", value or "")[:63].strip("-_.") or "none"


class KubeTarget(Target[DeploymentItem, DeploymentContext]):
    """A cluster target of deployments (see the module's docstring)."""

    #: Whether this target (as configured) can split traffic for a canary.
    supports_canary: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        kube: KubeConfig,
        *,
        display_name: str | None = None,
        image: str | None = None,
        image_pull_policy: str | None = None,
        image_pull_secrets: list[str] | None = None,
        service_account: str | None = None,
        env: dict[str, str] | None = None,
        ready_timeout: float = 600.0,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__(name, display_name)
        from ..kube import KubeClient

        self.kube = kube
        self.client: KubeClient = KubeClient(kube)
        self.namespace = kube.namespace
        self.image_template = image
        self.image_pull_policy = image_pull_policy
        self.image_pull_secrets = image_pull_secrets or []
        self.service_account = service_account
        self.env = env or {}
        self.ready_timeout = ready_timeout
        self.poll_interval = poll_interval
        #: Deployments with a rollout under way (their poller records no status meanwhile).
        self.rolling: set[str] = set()
        #: What the poller last recorded, by deployment (it writes only changes).
        self._last: dict[str, tuple[Any, ...]] = {}

    # -- configuration ------------------------------------------------------------------------
    @staticmethod
    def common_settings(name: str, s: ConfigReader) -> dict[str, Any]:
        """The :data:`COMMON_FIELDS` read from ``s`` (keyword arguments of ``__init__``)."""
        from ..kube import read_kube_config

        env = s.str_map("env", "variable name")
        for k, v in env.items():
            if not isinstance(v, str):
                raise s.error("env", f"{k}: the value must be a string")
        secrets = s.raw.get("image_pull_secrets") or []
        if not isinstance(secrets, list) or not all(isinstance(x, str) and x for x in secrets):
            raise s.error("image_pull_secrets", "must be a list of secret names")
        policy = s.text("image_pull_policy")
        if policy not in (None, "Always", "IfNotPresent", "Never"):
            raise s.error("image_pull_policy", "must be Always, IfNotPresent or Never")
        image = s.text("image")
        if image is not None:
            try:
                image.format(name="m", version="1", deployment="d")
            except (KeyError, IndexError, ValueError) as e:
                raise s.error(
                    "image",
                    f"a template may use {{name}}, {{version}} and {{deployment}} only ({e})",
                ) from None
        return {
            "kube": read_kube_config(name, s),
            "display_name": s.text("display_name"),
            "image": image,
            "image_pull_policy": policy,
            "image_pull_secrets": list(secrets),
            "service_account": s.text("service_account"),
            "env": env,
            "ready_timeout": s.number("ready_timeout", 600.0, high=86400.0),
            "poll_interval": s.number("poll_interval", 5.0, high=600.0),
        }

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "namespace": self.namespace,
            "api_url": self.kube.api_url,
            "canary": self.supports_canary,
        }

    # -- what runs ----------------------------------------------------------------------------
    @staticmethod
    def model_of(uri: str) -> tuple[str, str]:
        """``(registered name, version)`` of a resolved ``models:/<name>/<version>``."""
        m = re.fullmatch(r"models:/([^/@]+)/(\d+)/?", uri or "")
        if not m:
            raise invalid(
                f"Kubernetes targets serve registered model versions (models:/<name>/<version> "
                f"or an alias), each with its built image; got '{uri}'."
            )
        return m.group(1), m.group(2)

    async def image_for(self, ctx: DeploymentContext, item: DeploymentItem, uri: str) -> str:
        """The image serving ``uri``: the version's ``mlops.image`` tag, else the target's
        ``image`` template; a 400 saying how to get one when there is neither."""
        name, version = self.model_of(uri)
        tags = await ctx.call(ctx.version_tags, name, version)
        if tags.get(IMAGE_TAG):
            return str(tags[IMAGE_TAG])
        if self.image_template:
            return self.image_template.format(name=name, version=version, deployment=item.id)
        raise invalid(
            f"No image for {uri}: build and push one (jupyter mlops models build-image {uri} "
            f"--tag REGISTRY/IMAGE:TAG, then push it where the cluster pulls from), or set "
            f"the target's 'image' template (c.DeploymentService.targets['{self.name}'].image)."
        )

    def container(
        self, item: DeploymentItem, uri: str, version: str, image: str, name: str
    ) -> dict[str, Any]:
        """The scoring server's container: the image's entry point, serving under the
        deployment's name, probed on V2 readiness."""
        resources = item.row.get("resources") or {}
        out: dict[str, Any] = {
            "name": name,
            "image": image,
            "command": ["python", "-m", "jupyter_mlops.registry.serve"],
            "args": [
                MODEL_DIR,
                "--host",
                "0.0.0.0",
                "--port",
                str(PORT),
                "--model-name",
                item.id,
                "--model-version",
                version,
            ],
            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
            "env": [
                {"name": "MLOPS_MODEL_URI", "value": uri},
                *({"name": k, "value": v} for k, v in sorted(self.env.items())),
            ],
            "readinessProbe": {
                "httpGet": {"path": "/v2/health/ready", "port": PORT},
                "periodSeconds": 5,
            },
            "livenessProbe": {
                "httpGet": {"path": "/v2/health/live", "port": PORT},
                "periodSeconds": 20,
            },
        }
        if resources:
            out["resources"] = {"requests": dict(resources), "limits": dict(resources)}
        if self.image_pull_policy:
            out["imagePullPolicy"] = self.image_pull_policy
        return out

    def pod_extras(self) -> dict[str, Any]:
        """Pod spec fields beside the containers."""
        out: dict[str, Any] = {}
        if self.service_account:
            out["serviceAccountName"] = self.service_account
        if self.image_pull_secrets:
            out["imagePullSecrets"] = [{"name": s} for s in self.image_pull_secrets]
        return out

    @staticmethod
    def labels(item: DeploymentItem, version: str | None = None) -> dict[str, str]:
        out = {**MANAGED_BY, LABEL_DEPLOYMENT: item.id}
        if version is not None:
            out[LABEL_VERSION] = label_value(version)
        return out

    # -- for subclasses -------------------------------------------------------------------------
    async def apply(
        self,
        item: DeploymentItem,
        uri: str,
        version: str,
        image: str,
        canary: int | None,
        memo: dict[str, Any],
    ) -> None:
        """Write the objects so that ``version`` serves (``canary``: with that share of the
        traffic beside what serves now)."""
        raise NotImplementedError

    async def observe(self, item: DeploymentItem, memo: dict[str, Any]) -> Observation:
        """Read the objects (and, when not ready, their pods for a reason)."""
        raise NotImplementedError

    async def promote_canary(self, item: DeploymentItem, memo: dict[str, Any]) -> None:
        raise NotImplementedError

    async def drop_canary(self, item: DeploymentItem, memo: dict[str, Any]) -> None:
        raise NotImplementedError

    async def delete(self, item: DeploymentItem) -> None:
        raise NotImplementedError

    async def validate_change(self, item: DeploymentItem, canary: int | None) -> None:
        """Refuse what this target cannot do (a canary where it cannot split traffic)."""
        if canary is not None and not self.supports_canary:
            raise invalid(f"Target '{self.name}' cannot split traffic: no canary rollouts.")

    # -- the target interface -------------------------------------------------------------------
    def _memo(self, item: DeploymentItem) -> dict[str, Any]:
        return dict((item.row.get("state") or {}).get("memo") or {})

    async def submit(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        """Serve ``item.uri`` (as a canary with ``item.canary`` percent): write the objects,
        wait until the version is ready, record it. Raises :class:`RolloutFailed` (what
        served keeps serving)."""
        uri, version = item.uri, item.version
        assert uri is not None
        _, version = self.model_of(uri)
        image = await self.image_for(ctx, item, uri)
        memo = self._memo(item)
        self.rolling.add(item.id)
        try:
            await ctx.set_ref(item, f"{self.namespace}/{item.id}")
            memo["spec"] = {"version": version, "model_uri": uri, "image": image}
            if item.canary is not None:
                memo["canary"] = {"version": version, "model_uri": uri, "percent": item.canary}
            else:
                memo.pop("canary", None)
            try:
                await self.apply(item, uri, version, image, item.canary, memo)
            except Exception as e:
                from ..kube import KubeError

                if isinstance(e, KubeError):
                    raise RolloutFailed(e.message) from None
                raise
            seen = await self._until_rolled_out(item, ctx, memo)
            if item.canary is None:
                memo["served_image"] = image
                await ctx.switched(item.row, version, uri, seen.url or "", item.action)
            else:
                memo["canary"]["image"] = image
        finally:
            self.rolling.discard(item.id)
        await self._record(item, ctx, seen, memo, force=True)
        self._watch(item, ctx)

    async def _until_rolled_out(
        self, item: DeploymentItem, ctx: DeploymentContext, memo: dict[str, Any]
    ) -> Observation:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            seen = await self.observe(item, memo)
            memo.update(seen.memo)
            item.row["state"] = self._state(item, memo, seen)
            await ctx.transition(item, None, state=item.row["state"], url=seen.url)
            if rolled_out(seen, memo):
                return seen
            if seen.failed:
                await self._undo(item, memo)
                raise RolloutFailed(seen.reason or "the new version failed")
            if time.monotonic() > deadline:
                await self._undo(item, memo)
                raise RolloutFailed(
                    f"not ready after {self.ready_timeout:.0f} s "
                    f"(targets['{self.name}'].ready_timeout): {seen.reason or 'no reason given'}"
                )
            await asyncio.sleep(min(self.poll_interval, 1.0))

    async def _undo(self, item: DeploymentItem, memo: dict[str, Any]) -> None:
        """A failed rollout: give the traffic back to what served (a failed canary is
        dropped; a failed update is written back to the served version)."""
        memo.pop("canary", None)
        served = item.row.get("served_uri")
        if item.canary is not None:
            with contextlib.suppress(Exception):
                await self.drop_canary(item, memo)
        elif served and memo.get("served_image"):
            _, version = self.model_of(served)
            memo["spec"] = {"version": version, "model_uri": served, "image": memo["served_image"]}
            with contextlib.suppress(Exception):
                await self.apply(item, served, version, memo["served_image"], None, memo)

    async def promote(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        """The canary gets all the traffic (what served before stops)."""
        memo = self._memo(item)
        canary = memo.get("canary")
        if not canary:
            raise invalid(f"Deployment '{item.id}' has no canary to promote.")
        self.rolling.add(item.id)
        try:
            await self.promote_canary(item, memo)
            memo.pop("canary", None)
            seen = await self._until_rolled_out(item, ctx, memo)
            memo["served_image"] = canary.get("image")
            await ctx.switched(
                item.row, canary["version"], canary["model_uri"], seen.url or "", "promote"
            )
        finally:
            self.rolling.discard(item.id)
        await self._record(item, ctx, seen, memo, force=True)

    async def abort(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        """The canary gets no traffic any more: what served keeps all of it."""
        memo = self._memo(item)
        if not memo.get("canary"):
            raise invalid(f"Deployment '{item.id}' has no canary to roll back.")
        self.rolling.add(item.id)
        try:
            memo.pop("canary", None)
            await self.drop_canary(item, memo)
            served = item.row.get("served_uri")
            if served:
                memo["spec"] = {
                    "version": self.model_of(served)[1],
                    "model_uri": served,
                    "image": memo.get("served_image"),
                }
            seen = await self._until_rolled_out(item, ctx, memo)
        finally:
            self.rolling.discard(item.id)
        await self._record(item, ctx, seen, memo, force=True)

    async def attach(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        """After a restart: read the objects again and keep polling them."""
        self._watch(item, ctx)

    async def cancel(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        task = self.watchers.get(item.id)
        if task is not None:
            task.cancel()
        self._last.pop(item.id, None)
        await self.delete(item)

    async def logs(self, item: DeploymentItem, *, part: str | None = None) -> bytes | None:
        """The scoring containers' logs of every pod of the deployment, each headed by its
        pod's name."""
        found = await self.client.logs(f"{LABEL_DEPLOYMENT}={item.id}", tail_lines=2000)
        if not found:
            return None
        return b"\n".join(f"==> pod {pod} <==\n".encode() + data for pod, data in found.items())

    async def serving(self, item: DeploymentItem) -> list[ServingSet]:
        """What serves now, by version; each pod's ``/metrics`` through the API server's
        pod proxy (a pod that does not answer is not scraped)."""
        state = item.row.get("state") or {}
        sets = []
        for t in state.get("traffic") or []:
            pods = t.get("pods") or []
            texts = []
            for pod in pods:
                with contextlib.suppress(Exception):
                    texts.append(await self.client.pod_proxy(pod, PORT, "metrics"))
            sets.append(
                ServingSet(
                    t.get("version"),
                    t.get("model_uri"),
                    int(t.get("percent") or 0),
                    int(t.get("replicas") or len(pods)),
                    texts,
                )
            )
        return sets

    async def stop(self) -> None:
        await super().stop()
        await self.client.close()

    # -- polling ----------------------------------------------------------------------------------
    def _state(
        self, item: DeploymentItem, memo: dict[str, Any], seen: Observation
    ) -> dict[str, Any]:
        return {"namespace": self.namespace, "memo": memo, "traffic": seen.traffic}

    def _watch(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        self.watchers.start(item.id, lambda: self._poll(item, ctx))

    async def _poll(self, item: DeploymentItem, ctx: DeploymentContext) -> None:
        from ..kube import KubeError

        trouble: str | None = None
        while True:
            fresh = await ctx.call(ctx.svc.db.get, item.id)
            if fresh is None:
                return
            # While a rollout is under way (requested or running) its task records what
            # happens; what this reads may be from before it and is not written (below).
            generation = int(fresh.get("generation") or 0)
            if item.id not in self.rolling and generation == fresh.get("observed_generation"):
                item.row = fresh
                try:
                    seen = await self.observe(item, self._memo(item))
                    trouble = None
                except KubeError as e:
                    why = f"cannot read the cluster now: {e.message}"
                    if e.message != trouble and await ctx.observed(
                        item, generation, None, reason=why
                    ):
                        trouble = e.message
                else:
                    await self._record(item, ctx, seen, generation=generation)
            await asyncio.sleep(self.poll_interval)

    async def _record(
        self,
        item: DeploymentItem,
        ctx: DeploymentContext,
        seen: Observation,
        memo: dict[str, Any] | None = None,
        force: bool = False,
        generation: int | None = None,
    ) -> None:
        """Write what ``seen`` says (only changes, unless ``force``). ``generation``: seen
        by the poller outside a rollout, so written only if no rollout started since (a
        rollout's own task passes None)."""
        memo = {**(self._memo(item) if memo is None else memo), **seen.memo}
        if item.row.get("served_uri") and seen.status == "FAILED" and seen.traffic:
            seen.status = "READY"  # a failed new version: the old one serves
        key = (seen.status, seen.reason, seen.url, repr(seen.traffic), repr(memo))
        if not force and self._last.get(item.id) == key:
            return
        if generation is not None and seen.status == "READY" and not seen.reason:
            seen.reason = item.row.get("rollout_error")  # what failed last stays said
        state = self._state(item, memo, seen)
        if generation is None:
            await ctx.transition(item, seen.status, reason=seen.reason, url=seen.url, state=state)
        elif not await ctx.observed(
            item, generation, seen.status, reason=seen.reason, url=seen.url, state=state
        ):
            return
        self._last[item.id] = key
        item.row["state"] = state


def rolled_out(seen: Observation, memo: dict[str, Any]) -> bool:
    """The traffic is where ``memo`` wants it: the canary's version its share and the served
    version the rest, or (no canary) the spec's version all of it."""
    if not seen.ready:
        return False
    share: dict[Any, int] = {}
    for t in seen.traffic:
        share[t.get("version")] = share.get(t.get("version"), 0) + int(t.get("percent") or 0)
    canary = memo.get("canary")
    if canary:
        return share.get(canary["version"], 0) == canary["percent"] and sum(share.values()) == 100
    return share == {(memo.get("spec") or {}).get("version"): 100}


def pod_reason(pods: list[dict[str, Any]]) -> str | None:
    """Why the pods do not serve, as ``kubectl get pods`` would say it: a waiting or
    terminated container's reason and message (a crash loop with its last exit), else an
    unschedulable pod's condition."""
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cs in status.get("containerStatuses") or []:
            state = cs.get("state") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            waiting = state.get("waiting") or {}
            term = state.get("terminated") or {}
            if waiting.get("reason") and waiting["reason"] != "ContainerCreating":
                text = f"pod {name}: {waiting['reason']}"
                if waiting.get("message"):
                    text += f": {waiting['message']}"
                if last:
                    text += f" (last exit code {last.get('exitCode')}"
                    text += f": {last['message']})" if last.get("message") else ")"
                return text
            if term and term.get("exitCode"):
                text = f"pod {name}: {term.get('reason') or 'Error'} (exit code {term['exitCode']})"
                if term.get("message"):
                    text += f": {term['message']}"
                return text
        for c in status.get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                return f"pod {name}: {c.get('reason')}: {c.get('message')}"
    return None


def condition_reason(obj: dict[str, Any] | None, *types: str) -> str | None:
    """``Type: Reason: message`` of the first of ``types`` that is not True."""
    conds = {c.get("type"): c for c in ((obj or {}).get("status") or {}).get("conditions") or []}
    for t in types:
        c = conds.get(t)
        if c is not None and c.get("status") != "True":
            parts = [t, c.get("reason") or c.get("status"), c.get("message")]
            return ": ".join(str(p) for p in parts if p)
    return None


def check_replicas_setting(s: ConfigReader, key: str, default: int | None) -> int | None:
    v = s.raw.get(key, default)
    if v is None:
        return None
    if type(v) is not int or not 0 <= v <= 1000:
        raise TargetConfigError(f"{s.where}.{key}: must be an integer from 0 to 1000")
    return v
