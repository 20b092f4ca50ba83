"""An integer key per trace, and the span tables keyed and joined by it (issue 17).

Revision ID: 0021_trace_keys
Revises: 0020_trace_rows
Create Date: 2026-12-06

Trace ids are random (tracers draw them: ``uuid4``, OpenTelemetry's generator), so every
index led by ``trace_id`` took each new trace's rows at random places: ~10 B-tree inserts
per 3-span trace in ``spans`` and ``span_attributes`` alone, each dirtying a page of its
own, which the commit writes to the WAL. At 100k traces that was ~200 µs of SQLite's
time per trace, where appends cost ~50 (``bench/sqlite_trace_keys.py``).

``traces.trace_key`` is an integer that grows with each new trace (existing traces: their
row order on SQLite; PostgreSQL's sequence ``traces_trace_key_seq``, also the column's
default), unique. ``spans`` and ``span_attributes`` carry it instead of ``trace_id``, in
their primary keys, ``ix_spans_status`` and ``ix_span_attributes_key_value``, with their
foreign keys on it. SQLite rebuilds the two tables (it cannot change a primary key);
PostgreSQL rewrites them in place. Both take time and space in proportion to the spans
stored, once.
"""

from alembic import op

revision = "0021_trace_keys"
down_revision = "0020_trace_rows"
branch_labels = None
depends_on = None

PREFIX = 200  # PostgreSQL's value index holds a prefix (migration 0011)
#: (table, its columns besides the trace's, their DDL, its primary key after the trace's)
TABLES = (
    (
        "spans",
        "span_id, parent_span_id, name, span_type, status, start_time_ns, end_time_ns",
        "span_id VARCHAR(16) NOT NULL, parent_span_id VARCHAR(16), name VARCHAR(500),"
        " span_type VARCHAR(100), status VARCHAR(32) NOT NULL, start_time_ns BIGINT NOT NULL,"
        " end_time_ns BIGINT",
        "span_id",
    ),
    (
        "span_attributes",
        'span_id, "key", value',
        'span_id VARCHAR(16) NOT NULL, "key" VARCHAR(250) NOT NULL, value VARCHAR(1000)',
        'span_id, "key"',
    ),
)


def _run(statements: list[str]) -> None:
    for sql in statements:
        op.execute(sql)


def _indexes(pg: bool, link: str) -> list[str]:
    """The span tables' indexes that hold ``link``, the column naming the trace (SQLite
    rebuilds all of them with the tables)."""
    value = f"left(value, {PREFIX})" if pg else "value"
    return [
        *([] if pg else ["CREATE INDEX ix_spans_name ON spans (name)"]),
        *([] if pg else ["CREATE INDEX ix_spans_type ON spans (span_type)"]),
        f"CREATE INDEX ix_spans_status ON spans (status, {link})",
        f'CREATE INDEX ix_span_attributes_key_value ON span_attributes ("key", {value}, {link})',
    ]


def _relink_sqlite(link: str, link_type: str, old: str) -> list[str]:
    """Rebuild the span tables with ``link`` (of type ``link_type``) naming their trace
    instead of ``old``: SQLite cannot change a primary key in place."""
    out = []
    for table, columns, ddl, pk in TABLES:
        new = f"{table}_relinked"
        picked = ", ".join(f"c.{c.strip()}" for c in columns.split(","))
        out += [
            f"CREATE TABLE {new} ({link} {link_type} NOT NULL"
            f" REFERENCES traces ({link}) ON DELETE CASCADE, {ddl},"
            f" CONSTRAINT pk_{table} PRIMARY KEY ({link}, {pk}))",
            f"INSERT INTO {new} ({link}, {columns}) SELECT t.{link}, {picked}"
            f" FROM {table} c JOIN traces t ON t.{old} = c.{old} ORDER BY 1, 2",
            f"DROP TABLE {table}",
            f"ALTER TABLE {new} RENAME TO {table}",
        ]
    return out + _indexes(False, link)


def _relink_postgresql(link: str, link_type: str, old: str) -> list[str]:
    """The same in place on PostgreSQL: dropping ``old`` drops its primary key, foreign
    key and the indexes holding it."""
    out = []
    for table, _columns, _ddl, pk in TABLES:
        out += [
            f"ALTER TABLE {table} ADD COLUMN {link} {link_type}",
            f"UPDATE {table} c SET {link} = t.{link} FROM traces t WHERE t.{old} = c.{old}",
            f"ALTER TABLE {table} DROP COLUMN {old}",
            f"ALTER TABLE {table} ALTER COLUMN {link} SET NOT NULL",
            f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({link}, {pk})",
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_{link}_fkey FOREIGN KEY ({link})"
            f" REFERENCES traces ({link}) ON DELETE CASCADE",
        ]
    return out + _indexes(True, link)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        seq = "traces_trace_key_seq"
        _run(
            [
                "ALTER TABLE traces ADD COLUMN trace_key BIGINT",
                f"CREATE SEQUENCE {seq} OWNED BY traces.trace_key",
                f"UPDATE traces SET trace_key = nextval('{seq}')",
                "ALTER TABLE traces ALTER COLUMN trace_key SET NOT NULL,"
                f" ALTER COLUMN trace_key SET DEFAULT nextval('{seq}')",
                "ALTER TABLE traces ADD CONSTRAINT uq_traces_trace_key UNIQUE (trace_key)",
                *_relink_postgresql("trace_key", "BIGINT", "trace_id"),
            ]
        )
    else:
        _run(
            [
                "ALTER TABLE traces ADD COLUMN trace_key INTEGER",
                "UPDATE traces SET trace_key = rowid",
                "CREATE UNIQUE INDEX uq_traces_trace_key ON traces (trace_key)",
                *_relink_sqlite("trace_key", "INTEGER", "trace_id"),
            ]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run(
            [
                *_relink_postgresql("trace_id", "VARCHAR(64)", "trace_key"),
                "ALTER TABLE traces DROP COLUMN trace_key",  # its sequence, constraint too
            ]
        )
    else:
        _run(
            [
                *_relink_sqlite("trace_id", "VARCHAR(64)", "trace_key"),
                "DROP INDEX uq_traces_trace_key",
                "ALTER TABLE traces DROP COLUMN trace_key",
            ]
        )
