"""The OpenAPI part of MLflow 3's GenAI routes: tracing (``handlers/traces.py``: traces v2
and v3, assessments, OTLP ingest, the UI's ``get-trace-artifact``) and evaluation
(``handlers/evaluation.py``: evaluation datasets, scorers)."""

from __future__ import annotations

from typing import Any

from .openapi_parts import EMPTY, INT64, STR, S, json_body, obj, op, query, ref

TRACE_INFO: S = obj(
    {
        "trace_id": STR,
        "trace_location": {"type": "object"},
        "request_time": {**STR, "description": "RFC 3339"},
        "execution_duration": {**STR, "description": "protobuf Duration, e.g. `1.250s`"},
        "state": {**STR, "enum": ["STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS"]},
        "request_preview": STR,
        "response_preview": STR,
        "client_request_id": STR,
        "trace_metadata": {"type": "object", "additionalProperties": STR},
        "tags": {"type": "object", "additionalProperties": STR},
        "assessments": {"type": "array", "items": {"type": "object"}},
    },
    desc="MLflow's TraceInfoV3",
)
TRACE_V2: S = {"type": "object", "description": "MLflow's v2 TraceInfo (`request_id`, ...)"}
ASSESSMENT: S = {"type": "object", "description": "MLflow's Assessment (feedback or expectation)"}
SEARCH: S = {
    "filter": STR,
    "max_results": INT64,
    "order_by": {"type": "array", "items": STR},
    "page_token": STR,
}


def _path(params: list[str], operation: S) -> S:
    operation["parameters"] = [
        {"name": n, "in": "path", "required": True, "schema": STR} for n in params
    ] + operation.get("parameters", [])
    return operation


def paths() -> dict[str, Any]:
    v2, v3 = "/api/2.0/mlflow/traces", "/api/3.0/mlflow/traces"
    info_v3 = obj({"trace": obj({"trace_info": TRACE_INFO})})
    full = obj({"trace": obj({"trace_info": TRACE_INFO, "spans": {"type": "array"}})})
    tag_ops = {
        "patch": _path(
            ["trace_id"],
            op("Set a trace tag", EMPTY, body=json_body({"key": STR, "value": STR}, ["key"])),
        ),
        "delete": _path(
            ["trace_id"], op("Delete a trace tag", EMPTY, body=json_body({"key": STR}, ["key"]))
        ),
    }
    delete_body = json_body(
        {
            "experiment_id": STR,
            "max_timestamp_millis": INT64,
            "max_traces": INT64,
            "request_ids": {"type": "array", "items": STR},
        },
        ["experiment_id"],
    )
    link = op(
        "Link traces (at most 100) to a run",
        EMPTY,
        body=json_body({"trace_ids": {"type": "array", "items": STR}, "run_id": STR}),
    )
    one_assessment = obj({"assessment": ASSESSMENT})
    return {
        v3: {
            "post": op(
                "Create or complete a trace (MLflow's StartTraceV3, sent when it ends)",
                info_v3,
                body=json_body({"trace": obj({"trace_info": TRACE_INFO})}, ["trace"]),
            )
        },
        f"{v3}/get": {
            "get": op(
                "A trace with its spans (OTLP JSON)",
                full,
                query=[query("trace_id", STR, True), query("allow_partial", {"type": "boolean"})],
            )
        },
        f"{v3}/batchGet": {
            "get": op(
                "Traces with their spans",
                obj({"traces": {"type": "array"}}),
                query=[query("trace_ids", {"type": "array", "items": STR}, True)],
            ),
            "post": op(
                "Traces with their spans",
                obj({"traces": {"type": "array"}}),
                body=json_body({"trace_ids": {"type": "array", "items": STR}}),
            ),
        },
        f"{v3}/search": {
            "post": op(
                "Search traces: MLflow's trace filter grammar and order_by (docs/tracing.md)",
                obj({"traces": {"type": "array", "items": TRACE_INFO}, "next_page_token": STR}),
                body=json_body({"locations": {"type": "array"}, **SEARCH}, ["locations"]),
            ),
            "get": op(
                "Search traces (query form)",
                obj({"traces": {"type": "array", "items": TRACE_INFO}, "next_page_token": STR}),
                query=[query("locations", {"type": "array", "items": STR})],
            ),
        },
        f"{v3}/metrics": {
            "post": op(
                "Trace metrics (`trace_count`, by `trace_status`)",
                obj({"data_points": {"type": "array"}}),
                body=json_body(
                    {
                        "experiment_ids": {"type": "array", "items": STR},
                        "metric_name": STR,
                        "dimensions": {"type": "array", "items": STR},
                    }
                ),
            )
        },
        f"{v3}/calculate-filter-correlation": {
            "post": op(
                "Counts of traces matching two filters, both and all, with their NPMI",
                obj(
                    {
                        "npmi": {"type": "number"},
                        "npmi_smoothed": {"type": "number"},
                        "filter1_count": INT64,
                        "filter2_count": INT64,
                        "joint_count": INT64,
                        "total_count": INT64,
                    }
                ),
                body=json_body(
                    {
                        "experiment_ids": {"type": "array", "items": STR},
                        "filter_string1": STR,
                        "filter_string2": STR,
                        "base_filter": STR,
                    },
                    ["experiment_ids", "filter_string1", "filter_string2"],
                ),
            )
        },
        f"{v3}/link-to-run": {"post": link},
        f"{v3}/delete-traces": {
            "post": op(
                "Delete traces by ids or by time", obj({"traces_deleted": INT64}), body=delete_body
            )
        },
        f"{v3}/{{trace_id}}/assessments": {
            "post": _path(
                ["trace_id"],
                op(
                    "Create an assessment",
                    one_assessment,
                    body=json_body({"assessment": ASSESSMENT}),
                ),
            )
        },
        f"{v3}/{{trace_id}}/assessments/{{assessment_id}}": {
            "get": _path(["trace_id", "assessment_id"], op("An assessment", one_assessment)),
            "patch": _path(
                ["trace_id", "assessment_id"],
                op(
                    "Update an assessment (`update_mask`)",
                    one_assessment,
                    body=json_body({"assessment": ASSESSMENT, "update_mask": STR}),
                ),
            ),
            "delete": _path(
                ["trace_id", "assessment_id"],
                op("Delete an assessment (an overridden one is valid again)", EMPTY),
            ),
        },
        f"{v3}/{{trace_id}}/tags": tag_ops,
        f"{v3}/{{trace_id}}": {"get": _path(["trace_id"], op("A trace's info", info_v3))},
        v2: {
            "post": op(
                "Start a trace (v2)",
                obj({"trace_info": TRACE_V2}),
                body=json_body({"experiment_id": STR, "timestamp_ms": INT64}),
            ),
            "get": op(
                "Search traces (v2)",
                obj({"traces": {"type": "array", "items": TRACE_V2}, "next_page_token": STR}),
                query=[query("experiment_ids", {"type": "array", "items": STR}, True)],
            ),
        },
        f"{v2}/delete-traces": {
            "post": op("Delete traces (v2)", obj({"traces_deleted": INT64}), body=delete_body)
        },
        f"{v2}/link-to-run": {"post": link},
        f"{v2}/{{request_id}}/info": {
            "get": _path(["request_id"], op("A trace's info (v2)", obj({"trace_info": TRACE_V2})))
        },
        f"{v2}/{{trace_id}}/tags": tag_ops,
        f"{v2}/{{request_id}}": {
            "patch": _path(
                ["request_id"],
                op(
                    "End a trace (v2)",
                    obj({"trace_info": TRACE_V2}),
                    body=json_body({"timestamp_ms": INT64, "status": STR}),
                ),
            )
        },
        "/api/v1/traces/log-bulk": {
            "post": op(
                "Whole traces at once (the jupyter-mlops client's batches): "
                '`{"traces": [{"info": TraceInfoV3, "spans": [MLflow span JSON]}]}`',
                EMPTY,
                body=json_body(
                    {"traces": {"type": "array", "items": {"type": "object"}}}, ["traces"]
                ),
                tag="v1",
            )
        },
        "/v1/traces": {
            "post": {
                "summary": "OTLP/HTTP span ingest (protobuf or JSON ExportTraceServiceRequest); "
                "header `x-mlflow-experiment-id` names the experiment",
                "tags": ["mlflow"],
                "parameters": [
                    {
                        "name": "x-mlflow-experiment-id",
                        "in": "header",
                        "required": True,
                        "schema": STR,
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-protobuf": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "200": {"description": "Stored (an empty ExportTraceServiceResponse)"},
                    "400": {"description": "Malformed payload, nothing stored"},
                    "403": {"description": "Not authenticated or not authorized"},
                },
            }
        },
        "/ajax-api/2.0/mlflow/get-trace-artifact": {
            "get": op(
                'A trace\'s data (`{"spans": [...]}`) as the attachment traces.json',
                {"type": "object"},
                query=[query("request_id", STR, True)],
            )
        },
        "/static-files/lib/notebook-trace-renderer/index.html": {
            "get": {
                "summary": "The traces MLflow's client displays in a notebook (its <iframe>), "
                "as an HTML page",
                "tags": ["mlflow"],
                "parameters": [
                    query("trace_id", {"type": "array", "items": STR}),
                    query("experiment_id", STR),
                    query("version", STR),
                ],
                "responses": {
                    "200": {
                        "description": "The traces' waterfalls (unknown ids say so)",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "400": {
                        "description": "Invalid request (a URL over the length limit)",
                        "content": {"application/json": {"schema": ref("Error")}},
                    },
                    "403": {"description": "Not authenticated or not authorized"},
                },
            }
        },
    }


DATASET: S = {"type": "object", "description": "MLflow's evaluation Dataset (`tags` is JSON text)"}
SCORER: S = obj(
    {
        "experiment_id": STR,
        "scorer_name": STR,
        "scorer_version": INT64,
        "serialized_scorer": STR,
        "creation_time": INT64,
        "scorer_id": STR,
    }
)
ARRAY_STR: S = {"type": "array", "items": STR}


def evaluation_paths() -> dict[str, Any]:
    d, s = "/api/3.0/mlflow/datasets", "/api/3.0/mlflow/scorers"
    one = f"{d}/{{dataset_id}}"
    ds = obj({"dataset": DATASET})
    exp_body = json_body({"experiment_ids": ARRAY_STR})
    name_q = [query("experiment_id", STR, True), query("name", STR, True)]
    return {
        f"{d}/create": {
            "post": op(
                "Create an evaluation dataset",
                ds,
                body=json_body({"name": STR, "experiment_ids": ARRAY_STR, "tags": STR}, ["name"]),
            )
        },
        f"{d}/search": {
            "post": op(
                "Search evaluation datasets (filter: name, created_time, last_update_time, "
                "tags.<key>)",
                obj({"datasets": {"type": "array", "items": DATASET}, "next_page_token": STR}),
                body=json_body(
                    {
                        "experiment_ids": ARRAY_STR,
                        "filter_string": STR,
                        **{k: v for k, v in SEARCH.items() if k != "filter"},
                    }
                ),
            ),
            "get": op(
                "Search evaluation datasets (query form)",
                obj({"datasets": {"type": "array", "items": DATASET}, "next_page_token": STR}),
                query=[query("filter_string", STR)],
            ),
        },
        f"{one}/tags": {
            "patch": _path(
                ["dataset_id"],
                op("Set dataset tags (merged)", EMPTY, body=json_body({"tags": STR})),
            )
        },
        f"{one}/tags/{{key}}": {
            "delete": _path(["dataset_id", "key"], op("Delete a dataset tag", EMPTY))
        },
        f"{one}/records": {
            "post": _path(
                ["dataset_id"],
                op(
                    "Upsert records (a JSON list as text; a record is identified by its inputs)",
                    obj({"inserted_count": INT64, "updated_count": INT64}),
                    body=json_body({"records": STR}, ["records"]),
                ),
            ),
            "get": _path(
                ["dataset_id"],
                op(
                    "A page of records (JSON text)",
                    obj({"records": STR, "next_page_token": STR}),
                    query=[query("max_results", INT64), query("page_token", STR)],
                ),
            ),
            "delete": _path(
                ["dataset_id"],
                op(
                    "Delete records",
                    obj({"deleted_count": INT64}),
                    body=json_body({"dataset_record_ids": ARRAY_STR}),
                ),
            ),
        },
        f"{one}/experiment-ids": {
            "get": _path(["dataset_id"], op("Its experiments", obj({"experiment_ids": ARRAY_STR})))
        },
        f"{one}/add-experiments": {
            "post": _path(["dataset_id"], op("Add it to experiments", ds, body=exp_body))
        },
        f"{one}/remove-experiments": {
            "post": _path(["dataset_id"], op("Remove it from experiments", ds, body=exp_body))
        },
        one: {
            "get": _path(["dataset_id"], op("An evaluation dataset", ds)),
            "delete": _path(["dataset_id"], op("Delete it and its records", EMPTY)),
        },
        f"{s}/register": {
            "post": op(
                "Register a scorer (a new version of its name)",
                obj({"version": INT64, "scorer_id": STR, "name": STR}),
                body=json_body(
                    {"experiment_id": STR, "name": STR, "serialized_scorer": STR},
                    ["experiment_id", "name", "serialized_scorer"],
                ),
            )
        },
        f"{s}/list": {
            "get": op(
                "The latest version of each scorer",
                obj({"scorers": {"type": "array", "items": SCORER}}),
                query=[query("experiment_id", STR, True)],
            )
        },
        f"{s}/versions": {
            "get": op(
                "Every version of a scorer",
                obj({"scorers": {"type": "array", "items": SCORER}}),
                query=name_q,
            )
        },
        f"{s}/get": {
            "get": op(
                "A scorer (latest version unless `version`)",
                obj({"scorer": SCORER}),
                query=[*name_q, query("version", INT64)],
            )
        },
        f"{s}/delete": {
            "delete": op(
                "Delete a scorer version (every version without `version`)",
                EMPTY,
                body=json_body({"experiment_id": STR, "name": STR, "version": INT64}),
            )
        },
    }
