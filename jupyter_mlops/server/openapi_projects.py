"""The OpenAPI part of the MLflow project routes (``handlers/projects.py``):
``api/v1/projects...`` and the schemas of a project and a project run."""

from __future__ import annotations

from typing import Any

from .handlers.projects import ENV_MANAGERS
from .openapi_parts import S, json_body, obj, ok, query, ref

STR: S = {"type": "string"}
N_STR: S = {"type": "string", "nullable": True}


def schemas() -> dict[str, Any]:
    return {
        "ProjectParameter": obj(
            {
                "name": STR,
                "type": {"type": "string", "enum": ["string", "float", "int", "path", "uri"]},
                "default": {"nullable": True, "description": "None: the parameter is required"},
                "line": {"type": "integer", "nullable": True},
            }
        ),
        "ProjectEntryPoint": obj(
            {
                "name": STR,
                "command": STR,
                "line": {"type": "integer", "nullable": True},
                "parameters": {"type": "array", "items": ref("ProjectParameter")},
            }
        ),
        "Project": obj(
            {
                "name": N_STR,
                "file": {
                    **N_STR,
                    "description": "The MLproject file (none: a directory of scripts)",
                },
                "env": {"type": "string", "nullable": True, "enum": ["python", "conda", "docker"]},
                "env_file": N_STR,
                "docker_image": N_STR,
                "entry_points": {"type": "array", "items": ref("ProjectEntryPoint")},
            }
        ),
        "ProjectRun": obj(
            {
                "run_id": {**STR, "description": "The tracked run (MLflow's run id)"},
                "experiment_id": STR,
                "status": {"type": "string", "enum": ["RUNNING", "FINISHED", "FAILED", "KILLED"]},
                "entry_point": STR,
                "command": STR,
                "env_manager": {"type": "string", "enum": list(ENV_MANAGERS)},
                "error": N_STR,
            }
        ),
    }


def _op(summary: str, response: S, errors: tuple[str, ...] = ("400", "404"), **extra: Any) -> S:
    out: S = {"summary": summary, "tags": ["projects"], "responses": {"200": ok(response)}}
    out.update(extra)
    for code in (*errors, "403"):
        out["responses"][code] = {
            "description": {
                "400": "Invalid request (a parameter error names the parameter and the "
                "MLproject line)",
                "403": "Not authenticated or not authorized, or a path outside the root",
                "404": "Not found",
            }[code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return out


def paths() -> dict[str, Any]:
    uri = {
        **STR,
        "description": "A project directory (relative to the server root), a git URL "
        "(`URL#subdir`) or a .zip/.tar.gz archive",
    }
    run_id = {"name": "run_id", "in": "path", "required": True, "schema": STR}
    run_resp = obj({"run": ref("ProjectRun")})
    b = "/api/v1/projects"
    return {
        f"{b}/inspect": {
            "post": _op(
                "A project's entry points and their typed parameters",
                obj({"project": ref("Project")}),
                requestBody=json_body({"uri": uri, "version": STR}, ["uri"]),
            )
        },
        f"{b}/runs": {
            "post": _op(
                "Run an entry point as a tracked run (checked first; the environment is "
                "prepared and the command started in the background)",
                run_resp,
                requestBody=json_body(
                    {
                        "uri": uri,
                        "entry_point": {**STR, "default": "main"},
                        "parameters": {"type": "object", "description": "name: value"},
                        "version": {**STR, "description": "git commit or branch"},
                        "env_manager": {"type": "string", "enum": list(ENV_MANAGERS)},
                        "experiment_name": STR,
                        "experiment_id": STR,
                        "run_name": STR,
                    },
                    ["uri"],
                ),
            )
        },
        f"{b}/runs/{{run_id}}": {
            "parameters": [run_id],
            "get": _op("A project run's state", run_resp),
        },
        f"{b}/runs/{{run_id}}/cancel": {
            "parameters": [run_id],
            "post": _op(
                "Stop the run's command (its process group); the run ends KILLED", run_resp
            ),
        },
        f"{b}/runs/{{run_id}}/log": {
            "parameters": [run_id],
            "get": _text(
                _op(
                    "The run's output from `offset` (headers X-Log-Offset, X-Run-Ended); "
                    "`follow=true` streams until the run ends",
                    STR,
                    parameters=[
                        query("offset", {"type": "integer", "default": 0}),
                        query("follow", {"type": "boolean", "default": False}),
                        query("max_bytes", {"type": "integer", "default": 1048576}),
                        query(
                            "tail",
                            {"type": "integer"},
                            desc="Start this many bytes before the end instead of at `offset`.",
                        ),
                    ],
                )
            ),
        },
    }


def _text(operation: S) -> S:
    operation["responses"]["200"] = {
        "description": "Success",
        "content": {"text/plain": {"schema": STR}},
    }
    return operation
