"""Schedules submit their runs to a pipeline target.

Revision ID: 0007_schedule_target
Revises: 0006_search_indexes
Create Date: 2026-11-27

Existing schedules keep firing on the server itself: the column defaults to
``local``, the built-in target every configuration has.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_schedule_target"
down_revision = "0006_search_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_schedules") as batch:
        batch.add_column(sa.Column("target", sa.String(32), nullable=False, server_default="local"))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_schedules") as batch:
        batch.drop_column("target")
