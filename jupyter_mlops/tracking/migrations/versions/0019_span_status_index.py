"""An index on span status, so a trace search for a rare status (``span.status =
'ERROR'``) reads its spans instead of every trace of the experiment (issue 17).

Revision ID: 0019_span_status_index
Revises: 0017_search_short_values
Create Date: 2026-12-06

``trace_search.pick_driver`` counts a filter's index rows and starts a search from a
filter with few; ``spans.status`` had no index, so ``span.status = 'ERROR'`` walked
every trace (~150 ms per 100k traces on SQLite). PostgreSQL's planner uses it too.
The trace id is in it: a search that checks a span status per trace (a common status,
walked) seeks ``(status, trace_id)``; on ``(status)`` alone, SQLite without statistics
(a new store) chose it over the primary key and read every span of that status per
trace. On a big existing store the build holds writes of spans for its duration.
"""

from alembic import op

revision = "0019_span_status_index"
down_revision = "0017_search_short_values"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_spans_status", "spans", ["status", "trace_id"])


def downgrade() -> None:
    op.drop_index("ix_spans_status", table_name="spans")
