"""The model registry over MLflow's REST API: what an ``http(s)://`` tracking URI's
client uses (a Jupyter server with jupyter-mlops, or an MLflow server), the same
interface as the SQL store (:class:`~.abstract_store.AbstractRegistryStore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..tracking.errors import TrackingError
from .abstract_store import AbstractRegistryStore

if TYPE_CHECKING:
    from ..client.rest_store import RestTrackingStore


class RestRegistryStore(AbstractRegistryStore):
    """The registry over MLflow's REST API, through a REST tracking store's session
    (``rest``: its token, retries and error mapping)."""

    def __init__(self, rest: RestTrackingStore) -> None:
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
        self, name: str, tags: Any = None, description: Any = None, user_id: Any = None
    ) -> dict[str, Any]:
        # user_id: the server records the caller
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
        user_id: Any = None,
        model_id: Any = None,
    ) -> dict[str, Any]:
        # user_id: the server records the caller
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

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
        # allow_deleted: MLflow's REST API shows active models only
        return self._call("GET", f"logged-models/{model_id}")["model"]

    def delete_logged_model(self, model_id: str) -> None:
        self._call("DELETE", f"logged-models/{model_id}")

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        self._call("PATCH", f"logged-models/{model_id}/tags", {"tags": self._kv(tags)})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._call("DELETE", f"logged-models/{model_id}/tags/{quote(key, safe='')}")

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        self._call("POST", f"logged-models/{model_id}/params", {"params": self._kv(params)})

    def run_outputs(self, run_id: str) -> list[dict[str, Any]]:
        run = self._call("GET", "runs/get", {"run_id": run_id})["run"]
        return list((run.get("outputs") or {}).get("model_outputs") or [])

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: Any = None,
        max_results: int = 100,
        order_by: Any = (),
        page_token: Any = None,
        datasets: Any = (),
    ) -> Any:
        body = {
            "experiment_ids": list(experiment_ids),
            "filter": filter_string,
            "max_results": max_results,
            "page_token": page_token,
        }
        if datasets:
            body["datasets"] = [
                {"dataset_name": n, **({"dataset_digest": d} if d else {})} for n, d in datasets
            ]
        if order_by:
            body["order_by"] = list(order_by)
        r = self._call("POST", "logged-models/search", body)
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
