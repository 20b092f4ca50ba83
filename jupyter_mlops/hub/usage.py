"""The ledger's history: every spawn, stop, cull and job lease, persisted, and GPU-hours from it.

One small table in the hub side's own database (SQLite next to the hub's, or PostgreSQL), written through
SQLAlchemy Core as the rest of the project. :class:`UsageHistory` is the ledger's listener
(:class:`~.policy.LedgerListener`): a row when an allocation starts ("start", "lease") and one when it ends
("stop", "cull", "expired", "failed"). GPU-hours pair each start with the next end of the same key; an
allocation still open counts until now, and one left open by a hub that died ends where the same key starts
again.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .policy import Allocation
from .teams import parse_duration

metadata = sa.MetaData()
events = sa.Table(
    "mlops_hub_usage_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),  # seconds since the epoch
    sa.Column("event", sa.String(16), nullable=False),  # start lease stop cull expired failed
    sa.Column("key", sa.String(255), nullable=False, index=True),  # namespace/pod or job/<id>
    sa.Column("team", sa.String(64), nullable=False),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # notebook | job
    sa.Column("name", sa.String(255), nullable=False, default=""),  # server or job name
    sa.Column("gpus", sa.Integer, nullable=False, default=0),
    sa.Column("reason", sa.Text, nullable=False, default=""),
)
START_EVENTS = ("start", "lease")
END_EVENTS = ("stop", "cull", "expired", "failed")


@dataclass
class Interval:
    key: str
    team: str
    user: str
    kind: str
    name: str
    gpus: int
    start: float
    end: float | None  # None: still holding
    end_event: str = ""
    reason: str = ""

    def gpu_hours(self, since: float, until: float) -> float:
        lo, hi = max(self.start, since), min(self.end if self.end is not None else until, until)
        return self.gpus * max(0.0, hi - lo) / 3600.0


@dataclass
class UsageReport:
    """GPU-hours per user and per team over [since, until]; ``servers``/``jobs`` count started allocations."""

    since: float
    until: float
    users: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (team, user) ->
    teams: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "teams": [{"team": t, **_round(v)} for t, v in sorted(self.teams.items())],
            "users": [
                {"team": t, "user": u, **_round(v)} for (t, u), v in sorted(self.users.items())
            ],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["team", "user", "gpu_hours", "notebook_gpu_hours", "job_gpu_hours", "culls"])
        for (t, u), v in sorted(self.users.items()):
            r = _round(v)
            w.writerow(
                [t, u, r["gpu_hours"], r["notebook_gpu_hours"], r["job_gpu_hours"], r["culls"]]
            )
        for t, v in sorted(self.teams.items()):
            r = _round(v)
            w.writerow(
                [t, "*", r["gpu_hours"], r["notebook_gpu_hours"], r["job_gpu_hours"], r["culls"]]
            )
        return out.getvalue()


def _round(v: dict[str, float]) -> dict[str, Any]:
    return {
        "gpu_hours": round(v.get("gpu_hours", 0.0), 4),
        "notebook_gpu_hours": round(v.get("notebook_gpu_hours", 0.0), 4),
        "job_gpu_hours": round(v.get("job_gpu_hours", 0.0), 4),
        "culls": int(v.get("culls", 0)),
    }


def _empty() -> dict[str, float]:
    return {"gpu_hours": 0.0, "notebook_gpu_hours": 0.0, "job_gpu_hours": 0.0, "culls": 0}


class UsageHistory:
    """The persisted history of the GPU ledger (thread-safe: writes are tiny and serialised by a lock).

    ``clock`` is the time source of recorded events (tests script a sequence with their own clock).
    """

    def __init__(self, url: str, clock: Any = time.time) -> None:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
        self.engine = sa.create_engine(url, future=True, **kwargs)
        metadata.create_all(self.engine)
        self.clock = clock
        self._lock = threading.Lock()
        self._open: set[str] | None = None  # keys with a start and no end (loaded lazily)

    # ---- writing (the ledger's listener) ---------------------------------------------------------------------
    def record(
        self,
        event: str,
        alloc: Allocation,
        reason: str = "",
        ts: float | None = None,
    ) -> None:
        row = {
            "ts": self.clock() if ts is None else ts,
            "event": event,
            "key": alloc.key,
            "team": alloc.team,
            "user": alloc.user,
            "kind": alloc.kind,
            "name": alloc.name,
            "gpus": alloc.gpus,
            "reason": reason,
        }
        with self._lock, self.engine.begin() as conn:
            conn.execute(events.insert(), row)
            if self._open is not None:
                (self._open.add if event in START_EVENTS else self._open.discard)(alloc.key)

    def open_keys(self) -> set[str]:
        """Keys whose last event is a start: what was running when the hub last stopped."""
        if self._open is None:
            with self.engine.connect() as conn:
                last = (
                    sa.select(events.c.key, sa.func.max(events.c.id).label("id"))
                    .group_by(events.c.key)
                    .subquery()
                )
                rows = conn.execute(
                    sa.select(events.c.key, events.c.event).join(last, events.c.id == last.c.id)
                )
                self._open = {k for k, e in rows if e in START_EVENTS}
        return self._open

    def started(self, alloc: Allocation, adopted: bool) -> None:
        # a pod adopted after a hub restart continues the interval the previous hub recorded
        if adopted and alloc.key in self.open_keys():
            return
        self.record("lease" if alloc.kind == "job" else "start", alloc)

    def ended(self, alloc: Allocation, event: str, reason: str) -> None:
        self.record(event, alloc, reason)

    # ---- reading ---------------------------------------------------------------------------------------------
    def intervals(self, since: float, until: float | None = None) -> list[Interval]:
        """Every allocation that overlaps [since, until] (until: now)."""
        until = self.clock() if until is None else until
        with self.engine.connect() as conn:
            # the keys active in the window: those with an event in it, or open at its start
            rows = conn.execute(
                sa.select(events).where(events.c.ts <= until).order_by(events.c.key, events.c.id)
            ).mappings()
            return list(_pair(rows, since, until))

    def events(self, since: float, until: float | None = None) -> list[dict[str, Any]]:
        until = self.clock() if until is None else until
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.ts >= since, events.c.ts <= until)
                .order_by(events.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def report(self, since: float, until: float | None = None) -> UsageReport:
        until = self.clock() if until is None else until
        rep = UsageReport(since, until)
        for iv in self.intervals(since, until):
            hours = iv.gpu_hours(since, until)
            for bucket in (
                rep.users.setdefault((iv.team, iv.user), _empty()),
                rep.teams.setdefault(iv.team, _empty()),
            ):
                bucket["gpu_hours"] += hours
                bucket[f"{iv.kind}_gpu_hours"] = bucket.get(f"{iv.kind}_gpu_hours", 0.0) + hours
                if iv.end_event == "cull" and iv.end is not None and since <= iv.end <= until:
                    bucket["culls"] += 1
        return rep


def _pair(rows: Iterable[Any], since: float, until: float) -> Iterable[Interval]:
    current: Interval | None = None
    key = None
    for r in rows:
        if r["key"] != key:
            if current is not None and current.end is None:
                yield current
            current, key = None, r["key"]
        if r["event"] in START_EVENTS:
            if current is not None and current.end is None:
                # a start without an end: the hub died; it ended at the latest where it starts again
                current.end = r["ts"]
                if current.end >= since:
                    yield current
            current = Interval(
                r["key"], r["team"], r["user"], r["kind"], r["name"], r["gpus"], r["ts"], None
            )
        elif current is not None and current.end is None:
            current.end, current.end_event, current.reason = r["ts"], r["event"], r["reason"]
            if current.end >= since:
                yield current
    if current is not None and current.end is None:
        yield current


__all__ = ["UsageHistory", "UsageReport", "parse_duration"]
