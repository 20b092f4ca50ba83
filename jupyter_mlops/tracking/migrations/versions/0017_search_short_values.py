"""PostgreSQL: params and tags of up to 200 characters indexed on their whole value, so
a search's equality filter is an index-only scan (issue 18).

Revision ID: 0017_search_short_values
Revises: 0016_logged_model_metrics
Create Date: 2026-12-06

Migration 0006 indexes ``(key, left(value, 200), run_uuid)``: PostgreSQL never scans an
expression index index-only (the query names ``value``, which the index does not hold),
so reading the 100k runs of ``params.p = 'v'`` at a million runs was 100k heap fetches,
and intersecting it with another filter cost one index probe per candidate of the other
(``bench/RESULTS.md``). ``(key, value, run_uuid) WHERE length(value) <= 200`` holds the
whole value of every short row (a b-tree entry stays far below PostgreSQL's 2.7 kB
limit), and search adds ``length(value) <= 200`` to equality and ``IN`` comparisons with
short literals, which lets the planner use it. Long literals, ``LIKE``, ``!=`` and
``IS NOT NULL`` keep 0006's prefix index. Statistics on ``(key, value, length(value))``
give the planner the share of a value for its key, and of short values.

On a big existing store the index is built by ``CREATE INDEX`` in the migration's
transaction: writes of params and tags wait for the build (searches go on); 20M params
rows took minutes (``bench/RESULTS.md``). To avoid the wait, build it beforehand with
``CREATE INDEX CONCURRENTLY`` and the same definition (``docs/scale.md``): the migration
keeps a valid index of that name and rebuilds an invalid one (an interrupted concurrent
build). SQLite already indexes ``(key, value, run_uuid)`` (0006): nothing to do there.
"""

from alembic import op

revision = "0017_search_short_values"
down_revision = "0016_logged_model_metrics"
branch_labels = None
depends_on = None

SHORT = 200  # schema.VALUE_PREFIX_CHARS: a value this long or shorter is in the index


def index_ddl(table: str) -> str:
    """The index's definition (``docs/scale.md`` gives the CONCURRENTLY form of it)."""
    return (
        f"CREATE INDEX ix_{table}_key_short_value ON {table} (key, value, run_uuid) "
        f"WHERE length(value) <= {SHORT}"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in ("params", "tags"):
        valid = bind.exec_driver_sql(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %(name)s AND c.relnamespace = current_schema()::regnamespace",
            {"name": f"ix_{table}_key_short_value"},
        ).scalar()
        if valid is False:  # left by an interrupted CREATE INDEX CONCURRENTLY
            op.execute(f"DROP INDEX ix_{table}_key_short_value")
        if not valid:
            op.execute(index_ddl(table))
        info = bind.dialect.server_version_info or (0,)
        if info >= (14,):  # statistics on an expression: PostgreSQL 14+
            op.execute(f"DROP STATISTICS IF EXISTS st_{table}_key_value")
            op.execute(
                f"CREATE STATISTICS st_{table}_key_value (mcv) "
                f"ON key, value, (length(value)) FROM {table}"
            )
        op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ("params", "tags"):
        op.execute(f"DROP STATISTICS IF EXISTS st_{table}_key_value")
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_key_short_value")
