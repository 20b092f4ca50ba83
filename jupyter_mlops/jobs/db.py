"""Reading and writing training jobs and their ranks (synchronous; callers in the event loop
go through a thread)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .schema import training_jobs, training_ranks

#: Job states. Terminal ones never change again.
JOB_STATUSES = ("QUEUED", "RUNNING", "RESTARTING", "CANCELING", "SUCCEEDED", "FAILED", "CANCELED")
JOB_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")
RANK_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED")


class JobDB:
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

    def insert_job(self, job: dict[str, Any], ranks: Sequence[dict[str, Any]]) -> None:
        with self._write() as conn:
            conn.execute(training_jobs.insert(), [job])
            if ranks:
                conn.execute(
                    training_ranks.insert(), [{**r, "job_id": job["job_id"]} for r in ranks]
                )

    def update_job(self, job_id: str, only_if_not: Sequence[str] = (), **values: Any) -> bool:
        stmt = training_jobs.update().where(training_jobs.c.job_id == job_id).values(**values)
        if only_if_not:
            stmt = stmt.where(training_jobs.c.status.not_in(list(only_if_not)))
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def update_ranks(self, job_id: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._write() as conn:
            for row in rows:
                values = {k: v for k, v in row.items() if k not in ("rank", "job_id")}
                conn.execute(
                    training_ranks.update()
                    .where(training_ranks.c.job_id == job_id, training_ranks.c.rank == row["rank"])
                    .values(**values)
                )

    def job_status(self, job_id: str) -> str | None:
        with self._read() as conn:
            return conn.execute(
                sa.select(training_jobs.c.status).where(training_jobs.c.job_id == job_id)
            ).scalar()

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = (
                conn.execute(training_jobs.select().where(training_jobs.c.job_id == job_id))
                .mappings()
                .first()
            )
            if row is None:
                return None
            ranks = (
                conn.execute(
                    training_ranks.select()
                    .where(training_ranks.c.job_id == job_id)
                    .order_by(training_ranks.c.rank)
                )
                .mappings()
                .all()
            )
        return _job_dict(row, ranks)

    def list_jobs(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        max_results: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], bool]:
        q = training_jobs.select()
        if status:
            q = q.where(training_jobs.c.status == status)
        if name:
            q = q.where(training_jobs.c.name == name)
        q = q.order_by(training_jobs.c.created_time.desc(), training_jobs.c.job_id)
        q = q.offset(offset).limit(max_results + 1)
        with self._read() as conn:
            rows = conn.execute(q).mappings().all()
            more = len(rows) > max_results
            rows = rows[:max_results]
            ids = [r["job_id"] for r in rows]
            ranks = (
                conn.execute(
                    training_ranks.select()
                    .where(training_ranks.c.job_id.in_(ids))
                    .order_by(training_ranks.c.rank)
                )
                .mappings()
                .all()
                if ids
                else []
            )
        by_job: dict[str, list[Any]] = {}
        for r in ranks:
            by_job.setdefault(r["job_id"], []).append(r)
        return [_job_dict(r, by_job.get(r["job_id"], [])) for r in rows], more

    def unfinished_jobs(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = (
                conn.execute(
                    training_jobs.select().where(training_jobs.c.status.not_in(list(JOB_TERMINAL)))
                )
                .mappings()
                .all()
            )
            ids = [r["job_id"] for r in rows]
            ranks = (
                conn.execute(training_ranks.select().where(training_ranks.c.job_id.in_(ids)))
                .mappings()
                .all()
                if ids
                else []
            )
        by_job: dict[str, list[Any]] = {}
        for r in ranks:
            by_job.setdefault(r["job_id"], []).append(r)
        return [_job_dict(r, by_job.get(r["job_id"], [])) for r in rows]

    def end_job(
        self, job_id: str, status: str, reason: str | None, end_time: int, **values: Any
    ) -> bool:
        """A job's final state (and other ``values`` of its row), and its ranks still marked
        running or pending with it."""
        with self._write() as conn:
            done = (
                conn.execute(
                    training_jobs.update()
                    .where(
                        training_jobs.c.job_id == job_id,
                        training_jobs.c.status.not_in(list(JOB_TERMINAL)),
                    )
                    .values(**values, status=status, reason=reason, end_time=end_time)
                ).rowcount
                == 1
            )
            conn.execute(
                training_ranks.update()
                .where(
                    training_ranks.c.job_id == job_id,
                    training_ranks.c.status.in_(["RUNNING", "PENDING"]),
                )
                .values(
                    status="FAILED" if status == "FAILED" else "CANCELED",
                    error=reason,
                    end_time=end_time,
                )
            )
        return done


def _job_dict(row: Any, ranks: Sequence[Any]) -> dict[str, Any]:
    out = dict(row)
    out["spec"] = json.loads(out["spec"])
    out["parameters"] = json.loads(out["parameters"])
    out["ranks"] = [dict(r) for r in ranks]
    return out
