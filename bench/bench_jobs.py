"""Training jobs against bare ``torchrun``, side by side on this machine.

1. Launch overhead: from the call that starts the job to the moment the last of 4 ranks runs
   its first line (each rank writes ``time.time()`` before importing anything heavy):
   ``TrainingService.submit`` of a 1 node x 4 process pytorch job (the tracked run, its
   artifacts and rows included) vs ``torchrun --nproc_per_node=4`` started as a subprocess.
2. Training overhead: the same DDP script (a small MLP, gloo, CPU), 200 steps on 4 ranks:
   the job (rank 0 logs the loss every step with ``mlops.log_metric``, rank logs to files)
   vs bare ``torchrun`` (no tracking). Measured inside rank 0 (the 200 steps' wall time, after
   the process group is up; and steps 2..N, i.e. without the first step, where the first
   ``log_metric`` opens the store) and from outside (start to every rank's exit). Rank 0 also
   attributes the tracking cost directly: the time spent inside ``log_metric`` on the training
   thread, and the CPU time of its other threads over the loop (our writer and sampler threads,
   and gloo's, which bare torchrun has too): the difference between the sides is what tracking
   takes from a CPU-bound loop, without the run-to-run noise of the wall times.

3. Watching: 100 running jobs (1 rank each, ``sleep``) in the service while a client polls
   the list the way the Jobs panel does (``list_jobs`` of 100 every ``--poll`` seconds, plus one
   job's detail): the CPU time of this process (the server's side: watchers, heartbeats,
   system-metrics sampling, the polls) over ``--watch-seconds``, as a share of one core.

    python bench/bench_jobs.py [--repeat 5] [--steps 200] [--only launch,train,watch]

Each measure alternates ours and torchrun's runs, so load from other processes hits both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = """\
import os, sys, time
t = time.time()
with open(os.path.join(sys.argv[1], "start-" + os.environ["RANK"]), "w") as f:
    f.write(repr(t))
"""

TRAIN = """\
import os, sys, threading, time
import psutil
import torch
import torch.distributed as dist
steps, out = int(sys.argv[1]), sys.argv[2]
track = bool(os.environ.get("JUPYTER_MLOPS_JOB_RUN_ID"))
if track:
    import jupyter_mlops as mlops
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Sequential(
    torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1)))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
gen = torch.Generator().manual_seed(rank)
dist.barrier()
me = threading.get_native_id()
def other_threads_cpu():
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id != me)
others0 = other_threads_cpu()
in_log = 0.0
t0 = time.perf_counter()
t1 = None
for step in range(steps):
    if step == 1:
        t1 = time.perf_counter()  # after the first step (and the first log_metric's set-up)
    x = torch.randn(64, 64, generator=gen)
    loss = (model(x) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if track:
        c = time.perf_counter()
        mlops.log_metric("loss", loss.item(), step=step)
        in_log += time.perf_counter() - c
dist.barrier()
if rank == 0:
    t = time.perf_counter()
    others = other_threads_cpu() - others0
    with open(os.path.join(out, "loop"), "w") as f:
        f.write(repr((t - t0, t - t1, in_log, others)))
dist.destroy_process_group()
"""


def torchrun() -> str:
    return str(Path(sys.executable).with_name("torchrun"))


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    e["OMP_NUM_THREADS"] = "1"
    return e


def last_start(out: Path, n: int) -> float:
    while len(list(out.glob("start-*"))) < n:
        time.sleep(0.005)
    time.sleep(0.05)
    return max(float(p.read_text() or 0) for p in out.glob("start-*"))


async def ours_launch(svc, work: Path, out: Path) -> float:
    t0 = time.time()
    job = await svc.submit(
        spec={
            "name": "probe",
            "script": "probe.py",
            "args": [str(out)],
            "procs_per_node": 4,
            "env": {"OMP_NUM_THREADS": "1"},
        },
        base_dir=str(work),
    )
    t = await asyncio.to_thread(last_start, out, 4)
    await svc.wait(job["job_id"])
    return t - t0


def torchrun_launch(work: Path, out: Path) -> float:
    t0 = time.time()
    proc = subprocess.Popen(
        [torchrun(), "--nproc_per_node=4", str(work / "probe.py"), str(out)],
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t = last_start(out, 4)
    proc.wait()
    return t - t0


async def ours_train(svc, work: Path, out: Path, steps: int) -> tuple[float, tuple]:
    t0 = time.monotonic()
    job = await svc.submit(
        spec={
            "name": "train",
            "script": "train.py",
            "args": [str(steps), str(out)],
            "procs_per_node": 4,
            "env": {"OMP_NUM_THREADS": "1"},
        },
        base_dir=str(work),
    )
    job = await svc.wait(job["job_id"])
    assert job["status"] == "SUCCEEDED", job
    return time.monotonic() - t0, eval((out / "loop").read_text())


def torchrun_train(work: Path, out: Path, steps: int) -> tuple[float, tuple]:
    t0 = time.monotonic()
    subprocess.run(
        [torchrun(), "--nproc_per_node=4", str(work / "train.py"), str(steps), str(out)],
        env=env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - t0, eval((out / "loop").read_text())


async def watch_cost(svc, work: Path, jobs: int, seconds: float, poll: float) -> dict:
    """CPU share of one core this process spends while ``jobs`` jobs run and are polled."""
    (work / "sleep.sh").write_text("exec sleep 600\n")
    ids = []
    for i in range(jobs):
        job = await svc.submit(
            spec={"name": f"w{i}", "framework": "generic", "script": "sleep.sh"},
            base_dir=str(work),
        )
        ids.append(job["job_id"])
    for _ in range(600):  # every job's rank running (polled, as a client would)
        running = (await svc.list_jobs(status="RUNNING", max_results=jobs))["jobs"]
        if len(running) >= jobs:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # the submissions' own work settled
    cpu0, t0, polls = time.process_time(), time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        await svc.list_jobs(max_results=jobs)
        await svc.get_job(ids[polls % len(ids)])
        polls += 1
        await asyncio.sleep(poll)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    for job_id in ids:
        await svc.cancel(job_id)
    return {
        "jobs": jobs,
        "polls": polls,
        "poll_s": poll,
        "cpu_s": cpu,
        "wall_s": wall,
        "core_share_percent": 100 * cpu / wall,
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--only", default="launch,train,watch")
    ap.add_argument("--watch-jobs", type=int, default=100)
    ap.add_argument("--watch-seconds", type=float, default=60.0)
    ap.add_argument("--poll", type=float, default=2.0, help="the panel's poll period (s)")
    ap.add_argument(
        "--system-metrics-interval", type=float, default=10.0, help="the jobs' sampling (0: off)"
    )
    args = ap.parse_args()
    only = set(args.only.split(","))
    from jupyter_mlops.jobs.service import TrainingService
    from jupyter_mlops.tracking import open_store

    root = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    work = root / "work"
    work.mkdir()
    (work / "probe.py").write_text(PROBE)
    (work / "train.py").write_text(TRAIN)
    store = open_store(f"sqlite:///{root / 'store.db'}")
    svc = TrainingService(
        store,
        str(work),
        env=dict(env(), JUPYTER_MLOPS_TRACKING_URI=store.uri),
        jobs_dir=str(root / "jobs"),
        max_local_ranks=args.watch_jobs,
        system_metrics_interval=args.system_metrics_interval,
    )
    await svc.start()
    watch: dict = {}
    launch: dict[str, list[float]] = {"ours": [], "torchrun": []}
    train: dict[str, list[tuple[float, tuple]]] = {"ours": [], "torchrun": []}
    try:
        for i in range(args.repeat if "launch" in only else 0):
            for who in ("ours", "torchrun"):
                out = root / f"launch-{who}-{i}"
                out.mkdir()
                launch[who].append(
                    await ours_launch(svc, work, out)
                    if who == "ours"
                    else torchrun_launch(work, out)
                )
        for i in range(args.repeat if "train" in only else 0):
            # Alternate who goes first, so a drift in the machine's state favours neither side.
            for who in ("ours", "torchrun") if i % 2 == 0 else ("torchrun", "ours"):
                out = root / f"train-{who}-{i}"
                out.mkdir()
                train[who].append(
                    await ours_train(svc, work, out, args.steps)
                    if who == "ours"
                    else torchrun_train(work, out, args.steps)
                )
        if "watch" in only:
            watch = await watch_cost(svc, work, args.watch_jobs, args.watch_seconds, args.poll)
    finally:
        await svc.stop()
        store.close()
    med = statistics.median
    if not launch["ours"] or not train["ours"]:
        print(
            json.dumps(
                {
                    "watch": watch,
                    "system_metrics_interval_s": svc.system_metrics_interval,
                    "load_average": os.getloadavg(),
                },
                indent=1,
            )
        )
        return
    result = {
        "launch_s": {k: med(v) for k, v in launch.items()},
        "launch_all_s": launch,
        "train_loop_s": {k: med(x[1][0] for x in v) for k, v in train.items()},
        "train_steps_2_to_n_s": {k: med(x[1][1] for x in v) for k, v in train.items()},
        "train_job_s": {k: med(x[0] for x in v) for k, v in train.items()},
        # Rank 0's tracking cost, attributed directly: time inside log_metric on the training
        # thread, and CPU of the process's other threads (writer, sampler; gloo's on both sides).
        "rank0_log_calls_s": {k: med(x[1][2] for x in v) for k, v in train.items()},
        "rank0_other_threads_cpu_s": {k: med(x[1][3] for x in v) for k, v in train.items()},
        "train_all": train,
        "watch": watch,
        "system_metrics_interval_s": svc.system_metrics_interval,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
