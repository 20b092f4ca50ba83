"""MLflow's search grammar (``filter_string`` / ``order_by``), parsed with positions
and compiled to parameterized SQLAlchemy expressions.

Grammar (MLflow's, AND only)::

    filter     := clause ( AND clause )*
    clause     := identifier comparator value
                | identifier IS [NOT] NULL
                | identifier [NOT] IN '(' string ( ',' string )* ')'
    identifier := [entity '.'] key          entity: metric(s), param(s)/parameter(s),
                                            tag(s), attribute(s)/attr/run, dataset(s)
    key        := bare-key | `backticked` | "double quoted"
    comparator := = != <> < <= > >= LIKE ILIKE

Errors are INVALID_PARAMETER_VALUE naming the filter, what is wrong and its 0-based
position, e.g. ``Invalid filter 'metrics.acc >> 1': unexpected '>>' at position 12``.
Values never enter SQL text: they become bound parameters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import invalid
from .paging import decode_page_token, encode_page_token  # noqa: F401 - importable here

# -- entities and their aliases -------------------------------------------------

METRIC, PARAM, TAG, ATTRIBUTE, DATASET = "metric", "parameter", "tag", "attribute", "dataset"
_ENTITY_ALIASES = {
    "metric": METRIC,
    "metrics": METRIC,
    "parameter": PARAM,
    "parameters": PARAM,
    "param": PARAM,
    "params": PARAM,
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "attr": ATTRIBUTE,
    "run": ATTRIBUTE,
    "dataset": DATASET,
    "datasets": DATASET,
}
VALID_ENTITIES = [METRIC, PARAM, TAG, ATTRIBUTE, DATASET]

# run attributes: name in the filter -> (column, numeric?)
RUN_STRING_ATTRIBUTES = {
    "run_id": "run_uuid",
    "run_name": "name",
    "user_id": "user_id",
    "status": "status",
    "artifact_uri": "artifact_uri",
    "lifecycle_stage": "lifecycle_stage",
}
RUN_NUMERIC_ATTRIBUTES = {"start_time": "start_time", "end_time": "end_time"}
_RUN_ATTRIBUTE_ALIASES = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}
DATASET_ATTRIBUTES = ("name", "digest", "context")

EXPERIMENT_STRING_ATTRIBUTES = {"name": "name"}
EXPERIMENT_NUMERIC_ATTRIBUTES = {
    "creation_time": "creation_time",
    "last_update_time": "last_update_time",
}
EXPERIMENT_ORDER_ATTRIBUTES = {
    "name": "name",
    "experiment_id": "experiment_id",
    "creation_time": "creation_time",
    "last_update_time": "last_update_time",
}

NUMERIC_COMPARATORS = ("=", "!=", "<", "<=", ">", ">=")
STRING_COMPARATORS = ("=", "!=", "LIKE", "ILIKE")


# -- parsed form ----------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    entity: str  # METRIC, PARAM, TAG, ATTRIBUTE, DATASET
    key: str
    op: str  # = != < <= > >= LIKE ILIKE IN NOT_IN IS_NULL IS_NOT_NULL
    value: Any  # float, str, tuple[str, ...] or None
    pos: int  # where the clause starts


@dataclass(frozen=True)
class OrderBy:
    entity: str
    key: str
    ascending: bool


# -- lexer ----------------------------------------------------------------------

_WS = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[\w.\-/:]+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_OPERATOR = re.compile(r"[<>=!]+")
_KEYWORDS = {"AND", "OR", "LIKE", "ILIKE", "IN", "NOT", "IS", "NULL"}


class _Parser:
    """A hand-written scanner/parser over the raw string, so every error has a position."""

    #: entity names and aliases this grammar knows (traces have their own, trace_search.py)
    entities: dict[str, str] = _ENTITY_ALIASES
    valid_entities: list[str] = VALID_ENTITIES

    def __init__(self, text: str, what: str = "filter") -> None:
        self.text = text
        self.pos = 0
        self.what = what

    # errors
    def error(self, message: str, pos: int | None = None) -> Exception:
        p = self.pos if pos is None else pos
        return invalid(f"Invalid {self.what} '{self.text}': {message} at position {p}")

    def unexpected(self) -> Exception:
        if self.at_end():
            return invalid(f"Invalid {self.what} '{self.text}': unexpected end of input")
        m = _OPERATOR.match(self.text, self.pos) or _WORD.match(self.text, self.pos)
        tok = m.group(0) if m else self.text[self.pos]
        return self.error(f"unexpected '{tok}'")

    # scanning
    def skip_ws(self) -> None:
        m = _WS.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def peek_word(self) -> str | None:
        self.skip_ws()
        m = _WORD.match(self.text, self.pos)
        return m.group(0) if m else None

    def keyword(self, *words: str) -> str | None:
        """Consume one of ``words`` (case-insensitive) as a whole word."""
        w = self.peek_word()
        if w is not None and w.upper() in words:
            self.pos += len(w)
            return w.upper()
        return None

    def expect_char(self, ch: str) -> None:
        self.skip_ws()
        if self.text.startswith(ch, self.pos):
            self.pos += 1
            return
        raise (
            self.unexpected()
            if not self.at_end()
            else invalid(f"Invalid {self.what} '{self.text}': expected '{ch}' at end of input")
        )

    def quoted(self, quote: str) -> str:
        """Quoted text from the quote at ``pos``; inside quotes a doubled quote
        character stands for itself (SQL style: ``'it''s'``)."""
        start = self.pos
        parts = []
        i = start + 1
        while True:
            end = self.text.find(quote, i)
            if end < 0:
                raise self.error(f"unterminated {quote}-quoted text", start)
            parts.append(self.text[i:end])
            if quote != "`" and self.text.startswith(quote, end + 1):
                parts.append(quote)
                i = end + 2
                continue
            self.pos = end + 1
            return "".join(parts)

    # grammar pieces
    def identifier(self, default_entity: str = ATTRIBUTE) -> tuple[str, str, int]:
        """``entity.key`` (or a bare attribute) -> (entity, key, position)."""
        self.skip_ws()
        start = self.pos
        if self.at_end():
            raise invalid(
                f"Invalid {self.what} '{self.text}': expected an identifier at end of input"
            )
        ch = self.text[self.pos]
        if ch in '`"':
            return default_entity, self.quoted(ch), start
        m = _WORD.match(self.text, self.pos)
        if not m:
            raise self.error(f"expected an identifier, found '{ch}'")
        word = m.group(0)
        if word.upper() in _KEYWORDS and word.upper() != "NULL":
            raise self.error(f"expected an identifier, found keyword '{word}'")
        self.pos = m.end()
        if self.pos < len(self.text) and self.text[self.pos] == ".":
            entity = self.entities.get(word.lower())
            if entity is None:
                raise self.error(
                    f"Invalid entity type '{word}'. Valid values are {self.valid_entities}", start
                )
            self.pos += 1
            if self.pos >= len(self.text):
                raise self.error("expected a key after '.'")
            ch = self.text[self.pos]
            if ch in '`"':
                key = self.quoted(ch)
            else:
                km = _BARE_KEY.match(self.text, self.pos)
                if not km:
                    raise self.error(f"expected a key after '.', found '{ch}'")
                key = km.group(0)
                self.pos = km.end()
            return entity, key, start
        # a bare word: an attribute (``run_name = 'x'``)
        m2 = _BARE_KEY.match(self.text, start)
        key = m2.group(0) if m2 else word
        self.pos = start + len(key)
        return default_entity, key, start

    def string(self) -> str:
        self.skip_ws()
        if self.at_end():
            raise invalid(
                f"Invalid {self.what} '{self.text}': expected a quoted string at end of input"
            )
        ch = self.text[self.pos]
        if ch in "'\"":
            return self.quoted(ch)
        raise self.error(f"expected a quoted string, found '{self._token_here()}'")

    def _token_here(self) -> str:
        m = _NUMBER.match(self.text, self.pos) or _WORD.match(self.text, self.pos)
        return m.group(0) if m else self.text[self.pos]

    def value(self) -> tuple[Any, int]:
        """A number (float) or a quoted string; returns it with its position."""
        self.skip_ws()
        start = self.pos
        if self.at_end():
            raise invalid(f"Invalid {self.what} '{self.text}': expected a value at end of input")
        ch = self.text[self.pos]
        if ch in "'\"":
            return self.quoted(ch), start
        m = _NUMBER.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            return float(m.group(0)), start
        raise self.error(f"expected a value, found '{self._token_here()}'")


def parse_filter(filter_string: str | None) -> list[Comparison]:
    """Parse MLflow's filter grammar into comparisons (empty for no filter)."""
    if filter_string is None or not filter_string.strip():
        return []
    return _conjunction(
        _Parser(filter_string), _clause, " (Invalid clause(s) in filter string: 'or')"
    )


#: Most comparisons in one filter, and values in one IN list: past these a filter is
#: refused as the client's mistake before it reaches the database, where it would fail
#: (SQLite: "Expression tree is too large", "too many SQL variables").
MAX_FILTER_CLAUSES = 200
MAX_IN_VALUES = 10000


def _conjunction(p: _Parser, clause: Any, or_hint: str = "") -> list[Comparison]:
    """``clause ( AND clause )*`` to the end of the text; OR is refused where it stands."""
    out: list[Comparison] = []
    while True:
        if len(out) >= MAX_FILTER_CLAUSES:
            raise invalid(
                f"Invalid filter: more than {MAX_FILTER_CLAUSES} comparisons joined by AND."
            )
        out.append(clause(p))
        if p.at_end():
            return out
        pos = p.pos
        kw = p.keyword("AND", "OR")
        if kw == "OR":
            raise p.error(f"'OR' is not supported, only 'AND'{or_hint}", pos)
        if kw is None:
            raise p.unexpected()


def _symbol(p: _Parser) -> str | None:
    """Consume a symbolic comparator (``<>`` read as ``!=``, ``==`` as ``=``); None when
    the text here is not one."""
    op_pos = p.pos
    m = _OPERATOR.match(p.text, p.pos)
    if not m:
        return None
    op = {"<>": "!=", "==": "="}.get(m.group(0), m.group(0))
    if op not in NUMERIC_COMPARATORS:
        raise p.error(f"unexpected '{m.group(0)}'", op_pos)
    p.pos = m.end()
    return op


def _null_test(p: _Parser) -> str:
    """What follows ``IS``: ``[NOT] NULL``."""
    neg = p.keyword("NOT") is not None
    if p.keyword("NULL") is None:
        raise p.unexpected()
    return "IS_NOT_NULL" if neg else "IS_NULL"


def _clause(p: _Parser) -> Comparison:
    p.skip_ws()
    if p.text.startswith("(", p.pos):
        raise p.error("parentheses are not supported")
    entity, key, start = p.identifier()
    p.skip_ws()
    op_pos = p.pos
    if p.at_end():
        raise invalid(
            f"Invalid filter '{p.text}': expected a comparator after '{key}' at end of input"
        )
    op = _symbol(p)
    if op is not None:
        value, vpos = p.value()
        return _check(p, Comparison(entity, key, op, value, start), vpos)
    kw = p.keyword("LIKE", "ILIKE", "IN", "NOT", "IS")
    if kw in ("LIKE", "ILIKE"):
        value, vpos = p.value()
        return _check(p, Comparison(entity, key, kw, value, start), vpos)
    if kw == "IS":
        return _check(p, Comparison(entity, key, _null_test(p), None, start), op_pos)
    if kw == "NOT" or kw == "IN":
        if kw == "NOT" and p.keyword("IN") is None:
            raise p.unexpected()
        vpos = p.pos
        values = _in_list(p)
        op = "NOT_IN" if kw == "NOT" else "IN"
        return _check(p, Comparison(entity, key, op, tuple(values), start), vpos)
    raise p.error(f"expected a comparator after '{key}', found '{p._token_here()}'", op_pos)


def _in_list(p: _Parser) -> list[str]:
    p.expect_char("(")
    values = [p.string()]
    while True:
        p.skip_ws()
        if p.text.startswith(",", p.pos):
            p.pos += 1
            values.append(p.string())
            if len(values) > MAX_IN_VALUES:
                raise invalid(f"Invalid filter: an IN list holds more than {MAX_IN_VALUES} values.")
            continue
        p.expect_char(")")
        return values


def _check(p: _Parser, c: Comparison, vpos: int) -> Comparison:
    """Type rules of MLflow: which comparator and value type goes with which entity."""
    e, op, v = c.entity, c.op, c.value
    if e == METRIC:
        if op in ("IS_NULL", "IS_NOT_NULL"):
            return c
        if op not in NUMERIC_COMPARATORS:
            raise p.error(
                f"comparator '{op}' is not valid for metrics (use {list(NUMERIC_COMPARATORS)})",
                c.pos,
            )
        if not isinstance(v, float):
            raise p.error(f"Expected numeric value type for metric. Found '{v}'", vpos)
        return c
    if e in (PARAM, TAG):
        if op in ("IS_NULL", "IS_NOT_NULL"):
            return c
        if op in ("IN", "NOT_IN"):
            # Beyond MLflow (IN for run_id and datasets only): the runs table reads the
            # children of a page of parents with `tags.mlflow.parentRunId IN (...)`.
            # The parser takes only quoted strings in a list.
            return c
        if op not in STRING_COMPARATORS:
            raise p.error(
                f"comparator '{op.replace('_', ' ')}' is not valid for {e}s (use {list(STRING_COMPARATORS)})",
                c.pos,
            )
        if not isinstance(v, str):
            raise p.error(f"Expected a quoted string value for {e}s. Found '{_fmt(v)}'", vpos)
        return c
    if e == DATASET:
        if c.key not in DATASET_ATTRIBUTES:
            raise p.error(
                f"Invalid dataset attribute key '{c.key}'. Valid keys are {list(DATASET_ATTRIBUTES)}",
                c.pos,
            )
        if op in ("IN", "NOT_IN") or (op in STRING_COMPARATORS and isinstance(v, str)):
            return c
        raise p.error(f"comparator '{op}' with value '{_fmt(v)}' is not valid for datasets", c.pos)
    # attributes
    key = _RUN_ATTRIBUTE_ALIASES.get(c.key, c.key)
    c = Comparison(e, key, op, v, c.pos)
    if key in RUN_NUMERIC_ATTRIBUTES:
        if op not in NUMERIC_COMPARATORS:
            raise p.error(
                f"comparator '{op.replace('_', ' ')}' is not valid for attribute '{key}'", c.pos
            )
        if not isinstance(v, float):
            raise p.error(
                f"Expected numeric value type for attribute '{key}'. Found '{_fmt(v)}'", vpos
            )
        return c
    if key in RUN_STRING_ATTRIBUTES:
        if op in ("IN", "NOT_IN"):
            if key != "run_id":
                raise p.error(
                    f"'{op.replace('_', ' ')}' is only valid for attribute 'run_id'", c.pos
                )
            return c
        if op in ("IS_NULL", "IS_NOT_NULL"):
            return c
        if op not in STRING_COMPARATORS:
            raise p.error(
                f"comparator '{op}' is not valid for attribute '{key}' (use {list(STRING_COMPARATORS)})",
                c.pos,
            )
        if not isinstance(v, str):
            raise p.error(
                f"Expected a quoted string value for attribute '{key}'. Found '{_fmt(v)}'", vpos
            )
        return c
    valid = sorted(set(RUN_STRING_ATTRIBUTES) | set(RUN_NUMERIC_ATTRIBUTES))
    raise p.error(f"Invalid attribute key '{c.key}' specified. Valid keys are {valid}", c.pos)


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def parse_order_by(order_by: Sequence[str] | None, what: str = "order_by") -> list[OrderBy]:
    """``["metrics.acc DESC", "start_time", ...]`` -> clauses (ASC by default)."""
    out: list[OrderBy] = []
    for item in order_by or ():
        if not isinstance(item, str) or not item.strip():
            raise invalid(f"Invalid order_by clause '{item}'")
        p = _Parser(item, "order_by clause")
        entity, key, _ = p.identifier()
        asc = True
        if not p.at_end():
            kw = p.keyword("ASC", "DESC")
            if kw is None:
                raise p.unexpected()
            asc = kw == "ASC"
        if not p.at_end():
            raise p.unexpected()
        if entity == ATTRIBUTE:
            key = _RUN_ATTRIBUTE_ALIASES.get(key, key)
        out.append(OrderBy(entity, key, asc))
    return out


# -- compilation to SQL -------------------------------------------------------------


def run_filter_clauses(
    comparisons: Sequence[Comparison],
    dialect: str = "sqlite",
    per_run: bool = False,
    absent_per_run: bool = False,
) -> list[Any]:
    """WHERE clauses over ``runs`` for parsed comparisons (parameterized), in the form
    the ``dialect``'s indexes serve. ``per_run``: metric/param/tag comparisons as
    ``EXISTS`` subqueries correlated with the run, each one probe of the run's row of
    the key (for a search that walks runs in an index's order and stops after a page);
    otherwise as the set of runs that match (one query, read from the value indexes).

    ``IS NULL`` (no row of the key) is ``NOT IN`` the key's runs on SQLite, which reads
    them once into an in-memory list (a probe of it costs a third of a correlated ``NOT
    EXISTS`` probe of the key's index, ``bench/RESULTS.md``), unless ``absent_per_run``
    (a page read in an index's order, which stops after the page: a probe per run read
    costs less than reading every run with the key first). On PostgreSQL it is ``NOT
    EXISTS``: its planner never turns ``NOT IN`` into an anti-join, and once the key's
    runs outgrow ``work_mem`` (the parent tag of a few hundred thousand child runs) it
    scans them again for every run."""
    import sqlalchemy as sa

    from .schema import latest_metrics, params, runs, tags

    clauses: list[Any] = []
    keyed = [c for c in comparisons if c.entity in (METRIC, PARAM, TAG) and c.op != "IS_NULL"]
    joined = keyed[:MAX_JOINED_FILTERS] if len(keyed) > 1 and not per_run else []
    if joined:
        clauses.append(runs.c.run_uuid.in_(candidate_runs(joined, dialect)))
    for c in comparisons:
        if any(c is j for j in joined):
            continue
        if c.entity in (METRIC, PARAM, TAG) and (
            per_run or (c.op == "IS_NULL" and (absent_per_run or dialect == "postgresql"))
        ):
            clauses.append(_exists_clause(c, dialect))
        elif c.entity == METRIC:
            clauses.append(_keyed_clause(runs.c.run_uuid, latest_metrics.c.run_uuid, c))
        elif c.entity in (PARAM, TAG):
            t = params if c.entity == PARAM else tags
            clauses.append(_keyed_clause(runs.c.run_uuid, t.c.run_uuid, c, dialect))
        elif c.entity == DATASET:
            clauses.append(sa.false())  # this store keeps no dataset inputs
        else:
            if c.key in RUN_NUMERIC_ATTRIBUTES:
                col = runs.c[RUN_NUMERIC_ATTRIBUTES[c.key]]
                v: Any = c.value
                clauses.append(_compare(col, c.op, int(v) if float(v).is_integer() else v))
            else:
                col = runs.c[RUN_STRING_ATTRIBUTES[c.key]]
                clauses.append(_compare(col, c.op, c.value))
    return clauses


def split_absence(comparisons: Sequence[Comparison]) -> tuple[Comparison | None, list[Comparison]]:
    """For a count: the filter's one metric/param/tag ``IS NULL`` comparison and the
    others, when no other comparison names a metric, param or tag (else ``None`` and
    all of them). ``count(F and k IS NULL) = count(F) - count(F and k IS NOT NULL)``:
    both sides name the same rows of key ``k`` (any value, NULL included), so the two
    are exact complements. With another keyed comparison the second count joins both
    keys' rows (a probe per candidate, no cheaper than the plain filter)."""
    keyed = [c for c in comparisons if c.entity in (METRIC, PARAM, TAG)]
    if len(keyed) != 1 or keyed[0].op != "IS_NULL":
        return None, list(comparisons)
    return keyed[0], [c for c in comparisons if c is not keyed[0]]


#: Most metric/param/tag comparisons of one filter joined into one candidate query (the
#: rest are one ``IN`` each): PostgreSQL plans a join of more tables than its
#: ``join_collapse_limit`` (8, with runs and the order's) in the order written.
MAX_JOINED_FILTERS = 6


def candidate_runs(comparisons: Sequence[Comparison], dialect: str) -> Any:
    """``SELECT f0.run_uuid FROM <table> f0 JOIN <table> f1 ON f1.run_uuid = f0.run_uuid
    AND f1.key = ? AND f1.value <op> ? ... WHERE f0.key = ? AND f0.value <op> ?``: the
    runs that satisfy every comparison, as one join of the key/value tables (a run has
    one row per key in each, so no run comes twice).

    One ``IN`` per comparison left PostgreSQL a choice between probing each run of the
    experiment or each candidate of one filter, both joined to ``runs`` first: at a
    million runs it scanned all of them to intersect 10k candidates (seconds). As one
    join, the planner intersects the candidates of the most selective filter with the
    others' indexes, then reads only the runs that are left (``bench/RESULTS.md``)."""
    import sqlalchemy as sa

    from .schema import latest_metrics, params, tags

    tables = {METRIC: latest_metrics, PARAM: params, TAG: tags}
    aliases = [tables[c.entity].alias(f"f{i}") for i, c in enumerate(comparisons)]

    def match(a: Any, c: Comparison) -> list[Any]:
        cond = [a.c.key == c.key]
        if c.op == "IS_NOT_NULL":
            return cond
        if c.entity == METRIC:
            return [*cond, _compare(a.c.value, c.op, c.value)]
        return [*cond, *_value_match(a.c.value, c.op, c.value, dialect)]

    first = aliases[0]
    joined: Any = first
    for a, c in zip(aliases[1:], comparisons[1:], strict=True):
        joined = joined.join(a, sa.and_(a.c.run_uuid == first.c.run_uuid, *match(a, c)))
    return sa.select(first.c.run_uuid).select_from(joined).where(*match(first, comparisons[0]))


def _exists_clause(c: Comparison, dialect: str) -> Any:
    """``[NOT] EXISTS (SELECT 1 FROM <table> WHERE run_uuid = runs.run_uuid AND key = ?
    AND value <op> ?)``: a comparison checked by one probe of (run, key) per run."""
    import sqlalchemy as sa

    from .schema import latest_metrics, params, runs, tags

    t = {METRIC: latest_metrics, PARAM: params, TAG: tags}[c.entity].alias("fx")
    cond = [t.c.run_uuid == runs.c.run_uuid, t.c.key == c.key]
    if c.op not in ("IS_NULL", "IS_NOT_NULL"):
        if c.entity == METRIC:
            cond.append(_compare(t.c.value, c.op, c.value))
        else:
            cond += _value_match(t.c.value, c.op, c.value, dialect)
    found = sa.exists().where(*cond).correlate(runs)
    return ~found if c.op == "IS_NULL" else found


def _keyed_clause(owner: Any, ref: Any, c: Comparison, dialect: str | None = None) -> Any:
    """``owner IN (SELECT ref FROM <key/value table> WHERE key = ? AND value <op> ?)``
    (NOT IN for IS NULL) over a table of (owner, key, value) rows: metrics, params and
    tags of runs, tags of experiments. With a ``dialect``, values are compared in the
    form its param/tag indexes serve."""
    import sqlalchemy as sa

    table = ref.table
    if c.op == "IS_NULL":
        return owner.not_in(sa.select(ref).where(table.c.key == c.key))
    cond = [table.c.key == c.key]
    if c.op != "IS_NOT_NULL":
        if dialect is None:
            cond.append(_compare(table.c.value, c.op, c.value))
        else:
            cond += _value_match(table.c.value, c.op, c.value, dialect)
    return owner.in_(sa.select(ref).where(*cond))


def _value_match(col: Any, op: str, value: Any, dialect: str) -> list[Any]:
    """A param/tag value comparison, in the form PostgreSQL's indexes serve (whole
    values do not fit its b-tree). A literal of at most N characters can only equal a
    value of at most N: ``length(value) <= N`` lets the planner use the partial index of
    those values, whole (migration 0017: index-only scans). A longer literal compares
    the indexed prefix ``left(value, N)`` (migration 0006), then the full value. ``IN``
    lists of short literals take the partial index too."""
    if dialect != "postgresql" or op not in ("=", "IN"):
        return [_compare(col, op, value)]
    import sqlalchemy as sa

    from .schema import VALUE_PREFIX_CHARS as n

    # a literal N, not a bound parameter, or the planner cannot match the index expression
    # (nor prove the partial index's predicate)
    limit: Any = sa.literal_column(str(n))
    if op == "IN":
        if all(len(v) <= n for v in value):
            return [sa.func.length(col) <= limit, _compare(col, op, value)]
        return [_compare(col, op, value)]
    if len(value) <= n:
        return [sa.func.length(col) <= limit, col == value]
    return [sa.func.left(col, limit) == value[:n], col == value]


def experiment_filter_clauses(comparisons: Sequence[Comparison]) -> list[Any]:
    from .schema import experiment_tags, experiments

    clauses: list[Any] = []
    for c in comparisons:
        if c.entity == TAG:
            clauses.append(
                _keyed_clause(experiments.c.experiment_id, experiment_tags.c.experiment_id, c)
            )
        elif c.entity == ATTRIBUTE and c.key in EXPERIMENT_STRING_ATTRIBUTES:
            clauses.append(_compare(experiments.c[c.key], c.op, c.value))
        elif c.entity == ATTRIBUTE and c.key in ("creation_time", "last_update_time", "start_time"):
            key = "creation_time" if c.key == "start_time" else c.key
            clauses.append(_compare(experiments.c[key], c.op, int(c.value)))
        else:
            raise invalid(
                f"Invalid filter: '{c.entity}.{c.key}' cannot be used to search experiments. "
                "Valid keys are 'name', 'creation_time', 'last_update_time' and 'tags.<key>'"
            )
    return clauses


def parse_experiment_filter(filter_string: str | None) -> list[Comparison]:
    """The experiment search grammar: ``name``/times (attributes) and ``tags.<key>``."""
    if filter_string is None or not filter_string.strip():
        return []
    return _conjunction(_Parser(filter_string), _experiment_clause)


def _experiment_clause(p: _Parser) -> Comparison:
    p.skip_ws()
    entity, key, start = p.identifier()
    if entity not in (ATTRIBUTE, TAG):
        raise p.error(
            f"Invalid entity type '{entity}' for experiments. Valid values are ['attribute', 'tag']",
            start,
        )
    p.skip_ws()
    op_pos = p.pos
    op = _symbol(p)
    if op is None:
        kw = p.keyword("LIKE", "ILIKE", "IS")
        if kw is None:
            raise p.unexpected()
        op = _null_test(p) if kw == "IS" else kw
    value: Any = None
    vpos = p.pos
    if op not in ("IS_NULL", "IS_NOT_NULL"):
        value, vpos = p.value()
    numeric = entity == ATTRIBUTE and key in ("creation_time", "last_update_time")
    if entity == ATTRIBUTE and key not in ("name", "creation_time", "last_update_time"):
        raise p.error(
            f"Invalid attribute key '{key}' specified. Valid keys are "
            "['name', 'creation_time', 'last_update_time']",
            start,
        )
    if numeric and (op not in NUMERIC_COMPARATORS or not isinstance(value, float)):
        raise p.error(f"'{key}' takes a numeric comparison ({list(NUMERIC_COMPARATORS)})", vpos)
    if not numeric and op not in ("IS_NULL", "IS_NOT_NULL"):
        if op not in STRING_COMPARATORS:
            raise p.error(f"comparator '{op}' is not valid for '{key}'", op_pos)
        if not isinstance(value, str):
            raise p.error(
                f"Expected a quoted string value for '{key}'. Found '{_fmt(value)}'", vpos
            )
    return Comparison(entity, key, op, value, start)


def _compare(col: Any, op: str, value: Any) -> Any:
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == "<":
        return col < value
    if op == "<=":
        return col <= value
    if op == ">":
        return col > value
    if op == ">=":
        return col >= value
    if op == "LIKE":
        return col.like(value)
    if op == "ILIKE":
        return col.ilike(value)
    if op == "IN":
        return col.in_(list(value))
    if op == "NOT_IN":
        return col.not_in(list(value))
    if op == "IS_NULL":
        return col.is_(None)
    if op == "IS_NOT_NULL":
        return col.is_not(None)
    raise invalid(f"Unsupported comparator '{op}'")  # pragma: no cover - the parser checks


def run_order_by(
    order: Sequence[OrderBy], query: Any, dialect: str = "sqlite"
) -> tuple[Any, list[Any]]:
    """Join what the ordering needs onto ``query`` (a SELECT over runs); return it with
    ORDER BY terms, NULLs (and NaN metrics) last, tie-broken by start_time DESC, run_id.
    Strings sort by code point on every backend (PostgreSQL: ``COLLATE "C"``)."""
    query, keys = run_order_keys(order, query, dialect)
    return query, [(c.asc() if asc else c.desc()).nulls_last() for c, asc in keys]


def run_order_keys(
    order: Sequence[OrderBy], query: Any, dialect: str = "sqlite"
) -> tuple[Any, list[tuple[Any, bool]]]:
    """:func:`run_order_by`'s sort keys as (column expression, ascending) pairs, NULLs
    last on each; the last key is the run id, so together they order runs totally."""
    import sqlalchemy as sa

    from .schema import latest_metrics, params, runs, tags

    keys: list[tuple[Any, bool]] = []
    seen_start = seen_id = False
    for i, o in enumerate(order):
        col: sa.ColumnElement[Any]
        if o.entity in (METRIC, PARAM, TAG):
            base = {METRIC: latest_metrics, PARAM: params, TAG: tags}[o.entity]
            a = base.alias(f"ob{i}")
            query = query.outerjoin(a, sa.and_(a.c.run_uuid == runs.c.run_uuid, a.c.key == o.key))
            col = a.c.value
        elif o.entity == ATTRIBUTE:
            if o.key in RUN_NUMERIC_ATTRIBUTES:
                col = runs.c[RUN_NUMERIC_ATTRIBUTES[o.key]]
                seen_start = seen_start or o.key == "start_time"
            elif o.key in RUN_STRING_ATTRIBUTES:
                col = runs.c[RUN_STRING_ATTRIBUTES[o.key]]
                seen_id = seen_id or o.key == "run_id"
            elif o.key == "experiment_id":
                col = runs.c.experiment_id
            else:
                valid = sorted(set(RUN_STRING_ATTRIBUTES) | set(RUN_NUMERIC_ATTRIBUTES))
                raise invalid(f"Invalid order_by attribute key '{o.key}'. Valid keys are {valid}")
        elif o.entity == DATASET:
            continue
        else:  # pragma: no cover - parse_order_by maps entities
            raise invalid(f"Invalid entity type '{o.entity}'. Valid values are {VALID_ENTITIES}")
        if dialect == "postgresql" and isinstance(col.type, sa.String):
            col = col.collate("C")
        keys.append((col, o.ascending))
    if not seen_start:
        keys.append((runs.c.start_time, False))
    if not seen_id:  # run ids are unique: with one among the keys the order is total
        keys.append((runs.c.run_uuid, True))
    return query, keys


def keyset_values_ok(keys: Sequence[tuple[Any, bool]], values: Sequence[Any]) -> bool:
    """Whether a token's keyset values have the types of the sort keys (a forged or
    stale token must be a 400, not a database type error)."""
    import sqlalchemy as sa

    if len(values) != len(keys):
        return False
    for (col, _), v in zip(keys, values, strict=True):
        if v is None:
            continue
        if isinstance(col.type, sa.String):
            if not isinstance(v, str):
                return False
        elif isinstance(col.type, sa.Float):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return False
        elif isinstance(v, bool) or not isinstance(v, int):  # integer columns
            return False
    return True


def keyset_after(keys: Sequence[tuple[Any, bool]], last: Sequence[Any]) -> Any:
    """The rows that come after ``last`` (the sort values of a page's last row) in the
    order of ``keys`` (each NULLs last): ``k0 after v0 OR (k0 = v0 AND k1 after v1) OR
    ...``. The first key's bound is also given alone (``k0 <= v0 OR k0 IS NULL``, or
    ``k0 IS NULL``) so that an index on it can start the scan there."""
    import sqlalchemy as sa

    def eq(col: Any, v: Any) -> Any:
        return col.is_(None) if v is None else col == v

    def after(col: Any, asc: bool, v: Any) -> Any:
        if v is None:  # NULLs come last: nothing after them in this key
            return sa.false()
        return sa.or_(col > v if asc else col < v, col.is_(None))

    alts = []
    for i, (col, asc) in enumerate(keys):
        alts.append(
            sa.and_(
                *[eq(c, last[j]) for j, (c, _) in enumerate(keys[:i])], after(col, asc, last[i])
            )
        )
    col0, asc0, v0 = keys[0][0], keys[0][1], last[0]
    bound = (
        col0.is_(None) if v0 is None else sa.or_(col0 >= v0 if asc0 else col0 <= v0, col0.is_(None))
    )
    return sa.and_(bound, sa.or_(*alts))


def experiment_order_by(order: Sequence[OrderBy]) -> list[Any]:

    from .schema import experiments

    terms: list[Any] = []
    keys = set()
    for o in order:
        if o.entity != ATTRIBUTE or o.key not in EXPERIMENT_ORDER_ATTRIBUTES:
            raise invalid(
                f"Invalid order_by entity '{o.entity}.{o.key}' for experiments. Valid keys are "
                f"{sorted(EXPERIMENT_ORDER_ATTRIBUTES)}"
            )
        col = experiments.c[EXPERIMENT_ORDER_ATTRIBUTES[o.key]]
        keys.add(o.key)
        terms.append((col.asc() if o.ascending else col.desc()).nulls_last())
    if not terms:  # MLflow's default: creation_time DESC, experiment_id ASC
        return [experiments.c.creation_time.desc(), experiments.c.experiment_id.asc()]
    if "experiment_id" not in keys:  # MLflow's tie-breaker
        terms.append(experiments.c.experiment_id.desc())
    return terms
