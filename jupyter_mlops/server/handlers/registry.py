"""MLflow's model registry REST API and MLflow 3's logged-model endpoints.

``api/2.0/mlflow/registered-models/*``, ``model-versions/*``, ``logged-models``
(``/{model_id}``, ``/tags``, ``/params``, ``/search``) and ``runs/outputs``:
the same fields, answers and errors as MLflow's server, so the official client's
``log_model``, ``register_model``, alias, stage and ``load_model`` calls work
unchanged. Also ``api/v1/registry/lineage`` (version → run → source) for the
Models panel. The work is done by the app's registry store
(``MLOpsApp.registry_store``, a :class:`~jupyter_mlops.registry.sqlstore.SqlRegistryStore`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...tracking.errors import invalid
from ..request import Fields
from .base import PathRpcHandler

if TYPE_CHECKING:
    from ...registry.abstract_store import AbstractRegistryStore as RegistryStore

#: An endpoint: the request's fields and the registry in, the response object out.
RegistryRpc = Callable[[Fields, "RegistryStore"], Any]


def _name(f: Fields, field: str = "name") -> str:
    return f.string(field, required=True) or ""


#: MLflow's limits on registry tags (mlflow/utils/validation.py,
#: MAX_MODEL_REGISTRY_TAG_KEY_LENGTH / _VALUE_LENGTH); logged models take run tags' limits.
MAX_TAG_KEY_LENGTH = 250
MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000
MAX_LOGGED_MODEL_TAG_VALUE_LENGTH = 8000


def _tag(
    key: str, value: str, max_value: int = MAX_REGISTRY_TAG_VALUE_LENGTH, where: str = "key"
) -> tuple[str, str]:
    # MLflow's message (exceeds_maximum_length), naming the field
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise invalid(f"'{where}' exceeds the maximum length of {MAX_TAG_KEY_LENGTH} characters")
    if len(value) > max_value:
        raise invalid(
            f"'value' of tag '{key[:40]}' exceeds the maximum length of {max_value} characters"
        )
    return key, value


def _tags(f: Fields, max_value: int = MAX_REGISTRY_TAG_VALUE_LENGTH) -> dict[str, str] | None:
    """``tags`` ``[{key, value}]`` within MLflow's registry limits (None for none)."""
    out = dict(
        _tag(k, v, max_value, f"tags[{i}].key") for i, (k, v) in enumerate(f.key_values("tags"))
    )
    return out or None


def _tag_fields(f: Fields) -> tuple[str, str]:
    """``key`` and ``value`` of a set-tag call, within MLflow's registry limits."""
    return _tag(f.string("key", required=True) or "", f.text("value"))


def _version(f: Fields) -> str:
    v = f.ident("version", required=True)
    return v or ""


# -- registered models --------------------------------------------------------------
def create_registered_model(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    rm = reg.create_registered_model(_name(f), _tags(f), f.string("description"))
    return {"registered_model": rm}


def get_registered_model(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    return {"registered_model": reg.get_registered_model(_name(f))}


def rename_registered_model(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    return {"registered_model": reg.rename_registered_model(_name(f), _name(f, "new_name"))}


def update_registered_model(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    return {"registered_model": reg.update_registered_model(_name(f), f.string("description"))}


def delete_registered_model(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.delete_registered_model(_name(f))
    return {}


def search_registered_models(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    models, token = reg.search_registered_models(
        f.string("filter"),
        f.integer("max_results", default=100) or 100,
        f.strings("order_by"),
        f.string("page_token"),
    )
    out: dict[str, Any] = {}
    if models:
        out["registered_models"] = models
    if token:
        out["next_page_token"] = token
    return out


def get_latest_versions(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    versions = reg.get_latest_versions(_name(f), f.strings("stages"))
    return {"model_versions": versions} if versions else {}


def set_registered_model_tag(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.set_registered_model_tag(_name(f), *_tag_fields(f))
    return {}


def delete_registered_model_tag(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.delete_registered_model_tag(_name(f), f.string("key", required=True) or "")
    return {}


def set_alias(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.set_registered_model_alias(_name(f), f.string("alias", required=True) or "", _version(f))
    return {}


def delete_alias(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.delete_registered_model_alias(_name(f), f.string("alias", required=True) or "")
    return {}


def get_by_alias(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    return {
        "model_version": reg.get_model_version_by_alias(
            _name(f), f.string("alias", required=True) or ""
        )
    }


# -- model versions -------------------------------------------------------------------
def create_model_version(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    from ..sources import check_source

    name = _name(f)
    source = f.string("source", required=True) or ""
    run_id, model_id = f.ident("run_id"), f.string("model_id")
    # the registry's tracking store (SqlRegistryStore's): where the run is
    check_source(source, run_id, model_id, getattr(reg, "tracking", None), reg)
    mv = reg.create_model_version(
        name,
        source,
        run_id,
        _tags(f),
        f.string("run_link"),
        f.string("description"),
        model_id=model_id,
    )
    return {"model_version": mv}


def get_model_version(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    return {"model_version": reg.get_model_version(_name(f), _version(f))}


def update_model_version(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    return {
        "model_version": reg.update_model_version(_name(f), _version(f), f.string("description"))
    }


def transition_stage(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    if not f.has("archive_existing_versions"):
        raise invalid(
            "Missing value for required parameter 'archive_existing_versions'. "
            "See the API docs for more information about request parameters."
        )
    mv = reg.transition_model_version_stage(
        _name(f),
        _version(f),
        f.string("stage", required=True) or "",
        f.boolean("archive_existing_versions"),
    )
    return {"model_version": mv}


def delete_model_version(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.delete_model_version(_name(f), _version(f))
    return {}


def search_model_versions(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    from ...registry.abstract_store import SEARCH_MODEL_VERSIONS_MAX

    versions, token = reg.search_model_versions(
        f.string("filter"),
        f.integer("max_results", default=SEARCH_MODEL_VERSIONS_MAX) or SEARCH_MODEL_VERSIONS_MAX,
        f.strings("order_by"),
        f.string("page_token"),
    )
    out: dict[str, Any] = {}
    if versions:
        out["model_versions"] = versions
    if token:
        out["next_page_token"] = token
    return out


def get_download_uri(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    return {"artifact_uri": reg.get_model_version_download_uri(_name(f), _version(f))}


def set_model_version_tag(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.set_model_version_tag(_name(f), _version(f), *_tag_fields(f))
    return {}


def delete_model_version_tag(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.delete_model_version_tag(_name(f), _version(f), f.string("key", required=True) or "")
    return {}


def lineage(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    return reg.lineage(_name(f), _version(f))


# -- logged models (MLflow 3) ---------------------------------------------------------
def create_logged_model(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    model = reg.create_logged_model(
        f.experiment_id() or "",
        f.string("name", max_length=500),
        f.ident("source_run_id"),
        f.string("model_type"),
        dict(f.key_values("params")) or None,
        _tags(f, MAX_LOGGED_MODEL_TAG_VALUE_LENGTH),
    )
    return {"model": model}


def get_logged_model(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    return {"model": reg.get_logged_model(_name(f, "model_id"))}


def finalize_logged_model(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    status = f.data.get("status")
    if status is None:
        raise invalid("Missing value for required parameter 'status'.")
    return {"model": reg.finalize_logged_model(_name(f, "model_id"), status)}


def delete_logged_model(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.delete_logged_model(_name(f, "model_id"))
    return {}


def set_logged_model_tags(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    tags = _tags(f, MAX_LOGGED_MODEL_TAG_VALUE_LENGTH) or {}
    reg.set_logged_model_tags(_name(f, "model_id"), tags)
    return {}


def delete_logged_model_tag(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.delete_logged_model_tag(_name(f, "model_id"), _name(f, "tag_key"))
    return {}


def log_logged_model_params(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    reg.log_logged_model_params(_name(f, "model_id"), dict(f.key_values("params")))
    return {}


def search_logged_models(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    order_by = []
    for o in f.objects("order_by"):
        order_by.append(
            {
                "field_name": o.string("field_name", required=True),
                "ascending": o.boolean("ascending", True),
            }
        )
    datasets = []
    for d in f.objects("datasets"):
        datasets.append(
            (d.string("dataset_name", required=True) or "", d.string("dataset_digest") or None)
        )
    models, token = reg.search_logged_models(
        f.strings("experiment_ids", ids=True),
        f.string("filter"),
        f.integer("max_results", default=100) or 100,
        order_by,
        f.string("page_token"),
        datasets,
    )
    out: dict[str, Any] = {}
    if models:
        out["models"] = models
    if token:
        out["next_page_token"] = token
    return out


def log_outputs(f: Fields, reg: RegistryStore) -> dict[str, Any]:
    models = [
        (o.string("model_id", required=True) or "", o.integer("step", default=0) or 0)
        for o in f.objects("models")
    ]
    reg.log_outputs(f.run_id(), models)
    return {}


class RegistryHandler(PathRpcHandler):
    """One registry route: verbs map to endpoint functions (``rpcs``, as for
    :class:`RpcHandler`). Fields come from the query string and the JSON body
    (MLflow sends DELETE fields in the body), plus the route's path parameters
    (``model_id``, ``tag_key``)."""

    def initialize(self, name: str, rpcs: Mapping[str, RegistryRpc]) -> None:  # type: ignore[override]
        super().initialize(name, rpcs)  # type: ignore[arg-type]

    def target(self, user: Any) -> Any:
        # multi-user mode: the caller's view, every call checked (server/registry_access.py)
        return self.mlops.registry_for(user)


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(url regex under mlops/, handler, kwargs)`` of every registry route."""
    m = re.escape("api/2.0/mlflow/")
    rm, mv, lm = m + "registered-models/", m + "model-versions/", m + "logged-models"
    table: list[tuple[str, dict[str, RegistryRpc]]] = [
        (rm + "create", {"POST": create_registered_model}),
        (rm + "get", {"GET": get_registered_model}),
        (rm + "rename", {"POST": rename_registered_model}),
        (rm + "update", {"PATCH": update_registered_model}),
        (rm + "delete", {"DELETE": delete_registered_model}),
        (rm + "search", {"GET": search_registered_models}),
        (rm + "get-latest-versions", {"GET": get_latest_versions, "POST": get_latest_versions}),
        (rm + "set-tag", {"POST": set_registered_model_tag}),
        (rm + "delete-tag", {"DELETE": delete_registered_model_tag}),
        (rm + "alias", {"POST": set_alias, "DELETE": delete_alias, "GET": get_by_alias}),
        (mv + "create", {"POST": create_model_version}),
        (mv + "get", {"GET": get_model_version}),
        (mv + "update", {"PATCH": update_model_version}),
        (mv + "transition-stage", {"POST": transition_stage}),
        (mv + "delete", {"DELETE": delete_model_version}),
        (mv + "search", {"GET": search_model_versions}),
        (mv + "get-download-uri", {"GET": get_download_uri}),
        (mv + "set-tag", {"POST": set_model_version_tag}),
        (mv + "delete-tag", {"DELETE": delete_model_version_tag}),
        (lm, {"POST": create_logged_model}),
        (lm + "/search", {"POST": search_logged_models}),
        (
            lm + r"/(?P<model_id>[^/]+)",
            {
                "GET": get_logged_model,
                "PATCH": finalize_logged_model,
                "DELETE": delete_logged_model,
            },
        ),
        (lm + r"/(?P<model_id>[^/]+)/tags", {"PATCH": set_logged_model_tags}),
        (lm + r"/(?P<model_id>[^/]+)/tags/(?P<tag_key>.+)", {"DELETE": delete_logged_model_tag}),
        (lm + r"/(?P<model_id>[^/]+)/params", {"POST": log_logged_model_params}),
        (m + "runs/outputs", {"POST": log_outputs}),
        (re.escape("api/v1/registry/lineage"), {"GET": lineage}),
    ]
    return [(regex, RegistryHandler, {"rpcs": rpcs}) for regex, rpcs in table]
