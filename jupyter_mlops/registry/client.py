"""``RegistryClient``: the registry calls of ``mlflow.MlflowClient``, same names.

Talks to the store the tracking URI names: in-process over the database for
``sqlite://`` / ``postgresql://`` URIs, over MLflow's REST API for ``http(s)://``
(a Jupyter server with jupyter-mlops, or an MLflow server). Answers are
:class:`RegisteredModel` / :class:`ModelVersion` objects with MLflow's
attributes (``version`` is a string, ``aliases`` of a model a dict).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..tracking.errors import TrackingError


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
    _fields = ("name", "creation_timestamp", "last_updated_timestamp", "description", "user_id")

    def __init__(self, d: dict[str, Any]) -> None:
        super().__init__(d)
        self.aliases: dict[str, str] = {a["alias"]: a["version"] for a in d.get("aliases") or []}
        self.latest_versions = [ModelVersion(v) for v in d.get("latest_versions") or []]


class PagedList(list):  # type: ignore[type-arg]
    def __init__(self, items: Any, token: str | None) -> None:
        super().__init__(items)
        self.token = token


class _RestRegistry:
    """The registry over MLflow's REST API (same method names as RegistryStore)."""

    def __init__(self, rest: Any) -> None:
        self.rest = rest

    def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        body = {k: v for k, v in (body or {}).items() if v is not None}
        if method == "GET":
            return self.rest._mlflow("GET", endpoint, params=body)
        return self.rest._mlflow(method, endpoint, body)

    @staticmethod
    def _kv(d: dict[str, str] | None) -> list[dict[str, str]] | None:
        return [{"key": k, "value": str(v)} for k, v in d.items()] if d else None

    def create_registered_model(
        self, name: str, tags: Any = None, description: Any = None
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "registered-models/create",
            {"name": name, "tags": self._kv(tags), "description": description},
        )["registered_model"]

    def get_registered_model(self, name: str) -> dict[str, Any]:
        return self._call("GET", "registered-models/get", {"name": name})["registered_model"]

    def rename_registered_model(self, name: str, new_name: str) -> dict[str, Any]:
        return self._call("POST", "registered-models/rename", {"name": name, "new_name": new_name})[
            "registered_model"
        ]

    def update_registered_model(self, name: str, description: str | None) -> dict[str, Any]:
        return self._call(
            "PATCH", "registered-models/update", {"name": name, "description": description}
        )["registered_model"]

    def delete_registered_model(self, name: str) -> None:
        self._call("DELETE", "registered-models/delete", {"name": name})

    def search_registered_models(
        self,
        filter_string: Any = None,
        max_results: int = 100,
        order_by: Sequence[str] = (),
        page_token: Any = None,
    ) -> Any:
        r = self._call(
            "GET",
            "registered-models/search",
            {
                "filter": filter_string,
                "max_results": max_results,
                "order_by": list(order_by) or None,
                "page_token": page_token,
            },
        )
        return r.get("registered_models", []), r.get("next_page_token")

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._call("POST", "registered-models/set-tag", {"name": name, "key": key, "value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._call("DELETE", "registered-models/delete-tag", {"name": name, "key": key})

    def get_latest_versions(self, name: str, stages: Any = None) -> list[dict[str, Any]]:
        return self._call(
            "POST",
            "registered-models/get-latest-versions",
            {"name": name, "stages": list(stages or []) or None},
        ).get("model_versions", [])

    def set_registered_model_alias(self, name: str, alias: str, version: Any) -> None:
        self._call(
            "POST",
            "registered-models/alias",
            {"name": name, "alias": alias, "version": str(version)},
        )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", "registered-models/alias", {"name": name, "alias": alias})

    def get_model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        return self._call("GET", "registered-models/alias", {"name": name, "alias": alias})[
            "model_version"
        ]

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: Any = None,
        tags: Any = None,
        run_link: Any = None,
        description: Any = None,
        model_id: Any = None,
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "model-versions/create",
            {
                "name": name,
                "source": source,
                "run_id": run_id,
                "tags": self._kv(tags),
                "run_link": run_link,
                "description": description,
                "model_id": model_id,
            },
        )["model_version"]

    def get_model_version(self, name: str, version: Any) -> dict[str, Any]:
        return self._call("GET", "model-versions/get", {"name": name, "version": str(version)})[
            "model_version"
        ]

    def update_model_version(self, name: str, version: Any, description: Any) -> dict[str, Any]:
        return self._call(
            "PATCH",
            "model-versions/update",
            {"name": name, "version": str(version), "description": description},
        )["model_version"]

    def transition_model_version_stage(
        self, name: str, version: Any, stage: str, archive_existing_versions: bool = False
    ) -> Any:
        return self._call(
            "POST",
            "model-versions/transition-stage",
            {
                "name": name,
                "version": str(version),
                "stage": stage,
                "archive_existing_versions": bool(archive_existing_versions),
            },
        )["model_version"]

    def delete_model_version(self, name: str, version: Any) -> None:
        self._call("DELETE", "model-versions/delete", {"name": name, "version": str(version)})

    def search_model_versions(
        self,
        filter_string: Any = None,
        max_results: int = 10000,
        order_by: Sequence[str] = (),
        page_token: Any = None,
    ) -> Any:
        r = self._call(
            "GET",
            "model-versions/search",
            {
                "filter": filter_string,
                "max_results": max_results,
                "order_by": list(order_by) or None,
                "page_token": page_token,
            },
        )
        return r.get("model_versions", []), r.get("next_page_token")

    def set_model_version_tag(self, name: str, version: Any, key: str, value: str) -> None:
        self._call(
            "POST",
            "model-versions/set-tag",
            {"name": name, "version": str(version), "key": key, "value": value},
        )

    def delete_model_version_tag(self, name: str, version: Any, key: str) -> None:
        self._call(
            "DELETE",
            "model-versions/delete-tag",
            {"name": name, "version": str(version), "key": key},
        )

    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        return self._call(
            "GET", "model-versions/get-download-uri", {"name": name, "version": str(version)}
        )["artifact_uri"]

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "logged-models",
            {
                "experiment_id": experiment_id,
                "name": name,
                "source_run_id": source_run_id,
                "model_type": model_type,
                "params": self._kv(params),
                "tags": self._kv(tags),
            },
        )["model"]

    def finalize_logged_model(self, model_id: str, status: str) -> dict[str, Any]:
        return self._call(
            "PATCH", f"logged-models/{model_id}", {"model_id": model_id, "status": status}
        )["model"]

    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        self._call(
            "POST",
            "runs/outputs",
            {"run_id": run_id, "models": [{"model_id": m, "step": s} for m, s in models]},
        )

    def get_logged_model(self, model_id: str) -> dict[str, Any]:
        return self._call("GET", f"logged-models/{model_id}")["model"]

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: Any = None,
        max_results: int = 100,
        order_by: Any = (),
        page_token: Any = None,
    ) -> Any:
        r = self._call(
            "POST",
            "logged-models/search",
            {
                "experiment_ids": list(experiment_ids),
                "filter": filter_string,
                "max_results": max_results,
                "page_token": page_token,
            },
        )
        return r.get("models", []), r.get("next_page_token")

    def lineage(self, name: str, version: Any) -> dict[str, Any]:
        try:
            return self.rest.request(
                "GET", "api/v1/registry/lineage", params={"name": name, "version": str(version)}
            )
        except Exception as e:  # noqa: BLE001 - a stock MLflow server has no lineage route
            raise TrackingError(
                f"lineage is not available from {self.rest.base}: {e}", "ENDPOINT_NOT_FOUND"
            ) from None


def registry_backend(tracking_store: Any) -> Any:
    """RegistryStore for a SQL tracking store, the REST registry for a REST one."""
    if getattr(tracking_store, "engine", None) is not None:
        from .store import registry_for

        return registry_for(tracking_store)
    return _RestRegistry(tracking_store)


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
