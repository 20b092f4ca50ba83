"""Searches ordered by a metric (issue 18): the pages are those of the order's meaning,
computed here in Python, whichever way the store reads them: SQLite's walk of the
metric's index (a broad filter fills the page inside the walk's window), the filter's
candidates when the walk gives up (a narrow one), keyset tokens, MLflow's offset tokens
across the runs without the metric; and PostgreSQL's whole-value index of short params."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from jupyter_mlops.tracking import search_walk
from jupyter_mlops.tracking.entities import Metric
from jupyter_mlops.tracking.paging import encode_page_token
from jupyter_mlops.tracking.schema import runs

N = 150


@pytest.fixture(scope="module")
def data(module_store):
    """150 runs: a metric with 50 values (ties of three), NaN on some, missing on others;
    start times with ties (a few latest ones without, so the walk's first windows hold
    the same runs whatever their random ids); a param on every run, one on three runs only."""
    store = module_store
    eid = store.create_experiment(f"walk-{uuid.uuid4().hex}")
    rows = []
    for i in range(N):
        # ties of three start times; the last four runs start alone, latest first, so the
        # runs' index begins with runs of known params (b, a, d, c: 147's start is made
        # NULL below) and not with whichever random run ids sort first among a tie
        start = 1000 + i % 3 if i < N - 4 else 1003 + i - (N - 4)
        m = None if i % 17 == 0 else math.nan if i % 13 == 0 else (i * 37 % 50) / 50
        p = "abcd"[i % 4]
        q = "rare" if i in (0, 13, 149) else "common"  # no value, NaN, a value in the middle
        tags = {} if i % 5 == 0 else {"t": "x"}
        rid = store.create_run(eid, start_time=start, run_name=f"w{i:03d}", tags=tags).info.run_id
        store.log_batch(
            rid,
            metrics=[] if m is None else [Metric("m", m, 0, 0)],
            params=[("p", p), ("q", q)],
        )
        rows.append(
            {"id": rid, "start": start, "name": f"w{i:03d}", "m": m, "p": p, "q": q, "t": tags}
        )
    # start times with NULLs (a run created without one takes the clock's): the walk of
    # the runs' index in the default order must place them last, as the order says
    nulls = [r["id"] for i, r in enumerate(rows) if i % 11 == 4]
    with store.engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.run_uuid.in_(nulls)).values(start_time=None))
    for r in rows:
        if r["id"] in nulls:
            r["start"] = None
    # PostgreSQL: the store analyzed its tables at its 128th run (planner_stats); without
    # statistics a metric order with two filters was planned as nested loops of scans
    store.statistics.wait()
    return store, eid, rows


FILTERS = {
    "": lambda r: True,
    "params.p != 'a'": lambda r: r["p"] != "a",  # broad: the walk fills the page
    "params.p = 'c'": lambda r: r["p"] == "c",  # a quarter: several windows
    "params.q = 'rare'": lambda r: r["q"] == "rare",  # narrow: the walk gives up
    "metrics.m > 0.15 and params.p IN ('a', 'b')": lambda r: (
        r["m"] is not None and r["m"] > 0.15 and r["p"] in "ab"
    ),
    "tags.t IS NULL": lambda r: not r["t"],
    # narrow, on the order's metric itself: the walk's bounds
    "metrics.m > 0.9": lambda r: r["m"] is not None and r["m"] > 0.9,
    "metrics.m <= 0.04 and params.p != 'b'": lambda r: (
        r["m"] is not None and r["m"] <= 0.04 and r["p"] != "b"
    ),
}
ORDERS = {
    "m DESC": (["metrics.m DESC"], [("m", False), ("start", False), ("id", True)]),
    "m ASC, start ASC": (
        ["metrics.m ASC", "start_time ASC"],
        [("m", True), ("start", True), ("id", True)],
    ),
    "m DESC, name DESC": (
        ["metrics.m DESC", "attributes.run_name DESC"],
        [("m", False), ("name", False), ("start", False), ("id", True)],
    ),
    # the runs' index order (SQLite walks it for a filter on a metric, param or tag)
    "default": ([], [("start", False), ("id", True)]),
    "start DESC": (["attributes.start_time DESC"], [("start", False), ("id", True)]),
    "start ASC": (["start_time ASC"], [("start", True), ("id", True)]),
}


def expected(rows: list[dict[str, Any]], flt: str, keys: list[tuple[str, bool]]) -> list[str]:
    """The order's meaning: each key ascending or descending, NULLs (and NaN) last."""
    out = [r for r in rows if FILTERS[flt](r)]
    for k, asc in reversed(keys):  # stable sorts, last key first

        def value(r: dict[str, Any], k: str = k) -> Any:
            v = r[k]
            return None if isinstance(v, float) and math.isnan(v) else v

        present = sorted((r for r in out if value(r) is not None), key=value, reverse=not asc)
        out = present + [r for r in out if value(r) is None]
    return [r["id"] for r in out]


def walk(store, eid, flt, order, page):
    ids, token = [], None
    for _ in range(N + 2):
        res, token = store.search_runs(
            [eid], flt or None, max_results=page, order_by=order, page_token=token
        )
        ids += [r.info.run_id for r in res]
        if token is None:
            return ids
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("flt", list(FILTERS), ids=lambda f: f or "no filter")
@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("page", [2, 7, 1000])
def test_metric_ordered_pages_follow_the_order(data, flt, order, page):
    store, eid, rows = data
    by, keys = ORDERS[order]
    want = expected(rows, flt, keys)
    assert want, "every filter matches some runs"
    assert walk(store, eid, flt, by, page) == want


@pytest.mark.parametrize("flt", ["", "params.p != 'a'", "params.q = 'rare'"])
def test_offset_tokens_page_through_runs_with_and_without_the_metric(data, flt):
    """MLflow's ``{"offset": N}`` token on a metric order: pages past the runs with a
    value continue with those without (missing or NaN), as one sorted list would."""
    store, eid, rows = data
    by, keys = ORDERS["m DESC"]
    want = expected(rows, flt, keys)
    for offset in sorted({0, 3, len(want) - 4, len(want) - 1, len(want), len(want) + 5}):
        if offset < 0:
            continue
        res, _ = store.search_runs(
            [eid],
            flt or None,
            max_results=5,
            order_by=by,
            page_token=encode_page_token(offset) if offset else None,
        )
        assert [r.info.run_id for r in res] == want[offset : offset + 5], offset


def _statements(store):
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    return seen, lambda: sa.event.remove(store.engine, "before_cursor_execute", record)


def test_sqlite_walks_the_metric_index_for_a_broad_filter_only(data):
    """The walk answers a broad filter's page by itself; a narrow filter's falls back to
    the candidates (both pages checked against the order's meaning above)."""
    store, eid, _ = data
    if store.dialect != "sqlite":
        pytest.skip("the walk is SQLite's (PostgreSQL's planner chooses it by itself)")
    cases = (("params.p != 'a'", 2, True, 1), ("params.q = 'rare'", 2, False, 1))
    cases += (("params.p = 'c'", 7, True, 2),)  # 6 in the first 32 entries: on to a second
    # a bound on the order's metric is the walk's range: its few runs, no fallback
    cases += (("metrics.m > 0.9", 7, True, 1), ("metrics.m <= 0.04", 2, True, 1))
    for flt, page, alone, windows in cases:
        seen, stop = _statements(store)
        try:
            store.search_runs([eid], flt, max_results=page, order_by=["metrics.m DESC"])
        finally:
            stop()
        walks = [s for s in seen if "CROSS JOIN" in s]
        assert len(walks) >= windows, (flt, seen)
        later = seen[seen.index(walks[-1]) + 1 :]
        fallback = [s for s in later if "latest_metrics AS ob0" in s and "CROSS" not in s]
        assert bool(fallback) is not alone, (flt, seen)
    assert search_walk.FIRST_WINDOW_PER_ROW * 3 < 20  # the first window ends above w149's value


@pytest.mark.parametrize(
    "flt", ["params.p = 'c'", "metrics.m > 0.15 and params.p IN ('a', 'b')", "params.p != 'a'"]
)
@pytest.mark.parametrize("order", ["default", "start DESC"])
def test_run_index_walk_pages_of_one_follow_the_order(data, flt, order):
    """Pages of one run: broad enough for the walk even at 150 runs (a quarter of them,
    several windows at times), through every keyset token, the NULL start times last."""
    store, eid, rows = data
    by, keys = ORDERS[order]
    assert walk(store, eid, flt, by, 1) == expected(rows, flt, keys)


def test_sqlite_walks_the_run_index_for_a_broad_filter_only(data):
    """The default order (``ix_runs_search_order``'s): a broad filter's page is read by
    walking the index and probing the filter per run, a narrow one's falls back to the
    candidates; an ``IS NULL`` alone is probed per run in the plain query already."""
    store, eid, rows = data
    if store.dialect != "sqlite":
        pytest.skip("the walk is SQLite's (PostgreSQL's planner chooses it by itself)")
    assert search_walk.BROAD_PER_ROW * 2 < 37  # p = 'c' is broad for a page of one
    p_of = {r["id"]: r["p"] for r in rows}
    head = [p_of[i] for i in expected(rows, "", ORDERS["default"][1])[:3]]
    assert head == ["b", "a", "c"]  # so each page of one below finds its run in window one
    cases = [
        ("params.p != 'a'", [], 2, True, 1),
        ("params.p != 'a'", ["start_time DESC"], 2, True, 1),
        ("params.p = 'c'", [], 1, True, 1),  # a quarter: one window or more
        ("metrics.m > 0.15 and params.p IN ('a', 'b')", [], 1, True, 1),
        # narrow: fewer runs than BROAD_PER_ROW per row of the page, read whole
        ("params.p = 'c'", [], 7, False, 0),
        ("params.q = 'rare'", [], 2, False, 0),
        ("tags.t IS NULL", [], 2, False, 0),
        ("params.p != 'a'", ["start_time ASC"], 2, False, 0),  # not the index's order
    ]
    for flt, by, page, alone, windows in cases:
        seen, stop = _statements(store)
        try:
            store.search_runs([eid], flt, max_results=page, order_by=by)
        finally:
            stop()
        walks = [s for s in seen if "AS win CROSS JOIN runs" in s]
        assert len(walks) >= windows, (flt, seen)
        later = seen[seen.index(walks[-1]) + 1 :] if walks else seen
        fallback = [s for s in later if "FROM runs" in s and "win" not in s and "walk" not in s]
        assert bool(fallback) is not alone, (flt, seen)


def test_sqlite_walks_on_after_a_keyset_token(data):
    """A keyset token (which carries its page's offset too) starts the next page's walk at
    its sort values, for a metric order and for the runs' index order alike."""
    store, eid, _ = data
    if store.dialect != "sqlite":
        pytest.skip("the walk is SQLite's (PostgreSQL's planner chooses it by itself)")
    for by, marker in ((["metrics.m DESC"], "CROSS JOIN runs"), ([], "AS win CROSS JOIN runs")):
        _, token = store.search_runs([eid], "params.p != 'a'", max_results=3, order_by=by)
        assert token is not None
        seen, stop = _statements(store)
        try:
            store.search_runs(
                [eid], "params.p != 'a'", max_results=3, order_by=by, page_token=token
            )
        finally:
            stop()
        assert any(marker in s for s in seen), (by, seen)


def test_postgres_short_values_use_the_whole_value_index(store):
    """PostgreSQL: an equality with a literal of at most 200 characters reads the partial
    index of whole short values (index-only scans; migration 0017); a longer one the
    prefix index (plans read with sequential scans off, so they do not depend on size)."""
    if store.dialect != "postgresql":
        pytest.skip("the partial index exists on PostgreSQL only (this is the SQLite run)")
    from jupyter_mlops.tracking import search

    eid = store.create_experiment(f"short-{uuid.uuid4().hex}")
    rid = store.create_run(eid, run_name="r").info.run_id
    store.log_batch(rid, params=[("opt", "adam"), ("long", "y" * 300)])

    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM params")  # all-visible pages: index-only scans pay off

    def plan(flt: str) -> str:
        clause = search.run_filter_clauses(search.parse_filter(flt), "postgresql")[0]
        sql = str(
            clause.right.element.compile(store.engine, compile_kwargs={"literal_binds": True})
        )
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_bitmapscan = off")
            return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))

    short = plan("params.opt = 'adam'")
    assert "Index Only Scan using ix_params_key_short_value" in short, short
    assert "ix_params_key_short_value" in plan("params.opt IN ('adam', 'sgd')")
    long_plan = plan(f"params.long = '{'y' * 300}'")
    assert "ix_params_key_prefix" in long_plan, long_plan
    assert names(store, eid, "params.opt = 'adam'") == ["r"]
    assert names(store, eid, f"params.long = '{'y' * 300}'") == ["r"]
    assert names(store, eid, f"params.long = '{'y' * 200}'") == []


def names(store, eid, flt):
    return [r.info.run_name for r in store.search_runs([eid], flt)[0]]
