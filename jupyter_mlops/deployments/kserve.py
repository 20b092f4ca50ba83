"""The ``kserve`` deployment target: a KServe ``InferenceService`` (``serving.kserve.io/v1beta1``)
whose predictor is a custom container running the model's image (our scoring server: no
MLServer, no environment tarball).

- Rollout: the predictor's container and labels change; KServe (Knative mode) creates a
  revision and moves the traffic to it once ready. A canary sets
  ``spec.predictor.canaryTrafficPercent`` (the new revision gets that share, the last rolled
  out one the rest); promote removes the field; rolling a canary back sets it to 0 (the
  previous revision keeps all the traffic), as KServe documents.
- Scale to zero: ``minReplicas: 0`` (Knative mode only; ``scale_to_zero`` in the settings).
- Status: the conditions (``Ready``, ``PredictorReady``, ``LatestDeploymentReady``,
  ``IngressReady``, ``Stopped``) with their reason and message, ``modelStatus.lastFailureInfo``
  and, while the pods do not serve, their containers' state (a crash loop's exit). URL:
  ``status.url`` (else ``status.address.url``). Traffic: ``status.components.predictor.traffic``,
  each revision mapped to the model version its pods (label ``mlops.jupyter.org/model-version``)
  or the spec it was created for serve.
- The ``Standard`` (raw Deployment) mode has no revisions: no canary, no scale to zero.
"""

from __future__ import annotations

from typing import Any

from ..kube import KUBE_FIELDS, PODS, Resource
from ..targets import ConfigReader
from ..tracking.errors import invalid
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

INFERENCESERVICES = Resource(
    "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
)
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
ISVC_LABEL = "serving.kserve.io/inferenceservice"
REVISION_LABEL = "serving.knative.dev/revision"
#: KServe's names of the two modes (``Serverless`` and ``RawDeployment`` before v0.16 are
#: accepted as the same).
MODES = {"Knative": "Knative", "Serverless": "Knative", "Standard": "Standard"}
MODES["RawDeployment"] = "Standard"
#: The predictor container's name KServe expects.
CONTAINER = "kserve-container"


class KServeTarget(KubeTarget):
    """Deployments as KServe InferenceServices (see the module's docstring)."""

    kind = "kserve"

    def __init__(
        self,
        name: str,
        *,
        deployment_mode: str = "Knative",
        scale_to_zero: bool = False,
        max_replicas: int | None = None,
        **common: Any,
    ) -> None:
        super().__init__(name, **common)
        self.deployment_mode = deployment_mode
        self.scale_to_zero = scale_to_zero
        self.max_replicas = max_replicas

    @property
    def supports_canary(self) -> bool:  # type: ignore[override]
        return self.deployment_mode == "Knative"

    @classmethod
    def from_config(cls, name: str, settings: ConfigReader) -> KServeTarget:
        settings.check_unknown(
            {*KUBE_FIELDS, *COMMON_FIELDS, "deployment_mode", "scale_to_zero", "max_replicas"}
        )
        raw_mode = settings.text("deployment_mode", default="Knative") or "Knative"
        mode = MODES.get(raw_mode)
        if mode is None:
            raise settings.error(
                "deployment_mode", f"must be Knative or Standard (KServe's modes), not {raw_mode!r}"
            )
        scale_to_zero = settings.flag("scale_to_zero", False)
        if scale_to_zero and mode != "Knative":
            raise settings.error(
                "scale_to_zero", "needs deployment_mode Knative (KServe scales to zero there only)"
            )
        return cls(
            name,
            deployment_mode=mode,
            scale_to_zero=scale_to_zero,
            max_replicas=check_replicas_setting(settings, "max_replicas", None),
            **cls.common_settings(name, settings),
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "deployment_mode": self.deployment_mode,
            "scale_to_zero": self.scale_to_zero,
        }

    # -- writing ----------------------------------------------------------------------------------
    def manifest(
        self, item: DeploymentItem, uri: str, version: str, image: str, canary: int | None
    ) -> dict[str, Any]:
        replicas = int(item.row.get("replicas") or 1)
        predictor: dict[str, Any] = {
            "minReplicas": 0 if self.scale_to_zero else replicas,
            "maxReplicas": max(replicas, self.max_replicas or replicas),
            "labels": self.labels(item, version),
            "annotations": {ANN_URI: uri, ANN_VERSION: version},
            "containers": [self.container(item, uri, version, image, CONTAINER)],
            "canaryTrafficPercent": canary,
            **self.pod_extras(),
        }
        return {
            "apiVersion": INFERENCESERVICES.api_version,
            "kind": INFERENCESERVICES.kind,
            "metadata": {
                "name": item.id,
                "labels": self.labels(item),
                "annotations": {
                    MODE_ANNOTATION: self.deployment_mode,
                    ANN_URI: uri,
                    ANN_VERSION: version,
                },
            },
            "spec": {"predictor": predictor},
        }

    async def apply(
        self,
        item: DeploymentItem,
        uri: str,
        version: str,
        image: str,
        canary: int | None,
        memo: dict[str, Any],
    ) -> None:
        body = self.manifest(item, uri, version, image, canary)
        old = await self.client.find(INFERENCESERVICES, item.id)
        if old is None:
            if canary is not None:
                raise invalid("A first deployment has nothing to split traffic with.")
            body["spec"]["predictor"].pop("canaryTrafficPercent")
            written = await self.client.create(INFERENCESERVICES, body)
        else:
            # a merge patch: canaryTrafficPercent None removes the field (all traffic)
            written = await self.client.patch(INFERENCESERVICES, item.id, body)
        memo["written"] = _written(old, written)

    async def promote_canary(self, item: DeploymentItem, memo: dict[str, Any]) -> None:
        written = await self.client.patch(
            INFERENCESERVICES, item.id, {"spec": {"predictor": {"canaryTrafficPercent": None}}}
        )
        memo["written"] = _written(None, written)
        memo["spec"] = {k: v for k, v in (memo.get("canary") or {}).items() if k != "percent"}

    async def drop_canary(self, item: DeploymentItem, memo: dict[str, Any]) -> None:
        written = await self.client.patch(
            INFERENCESERVICES, item.id, {"spec": {"predictor": {"canaryTrafficPercent": 0}}}
        )
        memo["written"] = _written(None, written)

    async def delete(self, item: DeploymentItem) -> None:
        await self.client.delete(INFERENCESERVICES, item.id, missing_ok=True)

    async def validate_change(self, item: DeploymentItem, canary: int | None) -> None:
        if canary is not None and self.deployment_mode != "Knative":
            raise invalid(
                f"Target '{self.name}' runs KServe's Standard mode, which has no canary "
                "rollouts (KServe splits traffic between revisions in Knative mode only)."
            )

    # -- reading ----------------------------------------------------------------------------------
    async def observe(self, item: DeploymentItem, memo: dict[str, Any]) -> Observation:
        isvc = await self.client.find(INFERENCESERVICES, item.id)
        if isvc is None:
            return Observation(
                "FAILED",
                f"the InferenceService {self.namespace}/{item.id} does not exist "
                "(deleted outside jupyter-mlops?): update the deployment to create it again",
                None,
            )
        meta, st = isvc["metadata"], isvc.get("status") or {}
        conds = {c.get("type"): c for c in st.get("conditions") or []}
        pred = (st.get("components") or {}).get("predictor") or {}
        url = st.get("url") or (st.get("address") or {}).get("url") or pred.get("url")
        current = _current(isvc, memo.get("written"))
        ann = meta.get("annotations") or {}
        spec_serves = {"version": ann.get(ANN_VERSION), "model_uri": ann.get(ANN_URI)}
        pods = (await self.client.list(PODS, label_selector=f"{LABEL_DEPLOYMENT}={item.id}")).get(
            "items"
        ) or []
        revisions: dict[str, Any] = dict(memo.get("revisions") or {})
        by_revision: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            labels = pod["metadata"].get("labels") or {}
            rev = labels.get(REVISION_LABEL) or "-"
            by_revision.setdefault(rev, []).append(pod)
            if rev != "-" and rev not in revisions and labels.get(LABEL_VERSION):
                pann = pod["metadata"].get("annotations") or {}
                revisions[rev] = {
                    "version": labels[LABEL_VERSION],
                    "model_uri": pann.get(ANN_URI) or spec_serves["model_uri"],
                }
        latest_created = pred.get("latestCreatedRevision")
        if latest_created and current and latest_created not in revisions:
            revisions[latest_created] = spec_serves
        ready = (conds.get("Ready") or {}).get("status") == "True"
        traffic: list[dict[str, Any]] = []
        if pred.get("traffic"):
            for t in pred["traffic"]:
                rev = t.get("revisionName") or ""
                info = revisions.get(rev) or {}
                serving = [p for p in by_revision.get(rev, []) if _ready(p)]
                traffic.append(
                    {
                        "version": info.get("version"),
                        "model_uri": info.get("model_uri"),
                        "percent": int(t.get("percent") or 0),
                        "replicas": len(serving),
                        "revision": rev,
                        "pods": [p["metadata"]["name"] for p in serving],
                    }
                )
        elif ready:  # Standard mode: one Deployment, what the spec says
            serving = [p for p in pods if _ready(p)]
            traffic.append(
                {
                    **spec_serves,
                    "percent": 100,
                    "replicas": len(serving),
                    "pods": [p["metadata"]["name"] for p in serving],
                }
            )
        traffic = [t for t in traffic if t["percent"] > 0]
        memo_out = {"revisions": {r: v for r, v in revisions.items() if r in _names(pred)}}
        stopped = (conds.get("Stopped") or {}).get("status") == "True"
        failure = (st.get("modelStatus") or {}).get("lastFailureInfo") or {}
        # a failure counts only once the status is about the spec written (a stale one may
        # still show the previous rollout's failure)
        new_failed = current and (
            (
                latest_created is not None
                and latest_created != pred.get("latestReadyRevision")
                and (
                    (conds.get("LatestDeploymentReady") or {}).get("status") == "False"
                    or (
                        (conds.get("PredictorReady") or {}).get("status") == "False"
                        and not pred.get("latestReadyRevision")
                    )
                )
            )
            or (st.get("modelStatus") or {}).get("transitionStatus")
            in ("BlockedByFailedLoad", "InvalidSpec")
        )
        reason = condition_reason(
            isvc, "PredictorReady", "LatestDeploymentReady", "IngressReady", "Ready"
        )
        if failure.get("message") and (not ready or new_failed):
            reason = (reason + "; " if reason else "") + (
                f"{failure.get('reason') or 'failure'}: {failure['message']}"
                + (f" (exit code {failure['exitCode']})" if failure.get("exitCode") else "")
            )
        if not ready or new_failed:
            why = pod_reason([p for p in pods if not _ready(p)])
            if why:
                reason = (reason + "; " if reason else "") + why
        if stopped:
            status = "STOPPED"
        elif new_failed:
            status = "FAILED"
        elif ready and current:
            status, reason = "READY", None
        else:
            status = "UPDATING" if item.row.get("served_uri") else "STARTING"
        return Observation(
            status,
            reason,
            url,
            traffic,
            ready=ready and current,
            failed=bool(new_failed),
            memo=memo_out,
        )


def _written(old: dict[str, Any] | None, written: dict[str, Any]) -> dict[str, Any]:
    """What a status must show to be about the spec just written (:func:`_current`): the
    written object's generation and, when the pod template changed, the revision that was
    the latest before (a new one must replace it)."""
    before = None
    if old is not None and _template(old) != _template(written):
        pred = ((old.get("status") or {}).get("components") or {}).get("predictor") or {}
        before = pred.get("latestCreatedRevision") or ""
    return {"generation": int(written["metadata"].get("generation") or 0), "before": before}


def _template(isvc: dict[str, Any]) -> dict[str, Any]:
    """The predictor's fields that make a new Knative revision (all but the traffic)."""
    pred = (isvc.get("spec") or {}).get("predictor") or {}
    return {k: v for k, v in pred.items() if k != "canaryTrafficPercent"}


def _current(isvc: dict[str, Any], written: dict[str, Any] | None) -> bool:
    """The status is about the spec last written (else it is the previous rollout's, as it
    is right after a PATCH). KServe copies ``observedGeneration`` from the Knative Service
    (``PropagateStatus``), which counts that object's own spec changes: it catches up with
    the InferenceService's generation, it may not equal it. So: at least the generation
    written and, after a template change, a ``latestCreatedRevision`` other than the one
    before it. Without a record (after a restart): the object's own generation."""
    meta, st = isvc["metadata"], isvc.get("status") or {}
    observed = int(st.get("observedGeneration") or 0)
    if not written:
        return observed >= int(meta.get("generation") or 0)
    if observed < int(written.get("generation") or 0):
        return False
    before = written.get("before")
    if before is None:
        return True
    pred = (st.get("components") or {}).get("predictor") or {}
    return bool(pred.get("latestCreatedRevision")) and pred["latestCreatedRevision"] != before


def _ready(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    if st.get("phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
    )


def _names(pred: dict[str, Any]) -> set[str]:
    """Revision names the predictor status still mentions (older ones are forgotten)."""
    out = {t.get("revisionName") for t in pred.get("traffic") or []}
    for key in (
        "latestReadyRevision",
        "latestCreatedRevision",
        "previousRolledoutRevision",
        "latestRolledoutRevision",
    ):
        out.add(pred.get(key))
    return {n for n in out if n}
