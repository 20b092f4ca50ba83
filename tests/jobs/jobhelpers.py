"""Shared pieces of the training job tests (imported as ``jobhelpers``)."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

from jupyter_mlops._process import alive

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEADLINE = 120.0

#: A real DDP job: a tiny linear model trained with gloo on CPU. Each rank draws its own
#: data shard; rank 0 logs the loss; every rank writes its final weights and what its
#: environment said to ``<out>/rank-<r>.json``.
DDP_SCRIPT = """\
import argparse, json, os
import torch
import torch.distributed as dist
import jupyter_mlops as mlops

ap = argparse.ArgumentParser()
ap.add_argument("--lr", type=float)
ap.add_argument("--steps", type=int)
ap.add_argument("--out")
a = ap.parse_args()
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
ddp = torch.nn.parallel.DistributedDataParallel(model)
opt = torch.optim.SGD(ddp.parameters(), lr=a.lr)
gen = torch.Generator().manual_seed(1234 + rank)
true_w = torch.tensor([[1.0, -2.0, 3.0, 0.5]])
for step in range(a.steps):
    x = torch.randn(32, 4, generator=gen)
    y = x @ true_w.T + 0.1
    loss = ((ddp(x) - y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    mlops.log_metric("loss", loss.item(), step=step)  # rank 0's goes to the job's run
dist.barrier()
names = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK",
         "MASTER_ADDR", "MASTER_PORT", "PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK",
         "PET_MASTER_ADDR", "PET_MASTER_PORT", "JUPYTER_MLOPS_RANK", "JUPYTER_MLOPS_JOB_RUN_ID"]
out = {"weights": [p.detach().tolist() for p in model.parameters()],
       "env": {n: os.environ.get(n) for n in names}, "pgid": os.getpgid(0), "pid": os.getpid()}
with open(os.path.join(a.out, f"rank-{rank}.json"), "w") as f:
    json.dump(out, f)
print(f"rank {rank} of {world} done")
dist.destroy_process_group()
"""

#: Every rank starts a grandchild and records both pids; the rank given as the second
#: argument raises once every rank has written its pids. Grandchildren of ranks still running
#: when the job stops start a session of their own (out of their node's process group: found
#: as descendants); the failing rank's stays in its node's group (found through the group
#: after its parent died: a process that left both the group and a dead parent could not be).
SLEEPER_SCRIPT = """\
import json, os, subprocess, sys, time
rank = int(os.environ["JUPYTER_MLOPS_RANK"])
out = sys.argv[1]
fail = int(sys.argv[2]) if len(sys.argv) > 2 else -1
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         start_new_session=rank != fail)
with open(os.path.join(out, f"pids-{rank}.json.tmp"), "w") as f:
    json.dump({"rank": rank, "pid": os.getpid(), "child": child.pid}, f)
os.replace(os.path.join(out, f"pids-{rank}.json.tmp"), os.path.join(out, f"pids-{rank}.json"))
print(f"rank {rank} sleeping", flush=True)
world = int(os.environ["JUPYTER_MLOPS_WORLD_SIZE"])
if rank == fail:
    while len([n for n in os.listdir(out) if n.startswith("pids-") and n.endswith(".json")]) < world:
        time.sleep(0.05)
    raise RuntimeError(f"rank {rank} fails on purpose")
time.sleep(600)
"""


def write(path: Path | str, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def wait_for(cond, what: str, timeout: float = DEADLINE, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


async def until(cond, what: str, timeout: float = DEADLINE):
    """Await until ``cond()`` (run in a thread) is truthy; its value."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await asyncio.to_thread(cond)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


async def ended(svc, job: dict | str, timeout: float = DEADLINE) -> dict:
    """The job (a submission's answer, or its id) once it ended."""
    import asyncio

    job_id = job if isinstance(job, str) else job["job_id"]
    return await asyncio.wait_for(svc.wait(job_id), timeout)


async def run_job(svc, timeout: float = DEADLINE, **submission) -> dict:
    """Submit a job to the training service ``svc`` (``spec=``, ``base_dir=``, ``target=``,
    ... as ``TrainingService.submit`` takes them) and wait until it ended; its final state."""
    return await ended(svc, await svc.submit(**submission), timeout)


def pid_files(out: Path, world: int) -> list[dict]:
    import json

    files = sorted(out.glob("pids-*.json"))
    if len(files) < world:
        return []
    return [json.loads(f.read_text()) for f in files]


def all_dead(pids: list[int]) -> bool:
    return not any(alive(p) for p in pids)


def pids_of(records: list[dict]) -> list[int]:
    return [r["pid"] for r in records] + [r["child"] for r in records]


def env_without_tracking() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_", "JPY_"))
    }


#: ``pynvml`` as NVML answers on a machine with one GPU (put on a job's PYTHONPATH: the
#: system metrics sampler imports it at the boundary it always uses).
FAKE_PYNVML = """\
class _Mem:
    used, total = 4_000_000_000, 16_000_000_000


class _Util:
    gpu, memory = 37, 20


def nvmlInit():
    pass


def nvmlShutdown():
    pass


def nvmlDeviceGetCount():
    return 1


def nvmlDeviceGetHandleByIndex(i):
    return i


def nvmlDeviceGetMemoryInfo(h):
    return _Mem()


def nvmlDeviceGetUtilizationRates(h):
    return _Util()


def nvmlDeviceGetPowerUsage(h):
    return 150_000


def nvmlDeviceGetEnforcedPowerLimit(h):
    return 300_000
"""
