"""The OpenAPI part of the training job routes (``handlers/jobs.py``): ``api/v1/jobs...``
and the schemas of jobs and their ranks."""

from __future__ import annotations

import functools
from typing import Any

from .handlers.jobs import JOB_STATUSES
from .openapi_parts import optional_query, path_param, ref, service_op


def schemas() -> dict[str, Any]:
    s: dict[str, Any] = {"type": "string"}
    i: dict[str, Any] = {"type": "integer", "format": "int64"}
    n_i = {**i, "nullable": True}
    n_s = {**s, "nullable": True}
    obj: dict[str, Any] = {"type": "object"}
    return {
        "TrainingRank": {
            "type": "object",
            "properties": {
                "rank": {"type": "integer"},
                "node": {"type": "integer"},
                "local_rank": {"type": "integer"},
                "status": {
                    "type": "string",
                    "enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"],
                },
                "pid": {"type": "integer", "nullable": True},
                "exit_code": {"type": "integer", "nullable": True},
                "start_time": n_i,
                "end_time": n_i,
                "duration_ms": n_i,
                "error": n_s,
                "has_log": {"type": "boolean"},
            },
        },
        "TrainingJob": {
            "type": "object",
            "properties": {
                "job_id": s,
                "run_id": {**s, "description": "The job's tracked run (= job_id)"},
                "name": s,
                "status": {"type": "string", "enum": list(JOB_STATUSES)},
                "reason": n_s,
                "framework": {"type": "string", "enum": ["pytorch", "tensorflow", "generic"]},
                "nodes": {"type": "integer"},
                "procs_per_node": {"type": "integer"},
                "path": n_s,
                "experiment_id": s,
                "parameters": obj,
                "attempt": {"type": "integer", "description": "1 + restarts so far"},
                "created_time": i,
                "start_time": n_i,
                "end_time": n_i,
                "duration_ms": n_i,
                "target": s,
                "spec": obj,
                "progress": {
                    "type": "object",
                    "properties": {"counts": obj, "total": {"type": "integer"}},
                },
                "ranks": {"type": "array", "items": {"$ref": "#/components/schemas/TrainingRank"}},
            },
        },
    }


def paths() -> dict[str, Any]:
    op = functools.partial(service_op, "jobs", texts={"409": "Conflict with the job's state"})
    q = optional_query

    s: dict[str, Any] = {"type": "string"}
    obj: dict[str, Any] = {"type": "object"}
    source = {
        "path": {**s, "description": "A *.job.yaml file, relative to the server root."},
        "text": {**s, "description": "Job YAML (instead of `path`)."},
        "spec": {**obj, "description": "The job as an object (the YAML file's fields)."},
        "base_dir": {
            **s,
            "description": "Where relative paths of `text`/`spec` resolve "
            "(inside the server root; default: the root).",
        },
    }
    job_resp = {"type": "object", "properties": {"job": ref("TrainingJob")}}
    b = "/api/v1/jobs"
    return {
        b: {
            "get": op(
                "List training jobs, newest first",
                {
                    "type": "object",
                    "properties": {
                        "jobs": {"type": "array", "items": ref("TrainingJob")},
                        "next_offset": {"type": "integer"},
                    },
                },
                params=[
                    q("status", {"type": "string", "enum": list(JOB_STATUSES)}),
                    q("name", s),
                    q("max_results", {"type": "integer", "default": 100, "maximum": 1000}),
                    q("offset", {"type": "integer", "default": 0}),
                ],
                errors=("400",),
            ),
            "post": op(
                "Submit a job (validated first: 400 with `issues` naming file, line and field)",
                job_resp,
                body={
                    **source,
                    "parameters": {
                        **obj,
                        "description": "name: value (strings are parsed to declared types)",
                    },
                    "run_name": s,
                    "target": {**s, "default": "local"},
                    "source_tags": {
                        **obj,
                        "description": "mlops.source.* tags of where it was submitted from",
                    },
                },
                errors=("400", "404"),
            ),
        },
        f"{b}/validate": {
            "post": op(
                "Validate a job; issues name file, line and field",
                {
                    "type": "object",
                    "properties": {
                        "valid": {"type": "boolean"},
                        "issues": {"type": "array", "items": ref("PipelineIssue")},
                        "job": obj,
                    },
                },
                body=source,
                errors=("400",),
            )
        },
        f"{b}/targets": {
            "get": op(
                "Where jobs can run",
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
                                    "kind": s,
                                    "default": {"type": "boolean"},
                                    "gpus": {"type": "array", "items": s},
                                    "max_ranks": {"type": "integer"},
                                },
                            },
                        }
                    },
                },
                errors=(),
            )
        },
        f"{b}/{{job_id}}": {
            "parameters": [path_param("job_id")],
            "get": op("A job with the state of every rank", job_resp),
        },
        f"{b}/{{job_id}}/cancel": {
            "parameters": [path_param("job_id")],
            "post": op(
                "Cancel: every rank's process tree is stopped (SIGTERM, then SIGKILL)",
                job_resp,
                errors=("400", "404", "409"),
            ),
        },
        f"{b}/{{job_id}}/ranks/{{rank}}/log": {
            "parameters": [path_param("job_id"), path_param("rank")],
            "get": op(
                "A rank's log from `offset` (headers X-Log-Offset, X-Job-Ended); "
                "`follow=true` streams until the job ends",
                s,
                params=[
                    q("offset", {"type": "integer", "default": 0}),
                    q("follow", {"type": "boolean", "default": False}),
                    q("max_bytes", {"type": "integer", "default": 1048576}),
                    q(
                        "tail",
                        {"type": "integer"},
                        "Start this many bytes before the end instead of at `offset`.",
                    ),
                ],
                content="text/plain",
            ),
        },
    }
