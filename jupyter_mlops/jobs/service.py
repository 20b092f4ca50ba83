"""The training service: submit, watch, cancel and read the logs of training jobs.

One instance per process (the Jupyter server extension, the CLI, or a script's
``mlops.jobs.submit`` without a server). It validates and stores a job, then hands it to a
target (:mod:`jupyter_mlops.targets`; :class:`~.target.LocalTrainingTarget`, ``local``,
runs the ranks as processes of this machine) through a :class:`~.target.TrainingContext`.
Every job is a tracked run (its id is the job's id): parameters, the spec and the entry
point's source as artifacts, the git commit, the status, and every rank's log as an artifact
when it ends. When the process stops, its local jobs are stopped and marked FAILED with the
reason, by itself on a clean stop, and otherwise by the next process to start (the local
target's ``attach`` kills what they left running).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from traitlets import Any as AnyTrait
from traitlets import Dict, Float, Int, List, Unicode, default

from .._process import alive
from ..events import WORK_OUTCOMES, Event
from ..services import Service, current_user
from ..specfile import Issue, within
from ..targets import LOCAL, Target, build_targets, unknown_target
from ..tracking.errors import TrackingError, invalid, not_found
from . import projectentry
from .db import JOB_TERMINAL, JobDB
from .local import now_ms, rank_log
from .spec import (
    JobInvalid,
    JobSpec,
    load_job,
    parse_job,
    resolve_params,
    spec_from_dict,
    validate_dict,
)
from .target import JobItem, LocalTrainingTarget, TrainingContext

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore

RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
#: Job status → status of its tracked run.
TRACKING_STATUS = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "CANCELED": "KILLED"}
TAG_JOB = "mlops.job"
TAG_FRAMEWORK = "mlops.job.framework"
TAG_SHAPE = "mlops.job.shape"
TAG_TARGET = "mlops.job.target"
TAG_ERROR = "mlops.job.error"
#: Tags a client may pass along with a submission (where it was submitted from).
SOURCE_TAG_PREFIXES = ("mlflow.source.", "mlops.source.")
#: Other tags a submission may set: where it came from, its parent run.
EXTRA_TAGS = ("mlops.job.submitted_from", "mlflow.parentRunId")


class JobError(TrackingError):
    """Validation failed: ``issues`` say where (file, line, field)."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("The job is not valid:\n" + "\n".join(str(i) for i in issues))
        self.issues = issues

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = super().to_json()
        out["issues"] = [i.to_dict() for i in self.issues]
        return out


def detect_gpus(env: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else the NVIDIA
    driver's list (``/proc/driver/nvidia/gpus``); none without a driver."""
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    try:
        return [str(i) for i in range(len(os.listdir("/proc/driver/nvidia/gpus")))]
    except OSError:
        return []


class TrainingService(Service):
    """Runs training jobs (``nodes x procs_per_node`` ranks) and keeps their history in the
    tracking database."""

    jobs_dir = Unicode(
        config=True,
        help="""Where jobs keep their ranks' logs and files (default:
        ``<jupyter data dir>/mlops/jobs``).""",
    )
    local_gpus = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="""GPU ids local jobs may use (split between a job's nodes through
        CUDA_VISIBLE_DEVICES). None: this server's CUDA_VISIBLE_DEVICES, else every GPU the
        NVIDIA driver lists, else none.""",
    )
    max_local_ranks = Int(
        64,
        config=True,
        help="The most processes (nodes x procs_per_node) one local job may start.",
    )
    stop_grace = Float(
        3.0,
        config=True,
        help="""Seconds between SIGTERM and SIGKILL when a job's ranks are stopped (cancel,
        a failed rank, a server stopping).""",
    )
    heartbeat_interval = Float(
        30.0,
        config=True,
        help="""Seconds between heartbeats of a running job's tracked run, so the heartbeat
        reaper does not take a job whose ranks log nothing for long for a dead run.""",
    )
    python = Unicode(
        config=True,
        help="The Python that runs the ranks (default: the server's own).",
    )
    system_metrics_interval = Float(
        10.0,
        config=True,
        help="""Seconds between samples of a job's system metrics (MLflow's
        ``system/cpu_utilization_percentage``, ``system/gpu_0_utilization_percentage``,
        ...; ``system/node_<i>/...`` per node of a multi-node Kubernetes job), logged into
        the job's run; 0 turns them off. Example: ``c.TrainingService.system_metrics_interval
        = 30``.""",
    )
    targets = Dict(
        config=True,
        help="""Kubernetes targets jobs may go to besides ``local``: ``{name: {"kind":
        "trainjob" | "pytorchjob" | "tfjob", "api_url": ..., "namespace": ..., "image": ...,
        ...}}`` (docs/training.md, "Kubernetes targets"). Checked at start-up: a mistake
        is logged naming the target and the field, and submitting there says why. Example:
        ``{"gpu": {"kind": "trainjob", "namespace": "team-a", "image":
        "reg.example/train:1", "runtime": "torch-distributed", "queue": "team-a-q"}}``""",
    )
    admission = AnyTrait(
        None,
        allow_none=True,
        config=True,
        help="""A callable ``admission(job, target) -> None | Awaitable[None]`` run before a
        job is stored and handed to its target (``job``: the name, framework, nodes,
        procs_per_node, resources and target of the submission; ``target``: the target's
        name). Raise a ``TrackingError`` to refuse it (a 4xx with its message): quotas,
        policies. It may return (or resolve to) a release callable, called once when the job
        ends, e.g. to free a reservation (the hub's team GPU quota sets this hook on a team
        server). Example: ``c.TrainingService.admission = my_quota_check``.""",
    )

    @default("jobs_dir")
    def _default_jobs_dir(self) -> str:
        from jupyter_core.paths import jupyter_data_dir

        return os.path.join(jupyter_data_dir(), "mlops", "jobs")

    @default("python")
    def _default_python(self) -> str:
        return sys.executable

    def __init__(
        self,
        store: TrackingStore,
        root_dir: str,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(store, root_dir, **kwargs)
        self.db = JobDB(self.engine)
        self._env = dict(env) if env is not None else None
        self.gpus = list(self.local_gpus) if self.local_gpus is not None else detect_gpus(self._env)
        self._io = ThreadPoolExecutor(1, thread_name_prefix="mlops-jobs")
        self._reads = ThreadPoolExecutor(2, thread_name_prefix="mlops-jobs-read")
        self._beat: asyncio.Task[Any] | None = None
        self.ctx = TrainingContext(self)
        self.local = LocalTrainingTarget(
            self.gpus,
            self.max_local_ranks,
            self.stop_grace,
            self.python,
            self._rank_env,
            self.system_metrics_interval,
        )
        configured, errors = build_targets("jobs", self.targets, "c.TrainingService.targets")
        for name, error in errors.items():
            self.log.error("jupyter-mlops: training target %r left out: %s", name, error)
        #: Where jobs can go: this server, then the configured targets.
        self.all_targets: dict[str, Target[Any, Any]] = {LOCAL: self.local, **configured}
        #: Configured targets left out, with why (named when a submission asks for them).
        self.target_errors: dict[str, str] = errors
        #: What frees each admitted job's reservation, by job id (see ``admission``).
        self._releases: dict[str, Callable[[], Awaitable[Any]]] = {}

    @property
    def active(self) -> dict[str, Any]:
        """The jobs running in this process, by id."""
        return self.local.jobs

    # -- plumbing ------------------------------------------------------------------------
    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Writes, in order, on the one bookkeeping thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._io, lambda: fn(*args, **kwargs)
        )

    async def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self._reads, lambda: fn(*args, **kwargs)
        )

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Hand the local jobs a stopped process left unfinished to the local target (which
        kills what they left running and fails them); heartbeat running jobs' tracked runs."""
        for item in await self.call(self.orphans):
            await self.local.attach(item, self.ctx)
        for item in await self.call(self.cluster_jobs):
            await self.all_targets[item.target].attach(item, self.ctx)
        if self.heartbeat_interval > 0:
            self._beat = asyncio.ensure_future(self._heartbeat_loop())

    def orphans(self) -> list[JobItem]:
        """Unfinished local jobs of this machine whose process is gone."""
        host = socket.gethostname()
        out = []
        for job in self.db.unfinished_jobs():
            if job["target"] != LOCAL:
                continue
            ex = job.get("executor") or ""
            h, _, pid = ex.rpartition(":")
            if job["job_id"] in self.active or (h and h != host):
                continue  # ours and running, or another machine's (shared database)
            if pid.isdigit() and int(pid) != os.getpid() and alive(int(pid)):
                continue  # another server on this machine runs it
            out.append(self._item(job))
        if out:
            self.log.warning(
                "jupyter-mlops: %d interrupted training job(s) will be marked FAILED", len(out)
            )
        return out

    def cluster_jobs(self) -> list[JobItem]:
        """Unfinished jobs of the configured (cluster) targets: followed again at start-up."""
        return [
            self._item(job)
            for job in self.db.unfinished_jobs()
            if job["target"] != LOCAL and job["target"] in self.all_targets
        ]

    def _item(self, row: dict[str, Any]) -> JobItem:
        spec = dict(row["spec"])
        base = spec.pop("base_dir", self.root_dir)
        return JobItem(
            row["job_id"],
            row["target"],
            row.get("executor"),
            spec_from_dict(spec, source_path=row["source_path"], base_dir=base),
            dict(row["parameters"]),
            row["job_dir"],
            list(row.get("ranks") or []),
            str(row.get("experiment_id") or ""),
        )

    async def stop(self) -> None:
        """Stop every target (the local one stops its jobs: FAILED, the server stopped)."""
        if self._beat is not None:
            self._beat.cancel()
        for target in self.all_targets.values():
            await target.stop()
        self._io.shutdown(wait=True)
        self._reads.shutdown(wait=True)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if self.active:
                with contextlib.suppress(Exception):
                    await self.call(self.store.heartbeat, list(self.active))

    # -- specs ---------------------------------------------------------------------------
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

    def load(
        self,
        path: str | None = None,
        text: str | None = None,
        spec: Mapping[str, Any] | None = None,
        base_dir: str | None = None,
    ) -> JobSpec:
        """A job from a file (``path``), YAML ``text``, or a ``spec`` mapping (the Python API)
        whose relative paths resolve against ``base_dir``; raises :class:`JobError`."""
        try:
            if spec is not None:
                base = self.resolve_path(base_dir) if base_dir else self.root_dir
                return validate_dict(dict(spec), base, root=self.root_dir, display="<job>")
            if text is not None:
                full = (
                    self.resolve_path(path)
                    if path
                    else os.path.join(
                        self.resolve_path(base_dir) if base_dir else self.root_dir, "<job>.job.yaml"
                    )
                )
                return parse_job(text, path=full, root=self.root_dir, display=self.rel(full))
            full = self.resolve_path(path or "")
            if not os.path.isfile(full):
                raise not_found(f"No job file {path!r}.")
            return load_job(full, root=self.root_dir, display=self.rel(full))
        except JobInvalid as e:
            for issue in e.issues:
                if issue.file and os.path.isabs(issue.file):
                    issue.file = self.rel(issue.file)
            raise JobError(e.issues) from None

    def target(self, name: str | None) -> Target[Any, Any]:
        """The target ``name`` (default: local); a 400 naming the configured ones."""
        name = name or LOCAL
        if name in self.all_targets:
            return self.all_targets[name]
        raise unknown_target(name, self.all_targets, self.target_errors)

    def target_check(self, name: str | None) -> str:
        return str(self.target(name).name)

    async def submit(
        self,
        path: str | None = None,
        text: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        *,
        spec: JobSpec | Mapping[str, Any] | None = None,
        base_dir: str | None = None,
        run_name: str | None = None,
        target: str = LOCAL,
        source_tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> dict[str, Any]:
        tgt = self.target(target)
        if not isinstance(spec, JobSpec):
            spec = await self.read(self.load, path, text, spec, base_dir)
        assert isinstance(spec, JobSpec)
        try:
            values = resolve_params(spec, dict(parameters or {}))
        except ValueError as e:
            raise invalid(str(e)) from None
        if spec.entry_kind == "project":
            await self.read(_project_entry, spec, values, tgt is self.local)
        item = JobItem("", tgt.name, None, spec, values, "")
        await tgt.validate(item)  # refused before anything is stored
        release = await self.admit(spec, tgt.name)
        tags = dict(source_tags or {})
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        try:
            row = await self.call(self._create, spec, values, run_name, tags, tgt.name)
        except BaseException:
            if release is not None:
                await release()
            raise
        if release is not None:
            self._releases[row["job_id"]] = release
        item.id, item.job_dir = row["job_id"], row["job_dir"]
        item.ranks, item.experiment_id = row["ranks"], row["experiment_id"]
        try:
            await tgt.submit(item, self.ctx)
        except Exception as e:  # it did not start: the job ends FAILED with why
            self.log.exception("jupyter-mlops: submitting job %s to %s", item.id, tgt.name)
            await self.ctx.transition(item, "FAILED", reason=f"{type(e).__name__}: {e}")
        return await self.get_job(item.id)

    async def admit(self, spec: JobSpec, target: str) -> Callable[[], Awaitable[Any]] | None:
        """The :attr:`admission` hook (quotas, policies); raising refuses the job. What it
        returns, if callable, frees what it reserved once the job ends (:meth:`released`)."""
        if self.admission is None:
            return None
        summary = {
            "name": spec.name,
            "framework": spec.framework,
            "nodes": spec.nodes,
            "procs_per_node": spec.procs_per_node,
            "resources": dict(spec.resources),
            "target": target,
        }
        result = self.admission(summary, target)
        if inspect.isawaitable(result):
            result = await result
        return result if callable(result) else None

    async def released(self, job_id: str) -> None:
        """The job ended: free what its admission reserved (once)."""
        release = self._releases.pop(job_id, None)
        if release is not None:
            try:
                await release()
            except Exception:
                self.log.exception("jupyter-mlops: freeing job %s's reservation", job_id)

    def _rank_env(self) -> dict[str, str]:
        # the environment as it is now (a server exports its final URL once it listens)
        env = dict(os.environ if self._env is None else self._env)
        env.setdefault("JUPYTER_MLOPS_TRACKING_URI", self.store.uri)
        # ranks are not the server's kernels: no notebook session of their own
        for name in ("JPY_SESSION_NAME", "JPY_PARENT_PID"):
            env.pop(name, None)
        return env

    def _create(
        self,
        spec: JobSpec,
        values: dict[str, Any],
        run_name: str | None,
        source_tags: dict[str, str],
        target: str = LOCAL,
    ) -> dict[str, Any]:
        exp_id = self.experiment_id(spec.experiment or spec.name)
        entry_file = spec.entry_path()
        source_name = self.rel(spec.source_path) or self.rel(entry_file) or f"<{spec.name}>"
        tags = {
            "mlflow.source.type": "JOB",
            "mlflow.source.name": source_name,
            TAG_JOB: spec.name,
            TAG_FRAMEWORK: spec.framework,
            TAG_SHAPE: f"{spec.nodes}x{spec.procs_per_node}",
            TAG_TARGET: target,
        }
        if spec.source_path:
            tags["mlops.job.file"] = self.rel(spec.source_path) or spec.source_path
        if entry_file:
            tags["mlops.job.entry"] = self.rel(entry_file) or entry_file
        git = _git_tags(os.path.dirname(entry_file or spec.source_path or "") or spec.base_dir)
        project = spec.entry_kind == "project"
        if project:  # `mlflow run` records a branch only for a --version naming one
            git.pop("mlflow.source.git.branch", None)
        tags.update(git)
        tags.update(
            {
                k: str(v)
                for k, v in source_tags.items()
                if (
                    (k.startswith(SOURCE_TAG_PREFIXES) or k in EXTRA_TAGS)
                    and k not in ("mlflow.source.type", "mlflow.source.name")
                )
                or (project and projectentry.accepted_tag(k))
            }
        )
        params = [
            (k, v if isinstance(v, str) else json.dumps(v, default=str)[:6000])
            for k, v in values.items()
        ]
        if project:  # recorded as `mlflow run` records it
            kind = self.all_targets[target].kind if target in self.all_targets else target
            tags.update(projectentry.run_tags(spec, kind, target == LOCAL, current_user()))
            params = projectentry.run_params(spec, values)
        user = current_user()
        if user:  # MLflow's UI and search read the user from this tag, not the run's user_id
            tags.setdefault("mlflow.user", user)
        run = self.store.create_run(exp_id, user_id=user, run_name=run_name or None, tags=tags)
        job_id = run.info.run_id
        if params:
            self.store.log_batch(job_id, params=params)
        job_dir = os.path.join(self.jobs_dir, job_id)
        os.makedirs(os.path.join(job_dir, "logs"), exist_ok=True)
        canonical = spec.to_dict()
        stored = {**canonical, "base_dir": spec.base_dir}
        repo = self.store.artifact_repo(run.info.artifact_uri)
        repo.put("job/spec.json", json.dumps(canonical, indent=1).encode())
        if spec.source_path and os.path.isfile(spec.source_path):
            with open(spec.source_path, "rb") as f:
                repo.put("job/" + os.path.basename(spec.source_path), f.read())
        if spec.entry_kind == "code":
            with open(os.path.join(job_dir, "code.py"), "w", encoding="utf-8") as f:
                f.write(spec.entry)
            repo.put("source/code.py", spec.entry.encode())
        elif entry_file and os.path.isfile(entry_file) and os.path.getsize(entry_file) < 20 << 20:
            with open(entry_file, "rb") as f:
                repo.put("source/" + os.path.basename(entry_file), f.read())
        ranks = [
            {"rank": p.rank, "node": p.node, "local_rank": p.local_rank, "status": "PENDING"}
            for p in _placements(spec)
        ]
        self.db.insert_job(
            {
                "job_id": job_id,
                "name": spec.name,
                "experiment_id": exp_id,
                "source_path": spec.source_path or entry_file,
                "spec": json.dumps(stored),
                "parameters": json.dumps(values, default=str),
                "status": "QUEUED",
                "created_time": now_ms(),
                "job_dir": job_dir,
                "target": target,
                "executor": None,
                "attempt": 0,
            },
            ranks,
        )
        return {"job_id": job_id, "job_dir": job_dir, "experiment_id": exp_id, "ranks": ranks}

    def _end(
        self,
        job_id: str,
        job_dir: str,
        status: str,
        reason: str | None,
        ranks: list[int],
        fields: Mapping[str, Any] | None = None,
    ) -> bool:
        """The job's final state (with ``fields``, e.g. the attempt it ended on), its ranks'
        logs as artifacts of its run, the run ended; False (and nothing changed) when it had
        ended already."""
        t = now_ms()
        if not self.db.end_job(job_id, status, reason, t, **(fields or {})):
            return False
        self._announce(job_id, status, reason)
        try:
            run = self.store.get_run(job_id)
            repo = self.store.artifact_repo(run.info.artifact_uri)
            for rank in ranks:
                path = rank_log(job_dir, rank)
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        repo.put(f"logs/rank-{rank}.log", f.read())
            event_log = os.path.join(job_dir, "logs", "job.log")
            if os.path.exists(event_log):
                with open(event_log, "rb") as f:
                    repo.put("logs/job.log", f.read())
            if reason and status != "SUCCEEDED":
                self.store.set_tag(job_id, TAG_ERROR, reason[:8000])
            self.store.update_run_info(
                job_id, status=TRACKING_STATUS.get(status, "FAILED"), end_time=t
            )
        except Exception:
            self.log.exception("jupyter-mlops: ending the tracked run of job %s", job_id)
        return True

    def _announce(self, job_id: str, status: str, reason: str | None) -> None:
        """Tell the bus that the job ended (blocking: reads its row)."""
        try:
            row = self.db.get_job(job_id) or {}
        except Exception:  # noqa: BLE001 - a notification must not cost the job its end
            row = {}
        self.publish(
            Event(
                kind="job",
                outcome=WORK_OUTCOMES.get(status, "failed"),
                id=job_id,
                name=str(row.get("name") or ""),
                status=status,
                reason=reason or "",
                experiment_id=str(row.get("experiment_id") or ""),
                start_time=row.get("start_time") or row.get("created_time"),
            )
        )

    async def get_job(self, job_id: str) -> dict[str, Any]:
        row = await self.read(self.db.get_job, job_id)
        if row is None:
            raise not_found(f"Training job '{job_id}' does not exist.")
        return self.present(row)

    def present(self, row: dict[str, Any]) -> dict[str, Any]:
        """The REST shape of a job: its spec, status, and a state per rank."""
        t = now_ms()
        spec = dict(row["spec"])
        spec.pop("base_dir", None)
        counts: dict[str, int] = {}
        ranks = []
        for r in row["ranks"]:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
            start, end = r["start_time"], r["end_time"]
            ranks.append(
                {
                    "rank": r["rank"],
                    "node": r["node"],
                    "local_rank": r["local_rank"],
                    "status": r["status"],
                    "pid": r["pid"],
                    "exit_code": r["exit_code"],
                    "start_time": start,
                    "end_time": end,
                    "duration_ms": (end or t) - start if start else None,
                    "error": r["error"],
                    "has_log": os.path.exists(rank_log(row["job_dir"], r["rank"])),
                }
            )
        start, end = row["start_time"], row["end_time"]
        return {
            "job_id": row["job_id"],
            "run_id": row["job_id"],
            "name": row["name"],
            "status": row["status"],
            "reason": row["reason"],
            "framework": spec.get("framework"),
            "nodes": spec.get("nodes"),
            "procs_per_node": spec.get("procs_per_node"),
            "path": self.rel(row["source_path"]),
            "experiment_id": row["experiment_id"],
            "parameters": row["parameters"],
            "attempt": row["attempt"],
            "created_time": row["created_time"],
            "start_time": start,
            "end_time": end,
            "duration_ms": (end or t) - start if start else None,
            "target": row["target"],
            "spec": spec,
            "progress": {"counts": counts, "total": len(ranks)},
            "ranks": ranks,
        }

    async def list_jobs(
        self,
        status: str | None = None,
        name: str | None = None,
        max_results: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        rows, more = await self.read(
            lambda: self.db.list_jobs(
                status=status, name=name, max_results=max_results, offset=offset
            )
        )
        out: dict[str, Any] = {"jobs": [self.present(r) for r in rows]}
        if more:
            out["next_offset"] = offset + max_results
        return out

    async def cancel(self, job_id: str) -> dict[str, Any]:
        row = await self.read(self.db.get_job, job_id)
        if row is None:
            raise not_found(f"Training job '{job_id}' does not exist.")
        if row["status"] in JOB_TERMINAL:
            raise TrackingError(
                f"Training job '{job_id}' already ended ({row['status']}).", RESOURCE_CONFLICT
            )
        tgt = self.all_targets.get(row["target"])
        if tgt is None or (tgt is self.local and job_id not in self.active):
            raise TrackingError(
                f"Training job '{job_id}' is run by another process "
                f"({row.get('executor')}); cancel it there.",
                RESOURCE_CONFLICT,
            )
        await tgt.cancel(self._item(row), self.ctx)
        await tgt.wait(job_id)  # stopped, and its run ended with the logs kept
        return await self.get_job(job_id)

    async def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The job once it ended (and its run was ended): waits while a target here watches
        it (at most ``timeout`` seconds)."""
        row = await self.read(self.db.get_job, job_id)
        if row is None:
            raise not_found(f"Training job '{job_id}' does not exist.")
        tgt = self.all_targets.get(row["target"])
        if tgt is not None:
            try:
                await asyncio.wait_for(tgt.wait(job_id), timeout)
            except asyncio.TimeoutError:
                pass
        return await self.get_job(job_id)

    def read_log(
        self,
        job_id: str,
        rank: int,
        offset: int = 0,
        max_bytes: int = 1 << 20,
        tail: int | None = None,
    ) -> tuple[bytes, int, bool]:
        """(bytes from ``offset`` — or the last ``tail`` bytes —, next offset, whether the
        job has ended)."""
        row = self.db.get_job(job_id)
        if row is None:
            raise not_found(f"Training job '{job_id}' does not exist.")
        if not any(r["rank"] == rank for r in row["ranks"]):
            raise not_found(
                f"Training job '{job_id}' has no rank {rank} (ranks 0 to {len(row['ranks']) - 1})."
            )
        ended = row["status"] in JOB_TERMINAL
        path = rank_log(row["job_dir"], rank)
        data = b""
        if os.path.exists(path):
            if tail is not None:
                offset = max(0, os.path.getsize(path) - tail)
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(max_bytes)
        return data, offset + len(data), ended

    def list_targets(self) -> list[dict[str, Any]]:
        return [t.describe() for t in self.all_targets.values()]


def _project_entry(spec: JobSpec, values: dict[str, Any], local: bool) -> None:
    """A project entry: its parameters checked against the MLproject (a 400 naming the
    line) and, off this machine, the project's ``docker_env`` image as the job's."""
    projectentry.run_params(spec, values)
    if not local and not spec.image:
        spec.image = projectentry.docker_image(spec)


def _placements(spec: JobSpec) -> list[Any]:
    from .frameworks import placements

    return placements(spec.nodes, spec.procs_per_node)


def _git_tags(directory: str) -> dict[str, str]:
    try:
        from ..client.source import git_tags

        return git_tags(directory) if directory and os.path.isdir(directory) else {}
    except Exception:  # noqa: BLE001 - best effort, as for runs
        return {}
