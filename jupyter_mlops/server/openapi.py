"""The OpenAPI 3 document of every route under ``{base_url}mlops/``.

Written by hand from the REST contract (MLflow's messages, CONTRIBUTING.md's
v1 routes), not derived from the handlers: a test compares the two, so a route
added on one side only fails it.
"""

from __future__ import annotations

import copy
from typing import Any

from .handlers import pipelines, registry, ui

S = dict[str, Any]


def _ref(name: str) -> S:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: S, required: list[str] | None = None, desc: str | None = None) -> S:
    out: S = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    if desc:
        out["description"] = desc
    return out


STR: S = {"type": "string"}
INT64: S = {"type": "integer", "format": "int64"}
BOOL: S = {"type": "boolean"}
DOUBLE: S = {
    "oneOf": [{"type": "number", "format": "double"},
              {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]
}
EMPTY: S = {"type": "object", "description": "Empty on success: `{}`."}
KV_LIST: S = {"type": "array", "items": _ref("KeyValue")}
VIEW_TYPE: S = {"type": "string", "enum": ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]}
STATUS: S = {"type": "string", "enum": ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]}

SCHEMAS: S = {
    "Error": _obj({"error_code": STR, "message": STR}, ["error_code", "message"],
                  "MLflow's error JSON; the HTTP status follows the error code."),
    "KeyValue": _obj({"key": STR, "value": STR}, ["key"]),
    "Experiment": _obj({
        "experiment_id": STR, "name": STR, "artifact_location": STR,
        "lifecycle_stage": {"type": "string", "enum": ["active", "deleted"]},
        "last_update_time": INT64, "creation_time": INT64, "tags": KV_LIST,
    }),
    "RunInfo": _obj({
        "run_id": STR, "run_uuid": STR, "run_name": STR, "experiment_id": STR, "user_id": STR,
        "status": STATUS, "start_time": INT64, "end_time": INT64, "artifact_uri": STR,
        "lifecycle_stage": {"type": "string", "enum": ["active", "deleted"]},
        "deleted_time": INT64,
    }),
    "Metric": _obj({"key": STR, "value": DOUBLE, "timestamp": INT64, "step": INT64},
                   ["key", "value", "timestamp"]),
    "RunData": _obj({"metrics": {"type": "array", "items": _ref("Metric")},
                     "params": KV_LIST, "tags": KV_LIST},
                    desc="`metrics` holds the latest value of each key."),
    "Run": _obj({"info": _ref("RunInfo"), "data": _ref("RunData"), "inputs": {"type": "object"},
                 "outputs": _obj({"model_outputs": {
                     "type": "array", "items": _obj({"model_id": STR, "step": INT64})}},
                     desc="MLflow 3: the logged models the run produced (runs/get).")}),
    "FileInfo": _obj({"path": STR, "is_dir": BOOL, "file_size": INT64}),
    "SeriesPoint": _obj({"step": INT64, "timestamp": INT64, "value": DOUBLE, "min": DOUBLE,
                         "max": DOUBLE, "count": INT64},
                        desc="One bucket of a down-sampled series; min/max keep spikes."),
    "ColumnarMetric": _obj({
        "key": STR,
        "values": {"type": "array", "items": DOUBLE},
        "timestamps": {"type": "array", "items": INT64},
        "steps": {"type": "array", "items": INT64, "description": "Default: all 0."},
    }, ["key", "values", "timestamps"]),
}

RUN_ID_PARAMS: S = {"run_id": STR, "run_uuid": {**STR, "description": "Deprecated alias."}}
CREATE_RUN: S = {"experiment_id": STR, "user_id": STR, "run_name": STR, "start_time": INT64,
                 "tags": KV_LIST}
SEARCH_EXPERIMENTS: S = {"max_results": INT64, "page_token": STR, "filter": STR,
                         "order_by": {"type": "array", "items": STR}, "view_type": VIEW_TYPE}


def _query(name: str, schema: S, required: bool = False, desc: str | None = None) -> S:
    p: S = {"name": name, "in": "query", "required": required, "schema": schema}
    if schema.get("type") == "array":
        p["style"], p["explode"] = "form", True
    if desc:
        p["description"] = desc
    return p


def _json_body(props: S, required: list[str] | None = None) -> S:
    return {"required": True,
            "content": {"application/json": {"schema": _obj(props, required)}}}


def _ok(schema: S, desc: str = "Success") -> S:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, response: S, *, body: S | None = None, query: list[S] | None = None,
        tag: str = "mlflow", errors: tuple[str, ...] = ("400", "404")) -> S:
    op: S = {"summary": summary, "tags": [tag], "responses": {"200": _ok(response)}}
    if body is not None:
        op["requestBody"] = body
    if query:
        op["parameters"] = query
    for code in errors + ("403",):
        op["responses"][code] = {
            "description": {"400": "Invalid request", "403": "Not authenticated or not "
                            "authorized", "404": "Not found"}.get(code, "Error"),
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return op


def _paths() -> S:
    m = "/api/2.0/mlflow"
    run_q = [_query("run_id", STR, desc="Required (or `run_uuid`)."), _query("run_uuid", STR)]
    p: S = {
        f"{m}/experiments/create": {"post": _op(
            "Create an experiment", _obj({"experiment_id": STR}),
            body=_json_body({"name": STR, "artifact_location": STR, "tags": KV_LIST}, ["name"]))},
        f"{m}/experiments/get": {"get": _op(
            "Get an experiment", _obj({"experiment": _ref("Experiment")}),
            query=[_query("experiment_id", STR, True)])},
        f"{m}/experiments/get-by-name": {"get": _op(
            "Get an experiment by name (active preferred)", _obj({"experiment": _ref("Experiment")}),
            query=[_query("experiment_name", STR, True)])},
        f"{m}/experiments/search": {
            "get": _op("Search experiments", _obj({
                "experiments": {"type": "array", "items": _ref("Experiment")},
                "next_page_token": STR}),
                query=[_query(k, v) for k, v in SEARCH_EXPERIMENTS.items()]),
            "post": _op("Search experiments", _obj({
                "experiments": {"type": "array", "items": _ref("Experiment")},
                "next_page_token": STR}), body=_json_body(SEARCH_EXPERIMENTS)),
        },
        f"{m}/experiments/update": {"post": _op(
            "Rename an experiment", EMPTY,
            body=_json_body({"experiment_id": STR, "new_name": STR}, ["experiment_id", "new_name"]))},
        f"{m}/experiments/delete": {"post": _op(
            "Delete an experiment and its runs (soft)", EMPTY,
            body=_json_body({"experiment_id": STR}, ["experiment_id"]))},
        f"{m}/experiments/restore": {"post": _op(
            "Restore a deleted experiment", EMPTY,
            body=_json_body({"experiment_id": STR}, ["experiment_id"]))},
        f"{m}/experiments/set-experiment-tag": {"post": _op(
            "Set an experiment tag", EMPTY,
            body=_json_body({"experiment_id": STR, "key": STR, "value": STR},
                            ["experiment_id", "key"]))},
        f"{m}/experiments/delete-experiment-tag": {"post": _op(
            "Delete an experiment tag", EMPTY,
            body=_json_body({"experiment_id": STR, "key": STR}, ["experiment_id", "key"]))},
        f"{m}/runs/create": {"post": _op(
            "Create a run", _obj({"run": _ref("Run")}),
            body=_json_body(CREATE_RUN, ["experiment_id"]))},
        f"{m}/runs/get": {"get": _op("Get a run (latest metric values)", _obj({"run": _ref("Run")}),
                                     query=run_q)},
        f"{m}/runs/update": {"post": _op(
            "Update a run's status, end time or name", _obj({"run_info": _ref("RunInfo")}),
            body=_json_body({**RUN_ID_PARAMS, "status": STATUS, "end_time": INT64,
                             "run_name": STR}, ["run_id"]))},
        f"{m}/runs/delete": {"post": _op("Delete a run (soft)", EMPTY,
                                         body=_json_body(RUN_ID_PARAMS, ["run_id"]))},
        f"{m}/runs/restore": {"post": _op("Restore a deleted run", EMPTY,
                                          body=_json_body(RUN_ID_PARAMS, ["run_id"]))},
        f"{m}/runs/search": {"post": _op(
            "Search runs (MLflow's filter grammar)", _obj({
                "runs": {"type": "array", "items": _ref("Run")}, "next_page_token": STR}),
            body=_json_body({
                "experiment_ids": {"type": "array", "items": STR}, "filter": STR,
                "run_view_type": VIEW_TYPE,
                "max_results": {**INT64, "default": 1000, "maximum": 50000},
                "order_by": {"type": "array", "items": STR}, "page_token": STR}))},
        f"{m}/runs/log-metric": {"post": _op(
            "Log one metric value", EMPTY,
            body=_json_body({**RUN_ID_PARAMS, "key": STR, "value": DOUBLE, "timestamp": INT64,
                             "step": INT64}, ["run_id", "key", "value", "timestamp"]))},
        f"{m}/runs/log-parameter": {"post": _op(
            "Log a parameter (write-once)", EMPTY,
            body=_json_body({**RUN_ID_PARAMS, "key": STR, "value": STR}, ["run_id", "key"]))},
        f"{m}/runs/set-tag": {"post": _op(
            "Set a run tag", EMPTY,
            body=_json_body({**RUN_ID_PARAMS, "key": STR, "value": STR}, ["run_id", "key"]))},
        f"{m}/runs/delete-tag": {"post": _op(
            "Delete a run tag", EMPTY,
            body=_json_body({**RUN_ID_PARAMS, "key": STR}, ["run_id", "key"]))},
        f"{m}/runs/log-batch": {"post": _op(
            "Log metrics, params and tags (at most 1000/100/100; body at most 1 MB)", EMPTY,
            body=_json_body({**RUN_ID_PARAMS,
                             "metrics": {"type": "array", "items": _ref("Metric")},
                             "params": KV_LIST, "tags": KV_LIST}, ["run_id"]))},
        f"{m}/metrics/get-history": {"get": _op(
            "Every point of one metric", _obj({
                "metrics": {"type": "array", "items": _ref("Metric")}, "next_page_token": STR}),
            query=run_q + [_query("metric_key", STR, True), _query("max_results", INT64),
                           _query("page_token", STR)])},
        f"{m}/artifacts/list": {"get": _op(
            "List a run's artifacts (paths relative to the run's root)", _obj({
                "root_uri": STR, "files": {"type": "array", "items": _ref("FileInfo")},
                "next_page_token": STR}),
            query=run_q + [_query("path", STR), _query("page_token", STR)])},
        "/api/3.0/mlflow/server-info": {"get": _op(
            "Server capabilities (no multipart uploads)", _obj({
                "store_type": STR, "workspaces_enabled": BOOL, "multipart_uploads_enabled": BOOL}),
            errors=())},
        "/api/2.0/mlflow-artifacts/artifacts": {"get": _op(
            "List a directory of the artifact root (paths relative to it)", _obj({
                "files": {"type": "array", "items": _ref("FileInfo")}}),
            query=[_query("path", STR, desc="`<experiment_id>/<run_id>/artifacts/...`")],
            tag="artifacts", errors=("400",))},
        "/api/2.0/mlflow-artifacts/artifacts/{artifact_path}": {
            "parameters": [{"name": "artifact_path", "in": "path", "required": True,
                            "schema": STR, "description": "Relative to the artifact root; "
                            "may contain `/`; `..` is refused."}],
            "get": {**_op("Download an artifact (streamed)", STR, tag="artifacts"),
                    "responses": {**_op("", STR, tag="artifacts")["responses"],
                                  "200": {"description": "The file's bytes",
                                          "content": {"application/octet-stream":
                                                      {"schema": {"type": "string",
                                                                  "format": "binary"}}}}}},
            "put": _op("Upload an artifact (raw body)", EMPTY, tag="artifacts",
                       body={"required": True, "content": {"application/octet-stream": {
                           "schema": {"type": "string", "format": "binary"}}}}),
            "delete": _op("Delete an artifact or a directory", EMPTY, tag="artifacts"),
        },
        "/api/v1/metrics/series": {"get": _op(
            "A down-sampled metric series (min/max preserving)", _obj({
                "points": {"type": "array", "items": _ref("SeriesPoint")}}),
            query=run_q + [
                _query("metric_key", STR, True),
                _query("max_points", {**INT64, "default": 1000, "minimum": 1}),
                _query("x_axis", {"type": "string", "enum": ["step", "timestamp"],
                                  "default": "step"}),
                _query("start_step", INT64), _query("end_step", INT64)], tag="v1")},
        "/api/v1/runs/log-bulk": {"post": _op(
            "Columnar bulk logging (no MLflow batch limits; body up to "
            "MLOpsApp.max_request_body)", EMPTY, tag="v1",
            body=_json_body({**RUN_ID_PARAMS,
                             "metrics": {"type": "array", "items": _ref("ColumnarMetric")},
                             "params": KV_LIST, "tags": KV_LIST}, ["run_id"]))},
        "/api/v1/runs/create": {"post": _op(
            "Create a run, optionally with a client-made id", _obj({"run": _ref("Run")}),
            tag="v1", body=_json_body({**CREATE_RUN, "run_id": {
                **STR, "pattern": "^[0-9a-f]{32}$"}}, ["experiment_id"]))},
        "/api/v1/runs/heartbeat": {"post": _op(
            "The writers of these runs are alive", EMPTY, tag="v1", errors=("400",),
            body=_json_body({"run_ids": {"type": "array", "items": STR}}, ["run_ids"]))},
        "/api/v1/openapi.json": {"get": _op("This document", {"type": "object"}, tag="v1",
                                            errors=())},
        "/health": {"get": _op("Liveness", _obj({"status": STR}), tag="v1", errors=())},
        **pipelines.openapi_paths(),
        **ui.openapi_paths(),
        **registry.openapi_paths(),
        "/": {"get": {
            "summary": "Open JupyterLab (run links printed by the MLflow client land here; "
                       "the browser keeps their `#/experiments/...` fragment)",
            "tags": ["v1"],
            "responses": {"302": {"description": "Redirect to `{base_url}lab`"},
                          "403": {"description": "Not authenticated",
                                  "content": {"application/json": {"schema": _ref("Error")}}}},
        }},
    }
    return p


def openapi_document(server_url: str = "/mlops") -> S:
    """The document; ``server_url`` is ``{base_url}mlops`` of the serving server."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "jupyter-mlops",
            "version": "1",
            "description": "MLflow's tracking REST API (same fields, errors and codes) and "
                           "jupyter-mlops' own `api/v1` routes. Authenticate with the Jupyter "
                           "token (`Authorization: token|Bearer <token>`) or the Jupyter "
                           "session cookie plus XSRF header.",
        },
        "servers": [{"url": server_url}],
        "security": [{"token": []}],
        "paths": _paths(),
        "components": {
            "schemas": {**copy.deepcopy(SCHEMAS), **pipelines.openapi_schemas()},
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }
