"""Pipelines: ``*.pipeline.yaml`` files and a Python DSL, validated, run locally
(DAG of notebooks and scripts with warm kernels), tracked, scheduled.

Imports are lazy so ``import jupyter_mlops.pipelines`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Pipeline": ".model",
    "Step": ".model",
    "ParamSpec": ".model",
    "load_pipeline": ".spec",
    "parse_pipeline": ".spec",
    "validate_pipeline": ".spec",
    "PipelineInvalid": ".spec",
    "Issue": ".spec",
    "pipeline": ".dsl",
    "notebook": ".dsl",
    "script": ".dsl",
    "param": ".dsl",
}
__all__ = [
    "Issue",
    "ParamSpec",
    "Pipeline",
    "PipelineInvalid",
    "Step",
    "load_pipeline",
    "notebook",
    "param",
    "parse_pipeline",
    "pipeline",
    "script",
    "validate_pipeline",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
