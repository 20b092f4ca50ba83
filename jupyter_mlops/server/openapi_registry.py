"""The OpenAPI part of the registry routes (``handlers/registry.py``): MLflow's model
registry, MLflow 3's logged models and ``api/v1/registry/lineage``, one operation per
route and verb of its route table, described by :data:`_DOC`."""

from __future__ import annotations

import re
from typing import Any

from .handlers.registry import routes
from .openapi_parts import BOOL, INT64, KV_LIST, STR, json_body, obj, op, query

#: Keys of answers that are not objects: lists of objects, and strings.
_LIST_ANSWERS = {"registered_models", "model_versions", "models"}
_STRING_ANSWERS = {"next_page_token", "artifact_uri"}


def _answer_schema(key: str) -> dict[str, Any]:
    if key in _LIST_ANSWERS:
        return {"type": "array", "items": {"type": "object"}}
    if key in _STRING_ANSWERS:
        return STR
    if key in ("run", "source"):  # a version's lineage: null when not known
        return {"type": "object", "nullable": True}
    return {"type": "object"}


#: endpoint function name -> (summary, request fields, required fields, response keys)
_DOC: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "create_registered_model": (
        "Create a registered model",
        ("name", "tags", "description"),
        ("name",),
        ("registered_model",),
    ),
    "get_registered_model": ("Get a registered model", ("name",), ("name",), ("registered_model",)),
    "rename_registered_model": (
        "Rename a registered model",
        ("name", "new_name"),
        ("name", "new_name"),
        ("registered_model",),
    ),
    "update_registered_model": (
        "Update a registered model's description",
        ("name", "description"),
        ("name",),
        ("registered_model",),
    ),
    "delete_registered_model": (
        "Delete a registered model and its versions",
        ("name",),
        ("name",),
        (),
    ),
    "search_registered_models": (
        "Search registered models",
        ("filter", "max_results", "order_by", "page_token"),
        (),
        ("registered_models", "next_page_token"),
    ),
    "get_latest_versions": (
        "Latest version per stage (deprecated by MLflow)",
        ("name", "stages"),
        ("name",),
        ("model_versions",),
    ),
    "set_registered_model_tag": (
        "Set a registered model tag",
        ("name", "key", "value"),
        ("name", "key"),
        (),
    ),
    "delete_registered_model_tag": (
        "Delete a registered model tag",
        ("name", "key"),
        ("name", "key"),
        (),
    ),
    "set_alias": (
        "Point an alias at a version",
        ("name", "alias", "version"),
        ("name", "alias", "version"),
        (),
    ),
    "delete_alias": ("Delete an alias", ("name", "alias"), ("name", "alias"), ()),
    "get_by_alias": (
        "The version an alias points at",
        ("name", "alias"),
        ("name", "alias"),
        ("model_version",),
    ),
    "create_model_version": (
        "Register a new version",
        ("name", "source", "run_id", "tags", "run_link", "description", "model_id"),
        ("name", "source"),
        ("model_version",),
    ),
    "get_model_version": (
        "Get a version",
        ("name", "version"),
        ("name", "version"),
        ("model_version",),
    ),
    "update_model_version": (
        "Update a version's description",
        ("name", "version", "description"),
        ("name", "version"),
        ("model_version",),
    ),
    "transition_stage": (
        "Move a version to a stage",
        ("name", "version", "stage", "archive_existing_versions"),
        ("name", "version", "stage", "archive_existing_versions"),
        ("model_version",),
    ),
    "delete_model_version": ("Delete a version", ("name", "version"), ("name", "version"), ()),
    "search_model_versions": (
        "Search versions",
        ("filter", "max_results", "order_by", "page_token"),
        (),
        ("model_versions", "next_page_token"),
    ),
    "get_download_uri": (
        "Artifact URI of a version's files",
        ("name", "version"),
        ("name", "version"),
        ("artifact_uri",),
    ),
    "set_model_version_tag": (
        "Set a version tag",
        ("name", "version", "key", "value"),
        ("name", "version", "key"),
        (),
    ),
    "delete_model_version_tag": (
        "Delete a version tag",
        ("name", "version", "key"),
        ("name", "version", "key"),
        (),
    ),
    "create_logged_model": (
        "Create a logged model (MLflow 3)",
        ("experiment_id", "name", "model_type", "source_run_id", "params", "tags"),
        ("experiment_id",),
        ("model",),
    ),
    "search_logged_models": (
        "Search logged models",
        ("experiment_ids", "filter", "max_results", "order_by", "page_token"),
        (),
        ("models", "next_page_token"),
    ),
    "get_logged_model": ("Get a logged model", (), (), ("model",)),
    "finalize_logged_model": (
        "Finalize a logged model (status)",
        ("status",),
        ("status",),
        ("model",),
    ),
    "delete_logged_model": ("Delete a logged model", (), (), ()),
    "set_logged_model_tags": ("Set logged model tags", ("tags",), (), ()),
    "delete_logged_model_tag": ("Delete a logged model tag", (), (), ()),
    "log_logged_model_params": ("Log logged model params", ("params",), (), ()),
    "log_outputs": (
        "Link logged models to a run as its outputs",
        ("run_id", "models"),
        ("run_id",),
        (),
    ),
    "lineage": (
        "A version with its run, source notebook/script and commit (Models panel)",
        ("name", "version"),
        ("name", "version"),
        ("model_version", "run", "source"),
    ),
}


def paths() -> dict[str, Any]:
    """OpenAPI path items of every registry route."""

    def schema(field: str) -> dict[str, Any]:
        if field in ("tags", "params"):
            return KV_LIST
        if field == "models":
            return {"type": "array", "items": obj({"model_id": STR, "step": INT64})}
        if field in ("stages", "experiment_ids"):
            return {"type": "array", "items": STR}
        if field == "order_by":
            return {
                "type": "array",
                "items": {},
                "description": "Strings (`name ASC`); objects (`{field_name, ascending}`) "
                "for logged models.",
            }
        if field == "max_results":
            return INT64
        if field == "archive_existing_versions":
            return BOOL
        return STR

    out: dict[str, Any] = {}
    for regex, _cls, kwargs in routes():
        path = "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", regex).replace("\\", "")
        path_params = re.findall(r"\{(\w+)\}", path)
        item: dict[str, Any] = {}
        for verb, rpc in kwargs["rpcs"].items():
            summary, fields, required, answer = _DOC[rpc.__name__]
            response = (
                obj({k: _answer_schema(k) for k in answer})
                if answer
                else {"type": "object", "description": "Empty on success: `{}`."}
            )
            tag = "v1" if path.startswith("/api/v1") else "mlflow-registry"
            if verb == "GET":
                operation = op(
                    summary,
                    response,
                    tag=tag,
                    query=[query(f, schema(f), f in required) for f in fields] or None,
                )
            else:
                operation = op(
                    summary,
                    response,
                    tag=tag,
                    body=json_body({f: schema(f) for f in fields}, list(required) or None),
                )
            if path_params:
                operation.setdefault("parameters", [])
                operation["parameters"] = [
                    {"name": n, "in": "path", "required": True, "schema": STR} for n in path_params
                ] + operation["parameters"]
            item[verb.lower()] = operation
        out[path] = item
    return out
