"""Deployments (a named model service: model URI, target, replicas, status, URL) and the
history of the versions each served.

Revision ID: 0008_deployments
Revises: 0007_schedule_target
Create Date: 2026-12-05

Mirrors ``jupyter_mlops/deployments/schema.py`` (spelled out here: tracking/ does not import
deployments/).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_deployments"
down_revision = "0007_schedule_target"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("model_uri", sa.Text, nullable=False),
        sa.Column("target", sa.String(64), nullable=False, server_default="local"),
        sa.Column("replicas", sa.Integer, nullable=False, server_default="1"),
        sa.Column("resources", sa.Text, nullable=True),
        sa.Column("follow_alias", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("model_name", sa.String(256), nullable=True),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("served_uri", sa.Text, nullable=True),
        sa.Column("alias_version", sa.String(32), nullable=True),
        sa.Column("state", sa.Text, nullable=True),
        sa.Column("owner", sa.Text, nullable=True),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.Column("updated_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "deployment_history",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("model_uri", sa.Text, nullable=False),
        sa.Column("model_name", sa.String(256), nullable=True),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("name", "seq", name="pk_deployment_history"),
    )


def downgrade() -> None:
    op.drop_table("deployment_history")
    op.drop_table("deployments")
