"""Execution targets: where a service's work runs.

A service (pipelines, training jobs, deployments) validates and persists an *item* (a pipeline
run, a job, a deployment), then hands it to a :class:`Target`: ``local`` (this server) by default,
a cluster when configured. The target never sees the service: everything it may do to the
service's records goes through the :class:`TargetContext` the service passes in (record state
transitions, keep logs, create tracked child runs, run blocking store calls in a worker thread).

The life of an item::

    await target.validate(item)       # refuse before anything is stored (4xx, nothing to undo)
    ...the service stores the item (id known, status QUEUED)...
    await target.submit(item, ctx)     # start it; ctx.set_ref(item, ref); watch it to its end
    await target.cancel(item, ctx)     # ask it to stop; the watcher records the final state
    await target.logs(item, part=...)  # what the target serves of a running item's log
    await target.attach(item, ctx)     # after a restart: watch again (or end it: ctx)
    await target.stop()                # the server stops: stop watching (cluster work goes on)

Configuration is ``{name: {"kind": <kind>, ...settings}}`` per service; :func:`build_targets`
turns it into target instances through the registry of kinds (:data:`TARGET_KINDS`, plus the
``jupyter_mlops.targets`` entry-point group named ``<domain>.<kind>``), so a new backend is one
module with a :class:`Target` subclass and one registry line. Mistakes are reported at start-up
as :class:`TargetConfigError`, whose message names the target and the field.

This module is neutral: it imports only ``tracking.errors`` (no server, no pipelines), so every
service and every backend can use it.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from .tracking.errors import TrackingError, invalid

if TYPE_CHECKING:
    from .tracking.store import TrackingStore

__all__ = [
    "LOCAL",
    "TARGET_KINDS",
    "TARGET_NAME",
    "ConfigReader",
    "Target",
    "TargetConfigError",
    "TargetContext",
    "TargetItem",
    "Watchers",
    "build_targets",
    "register_target_kind",
    "unknown_target",
]

log = logging.getLogger(__name__)

#: The name of the target that runs work in this server's process (every service has one).
LOCAL = "local"
#: What a configured target may be called (it appears in URLs, run tags and executor ids).
TARGET_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$")

T = TypeVar("T")


class TargetItem(Protocol):
    """What every item handed to a target has (services add their own fields)."""

    #: The item's id in the service (a pipeline run id, a job id, a deployment id).
    id: str
    #: The target's name it runs on.
    target: str
    #: Where it lives on the target (KFP run id, Kubernetes object name, ``host:pid``), as
    #: recorded with :meth:`TargetContext.set_ref`; None before the target accepted it.
    ref: str | None


ItemT = TypeVar("ItemT", bound=TargetItem)


# -- configuration ---------------------------------------------------------------------------
class TargetConfigError(ValueError):
    """A configured target's settings are wrong; the message names the target and the field,
    e.g. ``kubeflow_targets['cluster'].endpoint: required``."""


class ConfigReader:
    """Reads one target's settings dict, each mistake a :class:`TargetConfigError` naming
    ``<where>.<field>``. Call :meth:`check_unknown` with every field the target knows."""

    def __init__(self, where: str, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            raise TargetConfigError(f"{where}: must be a dict of settings")
        self.where = where
        self.raw: Mapping[str, Any] = raw

    def error(self, key: str | None, message: str) -> TargetConfigError:
        return TargetConfigError(
            f"{self.where}.{key}: {message}" if key else f"{self.where}: {message}"
        )

    def check_unknown(self, known: Iterable[str]) -> None:
        known = set(known)
        unknown = sorted(set(self.raw) - known)
        if unknown:
            raise self.error(
                None,
                f"unknown setting(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}",
            )

    def text(
        self, key: str, *, required: bool = False, url: bool = False, default: str | None = None
    ) -> str | None:
        """A string setting (empty counts as missing); ``url``: must be http(s)."""
        v = self.raw.get(key)
        if v is None or v == "":
            if required:
                raise self.error(key, "required")
            return default
        if not isinstance(v, str):
            raise self.error(key, "must be a string")
        if url and not re.match(r"^https?://[^/\s]+", v):
            raise self.error(key, f"must be an http(s) URL, not {v!r}")
        return v

    def flag(self, key: str, default: bool) -> bool:
        v = self.raw.get(key, default)
        if not isinstance(v, bool):
            raise self.error(key, "must be true or false")
        return v

    def number(
        self,
        key: str,
        default: float,
        *,
        low: float = 0.0,
        high: float = 3600.0,
        what: str = "seconds",
    ) -> float:
        """A number in ``(low, high]``."""
        v = self.raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not low < v <= high:
            raise self.error(key, f"must be {what} between {low:g} and {high:g}")
        return float(v)

    def str_map(self, key: str, what: str = "name") -> dict[str, Any]:
        """A dict keyed by non-empty strings (values checked by the caller)."""
        v = self.raw.get(key) or {}
        if not isinstance(v, Mapping) or not all(isinstance(k, str) and k for k in v):
            raise self.error(key, f"must be a dict keyed by {what}")
        return dict(v)


# -- what a target may do ----------------------------------------------------------------------
class TargetContext(abc.ABC, Generic[ItemT]):
    """What a service lets its targets do with its items; one per service, passed to every
    target call that may change state. Targets keep no reference to the service itself.

    Services subclass it for their item type and may add what their targets need beyond this
    (the pipeline context adds per-step records); a target uses nothing else of the service.
    """

    #: The tracking store; use it only inside :meth:`call` (it blocks).
    store: TrackingStore
    #: The service's logger.
    log: logging.Logger

    @abc.abstractmethod
    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking function (store, database, files) in the service's worker thread,
        in order with the service's own writes; never block the event loop otherwise."""

    @abc.abstractmethod
    async def transition(
        self, item: ItemT, status: str | None, *, reason: str | None = None, **fields: Any
    ) -> bool:
        """Record that ``item`` moved to ``status`` (the service's vocabulary, e.g. RUNNING,
        SUCCEEDED, FAILED), with a human ``reason``; ``status`` None updates the reason (and
        ``fields``) only. Ending states also end the item's tracked run. Returns False, and
        changes nothing, once the item has ended (a late watcher cannot undo a cancel)."""

    @abc.abstractmethod
    async def set_ref(self, item: ItemT, ref: str) -> None:
        """Persist where ``item`` lives on the target (``item.ref`` too), so that
        :meth:`Target.attach` finds it after a restart."""

    @abc.abstractmethod
    async def append_log(self, item: ItemT, data: bytes, *, part: str | None = None) -> None:
        """Keep ``data`` at the end of the item's log (``part``: a step or replica name),
        where the service serves it once the target no longer can."""

    @abc.abstractmethod
    def create_child_run(
        self,
        item: ItemT,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """A tracked run under the item's own run (a step, a worker); its run id. Blocking:
        call it through :meth:`call`."""


CtxT = TypeVar("CtxT", bound="TargetContext[Any]")


# -- the target ------------------------------------------------------------------------------
class Target(abc.ABC, Generic[ItemT, CtxT]):
    """One place where a service's items run. Subclasses set :attr:`kind`, build themselves
    from their settings in :meth:`from_config`, and implement submit/attach/cancel/logs.

    Generic in the item type and in the context type the service passes (the service's own
    :class:`TargetContext` subclass), e.g. ``class KubeflowTarget(Target[PipelineRunItem,
    Context])``."""

    #: The registry key of this backend (``local``, ``kubeflow``, ``trainjob``, ...).
    kind: ClassVar[str]

    def __init__(self, name: str, display_name: str | None = None) -> None:
        self.name = name
        self.display_name = display_name or name
        #: The background tasks watching this target's items, by item id.
        self.watchers = Watchers(f"{self.kind} target {name!r}")

    @classmethod
    def from_config(cls, name: str, settings: ConfigReader) -> Target[ItemT, CtxT]:
        """Build a target from its settings (``kind`` already removed); raise
        :class:`TargetConfigError` through ``settings.error(field, ...)`` on mistakes."""
        raise NotImplementedError(f"{cls.__name__} cannot be configured")

    def describe(self) -> dict[str, Any]:
        """What the REST ``targets`` routes and the panels show; subclasses add their own
        keys (e.g. ``namespace``, ``ui_url``)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "kind": self.kind,
            "default": self.name == LOCAL,
        }

    def external_url(self, item: ItemT) -> str | None:
        """A link to the item in the target's own UI (KFP's run page), if it has one."""
        return None

    async def validate(self, item: ItemT) -> None:
        """Refuse (raise a 4xx :class:`TrackingError`) what this target cannot run, before the
        service stores anything. Default: accept."""

    @abc.abstractmethod
    async def submit(self, item: ItemT, ctx: CtxT) -> None:
        """Start the stored ``item`` here, record where it runs (``ctx.set_ref``) and keep
        recording its states until it ends (typically in a task of :attr:`watchers`). Raising
        means it did not start: the service ends it FAILED with the error's message."""

    @abc.abstractmethod
    async def attach(self, item: ItemT, ctx: CtxT) -> None:
        """Adopt an unfinished item again after a restart (``item.ref`` says where it is):
        watch it to its end, or end it through ``ctx`` when it is gone or never started."""

    @abc.abstractmethod
    async def cancel(self, item: ItemT, ctx: CtxT) -> None:
        """Ask the item's work to stop; returns once the target took the request. The final
        state (CANCELED) is recorded by whoever watches the item."""

    @abc.abstractmethod
    async def logs(self, item: ItemT, *, part: str | None = None) -> bytes | None:
        """The log the target holds right now for a running item (``part``: a step or replica;
        None: the whole item), or None when it has none (yet). Services serve slices and
        keep the copy appended through the context once the item ended."""

    async def wait(self, item_id: str) -> None:
        """Until this target no longer watches ``item_id`` (it ended, or the target stopped)."""
        await self.watchers.wait(item_id)

    async def stop(self) -> None:
        """The service stops: stop watching. Work on a cluster goes on (the next start
        attaches again); the local target interrupts its own work."""
        await self.watchers.stop()


class Watchers:
    """Background tasks of a target, one per item: started once, logged when they crash,
    cancelled together on :meth:`stop`."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def start(self, item_id: str, coro_fn: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any]:
        """Run ``coro_fn()`` for ``item_id`` unless a task for it is running already."""
        task = self.tasks.get(item_id)
        if task is not None and not task.done():
            return task
        task = asyncio.ensure_future(coro_fn())
        self.tasks[item_id] = task

        def done(t: asyncio.Task[Any]) -> None:
            if self.tasks.get(item_id) is t:
                del self.tasks[item_id]
            if not t.cancelled() and t.exception() is not None:
                log.error(
                    "jupyter-mlops: %s: watching %s failed",
                    self.owner,
                    item_id,
                    exc_info=t.exception(),
                )

        task.add_done_callback(done)
        return task

    def get(self, item_id: str) -> asyncio.Task[Any] | None:
        return self.tasks.get(item_id)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.tasks

    async def wait(self, item_id: str) -> None:
        task = self.tasks.get(item_id)
        if task is not None:
            await asyncio.wait([task])

    async def stop(self, timeout: float = 10.0) -> None:
        tasks = list(self.tasks.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


# -- the registry of kinds -----------------------------------------------------------------------
#: (domain, kind) → ``"module:Class"`` of the :class:`Target` subclass (imported when used):
#: the kinds a service's configuration may name (its ``local`` target is built by the service).
#: Domains: ``pipelines``, ``jobs``, ``deployments``. Third-party backends register through
#: :func:`register_target_kind` or the ``jupyter_mlops.targets`` entry-point group
#: (name ``<domain>.<kind>``, value ``module:Class``).
TARGET_KINDS: dict[tuple[str, str], str | type[Target[Any, Any]]] = {
    ("pipelines", "kubeflow"): "jupyter_mlops.pipelines.kubeflow.target:KubeflowTarget",
    ("jobs", "trainjob"): "jupyter_mlops.jobs.kube:TrainJobTarget",
    ("jobs", "pytorchjob"): "jupyter_mlops.jobs.kube:PyTorchJobTarget",
    ("jobs", "tfjob"): "jupyter_mlops.jobs.kube:TFJobTarget",
}


def register_target_kind(domain: str, kind: str, cls: str | type[Target[Any, Any]]) -> None:
    """Make ``kind`` configurable for ``domain``'s targets (``cls``: a class or
    ``"module:Class"``)."""
    TARGET_KINDS[(domain, kind)] = cls


def target_class(domain: str, kind: str) -> type[Target[Any, Any]] | None:
    """The class registered for ``kind`` (None: not known for this domain)."""
    ref = TARGET_KINDS.get((domain, kind))
    if ref is None:
        ref = _entry_point(domain, kind)
        if ref is None:
            return None
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        ref = getattr(importlib.import_module(module), attr)
        TARGET_KINDS[(domain, kind)] = ref
    return ref  # type: ignore[return-value]


def _entry_point(domain: str, kind: str) -> str | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="jupyter_mlops.targets"):
        if ep.name == f"{domain}.{kind}":
            return str(ep.value)
    return None


def kinds(domain: str) -> list[str]:
    """The kinds registered for ``domain`` (entry points not included)."""
    return sorted(k for d, k in TARGET_KINDS if d == domain)


def build_targets(
    domain: str,
    config: Mapping[Any, Any],
    where: str,
    default_kind: str | None = None,
) -> tuple[dict[str, Target[Any, Any]], dict[str, str]]:
    """Configured targets of one service: ``config`` is ``{name: {"kind": ..., ...}}``
    (``default_kind`` when an entry has no ``kind``), ``where`` the config's name for messages
    (``"kubeflow_targets"``). Returns (targets by name, errors by name): a target with a
    mistake is left out, and its error (naming target and field) kept so that submitting there
    can say why; log the errors at start-up."""
    targets: dict[str, Target[Any, Any]] = {}
    errors: dict[str, str] = {}
    for name, raw in config.items():
        here = f"{where}[{name!r}]"
        try:
            if not isinstance(name, str) or not TARGET_NAME.match(name) or name == LOCAL:
                raise TargetConfigError(
                    f"{here}: a target name is 1-32 lower-case letters, digits, '-' or '_' "
                    f"(and not {LOCAL!r})"
                )
            reader = ConfigReader(here, raw)
            kind = raw.get("kind", default_kind)
            if not isinstance(kind, str) or not kind:
                raise reader.error("kind", f"required; one of: {', '.join(kinds(domain))}")
            cls = target_class(domain, kind)
            if cls is None:
                raise reader.error(
                    "kind", f"unknown kind {kind!r}; known: {', '.join(kinds(domain))}"
                )
            settings = ConfigReader(here, {k: v for k, v in raw.items() if k != "kind"})
            targets[name] = cls.from_config(name, settings)
        except TargetConfigError as e:
            errors[str(name)] = str(e)
    return targets, errors


def unknown_target(name: str, targets: Iterable[str], errors: Mapping[str, str]) -> TrackingError:
    """The 400 for a request naming a target that is not there (misconfigured: why)."""
    if name in errors:
        return invalid(f"Target {name!r} is misconfigured: {errors[name]}")
    known = ", ".join(repr(n) for n in targets)
    return invalid(f"Unknown target {name!r}; configured targets: {known}.")
