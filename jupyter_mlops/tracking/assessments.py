"""Assessments of traces (MLflow 3: feedback and expectations), in MLflow's JSON shape.

An assessment is kept whole as MLflow's JSON (``body``) beside the columns it is found
and ordered by. Overriding one (a new assessment with ``overrides: <id>``) marks the old
one ``valid: false``; deleting the override makes it valid again (MLflow's semantics).
Table of migration ``0011``; functions take the caller's connection.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.engine import Connection

from .errors import invalid, not_found
from .schema import metadata
from .traces import ms_to_timestamp

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(64), primary_key=True),
    Column(
        "trace_id",
        String(64),
        ForeignKey("traces.trace_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(250), nullable=False),
    Column("kind", String(16), nullable=False),  # feedback | expectation
    Column("valid", Boolean, nullable=False),
    Column("overrides", String(64), nullable=True),
    Column("create_time", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_assessments_trace", "trace_id", "create_time"),
)

#: Fields an update may change, by the names of ``update_mask`` (camelCase or snake_case).
UPDATABLE = {
    "assessment_name": "assessment_name",
    "assessmentname": "assessment_name",
    "feedback": "feedback",
    "expectation": "expectation",
    "rationale": "rationale",
    "metadata": "metadata",
}
SOURCE_TYPES = ("SOURCE_TYPE_UNSPECIFIED", "HUMAN", "LLM_JUDGE", "CODE")
MAX_BODY = 1 << 20


def _normalize(body: dict[str, Any]) -> dict[str, Any]:
    """Expectations whose value is not a scalar are sent back serialized, as MLflow's
    server does (``serialized_value: {serialization_format: JSON_FORMAT, value}``)."""
    exp = body.get("expectation")
    if isinstance(exp, dict) and isinstance(exp.get("value"), (dict, list)):
        body["expectation"] = {
            "serialized_value": {
                "serialization_format": "JSON_FORMAT",
                "value": json.dumps(exp["value"]),
            }
        }
    return body


def check(body: Any, where: str = "assessment") -> dict[str, Any]:
    """An assessment of a request, checked: a name, and exactly one of feedback and
    expectation."""
    if not isinstance(body, dict):
        raise invalid(f"Missing value for required parameter '{where}'.")
    name = body.get("assessment_name")
    if not isinstance(name, str) or not name.strip():
        raise invalid(f"Missing value for required parameter '{where}.assessment_name'.")
    if len(name) > 250:
        raise invalid(f"Invalid value for '{where}.assessment_name': longer than 250 characters")
    has_f, has_e = "feedback" in body, "expectation" in body
    if has_f == has_e:
        raise invalid(f"Exactly one of '{where}.feedback' and '{where}.expectation' is required.")
    src = body.get("source")
    if src is not None and (
        not isinstance(src, dict) or src.get("source_type", "HUMAN") not in SOURCE_TYPES
    ):
        raise invalid(
            f"Invalid value for '{where}.source': source_type must be one of {SOURCE_TYPES}"
        )
    if len(json.dumps(body)) > MAX_BODY:
        raise invalid(f"Invalid {where}: larger than {MAX_BODY} bytes")
    return body


def create(conn: Connection, trace_id: str, body: dict[str, Any], now: int) -> dict[str, Any]:
    from .traces import get_row

    get_row(conn, trace_id)
    body = _normalize(dict(body))
    aid = "a-" + uuid.uuid4().hex
    body.update(
        assessment_id=aid,
        trace_id=trace_id,
        create_time=ms_to_timestamp(now),
        last_update_time=ms_to_timestamp(now),
        valid=True,
    )
    body.setdefault("source", {"source_type": "SOURCE_TYPE_UNSPECIFIED"})
    over = body.get("overrides")
    if over:
        _row(conn, trace_id, over)
        conn.execute(
            assessments.update().where(assessments.c.assessment_id == over).values(valid=False)
        )
        _set_valid(conn, over, False)
    conn.execute(
        assessments.insert(),
        [
            {
                "assessment_id": aid,
                "trace_id": trace_id,
                "name": body["assessment_name"],
                "kind": "feedback" if "feedback" in body else "expectation",
                "valid": True,
                "overrides": over or None,
                "create_time": now,
                "body": json.dumps(body),
            }
        ],
    )
    return body


def _row(conn: Connection, trace_id: str, assessment_id: str) -> Any:
    row = conn.execute(
        sa.select(assessments).where(
            assessments.c.assessment_id == assessment_id, assessments.c.trace_id == trace_id
        )
    ).first()
    if row is None:
        raise not_found(
            f"Assessment with ID '{assessment_id}' not found for trace with ID '{trace_id}'"
        )
    return row


def _set_valid(conn: Connection, assessment_id: str, valid: bool) -> None:
    row = conn.execute(
        sa.select(assessments.c.body).where(assessments.c.assessment_id == assessment_id)
    ).first()
    if row is None:
        return
    body = json.loads(row.body)
    body["valid"] = valid
    conn.execute(
        assessments.update()
        .where(assessments.c.assessment_id == assessment_id)
        .values(valid=valid, body=json.dumps(body))
    )


def get(conn: Connection, trace_id: str, assessment_id: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(_row(conn, trace_id, assessment_id).body)
    return body


def update(
    conn: Connection,
    trace_id: str,
    assessment_id: str,
    changes: dict[str, Any],
    mask: Sequence[str],
    now: int,
) -> dict[str, Any]:
    body = get(conn, trace_id, assessment_id)
    fields = []
    for m in mask:
        key = UPDATABLE.get(m.strip().replace("_", "").lower()) or UPDATABLE.get(m.strip())
        if key is None:
            raise invalid(
                f"Invalid update_mask field '{m}': updatable are {sorted(set(UPDATABLE.values()))}"
            )
        fields.append(key)
    for key in fields:
        if key in changes:
            body[key] = changes[key]
        else:
            body.pop(key, None)
    if "feedback" in fields and "feedback" in body:
        body.pop("expectation", None)
    if "expectation" in fields and "expectation" in body:
        body.pop("feedback", None)
    body = _normalize(body)
    body["last_update_time"] = ms_to_timestamp(now)
    conn.execute(
        assessments.update()
        .where(assessments.c.assessment_id == assessment_id)
        .values(name=body.get("assessment_name", ""), body=json.dumps(body))
    )
    return body


def delete(conn: Connection, trace_id: str, assessment_id: str) -> None:
    row = _row(conn, trace_id, assessment_id)
    conn.execute(assessments.delete().where(assessments.c.assessment_id == assessment_id))
    if row.overrides:
        _set_valid(conn, row.overrides, True)


def load_for_traces(conn: Connection, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    ids = list(trace_ids)
    if not ids:
        return out
    for tid, body in conn.execute(
        sa.select(assessments.c.trace_id, assessments.c.body)
        .where(assessments.c.trace_id.in_(ids))
        .order_by(assessments.c.trace_id, assessments.c.create_time)
    ):
        out.setdefault(tid, []).append(json.loads(body))
    return out
