"""MLflow's trace search grammar (``search_traces(filter_string=, order_by=)``), compiled
to parameterized SQL over :mod:`.traces`' tables.

The grammar is :mod:`.search`'s (``clause AND clause``, positions in errors) with the
trace entities of MLflow's ``SearchTraceUtils``::

    trace.<attr> / attribute(s).<attr> / <attr>   request_id, timestamp[_ms], execution_time[_ms],
                                                  end_time[_ms], status, state, name,
                                                  client_request_id, run_id, text, experiment_id
    tag(s).<key>                                  trace tags
    metadata.<key> / request_metadata.<key>       trace metadata
    span.name / span.type / span.status           any span of the trace
    span.attributes.<key>                         a span attribute's value (its first
                                                  1000 characters are indexed)
    span.content                                  LIKE/ILIKE over the span attribute values

``trace.text LIKE '%x%'`` matches the previews, span names and span attribute values.
Numeric attributes take ``= != < <= > >=`` and a number; the others strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import sqlalchemy as sa

from . import traces as t
from .errors import invalid
from .search import (
    NUMERIC_COMPARATORS,
    Comparison,
    OrderBy,
    _compare,
    _conjunction,
    _in_list,
    _null_test,
    _Parser,
    _symbol,
)

TAG, META, ATTR, SPAN = "tag", "request_metadata", "attribute", "span"
_ENTITIES = {
    "tag": TAG,
    "tags": TAG,
    "metadata": META,
    "request_metadata": META,
    "attribute": ATTR,
    "attributes": ATTR,
    "attr": ATTR,
    "trace": ATTR,
    "span": SPAN,
    "spans": SPAN,
}
VALID_ENTITIES = [TAG, META, ATTR, SPAN]

NUMERIC_ATTRIBUTES = {
    "timestamp": "request_time",
    "timestamp_ms": "request_time",
    "execution_time": "execution_duration",
    "execution_time_ms": "execution_duration",
    "end_time": "end_time",
    "end_time_ms": "end_time",
}
STRING_ATTRIBUTES = {
    "request_id": "trace_id",
    "trace_id": "trace_id",
    "status": "state",
    "state": "state",
    "name": "name",
    "client_request_id": "client_request_id",
    "run_id": "run_id",
    "text": "text",
    "experiment_id": "experiment_id",
}
SPAN_FIELDS = {"name": "name", "type": "span_type", "status": "status"}
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT_IN")
_ORDER_KEYS = {
    "timestamp": "request_time",
    "timestamp_ms": "request_time",
    "execution_time": "execution_duration",
    "execution_time_ms": "execution_duration",
    "status": "state",
    "state": "state",
    "name": "name",
    "request_id": "trace_id",
    "trace_id": "trace_id",
    "experiment_id": "experiment_id",
    "end_time": "end_time",
    "end_time_ms": "end_time",
}


class _TraceParser(_Parser):
    entities = _ENTITIES
    valid_entities = VALID_ENTITIES


def parse_trace_filter(filter_string: str | None) -> list[Comparison]:
    if filter_string is None or not filter_string.strip():
        return []
    return _conjunction(_TraceParser(filter_string), _clause)


def _clause(p: _Parser) -> Comparison:
    p.skip_ws()
    if p.text.startswith("(", p.pos):
        raise p.error("parentheses are not supported")
    entity, key, start = p.identifier()
    p.skip_ws()
    if p.at_end():
        raise invalid(f"Invalid filter '{p.text}': expected a comparator after '{key}'")
    op_pos = p.pos
    op = _symbol(p)
    value: Any = None
    vpos = p.pos
    if op is not None:
        value, vpos = p.value()
    else:
        kw = p.keyword("LIKE", "ILIKE", "IN", "NOT", "IS", "RLIKE")
        if kw in ("LIKE", "ILIKE"):
            op = kw
            value, vpos = p.value()
        elif kw == "IS":
            op = _null_test(p)
        elif kw in ("NOT", "IN"):
            if kw == "NOT" and p.keyword("IN") is None:
                raise p.unexpected()
            op = "NOT_IN" if kw == "NOT" else "IN"
            value = tuple(_in_list(p))
        elif kw == "RLIKE":
            raise p.error("'RLIKE' is not supported by this server", op_pos)
        else:
            raise p.error(f"expected a comparator after '{key}'", op_pos)
    c = Comparison(entity, key, op, value, start)
    if entity == ATTR:
        if key in NUMERIC_ATTRIBUTES:
            if op not in NUMERIC_COMPARATORS or not isinstance(value, float):
                raise p.error(
                    f"'{key}' takes a numeric comparison {list(NUMERIC_COMPARATORS)}", vpos
                )
        elif key in STRING_ATTRIBUTES:
            if op not in STRING_OPS:
                raise p.error(f"comparator '{op}' is not valid for '{key}'", op_pos)
            if op in ("=", "!=", "LIKE", "ILIKE") and not isinstance(value, str):
                raise p.error(f"Expected a quoted string value for '{key}'", vpos)
        else:
            raise p.error(
                f"Invalid attribute key '{key}'. Valid keys are "
                f"{sorted(NUMERIC_ATTRIBUTES) + sorted(STRING_ATTRIBUTES)}",
                start,
            )
    elif entity == SPAN:
        if not (key in SPAN_FIELDS or key == "content" or key.startswith("attributes.")):
            raise p.error(
                f"Invalid span key '{key}'. Valid keys are {sorted(SPAN_FIELDS)}, "
                "'content' and 'attributes.<key>'",
                start,
            )
        if op in ("IS_NULL", "IS_NOT_NULL") or op not in STRING_OPS:
            raise p.error(f"comparator '{op}' is not valid for span.{key}", op_pos)
        if key == "content" and op not in ("LIKE", "ILIKE"):
            raise p.error("span.content takes LIKE or ILIKE", op_pos)
    elif op not in ("IS_NULL", "IS_NOT_NULL"):
        if op not in STRING_OPS:
            raise p.error(f"comparator '{op}' is not valid for {entity}s", op_pos)
        if op in ("=", "!=", "LIKE", "ILIKE") and not isinstance(value, str):
            raise p.error(f"Expected a quoted string value for '{key}'", vpos)
    return c


def _has(table: sa.Table, *cond: Any) -> Any:
    """EXISTS a row of ``table`` for the trace with ``cond``: correlated, so the planner
    walks traces in the page's order and probes each (a LIMIT stops it early) instead of
    materializing every matching id and sorting them all."""
    return sa.exists().where(table.c.trace_id == t.traces.c.trace_id, *cond)


def _keyed(table: sa.Table, c: Comparison) -> Any:
    if c.op == "IS_NULL":
        return ~_has(table, table.c.key == c.key)
    cond = [table.c.key == c.key]
    if c.op != "IS_NOT_NULL":
        cond.append(_compare(table.c.value, c.op, c.value))
    return _has(table, *cond)


def _unindexed(c: Comparison) -> list[Any]:
    """The values of :data:`~.traces.UNINDEXED_ATTRIBUTES` (not ``span_attributes``
    rows): a span's type and its trace's id, for searches over every attribute value."""
    s = t.spans
    return [
        _has(s, _compare(s.c.span_type, c.op, c.value)),
        sa.and_(_has(s), _compare(t.traces.c.trace_id, c.op, c.value)),
    ]


def _status_value(v: Any) -> Any:
    def one(x: str) -> str:
        return t.V2_STATUS.get(x, x)

    if isinstance(v, tuple):
        return tuple(one(x) for x in v)
    return one(v) if isinstance(v, str) else v


#: A filter whose index range holds fewer rows than this drives the search (SQLite).
DRIVE_MAX_ROWS = 500
#: Most case variants of an ``ILIKE`` prefix read as index ranges (one range each).
ILIKE_MAX_RANGES = 8
#: Fewest newest traces a walk reads before its search starts over from a filter's index
#: (:func:`walk_window`, SQLite); 0: never.
WINDOW_TRACES = 2000
#: Most index rows of the filter a search starts over from (:func:`walk_window`).
FALLBACK_MAX_ROWS = 20_000
#: Most distinct values of a column read for a pattern that starts with a wildcard.
DISTINCT_MAX_VALUES = 100

#: Index rows of a comparison, one range of an index: the table, its ``column IN
#: (values)`` terms and its other conditions ``(column, op, value)``: bounds (``<``,
#: ``<=``, ``>``, ``>=``) on the index's next column, and ``LIKE``/``ILIKE`` rechecked
#: on the rows in the bounds.
_Segment = tuple[sa.Table, list[tuple[str, tuple[Any, ...]]], list[tuple[str, str, Any]]]
#: The comparison that drives a search (its position) and its index ranges.
Driver = tuple[int, list[_Segment]]


def _successor(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (code point
    order, SQLite's BINARY collation of UTF-8); None if there is none."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if last == 0xD800:  # a surrogate is no character: the next one is
            last = 0xE000
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return None


def _ilike_prefixes(prefix: str) -> list[str]:
    """Case variants of ``prefix`` that start every string ``ILIKE`` it: SQLite's
    ``lower()`` folds ASCII letters only; cut before the letter that would make more
    than :data:`ILIKE_MAX_RANGES` variants (the ranges then hold more rows, rechecked)."""
    out = [""]
    for ch in prefix:
        if ch.isascii() and ch.isalpha():
            if 2 * len(out) > ILIKE_MAX_RANGES:
                break
            out = [v + c for v in out for c in (ch.lower(), ch.upper())]
        else:
            out = [v + ch for v in out]
    return out


def _value_ranges(col: str, op: str, value: Any) -> list[list[tuple[str, str, Any]]] | None:
    """Conditions on ``col`` per index range that hold the rows of ``col <op> value``:
    ``=``/``IN`` (none here: the caller's ``IN`` term), ``!=``/``NOT IN`` (the ranges
    between the values), ``LIKE``/``ILIKE`` with a prefix before the first wildcard;
    None when no range does (a pattern that starts with a wildcard)."""
    if op in ("!=", "NOT_IN"):
        values = sorted(set(value if isinstance(value, tuple) else (value,)))
        if not values:
            return None
        out = [[(col, "<", values[0])]]
        out += [[(col, ">", lo), (col, "<", hi)] for lo, hi in pairwise(values)]
        return out + [[(col, ">", values[-1])]]
    if op in ("LIKE", "ILIKE") and isinstance(value, str):
        cut = min((i for i in (value.find("%"), value.find("_")) if i >= 0), default=len(value))
        prefix = value[:cut]
        if not prefix:
            return None
        out = []
        for p in [prefix] if op == "LIKE" else _ilike_prefixes(prefix):
            conds = [(col, ">=", p)]
            if (hi := _successor(p)) is not None:
                conds.append((col, "<", hi))
            out.append([*conds, (col, op, value)])
        return out
    return None


def _matching_values(
    conn: Any, table: sa.Table, eq: list[tuple[str, tuple[Any, ...]]], col: str, c: Comparison
) -> tuple[Any, ...] | None:
    """The distinct values of ``col`` (under ``eq``) that match a pattern, read by a skip
    scan of the index (one seek per value); None if there are more than
    :data:`DISTINCT_MAX_VALUES` (an attribute's free text: no cheap way but the walk)."""
    where = "".join(f"{k} = ? AND " for k, _ in eq)
    keys = [vs[0] for _, vs in eq]
    sql = (
        f"WITH RECURSIVE d(v, n) AS (SELECT (SELECT min({col}) FROM {table.name} WHERE "
        f"{where}{col} IS NOT NULL), 1 UNION ALL SELECT (SELECT min({col}) FROM "
        f"{table.name} WHERE {where}{col} > d.v), n + 1 FROM d "
        f"WHERE d.v IS NOT NULL AND d.n <= ?) "
        f"SELECT v, {_sql_condition('v', c.op)} FROM d WHERE v IS NOT NULL"
    )
    params = (*keys, *keys, DISTINCT_MAX_VALUES, c.value)
    rows = conn.connection.driver_connection.execute(sql, params).fetchall()
    if len(rows) > DISTINCT_MAX_VALUES:
        return None
    return tuple(v for v, match in rows if match)


def _index_ranges(c: Comparison, conn: Any = None) -> list[_Segment] | None:
    """The rows of a comparison's ``EXISTS`` as index ranges, on a span's name, type or
    status, a tag's, metadata's or span attribute's value: ``=``, ``IN``, ``!=``,
    ``NOT IN``, and ``LIKE``/``ILIKE`` with a prefix, or (given ``conn``) without one
    as the ``IN`` of the column's few values that match; None for the others."""
    table: sa.Table
    if c.entity in (TAG, META):
        table = t.trace_tags if c.entity == TAG else t.trace_metadata
        eq, col = [("key", (c.key,))], "value"
    elif c.entity != SPAN:
        return None
    elif c.key in SPAN_FIELDS:
        table, eq, col = t.spans, [], SPAN_FIELDS[c.key]
    elif c.key == f"attributes.{t.ATTR_SPAN_TYPE}":
        table, eq, col = t.spans, [], "span_type"
    elif c.key.startswith("attributes.") and c.key != f"attributes.{t.ATTR_REQUEST_ID}":
        table, eq, col = t.span_attributes, [("key", (c.key[len("attributes.") :],))], "value"
    else:
        return None
    if c.op in ("=", "IN"):
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        return [(table, [*eq, (col, values)], [])] if values else None
    ranges = _value_ranges(col, c.op, c.value)
    if ranges is not None:
        return [(table, eq, conds) for conds in ranges]
    if conn is None or c.op not in ("LIKE", "ILIKE") or not isinstance(c.value, str):
        return None
    matched = _matching_values(conn, table, eq, col, c)
    return None if matched is None else [(table, [*eq, (col, matched)], [])]


def _sql_condition(col: str, op: str) -> str:
    """A condition of :data:`_Segment` in SQLite's SQL, as SQLAlchemy compiles it."""
    if op == "ILIKE":
        return f"lower({col}) LIKE lower(?)"
    return f"{col} {op} ?"


def pick_driver(
    conn: Any, comparisons: Sequence[Comparison], max_rows: int | None = None
) -> Driver | None:
    """The comparison that should drive a page's search, or None (issue 17, SQLite).

    Each filter on a span, tag or attribute is a correlated ``EXISTS``: SQLite walks
    the experiment's traces in the page's order and probes each, which stops after the
    page when the filter is common but reads every trace when it matches few or none
    (100k traces: ~150 ms for a span name no trace has). Its statistics hold an average
    per index, not per value, so the planner cannot tell the two apart; this counts the
    index entries of each comparison that has index ranges (:func:`_index_ranges`), up
    to ``max_rows`` (:data:`DRIVE_MAX_ROWS`), and picks the one with fewest when it has
    fewer: reading those rows and sorting their traces costs less than the walk (~1.5 µs
    per row). One statement of plain SQL on the driver's connection (the same
    transaction), after one skip scan per pattern that starts with a wildcard:
    SQLAlchemy's building and results would cost more than the probe, which a common
    filter's page pays for nothing (~35 µs per filter). None on PostgreSQL,
    whose planner turns a selective ``EXISTS`` into a semi-join on the index itself."""
    cap = DRIVE_MAX_ROWS if max_rows is None else max_rows
    if conn.dialect.name != "sqlite" or cap <= 0:
        return None
    found = [(i, r) for i, c in enumerate(comparisons) if (r := _index_ranges(c, conn)) is not None]
    if not found:
        return None
    counts: list[str] = []
    params: list[Any] = []
    for _, segments in found:
        selects = []
        for table, eq, conds in segments:
            where = [f"{col} IN ({', '.join('?' * len(vs))})" for col, vs in eq]  # () is none
            where += [_sql_condition(col, op) for col, op, _ in conds]
            selects.append(f"SELECT 1 FROM {table.name} WHERE {' AND '.join(where)}")
            params += [v for _, vs in eq for v in vs] + [v for _, _, v in conds]
        counts.append(f"(SELECT count(*) FROM ({' UNION ALL '.join(selects)} LIMIT {cap}))")
    raw = conn.connection.driver_connection
    row = raw.execute(f"SELECT {', '.join(counts)}", tuple(params)).fetchone()
    n, k = min((n, k) for k, n in enumerate(row))
    return found[k] if n < cap else None


def walk_window(
    conn: Any,
    comparisons: Sequence[Comparison],
    order: Sequence[OrderBy],
    experiment_ids: Sequence[int],
    rows: int,
) -> Any | None:
    """A condition that bounds the walk of a page ending at ``rows`` (offset + limit + 1)
    to the experiment's newest traces (oldest for ``timestamp ASC``, longest for
    ``execution_time DESC``), or None (SQLite).

    A filter whose index holds :data:`DRIVE_MAX_ROWS` rows or more is walked, which is
    fast when its traces are among the newest, and reads every trace when they are old
    or in other experiments (~150 ms per 100k traces). The page first walks the
    ``max(WINDOW_TRACES, 20 * rows)`` newest ones: they come first in the page's order,
    so if they fill the page it is the whole search's; if not, the caller searches
    again from the filter with fewest index rows (up to :data:`FALLBACK_MAX_ROWS`: ~1.5
    µs each), or walks them all. None (no window) when no filter has index ranges (the
    fallback would be the same walk), the page is not ordered by an indexed key first,
    the search spans several experiments (no one index range in the page's order), or
    the experiment has fewer traces than the window."""
    if conn.dialect.name != "sqlite" or WINDOW_TRACES <= 0 or len(experiment_ids) != 1:
        return None
    first = order[0] if order else OrderBy(ATTR, "timestamp", False)
    col = _ORDER_KEYS[first.key] if first.entity == ATTR else None
    # an indexed order; a duration ascending puts its NULLs first, outside any bound
    if col != "request_time" and (col != "execution_duration" or first.ascending):
        return None
    if not any(_index_ranges(c) is not None for c in comparisons):
        return None
    size = max(WINDOW_TRACES, 20 * rows)
    raw = conn.connection.driver_connection
    row = raw.execute(
        f"SELECT {col} FROM traces WHERE experiment_id = ? ORDER BY {col} "
        f"{'ASC' if first.ascending else 'DESC'} LIMIT 1 OFFSET ?",
        (experiment_ids[0], size - 1),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    key = t.traces.c[col]
    return key <= row[0] if first.ascending else key >= row[0]


def _driven(segments: list[_Segment]) -> Any:
    """``trace_id IN`` the traces of a comparison's index rows (its ``EXISTS``'s)."""
    selects = [
        sa.select(table.c.trace_id).where(
            *(table.c[col].in_(vs) for col, vs in eq),
            *(_compare(table.c[col], op, v) for col, op, v in conds),
        )
        for table, eq, conds in segments
        if all(eq_values for _, eq_values in eq)  # an empty IN (no value matched): no rows
    ]
    if not selects:  # SQLite would read the index for SQLAlchemy's empty IN
        return sa.false()
    rows = selects[0] if len(selects) == 1 else sa.union_all(*selects)
    return t.traces.c.trace_id.in_(rows)


def filter_clauses(comparisons: Sequence[Comparison], driver: Driver | None = None) -> list[Any]:
    """SQLAlchemy conditions on ``traces`` for parsed comparisons. ``driver``
    (:func:`pick_driver`): that comparison becomes ``trace_id IN (its rows' traces)``,
    which SQLite reads first, and the others are checked on its traces."""
    tc = t.traces.c
    out: list[Any] = []
    for i, c in enumerate(comparisons):
        if driver is not None and i == driver[0]:  # the same rows as its EXISTS
            out.append(_driven(driver[1]))
        elif c.entity == TAG:
            out.append(_keyed(t.trace_tags, c))
        elif c.entity == META:
            out.append(_keyed(t.trace_metadata, c))
        elif c.entity == SPAN:
            s, a = t.spans, t.span_attributes
            if c.key in SPAN_FIELDS:
                out.append(_has(s, _compare(s.c[SPAN_FIELDS[c.key]], c.op, c.value)))
            elif c.key == "content":
                out.append(sa.or_(_has(a, _compare(a.c.value, c.op, c.value)), *_unindexed(c)))
            else:
                key = c.key[len("attributes.") :]
                if key == t.ATTR_SPAN_TYPE:
                    out.append(_has(s, _compare(s.c.span_type, c.op, c.value)))
                elif key == t.ATTR_REQUEST_ID:
                    out.append(sa.and_(_has(s), _compare(tc.trace_id, c.op, c.value)))
                else:
                    out.append(_has(a, a.c.key == key, _compare(a.c.value, c.op, c.value)))
        elif c.key in NUMERIC_ATTRIBUTES:
            col = NUMERIC_ATTRIBUTES[c.key]
            v = int(c.value)
            expr = (
                tc.request_time + sa.func.coalesce(tc.execution_duration, 0)
                if col == "end_time"
                else tc[col]
            )
            out.append(_compare(expr, c.op, v))
        else:
            col = STRING_ATTRIBUTES[c.key]
            if col == "run_id":
                r = t.trace_runs
                if c.op in ("!=", "NOT_IN"):
                    pos = "=" if c.op == "!=" else "IN"
                    out.append(~_has(r, _compare(r.c.run_id, pos, c.value)))
                else:
                    out.append(_has(r, _compare(r.c.run_id, c.op, c.value)))
            elif col == "text":
                s, a = t.spans, t.span_attributes
                out.append(
                    sa.or_(
                        _compare(tc.request_preview, c.op, c.value),
                        _compare(tc.response_preview, c.op, c.value),
                        _has(s, _compare(s.c.name, c.op, c.value)),
                        _has(a, _compare(a.c.value, c.op, c.value)),
                        *_unindexed(c),
                    )
                )
            elif col == "experiment_id":
                vals = c.value if isinstance(c.value, tuple) else (c.value,)
                try:
                    ints = tuple(int(x) for x in vals)
                except ValueError:
                    raise invalid(f"Invalid experiment id in filter: {c.value!r}") from None
                listed = c.op in ("IN", "NOT_IN")
                out.append(_compare(tc.experiment_id, c.op, ints if listed else ints[0]))
            elif col == "state":
                out.append(_compare(tc.state, c.op, _status_value(c.value)))
            else:
                out.append(_compare(tc[col], c.op, c.value))
    return out


def parse_trace_order_by(order_by: Sequence[str] | None) -> list[OrderBy]:
    out: list[OrderBy] = []
    for item in order_by or ():
        if not isinstance(item, str) or not item.strip():
            raise invalid(f"Invalid order_by clause '{item}'")
        p = _TraceParser(item, "order_by clause")
        entity, key, _ = p.identifier()
        asc = True
        if not p.at_end():
            kw = p.keyword("ASC", "DESC")
            if kw is None:
                raise p.unexpected()
            asc = kw == "ASC"
        if not p.at_end():
            raise p.unexpected()
        if entity == ATTR and key not in _ORDER_KEYS:
            raise invalid(
                f"Invalid order_by clause '{item}': '{key}' is not one of {sorted(_ORDER_KEYS)}"
            )
        if entity not in (ATTR, TAG, META):
            raise invalid(f"Invalid order_by clause '{item}': cannot order by {entity}")
        out.append(OrderBy(entity, key, asc))
    return out


def order_clauses(order: Sequence[OrderBy]) -> list[Any]:
    """ORDER BY terms; MLflow's default (newest first) and the trace id break ties."""
    tc = t.traces.c
    out: list[Any] = []
    for o in order:
        expr: Any
        if o.entity == ATTR:
            col = _ORDER_KEYS[o.key]
            expr = (
                tc.request_time + sa.func.coalesce(tc.execution_duration, 0)
                if col == "end_time"
                else tc[col]
            )
        else:
            table = t.trace_tags if o.entity == TAG else t.trace_metadata
            expr = (
                sa.select(table.c.value)
                .where(table.c.trace_id == tc.trace_id, table.c.key == o.key)
                .scalar_subquery()
            )
        out.append(expr.asc() if o.ascending else expr.desc())
    if not any(o.entity == ATTR and _ORDER_KEYS[o.key] == "request_time" for o in order):
        out.append(tc.request_time.desc())
    out.append(tc.trace_id.asc())
    return out
