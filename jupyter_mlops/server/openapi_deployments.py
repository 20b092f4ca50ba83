"""The OpenAPI part of the deployment routes (``handlers/deployments.py``):
``api/v1/deployments/...`` and the schema of a deployment."""

from __future__ import annotations

import functools
from typing import Any

from .handlers.deployments import INVOKE_PATHS, MAX_LOG_TAIL
from .handlers.pipelines import BODY_LIMIT
from .openapi_parts import INT64, STR, path_param, ref, service_op

_STATUSES = ["STARTING", "READY", "UPDATING", "RESTARTING", "FAILED", "STOPPED"]


def schemas() -> dict[str, Any]:
    n_s = {**STR, "nullable": True}
    hist = {
        "type": "object",
        "description": "Latency of the scoring requests (every scoring endpoint): "
        "[upper bound in seconds, cumulative count] pairs, finite bounds ascending "
        "(count is the +Inf bucket)",
        "properties": {
            "buckets": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}, "minItems": 2},
            },
            "sum": {"type": "number"},
            "count": {"type": "integer"},
        },
    }
    return {
        "DeploymentTraffic": {
            "type": "object",
            "properties": {
                "version": n_s,
                "model_uri": STR,
                "percent": {"type": "integer", "minimum": 0, "maximum": 100},
                "replicas": {"type": "integer"},
            },
        },
        "DeploymentMetrics": {
            "type": "object",
            "description": "Counters since each process started: compute rates from "
            "consecutive scrapes (a decrease is a restart)",
            "properties": {
                "name": STR,
                "scraped_at": {**INT64, "description": "Milliseconds since the epoch"},
                "versions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "version": n_s,
                            "model_uri": n_s,
                            "traffic_percent": {"type": "integer"},
                            "replicas": {"type": "integer"},
                            "scraped_replicas": {
                                "type": "integer",
                                "description": "How many of them answered",
                            },
                            "requests_total": {"type": "integer"},
                            "errors_total": {"type": "integer"},
                            "latency_seconds": hist,
                        },
                    },
                },
            },
        },
        "Deployment": {
            "type": "object",
            "properties": {
                "name": STR,
                "model_uri": {
                    **STR,
                    "description": "As given: a version, stage or alias (models:/m@champion)",
                },
                "target": STR,
                "replicas": {"type": "integer"},
                "resources": {"type": "object", "additionalProperties": STR},
                "follow_alias": {"type": "boolean"},
                "status": {"type": "string", "enum": _STATUSES},
                "reason": n_s,
                "url": {
                    **n_s,
                    "description": "The stable address: MLflow's /invocations and "
                    "V2's /v2/models/<name>/infer",
                },
                "model_name": n_s,
                "model_version": n_s,
                "served_uri": n_s,
                "generation": {
                    "type": "integer",
                    "description": "Counts the requests that started a rollout (create, "
                    "update, rollback, promote): wait until observed_generation reaches "
                    "the one a request answered",
                },
                "observed_generation": {
                    "type": "integer",
                    "description": "The last rollout that ended (succeeded or failed)",
                },
                "rollout_error": {
                    **n_s,
                    "description": "Why the rollout observed_generation failed (null: "
                    "it succeeded)",
                },
                "canary": {
                    "type": "object",
                    "nullable": True,
                    "description": "The version a canary rollout serves "
                    "beside the served one, and its share (promote or rollback ends it)",
                    "properties": {
                        "version": n_s,
                        "model_uri": STR,
                        "percent": {"type": "integer"},
                    },
                },
                "traffic": {
                    "type": "array",
                    "description": "The versions served now and their share of the requests "
                    "(two during a canary rollout)",
                    "items": ref("DeploymentTraffic"),
                },
                "created_time": INT64,
                "updated_time": INT64,
                "processes": {
                    "type": "object",
                    "description": "local target: pids of the router and the scoring "
                    "processes, and of the warm spare (spare)",
                },
                "ports": {
                    "type": "object",
                    "description": "local target: their ports (a scoring "
                    "process' own port skips the router, not its address' stability)",
                },
                "history": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "seq": {"type": "integer"},
                            "action": STR,
                            "model_uri": STR,
                            "model_name": n_s,
                            "model_version": n_s,
                            "start_time": INT64,
                            "end_time": {**INT64, "nullable": True},
                        },
                    },
                },
            },
        },
    }


def paths() -> dict[str, Any]:
    op = functools.partial(
        service_op,
        "deployments",
        texts={
            "409": "A rollout of this deployment is in progress",
            "503": "The deployment did not answer",
        },
        body_desc=f"At most {BODY_LIMIT} bytes.",
    )
    name = [path_param("name")]
    dep = {"type": "object", "properties": {"deployment": ref("Deployment")}}
    spec = {
        "model_uri": STR,
        "replicas": {"type": "integer", "minimum": 1, "maximum": 16},
        "resources": {"type": "object"},
        "follow_alias": {"type": "boolean"},
    }
    patch_spec = {
        **spec,
        "canary_percent": {
            "type": "integer",
            "minimum": 1,
            "maximum": 99,
            "description": "The new model_uri gets this share of the "
            "requests beside the served version, until promote or rollback",
        },
    }
    b = "/api/v1/deployments"
    return {
        b: {
            "get": op(
                "Deployments and the targets they can go to",
                {
                    "type": "object",
                    "properties": {
                        "deployments": {"type": "array", "items": ref("Deployment")},
                        "targets": {"type": "array", "items": {"type": "object"}},
                    },
                },
                errors=(),
            ),
            "post": op(
                "Create a deployment (answers at once, status STARTING; READY when it serves)",
                dep,
                body={"name": STR, "target": {**STR, "default": "local"}, **spec},
            ),
        },
        f"{b}/{{name}}": {
            "parameters": name,
            "get": op("A deployment with the history of the versions it served", dep),
            "patch": op(
                "Change the model (a rollout with no failed request), replicas, "
                "resources or alias following",
                dep,
                body=patch_spec,
                errors=("400", "404", "409"),
            ),
            "delete": op("Stop and delete a deployment", {"type": "object"}),
        },
        f"{b}/{{name}}/rollback": {
            "parameters": name,
            "post": op(
                "Serve the previously served version again (stops following the alias); "
                "during a canary rollout: drop the canary",
                dep,
                errors=("400", "404", "409"),
            ),
        },
        f"{b}/{{name}}/promote": {
            "parameters": name,
            "post": op(
                "Give the canary's version all the traffic",
                dep,
                errors=("400", "404", "409"),
            ),
        },
        f"{b}/{{name}}/metrics": {
            "parameters": name,
            "get": op(
                "The deployment's scoring metrics scraped now, per serving version",
                ref("DeploymentMetrics"),
                errors=("404",),
            ),
        },
        f"{b}/{{name}}/logs": {
            "parameters": name,
            "get": op(
                "The tail of the scoring and router processes' logs",
                STR,
                params=[
                    {
                        "name": "tail",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "default": 65536, "maximum": MAX_LOG_TAIL},
                    }
                ],
                content="text/plain",
            ),
        },
        f"{b}/{{name}}/invoke": {
            "parameters": name,
            "post": op(
                "Send one request to the deployment's scoring route and relay its answer, "
                "whatever its status (the Models panel's Try it box)",
                {
                    "type": "object",
                    "properties": {
                        "status_code": {"type": "integer"},
                        "content_type": STR,
                        "body": {**STR, "description": "The deployment's answer as text"},
                    },
                },
                body={
                    "protocol": {**STR, "enum": list(INVOKE_PATHS), "default": "mlflow"},
                    "body": {
                        "type": "object",
                        "description": "The request: MLflow's /invocations JSON "
                        "or V2's inference request",
                    },
                },
                errors=("400", "404", "503"),
            ),
        },
    }
