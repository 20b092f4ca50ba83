"""Training jobs and their ranks.

Revision ID: 0009_training_jobs
Revises: 0008_deployments
Create Date: 2026-12-05

Mirrors ``jupyter_mlops/jobs/schema.py`` (spelled out here: tracking/ does not import
jobs/).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_training_jobs"
down_revision = "0008_deployments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_jobs",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=True),
        sa.Column("source_path", sa.Text, nullable=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=True),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("job_dir", sa.Text, nullable=False),
        sa.Column("target", sa.String(64), nullable=False, server_default="local"),
        sa.Column("executor", sa.String(128), nullable=True),
    )
    op.create_index("ix_training_jobs_created", "training_jobs", ["created_time"])
    op.create_index("ix_training_jobs_status", "training_jobs", ["status"])
    op.create_table(
        "training_ranks",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("node", sa.Integer, nullable=False),
        sa.Column("local_rank", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("pgid", sa.Integer, nullable=True),
        sa.Column("pid_start", sa.BigInteger, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("start_time", sa.BigInteger, nullable=True),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("job_id", "rank", name="pk_training_ranks"),
    )


def downgrade() -> None:
    op.drop_table("training_ranks")
    op.drop_index("ix_training_jobs_status", table_name="training_jobs")
    op.drop_index("ix_training_jobs_created", table_name="training_jobs")
    op.drop_table("training_jobs")
