"""The ``local`` pipeline target: runs execute in this process's event loop
(:class:`~.executor.RunExecution`), so they go on when the browser closes; when the process
stops, its unfinished runs are marked FAILED with the reason, by itself on a clean stop and by
the next process to start otherwise (:meth:`LocalTarget.attach`)."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from .._process import alive
from ..targets import LOCAL, ConfigReader, Target
from .db import RUN_TERMINAL
from .executor import Context, PipelineRunItem, RunExecution

#: Why a run still going when the process stops ends FAILED.
STOPPED = "interrupted: the server stopped while it ran"


class LocalTarget(Target[PipelineRunItem, Context]):
    """This server: steps as subprocesses and warm kernels, ``parallelism`` at a time."""

    kind = "local"

    def __init__(self, parallelism: int, executor_id: str) -> None:
        super().__init__(LOCAL, "This server")
        self.parallelism = parallelism
        #: ``host:pid`` of this process: the ``executor`` of the runs it executes.
        self.executor_id = executor_id
        #: The runs executing in this process, by run id.
        self.active: dict[str, RunExecution] = {}

    @classmethod
    def from_config(cls, name: str, settings: ConfigReader) -> LocalTarget:
        raise settings.error(None, "the local target is always there and is not configured")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "parallelism": self.parallelism, "ui_url": None}

    async def submit(self, item: PipelineRunItem, ctx: Context) -> None:
        assert item.pipeline is not None
        ex = RunExecution(
            ctx, item.id, item.pipeline, item.values, item.run_dir, item.experiment_id, item.reuse
        )
        self.active[item.id] = ex
        item.ref = self.executor_id  # the service stored it with this executor
        self.watchers.start(item.id, lambda: self._execute(ex, ctx))

    async def _execute(self, ex: RunExecution, ctx: Context) -> None:
        try:
            await ex.execute()
        except Exception:
            ctx.log.exception("jupyter-mlops: pipeline run %s", ex.run_id)
            await ctx.call(ctx.interrupt, ex.run_id, "internal error of the executor")
        finally:
            self.active.pop(ex.run_id, None)

    async def attach(self, item: PipelineRunItem, ctx: Context) -> None:
        """A local run found unfinished at start-up: FAILED when the process that ran it is
        gone (runs of other machines sharing the database are left to their servers)."""
        await ctx.call(self.adopt, item, ctx)

    def adopt(self, item: PipelineRunItem, ctx: Context) -> bool:
        """(blocking) :meth:`attach`; True when the run was marked FAILED."""
        ex = item.ref or ""
        h, _, pid = ex.rpartition(":")
        if ex == self.executor_id and item.id in self.active:
            return False
        if h != socket.gethostname():
            return False  # another machine's run (shared database): its server reconciles it
        if pid.isdigit() and int(pid) != os.getpid() and alive(int(pid)):
            return False
        ctx.interrupt(
            item.id,
            f"interrupted: the process running it ({ex or 'unknown'}) stopped before it finished",
        )
        return True

    async def cancel(self, item: PipelineRunItem, ctx: Context) -> None:
        ex = self.active.get(item.id)
        if ex is not None:
            ex.cancel()
            await ex.done.wait()
        else:  # running in another process: it polls for this
            await ctx.call(ctx.update_run, item.id, only_if_not=RUN_TERMINAL, status="CANCELING")

    async def logs(self, item: PipelineRunItem, *, part: str | None = None) -> bytes | None:
        return None  # step logs are files in the run directory: the service serves them

    async def stop(self) -> None:
        """Interrupt the runs still going (they end FAILED, :data:`STOPPED`); waits up to
        15 s for them to wind down (the service fails the ones that did not)."""
        for ex in list(self.active.values()):
            ex.cancel(interrupted=STOPPED)
        tasks = list(self.watchers.tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=15)
