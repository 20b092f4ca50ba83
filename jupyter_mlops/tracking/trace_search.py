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

import sqlite3
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, NamedTuple

import sqlalchemy as sa

from . import traces as t
from .errors import invalid
from .schema import VALUE_PREFIX_CHARS
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
        if op in ("=", "!=", "LIKE", "ILIKE") and not isinstance(value, str):
            raise p.error(f"Expected a quoted string value for 'span.{key}'", vpos)
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
    return sa.exists().where(t.trace_link(table), *cond)


def _keyed(table: sa.Table, c: Comparison) -> Any:
    implied = t.implied_key(table.name, c.key)
    if c.op == "IS_NULL":
        if implied is not None:
            return sa.and_(~_implied(implied[0]), ~_has(table, table.c.key == c.key))
        return ~_has(table, table.c.key == c.key)
    cond = [table.c.key == c.key]
    if c.op != "IS_NOT_NULL":
        cond.append(_compare(table.c.value, c.op, c.value))
    if implied is None:
        return _has(table, *cond)
    # a bit of traces.implied instead of a row (traces.IMPLIED_KEYS), never both: the
    # row is probed only without the bit (a walk of 100k traces: 45 ms, not 115)
    bit, value = implied
    held = sa.true() if c.op == "IS_NOT_NULL" else _compare(value, c.op, c.value)
    return sa.case((_implied(bit), held), else_=_has(table, *cond))


def _implied(bit: int) -> Any:
    return t.traces.c.implied.op("&")(bit) != 0


def keyed_filter(table: sa.Table, key: str, op: str, value: Any) -> Any:
    """The condition on ``traces`` of a tag's or metadata's comparison (``table``
    ``trace_tags``/``trace_metadata``), implied keys included."""
    return _keyed(table, Comparison(TAG if table is t.trace_tags else META, key, op, value, 0))


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


#: A filter whose index range holds fewer rows than this drives the search.
DRIVE_MAX_ROWS = 500
#: Most case variants of an ``ILIKE`` prefix read as index ranges (one range each).
ILIKE_MAX_RANGES = 8
#: Fewest newest traces a walk reads before its search starts over from a filter's index
#: (:func:`walk_window`); 0: never.
WINDOW_TRACES = 2000
#: Most index rows of the filter a search starts over from (:func:`walk_window`).
FALLBACK_MAX_ROWS = 20_000
#: Most distinct values of a column read for a pattern that starts with a wildcard.
DISTINCT_MAX_VALUES = 100
#: Most SQLite VM steps of the scan of a column's index entries with a pattern that starts
#: with a wildcard, over more distinct values (:func:`_scanned_values`): ~5 per entry for
#: ``LIKE``, ~7 for ``ILIKE``, so ~350k-500k entries (~60-100 ms); 0: never scanned.
SCAN_MAX_STEPS = 2_500_000
#: Fewest matches of that scan that leave the search to the walk (an ``IN`` of fewer
#: values: bound parameters).
SCAN_MAX_MATCHES = 500
#: VM steps between checks of that bound (SQLite's progress handler).
_SCAN_CHECK_STEPS = 10_000

#: What PostgreSQL's index of a tag's, metadata's or span attribute's value holds: a
#: prefix of it (migration 0011; ``schema.VALUE_PREFIX_CHARS``).
_PREFIX = f"left(value, {VALUE_PREFIX_CHARS})"

#: Index rows of a comparison, one range of an index: the table, its ``column IN
#: (values)`` terms, its bounds ``(column, op, value)`` (``<``, ``<=``, ``>``, ``>=``) on
#: the index's next column, and the conditions ``(column, op, value)`` rechecked on the
#: rows in the bounds (``LIKE``/``ILIKE``; on PostgreSQL the whole value of a prefix the
#: index holds). A column is the table's column or :data:`_PREFIX`.
_Segment = tuple[
    sa.Table,
    list[tuple[str, tuple[Any, ...]]],
    list[tuple[str, str, Any]],
    list[tuple[str, str, Any]],
]


class Driver(NamedTuple):
    """The comparison that drives a search (its position), its index ranges, and whether
    the database is PostgreSQL (the driven condition's form)."""

    position: int
    segments: list[_Segment]
    pg: bool = False


@dataclass(frozen=True)
class _Text:
    """What a database's text comparisons let an index range stand for."""

    pg: bool
    #: the strings that start with a prefix are one range of the index (code point order)
    ordered: bool
    #: per ASCII letter, the characters beyond ASCII that ``ILIKE`` takes for it
    folds: dict[str, str] = field(default_factory=dict)


_SQLITE = _Text(pg=False, ordered=True)
_pg_texts: weakref.WeakKeyDictionary[Any, _Text] = weakref.WeakKeyDictionary()
#: The characters beyond ASCII whose lowercase is an ASCII letter (Unicode's simple case
#: mapping: U+0130 to ``i``, U+212A KELVIN SIGN to ``k``), which PostgreSQL's ``ILIKE``
#: folds under a libc collation other than C/POSIX (``lower()`` of both sides).
_FOLDED_TO_ASCII = (304, 8490)
#: OIDs of PostgreSQL's collations ``default``, ``C`` and ``POSIX``.
_DEFAULT_COLLATION, _C_COLLATIONS = 100, (950, 951)


def _text(conn: Any) -> _Text:
    """The database's :class:`_Text`; on PostgreSQL read once per engine."""
    if conn.dialect.name != "postgresql":
        return _SQLITE
    found = _pg_texts.get(conn.engine)
    if found is None:
        found = _pg_texts[conn.engine] = _pg_text(conn)
    return found


def _pg_text(conn: Any) -> _Text:
    """PostgreSQL's collation of the searched columns: a prefix's strings are one index
    range only where strings sort by code point (collation ``C``/``POSIX``, a libc
    ``C.UTF-8``, the builtin provider) in UTF-8; elsewhere (e.g. ``en_US.UTF-8``) a
    ``LIKE`` prefix is no range, as for PostgreSQL's own planner without
    ``text_pattern_ops``."""
    row = conn.exec_driver_sql(
        "SELECT to_jsonb(d) ->> 'datlocprovider', d.datcollate, getdatabaseencoding(), "
        "ARRAY(SELECT DISTINCT a.attcollation::int FROM pg_attribute a WHERE a.attrelid IN "
        "(to_regclass('spans'), to_regclass('trace_tags'), to_regclass('trace_metadata'), "
        "to_regclass('span_attributes')) AND a.attname IN ('name', 'span_type', 'status', "
        f"'value')), {', '.join(f'lower(chr({c}))' for c in _FOLDED_TO_ASCII)} "
        "FROM pg_database d WHERE d.datname = current_database()"
    ).one()
    provider, collate, encoding, collations, *lowered = row
    name = (collate or "").lower().replace("-", "")
    by_code_point = provider == "b" or (
        provider in (None, "c") and name in ("c", "posix", "c.utf8")
    )
    ordered = encoding == "UTF8" and all(
        c in _C_COLLATIONS or (c == _DEFAULT_COLLATION and by_code_point) for c in collations
    )
    folds: dict[str, str] = {}
    for code, low in zip(_FOLDED_TO_ASCII, lowered, strict=True):
        if low is not None and len(low) == 1 and low.isascii() and low.isalpha():
            folds[low] = folds.get(low, "") + chr(code)
    return _Text(pg=True, ordered=ordered, folds=folds)


def _successor(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (code point
    order: SQLite's BINARY collation of UTF-8, PostgreSQL's ``C``); None if there is
    none."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if last == 0xD800:  # a surrogate is no character: the next one is
            last = 0xE000
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return None


def _like_prefix(pattern: str, text: _Text) -> str:
    """A ``LIKE`` pattern's characters before its first wildcard (on PostgreSQL, before
    a backslash too: its ``LIKE`` escapes with it, SQLite's with nothing)."""
    stops = "%_\\" if text.pg else "%_"
    cut = min((i for i in map(pattern.find, stops) if i >= 0), default=len(pattern))
    return pattern[:cut]


def _ilike_prefixes(prefix: str, text: _Text = _SQLITE) -> list[str]:
    """Case variants of ``prefix`` that start every string ``ILIKE`` it; cut before the
    letter that would make more than :data:`ILIKE_MAX_RANGES` variants (the ranges then
    hold more rows, rechecked). SQLite's ``lower()`` folds ASCII letters only;
    PostgreSQL's may fold any letter (``É``/``é``) and some onto ASCII letters
    (``text.folds``): there the variants stop before the first character beyond ASCII."""
    out = [""]
    for ch in prefix:
        if not ch.isascii():
            if text.pg:
                break
            out = [v + ch for v in out]
        elif ch.isalpha():
            cases = ch.lower() + ch.upper() + text.folds.get(ch.lower(), "")
            if len(cases) * len(out) > ILIKE_MAX_RANGES:
                break
            out = [v + c for v in out for c in cases]
        else:
            out = [v + ch for v in out]
    return out


def _segments(
    table: sa.Table,
    eq: list[tuple[str, tuple[Any, ...]]],
    col: str,
    op: str,
    value: Any,
    text: _Text,
) -> list[_Segment] | None:
    """The index ranges of ``col <op> value`` (under ``eq``, the index's leading terms):
    ``=``/``IN``, ``!=``/``NOT IN`` (the ranges between the values), ``LIKE``/``ILIKE``
    with a prefix before the first wildcard; None when no range holds them (a pattern
    that starts with a wildcard, or a prefix or order the collation does not keep).

    On PostgreSQL a value's index holds its first ``VALUE_PREFIX_CHARS`` characters: the
    ranges are on that prefix (the index's expression), and the rows of a prefix as long
    as that are rechecked on the whole value."""
    n = VALUE_PREFIX_CHARS
    prefixed = text.pg and col == "value"
    idx = _PREFIX if prefixed else col

    def cut(v: str) -> str:
        return v[:n] if prefixed else v

    def long(vs: Sequence[str]) -> bool:
        return prefixed and any(len(v) >= n for v in vs)

    if op in ("=", "IN"):
        values = value if isinstance(value, tuple) else (value,)
        if not values:
            return None
        recheck = [(col, op, value)] if long(values) else []
        return [(table, [*eq, (idx, tuple(dict.fromkeys(map(cut, values))))], [], recheck)]
    if not text.ordered:  # the ranges below are in code point order
        return None
    if op in ("!=", "NOT_IN"):
        excluded = sorted(set(value if isinstance(value, tuple) else (value,)))
        if not excluded:
            return None
        cuts = sorted(set(map(cut, excluded)))
        out: list[_Segment] = [(table, eq, [(idx, "<", cuts[0])], [])]
        out += [(table, eq, [(idx, ">", lo), (idx, "<", hi)], []) for lo, hi in pairwise(cuts)]
        out.append((table, eq, [(idx, ">", cuts[-1])], []))
        # a prefix as long as the index holds is also the start of other values
        for p in sorted({cut(v) for v in excluded if long([v])}):
            out.append((table, [*eq, (idx, (p,))], [], [(col, op, value)]))
        return out
    if op in ("LIKE", "ILIKE") and isinstance(value, str):
        prefix = _like_prefix(value, text)
        variants = [prefix] if op == "LIKE" else _ilike_prefixes(prefix, text)
        if not variants[0]:
            return None
        out = []
        for p in dict.fromkeys(map(cut, variants)):
            bounds = [(idx, ">=", p)]
            if (hi := _successor(p)) is not None:
                bounds.append((idx, "<", hi))
            out.append((table, eq, bounds, [(col, op, value)]))
        return out
    return None


def _matching_values(
    conn: Any,
    table: sa.Table,
    eq: list[tuple[str, tuple[Any, ...]]],
    col: str,
    c: Comparison,
    text: _Text,
) -> tuple[Any, ...] | None:
    """The distinct values of ``col`` (under ``eq``) that match a pattern, read by a skip
    scan of the index (one seek per value); None if there are more than
    :data:`DISTINCT_MAX_VALUES` (an attribute's free text: no cheap way but the walk).
    On PostgreSQL, a tag's, metadata's or span attribute's indexed prefixes: those as
    long as the index holds are kept (the whole values are rechecked)."""
    ph = "%s" if text.pg else "?"
    idx = _PREFIX if text.pg and col == "value" else col
    where = "".join(f"{k} = {ph} AND " for k, _ in eq)
    keys = [vs[0] for _, vs in eq]
    match = _sql_condition("v", c.op, text)
    if idx != col:
        match = f"(length(v) >= {VALUE_PREFIX_CHARS} OR {match})"
    sql = (
        f"WITH RECURSIVE d(v, n) AS (SELECT (SELECT min({idx}) FROM {table.name} WHERE "
        f"{where}{idx} IS NOT NULL), 1 UNION ALL SELECT (SELECT min({idx}) FROM "
        f"{table.name} WHERE {where}{idx} > d.v), n + 1 FROM d "
        f"WHERE d.v IS NOT NULL AND d.n <= {ph}) "
        f"SELECT v, {match} FROM d WHERE v IS NOT NULL"
    )
    params = (*keys, *keys, DISTINCT_MAX_VALUES, c.value)
    rows = _execute(conn, sql, params).fetchall()
    if len(rows) > DISTINCT_MAX_VALUES:
        return None
    return tuple(v for v, match in rows if match)


def _scanned_values(
    conn: Any,
    table: sa.Table,
    eq: list[tuple[str, tuple[Any, ...]]],
    col: str,
    c: Comparison,
    cap: int,
) -> tuple[Any, ...] | None:
    """On SQLite, the values of ``col`` (under ``eq``) that match a pattern, read by a scan
    of the column's index entries (covering: ``(key, value, trace_key)``, ``ix_spans_name``,
    ``ix_spans_type``) with the pattern; None if ``cap`` entries or more match (a common
    pattern: the walk finds its page among the newest traces) or the scan takes more than
    :data:`SCAN_MAX_STEPS` VM steps (a column with too many entries; aborted by SQLite's
    progress handler, which interrupts this ``SELECT`` only, not the transaction)."""
    if SCAN_MAX_STEPS <= 0:
        return None
    where = "".join(f"{k} = ? AND " for k, _ in eq)
    sql = (
        f"SELECT {col} FROM {table.name} WHERE {where}"
        f"{_sql_condition(col, c.op, _SQLITE)} LIMIT {cap}"
    )
    raw = conn.connection.driver_connection
    steps = 0

    def bound() -> int:
        nonlocal steps
        steps += _SCAN_CHECK_STEPS
        return steps > SCAN_MAX_STEPS

    raw.set_progress_handler(bound, _SCAN_CHECK_STEPS)
    try:
        rows = raw.execute(sql, (*(vs[0] for _, vs in eq), c.value)).fetchall()
    except sqlite3.OperationalError:
        if steps <= SCAN_MAX_STEPS:
            raise
        return None
    finally:
        raw.set_progress_handler(None, 0)
    if len(rows) >= cap:
        return None
    return tuple(dict.fromkeys(v for (v,) in rows))


def _index_ranges(
    c: Comparison, text: _Text, conn: Any = None, scan: int = 0
) -> list[_Segment] | None:
    """The rows of a comparison's ``EXISTS`` as index ranges, on a span's name, type or
    status, a tag's, metadata's or span attribute's value: ``=``, ``IN``, ``!=``,
    ``NOT IN``, and ``LIKE``/``ILIKE`` with a prefix, or (given ``conn``) without one
    as the ``IN`` of the column's few values that match; None for the others. With
    ``scan`` (SQLite; 0: none), a pattern without a prefix is instead the ``IN`` of the values
    that match among the column's index entries, when fewer than ``scan`` do
    (:func:`_scanned_values`)."""
    table: sa.Table
    if c.entity in (TAG, META):
        table = t.trace_tags if c.entity == TAG else t.trace_metadata
        if t.implied_key(table.name, c.key) is not None:  # mostly not rows: no range
            return None
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
    segments = _segments(table, eq, col, c.op, c.value, text)
    if segments is not None:
        return segments
    if conn is None or c.op not in ("LIKE", "ILIKE") or not isinstance(c.value, str):
        return None
    if scan:
        matched = None if text.pg else _scanned_values(conn, table, eq, col, c, scan)
        return None if matched is None else [(table, [*eq, (col, matched)], [], [])]
    matched = _matching_values(conn, table, eq, col, c, text)
    if matched is None:
        return None
    if text.pg and col == "value":
        recheck = [(col, c.op, c.value)] if matched else []
        return [(table, [*eq, (_PREFIX, matched)], [], recheck)]
    return [(table, [*eq, (col, matched)], [], [])]


def _execute(conn: Any, sql: str, params: Sequence[Any]) -> Any:
    """Plain SQL on the driver's connection (the same transaction). On PostgreSQL never a
    prepared statement: psycopg prepares a statement run 5 times, whose generic plan
    PostgreSQL may then keep, planned for the average value (a common span name: a scan
    of its ~100k rows, ~45 ms) instead of these (a rare one: 20 index entries)."""
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        return raw.execute(sql, params, prepare=False)
    return raw.execute(sql, params)


def _sql_condition(col: str, op: str, text: _Text) -> str:
    """A condition of :data:`_Segment` in the database's SQL, as SQLAlchemy compiles it."""
    if op == "ILIKE":
        return f"{col} ILIKE %s" if text.pg else f"lower({col}) LIKE lower(?)"
    return f"{col} {op} {'%s' if text.pg else '?'}"


def pick_driver(
    conn: Any, comparisons: Sequence[Comparison], max_rows: int | None = None
) -> Driver | None:
    """The comparison that should drive a page's search, or None (issue 17).

    Each filter on a span, tag or attribute is a correlated ``EXISTS``: SQLite walks
    the experiment's traces in the page's order and probes each, which stops after the
    page when the filter is common but reads every trace when it matches few or none
    (100k traces: ~150 ms for a span name no trace has). Its statistics hold an average
    per index, not per value, so the planner cannot tell the two apart. PostgreSQL's
    estimate per value does not help a page either: it walks the newest traces as long
    as the matches look spread over time (when they are old or in another experiment,
    all of them), cannot read a ``LIKE`` prefix as a range of an index not built with
    ``text_pattern_ops`` under a collation other than ``C``, and plans ``IN (rows)`` as
    a hash join over every trace.

    This counts the index entries of each comparison that has index ranges
    (:func:`_index_ranges`), up to ``max_rows`` (:data:`DRIVE_MAX_ROWS`; a larger cap in
    :func:`_count_steps`), and picks the one with fewest when it has fewer: reading those rows and sorting their traces costs
    less than the walk (~1.5 µs per row on SQLite). One statement of plain SQL on the
    driver's connection (the same transaction), after one skip scan per pattern that
    starts with a wildcard: SQLAlchemy's building and results would cost more than the
    probe, which a common filter's page pays for nothing (~35 µs per filter on SQLite).
    On PostgreSQL the count reads the ranges' index entries without the rechecks (the
    whole value is not in the index), so a pattern's count is an upper bound.

    When none drives, on SQLite a pattern that starts with a wildcard over a column with
    more distinct values (free text) is looked for in the column's index entries, up to
    ``cap`` matches (:func:`_scanned_values`): ~0.2 µs per entry, a walk's ~3 µs per
    trace; it drives when it has fewer."""
    cap = DRIVE_MAX_ROWS if max_rows is None else max_rows
    if cap <= 0:
        return None
    text = _text(conn)
    found = [
        (i, r) for i, c in enumerate(comparisons) if (r := _index_ranges(c, text, conn)) is not None
    ]
    driver = _fewest(conn, found, cap, text) if found else None
    if driver is not None or text.pg:
        return driver
    done = {i for i, _ in found}
    for i, c in enumerate(comparisons):
        if i not in done and (r := _index_ranges(c, text, conn, min(cap, SCAN_MAX_MATCHES))):
            return Driver(i, r)
    return None


def _fewest(
    conn: Any, found: list[tuple[int, list[_Segment]]], cap: int, text: _Text
) -> Driver | None:
    """The comparison of ``found`` with fewest index rows if under ``cap``, or None."""
    ph = "%s" if text.pg else "?"
    counts: list[str] = []
    params: list[Any] = []
    for _, segments in found:
        selects, values = [], []
        for table, eq, bounds, rechecks in segments:
            where = [f"{col} IN ({', '.join([ph] * len(vs))})" if vs else "0 = 1" for col, vs in eq]
            conds = bounds if text.pg else [*bounds, *rechecks]
            where += [_sql_condition(col, op, text) for col, op, _ in conds]
            selects.append(f"SELECT 1 FROM {table.name} WHERE {' AND '.join(where)}")
            values += [v for _, vs in eq for v in vs] + [v for _, _, v in conds]
        counts.append(f"(SELECT count(*) FROM ({' UNION ALL '.join(selects)} LIMIT {{0}}) AS r)")
        params += values
    for step in _count_steps(cap):
        sql = f"SELECT {', '.join(counts)}".replace("{0}", str(step))
        row = _execute(conn, sql, tuple(params)).fetchone()
        n, k = min((n, k) for k, n in enumerate(row))
        if n < step:
            return Driver(found[k][0], found[k][1], text.pg)
    return None


def _count_steps(cap: int) -> list[int]:
    """The caps :func:`pick_driver` counts up to in turn, tenfold from 2,000 to ``cap``:
    a clause with 1,000 rows beside one with 60,000 reads ~3,000 index entries, not
    ``cap`` of the common one's (20,000: ~25 ms on PostgreSQL under load)."""
    out, step = [], 2000
    while step < cap:
        out.append(step)
        step *= 10
    return [*out, cap]


def walk_window(
    conn: Any,
    comparisons: Sequence[Comparison],
    order: Sequence[OrderBy],
    experiment_ids: Sequence[int],
    rows: int,
) -> Any | None:
    """A condition that bounds the walk of a page ending at ``rows`` (offset + limit + 1)
    to the experiment's newest traces (oldest for ``timestamp ASC``, longest for
    ``execution_time DESC`` on SQLite), or None.

    A filter whose index holds :data:`DRIVE_MAX_ROWS` rows or more is walked, which is
    fast when its traces are among the newest, and reads every trace when they are old
    or in other experiments (~150 ms per 100k traces on SQLite, ~75 ms on PostgreSQL).
    The page first walks the ``max(WINDOW_TRACES, 20 * rows)`` newest ones: they come
    first in the page's order, so if they fill the page it is the whole search's; if
    not, the caller searches again from the filter with fewest index rows (up to
    :data:`FALLBACK_MAX_ROWS`: ~1.5 µs each), or walks them all. None (no window) when
    no filter has index ranges (the fallback would be the same walk), the page is not
    ordered by an indexed key first, the search spans several experiments (no one index
    range in the page's order), or the experiment has fewer traces than the window."""
    if WINDOW_TRACES <= 0 or len(experiment_ids) != 1:
        return None
    first = order[0] if order else OrderBy(ATTR, "timestamp", False)
    col = _ORDER_KEYS[first.key] if first.entity == ATTR else None
    # an indexed order; a duration's NULLs (traces in progress) come first ascending on
    # SQLite, descending on PostgreSQL (NULLs sort high): outside any bound
    text = _text(conn)
    if col != "request_time" and (col != "execution_duration" or first.ascending or text.pg):
        return None
    if not any(_index_ranges(c, text) is not None for c in comparisons):
        return None
    size = max(WINDOW_TRACES, 20 * rows)
    ph = "%s" if text.pg else "?"
    row = _execute(
        conn,
        f"SELECT {col} FROM traces WHERE experiment_id = {ph} ORDER BY {col} "
        f"{'ASC' if first.ascending else 'DESC'} LIMIT 1 OFFSET {ph}",
        (experiment_ids[0], size - 1),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    key = t.traces.c[col]
    return key <= row[0] if first.ascending else key >= row[0]


def _column(table: sa.Table, col: str) -> Any:
    if col == _PREFIX:  # a literal length, or the planner cannot match the index's expression
        return sa.func.left(table.c.value, sa.literal_column(str(VALUE_PREFIX_CHARS)))
    return table.c[col]


def _driven(driver: Driver) -> Any:
    """``trace_id IN`` the traces of a comparison's index rows (its ``EXISTS``'s); on
    PostgreSQL ``= ANY(ARRAY(rows))``, which it reads first (an ``IN`` of the rows it
    plans as a hash join over every trace of the experiment)."""
    selects = [
        sa.select(t.link_column(table)).where(
            *(_column(table, col).in_(vs) for col, vs in eq),
            *(_compare(_column(table, col), op, v) for col, op, v in [*bounds, *rechecks]),
        )
        for table, eq, bounds, rechecks in driver.segments
        if all(eq_values for _, eq_values in eq)  # an empty IN (no value matched): no rows
    ]
    if not selects:  # SQLite would read the index for SQLAlchemy's empty IN
        return sa.false()
    rows = selects[0] if len(selects) == 1 else sa.union_all(*selects)
    # a comparison's segments are of one table: its rows name traces by one column
    linked = t.traces.c[t.link_column(driver.segments[0][0]).name]
    if driver.pg:
        return linked == sa.any_(sa.func.array(rows.scalar_subquery()))
    return linked.in_(rows)


def filter_clauses(comparisons: Sequence[Comparison], driver: Driver | None = None) -> list[Any]:
    """SQLAlchemy conditions on ``traces`` for parsed comparisons. ``driver``
    (:func:`pick_driver`): that comparison becomes ``trace_id IN (its rows' traces)``,
    which the database reads first, and the others are checked on its traces."""
    tc = t.traces.c
    out: list[Any] = []
    for i, c in enumerate(comparisons):
        if driver is not None and i == driver.position:  # the same rows as its EXISTS
            out.append(_driven(driver))
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
            implied = t.implied_key(table.name, o.key)
            if implied is not None:
                expr = sa.func.coalesce(expr, sa.case((_implied(implied[0]), implied[1])))
        out.append(expr.asc() if o.ascending else expr.desc())
    if not any(o.entity == ATTR and _ORDER_KEYS[o.key] == "request_time" for o in order):
        out.append(tc.request_time.desc())
    out.append(tc.trace_id.asc())
    return out
