"""Kubeflow Pipelines as a pipeline target: the compiler to KFP v2 IR (plain JSON, no
``kfp`` SDK), the bootstrap that runs a step in its pod (``python3 -m
jupyter_mlops.pipelines.kubeflow.step``), the REST client and the target.

Imports are lazy: the step bootstrap imports this package in every pod.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CompileError": ".compiler",
    "KubeflowSettings": ".compiler",
    "check_references": ".compiler",
    "compile_pipeline": ".compiler",
    "task_name": ".compiler",
}
__all__ = [
    "CompileError",
    "KubeflowSettings",
    "check_references",
    "compile_pipeline",
    "task_name",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
