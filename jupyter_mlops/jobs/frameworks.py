"""The environment each rank of a job gets, by framework.

The same script runs unchanged here and on Kubernetes, so every rank sees what
``torchrun`` (under Kubeflow Trainer's ``PET_*`` variables) or the TFJob operator
would give it:

* ``pytorch``: ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``,
  ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK`` and ``NODE_RANK`` (the node's
  index), ``ROLE_RANK``/``ROLE_WORLD_SIZE`` as torchrun sets them, and Trainer v2's
  ``PET_NNODES``, ``PET_NPROC_PER_NODE``, ``PET_NODE_RANK``, ``PET_MASTER_ADDR``,
  ``PET_MASTER_PORT``.
* ``tensorflow``: ``TF_CONFIG`` with ``cluster.worker`` (one address per rank) and
  ``task`` (``worker``, index = rank; worker 0 is the chief), as the TFJob operator
  writes it.
* every framework, ``generic`` only these: the ``JUPYTER_MLOPS_*`` variables of
  :data:`GENERIC_VARS` (rank, sizes, the peers' addresses).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

#: The variables every rank gets whatever the framework (documented in docs/training.md).
GENERIC_VARS = {
    "JUPYTER_MLOPS_JOB_ID": "the job's id (also its tracked run's id)",
    "JUPYTER_MLOPS_JOB_NAME": "the job's name",
    "JUPYTER_MLOPS_JOB_RUN_ID": "the job's tracked run (rank 0's mlops.log_metric goes there)",
    "JUPYTER_MLOPS_JOB_EXPERIMENT_ID": "the experiment of the job's run",
    "JUPYTER_MLOPS_JOB_ATTEMPT": "1, then 2, 3, ... after restarts",
    "JUPYTER_MLOPS_RANK": "this process's global rank, 0 .. WORLD_SIZE-1",
    "JUPYTER_MLOPS_WORLD_SIZE": "nodes x procs_per_node",
    "JUPYTER_MLOPS_LOCAL_RANK": "the rank within its node, 0 .. PROCS_PER_NODE-1",
    "JUPYTER_MLOPS_NODE_RANK": "the node's index, 0 .. NNODES-1",
    "JUPYTER_MLOPS_NNODES": "the number of nodes",
    "JUPYTER_MLOPS_PROCS_PER_NODE": "processes per node",
    "JUPYTER_MLOPS_PEERS": "host:port of every rank, comma-separated, in rank order (a free "
    "port reserved for each rank)",
    "JUPYTER_MLOPS_MASTER_ADDR": "the host of rank 0",
    "JUPYTER_MLOPS_MASTER_PORT": "a free port for rank 0's rendezvous",
    "JUPYTER_MLOPS_PARAMS": "the job's parameters as JSON",
    "JUPYTER_MLOPS_JOB_LOG_RANKS": "'all' when every rank logs metrics (log_all_ranks)",
}


@dataclass(frozen=True)
class Placement:
    """Where one rank runs."""

    rank: int
    node: int
    local_rank: int
    nodes: int
    procs_per_node: int

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node


def placements(nodes: int, procs_per_node: int) -> list[Placement]:
    return [
        Placement(n * procs_per_node + lr, n, lr, nodes, procs_per_node)
        for n in range(nodes)
        for lr in range(procs_per_node)
    ]


def rank_env(
    framework: str, p: Placement, host: str, master_port: int, peer_ports: list[int]
) -> dict[str, str]:
    """The framework's variables for rank ``p`` (``peer_ports[r]``: rank r's port)."""
    peers = [f"{host}:{port}" for port in peer_ports]
    env = {
        "JUPYTER_MLOPS_RANK": str(p.rank),
        "JUPYTER_MLOPS_WORLD_SIZE": str(p.world_size),
        "JUPYTER_MLOPS_LOCAL_RANK": str(p.local_rank),
        "JUPYTER_MLOPS_NODE_RANK": str(p.node),
        "JUPYTER_MLOPS_NNODES": str(p.nodes),
        "JUPYTER_MLOPS_PROCS_PER_NODE": str(p.procs_per_node),
        "JUPYTER_MLOPS_PEERS": ",".join(peers),
        "JUPYTER_MLOPS_MASTER_ADDR": host,
        "JUPYTER_MLOPS_MASTER_PORT": str(master_port),
    }
    if framework == "pytorch":
        env.update(
            {
                "MASTER_ADDR": host,
                "MASTER_PORT": str(master_port),
                "WORLD_SIZE": str(p.world_size),
                "RANK": str(p.rank),
                "LOCAL_RANK": str(p.local_rank),
                "LOCAL_WORLD_SIZE": str(p.procs_per_node),
                "GROUP_RANK": str(p.node),
                "NODE_RANK": str(p.node),
                "ROLE_RANK": str(p.rank),
                "ROLE_WORLD_SIZE": str(p.world_size),
                "PET_NNODES": str(p.nodes),
                "PET_NPROC_PER_NODE": str(p.procs_per_node),
                "PET_NODE_RANK": str(p.node),
                "PET_MASTER_ADDR": host,
                "PET_MASTER_PORT": str(master_port),
            }
        )
    elif framework == "tensorflow":
        env["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": peers},
                "task": {"type": "worker", "index": p.rank},
                "environment": "cloud",
            }
        )
    return env


def split_gpus(gpus: list[str], nodes: int, per_node: int | None) -> list[list[str]]:
    """This machine's GPUs shared out between nodes: ``per_node`` each (None: all of
    them, evenly). Raises ValueError when there are not enough."""
    if per_node is None:
        per_node = len(gpus) // nodes if gpus else 0
    need = per_node * nodes
    if need > len(gpus):
        raise ValueError(
            f"resources.gpu: {nodes} node(s) x {per_node} GPU(s) = {need}, but "
            f"this machine has {len(gpus)} GPU(s) for jobs"
            + (f" ({', '.join(gpus)})" if gpus else "")
        )
    return [gpus[n * per_node : (n + 1) * per_node] for n in range(nodes)]


def cuda_visible(framework: str, node_gpus: list[str], p: Placement) -> str:
    """``CUDA_VISIBLE_DEVICES`` of a rank: its node's GPUs (PyTorch ranks pick theirs
    with LOCAL_RANK, as in a pod), or for TensorFlow its own share of them (a TF
    worker takes every GPU it sees). Empty: no GPU."""
    if framework != "tensorflow" or not node_gpus:
        return ",".join(node_gpus)
    share = max(1, len(node_gpus) // p.procs_per_node)
    start = (p.local_rank * share) % len(node_gpus)
    return ",".join(node_gpus[start : start + share])
