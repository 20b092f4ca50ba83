"""Distributed training jobs: ``mlops.jobs.submit("train.py", framework="pytorch", nodes=2,
procs_per_node=2)``.

A job runs one program on ``nodes x procs_per_node`` ranks with the framework's environment
(``pytorch``: torchrun's and Kubeflow Trainer's variables; ``tensorflow``: ``TF_CONFIG``;
``generic``: ``JUPYTER_MLOPS_*``), locally as processes of this machine. Every job is a
tracked run. See ``docs/training.md``.

Importing this package is cheap: the service, the backend and the spec load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "submit": ".client",
    "get_job": ".client",
    "list_jobs": ".client",
    "Job": ".client",
    "Code": ".client",
    "JobFailed": ".client",
    "params": ".client",
    "rank": ".client",
    "world_size": ".client",
    "log_all_ranks": ".client",
    "JobSpec": ".spec",
    "load_job": ".spec",
    "JobInvalid": ".spec",
}

__all__ = sorted(_LAZY)  # noqa: PLE0605 - sorted() returns a list of str


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
