"""Training jobs behind the target interface (:mod:`jupyter_mlops.targets`).

:class:`JobItem` is what a target gets of a job; :class:`TrainingContext` what it may do with
the service's records (state transitions, the ranks' rows, the job's log, child runs);
:class:`LocalTrainingTarget` (kind ``local``) runs a job's ranks as processes of this machine
(:class:`~.local.LocalJob`). It cannot adopt ranks again after a restart (their parent, the
server, is gone): :meth:`LocalTrainingTarget.attach` kills what they left and ends the job
FAILED with the reason.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..client.system_metrics import metric_prefix
from ..targets import LOCAL, Target, TargetContext
from ..tracking.errors import invalid
from .frameworks import split_gpus
from .local import LocalJob, Recorder, kill_leftovers, now_ms, rank_log
from .spec import JobSpec
from .sysmetrics import ENV_INTERVAL, as_metrics, start_monitor

if TYPE_CHECKING:
    from .service import TrainingService

T = TypeVar("T")
JOB_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")


@dataclass
class JobItem:
    """A stored job as its target sees it."""

    id: str
    target: str
    ref: str | None
    spec: JobSpec
    params: dict[str, Any]
    job_dir: str
    #: The ranks' recorded rows (pid, pgid, pid_start: what a dead server left).
    ranks: list[dict[str, Any]] = field(default_factory=list)
    #: The experiment of the job's run (ranks get it: their client need not ask).
    experiment_id: str = ""
    #: The job's code packed for a cluster target (once, when it is validated).
    shipped: str | None = None


class TrainingContext(TargetContext[JobItem]):
    """What the training service lets its targets do; adds :meth:`record_ranks` (the ranks'
    rows) to the interface's transitions, refs, logs and child runs."""

    def __init__(self, svc: TrainingService) -> None:
        self.svc = svc
        self.store = svc.store
        self.log = svc.log  # type: ignore[assignment]

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.svc.call(fn, *args, **kwargs)  # type: ignore[no-any-return]

    async def transition(
        self, item: JobItem, status: str | None, *, reason: str | None = None, **fields: Any
    ) -> bool:
        if status in JOB_TERMINAL:
            ended = bool(
                await self.call(
                    self.svc._end,
                    item.id,
                    item.job_dir,
                    status,
                    reason,
                    [r["rank"] for r in item.ranks],
                    fields,
                )
            )
            await self.svc.released(item.id)  # its GPUs in the team quota (admission)
            return ended
        values = dict(fields)
        if status is not None:
            values["status"] = status
        if reason is not None or status == "RUNNING":
            values["reason"] = reason
        return bool(await self.call(self.svc.db.update_job, item.id, JOB_TERMINAL, **values))

    async def set_ref(self, item: JobItem, ref: str) -> None:
        item.ref = ref
        await self.call(self.svc.db.update_job, item.id, executor=ref)

    async def append_log(self, item: JobItem, data: bytes, *, part: str | None = None) -> None:
        path = os.path.join(item.job_dir, "logs", f"{part or 'job'}.log")
        await self.call(_append, path, data)

    def create_child_run(
        self,
        item: JobItem,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        from ..tracking.entities import TAG_PARENT_RUN_ID

        parent = self.store.get_run(item.id)
        run = self.store.create_run(
            parent.info.experiment_id,
            run_name=name,
            tags={TAG_PARENT_RUN_ID: item.id, **(tags or {})},
        )
        if params:
            self.store.log_batch(run.info.run_id, params=[(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def tracking_env(self) -> dict[str, str]:
        """Where a job's processes log (``JUPYTER_MLOPS_TRACKING_URI`` and its token), as this
        service's own ranks get it; a cluster target may override the URI."""
        env = self.svc._rank_env()
        out = {
            k: env[k]
            for k in ("JUPYTER_MLOPS_TRACKING_URI", "JUPYTER_MLOPS_TRACKING_TOKEN")
            if env.get(k)
        }
        out[ENV_INTERVAL] = f"{self.svc.system_metrics_interval:g}"
        return out

    async def record_ranks(self, item: JobItem, rows: list[dict[str, Any]]) -> None:
        """The ranks' state (pid, status, exit code, ...), by rank."""
        by_rank = {r["rank"]: r for r in item.ranks}
        for row in rows:
            by_rank.setdefault(row["rank"], {}).update(row)
        item.ranks = [by_rank[k] for k in sorted(by_rank)]
        await self.call(self.svc.db.update_ranks, item.id, rows)


class LocalTrainingTarget(Target[JobItem, TrainingContext]):
    """Ranks as processes of this machine (see :mod:`.local`)."""

    kind = "local"

    def __init__(
        self,
        gpus: list[str],
        max_ranks: int,
        grace: float,
        python: str,
        env: Callable[[], dict[str, str]],
        system_metrics_interval: float = 0.0,
    ) -> None:
        super().__init__(LOCAL, "This server")
        self.gpus = list(gpus)
        self.max_ranks = max_ranks
        self.grace = grace
        self.python = python or sys.executable
        self.env = env
        self.system_metrics_interval = system_metrics_interval
        #: Jobs whose runs get the machine's samples: id -> [context, next step].
        self._sampled: dict[str, list[Any]] = {}
        self._sampled_lock = threading.Lock()
        self._monitor: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The jobs running here, by id.
        self.jobs: dict[str, LocalJob] = {}
        self.ref = f"{socket.gethostname()}:{os.getpid()}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "gpus": list(self.gpus), "max_ranks": self.max_ranks}

    async def validate(self, item: JobItem) -> None:
        spec = item.spec
        if spec.world_size > self.max_ranks:
            raise invalid(
                f"nodes x procs_per_node = {spec.world_size} processes; local jobs "
                f"may start at most {self.max_ranks} "
                "(c.TrainingService.max_local_ranks)."
            )
        want = spec.resources.get("gpu")
        if want:
            try:
                split_gpus(self.gpus, spec.nodes, want)
            except ValueError as e:
                raise invalid(str(e)) from None

    async def submit(self, item: JobItem, ctx: TrainingContext) -> None:
        await ctx.set_ref(item, self.ref)

        async def job_state(**values: Any) -> None:
            status = values.pop("status", None)
            if status == "RUNNING" and values.get("attempt") == 1:
                values["start_time"] = now_ms()
            await ctx.transition(item, status, reason=values.pop("reason", None), **values)

        async def ranks(rows: list[dict[str, Any]]) -> None:
            await ctx.record_ranks(item, rows)

        async def event(text: str) -> None:
            await ctx.append_log(item, f"[jupyter-mlops] {text}\n".encode())

        job = LocalJob(
            item.id,
            item.spec,
            item.params,
            item.job_dir,
            {**self.env(), "JUPYTER_MLOPS_JOB_EXPERIMENT_ID": item.experiment_id},
            Recorder(job_state, ranks, event),
            self.gpus,
            self.grace,
            self.python,
        )
        self.jobs[item.id] = job
        self._sample_start(item, ctx)

        async def watch() -> None:
            try:
                status = await job.run()
                await self._sample_end(item, ctx)
                # the attempt it ended on goes with the final state: an attempt that failed
                # before its ranks ran was never recorded as RUNNING
                await ctx.transition(item, status, reason=job.reason, attempt=job.attempt)
            except Exception:
                ctx.log.exception("jupyter-mlops: training job %s", item.id)
                await ctx.transition(item, "FAILED", reason="internal error of the local backend")
            finally:
                with self._sampled_lock:
                    self._sampled.pop(item.id, None)
                self.jobs.pop(item.id, None)

        self.watchers.start(item.id, watch)

    # -- system metrics: every local job is on this machine, sampled once for all of them --
    def _sample_start(self, item: JobItem, ctx: TrainingContext) -> None:
        if self.system_metrics_interval <= 0:
            return
        self._loop = asyncio.get_running_loop()
        with self._sampled_lock:
            self._sampled[item.id] = [ctx, 0]
            if self._monitor is None:
                self._monitor = start_monitor(self._publish, self.system_metrics_interval)

    def _publish(self, metrics: dict[str, float], step: int) -> None:
        """The machine's sample into every running job's run (the monitor's thread), each
        with its own step; written in order on the service's thread."""
        with self._sampled_lock:
            due = [(job_id, e[0], e[1]) for job_id, e in self._sampled.items()]
            for e in self._sampled.values():
                e[1] += 1
        assert self._loop is not None
        for job_id, ctx, n in due:
            asyncio.run_coroutine_threadsafe(
                ctx.call(ctx.store.log_batch, job_id, as_metrics(metrics, n)), self._loop
            )

    async def _sample_end(self, item: JobItem, ctx: TrainingContext) -> None:
        """A job ended: a job shorter than the sampling period gets one sample of its own;
        the monitor stops with the last job."""
        with self._sampled_lock:
            entry = self._sampled.pop(item.id, None)
            monitor = self._monitor
            last = not self._sampled
            if last:
                self._monitor = None
        if monitor is None:
            return
        if entry is not None and entry[1] == 0:
            sample = await asyncio.to_thread(monitor.sampler.sample)
            values = {metric_prefix() + k: v for k, v in sample.items()}
            await ctx.call(ctx.store.log_batch, item.id, as_metrics(values, 0))
        if last:
            await asyncio.to_thread(monitor.stop)

    async def attach(self, item: JobItem, ctx: TrainingContext) -> None:
        killed = await ctx.call(kill_leftovers, item.ranks)
        reason = (
            f"interrupted: the process running it ({item.ref or 'unknown'}) stopped "
            "before it finished"
        )
        if killed:
            reason += f"; {len(killed)} leftover process(es) killed"
        await ctx.transition(item, "FAILED", reason=reason)

    async def cancel(self, item: JobItem, ctx: TrainingContext) -> None:
        job = self.jobs.get(item.id)
        if job is not None:
            job.cancel()

    async def logs(self, item: JobItem, *, part: str | None = None) -> bytes | None:
        return await read_rank_log(item, part)

    async def stop(self) -> None:
        """The server stops: every job here is stopped and ends FAILED with the reason."""
        for job in list(self.jobs.values()):
            job.cancel(interrupted="interrupted: the server stopped while it ran")
        tasks = list(self.watchers.tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=60)
        await super().stop()


def _append(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab") as f:
        f.write(data)


async def read_rank_log(item: JobItem, part: str | None) -> bytes | None:
    """A rank's log file as kept in the job's directory (``part``: ``rank-<N>``)."""
    rank = int((part or "rank-0").rsplit("-", 1)[-1])
    path = rank_log(item.job_dir, rank)
    if not os.path.exists(path):  # noqa: ASYNC240 - one stat of a local file
        return None
    return await asyncio.to_thread(_read, path)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
