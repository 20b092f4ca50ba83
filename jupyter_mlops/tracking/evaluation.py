"""GenAI evaluation datasets and registered scorers (MLflow 3), their tables (migration
``0012``) and queries; the store methods are :mod:`.evaluation_store`'s.

An evaluation dataset (``d-<hex>``) holds records: ``inputs`` (what the app is called
with; a record is identified within its dataset by them), ``expectations``, ``outputs``,
``tags``, ``source``. Upserting a record whose inputs exist merges its expectations
and tags into the stored one. A dataset may belong to several experiments. A scorer is
a serialized scoring function registered under a name in an experiment; registering the
name again makes a new version.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Connection

from .errors import invalid, not_found
from .schema import metadata

MAX_NAME = 500
MAX_RECORDS_PER_UPSERT = 10000
MAX_RECORD_BYTES = 1 << 20

eval_datasets = Table(
    "eval_datasets",
    metadata,
    Column("dataset_id", String(64), primary_key=True),
    Column("name", String(MAX_NAME), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("schema", Text, nullable=True),
    Column("profile", Text, nullable=True),
    Column("created_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("last_updated_by", String(255), nullable=True),
    Index("ix_eval_datasets_name", "name"),
)

eval_dataset_tags = Table(
    "eval_dataset_tags",
    metadata,
    Column("dataset_id", String(64), ForeignKey("eval_datasets.dataset_id", ondelete="CASCADE")),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=True),
    PrimaryKeyConstraint("dataset_id", "key", name="pk_eval_dataset_tags"),
)

eval_dataset_experiments = Table(
    "eval_dataset_experiments",
    metadata,
    Column("dataset_id", String(64), ForeignKey("eval_datasets.dataset_id", ondelete="CASCADE")),
    Column("experiment_id", Integer, nullable=False),
    PrimaryKeyConstraint("dataset_id", "experiment_id", name="pk_eval_dataset_experiments"),
    Index("ix_eval_dataset_experiments_exp", "experiment_id"),
)

eval_records = Table(
    "eval_records",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column(
        "dataset_id",
        String(64),
        ForeignKey("eval_datasets.dataset_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("input_hash", String(64), nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Column("body", Text, nullable=False),  # the record's JSON (inputs, expectations, ...)
    Index("ix_eval_records_dataset_hash", "dataset_id", "input_hash", unique=True),
)

scorers = Table(
    "scorers",
    metadata,
    Column("scorer_id", String(64), nullable=False),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("serialized", Text, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("experiment_id", "name", "version", name="pk_scorers"),
)


# -- datasets --------------------------------------------------------------------------
def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def dataset_dict(conn: Connection, row: Any) -> dict[str, Any]:
    tags = dict(
        conn.execute(
            sa.select(eval_dataset_tags.c.key, eval_dataset_tags.c.value).where(
                eval_dataset_tags.c.dataset_id == row.dataset_id
            )
        ).all()
    )
    exps = [
        str(e)
        for e in conn.execute(
            sa.select(eval_dataset_experiments.c.experiment_id)
            .where(eval_dataset_experiments.c.dataset_id == row.dataset_id)
            .order_by(eval_dataset_experiments.c.experiment_id)
        ).scalars()
    ]
    out: dict[str, Any] = {
        "dataset_id": row.dataset_id,
        "name": row.name,
        "digest": row.digest,
        "created_time": row.created_time,
        "last_update_time": row.last_update_time,
        "tags": json.dumps(tags),
    }
    for k in ("schema", "profile", "created_by", "last_updated_by"):
        if getattr(row, k) is not None:
            out[k] = getattr(row, k)
    if exps:
        out["experiment_ids"] = exps
    return out


def dataset_row(conn: Connection, dataset_id: str) -> Any:
    row = conn.execute(
        sa.select(eval_datasets).where(eval_datasets.c.dataset_id == dataset_id)
    ).first()
    if row is None:
        raise not_found(f"Dataset '{dataset_id}' not found")
    return row


def parse_tags(raw: Any, where: str = "tags") -> dict[str, str]:
    """Tags as MLflow sends them for datasets: a JSON object (text) or an object."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise invalid(f"Invalid '{where}': not a JSON object") from None
    if not isinstance(raw, dict):
        raise invalid(f"Invalid '{where}': expected a JSON object")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def create_dataset(
    conn: Connection,
    name: str,
    experiment_ids: Sequence[int],
    tags: dict[str, str],
    now: int,
    created_by: str | None = None,
) -> dict[str, Any]:
    if not name.strip() or len(name) > MAX_NAME:
        raise invalid(f"Invalid dataset name: 1 to {MAX_NAME} characters")
    did = "d-" + uuid.uuid4().hex
    conn.execute(
        eval_datasets.insert(),
        [
            {
                "dataset_id": did,
                "name": name,
                "digest": _digest(did, now),
                "created_time": now,
                "last_update_time": now,
                "created_by": created_by,
                "last_updated_by": created_by,
            }
        ],
    )
    set_tags(conn, did, tags)
    add_experiments(conn, did, experiment_ids)
    return dataset_dict(conn, dataset_row(conn, did))


def set_tags(conn: Connection, dataset_id: str, tags: dict[str, str]) -> None:
    for k in tags:
        conn.execute(
            eval_dataset_tags.delete().where(
                eval_dataset_tags.c.dataset_id == dataset_id, eval_dataset_tags.c.key == k
            )
        )
    if tags:
        conn.execute(
            eval_dataset_tags.insert(),
            [{"dataset_id": dataset_id, "key": k, "value": v} for k, v in tags.items()],
        )


def add_experiments(conn: Connection, dataset_id: str, experiment_ids: Sequence[int]) -> None:
    have = set(
        conn.execute(
            sa.select(eval_dataset_experiments.c.experiment_id).where(
                eval_dataset_experiments.c.dataset_id == dataset_id
            )
        ).scalars()
    )
    new = [e for e in dict.fromkeys(experiment_ids) if e not in have]
    if new:
        conn.execute(
            eval_dataset_experiments.insert(),
            [{"dataset_id": dataset_id, "experiment_id": e} for e in new],
        )


def remove_experiments(conn: Connection, dataset_id: str, experiment_ids: Sequence[int]) -> None:
    if experiment_ids:
        conn.execute(
            eval_dataset_experiments.delete().where(
                eval_dataset_experiments.c.dataset_id == dataset_id,
                eval_dataset_experiments.c.experiment_id.in_(list(experiment_ids)),
            )
        )


def delete_dataset(conn: Connection, dataset_id: str) -> None:
    dataset_row(conn, dataset_id)
    for t in (eval_records, eval_dataset_experiments, eval_dataset_tags):
        conn.execute(t.delete().where(t.c.dataset_id == dataset_id))
    conn.execute(eval_datasets.delete().where(eval_datasets.c.dataset_id == dataset_id))


def _input_hash(inputs: Any) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def parse_records(raw: Any) -> list[dict[str, Any]]:
    """Records of an upsert (a JSON list, as text): each an object with ``inputs``."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise invalid("Invalid 'records': not JSON") from None
    if not isinstance(raw, list):
        raise invalid("Invalid 'records': expected a JSON list of records")
    if len(raw) > MAX_RECORDS_PER_UPSERT:
        raise invalid(f"Invalid 'records': at most {MAX_RECORDS_PER_UPSERT} per request")
    for i, r in enumerate(raw):
        if not isinstance(r, dict) or not isinstance(r.get("inputs"), dict):
            raise invalid(f"Invalid records[{i}]: an object with an 'inputs' object is required")
        if len(json.dumps(r)) > MAX_RECORD_BYTES:
            raise invalid(f"Invalid records[{i}]: larger than {MAX_RECORD_BYTES} bytes")
    return raw


def upsert_records(
    conn: Connection, dataset_id: str, records: Sequence[dict[str, Any]], now: int
) -> tuple[int, int]:
    dataset_row(conn, dataset_id)
    inserted = updated = 0
    for r in records:
        h = _input_hash(r["inputs"])
        row = conn.execute(
            sa.select(eval_records).where(
                eval_records.c.dataset_id == dataset_id, eval_records.c.input_hash == h
            )
        ).first()
        if row is None:
            body = {
                # time-ordered ids: records list in the order they were added
                "dataset_record_id": f"dr-{time.time_ns():016x}{uuid.uuid4().hex[:16]}",
                "dataset_id": dataset_id,
                "inputs": r["inputs"],
                "created_time": now,
                "last_update_time": now,
            }
            for k in ("expectations", "outputs", "tags", "source", "created_by"):
                if r.get(k) is not None:
                    body[k] = r[k]
            conn.execute(
                eval_records.insert(),
                [
                    {
                        "record_id": body["dataset_record_id"],
                        "dataset_id": dataset_id,
                        "input_hash": h,
                        "created_time": now,
                        "body": json.dumps(body),
                    }
                ],
            )
            inserted += 1
        else:
            body = json.loads(row.body)
            for k in ("expectations", "tags"):
                if isinstance(r.get(k), dict):
                    body[k] = {**(body.get(k) or {}), **r[k]}
            for k in ("outputs", "source"):
                if r.get(k) is not None:
                    body[k] = r[k]
            body["last_update_time"] = now
            conn.execute(
                eval_records.update()
                .where(eval_records.c.record_id == row.record_id)
                .values(body=json.dumps(body))
            )
            updated += 1
    conn.execute(
        eval_datasets.update()
        .where(eval_datasets.c.dataset_id == dataset_id)
        .values(last_update_time=now, digest=_digest(dataset_id, now, inserted, updated))
    )
    return inserted, updated


def get_records(
    conn: Connection, dataset_id: str, offset: int, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    dataset_row(conn, dataset_id)
    rows = list(
        conn.execute(
            sa.select(eval_records.c.body)
            .where(eval_records.c.dataset_id == dataset_id)
            .order_by(eval_records.c.created_time, eval_records.c.record_id)
            .offset(offset)
            .limit(limit + 1)
        ).scalars()
    )
    return [json.loads(b) for b in rows[:limit]], len(rows) > limit


def delete_records(conn: Connection, dataset_id: str, record_ids: Sequence[str]) -> int:
    dataset_row(conn, dataset_id)
    return (
        conn.execute(
            eval_records.delete().where(
                eval_records.c.dataset_id == dataset_id,
                eval_records.c.record_id.in_(list(record_ids)),
            )
        ).rowcount
        or 0
    )


# -- scorers ---------------------------------------------------------------------------
def scorer_dict(row: Any) -> dict[str, Any]:
    return {
        "experiment_id": str(row.experiment_id),
        "scorer_name": row.name,
        "scorer_version": row.version,
        "serialized_scorer": row.serialized,
        "creation_time": row.creation_time,
        "scorer_id": row.scorer_id,
    }


def register_scorer(
    conn: Connection, experiment_id: int, name: str, serialized: str, now: int
) -> dict[str, Any]:
    if not name.strip() or len(name) > 256:
        raise invalid("Invalid scorer name: 1 to 256 characters")
    latest = conn.execute(
        sa.select(sa.func.max(scorers.c.version)).where(
            scorers.c.experiment_id == experiment_id, scorers.c.name == name
        )
    ).scalar()
    first = conn.execute(
        sa.select(scorers.c.scorer_id).where(
            scorers.c.experiment_id == experiment_id, scorers.c.name == name
        )
    ).first()
    version = int(latest or 0) + 1
    row = {
        "scorer_id": first.scorer_id if first else uuid.uuid4().hex,
        "experiment_id": experiment_id,
        "name": name,
        "version": version,
        "serialized": serialized,
        "creation_time": now,
    }
    conn.execute(scorers.insert(), [row])
    return scorer_dict(get_scorer(conn, experiment_id, name, version))


def list_scorers(conn: Connection, experiment_id: int, name: str | None = None) -> list[Any]:
    q = sa.select(scorers).where(scorers.c.experiment_id == experiment_id)
    if name is not None:
        return list(conn.execute(q.where(scorers.c.name == name).order_by(scorers.c.version)))
    latest = (
        sa.select(scorers.c.name, sa.func.max(scorers.c.version).label("v"))
        .where(scorers.c.experiment_id == experiment_id)
        .group_by(scorers.c.name)
        .subquery()
    )
    return list(
        conn.execute(
            q.join(
                latest, sa.and_(scorers.c.name == latest.c.name, scorers.c.version == latest.c.v)
            ).order_by(scorers.c.name)
        )
    )


def get_scorer(conn: Connection, experiment_id: int, name: str, version: int | None) -> Any:
    rows = list_scorers(conn, experiment_id, name)
    if version is not None:
        rows = [r for r in rows if r.version == version]
    if not rows:
        v = f" version {version}" if version is not None else ""
        raise not_found(f"Scorer with name '{name}'{v} not found for experiment {experiment_id}")
    return rows[-1]


def delete_scorer(conn: Connection, experiment_id: int, name: str, version: int | None) -> None:
    get_scorer(conn, experiment_id, name, version)
    cond = [scorers.c.experiment_id == experiment_id, scorers.c.name == name]
    if version is not None:
        cond.append(scorers.c.version == version)
    conn.execute(scorers.delete().where(*cond))
