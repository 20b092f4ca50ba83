"""The OpenAPI part of a team server's hub routes and its notifications (``handlers/hubops.py``)."""

from __future__ import annotations

from typing import Any

from .openapi_parts import BOOL, INT64, STR, json_body, obj, op, optional_query, query, service_op

S = dict[str, Any]


def paths() -> S:
    holder = obj(
        {
            "user": STR,
            "kind": {"type": "string", "enum": ["notebook", "job"]},
            "name": {**STR, "description": "The server's name ('' = default) or the job's"},
            "gpus": {"type": "integer"},
            "since": {"type": "number", "description": "Seconds since the epoch"},
        }
    )
    team = obj(
        {
            "team": STR,
            "gpu_quota": {"type": "integer"},
            "gpus": {"type": "integer", "description": "GPUs in use (servers and jobs)"},
            "max_gpus_per_user": {"type": "integer"},
            "servers": {"type": "integer"},
            "max_servers": {"type": "integer", "nullable": True},
            "holders": {"type": "array", "items": holder},
        }
    )
    notification = obj(
        {
            "id": STR,
            "seq": INT64,
            "message": STR,
            "type": {"type": "string", "enum": ["info", "success", "warning", "error"]},
            "source": STR,
            "actions": {"type": "array", "items": obj({"id": STR, "label": STR})},
            "created": {"type": "number"},
            "dismissed": BOOL,
            "link": {**STR, "description": "JupyterLab's #/... link of what it is about, or ''"},
            "auto_close": {"type": "integer", "description": "ms until the toast hides; 0: never"},
        }
    )
    strings = {"type": "array", "items": STR}
    settings = obj(
        {
            "jupyterlab": {**BOOL, "description": "Pop-ups in JupyterLab"},
            "events": {
                "type": "array",
                "items": {"type": "string", "enum": ["run", "pipeline_run", "job", "deployment"]},
            },
            "failuresOnly": BOOL,
            "experiments": {**strings, "description": "Experiment names or ids; empty: all"},
            "pipelines": {**strings, "description": "Pipeline names; empty: all"},
            "minDuration": {"type": "number", "description": "Seconds; shorter ones untold"},
            "email": STR,
            "webhooks": {"type": "array", "items": obj({"url": STR, "secret": STR})},
        }
    )
    settings_answer = obj(
        {"settings": settings, "smtp": {**BOOL, "description": "An SMTP server is configured"}}
    )
    delivery = obj(
        {
            "id": STR,
            "channel": {"type": "string", "enum": ["email", "webhook"]},
            "target": STR,
            "event": {**STR, "description": "e.g. run.failed"},
            "item": obj({"kind": STR, "id": STR, "name": STR, "outcome": STR}),
            "state": {
                "type": "string",
                "enum": ["pending", "retrying", "delivered", "failed", "dropped"],
            },
            "attempts": {
                "type": "array",
                "items": obj(
                    {
                        "time": {"type": "number"},
                        "ok": BOOL,
                        "error": STR,
                        "retry_in": {"type": "number"},
                    }
                ),
            },
            "created": {"type": "number"},
            "next_attempt": {"type": "number", "nullable": True},
        }
    )
    shares = obj(
        {
            "enabled": BOOL,
            "server": {**STR, "description": "owner/name"},
            "url": {**STR, "description": "The server's path through the hub, e.g. /user/alice/"},
            "sharing": {"type": "string", "enum": ["team", "anyone", "off"]},
            "rule": STR,
            "shares": {
                "type": "array",
                "items": obj({"user": STR, "group": STR, "created_at": STR}),
            },
            "candidates": {"type": "array", "items": STR},
        }
    )
    return {
        "/api/v1/hub/quota": {
            "get": op(
                "The team's GPU use and who holds the GPUs (servers, jobs), from the hub; "
                "`enabled: false` on a server that is not a team hub's",
                obj(
                    {
                        "enabled": BOOL,
                        "team": STR,
                        "user": STR,
                        "teams": {"type": "array", "items": team},
                    }
                ),
                tag="hub",
                errors=(),
            )
        },
        "/api/v1/hub/shares": {
            verb: op(
                summary,
                shares,
                body=None if verb == "get" else json_body({"user": STR}, ["user"]),
                tag="hub",
                errors=() if verb == "get" else ("400", "404"),
            )
            for verb, summary in (
                (
                    "get",
                    "Who this server is shared with (JupyterHub shares) and with whom it may be",
                ),
                ("post", "Share this server with a teammate (403 outside the user's teams)"),
                ("delete", "Revoke a user's share of this server"),
            )
        },
        "/api/v1/notifications": {
            "get": op(
                "This server's notifications for its JupyterLabs (polled; not counted as activity)",
                obj({"notifications": {"type": "array", "items": notification}, "last": INT64}),
                query=[query("after", INT64, desc="Only those changed after this sequence number")],
                tag="hub",
                errors=("400",),
            )
        },
        "/api/v1/notifications/settings": {
            "get": service_op("hub", "The user's notification settings", settings_answer),
            "post": service_op(
                "hub",
                "Replace the user's notification settings (JupyterLab's settings editor sends "
                "them); a wrong field is a 400 naming it",
                settings_answer,
                body={"settings": settings},
            ),
        },
        "/api/v1/notifications/deliveries": {
            "get": service_op(
                "hub",
                "The e-mail and webhook delivery log, newest first (every attempt, retries, "
                "failures)",
                obj({"deliveries": {"type": "array", "items": delivery}}),
                params=[optional_query("max_results", INT64, "At most this many (<= 1000)")],
            )
        },
        "/api/v1/notifications/test": {
            "post": service_op(
                "hub",
                "Send a test e-mail and webhook call to the channels of the user's settings "
                "(event `test`); 400 when there are none. The outcome is in the delivery log",
                obj({"deliveries": {"type": "array", "items": STR}}),
                errors=("400",),
            )
        },
        "/api/v1/notifications/{id}/actions/{action}": {
            "post": {
                **op(
                    "Press a notification's button (e.g. `keep`: Keep running, postpones the cull)",
                    obj({"id": STR, "action": STR, "result": {"type": "object"}}),
                    tag="hub",
                ),
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": STR},
                    {"name": "action", "in": "path", "required": True, "schema": STR},
                ],
            }
        },
    }
