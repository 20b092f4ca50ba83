"""``%%mlops train [options]``: the cell's code as a distributed training job (registered
in ``magics.py``).

Options: ``--nodes N``, ``--procs-per-node P`` (``--nproc`` too), ``--framework
pytorch|tensorflow|generic``, ``--name NAME``, ``--gpu N`` (per node), ``-p name=value``
(parameters: variables of the cell's code), ``--env NAME=VALUE``, ``--restart-policy``,
``--max-restarts``, ``--timeout SECONDS``, ``--log-all-ranks``, ``--target NAME``,
``--no-wait``. The job goes to the Jupyter server when the kernel runs under one, else it
runs in this kernel's process; the magic prints its progress until it ends (interrupting
the cell cancels it) and returns the :class:`~jupyter_mlops.jobs.client.Job`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, NoReturn

from IPython.core.error import UsageError

USAGE = (
    "train [--nodes N] [--procs-per-node P] [--framework pytorch|tensorflow|generic] "
    "[-p name=value ...] [--env NAME=VALUE ...] [--gpu N] [--name NAME] [--no-wait]"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"%%mlops train: {message}")


def _parser() -> _Parser:
    p = _Parser(prog="%%mlops train", add_help=False)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--procs-per-node", "--nproc", dest="procs", type=int, default=1)
    p.add_argument("--framework", choices=("pytorch", "tensorflow", "generic"), default="pytorch")
    p.add_argument("--name")
    p.add_argument("--experiment")
    p.add_argument("--gpu", type=int)
    p.add_argument("-p", "--param", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--restart-policy", choices=("Never", "OnFailure", "ExitCode"), default="Never")
    p.add_argument("--max-restarts", type=int, default=0)
    p.add_argument("--timeout", type=float)
    p.add_argument("--log-all-ranks", action="store_true")
    p.add_argument("--target", default="local")
    p.add_argument("--no-wait", action="store_true")
    return p


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise UsageError(f"%%mlops train: {what} expects NAME=VALUE, got {item!r}")
        out[k.strip()] = v
    return out


def _value(text: str) -> Any:
    """``-p lr=0.01`` → 0.01: numbers, booleans and JSON are parsed, the rest stays text."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        return text


def train_magic(argv: list[str], cell: str) -> Any:
    from ..tracking.errors import TrackingError
    from .cli import Progress
    from .client import Code, submit

    args = _parser().parse_args(argv)
    if not cell.strip():
        raise UsageError("%%mlops train: the cell is empty (its code is what every rank runs)")
    params = {k: _value(v) for k, v in _pairs(args.param, "-p").items()}
    resources = {"gpu": args.gpu} if args.gpu is not None else None
    try:
        job = submit(
            Code(cell),
            framework=args.framework,
            nodes=args.nodes,
            procs_per_node=args.procs,
            resources=resources,
            params=params,
            env=_pairs(args.env, "--env"),
            name=args.name,
            experiment=args.experiment,
            restart_policy=args.restart_policy,
            max_restarts=args.max_restarts,
            timeout=args.timeout,
            log_all_ranks=args.log_all_ranks,
            target=args.target,
        )
    except TrackingError as e:
        raise UsageError(f"%%mlops train: {e.message}") from None
    d = job.to_dict()
    print(
        f"job {d['name']}: {d['job_id']} submitted: {d['framework']}, {d['nodes']} node(s) "
        f"x {d['procs_per_node']} process(es) (tracked run {d['run_id']})",
        flush=True,
    )
    if args.no_wait:
        return job
    progress = Progress(sys.stdout)
    try:
        while True:
            data = job.refresh()
            progress.update(data)
            if data["status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
                break
            time.sleep(0.3)
    except KeyboardInterrupt:
        job.cancel()
        progress.update(job.to_dict())
    print(progress.summary(job.to_dict()), flush=True)
    if job.to_dict()["status"] != "SUCCEEDED":
        tail = job.logs(rank=_failed_rank(job.to_dict()), tail=2000).rstrip()
        raise UsageError(
            progress.summary(job.to_dict()) + (f"\n--- end of its log ---\n{tail}" if tail else "")
        )
    return job


def _failed_rank(job: dict[str, Any]) -> int:
    return next((r["rank"] for r in job["ranks"] if r["status"] == "FAILED"), 0)
