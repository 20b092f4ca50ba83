"""MLflow 3's trace metrics (``traces/metrics``, ``QueryTraceMetrics``) in SQL over the
trace index: counts, latency, token usage, span cost, assessment values, aggregated
(COUNT, SUM, AVG, MIN, MAX, percentiles) per dimension and time bucket.

Three views, MLflow's names (``mlflow.tracing.constant``):

- ``TRACES``: ``trace_count``, ``session_count`` (distinct ``mlflow.trace.session``),
  ``latency`` (ms), ``input_tokens``/``output_tokens``/``total_tokens``/
  ``cache_read_input_tokens``/``cache_creation_input_tokens`` (the trace's
  ``mlflow.trace.tokenUsage`` metadata); dimensions ``trace_name``, ``trace_status``.
- ``SPANS``: ``span_count``, ``latency`` (ms), ``input_cost``/``output_cost``/
  ``total_cost`` (span attribute ``mlflow.llm.cost``); dimensions ``span_name``,
  ``span_type``, ``span_status``, ``span_model_name``, ``span_model_provider``.
- ``ASSESSMENTS`` (valid ones: an overridden assessment does not count twice):
  ``assessment_count``, ``assessment_value`` (numbers; ``true``/``"yes"`` 1,
  ``false``/``"no"`` 0; other values are left out); dimensions ``assessment_name``,
  ``assessment_value``.

``time_interval_seconds`` adds the ``time_bucket`` dimension (ISO 8601, UTC). Filters are
MLflow's (``trace.status = 'OK'``, ``trace.tag.<key> = 'v'``, ``trace.metadata.<key> =
'v'``, ``span.name|type|status = 'v'``, ``assessment.name|type = 'v'``, also ``!=``) or,
beyond MLflow, any trace search filter (``tags.env = 'prod' AND span.type = 'LLM'``).
Percentiles interpolate linearly (``percentile_cont``; on SQLite the group's sorted values
are read and interpolated the same way).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from . import trace_search
from . import traces as t
from .assessments import assessments
from .errors import invalid

TRACES, SPANS, ASSESSMENTS = "TRACES", "SPANS", "ASSESSMENTS"
TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
COST_KEYS = ("input_cost", "output_cost", "total_cost")
META_TOKEN_USAGE = "mlflow.trace.tokenUsage"
META_SESSION = "mlflow.trace.session"
ATTR_COST = "mlflow.llm.cost"
ATTR_MODEL = "mlflow.llm.model"
ATTR_PROVIDER = "mlflow.llm.provider"
TIME_BUCKET = "time_bucket"
AGGREGATIONS = ("COUNT", "SUM", "AVG", "MIN", "MAX", "PERCENTILE")
#: Most data points one answer holds (MLflow's server: 1000).
MAX_RESULTS = 1000

_STATS = ("AVG", "MIN", "MAX", "PERCENTILE")
_SUMS = ("SUM", *_STATS)
_SPAN_DIMS = ("span_name", "span_type", "span_status", "span_model_name", "span_model_provider")
_MODEL_DIMS = ("span_model_name", "span_model_provider")
#: view -> metric -> (aggregations, dimensions): MLflow 3.17's table
#: (``sql_trace_metrics_utils``), so a query it refuses is refused here too.
METRICS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    TRACES: {
        "trace_count": (("COUNT",), ("trace_name", "trace_status")),
        "session_count": (("COUNT",), ()),
        "latency": (_STATS, ("trace_name",)),
        **dict.fromkeys(TOKEN_KEYS, (_SUMS, ("trace_name",))),
    },
    SPANS: {
        "span_count": (("COUNT",), _SPAN_DIMS),
        "latency": (_STATS, ("span_name", "span_status")),
        **dict.fromkeys(COST_KEYS, (_SUMS, _MODEL_DIMS)),
    },
    ASSESSMENTS: {
        "assessment_count": (("COUNT",), ("assessment_name", "assessment_value")),
        "assessment_value": (_STATS, ("assessment_name",)),
    },
}
#: Every metric name MLflow defines (any view).
METRIC_NAMES = frozenset(name for view in METRICS.values() for name in view)


@dataclass(frozen=True)
class Aggregation:
    kind: str
    percentile: float | None = None

    @property
    def label(self) -> str:
        """The key of its value in a data point (MLflow's ``str(MetricAggregation)``)."""
        return f"P{self.percentile}" if self.kind == "PERCENTILE" else self.kind


@dataclass
class MetricsQuery:
    experiment_ids: list[int]
    view: str
    metric: str
    aggregations: list[Aggregation]
    dimensions: list[str]
    filters: list[str]
    time_interval_seconds: int | None = None
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    max_results: int = MAX_RESULTS
    #: The shared service's access filter (``traces.owner_clauses``; None: every trace).
    visible_owners: list[str] | None = None
    viewer: str | None = None


def check(q: MetricsQuery) -> None:
    """MLflow's validation: the metric is the view's, its aggregations and dimensions too."""
    if q.view not in METRICS:
        raise invalid(f"view_type must be one of {list(METRICS)}, got '{q.view}'")
    if q.metric not in METRICS[q.view]:
        raise invalid(f"metric_name must be one of {list(METRICS[q.view])}, got '{q.metric}'")
    aggs, dims = METRICS[q.view][q.metric]
    if not q.aggregations:
        raise invalid("Missing value for required parameter 'aggregations'.")
    bad = sorted({a.kind for a in q.aggregations} - set(aggs))
    if bad:
        raise invalid(
            f"Found invalid aggregation_type(s): {bad}. Supported aggregation types: {sorted(aggs)}"
        )
    for a in q.aggregations:
        if a.kind == "PERCENTILE" and (a.percentile is None or not 0 <= a.percentile <= 100):
            raise invalid("percentile_value must be between 0 and 100 for PERCENTILE.")
    bad = sorted(set(q.dimensions) - set(dims))
    if bad:
        raise invalid(f"Found invalid dimension(s): {bad}. Supported dimensions: {sorted(dims)}")
    if q.time_interval_seconds is not None and q.time_interval_seconds <= 0:
        raise invalid("time_interval_seconds must be positive.")


_FILTER = re.compile(
    r"^\s*(trace|span|assessment)\.(\w+)(?:\.(`[^`]+`|[\w.\-]+))?\s*(=|!=)\s*"
    r"(?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")\s*$"
)


def _json_at(dialect: str, text: Any, *path: str) -> Any:
    """The JSON text of the value at ``path`` of a JSON column (None where absent)."""
    if dialect == "postgresql":
        expr: Any = sa.cast(text, JSONB)
        for p in path:
            expr = expr.op("->")(p)
        return sa.cast(expr, sa.Text)
    return text.op("->")("$." + ".".join(path))  # SQLite >= 3.38: JSON text


def _json_number(dialect: str, text: Any, key: str) -> Any:
    """A number at ``key`` of a JSON object column."""
    if dialect == "postgresql":
        return sa.cast(sa.cast(text, JSONB).op("->>")(key), sa.Float)
    return sa.cast(sa.func.json_extract(text, f"$.{key}"), sa.Float)


def _numeric_value(json_text: Any) -> Any:
    """MLflow's reading of an assessment value: true/"yes" 1, false/"no" 0, numbers as
    they are, anything else NULL (left out of the aggregation)."""
    return sa.case(
        (json_text.in_(["true", '"yes"']), 1.0),
        (json_text.in_(["false", '"no"']), 0.0),
        (json_text.is_(None), None),
        (json_text == "null", None),
        (sa.func.substr(json_text, 1, 1).in_(['"', "[", "{"]), None),
        else_=sa.cast(json_text, sa.Float),
    )


class _Builder:
    def __init__(self, q: MetricsQuery, dialect: str) -> None:
        self.q, self.dialect = q, dialect
        tc = t.traces.c
        self.froms: Any = t.traces
        self.where: list[Any] = [
            tc.experiment_id.in_(q.experiment_ids),
            *t.owner_clauses(q.visible_owners, q.viewer),
        ]
        if q.start_time_ms is not None:
            self.where.append(tc.request_time >= q.start_time_ms)
        if q.end_time_ms is not None:
            self.where.append(tc.request_time < q.end_time_ms)
        self.span = t.spans.alias("s") if q.view == SPANS else None
        self.assessment = assessments.alias("a") if q.view == ASSESSMENTS else None
        if self.span is not None:
            self.froms = self.froms.join(self.span, t.trace_link(self.span))
        if self.assessment is not None:
            a = self.assessment
            self.froms = self.froms.join(a, sa.and_(a.c.trace_id == tc.trace_id, a.c.valid))
        self._n = 0

    def _alias(self) -> str:
        self._n += 1
        return f"j{self._n}"

    def _keyed(self, table: Any, key: str, outer: bool = True) -> Any:
        """A join to the trace's row of ``table`` with ``key``: its value column."""
        al = table.alias(self._alias())
        on = sa.and_(al.c.trace_id == t.traces.c.trace_id, al.c.key == key)
        self.froms = self.froms.outerjoin(al, on) if outer else self.froms.join(al, on)
        return al.c.value

    def _span_attr(self, key: str, outer: bool = True) -> Any:
        assert self.span is not None
        al = t.span_attributes.alias(self._alias())
        on = sa.and_(
            al.c.trace_key == self.span.c.trace_key,
            al.c.span_id == self.span.c.span_id,
            al.c.key == key,
        )
        self.froms = self.froms.outerjoin(al, on) if outer else self.froms.join(al, on)
        return al.c.value

    def _assessment_value_json(self) -> Any:
        assert self.assessment is not None
        body = self.assessment.c.body
        return sa.func.coalesce(
            _json_at(self.dialect, body, "feedback", "value"),
            _json_at(self.dialect, body, "expectation", "value"),
        )

    # -- what is aggregated -------------------------------------------------------------
    def value(self) -> Any:
        q, tc = self.q, t.traces.c
        if q.view == TRACES:
            if q.metric == "trace_count":
                return tc.trace_id
            if q.metric == "session_count":
                return self._keyed(t.trace_metadata, META_SESSION, outer=False)
            if q.metric == "latency":
                return tc.execution_duration
            usage = self._keyed(t.trace_metadata, META_TOKEN_USAGE, outer=False)
            return _json_number(self.dialect, usage, q.metric)
        if q.view == SPANS:
            s = self.span
            assert s is not None
            if q.metric == "span_count":
                return s.c.span_id
            if q.metric == "latency":
                return (s.c.end_time_ns - s.c.start_time_ns) // 1_000_000
            return _json_number(self.dialect, self._span_attr(ATTR_COST, outer=False), q.metric)
        a = self.assessment
        assert a is not None
        if q.metric == "assessment_count":
            return a.c.assessment_id
        return _numeric_value(self._assessment_value_json())

    def dimension(self, name: str) -> Any:
        tc = t.traces.c
        if name == "trace_name":
            return tc.name
        if name == "trace_status":
            return tc.state
        if self.span is not None:
            s = self.span.c
            cols = {"span_name": s.name, "span_type": s.span_type, "span_status": s.status}
            if name in cols:
                return cols[name]
            if name == "span_model_name":
                return self._span_attr(ATTR_MODEL)
            if name == "span_model_provider":
                return self._span_attr(ATTR_PROVIDER)
        if self.assessment is not None:
            if name == "assessment_name":
                return self.assessment.c.name
            if name == "assessment_value":
                return self._assessment_value_json()
        raise invalid(f"Unsupported dimension `{name}` with view type {self.q.view}")

    def time_bucket(self) -> Any:
        size = int(self.q.time_interval_seconds or 0) * 1000
        if self.span is not None:
            ts: Any = self.span.c.start_time_ns // 1_000_000
        elif self.assessment is not None:
            ts = self.assessment.c.create_time
        else:
            ts = t.traces.c.request_time
        return (ts // size) * size  # the start of its bucket

    # -- filters --------------------------------------------------------------------------
    def add_filter(self, text: str) -> None:
        m = _FILTER.match(text)
        if m is None:  # beyond MLflow: the trace search grammar
            self.where += trace_search.filter_clauses(trace_search.parse_trace_filter(text))
            return
        view, entity, key, op, v1, v2 = m.groups()
        value = v1 if v1 is not None else v2
        key = key.strip("`") if key else None
        col: Any = None
        if view == "trace":
            if entity == "status" and key is None:
                col = t.traces.c.state
            elif entity in ("tag", "metadata") and key:
                table = t.trace_tags if entity == "tag" else t.trace_metadata
                cond = trace_search.keyed_filter(table, key, "=", value)
                self.where.append(cond if op == "=" else ~cond)
                return
            else:  # trace.name, trace.execution_time_ms ...: the trace search grammar
                self.where += trace_search.filter_clauses(trace_search.parse_trace_filter(text))
                return
        elif view == "span":
            if self.span is None:
                raise invalid(
                    f"Filtering by span is only supported for {SPANS} view type, got {self.q.view}"
                )
            col = {"name": self.span.c.name, "status": self.span.c.status}.get(entity)
            if entity == "type":
                col = self.span.c.span_type
        elif view == "assessment":
            if self.assessment is None:
                raise invalid(
                    "Filtering by assessment is only supported for "
                    f"{ASSESSMENTS} view type, got {self.q.view}"
                )
            col = {"name": self.assessment.c.name, "type": self.assessment.c.kind}.get(entity)
            if entity == "type":
                value = value.lower()
        if col is None:
            raise invalid(f"Invalid filter '{text}': unknown {view} field '{entity}'")
        self.where.append(col == value if op == "=" else col != value)


def _percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear interpolation (``percentile_cont``, numpy's default)."""
    pos = (len(sorted_values) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def query(conn: Connection, dialect: str, q: MetricsQuery) -> list[dict[str, Any]]:
    """The data points, MLflow's ``MetricDataPoint`` JSON: ``{"metric_name",
    "dimensions": {name: value}, "values": {label: number}}``, ordered by dimensions."""
    check(q)
    b = _Builder(q, dialect)
    for f in q.filters:
        if f and f.strip():
            b.add_filter(f)
    value = b.value()
    b.where.append(value.isnot(None))  # as MLflow: NULLs never start a group of their own
    dims: list[tuple[str, Any]] = []
    if q.time_interval_seconds:
        dims.append((TIME_BUCKET, b.time_bucket()))
    dims += [(d, b.dimension(d)) for d in q.dimensions]
    dim_cols = [c for _, c in dims]
    sql_aggs = [a for a in q.aggregations if a.kind != "PERCENTILE" or dialect == "postgresql"]
    cols: list[Any] = []
    for a in sql_aggs:
        if a.kind == "COUNT":
            cols.append(
                sa.func.count(sa.distinct(value))
                if q.metric == "session_count"
                else sa.func.count(value)
            )
        elif a.kind == "PERCENTILE":
            cols.append(sa.func.percentile_cont((a.percentile or 0) / 100).within_group(value))
        else:
            cols.append(getattr(sa.func, a.kind.lower())(value))
    points: dict[tuple[Any, ...], dict[str, Any]] = {}
    if sql_aggs:
        stmt = sa.select(*dim_cols, *cols).select_from(b.froms).where(*b.where)
        if dim_cols:
            stmt = stmt.group_by(*dim_cols).order_by(*dim_cols)
        for row in conn.execute(stmt.limit(q.max_results)):
            key = tuple(row[: len(dims)])
            vals = {a.label: row[len(dims) + i] for i, a in enumerate(sql_aggs)}
            points[key] = {k: float(v) for k, v in vals.items() if v is not None}
    local = [a for a in q.aggregations if a not in sql_aggs]
    if local:  # percentiles on SQLite: each group's values, sorted
        stmt = (
            sa.select(*dim_cols, value)
            .select_from(b.froms)
            .where(*b.where)
            .order_by(*dim_cols, value)
        )
        groups: dict[tuple[Any, ...], list[float]] = {}
        for row in conn.execute(stmt):
            groups.setdefault(tuple(row[: len(dims)]), []).append(float(row[len(dims)]))
        for key, vs in groups.items():
            if key in points or not sql_aggs:
                p = points.setdefault(key, {})
                for a in local:
                    p[a.label] = _percentile(vs, a.percentile or 0)
        if not sql_aggs:  # the order and the limit the SQL path would give
            ordered = sorted(points, key=lambda k: tuple((v is None, v) for v in k))
            points = {k: points[k] for k in ordered[: q.max_results]}
    out = []
    for key, vals in points.items():
        if any(v is None for v in key) or not vals:
            continue  # as MLflow: no point for an unknown dimension value or no value
        d = {name: _dimension_text(name, v) for (name, _), v in zip(dims, key, strict=True)}
        out.append({"metric_name": q.metric, "dimensions": d, "values": vals})
    return out


def _dimension_text(name: str, value: Any) -> str:
    if name == TIME_BUCKET:
        return datetime.fromtimestamp(float(value) / 1000, tz=timezone.utc).isoformat()
    return str(value)
