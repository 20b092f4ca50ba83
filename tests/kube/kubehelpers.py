"""What the kube tests share: a client of the fake API server, a fake TrainJob controller."""

from __future__ import annotations

import sys
import uuid
from typing import Any

from jupyter_mlops.kube import KubeClient, KubeConfig, Resource

TRAINJOBS = Resource("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob")


def client(k8s: Any, namespace: str = "team-a", **kw: Any) -> KubeClient:
    return KubeClient(KubeConfig(target="fake", api_url=k8s.url, namespace=namespace, **kw))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def trainjob_controller(k8s: Any, event: str, job: dict) -> None:
    """Like Kubeflow Trainer (much reduced): a new TrainJob gets one pod per node running the
    trainer's command; the job is Complete when they all succeed, Failed when one fails."""
    if event != "ADDED":
        return
    meta, spec = job["metadata"], job["spec"]
    ns, name = meta["namespace"], meta["name"]
    trainer = spec["trainer"]
    pods = []
    for i in range(int(trainer.get("numNodes", 1))):
        pod = await k8s.create_object(
            "pods",
            ns,
            {
                "metadata": {
                    "name": f"{name}-node-0-{i}",
                    "labels": {"jobset.sigs.k8s.io/jobset-name": name},
                    "ownerReferences": [
                        {
                            "apiVersion": job["apiVersion"],
                            "kind": "TrainJob",
                            "name": name,
                            "uid": meta["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "node",
                            "image": trainer.get("image", "registry.test/train:1"),
                            "command": trainer["command"],
                            "env": [{"name": "PET_NODE_RANK", "value": str(i)}]
                            + trainer.get("env", []),
                        }
                    ],
                },
            },
        )
        pods.append(pod["metadata"]["name"])
    await k8s.set_status(
        "trainjobs.trainer.kubeflow.org",
        ns,
        name,
        jobsStatus=[{"name": "node", "active": len(pods)}],
    )
    ended = [await k8s.wait_pod(ns, p) for p in pods]
    if any(p is None for p in ended):
        return  # deleted meanwhile
    failed = [p["metadata"]["name"] for p in ended if p["status"]["phase"] == "Failed"]
    if failed:
        await k8s.set_condition(
            "trainjobs.trainer.kubeflow.org",
            ns,
            name,
            "Failed",
            "True",
            "BackoffLimitExceeded",
            f"pod(s) failed: {', '.join(failed)}",
        )
    else:
        await k8s.set_condition(
            "trainjobs.trainer.kubeflow.org",
            ns,
            name,
            "Complete",
            "True",
            "JobsCompleted",
            "all nodes succeeded",
        )


PY = sys.executable
