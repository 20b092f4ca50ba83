"""The tracking domain: entities, the store, the search grammar, artifacts.

Nothing here knows about the Jupyter server, kernels or the hub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import TrackingError

if TYPE_CHECKING:
    from .store import TrackingStore

__all__ = ["TrackingError", "open_store"]


def open_store(uri: str, artifact_root: str | None = None) -> TrackingStore:
    """Open (creating and migrating as needed) the store at a database URI.

    ``uri`` is ``sqlite:///<path>`` or ``postgresql://...``. ``artifact_root``
    (a directory or an fsspec URL) is recorded in a new store; an existing store
    keeps the root it was created with unless one is given here.
    """
    from .sqlstore import SqlTrackingStore

    return SqlTrackingStore(uri, artifact_root=artifact_root)
