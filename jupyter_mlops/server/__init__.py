"""The Jupyter server extension: ``MLOpsApp`` and its REST handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import MLOpsApp

__all__ = ["MLOpsApp"]


def __getattr__(name: str) -> Any:
    if name == "MLOpsApp":
        from .app import MLOpsApp

        return MLOpsApp
    raise AttributeError(name)
