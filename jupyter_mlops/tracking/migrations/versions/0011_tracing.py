"""Traces, their span index and assessments (MLflow 3 tracing).

Revision ID: 0011_tracing
Revises: 0010_datasets
Create Date: 2026-12-05

Mirrors ``jupyter_mlops/tracking/traces.py`` and ``assessments.py``. Value indexes of
the keyed tables per dialect, as migration 0006 made them for run tags: PostgreSQL's
b-tree holds a prefix of long values.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_tracing"
down_revision = "0010_datasets"
branch_labels = None
depends_on = None

PREFIX = 200


def _trace_fk() -> sa.Column:
    return sa.Column(
        "trace_id", sa.String(64), sa.ForeignKey("traces.trace_id", ondelete="CASCADE")
    )


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(64), primary_key=True),
        sa.Column(
            "experiment_id",
            sa.Integer,
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("client_request_id", sa.String(250), nullable=True),
        sa.Column("request_time", sa.BigInteger, nullable=False),
        sa.Column("execution_duration", sa.BigInteger, nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("request_preview", sa.String(1000), nullable=True),
        sa.Column("response_preview", sa.String(1000), nullable=True),
        sa.Column("name", sa.String(500), nullable=True),
    )
    op.create_index("ix_traces_experiment_time", "traces", ["experiment_id", "request_time"])
    op.create_index(
        "ix_traces_experiment_duration", "traces", ["experiment_id", "execution_duration"]
    )
    for name in ("trace_tags", "trace_metadata"):
        op.create_table(
            name,
            _trace_fk(),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", sa.String(8000), nullable=True),
            sa.PrimaryKeyConstraint("trace_id", "key", name=f"pk_{name}"),
        )
    op.create_table(  # no foreign key: a trace may be linked before it is exported
        "trace_runs",
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "run_id", name="pk_trace_runs"),
    )
    op.create_index("ix_trace_runs_run", "trace_runs", ["run_id"])
    op.create_table(
        "spans",
        _trace_fk(),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("parent_span_id", sa.String(16), nullable=True),
        sa.Column("name", sa.String(500), nullable=True),
        sa.Column("span_type", sa.String(100), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("start_time_ns", sa.BigInteger, nullable=False),
        sa.Column("end_time_ns", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("trace_id", "span_id", name="pk_spans"),
    )
    op.create_index("ix_spans_name", "spans", ["name"])
    op.create_index("ix_spans_type", "spans", ["span_type"])
    op.create_table(
        "span_attributes",
        _trace_fk(),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("trace_id", "span_id", "key", name="pk_span_attributes"),
    )
    for table in ("trace_tags", "trace_metadata", "span_attributes"):
        value = sa.text(f"left(value, {PREFIX})") if pg else "value"
        op.create_index(f"ix_{table}_key_value", table, ["key", value, "trace_id"])
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(64), primary_key=True),
        sa.Column(
            "trace_id",
            sa.String(64),
            sa.ForeignKey("traces.trace_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("valid", sa.Boolean, nullable=False),
        sa.Column("overrides", sa.String(64), nullable=True),
        sa.Column("create_time", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_assessments_trace", "assessments", ["trace_id", "create_time"])


def downgrade() -> None:
    for table in (
        "assessments",
        "span_attributes",
        "spans",
        "trace_runs",
        "trace_metadata",
        "trace_tags",
        "traces",
    ):
        op.drop_table(table)
