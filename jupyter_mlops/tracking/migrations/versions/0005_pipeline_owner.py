"""Schedules remember which server owns them.

Revision ID: 0005_pipeline_owner
Revises: 0004_registry
Create Date: 2026-11-27

With several servers on one database (PostgreSQL), each fires only the schedules
created on it (``host:root_dir``): another server could not even find the file.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_pipeline_owner"
down_revision = "0004_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_schedules") as batch:
        batch.add_column(sa.Column("owner", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_schedules") as batch:
        batch.drop_column("owner")
