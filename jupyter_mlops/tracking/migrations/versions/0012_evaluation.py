"""GenAI evaluation datasets (records, tags, experiments) and registered scorers.

Revision ID: 0012_evaluation
Revises: 0011_tracing
Create Date: 2026-12-05

Mirrors ``jupyter_mlops/tracking/evaluation.py``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_evaluation"
down_revision = "0011_tracing"
branch_labels = None
depends_on = None


def _dataset_fk(nullable: bool = True) -> sa.Column:
    return sa.Column(
        "dataset_id",
        sa.String(64),
        sa.ForeignKey("eval_datasets.dataset_id", ondelete="CASCADE"),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "eval_datasets",
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("schema", sa.Text, nullable=True),
        sa.Column("profile", sa.Text, nullable=True),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("last_updated_by", sa.String(255), nullable=True),
    )
    op.create_index("ix_eval_datasets_name", "eval_datasets", ["name"])
    op.create_table(
        "eval_dataset_tags",
        _dataset_fk(),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("dataset_id", "key", name="pk_eval_dataset_tags"),
    )
    op.create_table(
        "eval_dataset_experiments",
        _dataset_fk(),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "experiment_id", name="pk_eval_dataset_experiments"),
    )
    op.create_index(
        "ix_eval_dataset_experiments_exp", "eval_dataset_experiments", ["experiment_id"]
    )
    op.create_table(
        "eval_records",
        sa.Column("record_id", sa.String(64), primary_key=True),
        _dataset_fk(nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_eval_records_dataset_hash", "eval_records", ["dataset_id", "input_hash"], unique=True
    )
    op.create_table(
        "scorers",
        sa.Column("scorer_id", sa.String(64), nullable=False),
        sa.Column(
            "experiment_id",
            sa.Integer,
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("serialized", sa.Text, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "name", "version", name="pk_scorers"),
    )


def downgrade() -> None:
    for table in (
        "scorers",
        "eval_records",
        "eval_dataset_experiments",
        "eval_dataset_tags",
        "eval_datasets",
    ):
        op.drop_table(table)
