"""``HubAgentService``: this server's link to the hub's team operations (a no-op outside a team hub).

Every ``report_interval`` it posts the server's activity to ``<hub api>/mlops/servers/<user>/<name>/activity``:
the last activity (kernels, terminals, HTTP: jupyter_server's own ``last_activity``), what is still working
(busy kernels, pipeline runs, training jobs, local deployments; the next schedule), the GPUs' utilization
(NVML) and the job leases to renew. The hub answers with this server's notifications (a culling warning),
which go to the notification service with a *Keep running* action. Training jobs that claim GPUs reserve them
in the team's quota first (``TrainingService.admission``) and free them when they end.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Float, Unicode, default

from ..services import Service
from ..tracking.errors import RESOURCE_EXHAUSTED, TrackingError
from .nvml import GpuProbe

if TYPE_CHECKING:
    from ..notifications.service import NotificationService


class HubAgentService(Service):
    """Reports to the hub and relays its quota and warnings (only on a team hub's server)."""

    report_interval = Float(
        config=True,
        help="""Seconds between activity reports to the hub, e.g. 60 (default: $JUPYTER_MLOPS_HUB_REPORT_INTERVAL,
        else 60). The culler's warning reaches JupyterLab at the next report, so keep it well under the
        teams' warn_before.""",
    )
    hub_api_url = Unicode(
        config=True,
        help="""The hub's API URL, e.g. http://hub:8081/hub/api (default: $JUPYTERHUB_API_URL, which
        JupyterHub gives its servers). Empty: not a hub server, the agent does nothing.""",
    )
    team = Unicode(
        config=True,
        help="""The team whose quota this server's jobs use, e.g. vision (default: $JUPYTER_MLOPS_TEAM, which
        TeamSpawner sets).""",
    )

    @default("report_interval")
    def _default_interval(self) -> float:
        return float(os.environ.get("JUPYTER_MLOPS_HUB_REPORT_INTERVAL", "60"))

    @default("hub_api_url")
    def _default_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "")

    @default("team")
    def _default_team(self) -> str:
        return os.environ.get("JUPYTER_MLOPS_TEAM", "")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.user = os.environ.get("JUPYTERHUB_USER", "")
        self.server_name = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
        self.gpu = GpuProbe()
        self.leases: set[str] = set()
        self._task: asyncio.Task[Any] | None = None
        self._chained: Any = None
        self.last_report: dict[str, Any] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.hub_api_url and self.token and self.user and self.team)

    # ---- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.enabled:
            return
        training = getattr(self.parent, "training_service", None)
        if training is not None:
            self._chained = training.admission
            training.admission = self.admit
        self._task = asyncio.ensure_future(self._loop())
        self.log.info(
            "jupyter-mlops: reporting to the hub every %g s (team %s)",
            self.report_interval,
            self.team,
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.report()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the hub restarting: try again next time
                self.log.warning("jupyter-mlops: activity report to the hub failed: %s", e)
            await asyncio.sleep(max(0.2, self.report_interval))

    # ---- talking to the hub ---------------------------------------------------------------------------------
    def _server_path(self) -> str:
        path = f"mlops/servers/{quote(self.user, safe='')}"
        return path + (f"/{quote(self.server_name, safe='')}" if self.server_name else "")

    async def hub(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the hub's API with this server's token; (status, JSON answer)."""
        request = HTTPRequest(
            f"{self.hub_api_url.rstrip('/')}/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=None if body is None and method in ("GET", "DELETE") else json.dumps(body or {}),
            request_timeout=30,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            if e.response is None:
                raise
            response = e.response
        text = response.body or b""
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = {"message": text.decode(errors="replace")[:500]}
        return response.code, data

    async def report(self) -> dict[str, Any]:
        body = await self.collect()
        self.last_report = body
        status, answer = await self.hub("POST", self._server_path() + "/activity", body)
        if status != 200:
            raise RuntimeError(f"hub answered {status}: {answer}")
        self._notify((answer or {}).get("notifications") or [])
        return answer or {}

    #: The hub's last answer carried a culling warning not answered with *Keep running*:
    #: if the server stops now, the culler stopped it (what ends with it was culled).
    cull_warned = False

    def _notify(self, items: list[dict[str, Any]]) -> None:
        self.cull_warned = bool(items)
        center: NotificationService | None = getattr(self.parent, "notification_service", None)
        if center is None:
            return
        for item in items:
            center.post(
                str(item.get("message", "")),
                type=str(item.get("type", "warning")),
                source="culler",
                key=f"culler-{item.get('id')}",
                actions=[a for a in item.get("actions") or [] if isinstance(a, dict)],
                on_action=self._on_action,
            )

    async def _on_action(self, action: str) -> Any:
        if action == "keep":
            return await self.keep()
        return None

    async def keep(self) -> dict[str, Any]:
        status, answer = await self.hub("POST", self._server_path() + "/keep", {})
        if status != 200:
            raise TrackingError(f"the hub refused: {(answer or {}).get('message')}", status=502)
        self.cull_warned = False
        return answer or {}

    async def quota(self) -> dict[str, Any]:
        """The team's GPU use for the status bar (``enabled: false`` off a team hub)."""
        if not self.enabled:
            return {"enabled": False, "teams": []}
        status, answer = await self.hub("GET", f"mlops/quota?team={quote(self.team)}")
        if status != 200:
            raise TrackingError(
                f"the hub refused the quota request ({status}): {(answer or {}).get('message')}",
                status=502,
            )
        return {"enabled": True, "team": self.team, **(answer or {})}

    # ---- sharing this server (JupyterHub shares, granted by the hub with the team rule) ---------------------
    def _shares_path(self) -> str:
        return self._server_path().replace("mlops/servers/", "mlops/shares/", 1)

    async def _shares_call(self, method: str, body: Any = None, query: str = "") -> dict[str, Any]:
        if not self.enabled:
            raise TrackingError(
                "Sharing needs a server started by a team hub (JupyterHub with jupyter-mlops' TeamSpawner).",
                "FEATURE_DISABLED",
                status=409,
            )
        status, answer = await self.hub(method, self._shares_path() + query, body)
        if status in (200, 201):
            return dict(answer or {})
        message = (answer or {}).get("message") or f"the hub answered {status}"
        if status in (400, 403, 404):
            code = {400: "INVALID_PARAMETER_VALUE", 403: "PERMISSION_DENIED"}.get(
                status, "RESOURCE_DOES_NOT_EXIST"
            )
            raise TrackingError(str(message), code)
        raise TrackingError(f"the hub refused the share request ({status}): {message}", status=502)

    async def shares(self) -> dict[str, Any]:
        """Who this server is shared with, and with whom it may be (``enabled: false`` off a team hub)."""
        if not self.enabled:
            return {"enabled": False, "shares": [], "candidates": []}
        return {"enabled": True, **await self._shares_call("GET")}

    async def share(self, user: str) -> dict[str, Any]:
        """Share this server with ``user`` (a teammate; the hub refuses anyone else)."""
        return {"enabled": True, **await self._shares_call("POST", {"user": user})}

    async def unshare(self, user: str) -> dict[str, Any]:
        """Revoke ``user``'s share of this server."""
        # (tornado sends no body with a DELETE)
        query = f"?user={quote(user, safe='')}"
        return {"enabled": True, **await self._shares_call("DELETE", query=query)}

    # ---- job admission --------------------------------------------------------------------------------------
    async def admit(
        self, job: Mapping[str, Any], target: str
    ) -> Callable[[], Awaitable[None]] | None:
        """``TrainingService.admission``: reserve the job's GPUs (``nodes x resources.gpu``) in the team quota;
        returns the release the service calls when the job ends. A refusal is a 429 with the hub's message
        ("team vision: 4 of 4 GPUs in use by ...")."""
        if self._chained is not None:  # an admin's own admission hook runs first
            result = self._chained(job, target)
            if inspect.isawaitable(result):
                await result
        try:
            gpus = int((job.get("resources") or {}).get("gpu") or 0) * int(job.get("nodes") or 1)
        except (TypeError, ValueError):
            gpus = 0
        if gpus <= 0:
            return None
        status, answer = await self.hub(
            "POST", "mlops/leases", {"gpus": gpus, "name": str(job.get("name")), "team": self.team}
        )
        if status == 403 and (answer or {}).get("error_code") == RESOURCE_EXHAUSTED:
            raise TrackingError(answer["message"], RESOURCE_EXHAUSTED)
        if status != 201:
            raise TrackingError(
                f"the hub refused the job's GPUs ({status}): {(answer or {}).get('message')}",
                status=403 if status == 403 else 502,
            )
        lease = str(answer["id"])
        self.leases.add(lease)

        async def release() -> None:
            self.leases.discard(lease)
            with contextlib.suppress(Exception):
                await self.hub("DELETE", f"mlops/leases/{quote(lease)}")

        return release

    # ---- what the report says -------------------------------------------------------------------------------
    async def collect(self) -> dict[str, Any]:
        app = self.parent
        serverapp = getattr(app, "serverapp", None)
        last = 0.0
        web_app = getattr(serverapp, "web_app", None)
        if web_app is not None:
            with contextlib.suppress(Exception):
                last = web_app.last_activity().timestamp()
        working: list[str] = []
        km = getattr(serverapp, "kernel_manager", None)
        if km is not None:
            for kid in list(km.list_kernel_ids()):
                with contextlib.suppress(Exception):
                    if km.get_kernel(kid).execution_state == "busy":
                        working.append(f"kernel {kid[:8]} is busy")
        pipelines = getattr(app, "pipeline_service", None)
        for run_id in list(getattr(pipelines, "active", {}) or {}):
            working.append(f"pipeline run {run_id[:8]} is running")
        training = getattr(app, "training_service", None)
        for job_id in list(getattr(training, "active", {}) or {}):
            working.append(f"training job {job_id[:8]} is running")
        deployments = getattr(app, "deployment_service", None)
        local = getattr(
            deployments, "local", None
        )  # DeploymentService.local: this machine's target
        for name in list(getattr(local, "running", {}) or {}):
            working.append(f"deployment {name} is serving")
        next_schedule = None
        if pipelines is not None:
            with contextlib.suppress(Exception):
                rows = await asyncio.get_running_loop().run_in_executor(
                    None, pipelines.db.list_schedules
                )
                times = [
                    r["next_fire_time"]
                    for r in rows
                    if not r.get("paused") and r.get("next_fire_time")
                ]
                if times:
                    next_schedule = min(times) / 1000.0
        return {
            "team": self.team,
            "time": time.time(),
            "last_activity": last,
            "working": working,
            "next_schedule": next_schedule,
            "gpu_utilization": self.gpu.utilization(),
            "leases": sorted(self.leases),
        }
