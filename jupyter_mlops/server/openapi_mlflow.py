"""The OpenAPI part of MLflow's dataset routes, its UI routes (``handlers/mlflow_ui.py``)
and the ``ajax-api/`` aliases of MLflow's REST routes."""

from __future__ import annotations

from typing import Any

from .openapi_parts import EMPTY, KV_LIST, STR, S, json_body, obj, op, ref

RUN_ID_PARAMS: S = {"run_id": STR, "run_uuid": {**STR, "description": "Deprecated alias."}}


def schemas() -> S:
    """Dataset, DatasetInput and RunInputs (the ``inputs`` of a Run)."""
    return {
        "Dataset": obj(
            {
                "name": STR,
                "digest": {**STR, "maxLength": 36},
                "source_type": {
                    **STR,
                    "maxLength": 36,
                    "description": "`local`, `http`, `s3`, `gs`, `hf`, `code`, ...",
                },
                "source": {**STR, "description": "JSON text: where the data came from."},
                "schema": {
                    **STR,
                    "description": "JSON text (MLflow's `mlflow_colspec`), at most 1 MB.",
                },
                "profile": {
                    **STR,
                    "description": "JSON text (`num_rows`, `num_elements`, ...), at most 1 MB.",
                },
            },
            ["name", "digest", "source_type", "source"],
            "A dataset, identified within its experiment by name and digest.",
        ),
        "DatasetInput": obj(
            {"dataset": ref("Dataset"), "tags": KV_LIST},
            ["dataset"],
            "A dataset a run used; tag `mlflow.data.context` says how (`training`, `eval`, ...).",
        ),
        "RunInputs": obj(
            {
                "dataset_inputs": {"type": "array", "items": ref("DatasetInput")},
                "model_inputs": {"type": "array", "items": obj({"model_id": STR})},
            }
        ),
    }


def dataset_paths() -> S:
    m = "/api/2.0/mlflow"
    return {
        f"{m}/runs/log-inputs": {
            "post": op(
                "Log datasets (and logged models) a run used; the run must be active",
                EMPTY,
                body=json_body(
                    {
                        **RUN_ID_PARAMS,
                        "datasets": {
                            "type": "array",
                            "items": ref("DatasetInput"),
                            "maxItems": 1000,
                        },
                        "models": {"type": "array", "items": obj({"model_id": STR})},
                    },
                    ["run_id"],
                ),
            )
        },
        f"{m}/experiments/search-datasets": {
            "post": op(
                "Which datasets the runs of these experiments used, and in which context",
                obj(
                    {
                        "dataset_summaries": {
                            "type": "array",
                            "items": obj(
                                {"experiment_id": STR, "name": STR, "digest": STR, "context": STR}
                            ),
                        }
                    }
                ),
                body=json_body(
                    {
                        "experiment_ids": {
                            "type": "array",
                            "items": STR,
                            "minItems": 1,
                            "maxItems": 20,
                        }
                    },
                    ["experiment_ids"],
                ),
                errors=("400",),
            )
        },
    }


def with_ajax_aliases(paths: S) -> S:
    """MLflow's routes again under ``/ajax-api/``, the prefix the MLflow UI uses."""
    out = dict(paths)
    for path, item in paths.items():
        if path.startswith(("/api/2.0/", "/api/3.0/")):
            alias = {}
            for key, value in item.items():
                if isinstance(value, dict) and "summary" in value:
                    value = {
                        **value,
                        "summary": f"{value['summary']} (MLflow UI path: same as `{path}`)",
                    }
                alias[key] = value
            out["/ajax-api/" + path[len("/api/") :]] = alias
    return out


def ui_paths() -> S:
    """MLflow's UI routes (``handlers/mlflow_ui.py``)."""
    ref = {"$ref": "#/components/schemas/Error"}
    err = {"content": {"application/json": {"schema": ref}}}
    errors = {
        "400": {"description": "Invalid request", **err},
        "403": {"description": "Not authenticated or not authorized", **err},
        "404": {"description": "Not found", **err},
    }
    string = {"type": "string"}

    def q(
        name: str, required: bool = False, schema: dict[str, Any] | None = None, many: bool = False
    ) -> dict[str, Any]:
        s = schema or string
        p: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": required,
            "schema": {"type": "array", "items": s} if many else s,
        }
        if many:
            p["style"], p["explode"] = "form", True
        return p

    def ok(schema: dict[str, Any], ctype: str = "application/json") -> dict[str, Any]:
        return {"200": {"description": "Success", "content": {ctype: {"schema": schema}}}, **errors}

    binary = {"type": "string", "format": "binary"}
    file_ok = ok(binary, "application/octet-stream")
    metrics = {
        "type": "object",
        "properties": {
            "metrics": {
                "type": "array",
                "items": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Metric"},
                        {"type": "object", "properties": {"run_id": string}},
                    ]
                },
            }
        },
    }
    int64 = {"type": "integer", "format": "int64"}
    tag = "mlflow-ui"
    m = "/ajax-api/2.0/mlflow"
    lm = "/api/2.0/mlflow/logged-models/{model_id}/artifacts"
    model_id = {"name": "model_id", "in": "path", "required": True, "schema": string}
    graphql_op = {
        "summary": "MLflow's GraphQL API (the MLflow UI's): runs, experiments, metric "
        "histories, artifacts, model versions, datasets",
        "description": "MLflow's schema (`mlflowGetRun`, `mlflowSearchRuns`, "
        "`mlflowGetMetricHistoryBulkInterval`, `mlflowListArtifacts`, ...). Answers "
        '`{"data", "errors"}` with status 200; int64 values are strings. At most 10 root '
        "fields and 10 aliases per level, depth 10, 1000 selections. GET takes the same "
        "fields in the query string (`variables` as JSON text).",
        "tags": [tag],
        "parameters": [q("query"), q("variables"), q("operationName")],
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "query": string,
                            "variables": {"type": "object"},
                            "operationName": string,
                        },
                        "required": ["query"],
                    }
                }
            },
        },
        "responses": ok(
            {
                "type": "object",
                "properties": {
                    "data": {"type": "object", "nullable": True},
                    "errors": {"type": "array", "items": string, "nullable": True},
                },
            }
        ),
    }
    return {
        "/version": {
            "get": {
                "summary": "The MLflow version this server's REST API matches",
                "tags": [tag],
                "responses": ok(string, "text/plain"),
            }
        },
        "/get-artifact": {
            "get": {
                "summary": "Download a run's artifact (attachment)",
                "tags": [tag],
                "parameters": [q("run_id"), q("run_uuid"), q("path", True)],
                "responses": file_ok,
            }
        },
        "/model-versions/get-artifact": {
            "get": {
                "summary": "Download a model version's artifact (attachment)",
                "tags": [tag],
                "parameters": [q("name", True), q("version", True), q("path", True)],
                "responses": file_ok,
            }
        },
        f"{m}/metrics/get-history-bulk": {
            "get": {
                "summary": "One metric's points for up to 100 runs",
                "tags": [tag],
                "parameters": [
                    q("run_id", True, many=True),
                    q("metric_key", True),
                    q("max_results", schema={**int64, "maximum": 25000}),
                ],
                "responses": ok(metrics),
            }
        },
        f"{m}/metrics/get-history-bulk-interval": {
            "get": {
                "summary": "One metric's points for up to 100 runs, at most `max_results` per run "
                "(evenly sampled, first and last kept)",
                "tags": [tag],
                "parameters": [
                    q("run_ids", True, many=True),
                    q("metric_key", True),
                    q("start_step", schema=int64),
                    q("end_step", schema=int64),
                    q("max_results", schema={**int64, "minimum": 1, "maximum": 2500}),
                ],
                "responses": ok(metrics),
            }
        },
        f"{m}/upload-artifact": {
            "post": {
                "summary": "Upload one file (raw body, at most 10 MB) into a run's artifacts",
                "tags": [tag],
                "parameters": [q("run_uuid", True), q("path", True)],
                "requestBody": {
                    "required": True,
                    "content": {"application/octet-stream": {"schema": binary}},
                },
                "responses": ok({"type": "object"}),
            }
        },
        "/graphql": {"get": graphql_op, "post": graphql_op},
        "/ajax-api/graphql": {"get": graphql_op, "post": graphql_op},
        f"{lm}/files": {
            "get": {
                "summary": "Download a logged model's file",
                "tags": [tag],
                "parameters": [model_id, q("artifact_file_path", True)],
                "responses": file_ok,
            }
        },
        f"{lm}/directories": {
            "get": {
                "summary": "List a directory of a logged model's files",
                "tags": [tag],
                "parameters": [model_id, q("artifact_directory_path")],
                "responses": ok(
                    {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/FileInfo"},
                            }
                        },
                    }
                ),
            }
        },
    }
