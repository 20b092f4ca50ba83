"""Reading and writing deployments and their history (synchronous; callers on the event loop
go through a thread)."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .schema import deployment_history, deployments


def now_ms() -> int:
    return int(time.time() * 1000)


def _encoded(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` for an UPDATE of ``deployments``: JSON columns encoded, the update time
    stamped."""
    out = dict(values)
    for key in ("resources", "state"):
        if out.get(key) is not None:
            out[key] = json.dumps(out[key])
    out["updated_time"] = now_ms()
    return out


class DeploymentDB:
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

    @staticmethod
    def _row(r: Any) -> dict[str, Any]:
        d = dict(r._mapping)
        for key in ("resources", "state"):
            d[key] = json.loads(d[key]) if d.get(key) else None
        d["follow_alias"] = bool(d["follow_alias"])
        return d

    def insert(self, row: dict[str, Any]) -> bool:
        """False if a deployment of that name exists."""
        values = dict(row)
        for key in ("resources", "state"):
            if values.get(key) is not None:
                values[key] = json.dumps(values[key])
        with self._write() as conn:
            exists = conn.execute(
                sa.select(deployments.c.name).where(deployments.c.name == row["name"])
            ).first()
            if exists:
                return False
            conn.execute(deployments.insert().values(**values))
            return True

    def get(self, name: str) -> dict[str, Any] | None:
        with self._read() as conn:
            r = conn.execute(sa.select(deployments).where(deployments.c.name == name)).first()
            return self._row(r) if r is not None else None

    def list(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(sa.select(deployments).order_by(deployments.c.name)).all()
            return [self._row(r) for r in rows]

    def update(self, name: str, **values: Any) -> None:
        values = _encoded(values)
        with self._write() as conn:
            conn.execute(deployments.update().where(deployments.c.name == name).values(**values))

    def update_observed(self, name: str, generation: int, **values: Any) -> bool:
        """:meth:`update` if no rollout is under way and none started since ``generation``
        (what a target observed outside a rollout: it must not hide one). False: not
        written."""
        values = _encoded(values)
        d = deployments.c
        with self._write() as conn:
            done = conn.execute(
                deployments.update()
                .where(
                    d.name == name,
                    d.generation == generation,
                    d.observed_generation == generation,
                )
                .values(**values)
            )
            return bool(done.rowcount)

    def start_rollout(self, name: str, **values: Any) -> int:
        """A request starts a rollout: ``generation`` + 1 (with ``values``); the new
        generation."""
        values = _encoded(values)
        d = deployments.c
        with self._write() as conn:
            conn.execute(
                deployments.update()
                .where(d.name == name)
                .values(generation=d.generation + 1, **values)
            )
            gen = conn.execute(sa.select(d.generation).where(d.name == name)).scalar()
            return int(gen or 0)

    def end_rollout(self, name: str, generation: int, error: str | None, **values: Any) -> None:
        """The rollout of ``generation`` ended (``error``: why it failed), with ``values``
        written at the same time (a client waiting for it reads both at once)."""
        values = _encoded(values)
        d = deployments.c
        with self._write() as conn:
            conn.execute(
                deployments.update()
                .where(d.name == name, d.observed_generation < generation)
                .values(observed_generation=generation, rollout_error=error, **values)
            )

    def delete(self, name: str) -> None:
        with self._write() as conn:
            conn.execute(deployment_history.delete().where(deployment_history.c.name == name))
            conn.execute(deployments.delete().where(deployments.c.name == name))

    # -- history ----------------------------------------------------------------------------
    def history(self, name: str) -> builtins.list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(deployment_history)
                .where(deployment_history.c.name == name)
                .order_by(deployment_history.c.seq)
            ).all()
            return [dict(r._mapping) for r in rows]

    def add_history(
        self,
        name: str,
        action: str,
        model_uri: str,
        model_name: str | None,
        model_version: str | None,
    ) -> None:
        """A new served version: the previous entry ends now."""
        now = now_ms()
        h = deployment_history
        with self._write() as conn:
            last = conn.execute(sa.select(sa.func.max(h.c.seq)).where(h.c.name == name)).scalar()
            conn.execute(
                h.update().where(h.c.name == name, h.c.end_time.is_(None)).values(end_time=now)
            )
            conn.execute(
                h.insert().values(
                    name=name,
                    seq=(last or 0) + 1,
                    action=action,
                    model_uri=model_uri,
                    model_name=model_name,
                    model_version=model_version,
                    start_time=now,
                )
            )
