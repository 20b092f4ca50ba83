"""Spawn policy: what a user may start, and the team GPU ledger that makes quotas atomic.

Pure Python with no JupyterHub or Kubernetes imports, so the CLI, the benchmark and the spawner share one
implementation. The ledger relies on the hub being one asyncio process: ``GpuLedger.reserve`` checks and records
in one synchronous step, so no other spawn can interleave between the check and the reservation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .teams import Image, Size, Team, TeamsConfig

#: the profile slug of the admin-enabled free-text image
CUSTOM_PROFILE = "custom"
#: every key a spawn request may carry (KubeSpawner's flat user_options format)
OPTION_KEYS = ("profile", "team", "size", "gpus", "image--unlisted-choice")
#: pod annotations that let a restarted hub rebuild the ledger from running pods
ANNOTATION_TEAM = "mlops.jupyter.org/team"
ANNOTATION_GPUS = "mlops.jupyter.org/gpus"
ANNOTATION_USER = "mlops.jupyter.org/user"
ANNOTATION_PROFILE = "mlops.jupyter.org/profile"


class SpawnRefused(Exception):
    """A spawn request that policy or quota refuses; ``reason`` is "options", "image", "gpus", "team" or "quota"."""

    def __init__(self, message: str, reason: str = "options"):
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class SpawnPlan:
    """Everything policy decided for one spawn; the spawner turns it into traits, the ledger into a reservation."""

    user: str
    team: Team
    profile: str
    image: str
    image_display: str
    gpus: int
    size: Size
    custom: bool = False

    def summary(self) -> str:
        gpu = f", {self.gpus} GPU{'s' if self.gpus != 1 else ''}" if self.gpus else ""
        return f"{self.image_display} ({self.image}) on {self.size.cpu:g} CPU / {self.size.memory}{gpu}, team {self.team.name}"


def _gpu_count(value: Any) -> int:
    if isinstance(value, bool):
        raise SpawnRefused(f"gpus must be a whole number, got {value!r}", "gpus")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        n = int(value.strip())
    else:
        raise SpawnRefused(f"gpus must be a whole number, got {value!r}", "gpus")
    if n < 0:
        raise SpawnRefused(f"gpus must not be negative, got {n}", "gpus")
    return n


def plan_spawn(
    config: TeamsConfig, user: str, groups: Iterable[str], options: Mapping[str, Any] | None
) -> SpawnPlan:
    """Validate a spawn request against the user's teams; raise :class:`SpawnRefused` with a message for the user.

    ``options`` is what the form or the REST body produced (``user_options``); nothing in it is trusted.
    """
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        raise SpawnRefused("spawn options must be a JSON object")
    unknown = sorted(str(k) for k in options if k not in OPTION_KEYS)
    if unknown:
        raise SpawnRefused(
            f"unknown spawn options: {', '.join(unknown)} (allowed: {', '.join(OPTION_KEYS)})"
        )
    for key in ("profile", "team", "size"):
        if key in options and options[key] is not None and not isinstance(options[key], str):
            raise SpawnRefused(f"{key} must be a string, got {options[key]!r}")

    teams = config.teams_for_groups(list(groups))
    if not teams:
        raise SpawnRefused(
            f"{user} is in no team: none of their groups is listed in teams.yaml; ask an admin",
            "team",
        )

    offered = [i for t in teams for i in t.images]
    profile = options.get("profile") or None
    if profile is None:
        profile = config.default_image if config.default_image in offered else offered[0]

    custom_text = options.get("image--unlisted-choice")
    if profile == CUSTOM_PROFILE:
        candidates = [t for t in teams if t.custom_images]
        if not candidates:
            raise SpawnRefused(f"custom images are not enabled for {user}'s teams", "image")
        if not isinstance(custom_text, str) or not custom_text.strip():
            raise SpawnRefused(
                "a custom image needs an image reference (image--unlisted-choice)", "image"
            )
        ref = custom_text.strip()
        if not config.custom_images.allows(ref):
            pattern = config.custom_images.pattern.pattern if config.custom_images.pattern else ""
            raise SpawnRefused(
                f"custom image {ref!r} does not match the allowed pattern {pattern}", "image"
            )
        image: Image | None = None
        gpu_capable = config.custom_images.gpu
        image_ref, display = ref, config.custom_images.display_name
    else:
        if custom_text is not None:
            raise SpawnRefused(f"profile {profile!r} takes no free-text image", "image")
        if profile not in offered:
            names = ", ".join(t.name for t in teams)
            raise SpawnRefused(
                f"image {profile!r} is not offered to {user}'s teams ({names}); "
                f"choose one of: {', '.join(dict.fromkeys(offered))}",
                "image",
            )
        image = config.images[profile]
        candidates = [t for t in teams if profile in t.images]
        gpu_capable = image.gpu
        image_ref, display = image.image, image.display_name

    gpus = _gpu_count(options.get("gpus", 0)) if options.get("gpus") not in (None, "") else 0

    team_name = options.get("team") or None
    if team_name is not None:
        team = next((t for t in candidates if t.name == team_name), None)
        if team is None:
            raise SpawnRefused(
                f"team {team_name!r} is not one of {user}'s teams offering {profile!r} "
                f"({', '.join(t.name for t in candidates)})",
                "team",
            )
    else:
        # charge the first team that allows this many GPUs, so a user in two teams is not refused needlessly
        team = next((t for t in candidates if t.max_gpus_per_user >= gpus), candidates[0])

    if gpus and not gpu_capable:
        raise SpawnRefused(f"image {profile!r} is not GPU-capable; start it with 0 GPUs", "gpus")
    if gpus > team.max_gpus_per_user:
        raise SpawnRefused(
            f"team {team.name} allows at most {team.max_gpus_per_user} GPU"
            f"{'s' if team.max_gpus_per_user != 1 else ''} per user; {gpus} requested",
            "gpus",
        )

    size_id = options.get("size") or None
    if size_id is None:
        size_id = config.default_size if config.default_size in team.sizes else team.sizes[0]
    if size_id not in team.sizes:
        raise SpawnRefused(
            f"size {size_id!r} is not offered to team {team.name} "
            f"(choose one of: {', '.join(team.sizes)})",
            "options",
        )
    return SpawnPlan(
        user=user,
        team=team,
        profile=profile,
        image=image_ref,
        image_display=display,
        gpus=gpus,
        size=config.sizes[size_id],
        custom=profile == CUSTOM_PROFILE,
    )


# --------------------------------------------------------------------------------------------------------------
# the ledger


@dataclass
class Allocation:
    """One server or job that holds (or is about to hold) a team's GPUs.

    ``adopted``: learned from a pod, not a spawn. ``kind`` is "notebook" (a server; ``name`` its server name,
    "" for the default one) or "job" (a training job's lease; ``name`` the job's name, ``expires`` the
    ``time.time()`` after which the lease lapses unless renewed, so a dead server's jobs free their GPUs).
    """

    key: str
    team: str
    user: str
    gpus: int
    adopted: bool = False
    kind: str = "notebook"
    name: str = ""
    expires: float | None = None
    since: float = field(default_factory=time.time)

    def label(self) -> str:
        """How the holder is named in messages: "notebook", "notebook gpu-box" or "job train-ddp"."""
        return f"{self.kind} {self.name}".strip()


@dataclass
class TeamUsage:
    team: str
    gpus: int = 0
    servers: int = 0
    holders: dict[str, int] = field(default_factory=dict)  # user -> GPUs, only users holding GPUs
    allocations: list[Allocation] = field(default_factory=list)  # those holding GPUs

    def add(self, alloc: Allocation) -> None:
        if alloc.kind == "notebook":
            self.servers += 1
        if alloc.gpus:
            self.gpus += alloc.gpus
            self.holders[alloc.user] = self.holders.get(alloc.user, 0) + alloc.gpus
            self.allocations.append(alloc)

    def holders_text(self) -> str:
        """Who holds the team's GPUs, with what: "alice (notebook, 2), bob (job train-ddp, 2)"."""
        items = sorted(self.allocations, key=lambda a: (a.user, a.kind, a.name))
        return ", ".join(f"{a.user} ({a.label()}, {a.gpus})" for a in items) or "nobody"


class LedgerListener(Protocol):
    """Told of every allocation that starts or ends (the usage history, :mod:`.usage`)."""

    def started(self, alloc: Allocation, adopted: bool) -> None: ...

    def ended(self, alloc: Allocation, event: str, reason: str) -> None: ...


class GpuLedger:
    """Who holds which team's GPUs and servers, pending and running alike, and which jobs lease GPUs.

    Keys are pod keys (``namespace/pod``) for servers and ``job/<id>`` for job leases. Reservations are made by
    spawns before their pod exists and released when the server stops or fails; ``adopt_pods`` adds pods this
    process did not start (after a hub restart); job leases lapse at their ``expires`` unless renewed.
    """

    def __init__(self, listener: LedgerListener | None = None) -> None:
        #: the time source of lease expiry (HubOps sets its own: tests script time)
        self.clock = time.time
        self._by_key: dict[str, Allocation] = {}
        self._by_team: dict[str, dict[str, Allocation]] = {}
        self._end_reasons: dict[str, tuple[str, str]] = {}
        self.listener = listener

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> Allocation | None:
        return self._by_key.get(key)

    def allocations(self) -> list[Allocation]:
        return list(self._by_key.values())

    def _add(self, alloc: Allocation, adopted: bool = False) -> None:
        self.release(alloc.key)
        self._by_key[alloc.key] = alloc
        self._by_team.setdefault(alloc.team, {})[alloc.key] = alloc
        if self.listener is not None:
            self.listener.started(alloc, adopted)

    def mark_end(self, key: str, event: str, reason: str) -> None:
        """How the next release of ``key`` is recorded, e.g. ("cull", "idle for 60 min") before a culler's stop."""
        self._end_reasons[key] = (event, reason)

    def release(self, key: str, event: str = "stop", reason: str = "") -> Allocation | None:
        alloc = self._by_key.pop(key, None)
        marked = self._end_reasons.pop(key, None)
        if alloc is not None:
            self._by_team.get(alloc.team, {}).pop(key, None)
            if self.listener is not None:
                event, reason = marked or (event, reason)
                self.listener.ended(alloc, event, reason)
        return alloc

    def expire(self, now: float | None = None) -> list[Allocation]:
        """Drop job leases whose time is up (their server stopped renewing them)."""
        now = self.clock() if now is None else now
        gone = [a for a in self._by_key.values() if a.expires is not None and a.expires < now]
        for a in gone:
            self.release(a.key, "expired", "lease not renewed: its server stopped reporting")
        return gone

    def usage(self, team: str, exclude: str | None = None) -> TeamUsage:
        self.expire()
        usage = TeamUsage(team)
        for key, a in self._by_team.get(team, {}).items():
            if key != exclude:
                usage.add(a)
        return usage

    def reserve(
        self,
        plan: SpawnPlan,
        key: str,
        *,
        kind: str = "notebook",
        name: str = "",
        expires: float | None = None,
    ) -> TeamUsage:
        """Check the team's quota, server limit and the user's GPU maximum, and record the reservation.

        Synchronous on purpose: with no ``await`` between check and record, concurrent spawns in the hub's event
        loop are serialised here and can never over-allocate. Returns the team's usage after the reservation.
        Jobs (``kind="job"``) count against the team's GPU quota only: not its server limit, nor the per-user
        maximum of a notebook server.
        """
        team = plan.team
        usage = self.usage(team.name, exclude=key)
        if (
            kind == "notebook"
            and team.max_servers is not None
            and usage.servers + 1 > team.max_servers
        ):
            raise SpawnRefused(
                f"team {team.name}: {usage.servers} of {team.max_servers} servers running; "
                f"stop one before starting another",
                "quota",
            )
        if plan.gpus:
            mine = sum(
                a.gpus for a in usage.allocations if a.user == plan.user and a.kind == "notebook"
            )
            if kind == "notebook" and mine + plan.gpus > team.max_gpus_per_user:
                raise SpawnRefused(
                    f"team {team.name}: {plan.user} already uses {mine} GPU"
                    f"{'s' if mine != 1 else ''} on other servers; the per-user maximum is "
                    f"{team.max_gpus_per_user}, {plan.gpus} more requested",
                    "quota",
                )
            if usage.gpus + plan.gpus > team.gpu_quota:
                what = f" for job {name}" if kind == "job" else ""
                raise SpawnRefused(
                    f"team {team.name}: {usage.gpus} of {team.gpu_quota} GPUs in use by "
                    f"{usage.holders_text()}; {plan.gpus} more requested by {plan.user}{what}",
                    "quota",
                )
        alloc = Allocation(
            key, team.name, plan.user, plan.gpus, kind=kind, name=name, expires=expires
        )
        self._add(alloc)
        usage.add(alloc)
        return usage

    def adopt_pods(self, pods: Mapping[str, Mapping[str, Any]]) -> None:
        """Bring the ledger in line with the pods Kubernetes reports (the shared pod reflector's cache).

        Adds live pods that carry our annotations and are not in the ledger; drops adopted entries whose pod is
        gone. Spawn reservations and job leases are left alone: their pod may not exist yet, or they have none.
        """
        for key, alloc in list(self._by_key.items()):
            if alloc.adopted and _is_gone(pods.get(key)):
                self.release(key)
        for key, pod in pods.items():
            if key in self._by_key or _is_gone(pod):
                continue
            ann = pod.get("metadata", {}).get("annotations") or {}
            team = ann.get(ANNOTATION_TEAM)
            if not team:
                continue
            try:
                gpus = int(ann.get(ANNOTATION_GPUS, "0"))
            except ValueError:
                gpus = 0
            user = ann.get(ANNOTATION_USER) or ann.get("hub.jupyter.org/username") or "?"
            name = ann.get("hub.jupyter.org/servername") or ""
            self._add(Allocation(key, team, user, gpus, adopted=True, name=name), adopted=True)


def _is_gone(pod: Mapping[str, Any] | None) -> bool:
    if pod is None:
        return True
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return True
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
