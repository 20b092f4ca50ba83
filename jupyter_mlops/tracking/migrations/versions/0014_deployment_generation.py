"""Deployments count their rollouts, so a client waits for the outcome of its own.

Revision ID: 0014_deployment_generation
Revises: 0013_run_update_time
Create Date: 2026-12-05

``deployments.generation`` (incremented by every request that starts a rollout),
``observed_generation`` (the last rollout that ended, succeeded or failed) and
``rollout_error`` (why that rollout failed; NULL when it succeeded), as Kubernetes' objects
have ``metadata.generation`` and ``status.observedGeneration``. Mirrors
``jupyter_mlops/deployments/schema.py``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_deployment_generation"
down_revision = "0013_run_update_time"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("observed_generation", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("rollout_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("rollout_error")
        batch.drop_column("observed_generation")
        batch.drop_column("generation")
