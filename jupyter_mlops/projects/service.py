"""``ProjectService``: MLflow project runs started from JupyterLab (``api/v1/projects``).

The app builds it like its other services (``MLOpsApp.project_service``). It reads a
project for the form (entry points, typed parameters), starts runs in the server's
store with the command's output in a log file (read from an offset while it grows;
kept as the run's ``project.log`` artifact at the end), and cancels them. Paths are
relative to the server's root and never leave it; so do ``file://`` and archive URIs.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from collections.abc import Callable
from typing import Any

from traitlets import Unicode

from ..events import RUN_OUTCOMES, Event
from ..services import Service
from ..tracking.errors import TrackingError
from .runner import SubmittedRun, plan, resolve_experiment, start
from .spec import ProjectError

#: Largest part of a log one call returns.
MAX_LOG_BYTES = 1 << 20


class ProjectService(Service):
    """Runs of MLflow projects for the server's users."""

    runs_dir = Unicode(
        "",
        config=True,
        help="""Where the output of project runs is written while they run (one
        ``<run id>.log`` each; also kept as the run's ``project.log`` artifact). Default:
        ``<jupyter data dir>/mlops/projects/runs``. Example:
        ``c.ProjectService.runs_dir = "/scratch/mlops/project-runs"``.""",
    )

    default_env_manager = Unicode(
        "",
        config=True,
        help="""The environment manager of runs that do not name one: ``local``,
        ``virtualenv``, ``uv`` or ``conda``; empty follows the project (``python_env`` →
        uv if installed, else virtualenv). Example:
        ``c.ProjectService.default_env_manager = "local"``.""",
    )

    def __init__(self, store: Any, root_dir: str, **kwargs: Any) -> None:
        super().__init__(store, root_dir, **kwargs)
        self.runs: dict[str, SubmittedRun] = {}
        #: One task per run, telling the bus when it ends.
        self._watchers: set[asyncio.Task[None]] = set()

    def _runs_dir(self) -> str:
        if self.runs_dir:
            return self.runs_dir
        from ..client.uris import mlops_data_dir

        return os.path.join(mlops_data_dir(), "projects", "runs")

    async def stop(self) -> None:
        running = [r for r in self.runs.values() if not r.done]
        await asyncio.gather(*(asyncio.to_thread(r.cancel) for r in running))
        if self._watchers:  # the cancelled runs' ends are told
            await asyncio.wait(set(self._watchers), timeout=10)

    # -- URIs ----------------------------------------------------------------------------
    def resolve_uri(self, uri: str) -> str:
        """A URI the server may read: relative paths against the root; local paths,
        ``file://`` repositories and archives only inside it."""
        uri = (uri or "").strip()
        if not uri:
            raise ProjectError("'uri' is required: a project directory, git URL or archive")
        base, sep, sub = uri.partition("#")
        parsed = urllib.parse.urlparse(base)
        if parsed.scheme in ("http", "https", "ssh", "git") or base.startswith("git@"):
            return uri
        if parsed.scheme == "file":
            local = urllib.parse.unquote(parsed.netloc + parsed.path)
        elif not parsed.scheme:
            local = os.path.join(self.root_dir, base)
        else:
            raise ProjectError(f"{base}: unsupported URI scheme {parsed.scheme!r}")
        full = os.path.realpath(local)
        if os.path.commonpath([self.root_dir, full]) != self.root_dir:
            raise TrackingError(f"{base}: outside the server's root directory", "PERMISSION_DENIED")
        if parsed.scheme == "file":
            return "file://" + full + sep + sub
        return full + sep + sub

    # -- calls ---------------------------------------------------------------------------
    async def inspect(self, uri: str, version: str | None = None) -> dict[str, Any]:
        from .client import inspect

        return await asyncio.to_thread(inspect, self.resolve_uri(uri), version)

    async def submit(
        self,
        uri: str,
        entry_point: str = "main",
        parameters: dict[str, Any] | None = None,
        version: str | None = None,
        env_manager: str | None = None,
        experiment_name: str | None = None,
        experiment_id: str | None = None,
        run_name: str | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        resolved = self.resolve_uri(uri)
        manager = env_manager or self.default_env_manager or None
        os.makedirs(self._runs_dir(), exist_ok=True)

        def begin() -> SubmittedRun:
            p = plan(resolved, entry_point, parameters, version, manager, cwd=self.root_dir)
            try:
                exp = resolve_experiment(self.store, experiment_name, experiment_id)
                submitted = start(
                    p,
                    self.store,
                    self._tracking_uri(),
                    experiment_id=exp,
                    run_name=run_name,
                    log_dir=self._runs_dir(),
                    echo=lambda _line: None,
                    user=user,
                )
            except BaseException:
                p.discard()
                raise
            return submitted

        submitted = await asyncio.to_thread(begin)
        self.runs[submitted.run_id] = submitted
        task = asyncio.ensure_future(self._tell_end(submitted))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return self.describe(submitted)

    async def _tell_end(self, r: SubmittedRun) -> None:
        """Wait for the run's process (a thread waits), then publish how its run ended."""
        await asyncio.to_thread(r.wait)
        try:
            info = (await asyncio.to_thread(self.store.get_run, r.run_id)).info
        except TrackingError:  # deleted meanwhile: nothing to open
            return
        outcome = RUN_OUTCOMES.get(r.status)
        if outcome is not None:
            self.publish(
                Event(
                    kind="run",
                    outcome=outcome,
                    id=r.run_id,
                    name=info.run_name,
                    status=r.status,
                    experiment_id=str(info.experiment_id),
                    start_time=info.start_time,
                )
            )

    def _tracking_uri(self) -> str:
        return str(getattr(self.store, "uri", "") or os.environ.get("JUPYTER_MLOPS_TRACKING_URI"))

    def describe(self, r: SubmittedRun) -> dict[str, Any]:
        return {
            "run_id": r.run_id,
            "experiment_id": r.experiment_id,
            "status": r.status,
            "entry_point": r.plan.entry.name,
            "command": r.command,
            "env_manager": r.plan.manager,
            "error": r.error,
        }

    def get(self, run_id: str) -> SubmittedRun:
        r = self.runs.get(run_id)
        if r is None:
            raise TrackingError(
                f"no project run {run_id} started by this server", "RESOURCE_DOES_NOT_EXIST"
            )
        return r

    async def cancel(self, run_id: str) -> dict[str, Any]:
        r = self.get(run_id)
        await asyncio.to_thread(r.cancel)
        return self.describe(r)

    def read_log(
        self, run_id: str, offset: int, limit: int = MAX_LOG_BYTES, tail: int | None = None
    ) -> tuple[bytes, int, bool]:
        """(bytes from ``offset`` or the last ``tail`` bytes, the next offset, whether the
        run has ended and everything was read)."""
        r = self.get(run_id)
        ended = r.done
        path = r.log_path
        if path is None or not os.path.exists(path):
            return b"", offset, ended
        with open(path, "rb") as f:
            if tail is not None:
                offset = max(0, f.seek(0, os.SEEK_END) - tail)
            f.seek(offset)
            data = f.read(min(limit, MAX_LOG_BYTES))
        data = data[: _whole_chars(data)]
        return data, offset + len(data), ended and not data

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)


def _whole_chars(data: bytes) -> int:
    """How many bytes of ``data`` end on a UTF-8 character boundary (the rest is read
    next time, so no character is cut in two)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for the lead byte
        need = 4 if byte >= 0xF0 else 3 if byte >= 0xE0 else 2 if byte >= 0xC0 else 1
        return len(data) if need <= back else len(data) - back
    return len(data)
