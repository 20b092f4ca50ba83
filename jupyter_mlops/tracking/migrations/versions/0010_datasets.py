"""Datasets and run inputs (MLflow's ``runs/log-inputs``).

Revision ID: 0010_datasets
Revises: 0009_training_jobs
Create Date: 2026-12-05

Mirrors ``jupyter_mlops/tracking/datasets.py``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_datasets"
down_revision = "0009_training_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("dataset_uuid", sa.String(36), primary_key=True),
        sa.Column(
            "experiment_id",
            sa.Integer,
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(36), nullable=False),
        sa.Column("source_type", sa.String(36), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("schema", sa.Text, nullable=True),
        sa.Column("profile", sa.Text, nullable=True),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_exp_name_digest"),
    )
    op.create_table(
        "dataset_inputs",
        sa.Column("input_uuid", sa.String(36), primary_key=True),
        sa.Column(
            "dataset_uuid",
            sa.String(36),
            sa.ForeignKey("datasets.dataset_uuid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "run_uuid",
            sa.String(64),
            sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.UniqueConstraint("run_uuid", "dataset_uuid", name="uq_dataset_inputs_run_dataset"),
    )
    op.create_index("ix_dataset_inputs_dataset", "dataset_inputs", ["dataset_uuid"])
    op.create_table(
        "input_tags",
        sa.Column(
            "input_uuid",
            sa.String(36),
            sa.ForeignKey("dataset_inputs.input_uuid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("input_uuid", "name", name="pk_input_tags"),
    )
    op.create_table(
        "run_model_inputs",
        sa.Column(
            "run_uuid",
            sa.String(64),
            sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "model_id", name="pk_run_model_inputs"),
    )


def downgrade() -> None:
    for table in ("run_model_inputs", "input_tags", "dataset_inputs", "datasets"):
        op.drop_table(table)
