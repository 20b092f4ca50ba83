"""``HubRunsService``: the ends of this user's runs on the hub's tracking service, told here.

On a hub-spawned team server, kernels, scripts, training jobs and the official ``mlflow``
client log straight to the hub's tracking service (the spawner points
``JUPYTER_MLOPS_TRACKING_URI``/``MLFLOW_TRACKING_URI`` there), so this server's own write
path never sees those runs end. Every ``poll_interval`` this service asks the service, as
the server's user, for that user's runs that ended since its last look (``runs/search``
over the experiments the user sees, filtered on ``attributes.user_id`` and
``attributes.end_time``) and publishes each end once as a run event: the notification
service makes it a JupyterLab notification (and the user's e-mails and webhooks).

Polling, not watching the relayed ``runs/update``: it sees every way a run ends (a kernel,
a job's pod, the service's heartbeat reaper), whichever client ended it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import OrderedDict
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Float, Unicode, default

from ..events import run_end
from ..services import Service
from ..tracking.clock import now_ms

#: Ends are looked for this far before the last look (clock differences between the
#: machines that end runs and this one; the ends already told are remembered).
OVERLAP_MS = 120_000
#: How many told run ends are remembered.
REMEMBERED = 10_000
#: Experiments per ``runs/search`` call.
EXPERIMENTS_PER_SEARCH = 500


def default_tracking_url() -> str:
    """The hub's tracking service, if this server runs under a hub that pointed it there."""
    uri = os.environ.get("JUPYTER_MLOPS_TRACKING_URI", "")
    if os.environ.get("JUPYTERHUB_API_TOKEN") and uri.startswith(("http://", "https://")):
        return uri
    return ""


def _quoted(value: str) -> str:
    """A string literal of MLflow's search grammar."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class HubRunsService(Service):
    """Tells the ends of the user's runs on the hub's tracking service (a no-op elsewhere)."""

    poll_interval = Float(
        config=True,
        help="""Seconds between looks for the user's ended runs on the hub's tracking service,
        e.g. 15 (default: $JUPYTER_MLOPS_HUB_RUNS_INTERVAL, else 15). A run's notification comes
        at most this long after it ended.""",
    )
    tracking_url = Unicode(
        config=True,
        help="""The hub's tracking service (its ``.../mlops`` URL), e.g.
        http://proxy-public/services/mlops-tracking/mlops. Default: ``MLOpsApp.hub_tracking_url``
        (the spawner's $JUPYTER_MLOPS_TRACKING_URI under JupyterHub). Empty: nothing to watch.""",
    )

    @default("poll_interval")
    def _default_interval(self) -> float:
        return float(os.environ.get("JUPYTER_MLOPS_HUB_RUNS_INTERVAL", "15"))

    @default("tracking_url")
    def _default_url(self) -> str:
        url = getattr(self.parent, "hub_tracking_url", None)
        return default_tracking_url() if url is None else str(url)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.user = os.environ.get("JUPYTERHUB_USER", "")
        self._task: asyncio.Task[Any] | None = None
        self._told: OrderedDict[str, str] = OrderedDict()
        #: Ends before this (epoch ms: when the service started) are not told.
        self._started = 0
        #: When the last look began (epoch ms).
        self._since = 0
        #: The names of the experiments the user sees, by id (from the last look).
        self._experiments: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.tracking_url and self.token and self.user)

    async def start(self) -> None:
        if not self.enabled:
            return
        self._started = self._since = now_ms()
        self._task = asyncio.ensure_future(self._loop())
        self.log.info(
            "jupyter-mlops: telling %s's run ends on %s (every %g s)",
            self.user,
            self.tracking_url,
            self.poll_interval,
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _loop(self) -> None:
        failing = ""
        while True:
            await asyncio.sleep(max(0.2, self.poll_interval))
            try:
                await self.poll()
                failing = ""
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the service restarting: try again next time
                if str(e) != failing:  # once per kind of trouble, not every few seconds
                    self.log.warning("jupyter-mlops: looking for ended runs on the hub: %s", e)
                failing = str(e)

    async def poll(self) -> int:
        """One look: publish the ends not told yet; how many were told."""
        began = now_ms()
        since = max(self._started, self._since - OVERLAP_MS)
        told = 0
        self._experiments = await self._experiment_names()
        experiment_ids = list(self._experiments)
        for i in range(0, len(experiment_ids), EXPERIMENTS_PER_SEARCH):
            for run in await self._ended(experiment_ids[i : i + EXPERIMENTS_PER_SEARCH], since):
                told += self._tell(run.get("info") or {})
        self._since = began
        return told

    def _tell(self, info: dict[str, Any]) -> int:
        run_id, status = str(info.get("run_id", "")), str(info.get("status", ""))
        if info.get("user_id") != self.user or self._told.get(run_id) == status:
            return 0
        made_here = getattr(self.store, "made_here", None)
        if made_here is not None and made_here(run_id):
            return 0  # a run of this server's services: they tell its end (server/team_store.py)
        event = run_end(
            run_id,
            status,
            name=str(info.get("run_name") or ""),
            experiment_id=str(info.get("experiment_id", "")),
            start_time=info.get("start_time"),
            end_time=info.get("end_time"),
            where=self.tracking_url,
            experiment_name=self._experiments.get(str(info.get("experiment_id", "")), ""),
        )
        if event is None:
            return 0
        self._told[run_id] = status
        while len(self._told) > REMEMBERED:
            self._told.popitem(last=False)
        self.publish(event)
        return 1

    async def _experiment_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        token = None
        while True:
            body: dict[str, Any] = {"max_results": 1000}
            if token:
                body["page_token"] = token
            page = await self._call("api/2.0/mlflow/experiments/search", body)
            names.update(
                (str(e["experiment_id"]), str(e.get("name", "")))
                for e in page.get("experiments", [])
            )
            token = page.get("next_page_token")
            if not token:
                return names

    async def _ended(self, experiment_ids: list[str], since: int) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        token = None
        while True:
            body: dict[str, Any] = {
                "experiment_ids": experiment_ids,
                "filter": f"attributes.user_id = {_quoted(self.user)} "
                f"AND attributes.end_time >= {int(since)}",
                "max_results": 1000,
            }
            if token:
                body["page_token"] = token
            page = await self._call("api/2.0/mlflow/runs/search", body)
            runs += page.get("runs", [])
            token = page.get("next_page_token")
            if not token:
                return runs

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the tracking service as this server's user; its JSON answer."""
        try:
            response = await AsyncHTTPClient().fetch(
                f"{self.tracking_url.rstrip('/')}/{path}",
                method="POST",
                headers={
                    "Authorization": f"token {self.token}",
                    "Content-Type": "application/json",
                },
                body=json.dumps(body),
                request_timeout=60,
            )
        except HTTPClientError as e:
            text = (e.response.body or b"")[:300].decode(errors="replace") if e.response else ""
            raise RuntimeError(f"{path}: {e} {text}".strip()) from None
        answer = json.loads(response.body or b"{}")
        return answer if isinstance(answer, dict) else {}
