"""Planner statistics of the tables a run or trace search reads, kept current by the store
itself, on a thread of its own (:mod:`.stats_keeper`): :func:`refresh` on PostgreSQL,
:func:`refresh_sqlite` on SQLite.

Without statistics (tables never analyzed: a new store before autovacuum's first
``ANALYZE``, which lags a minute or more behind bulk logging and may be off) the planner
multiplies default selectivities down to one row per table and plans a search ordered by
a metric with a metric and a param filter as nested loops four deep, each a scan: 3.6 s
at 50 runs, over a minute at 100 (``bench/RESULTS.md``). No SQL shape
survives estimates that wrong, and hints would undo the plans that are right at a million
runs, so the store takes the statistics: a table is analyzed when it has data and was
never analyzed, or has grown to twice the pages its statistics were taken at (the
planner scales their row count by the current pages, not the values' distribution), or
has had :data:`CHANGED_SHARE` of its rows written since (and at least
:data:`CHANGED_MIN`), once the store has :data:`MIN_RUNS` runs.

The last rule is for new keys. Statistics whose most-common-values list holds every key
of a table (up to 100 keys) estimate a key they have not seen at one row: a new
experiment's grid of 24 runs with keys of its own, in a store analyzed at 4,000 runs,
was searched as four nested loops, each repeating the next (a first page of a
three-clause filter by a metric, 0.9-1.3 s; 55 s at a few hundred runs). Neither the
doubling rule nor autovacuum's (a tenth of the rows, plus 50) sees such a grid.
PostgreSQL's counters of changed rows (``pg_stat_get_mod_since_analyze``) reach the
catalog up to ~10 s after a write's commit; the store checks again :data:`SETTLE_S` after
a write (:mod:`.stats_keeper`), so a burst's last writes are counted.

``ANALYZE`` takes a lock that neither readers nor writers of rows wait for; it runs on
a connection of its own, outside any transaction of the caller, and ``SKIP_LOCKED``
passes over a table that autovacuum or another store is analyzing. A failure is logged,
never raised: statistics are an optimization of later searches, not part of a write.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from .migrate import read_transaction, write_transaction
from .schema import store_info

log = logging.getLogger(__name__)

#: The tables a run search reads (filters and orders on metrics, params and tags).
SEARCH_TABLES = ("runs", "params", "tags", "latest_metrics")
#: The tables a trace search reads (span, attribute, tag and metadata filters; time and
#: duration orders): without statistics its walks and semi-joins are planned as nested
#: scans too (a page of 4 over 300 traces took minutes).
TRACE_TABLES = ("traces", "spans", "span_attributes", "trace_tags", "trace_metadata")
#: Runs a store has before its statistics are taken: early, as a plan without them grows
#: with the fourth power of the runs, and ANALYZE of tables this small takes milliseconds.
#: (Rows per page taken from a first page partly filled underestimate the table until it
#: doubles its pages and is analyzed again.)
MIN_RUNS = 10
#: Rows written (inserted, updated, deleted) since a table's statistics, as a share of
#: its rows then, past which they are taken again; and the fewest such rows that count.
#: ``ANALYZE`` samples 30,000 rows: ~0.1-0.3 s for a table of millions, on the store's
#: own thread, at most once per check.
CHANGED_SHARE = 0.005
CHANGED_MIN = 20
#: Seconds after a write (not a check point) the store checks its statistics again:
#: longer than PostgreSQL's 10 s before an idle session's counters reach the catalog.
SETTLE_S = 12.0

_RELATIONS = sa.text(
    "SELECT c.relname, c.reltuples, c.relpages,"
    " pg_relation_size(c.oid) / current_setting('block_size')::int AS pages,"
    " pg_stat_get_mod_since_analyze(c.oid) AS changed"
    " FROM unnest(CAST(:tables AS text[])) AS t(name)"
    " JOIN pg_class c ON c.oid = to_regclass(t.name)"
)
_ENOUGH_RUNS = sa.text("SELECT count(*) FROM (SELECT 1 FROM runs LIMIT :n) AS r")
_ENOUGH_TRACES = sa.text("SELECT count(*) FROM (SELECT 1 FROM traces LIMIT :n) AS r")


def check_due(writes: int) -> bool:
    """Whether a store checks the statistics after its ``writes``-th write (a run created,
    a batch logged): the 1st, 2nd, 4th, ... 1024th, then every 1024th. The check is a
    read of the catalog."""
    return writes > 0 and (writes & (writes - 1) == 0 or writes % 1024 == 0)


def stale_tables(conn: sa.Connection) -> list[str]:
    """The search tables whose statistics are missing, taken at half their pages or
    less, or at :data:`CHANGED_SHARE` fewer changed rows (the run tables none while the
    store has fewer than :data:`MIN_RUNS` runs, the trace tables none while it has fewer
    than as many traces)."""
    stale = [
        name
        for name, reltuples, relpages, pages, changed in conn.execute(
            _RELATIONS, {"tables": [*SEARCH_TABLES, *TRACE_TABLES]}
        )
        # reltuples < 0: never analyzed nor vacuumed (PostgreSQL 14+; 0 before, with
        # relpages 0, which the doubling test below covers); pages is NULL for a table
        # dropped since the catalog was read (a schema dropped under a running store)
        if pages
        and (
            reltuples < 0
            or pages >= 2 * relpages
            or changed >= max(CHANGED_MIN, CHANGED_SHARE * reltuples)
        )
    ]
    due = []
    for tables, enough in ((SEARCH_TABLES, _ENOUGH_RUNS), (TRACE_TABLES, _ENOUGH_TRACES)):
        mine = [name for name in stale if name in tables]
        if mine and conn.execute(enough, {"n": MIN_RUNS}).scalar_one() >= MIN_RUNS:
            due += mine
    return sorted(due)


def refresh(engine: sa.Engine) -> list[str]:
    """``ANALYZE`` the stale search tables (:func:`stale_tables`); returns their names
    (one that another session holds locked is passed over). Never raises."""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            tables = stale_tables(conn)
            if tables:
                # the names are this module's constants, resolved by the search_path
                conn.exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {', '.join(tables)}")
            return tables
    except sa.exc.SQLAlchemyError as e:  # statistics never fail the caller's write
        log.info("planner statistics of the run search tables not refreshed: %s", e)
        return []


#: Runs an SQLite store has before :func:`refresh_sqlite` analyzes it.
SQLITE_MIN_RUNS = 100


def refresh_sqlite(engine: sa.Engine) -> bool:
    """SQLite: ``ANALYZE`` (sampled: cheap) when the runs have doubled since the last
    time (``store_info.analyzed_runs``), from :data:`SQLITE_MIN_RUNS` runs on; whether
    it ran. With statistics, searches start from their most selective filter."""
    from sqlalchemy.dialects.sqlite import insert

    with read_transaction(engine) as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM runs").scalar() or 0
        seen = conn.execute(
            sa.select(store_info.c.value).where(store_info.c.key == "analyzed_runs")
        ).scalar()
    if n < SQLITE_MIN_RUNS or (seen is not None and n < 2 * int(seen)):
        return False
    with write_transaction(engine) as conn:
        conn.exec_driver_sql("PRAGMA analysis_limit = 400")
        conn.exec_driver_sql("ANALYZE")
        stmt = insert(store_info).values(key="analyzed_runs", value=str(n))
        conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": str(n)}))
    return True
