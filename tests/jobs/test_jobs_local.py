"""The local backend through the training service, in this process: real rank processes,
a real SQLite store, real PyTorch DDP (gloo on CPU)."""

from __future__ import annotations

import asyncio
import json

import pytest
from jobhelpers import (
    DDP_SCRIPT,
    SLEEPER_SCRIPT,
    all_dead,
    ended,
    env_without_tracking,
    pid_files,
    pids_of,
    run_job,
    until,
    write,
)

from jupyter_mlops._process import alive
from jupyter_mlops.jobs.service import JobError, TrainingService
from jupyter_mlops.tracking import open_store
from jupyter_mlops.tracking.errors import TrackingError

DEADLINE = 120.0


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "work").mkdir()
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    env = env_without_tracking()
    env["JUPYTER_MLOPS_TRACKING_URI"] = store.uri
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "data")
    yield tmp_path / "work", store, env
    store.close()


async def make_service(ws, **cfg) -> TrainingService:
    work, store, env = ws
    svc = TrainingService(
        store, str(work), env=env, jobs_dir=str(work.parent / "jobs"), stop_grace=1.0, **cfg
    )
    await svc.start()
    return svc


@pytest.mark.timeout(600)
async def test_ddp_two_nodes_two_procs_trains_with_identical_weights(ws):
    pytest.importorskip("torch")
    work, store, _ = ws
    write(work / "ddp_train.py", DDP_SCRIPT)
    out = work / "out"
    out.mkdir()
    svc = await make_service(ws)
    try:
        job = await svc.submit(
            spec={
                "name": "ddp",
                "framework": "pytorch",
                "script": "ddp_train.py",
                "nodes": 2,
                "procs_per_node": 2,
                "params": {"lr": 0.05, "steps": 30, "out": str(out)},
                "env": {"OMP_NUM_THREADS": "1"},
            },
            base_dir=str(work),
        )
        assert job["status"] in ("QUEUED", "RUNNING") and len(job["ranks"]) == 4
        # 4 processes importing torch on a loaded 2-core machine: a generous deadline
        job = await ended(svc, job, 5 * DEADLINE)
    finally:
        await svc.stop()
    logs = {
        r: (work.parent / "jobs" / job["job_id"] / "logs" / f"rank-{r}.log").read_text()
        for r in range(4)
    }
    assert job["status"] == "SUCCEEDED", (job["reason"], logs)
    assert [r["status"] for r in job["ranks"]] == ["SUCCEEDED"] * 4
    results = [json.loads((out / f"rank-{r}.json").read_text()) for r in range(4)]
    # all ranks end with the same model, bit for bit
    assert all(res["weights"] == results[0]["weights"] for res in results)
    # torchrun's and Trainer's environment, by rank and node
    for r, res in enumerate(results):
        env = res["env"]
        assert env["RANK"] == env["JUPYTER_MLOPS_RANK"] == str(r)
        assert env["LOCAL_RANK"] == str(r % 2) and env["NODE_RANK"] == str(r // 2)
        assert env["GROUP_RANK"] == env["PET_NODE_RANK"] == str(r // 2)
        assert env["WORLD_SIZE"] == "4" and env["LOCAL_WORLD_SIZE"] == "2"
        assert env["PET_NNODES"] == "2" and env["PET_NPROC_PER_NODE"] == "2"
        assert env["MASTER_ADDR"] == env["PET_MASTER_ADDR"] == "127.0.0.1"
        assert env["MASTER_PORT"] == env["PET_MASTER_PORT"] == results[0]["env"]["MASTER_PORT"]
        assert env["JUPYTER_MLOPS_JOB_RUN_ID"] == job["run_id"]
    # each node is its own process group, shared by its ranks
    assert results[0]["pgid"] == results[1]["pgid"] != results[2]["pgid"] == results[3]["pgid"]
    assert results[0]["pgid"] == results[0]["pid"] and results[2]["pgid"] == results[2]["pid"]
    # rank 0's metrics are in the job's run (the others' were dropped); the loss dropped
    run = store.get_run(job["run_id"])
    assert run.info.status == "FINISHED"
    history, _ = store.get_metric_history(job["run_id"], "loss")
    assert [m.step for m in history] == list(range(30))
    assert history[-1].value < history[0].value / 5
    training = {k for k in run.data.metrics if not k.startswith("system/")}
    assert training == {"loss"}
    assert "system/cpu_utilization_percentage" in run.data.metrics  # on by default
    assert run.data.params == {"lr": "0.05", "steps": "30", "out": str(out)}
    assert run.data.tags["mlflow.source.type"] == "JOB"
    assert run.data.tags["mlops.job.framework"] == "pytorch"
    assert run.data.tags["mlops.job.shape"] == "2x2"
    # every rank's log kept, as a file and as an artifact of the run; the spec and source too
    repo = store.artifact_repo(run.info.artifact_uri)
    for r in range(4):
        assert f"rank {r} of 4 done" in logs[r]
        assert f"rank {r} of 4 done" in repo.open(f"logs/rank-{r}.log").read().decode()
    spec = json.loads(repo.open("job/spec.json").read())
    assert spec["nodes"] == 2 and spec["procs_per_node"] == 2 and spec["script"] == "ddp_train.py"
    assert repo.open("source/ddp_train.py").read().decode() == DDP_SCRIPT
    assert all_dead([res["pid"] for res in results])


async def test_a_failing_rank_fails_the_job_and_leaves_no_process(ws):
    work, store, _ = ws
    write(work / "sleeper.py", SLEEPER_SCRIPT)
    out = work / "out"
    out.mkdir()
    svc = await make_service(ws)
    try:
        job = await run_job(
            svc,
            spec={
                "name": "fails",
                "framework": "generic",
                "script": "sleeper.py",
                "args": [str(out), 1],
                "nodes": 2,
                "procs_per_node": 2,
            },
            base_dir=str(work),
        )
        records = pid_files(out, 4)
    finally:
        await svc.stop()
    assert job["status"] == "FAILED"
    assert job["reason"] == "rank 1 exited with status 1"
    by_rank = {r["rank"]: r for r in job["ranks"]}
    assert by_rank[1]["status"] == "FAILED" and by_rank[1]["exit_code"] == 1
    assert {by_rank[r]["status"] for r in (0, 2, 3)} == {"CANCELED"}
    assert len(records) == 4
    await until(lambda: all_dead(pids_of(records)), "every rank and grandchild to be gone")
    log1 = svc.read_log(job["job_id"], 1)[0].decode()
    assert "RuntimeError: rank 1 fails on purpose" in log1
    run = store.get_run(job["job_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["mlops.job.error"] == "rank 1 exited with status 1"


async def test_cancel_mid_job_leaves_no_process(ws):
    work, store, _ = ws
    write(work / "sleeper.py", SLEEPER_SCRIPT)
    out = work / "out"
    out.mkdir()
    svc = await make_service(ws)
    try:
        job = await svc.submit(
            spec={
                "name": "cancelled",
                "framework": "pytorch",
                "script": "sleeper.py",
                "args": [str(out)],
                "nodes": 2,
                "procs_per_node": 2,
            },
            base_dir=str(work),
        )
        records = await until(lambda: pid_files(out, 4), "every rank to start")
        job = await svc.cancel(job["job_id"])
        assert job["status"] == "CANCELED" and job["reason"] == "cancelled"
        assert {r["status"] for r in job["ranks"]} == {"CANCELED"}
        await until(lambda: all_dead(pids_of(records)), "every rank and grandchild to be gone")
        with pytest.raises(TrackingError, match="already ended"):
            await svc.cancel(job["job_id"])
    finally:
        await svc.stop()
    assert store.get_run(job["job_id"]).info.status == "KILLED"


async def test_restart_policy_restarts_the_group_after_a_backoff(ws):
    work, _store, _ = ws
    write(
        work / "flaky.py",
        """\
        import os, sys
        attempt = int(os.environ["JUPYTER_MLOPS_JOB_ATTEMPT"])
        rank = int(os.environ["JUPYTER_MLOPS_RANK"])
        print("attempt", attempt, "rank", rank)
        if attempt == 1 and rank == 1:
            sys.exit(3)
        """,
    )
    svc = await make_service(ws)
    try:
        job = await run_job(
            svc,
            spec={
                "name": "flaky",
                "framework": "generic",
                "script": "flaky.py",
                "nodes": 1,
                "procs_per_node": 2,
                "restart_policy": "OnFailure",
                "max_restarts": 2,
                "backoff_seconds": 0.1,
            },
            base_dir=str(work),
        )
        # ExitCode: exit status 3 (a program error) is not retried
        job2 = await run_job(
            svc,
            spec={
                "name": "flaky2",
                "framework": "generic",
                "script": "flaky.py",
                "nodes": 1,
                "procs_per_node": 2,
                "restart_policy": "ExitCode",
                "max_restarts": 2,
                "backoff_seconds": 0.1,
            },
            base_dir=str(work),
        )
    finally:
        await svc.stop()
    assert (job["status"], job["attempt"], job["reason"]) == ("SUCCEEDED", 2, None)
    log = svc.read_log(job["job_id"], 1)[0].decode()
    assert "attempt 1 rank 1" in log and "[jupyter-mlops] attempt 2" in log
    assert "attempt 2 rank 1" in log
    assert (job2["status"], job2["attempt"], job2["reason"]) == (
        "FAILED",
        1,
        "rank 1 exited with status 3",
    )


async def test_ranks_that_end_at_once_do_not_break_their_nodes_process_group(ws):
    """A node's ranks share its first rank's process group. Ranks that end in a few
    milliseconds (here ``sh`` doing nothing) may be gone, group and all, before the next rank
    of their node starts on a loaded machine: the next one then leads a new group of the node
    (it was a PermissionError that failed the job at attempt 0 before its ranks had even
    run). Many tiny ranks make that likely; the job must succeed however it falls."""
    work, _store, _ = ws
    write(work / "quick.sh", "exit 0\n")
    svc = await make_service(ws)
    try:
        jobs = [
            await svc.submit(
                spec={
                    "name": f"quick{i}",
                    "framework": "generic",
                    "script": "quick.sh",
                    "nodes": 2,
                    "procs_per_node": 8,
                },
                base_dir=str(work),
            )
            for i in range(3)
        ]
        jobs = [await ended(svc, j) for j in jobs]
    finally:
        await svc.stop()
    for job in jobs:
        assert (job["status"], job["attempt"], job["reason"]) == ("SUCCEEDED", 1, None)
        assert [r["status"] for r in job["ranks"]] == ["SUCCEEDED"] * 16


async def test_a_rank_joining_a_group_that_is_gone_leads_a_new_one(tmp_path):
    """The node's group leader exited and was reaped: the rank starts in a group of its own
    (deterministic counterpart of the test above)."""
    import os
    import sys

    from jupyter_mlops.jobs.local import LocalJob, Recorder
    from jupyter_mlops.jobs.spec import spec_from_dict

    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass", process_group=0)
    await gone.wait()  # reaped: its group has no member left

    async def nothing(*args, **kwargs):
        return None

    spec = spec_from_dict({"name": "g", "script": "x.py"}, base_dir=str(tmp_path))
    job = LocalJob("j", spec, {}, str(tmp_path), {}, Recorder(nothing, nothing, nothing))
    code = "import os; print(os.getpgid(0))"
    with open(tmp_path / "out.log", "wb") as log:  # noqa: ASYNC230 - a local file, once
        proc, pgid = await job._spawn([sys.executable, "-c", code], dict(os.environ), log, gone.pid)
    assert await proc.wait() == 0
    assert pgid == proc.pid and (tmp_path / "out.log").read_text().strip() == str(proc.pid)


async def test_tf_config_contract_workers_reach_each_other(ws):
    """TensorFlow itself is not installed in CI (a 274 MB wheel): a stdlib worker checks
    TF_CONFIG as MultiWorkerMirroredStrategy reads it, and every worker listens on its own
    address and connects to every other one's."""
    work, _store, _ = ws
    write(
        work / "tfworker.py",
        """\
        import json, os, socket, sys, time
        cfg = json.loads(os.environ["TF_CONFIG"])
        workers = cfg["cluster"]["worker"]
        task = cfg["task"]
        assert task["type"] == "worker" and set(cfg["cluster"]) == {"worker"}
        me = task["index"]
        assert me == int(os.environ["JUPYTER_MLOPS_RANK"]) and len(workers) == 3
        host, port = workers[me].rsplit(":", 1)
        srv = socket.create_server((host, int(port)))
        srv.settimeout(60)
        for i, addr in enumerate(workers):
            if i == me:
                continue
            h, p = addr.rsplit(":", 1)
            for _ in range(600):
                try:
                    socket.create_connection((h, int(p)), timeout=5).close()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                sys.exit(f"worker {i} at {addr} never listened")
        for _ in workers[1:]:
            srv.accept()[0].close()
        print("chief" if me == 0 else "worker", me, "reached", len(workers) - 1, "peers")
        """,
    )
    svc = await make_service(ws)
    try:
        job = await run_job(
            svc,
            spec={"name": "tf", "framework": "tensorflow", "script": "tfworker.py", "nodes": 3},
            base_dir=str(work),
        )
    finally:
        await svc.stop()
    logs = [svc.read_log(job["job_id"], r)[0].decode() for r in range(3)]
    assert job["status"] == "SUCCEEDED", logs
    assert "chief 0 reached 2 peers" in logs[0] and "worker 2 reached 2 peers" in logs[2]


async def test_gpus_are_split_between_nodes_and_tf_workers(ws):
    work, _store, _ = ws
    write(
        work / "show.py",
        """\
        import os
        print("CVD", os.environ["JUPYTER_MLOPS_RANK"], os.environ["CUDA_VISIBLE_DEVICES"])
        """,
    )
    svc = await make_service(ws, local_gpus=["0", "1", "2", "3"])
    try:
        torch_job = await svc.submit(
            spec={
                "name": "g",
                "framework": "pytorch",
                "script": "show.py",
                "nodes": 2,
                "procs_per_node": 2,
                "resources": {"gpu": 2},
            },
            base_dir=str(work),
        )
        tf_job = await svc.submit(
            spec={
                "name": "g2",
                "framework": "tensorflow",
                "script": "show.py",
                "nodes": 1,
                "procs_per_node": 4,
            },
            base_dir=str(work),
        )
        for j in (torch_job, tf_job):
            assert (await ended(svc, j))["status"] == "SUCCEEDED"
        with pytest.raises(
            TrackingError,
            match=r"resources.gpu: 2 node\(s\) x 4 GPU\(s\) = 8, "
            r"but this machine has 4 GPU\(s\)",
        ):
            await svc.submit(
                spec={"name": "g3", "script": "show.py", "nodes": 2, "resources": {"gpu": 4}},
                base_dir=str(work),
            )
    finally:
        await svc.stop()

    def seen(job: dict) -> list[str]:
        return [svc.read_log(job["job_id"], r)[0].decode().split()[-1] for r in range(4)]

    # a pod's view: every rank of a node sees the node's GPUs (and picks LOCAL_RANK's)
    assert seen(torch_job) == ["0,1", "0,1", "2,3", "2,3"]
    # a TF worker takes every GPU it sees: each gets its own
    assert seen(tf_job) == ["0", "1", "2", "3"]


async def test_spec_errors_name_the_field_and_stopping_fails_running_jobs(ws):
    work, store, _ = ws
    write(work / "sleeper.py", SLEEPER_SCRIPT)
    out = work / "out"
    out.mkdir()
    svc = await make_service(ws)
    try:
        with pytest.raises(JobError) as e:
            await svc.submit(
                spec={"name": "bad", "script": "missing.py", "nodes": 0, "framework": "mxnet"},
                base_dir=str(work),
            )
        text = str(e.value)
        assert "framework: 'mxnet' is not one of 'pytorch', 'tensorflow', 'generic'" in text
        assert "nodes: 0 is less than the minimum of 1" in text
        with pytest.raises(TrackingError, match="unknown parameter 'lr'"):
            await svc.submit(
                path=None,
                text="name: p\nscript: sleeper.py\n",
                parameters={"lr": "1"},
                base_dir=str(work),
            )
        job = await svc.submit(
            spec={"name": "long", "script": "sleeper.py", "args": [str(out)], "nodes": 2},
            base_dir=str(work),
        )
        records = await until(lambda: pid_files(out, 2), "both ranks to start")
    finally:
        await svc.stop()  # the server stops: the job fails with the reason, no process left
    await until(lambda: all_dead(pids_of(records)), "every rank and grandchild to be gone")
    row = svc.db.get_job(job["job_id"])
    assert row["status"] == "FAILED"
    assert row["reason"] == "interrupted: the server stopped while it ran"
    assert store.get_run(job["job_id"]).info.status == "FAILED"


async def test_a_dead_servers_leftover_ranks_are_killed_at_the_next_start(ws, tmp_path):
    """A server killed with SIGKILL cannot stop its jobs: the next one to start on the same
    database marks them FAILED and kills the processes they left."""
    import signal
    import subprocess
    import sys

    work, store, env = ws
    write(work / "sleeper.py", SLEEPER_SCRIPT)
    out = work / "out"
    out.mkdir()
    runner = write(
        tmp_path / "runner.py",
        f"""\
        import asyncio, sys
        from jupyter_mlops.jobs.service import TrainingService
        from jupyter_mlops.tracking import open_store

        async def main():
            store = open_store({store.uri!r})
            svc = TrainingService(store, {str(work)!r}, jobs_dir={str(tmp_path / "jobs")!r})
            await svc.start()
            job = await svc.submit(spec={{"name": "orphan", "script": "sleeper.py",
                                         "args": [{str(out)!r}], "nodes": 2,
                                         "procs_per_node": 2}}, base_dir={str(work)!r})
            print(job["job_id"], flush=True)
            await asyncio.sleep(600)

        asyncio.run(main())
        """,
    )
    proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; the test reads its output
        [sys.executable, str(runner)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        job_id = proc.stdout.readline().strip()
        records = await until(lambda: pid_files(out, 4), "every rank to start")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    assert any(alive(p) for p in pids_of(records))  # orphans, until a server starts
    svc = await make_service(ws)
    await svc.stop()
    await until(lambda: all_dead(pids_of(records)), "the leftover processes to be killed")
    row = svc.db.get_job(job_id)
    assert row["status"] == "FAILED"
    assert row["reason"].startswith("interrupted: the process running it (")
    assert "leftover process(es) killed" in row["reason"]
    assert {r["status"] for r in row["ranks"]} == {"FAILED"}
    assert store.get_run(job_id).info.status == "FAILED"


@pytest.mark.postgres
async def test_jobs_and_ranks_persist_on_postgresql(tmp_path):
    from pgschema import fresh_schema

    work = tmp_path / "work"
    write(work / "w.py", "import os\nprint('rank', os.environ['RANK'])\n")
    with fresh_schema("jobs") as url:
        store = open_store(url)
        env = dict(env_without_tracking(), JUPYTER_MLOPS_TRACKING_URI=url)
        svc = TrainingService(store, str(work), env=env, jobs_dir=str(tmp_path / "jobs"))
        await svc.start()
        try:
            job = await run_job(
                svc, spec={"name": "pg", "script": "w.py", "nodes": 2}, base_dir=str(work)
            )
            listed = (await svc.list_jobs(status="SUCCEEDED"))["jobs"]
        finally:
            await svc.stop()
            store.close()
    assert job["status"] == "SUCCEEDED" and [r["rank"] for r in job["ranks"]] == [0, 1]
    assert [j["job_id"] for j in listed] == [job["job_id"]]


def test_a_pipeline_train_step_runs_the_job_through_the_local_backend(tmp_path):
    """``train: job.yaml`` in a pipeline: the step runs the job's ranks (its log holds every
    rank's output), the job's tracked run is a child of the step's; a bad job file or an
    unknown job parameter fails the step, saying so in its log."""
    import subprocess
    import sys

    from jobhelpers import REPO

    write(
        tmp_path / "w.py",
        """\
        import argparse, os
        ap = argparse.ArgumentParser()
        ap.add_argument("--lr", type=float)
        print("rank", os.environ["RANK"], "lr", ap.parse_args().lr)
        """,
    )
    write(tmp_path / "t.job.yaml", "name: t\nscript: w.py\nnodes: 2\nparams: {lr: 0.1}\n")
    write(tmp_path / "bad.job.yaml", "name: b\nscript: w.py\nnodes: 0\n")
    write(
        tmp_path / "p.pipeline.yaml",
        """\
        name: with-train
        parameters: {lr: 0.5}
        steps:
          fit: {train: t.job.yaml, parameters: {lr: "{{ params.lr }}"}}
        """,
    )
    write(
        tmp_path / "bad.pipeline.yaml",
        """\
        name: bad-train
        steps:
          a: {train: bad.job.yaml}
          b: {train: t.job.yaml, parameters: {epochs: 3}}
        """,
    )
    env = dict(
        env_without_tracking(), PYTHONPATH=str(REPO), JUPYTER_DATA_DIR=str(tmp_path / "data")
    )
    db = tmp_path / "p.db"

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "jupyter_mlops.cli", "pipeline", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    r = cli(
        "run", "p.pipeline.yaml", "--database-url", str(db), "--runs-dir", str(tmp_path / "runs")
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "fit: SUCCEEDED" in r.stdout
    run_id = r.stdout.split("run ", 1)[1].split()[0]
    (step_log,) = (tmp_path / "runs" / run_id / "steps" / "fit").glob("step.log")
    text = step_log.read_text()
    assert "[rank 0] rank 0 lr 0.5" in text and "[rank 1] rank 1 lr 0.5" in text
    store = open_store(f"sqlite:///{db}")
    try:
        (child,) = [
            r
            for r in store.search_runs([store.get_experiment_by_name("with-train").experiment_id])[
                0
            ]
            if r.data.tags.get("mlops.pipeline.step") == "fit"
        ]
        (job_run,) = store.search_runs([store.get_experiment_by_name("t").experiment_id])[0]
        assert job_run.data.tags["mlflow.parentRunId"] == child.info.run_id
        assert job_run.data.params == {"lr": "0.5"} and job_run.info.status == "FINISHED"
    finally:
        store.close()
    r = cli(
        "run", "bad.pipeline.yaml", "--database-url", str(db), "--runs-dir", str(tmp_path / "runs")
    )
    assert r.returncode == 1 and "a: FAILED" in r.stdout and "b: FAILED" in r.stdout
    bad_run = r.stdout.split("run ", 1)[1].split()[0]
    logs = {
        s: (tmp_path / "runs" / bad_run / "steps" / s / "step.log").read_text() for s in ("a", "b")
    }
    assert "bad.job.yaml:3: nodes: 0 is less than the minimum of 1" in logs["a"]
    assert "unknown parameter 'epochs' (params: lr)" in logs["b"]


async def test_other_ranks_log_under_their_rank_when_the_job_says_so(ws):
    """Rank 0 logs into the job's run by default, the others are dropped; with
    ``log_all_ranks`` (or ``mlops.jobs.log_all_ranks()`` in the code) their keys carry their
    rank. A rank's ``end_run`` does not end the job's run."""
    work, store, _ = ws
    write(
        work / "logger.py",
        """\
        import sys
        import jupyter_mlops as mlops
        if len(sys.argv) > 1:
            mlops.jobs.log_all_ranks()
        r = mlops.jobs.rank()
        mlops.log_metric("x", float(r), step=0)
        mlops.log_param("world", mlops.jobs.world_size())
        mlops.end_run()
        """,
    )
    svc = await make_service(ws)
    try:
        default = await svc.submit(
            spec={
                "name": "l0",
                "script": "logger.py",
                "nodes": 1,
                "procs_per_node": 3,
                "framework": "generic",
            },
            base_dir=str(work),
        )
        spec_all = await svc.submit(
            spec={"name": "l1", "script": "logger.py", "nodes": 3, "log_all_ranks": True},
            base_dir=str(work),
        )
        code_all = await svc.submit(
            spec={"name": "l2", "script": "logger.py", "nodes": 2, "args": ["all"]},
            base_dir=str(work),
        )
        jobs = [await ended(svc, j) for j in (default, spec_all, code_all)]
    finally:
        await svc.stop()
    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * 3
    runs = [store.get_run(j["job_id"]) for j in jobs]
    logged = [
        {k: v for k, v in r.data.metrics.items() if not k.startswith("system/")} for r in runs
    ]
    assert logged[0] == {"x": 0.0}
    assert logged[1] == {"x": 0.0, "rank1/x": 1.0, "rank2/x": 2.0}
    assert logged[2] == {"x": 0.0, "rank1/x": 1.0}
    assert runs[0].data.params == {"world": "3"}
    assert all(r.info.status == "FINISHED" for r in runs)


def test_cell_magic_and_submit_without_a_server_run_in_this_process(tmp_path, monkeypatch, capsys):
    """``%%mlops train`` and ``mlops.jobs.submit(fn)`` with no Jupyter server: the job runs on
    the local backend of this process; a failing cell's job is a UsageError with its log."""
    from IPython.core.error import UsageError

    from jupyter_mlops.jobs.client import LocalRuntime, submit
    from jupyter_mlops.jobs.magic import train_magic

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JUPYTER_MLOPS_SERVER_URL", raising=False)
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_URI", f"sqlite:///{tmp_path / 'magic.db'}")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    try:
        job = train_magic(
            ["--nodes", "2", "--framework", "generic", "-p", "n=3", "--name", "cell-job"],
            "import os\nprint('rank', os.environ['JUPYTER_MLOPS_RANK'], n * 2)\n",
        )
        out = capsys.readouterr().out
        assert "job cell-job:" in out and "SUCCEEDED" in out
        assert job.status == "SUCCEEDED" and job.logs(rank=1) == "rank 1 6\n"
        with pytest.raises(UsageError, match=r"(?s)FAILED.*ZeroDivisionError"):
            train_magic(["--framework", "generic"], "1 / 0\n")

        def train(n: int = 1, unused: str = "x") -> None:
            import os

            print("fn", os.environ["JUPYTER_MLOPS_RANK"], n + 1)

        fn_job = submit(train, framework="generic", procs_per_node=2, params={"n": 4})
        assert fn_job.wait(timeout=DEADLINE) == "SUCCEEDED", (
            fn_job.reason,
            fn_job.logs(rank=0),
            fn_job.logs(rank=1),
        )
        assert fn_job.logs(rank=1) == "fn 1 5\n" and fn_job.name == "train"
    finally:
        LocalRuntime.instance().close()


async def test_a_local_job_logs_the_machines_system_metrics_into_its_run(ws):
    work, store, _ = ws
    write(work / "short.py", "import time\ntime.sleep(1.5)\n")
    svc = await make_service(ws, system_metrics_interval=0.2)
    try:
        job = await run_job(
            svc,
            spec={"name": "sysm", "framework": "generic", "script": "short.py", "nodes": 2},
            base_dir=str(work),
        )
    finally:
        await svc.stop()
    assert job["status"] == "SUCCEEDED", job["reason"]
    metrics = store.get_run(job["run_id"]).data.metrics
    # every local "node" is this machine: one series, MLflow's names without a node id
    assert 0 <= metrics["system/cpu_utilization_percentage"] <= 100
    assert metrics["system/system_memory_usage_megabytes"] > 0
    assert 0 < metrics["system/system_memory_usage_percentage"] < 100
    history, _ = store.get_metric_history(job["run_id"], "system/cpu_utilization_percentage")
    assert len(history) >= 2 and [m.step for m in history] == list(range(len(history)))
    assert not any(k.startswith("system/node_") for k in metrics)


async def test_a_ranks_first_log_metric_leaves_the_store_to_the_writer_thread(ws):
    """Rank 0's ``log_metric`` inside the training loop never opens the store (SQLAlchemy,
    the schema check: a few hundred milliseconds): the job's run is taken up from what the
    rank's environment says, and the store is opened on the writer thread. Seen through
    Python's audit events: no SQLite connection is made on the training thread."""
    work, store, _ = ws
    write(
        work / "audited.py",
        """\
        import json, sys, threading
        connects = []
        sys.addaudithook(
            lambda ev, args: ev == "sqlite3.connect"
            and connects.append(threading.current_thread().name)
        )
        import jupyter_mlops as mlops
        for step in range(3):
            mlops.log_metric("loss", 1.0 / (step + 1), step=step)
        mlops.flush()
        run = mlops.active_run()
        print(json.dumps({"connects": connects, "experiment_id": run.info.experiment_id,
                          "run_id": run.info.run_id}))
        """,
    )
    svc = await make_service(ws, system_metrics_interval=0)
    try:
        job = await run_job(
            svc,
            spec={"name": "audited", "framework": "generic", "script": "audited.py"},
            base_dir=str(work),
        )
    finally:
        await svc.stop()
    log = svc.read_log(job["job_id"], 0)[0].decode()
    assert job["status"] == "SUCCEEDED", log
    seen = json.loads(log.strip().splitlines()[-1])
    assert seen["connects"] and "MainThread" not in seen["connects"], seen
    assert seen["run_id"] == job["run_id"] and seen["experiment_id"] == job["experiment_id"]
    history, _ = store.get_metric_history(job["run_id"], "loss")
    assert [m.step for m in history] == [0, 1, 2]
    assert store.get_run(job["run_id"]).info.status == "FINISHED"
