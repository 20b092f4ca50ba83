"""Tracking URI resolution and the store behind a URI.

Precedence: :func:`set_tracking_uri` > ``JUPYTER_MLOPS_TRACKING_URI`` >
``MLFLOW_TRACKING_URI`` > the default local store
``sqlite:///<jupyter data dir>/mlops/mlops.db`` (the one the server uses too).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore

_explicit_uri: str | None = None

TOKEN_ENV_VARS = ("JUPYTER_MLOPS_TRACKING_TOKEN", "MLFLOW_TRACKING_TOKEN")


def mlops_data_dir() -> str:
    """``<jupyter data dir>/mlops``; honours ``JUPYTER_DATA_DIR``."""
    from jupyter_core.paths import jupyter_data_dir

    return os.path.join(jupyter_data_dir(), "mlops")


def default_tracking_uri() -> str:
    return "sqlite:///" + os.path.join(mlops_data_dir(), "mlops.db")


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Set the URI for this process (``None`` goes back to the environment)."""
    global _explicit_uri
    _explicit_uri = normalize_uri(os.fspath(uri)) if uri is not None else None


def get_tracking_uri() -> str:
    if _explicit_uri:
        return _explicit_uri
    for var in ("JUPYTER_MLOPS_TRACKING_URI", "MLFLOW_TRACKING_URI"):
        value = os.environ.get(var, "").strip()
        if value:
            return normalize_uri(value)
    return default_tracking_uri()


def normalize_uri(uri: str) -> str:
    """A bare path to a ``.db`` file becomes a SQLite URI; URIs with a scheme
    are kept as they are."""
    uri = uri.strip()
    if "://" not in uri and uri.endswith((".db", ".sqlite", ".sqlite3")):
        return "sqlite:///" + os.path.abspath(uri)
    return uri


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def tracking_token() -> str | None:
    for var in TOKEN_ENV_VARS:
        value = os.environ.get(var)
        if value:
            return value
    return None


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""


def check_tracking_uri(uri: str) -> None:
    """Raise INVALID_PARAMETER_VALUE for a URI no store serves (cheap: opens nothing)."""
    from ..tracking.errors import invalid

    if not is_http(uri) and _scheme(uri) not in ("sqlite", "postgresql", "postgres"):
        raise invalid(
            f"Unsupported tracking URI {uri!r}: use sqlite:///<path>, postgresql://... or "
            "http(s)://..."
        )


def open_tracking_store(uri: str) -> TrackingStore:
    """The store for a tracking URI: SQL for ``sqlite``/``postgresql``, the
    REST store for ``http(s)``. Anything else is INVALID_PARAMETER_VALUE."""
    check_tracking_uri(uri)
    if is_http(uri):
        from .rest_store import RestTrackingStore

        return RestTrackingStore(uri, token=tracking_token(), token_source=tracking_token)
    if _scheme(uri) == "sqlite":
        path = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    from ..tracking import open_store

    return open_store(uri)
