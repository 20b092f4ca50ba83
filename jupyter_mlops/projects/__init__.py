"""MLflow Projects: ``mlops.projects.run("git+…#sub", entry_point="train", parameters={...})``.

Code packaged with an ``MLproject`` file (entry points with typed parameters, a
``python_env``/``conda_env``/``docker_env``) runs as a tracked run recorded the way
``mlflow run`` records it; ``jupyter mlops run`` is the same from a terminal. See
``docs/projects.md``.

Importing this package is cheap: the reader, environments and runner load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "run": ".client",
    "inspect": ".client",
    "SubmittedRun": ".runner",
    "Project": ".spec",
    "EntryPoint": ".spec",
    "Parameter": ".spec",
    "ProjectError": ".spec",
    "load_project": ".spec",
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
