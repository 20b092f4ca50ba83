"""count_runs (the runs table's counts, ``api/v1/runs/count``): on SQLite a filter whose
one metric/param/tag comparison is ``IS NULL`` is counted as all runs less the runs with
the key (``search.split_absence``); PostgreSQL counts the filter as it searches. Every
count must equal the runs the filter means and the runs ``search_runs`` pages through."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from jupyter_mlops.tracking.entities import ACTIVE_ONLY, ALL, DELETED_ONLY, Metric
from jupyter_mlops.tracking.schema import runs

PARENT = "mlflow.parentRunId"


@dataclass
class Row:
    experiment: str
    start: int
    deleted: bool
    tags: dict[str, str]
    metrics: set[str]
    params: set[str]


@pytest.fixture
def family(module_store):
    """Two experiments of parents and children (the parent tag), deleted runs of each
    kind, runs without a metric or param."""
    store = module_store
    eids = [store.create_experiment(f"count-{uuid.uuid4().hex}") for _ in range(2)]
    rows: dict[str, Row] = {}
    parents: list[str] = []
    for i in range(30):
        eid = eids[i % 3 == 2]
        tags = {"team": "ab"[i % 2]}
        if i % 5 in (1, 2) and parents:
            tags[PARENT] = parents[i % len(parents)]
        rid = store.create_run(eid, start_time=i, run_name=f"c{i}", tags=tags).info.run_id
        metrics = [] if i % 4 == 0 else [Metric("m", i / 10, 0, 0)]
        params = [] if i % 7 == 0 else [("p", str(i % 3))]
        store.log_batch(rid, metrics=metrics, params=params)
        if i % 6 == 5:
            store.delete_run(rid)
        if PARENT not in tags:
            parents.append(rid)
        rows[rid] = Row(eid, i, i % 6 == 5, tags, {m.key for m in metrics}, {k for k, _ in params})
    return store, eids, rows


FILTERS: list[tuple[str | None, Callable[[Row], bool]]] = [
    (None, lambda r: True),
    (f"tags.{PARENT} IS NULL", lambda r: PARENT not in r.tags),
    (f"tags.{PARENT} IS NOT NULL", lambda r: PARENT in r.tags),
    (
        f"tags.`{PARENT}` IS NULL and tags.team = 'a'",
        lambda r: PARENT not in r.tags and r.tags["team"] == "a",
    ),
    (
        f"tags.{PARENT} IS NULL and attributes.start_time >= 10",
        lambda r: PARENT not in r.tags and r.start >= 10,
    ),
    ("metrics.m IS NULL", lambda r: "m" not in r.metrics),
    ("params.p IS NULL and attributes.run_name != 'c3'", lambda r: "p" not in r.params),
    ("tags.nobody IS NULL", lambda r: True),
    ("tags.team IS NULL", lambda r: False),
    (
        f"tags.{PARENT} IS NULL and metrics.m IS NULL",
        lambda r: PARENT not in r.tags and "m" not in r.metrics,
    ),
]
VIEWS = {ACTIVE_ONLY: (False,), DELETED_ONLY: (True,), ALL: (False, True)}


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("flt, keep", FILTERS, ids=[str(f) for f, _ in FILTERS])
def test_counts_equal_the_runs_searched(family, flt, keep, view):
    store, eids, rows = family
    for scope in ([eids[0]], [eids[1]], eids):
        meant = {
            rid
            for rid, r in rows.items()
            if r.experiment in scope and r.deleted in VIEWS[view] and keep(r)
        }
        found, token = store.search_runs(scope, flt, run_view_type=view, max_results=1000)
        assert token is None
        assert {r.info.run_id for r in found} == meant, (flt, view, scope)
        assert store.count_runs(scope, flt, run_view_type=view) == len(meant), (flt, view, scope)


def test_a_count_follows_a_tag_set_and_deleted_later(family):
    store, eids, rows = family
    flt = f"tags.{PARENT} IS NULL"
    before = store.count_runs(eids, flt)
    top = next(rid for rid, r in rows.items() if PARENT not in r.tags and not r.deleted)
    store.set_tag(top, PARENT, next(iter(rows)))
    assert store.count_runs(eids, flt) == before - 1
    store.delete_tag(top, PARENT)
    assert store.count_runs(eids, flt) == before
    store.delete_run(top)
    assert store.count_runs(eids, flt) == before - 1
    assert store.count_runs(eids, flt, run_view_type=DELETED_ONLY) == len(
        store.search_runs(eids, flt, run_view_type=DELETED_ONLY, max_results=1000)[0]
    )
    store.restore_run(top)


def statements(store, call: Callable[[], object]) -> list[str]:
    """The SQL statements ``call`` runs on the store's engine."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    return seen


def test_the_top_level_count_reads_no_list_of_child_runs_per_run(family):
    """The runs table's top-level count on SQLite: all runs less those with the parent
    tag, two counts, no ``NOT IN`` (which probed an in-memory list of every child
    run once per run: 85-100 ms at 100k runs, 30 % of them children, against 58-65 ms)."""
    store, eids, _ = family
    if store.dialect != "sqlite":
        pytest.skip("SQLite's count")
    sql = " ".join(statements(store, lambda: store.count_runs(eids, f"tags.{PARENT} IS NULL")))
    assert "NOT IN" not in sql.upper(), sql


@pytest.mark.parametrize("count", [True, False], ids=["count", "search"])
def test_is_null_is_an_anti_join_on_postgresql(family, count):
    """PostgreSQL never plans ``NOT IN (subquery)`` as an anti-join: past ``work_mem``
    (the parent tag of a few hundred thousand child runs) it scans the list again per
    run. ``IS NULL`` is ``NOT EXISTS``, which it plans as one."""
    store, eids, _ = family
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL's plan")
    flt = f"tags.{PARENT} IS NULL and tags.team = 'a'"
    where = store._search_where(eids, flt, ACTIVE_ONLY, None, None)
    q = sa.select(sa.func.count() if count else runs.c.run_uuid).select_from(runs).where(*where)
    if not count:
        q = q.order_by(runs.c.start_time.desc()).limit(100)
    with store.engine.connect() as conn:
        sql = q.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}").scalars())
    assert "Anti Join" in plan and "SubPlan" not in plan, plan


def test_a_page_in_index_order_probes_is_null_per_run_on_sqlite(family):
    """SQLite reads a page of one experiment in the default order from its index and
    stops after the page: ``IS NULL`` is a probe per run read (``NOT EXISTS``), not a
    list of the key's every run read first (the runs table's first page of top-level
    runs, 100k runs: 46 -> 14 ms). Where every run is read anyway (two experiments,
    another order) it stays ``NOT IN``."""
    store, eids, _ = family
    if store.dialect != "sqlite":
        pytest.skip("SQLite's plan")
    flt = f"tags.{PARENT} IS NULL"

    def page_sql(scope: list[str], order: list[str] | None = None) -> str:
        calls = statements(store, lambda: store.search_runs(scope, flt, order_by=order))
        return next(s for s in calls if "ORDER BY" in s).upper()

    assert "NOT (EXISTS" in page_sql([eids[0]]) and "NOT IN" not in page_sql([eids[0]])
    assert "NOT (EXISTS" in page_sql([eids[0]], ["attributes.start_time DESC"])
    assert "NOT IN" in page_sql(eids)
    assert "NOT IN" in page_sql([eids[0]], ["attributes.run_name ASC"])
