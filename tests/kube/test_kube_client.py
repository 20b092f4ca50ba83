"""jupyter_mlops.kube against the fake Kubernetes API server (tests/hub/fakek8s.py) over real HTTP:
objects of core and custom resources, the status subresource, watches, a fake controller that
runs real processes in pods, pod logs, and the API's refusals surfaced in our errors."""

from __future__ import annotations

import asyncio
import socket

import pytest
from kubehelpers import PY, TRAINJOBS, client, trainjob_controller, unique

from jupyter_mlops.kube import CONFIGMAPS, PODS, KubeError, condition

TJ = "trainjobs.trainer.kubeflow.org"


@pytest.fixture(scope="module", autouse=True)
def crds(k8s):
    """The TrainJob CRD installed, with its (fake) controller."""
    k8s.register("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob")
    k8s.add_controller(TJ, trainjob_controller)
    yield
    assert not k8s.controller_errors


def job(name: str, command: list[str], nodes: int = 1, labels: dict | None = None) -> dict:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {"numNodes": nodes, "command": command},
        },
    }


async def test_custom_resources_create_get_list_patch_status_replace_delete(k8s):
    kc = client(k8s, namespace=unique("crud"))
    try:
        name, run = unique("crud"), unique("r")
        created = await kc.create(TRAINJOBS, job(name, ["true"], labels={"run": run}))
        assert created["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
        assert created["kind"] == "TrainJob" and created["metadata"]["generation"] == 1
        assert (await kc.get(TRAINJOBS, name))["metadata"]["uid"] == created["metadata"]["uid"]
        await kc.create(TRAINJOBS, job(unique("other"), ["true"], labels={"run": "x"}))
        listed = await kc.list(TRAINJOBS, label_selector=f"run={run}")
        assert [o["metadata"]["name"] for o in listed["items"]] == [name]
        assert listed["metadata"]["resourceVersion"]
        assert await kc.find(TRAINJOBS, unique("missing")) is None

        # spec and status are written apart; generation counts spec changes only
        patched = await kc.patch(TRAINJOBS, name, {"spec": {"suspend": True}})
        assert patched["spec"]["suspend"] is True and patched["metadata"]["generation"] == 2
        st = await kc.patch(
            TRAINJOBS,
            name,
            {
                "status": {
                    "conditions": [{"type": "Suspended", "status": "True", "reason": "Suspended"}]
                }
            },
            subresource="status",
        )
        assert condition(st, "Suspended")["reason"] == "Suspended"
        assert st["metadata"]["generation"] == 2
        ignored = await kc.patch(TRAINJOBS, name, {"status": {"conditions": []}})
        assert condition(ignored, "Suspended") is not None  # status only through /status
        ops = [{"op": "replace", "path": "/spec/suspend", "value": False}]
        assert (await kc.patch(TRAINJOBS, name, ops, patch_type="json"))["spec"]["suspend"] is False

        # replace with the version read: accepted; with a stale one: 409 Conflict
        current = await kc.get(TRAINJOBS, name)
        stale = dict(current)
        current["metadata"]["labels"]["step"] = "2"
        replaced = await kc.replace(TRAINJOBS, name, current)
        assert replaced["metadata"]["labels"]["step"] == "2"
        with pytest.raises(KubeError) as e:
            await kc.replace(TRAINJOBS, name, stale)
        assert e.value.status == 409 and e.value.reason == "Conflict"
        assert e.value.error_code == "RESOURCE_CONFLICT" and e.value.http_status == 409
        assert "the object has been modified" in e.value.message

        deleted = await kc.delete(TRAINJOBS, name)
        assert deleted["metadata"]["name"] == name
        assert await kc.find(TRAINJOBS, name) is None
        assert await kc.delete(TRAINJOBS, name, missing_ok=True) is None
    finally:
        await kc.close()


async def test_refusals_carry_the_api_servers_status_message(k8s):
    kc = client(k8s, namespace="team-b")
    try:
        name = unique("cm")
        await kc.create(CONFIGMAPS, {"metadata": {"name": name}, "data": {"a": "1"}})
        with pytest.raises(KubeError) as e:
            await kc.create(CONFIGMAPS, {"metadata": {"name": name}})
        assert (e.value.status, e.value.reason) == (409, "AlreadyExists")
        assert e.value.message == (
            f"Kubernetes target 'fake': cannot create configmaps {name!r} "
            f"in namespace 'team-b': configmaps \"{name}\" already exists "
            "(409 AlreadyExists)"
        )

        with pytest.raises(KubeError) as e:
            await kc.get(TRAINJOBS, "nope")
        assert e.value.status == 404 and e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert "cannot get trainjobs.trainer.kubeflow.org 'nope' in namespace 'team-b'" in str(
            e.value
        )
        assert f'{TJ} "nope" not found' in e.value.message and not e.value.transient

        from jupyter_mlops.kube import Resource

        no_crd = Resource("serving.kserve.io", "v1beta1", "inferenceservices")
        with pytest.raises(KubeError) as e:
            await kc.list(no_crd)
        assert e.value.status == 404
        assert "the server could not find the requested resource" in e.value.message

        with pytest.raises(KubeError) as e:
            await kc.create(CONFIGMAPS, {"metadata": {}})
        assert e.value.status == 422 and e.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "metadata.name: Required value" in e.value.message

        k8s.forbid("create", TJ, "team-b")
        with pytest.raises(KubeError) as e:
            await kc.create(TRAINJOBS, job(unique("forbidden"), ["true"]))
        assert (e.value.status, e.value.reason) == (403, "Forbidden")
        assert e.value.error_code == "PERMISSION_DENIED" and e.value.http_status == 403
        assert (
            'cannot create resource "trainjobs" in API group "trainer.kubeflow.org" in the '
            'namespace "team-b"'
        ) in e.value.message
        assert e.value.api_message in e.value.message
        # only what was forbidden
        assert (await kc.list(TRAINJOBS))["items"] == []
    finally:
        await kc.close()


async def test_token_path_is_read_on_every_request(k8s, tmp_path):
    token = tmp_path / "token"
    token.write_text("first\n")
    kc = client(k8s, namespace=unique("tok"), token_path=str(token))
    k8s.tokens = {"first"}
    try:
        assert (await kc.list(PODS))["items"] == []
        token.write_text("second")  # the kubelet rotated the projected token
        with pytest.raises(KubeError) as e:
            await kc.list(PODS)
        assert e.value.status == 401 and e.value.error_code == "PERMISSION_DENIED"
        assert e.value.http_status == 403  # never 401: that would mean the browser's session
        k8s.tokens = {"second"}
        assert (await kc.list(PODS))["items"] == []
    finally:
        k8s.tokens = None
        await kc.close()


async def test_an_api_server_that_does_not_answer_is_temporarily_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused

        class Gone:
            url = f"http://127.0.0.1:{port}"

        kc = client(Gone())
        try:
            with pytest.raises(KubeError) as e:
                await kc.get(PODS, "p")
        finally:
            await kc.close()
    assert e.value.status is None and e.value.transient
    assert e.value.error_code == "TEMPORARILY_UNAVAILABLE" and e.value.http_status == 503
    assert f"the API server at http://127.0.0.1:{port} did not answer" in e.value.message


async def test_watch_streams_changes_from_a_version(k8s):
    kc = client(k8s, namespace="team-w")
    try:
        start = (await kc.list(CONFIGMAPS))["metadata"]["resourceVersion"]
        name = unique("w")
        await kc.create(CONFIGMAPS, {"metadata": {"name": name, "labels": {"w": "1"}}})
        await kc.patch(CONFIGMAPS, name, {"data": {"k": "v"}})
        await kc.delete(CONFIGMAPS, name)
        seen = []
        async for ev in kc.watch(
            CONFIGMAPS, label_selector="w=1", resource_version=start, timeout=60
        ):
            seen.append((ev.type, ev.object.get("data")))
            if ev.type == "DELETED":
                break
        assert seen == [("ADDED", None), ("MODIFIED", {"k": "v"}), ("DELETED", {"k": "v"})]
    finally:
        await kc.close()


async def test_a_fake_controller_runs_the_job_in_pods_and_reports_conditions(k8s):
    kc = client(k8s, namespace="team-t")
    try:
        name = unique("train")
        script = (
            "import os\n"
            "print('rank', os.environ['PET_NODE_RANK'], flush=True)\n"
            "print('done', flush=True)\n"
        )
        await kc.create(TRAINJOBS, job(name, [PY, "-c", script], nodes=2))
        done = await kc.wait_for(
            TRAINJOBS,
            name,
            lambda o: bool(condition(o, "Complete") or condition(o, "Failed")),
            timeout=120,
        )
        assert condition(done, "Complete")["reason"] == "JobsCompleted", done["status"]
        logs = await kc.logs(f"jobset.sigs.k8s.io/jobset-name={name}")
        assert logs == {
            f"{name}-node-0-0": b"rank 0\ndone\n",
            f"{name}-node-0-1": b"rank 1\ndone\n",
        }
        assert (await kc.logs(f"jobset.sigs.k8s.io/jobset-name={name}", tail_lines=1))[
            f"{name}-node-0-1"
        ] == b"done\n"

        failing = unique("fail")
        await kc.create(TRAINJOBS, job(failing, [PY, "-c", "import sys; sys.exit(3)"]))
        failed = await kc.wait_for(
            TRAINJOBS,
            failing,
            lambda o: bool(condition(o, "Complete") or condition(o, "Failed")),
            timeout=120,
        )
        assert condition(failed, "Failed")["message"] == f"pod(s) failed: {failing}-node-0-0"
    finally:
        await kc.close()


async def test_pod_logs_follow_and_deleting_the_owner_stops_its_pods(k8s):
    kc = client(k8s, namespace="team-f")
    try:
        name = unique("follow")
        script = "import time\nprint('started', flush=True)\ntime.sleep(600)\n"
        await kc.create(TRAINJOBS, job(name, [PY, "-c", script]))
        pod = f"{name}-node-0-0"
        await kc.wait_for(
            PODS, pod, lambda o: bool(o and o["status"]["phase"] == "Running"), timeout=120
        )
        received = b""
        async for chunk in kc.follow_pod_log(pod):
            received += chunk
            if b"started\n" in received:
                break  # stop reading: the stream is closed
        assert received == b"started\n"
        reasons = [e["reason"] for e in await kc.events_for(await kc.get(PODS, pod))]
        assert {"Scheduled", "Started"} <= set(reasons), reasons
        uid = (await kc.get(PODS, pod))["metadata"]["uid"]
        proc = k8s.processes[uid]

        await kc.delete(TRAINJOBS, name)  # its pods go with it (ownerReferences)
        assert await kc.wait_for(PODS, pod, lambda o: o is None, timeout=120) is None
        assert proc.returncode is not None
        with pytest.raises(KubeError) as e:
            await kc.pod_log(pod)
        assert e.value.status == 404
    finally:
        await kc.close()


async def test_wait_for_times_out(k8s):
    kc = client(k8s, namespace="team-x")
    try:
        with pytest.raises(asyncio.TimeoutError):
            await kc.wait_for(CONFIGMAPS, unique("never"), lambda o: o is not None, timeout=0.5)
    finally:
        await kc.close()


async def test_cluster_scoped_resources(k8s):
    from jupyter_mlops.kube import Resource

    k8s.register(
        "trainer.kubeflow.org",
        "v1alpha1",
        "clustertrainingruntimes",
        "ClusterTrainingRuntime",
        namespaced=False,
    )
    runtimes = Resource(
        "trainer.kubeflow.org",
        "v1alpha1",
        "clustertrainingruntimes",
        "ClusterTrainingRuntime",
        namespaced=False,
    )
    kc = client(k8s, namespace=unique("any"))
    try:
        name = unique("torch-distributed")
        created = await kc.create(runtimes, {"metadata": {"name": name}, "spec": {}})
        assert "namespace" not in created["metadata"]
        assert (await kc.get(runtimes, name))["metadata"]["uid"] == created["metadata"]["uid"]
        assert name in [o["metadata"]["name"] for o in (await kc.list(runtimes))["items"]]
        with pytest.raises(KubeError) as e:  # not a namespaced type
            await kc.get(runtimes._replace(namespaced=True), name)
        assert e.value.status == 404
        await kc.delete(runtimes, name)
        assert await kc.find(runtimes, name) is None
    finally:
        await kc.close()
