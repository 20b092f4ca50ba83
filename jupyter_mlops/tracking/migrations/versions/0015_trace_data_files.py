"""Trace data in batch files: a trace's spans are a byte range of one file per ingest
batch (our client's ``log-bulk``), not a file per trace.

Revision ID: 0015_trace_data_files
Revises: 0014_deployment_generation
Create Date: 2026-12-05

``traces.data_file`` (the batch file's URI; NULL for traces whose data is the per-trace
``traces.json`` MLflow's client uploads, or OTLP span files), ``data_offset`` and
``data_length`` (bytes), and an index on ``data_file`` (deletion asks whether a file
still holds a live trace).
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_trace_data_files"
down_revision = "0014_deployment_generation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("traces") as batch:
        batch.add_column(sa.Column("data_file", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("data_offset", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("data_length", sa.BigInteger(), nullable=True))
    op.create_index("ix_traces_data_file", "traces", ["data_file"])


def downgrade() -> None:
    op.drop_index("ix_traces_data_file", table_name="traces")
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("data_length")
        batch.drop_column("data_offset")
        batch.drop_column("data_file")
