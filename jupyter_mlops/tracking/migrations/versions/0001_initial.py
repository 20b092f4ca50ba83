"""The initial tracking schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "store_info",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    experiments = op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.Text, nullable=True),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False, server_default="active"),
        sa.Column("creation_time", sa.BigInteger, nullable=True),
        sa.Column("last_update_time", sa.BigInteger, nullable=True),
        sa.Column("deleted_time", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )
    op.create_table(
        "experiment_tags",
        sa.Column(
            "experiment_id",
            sa.Integer,
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
    )
    op.create_table(
        "runs",
        sa.Column("run_uuid", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(250), nullable=True),
        sa.Column(
            "experiment_id",
            sa.Integer,
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(256), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=True),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False, server_default="active"),
        sa.Column("artifact_uri", sa.Text, nullable=True),
        sa.Column("deleted_time", sa.BigInteger, nullable=True),
        sa.Column("last_heartbeat", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_runs_experiment", "runs", ["experiment_id", "lifecycle_stage", "start_time"]
    )
    op.create_index("ix_runs_heartbeat", "runs", ["status", "last_heartbeat"])
    for name, max_len in (("params", 8000), ("tags", 8000)):
        op.create_table(
            name,
            sa.Column(
                "run_uuid",
                sa.String(64),
                sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", sa.String(max_len), nullable=name == "tags"),
            sa.PrimaryKeyConstraint("run_uuid", "key", name=f"pk_{name}"),
        )
        if dialect == "sqlite":
            op.create_index(f"ix_{name}_key_value", name, ["key", "value", "run_uuid"])
        else:
            op.create_index(f"ix_{name}_key", name, ["key", "run_uuid"])
    op.create_table(
        "latest_metrics",
        sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_uuid",
            sa.String(64),
            sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("last_ts", sa.BigInteger, nullable=False),
        sa.Column("ord_step", sa.Boolean, nullable=False),
        sa.Column("ord_ts", sa.Boolean, nullable=False),
        sa.Column("ord_step_ts", sa.Boolean, nullable=False),
        sa.UniqueConstraint("run_uuid", "key", name="uq_latest_metrics_run_key"),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value", "run_uuid"])
    op.create_table(
        "metrics",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("series_id", "seq", name="pk_metrics"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "metric_blocks",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("block_no", sa.BigInteger, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("first_step", sa.BigInteger, nullable=False),
        sa.Column("first_ts", sa.BigInteger, nullable=False),
        sa.Column("min_step", sa.BigInteger, nullable=False),
        sa.Column("max_step", sa.BigInteger, nullable=False),
        sa.Column("min_ts", sa.BigInteger, nullable=False),
        sa.Column("max_ts", sa.BigInteger, nullable=False),
        sa.Column("min_value", sa.Float, nullable=True),
        sa.Column("max_value", sa.Float, nullable=True),
        sa.Column("last_value", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("series_id", "level", "block_no", name="pk_metric_blocks"),
        sqlite_with_rowid=False,
    )
    now = int(time.time() * 1000)
    op.bulk_insert(
        experiments,
        [
            {
                "experiment_id": 0,
                "name": "Default",
                "artifact_location": "mlflow-artifacts:/0",
                "lifecycle_stage": "active",
                "creation_time": now,
                "last_update_time": now,
            }
        ],
    )


def downgrade() -> None:
    for table in (
        "metric_blocks",
        "metrics",
        "latest_metrics",
        "tags",
        "params",
        "runs",
        "experiment_tags",
        "experiments",
        "store_info",
    ):
        op.drop_table(table)
