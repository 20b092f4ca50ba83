"""The OpenAPI 3 document of every route under ``{base_url}mlops/``.

Written by hand from the REST contract (MLflow's messages, CONTRIBUTING.md's
v1 routes), not derived from the handlers: a test compares the two, so a route
added on one side only fails it. This module holds MLflow's tracking API and the
``api/v1`` routes and assembles the rest: the pipeline routes
(``openapi_pipelines.py``), the registry's (``openapi_registry.py``), the deployments'
(``openapi_deployments.py``), the training jobs' (``openapi_jobs.py``) and the MLflow
projects' (``openapi_projects.py``), built from
``openapi_parts.py``. Handlers never import the document: the app passes
:func:`openapi_document` to the route that serves it.
"""

from __future__ import annotations

import copy

from ..tracking.store import MAX_DATA_KEYS
from . import (
    openapi_deployments,
    openapi_hubops,
    openapi_jobs,
    openapi_mlflow,
    openapi_pipelines,
    openapi_projects,
    openapi_registry,
    openapi_traces,
)
from .handlers.ui import MAX_BULK_RUNS
from .handlers.v1 import MAX_CHANGED_RUNS, MAX_RUN_KEYS, MAX_SERIES_POINTS
from .openapi_parts import (
    BOOL,
    DOUBLE,
    EMPTY,
    INT64,
    KV_LIST,
    STR,
    S,
    json_body,
    obj,
    op,
    query,
    ref,
)


def _multipart_paths() -> S:
    """MLflow's multipart upload through the proxy, and the route its parts are sent to."""
    dir_param = {
        "name": "artifact_path",
        "in": "path",
        "required": True,
        "schema": STR,
        "description": "The directory the file goes into, relative to the artifact root.",
    }
    local = {"path": {**STR, "description": "The client's local file: its name is used."}}
    parts = {
        "type": "array",
        "items": obj({"part_number": INT64, "etag": STR, "url": STR}, ["part_number"]),
    }
    credential = obj(
        {
            "url": STR,
            "part_number": INT64,
            "headers": {"type": "object", "additionalProperties": STR},
        }
    )
    out: S = {}
    for name, summary, body, response in (
        (
            "create",
            "Start a multipart upload: one credential (URL and headers) per part",
            json_body({**local, "num_parts": INT64}, ["path", "num_parts"]),
            obj({"upload_id": STR, "credentials": {"type": "array", "items": credential}}),
        ),
        (
            "complete",
            "Put the uploaded parts together at <artifact_path>/<name of path>",
            json_body({**local, "upload_id": STR, "parts": parts}, ["path", "upload_id", "parts"]),
            EMPTY,
        ),
        (
            "abort",
            "Drop a multipart upload and its parts",
            json_body({**local, "upload_id": STR}, ["path", "upload_id"]),
            EMPTY,
        ),
    ):
        out[f"/api/2.0/mlflow-artifacts/mpu/{name}/{{artifact_path}}"] = {
            "parameters": [dir_param],
            "post": op(summary, response, body=body, tag="artifacts"),
        }
    out["/api/v1/artifacts/parts/{artifact_path}"] = {
        "parameters": [{**dir_param, "description": "The upload's destination file."}],
        "put": {
            **op(
                "Upload one part of a multipart upload (raw body, streamed); "
                "the answer's ETag header names it in `complete`; 404 once the upload is "
                "completed or aborted, even while the part is being sent",
                EMPTY,
                query=[query("upload_id", STR, True), query("part_number", INT64, True)],
                tag="artifacts",
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            },
        },
    }
    return out


VIEW_TYPE: S = {"type": "string", "enum": ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]}
STATUS: S = {"type": "string", "enum": ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]}
_KEYS: S = {"type": "array", "items": STR, "maxItems": MAX_DATA_KEYS}
#: Ours, beside MLflow's fields: the keys each returned run's data carries.
DATA_KEYS: S = obj(
    {"params": _KEYS, "metrics": _KEYS, "tags": _KEYS},
    desc="Not MLflow's: each run's data carries only these keys of each kind named "
    "(a kind left out: all its keys). MLflow's clients never send it.",
)

SCHEMAS: S = {
    "Error": obj(
        {"error_code": STR, "message": STR},
        ["error_code", "message"],
        "MLflow's error JSON; the HTTP status follows the error code.",
    ),
    "KeyValue": obj({"key": STR, "value": STR}, ["key"]),
    "Experiment": obj(
        {
            "experiment_id": STR,
            "name": STR,
            "artifact_location": STR,
            "lifecycle_stage": {"type": "string", "enum": ["active", "deleted"]},
            "last_update_time": INT64,
            "creation_time": INT64,
            "tags": KV_LIST,
        }
    ),
    "RunInfo": obj(
        {
            "run_id": STR,
            "run_uuid": STR,
            "run_name": STR,
            "experiment_id": STR,
            "user_id": STR,
            "status": STATUS,
            "start_time": INT64,
            "end_time": INT64,
            "artifact_uri": STR,
            "lifecycle_stage": {"type": "string", "enum": ["active", "deleted"]},
            "deleted_time": INT64,
        }
    ),
    "Metric": obj(
        {"key": STR, "value": DOUBLE, "timestamp": INT64, "step": INT64},
        ["key", "value", "timestamp"],
    ),
    "RunData": obj(
        {"metrics": {"type": "array", "items": ref("Metric")}, "params": KV_LIST, "tags": KV_LIST},
        desc="`metrics` holds the latest value of each key.",
    ),
    "Run": obj(
        {
            "info": ref("RunInfo"),
            "data": ref("RunData"),
            "inputs": ref("RunInputs"),
            "outputs": obj(
                {
                    "model_outputs": {
                        "type": "array",
                        "items": obj({"model_id": STR, "step": INT64}),
                    }
                },
                desc="MLflow 3: the logged models the run produced (runs/get).",
            ),
        }
    ),
    "FileInfo": obj({"path": STR, "is_dir": BOOL, "file_size": INT64}),
    "SeriesPoint": obj(
        {
            "step": INT64,
            "timestamp": INT64,
            "value": DOUBLE,
            "min": DOUBLE,
            "max": DOUBLE,
            "count": INT64,
        },
        desc="One bucket of a down-sampled series; min/max keep spikes.",
    ),
    "ColumnarMetric": obj(
        {
            "key": STR,
            "values": {"type": "array", "items": DOUBLE},
            "timestamps": {"type": "array", "items": INT64},
            "steps": {"type": "array", "items": INT64, "description": "Default: all 0."},
        },
        ["key", "values", "timestamps"],
    ),
}

RUN_ID_PARAMS: S = {"run_id": STR, "run_uuid": {**STR, "description": "Deprecated alias."}}
CREATE_RUN: S = {
    "experiment_id": STR,
    "user_id": STR,
    "run_name": STR,
    "start_time": INT64,
    "tags": KV_LIST,
}
SEARCH_EXPERIMENTS: S = {
    "max_results": INT64,
    "page_token": STR,
    "filter": STR,
    "order_by": {"type": "array", "items": STR},
    "view_type": VIEW_TYPE,
}


def _paths() -> S:
    m = "/api/2.0/mlflow"
    run_q = [query("run_id", STR, desc="Required (or `run_uuid`)."), query("run_uuid", STR)]
    p: S = {
        f"{m}/experiments/create": {
            "post": op(
                "Create an experiment",
                obj({"experiment_id": STR}),
                body=json_body({"name": STR, "artifact_location": STR, "tags": KV_LIST}, ["name"]),
            )
        },
        f"{m}/experiments/get": {
            "get": op(
                "Get an experiment",
                obj({"experiment": ref("Experiment")}),
                query=[query("experiment_id", STR, True)],
            )
        },
        f"{m}/experiments/get-by-name": {
            "get": op(
                "Get an experiment by name (active preferred)",
                obj({"experiment": ref("Experiment")}),
                query=[query("experiment_name", STR, True)],
            )
        },
        f"{m}/experiments/search": {
            "get": op(
                "Search experiments",
                obj(
                    {
                        "experiments": {"type": "array", "items": ref("Experiment")},
                        "next_page_token": STR,
                    }
                ),
                query=[query(k, v) for k, v in SEARCH_EXPERIMENTS.items()],
            ),
            "post": op(
                "Search experiments",
                obj(
                    {
                        "experiments": {"type": "array", "items": ref("Experiment")},
                        "next_page_token": STR,
                    }
                ),
                body=json_body(SEARCH_EXPERIMENTS),
            ),
        },
        f"{m}/experiments/update": {
            "post": op(
                "Rename an experiment",
                EMPTY,
                body=json_body(
                    {"experiment_id": STR, "new_name": STR}, ["experiment_id", "new_name"]
                ),
            )
        },
        f"{m}/experiments/delete": {
            "post": op(
                "Delete an experiment and its runs (soft)",
                EMPTY,
                body=json_body({"experiment_id": STR}, ["experiment_id"]),
            )
        },
        f"{m}/experiments/restore": {
            "post": op(
                "Restore a deleted experiment",
                EMPTY,
                body=json_body({"experiment_id": STR}, ["experiment_id"]),
            )
        },
        f"{m}/experiments/set-experiment-tag": {
            "post": op(
                "Set an experiment tag",
                EMPTY,
                body=json_body(
                    {"experiment_id": STR, "key": STR, "value": STR}, ["experiment_id", "key"]
                ),
            )
        },
        f"{m}/experiments/delete-experiment-tag": {
            "post": op(
                "Delete an experiment tag",
                EMPTY,
                body=json_body({"experiment_id": STR, "key": STR}, ["experiment_id", "key"]),
            )
        },
        f"{m}/runs/create": {
            "post": op(
                "Create a run",
                obj({"run": ref("Run")}),
                body=json_body(CREATE_RUN, ["experiment_id"]),
            )
        },
        f"{m}/runs/get": {
            "get": op("Get a run (latest metric values)", obj({"run": ref("Run")}), query=run_q)
        },
        f"{m}/runs/update": {
            "post": op(
                "Update a run's status, end time or name",
                obj({"run_info": ref("RunInfo")}),
                body=json_body(
                    {**RUN_ID_PARAMS, "status": STATUS, "end_time": INT64, "run_name": STR},
                    ["run_id"],
                ),
            )
        },
        f"{m}/runs/delete": {
            "post": op("Delete a run (soft)", EMPTY, body=json_body(RUN_ID_PARAMS, ["run_id"]))
        },
        f"{m}/runs/restore": {
            "post": op("Restore a deleted run", EMPTY, body=json_body(RUN_ID_PARAMS, ["run_id"]))
        },
        f"{m}/runs/search": {
            "post": op(
                "Search runs (MLflow's filter grammar)",
                obj({"runs": {"type": "array", "items": ref("Run")}, "next_page_token": STR}),
                body=json_body(
                    {
                        "experiment_ids": {"type": "array", "items": STR},
                        "filter": STR,
                        "run_view_type": VIEW_TYPE,
                        "max_results": {**INT64, "default": 1000, "maximum": 50000},
                        "order_by": {"type": "array", "items": STR},
                        "page_token": STR,
                        "data_keys": DATA_KEYS,
                    }
                ),
            )
        },
        f"{m}/runs/log-metric": {
            "post": op(
                "Log one metric value",
                EMPTY,
                body=json_body(
                    {
                        **RUN_ID_PARAMS,
                        "key": STR,
                        "value": DOUBLE,
                        "timestamp": INT64,
                        "step": INT64,
                    },
                    ["run_id", "key", "value", "timestamp"],
                ),
            )
        },
        f"{m}/runs/log-parameter": {
            "post": op(
                "Log a parameter (write-once)",
                EMPTY,
                body=json_body({**RUN_ID_PARAMS, "key": STR, "value": STR}, ["run_id", "key"]),
            )
        },
        f"{m}/runs/set-tag": {
            "post": op(
                "Set a run tag",
                EMPTY,
                body=json_body({**RUN_ID_PARAMS, "key": STR, "value": STR}, ["run_id", "key"]),
            )
        },
        f"{m}/runs/delete-tag": {
            "post": op(
                "Delete a run tag",
                EMPTY,
                body=json_body({**RUN_ID_PARAMS, "key": STR}, ["run_id", "key"]),
            )
        },
        f"{m}/runs/log-batch": {
            "post": op(
                "Log metrics, params and tags (at most 1000/100/100; body at most 1 MB)",
                EMPTY,
                body=json_body(
                    {
                        **RUN_ID_PARAMS,
                        "metrics": {"type": "array", "items": ref("Metric")},
                        "params": KV_LIST,
                        "tags": KV_LIST,
                    },
                    ["run_id"],
                ),
            )
        },
        f"{m}/metrics/get-history": {
            "get": op(
                "Every point of one metric",
                obj({"metrics": {"type": "array", "items": ref("Metric")}, "next_page_token": STR}),
                query=run_q
                + [
                    query("metric_key", STR, True),
                    query("max_results", INT64),
                    query("page_token", STR),
                ],
            )
        },
        f"{m}/artifacts/list": {
            "get": op(
                "List a run's artifacts (paths relative to the run's root)",
                obj(
                    {
                        "root_uri": STR,
                        "files": {"type": "array", "items": ref("FileInfo")},
                        "next_page_token": STR,
                    }
                ),
                query=run_q + [query("path", STR), query("page_token", STR)],
            )
        },
        "/api/3.0/mlflow/server-info": {
            "get": op(
                "Server capabilities (no multipart uploads)",
                obj(
                    {
                        "store_type": STR,
                        "workspaces_enabled": BOOL,
                        "multipart_uploads_enabled": BOOL,
                    }
                ),
                errors=(),
            )
        },
        "/api/2.0/mlflow-artifacts/artifacts": {
            "get": op(
                "List a directory of the artifact root (paths relative to it)",
                obj({"files": {"type": "array", "items": ref("FileInfo")}}),
                query=[query("path", STR, desc="`<experiment_id>/<run_id>/artifacts/...`")],
                tag="artifacts",
                errors=("400",),
            )
        },
        "/api/2.0/mlflow-artifacts/artifacts/{artifact_path}": {
            "parameters": [
                {
                    "name": "artifact_path",
                    "in": "path",
                    "required": True,
                    "schema": STR,
                    "description": "Relative to the artifact root; "
                    "may contain `/`; `..` is refused.",
                }
            ],
            "get": {
                **op("Download an artifact (streamed)", STR, tag="artifacts"),
                "responses": {
                    **op("", STR, tag="artifacts")["responses"],
                    "200": {
                        "description": "The file's bytes",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                },
            },
            "put": op(
                "Upload an artifact (raw body)",
                EMPTY,
                tag="artifacts",
                body={
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
            ),
            "delete": op("Delete an artifact or a directory", EMPTY, tag="artifacts"),
        },
        **_multipart_paths(),
        "/api/v1/metrics/series": {
            "get": op(
                "A down-sampled metric series (min/max preserving)",
                obj({"points": {"type": "array", "items": ref("SeriesPoint")}}),
                query=run_q
                + [
                    query("metric_key", STR, True),
                    query("max_points", {**INT64, "default": 1000, "minimum": 1}),
                    query(
                        "x_axis",
                        {"type": "string", "enum": ["step", "timestamp"], "default": "step"},
                    ),
                    query("start_step", INT64),
                    query("end_step", INT64),
                ],
                tag="v1",
            )
        },
        "/api/v1/runs/log-bulk": {
            "post": op(
                "Columnar bulk logging (no MLflow batch limits; body up to "
                "MLOpsApp.max_request_body)",
                EMPTY,
                tag="v1",
                body=json_body(
                    {
                        **RUN_ID_PARAMS,
                        "metrics": {"type": "array", "items": ref("ColumnarMetric")},
                        "params": KV_LIST,
                        "tags": KV_LIST,
                    },
                    ["run_id"],
                ),
            )
        },
        "/api/v1/runs/create": {
            "post": op(
                "Create a run, optionally with a client-made id",
                obj({"run": ref("Run")}),
                tag="v1",
                body=json_body(
                    {**CREATE_RUN, "run_id": {**STR, "pattern": "^[0-9a-f]{32}$"}},
                    ["experiment_id"],
                ),
            )
        },
        "/api/v1/runs/heartbeat": {
            "post": op(
                "The writers of these runs are alive",
                EMPTY,
                tag="v1",
                errors=("400",),
                body=json_body({"run_ids": {"type": "array", "items": STR}}, ["run_ids"]),
            )
        },
        "/api/v1/runs/ended": {
            "post": op(
                "A run its client ended straight in the database (a kernel's sqlite:// or "
                "postgresql:// URI): the server reads it and tells its end (notifications)",
                EMPTY,
                tag="v1",
                errors=("400", "404"),
                body=json_body({"run_id": STR}, ["run_id"]),
            )
        },
        "/api/v1/runs/count": {
            "post": op(
                "How many runs MLflow's runs/search finds with these fields (all pages)",
                obj({"count": INT64}),
                tag="v1",
                body=json_body(
                    {
                        "experiment_ids": {"type": "array", "items": STR},
                        "filter": STR,
                        "run_view_type": VIEW_TYPE,
                    }
                ),
            )
        },
        "/api/v1/runs/changes": {
            "post": op(
                "The experiments' runs (deleted ones too) changed at or after `since` "
                "(epoch ms; pass the previous answer's `now`), oldest change first; "
                "`truncated` when there were more than `max_results`",
                obj(
                    {
                        "runs": {"type": "array", "items": ref("Run")},
                        "now": INT64,
                        "truncated": {"type": "boolean"},
                    }
                ),
                tag="v1",
                body=json_body(
                    {
                        "experiment_ids": {"type": "array", "items": STR},
                        "since": INT64,
                        "max_results": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_CHANGED_RUNS,
                        },
                        "data_keys": DATA_KEYS,
                    },
                    ["since"],
                ),
            )
        },
        "/api/v1/runs/keys": {
            "post": op(
                "The param, metric and tag keys of the experiments' active runs that "
                "contain `search` (case-insensitive), sorted, at most `max_results` of each",
                obj(
                    {
                        "params": {"type": "array", "items": STR},
                        "metrics": {"type": "array", "items": STR},
                        "tags": {"type": "array", "items": STR},
                    }
                ),
                tag="v1",
                body=json_body(
                    {
                        "experiment_ids": {"type": "array", "items": STR},
                        "search": STR,
                        "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_RUN_KEYS},
                    }
                ),
            )
        },
        "/api/v1/openapi.json": {
            "get": op("This document", {"type": "object"}, tag="v1", errors=())
        },
        "/health": {"get": op("Liveness", obj({"status": STR}), tag="v1", errors=())},
        **_series_bulk(),
        **openapi_mlflow.dataset_paths(),
        **openapi_mlflow.ui_paths(),
        **openapi_pipelines.paths(),
        **openapi_deployments.paths(),
        **openapi_jobs.paths(),
        **openapi_projects.paths(),
        **openapi_hubops.paths(),
        **openapi_registry.paths(),
        **openapi_traces.paths(),
        **openapi_traces.evaluation_paths(),
        "/": {
            "get": {
                "summary": "Open JupyterLab (run links printed by the MLflow client land here; "
                "the browser keeps their `#/experiments/...` fragment)",
                "tags": ["v1"],
                "responses": {
                    "302": {"description": "Redirect to `{base_url}lab`"},
                    "403": {
                        "description": "Not authenticated",
                        "content": {"application/json": {"schema": ref("Error")}},
                    },
                },
            }
        },
    }
    return p


def _series_bulk() -> S:
    """``GET api/v1/metrics/series-bulk`` (handlers/ui.py: the compare view's series)."""
    error = {"content": {"application/json": {"schema": ref("Error")}}}
    return {
        "/api/v1/metrics/series-bulk": {
            "get": {
                "summary": "One metric's down-sampled series for many runs",
                "tags": ["v1"],
                "parameters": [
                    {
                        "name": "run_ids",
                        "in": "query",
                        "required": True,
                        "schema": {
                            "type": "array",
                            "items": {"type": "string"},
                            "maxItems": MAX_BULK_RUNS,
                        },
                        "style": "form",
                        "explode": True,
                    },
                    {
                        "name": "metric_key",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "max_points",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "integer",
                            "format": "int64",
                            "default": 1000,
                            "minimum": 1,
                            "maximum": MAX_SERIES_POINTS,
                        },
                    },
                    {
                        "name": "x_axis",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "enum": ["step", "timestamp"],
                            "default": "step",
                        },
                    },
                ],
                "responses": {
                    "200": {
                        "description": "Success",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "series": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "properties": {
                                                    "run_id": {"type": "string"},
                                                    "points": {
                                                        "type": "array",
                                                        "items": {
                                                            "$ref": "#/components/schemas/SeriesPoint"
                                                        },
                                                    },
                                                },
                                            },
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "400": {"description": "Invalid request", **error},
                    "403": {"description": "Not authenticated or not authorized", **error},
                    "404": {"description": "Not found", **error},
                },
            }
        },
    }


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
        "paths": openapi_mlflow.with_ajax_aliases(with_default_errors(_paths())),
        "components": {
            "schemas": {
                **copy.deepcopy(SCHEMAS),
                **openapi_mlflow.schemas(),
                **openapi_pipelines.schemas(),
                **openapi_deployments.schemas(),
                **openapi_jobs.schemas(),
                **openapi_projects.schemas(),
            },
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }


#: What any operation may answer besides its own codes: 405 (a verb the route lacks),
#: 503 (database unavailable, server busy or stopping), 507 (a disk full), 500.
DEFAULT_ERROR: S = {
    "description": "Any other error, as MLflow's error JSON: 405 for a verb the route lacks, "
    "503 TEMPORARILY_UNAVAILABLE (database unavailable, server busy or shutting "
    "down; retry), 507 RESOURCE_EXHAUSTED (a disk is full; retry when freed); "
    "see docs/reliability.md.",
    "content": {"application/json": {"schema": ref("Error")}},
}


def with_default_errors(paths: S) -> S:
    """Every operation's responses with a ``default`` error (the statuses above)."""
    for item in paths.values():
        for verb, operation in item.items():
            if verb in ("get", "post", "put", "patch", "delete") and isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault("default", DEFAULT_ERROR)
    return paths
