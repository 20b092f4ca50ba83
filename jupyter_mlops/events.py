"""What the services tell the rest of the server when something the user started ends.

A tracked run, a pipeline run, a training job or a deployment's rollout ends (finished, failed,
killed, or stopped with a culled server): the service that saw it builds an :class:`Event` and
publishes it on the app's :class:`EventBus` (``Service.events``); subscribers (the notification
service: JupyterLab pop-ups, e-mail, webhooks) take it from there. Publishing never blocks and
never raises, so a slow or broken subscriber cannot hold up a run; subscribers may be called
from any thread and hand the work to their own loop.

This module imports nothing of ours: every part may publish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

#: What ended.
KINDS = ("run", "pipeline_run", "job", "deployment")
#: How it ended: ``succeeded`` (a run FINISHED, a pipeline or job SUCCEEDED, a rollout
#: done), ``failed``, ``killed`` (cancelled, or a run whose writer went silent), ``culled``
#: (stopped with the server it ran in, by the hub's idle culler).
OUTCOMES = ("succeeded", "failed", "killed", "culled")

#: A tracking run's status → outcome (MLflow's RunStatus).
RUN_OUTCOMES = {"FINISHED": "succeeded", "FAILED": "failed", "KILLED": "killed"}
#: A pipeline run's or training job's status → outcome.
WORK_OUTCOMES = {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELED": "killed"}

_LABELS = {
    "run": "Run",
    "pipeline_run": "Pipeline run",
    "job": "Training job",
    "deployment": "Deployment",
}
_VERBS = {
    ("run", "succeeded"): "finished",
    ("pipeline_run", "succeeded"): "succeeded",
    ("job", "succeeded"): "succeeded",
    ("deployment", "succeeded"): "is rolled out",
    ("deployment", "failed"): "failed",
    ("run", "killed"): "was killed",
}


def link_for(kind: str, item_id: str, experiment_id: str = "") -> str:
    """The ``#/...`` fragment JupyterLab opens the item at (``labextension/src/links.ts``)."""
    e = lambda s: quote(str(s), safe="")  # noqa: E731 - a one-word alias
    if kind == "run":
        return f"#/experiments/{e(experiment_id)}/runs/{e(item_id)}"
    if kind == "pipeline_run":
        return f"#/pipelines/runs/{e(item_id)}"
    if kind == "job":
        return f"#/jobs/{e(item_id)}"
    return f"#/deployments/{e(item_id)}"


@dataclass(frozen=True)
class Event:
    """Something the user started has ended."""

    kind: str  # one of KINDS
    outcome: str  # one of OUTCOMES
    id: str  # run id, pipeline run id, job id, deployment name
    name: str = ""  # what the user calls it (run name, pipeline, job name, deployment)
    status: str = ""  # the item's own final status (FAILED, CANCELED, READY, ...)
    reason: str = ""  # why, when it did not succeed
    experiment_id: str = ""
    pipeline: str = ""  # a pipeline run's pipeline name
    start_time: int | None = None  # epoch ms, when known: for "only runs longer than"
    end_time: int = field(default_factory=lambda: int(time.time() * 1000))
    #: Where the item lives when not in this server's store (a team server's runs on the hub's
    #: tracking service: its URL), with its experiment's name from there.
    where: str = ""
    experiment_name: str = ""

    @property
    def link(self) -> str:
        return link_for(self.kind, self.id, self.experiment_id)

    @property
    def failure(self) -> bool:
        return self.outcome != "succeeded"

    @property
    def name_or_id(self) -> str:
        return self.name or self.id

    def title(self) -> str:
        """``Run 'bright-owl-12' failed``."""
        verb = _VERBS.get((self.kind, self.outcome), self.outcome)
        if self.outcome == "culled":
            verb = "stopped: its server was culled"
        return f"{_LABELS.get(self.kind, self.kind)} '{self.name_or_id}' {verb}"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["where"]  # an internal URL (the hub's tracking service): not for webhooks
        out["link"] = self.link
        out["event"] = f"{self.kind}.{self.outcome}"
        return out


def run_end(
    run_id: str,
    status: str,
    name: str = "",
    experiment_id: str = "",
    start_time: int | None = None,
    end_time: int | None = None,
    reason: str = "",
    where: str = "",
    experiment_name: str = "",
) -> Event | None:
    """The event of a tracked run that ended with ``status`` (None while it runs)."""
    outcome = RUN_OUTCOMES.get(status)
    if outcome is None:
        return None
    event = Event(
        kind="run",
        outcome=outcome,
        id=run_id,
        name=name,
        status=status,
        reason=reason,
        experiment_id=experiment_id,
        start_time=start_time,
        where=where,
        experiment_name=experiment_name,
    )
    return replace(event, end_time=end_time) if end_time else event


Subscriber = Callable[[Event], Any]


class EventBus:
    """Subscribers called for every published event, in subscription order; thread-safe."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        #: Why events happen now (``"culled"`` while the hub's culler stops the server):
        #: services ending work because the server stops publish that outcome instead.
        self.stopping_reason: str | None = None

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(event)`` for each event; returns what unsubscribes it."""
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber; a subscriber's error is logged, never raised."""
        if self.stopping_reason and event.outcome in ("failed", "killed"):
            event = replace(event, outcome=self.stopping_reason)
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(event)
            except Exception:
                log.exception("jupyter-mlops: an event subscriber failed on %s", event.kind)
