"""``RegistryClient``: the registry calls of ``mlflow.MlflowClient``, same names.

Talks to the store the tracking URI names: in-process over the database for
``sqlite://`` / ``postgresql://`` URIs, over MLflow's REST API for ``http(s)://``
(a Jupyter server with jupyter-mlops, or an MLflow server). Answers are
:class:`RegisteredModel` / :class:`ModelVersion` objects with MLflow's
attributes (``version`` is a string, ``aliases`` of a model a dict).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .abstract_store import AbstractRegistryStore


class _Entity:
    _fields: tuple[str, ...] = ()

    def __init__(self, d: dict[str, Any]) -> None:
        self._dict = d
        for f in self._fields:
            setattr(self, f, d.get(f))
        self.tags = {t["key"]: t.get("value", "") for t in d.get("tags") or []}

    def to_dict(self) -> dict[str, Any]:
        return dict(self._dict)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields[:3])
        return f"<{type(self).__name__}: {shown}>"


class ModelVersion(_Entity):
    # set from the REST answer by _Entity (None where the server left a field out)
    name: str
    version: str
    creation_timestamp: int | None
    last_updated_timestamp: int | None
    user_id: str | None
    current_stage: str | None
    description: str | None
    source: str | None
    run_id: str | None
    status: str | None
    status_message: str | None
    run_link: str | None
    model_id: str | None
    _fields = (
        "name",
        "version",
        "creation_timestamp",
        "last_updated_timestamp",
        "user_id",
        "current_stage",
        "description",
        "source",
        "run_id",
        "status",
        "status_message",
        "run_link",
        "model_id",
    )

    def __init__(self, d: dict[str, Any]) -> None:
        super().__init__(d)
        self.aliases: list[str] = list(d.get("aliases") or [])


class RegisteredModel(_Entity):
    # set from the REST answer by _Entity (None where the server left a field out)
    name: str
    creation_timestamp: int | None
    last_updated_timestamp: int | None
    description: str | None
    user_id: str | None
    _fields = ("name", "creation_timestamp", "last_updated_timestamp", "description", "user_id")

    def __init__(self, d: dict[str, Any]) -> None:
        super().__init__(d)
        self.aliases: dict[str, str] = {a["alias"]: a["version"] for a in d.get("aliases") or []}
        self.latest_versions = [ModelVersion(v) for v in d.get("latest_versions") or []]


class LoggedModel:
    """An MLflow 3 logged model with ``mlflow.entities.LoggedModel``'s attributes
    (``tags`` and ``params`` dicts, ``metrics`` a list of :class:`Metric`-like dicts)."""

    def __init__(self, d: dict[str, Any]) -> None:
        self._dict = d
        info = d.get("info", d)
        data = d.get("data") or {}
        self.model_id: str = info.get("model_id", "")
        self.experiment_id: str = str(info.get("experiment_id", ""))
        self.name: str = info.get("name", "")
        self.artifact_location: str = info.get("artifact_uri", "")
        self.creation_timestamp: int | None = info.get("creation_timestamp_ms")
        self.last_updated_timestamp: int | None = info.get("last_updated_timestamp_ms")
        self.status: str = info.get("status", "")
        self.status_message: str | None = info.get("status_message")
        self.model_type: str | None = info.get("model_type")
        self.source_run_id: str | None = info.get("source_run_id")
        self.tags: dict[str, str] = {t["key"]: t.get("value", "") for t in info.get("tags") or []}
        self.params: dict[str, str] = {
            p["key"]: p.get("value", "") for p in data.get("params") or []
        }
        self.metrics: list[dict[str, Any]] | None = data.get("metrics")

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self._dict)

    def __repr__(self) -> str:
        return f"<LoggedModel: model_id={self.model_id!r}, name={self.name!r}>"


class PagedList(list):  # type: ignore[type-arg]
    def __init__(self, items: Any, token: str | None) -> None:
        super().__init__(items)
        self.token = token


def registry_backend(tracking_store: Any) -> AbstractRegistryStore:
    """The registry store beside a tracking store: SQL for a SQL tracking store (same
    database), REST for a REST one (same server and token)."""
    if getattr(tracking_store, "engine", None) is not None:
        from .sqlstore import SqlRegistryStore

        return SqlRegistryStore(tracking_store)
    from .rest_store import RestRegistryStore

    return RestRegistryStore(tracking_store)


class RegistryClient:
    """The model registry calls of ``mlflow.MlflowClient`` (same names and arguments)."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        from ..client.mlops_client import MlopsClient

        self.tracking = MlopsClient(tracking_uri)
        self._backend: Any = None

    @property
    def backend(self) -> Any:
        if self._backend is None:
            self._backend = registry_backend(self.tracking.store)
        return self._backend

    # registered models
    def create_registered_model(
        self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        tags = {k: str(v) for k, v in (tags or {}).items()}
        return RegisteredModel(
            self.backend.create_registered_model(name, tags or None, description)
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return RegisteredModel(self.backend.get_registered_model(name))

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return RegisteredModel(self.backend.rename_registered_model(name, new_name))

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        return RegisteredModel(self.backend.update_registered_model(name, description))

    def delete_registered_model(self, name: str) -> None:
        self.backend.delete_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        items, token = self.backend.search_registered_models(
            filter_string, max_results, order_by or [], page_token
        )
        return PagedList([RegisteredModel(d) for d in items], token)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.backend.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.backend.delete_registered_model_tag(name, key)

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        return [ModelVersion(d) for d in self.backend.get_latest_versions(name, stages)]

    # aliases
    def set_registered_model_alias(self, name: str, alias: str, version: Any) -> None:
        self.backend.set_registered_model_alias(name, alias, str(version))

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.backend.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return ModelVersion(self.backend.get_model_version_by_alias(name, alias))

    # versions
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        tags = {k: str(v) for k, v in (tags or {}).items()}
        return ModelVersion(
            self.backend.create_model_version(
                name, source, run_id, tags or None, run_link, description, model_id=model_id
            )
        )

    def get_model_version(self, name: str, version: Any) -> ModelVersion:
        return ModelVersion(self.backend.get_model_version(name, str(version)))

    def update_model_version(
        self, name: str, version: Any, description: str | None = None
    ) -> ModelVersion:
        return ModelVersion(self.backend.update_model_version(name, str(version), description))

    def transition_model_version_stage(
        self, name: str, version: Any, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        return ModelVersion(
            self.backend.transition_model_version_stage(
                name, str(version), stage, archive_existing_versions
            )
        )

    def delete_model_version(self, name: str, version: Any) -> None:
        self.backend.delete_model_version(name, str(version))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        items, token = self.backend.search_model_versions(
            filter_string, max_results, order_by or [], page_token
        )
        return PagedList([ModelVersion(d) for d in items], token)

    def set_model_version_tag(self, name: str, version: Any, key: str, value: Any) -> None:
        self.backend.set_model_version_tag(name, str(version), key, str(value))

    def delete_model_version_tag(self, name: str, version: Any, key: str) -> None:
        self.backend.delete_model_version_tag(name, str(version), key)

    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        return self.backend.get_model_version_download_uri(name, str(version))

    def get_model_version_lineage(self, name: str, version: Any) -> dict[str, Any]:
        """The version, its run and the run's source notebook/script and commit."""
        return self.backend.lineage(name, str(version))

    # logged models (MLflow 3)
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        return LoggedModel(
            self.backend.create_logged_model(
                str(experiment_id),
                name,
                source_run_id,
                model_type,
                {k: str(v) for k, v in (params or {}).items()} or None,
                {k: str(v) for k, v in (tags or {}).items()} or None,
            )
        )

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return LoggedModel(self.backend.get_logged_model(model_id))

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel:
        name = getattr(status, "name", None) or getattr(status, "value", None) or str(status)
        if name in ("READY", "FAILED"):
            name = "LOGGED_MODEL_READY" if name == "READY" else "LOGGED_MODEL_UPLOAD_FAILED"
        return LoggedModel(self.backend.finalize_logged_model(model_id, name))

    def set_logged_model_tags(self, model_id: str, tags: dict[str, Any]) -> None:
        self.backend.set_logged_model_tags(model_id, {k: str(v) for k, v in tags.items()})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.backend.delete_logged_model_tag(model_id, key)

    def log_model_params(self, model_id: str, params: dict[str, Any]) -> None:
        self.backend.log_logged_model_params(model_id, {k: str(v) for k, v in params.items()})

    def log_outputs(self, run_id: str, models: Sequence[Any]) -> None:
        """``models``: ``LoggedModelOutput``s (``model_id``, ``step``) or ``(id, step)``."""
        pairs = [
            (m[0], int(m[1])) if isinstance(m, tuple) else (m.model_id, int(m.step)) for m in models
        ]
        self.backend.log_outputs(run_id, pairs)

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
        datasets: list[dict[str, str]] | None = None,
    ) -> PagedList:
        """``datasets``: ``[{"dataset_name", "dataset_digest"(optional)}]``, as MLflow's:
        only models with a metric measured on one of them."""
        items, token = self.backend.search_logged_models(
            [str(e) for e in experiment_ids],
            filter_string,
            max_results,
            order_by or [],
            page_token,
            [(d["dataset_name"], d.get("dataset_digest") or None) for d in datasets or ()],
        )
        return PagedList([LoggedModel(d) for d in items], token)
