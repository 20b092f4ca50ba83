"""The local executor: one pipeline run as a DAG of asyncio tasks.

Steps start as soon as their dependencies succeeded, at most ``parallelism`` at
a time; a failed step skips what depends on it while independent branches go
on. Each step is a child tracked run of the pipeline's run (its parameters,
log, executed notebook, duration, and whatever the step's code logs without
``start_run``: the step's process gets ``MLFLOW_RUN_ID``/``JUPYTER_MLOPS_RUN_ID``).
State is written to the database as it changes, so any process (the REST API,
the CLI, another server) sees progress; a cancel request written there by
another process is noticed within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..events import WORK_OUTCOMES, Event
from ..services import current_user
from ..targets import LOCAL, TargetContext
from .db import RUN_TERMINAL, STEP_TERMINAL, PipelineDB, now_ms
from .model import Pipeline, Step
from .params import fill
from .runner import KernelPool, StepFailed, run_notebook, run_project, run_script, run_train

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore

log = logging.getLogger(__name__)

#: Step status → status of its tracked run.
TRACKING_STATUS = {
    "SUCCEEDED": "FINISHED",
    "CACHED": "FINISHED",
    "FAILED": "FAILED",
    "CANCELED": "KILLED",
}
TAG_PIPELINE = "mlops.pipeline"
TAG_PIPELINE_RUN = "mlops.pipeline.run_id"
TAG_STEP = "mlops.pipeline.step"
TAG_CACHED_FROM = "mlops.pipeline.cached_from"


def step_dir(run_dir: str, step: str) -> str:
    return os.path.join(run_dir, "steps", step)


def log_path(run_dir: str, step: str) -> str:
    return os.path.join(step_dir(run_dir, step), "step.log")


def notebook_path(run_dir: str, step: str) -> str:
    return os.path.join(step_dir(run_dir, step), "output.ipynb")


@dataclass
class PipelineRunItem:
    """A pipeline run as the service hands it to a target (:mod:`jupyter_mlops.targets`)."""

    #: Our run id (also the id of the run's tracked run); "" until the service stored it.
    id: str
    #: The target's name and kind.
    target: str
    kind: str
    pipeline: Pipeline | None = None
    values: dict[str, Any] = field(default_factory=dict)
    #: Where it runs: ``host:pid`` for local runs, the KFP run id on Kubeflow.
    ref: str | None = None
    run_dir: str = ""
    experiment_id: str = ""
    schedule_id: str | None = None
    retry_of: str | None = None
    run_name: str | None = None
    #: step → run id whose outputs it takes (retries of local runs).
    reuse: dict[str, str] = field(default_factory=dict)
    #: The stored run with its steps (attach, cancel, logs).
    row: dict[str, Any] | None = None
    #: What a target keeps between validate and submit (e.g. the KFP experiment id).
    notes: dict[str, Any] = field(default_factory=dict)


def executor_for(kind: str, target: str, ref: str | None) -> str:
    """The runs table's ``executor``: ``host:pid`` for local runs, else
    ``<kind>:<target>/<ref>`` (ref "" until the target accepted the run)."""
    return ref or "" if target == LOCAL else f"{kind}:{target}/{ref or ''}"


def ref_of(target: str, executor: str | None) -> str | None:
    """Where a stored run runs (inverse of :func:`executor_for`): None when not known yet."""
    if target == LOCAL:
        return executor or None
    return (executor or "").partition("/")[2] or None


@dataclass
class Context(TargetContext[PipelineRunItem]):
    """What every run of one process shares, and what the pipeline service lets its targets
    do: the :class:`~jupyter_mlops.targets.TargetContext` of pipeline runs.

    Targets use :meth:`call`, :attr:`store`, the generic methods (:meth:`transition`,
    :meth:`set_ref`, :meth:`append_log`, :meth:`create_child_run`) and the per-run records
    below (:meth:`run_row`, :meth:`update_run`, :meth:`update_steps`,
    :meth:`update_run_and_steps`, :meth:`finish`, :meth:`interrupt`); ``db``, ``pool`` and
    ``io`` are the local executor's own.
    """

    db: PipelineDB
    store: TrackingStore
    pool: KernelPool
    io: ThreadPoolExecutor
    parallelism: int = 4
    base_env: dict[str, str] = field(default_factory=dict)
    log: logging.Logger = field(default=log)
    #: Where a run's end is told (the service's ``publish``: JupyterLab, e-mail, webhooks).
    publish: Callable[[Event], None] | None = None

    #: Reads and file work for the REST API, so they never queue behind bookkeeping
    #: (SQLite in WAL mode reads alongside its one writer).
    reads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="mlops-pipelines-read")
    )
    _pending: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _flusher: asyncio.Task[None] | None = None

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.io, lambda: fn(*args, **kwargs))

    async def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.reads, lambda: fn(*args, **kwargs))

    def record(self, run_id: str, step: str, values: dict[str, Any]) -> None:
        """Queue a step-row update; queued updates are written together, in order
        (one transaction for everything that changed meanwhile)."""
        self._pending.setdefault((run_id, step), {}).update(values)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                await self.call(self.db.update_steps, [(r, s, v) for (r, s), v in batch.items()])
            except Exception:
                log.exception("jupyter-mlops: writing step states failed")

    async def flush(self) -> None:
        """Wait until every queued step update is written."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    # -- what targets may do ------------------------------------------------------------
    async def transition(
        self, item: PipelineRunItem, status: str | None, *, reason: str | None = None, **fields: Any
    ) -> bool:
        if status in RUN_TERMINAL:
            return bool(await self.call(self.finish, item.id, status, reason))
        values = dict(fields)
        if status is not None:
            values["status"] = status
        if reason is not None:
            values["reason"] = reason[:4000]
        if not values:
            return False
        return bool(
            await self.call(self.db.update_run, item.id, only_if_not=RUN_TERMINAL, **values)
        )

    async def set_ref(self, item: PipelineRunItem, ref: str) -> None:
        item.ref = ref
        await self.call(
            self.db.update_run, item.id, executor=executor_for(item.kind, item.target, ref)
        )

    async def append_log(
        self, item: PipelineRunItem, data: bytes, *, part: str | None = None
    ) -> None:
        if not part:
            raise ValueError("a pipeline run keeps one log per step: part is the step's name")
        run_dir = item.run_dir or (item.row or {}).get("run_dir") or ""
        await self.call(_append_bytes, log_path(run_dir, part), data)

    def create_child_run(
        self,
        item: PipelineRunItem,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """The tracked run of step ``name`` (parent, pipeline and step tags; ``params``
        logged, non-strings as JSON)."""
        from ..tracking.entities import TAG_PARENT_RUN_ID

        run = self.store.create_run(
            item.experiment_id,
            user_id=current_user(),
            run_name=name,
            tags={
                TAG_PARENT_RUN_ID: item.id,
                TAG_PIPELINE: item.pipeline.name
                if item.pipeline
                else (item.row or {}).get("name", ""),
                TAG_PIPELINE_RUN: item.id,
                TAG_STEP: name,
                **(tags or {}),
            },
        )
        values = [
            (k, v if isinstance(v, str) else json.dumps(v, default=str)[:6000])
            for k, v in (params or {}).items()
        ]
        if values:
            self.store.log_batch(run.info.run_id, params=values)
        return run.info.run_id

    def announce(self, row: Mapping[str, Any] | None, status: str, reason: str | None) -> None:
        """Tell the service that the pipeline run ``row`` ended with ``status``."""
        if row is None or self.publish is None:
            return
        self.publish(
            Event(
                kind="pipeline_run",
                outcome=WORK_OUTCOMES.get(status, "failed"),
                id=str(row["run_id"]),
                name=str(row.get("name") or ""),
                status=status,
                reason=reason or "",
                experiment_id=str(row.get("experiment_id") or ""),
                pipeline=str(row.get("name") or ""),
                start_time=row.get("start_time") or row.get("created_time"),
            )
        )

    # -- a run's records (blocking: through call) -------------------------------------
    def run_row(self, run_id: str) -> dict[str, Any] | None:
        """The stored run with its steps (None: no such run)."""
        return self.db.get_run(run_id)

    def update_run(self, run_id: str, only_if_not: Sequence[str] = (), **values: Any) -> bool:
        return self.db.update_run(run_id, only_if_not=only_if_not, **values)

    def update_steps(self, updates: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """``(run_id, step, values)`` updates in one transaction."""
        self.db.update_steps(updates)

    def update_run_and_steps(
        self,
        run_id: str,
        run_values: dict[str, Any],
        steps: Sequence[tuple[str, dict[str, Any]]],
        only_if_not: Sequence[str] = (),
    ) -> None:
        """A run's and its steps' changes in one transaction."""
        self.db.update_run_and_steps(run_id, run_values, steps, only_if_not=only_if_not)

    def finish(
        self,
        run_id: str,
        status: str,
        reason: str | None,
        end_time: int | None = None,
        end_step: Callable[[dict[str, Any], dict[str, Any], str, str | None], None] | None = None,
    ) -> bool:
        """The run ended (or could not start): steps that had not ended are settled from
        the run's outcome (``end_step(row, step, status, error)`` ends each one's tracked
        run; default: :meth:`end_step_run`), then the run's tracked run and the run. False
        when it had ended already."""
        row = self.db.get_run(run_id)
        if row is None or row["status"] in RUN_TERMINAL:
            return False
        t = now_ms()
        left = {
            "SUCCEEDED": ("SUCCEEDED", "SKIPPED"),
            "FAILED": ("FAILED", "SKIPPED"),
            "CANCELED": ("CANCELED", "CANCELED"),
        }[status]
        for s in row["steps"]:
            if s["status"] in STEP_TERMINAL:
                continue
            st = left[0] if s["status"] == "RUNNING" else left[1]
            err = reason if st in ("FAILED", "CANCELED") else None
            self.db.update_steps([(run_id, s["step"], {"status": st, "end_time": t, "error": err})])
            (end_step or self.end_step_run)(row, s, st, err)
        final = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "CANCELED": "KILLED"}[status]
        try:  # before the run's status: whoever sees the run ended sees its tracked run ended
            self.store.update_run_info(run_id, status=final, end_time=end_time or t)
        except Exception:
            log.exception("jupyter-mlops: ending pipeline run %s", run_id)
        ended = self.db.update_run(
            run_id, only_if_not=RUN_TERMINAL, status=status, reason=reason, end_time=end_time or t
        )
        if ended:
            self.announce(row, status, reason)
        return ended

    def end_step_run(
        self, row: Mapping[str, Any], step: Mapping[str, Any], status: str, error: str | None
    ) -> None:
        """End a settled step's tracked run (its error as a tag)."""
        child = step.get("tracking_run_id")
        if not child:
            return
        try:
            if error:
                self.store.set_tag(child, "mlops.pipeline.error", error[:8000])
            self.store.update_run_info(
                child, status=TRACKING_STATUS.get(status, "KILLED"), end_time=now_ms()
            )
        except Exception:
            log.exception("jupyter-mlops: ending the tracked run of step %s", step["step"])

    def interrupt(self, run_id: str, reason: str) -> None:
        """The process running a run is gone: FAILED with ``reason``, running steps FAILED,
        pending ones SKIPPED, their tracked runs ended."""
        before = self.db.get_run(run_id)
        self.db.mark_interrupted(run_id, reason)
        if before is not None and before["status"] not in RUN_TERMINAL:
            self.announce(before, "FAILED", reason)
        for rid, status in [(run_id, "FAILED")] + [
            (s["tracking_run_id"], "FAILED")
            for s in (before or {}).get("steps", [])
            if s["tracking_run_id"] and s["status"] == "RUNNING"
        ]:
            with contextlib.suppress(Exception):
                self.store.update_run_info(rid, status=status, end_time=now_ms())


class RunExecution:
    """Executes one pipeline run (already inserted with its PENDING steps)."""

    def __init__(
        self,
        ctx: Context,
        run_id: str,
        pipeline: Pipeline,
        params: Mapping[str, Any],
        run_dir: str,
        experiment_id: str,
        reuse: Mapping[str, str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.p = pipeline
        self.params = dict(params)
        self.run_dir = run_dir
        self.experiment_id = experiment_id
        self.reuse = dict(reuse or {})  # step -> run id whose outputs it takes (retries)
        self.status: dict[str, str] = dict.fromkeys(pipeline.steps, "PENDING")
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.cancelled = False
        self.interrupted: str | None = None  # why the process stopped it (→ FAILED)
        self.done = asyncio.Event()
        self._changed = asyncio.Event()
        self._artifact_uris: dict[str, str] = {}
        self.final_status: str | None = None
        self._order = {n: i for i, n in enumerate(topological_order(pipeline))}

    # -- templates -------------------------------------------------------------------
    def _template_ctx(self, for_cache: bool = False) -> dict[str, Any]:
        ctx: dict[str, Any] = {f"params.{k}": v for k, v in self.params.items()}
        ctx.update(
            {
                "run.id": "<run.id>" if for_cache else self.run_id,
                "run.dir": "<run.dir>" if for_cache else self.run_dir,
                "pipeline.name": self.p.name,
                "pipeline.dir": self.p.base_dir,
            }
        )
        for n in self.p.steps:
            ctx[f"steps.{n}.outputs"] = (
                f"<steps.{n}.outputs>"
                if for_cache
                else os.path.join(step_dir(self.run_dir, n), "work")
            )
        return ctx

    # -- the DAG -----------------------------------------------------------------------
    async def execute(self) -> str:
        watcher = asyncio.ensure_future(self._watch_cancel())
        try:
            await self.ctx.call(
                self.ctx.db.update_run, self.run_id, status="RUNNING", start_time=now_ms()
            )
            notebooks = sum(1 for s in self.p.steps.values() if s.kind == "notebook")
            self.ctx.pool.fill(min(self.ctx.parallelism, notebooks))
            await self._loop()
        finally:
            watcher.cancel()
            await self.ctx.flush()
        failed = [n for n, s in self.status.items() if s == "FAILED"]
        if self.interrupted:
            final, reason = "FAILED", self.interrupted
        elif self.cancelled:
            final, reason = "CANCELED", "cancelled"
        elif failed:
            final, reason = "FAILED", "step(s) failed: " + ", ".join(failed)
        else:
            final, reason = "SUCCEEDED", None
        # the tracked run first: whoever sees the pipeline run ended sees its tracked run ended
        await self.ctx.call(self._end_parent, final)
        await self.ctx.call(
            self.ctx.db.update_run, self.run_id, status=final, reason=reason, end_time=now_ms()
        )
        self.ctx.announce(await self.ctx.call(self.ctx.db.get_run, self.run_id), final, reason)
        self.final_status = final
        self.done.set()
        return final

    async def _loop(self) -> None:
        """Start what is ready as soon as a step's status is final; a step's
        bookkeeping (tracking, artifacts) goes on in its own task meanwhile."""
        par = self.ctx.parallelism
        while True:
            self._changed.clear()
            if self.cancelled:
                skipped = [n for n, s in self.status.items() if s == "PENDING"]
                if skipped:
                    await self._set_many(skipped, "CANCELED")
            else:
                # steps behind a failure will never run
                doomed = [
                    n
                    for n, s in self.status.items()
                    if s == "PENDING"
                    and any(
                        self.status[d] in ("FAILED", "CANCELED", "SKIPPED")
                        for d in self.p.steps[n].depends_on
                    )
                ]
                if doomed:
                    await self._set_many(doomed, "SKIPPED")
                    continue
                ready = sorted(
                    (
                        n
                        for n, s in self.status.items()
                        if s == "PENDING"
                        and all(
                            self.status[d] in ("SUCCEEDED", "CACHED")
                            for d in self.p.steps[n].depends_on
                        )
                    ),
                    key=self._order.__getitem__,
                )
                for n in ready[: max(0, par - len(self._active()))]:
                    self.status[n] = "STARTING"
                    self.tasks[n] = asyncio.ensure_future(self._run_step(n))
            if not self._active():
                break
            await self._changed.wait()
        results = await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        for r in results:
            if isinstance(r, Exception):
                log.error("jupyter-mlops: step task failed", exc_info=r)

    def _active(self) -> list[str]:
        return [n for n, s in self.status.items() if s in ("STARTING", "RUNNING")]

    async def _set_many(self, names: list[str], status: str) -> None:
        for n in names:
            self.status[n] = status
            self.ctx.record(self.run_id, n, {"status": status})

    def cancel(self, interrupted: str | None = None) -> None:
        """Stop: running steps' process trees are killed, nothing new starts. With
        ``interrupted`` (the process is stopping) the run ends FAILED with that reason."""
        if self.cancelled or self.done.is_set():
            return
        self.interrupted = interrupted
        self.cancelled = True
        for n, t in self.tasks.items():
            if not t.done() and self.status[n] not in STEP_TERMINAL:
                t.cancel()
        self._changed.set()

    async def _watch_cancel(self) -> None:
        """Another process (REST of another server, CLI) may ask via the database."""
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                if await self.ctx.call(self.ctx.db.run_status, self.run_id) == "CANCELING":
                    self.cancel()
                    return

    # -- one step ----------------------------------------------------------------------
    async def _run_step(self, name: str) -> None:
        step = self.p.steps[name]
        sdir = step_dir(self.run_dir, name)
        work = os.path.join(sdir, "work")
        lpath = log_path(self.run_dir, name)
        child: str | None = None
        values: dict[str, Any] = {}
        status = "FAILED"
        error: str | None = None
        start = now_ms()
        try:
            await asyncio.to_thread(
                self._prepare_dirs, step, work
            )  # files only: not behind DB work
            tctx = self._template_ctx()
            params = fill(step.parameters, tctx)
            key = None
            if step.cache or name in self.reuse:
                key = await asyncio.to_thread(
                    self._cache_key, step, fill(step.parameters, self._template_ctx(True))
                )
                source = await self.ctx.call(self._cached_source, name, key)
                if source is not None:
                    child = await self.ctx.call(
                        self._start_child, step, params, {TAG_CACHED_FROM: source}
                    )
                    self.status[name] = status = "CACHED"
                    values = {
                        "status": status,
                        "cache_key": key,
                        "cached_from": source,
                        "start_time": start,
                        "end_time": now_ms(),
                        "tracking_run_id": child,
                    }
                    return
            child = await self.ctx.call(self._start_child, step, params, {})
            self.status[name] = "RUNNING"
            self.ctx.record(
                self.run_id,
                name,
                {
                    "status": "RUNNING",
                    "attempt": 1,
                    "start_time": start,
                    "tracking_run_id": child,
                    "cache_key": key,
                },
            )
            env = self._env(step, child, params, tctx)
            attempts = step.retries + 1
            for attempt in range(1, attempts + 1):
                if attempt > 1:
                    self.ctx.record(self.run_id, name, {"attempt": attempt})
                try:
                    await self._attempt(step, params, env, work, lpath, attempt, attempts)
                    missing = [o for o in step.outputs if not os.path.exists(os.path.join(work, o))]  # noqa: ASYNC240 - a few stats of local files per step
                    if missing:
                        raise StepFailed("declared output(s) not written: " + ", ".join(missing))
                    status, error = "SUCCEEDED", None
                    break
                except StepFailed as e:
                    if self.cancelled:
                        raise asyncio.CancelledError() from None
                    error = str(e)
                except asyncio.TimeoutError:
                    error = f"timed out after {step.timeout:g} s"
                await self.ctx.call(
                    _append,
                    lpath,
                    f"\n[jupyter-mlops] attempt {attempt}/{attempts} failed: {error}\n",
                )
                if attempt < attempts and step.retry_delay:
                    await asyncio.sleep(step.retry_delay)
            self.status[name] = status
            values = {"status": status, "error": error, "end_time": now_ms(), "cache_key": key}
        except asyncio.CancelledError:
            self.status[name] = status = "CANCELED"
            values = {"status": status, "error": "cancelled", "end_time": now_ms()}
            await self.ctx.call(_append, lpath, "\n[jupyter-mlops] cancelled\n")
            raise
        except Exception as e:  # our fault or the environment's: the step fails, the run goes on
            log.exception("jupyter-mlops: step %s of run %s", name, self.run_id)
            self.status[name] = status = "FAILED"
            values = {"status": status, "error": f"{type(e).__name__}: {e}", "end_time": now_ms()}
        finally:
            if self.status[name] not in STEP_TERMINAL:
                self.status[name] = status
            self._changed.set()  # dependents may start while this step's records are written
            await asyncio.shield(self._finish_step(name, child, values or {"status": status}))

    async def _attempt(
        self,
        step: Step,
        params: dict[str, Any],
        env: dict[str, str],
        work: str,
        lpath: str,
        attempt: int,
        attempts: int,
    ) -> None:
        with open(lpath, "a", encoding="utf-8", buffering=1) as logf:  # noqa: ASYNC230 - local
            if attempts > 1:
                logf.write(f"[jupyter-mlops] attempt {attempt}/{attempts}\n")
            src = os.path.join(self.p.base_dir, step.path)
            if step.kind == "notebook":
                coro = run_notebook(
                    self.ctx.pool,
                    src,
                    notebook_path(self.run_dir, step.name),
                    params,
                    env,
                    work,
                    logf,
                    step.kernel,
                )
            elif step.kind == "train":
                coro = run_train(src, params, env, work, logf, self.p.base_dir)
            elif step.kind == "project":
                coro = run_project(
                    project_uri(self.p.base_dir, step.path),
                    step.entry_point,
                    step.version,
                    step.env_manager,
                    params,
                    env,
                    work,
                    logf,
                )
            else:
                args = [str(a) for a in fill(step.args, self._template_ctx())]
                coro = run_script(src, params, args, env, work, logf)
            await asyncio.wait_for(coro, step.timeout)

    def _env(
        self, step: Step, child: str, params: dict[str, Any], tctx: dict[str, Any]
    ) -> dict[str, str]:
        env = dict(self.ctx.base_env)
        env.update({k: str(v) for k, v in fill(step.env, tctx).items()})
        env.update(
            {
                "JUPYTER_MLOPS_RUN_ID": child,
                "MLFLOW_RUN_ID": child,
                "JUPYTER_MLOPS_PIPELINE_RUN_ID": self.run_id,
                "JUPYTER_MLOPS_PIPELINE_STEP": step.name,
                "JUPYTER_MLOPS_PIPELINE_DIR": self.p.base_dir,
                "JUPYTER_MLOPS_PARAMS": json.dumps(params, default=str),
            }
        )
        return env

    # -- blocking helpers (run in the io pool) ----------------------------------------
    def _prepare_dirs(self, step: Step, work: str) -> None:
        """The step's working directory: declared ``inputs`` appear at their relative
        paths (symlinks to the workspace, read in place), upstream outputs as links."""
        os.makedirs(work, exist_ok=True)
        for inp in step.inputs:
            src = os.path.join(self.p.base_dir, inp)
            dst = os.path.join(work, os.path.normpath(inp))
            if os.path.exists(src) and not os.path.lexists(dst) and within_dir(work, dst):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.symlink(os.path.abspath(src), dst)
        for dep in step.depends_on:
            dep_work = os.path.join(step_dir(self.run_dir, dep), "work")
            for out in self.p.steps[dep].outputs:
                _link(os.path.join(dep_work, out), os.path.join(work, out))

    def _cache_key(self, step: Step, params: Any) -> str:
        h = hashlib.sha256()
        h.update(
            json.dumps(
                [step.kind, step.path, params, step.env, step.args, step.outputs, step.kernel]
                + ([step.entry_point, step.version] if step.kind == "project" else []),
                sort_keys=True,
                default=str,
            ).encode()
        )
        files = [os.path.join(self.p.base_dir, step.path)]
        files += [os.path.join(self.p.base_dir, i) for i in step.inputs]
        for dep in step.depends_on:
            dep_work = os.path.join(step_dir(self.run_dir, dep), "work")
            files += [os.path.join(dep_work, o) for o in self.p.steps[dep].outputs]
        for f in files:
            h.update(b"\0file\0")
            _hash_path(h, f)
        return h.hexdigest()

    def _cached_source(self, name: str, key: str) -> str | None:
        """Take the outputs of an earlier identical step; its run id, or None."""
        step = self.p.steps[name]
        candidates: list[tuple[str, str]] = []
        if name in self.reuse:
            candidates.append((self.reuse[name], name))
        if step.cache:
            candidates += self.ctx.db.find_cached(key) or []
        work = os.path.join(step_dir(self.run_dir, name), "work")
        for run_id, sname in candidates:
            row = self.ctx.db.get_run(run_id)
            if row is None or run_id == self.run_id:
                continue
            src = os.path.join(step_dir(row["run_dir"], sname), "work")
            if all(os.path.exists(os.path.join(src, o)) for o in step.outputs):
                for o in step.outputs:
                    _link(os.path.join(src, o), os.path.join(work, o))
                for fname in ("output.ipynb", "step.log"):
                    _link(
                        os.path.join(step_dir(row["run_dir"], sname), fname),
                        os.path.join(step_dir(self.run_dir, name), fname),
                    )
                return run_id
        return None

    def _start_child(self, step: Step, params: dict[str, Any], tags: dict[str, str]) -> str:
        from ..tracking.entities import TAG_PARENT_RUN_ID

        store = self.ctx.store
        run = store.create_run(
            self.experiment_id,
            user_id=current_user(),
            run_name=step.name,
            tags={
                TAG_PARENT_RUN_ID: self.run_id,
                TAG_PIPELINE: self.p.name,
                TAG_PIPELINE_RUN: self.run_id,
                TAG_STEP: step.name,
                "mlflow.source.name": step.path,
                "mlflow.source.type": step.kind.upper(),
                **tags,
            },
        )
        items = [
            (k, v if isinstance(v, str) else json.dumps(v, default=str)[:6000])
            for k, v in params.items()
        ]
        if items:
            store.log_batch(run.info.run_id, params=items)
        self._artifact_uris[run.info.run_id] = run.info.artifact_uri
        return run.info.run_id

    async def _finish_step(self, name: str, child: str | None, values: dict[str, Any]) -> None:
        try:
            self.ctx.record(self.run_id, name, values)
            if child is not None:
                await self.ctx.call(
                    self._end_child,
                    name,
                    child,
                    values.get("status", "FAILED"),
                    values.get("error"),
                )
        except Exception:
            log.exception("jupyter-mlops: recording step %s of run %s", name, self.run_id)

    def _end_child(self, name: str, child: str, status: str, error: str | None) -> None:
        store = self.ctx.store
        uri = self._artifact_uris.pop(child, None) or store.get_run(child).info.artifact_uri
        repo = store.artifact_repo(uri)
        for path in (log_path(self.run_dir, name), notebook_path(self.run_dir, name)):
            if os.path.exists(path) and os.path.getsize(path):
                with contextlib.suppress(Exception), open(path, "rb") as f:
                    repo.put(os.path.basename(path), f.read())
        if error:
            store.set_tag(child, "mlops.pipeline.error", error[:8000])
        store.update_run_info(
            child, status=TRACKING_STATUS.get(status, "FAILED"), end_time=now_ms()
        )

    def _end_parent(self, final: str) -> None:
        status = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "CANCELED": "KILLED"}[final]
        try:
            self.ctx.store.update_run_info(self.run_id, status=status, end_time=now_ms())
        except Exception:
            log.exception("jupyter-mlops: ending pipeline run %s", self.run_id)


def project_uri(base_dir: str, uri: str) -> str:
    """A project step's URI: a relative directory or archive against the pipeline's
    directory; git URLs as they are."""
    from ..projects.fetch import is_local

    return os.path.join(base_dir, uri) if is_local(uri) and not os.path.isabs(uri) else uri


def topological_order(p: Pipeline) -> list[str]:
    """Kahn's algorithm, ties in declaration order (deterministic)."""
    indeg = {n: len(s.depends_on) for n, s in p.steps.items()}
    users: dict[str, list[str]] = {n: [] for n in p.steps}
    for n, s in p.steps.items():
        for d in s.depends_on:
            users[d].append(n)
    ready = [n for n in p.steps if indeg[n] == 0]
    out: list[str] = []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for u in users[n]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    return out


def within_dir(root: str, path: str) -> bool:
    root = os.path.abspath(root)
    return os.path.abspath(path).startswith(root.rstrip(os.sep) + os.sep)


def _append(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _append_bytes(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab") as f:
        f.write(data)


def _link(src: str, dst: str) -> None:
    """Hand a file or directory to another step: hard links, copies across devices."""
    if not os.path.exists(src) or os.path.exists(dst):
        return
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    if os.path.isdir(src):
        shutil.copytree(src, dst, copy_function=_link_or_copy)
    else:
        _link_or_copy(src, dst)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _hash_path(h: Any, path: str) -> None:
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                full = os.path.join(root, f)
                h.update(os.path.relpath(full, path).encode() + b"\0")
                _hash_path(h, full)
        return
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        h.update(b"<missing>")
