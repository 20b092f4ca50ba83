"""The pipeline service: submit, watch, cancel, retry, read logs, schedule.

One instance per process (the Jupyter server extension, or the CLI). It validates and
stores runs, and hands each to a target (:mod:`jupyter_mlops.targets`) through the one
context it passes every target (:class:`.executor.Context`): ``local``
(:mod:`.local`: this process's event loop; unfinished runs of a stopped process are
marked FAILED) or a configured Kubeflow target (:mod:`.kubeflow.target`: runs go on in the
cluster, and a restarted process watches them again).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from traitlets import Dict, Float, Int, Unicode, default

from ..services import Service, current_user
from ..targets import LOCAL, Target, build_targets, unknown_target
from ..tracking.errors import TrackingError, invalid, not_found
from .db import RUN_TERMINAL, STEP_TERMINAL, PipelineDB, now_ms
from .executor import (
    Context,
    PipelineRunItem,
    RunExecution,
    executor_for,
    log_path,
    notebook_path,
    ref_of,
)
from .local import STOPPED, LocalTarget
from .model import Pipeline, pipeline_from_dict
from .params import ParameterError, resolve_parameters
from .runner import KernelPool
from .spec import Issue, PipelineInvalid, load_pipeline, parse_pipeline, within

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore

RESOURCE_CONFLICT = "RESOURCE_CONFLICT"


class PipelineError(TrackingError):
    """Validation failed: ``issues`` say where (file, line, field)."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("The pipeline is not valid:\n" + "\n".join(str(i) for i in issues))
        self.issues = issues

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = super().to_json()
        out["issues"] = [i.to_dict() for i in self.issues]
        return out


class PipelineService(Service):
    """Runs pipelines locally and keeps their history in the tracking database."""

    parallelism = Int(
        0,
        config=True,
        help="Steps of one run executing at once (0: the number of CPUs, at least 2).",
    )
    warm_kernels = Int(
        -1,
        config=True,
        help="""Kernels kept started ahead of need so notebook steps skip kernel start-up
        (~0.7 s each). -1: as many as ``parallelism``. Each step still gets a fresh kernel;
        the pool only starts filling when the first pipeline runs.""",
    )
    runs_dir = Unicode(
        config=True,
        help="""Where runs keep step logs, executed notebooks and outputs
        (default: ``<jupyter data dir>/mlops/pipelines``).""",
    )
    schedule_interval = Float(
        5.0,
        config=True,
        help="Seconds between checks for due schedules.",
    )
    warm_kernels_idle_timeout = Float(
        600.0,
        config=True,
        help="""Seconds without pipeline activity (runs, the Pipelines panel) after which the
        warm kernels are shut down; they start again on the next use. 0: never.""",
    )
    kernel_name = Unicode(
        "python3",
        config=True,
        help="Kernel for notebooks whose metadata names none (and the one kept warm).",
    )
    kubeflow_targets = Dict(
        config=True,
        help="""Kubeflow Pipelines endpoints runs can be submitted to, by target name, e.g.
        ``{"cluster": {"endpoint": "https://kfp.example/pipeline", "namespace": "team-a",
        "image": "ghcr.io/org/mlops-step:1", "tracking_uri": "http://mlops.team-a:5000"}}``.
        Required: ``endpoint`` (the KFP API), ``image`` (with jupyter-mlops installed; a
        step's ``image:`` overrides it), ``tracking_uri`` (the tracking server as the step
        pods reach it). Optional: ``namespace`` (the profile namespace), ``token`` or
        ``token_path`` (bearer token; default: the file at $KF_PIPELINES_SA_TOKEN_PATH or
        /var/run/secrets/kubeflow/pipelines/token when present, read on every request),
        ``ui_url`` (the KFP UI, for "Open in Kubeflow" links), ``experiment`` (KFP
        experiment; default: the pipeline's experiment or name), ``display_name``,
        ``verify_ssl`` (bool or CA bundle path), ``env`` (VAR: value for every step),
        ``secret_env`` (VAR: [secret, key] from a Kubernetes secret), ``pipeline_root``,
        ``service_account``, ``poll_interval`` (seconds between status polls, default 5).
        A target with a mistake is left out and the error logged, naming the field.""",
    )

    @default("runs_dir")
    def _default_runs_dir(self) -> str:
        from jupyter_core.paths import jupyter_data_dir

        return os.path.join(jupyter_data_dir(), "mlops", "pipelines")

    def __init__(
        self,
        store: TrackingStore,
        root_dir: str,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(store, root_dir, **kwargs)
        self.db = PipelineDB(self.engine)
        self.executor_id = f"{socket.gethostname()}:{os.getpid()}"
        #: Schedules created here are fired only here (several servers may share a database).
        self.owner = f"{socket.gethostname()}:{self.root_dir}"
        par = self.parallelism or max(2, os.cpu_count() or 2)
        #: None: steps inherit this process's environment, read again by start()
        self._env = env
        base_env = self._step_env()
        pool = KernelPool(
            par if self.warm_kernels < 0 else self.warm_kernels,
            base_env,
            os.path.join(self.runs_dir, ".kernels"),
            self.kernel_name,
        )
        #: What targets may do (and what the local executor shares).
        self.ctx = Context(
            self.db,
            store,
            pool,
            ThreadPoolExecutor(1, thread_name_prefix="mlops-pipelines"),
            par,
            base_env,
            log=self.log,
            publish=self.publish,
        )
        self._scheduler: asyncio.Task[Any] | None = None
        self._stopped = False
        self.local = LocalTarget(par, self.executor_id)
        configured, errors = build_targets(
            "pipelines", self.kubeflow_targets, "kubeflow_targets", default_kind="kubeflow"
        )
        #: Where runs can go, by name: ``local`` first, then the configured ones.
        self.targets: dict[str, Target[PipelineRunItem, Context]] = {
            LOCAL: self.local,
            **configured,
        }
        #: Configured targets left out, with why (named in refusals to submit there).
        self.target_errors: dict[str, str] = errors
        for e in errors.values():
            self.log.error("jupyter-mlops: c.PipelineService.%s", e)

    @property
    def active(self) -> dict[str, RunExecution]:
        """The runs executing in this process, by run id."""
        return self.local.active

    # -- lifecycle ----------------------------------------------------------------------
    def _step_env(self) -> dict[str, str]:
        """What steps' processes and kernels inherit."""
        base_env = dict(os.environ if self._env is None else self._env)
        base_env.setdefault("JUPYTER_MLOPS_TRACKING_URI", self.store.uri)
        base_env["PYTHONUNBUFFERED"] = "1"
        return base_env

    async def start(self, schedules: bool = True) -> None:
        """Hand every unfinished run back to its target (local runs a stopped process left
        are marked FAILED, cluster runs are watched again); start the scheduler."""
        if self._stopped:  # stopped before its turn to start came (an in-process test server)
            return
        if self._env is None:
            # The server's environment as the app exports it once the server's port is
            # final (after the extension, so after this service, was built).
            fresh = self._step_env()
            self.ctx.base_env.clear()
            self.ctx.base_env.update(fresh)
            self.ctx.pool.env = dict(fresh)
        await self.reattach()
        if schedules:
            self._scheduler = asyncio.ensure_future(self._schedule_loop())

    def item(self, row: dict[str, Any], pipeline: Pipeline | None = None) -> PipelineRunItem:
        """A stored run as its target sees it."""
        name = row.get("target") or LOCAL
        t = self.targets.get(name)
        return PipelineRunItem(
            id=row["run_id"],
            target=name,
            kind=t.kind if t else "",
            pipeline=pipeline,
            values=dict(row.get("parameters") or {}),
            ref=ref_of(name, row.get("executor")),
            run_dir=row.get("run_dir") or "",
            experiment_id=row.get("experiment_id") or "",
            schedule_id=row.get("schedule_id"),
            retry_of=row.get("retry_of"),
            row=row,
        )

    async def reattach(self) -> list[str]:
        """Give every unfinished run to its target's ``attach``; the ids of the runs still
        unfinished after that."""
        interrupted = attached = 0
        left = []
        for run in await self.ctx.call(self.db.unfinished_runs):
            run = await self.ctx.call(self.db.get_run, run["run_id"]) or run
            target = self.targets.get(run.get("target") or LOCAL)
            if target is None:  # perhaps another server's target (shared database)
                self.log.warning(
                    "jupyter-mlops: run %s is on target %r, which is not "
                    "configured here: not watched",
                    run["run_id"],
                    run["target"],
                )
                continue
            await target.attach(self.item(run), self.ctx)
            if run["run_id"] in target.watchers:
                attached += 1
            elif await self.ctx.call(self.db.run_status, run["run_id"]) in RUN_TERMINAL:
                interrupted += target is self.local
                continue
            left.append(run["run_id"])
        if interrupted:
            self.log.warning(
                "jupyter-mlops: %d interrupted pipeline run(s) marked FAILED", interrupted
            )
        if attached:
            self.log.info("jupyter-mlops: watching %d pipeline run(s) again", attached)
        return left

    def _fail_run(self, run_id: str, reason: str) -> None:
        self.ctx.interrupt(run_id, reason)

    async def stop(self) -> None:
        """Stop the scheduler and stop watching; local runs still going are killed and
        marked FAILED."""
        self._stopped = True
        if self._scheduler is not None:
            self._scheduler.cancel()
        for target in self.targets.values():
            await target.stop()
        for run_id in list(self.active):  # did not wind down in time
            await self.ctx.call(self._fail_run, run_id, STOPPED)
        await self.ctx.pool.close()
        self.ctx.io.shutdown(wait=True)
        self.ctx.reads.shutdown(wait=True)

    def prewarm(self) -> None:
        """Start filling the warm kernel pool in the background (call on the event loop)."""
        self.ctx.pool.fill()

    async def warm(self) -> None:
        """Start the warm kernels now and wait until they are up."""
        pool = self.ctx.pool
        pool.fill()
        while pool._starting:
            await asyncio.wait(set(pool._starting))

    # -- validation --------------------------------------------------------------------
    def resolve_path(self, path: str) -> str:
        """A user's path (relative to the root, or absolute inside it) → absolute."""
        if not path:
            raise invalid("Missing value for required parameter 'path'.")
        full = os.path.normpath(path if os.path.isabs(path) else os.path.join(self.root_dir, path))
        if not within(self.root_dir, full):
            raise invalid(f"Path {path!r} is outside the workspace.")
        return full

    def rel(self, full: str | None) -> str | None:
        if not full:
            return None
        return os.path.relpath(full, self.root_dir) if within(self.root_dir, full) else full

    def load(self, path: str | None = None, text: str | None = None) -> Pipeline:
        """Read and validate; raises :class:`PipelineError` with every issue."""
        try:
            if text is not None:
                full = (
                    self.resolve_path(path)
                    if path
                    else os.path.join(self.root_dir, "<pipeline>.pipeline.yaml")
                )
                return parse_pipeline(text, path=full, root=self.root_dir, display=self.rel(full))
            full = self.resolve_path(path or "")
            if not os.path.isfile(full):
                raise not_found(f"No pipeline file {path!r}.")
            return load_pipeline(full, root=self.root_dir)
        except PipelineInvalid as e:
            for issue in e.issues:
                if issue.file and os.path.isabs(issue.file):
                    issue.file = self.rel(issue.file)
            raise PipelineError(e.issues) from None

    def describe(self, p: Pipeline) -> dict[str, Any]:
        from .executor import topological_order

        return {
            "pipeline": p.to_dict(),
            "path": self.rel(p.source_path),
            "order": topological_order(p),
        }

    # -- runs --------------------------------------------------------------------------
    async def submit(
        self,
        path: str | None = None,
        text: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        *,
        pipeline: Pipeline | None = None,
        schedule_id: str | None = None,
        retry_of: str | None = None,
        reuse: Mapping[str, str] | None = None,
        run_name: str | None = None,
        target: str = LOCAL,
    ) -> dict[str, Any]:
        """Validate, store and hand the run to ``target``; the run as REST shows it."""
        t = self.target(target)
        if pipeline is None:
            pipeline = await self.ctx.read(self.load, path, text)
        try:
            values = resolve_parameters(pipeline, parameters)
        except ParameterError as e:
            raise invalid(str(e)) from None
        item = PipelineRunItem(
            id="",
            target=t.name,
            kind=t.kind,
            pipeline=pipeline,
            values=values,
            schedule_id=schedule_id,
            retry_of=retry_of,
            run_name=run_name,
            reuse=dict(reuse or {}),
        )
        await t.validate(item)  # refused here: nothing stored
        executor = self.executor_id if t is self.local else executor_for(t.kind, t.name, None)
        row = await self.ctx.call(
            self._create, pipeline, values, schedule_id, retry_of, run_name, t.name, executor
        )
        item.id, item.run_dir, item.experiment_id = (
            row["run_id"],
            row["run_dir"],
            row["experiment_id"],
        )
        try:
            await t.submit(item, self.ctx)
        except Exception as e:  # not started: FAILED (unless the target said why already)
            why = e.message if isinstance(e, TrackingError) else f"{type(e).__name__}: {e}"
            await self.ctx.transition(item, "FAILED", reason=f"not started: {why}")
            raise
        return await self.get_run(item.id)

    def target(self, name: str | None) -> Target[PipelineRunItem, Context]:
        """The target ``name`` (none: local); 400 naming the configured ones."""
        t = self.targets.get(name or LOCAL)
        if t is None:
            raise unknown_target(str(name), self.targets, self.target_errors)
        return t

    def list_targets(self) -> list[dict[str, Any]]:
        """Where runs can go: this server, then the configured targets."""
        return [t.describe() for t in self.targets.values()]

    def _create(
        self,
        p: Pipeline,
        values: dict[str, Any],
        schedule_id: str | None,
        retry_of: str | None,
        run_name: str | None,
        target: str = "local",
        executor: str | None = None,
    ) -> dict[str, Any]:
        from .executor import TAG_PIPELINE

        exp_id = self.experiment_id(p.experiment or p.name)
        rel = self.rel(p.source_path)
        tags = {
            TAG_PIPELINE: p.name,
            "mlflow.source.type": "PIPELINE",
            "mlflow.source.name": rel or p.name,
        }
        if rel:
            tags["mlops.pipeline.file"] = rel
        if schedule_id:
            tags["mlops.pipeline.schedule_id"] = schedule_id
        if retry_of:
            tags["mlops.pipeline.retry_of"] = retry_of
        if target != "local":
            tags["mlops.pipeline.target"] = target
        run = self.store.create_run(exp_id, user_id=current_user(), run_name=run_name, tags=tags)
        run_id = run.info.run_id
        if values:
            self.store.log_batch(
                run_id,
                params=[(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()],
            )
        run_dir = os.path.join(self.runs_dir, run_id)
        os.makedirs(run_dir, exist_ok=True)
        spec = {**p.to_dict(), "base_dir": p.base_dir}
        with open(os.path.join(run_dir, "pipeline.json"), "w") as f:
            json.dump(spec, f, indent=1)
        t = now_ms()
        self.db.insert_run(
            {
                "run_id": run_id,
                "name": p.name,
                "experiment_id": exp_id,
                "source_path": p.source_path,
                "spec": json.dumps(spec),
                "parameters": json.dumps(values),
                "status": "QUEUED",
                "created_time": t,
                "run_dir": run_dir,
                "target": target,
                "executor": executor or self.executor_id,
                "schedule_id": schedule_id,
                "retry_of": retry_of,
            },
            [{"run_id": run_id, "step": n, "status": "PENDING", "attempt": 0} for n in p.steps],
        )
        return {"run_id": run_id, "run_dir": run_dir, "experiment_id": exp_id}

    async def get_run(self, run_id: str) -> dict[str, Any]:
        row = await self.ctx.read(self.db.get_run, run_id)
        if row is None:
            raise not_found(f"Pipeline run '{run_id}' does not exist.")
        return self.present(row)

    def present(self, row: dict[str, Any]) -> dict[str, Any]:
        """The REST shape of a run: per-step status, attempts, timings, artifacts."""
        t = now_ms()
        spec = row["spec"]
        steps = []
        counts: dict[str, int] = {}
        target = self.targets.get(row["target"] or LOCAL)
        remote = (row["target"] or LOCAL) != LOCAL
        for s in row["steps"]:
            counts[s["status"]] = counts.get(s["status"], 0) + 1
            sdef = spec.get("steps", {}).get(s["step"], {})
            start, end = s["start_time"], s["end_time"]
            steps.append(
                {
                    "name": s["step"],
                    "status": s["status"],
                    "attempt": s["attempt"],
                    "kind": next((k for k in ("notebook", "train") if k in sdef), "script"),
                    "path": sdef.get("notebook") or sdef.get("train") or sdef.get("script"),
                    "depends_on": sdef.get("depends_on", []),
                    "start_time": start,
                    "end_time": end,
                    "duration_ms": (end or t) - start if start else None,
                    "tracking_run_id": s["tracking_run_id"],
                    "error": s["error"],
                    "cached_from": s["cached_from"],
                    "has_log": (
                        os.path.exists(log_path(row["run_dir"], s["step"]))
                        or (remote and s["status"] not in ("PENDING", "SKIPPED"))
                    ),
                    "has_notebook": os.path.exists(notebook_path(row["run_dir"], s["step"])),
                }
            )
        start, end = row["start_time"], row["end_time"]
        done = sum(v for k, v in counts.items() if k in STEP_TERMINAL)
        return {
            "run_id": row["run_id"],
            "name": row["name"],
            "run_name": row.get("run_name"),
            "status": row["status"],
            "reason": row["reason"],
            "path": self.rel(row["source_path"]),
            "experiment_id": row["experiment_id"],
            "parameters": row["parameters"],
            "created_time": row["created_time"],
            "start_time": start,
            "end_time": end,
            "duration_ms": (end or t) - start if start else None,
            "target": row["target"],
            "schedule_id": row["schedule_id"],
            "external_url": target.external_url(self.item(row)) if target else None,
            "retry_of": row["retry_of"],
            "progress": {"done": done, "total": len(steps), "counts": counts},
            "steps": steps,
        }

    async def list_runs(
        self,
        status: str | None = None,
        path: str | None = None,
        name: str | None = None,
        schedule_id: str | None = None,
        max_results: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        full = self.resolve_path(path) if path else None
        rows, more = await self.ctx.read(
            lambda: self.db.list_runs(
                status=status,
                name=name,
                source_path=full,
                schedule_id=schedule_id,
                max_results=max_results,
                offset=offset,
            )
        )
        out: dict[str, Any] = {"runs": [self.present(r) for r in rows]}
        if more:
            out["next_offset"] = offset + max_results
        return out

    async def cancel(self, run_id: str) -> dict[str, Any]:
        run = await self.get_run(run_id)
        if run["status"] in RUN_TERMINAL:
            raise TrackingError(
                f"Pipeline run '{run_id}' already ended ({run['status']}).", RESOURCE_CONFLICT
            )
        row = await self.ctx.read(self.db.get_run, run_id)
        t = self.targets.get(run["target"] or LOCAL)
        if t is None:
            raise invalid(
                f"Pipeline run '{run_id}' runs on target '{run['target']}', which "
                "is not configured here."
            )
        await t.cancel(self.item(row), self.ctx)
        return await self.get_run(run_id)

    async def retry(
        self, run_id: str, parameters: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """A new run of the same pipeline and parameters that reuses the outputs of the
        steps that succeeded and reruns the rest."""
        row = await self.ctx.read(self.db.get_run, run_id)
        if row is None:
            raise not_found(f"Pipeline run '{run_id}' does not exist.")
        if row["status"] not in RUN_TERMINAL:
            raise TrackingError(
                f"Pipeline run '{run_id}' is still {row['status']}.", RESOURCE_CONFLICT
            )
        spec = dict(row["spec"])
        base = spec.pop("base_dir", self.root_dir)
        p = pipeline_from_dict(spec, source_path=row["source_path"], base_dir=base)
        reuse = {
            s["step"]: (s["cached_from"] or run_id)
            for s in row["steps"]
            if s["status"] in ("SUCCEEDED", "CACHED")
        }
        params = {**row["parameters"], **(parameters or {})}
        # the retry keeps the name it retries, marked, so the two read as one story
        base = (row.get("run_name") or "").removesuffix(" (retry)")
        name = f"{base} (retry)"[:250] if base else None
        if row["target"] != "local":  # KFP's own cache decides what reruns there
            return await self.submit(
                pipeline=p,
                parameters=params,
                retry_of=run_id,
                run_name=name,
                target=row["target"],
            )
        return await self.submit(
            pipeline=p, parameters=params, retry_of=run_id, reuse=reuse, run_name=name
        )

    async def wait(self, run_id: str) -> dict[str, Any]:
        """Until no target of this process works on the run any more."""
        for t in self.targets.values():
            await t.wait(run_id)
        return await self.get_run(run_id)

    async def step_log(
        self,
        run_id: str,
        step: str,
        offset: int = 0,
        max_bytes: int = 1 << 20,
        tail: int | None = None,
    ) -> tuple[bytes, int, bool]:
        """(bytes from ``offset`` — or the last ``tail`` bytes —, next offset, whether
        the step has ended): the kept log file when there is one, else what the run's
        target serves while the step runs."""
        row, data, offset, ended = await self.ctx.read(
            self._read_log_file, run_id, step, offset, max_bytes, tail
        )
        if data is None:
            data = b""
            t = self.targets.get(row["target"] or LOCAL)
            if t is not None and t is not self.local and not ended:
                # still running in a pod: the target serves the whole log, we a slice of it
                whole = await t.logs(self.item(row), part=step) or b""
                if tail is not None:
                    offset = max(0, len(whole) - tail)
                data = whole[offset : offset + max_bytes]
        return data, offset + len(data), ended

    def read_log(
        self,
        run_id: str,
        step: str,
        offset: int = 0,
        max_bytes: int = 1 << 20,
        tail: int | None = None,
    ) -> tuple[bytes, int, bool]:
        """(blocking) :meth:`step_log` of the kept log file only (what local steps write;
        a remote step's once it ended)."""
        _row, data, offset, ended = self._read_log_file(run_id, step, offset, max_bytes, tail)
        return data or b"", offset + len(data or b""), ended

    def _read_log_file(
        self, run_id: str, step: str, offset: int, max_bytes: int, tail: int | None
    ) -> tuple[dict[str, Any], bytes | None, int, bool]:
        row = self.db.get_run(run_id)
        if row is None:
            raise not_found(f"Pipeline run '{run_id}' does not exist.")
        st = next((s for s in row["steps"] if s["step"] == step), None)
        if st is None:
            raise not_found(f"Pipeline run '{run_id}' has no step '{step}'.")
        path = log_path(row["run_dir"], step)
        ended = st["status"] in STEP_TERMINAL or row["status"] in RUN_TERMINAL
        if not os.path.exists(path):
            return row, None, offset, ended
        if tail is not None:
            offset = max(0, os.path.getsize(path) - tail)
        with open(path, "rb") as f:
            f.seek(offset)
            return row, f.read(max_bytes), offset, ended

    def notebook_file(self, run_id: str, step: str) -> str:
        row = self.db.get_run(run_id)
        if row is None:
            raise not_found(f"Pipeline run '{run_id}' does not exist.")
        path = notebook_path(row["run_dir"], step)
        if not any(s["step"] == step for s in row["steps"]) or not os.path.exists(path):
            raise not_found(f"Step '{step}' of run '{run_id}' has no executed notebook.")
        return path

    # -- schedules ---------------------------------------------------------------------
    async def create_schedule(
        self,
        path: str,
        cron: str,
        timezone: str = "UTC",
        parameters: Mapping[str, Any] | None = None,
        name: str | None = None,
        paused: bool = False,
        target: str = "local",
    ) -> dict[str, Any]:
        from .schedules import next_fire

        target = target or "local"
        self.target(target)  # an unknown target is refused before anything is read
        p = await self.ctx.read(self.load, path)
        try:
            values = resolve_parameters(p, parameters)
        except ParameterError as e:
            raise invalid(str(e)) from None
        nxt = next_fire(cron, timezone, now_ms())
        row: dict[str, Any] = {
            "schedule_id": uuid.uuid4().hex,
            "name": name or p.name,
            "pipeline_path": self.rel(p.source_path) or path,
            "parameters": json.dumps(dict(parameters or {})),
            "cron": cron,
            "timezone": timezone,
            "paused": paused,
            "next_fire_time": nxt,
            "created_time": now_ms(),
            "owner": self.owner,
            "target": target,
        }
        del values
        await self.ctx.call(self.db.insert_schedule, row)
        return await self.get_schedule(row["schedule_id"])

    async def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        row = await self.ctx.read(self.db.get_schedule, schedule_id)
        if row is None:
            raise not_found(f"Schedule '{schedule_id}' does not exist.")
        return row

    async def list_schedules(self) -> dict[str, Any]:
        return {"schedules": await self.ctx.read(self.db.list_schedules)}

    async def update_schedule(
        self,
        schedule_id: str,
        *,
        paused: bool | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        name: str | None = None,
        target: str | None = None,
    ) -> dict[str, Any]:
        from .schedules import next_fire

        row = await self.get_schedule(schedule_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if target is not None:
            self.target(target or "local")
            values["target"] = target or "local"
        cron = cron or row["cron"]
        tz = timezone or row["timezone"]
        if parameters is not None:
            p = await self.ctx.read(self.load, row["pipeline_path"])
            try:
                resolve_parameters(p, parameters)
            except ParameterError as e:
                raise invalid(str(e)) from None
            values["parameters"] = json.dumps(dict(parameters))
        if paused is not None:
            values["paused"] = paused
        # resuming or re-timing: the next fire is computed from now (no catch-up burst)
        if cron != row["cron"] or tz != row["timezone"] or (paused is False and row["paused"]):
            values.update(cron=cron, timezone=tz, next_fire_time=next_fire(cron, tz, now_ms()))
        if values:
            await self.ctx.call(self.db.update_schedule, schedule_id, **values)
        return await self.get_schedule(schedule_id)

    async def delete_schedule(self, schedule_id: str) -> None:
        if not await self.ctx.call(self.db.delete_schedule, schedule_id):
            raise not_found(f"Schedule '{schedule_id}' does not exist.")

    async def run_schedule_now(self, schedule_id: str) -> dict[str, Any]:
        from .schedules import scheduled_run_name

        row = await self.get_schedule(schedule_id)
        run = await self.submit(
            row["pipeline_path"],
            parameters=row["parameters"],
            schedule_id=schedule_id,
            run_name=scheduled_run_name(row["name"], now_ms(), row["timezone"]),
            target=row["target"],
        )
        await self.ctx.call(self.db.update_schedule, schedule_id, last_run_id=run["run_id"])
        return run

    async def fire_due(self, now: int | None = None) -> list[str]:
        """Start a run for every due schedule this process wins the claim for."""
        from .schedules import next_fire, scheduled_run_name

        now = now or now_ms()
        started = []
        for row in await self.ctx.call(self.db.due_schedules, now, self.owner):
            try:
                nxt = next_fire(row["cron"], row["timezone"], max(now, row["next_fire_time"]))
            except TrackingError as e:
                await self.ctx.call(
                    self.db.update_schedule, row["schedule_id"], paused=True, last_error=e.message
                )
                continue
            if not await self.ctx.call(
                self.db.claim_fire, row["schedule_id"], row["next_fire_time"], nxt
            ):
                continue  # another process fired it
            try:
                # a target removed from the config since is a TrackingError too: recorded
                # below; the claim above already moved the next fire time on
                run = await self.submit(
                    row["pipeline_path"],
                    parameters=row["parameters"],
                    schedule_id=row["schedule_id"],
                    run_name=scheduled_run_name(
                        row["name"], row["next_fire_time"], row["timezone"]
                    ),
                    target=row["target"],
                )
                await self.ctx.call(
                    self.db.update_schedule,
                    row["schedule_id"],
                    last_run_id=run["run_id"],
                    last_error=None,
                )
                started.append(run["run_id"])
            except TrackingError as e:
                await self.ctx.call(
                    self.db.update_schedule, row["schedule_id"], last_error=e.message[:4000]
                )
                self.log.warning(
                    "jupyter-mlops: schedule %s could not start: %s", row["schedule_id"], e.message
                )
        return started

    def drain_idle_kernels(self) -> int:
        """Shut the warm kernels down when nothing used them for a while."""
        timeout = self.warm_kernels_idle_timeout
        pool = self.ctx.pool
        if timeout <= 0 or self.active or time.monotonic() - pool.last_used < timeout:
            return 0
        return pool.drain()

    async def _schedule_loop(self) -> None:
        while True:
            try:
                self.drain_idle_kernels()
                await self.fire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("jupyter-mlops: checking schedules failed")
            await asyncio.sleep(self.schedule_interval)


def python() -> str:
    return sys.executable
