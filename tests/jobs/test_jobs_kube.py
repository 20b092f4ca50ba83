"""Training jobs on the Kubernetes targets (TrainJob, PyTorchJob, TFJob), against the fake API
server over real HTTP (tests/hub/fakek8s.py) with fake Kubeflow controllers
(kubecontrollers.py) whose pods the fake kubelet runs as real local processes: the same DDP
script as the local tests trains through them."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from jobhelpers import (
    DDP_SCRIPT,
    FAKE_PYNVML,
    SLEEPER_SCRIPT,
    all_dead,
    ended,
    env_without_tracking,
    run_job,
    until,
    write,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hub"))

import kubecontrollers
from fakek8s import FakeKubernetes

from jupyter_mlops.jobs.service import TrainingService
from jupyter_mlops.tracking import open_store
from jupyter_mlops.tracking.errors import TrackingError

DEADLINE = 120.0
IMAGE = "registry.test/train:1"


@pytest.fixture(scope="module")
def k8s(tmp_path_factory):
    k = FakeKubernetes(Path(tmp_path_factory.mktemp("k8s")))
    k.start()
    kubecontrollers.install(k)
    try:
        yield k
    finally:
        k.stop()


@pytest.fixture
def ws(tmp_path, k8s):
    (tmp_path / "work").mkdir()
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    env = env_without_tracking()
    env["JUPYTER_MLOPS_TRACKING_URI"] = store.uri
    yield tmp_path / "work", store, env, k8s
    store.close()


def targets(k8s, **extra) -> dict:
    common = {"api_url": k8s.url, "namespace": "team-a", "image": IMAGE}
    return {
        "tj": {"kind": "trainjob", "queue": "team-a-q", **common},
        "pt": {"kind": "pytorchjob", **common},
        "tf": {"kind": "tfjob", **common},
        **extra,
    }


async def make_service(ws, **cfg) -> TrainingService:
    work, store, env, k8s = ws
    cfg.setdefault("targets", targets(k8s))
    svc = TrainingService(store, str(work), env=env, jobs_dir=str(work.parent / "jobs"), **cfg)
    await svc.start()
    return svc


def ddp_spec(out: Path, nodes: int, procs: int) -> dict:
    return {
        "name": "ddp",
        "framework": "pytorch",
        "script": "ddp_train.py",
        "nodes": nodes,
        "procs_per_node": procs,
        "params": {"lr": 0.05, "steps": 20, "out": str(out)},
        "env": {"OMP_NUM_THREADS": "1"},
        "resources": {"cpu": 1, "memory": "1Gi"},
    }


def pod_processes_ended(k8s) -> bool:
    return all(p.returncode is not None for p in list(k8s.processes.values()))


@pytest.mark.timeout(900)
async def test_trainjob_trains_the_same_ddp_script_with_identical_weights(ws):
    pytest.importorskip("torch")
    work, store, _, k8s = ws
    write(work / "ddp_train.py", DDP_SCRIPT)
    out = work / "out"
    out.mkdir()
    svc = await make_service(ws)
    try:
        job = await run_job(
            svc, timeout=5 * DEADLINE, spec=ddp_spec(out, 2, 2), base_dir=str(work), target="tj"
        )
    finally:
        await svc.stop()
    logs = {r: svc.read_log(job["job_id"], r)[0].decode() for r in range(4)}
    assert job["status"] == "SUCCEEDED", (job["reason"], logs)
    assert job["target"] == "tj" and [r["status"] for r in job["ranks"]] == ["SUCCEEDED"] * 4
    # the TrainJob as Trainer v2 reads it
    tj = next(
        b
        for b in k8s.created
        if b.get("kind") == "TrainJob" and job["job_id"][:8] in b["metadata"]["name"]
    )
    spec = tj["spec"]
    assert tj["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    assert spec["runtimeRef"] == {
        "name": "torch-distributed",
        "kind": "ClusterTrainingRuntime",
        "apiGroup": "trainer.kubeflow.org",
    }
    assert spec["trainer"]["numNodes"] == 2 and spec["trainer"]["numProcPerNode"] == 2
    assert spec["trainer"]["image"] == IMAGE
    assert spec["trainer"]["resourcesPerNode"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert tj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-q"
    assert tj["metadata"]["labels"]["jupyter-mlops/job-id"] == job["job_id"]
    env_names = {e["name"] for e in spec["trainer"]["env"]}
    assert not any(n.startswith("PET_") for n in env_names)  # the controller's to set
    # every rank ended with the same model; torchrun's environment from the controller's PET_*
    results = [json.loads((out / f"rank-{r}.json").read_text()) for r in range(4)]
    assert all(res["weights"] == results[0]["weights"] for res in results)
    for r, res in enumerate(results):
        env = res["env"]
        assert env["RANK"] == env["JUPYTER_MLOPS_RANK"] == str(r)
        assert env["LOCAL_RANK"] == str(r % 2) and env["PET_NODE_RANK"] == str(r // 2)
        assert env["WORLD_SIZE"] == "4" and env["PET_NPROC_PER_NODE"] == "2"
        assert env["JUPYTER_MLOPS_JOB_RUN_ID"] == job["run_id"]
    # rank 0's metrics in the job's run; the loss dropped; each rank's log kept
    history, _ = store.get_metric_history(job["run_id"], "loss")
    assert [m.step for m in history] == list(range(20))
    assert history[-1].value < history[0].value / 3
    run = store.get_run(job["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["mlops.job.target"] == "tj"
    repo = store.artifact_repo(run.info.artifact_uri)
    for r in range(4):
        assert f"rank {r} of 4 done" in logs[r]
        assert "[rank" not in logs[r]  # the pod log's marks are gone
        assert f"rank {r} of 4 done" in repo.open(f"logs/rank-{r}.log").read().decode()
    assert all_dead([res["pid"] for res in results])


@pytest.mark.timeout(600)
async def test_pytorchjob_trains_the_same_script(ws):
    pytest.importorskip("torch")
    work, store, _, k8s = ws
    write(work / "ddp_train.py", DDP_SCRIPT)
    out = work / "out"
    out.mkdir()
    svc = await make_service(ws)
    try:
        job = await run_job(
            svc, timeout=5 * DEADLINE, spec=ddp_spec(out, 2, 1), base_dir=str(work), target="pt"
        )
    finally:
        await svc.stop()
    logs = {r: svc.read_log(job["job_id"], r)[0].decode() for r in range(2)}
    assert job["status"] == "SUCCEEDED", (job["reason"], logs)
    body = next(
        b
        for b in k8s.created
        if b.get("kind") == "PyTorchJob" and job["job_id"][:8] in b["metadata"]["name"]
    )
    replicas = body["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 1
    assert replicas["Master"]["template"]["spec"]["containers"][0]["name"] == "pytorch"
    assert body["spec"]["runPolicy"]["backoffLimit"] == 0 and body["spec"]["nprocPerNode"] == "1"
    results = [json.loads((out / f"rank-{r}.json").read_text()) for r in range(2)]
    assert results[0]["weights"] == results[1]["weights"]
    assert [res["env"]["RANK"] for res in results] == ["0", "1"]
    assert "rank 1 of 2 done" in logs[1]
    history, _ = store.get_metric_history(job["run_id"], "loss")
    assert len(history) == 20 and history[-1].value < history[0].value


async def test_tfjob_tf_config_contract(ws):
    """TensorFlow is not installed in CI: a stdlib worker checks TF_CONFIG as the TFJob
    operator writes it, and the workers reach each other at its addresses."""
    work, _store, _, k8s = ws
    write(
        work / "tfworker.py",
        """\
        import json, os, socket, sys, time
        cfg = json.loads(os.environ["TF_CONFIG"])
        workers, task = cfg["cluster"]["worker"], cfg["task"]
        assert task["type"] == "worker" and cfg["environment"] == "cloud"
        me = task["index"]
        assert me == int(os.environ["JUPYTER_MLOPS_RANK"]) and len(workers) == 2
        host, port = workers[me].rsplit(":", 1)
        srv = socket.create_server((host, int(port)))
        srv.settimeout(60)
        other = workers[1 - me]
        h, p = other.rsplit(":", 1)
        for _ in range(600):
            try:
                socket.create_connection((h, int(p)), timeout=5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit(f"{other} never listened")
        srv.accept()[0].close()
        print("chief" if me == 0 else "worker", me, "reached its peer")
        """,
    )
    svc = await make_service(ws)
    try:
        job = await run_job(
            svc,
            spec={"name": "tf", "framework": "tensorflow", "script": "tfworker.py", "nodes": 2},
            base_dir=str(work),
            target="tf",
        )
    finally:
        await svc.stop()
    logs = [svc.read_log(job["job_id"], r)[0].decode() for r in range(2)]
    assert job["status"] == "SUCCEEDED", (job["reason"], logs)
    assert "chief 0 reached its peer" in logs[0] and "worker 1 reached its peer" in logs[1]
    body = next(
        b
        for b in k8s.created
        if b.get("kind") == "TFJob" and job["job_id"][:8] in b["metadata"]["name"]
    )
    assert body["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] == 2


async def test_a_failing_replica_fails_the_job_with_the_reason_and_leaves_no_process(ws):
    work, store, _, k8s = ws
    write(work / "sleeper.py", SLEEPER_SCRIPT)
    out = work / "pids"
    out.mkdir()
    svc = await make_service(ws)
    try:
        job = await run_job(
            svc,
            spec={
                "name": "boom",
                "framework": "pytorch",
                "script": "sleeper.py",
                "args": [str(out), "2"],
                "nodes": 2,
                "procs_per_node": 2,
            },
            base_dir=str(work),
            target="tj",
        )
    finally:
        await svc.stop()
    assert job["status"] == "FAILED"
    assert "FailedJobs" in job["reason"] and "node 1" in job["reason"], job["reason"]
    assert "exited with status 1" in job["reason"]
    assert {r["status"] for r in job["ranks"] if r["node"] == 1} == {"FAILED"}
    assert "fails on purpose" in svc.read_log(job["job_id"], 2)[0].decode()
    assert store.get_run(job["run_id"]).info.status == "FAILED"
    records = [json.loads(p.read_text()) for p in out.glob("pids-*.json")]
    await until(lambda: all_dead([r["pid"] for r in records]), "the ranks to be gone")
    await until(lambda: pod_processes_ended(k8s), "the pods' processes to end")


async def test_cancel_deletes_the_trainjob_and_leaves_no_process(ws):
    work, _store, _, k8s = ws
    write(work / "sleeper.py", SLEEPER_SCRIPT)
    out = work / "pids"
    out.mkdir()
    svc = await make_service(ws)
    try:
        job = await svc.submit(
            spec={
                "name": "long",
                "framework": "pytorch",
                "script": "sleeper.py",
                "args": [str(out)],
                "nodes": 2,
            },
            base_dir=str(work),
            target="tj",
        )
        await until(lambda: len(list(out.glob("pids-*.json"))) == 2, "both ranks to start")
        running = await svc.get_job(job["job_id"])
        assert running["status"] == "RUNNING"
        job = await asyncio.wait_for(svc.cancel(job["job_id"]), DEADLINE)
    finally:
        await svc.stop()
    assert job["status"] == "CANCELED"
    name = f"long-{job['job_id'][:8]}"
    assert k8s.find(kubecontrollers.TRAINJOBS, "team-a", name) is None
    assert not [p for p in k8s.snapshot("pods", "team-a") if p["metadata"]["name"].startswith(name)]
    records = [json.loads(p.read_text()) for p in out.glob("pids-*.json")]
    await until(lambda: all_dead([r["pid"] for r in records]), "the ranks to be gone")


async def test_a_restarted_server_follows_its_cluster_jobs_again(ws):
    work, _store, _, _k8s = ws
    go = work / "go"
    write(
        work / "waiter.py",
        f"""\
        import os, time
        print("waiting", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.05)
        print("rank", os.environ["RANK"], "done")
        """,
    )
    svc = await make_service(ws)
    job = await svc.submit(
        spec={"name": "reattach", "framework": "pytorch", "script": "waiter.py", "nodes": 2},
        base_dir=str(work),
        target="tj",
    )
    await until(lambda: b"waiting" in svc.read_log(job["job_id"], 1)[0], "rank 1 to run", DEADLINE)
    await svc.stop()  # the cluster's job goes on
    assert (await asyncio.to_thread(svc.db.get_job, job["job_id"]))["status"] == "RUNNING"
    svc2 = await make_service(ws)
    try:
        go.write_text("")
        job = await asyncio.wait_for(svc2.wait(job["job_id"]), DEADLINE)
    finally:
        await svc2.stop()
    assert job["status"] == "SUCCEEDED", job["reason"]
    assert "rank 1 done" in svc2.read_log(job["job_id"], 1)[0].decode()


async def test_targets_are_checked_and_submissions_refused_with_the_field(ws, tmp_path):
    work, _store, _, k8s = ws
    write(work / "t.py", "print('hi')\n")
    write(work / "big.py", "x = 1\n" + "#" * 30_000 + "\n")
    bad = {
        "nokind": {"api_url": k8s.url, "image": IMAGE},
        "noimage": {"kind": "trainjob", "api_url": k8s.url},
        "badenv": {"kind": "pytorchjob", "api_url": k8s.url, "image": IMAGE, "env": {"RANK": "1"}},
        "small": {
            "kind": "trainjob",
            "api_url": k8s.url,
            "namespace": "team-a",
            "image": IMAGE,
            "images": [IMAGE],
            "max_embedded_bytes": 2000,
        },
    }
    svc = await make_service(ws, targets=targets(k8s, **bad))
    try:
        errors = svc.target_errors
        assert "'nokind'].kind: required" in errors["nokind"]
        assert "'noimage'].image: required" in errors["noimage"]
        assert "'badenv'].env.RANK" in errors["badenv"]
        assert {t["name"] for t in svc.list_targets()} == {"local", "tj", "pt", "tf", "small"}

        async def refused(target: str, **spec) -> str:
            with pytest.raises(TrackingError) as e:
                await svc.submit(
                    spec={"name": "x", "script": "t.py", **spec}, base_dir=str(work), target=target
                )
            assert e.value.http_status == 400
            return e.value.message

        assert "misconfigured" in await refused("noimage")
        assert "image" in (await refused("noimage"))
        assert "runs tensorflow jobs, not 'pytorch'" in await refused("tf")
        assert "procs_per_node" in await refused("tf", framework="tensorflow", procs_per_node=2)
        assert "not allowed" in await refused("small", image="other/image:2")
        assert "PET_NODE_RANK" in await refused("tj", env={"PET_NODE_RANK": "3"})
        big = await refused("small", script="big.py")
        assert "'big.py'" in big and "max_embedded_bytes" in big and "small" in big
        assert not svc.db.list_jobs()[0]  # nothing was stored
    finally:
        await svc.stop()


async def test_admission_hook_refuses_before_anything_is_stored(ws):
    work, _store, _, _k8s = ws
    write(work / "t.py", "print('hi')\n")
    seen = []

    async def quota(job, target):
        seen.append((job["name"], job["resources"], target))
        raise TrackingError("team vision: 4 of 4 GPUs in use", "RESOURCE_EXHAUSTED")

    svc = await make_service(ws, admission=quota)
    try:
        with pytest.raises(TrackingError) as e:
            await svc.submit(
                spec={"name": "q", "script": "t.py", "resources": {"gpu": 2}},
                base_dir=str(work),
                target="tj",
            )
        assert "4 of 4 GPUs" in e.value.message
        assert seen == [("q", {"gpu": 2}, "tj")]
        assert not svc.db.list_jobs()[0]
    finally:
        await svc.stop()


async def test_every_node_logs_system_metrics_with_its_node_id(ws):
    """Each replica samples its node into the job's run as MLflow names them with a node
    id; GPUs through a fake NVML (``pynvml`` on the job's PYTHONPATH), CPU and memory real."""
    work, store, _, _k8s = ws
    write(work / "nvml" / "pynvml.py", FAKE_PYNVML)
    write(work / "short.py", "import time\ntime.sleep(1.5)\nprint('done')\n")
    svc = await make_service(ws, system_metrics_interval=0.2)
    try:
        job = await run_job(
            svc,
            spec={
                "name": "sysm",
                "framework": "pytorch",
                "script": "short.py",
                "nodes": 2,
                "env": {"PYTHONPATH": str(work / "nvml")},
            },
            base_dir=str(work),
            target="tj",
        )
    finally:
        await svc.stop()
    assert job["status"] == "SUCCEEDED", job["reason"]
    metrics = store.get_run(job["run_id"]).data.metrics
    for node in (0, 1):
        p = f"system/node_{node}/"
        assert metrics[p + "gpu_0_utilization_percentage"] == 37.0
        assert metrics[p + "gpu_0_memory_usage_percentage"] == 25.0
        assert metrics[p + "gpu_0_power_usage_watts"] == 150.0
        assert metrics[p + "system_memory_usage_megabytes"] > 0
        assert 0 <= metrics[p + "cpu_utilization_percentage"] <= 100
    assert not any(k.startswith("system/cpu") for k in metrics)  # always a node id here


def test_pod_environment_of_the_launcher_matches_torchrun():
    """The in-pod launcher's reading of each controller's env (no cluster needed)."""
    from jupyter_mlops.jobs.podrun import node_shape, rank_environ

    trainjob = {
        "PET_NNODES": "3",
        "PET_NPROC_PER_NODE": "2",
        "PET_NODE_RANK": "1",
        "PET_MASTER_ADDR": "tj-node-0-0.tj",
        "PET_MASTER_PORT": "29500",
        "JUPYTER_MLOPS_JOB_RUN_ID": "r1",
    }
    shape = node_shape("pytorch", trainjob, 1)
    assert shape == {"nodes": 3, "procs": 2, "node": 1, "host": "tj-node-0-0.tj", "port": 29500}
    env = rank_environ("pytorch", shape, 1, trainjob)
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"], env["GROUP_RANK"]) == (
        "3",
        "1",
        "6",
        "1",
    )
    assert env["MASTER_ADDR"] == "tj-node-0-0.tj" and "MLFLOW_RUN_ID" not in env
    v1 = {"MASTER_ADDR": "j-master-0", "MASTER_PORT": "23456", "WORLD_SIZE": "4", "RANK": "0"}
    shape = node_shape("pytorch", v1, 2)
    assert shape == {"nodes": 2, "procs": 2, "node": 0, "host": "j-master-0", "port": 23456}
    env0 = rank_environ("pytorch", shape, 0, {**v1, "JUPYTER_MLOPS_JOB_RUN_ID": "r2"})
    assert env0["MLFLOW_RUN_ID"] == "r2" and env0["RANK"] == "0"
    tf = {
        "TF_CONFIG": json.dumps(
            {"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 1}}
        )
    }
    shape = node_shape("tensorflow", tf, 1)
    env = rank_environ("tensorflow", shape, 0, tf)
    assert env["TF_CONFIG"] == tf["TF_CONFIG"] and env["JUPYTER_MLOPS_RANK"] == "1"
    assert env["JUPYTER_MLOPS_PEERS"] == "a:2222,b:2222"


async def test_a_multi_file_job_ships_its_directory_without_what_is_ignored(ws, tmp_path):
    """The job's directory travels inside the TrainJob: the script imports its own package
    and reads a data file, as it does locally; version control, virtual environments, caches
    and what ``.mlopsignore`` lists stay behind; a directory too big names the limit and the
    ignore file."""
    import base64
    import gzip
    import io
    import tarfile

    work, _store, _, k8s = ws
    code = work / "proj"
    write(code / "pkg" / "__init__.py", "")
    write(code / "pkg" / "util.py", "def scale(x):\n    return 3 * x\n")
    write(code / "conf" / "settings.json", '{"factor": 7}\n')
    write(
        code / "train.py",
        """\
        import json, os
        from pkg.util import scale
        factor = json.load(open("conf/settings.json"))["factor"]
        print("rank", os.environ["RANK"], "result", scale(factor))
        """,
    )
    noise = "x" * 300_000
    for junk in (".git/objects/big", ".venv/lib/big.py", "pkg/__pycache__/util.pyc", "raw/d.bin"):
        write(code / junk, noise)
    write(code / ".mlopsignore", "# data stays on the volume\nraw/\n")
    svc = await make_service(ws)
    try:
        job = await run_job(
            svc,
            spec={"name": "multi", "framework": "pytorch", "script": "train.py", "nodes": 2},
            base_dir=str(code),
            target="tj",
        )
        write(code / "weights.bin", "y" * 5_000_000)  # too big even packed
        with pytest.raises(TrackingError) as e:
            await svc.submit(
                spec={"name": "huge", "framework": "pytorch", "script": "train.py"},
                base_dir=str(code),
                target="tj",
            )
    finally:
        await svc.stop()
    logs = [svc.read_log(job["job_id"], r)[0].decode() for r in range(2)]
    assert job["status"] == "SUCCEEDED", (job["reason"], logs)
    assert "rank 0 result 21" in logs[0] and "rank 1 result 21" in logs[1]
    tj = next(
        b
        for b in k8s.created
        if b.get("kind") == "TrainJob" and job["job_id"][:8] in b["metadata"]["name"]
    )
    args = tj["spec"]["trainer"]["args"]
    archive = args[args.index("--archive") + 1]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(base64.b64decode(archive)))) as tar:
        names = sorted(tar.getnames())
    assert names == [
        ".mlopsignore",
        "conf/settings.json",
        "pkg/__init__.py",
        "pkg/util.py",
        "train.py",
    ]
    message = e.value.message
    assert "'weights.bin'" in message and "max_embedded_bytes" in message, message
    assert str(code / ".mlopsignore") in message and "'tj'" in message


async def test_a_kueue_suspended_trainjob_is_queued_with_the_reason_until_admitted(ws):
    """Kueue holds a TrainJob of a queue without quota (``spec.suspend``; Trainer's
    ``Suspended`` condition): the job shows QUEUED with the reason, its ranks pending; once
    Kueue admits it (``spec.suspend: false``) it runs to the end."""
    from jupyter_mlops.jobs.kube import TRAINJOBS
    from jupyter_mlops.kube.client import KubeClient
    from jupyter_mlops.kube.config import KubeConfig

    work, _store, _, k8s = ws
    write(work / "hello.py", "import os\nprint('rank', os.environ['RANK'], 'ran')\n")
    kubecontrollers.HELD_QUEUES.add("full-q")
    svc = await make_service(
        ws, targets=targets(k8s, held={**targets(k8s)["tj"], "queue": "full-q"})
    )
    try:
        job = await svc.submit(
            spec={"name": "held", "framework": "pytorch", "script": "hello.py", "nodes": 2},
            base_dir=str(work),
            target="held",
        )

        async def state():
            return await svc.get_job(job["job_id"])

        async def suspended():
            j = await state()
            return j if j["reason"] and "suspended" in j["reason"] else None

        held = None
        for _ in range(int(DEADLINE / 0.1)):
            held = await suspended()
            if held:
                break
            await asyncio.sleep(0.1)
        assert held is not None, await state()
        assert held["status"] == "QUEUED" and "TrainJob is suspended" in held["reason"]
        assert {r["status"] for r in held["ranks"]} == {"PENDING"}
        name = f"held-{job['job_id'][:8]}"
        assert not [
            p for p in k8s.snapshot("pods", "team-a") if p["metadata"]["name"].startswith(name)
        ]
        client = KubeClient(KubeConfig(target="test", api_url=k8s.url, namespace="team-a"))
        try:
            await client.patch(TRAINJOBS, name, {"spec": {"suspend": False}}, namespace="team-a")
        finally:
            await client.close()
        job = await ended(svc, job)
    finally:
        kubecontrollers.HELD_QUEUES.discard("full-q")
        await svc.stop()
    assert job["status"] == "SUCCEEDED", job["reason"]
    assert "rank 1 ran" in svc.read_log(job["job_id"], 1)[0].decode()


def test_the_cli_without_a_server_runs_on_the_servers_kubernetes_target(ws, tmp_path):
    """``jupyter mlops job run FILE --target tj`` with no server running reads the server's
    configuration (``c.TrainingService.targets`` in jupyter_server_config.json) and follows
    the TrainJob to its end; a target configured nowhere is refused saying where to define it."""
    import subprocess

    from jobhelpers import REPO

    work, _store, _, k8s = ws
    write(work / "hello.py", "import os\nprint('rank', os.environ['RANK'], 'on the cluster')\n")
    write(work / "h.job.yaml", "name: hello\nframework: pytorch\nscript: hello.py\nnodes: 2\n")
    conf = tmp_path / "jupyter-config"
    conf.mkdir()
    (conf / "jupyter_server_config.json").write_text(
        json.dumps({"TrainingService": {"targets": {"tj": targets(k8s)["tj"]}}})
    )
    env = dict(
        env_without_tracking(),
        PYTHONPATH=str(REPO),
        JUPYTER_CONFIG_DIR=str(conf),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
    )

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyter_mlops.cli",
                "job",
                "run",
                "h.job.yaml",
                *args,
                "--database-url",
                str(tmp_path / "cli.db"),
                "--logs",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    r = cli("--target", "tj")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCEEDED" in r.stdout and "[rank 1] rank 1 on the cluster" in r.stdout
    r = cli("--target", "nope")
    assert r.returncode == 1
    assert "no target 'nope' (configured: local, tj)" in r.stderr
    assert "c.TrainingService.targets in jupyter_server_config.py" in r.stderr
