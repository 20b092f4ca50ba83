"""``TeamStore``: where a hub team server's own services record their runs.

On a team server whose hub runs the hub-wide tracking service, the Runs panel reads that
service (``server/handlers/hub_relay.py``) and kernels log there. So the server's pipelines,
training jobs, MLflow project runs and deployments (which resolve models in the registry
beside this store: the hub's team registry) use it too, over REST as the server's user (its
``$JUPYTERHUB_API_TOKEN``): their runs show in the panel, the team reads them under the
service's rules, and the steps' and ranks' processes, which inherit the hub's URI from the
spawner, log into runs that exist there. The services' own records (queues, schedules,
ranks, deployments) stay in the server's database.

A hub without that service answers 404 for every path under it: the store then says the
service is not running (503 ``TEMPORARILY_UNAVAILABLE``, as the relay says when the service is
away) instead of MLflow's "no such endpoint".

The store remembers the runs it created, so ``hubagent.runs.HubRunsService`` does not tell
their ends a second time: the services tell them as pipeline, job and project events.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from ..client.rest_store import RestTrackingStore
from ..tracking.entities import Run
from ..tracking.errors import TrackingError

#: How many created runs are remembered.
REMEMBERED = 10_000
#: An endpoint every MLflow tracking server answers: asked when another one is missing.
PROBE = "experiments/search"


class TeamStore(RestTrackingStore):
    """The hub's tracking service (``uri``: its ``.../mlops``) as this server's services use it."""

    def __init__(self, uri: str, token: str, **kwargs: Any) -> None:
        super().__init__(uri, token=token or None, **kwargs)
        self._made: OrderedDict[str, None] = OrderedDict()
        self._made_lock = threading.Lock()

    def create_run(
        self,
        experiment_id: str,
        user_id: str = "",
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        run = super().create_run(experiment_id, user_id, start_time, tags, run_name, run_id)
        with self._made_lock:
            self._made[run.info.run_id] = None
            while len(self._made) > REMEMBERED:
                self._made.popitem(last=False)
        return run

    def made_here(self, run_id: str) -> bool:
        """Whether a service of this server created the run (since the server started)."""
        with self._made_lock:
            return run_id in self._made

    def _mlflow(self, method: str, endpoint: str, body: Any = None, params: Any = None) -> Any:
        try:
            return super()._mlflow(method, endpoint, body, params)
        except TrackingError as e:
            if e.error_code != "ENDPOINT_NOT_FOUND" or endpoint == PROBE or self._serves_mlflow():
                raise
            raise service_missing(self.base) from None

    def _serves_mlflow(self) -> bool:
        """Whether anything answers MLflow's API at the service's URL (then only the
        endpoint asked for is missing there)."""
        try:
            self._mlflow("GET", PROBE, params={"max_results": 1})
        except TrackingError as e:
            return e.error_code != "ENDPOINT_NOT_FOUND"
        return True


def service_missing(url: str) -> TrackingError:
    return TrackingError(
        f"The hub's tracking service at {url} is not running or not reachable: it answers 404 "
        "for MLflow's API. This server's pipelines, training jobs and project runs record their "
        "runs there (MLOpsApp.hub_tracking_url): ask the hub's admin whether the service runs "
        '(spawner/GUIDE.md §6), or set c.MLOpsApp.hub_tracking_url = "" to record them in this '
        "server's own store.",
        "TEMPORARILY_UNAVAILABLE",
    )
