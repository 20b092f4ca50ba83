"""The tracing half of the tracking store: the interface (:class:`TraceStore`, which
:class:`~.store.TrackingStore` extends) and its SQL implementation (:class:`SqlTraceStore`,
a mixin of :class:`~.sqlstore.SqlTrackingStore` over its connections).

Row layout and span dicts are :mod:`.traces`'; the filter grammar :mod:`.trace_search`'.
A trace's full data goes to the artifact store (never in a row): the write of a trace
and its data file happen in one call, the file first, the rows after in one
transaction, so a refused write leaves no row behind.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import assessments as _assessments
from . import trace_files, trace_search
from . import traces as t
from .clock import now_ms
from .errors import TrackingError, invalid, not_found
from .gcpause import gc_paused
from .paging import decode_page_token, encode_page_token
from .traces import TraceInfo
from .validation import experiment_int_ids

if TYPE_CHECKING:
    from .artifacts import ArtifactRepository
    from .entities import Experiment
    from .trace_metrics import MetricsQuery

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Attempts of a trace write that lost a race for a new trace id (PostgreSQL).
_WRITE_ATTEMPTS = 3


#: PostgreSQL's deadlock_detected and serialization_failure.
_RACE_SQLSTATES = ("40P01", "40001")


class _Raced(Exception):
    """Another request created a trace this one was about to create."""


#: A trace as our client sends it: its info and its spans (MLflow span dicts).
TraceRecord = tuple[TraceInfo, Sequence[dict[str, Any]]]


class TraceStore:
    """Traces, their spans and data. Every method raises TrackingError with MLflow's
    codes; stores without tracing raise NotImplementedError (501)."""

    def start_trace(self, info: TraceInfo) -> TraceInfo:
        """MLflow's v3 ``StartTraceV3`` (sent when a trace ends): create or complete the
        trace; the answer carries tag ``mlflow.artifactLocation``, where its data goes."""
        raise NotImplementedError("This tracking store does not record traces.")

    def start_trace_v2(
        self,
        experiment_id: str,
        timestamp_ms: int,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> TraceInfo:
        raise NotImplementedError("This tracking store does not record traces.")

    def end_trace_v2(
        self,
        trace_id: str,
        timestamp_ms: int,
        state: str,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> TraceInfo:
        raise NotImplementedError("This tracking store does not record traces.")

    def get_trace_info(self, trace_id: str) -> TraceInfo:
        raise NotImplementedError("This tracking store does not record traces.")

    def get_trace_spans(self, trace_id: str) -> list[dict[str, Any]]:
        """The trace's spans (MLflow span dicts) from its data in the artifact store."""
        raise NotImplementedError("This tracking store does not record traces.")

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible_owners: Sequence[str] | None = None,
        viewer: str | None = None,
    ) -> tuple[list[TraceInfo], str | None]:
        """``visible_owners`` (the shared service's access filter): only traces whose tag
        ``mlops.owner`` is one of them, without private ones unless ``viewer`` owns them."""
        raise NotImplementedError("This tracking store does not record traces.")

    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_millis: int | None = None,
        max_traces: int | None = None,
        trace_ids: Sequence[str] | None = None,
    ) -> int:
        raise NotImplementedError("This tracking store does not record traces.")

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        raise NotImplementedError("This tracking store does not record traces.")

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        raise NotImplementedError("This tracking store does not record traces.")

    def link_traces_to_run(self, trace_ids: Sequence[str], run_id: str) -> None:
        raise NotImplementedError("This tracking store does not record traces.")

    def log_spans(
        self,
        experiment_id: str,
        by_trace: Mapping[str, list[dict[str, Any]]],
        new_tags: Mapping[str, str] | None = None,
    ) -> int:
        """OTLP ingest: spans grouped by OTel trace id (hex). Indexes them, creates traces
        not seen yet (completed by their root span), and writes their data to the artifact
        store unless MLflow's client owns it (it uploads ``traces.json`` itself).
        ``new_tags`` go on the traces it creates (the shared service's owner)."""
        raise NotImplementedError("This tracking store does not record traces.")

    def log_traces(self, records: Sequence[TraceRecord]) -> None:
        """Whole traces (our client's batches): info, span index and data file each."""
        raise NotImplementedError("This tracking store does not record traces.")

    def trace_correlation(
        self,
        experiment_ids: Sequence[str],
        filter1: str,
        filter2: str,
        base_filter: str | None = None,
        visible_owners: Sequence[str] | None = None,
        viewer: str | None = None,
    ) -> dict[str, Any]:
        """MLflow's ``calculate-filter-correlation``: the counts of traces matching each
        filter, both, and all (within ``base_filter``), with their NPMI."""
        raise NotImplementedError("This tracking store does not record traces.")

    def trace_counts(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        dimension: str | None,
        visible_owners: Sequence[str] | None = None,
        viewer: str | None = None,
    ) -> list[tuple[str | None, int]]:
        """How many traces match, per value of ``dimension`` (``status`` or None)
        (``visible_owners``/``viewer``: as ``search_traces``)."""
        raise NotImplementedError("This tracking store does not record traces.")

    def trace_metrics(self, q: MetricsQuery) -> list[dict[str, Any]]:
        """MLflow's ``QueryTraceMetrics``: aggregated data points (:mod:`.trace_metrics`)."""
        raise NotImplementedError("This tracking store does not record traces.")

    # -- assessments (feedback, expectations) ------------------------------------------
    def create_assessment(self, trace_id: str, assessment: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError("This tracking store does not record traces.")

    def get_assessment(self, trace_id: str, assessment_id: str) -> dict[str, Any]:
        raise NotImplementedError("This tracking store does not record traces.")

    def update_assessment(
        self, trace_id: str, assessment_id: str, changes: dict[str, Any], mask: Sequence[str]
    ) -> dict[str, Any]:
        raise NotImplementedError("This tracking store does not record traces.")

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        raise NotImplementedError("This tracking store does not record traces.")


class SqlTraceStore(TraceStore):
    """:class:`TraceStore` over the SQL store's connections (a mixin of SqlTrackingStore)."""

    # provided by SqlTrackingStore
    _write: Any
    _read: Any
    _upsert: Any
    _insert_ignore: Any
    statistics: Any  # StatisticsKeeper: told of each write, keeps the planner's statistics

    if TYPE_CHECKING:

        def get_experiment(self, experiment_id: str) -> Experiment: ...
        def _experiment_row(self, conn: Connection, experiment_id: Any) -> Any: ...
        def artifact_repo(self, artifact_uri: str) -> ArtifactRepository: ...
        def _transaction(self) -> AbstractContextManager[Connection]: ...

    # -- locations ------------------------------------------------------------------
    def _location(self, experiment: Experiment, trace_id: str) -> str:
        return f"{experiment.artifact_location.rstrip('/')}/traces/{trace_id}/artifacts"

    def _checked_experiment(self, experiment_id: str) -> Experiment:
        """The experiment traces are written to (active, else refused); its row only,
        without its tags (once per ingest batch: get_experiment cost ~1 µs per trace)."""
        from .entities import Experiment

        with self._read() as conn:
            row = self._experiment_row(conn, str(experiment_id))
        exp = Experiment(
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location or "",
            lifecycle_stage=row.lifecycle_stage,
        )
        if exp.lifecycle_stage != "active":
            raise invalid(
                f"The experiment {experiment_id} must be in the 'active' state. "
                f"Current state is {exp.lifecycle_stage}."
            )
        return exp

    # -- writes ---------------------------------------------------------------------
    def start_trace(self, info: TraceInfo) -> TraceInfo:
        exp = self._checked_experiment(info.experiment_id)
        if not info.trace_id:
            info.trace_id = t.new_trace_id()
        info.tags.setdefault(t.TAG_ARTIFACT_LOCATION, self._location(exp, info.trace_id))

        def write(conn: Connection) -> TraceInfo:
            t.upsert_info(conn, info, self._upsert, self._insert_ignore)
            return t.load_infos(conn, [t.get_row(conn, info.trace_id)])[0]

        return self._write_retrying(write, [info.trace_id])

    def start_trace_v2(
        self,
        experiment_id: str,
        timestamp_ms: int,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> TraceInfo:
        info = TraceInfo(t.new_trace_id(), str(experiment_id), int(timestamp_ms))
        info.trace_metadata.update(metadata)
        info.tags.update(tags)
        return self.start_trace(info)

    def end_trace_v2(
        self,
        trace_id: str,
        timestamp_ms: int,
        state: str,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> TraceInfo:
        with self._write() as conn:
            row = t.get_row(conn, trace_id)
            conn.execute(
                t.traces.update()
                .where(t.traces.c.trace_id == trace_id)
                .values(
                    state=state,
                    execution_duration=max(0, int(timestamp_ms) - row.request_time),
                )
            )
            if any(t.implied_key("trace_tags", k) for k in tags) or any(
                t.implied_key("trace_metadata", k) for k in metadata
            ):
                t.materialize_implied(conn, [trace_id], self._insert_ignore)
            t.set_keyed(conn, t.trace_tags, trace_id, dict(tags), self._upsert)
            t.set_keyed(conn, t.trace_metadata, trace_id, dict(metadata), self._upsert)
            return t.load_infos(conn, [t.get_row(conn, trace_id)])[0]

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        with self._write() as conn:
            t.get_row(conn, trace_id)
            if t.implied_key("trace_tags", key):
                t.materialize_implied(conn, [trace_id], self._insert_ignore)
            t.set_keyed(conn, t.trace_tags, trace_id, {key: value}, self._upsert)

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        with self._write() as conn:
            t.get_row(conn, trace_id)
            if t.implied_key("trace_tags", key):
                t.materialize_implied(conn, [trace_id], self._insert_ignore)
            n = conn.execute(
                t.trace_tags.delete().where(
                    t.trace_tags.c.trace_id == trace_id, t.trace_tags.c.key == key
                )
            ).rowcount
            if not n:
                raise not_found(f"No trace tag with key '{key}' for trace with ID '{trace_id}'")

    def link_traces_to_run(self, trace_ids: Sequence[str], run_id: str) -> None:
        if len(trace_ids) > t.MAX_LINK_TRACES:
            raise invalid(
                f"Cannot link more than {t.MAX_LINK_TRACES} traces to a run in a single "
                f"request. Provided {len(trace_ids)} traces."
            )
        from .schema import runs

        with self._write() as conn:
            if (
                conn.execute(sa.select(runs.c.run_uuid).where(runs.c.run_uuid == run_id)).first()
                is None
            ):
                raise not_found(f"Run with id={run_id} not found")
            # as MLflow's store: a trace still being exported may be linked first
            t.link_runs(conn, trace_ids, run_id, self._insert_ignore)

    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_millis: int | None = None,
        max_traces: int | None = None,
        trace_ids: Sequence[str] | None = None,
    ) -> int:
        if trace_ids and max_timestamp_millis is not None:
            raise invalid("Only one of `max_timestamp_millis` and `request_ids` can be specified.")
        if not trace_ids and max_timestamp_millis is None:
            raise invalid("Either `max_timestamp_millis` or `request_ids` must be specified.")
        exps = experiment_int_ids([experiment_id])  # beyond int64: matches nothing
        tc = t.traces.c
        with self._write() as conn:
            q = sa.select(tc.trace_id).where(tc.experiment_id.in_(exps))
            if trace_ids:
                q = q.where(tc.trace_id.in_(list(trace_ids)))
            else:
                q = q.where(tc.request_time <= int(max_timestamp_millis or 0))
            q = q.order_by(tc.request_time.asc(), tc.trace_id)
            if max_traces:
                q = q.limit(int(max_traces))
            ids = list(conn.execute(q).scalars())
            files = set(
                conn.execute(
                    sa.select(tc.data_file).where(tc.trace_id.in_(ids), tc.data_file.isnot(None))
                ).scalars()
            )
            tags = t.trace_tags
            locations = list(
                conn.execute(
                    sa.select(tags.c.value).where(
                        tags.c.trace_id.in_(ids), tags.c.key == t.TAG_ARTIFACT_LOCATION
                    )
                ).scalars()
            )
            a = _assessments.assessments
            if ids:
                conn.execute(a.delete().where(a.c.trace_id.in_(ids)))
            n = t.delete(conn, ids)
        # the rows are gone (committed); now their data, each trace's own directory
        for loc in locations:
            if loc and "/traces/" in loc:
                try:
                    self.artifact_repo(loc).delete("")
                except Exception as e:  # noqa: BLE001 - a data file left behind is not an error of the delete
                    log.warning("jupyter-mlops: could not delete trace data at %s: %s", loc, e)
        self._drop_unreferenced(files)
        return n

    def log_spans(
        self,
        experiment_id: str,
        by_trace: Mapping[str, list[dict[str, Any]]],
        new_tags: Mapping[str, str] | None = None,
    ) -> int:
        with gc_paused():
            return self._log_spans(experiment_id, by_trace, new_tags or {})

    def _log_spans(
        self,
        experiment_id: str,
        by_trace: Mapping[str, list[dict[str, Any]]],
        new_tags: Mapping[str, str],
    ) -> int:
        """OTLP ingest in bulk: a trace MLflow's client owns (it uploads its data) gets
        rows only; any other trace's spans go to one batch data file per request (a
        trace continued from an earlier request is rewritten there whole, its spans
        merged), written durable before the rows, which commit in one transaction."""
        exp = self._checked_experiment(experiment_id)
        prepared: dict[str, tuple[list[t.SpanRow], list[dict[str, Any]], bool]] = {}
        for otel_hex, span_dicts in by_trace.items():
            rows = [t.span_row(s, f"span '{s.get('name')}'") for s in span_dicts]
            # MLflow's client uploads the trace's data itself (traces.json at its end):
            # the spans it sends carry the attribute its tracer sets on every span.
            client_owned = all(
                "mlflow.spanType" in r.attributes or "mlflow.spanFunctionName" in r.attributes
                for r in rows
            )
            prepared[t.trace_id_from_otel(otel_hex)] = (rows, span_dicts, client_owned)
        for _attempt in range(_WRITE_ATTEMPTS):
            try:
                return self._store_spans(exp, prepared, new_tags)
            except _Raced:
                # another request stored one of these traces between this one's read
                # and its write: again, now continuing it (its data file is an orphan,
                # swept later)
                continue
        raise TrackingError(
            "The trace was written concurrently by another request; retry.",
            "RESOURCE_CONFLICT",
        )

    def _store_spans(
        self,
        exp: Experiment,
        prepared: Mapping[str, tuple[list[t.SpanRow], list[dict[str, Any]], bool]],
        new_tags: Mapping[str, str],
    ) -> int:
        with self._read() as conn:
            columns = ("trace_id", "trace_key", "state", "data_file", "data_offset", "data_length")
            have = {r.trace_id: r for r in t.rows_of(conn, columns, list(prepared))}
        # the data first, durable before any row names it
        packed: list[tuple[str, Sequence[dict[str, Any]]]] = []
        replaced: set[str] = set()
        so_far = self._continued_spans(
            [row for i in prepared if (row := have.get(i)) is not None and row.data_file]
        )
        for trace_id, (_rows, span_dicts, client_owned) in prepared.items():
            row = have.get(trace_id)
            if client_owned and row is None:
                continue
            if row is None or row.data_file:
                if row is not None:  # continued: its spans so far and these, merged
                    span_dicts = t.merge_spans([so_far[trace_id], span_dicts])
                    replaced.add(row.data_file)
                packed.append((trace_id, span_dicts))
            elif not client_owned:  # data under its artifact location (MLflow's layout)
                repo = self.artifact_repo(self._location(exp, trace_id))
                name = f"{t.OTLP_DIR}/{uuid.uuid4().hex}.json"
                repo.put_durable(name, json.dumps({"spans": span_dicts}).encode())
        ranges: dict[str, t.DataRange] = {}
        if packed:
            data, offsets = t.pack_batch(packed)
            name = trace_files.batch_file_name()
            batch_dir = self._batch_dir(exp)
            self.artifact_repo(batch_dir).put_durable(name, data)
            for trace_id, (off, length) in offsets.items():
                ranges[trace_id] = (f"{batch_dir}/{name}", off, length)

        def write(conn: Connection) -> int:
            new_ids = [i for i in prepared if i not in have]
            if t.rows_of(conn, ("trace_id",), new_ids):
                raise _Raced()
            n = 0
            fresh = []
            # traces continued from earlier requests (an exporter's batches split a trace
            # wherever they end), written in bulk as new ones are: a statement per table,
            # not per trace
            completed: list[t.TraceInfo] = []
            continued: list[tuple[int, Sequence[t.SpanRow]]] = []
            moved: list[tuple[str, t.DataRange]] = []
            for trace_id, (rows, _dicts, client_owned) in prepared.items():
                n += len(rows)
                row = have.get(trace_id)
                if row is None:
                    info = t.info_from_spans(trace_id, exp.experiment_id, rows)
                    if client_owned:
                        info.tags[t.TAG_ARTIFACT_LOCATION] = self._location(exp, trace_id)
                    else:
                        info.tags[t.TAG_SPANS_LOCATION] = t.SPANS_IN_TRACKING_STORE
                    info.tags.update(new_tags)
                    fresh.append((info, rows, ranges.get(trace_id)))
                    continue
                if row.state == "IN_PROGRESS" and any(r.parent_span_id is None for r in rows):
                    completed.append(t.info_from_spans(trace_id, exp.experiment_id, rows))
                continued.append((row.trace_key, rows))
                if trace_id in ranges:
                    moved.append((trace_id, ranges[trace_id]))
            t.update_infos(conn, completed, self._upsert, self._insert_ignore)
            t.index_more_spans(conn, continued)
            t.set_data_ranges(conn, moved)
            t.insert_new(conn, fresh, self._insert_ignore)
            return n

        n = self._write_retrying(write, list(prepared))
        self._drop_unreferenced(replaced)
        return n

    def _continued_spans(self, rows: Sequence[Any]) -> dict[str, list[dict[str, Any]]]:
        """The spans stored so far of traces continued over OTLP, by trace id (each batch
        file opened once); a file compacted meanwhile (:mod:`.trace_files`) is 503: the
        exporter sends again."""
        try:
            return self._read_ranges(rows)
        except TrackingError as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        raise TrackingError(
            "The data of a trace being continued moved meanwhile; retry.",
            "TEMPORARILY_UNAVAILABLE",
            503,
        )

    def log_traces(self, records: Sequence[TraceRecord]) -> None:
        with gc_paused():
            self._log_traces(records)

    def _log_traces(self, records: Sequence[TraceRecord]) -> None:
        checked = []
        exps: dict[str, Experiment] = {}
        for info, span_dicts in records:
            if info.experiment_id not in exps:
                exps[info.experiment_id] = self._checked_experiment(info.experiment_id)
            rows = [t.span_row(s, i) for i, s in enumerate(span_dicts)]
            info.tags.setdefault(t.TAG_SPANS_LOCATION, t.SPANS_IN_TRACKING_STORE)
            checked.append((info, rows, span_dicts))
        # a trace sent twice in one batch: its last copy counts
        last = {info.trace_id: (info, rows, d) for info, rows, d in checked}
        # the data first, one file per experiment in the batch, durable before any row
        # names it (a crash in between leaves a file no row names, never a row without
        # its data); then every row in one transaction
        ranges: dict[str, tuple[str, int, int]] = {}
        by_exp: dict[str, list[tuple[str, Sequence[dict[str, Any]]]]] = {}
        for trace_id, (info, _rows, span_dicts) in last.items():
            by_exp.setdefault(info.experiment_id, []).append((trace_id, span_dicts))
        for exp_id, items in by_exp.items():
            data, offsets = t.pack_batch(items)
            name = trace_files.batch_file_name()
            batch_dir = self._batch_dir(exps[exp_id])
            self.artifact_repo(batch_dir).put_durable(name, data)
            uri = f"{batch_dir}/{name}"
            for trace_id, (off, length) in offsets.items():
                ranges[trace_id] = (uri, off, length)
        replaced: set[str] = set()

        def write(conn: Connection) -> None:
            replaced.clear()  # a retried attempt starts over
            have = {
                r.trace_id: r
                for r in t.rows_of(conn, ("trace_id", "trace_key", "data_file"), list(last))
            }
            fresh = []
            again: list[TraceInfo] = []  # sent again: info updated, new spans added
            for trace_id, (info, rows, _d) in last.items():
                if trace_id in have:
                    again.append(info)
                    if have[trace_id].data_file:
                        replaced.add(have[trace_id].data_file)
                else:
                    fresh.append((info, rows, ranges[trace_id]))
            t.update_infos(conn, again, self._upsert, self._insert_ignore)
            t.index_more_spans(
                conn, [(have[i.trace_id].trace_key, last[i.trace_id][1]) for i in again]
            )
            t.set_data_ranges(conn, [(i.trace_id, ranges[i.trace_id]) for i in again])
            t.insert_new(conn, fresh, self._insert_ignore)

        self._write_retrying(write, list(last))
        self._drop_unreferenced(replaced)

    def _batch_dir(self, experiment: Experiment) -> str:
        return f"{experiment.artifact_location.rstrip('/')}/{t.BATCH_DIR}"

    def _drop_unreferenced(self, files: set[str]) -> None:
        """After traces left ``files``: delete those none of whose traces is left, compact
        those mostly dead (:mod:`.trace_files`)."""
        trace_files.tidy(self, files)

    def sweep_trace_files(self, grace_s: float = trace_files.ORPHAN_GRACE_S) -> list[str]:
        """Delete batch files no trace names, older than ``grace_s`` (a crash between a
        file's write and its rows' commit leaves one); returns their URIs."""
        return trace_files.sweep_orphans(self, grace_s)

    def _write_retrying(self, work: Callable[[Connection], _T], trace_ids: Sequence[str]) -> _T:
        """``work(conn)`` in a write transaction that creates or updates ``trace_ids``.
        SQLite's writes are serialized. On PostgreSQL two requests writing the same new
        trace would both insert it (one failing on the unique key): the transaction first
        takes an advisory lock per trace id (in one order, so no deadlock), and is run
        again should a writer that takes no such lock still win a race."""
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with self._write() as conn:
                    if conn.dialect.name == "postgresql" and trace_ids:
                        conn.exec_driver_sql(
                            "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT "
                            "hashtextextended(id, 0) AS k FROM unnest(%s::text[]) AS id "
                            "ORDER BY 1) AS keys",
                            (sorted(set(trace_ids)),),
                        )
                    result = work(conn)
                self.statistics.wrote()
                return result
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as e:
                # a deadlock between two batches naming the same traces is a race too
                raced = isinstance(e, sa.exc.IntegrityError) or (
                    getattr(e.orig, "sqlstate", None) in _RACE_SQLSTATES
                )
                if not raced:
                    raise
                if attempt + 1 == _WRITE_ATTEMPTS:
                    raise TrackingError(
                        "The trace was written concurrently by another request; retry.",
                        "RESOURCE_CONFLICT",
                    ) from e
                log.debug("jupyter-mlops: concurrent trace write, retrying: %s", e)
        raise AssertionError("unreachable")

    # -- reads ----------------------------------------------------------------------
    def get_trace_info(self, trace_id: str) -> TraceInfo:
        from .assessments import load_for_traces

        with self._read() as conn:
            info = t.load_infos(conn, [t.get_row(conn, trace_id)])[0]
            info.assessments = load_for_traces(conn, [trace_id]).get(trace_id, [])
            return info

    def get_trace_spans(self, trace_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            row = t.get_row(conn, trace_id)
        if row.data_file:  # a byte range of a batch file
            try:
                return self._read_range(row)
            except TrackingError as e:
                if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
            # compacted meanwhile (trace_files.py): the row names the new file
            with self._read() as conn:
                row = t.get_row(conn, trace_id)
            if row.data_file:
                return self._read_range(row)
        info = self.get_trace_info(trace_id)
        loc = info.tags.get(t.TAG_ARTIFACT_LOCATION)
        if not loc:
            return []
        repo = self.artifact_repo(loc)
        if repo.exists(t.TRACE_DATA_FILE):
            with repo.open(t.TRACE_DATA_FILE) as f:
                data = json.loads(f.read())
            return list(data.get("spans") or [])
        if not repo.exists(t.OTLP_DIR):
            return []
        parts = []
        for fi in repo.list(t.OTLP_DIR):
            if not fi.is_dir:
                with repo.open(fi.path) as f:
                    parts.append(f.read())
        return t.merge_span_files(parts)

    def _read_range(self, row: Any) -> list[dict[str, Any]]:
        return self._read_ranges([row])[row.trace_id]

    def _read_ranges(self, rows: Sequence[Any]) -> dict[str, list[dict[str, Any]]]:
        """The spans of traces in batch files, by trace id: each file opened once, read
        in offset order; a file that is gone is RESOURCE_DOES_NOT_EXIST."""
        by_file: dict[str, list[Any]] = {}
        for row in rows:
            by_file.setdefault(row.data_file, []).append(row)
        out: dict[str, list[dict[str, Any]]] = {}
        for uri, in_file in by_file.items():
            head, _, name = uri.rpartition("/")
            with self.artifact_repo(head).open(name) as f:
                for row in sorted(in_file, key=lambda r: int(r.data_offset)):
                    f.seek(int(row.data_offset))
                    data = json.loads(f.read(int(row.data_length)))
                    out[row.trace_id] = list(data.get("spans") or [])
        return out

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible_owners: Sequence[str] | None = None,
        viewer: str | None = None,
    ) -> tuple[list[TraceInfo], str | None]:
        from .assessments import load_for_traces

        comparisons = trace_search.parse_trace_filter(filter_string)
        order = trace_search.parse_trace_order_by(order_by)
        offset = decode_page_token(page_token)
        ids = experiment_int_ids(experiment_ids)
        tc = t.traces.c
        with self._read() as conn:

            def page(driver: trace_search.Driver | None, *bound: Any) -> list[Any]:
                q = (
                    sa.select(t.traces)
                    .where(
                        tc.experiment_id.in_(ids),
                        *trace_search.filter_clauses(comparisons, driver),
                        *t.owner_clauses(visible_owners, viewer),
                        *bound,
                    )
                    .order_by(*trace_search.order_clauses(order))
                    .offset(offset)
                    .limit(max_results + 1)
                )
                return list(conn.execute(q))

            driver = trace_search.pick_driver(conn, comparisons)
            window = None
            if driver is None:
                window = trace_search.walk_window(
                    conn, comparisons, order, ids, offset + max_results + 1
                )
            rows = page(driver) if window is None else page(None, window)
            if window is not None and len(rows) <= max_results:
                # the newest traces hold too few of the page: search the others from
                # the filter with fewest index rows, if it has not too many
                cap = trace_search.FALLBACK_MAX_ROWS
                rows = page(trace_search.pick_driver(conn, comparisons, cap))
            more = len(rows) > max_results
            infos = t.load_infos(conn, rows[:max_results])
            found = load_for_traces(conn, [i.trace_id for i in infos])
            for i in infos:
                i.assessments = found.get(i.trace_id, [])
        return infos, encode_page_token(offset + max_results) if more else None

    def trace_correlation(
        self,
        experiment_ids: Sequence[str],
        filter1: str,
        filter2: str,
        base_filter: str | None = None,
        visible_owners: Sequence[str] | None = None,
        viewer: str | None = None,
    ) -> dict[str, Any]:
        def count(*filters: str | None) -> int:
            joined = " AND ".join(f for f in filters if f and f.strip()) or None
            return self.trace_counts(experiment_ids, joined, None, visible_owners, viewer)[0][1]

        total = count(base_filter)
        n1, n2 = count(base_filter, filter1), count(base_filter, filter2)
        joint = count(base_filter, filter1, filter2)
        raw, smooth = t.npmi(joint, n1, n2, total)
        out: dict[str, Any] = {
            "filter1_count": n1,
            "filter2_count": n2,
            "joint_count": joint,
            "total_count": total,
        }
        if not math.isnan(raw):  # NaN is left out, as MLflow's server does
            out["npmi"] = raw
        if not math.isnan(smooth):
            out["npmi_smoothed"] = smooth
        return out

    def trace_counts(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        dimension: str | None,
        visible_owners: Sequence[str] | None = None,
        viewer: str | None = None,
    ) -> list[tuple[str | None, int]]:
        comparisons = trace_search.parse_trace_filter(filter_string)
        tc = t.traces.c
        ids = experiment_int_ids(experiment_ids)
        with self._read() as conn:
            # a count walks every trace of the experiments: a rare filter reads its index
            driver = trace_search.pick_driver(conn, comparisons)
            where = [
                tc.experiment_id.in_(ids),
                *trace_search.filter_clauses(comparisons, driver),
                *t.owner_clauses(visible_owners, viewer),
            ]
            if dimension is None:
                n = conn.execute(sa.select(sa.func.count()).select_from(t.traces).where(*where))
                return [(None, n.scalar() or 0)]
            q = (
                sa.select(tc.state, sa.func.count())
                .where(*where)
                .group_by(tc.state)
                .order_by(tc.state)
            )
            return [(s, c) for s, c in conn.execute(q)]

    def trace_metrics(self, q: MetricsQuery) -> list[dict[str, Any]]:
        from . import trace_metrics

        with self._read() as conn:
            return trace_metrics.query(conn, conn.dialect.name, q)

    # -- assessments ------------------------------------------------------------------
    def create_assessment(self, trace_id: str, assessment: dict[str, Any]) -> dict[str, Any]:
        from . import assessments as a

        body = a.check(assessment)
        with self._write() as conn:
            return a.create(conn, trace_id, body, now_ms())

    def get_assessment(self, trace_id: str, assessment_id: str) -> dict[str, Any]:
        from . import assessments as a

        with self._read() as conn:
            return a.get(conn, trace_id, assessment_id)

    def update_assessment(
        self, trace_id: str, assessment_id: str, changes: dict[str, Any], mask: Sequence[str]
    ) -> dict[str, Any]:
        from . import assessments as a

        with self._write() as conn:
            return a.update(conn, trace_id, assessment_id, changes, mask, now_ms())

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        from . import assessments as a

        with self._write() as conn:
            a.delete(conn, trace_id, assessment_id)
