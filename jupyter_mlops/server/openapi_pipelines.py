"""The OpenAPI part of the pipeline routes (``handlers/pipelines.py``):
``api/v1/pipelines/...`` and the schemas of runs, steps, schedules and issues."""

from __future__ import annotations

import functools
from typing import Any

from .handlers.pipelines import RUN_STATUSES
from .openapi_parts import optional_query, path_param, ref, service_op


def schemas() -> dict[str, Any]:
    s: dict[str, Any] = {"type": "string"}
    i: dict[str, Any] = {"type": "integer", "format": "int64"}
    n_i = {**i, "nullable": True}
    n_s = {**s, "nullable": True}
    obj: dict[str, Any] = {"type": "object"}
    return {
        "PipelineIssue": {
            "type": "object",
            "properties": {
                "message": s,
                "field": s,
                "file": n_s,
                "line": {"type": "integer", "nullable": True},
                "column": {"type": "integer", "nullable": True},
                "code": s,
            },
            "description": "One validation problem: file, line and field it concerns.",
        },
        "PipelineStep": {
            "type": "object",
            "properties": {
                "name": s,
                "kind": {"type": "string", "enum": ["notebook", "script", "train"]},
                "path": s,
                "status": {
                    "type": "string",
                    "enum": [
                        "PENDING",
                        "RUNNING",
                        "SUCCEEDED",
                        "FAILED",
                        "CANCELED",
                        "SKIPPED",
                        "CACHED",
                    ],
                },
                "attempt": {"type": "integer"},
                "depends_on": {"type": "array", "items": s},
                "start_time": n_i,
                "end_time": n_i,
                "duration_ms": n_i,
                "tracking_run_id": n_s,
                "error": n_s,
                "cached_from": n_s,
                "has_log": {"type": "boolean"},
                "has_notebook": {"type": "boolean"},
            },
        },
        "PipelineRun": {
            "type": "object",
            "properties": {
                "run_id": s,
                "name": s,
                "status": {"type": "string", "enum": list(RUN_STATUSES)},
                "reason": n_s,
                "path": n_s,
                "experiment_id": s,
                "parameters": obj,
                "created_time": i,
                "start_time": n_i,
                "end_time": n_i,
                "duration_ms": n_i,
                "target": {**s, "description": "`local` or a configured Kubeflow target"},
                "external_url": {
                    **n_s,
                    "description": "The run in the Kubeflow Pipelines UI "
                    "(Kubeflow targets with a `ui_url`).",
                },
                "schedule_id": n_s,
                "retry_of": n_s,
                "progress": {
                    "type": "object",
                    "properties": {
                        "done": {"type": "integer"},
                        "total": {"type": "integer"},
                        "counts": obj,
                    },
                },
                "steps": {"type": "array", "items": {"$ref": "#/components/schemas/PipelineStep"}},
            },
            "description": "`run_id` is also the parent tracked run; each step's "
            "`tracking_run_id` is its child run.",
        },
        "PipelineSchedule": {
            "type": "object",
            "properties": {
                "schedule_id": s,
                "name": s,
                "pipeline_path": s,
                "parameters": obj,
                "cron": s,
                "timezone": s,
                "paused": {"type": "boolean"},
                "next_fire_time": n_i,
                "last_fire_time": n_i,
                "last_run_id": n_s,
                "last_error": n_s,
                "created_time": i,
                "target": {
                    **s,
                    "description": "Where its runs go: `local` or a configured Kubeflow target",
                },
            },
        },
    }


def paths() -> dict[str, Any]:
    op = functools.partial(
        service_op,
        "pipelines",
        texts={"409": "Conflict with the run's state", "503": "A Kubeflow target is unreachable"},
    )
    q = optional_query

    s: dict[str, Any] = {"type": "string"}
    obj: dict[str, Any] = {"type": "object"}
    source = {
        "path": {**s, "description": "Pipeline file, relative to the server root."},
        "text": {**s, "description": "Pipeline YAML (instead of `path`)."},
    }
    params_body = {
        "parameters": {
            **obj,
            "description": "name: value (strings are parsed to the declared type).",
        }
    }
    run_resp = {"type": "object", "properties": {"run": ref("PipelineRun")}}
    sched_resp = {"type": "object", "properties": {"schedule": ref("PipelineSchedule")}}
    b = "/api/v1/pipelines"
    return {
        f"{b}/validate": {
            "post": op(
                "Validate a pipeline; issues name file, line and field",
                {
                    "type": "object",
                    "properties": {
                        "valid": {"type": "boolean"},
                        "issues": {"type": "array", "items": ref("PipelineIssue")},
                        "pipeline": obj,
                        "path": s,
                        "order": {"type": "array", "items": s},
                    },
                },
                body=source,
                errors=("400",),
            )
        },
        f"{b}/files": {
            "get": op(
                "Pipeline files (*.pipeline.yaml) under the server root",
                {"type": "object", "properties": {"files": {"type": "array", "items": s}}},
                errors=(),
            )
        },
        f"{b}/targets": {
            "get": op(
                "Where runs can go: `local`, then the configured Kubeflow Pipelines targets",
                {
                    "type": "object",
                    "properties": {
                        "targets": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": s,
                                    "display_name": s,
                                    "kind": {"type": "string", "enum": ["local", "kubeflow"]},
                                    "default": {"type": "boolean"},
                                    "ui_url": {**s, "nullable": True},
                                    "namespace": {**s, "nullable": True},
                                    "parallelism": {"type": "integer"},
                                },
                            },
                        }
                    },
                },
                errors=(),
            )
        },
        f"{b}/runs": {
            "get": op(
                "List pipeline runs, newest first",
                {
                    "type": "object",
                    "properties": {
                        "runs": {"type": "array", "items": ref("PipelineRun")},
                        "next_offset": {"type": "integer"},
                    },
                },
                params=[
                    q("status", {"type": "string", "enum": list(RUN_STATUSES)}),
                    q("path", s, "Runs of this pipeline file."),
                    q("name", s),
                    q("schedule_id", s),
                    q("max_results", {"type": "integer", "default": 100, "maximum": 1000}),
                    q("offset", {"type": "integer", "default": 0}),
                ],
                errors=("400",),
            ),
            "post": op(
                "Submit a run (validated first; 400 with `issues` when invalid; an "
                "unknown target is a 400 naming the configured ones; a refusal by "
                "Kubeflow keeps its HTTP class and names the target)",
                run_resp,
                body={
                    **source,
                    **params_body,
                    "run_name": s,
                    "target": {
                        **s,
                        "default": "local",
                        "description": "`local` or a name from `GET targets`",
                    },
                },
                errors=("400", "404", "503"),
            ),
        },
        f"{b}/runs/{{run_id}}": {
            "parameters": [path_param("run_id")],
            "get": op("A run with per-step status, attempts and timings", run_resp),
        },
        f"{b}/runs/{{run_id}}/cancel": {
            "parameters": [path_param("run_id")],
            "post": op(
                "Cancel: running steps' process trees are killed (Kubeflow runs are "
                "terminated there and stay CANCELING until KFP says CANCELED)",
                run_resp,
                errors=("400", "404", "409"),
            ),
        },
        f"{b}/runs/{{run_id}}/retry": {
            "parameters": [path_param("run_id")],
            "post": op(
                "A new run reusing the outputs of the steps that succeeded",
                run_resp,
                body=params_body,
                errors=("400", "404", "409"),
            ),
        },
        f"{b}/runs/{{run_id}}/steps/{{step}}/log": {
            "parameters": [path_param("run_id"), path_param("step")],
            "get": op(
                "A step's log from `offset` (headers X-Log-Offset, X-Step-Ended); "
                "`follow=true` streams until the step ends",
                s,
                params=[
                    q("offset", {"type": "integer", "default": 0}),
                    q("follow", {"type": "boolean", "default": False}),
                    q("max_bytes", {"type": "integer", "default": 1048576}),
                    q(
                        "tail",
                        {"type": "integer"},
                        "Start this many bytes before the "
                        "end instead of at `offset` (a log tail; with `follow` too).",
                    ),
                ],
                content="text/plain",
            ),
        },
        f"{b}/runs/{{run_id}}/steps/{{step}}/notebook": {
            "parameters": [path_param("run_id"), path_param("step")],
            "get": op("The executed notebook of a step (nbformat JSON)", obj),
        },
        f"{b}/schedules": {
            "get": op(
                "Recurring runs",
                {
                    "type": "object",
                    "properties": {
                        "schedules": {"type": "array", "items": ref("PipelineSchedule")}
                    },
                },
                errors=(),
            ),
            "post": op(
                "Create a recurring run (cron in a time zone)",
                sched_resp,
                body={
                    "path": s,
                    "cron": {**s, "example": "0 6 * * 1-5"},
                    "timezone": {**s, "default": "UTC"},
                    "name": s,
                    "paused": {"type": "boolean"},
                    "target": {
                        **s,
                        "default": "local",
                        "description": "`local` or a name from "
                        "`GET targets` (unknown: 400 naming the configured ones)",
                    },
                    **params_body,
                },
                errors=("400", "404"),
            ),
        },
        f"{b}/schedules/{{schedule_id}}": {
            "parameters": [path_param("schedule_id")],
            "get": op("A schedule with its next fire time", sched_resp),
            "patch": op(
                "Pause/resume, change name, cron, time zone, target or parameters "
                "(the parameters replace the stored ones)",
                sched_resp,
                body={
                    "paused": {"type": "boolean"},
                    "name": s,
                    "cron": s,
                    "timezone": s,
                    "target": s,
                    **params_body,
                },
            ),
            "delete": op("Delete a schedule (its runs stay)", {"type": "object"}),
        },
        f"{b}/schedules/{{schedule_id}}/run": {
            "parameters": [path_param("schedule_id")],
            "post": op("Run a schedule now", run_resp),
        },
    }
