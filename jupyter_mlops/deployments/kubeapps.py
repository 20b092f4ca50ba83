"""The ``kubernetes`` deployment target, where KServe is absent: a ``Deployment`` (apps/v1) of
the model's image behind a ``Service``, with a ``HorizontalPodAutoscaler`` (autoscaling/v2)
when ``max_replicas`` is above the deployment's replicas.

- Rollout: the Deployment's pod template changes (a rolling update that keeps every old pod
  until a new one is ready: ``maxUnavailable: 0``). A rollout that fails (a crash loop, an
  image that cannot be pulled) writes the served version's template back.
- Canary: a second Deployment ``<name>-canary`` whose pods carry the Service's selector
  labels, so the Service spreads requests over both in proportion to their ready pods; the
  replicas are split to approach the percentage (``replicas`` 5 and 20 %: 4 + 1), the share
  recorded is the one the replicas give. Promote: the main Deployment takes the canary's
  template, then the canary Deployment goes. Rollback: the canary Deployment goes.
- Status: the Deployments' ``Available`` and ``Progressing`` conditions (``ProgressDeadlineExceeded``
  is a failure) and the pods' container states (``CrashLoopBackOff`` with the last exit, an
  image pull error). URL: by ``service_type``: ``ClusterIP`` (default) the cluster DNS name,
  ``NodePort`` ``http://<node_address>:<nodePort>``, ``LoadBalancer`` its ingress address.
- No scale to zero (an HPA cannot go below one replica).
"""

from __future__ import annotations

from typing import Any

from ..kube import DEPLOYMENTS, KUBE_FIELDS, PODS, SERVICES, Resource
from ..targets import ConfigReader
from .image import PORT
from .kubebase import (
    ANN_URI,
    ANN_VERSION,
    COMMON_FIELDS,
    LABEL_DEPLOYMENT,
    LABEL_VERSION,
    KubeTarget,
    Observation,
    check_replicas_setting,
    condition_reason,
    pod_reason,
)
from .local import DeploymentItem

HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
#: Pod label telling the main Deployment's pods from the canary's.
LABEL_TRACK = "mlops.jupyter.org/track"
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")


def canary_split(replicas: int, percent: int) -> tuple[int, int]:
    """``(main, canary)`` replicas whose ratio comes closest to ``percent`` (each at least
    one)."""
    canary = max(1, round(replicas * percent / 100))
    return max(1, replicas - canary), canary


class KubeAppsTarget(KubeTarget):
    """Deployments as a Deployment + Service (+ HPA) (see the module's docstring)."""

    kind = "kubernetes"

    def __init__(
        self,
        name: str,
        *,
        service_type: str = "ClusterIP",
        service_port: int = 80,
        node_address: str | None = None,
        max_replicas: int | None = None,
        cpu_utilization: int = 70,
        cluster_domain: str = "cluster.local",
        **common: Any,
    ) -> None:
        super().__init__(name, **common)
        self.service_type = service_type
        self.service_port = service_port
        self.node_address = node_address
        self.max_replicas = max_replicas
        self.cpu_utilization = cpu_utilization
        self.cluster_domain = cluster_domain

    @classmethod
    def from_config(cls, name: str, settings: ConfigReader) -> KubeAppsTarget:
        settings.check_unknown(
            {
                *KUBE_FIELDS,
                *COMMON_FIELDS,
                "service_type",
                "service_port",
                "node_address",
                "max_replicas",
                "cpu_utilization",
                "cluster_domain",
            }
        )
        stype = settings.text("service_type", default="ClusterIP") or "ClusterIP"
        if stype not in SERVICE_TYPES:
            raise settings.error("service_type", f"must be one of {', '.join(SERVICE_TYPES)}")
        node = settings.text("node_address")
        if stype == "NodePort" and not node:
            raise settings.error(
                "node_address", "required with service_type NodePort (a node's address)"
            )
        port = settings.number("service_port", 80, low=0, high=65535, what="a port")
        util = settings.number("cpu_utilization", 70, low=0, high=100, what="a percentage")
        return cls(
            name,
            service_type=stype,
            service_port=int(port),
            node_address=node,
            max_replicas=check_replicas_setting(settings, "max_replicas", None),
            cpu_utilization=int(util),
            cluster_domain=settings.text("cluster_domain", default="cluster.local")
            or "cluster.local",
            **cls.common_settings(name, settings),
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "service_type": self.service_type}

    # -- writing ----------------------------------------------------------------------------------
    def deployment(
        self, item: DeploymentItem, uri: str, version: str, image: str, track: str, replicas: int
    ) -> dict[str, Any]:
        name = item.id if track == "main" else f"{item.id}-canary"
        selector = {LABEL_DEPLOYMENT: item.id, LABEL_TRACK: track}
        return {
            "apiVersion": DEPLOYMENTS.api_version,
            "kind": DEPLOYMENTS.kind,
            "metadata": {
                "name": name,
                "labels": {**self.labels(item), LABEL_TRACK: track},
                "annotations": {ANN_URI: uri, ANN_VERSION: version},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
                },
                "progressDeadlineSeconds": max(60, int(self.ready_timeout)),
                "template": {
                    "metadata": {
                        "labels": {**self.labels(item, version), LABEL_TRACK: track},
                        "annotations": {ANN_URI: uri, ANN_VERSION: version},
                    },
                    "spec": {
                        "containers": [self.container(item, uri, version, image, "scoring")],
                        **self.pod_extras(),
                    },
                },
            },
        }

    def service(self, item: DeploymentItem) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": item.id, "labels": self.labels(item)},
            "spec": {
                "type": self.service_type,
                # both tracks: the canary's pods get requests in proportion to their number
                "selector": {LABEL_DEPLOYMENT: item.id},
                "ports": [
                    {
                        "name": "http",
                        "port": self.service_port,
                        "targetPort": PORT,
                        "protocol": "TCP",
                    }
                ],
            },
        }

    def hpa(self, item: DeploymentItem, replicas: int) -> dict[str, Any] | None:
        if not self.max_replicas or self.max_replicas <= replicas:
            return None
        return {
            "apiVersion": HPAS.api_version,
            "kind": HPAS.kind,
            "metadata": {"name": item.id, "labels": self.labels(item)},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": DEPLOYMENTS.api_version,
                    "kind": "Deployment",
                    "name": item.id,
                },
                "minReplicas": replicas,
                "maxReplicas": self.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {
                                "type": "Utilization",
                                "averageUtilization": self.cpu_utilization,
                            },
                        },
                    }
                ],
            },
        }

    async def _put(self, res: Resource, body: dict[str, Any]) -> None:
        """Create the object, or replace its spec, labels and annotations."""
        name = body["metadata"]["name"]
        if await self.client.find(res, name) is None:
            await self.client.create(res, body)
        else:
            await self.client.patch(res, name, {"metadata": body["metadata"], "spec": body["spec"]})

    async def apply(
        self,
        item: DeploymentItem,
        uri: str,
        version: str,
        image: str,
        canary: int | None,
        memo: dict[str, Any],
    ) -> None:
        replicas = int(item.row.get("replicas") or 1)
        if canary is None:
            await self._put(
                DEPLOYMENTS, self.deployment(item, uri, version, image, "main", replicas)
            )
            await self.client.delete(DEPLOYMENTS, f"{item.id}-canary", missing_ok=True)
        else:
            served = item.row.get("served_uri")
            main, extra = canary_split(replicas, canary)
            if served is None:
                from ..tracking.errors import invalid

                raise invalid("A first deployment has nothing to split traffic with.")
            await self.client.patch(DEPLOYMENTS, item.id, {"spec": {"replicas": main}})
            await self._put(
                DEPLOYMENTS, self.deployment(item, uri, version, image, "canary", extra)
            )
            # the share the replicas give is the share recorded (and waited for)
            memo["canary"]["percent"] = round(100 * extra / (main + extra))
        if await self.client.find(SERVICES, item.id) is None:  # its address stays as it is
            await self.client.create(SERVICES, self.service(item))
        hpa = self.hpa(item, replicas)
        if hpa is not None:
            await self._put(HPAS, hpa)
        else:
            await self.client.delete(HPAS, item.id, missing_ok=True)

    async def promote_canary(self, item: DeploymentItem, memo: dict[str, Any]) -> None:
        canary = await self.client.get(DEPLOYMENTS, f"{item.id}-canary")
        ann = canary["metadata"].get("annotations") or {}
        uri, version = ann.get(ANN_URI) or "", ann.get(ANN_VERSION) or ""
        image = canary["spec"]["template"]["spec"]["containers"][0]["image"]
        replicas = int(item.row.get("replicas") or 1)
        await self._put(DEPLOYMENTS, self.deployment(item, uri, version, image, "main", replicas))
        memo["spec"] = {"version": version, "model_uri": uri, "image": image}
        memo["drop_canary_when_ready"] = True

    async def drop_canary(self, item: DeploymentItem, memo: dict[str, Any]) -> None:
        await self.client.delete(DEPLOYMENTS, f"{item.id}-canary", missing_ok=True)
        replicas = int(item.row.get("replicas") or 1)
        await self.client.patch(DEPLOYMENTS, item.id, {"spec": {"replicas": replicas}})

    async def delete(self, item: DeploymentItem) -> None:
        for res, name in (
            (HPAS, item.id),
            (SERVICES, item.id),
            (DEPLOYMENTS, f"{item.id}-canary"),
            (DEPLOYMENTS, item.id),
        ):
            await self.client.delete(res, name, missing_ok=True, propagation="Foreground")

    # -- reading ----------------------------------------------------------------------------------
    def _url(self, svc: dict[str, Any] | None) -> str | None:
        if svc is None:
            return None
        spec = svc.get("spec") or {}
        port = (spec.get("ports") or [{}])[0]
        if self.service_type == "NodePort":
            return (
                f"http://{self.node_address}:{port['nodePort']}" if port.get("nodePort") else None
            )
        if self.service_type == "LoadBalancer":
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if not ingress:
                return None
            host = ingress[0].get("ip") or ingress[0].get("hostname")
            return f"http://{host}:{port.get('port', self.service_port)}"
        host = f"{item_name(svc)}.{self.namespace}.svc.{self.cluster_domain}"
        return f"http://{host}" + (f":{self.service_port}" if self.service_port != 80 else "")

    async def observe(self, item: DeploymentItem, memo: dict[str, Any]) -> Observation:
        main = await self.client.find(DEPLOYMENTS, item.id)
        canary = await self.client.find(DEPLOYMENTS, f"{item.id}-canary")
        svc = await self.client.find(SERVICES, item.id)
        if main is None:
            return Observation(
                "FAILED",
                f"the Deployment {self.namespace}/{item.id} does not exist "
                "(deleted outside jupyter-mlops?): update the deployment to create it again",
                self._url(svc),
            )
        if memo.get("drop_canary_when_ready") and canary is not None and _settled(main):
            await self.drop_canary(item, memo)
            memo.pop("drop_canary_when_ready", None)
            canary = None
        elif canary is None:
            memo.pop("drop_canary_when_ready", None)
        pods = (await self.client.list(PODS, label_selector=f"{LABEL_DEPLOYMENT}={item.id}")).get(
            "items"
        ) or []
        traffic: list[dict[str, Any]] = []
        total = 0
        groups = []
        for dep, track in ((main, "main"), (canary, "canary")):
            if dep is None:
                continue
            ready_pods = [
                p
                for p in pods
                if (p["metadata"].get("labels") or {}).get(LABEL_TRACK) == track and _ready(p)
            ]
            by_version: dict[str, list[dict[str, Any]]] = {}
            for p in ready_pods:
                by_version.setdefault(
                    (p["metadata"].get("annotations") or {}).get(ANN_URI) or "", []
                ).append(p)
            for uri, ps in by_version.items():
                version = (ps[0]["metadata"].get("labels") or {}).get(LABEL_VERSION)
                groups.append((track, version, uri, ps))
                total += len(ps)
        for track, version, uri, ps in groups:
            traffic.append(
                {
                    "version": version,
                    "model_uri": uri,
                    "percent": round(100 * len(ps) / total) if total else 0,
                    "replicas": len(ps),
                    "track": track,
                    "pods": [p["metadata"]["name"] for p in ps],
                }
            )
        if traffic and sum(t["percent"] for t in traffic) != 100:  # rounding
            traffic[0]["percent"] += 100 - sum(t["percent"] for t in traffic)
        settled = _settled(main) and (canary is None or _settled(canary))
        url = self._url(svc)
        failed_dep = next(
            (
                d
                for d in (main, canary)
                if d is not None
                and (condition_reason(d, "Progressing") or "").startswith(
                    "Progressing: ProgressDeadlineExceeded"
                )
            ),
            None,
        )
        unready = [p for p in pods if not _ready(p)]
        why = pod_reason(unready)
        crash = why is not None and any(
            k in why for k in ("CrashLoopBackOff", "ImagePull", "ErrImage", "CreateContainer")
        )
        reason = None
        if not settled or failed_dep is not None or why:
            parts = [
                condition_reason(d, "Available", "Progressing")
                for d in (main, canary)
                if d is not None
            ]
            parts.append(why)
            reason = "; ".join(p for p in parts if p) or None
        if failed_dep is not None or crash:
            status = "FAILED"
        elif settled and url is not None:
            status = "READY"
        else:
            status = "UPDATING" if item.row.get("served_uri") else "STARTING"
        return Observation(
            status,
            reason if status != "READY" else None,
            url,
            traffic,
            ready=settled and url is not None and not memo.get("drop_canary_when_ready"),
            failed=failed_dep is not None or crash,
        )


def item_name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _settled(dep: dict[str, Any]) -> bool:
    """The Deployment's rollout finished, as ``kubectl rollout status`` says it: its
    controller saw the last change (``observedGeneration`` caught up with the generation:
    right after a PATCH it still describes the previous template), every pod runs the
    current template and is available."""
    spec, st = dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas") or 0)
    return (
        int(st.get("observedGeneration") or 0) >= int(dep["metadata"].get("generation") or 0)
        and int(st.get("updatedReplicas") or 0) == want
        and int(st.get("availableReplicas") or 0) == want
        and int(st.get("replicas") or 0) == want
    )


def _ready(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    if st.get("phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
    )
