"""Indexes for filtered search on PostgreSQL and for the default run order; time
fields MLflow serves, backfilled where unknown.

Revision ID: 0006_search_indexes
Revises: 0005_pipeline_owner
Create Date: 2026-11-27

* PostgreSQL's b-tree cannot hold param/tag values of up to 8000 characters, so
  ``params``/``tags`` were indexed on ``(key, run_uuid)`` only and ``params.x = 'v'``
  read every row of key ``x`` from the heap. They are now indexed on
  ``(key, left(value, 200), run_uuid)``: search compares the prefix (exact
  for literals shorter than 200 characters, rechecked on the full value otherwise).
  Extended statistics on the same pair (PostgreSQL 14+) tell the planner how common
  a value is *for that key*, so it picks hash joins instead of thousands of probes.
* Runs: ``(experiment_id, lifecycle_stage, start_time DESC, run_uuid)`` is the
  default search order, so a page of an experiment is read from the index in order
  instead of sorting every run (PostgreSQL: ``DESC NULLS LAST``, SQLite's default).
* Experiments without ``creation_time`` get their first run's start (else now), and
  ``last_update_time`` at least that; deleted runs and experiments without
  ``deleted_time`` get now, so ``gc --older-than`` never purges them early.
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0006_search_indexes"
down_revision = "0005_pipeline_owner"
branch_labels = None
depends_on = None

PREFIX = 200  # characters of a value in the index: 4 bytes each at most, far below 2.7 kB


def _pg_has_expression_statistics() -> bool:
    info = op.get_bind().dialect.server_version_info or (0,)
    return info >= (14,)


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    op.drop_index("ix_runs_experiment", table_name="runs")
    order = "start_time DESC NULLS LAST" if pg else "start_time DESC"
    op.create_index(
        "ix_runs_search_order",
        "runs",
        ["experiment_id", "lifecycle_stage", sa.text(order), "run_uuid"],
    )
    if pg:
        for table in ("params", "tags"):
            op.drop_index(f"ix_{table}_key", table_name=table)
            # run_uuid as a key column, not INCLUDE: a nested loop over runs (the plan
            # of tables not analyzed yet) then probes (key, prefix, run) per run
            op.create_index(
                f"ix_{table}_key_prefix",
                table,
                ["key", sa.text(f"left(value, {PREFIX})"), "run_uuid"],
            )
            if _pg_has_expression_statistics():
                op.execute(
                    f"CREATE STATISTICS st_{table}_key_prefix (mcv) "
                    f"ON key, left(value, {PREFIX}) FROM {table}"
                )
            op.execute(f"ANALYZE {table}")
    now = int(time.time() * 1000)
    op.execute(
        sa.text(
            "UPDATE experiments SET creation_time = COALESCE("
            "(SELECT MIN(start_time) FROM runs WHERE runs.experiment_id = experiments.experiment_id),"
            " :now) WHERE creation_time IS NULL"
        ).bindparams(now=now)
    )
    op.execute(
        "UPDATE experiments SET last_update_time = creation_time "
        "WHERE last_update_time IS NULL OR last_update_time < creation_time"
    )
    for table in ("experiments", "runs"):
        op.execute(
            sa.text(
                f"UPDATE {table} SET deleted_time = :now "
                "WHERE lifecycle_stage = 'deleted' AND deleted_time IS NULL"
            ).bindparams(now=now)
        )


def downgrade() -> None:
    # The backfilled times stay: they are valid values of nullable columns.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in ("params", "tags"):
            op.execute(f"DROP STATISTICS IF EXISTS st_{table}_key_prefix")
            op.drop_index(f"ix_{table}_key_prefix", table_name=table)
            op.create_index(f"ix_{table}_key", table, ["key", "run_uuid"])
    op.drop_index("ix_runs_search_order", table_name="runs")
    op.create_index(
        "ix_runs_experiment", "runs", ["experiment_id", "lifecycle_stage", "start_time"]
    )
