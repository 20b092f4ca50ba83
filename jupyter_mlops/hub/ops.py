"""Team operations in the hub process: what servers report, job leases, quotas people see, and idle culling.

Pure Python over the GPU ledger (:mod:`.policy`) and its history (:mod:`.usage`); the hub API handlers
(:mod:`.api`) call it, the benchmark drives it directly. Everything runs on the hub's event loop, so no locks.

Culling decides per server from what its single-user extension reported (last activity of kernels, terminals
and HTTP; what is still working: busy kernels, pipeline runs, training jobs, local deployments, the next
schedule; GPU utilization): warn ``warn_before`` ahead, then stop, unless something is working, the user is
exempt, or they pressed *Keep running*.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

from .policy import Allocation, GpuLedger, SpawnRefused
from .teams import Culling, Team, TeamsConfig

log = logging.getLogger("jupyter_mlops.hub")


@dataclass(frozen=True)
class JobClaim:
    """What a job asks of the ledger (duck-types the parts of a ``SpawnPlan`` that ``reserve`` reads)."""

    user: str
    team: Team
    gpus: int


@dataclass
class Warning_:
    id: str
    at: float
    stops_at: float
    message: str
    #: For the team's max_age: activity does not withdraw it, and there is no *Keep running*.
    age: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "warning",
            "message": self.message,
            "source": "culler",
            "stops_at": self.stops_at,
            "actions": [] if self.age else [{"id": "keep", "label": "Keep running"}],
        }


@dataclass
class ServerState:
    """What the hub knows of one user server beyond the ledger: its latest report, warning, *Keep running*."""

    user: str
    server: str
    reported_at: float = 0.0
    last_activity: float = 0.0
    working: list[str] = field(default_factory=list)
    gpu_utilization: float | None = None
    gpu_active_at: float = 0.0  # the last report with utilization at or over the team's threshold
    next_schedule: float | None = None
    kept_at: float = 0.0
    warning: Warning_ | None = None


@dataclass(frozen=True)
class ServerInfo:
    """A running server as the cull pass sees it: its ledger entry plus the hub's own timestamps."""

    alloc: Allocation
    started: float
    hub_last_activity: float = 0.0


@dataclass(frozen=True)
class Action:
    kind: str  # "warn" | "stop" | "pending" (warned, waiting for the warning to run out)
    info: ServerInfo
    message: str
    dry_run: bool = False
    age: bool = False  # for the team's max_age, not idleness


def running_servers(users: Iterable[Any], ledger: GpuLedger) -> list[ServerInfo]:
    """The ready servers of the hub's ``users`` (JupyterHub ``User`` objects) that hold a ledger entry, with the
    hub's start and activity times; pending ones (starting, stopping) are not the culler's."""
    ready: dict[tuple[str, str], Any] = {}
    for user in users:
        for name, spawner in list(user.spawners.items()):
            if spawner.ready and not spawner.pending:
                ready[(user.name, name)] = spawner
    out = []
    for alloc in ledger.allocations():
        spawner = ready.get((alloc.user, alloc.name)) if alloc.kind == "notebook" else None
        if spawner is None:
            continue
        orm = spawner.orm_spawner
        started = _ts(getattr(orm, "started", None)) or alloc.since
        out.append(ServerInfo(alloc, started, _ts(getattr(orm, "last_activity", None))))
    return out


def _ts(dt: Any) -> float:
    """Seconds since the epoch of a hub timestamp (JupyterHub stores naive UTC datetimes); 0 for none."""
    if dt is None:
        return 0.0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return float(dt.timestamp())


def human(seconds: float) -> str:
    """Durations as the warning says them: "45 s", "50 min", "2 h 5 min"."""
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h} h {m} min" if m else f"{h} h"


def _gpus(n: int) -> str:
    return f"{n} GPU{'s' if n != 1 else ''}"


def decide(
    now: float, info: ServerInfo, state: ServerState | None, culling: Culling
) -> Action | None:
    """Warn, stop or leave one server (pure: the pass applies the answer)."""
    alloc = info.alloc
    if not culling.enabled or alloc.user in culling.exempt_users:
        return None
    timeout = culling.gpu_timeout if alloc.gpus else culling.cpu_timeout
    if state is not None and state.working:
        return None  # a busy kernel, a run, a job, a deployment, a schedule due: never culled
    if (
        state is not None
        and state.next_schedule is not None
        and timeout
        and state.next_schedule - now <= timeout
    ):
        return None  # a schedule is due before the server would be culled
    last = info.started
    if state is not None and state.reported_at:
        # the server's own account: the proxy's activity (what the hub records) also counts JupyterLab's polls
        last = max(last, state.last_activity, state.kept_at)
        if alloc.gpus:
            last = max(last, state.gpu_active_at)
    else:  # no jupyter-mlops in the image: the hub's last activity is all there is
        last = max(last, info.hub_last_activity, state.kept_at if state is not None else 0.0)
    idle = now - last
    age = now - info.started
    over_age = bool(culling.max_age) and age >= culling.max_age - culling.warn_before
    over_idle = bool(timeout) and idle >= timeout - culling.warn_before
    warning = state.warning if state is not None else None
    if not (over_idle or over_age):
        return None
    holds = f"holds {_gpus(alloc.gpus)} and " if alloc.gpus else ""
    if over_idle:
        text = f"This server {holds}has been idle for {human(idle)}"
        reason = f"idle for {human(idle)} (timeout {human(timeout)})"
        if alloc.gpus:
            reason += f", GPU utilization under {culling.gpu_threshold:g} %"
    else:
        text = f"This server {holds}has been running for {human(age)} (at most {human(culling.max_age)})"
        reason = f"older than the maximum age {human(culling.max_age)}"
    if warning is None:
        return Action(
            "warn",
            info,
            f"{text}; it stops in {human(culling.warn_before)}",
            culling.dry_run,
            age=not over_idle,
        )
    if now >= warning.stops_at:
        return Action("stop", info, reason, culling.dry_run)
    return Action("pending", info, reason, culling.dry_run)  # warned; the warning runs


class HubOps:
    """The hub process's team operations; one per hub (``HubOps.shared``)."""

    def __init__(
        self,
        ledger: GpuLedger,
        teams: Callable[[], TeamsConfig],
        *,
        lease_seconds: float = 180.0,
        stale_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        ledger.clock = clock  # leases expire on the same clock they were granted by
        self.teams = teams
        self.lease_seconds = lease_seconds
        self.stale_seconds = stale_seconds
        self.clock = clock
        self.states: dict[tuple[str, str], ServerState] = {}

    # ---- reports from single-user servers ---------------------------------------------------------------
    def state(self, user: str, server: str) -> ServerState:
        key = (user, server)
        st = self.states.get(key)
        if st is None:
            st = self.states[key] = ServerState(user, server)
        return st

    def report(
        self, user: str, server: str, body: dict[str, Any], team: str | None
    ) -> dict[str, Any]:
        """A server's activity report: remember it, renew its job leases; answer with its notifications."""
        now = self.clock()
        st = self.state(user, server)
        st.reported_at = now
        last = body.get("last_activity")
        if isinstance(last, (int, float)) and not isinstance(last, bool):
            st.last_activity = max(st.last_activity, min(float(last), now))
        working = body.get("working") or []
        st.working = [str(w) for w in working if isinstance(w, str)][:20]
        nxt = body.get("next_schedule")
        st.next_schedule = float(nxt) if isinstance(nxt, (int, float)) else None
        util = body.get("gpu_utilization")
        st.gpu_utilization = float(util) if isinstance(util, (int, float)) else None
        threshold = self._culling(team).gpu_threshold if team else 10.0
        if st.gpu_utilization is not None and st.gpu_utilization >= threshold:
            st.gpu_active_at = now
        if st.warning is not None and (
            st.working or (not st.warning.age and self._active_since(st, st.warning.at))
        ):
            st.warning = None  # used again since the warning (the max age is not reset by use)
        for lease in body.get("leases") or []:
            if isinstance(lease, str):
                self.renew(user, lease)
        return {"notifications": [st.warning.to_json()] if st.warning else []}

    def _active_since(self, st: ServerState, t: float) -> bool:
        return st.last_activity > t or st.kept_at > t or bool(st.working)

    def keep(self, user: str, server: str) -> None:
        """*Keep running*: the server counts as used now; its warning is withdrawn."""
        st = self.state(user, server)
        st.kept_at = self.clock()
        if st.warning is not None and not st.warning.age:  # the max age is not postponed
            st.warning = None

    def forget(self, user: str, server: str) -> None:
        self.states.pop((user, server), None)

    def _culling(self, team: str | None) -> Culling:
        t = self.teams().teams.get(team or "")
        return t.culling if t is not None else Culling()

    # ---- job leases --------------------------------------------------------------------------------------
    def lease(self, user: str, team: Team, gpus: int, name: str) -> tuple[Allocation, Any]:
        """Reserve ``gpus`` of ``team`` for a job; SpawnRefused (quota) with who holds them."""
        key = f"job/{uuid.uuid4().hex}"
        usage = self.ledger.reserve(
            JobClaim(user, team, gpus),  # type: ignore[arg-type]
            key,
            kind="job",
            name=name,
            expires=self.clock() + self.lease_seconds,
        )
        alloc = self.ledger.get(key)
        assert alloc is not None
        return alloc, usage

    def _own_lease(self, user: str, lease_id: str) -> Allocation:
        alloc = self.ledger.get(f"job/{lease_id}")
        if alloc is None or alloc.kind != "job" or alloc.user != user:
            raise KeyError(lease_id)
        return alloc

    def renew(self, user: str, lease_id: str) -> Allocation | None:
        try:
            alloc = self._own_lease(user, lease_id)
        except KeyError:
            return None
        alloc.expires = self.clock() + self.lease_seconds
        return alloc

    def end_lease(self, user: str, lease_id: str, reason: str = "") -> bool:
        try:
            alloc = self._own_lease(user, lease_id)
        except KeyError:
            return False
        self.ledger.release(alloc.key, "stop", reason or "job ended")
        return True

    # ---- what people see ---------------------------------------------------------------------------------
    def quota(self, teams: Iterable[Team]) -> list[dict[str, Any]]:
        out = []
        for t in teams:
            u = self.ledger.usage(t.name)
            out.append(
                {
                    "team": t.name,
                    "gpu_quota": t.gpu_quota,
                    "gpus": u.gpus,
                    "max_gpus_per_user": t.max_gpus_per_user,
                    "servers": u.servers,
                    "max_servers": t.max_servers,
                    "holders": [
                        {
                            "user": a.user,
                            "kind": a.kind,
                            "name": a.name,
                            "gpus": a.gpus,
                            "since": a.since,
                        }
                        for a in sorted(u.allocations, key=lambda a: (a.user, a.kind, a.name))
                    ],
                }
            )
        return out

    # ---- culling -----------------------------------------------------------------------------------------
    def cull_pass(self, servers: Iterable[ServerInfo]) -> list[Action]:
        """Decide for every running server; record warnings; return what to do (stops, warnings, dry runs).

        Stopping is the caller's (the hub handler stops through the hub); this marks the ledger entry so the
        release is recorded as a cull with its reason, and frees the GPUs at once.
        """
        now = self.clock()
        config = self.teams()
        actions: list[Action] = []
        for info in servers:
            a = info.alloc
            team = config.teams.get(a.team)
            if team is None or not team.culling.enabled:
                continue
            st = self.states.get((a.user, a.name))
            if st is not None and now - st.reported_at > self.stale_seconds:
                st = ServerState(
                    a.user,
                    a.name,
                    last_activity=st.last_activity,
                    kept_at=st.kept_at,
                    gpu_active_at=st.gpu_active_at,
                    warning=st.warning,
                )
            action = decide(now, info, st, team.culling)
            if action is None:
                own = self.states.get((a.user, a.name))
                if own is not None:
                    own.warning = None  # used again, or working: the warning is withdrawn
                continue
            if action.kind == "pending":
                continue
            actions.append(action)
            if action.dry_run:
                log.info(
                    "jupyter-mlops culler (dry run): would %s %s/%s: %s",
                    action.kind,
                    a.user,
                    a.name,
                    action.message,
                )
                continue
            if action.kind == "warn":
                self.state(a.user, a.name).warning = Warning_(
                    uuid.uuid4().hex[:12],
                    now,
                    now + team.culling.warn_before,
                    action.message,
                    age=action.age,
                )
                log.info("jupyter-mlops culler: warned %s/%s: %s", a.user, a.name, action.message)
            else:
                self.ledger.release(a.key, "cull", action.message)
                self.forget(a.user, a.name)
                log.info("jupyter-mlops culler: stopping %s/%s: %s", a.user, a.name, action.message)
        return actions


def refusal_json(error: SpawnRefused) -> dict[str, Any]:
    return {"error_code": "RESOURCE_EXHAUSTED", "message": error.message}


__all__ = ["Action", "HubOps", "JobClaim", "ServerInfo", "ServerState", "decide", "human"]
