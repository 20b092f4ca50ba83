"""A page of a search ordered by a metric, read by walking the metric's ``(key, value,
run_uuid)`` index in order and checking the filter per run, stopping after the page
(SQLite; issue 18).

SQLite's planner computes a filter's whole candidate list first, then sorts every match
by the metric (100k runs, a filter matching 12%: 0.7-1 s for a page of 100). When the
filter is broad, walking the index in the page's order finds the page after a few
hundred runs; when it is narrow, that walk would read most of the index. Which one
holds is not known beforehand (SQLite keeps no value histograms), so the walk measures
it: it reads a first window of the index and gives up when the share of matching runs
there says the page would take more than a bound (:func:`walk_page`); the caller then
reads the page from the filter's candidates as before, having spent one window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join

from . import search
from .schema import runs

#: Index entries the walk reads first, per row of the page; and at most in all.
FIRST_WINDOW_PER_ROW = 4
MAX_WINDOW_PER_ROW = 40
#: Runs per row of the page a filter's every comparison must match for the run index's
#: walk (:func:`broad`): fewer are read whole sooner than a first window is probed.
BROAD_PER_ROW = 16


class CrossJoin(Join):
    """``left CROSS JOIN right ON ...``: SQLite's way to fix the loop order (its planner
    never reorders across a CROSS JOIN), so the metric's index is the outer loop."""

    inherit_cache = True


@compiles(CrossJoin, "sqlite")
def _compile_cross_join(element: CrossJoin, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    left = compiler.process(element.left, **kw)
    right = compiler.process(element.right, **kw)
    kw.pop("asfrom")
    return f"{left} CROSS JOIN {right} ON {compiler.process(element.onclause, **kw)}"


def walkable(order: Sequence[search.OrderBy]) -> bool:
    """Whether a search's order can be walked: a metric first, then run attributes only
    (the other keys' tables would join into the walk)."""
    return (
        bool(order)
        and order[0].entity == search.METRIC
        and all(o.entity == search.ATTRIBUTE for o in order[1:])
    )


def walk_page(
    conn: Any,
    keys: list[tuple[Any, bool]],
    metric_key: str,
    where: list[Any],
    after: list[Any] | None,
    limit: int,
    bounds: Sequence[tuple[str, float]] = (),
) -> list[Any] | None:
    """The runs with a value of the metric, in the search's order, after ``after`` (a
    page token's sort values): at most ``limit`` of them, or None when the filter looks
    too narrow for the walk and the caller must read them from its candidates instead.
    ``keys`` are the search's sort keys (:func:`search.run_order_keys`), the metric's
    value first; ``where`` its clauses with per-run filters
    (``search.run_filter_clauses(per_run=True)``).

    The walk reads windows of the index: the runs whose value lies between the previous
    window's last value (exclusive) and the value ``window`` entries further (inclusive,
    so ties never straddle two windows). Each window's matches sort before the next
    one's, so the page is the windows' matches in turn. The first window holds
    ``FIRST_WINDOW_PER_ROW`` entries per row; the share of matches found so far tells
    how many more entries the rest of the page needs, and past ``MAX_WINDOW_PER_ROW``
    per row in all the walk gives up (a narrow filter costs the first window only).

    ``bounds``: the filter's comparisons of the order's metric itself (``(op, value)``, op
    one of ``< <= > >= =``): a range of the same index, so the walk reads only that range
    (``metrics.acc > 0.99`` ordered by ``acc`` finds its few runs in the first window
    instead of walking thousands of entries before giving up)."""
    value, asc = keys[0]
    lm = value.table  # the order's alias of latest_metrics
    base = [lm.c.key == metric_key, value.is_not(None)]
    base += [search._compare(value, op, v) for op, v in bounds]
    if after is not None:
        base.append(value >= after[0] if asc else value <= after[0])
    in_order = value.asc() if asc else value.desc()
    rest = [(c.asc() if a else c.desc()).nulls_last() for c, a in keys[1:]]
    page = (
        sa.select(runs, *[c.label(f"_sort{i}") for i, (c, _) in enumerate(keys)])
        .select_from(CrossJoin(lm, runs, runs.c.run_uuid == lm.c.run_uuid))
        .where(*base, *where)
    )
    if after is not None:
        page = page.where(search.keyset_after(keys, after))
    found: list[Any] = []
    read, window, start = 0, limit * FIRST_WINDOW_PER_ROW, None
    while True:
        entries = list(base)
        if start is not None:  # past the previous window
            entries.append(value > start if asc else value < start)
        edge = conn.execute(
            sa.select(value).where(*entries).order_by(in_order).offset(window - 1).limit(1)
        ).first()
        q = page
        if start is not None:
            q = q.where(value > start if asc else value < start)
        if edge is not None:
            q = q.where(value <= edge[0] if asc else value >= edge[0])
        q = q.order_by(in_order, *rest).limit(limit - len(found))
        found += conn.execute(q).all()
        read += window
        if len(found) >= limit or edge is None:
            return found  # the page, or every run with a value after ``after``
        if not found:
            return None
        needed = (limit - len(found)) * read // len(found) + 1
        if read + needed > limit * MAX_WINDOW_PER_ROW:
            return None
        window, start = max(window, needed * 3 // 2), edge[0]


#: The orders a page of one experiment's runs can be walked in: ``ix_runs_search_order``'s
#: (start_time DESC, run_uuid; the default order is the same).
RUN_INDEX_ORDERS: tuple[list[search.OrderBy], ...] = (
    [],
    [search.OrderBy(search.ATTRIBUTE, "start_time", False)],
)


def run_walkable(comparisons: Sequence[search.Comparison], order: Sequence[search.OrderBy]) -> bool:
    """Whether a page of one experiment's runs can be walked in ``ix_runs_search_order``:
    the index's order, and a filter on a metric, param or tag whose candidates SQLite
    would otherwise read whole (``IS NULL`` alone is probed per run already, see
    :func:`search.run_filter_clauses`; a run id names its few runs)."""
    return (
        list(order) in RUN_INDEX_ORDERS
        and any(
            c.entity in (search.METRIC, search.PARAM, search.TAG) and c.op != "IS_NULL"
            for c in comparisons
        )
        and not any(c.entity == search.ATTRIBUTE and c.key == "run_id" for c in comparisons)
    )


def broad(conn: Any, comparisons: Sequence[search.Comparison], limit: int) -> bool:
    """Whether each metric/param/tag comparison of a filter matches at least
    ``BROAD_PER_ROW`` runs per row of the page, counted from its value index and no
    further. One that matches fewer bounds the filter's matches: reading them whole and
    sorting them costs about what a walk's first window does (100k runs, a page of 100:
    a probed run costs ~20 us, a candidate read and sorted ~1.5 us; ``bench/RESULTS.md``),
    and the walk would likely give up after it."""
    cap = limit * BROAD_PER_ROW
    for c in comparisons:
        if c.entity not in (search.METRIC, search.PARAM, search.TAG) or c.op == "IS_NULL":
            continue
        # the cap-th candidate, if any: index steps, no rows handed up to a count
        nth = search.candidate_runs([c], "sqlite").offset(cap - 1).limit(1)
        if conn.execute(nth).first() is None:
            return False
    return True


def walk_runs_page(
    conn: Any,
    keys: list[tuple[Any, bool]],
    scope: Callable[[Any], list[Any]],
    where: list[Any],
    after: list[Any] | None,
    limit: int,
) -> list[Any] | None:
    """:func:`walk_page` for the run index's order (:data:`RUN_INDEX_ORDERS`): at most
    ``limit`` runs after ``after`` in the order of ``keys`` (columns of ``runs``), or None
    when the filter looks too narrow. ``scope``: a function of an alias of ``runs`` giving
    the index's equality terms (experiment, lifecycle stage); ``where``: the search's
    clauses with per-run filters.

    SQLite reads a broad filter's candidates whole (``tags.team = 'a'``, 33k of 100k
    runs: a list of 33k ids, each run read and sorted, 50 ms for a page of 100). The walk
    reads windows of the index instead: the next ``window`` entries after the previous
    window (an ``OFFSET`` into the covering index, whose steps cost little next to a
    probe), each entry's run then probed for the filter. Windows are consecutive slices
    of the order, so the page is their matches in turn; their size follows
    :func:`walk_page`'s rule, and so does giving up."""
    w = runs.alias("walk")
    wkeys = [(w.c[c.name], asc) for c, asc in keys]
    entries = sa.select(w.c.run_uuid).where(*scope(w))
    if after is not None:
        entries = entries.where(search.keyset_after(wkeys, after))
    # the index's own terms: SQLite's DESC puts NULLs last, and run ids are never NULL
    # (``NULLS LAST`` on them would sort each group of equal start times)
    entries = entries.order_by(
        *[
            c.desc() if not a else c.asc() if c.primary_key else c.asc().nulls_last()
            for c, a in wkeys
        ]
    )
    terms = [(c.asc() if a else c.desc()).nulls_last() for c, a in keys]
    columns = [runs, *[c.label(f"_sort{i}") for i, (c, _) in enumerate(keys)]]
    found: list[Any] = []
    read, window = 0, limit * FIRST_WINDOW_PER_ROW
    while True:
        last = conn.execute(entries.offset(read + window - 1).limit(1)).first()
        win = entries.offset(read or None).limit(window).subquery("win")
        q = (
            sa.select(*columns)
            .select_from(CrossJoin(win, runs, runs.c.run_uuid == win.c.run_uuid))
            .where(*where)
            .order_by(*terms)
            .limit(limit - len(found))
        )
        found += conn.execute(q).all()
        read += window
        if len(found) >= limit or last is None:
            return found  # the page, or every run after ``after``
        if not found:
            return None
        needed = (limit - len(found)) * read // len(found) + 1
        if read + needed > limit * MAX_WINDOW_PER_ROW:
            return None
        window = max(window, needed * 3 // 2)
