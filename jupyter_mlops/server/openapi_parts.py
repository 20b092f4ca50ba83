"""The building blocks of the OpenAPI document: common schemas, parameters, operations.

Shared by the document's builder (``openapi.py``) and its per-domain parts
(``openapi_pipelines.py``, ``openapi_registry.py``); imports none of them.
"""

from __future__ import annotations

from typing import Any

S = dict[str, Any]


def ref(name: str) -> S:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: S, required: list[str] | None = None, desc: str | None = None) -> S:
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
    "oneOf": [
        {"type": "number", "format": "double"},
        {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]},
    ]
}
EMPTY: S = {"type": "object", "description": "Empty on success: `{}`."}
KV_LIST: S = {"type": "array", "items": ref("KeyValue")}


def query(name: str, schema: S, required: bool = False, desc: str | None = None) -> S:
    p: S = {"name": name, "in": "query", "required": required, "schema": schema}
    if schema.get("type") == "array":
        p["style"], p["explode"] = "form", True
    if desc:
        p["description"] = desc
    return p


def json_body(props: S, required: list[str] | None = None) -> S:
    return {"required": True, "content": {"application/json": {"schema": obj(props, required)}}}


def ok(schema: S, desc: str = "Success") -> S:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def op(
    summary: str,
    response: S,
    *,
    body: S | None = None,
    query: list[S] | None = None,
    tag: str = "mlflow",
    errors: tuple[str, ...] = ("400", "404"),
) -> S:
    out: S = {"summary": summary, "tags": [tag], "responses": {"200": ok(response)}}
    if body is not None:
        out["requestBody"] = body
    if query:
        out["parameters"] = query
    for code in errors + ("403",):
        out["responses"][code] = {
            "description": {
                "400": "Invalid request",
                "403": "Not authenticated or not authorized",
                "404": "Not found",
            }.get(code, "Error"),
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return out


#: What each error status of an ``api/v1`` route means (a part may word 409 and 503).
ERROR_TEXT = {
    "400": "Invalid request",
    "403": "Not authenticated or not authorized",
    "404": "Not found",
    "409": "Conflict with the item's state",
    "503": "A target is unreachable",
}


def service_op(
    tag: str,
    summary: str,
    schema: S,
    body: S | None = None,
    params: list[S] | None = None,
    errors: tuple[str, ...] = ("400", "404"),
    content: str = "application/json",
    *,
    texts: dict[str, str] | None = None,
    body_desc: str | None = None,
) -> S:
    """An ``api/v1`` service route (pipelines, jobs, deployments): a 200 with ``schema`` as
    ``content``, the ``errors`` (and 403) as MLflow's error JSON, a JSON object body of
    ``body``'s properties. ``texts`` rewords error statuses; bind ``tag`` and ``texts`` with
    :func:`functools.partial` per part."""
    out: S = {
        "summary": summary,
        "tags": [tag],
        "responses": {"200": {"description": "Success", "content": {content: {"schema": schema}}}},
    }
    words = {**ERROR_TEXT, **(texts or {})}
    for code in errors + ("403",):
        out["responses"][code] = {
            "description": words[code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    if body is not None:
        schema_body: S = {"type": "object", "properties": body}
        if body_desc:
            schema_body["description"] = body_desc
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_body}},
        }
    if params:
        out["parameters"] = params
    return out


def path_param(name: str) -> S:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def optional_query(name: str, schema: S, desc: str = "") -> S:
    """An optional query parameter (no array styles: the service routes take scalars)."""
    out: S = {"name": name, "in": "query", "required": False, "schema": schema}
    if desc:
        out["description"] = desc
    return out
