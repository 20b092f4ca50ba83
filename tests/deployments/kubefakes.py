"""Fake controllers for the deployment targets, on tests/hub/fakek8s.py's API server.

:class:`FakeServing` registers KServe's ``InferenceService`` type (and the HPA type) and adds
controllers that do what the real ones do, with the fake kubelet running each pod's container
command as a local process:

- **KServe, Knative mode**: a spec change of the predictor's template makes a revision
  ``<isvc>-predictor-0000N`` with its pods (labels ``serving.kserve.io/inferenceservice``,
  ``component: predictor``, ``serving.knative.dev/revision`` and the predictor's own). Once its
  pods are ready the traffic moves as KServe's canary rollout does: all of it, or with
  ``canaryTrafficPercent`` that share beside ``latestRolledoutRevision`` (0: everything pinned
  to the previous one). Status: the conditions ``Ready``, ``PredictorReady``, ``IngressReady``,
  ``RoutesReady``, ``LatestDeploymentReady``; ``url`` / ``address.url``;
  ``components.predictor.{latestCreatedRevision, latestReadyRevision, latestRolledoutRevision,
  previousRolledoutRevision, traffic, url}``; a revision whose container exits gets
  ``RevisionFailed`` and ``modelStatus.lastFailureInfo`` (and its pod ``CrashLoopBackOff``),
  while the previous revision keeps serving. The URL is a local "ingress gateway" that splits
  requests by the traffic percentages (smoothly, not at random).
- **Deployment** (apps/v1): a template change starts the new pods, and the old ones are
  deleted once every new one is ready (``maxUnavailable: 0``); ``status`` counts replicas,
  updated, ready and available ones, with ``Available`` and ``Progressing`` conditions.
- **Service**: ``NodePort`` services get a node port (a free local port) where a proxy spreads
  requests round robin over the ready pods the selector matches (their endpoints).

Like the real controllers, these see a spec change some time after it is written (their
informer's watch and work queue): :attr:`FakeServing.lag` seconds. Until then the object's
``status`` (and its ``observedGeneration``) still describes the previous generation, so a
client that reads right after its PATCH sees the previous rollout's status, as on a cluster.

Pods share 127.0.0.1, so the scoring container's ``--port 8080`` is moved to a free port (the
API server maps a port named ``notebook-port``; the controller puts the mapped port in the
container's arguments, and in the annotation ``fakek8s/port.8080`` for the pod proxy), and the
image's model directory ``/opt/ml/model`` becomes the local directory :attr:`FakeServing.images`
gives for the image (what building the image baked in).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import socket
import uuid
from typing import Any

import aiohttp
from aiohttp import web
from fakek8s import FakeKubernetes, now

ISVC = "inferenceservices.serving.kserve.io"
MODEL_DIR = "/opt/ml/model"
PORT = 8080


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(pod: dict) -> bool:
    st = pod.get("status") or {}
    return (
        st.get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in st.get("conditions") or []
        )
    )


def _template(predictor: dict) -> str:
    """What makes a new Knative revision: the predictor's pod template, which KServe builds
    from every predictor field but the traffic (replicas become its autoscaling
    annotations)."""
    return json.dumps(
        {k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}, sort_keys=True
    )


def _port(pod: dict) -> int:
    return int((pod["metadata"].get("annotations") or {})[f"fakek8s/port.{PORT}"])


class Proxy:
    """A local HTTP listener forwarding each request to a backend ``choose()`` picks (a pod's
    port), answering 503 when there is none."""

    def __init__(self, choose: Any, port: int = 0) -> None:
        self.choose = choose
        self.port = port
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> int:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{path:.*}", self.forward)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.port = self.runner.addresses[0][1]
        self.session = aiohttp.ClientSession()
        return self.port

    async def forward(self, request: web.Request) -> web.Response:
        port = self.choose()
        if port is None:
            return web.Response(status=503, text="no healthy upstream")
        assert self.session is not None
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")
        }
        try:
            async with self.session.request(
                request.method,
                f"http://127.0.0.1:{port}{request.rel_url}",
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=60),
            ) as r:
                data = await r.read()
                return web.Response(body=data, status=r.status, content_type=r.content_type)
        except (aiohttp.ClientError, OSError) as e:
            return web.Response(status=503, text=f"upstream connect error: {e}")

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.runner is not None:
            await self.runner.cleanup()


class FakeServing:
    """The fake KServe, Deployment and Service controllers (see the module's docstring)."""

    def __init__(
        self, k8s: FakeKubernetes, images: dict[str, str] | None = None, lag: float = 0.3
    ) -> None:
        self.k8s = k8s
        #: Seconds before a controller acts on a spec change (the status lags meanwhile).
        self.lag = lag
        #: (kind, ns, name) → (generation, loop time it was first seen)
        self.seen: dict[tuple[str, str, str], tuple[int, float]] = {}
        self.locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        #: image → local directory of the model it holds
        self.images: dict[str, str] = dict(images or {})
        self.loops: dict[tuple[str, str, str], asyncio.Task] = {}
        self.proxies: dict[tuple[str, str, str], Proxy] = {}
        self.isvc_state: dict[tuple[str, str], dict[str, Any]] = {}
        k8s.register("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
        k8s.register("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
        k8s.add_controller(ISVC, self._isvc_event)
        k8s.add_controller("deployments.apps", self._deployment_event)
        k8s.add_controller("services", self._service_event)

    # -- pods -----------------------------------------------------------------------------------------------
    async def _create_pod(
        self, ns: str, name: str, owner: dict, labels: dict, annotations: dict, spec: dict
    ) -> dict:
        spec = copy.deepcopy(spec)
        c = spec["containers"][0]
        local = self.images.get(c["image"])
        c["args"] = [local if (a == MODEL_DIR and local) else a for a in c.get("args") or []]
        c["ports"] = [{"name": "notebook-port", "containerPort": PORT}]  # mapped to a free port
        c.pop("readinessProbe", None)
        c.pop("livenessProbe", None)
        body = {
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": dict(annotations),
                "ownerReferences": [
                    {
                        "apiVersion": owner["apiVersion"],
                        "kind": owner["kind"],
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": spec,
        }
        await self.k8s.create_object("pods", ns, body)
        # No await between the create and this rewrite: the kubelet starts the container after
        # it (on the loop's next turn) with the port the API server mapped.
        pod = self.k8s.find("pods", ns, name)
        assert pod is not None
        mapped = pod["spec"]["containers"][0]["ports"][0]["containerPort"]
        args = pod["spec"]["containers"][0]["args"]
        if "--port" in args:
            args[args.index("--port") + 1] = str(mapped)
        pod["metadata"]["annotations"][f"fakek8s/port.{PORT}"] = str(mapped)
        await self.k8s._emit("pods", "MODIFIED", pod, notify=False)
        return pod

    async def _crash_loop(self, pod: dict) -> str | None:
        """A pod whose container exited: shown as the kubelet shows a restarting container
        (``CrashLoopBackOff`` with the last exit); its failure message, or None."""
        st = pod.get("status") or {}
        cs = (st.get("containerStatuses") or [{}])[0]
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason") == "CrashLoopBackOff":
            return (cs.get("lastState") or {}).get("terminated", {}).get("message") or "crashed"
        term = state.get("terminated")
        if st.get("phase") != "Failed" or not term:
            return None
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        log = self.k8s.logs.get((ns, name))
        tail = ""
        if log is not None and log.exists():
            lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
            tail = " | ".join(lines[-3:])[-600:]
        cs = {
            **cs,
            "ready": False,
            "restartCount": 1,
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 10s restarting failed container={cs.get('name')} pod={name}",
                }
            },
            "lastState": {
                "terminated": {"exitCode": term.get("exitCode"), "reason": "Error", "message": tail}
            },
        }
        await self.k8s.set_status(
            "pods", ns, name, phase="Running", containerStatuses=[cs], conditions=[]
        )
        return tail or "crashed"

    def _pods(self, ns: str, selector: dict[str, str]) -> list[dict]:
        return [
            p
            for p in self.k8s.snapshot("pods", ns)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            and not p["metadata"].get("deletionTimestamp")
        ]

    def _loop(self, key: tuple[str, str, str], fn: Any) -> None:
        task = self.loops.get(key)
        if task is None or task.done():
            self.loops[key] = asyncio.ensure_future(self._guard(key, fn))

    async def _guard(self, key: tuple[str, str, str], fn: Any) -> None:
        try:
            while True:
                again = await fn()
                if not again:
                    return
                await self.k8s.changed(0.5)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a broken fake: the test sees it
            import traceback

            traceback.print_exc()
            self.k8s.controller_errors.append(f"{key}: {type(e).__name__}: {e}")

    async def _stop(self, key: tuple[str, str, str]) -> None:
        task = self.loops.pop(key, None)
        if task is not None:
            task.cancel()
        proxy = self.proxies.pop(key, None)
        if proxy is not None:
            await proxy.stop()

    def _lagging(self, key: tuple[str, str, str], obj: dict) -> bool:
        """Whether the controller has not yet seen ``obj``'s generation (younger than
        :attr:`lag`): it leaves the status as it is meanwhile."""
        now_t = asyncio.get_running_loop().time()
        gen = int(obj["metadata"].get("generation") or 1)
        seen = self.seen.get(key)
        if seen is None or seen[0] != gen:
            seen = self.seen[key] = (gen, now_t)
        return now_t - seen[1] < self.lag

    async def close(self) -> None:
        for key in list(self.loops) + list(self.proxies):
            await self._stop(key)

    # -- KServe (Knative mode) --------------------------------------------------------------------------------
    async def _isvc_event(self, k8s: FakeKubernetes, event: str, obj: dict) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        key = (ISVC, ns, name)
        if event == "DELETED":
            await self._stop(key)
            self.isvc_state.pop((ns, name), None)
            return
        await asyncio.sleep(self.lag)  # the work queue's delay
        # one event at a time per object, as a controller's work queue hands them out
        async with self.locks.setdefault(key, asyncio.Lock()):
            current = self.k8s.find(ISVC, ns, name)
            if current is None:  # deleted meanwhile
                return
            obj = current
            st = self.isvc_state.setdefault(
                (ns, name), {"revisions": [], "rolled": None, "previous": None, "n": 0}
            )
            if key not in self.proxies:
                proxy = Proxy(lambda: self._pick(ns, name))
                await proxy.start()
                self.proxies[key] = proxy
            pred = obj["spec"]["predictor"]
            template = _template(pred)
            revs = st["revisions"]
            if not revs or revs[-1]["template"] != template:
                st["n"] += 1
                rev = f"{name}-predictor-{st['n']:05d}"
                revs.append(
                    {"name": rev, "template": template, "generation": obj["metadata"]["generation"]}
                )
                labels = {
                    "serving.kserve.io/inferenceservice": name,
                    "component": "predictor",
                    "serving.knative.dev/revision": rev,
                    **(pred.get("labels") or {}),
                }
                spec = {"containers": pred["containers"]}
                for _ in range(max(1, int(pred.get("minReplicas") or 0))):
                    await self._create_pod(
                        ns,
                        f"{rev}-deployment-{uuid.uuid4().hex[:5]}",
                        obj,
                        labels,
                        pred.get("annotations") or {},
                        spec,
                    )
        self._loop(key, lambda: self._reconcile_isvc(ns, name))

    def _pick(self, ns: str, name: str) -> int | None:
        """The ingress gateway: the next request's pod, by the traffic split."""
        st = self.isvc_state.get((ns, name))
        if not st or not st.get("traffic"):
            return None
        n = st["count"] = st.get("count", 0) + 1
        # smooth weighted round robin (nginx's): every 100 requests follow the split exactly
        if st.get("credit_for") != st["traffic"]:  # a new split starts the count over
            st["credit"], st["credit_for"] = {}, st["traffic"]
        credit = st["credit"]
        for t in st["traffic"]:
            credit[t["revisionName"]] = credit.get(t["revisionName"], 0) + t["percent"]
        chosen = max(
            (t["revisionName"] for t in st["traffic"] if t["percent"]), key=lambda r: credit[r]
        )
        credit[chosen] -= 100
        pods = [p for p in self._pods(ns, {"serving.knative.dev/revision": chosen}) if _ready(p)]
        if not pods:
            return None
        return _port(pods[n % len(pods)])

    async def _reconcile_isvc(self, ns: str, name: str) -> bool:
        obj = self.k8s.find(ISVC, ns, name)
        st = self.isvc_state.get((ns, name))
        if obj is None or st is None:
            return False
        if self._lagging((ISVC, ns, name), obj):
            return True
        revs = st["revisions"]
        if not revs or revs[-1]["template"] != _template(obj["spec"]["predictor"]):
            return True  # a change whose revision the event handler has not made yet
        failures: dict[str, str] = {}
        ready: set[str] = set()
        for r in revs:
            pods = self._pods(ns, {"serving.knative.dev/revision": r["name"]})
            for p in pods:
                msg = await self._crash_loop(p)
                if msg is not None:
                    failures[r["name"]] = msg
            if pods and all(_ready(p) for p in pods):
                ready.add(r["name"])
        latest = revs[-1]["name"]
        canary = obj["spec"]["predictor"].get("canaryTrafficPercent")
        if latest in ready:
            if canary is None or st["rolled"] is None:
                if st["rolled"] != latest:
                    st["previous"], st["rolled"] = st["rolled"], latest
                traffic = [{"revisionName": latest, "percent": 100, "latestRevision": True}]
            else:
                traffic = [
                    {
                        "revisionName": st["rolled"],
                        "percent": 100 - int(canary),
                        "latestRevision": False,
                        "tag": "prev",
                    },
                    {
                        "revisionName": latest,
                        "percent": int(canary),
                        "latestRevision": True,
                        "tag": "latest",
                    },
                ]
        elif st["rolled"] is not None:
            traffic = [{"revisionName": st["rolled"], "percent": 100, "latestRevision": False}]
        else:
            traffic = []
        st["traffic"] = traffic
        # Knative scales revisions without traffic to zero
        serving = {t["revisionName"] for t in traffic if t["percent"]} | {latest}
        for r in revs:
            if r["name"] not in serving:
                for p in self._pods(ns, {"serving.knative.dev/revision": r["name"]}):
                    await self.k8s.delete_object("pods", ns, p["metadata"]["name"])
        url = f"http://127.0.0.1:{self.proxies[(ISVC, ns, name)].port}"
        conds: dict[str, tuple[str, str, str]] = {}
        if latest in failures:
            msg = f'Revision "{latest}" failed with message: Container failed with: {failures[latest]}.'
            for c in ("PredictorReady", "LatestDeploymentReady", "Ready"):
                conds[c] = ("False", "RevisionFailed", msg)
            conds["IngressReady"] = ("True", "", "")
            conds["RoutesReady"] = ("True" if st["rolled"] else "False", "", "")
        elif latest in ready:
            for c in (
                "PredictorReady",
                "LatestDeploymentReady",
                "IngressReady",
                "RoutesReady",
                "Ready",
            ):
                conds[c] = ("True", "", "")
        else:
            msg = f'Configuration "{name}-predictor" is waiting for a Revision to become ready.'
            for c in ("PredictorReady", "LatestDeploymentReady", "Ready"):
                conds[c] = ("Unknown", "RevisionMissing", msg)
            conds["IngressReady"] = ("True", "", "")
        status: dict[str, Any] = {
            "observedGeneration": obj["metadata"]["generation"],
            "deploymentMode": "Serverless",
            "url": url if traffic else None,
            "address": {"url": url} if traffic else None,
            "components": {
                "predictor": {
                    "latestCreatedRevision": latest,
                    "latestReadyRevision": max(
                        (r["name"] for r in revs if r["name"] in ready), default=None
                    )
                    or st["rolled"],
                    "latestRolledoutRevision": st["rolled"],
                    "previousRolledoutRevision": st["previous"],
                    "traffic": traffic,
                    "url": url if traffic else None,
                }
            },
            "modelStatus": (
                {
                    "transitionStatus": "BlockedByFailedLoad",
                    "states": {
                        "activeModelState": "Loaded" if st["rolled"] else "FailedToLoad",
                        "targetModelState": "FailedToLoad",
                    },
                    "lastFailureInfo": {
                        "reason": "ModelLoadFailed",
                        "message": failures[latest],
                        "exitCode": 1,
                    },
                }
                if latest in failures
                else {
                    "transitionStatus": "UpToDate" if latest in ready else "InProgress",
                    "states": {"activeModelState": "Loaded" if st["rolled"] else "Pending"},
                }
            ),
        }
        old = obj.get("status") or {}
        old_conds = {
            c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
            for c in old.get("conditions") or []
        }
        if old_conds != conds or {k: old.get(k) for k in status} != status:
            status["conditions"] = [
                {"type": t, "status": s, "reason": r, "message": m, "lastTransitionTime": now()}
                for t, (s, r, m) in sorted(conds.items())
            ]
            obj["status"] = status
            await self.k8s._emit(ISVC, "MODIFIED", obj, notify=False)
        return True

    # -- Deployments (apps/v1) ----------------------------------------------------------------------------------
    async def _deployment_event(self, k8s: FakeKubernetes, event: str, obj: dict) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        key = ("deployments.apps", ns, name)
        if event == "DELETED":
            await self._stop(key)
            return
        self._loop(key, lambda: self._reconcile_deployment(ns, name))

    async def _reconcile_deployment(self, ns: str, name: str) -> bool:
        dep = self.k8s.find("deployments.apps", ns, name)
        if dep is None:
            return False
        if self._lagging(("deployments.apps", ns, name), dep):
            return True
        spec = dep["spec"]
        want = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
        template = spec["template"]
        h = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        selector = spec["selector"]["matchLabels"]
        pods = self._pods(ns, selector)
        new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == h]
        old = [p for p in pods if p not in new]
        crashed = []
        for p in new:
            if await self._crash_loop(p) is not None:
                crashed.append(p)
        for _ in range(want - len(new)):
            await self._create_pod(
                ns,
                f"{name}-{h}-{uuid.uuid4().hex[:5]}",
                dep,
                {**(template["metadata"].get("labels") or {}), "pod-template-hash": h},
                template["metadata"].get("annotations") or {},
                template["spec"],
            )
        for p in new[want:]:
            await self.k8s.delete_object("pods", ns, p["metadata"]["name"])
        new = new[:want]
        new_ready = [p for p in new if _ready(p)]
        if len(new_ready) >= want:  # maxUnavailable 0: the old pods go once the new serve
            for p in old:
                await self.k8s.delete_object("pods", ns, p["metadata"]["name"])
            old = []
        available = len(new_ready) + len([p for p in old if _ready(p)])
        complete = len(new_ready) == want and not old
        status = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": len(new) + len(old),
            "updatedReplicas": len(new),
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(0, want - available),
        }
        conds = {
            "Available": (
                ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
                if available >= want
                else (
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                )
            ),
            "Progressing": (
                (
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{name}-{h}" has successfully progressed.',
                )
                if complete
                else ("True", "ReplicaSetUpdated", f'ReplicaSet "{name}-{h}" is progressing.')
            ),
        }
        old_st = dep.get("status") or {}
        old_conds = {
            c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
            for c in old_st.get("conditions") or []
        }
        if old_conds != conds or {k: old_st.get(k) for k in status} != status:
            status["conditions"] = [
                {"type": t, "status": s, "reason": r, "message": m, "lastUpdateTime": now()}
                for t, (s, r, m) in conds.items()
            ]
            await self.k8s.set_status("deployments.apps", ns, name, **status)
        return True

    # -- Services -------------------------------------------------------------------------------------------------
    async def _service_event(self, k8s: FakeKubernetes, event: str, obj: dict) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        key = ("services", ns, name)
        if event == "DELETED":
            await self._stop(key)
            return
        if obj["spec"].get("type") != "NodePort" or key in self.proxies:
            return
        rr = {"n": 0}

        def choose() -> int | None:
            svc = self.k8s.find("services", ns, name)
            if svc is None:
                return None
            pods = [p for p in self._pods(ns, svc["spec"].get("selector") or {}) if _ready(p)]
            if not pods:
                return None
            rr["n"] += 1
            return _port(sorted(pods, key=lambda p: p["metadata"]["name"])[rr["n"] % len(pods)])

        proxy = Proxy(choose)
        port = await proxy.start()
        self.proxies[key] = proxy
        svc = self.k8s.find("services", ns, name)
        assert svc is not None
        svc["spec"]["ports"][0]["nodePort"] = port  # what the API server allocates
        await self.k8s._emit("services", "MODIFIED", svc, notify=False)
