"""Jupyter entry points, re-exported by ``jupyter_mlops``. Cheap to import: the
server extension is imported only when Jupyter asks for it."""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import MLOpsApp

    return [{"module": "jupyter_mlops", "app": MLOpsApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-mlops"}]
