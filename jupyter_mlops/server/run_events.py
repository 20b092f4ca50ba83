"""Tracked runs that end through this server's REST API, told on the app's event bus.

A kernel's ``mlflow.end_run()`` or ``mlops.end_run()`` over HTTP, the MLflow client of a script,
the UI's "mark as failed" all end a run with ``runs/update``; the request handlers see the store
through :class:`RunEndRelay`, which publishes one :class:`~jupyter_mlops.events.Event` per run that
reaches FINISHED, FAILED or KILLED. The services' own tracked runs (pipeline and job runs, their
steps) are ended on the store itself and told by their services. Runs the heartbeat reaper
kills are told by the app through :meth:`RunEndRelay.ended`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..events import RUN_OUTCOMES, Event, run_end

if TYPE_CHECKING:
    from ..tracking.entities import RunInfo
    from ..tracking.store import TrackingStore

#: How many ended runs are remembered, so that a run ended twice (a client retrying its
#: ``runs/update``) is told once.
REMEMBERED = 10_000


def run_event(info: RunInfo, reason: str = "") -> Event | None:
    """The event of a run that ended with ``info.status`` (None while it runs)."""
    return run_end(
        info.run_id,
        info.status,
        name=info.run_name,
        experiment_id=str(info.experiment_id),
        start_time=info.start_time,
        end_time=info.end_time,
        reason=reason,
    )


class RunEndRelay:
    """The tracking store as request handlers use it: every call goes to the store;
    ``update_run_info`` that ends a run also publishes the run's end."""

    def __init__(self, store: TrackingStore, publish: Callable[[Event], None]) -> None:
        self._store = store
        self._publish = publish
        self._told: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def update_run_info(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        info = self._store.update_run_info(
            run_id, status=status, end_time=end_time, run_name=run_name
        )
        if status is not None:
            self.ended(info)
        return info

    def ended(self, info: RunInfo, reason: str = "") -> None:
        """Publish ``info``'s end once per status (a run set RUNNING again is forgotten)."""
        with self._lock:
            if info.status not in RUN_OUTCOMES:
                self._told.pop(info.run_id, None)
                return
            if self._told.get(info.run_id) == info.status:
                return
            self._told[info.run_id] = info.status
            self._told.move_to_end(info.run_id)
            while len(self._told) > REMEMBERED:
                self._told.popitem(last=False)
        event = run_event(info, reason)
        if event is not None:
            self._publish(event)
