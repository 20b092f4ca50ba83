"""Runs remember when they last changed (the runs table's live updates read only runs
changed since their last poll).

Revision ID: 0013_run_update_time
Revises: 0012_evaluation
Create Date: 2026-12-05

``runs.last_update_time`` (epoch ms; NULL for runs not changed since this migration:
they count as changed at their start or end) with an index per experiment.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_run_update_time"
down_revision = "0012_evaluation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("last_update_time", sa.BigInteger(), nullable=True))
    op.create_index("ix_runs_experiment_update", "runs", ["experiment_id", "last_update_time"])


def downgrade() -> None:
    op.drop_index("ix_runs_experiment_update", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("last_update_time")
