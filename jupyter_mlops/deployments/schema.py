"""Tables of deployments and the versions they served (SQLAlchemy Core).

They live in the tracking database, created by the Alembic migrations
``tracking/migrations/versions/0008_deployments.py`` and ``0014_deployment_generation.py``
(which spell them out themselves: ``tracking`` never imports ``deployments``). No foreign
keys to registry tables: a deployment outlives the deletion of the version it once served
(its history says which it was).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

deployments = Table(
    "deployments",
    metadata,
    Column("name", String(63), primary_key=True),  # a DNS label: also a Kubernetes name
    Column("model_uri", Text, nullable=False),  # as given: models:/m/3, models:/m@champion, ...
    Column("target", String(64), nullable=False, server_default="local"),
    Column("replicas", Integer, nullable=False, server_default="1"),
    Column("resources", Text, nullable=True),  # JSON: {"cpu": "500m", "memory": "1Gi"}
    Column("follow_alias", Boolean, nullable=False, server_default="0"),
    Column("status", String(20), nullable=False),
    Column("reason", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("model_name", String(256), nullable=True),  # what is served now
    Column("model_version", String(32), nullable=True),
    Column("served_uri", Text, nullable=True),  # the resolved URI the processes load
    Column("alias_version", String(32), nullable=True),  # the alias' version last followed
    Column("state", Text, nullable=True),  # JSON: the target's own record (processes, ports)
    Column("owner", Text, nullable=True),  # "host:pid" of the server supervising it
    # Rollouts, counted as Kubernetes counts spec changes (migration 0014): every request
    # that starts one increments ``generation``; ``observed_generation`` is the last that
    # ended, ``rollout_error`` why it failed (NULL: it succeeded).
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("observed_generation", Integer, nullable=False, server_default="0"),
    Column("rollout_error", Text, nullable=True),
    Column("created_time", BigInteger, nullable=False),
    Column("updated_time", BigInteger, nullable=False),
)

deployment_history = Table(
    "deployment_history",
    metadata,
    Column("name", String(63), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("action", String(20), nullable=False),  # create, update, rollback, follow
    Column("model_uri", Text, nullable=False),  # resolved: models:/<name>/<version>
    Column("model_name", String(256), nullable=True),
    Column("model_version", String(32), nullable=True),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    PrimaryKeyConstraint("name", "seq", name="pk_deployment_history"),
)
