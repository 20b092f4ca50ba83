"""The SQL tracking store (SQLite and PostgreSQL), MLflow's semantics.

Writes run in one short transaction each (``BEGIN IMMEDIATE`` on SQLite, so
concurrent writers queue on the busy timeout instead of failing). Experiments, runs,
params and tags are here; metric points (chunks, the latest value and the roll-up
pyramid of each series, maintained in the same transaction, and down-sampled reads)
are :mod:`.series`'s, called with this store's connection.
"""

from __future__ import annotations

import functools
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import datasets as dataset_tables
from . import model_metrics, paging, planner_stats, search, search_walk, series
from .clock import now_ms
from .entities import (
    ACTIVE,
    ACTIVE_ONLY,
    ALL,
    DELETED,
    DELETED_ONLY,
    KILLED,
    RUN_STATUSES,
    RUNNING,
    TAG_RUN_NAME,
    TAG_USER,
    VIEW_TYPES,
    DatasetInput,
    Experiment,
    Metric,
    MetricValue,
    Run,
    RunData,
    RunInfo,
    SeriesPoint,
)
from .errors import INVALID_STATE, TrackingError, already_exists, invalid, not_found
from .evaluation_store import SqlEvaluationStore
from .migrate import (
    make_engine,
    normalize_uri,
    read_transaction,
    sqlite_path,
    upgrade,
    write_transaction,
)
from .names import generate_run_name
from .schema import (
    experiment_tags,
    experiments,
    latest_metrics,
    runs,
    store_info,
)
from .schema import params as run_params
from .schema import tags as run_tags
from .stats_keeper import StatisticsKeeper
from .store import (
    DataKeys,
    Series,
    TrackingStore,
    check_data_keys,
    series_columns,
)
from .trace_store import SqlTraceStore
from .validation import (
    INT64,
    MAX_EXPERIMENTS_LISTED_PER_PAGE,
    MAX_PARAM_VAL_LENGTH,
    MAX_TAG_VAL_LENGTH,
    truncate_value,
    validate_experiment_name,
    validate_experiment_tag,
    validate_key,
    validate_max_results,
    validate_run_id,
)

_IN_CHUNK = 5000  # ids per IN (...) list: well under SQLite's bound-variable limit


def _nan_none(v: float | None) -> float:
    return math.nan if v is None else v


def default_artifact_root(uri: str) -> str:
    """``<dir of the db file>/artifacts`` for SQLite, else ``<jupyter data dir>/mlops/artifacts``."""
    path = sqlite_path(uri)
    if path is not None:
        return os.path.join(os.path.dirname(path), "artifacts")
    from jupyter_core.paths import jupyter_data_dir

    return os.path.join(jupyter_data_dir(), "mlops", "artifacts")


class SqlTrackingStore(SqlTraceStore, SqlEvaluationStore, TrackingStore):
    """A :class:`TrackingStore` over SQLAlchemy Core; migrates the schema on open."""

    def __init__(self, uri: str, artifact_root: str | None = None) -> None:
        self.uri = uri
        self.engine = make_engine(normalize_uri(uri))
        self.dialect = self.engine.dialect.name
        self._ph = "?" if self.dialect == "sqlite" else "%s"
        #: The search tables' planner statistics, refreshed off the write path.
        self.statistics = self._statistics_keeper()
        try:
            upgrade(self.engine)
            self.artifact_root = self._init_artifact_root(artifact_root)
        except BaseException:
            self.engine.dispose()
            raise
        self.statistics.request()  # missing or outgrown: bulk loads, other stores' runs

    def close(self) -> None:
        self.statistics.close()
        self.engine.dispose()

    def _statistics_keeper(self) -> StatisticsKeeper:
        engine = self.engine
        if self.dialect != "sqlite":
            return StatisticsKeeper(
                lambda: planner_stats.refresh(engine), self.uri, settle_s=planner_stats.SETTLE_S
            )
        # in memory: one connection, which a second thread must not share
        in_file = sqlite_path(self.uri) is not None
        return StatisticsKeeper(
            lambda: planner_stats.refresh_sqlite(engine), self.uri, background=in_file
        )

    # -- connections ---------------------------------------------------------
    def _write(self) -> AbstractContextManager[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        return write_transaction(self.engine)

    def _read(self) -> AbstractContextManager[Connection]:
        """A read transaction: one consistent snapshot for multi-query reads."""
        return read_transaction(self.engine)

    def _init_artifact_root(self, artifact_root: str | None) -> str:
        """The recorded artifact root; a given one replaces it (and is recorded)."""
        sel = sa.select(store_info.c.value).where(store_info.c.key == "artifact_root")
        with self._write() as conn:
            current = conn.execute(sel).scalar()
            if current is None:
                # first opener records it; concurrent first openers keep the winner's
                self._insert_ignore(
                    conn,
                    store_info,
                    ["key"],
                    [
                        {
                            "key": "artifact_root",
                            "value": artifact_root or default_artifact_root(self.uri),
                        }
                    ],
                )
                current = conn.execute(sel).scalar_one()
            if artifact_root is not None and artifact_root != current:
                conn.execute(
                    store_info.update()
                    .where(store_info.c.key == "artifact_root")
                    .values(value=artifact_root)
                )
                current = artifact_root
            return current

    # -- experiments ---------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        validate_experiment_name(name)
        checked = [validate_experiment_tag(k, v) for k, v in (tags or {}).items()]
        now = now_ms()
        try:
            with self._write() as conn:
                if conn.execute(
                    sa.select(experiments.c.experiment_id).where(experiments.c.name == name)
                ).first():
                    raise already_exists(f"Experiment(name={name}) already exists.")
                exp_id = conn.execute(
                    experiments.insert()
                    .values(
                        name=name,
                        artifact_location=artifact_location or None,
                        lifecycle_stage=ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                    .returning(experiments.c.experiment_id)
                ).scalar_one()
                if not artifact_location:
                    conn.execute(
                        experiments.update()
                        .where(experiments.c.experiment_id == exp_id)
                        .values(artifact_location=f"mlflow-artifacts:/{exp_id}")
                    )
                if checked:
                    conn.execute(
                        experiment_tags.insert(),
                        [{"experiment_id": exp_id, "key": k, "value": v} for k, v in checked],
                    )
        except sa.exc.IntegrityError as e:  # a concurrent creator won the race
            raise already_exists(
                f"Experiment(name={name}) already exists. Error: {e.orig}"
            ) from None
        return str(exp_id)

    @staticmethod
    def _exp_int(experiment_id: Any) -> int:
        try:
            eid = int(str(experiment_id))
        except ValueError:
            eid = None
        if eid is None or eid not in INT64:  # past the column: no such experiment
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return eid

    def _load_experiments(self, conn: Connection, rows: Sequence[Any]) -> list[Experiment]:
        ids = [r.experiment_id for r in rows]
        tag_map: dict[int, dict[str, str]] = {i: {} for i in ids}
        for chunk in _chunks(ids):
            for t in conn.execute(
                sa.select(experiment_tags).where(experiment_tags.c.experiment_id.in_(chunk))
            ):
                tag_map[t.experiment_id][t.key] = t.value
        return [
            Experiment(
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location or "",
                lifecycle_stage=r.lifecycle_stage,
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
                tags=tag_map[r.experiment_id],
            )
            for r in rows
        ]

    def _experiment_row(self, conn: Connection, experiment_id: Any) -> Any:
        eid = self._exp_int(experiment_id)
        row = conn.execute(sa.select(experiments).where(experiments.c.experiment_id == eid)).first()
        if row is None:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return row

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._read() as conn:
            return self._load_experiments(conn, [self._experiment_row(conn, experiment_id)])[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._read() as conn:
            rows = sorted(
                conn.execute(sa.select(experiments).where(experiments.c.name == name)).all(),
                key=lambda r: r.lifecycle_stage != ACTIVE,
            )
            if not rows:
                return None
            return self._load_experiments(conn, rows[:1])[0]

    def search_experiments(
        self,
        view_type: str = ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Experiment], str | None]:
        validate_max_results(max_results, MAX_EXPERIMENTS_LISTED_PER_PAGE)
        where = [*_lifecycle_clause(experiments.c.lifecycle_stage, view_type)]
        where += search.experiment_filter_clauses(search.parse_experiment_filter(filter_string))
        terms = search.experiment_order_by(search.parse_order_by(order_by))
        offset = search.decode_page_token(page_token)
        q = (
            sa.select(experiments)
            .where(*where)
            .order_by(*terms)
            .offset(offset)
            .limit(max_results + 1)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
            token = (
                search.encode_page_token(offset + max_results) if len(rows) > max_results else None
            )
            return self._load_experiments(conn, rows[:max_results]), token

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validate_experiment_name(new_name)
        try:
            with self._write() as conn:
                row = self._experiment_row(conn, experiment_id)
                if row.lifecycle_stage != ACTIVE:
                    raise TrackingError("Cannot rename a non-active experiment.", INVALID_STATE)
                if row.name == new_name:
                    return
                if conn.execute(
                    sa.select(experiments.c.experiment_id).where(experiments.c.name == new_name)
                ).first():
                    raise already_exists(f"Experiment(name={new_name}) already exists.")
                conn.execute(
                    experiments.update()
                    .where(experiments.c.experiment_id == row.experiment_id)
                    .values(name=new_name, last_update_time=now_ms())
                )
        except sa.exc.IntegrityError:
            raise already_exists(f"Experiment(name={new_name}) already exists.") from None

    def delete_experiment(self, experiment_id: str) -> None:
        now = now_ms()
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=DELETED, last_update_time=now, deleted_time=now)
            )
            # the experiment's runs go with it
            conn.execute(
                runs.update()
                .where(runs.c.experiment_id == row.experiment_id, runs.c.lifecycle_stage == ACTIVE)
                .values(lifecycle_stage=DELETED, deleted_time=now, last_update_time=now)
            )

    def restore_experiment(self, experiment_id: str) -> None:
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.lifecycle_stage != DELETED:
                # MLflow looks the experiment up among deleted ones only
                raise not_found(f"No Experiment with id={experiment_id} exists")
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=ACTIVE, last_update_time=now_ms(), deleted_time=None)
            )
            # as MLflow: every run of the experiment comes back
            conn.execute(
                runs.update()
                .where(runs.c.experiment_id == row.experiment_id, runs.c.lifecycle_stage == DELETED)
                .values(lifecycle_stage=ACTIVE, deleted_time=None, last_update_time=now_ms())
            )

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        key, value = validate_experiment_tag(key, value)
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            _check_active_experiment(row)
            self._upsert(
                conn,
                experiment_tags,
                ["experiment_id", "key"],
                [{"experiment_id": row.experiment_id, "key": key, "value": value}],
            )
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(last_update_time=now_ms())
            )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            _check_active_experiment(row)
            res = conn.execute(
                experiment_tags.delete().where(
                    experiment_tags.c.experiment_id == row.experiment_id,
                    experiment_tags.c.key == key,
                )
            )
            if res.rowcount == 0:
                raise not_found(f"No tag with name: {key} in experiment with id {experiment_id}")
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(last_update_time=now_ms())
            )

    # -- runs ----------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str = "",
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        tag_items = self._checked_tags(list((tags or {}).items()))
        tag_map = dict(tag_items)
        tag_name = tag_map.get(TAG_RUN_NAME)
        if run_name and tag_name and run_name != tag_name:
            raise invalid(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', mlflow.runName='{tag_name}')."
            )
        name = run_name or tag_name or generate_run_name()
        tag_map[TAG_RUN_NAME] = name
        user = user_id or tag_map.get(TAG_USER, "") or ""
        rid = validate_run_id(run_id) if run_id else uuid.uuid4().hex
        start = now_ms() if start_time is None else int(start_time)
        try:
            with self._write() as conn:
                exp = self._experiment_row(conn, experiment_id)
                _check_active_experiment(exp)
                if (
                    run_id
                    and conn.execute(
                        sa.select(runs.c.run_uuid).where(runs.c.run_uuid == rid)
                    ).first()
                ):
                    raise already_exists(f"Run with id={rid} already exists")
                location = (
                    exp.artifact_location or f"mlflow-artifacts:/{exp.experiment_id}"
                ).rstrip("/")
                conn.execute(
                    runs.insert().values(
                        run_uuid=rid,
                        name=name,
                        experiment_id=exp.experiment_id,
                        user_id=user,
                        status=RUNNING,
                        start_time=start,
                        end_time=None,
                        lifecycle_stage=ACTIVE,
                        artifact_uri=f"{location}/{rid}/artifacts",
                        last_update_time=now_ms(),
                    )
                )
                conn.execute(
                    run_tags.insert(),
                    [{"run_uuid": rid, "key": k, "value": v} for k, v in tag_map.items()],
                )
        except sa.exc.IntegrityError:
            raise already_exists(f"Run with id={rid} already exists") from None
        self.statistics.wrote()
        return self.get_run(rid)

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        row = conn.execute(sa.select(runs).where(runs.c.run_uuid == run_id)).first()
        if row is None:
            raise not_found(f"Run with id={run_id} not found")
        return row

    @staticmethod
    def _info(r: Any) -> RunInfo:
        return RunInfo(
            run_id=r.run_uuid,
            experiment_id=str(r.experiment_id),
            run_name=r.name or "",
            user_id=r.user_id or "",
            status=r.status,
            start_time=r.start_time,
            end_time=r.end_time,
            artifact_uri=r.artifact_uri or "",
            lifecycle_stage=r.lifecycle_stage,
            deleted_time=r.deleted_time,
        )

    def get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            row = self._run_row(conn, run_id)
            return self._load_runs(conn, [row])[0]

    def _load_runs(
        self, conn: Connection, rows: Sequence[Any], data_keys: DataKeys | None = None
    ) -> list[Run]:
        """Runs with their params, tags and latest metrics: one query (a UNION ALL of the
        three tables: one round trip, which is most of a page's time on a busy database)
        per chunk of ids, read through the driver's cursor (plain tuples, no per-row
        wrapping). With ``data_keys``, only those keys of the kinds it names (each
        ``(run_uuid, key)`` a primary-key lookup)."""
        ids = [r.run_uuid for r in rows]
        data: dict[str, RunData] = {i: RunData() for i in ids}
        ph = self._ph
        null_float = "CAST(NULL AS DOUBLE PRECISION)" if self.dialect == "postgresql" else "NULL"
        null_int = "CAST(NULL AS BIGINT)" if self.dialect == "postgresql" else "NULL"
        parts = [
            ("params", f"SELECT 0, run_uuid, key, value, {null_float}, {null_int}, {null_int} "),
            ("tags", f"SELECT 1, run_uuid, key, value, {null_float}, {null_int}, {null_int} "),
            ("metrics", "SELECT 2, run_uuid, key, NULL, value, timestamp, step "),
        ]
        tables = {"params": "params", "tags": "tags", "metrics": "latest_metrics"}
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with series.no_gc():
                for chunk in _chunks(ids, 300):
                    marks = ",".join([ph] * len(chunk))
                    selects, args = [], []
                    for kind, head in parts:
                        keys = None if data_keys is None else data_keys.get(kind)
                        if keys is not None and not keys:
                            continue  # none of this kind
                        sql = f"{head}FROM {tables[kind]} WHERE run_uuid IN ({marks})"
                        args += chunk
                        if keys is not None:
                            sql += f" AND key IN ({','.join([ph] * len(keys))})"
                            args += list(keys)
                        selects.append(sql)
                    if not selects:
                        break
                    cur.execute(" UNION ALL ".join(selects), tuple(args))
                    for kind, rid, k, sv, fv, ts, st in cur.fetchall():
                        d = data[rid]
                        if kind == 0:
                            d.params[k] = sv
                        elif kind == 1:
                            d.tags[k] = sv if sv is not None else ""
                        else:
                            d.metrics[k] = MetricValue(k, _nan_none(fv), ts, st)
        finally:
            cur.close()
        inputs = dataset_tables.load_inputs(conn, ids)
        runs_out = [Run(self._info(r), data[r.run_uuid]) for r in rows]
        for run in runs_out:
            found = inputs.get(run.info.run_id)
            if found is not None:
                run.inputs = found
        return runs_out

    # -- inputs (datasets) ---------------------------------------------------
    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] = (),
        models: Sequence[str] = (),
    ) -> None:
        checked = dataset_tables.check_dataset_inputs(datasets)
        with self._write() as conn:
            row = self._run_row(conn, run_id)
            _check_active_run(row)
            dataset_tables.log_inputs(
                conn, run_id, row.experiment_id, checked, models, now_ms(), self._insert_ignore
            )
            _touch(conn, run_id)

    def search_datasets(self, experiment_ids: Sequence[str]) -> list[dict[str, Any]]:
        ids = []
        for e in experiment_ids:
            try:
                n = self._exp_int(e)
            except TrackingError:
                continue
            if 0 <= n < 2**31:
                ids.append(n)
        with self._read() as conn:
            return dataset_tables.search_datasets(conn, ids)

    def update_run_info(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        values: dict[str, Any] = {}
        if status is not None:
            if status not in RUN_STATUSES:
                raise invalid(
                    f"Invalid run status '{status}'. Valid values are {list(RUN_STATUSES)}"
                )
            values["status"] = status
        if end_time is not None:
            values["end_time"] = int(end_time)
        if run_name:
            values["name"] = run_name
        values["last_update_time"] = now_ms()
        with self._write() as conn:
            row = self._run_row(conn, run_id)
            _check_active_run(row)
            conn.execute(runs.update().where(runs.c.run_uuid == run_id).values(**values))
            if run_name:
                self._upsert(
                    conn,
                    run_tags,
                    ["run_uuid", "key"],
                    [{"run_uuid": run_id, "key": TAG_RUN_NAME, "value": run_name}],
                )
            return self._info(self._run_row(conn, run_id))

    def delete_run(self, run_id: str) -> None:
        with self._write() as conn:
            self._run_row(conn, run_id)
            conn.execute(
                runs.update()
                .where(runs.c.run_uuid == run_id)
                .values(lifecycle_stage=DELETED, deleted_time=now_ms(), last_update_time=now_ms())
            )

    def restore_run(self, run_id: str) -> None:
        with self._write() as conn:
            self._run_row(conn, run_id)
            conn.execute(
                runs.update()
                .where(runs.c.run_uuid == run_id)
                .values(lifecycle_stage=ACTIVE, deleted_time=None, last_update_time=now_ms())
            )

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._write() as conn:
            row = self._run_row(conn, run_id)
            _check_active_run(row)
            res = conn.execute(
                run_tags.delete().where(run_tags.c.run_uuid == run_id, run_tags.c.key == key)
            )
            if res.rowcount == 0:
                raise not_found(f"No tag with name: {key} in run with id {run_id}")
            _touch(conn, run_id)

    # -- logging -------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        models = [m for m in metrics if m.model_id]
        self._log(run_id, series.columns_from_metrics(metrics), params, tags, models)

    def log_bulk(
        self,
        run_id: str,
        metrics: Sequence[Series] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Columnar :meth:`log_batch`, written without a ``Metric`` per point."""
        for key, steps, tss, vals in metrics:
            validate_key(key, "name", "metric")
            if not (len(steps) == len(tss) == len(vals)):
                raise invalid(
                    f"Metric '{key}': steps, timestamps and values must have the same length "
                    f"(got {len(steps)}, {len(tss)}, {len(vals)})"
                )
        cols = {
            key: series.validated_columns(key, *c) for key, c in series_columns(metrics).items()
        }
        self._log(run_id, cols, params, tags)

    def _checked_params(self, items: Sequence[Any]) -> list[tuple[str, str]]:
        """``items``: (key, value) pairs or Param entities."""
        seen: dict[str, str] = {}
        for item in items:
            k, v = (item.key, item.value) if hasattr(item, "key") else item
            validate_key(k, "key")
            v = truncate_value("Param value", MAX_PARAM_VAL_LENGTH, v)
            if k in seen and seen[k] != v:
                raise invalid(
                    f"Duplicate parameter keys have been submitted: ['{k}']. Please ensure "
                    "the request contains only one param value per param key."
                )
            seen[k] = v
        return list(seen.items())

    def _checked_tags(self, items: Sequence[Any]) -> list[tuple[str, str]]:
        """``items``: (key, value) pairs or RunTag entities."""
        out: dict[str, str] = {}
        for item in items:
            k, v = (item.key, item.value) if hasattr(item, "key") else item
            validate_key(k, "key")
            out[k] = truncate_value("Tag value", MAX_TAG_VAL_LENGTH, v)
        return list(out.items())

    def _log(
        self,
        run_id: str,
        cols: dict[str, series.Cols],
        params_in: Sequence[tuple[str, str]],
        tags_in: Sequence[tuple[str, str]],
        model_points: Sequence[Metric] = (),
    ) -> None:
        p_items = self._checked_params(params_in)
        t_items = self._checked_tags(tags_in)
        _check_model_points(model_points)
        if not cols and not p_items and not t_items:
            with self._read() as conn:
                _check_active_run(self._run_row(conn, run_id))
            return
        attempt = 0
        while True:
            try:
                self._log_once(run_id, cols, p_items, t_items, model_points)
                break
            except (sa.exc.IntegrityError, sa.exc.OperationalError):
                # PostgreSQL: a concurrent writer inserted the same param, or a deadlock
                # victim; the transaction rolled back whole, so it is safe to redo.
                attempt += 1
                if self.dialect != "postgresql" or attempt >= 5:
                    raise
                time.sleep(0.01 * attempt)
        self.statistics.wrote()

    def _log_once(
        self,
        run_id: str,
        cols: dict[str, series.Cols],
        p_items: list[tuple[str, str]],
        t_items: list[tuple[str, str]],
        model_points: Sequence[Metric] = (),
    ) -> None:
        names = [v for k, v in t_items if k == TAG_RUN_NAME]
        with self._write() as conn:
            # The run's check and its change stamp (live updates) in one statement: the
            # batch costs no more round trips than before the stamp; a refused batch rolls
            # the stamp back with everything else.
            row = conn.execute(
                runs.update()
                .where(runs.c.run_uuid == run_id)
                .values(last_update_time=now_ms(), **({"name": names[-1]} if names else {}))
                .returning(runs.c.run_uuid, runs.c.lifecycle_stage, runs.c.experiment_id)
            ).first()
            if row is None:
                raise not_found(f"Run with id={run_id} not found")
            _check_active_run(row)
            if p_items:
                self._write_params(conn, run_id, p_items)
            if t_items:
                self._upsert(
                    conn,
                    run_tags,
                    ["run_uuid", "key"],
                    [{"run_uuid": run_id, "key": k, "value": v} for k, v in t_items],
                )
            if cols:
                series.write_metrics(conn, run_id, cols)
            if model_points:  # also the models' metrics (MLflow 3's model_id)
                self._insert_ignore(
                    conn,
                    model_metrics.logged_model_metrics,
                    ["model_id", "key", "timestamp", "step", "run_id"],
                    model_metrics.rows_for(run_id, row.experiment_id, model_points),
                )

    def _write_params(self, conn: Connection, run_id: str, items: list[tuple[str, str]]) -> None:
        keys = [k for k, _ in items]
        existing = dict(
            conn.execute(
                sa.select(run_params.c.key, run_params.c.value).where(
                    run_params.c.run_uuid == run_id, run_params.c.key.in_(keys)
                )
            ).all()
        )
        new = []
        for k, v in items:
            if k in existing:
                if existing[k] != v:
                    raise invalid(
                        f"Changing param values is not allowed. Param with key='{k}' was already"
                        f" logged with value='{existing[k]}' for run ID='{run_id}'. Attempted"
                        f" logging new value '{v}'."
                    )
                continue
            new.append({"run_uuid": run_id, "key": k, "value": v})
        if new:
            conn.execute(run_params.insert(), new)

    # -- metric reads --------------------------------------------------------
    def _series(self, conn: Connection, run_id: str, key: str) -> Any:
        self._run_row(conn, run_id)
        return conn.execute(
            sa.select(latest_metrics).where(
                latest_metrics.c.run_uuid == run_id, latest_metrics.c.key == key
            )
        ).first()

    def get_metric_history_columns(
        self, run_id: str, key: str, offset: int = 0, limit: int | None = None
    ) -> tuple[list[int], list[int], list[float], bool]:
        """One series as columns ``(steps, timestamps, values, more)`` in (step,
        timestamp) order, without a ``Metric`` per point (for JSON writers and charts);
        ``more`` says whether points follow ``offset + limit``."""
        with self._read() as conn:
            s = self._series(conn, run_id, key)
            if s is None:
                return [], [], [], False
            page = series.history_page(conn, s, offset, limit)
            if page is not None:
                return page
            cols = series.points(conn, s.series_id, 0, None)
        return series.sorted_page(*cols, offset, limit)

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Metric], str | None]:
        if max_results is not None and (
            isinstance(max_results, bool) or not isinstance(max_results, int) or max_results <= 0
        ):
            raise invalid(
                f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
                "a positive integer"
            )
        offset = search.decode_page_token(page_token)
        steps, tss, vals, more = self.get_metric_history_columns(run_id, key, offset, max_results)
        token = search.encode_page_token(offset + max_results) if more and max_results else None
        with series.no_gc():
            return [Metric(key, v, t, st) for st, t, v in zip(steps, tss, vals)], token

    def get_metric_series(
        self,
        run_id: str,
        key: str,
        max_points: int = 1000,
        x_axis: str = "step",
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> list[SeriesPoint]:
        if x_axis not in ("step", "timestamp"):
            raise invalid(f"Invalid x_axis '{x_axis}'. Valid values are ['step', 'timestamp']")
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
            raise invalid(
                f"Invalid value {max_points} for parameter 'max_points': it must be a positive integer"
            )
        if start_step is not None and end_step is not None and start_step > end_step:
            raise invalid(
                f"start_step ({start_step}) must not be greater than end_step ({end_step})"
            )
        with self._read() as conn:
            s = self._series(conn, run_id, key)
            return series.read_series(conn, s, max_points, x_axis, start_step, end_step)

    # -- search --------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: str = ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible_user_ids: Sequence[str] | None = None,
        viewer_id: str | None = None,
        data_keys: DataKeys | None = None,
    ) -> tuple[list[Run], str | None]:
        validate_max_results(max_results)
        check_data_keys(data_keys)
        order = search.parse_order_by(order_by)
        where = self._search_where(
            experiment_ids,
            filter_string,
            run_view_type,
            visible_user_ids,
            viewer_id,
            # SQLite reads a page of one experiment's runs in the default order from
            # ix_runs_search_order and stops after it: IS NULL probed per run read (the
            # runs table's first page, top-level runs, 100k runs: 36 -> 11 ms), not the
            # key's every run read first
            absent_per_run=self.dialect == "sqlite"
            and len(experiment_ids) == 1
            and run_view_type != ALL
            and order in ([], [search.OrderBy(search.ATTRIBUTE, "start_time", False)]),
        )
        digest = paging.search_digest(
            sorted(str(e) for e in experiment_ids),
            filter_string or "",
            order_by or [],
            run_view_type,
        )
        offset, after = paging.decode_keyset_token(page_token, digest)
        if where is None:
            return [], None
        q = sa.select(runs).select_from(runs)
        q, keys = search.run_order_keys(order, q, self.dialect)
        # the sort values come back with each row: the next page's token holds the last's
        q = q.add_columns(*[c.label(f"_sort{i}") for i, (c, _) in enumerate(keys)])
        q = q.where(*where)
        if after is not None and not search.keyset_values_ok(keys, after):
            raise invalid("Invalid page token: it does not match this search")
        with self._read() as conn:
            if self.dialect == "postgresql":
                # A page is a short, latency-bound query: parallel workers cost more to
                # start than they save (half as fast on the benchmark's filtered search),
                # and so does JIT compilation, which a million runs' cost estimates reach
                # (tens of ms to compile a query that runs in tens of ms).
                conn.exec_driver_sql(
                    "SELECT set_config('max_parallel_workers_per_gather', '0', true), "
                    "set_config('jit', 'off', true)"
                )
            if order and order[0].entity == search.METRIC:
                walk = None
                # a keyset token carries its page's offset too: the walk starts at its
                # values (MLflow's offset tokens alone skip along the candidates)
                walk_ok = after is not None or not offset
                if self.dialect == "sqlite" and walk_ok and search_walk.walkable(order):
                    # SQLite does not choose to walk the metric's index by itself
                    per_run = self._search_where(
                        experiment_ids,
                        filter_string,
                        run_view_type,
                        visible_user_ids,
                        viewer_id,
                        per_run=True,
                    )
                    bounds = [
                        (c.op, c.value)
                        for c in search.parse_filter(filter_string)
                        if c.entity == search.METRIC
                        and c.key == order[0].key
                        and c.op in ("<", "<=", ">", ">=", "=")
                    ]
                    walk = functools.partial(
                        search_walk.walk_page,
                        conn,
                        keys,
                        order[0].key,
                        per_run or [],
                        bounds=bounds,
                    )
                rows = self._metric_ordered_rows(
                    conn, q, keys, after, max_results + 1, walk, 0 if after else offset
                )
            else:
                # SQLite reads a broad filter's every candidate and sorts them; walking
                # the order's index stops after the page (bench/RESULTS.md)
                rows_walked = None
                if (
                    self.dialect == "sqlite"
                    and (after is not None or not offset)
                    and len(experiment_ids) == 1
                    and run_view_type != ALL
                    and search_walk.run_walkable(search.parse_filter(filter_string), order)
                ):
                    rows_walked = self._walk_run_index(
                        conn,
                        keys,
                        after,
                        max_results + 1,
                        experiment_ids,
                        filter_string,
                        run_view_type,
                        visible_user_ids,
                        viewer_id,
                    )
                if rows_walked is not None:
                    rows = rows_walked
                else:
                    if after is not None:
                        # keyset: the page after the token's last row, however deep
                        q = q.where(search.keyset_after(keys, after))
                    elif offset:
                        q = q.offset(offset)  # MLflow's offset token
                    terms = [(c.asc() if asc else c.desc()).nulls_last() for c, asc in keys]
                    rows = list(conn.execute(q.order_by(*terms).limit(max_results + 1)).all())
            token = None
            if len(rows) > max_results:
                last = rows[max_results - 1]
                sort_values = [last._mapping[f"_sort{i}"] for i in range(len(keys))]
                token = paging.encode_keyset_token(offset + max_results, digest, sort_values)
            return self._load_runs(conn, rows[:max_results], data_keys), token

    def _walk_run_index(
        self,
        conn: Connection,
        keys: list[tuple[Any, bool]],
        after: list[Any] | None,
        limit: int,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: str,
        visible_user_ids: Sequence[str] | None,
        viewer_id: str | None,
    ) -> list[Any] | None:
        """SQLite: a page of one experiment's runs in ``ix_runs_search_order``'s order read
        by walking the index and probing the filter per run (:func:`search_walk.walk_runs_page`);
        None when the filter looks narrow (the caller reads its candidates)."""
        per_run = self._search_where(
            experiment_ids, filter_string, run_view_type, visible_user_ids, viewer_id, per_run=True
        )
        if per_run is None or not search_walk.broad(
            conn, search.parse_filter(filter_string), limit
        ):
            return None
        experiment = int(str(experiment_ids[0]))

        def scope(w: Any) -> list[Any]:
            return [
                w.c.experiment_id == experiment,
                *_lifecycle_clause(w.c.lifecycle_stage, run_view_type),
            ]

        return search_walk.walk_runs_page(conn, keys, scope, per_run, after, limit)

    @staticmethod
    def _metric_ordered_rows(
        conn: Connection,
        q: Any,
        keys: list[tuple[Any, bool]],
        after: list[Any] | None,
        limit: int,
        walk: Callable[[list[Any] | None, int], list[Any] | None] | None = None,
        offset: int = 0,
    ) -> list[Any]:
        """A page of a search ordered first by a metric, in two parts: the runs that have
        a value (an inner join, ordered as the ``(key, value)`` index is, so the database
        can walk it and stop after the page) then those without (missing or NaN). One
        query with the metric outer-joined and NULLs last must instead sort every run
        that matches the filter (seconds at a million runs). ``walk`` (SQLite): reads the
        first part by walking the index, None when it gives up (:mod:`.search_walk`).
        ``offset``: MLflow's offset token (no keyset), skipped over both parts in turn."""
        value, asc = keys[0]
        rest = [(c.asc() if a else c.desc()).nulls_last() for c, a in keys[1:]]
        rows: list[Any] = []
        walked = walk(after, limit) if walk and (after is None or after[0] is not None) else None
        if walked is not None:
            rows = walked
        elif after is None or after[0] is not None:
            # ``>= -inf`` is ``IS NOT NULL`` here (NaN is stored as NULL), but SQLite
            # (3.40) takes only a comparison as turning the outer join into an inner
            # one, and only then walks the (key, value) index (5.6 s -> 1 ms at 100k).
            a = q.where(value >= float("-inf"))
            if after is not None:
                # the bound alone and NULL-free, so the index scan starts at it
                a = a.where(value >= after[0] if asc else value <= after[0])
                a = a.where(search.keyset_after(keys, after))
            # plain ASC/DESC: the index's own order (no NULLs among these rows)
            a = a.order_by(value.asc() if asc else value.desc(), *rest)
            rows = list(conn.execute(a.limit(limit).offset(offset or None)).all())
        if len(rows) < limit:
            if offset and not rows:  # the offset may reach past the first part
                with_value = q.where(value.is_not(None)).subquery()
                n = conn.execute(sa.select(sa.func.count()).select_from(with_value)).scalar_one()
                offset = max(0, offset - n)
            elif offset:
                offset = 0  # the first part had rows after the offset: the second starts
            b = q.where(value.is_(None))
            if after is not None and after[0] is None:
                b = b.where(search.keyset_after(keys[1:], after[1:]))
            b = b.order_by(*rest).limit(limit - len(rows)).offset(offset or None)
            rows += conn.execute(b).all()
        return rows

    def count_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: str = ACTIVE_ONLY,
        visible_user_ids: Sequence[str] | None = None,
        viewer_id: str | None = None,
    ) -> int:
        comparisons = search.parse_filter(filter_string)
        absent, rest = search.split_absence(comparisons)
        if self.dialect != "sqlite":
            # PostgreSQL: IS NULL is an anti-join (search.run_filter_clauses)
            absent, rest = None, comparisons
        scope = (experiment_ids, run_view_type, visible_user_ids, viewer_id)
        where = self._where(rest, *scope)
        if where is None:
            return 0

        def count(clauses: list[Any]) -> Any:
            return sa.select(sa.func.count()).select_from(runs).where(*clauses)

        q = count(where)
        if absent is not None:
            # SQLite: the runs without key k are all runs less those with it, two counts
            # from indexes (the second may walk k's rows when they are fewer), instead of
            # probing an in-memory list of k's runs once per run (bench/RESULTS.md)
            with_key = self._where([*rest, replace(absent, op="IS_NOT_NULL")], *scope)
            assert with_key is not None  # same experiments as `where`
            q = sa.select(q.scalar_subquery() - count(with_key).scalar_subquery())
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    def changed_runs(
        self,
        experiment_ids: Sequence[str],
        since: int,
        max_results: int = 500,
        visible_user_ids: Sequence[str] | None = None,
        viewer_id: str | None = None,
        data_keys: DataKeys | None = None,
    ) -> tuple[list[Run], bool]:
        check_data_keys(data_keys)
        where = self._search_where(experiment_ids, None, ALL, visible_user_ids, viewer_id)
        if where is None:
            return [], False
        since = int(since)
        changed = sa.or_(
            runs.c.last_update_time >= since,
            # Runs not changed since migration 0013: their start and end.
            sa.and_(
                runs.c.last_update_time.is_(None),
                sa.or_(runs.c.start_time >= since, runs.c.end_time >= since),
            ),
        )
        q = (
            sa.select(runs)
            .where(*where, changed)
            .order_by(runs.c.last_update_time.asc().nulls_first(), runs.c.run_uuid)
            .limit(max_results + 1)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
            return (
                self._load_runs(conn, rows[:max_results], data_keys),
                len(rows) > max_results,
            )

    def run_keys(
        self,
        experiment_ids: Sequence[str],
        search: str = "",
        max_results: int = 200,
        visible_user_ids: Sequence[str] | None = None,
        viewer_id: str | None = None,
    ) -> dict[str, list[str]]:
        where = self._search_where(experiment_ids, None, ACTIVE_ONLY, visible_user_ids, viewer_id)
        out: dict[str, list[str]] = {"params": [], "metrics": [], "tags": []}
        if where is None:
            return out
        with self._read() as conn:
            for kind, table in (
                ("params", run_params),
                ("metrics", latest_metrics),
                ("tags", run_tags),
            ):
                # Code-point order on every backend, as search sorts strings.
                key = (
                    table.c.key.collate("C") if self.dialect == "postgresql" else table.c.key
                ).label("key")
                q = (
                    sa.select(key)
                    .distinct()
                    .join(runs, runs.c.run_uuid == table.c.run_uuid)
                    .where(*where)
                )
                if search:
                    q = q.where(
                        sa.func.lower(table.c.key).contains(search.lower(), autoescape=True)
                    )
                q = q.order_by(key).limit(max_results)
                out[kind] = [r[0] for r in conn.execute(q)]
        return out

    def _search_where(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: str,
        visible_user_ids: Sequence[str] | None,
        viewer_id: str | None,
        per_run: bool = False,
        absent_per_run: bool = False,
    ) -> list[Any] | None:
        """The WHERE clauses of a run search (None: no experiment can match); ``per_run``,
        ``absent_per_run``: see :func:`search.run_filter_clauses`."""
        return self._where(
            search.parse_filter(filter_string),
            experiment_ids,
            run_view_type,
            visible_user_ids,
            viewer_id,
            per_run,
            absent_per_run,
        )

    def _where(
        self,
        comparisons: Sequence[search.Comparison],
        experiment_ids: Sequence[str],
        run_view_type: str,
        visible_user_ids: Sequence[str] | None,
        viewer_id: str | None,
        per_run: bool = False,
        absent_per_run: bool = False,
    ) -> list[Any] | None:
        """:meth:`_search_where` of a parsed filter."""
        if run_view_type not in VIEW_TYPES:
            raise invalid(
                f"Invalid view type '{run_view_type}'. Valid values are {list(VIEW_TYPES)}"
            )
        exp_ids = []
        for e in experiment_ids:
            try:
                exp_ids.append(int(str(e)))
            except ValueError:
                continue
        if not exp_ids:
            return None
        experiment: Any = runs.c.experiment_id
        if self.dialect == "sqlite" and any(
            c.entity == search.ATTRIBUTE and c.key == "run_id" and c.op in ("=", "IN")
            for c in comparisons
        ):
            # Runs named by id (the compare view's 100 at a time): primary-key lookups.
            # SQLite walks the experiment's search-order index instead, to skip the sort
            # (0.2 s at 100k runs); an expression is not an index term.
            experiment = experiment + 0
        return [
            experiment.in_(exp_ids),
            *_lifecycle_clause(runs.c.lifecycle_stage, run_view_type),
            *search.run_filter_clauses(comparisons, self.dialect, per_run, absent_per_run),
            *_visibility_clauses(visible_user_ids, viewer_id),
        ]

    # -- liveness and maintenance -------------------------------------------
    def heartbeat(self, run_ids: Sequence[str], now: int | None = None) -> None:
        if not run_ids:
            return
        now = now_ms() if now is None else int(now)
        with self._write() as conn:
            for chunk in _chunks(list(run_ids)):
                conn.execute(
                    runs.update().where(runs.c.run_uuid.in_(chunk)).values(last_heartbeat=now)
                )

    def kill_stale_runs(self, older_than_ms: int, now: int | None = None) -> list[str]:
        now = now_ms() if now is None else int(now)
        cutoff = now - int(older_than_ms)
        with self._write() as conn:
            stale = conn.execute(
                sa.select(runs.c.run_uuid, runs.c.last_heartbeat).where(
                    runs.c.status == RUNNING,
                    runs.c.last_heartbeat.is_not(None),
                    runs.c.last_heartbeat < cutoff,
                )
            ).all()
            for rid, beat in stale:
                conn.execute(
                    runs.update()
                    .where(runs.c.run_uuid == rid, runs.c.status == RUNNING)
                    .values(status=KILLED, end_time=beat, last_update_time=now_ms())
                )
        return [r[0] for r in stale]

    def purge_deleted_runs(self, older_than_ms: int = 0) -> list[str]:
        cutoff = now_ms() - int(older_than_ms)
        with self._write() as conn:
            ids = list(
                conn.execute(
                    sa.select(runs.c.run_uuid).where(
                        runs.c.lifecycle_stage == DELETED,
                        sa.or_(runs.c.deleted_time.is_(None), runs.c.deleted_time <= cutoff),
                    )
                ).scalars()
            )
            for chunk in _chunks(ids):
                sids = list(
                    conn.execute(
                        sa.select(latest_metrics.c.series_id).where(
                            latest_metrics.c.run_uuid.in_(chunk)
                        )
                    ).scalars()
                )
                for schunk in _chunks(sids):
                    series.delete_series(conn, schunk)
                for t in (latest_metrics, run_params, run_tags):
                    conn.execute(t.delete().where(t.c.run_uuid.in_(chunk)))
                dataset_tables.purge_runs(conn, chunk)
                conn.execute(runs.delete().where(runs.c.run_uuid.in_(chunk)))
        return ids

    # -- helpers -------------------------------------------------------------
    def _insert_ignore(
        self, conn: Connection, table: sa.Table, keys: list[str], rows: list[dict[str, Any]]
    ) -> None:
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # the same on_conflict API as sqlite's insert, on another dialect's class
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        conn.execute(insert(table).on_conflict_do_nothing(index_elements=keys), rows)

    def _upsert(
        self, conn: Connection, table: sa.Table, keys: list[str], rows: list[dict[str, Any]]
    ) -> None:
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # the same on_conflict API as sqlite's insert, on another dialect's class
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        stmt = insert(table)
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={"value": stmt.excluded.value})
        conn.execute(stmt, rows)


# -- module helpers ----------------------------------------------------------


def _touch(conn: Connection, run_id: str) -> None:
    """Record that the run changed now (the runs table's live updates ask what changed)."""
    conn.execute(runs.update().where(runs.c.run_uuid == run_id).values(last_update_time=now_ms()))


def _check_model_points(points: Sequence[Metric]) -> None:
    for m in points:
        if len(m.model_id or "") > 64:
            raise invalid("Invalid value for 'model_id': longer than 64 characters.")
        if len(m.dataset_name or "") > model_metrics.MAX_DATASET_NAME:
            raise invalid(
                f"Invalid value for 'dataset_name': longer than "
                f"{model_metrics.MAX_DATASET_NAME} characters."
            )
        if len(m.dataset_digest or "") > model_metrics.MAX_DATASET_DIGEST:
            raise invalid(
                f"Invalid value for 'dataset_digest': longer than "
                f"{model_metrics.MAX_DATASET_DIGEST} characters."
            )


def _check_active_run(row: Any) -> None:
    if row.lifecycle_stage != ACTIVE:
        raise invalid(
            f"The run {row.run_uuid} must be in the 'active' state. "
            f"Current state is {row.lifecycle_stage}."
        )


def _check_active_experiment(row: Any) -> None:
    if row.lifecycle_stage != ACTIVE:
        raise invalid(
            f"The experiment {row.experiment_id} must be in the 'active' state. "
            f"Current state is {row.lifecycle_stage}."
        )


def _lifecycle_clause(col: Any, view_type: str) -> list[Any]:
    if view_type == ACTIVE_ONLY:
        return [col == ACTIVE]
    if view_type == DELETED_ONLY:
        return [col == DELETED]
    if view_type == ALL:
        return []
    raise invalid(f"Invalid view type '{view_type}'. Valid values are {list(VIEW_TYPES)}")


def _chunks(items: list[Any], size: int = _IN_CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


#: The run tag that hides a run from everyone but its user (and admins).
VISIBILITY_TAG = "mlops.visibility"


def _visibility_clauses(user_ids: Sequence[str] | None, viewer_id: str | None) -> list[Any]:
    """``search_runs``' access filter: runs of ``user_ids``, without other users' private runs."""
    if user_ids is None:
        return []
    # An alias: a query already reading run_tags (``run_keys``' tag keys) would otherwise
    # correlate the subquery's run_tags with its own and leave it without a FROM.
    tags = run_tags.alias("visibility_tags")
    private = sa.exists().where(
        tags.c.run_uuid == runs.c.run_uuid,
        tags.c.key == VISIBILITY_TAG,
        tags.c.value == "private",
    )
    shown = ~private if viewer_id is None else sa.or_(runs.c.user_id == viewer_id, ~private)
    return [runs.c.user_id.in_(list(user_ids)), shown]
