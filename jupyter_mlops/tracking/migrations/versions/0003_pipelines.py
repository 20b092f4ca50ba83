"""Pipeline runs, their steps and recurring schedules.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Mirrors ``jupyter_mlops/pipelines/schema.py`` (spelled out here: tracking/ does
not import pipelines/).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=True),
        sa.Column("source_path", sa.Text, nullable=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=True),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("run_dir", sa.Text, nullable=False),
        sa.Column("target", sa.String(32), nullable=False, server_default="local"),
        sa.Column("executor", sa.String(128), nullable=True),
        sa.Column("schedule_id", sa.String(32), nullable=True),
        sa.Column("retry_of", sa.String(32), nullable=True),
    )
    op.create_index("ix_pipeline_runs_created", "pipeline_runs", ["created_time"])
    op.create_index("ix_pipeline_runs_status", "pipeline_runs", ["status"])
    op.create_table(
        "pipeline_steps",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("start_time", sa.BigInteger, nullable=True),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("tracking_run_id", sa.String(32), nullable=True),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("cached_from", sa.String(32), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "step", name="pk_pipeline_steps"),
    )
    op.create_index("ix_pipeline_steps_cache", "pipeline_steps", ["cache_key", "status"])
    op.create_table(
        "pipeline_schedules",
        sa.Column("schedule_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("pipeline_path", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("cron", sa.String(128), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("next_fire_time", sa.BigInteger, nullable=True),
        sa.Column("last_fire_time", sa.BigInteger, nullable=True),
        sa.Column("last_run_id", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_time", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_pipeline_schedules_next", "pipeline_schedules", ["paused", "next_fire_time"]
    )


def downgrade() -> None:
    op.drop_table("pipeline_schedules")
    op.drop_table("pipeline_steps")
    op.drop_table("pipeline_runs")
