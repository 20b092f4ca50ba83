"""Fewer rows per trace (issue 17): implied tags and metadata as bits of
``traces.implied``.

Revision ID: 0020_trace_rows
Revises: 0019_span_status_index
Create Date: 2026-12-06

Ingest's time was half SQLite's inserts of a trace's 13 rows (~47 B-tree inserts). Tag
``mlflow.traceName`` (the ``name`` column), tag ``mlflow.trace.spansLocation``
(``TRACKING_STORE``) and metadata ``mlflow.trace_schema.version`` (``3``) are on nearly
every trace with those values: a trace holding one is now a bit of ``traces.implied``
(1, 2, 4) instead of a row (``traces.IMPLIED_KEYS``); answers and filters read the bits
as rows. Here the rows holding exactly those values move to the bits (an ``UPDATE`` of
the traces that have one, a ``DELETE`` of the rows); a different value stays a row. The
downgrade moves them back.

Measured and not done: the child tables ``WITHOUT ROWID`` on SQLite (``bench/RESULTS.md``,
"fewer B-tree inserts per trace"): no fewer instructions for the spans' rows (their text
key compared in the table and carried by the three secondary indexes costs what the
rowid's index saved), and ``span_attributes``' rows of up to 1000 characters took an
overflow page each (database +50 %).
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_trace_rows"
down_revision = "0019_span_status_index"
branch_labels = None
depends_on = None

#: (bit, table, key, value; None: the trace's name), as ``traces.IMPLIED_KEYS``.
IMPLIED = (
    (1, "trace_tags", "mlflow.traceName", None),
    (2, "trace_tags", "mlflow.trace.spansLocation", "TRACKING_STORE"),
    (4, "trace_metadata", "mlflow.trace_schema.version", "3"),
)


def _implied_value(value: str | None) -> str:
    return "traces.name" if value is None else f"'{value}'"


def _held(bit: int, table: str, key: str, value: str | None) -> str:
    """The trace has the row of ``key`` with its implied value."""
    return (
        f"EXISTS (SELECT 1 FROM {table} WHERE {table}.trace_id = traces.trace_id "
        f"AND {table}.key = '{key}' AND {table}.value = {_implied_value(value)})"
    )


def upgrade() -> None:
    op.add_column(
        "traces", sa.Column("implied", sa.SmallInteger, nullable=False, server_default=sa.text("0"))
    )
    bits = " + ".join(f"(CASE WHEN {_held(*k)} THEN {k[0]} ELSE 0 END)" for k in IMPLIED)
    candidates = " UNION ".join(
        f"SELECT trace_id FROM {table} WHERE key = '{key}'" for _, table, key, _ in IMPLIED
    )
    op.execute(f"UPDATE traces SET implied = {bits} WHERE trace_id IN ({candidates})")
    for bit, table, key, _value in IMPLIED:
        op.execute(
            f"DELETE FROM {table} WHERE key = '{key}' AND trace_id IN "
            f"(SELECT trace_id FROM traces WHERE (implied & {bit}) <> 0)"
        )


def downgrade() -> None:
    for bit, table, key, value in IMPLIED:
        op.execute(
            f"INSERT INTO {table} (trace_id, key, value) SELECT trace_id, '{key}', "
            f"{_implied_value(value)} FROM traces WHERE (implied & {bit}) <> 0"
        )
    if op.get_bind().dialect.name == "sqlite":  # no table rebuild (traces is a parent)
        op.execute("ALTER TABLE traces DROP COLUMN implied")
    else:
        op.drop_column("traces", "implied")
