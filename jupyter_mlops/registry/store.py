"""Compatibility names of the model registry store (importable from here as before).

The registry has the same store triad as tracking: the interface
:class:`~jupyter_mlops.registry.abstract_store.AbstractRegistryStore` (with the
registry's constants and name/alias/stage checks), the SQL store
:class:`~jupyter_mlops.registry.sqlstore.SqlRegistryStore` (``RegistryStore`` here),
whose MLflow 3 logged models are :mod:`jupyter_mlops.registry.logged_models`', and the
REST store :class:`~jupyter_mlops.registry.rest_store.RestRegistryStore`. The server's
registry store is the app's (``MLOpsApp.registry_store``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..tracking.clock import now_ms
from .abstract_store import (
    ACTIVE_STAGES,
    DELETED_STAGE,
    LINEAGE_TAGS,
    LOGGED_MODEL_STATUSES,
    MAX_ALIAS_LENGTH,
    MAX_NAME_LENGTH,
    MAX_VERSION,
    SEARCH_LOGGED_MODELS_MAX,
    SEARCH_MODEL_VERSIONS_MAX,
    SEARCH_REGISTERED_MODELS_MAX,
    STAGES,
    TAG_NOTEBOOK_PATH,
    TAG_SOURCE_BRANCH,
    TAG_SOURCE_COMMIT,
    TAG_SOURCE_NAME,
    TAG_SOURCE_REPO,
    AbstractRegistryStore,
    canonical_stage,
    validate_alias,
    validate_name,
)
from .sqlstore import SqlRegistryStore

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore

#: The SQL registry store under its former name.
RegistryStore = SqlRegistryStore

__all__ = [
    "ACTIVE_STAGES",
    "DELETED_STAGE",
    "LINEAGE_TAGS",
    "LOGGED_MODEL_STATUSES",
    "MAX_ALIAS_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_VERSION",
    "SEARCH_LOGGED_MODELS_MAX",
    "SEARCH_MODEL_VERSIONS_MAX",
    "SEARCH_REGISTERED_MODELS_MAX",
    "STAGES",
    "TAG_NOTEBOOK_PATH",
    "TAG_SOURCE_BRANCH",
    "TAG_SOURCE_COMMIT",
    "TAG_SOURCE_NAME",
    "TAG_SOURCE_REPO",
    "AbstractRegistryStore",
    "RegistryStore",
    "SqlRegistryStore",
    "canonical_stage",
    "now_ms",
    "registry_for",
    "validate_alias",
    "validate_name",
]


def registry_for(tracking: TrackingStore) -> SqlRegistryStore:
    """A SQL registry store over ``tracking``'s database. The server's is the app's
    (``MLOpsApp.registry_store``); clients get theirs from
    :func:`jupyter_mlops.registry.client.registry_backend`."""
    return SqlRegistryStore(tracking)
