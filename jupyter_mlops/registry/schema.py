"""Tables of the model registry and of MLflow 3's logged models (SQLAlchemy Core).

They live in the tracking database (migration ``0004`` creates them) but are
read and written only by :mod:`jupyter_mlops.registry`. No foreign keys: a
rename touches every table of a model in one transaction, and a logged model
may outlive (or predate) the run that produced it, as in MLflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Connection

metadata = MetaData()

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("description", Text, nullable=True),
    Column("user_id", String(256), nullable=True),
)


def _key_values(name: str, *parents: Column) -> Table:
    """A ``(parent..., key, value)`` table: the tags or params of one kind of
    entity, one row per key (primary key ``pk_<name>``)."""
    return Table(
        name,
        metadata,
        *parents,
        Column("key", String(250), nullable=False),
        Column("value", Text, nullable=True),
        PrimaryKeyConstraint(*(c.name for c in parents), "key", name=f"pk_{name}"),
    )


registered_model_tags = _key_values(
    "registered_model_tags", Column("name", String(256), nullable=False)
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("user_id", String(256), nullable=True),
    Column("current_stage", String(20), nullable=False),
    Column("description", Text, nullable=True),
    Column("source", Text, nullable=True),
    Column("storage_location", Text, nullable=True),
    Column("run_id", String(64), nullable=True),
    Column("run_link", Text, nullable=True),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("model_id", String(64), nullable=True),
    PrimaryKeyConstraint("name", "version", name="pk_model_versions"),
    Index("ix_model_versions_run", "run_id"),
)

model_version_tags = _key_values(
    "model_version_tags",
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
)

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("name", String(256), nullable=False),
    Column("alias", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("name", "alias", name="pk_registered_model_aliases"),
)

logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", String(32), nullable=False),
    Column("name", String(500), nullable=False),
    Column("creation_timestamp_ms", BigInteger, nullable=False),
    Column("last_updated_timestamp_ms", BigInteger, nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("status", String(40), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("model_type", String(500), nullable=True),
    Column("source_run_id", String(64), nullable=True),
    Column("lifecycle_stage", String(20), nullable=False, server_default="active"),
    Index("ix_logged_models_experiment", "experiment_id", "name"),
    Index("ix_logged_models_run", "source_run_id"),
)

logged_model_tags = _key_values("logged_model_tags", Column("model_id", String(64), nullable=False))

logged_model_params = _key_values(
    "logged_model_params", Column("model_id", String(64), nullable=False)
)

run_outputs = Table(
    "run_outputs",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("model_id", String(64), nullable=False),
    Column("step", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("run_id", "model_id", name="pk_run_outputs"),
)


# -- row helpers of the registry's SQL stores ------------------------------------------


def upsert(conn: Connection, table: sa.Table, keys: dict[str, Any], **values: Any) -> None:
    """Set the row of ``table`` identified by ``keys`` (its primary key) to
    ``values``: the same two statements on SQLite and PostgreSQL."""
    conn.execute(table.delete().where(*(table.c[k] == v for k, v in keys.items())))
    conn.execute(table.insert().values(**keys, **values))


def key_values_by(
    conn: Connection, parent: sa.Column[Any], ids: Sequence[Any]
) -> dict[Any, list[dict[str, str]]]:
    """The rows of a (parent, key, value) table for these parents, as MLflow's
    ``[{"key", "value"}]`` lists per parent id, ordered by key."""
    table = parent.table
    out: dict[Any, list[dict[str, str]]] = {}
    for row in conn.execute(table.select().where(parent.in_(ids)).order_by(table.c.key)):
        out.setdefault(row._mapping[parent.name], []).append(
            {"key": row.key, "value": row.value or ""}
        )
    return out
