"""Fake Kubeflow controllers for the fake Kubernetes API (tests/hub/fakek8s.py): a TrainJob
(Trainer v2 + JobSet + Job, much reduced), a PyTorchJob and a TFJob (the v1 operator).

Each creates the pods the real controller would, named and labelled as it names them, with
the environment it injects (see ../shared/reference/training-and-deployment.md), so the fake
kubelet runs each pod's real command as a local process. One difference, as a mutating
webhook would make it: every pod shares 127.0.0.1, so the addresses the real controllers give
(``<tj>-node-0-0.<tj>:29500``, ``<job>-master-0:23456``, ``<job>-worker-<i>.<ns>.svc:2222``)
become 127.0.0.1 with a free port each.

A pod that fails fails the job (restartPolicy Never, no backoff): the other pods are deleted
(the JobSet / operator stops them) and the job gets the real controller's Failed condition.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

TRAINJOBS = "trainjobs.trainer.kubeflow.org"
RUNTIMES = "clustertrainingruntimes.trainer.kubeflow.org"
PYTORCHJOBS = "pytorchjobs.kubeflow.org"
TFJOBS = "tfjobs.kubeflow.org"


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def install(k8s: Any) -> None:
    """Serve the CRDs, add the controllers and the ``torch-distributed`` runtime."""
    k8s.register("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob")
    k8s.register(
        "trainer.kubeflow.org",
        "v1alpha1",
        "clustertrainingruntimes",
        "ClusterTrainingRuntime",
        namespaced=False,
    )
    k8s.register("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob")
    k8s.register("kubeflow.org", "v1", "tfjobs", "TFJob")
    k8s.add_controller(TRAINJOBS, trainjob_controller)
    k8s.add_controller(PYTORCHJOBS, pytorchjob_controller)
    k8s.add_controller(TFJOBS, tfjob_controller)

    async def runtime() -> None:
        await k8s.create_object(
            RUNTIMES,
            "",
            {
                "metadata": {"name": "torch-distributed"},
                "spec": {"mlPolicy": {"numNodes": 1, "torch": {}}},
            },
        )

    k8s.call(runtime)


def _owner(job: dict, kind: str) -> list[dict]:
    return [
        {
            "apiVersion": job["apiVersion"],
            "kind": kind,
            "name": job["metadata"]["name"],
            "uid": job["metadata"]["uid"],
            "controller": True,
        }
    ]


def _plain(env: list[dict]) -> list[dict]:
    """Kubernetes turns ``$$`` into ``$`` in env values (the fake kubelet does not)."""
    return [{**e, "value": e["value"].replace("$$", "$")} if "value" in e else e for e in env]


async def _run_pods(k8s: Any, ns: str, pods: list[dict]) -> tuple[list[str], list[dict | None]]:
    """Create the pods, wait until they end; the first failure deletes the others."""
    names = []
    for body in pods:
        pod = await k8s.create_object("pods", ns, body)
        names.append(pod["metadata"]["name"])
    waits = {asyncio.ensure_future(k8s.wait_pod(ns, n)): n for n in names}
    ended: dict[str, dict | None] = {}
    failed: list[str] = []
    pending = set(waits)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            pod = t.result()
            ended[waits[t]] = pod
            if pod is not None and pod["status"]["phase"] == "Failed":
                failed.append(waits[t])
        if failed and pending:
            for n in names:
                if n not in ended:
                    await k8s.delete_object("pods", ns, n)
    return failed, [ended[n] for n in names]


#: Kueue LocalQueues without quota left: a TrainJob labelled with one is suspended on creation
#: (Kueue's webhook sets ``spec.suspend``) until the test admits it (``spec.suspend: false``).
HELD_QUEUES: set[str] = set()
#: TrainJobs suspended and not started yet, (namespace, name).
_suspended: set[tuple[str, str]] = set()


# -- Trainer v2 -----------------------------------------------------------------------------
async def trainjob_controller(k8s: Any, event: str, job: dict) -> None:
    """One Job ``node`` of ``numNodes`` pods (JobSet naming), torch's ``PET_*`` env; a
    suspended TrainJob gets Trainer's ``Suspended`` condition and starts once resumed."""
    meta, spec = job["metadata"], job["spec"]
    ns, name = meta["namespace"], meta["name"]
    if event == "ADDED":
        queue = (meta.get("labels") or {}).get("kueue.x-k8s.io/queue-name")
        if spec.get("suspend") or queue in HELD_QUEUES:
            if not spec.get("suspend"):  # Kueue's webhook
                stored = k8s.find(TRAINJOBS, ns, name)
                stored["spec"]["suspend"] = True
                await k8s._emit(TRAINJOBS, "MODIFIED", stored, notify=False)
            _suspended.add((ns, name))
            await k8s.set_condition(
                TRAINJOBS, ns, name, "Suspended", "True", "Suspended", "TrainJob is suspended"
            )
            return
    elif event == "MODIFIED" and (ns, name) in _suspended and not spec.get("suspend"):
        _suspended.discard((ns, name))
        job = await k8s.set_condition(
            TRAINJOBS, ns, name, "Suspended", "False", "Resumed", "TrainJob is resumed"
        )
        if job is None:
            return
    else:
        return
    ref = spec["runtimeRef"]
    if k8s.find(RUNTIMES, "", ref["name"]) is None:
        await k8s.set_condition(
            TRAINJOBS,
            ns,
            name,
            "Failed",
            "True",
            "TrainingRuntimeNotSupported",
            f"ClusterTrainingRuntime {ref['name']} not found",
        )
        return
    trainer = spec["trainer"]
    nodes = int(trainer.get("numNodes", 1))
    master_port = free_ports(1)[0]
    nproc = trainer.get("numProcPerNode", "auto")
    pods = []
    for i in range(nodes):
        env = _plain(trainer.get("env", [])) + [
            {"name": "PET_NNODES", "value": str(nodes)},
            {"name": "PET_NPROC_PER_NODE", "value": str(nproc)},
            # the real pod reads it through a fieldRef of the annotation below
            {"name": "PET_NODE_RANK", "value": str(i)},
            {"name": "PET_MASTER_ADDR", "value": "127.0.0.1"},  # <tj>-node-0-0.<tj>
            {"name": "PET_MASTER_PORT", "value": str(master_port)},  # 29500
        ]
        index = {"batch.kubernetes.io/job-completion-index": str(i)}
        pods.append(
            {
                "metadata": {
                    "name": f"{name}-node-0-{i}",
                    "labels": {
                        "jobset.sigs.k8s.io/jobset-name": name,
                        "jobset.sigs.k8s.io/replicatedjob-name": "node",
                        **index,
                        **meta.get("labels", {}),
                    },
                    "annotations": index,
                    "ownerReferences": _owner(job, "TrainJob"),
                },
                "spec": {
                    "restartPolicy": "Never",
                    "hostname": f"{name}-node-0-{i}",
                    "subdomain": name,
                    "containers": [
                        {
                            "name": "node",
                            "image": trainer.get("image", "pytorch/pytorch:2.13.0"),
                            "command": trainer.get("command", []),
                            "args": trainer.get("args", []),
                            "env": env,
                            "resources": trainer.get("resourcesPerNode", {}),
                            "ports": [{"containerPort": 29500}],
                        }
                    ],
                },
            }
        )
    await k8s.set_status(TRAINJOBS, ns, name, jobsStatus=[{"name": "node", "active": nodes}])
    failed, ended = await _run_pods(k8s, ns, pods)
    if any(p is None for p in ended) and not failed:
        return  # deleted meanwhile
    if failed:
        await k8s.set_condition(
            TRAINJOBS,
            ns,
            name,
            "Failed",
            "True",
            "FailedJobs",
            "jobset failed due to one or more job failures",
        )
    else:
        await k8s.set_condition(
            TRAINJOBS, ns, name, "Complete", "True", "AllJobsCompleted", "jobset completed"
        )


# -- the v1 operator ------------------------------------------------------------------------
def _v1_pod(job: dict, kind: str, rtype: str, index: int, container: dict, env: list) -> dict:
    name = job["metadata"]["name"]
    labels = dict(job["spec"][_field(kind)][rtype]["template"]["metadata"].get("labels") or {})
    labels.update(
        {
            "training.kubeflow.org/job-name": name,
            "training.kubeflow.org/operator-name": f"{kind.lower()}-controller",
            "training.kubeflow.org/replica-type": rtype.lower(),
            "training.kubeflow.org/replica-index": str(index),
        }
    )
    if (index == 0 and rtype in ("Master", "Chief")) or (kind == "TFJob" and rtype == "Worker"):
        labels["training.kubeflow.org/job-role"] = "master" if rtype != "Worker" else "worker"
    c = dict(container)
    c["env"] = _plain(c.get("env", [])) + env
    return {
        "metadata": {
            "name": f"{name}-{rtype.lower()}-{index}",
            "labels": labels,
            "ownerReferences": _owner(job, kind),
        },
        "spec": {
            "restartPolicy": job["spec"][_field(kind)][rtype].get("restartPolicy", "Never"),
            "containers": [c],
        },
    }


def _field(kind: str) -> str:
    return "pytorchReplicaSpecs" if kind == "PyTorchJob" else "tfReplicaSpecs"


async def _v1(k8s: Any, job: dict, kind: str, key: str, pods: list[dict]) -> None:
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    await k8s.set_condition(
        key, ns, name, "Created", "True", f"{kind}Created", f"{kind} {name} is created."
    )
    await k8s.set_condition(
        key, ns, name, "Running", "True", f"{kind}Running", f"{kind} {ns}/{name} is running."
    )
    failed, ended = await _run_pods(k8s, ns, pods)
    if any(p is None for p in ended) and not failed:
        return
    await k8s.set_condition(key, ns, name, "Running", "False", f"{kind}Running", "")
    if failed:
        pod = k8s.find("pods", ns, failed[0]) or {}
        rtype = ((pod.get("metadata") or {}).get("labels") or {}).get(
            "training.kubeflow.org/replica-type", "worker"
        )
        await k8s.set_condition(
            key,
            ns,
            name,
            "Failed",
            "True",
            f"{kind}Failed",
            f"{kind} {ns}/{name} is failed because 1 {rtype.capitalize()} replica(s) failed.",
        )
    else:
        await k8s.set_condition(
            key,
            ns,
            name,
            "Succeeded",
            "True",
            f"{kind}Succeeded",
            f"{kind} {ns}/{name} successfully completed.",
        )


async def pytorchjob_controller(k8s: Any, event: str, job: dict) -> None:
    """Pods ``<job>-master-0``, ``<job>-worker-<i>``; the v1.9 env on every container."""
    if event != "ADDED":
        return
    spec = job["spec"]["pytorchReplicaSpecs"]
    nproc = job["spec"].get("nprocPerNode", "auto")
    per = int(nproc) if str(nproc).isdigit() else 1
    replicas = [("Master", i) for i in range(spec["Master"]["replicas"])] + [
        ("Worker", i) for i in range(spec.get("Worker", {}).get("replicas", 0))
    ]
    port = free_ports(1)[0]
    pods = []
    for rtype, i in replicas:
        rank = i if rtype == "Master" else i + 1
        env = [
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            {"name": "MASTER_ADDR", "value": "127.0.0.1"},  # <job>-master-0
            {"name": "MASTER_PORT", "value": str(port)},  # 23456
            {"name": "PET_MASTER_ADDR", "value": "127.0.0.1"},
            {"name": "PET_MASTER_PORT", "value": str(port)},
            {"name": "WORLD_SIZE", "value": str(len(replicas) * per)},
            {"name": "RANK", "value": str(rank)},
            {"name": "PET_NODE_RANK", "value": str(rank)},
            {"name": "PET_NPROC_PER_NODE", "value": str(nproc)},
            {"name": "PET_NNODES", "value": str(len(replicas))},
        ]
        container = spec[rtype]["template"]["spec"]["containers"][0]
        assert container["name"] == "pytorch", "the webhook requires the container 'pytorch'"
        pods.append(_v1_pod(job, "PyTorchJob", rtype, i, container, env))
    await _v1(k8s, job, "PyTorchJob", PYTORCHJOBS, pods)


async def tfjob_controller(k8s: Any, event: str, job: dict) -> None:
    """Worker pods ``<job>-worker-<i>`` with ``TF_CONFIG`` (worker 0 is the chief)."""
    if event != "ADDED":
        return
    spec = job["spec"]["tfReplicaSpecs"]
    n = spec["Worker"]["replicas"]
    ports = free_ports(n)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}  # <job>-worker-<i>.<ns>.svc:2222
    pods = []
    for i in range(n):
        tf_config = {
            "cluster": cluster,
            "task": {"type": "worker", "index": i},
            "environment": "cloud",
        }
        env = [{"name": "TF_CONFIG", "value": json.dumps(tf_config)}] if n != 1 else []
        container = spec["Worker"]["template"]["spec"]["containers"][0]
        assert container["name"] == "tensorflow", "the webhook requires the container 'tensorflow'"
        pods.append(_v1_pod(job, "TFJob", "Worker", i, container, env))
    await _v1(k8s, job, "TFJob", TFJOBS, pods)
