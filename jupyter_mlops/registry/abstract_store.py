"""The model registry interface: what every reader and writer of registered models,
versions, aliases and MLflow 3's logged models uses.

Two implementations, as for tracking (:mod:`jupyter_mlops.tracking.store`):
:class:`~jupyter_mlops.registry.sqlstore.SqlRegistryStore` over the tracking database
(what the server's REST handlers and ``sqlite://``/``postgresql://`` clients use) and
:class:`~jupyter_mlops.registry.rest_store.RestRegistryStore` over MLflow's REST API
(``http(s)://`` clients: a Jupyter server with jupyter-mlops, or an MLflow server).

Every method answers MLflow's JSON shapes (plain dicts: ``registered_model``,
``model_version``, ``{"info", "data"}`` of a logged model), so the REST handlers and
the Python client hand out the same objects; searches answer ``(items, next page
token)``. Errors are :class:`~jupyter_mlops.tracking.errors.TrackingError` with MLflow's
codes and messages (``RESOURCE_ALREADY_EXISTS`` on a duplicate name,
``RESOURCE_DOES_NOT_EXIST`` on a missing model, version or alias, ...). Versions are
accepted as strings or ints and answered as strings.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from typing import Any

from ..tracking.errors import invalid

STAGES = ("None", "Staging", "Production", "Archived")
ACTIVE_STAGES = ("Staging", "Production")
DELETED_STAGE = "Deleted_Internal"
LOGGED_MODEL_STATUSES = {
    "LOGGED_MODEL_STATUS_UNSPECIFIED": 0,
    "LOGGED_MODEL_PENDING": 1,
    "LOGGED_MODEL_READY": 2,
    "LOGGED_MODEL_UPLOAD_FAILED": 3,
}
MAX_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
#: Versions are 32-bit in the database (as in MLflow's schema).
MAX_VERSION = 2**31 - 1
SEARCH_REGISTERED_MODELS_MAX = 1000
SEARCH_MODEL_VERSIONS_MAX = 200_000
SEARCH_LOGGED_MODELS_MAX = 1000
#: Tags on a model version that link it to its origin (set at registration).
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_COMMIT = "mlflow.source.git.commit"
TAG_SOURCE_BRANCH = "mlflow.source.git.branch"
TAG_SOURCE_REPO = "mlflow.source.git.repoURL"
#: Set by the jupyter-mlops client: the notebook's path under the Jupyter root.
TAG_NOTEBOOK_PATH = "mlops.source.notebook_path"
#: Run tags copied onto a version when it is registered from a run.
LINEAGE_TAGS = (TAG_SOURCE_NAME, TAG_SOURCE_COMMIT, TAG_NOTEBOOK_PATH)


def canonical_stage(stage: str | None) -> str:
    for s in STAGES:
        if stage is not None and s.lower() == stage.strip().lower():
            return s
    raise invalid(
        f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}."
    )


def validate_name(name: str | None, what: str = "Registered model name") -> str:
    if not name or not str(name).strip():
        raise invalid(f"{what} cannot be empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise invalid(f"{what} '{name[:40]}...' is longer than {MAX_NAME_LENGTH} characters.")
    return name


def validate_alias(alias: str | None) -> str:
    if not alias:
        raise invalid("Registered model alias name cannot be empty.")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise invalid(f"Registered model alias name exceeds {MAX_ALIAS_LENGTH} characters.")
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise invalid(
            f"'{alias}' alias name (case insensitive) is reserved: aliases cannot be 'latest' "
            "or look like a version ('v<number>')."
        )
    if not re.fullmatch(r"[\w\-]+", alias):
        raise invalid(
            f"Invalid alias name: '{alias}'. Aliases may only contain alphanumerics, "
            "underscores and dashes."
        )
    return alias


def version_int(version: Any) -> int:
    """A version number; a value that is no integer gets MLflow's message (clients match it)."""
    try:
        v = int(str(version))
    except (TypeError, ValueError):
        raise invalid(f"Parameter 'version' must be an integer, got '{version}'.") from None
    if v < 1 or v > MAX_VERSION:
        raise invalid(
            f"Model version must be a positive integer (at most {MAX_VERSION}), got '{version}'."
        )
    return v


class AbstractRegistryStore(abc.ABC):
    """Registered models, their versions, tags and aliases; logged models."""

    # -- registered models ---------------------------------------------------
    @abc.abstractmethod
    def create_registered_model(
        self,
        name: str,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def rename_registered_model(self, name: str, new_name: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def update_registered_model(self, name: str, description: str | None) -> dict[str, Any]: ...

    @abc.abstractmethod
    def delete_registered_model(self, name: str) -> None:
        """The model with its versions, tags and aliases."""

    @abc.abstractmethod
    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

    @abc.abstractmethod
    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """The newest version in each stage (of ``stages``, or every stage)."""

    # -- aliases -------------------------------------------------------------
    @abc.abstractmethod
    def set_registered_model_alias(self, name: str, alias: str, version: Any) -> None: ...

    @abc.abstractmethod
    def delete_registered_model_alias(self, name: str, alias: str) -> None: ...

    @abc.abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]: ...

    # -- model versions ------------------------------------------------------
    @abc.abstractmethod
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        user_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        """The next version of ``name``; ``source`` a URI (``runs:/``, ``models:/m-..``,
        a location). Registered from a run, it carries the run's lineage tags."""

    @abc.abstractmethod
    def get_model_version(self, name: str, version: Any) -> dict[str, Any]: ...

    @abc.abstractmethod
    def update_model_version(
        self, name: str, version: Any, description: str | None
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    def transition_model_version_stage(
        self, name: str, version: Any, stage: str, archive_existing_versions: bool = False
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    def delete_model_version(self, name: str, version: Any) -> None: ...

    @abc.abstractmethod
    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSIONS_MAX,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    @abc.abstractmethod
    def set_model_version_tag(self, name: str, version: Any, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_model_version_tag(self, name: str, version: Any, key: str) -> None: ...

    @abc.abstractmethod
    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        """Where the version's files are (a logged model's or run's location resolved)."""

    @abc.abstractmethod
    def lineage(self, name: str, version: Any) -> dict[str, Any]:
        """``{"model_version", "run", "source"}``: the version with the run that produced
        it and that run's source notebook or script and commit (the Models panel)."""

    # -- logged models (MLflow 3) --------------------------------------------
    @abc.abstractmethod
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A new logged model, ``LOGGED_MODEL_PENDING`` until finalized."""

    @abc.abstractmethod
    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> dict[str, Any]: ...

    @abc.abstractmethod
    def finalize_logged_model(self, model_id: str, status: Any) -> dict[str, Any]: ...

    @abc.abstractmethod
    def delete_logged_model(self, model_id: str) -> None: ...

    @abc.abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None: ...

    @abc.abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...

    @abc.abstractmethod
    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None: ...

    @abc.abstractmethod
    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[dict[str, Any]] = (),
        page_token: str | None = None,
        datasets: Sequence[tuple[str, str | None]] = (),
    ) -> tuple[list[dict[str, Any]], str | None]:
        """``datasets``: (name, digest or None); only models with a metric measured on
        one of them."""

    @abc.abstractmethod
    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        """Link logged models to the run as its outputs, each at a step."""

    @abc.abstractmethod
    def run_outputs(self, run_id: str) -> list[dict[str, Any]]:
        """The run's model outputs: ``[{"model_id", "step"}]``."""
