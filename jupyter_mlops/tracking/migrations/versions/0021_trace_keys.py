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
SPAN_COLUMNS = "span_id, parent_span_id, name, span_type, status, start_time_ns, end_time_ns"
SPAN_DDL = """
  span_id VARCHAR(16) NOT NULL, parent_span_id VARCHAR(16), name VARCHAR(500),
  span_type VARCHAR(100), status VARCHAR(32) NOT NULL, start_time_ns BIGINT NOT NULL,
  end_time_ns BIGINT"""
ATTRIBUTE_DDL = """
  span_id VARCHAR(16) NOT NULL, "key" VARCHAR(250) NOT NULL, value VARCHAR(1000)"""


def _run(*statements: str) -> None:
    for sql in statements:
        op.execute(sql)


def _value_index(pg: bool, link: str) -> str:
    value = f"left(value, {PREFIX})" if pg else "value"
    return f'CREATE INDEX ix_span_attributes_key_value ON span_attributes ("key", {value}, {link})'


def _span_indexes(link: str) -> list[str]:
    return [
        "CREATE INDEX ix_spans_name ON spans (name)",
        "CREATE INDEX ix_spans_type ON spans (span_type)",
        f"CREATE INDEX ix_spans_status ON spans (status, {link})",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def _upgrade_sqlite() -> None:
    fk = "trace_key INTEGER NOT NULL REFERENCES traces (trace_key) ON DELETE CASCADE"
    _run(
        "ALTER TABLE traces ADD COLUMN trace_key INTEGER",
        "UPDATE traces SET trace_key = rowid",
        "CREATE UNIQUE INDEX uq_traces_trace_key ON traces (trace_key)",
        f"CREATE TABLE spans_0021 ({fk},{SPAN_DDL},"
        " CONSTRAINT pk_spans PRIMARY KEY (trace_key, span_id))",
        f"INSERT INTO spans_0021 (trace_key, {SPAN_COLUMNS}) SELECT t.trace_key, "
        + ", ".join(f"s.{c.strip()}" for c in SPAN_COLUMNS.split(","))
        + " FROM spans s JOIN traces t ON t.trace_id = s.trace_id ORDER BY t.trace_key, s.span_id",
        "DROP TABLE spans",
        "ALTER TABLE spans_0021 RENAME TO spans",
        *_span_indexes("trace_key"),
        f"CREATE TABLE span_attributes_0021 ({fk},{ATTRIBUTE_DDL},"
        ' CONSTRAINT pk_span_attributes PRIMARY KEY (trace_key, span_id, "key"))',
        'INSERT INTO span_attributes_0021 (trace_key, span_id, "key", value)'
        ' SELECT t.trace_key, a.span_id, a."key", a.value FROM span_attributes a'
        ' JOIN traces t ON t.trace_id = a.trace_id ORDER BY t.trace_key, a.span_id, a."key"',
        "DROP TABLE span_attributes",
        "ALTER TABLE span_attributes_0021 RENAME TO span_attributes",
        _value_index(False, "trace_key"),
    )


def _upgrade_postgresql() -> None:
    seq = "traces_trace_key_seq"
    statements = [
        "ALTER TABLE traces ADD COLUMN trace_key BIGINT",
        f"CREATE SEQUENCE {seq} OWNED BY traces.trace_key",
        f"UPDATE traces SET trace_key = nextval('{seq}')",
        "ALTER TABLE traces ALTER COLUMN trace_key SET NOT NULL,"
        f" ALTER COLUMN trace_key SET DEFAULT nextval('{seq}')",
        "ALTER TABLE traces ADD CONSTRAINT uq_traces_trace_key UNIQUE (trace_key)",
    ]
    for table, pk in (("spans", "span_id"), ("span_attributes", 'span_id, "key"')):
        statements += [
            f"ALTER TABLE {table} ADD COLUMN trace_key BIGINT",
            f"UPDATE {table} c SET trace_key = t.trace_key FROM traces t"
            " WHERE t.trace_id = c.trace_id",
            # its primary key, foreign key and the indexes holding it go with it
            f"ALTER TABLE {table} DROP COLUMN trace_id",
            f"ALTER TABLE {table} ALTER COLUMN trace_key SET NOT NULL",
            f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (trace_key, {pk})",
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_trace_key FOREIGN KEY (trace_key)"
            " REFERENCES traces (trace_key) ON DELETE CASCADE",
        ]
    statements += [
        "CREATE INDEX ix_spans_status ON spans (status, trace_key)",
        _value_index(True, "trace_key"),
    ]
    _run(*statements)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
    else:
        _downgrade_sqlite()


def _downgrade_sqlite() -> None:
    fk = "trace_id VARCHAR(64) NOT NULL REFERENCES traces (trace_id) ON DELETE CASCADE"
    _run(
        f"CREATE TABLE spans_0020 ({fk},{SPAN_DDL},"
        " CONSTRAINT pk_spans PRIMARY KEY (trace_id, span_id))",
        f"INSERT INTO spans_0020 (trace_id, {SPAN_COLUMNS}) SELECT t.trace_id, "
        + ", ".join(f"s.{c.strip()}" for c in SPAN_COLUMNS.split(","))
        + " FROM spans s JOIN traces t ON t.trace_key = s.trace_key",
        "DROP TABLE spans",
        "ALTER TABLE spans_0020 RENAME TO spans",
        *_span_indexes("trace_id"),
        f"CREATE TABLE span_attributes_0020 ({fk},{ATTRIBUTE_DDL},"
        ' CONSTRAINT pk_span_attributes PRIMARY KEY (trace_id, span_id, "key"))',
        'INSERT INTO span_attributes_0020 (trace_id, span_id, "key", value)'
        ' SELECT t.trace_id, a.span_id, a."key", a.value FROM span_attributes a'
        " JOIN traces t ON t.trace_key = a.trace_key",
        "DROP TABLE span_attributes",
        "ALTER TABLE span_attributes_0020 RENAME TO span_attributes",
        _value_index(False, "trace_id"),
        "DROP INDEX uq_traces_trace_key",
        "ALTER TABLE traces DROP COLUMN trace_key",
    )


def _downgrade_postgresql() -> None:
    statements = []
    for table, pk in (("spans", "span_id"), ("span_attributes", 'span_id, "key"')):
        statements += [
            f"ALTER TABLE {table} ADD COLUMN trace_id VARCHAR(64)",
            f"UPDATE {table} c SET trace_id = t.trace_id FROM traces t"
            " WHERE t.trace_key = c.trace_key",
            f"ALTER TABLE {table} DROP COLUMN trace_key",
            f"ALTER TABLE {table} ALTER COLUMN trace_id SET NOT NULL",
            f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (trace_id, {pk})",
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_trace_id_fkey FOREIGN KEY (trace_id)"
            " REFERENCES traces (trace_id) ON DELETE CASCADE",
        ]
    statements += [
        "CREATE INDEX ix_spans_status ON spans (status, trace_id)",
        _value_index(True, "trace_id"),
        "ALTER TABLE traces DROP COLUMN trace_key",  # its sequence and constraint with it
    ]
    _run(*statements)
