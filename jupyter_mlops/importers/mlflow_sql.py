"""Reader for MLflow's SQL store (``sqlite:///mlflow.db``, ``postgresql://...``).

Reads MLflow's tables ``experiments``, ``experiment_tags``, ``runs``, ``params``,
``tags`` and ``metrics`` with SQLAlchemy Core. The tables are reflected, so
older MLflow schemas (without ``deleted_time``, ``step`` or ``is_nan``) read too.
A SQLite source is opened read-only: importing never changes it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

from ..tracking.entities import Metric
from .source import MlflowSource, SourceError, SourceExperiment, SourceRun, local_path

REQUIRED_TABLES = ("experiments", "runs", "params", "tags", "metrics")


class SqlSource(MlflowSource):
    def __init__(self, uri: str) -> None:
        import sqlalchemy as sa

        self.uri = uri
        self._base_dir = os.getcwd()
        url = sa.engine.make_url(uri)
        self.description = f"MLflow database {url.render_as_string(hide_password=True)}"
        self.warnings = []
        if url.get_backend_name() == "sqlite":
            path = url.database or ""
            if not path or path == ":memory:" or not os.path.isfile(path):
                raise SourceError(f"{uri}: no such database file")
            if not os.access(path, os.R_OK):
                raise SourceError(f"{uri}: permission denied")
            self._base_dir = os.path.dirname(os.path.abspath(path))
            # Read-only, and never create a file where there was none.
            import pathlib
            import sqlite3

            creator_path = pathlib.Path(path).absolute().as_uri() + "?mode=ro"

            self.engine = sa.create_engine(
                "sqlite://", creator=lambda: sqlite3.connect(creator_path, uri=True)
            )
        else:
            if url.drivername == "postgresql":
                url = url.set(drivername=_postgres_driver())
            self.engine = sa.create_engine(url)
        try:
            metadata = sa.MetaData()
            with self.engine.connect() as conn:
                names = set(sa.inspect(conn).get_table_names())
                missing = [t for t in REQUIRED_TABLES if t not in names]
                if missing:
                    raise SourceError(
                        f"{self.description}: not an MLflow tracking database "
                        f"(no table {', '.join(missing)})"
                    )
                wanted = [*REQUIRED_TABLES, "experiment_tags"]
                metadata.reflect(conn, only=[t for t in wanted if t in names])
        except sa.exc.SQLAlchemyError as e:
            self.engine.dispose()
            raise SourceError(f"{self.description}: cannot read ({_first_line(e)})") from None
        self.t = metadata.tables

    def _rows(self, query: Any) -> list[Any]:
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query))
        except sa.exc.SQLAlchemyError as e:
            raise SourceError(f"{self.description}: cannot read ({_first_line(e)})") from None

    def experiments(self) -> list[SourceExperiment]:
        import sqlalchemy as sa

        e = self.t["experiments"]
        tags: dict[str, dict[str, str]] = {}
        if "experiment_tags" in self.t:
            et = self.t["experiment_tags"]
            for row in self._rows(sa.select(et.c.experiment_id, et.c.key, et.c.value)):
                tags.setdefault(str(row.experiment_id), {})[row.key] = row.value or ""
        cols = [e.c.experiment_id, e.c.name, e.c.artifact_location, e.c.lifecycle_stage]
        if "creation_time" in e.c:
            cols.append(e.c.creation_time)
        result = []
        for row in self._rows(sa.select(*cols).order_by(e.c.experiment_id)):
            exp_id = str(row.experiment_id)
            result.append(
                SourceExperiment(
                    experiment_id=exp_id,
                    name=row.name,
                    lifecycle_stage=row.lifecycle_stage or "active",
                    artifact_location=row.artifact_location or "",
                    creation_time=getattr(row, "creation_time", None),
                    tags=tags.get(exp_id, {}),
                )
            )
        return result

    def runs(self, experiment_id: str) -> list[SourceRun]:
        import sqlalchemy as sa

        r = self.t["runs"]
        name_col = r.c.name if "name" in r.c else sa.literal("")
        query = (
            sa.select(
                r.c.run_uuid,
                name_col.label("name"),
                r.c.user_id,
                r.c.status,
                r.c.start_time,
                r.c.end_time,
                r.c.lifecycle_stage,
                r.c.artifact_uri,
            )
            .where(r.c.experiment_id == _coerce_id(r.c.experiment_id, experiment_id))
            .order_by(r.c.start_time, r.c.run_uuid)
        )
        return [
            SourceRun(
                run_id=row.run_uuid,
                experiment_id=experiment_id,
                run_name=row.name or "",
                user_id=row.user_id or "",
                status=row.status or "FINISHED",
                start_time=row.start_time,
                end_time=row.end_time,
                lifecycle_stage=row.lifecycle_stage or "active",
                artifact_uri=row.artifact_uri or "",
            )
            for row in self._rows(query)
        ]

    def _key_values(self, table: str, run: SourceRun) -> dict[str, str]:
        import sqlalchemy as sa

        t = self.t[table]
        rows = self._rows(sa.select(t.c.key, t.c.value).where(t.c.run_uuid == run.run_id))
        return {row.key: row.value if row.value is not None else "" for row in rows}

    def params(self, run: SourceRun) -> dict[str, str]:
        return self._key_values("params", run)

    def tags(self, run: SourceRun) -> dict[str, str]:
        return self._key_values("tags", run)

    def metrics(self, run: SourceRun) -> Iterator[tuple[str, list[Metric]]]:
        import sqlalchemy as sa

        m = self.t["metrics"]
        step = m.c.step if "step" in m.c else sa.literal(0)
        is_nan = m.c.is_nan if "is_nan" in m.c else sa.literal(False)
        query = (
            sa.select(m.c.key, m.c.value, m.c.timestamp, step.label("step"), is_nan.label("is_nan"))
            .where(m.c.run_uuid == run.run_id)
            .order_by(m.c.key, m.c.timestamp, step)
        )
        # Streamed, one key at a time: a run may hold millions of points.
        key: str | None = None
        history: list[Metric] = []
        nan = math.nan
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(yield_per=20_000).execute(query)
                for k, value, ts, st, bad in result.tuples():
                    if k != key:
                        if key is not None:
                            yield key, history
                        key, history = k, []
                    history.append(Metric(k, nan if bad else float(value), int(ts), int(st or 0)))
        except sa.exc.SQLAlchemyError as e:
            raise SourceError(f"{self.description}: cannot read ({_first_line(e)})") from None
        if key is not None:
            yield key, history

    def metric_counts(self, run: SourceRun) -> dict[str, int] | None:
        import sqlalchemy as sa

        m = self.t["metrics"]
        query = (
            sa.select(m.c.key, sa.func.count()).where(m.c.run_uuid == run.run_id).group_by(m.c.key)
        )
        return {key: int(n) for key, n in self._rows(query)}

    def artifact_dir_candidates(self, run: SourceRun) -> list[str]:
        # A relative artifact location (old MLflow's "./mlruns") was relative
        # to where the user ran MLflow: most likely beside the database.
        uri = run.artifact_uri
        if uri and "://" not in uri and ":" not in uri[:3] and not os.path.isabs(uri):
            return [os.path.normpath(os.path.join(self._base_dir, uri))]
        path = local_path(uri)
        return [path] if path else []

    def close(self) -> None:
        self.engine.dispose()


def _postgres_driver() -> str:
    """MLflow's ``postgresql://`` means psycopg2; use psycopg 3 when that is what is installed."""
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg"):
        return "postgresql+psycopg"
    return "postgresql"


def _coerce_id(column: Any, value: str) -> Any:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    return int(value) if python_type is int else value


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err)
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__
