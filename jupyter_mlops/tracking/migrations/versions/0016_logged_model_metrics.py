"""Metrics of logged models: points logged with a ``model_id`` (and the dataset they were
measured on), read by ``logged-models/get`` and the ``datasets`` filter of
``logged-models/search``.

Revision ID: 0016_logged_model_metrics
Revises: 0015_trace_data_files
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_logged_model_metrics"
down_revision = "0015_trace_data_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logged_model_metrics",
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("dataset_name", sa.String(500), nullable=True),
        sa.Column("dataset_digest", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint(
            "model_id", "key", "timestamp", "step", "run_id", name="pk_logged_model_metrics"
        ),
    )
    op.create_index(
        "ix_logged_model_metrics_dataset",
        "logged_model_metrics",
        ["dataset_name", "dataset_digest"],
    )


def downgrade() -> None:
    op.drop_index("ix_logged_model_metrics_dataset", table_name="logged_model_metrics")
    op.drop_table("logged_model_metrics")
