"""What a training job's container runs on Kubernetes: ``python3 -m jupyter_mlops.jobs.podrun
--archive B64 --config JSON``.

The container is one *node* of the job (a TrainJob's ``node`` pod, a PyTorchJob's Master or
Worker, a TFJob's Worker). This launcher unpacks the entry point shipped in the object
(:mod:`jupyter_mlops.embed`) into ``./workspace``, then starts the node's ranks as
``torchrun`` would, from the environment the controller injected:

* TrainJob (torch runtime): ``PET_NNODES``, ``PET_NPROC_PER_NODE``, ``PET_NODE_RANK``,
  ``PET_MASTER_ADDR``, ``PET_MASTER_PORT``;
* PyTorchJob (v1): the same ``PET_*`` (operator 1.9), else ``RANK`` (the node's rank),
  ``WORLD_SIZE`` (nodes x processes), ``MASTER_ADDR``, ``MASTER_PORT``;
* TFJob: ``TF_CONFIG`` as the operator wrote it (one process; its ``task.index`` is the rank).

Every rank gets the variables of :mod:`.frameworks` (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
... and ``JUPYTER_MLOPS_*``), exactly as locally, so the same script runs unchanged. Each
line a rank prints goes to the container's output as ``[rank N] line``: the target splits the
pod's log into the ranks' logs. A rank that fails stops the others; the container exits with
its status (0 when all succeed). SIGTERM (the pod deleted) is passed on to the ranks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

from ..embed import unpack
from .frameworks import Placement, rank_env
from .sysmetrics import ENV_INTERVAL, as_metrics, node_id, start_monitor

#: How each rank's output lines are marked in the pod's log.
PREFIX = "[rank {rank}] "


def node_shape(framework: str, env: dict[str, str], procs: int) -> dict[str, Any]:
    """(nodes, processes per node, this node's rank, master host, master port) from what
    the controller injected."""
    if framework == "tensorflow":
        tf = json.loads(env.get("TF_CONFIG") or "{}")
        workers = (tf.get("cluster") or {}).get("worker") or ["localhost:2222"]
        index = int((tf.get("task") or {}).get("index") or 0)
        host, _, port = workers[0].rpartition(":")
        return {"nodes": len(workers), "procs": 1, "node": index, "host": host, "port": int(port)}
    nproc = env.get("PET_NPROC_PER_NODE", "")
    per_node = int(nproc) if nproc.isdigit() else procs
    # the v1 operator's RANK is the replica's (node's) rank
    node = int(env["PET_NODE_RANK"]) if "PET_NODE_RANK" in env else int(env.get("RANK") or 0)
    if env.get("PET_NNODES", "").isdigit():
        nodes = int(env["PET_NNODES"])
    else:
        nodes = max(1, int(env.get("WORLD_SIZE") or per_node) // max(1, per_node))
    host = env.get("PET_MASTER_ADDR") or env.get("MASTER_ADDR") or "localhost"
    port = int(env.get("PET_MASTER_PORT") or env.get("MASTER_PORT") or 29500)
    return {"nodes": nodes, "procs": per_node, "node": node, "host": host, "port": port}


def rank_environ(
    framework: str, shape: dict[str, Any], local_rank: int, base: dict[str, str]
) -> dict[str, str]:
    """The environment of one rank of this node."""
    p = Placement(
        shape["node"] * shape["procs"] + local_rank,
        shape["node"],
        local_rank,
        shape["nodes"],
        shape["procs"],
    )
    env = dict(base)
    env.update(rank_env(framework, p, shape["host"], shape["port"], []))
    if framework == "tensorflow":
        env["TF_CONFIG"] = base.get("TF_CONFIG", "")  # the operator's, as it wrote it
        tf = json.loads(base.get("TF_CONFIG") or "{}")
        env["JUPYTER_MLOPS_PEERS"] = ",".join((tf.get("cluster") or {}).get("worker") or [])
    env["PYTHONUNBUFFERED"] = "1"
    for name in ("JUPYTER_MLOPS_RUN_ID", "MLFLOW_RUN_ID"):
        env.pop(name, None)
    if p.rank == 0 and env.get("JUPYTER_MLOPS_JOB_RUN_ID"):
        env["MLFLOW_RUN_ID"] = env["JUPYTER_MLOPS_JOB_RUN_ID"]
    return env


def _copy(rank: int, src: IO[bytes], lock: threading.Lock) -> None:
    prefix = PREFIX.format(rank=rank).encode()
    out = sys.stdout.buffer
    for line in iter(src.readline, b""):
        with lock:
            out.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
            out.flush()


def _node_monitor(shape: dict[str, Any], env: dict[str, str]) -> Any | None:
    """This node's system metrics into the job's run (``system/node_<i>/...`` when the job
    has several nodes), when the target asked for them."""
    run_id = env.get("JUPYTER_MLOPS_JOB_RUN_ID")
    try:
        interval = float(env.get(ENV_INTERVAL) or 0)
    except ValueError:
        interval = 0.0
    if not run_id or interval <= 0:
        return None
    try:
        from ..client.mlops_client import MlopsClient

        client = MlopsClient()
    except Exception as e:  # noqa: BLE001 - no store reachable: train without them
        print(f"[jupyter-mlops] no system metrics: {e}", flush=True)
        return None

    def publish(metrics: dict[str, float], step: int) -> None:
        client.log_batch(run_id, metrics=as_metrics(metrics, step))

    monitor = start_monitor(publish, interval, node_id(shape["node"], shape["nodes"]))
    if monitor is not None:
        monitor.client = client
    return monitor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jupyter_mlops.jobs.podrun")
    ap.add_argument("--archive", required=True, help="the entry point's files (embed.pack)")
    ap.add_argument("--config", required=True, help="JSON: spec, params")
    args = ap.parse_args(argv)
    config = json.loads(args.config)
    workdir = os.path.abspath("workspace")
    os.makedirs(workdir, exist_ok=True)
    unpack(args.archive, workdir)

    from .local import command
    from .spec import spec_from_dict

    spec = spec_from_dict(config["spec"], base_dir=workdir)
    if spec.entry_kind == "code":
        with open(os.path.join(workdir, "code.py"), "w", encoding="utf-8") as f:
            f.write(spec.entry)
    base = dict(os.environ)
    shape = node_shape(spec.framework, base, spec.procs_per_node)
    cmd = command(spec, config.get("params") or {}, workdir, sys.executable)
    lock = threading.Lock()
    procs: list[tuple[int, subprocess.Popen[bytes]]] = []
    copiers: list[threading.Thread] = []
    for local in range(shape["procs"]):
        env = rank_environ(spec.framework, shape, local, base)
        rank = int(env["JUPYTER_MLOPS_RANK"])
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert proc.stdout is not None
        t = threading.Thread(target=_copy, args=(rank, proc.stdout, lock), daemon=True)
        t.start()
        procs.append((rank, proc))
        copiers.append(t)

    def stop(signum: int, _frame: Any) -> None:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    monitor = _node_monitor(shape, base)
    code = 0
    while True:
        running = [p for _, p in procs if p.poll() is None]
        failed = [(r, p.returncode) for r, p in procs if p.returncode not in (None, 0)]
        if failed and not code:
            rank, code = failed[0]
            print(f"[jupyter-mlops] rank {rank} exited with status {code}", flush=True)
            stop(signal.SIGTERM, None)
        if not running:
            break
        time.sleep(0.1)
    for t in copiers:
        t.join(5)
    if monitor is not None:
        monitor.stop()
        with contextlib.suppress(Exception):
            monitor.client.flush()
    if code < 0:  # killed by a signal: the shell's convention
        code = 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main())
