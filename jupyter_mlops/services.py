"""What a service is: a long-lived part of the server that ``MLOpsApp`` owns.

The app (``jupyter_mlops/server/app.py``) declares each service class as a traitlets
``Type`` trait (``c.MLOpsApp.pipeline_service_class``), builds it in
``initialize_settings`` as ``cls(store, root_dir, engine=..., parent=app, log=app.log)`` (so
``c.<ServiceClass>.<trait>`` configures it, e.g. ``c.PipelineService.parallelism``),
publishes it in the tornado settings (``mlops_<name>``) and as a typed attribute of the
app (``app.<name>``), awaits :meth:`Service.start` once the server runs and
:meth:`Service.stop` in its own stop hook. Handlers reach a service through the app and
hold no logic of their own.

This module sits outside ``server/`` so ``pipelines/``, ``jobs/`` and ``deployments/``
subclass it without importing the server; it imports nothing heavy.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from traitlets.config import LoggingConfigurable

from .events import Event, EventBus

if TYPE_CHECKING:
    from .tracking.store import TrackingStore


class Service(LoggingConfigurable):
    """Base of the app's services: the store and the server's root directory in,
    ``start()`` / ``stop()`` for the background work (timers, watchers, processes).

    ``store`` is where the service's tracked runs go; ``engine`` (default: the store's own,
    a SQL store's) is the database of the service's own records (queues, schedules, ranks).
    They differ on a hub team server, whose runs go to the hub's tracking service
    (``server/team_store.py``) while its records stay in the server's database.

    A subclass adds its options as traits with ``config=True`` and help text; the
    CLI and tests build one directly, the same way, without a server.
    """

    def __init__(
        self, store: TrackingStore, root_dir: str, *, engine: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.store = store
        #: The SQLAlchemy engine of the service's own records.
        self.engine: Any = engine if engine is not None else getattr(store, "engine", None)
        #: The directory user paths are relative to (the Jupyter server's root).
        self.root_dir = os.path.realpath(root_dir)
        #: Where the service says that something ended (the app gives every service its
        #: one bus; the notification service listens). Publishing never blocks.
        self.events = EventBus()

    def publish(self, event: Event) -> None:
        """Tell the bus that ``event`` happened (any thread; never raises)."""
        self.events.publish(event)

    def experiment_id(self, name: str) -> str:
        """The id of the experiment ``name``, created when missing (a concurrent creation
        by another process is taken as it is)."""
        from .tracking.errors import TrackingError

        exp = self.store.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        try:
            return str(self.store.create_experiment(name))
        except TrackingError:
            again = self.store.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)

    async def start(self) -> None:
        """Begin background work: re-adopt or fail what a stopped process left
        unfinished, start timers. Called once, after the server started: the
        environment the app exports for child processes (the server's URL and port)
        is final only now, not yet in ``__init__``."""

    async def stop(self) -> None:
        """End background work and release what the service holds (processes, threads).
        Called once, in the app's stop hook, before the store closes."""


def current_user() -> str:
    """The OS user the tracked runs of a service are created as ("" in containers without
    one: runs still work)."""
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name (containers)
        return ""
