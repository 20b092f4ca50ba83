"""Reading and writing pipeline runs, steps and schedules (synchronous; callers
in the event loop go through a thread)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..tracking.clock import now_ms
from ..tracking.schema import runs as tracked_runs
from .schema import pipeline_runs, pipeline_schedules, pipeline_steps

#: Run and step states (Kubeflow's names). Terminal ones never change again.
RUN_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")
STEP_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED", "CACHED")


def _runs_select() -> sa.Select[Any]:
    """Pipeline runs with their tracked run's name (``run_name``: what the user typed
    or the schedule chose; the pipeline run id is its parent tracked run's id). An
    outer join: a purged tracked run leaves the pipeline's history readable."""
    return sa.select(pipeline_runs, tracked_runs.c.name.label("run_name")).select_from(
        pipeline_runs.outerjoin(tracked_runs, tracked_runs.c.run_uuid == pipeline_runs.c.run_id)
    )


class PipelineDB:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # -- runs ------------------------------------------------------------------------
    def insert_run(self, run: dict[str, Any], steps: Sequence[dict[str, Any]]) -> None:
        with self._write() as conn:
            conn.execute(pipeline_runs.insert(), [run])
            if steps:
                conn.execute(pipeline_steps.insert(), list(steps))

    def update_run(self, run_id: str, only_if_not: Sequence[str] = (), **values: Any) -> bool:
        stmt = pipeline_runs.update().where(pipeline_runs.c.run_id == run_id).values(**values)
        if only_if_not:
            stmt = stmt.where(pipeline_runs.c.status.not_in(list(only_if_not)))
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def update_steps(self, updates: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Several step updates in one transaction: ``(run_id, step, values)``."""
        if not updates:
            return
        with self._write() as conn:
            for run_id, step, values in updates:
                conn.execute(
                    pipeline_steps.update()
                    .where(pipeline_steps.c.run_id == run_id, pipeline_steps.c.step == step)
                    .values(**values)
                )

    def update_run_and_steps(
        self,
        run_id: str,
        run_values: dict[str, Any],
        steps: Sequence[tuple[str, dict[str, Any]]],
        only_if_not: Sequence[str] = (),
    ) -> None:
        """A run's and its steps' changes in one transaction: readers never see a step
        running under a run still queued (a remote run's state arrives all at once)."""
        with self._write() as conn:
            for step, values in steps:
                conn.execute(
                    pipeline_steps.update()
                    .where(pipeline_steps.c.run_id == run_id, pipeline_steps.c.step == step)
                    .values(**values)
                )
            if run_values:
                stmt = (
                    pipeline_runs.update()
                    .where(pipeline_runs.c.run_id == run_id)
                    .values(**run_values)
                )
                if only_if_not:
                    stmt = stmt.where(pipeline_runs.c.status.not_in(list(only_if_not)))
                conn.execute(stmt)

    def run_status(self, run_id: str) -> str | None:
        with self._read() as conn:
            return conn.execute(
                sa.select(pipeline_runs.c.status).where(pipeline_runs.c.run_id == run_id)
            ).scalar()

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = (
                conn.execute(_runs_select().where(pipeline_runs.c.run_id == run_id))
                .mappings()
                .first()
            )
            if row is None:
                return None
            steps = (
                conn.execute(pipeline_steps.select().where(pipeline_steps.c.run_id == run_id))
                .mappings()
                .all()
            )
        return _run_dict(row, steps)

    def list_runs(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        source_path: str | None = None,
        schedule_id: str | None = None,
        max_results: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], bool]:
        q = _runs_select()
        if status:
            q = q.where(pipeline_runs.c.status == status)
        if name:
            q = q.where(pipeline_runs.c.name == name)
        if source_path:
            q = q.where(pipeline_runs.c.source_path == source_path)
        if schedule_id:
            q = q.where(pipeline_runs.c.schedule_id == schedule_id)
        q = q.order_by(pipeline_runs.c.created_time.desc(), pipeline_runs.c.run_id)
        q = q.offset(offset).limit(max_results + 1)
        with self._read() as conn:
            rows = conn.execute(q).mappings().all()
            more = len(rows) > max_results
            rows = rows[:max_results]
            ids = [r["run_id"] for r in rows]
            steps = (
                conn.execute(pipeline_steps.select().where(pipeline_steps.c.run_id.in_(ids)))
                .mappings()
                .all()
                if ids
                else []
            )
        by_run: dict[str, list[Any]] = {}
        for s in steps:
            by_run.setdefault(s["run_id"], []).append(s)
        return [_run_dict(r, by_run.get(r["run_id"], [])) for r in rows], more

    def unfinished_runs(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = (
                conn.execute(
                    pipeline_runs.select().where(pipeline_runs.c.status.not_in(list(RUN_TERMINAL)))
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def mark_interrupted(self, run_id: str, reason: str) -> None:
        """A run whose executor is gone: FAILED, and its unfinished steps too."""
        t = now_ms()
        with self._write() as conn:
            conn.execute(
                pipeline_runs.update()
                .where(
                    pipeline_runs.c.run_id == run_id,
                    pipeline_runs.c.status.not_in(list(RUN_TERMINAL)),
                )
                .values(status="FAILED", reason=reason, end_time=t)
            )
            conn.execute(
                pipeline_steps.update()
                .where(
                    pipeline_steps.c.run_id == run_id,
                    pipeline_steps.c.status == "RUNNING",
                )
                .values(status="FAILED", error=reason, end_time=t)
            )
            conn.execute(
                pipeline_steps.update()
                .where(
                    pipeline_steps.c.run_id == run_id,
                    pipeline_steps.c.status == "PENDING",
                )
                .values(status="SKIPPED")
            )

    def find_cached(self, cache_key: str) -> list[tuple[str, str]]:
        """The latest successful (run_id, step)s with this cache key, newest first."""
        q = (
            sa.select(pipeline_steps.c.run_id, pipeline_steps.c.step)
            .where(pipeline_steps.c.cache_key == cache_key, pipeline_steps.c.status == "SUCCEEDED")
            .order_by(pipeline_steps.c.end_time.desc())
            .limit(5)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [(r[0], r[1]) for r in rows]

    # -- schedules -------------------------------------------------------------------
    def insert_schedule(self, row: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(pipeline_schedules.insert(), [row])

    def get_schedule(self, schedule_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = (
                conn.execute(
                    pipeline_schedules.select().where(
                        pipeline_schedules.c.schedule_id == schedule_id
                    )
                )
                .mappings()
                .first()
            )
        return _schedule_dict(row) if row else None

    def list_schedules(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = (
                conn.execute(
                    pipeline_schedules.select().order_by(pipeline_schedules.c.created_time)
                )
                .mappings()
                .all()
            )
        return [_schedule_dict(r) for r in rows]

    def update_schedule(self, schedule_id: str, **values: Any) -> bool:
        with self._write() as conn:
            return (
                conn.execute(
                    pipeline_schedules.update()
                    .where(pipeline_schedules.c.schedule_id == schedule_id)
                    .values(**values)
                ).rowcount
                == 1
            )

    def delete_schedule(self, schedule_id: str) -> bool:
        with self._write() as conn:
            return (
                conn.execute(
                    pipeline_schedules.delete().where(
                        pipeline_schedules.c.schedule_id == schedule_id
                    )
                ).rowcount
                == 1
            )

    def due_schedules(self, now: int, owner: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = (
                conn.execute(
                    pipeline_schedules.select().where(
                        pipeline_schedules.c.paused == sa.false(),
                        pipeline_schedules.c.next_fire_time <= now,
                        sa.or_(
                            pipeline_schedules.c.owner == owner,
                            pipeline_schedules.c.owner.is_(None),
                        ),
                    )
                )
                .mappings()
                .all()
            )
        return [_schedule_dict(r) for r in rows]

    def claim_fire(self, schedule_id: str, expected_next: int, new_next: int | None) -> bool:
        """Move the next fire time forward only if nobody else did: exactly one
        process (and one tick) gets to fire each scheduled time."""
        with self._write() as conn:
            return (
                conn.execute(
                    pipeline_schedules.update()
                    .where(
                        pipeline_schedules.c.schedule_id == schedule_id,
                        pipeline_schedules.c.next_fire_time == expected_next,
                        pipeline_schedules.c.paused == sa.false(),
                    )
                    .values(next_fire_time=new_next, last_fire_time=expected_next)
                ).rowcount
                == 1
            )


def _run_dict(row: Any, steps: Sequence[Any]) -> dict[str, Any]:
    out = dict(row)
    out["spec"] = json.loads(out["spec"])
    out["parameters"] = json.loads(out["parameters"])
    order = list(out["spec"].get("steps", {}))
    st = {s["step"]: dict(s) for s in steps}
    out["steps"] = [st[n] for n in order if n in st] + [s for n, s in st.items() if n not in order]
    return out


def _schedule_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["parameters"] = json.loads(out["parameters"])
    out["paused"] = bool(out["paused"])
    return out
