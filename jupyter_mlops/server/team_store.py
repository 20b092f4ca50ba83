"""``TeamStore``: where a hub team server's own services record their runs.

On a team server whose hub runs the hub-wide tracking service, the Runs panel reads that
service (``server/handlers/hub_relay.py``) and kernels log there. So the server's pipelines,
training jobs, MLflow project runs and deployments (which resolve models in the registry
beside this store: the hub's team registry) use it too, over REST as the server's user (its
``$JUPYTERHUB_API_TOKEN``): their runs show in the panel, the team reads them under the
service's rules, and the steps' and ranks' processes, which inherit the hub's URI from the
spawner, log into runs that exist there. The services' own records (queues, schedules,
ranks, deployments) stay in the server's database.

The store remembers the runs it created, so ``hubagent.runs.HubRunsService`` does not tell
their ends a second time: the services tell them as pipeline, job and project events.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from ..client.rest_store import RestTrackingStore
from ..tracking.entities import Run

#: How many created runs are remembered.
REMEMBERED = 10_000


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
