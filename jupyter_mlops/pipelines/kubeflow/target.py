"""Kubeflow Pipelines as a place where pipeline runs go.

A configured target submits a run as inline KFP v2 IR (compiled by
:mod:`.compiler`) after pre-creating the tracked runs the steps log into, then
watches it by polling ``GetRun``: KFP's run and task states become our run and
step statuses, and the tracked runs end with them. A step's log is read live
from KFP while it runs and kept in the run directory (and as the step run's
``step.log`` artifact) once it ends: KFP recycles pods, and their logs with them.

The runs table's ``executor`` says ``kubeflow:<target>/<KFP run id>``; after a
restart the service re-attaches a watcher to every unfinished one instead of
failing it (the run goes on in the cluster whatever this process does).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...targets import TARGET_NAME, ConfigReader, Target, TargetConfigError
from ...tracking.errors import TrackingError, invalid
from ..db import RUN_TERMINAL, STEP_TERMINAL, now_ms
from ..executor import Context, PipelineRunItem, log_path, notebook_path, ref_of
from .client import KfpClient, KfpError, default_token_path, token_reader

if TYPE_CHECKING:
    from ..model import Pipeline

__all__ = [
    "KIND",
    "KubeflowTarget",
    "TargetConfig",
    "TargetConfigError",
    "parse_executor",
    "parse_target",
]

log = logging.getLogger(__name__)

KIND = "kubeflow"
EXECUTOR_PREFIX = "kubeflow:"

#: KFP RuntimeState of a run → our run status.
RUN_STATES = {
    "RUNTIME_STATE_UNSPECIFIED": "QUEUED",
    "PENDING": "QUEUED",
    "RUNNING": "RUNNING",
    "PAUSED": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "SKIPPED": "SUCCEEDED",
    "FAILED": "FAILED",
    "CANCELING": "CANCELING",
    "CANCELED": "CANCELED",
}
#: KFP RuntimeState of a task → our step status (a task being cancelled still runs).
TASK_STATES = {
    "RUNTIME_STATE_UNSPECIFIED": "PENDING",
    "PENDING": "PENDING",
    "RUNNING": "RUNNING",
    "PAUSED": "RUNNING",
    "CANCELING": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "SKIPPED": "SKIPPED",
    "FAILED": "FAILED",
    "CANCELED": "CANCELED",
}
#: Longest wait between polls while KFP does not answer.
MAX_BACKOFF = 60.0
#: How long a live log read from KFP is reused (the panel follows a log 4 times a second).
LOG_CACHE_SECONDS = 1.0


# -- configuration ------------------------------------------------------------------------
@dataclass
class TargetConfig:
    """One entry of ``PipelineService.kubeflow_targets``, checked."""

    name: str
    endpoint: str
    image: str
    tracking_uri: str
    namespace: str | None = None
    token: str | None = None
    token_path: str | None = None
    ui_url: str | None = None
    experiment: str | None = None
    display_name: str | None = None
    verify_ssl: bool | str = True
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)
    pipeline_root: str | None = None
    service_account: str | None = None
    poll_interval: float = 5.0
    #: The (Cluster)TrainingRuntime the TrainJobs of ``train:`` steps refer to.
    train_runtime: str = "torch-distributed"
    train_runtime_kind: str = "ClusterTrainingRuntime"
    #: A Kueue LocalQueue for those TrainJobs (None: no queue label).
    train_queue: str | None = None
    #: The most a step's files (and a TrainJob's code) may take inside the objects, packed.
    max_embedded_bytes: int = 1_000_000


_FIELDS = {
    "endpoint",
    "image",
    "tracking_uri",
    "namespace",
    "token",
    "token_path",
    "ui_url",
    "experiment",
    "display_name",
    "verify_ssl",
    "env",
    "secret_env",
    "pipeline_root",
    "service_account",
    "poll_interval",
    "train_runtime",
    "train_runtime_kind",
    "train_queue",
    "max_embedded_bytes",
}
#: Kinds a TrainJob's ``runtimeRef`` may name.
RUNTIME_KINDS = ("ClusterTrainingRuntime", "TrainingRuntime")


def parse_target(name: Any, raw: Any, where: str | None = None) -> TargetConfig:
    """Check one target's settings; a :class:`TargetConfigError` names the target and field."""
    where = where or f"kubeflow_targets[{name!r}]"
    if not isinstance(name, str) or not TARGET_NAME.match(name) or name == "local":
        raise TargetConfigError(
            f"{where}: a target name is 1-32 lower-case letters, digits, '-' or "
            "'_' (and not 'local')"
        )
    r = ConfigReader(where, raw)
    r.check_unknown(_FIELDS)
    env = r.str_map("env", "environment variable")
    for k, v in env.items():
        if not isinstance(v, (str, int, float, bool)):
            raise r.error(f"env.{k}", "must be a string")
    secret_env: dict[str, tuple[str, str]] = {}
    for k, v in r.str_map("secret_env", "environment variable").items():
        if isinstance(v, str) and v.count("/") == 1:
            v = v.split("/")
        if (
            not isinstance(v, (list, tuple))
            or len(v) != 2
            or not all(isinstance(x, str) and x for x in v)
        ):
            raise r.error(f"secret_env.{k}", "must be [secret name, key] (or 'secret/key')")
        secret_env[k] = (v[0], v[1])
    verify = r.raw.get("verify_ssl", True)
    if not isinstance(verify, (bool, str)):
        raise r.error("verify_ssl", "must be true/false or a CA bundle path")
    poll = r.number("poll_interval", 5.0)
    token, token_path = r.text("token"), r.text("token_path")
    if token and token_path:
        raise r.error(None, "give token or token_path, not both")
    runtime_kind = r.text("train_runtime_kind", default=RUNTIME_KINDS[0]) or RUNTIME_KINDS[0]
    if runtime_kind not in RUNTIME_KINDS:
        raise r.error("train_runtime_kind", f"must be one of {', '.join(RUNTIME_KINDS)}")
    runtime = r.text("train_runtime", default="torch-distributed") or "torch-distributed"
    queue = r.text("train_queue")
    for key, value in (("train_runtime", runtime), ("train_queue", queue)):
        if value is not None and not re.match(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", value):
            raise r.error(key, f"{value!r} is not a Kubernetes object name")
    return TargetConfig(
        name=name,
        endpoint=r.text("endpoint", required=True, url=True) or "",
        image=r.text("image", required=True) or "",
        tracking_uri=r.text("tracking_uri", required=True) or "",
        namespace=r.text("namespace"),
        token=token,
        token_path=token_path or (None if token else default_token_path()),
        ui_url=r.text("ui_url", url=True),
        experiment=r.text("experiment"),
        display_name=r.text("display_name"),
        verify_ssl=verify,
        env={k: str(v) for k, v in env.items()},
        secret_env=secret_env,
        pipeline_root=r.text("pipeline_root"),
        service_account=r.text("service_account"),
        poll_interval=poll,
        train_runtime=runtime,
        train_runtime_kind=runtime_kind,
        train_queue=queue,
        max_embedded_bytes=int(
            r.number("max_embedded_bytes", 1_000_000, low=1000, high=1_400_000, what="bytes")
        ),
    )


def parse_executor(executor: str | None) -> tuple[str, str] | None:
    """``kubeflow:<target>/<KFP run id>`` → (target, KFP run id or "")."""
    if not executor or not executor.startswith(EXECUTOR_PREFIX):
        return None
    target, _, kfp_id = executor[len(EXECUTOR_PREFIX) :].partition("/")
    return target, kfp_id


def _ms(stamp: Any) -> int | None:
    """An RFC 3339 time from KFP → epoch ms (KFP's zero time "1970-01-01T00:00:00Z" → None)."""
    if not isinstance(stamp, str) or not stamp:
        return None
    s = stamp.replace("Z", "+00:00")
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
    if m:  # Python reads at most microseconds
        s = m.group(1) + (m.group(2) or "")[:7] + m.group(3)
    try:
        ms = int(datetime.fromisoformat(s).timestamp() * 1000)
    except ValueError:
        return None
    return ms if ms > 0 else None


# -- the target -----------------------------------------------------------------------------
class KubeflowTarget(Target[PipelineRunItem, Context]):
    """Submits, watches, cancels and reads logs of runs on one KFP endpoint."""

    kind = KIND

    def __init__(self, cfg: TargetConfig) -> None:
        super().__init__(cfg.name, cfg.display_name)
        self.cfg = cfg
        self.client = KfpClient(
            cfg.name,
            cfg.endpoint,
            cfg.namespace,
            token=token_reader(cfg.token, cfg.token_path),
            verify_ssl=cfg.verify_ssl,
        )
        self._logs: dict[tuple[str, str], tuple[float, bytes]] = {}

    @classmethod
    def from_config(cls, name: str, settings: ConfigReader) -> KubeflowTarget:
        return cls(parse_target(name, settings.raw, settings.where))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ui_url": self.cfg.ui_url, "namespace": self.cfg.namespace}

    def external_url(self, item: PipelineRunItem) -> str | None:
        """The run's page in the KFP UI (its hash route ``#/runs/details/<id>``)."""
        if not self.cfg.ui_url or not item.ref:
            return None
        return f"{self.cfg.ui_url.rstrip('/')}/#/runs/details/{item.ref}"

    def settings(self) -> Any:
        from .compiler import KubeflowSettings

        return KubeflowSettings(
            image=self.cfg.image,
            tracking_uri=self.cfg.tracking_uri,
            env=dict(self.cfg.env),
            secret_env=dict(self.cfg.secret_env),
            pipeline_root=self.cfg.pipeline_root,
            max_embedded_bytes=self.cfg.max_embedded_bytes,
            train_runtime=self.cfg.train_runtime,
            train_runtime_kind=self.cfg.train_runtime_kind,
            train_queue=self.cfg.train_queue,
        )

    def _compile(
        self, p: Pipeline, values: Mapping[str, Any], step_run_ids: Mapping[str, str], parent: str
    ) -> dict[str, Any]:
        from .compiler import CompileError, check_references, compile_pipeline

        try:
            ir = compile_pipeline(
                p, values, step_run_ids=step_run_ids, parent_run_id=parent, settings=self.settings()
            )
        except CompileError as e:
            raise invalid(f"Cannot run '{p.name}' on Kubeflow target '{self.name}': {e}") from None
        problems = check_references(ir["pipeline_spec"])
        if problems:  # KFP would refuse the run only at creation, less clearly
            raise TrackingError(
                f"The compiled pipeline '{p.name}' is inconsistent: " + "; ".join(problems),
                "INTERNAL_ERROR",
            )
        return ir

    # -- submit ----------------------------------------------------------------------------
    async def validate(self, item: PipelineRunItem) -> None:
        """Everything KFP could refuse for reasons of its own is asked before our rows exist:
        the pipeline compiles, the KFP experiment exists (created when missing)."""
        p = item.pipeline
        assert p is not None
        # (compiling reads and embeds the step files: not on the event loop)
        await asyncio.to_thread(
            self._compile, p, item.values, dict.fromkeys(p.steps, "0" * 32), "0" * 32
        )
        exp_name = self.cfg.experiment or p.experiment or p.name
        item.notes["kfp_experiment_id"] = await asyncio.to_thread(
            self.client.experiment_id, exp_name
        )

    async def submit(self, item: PipelineRunItem, ctx: Context) -> None:
        """Create the tracked runs of the steps and the KFP run, then watch it. A refusal
        by KFP leaves our run FAILED with KFP's reason and raises."""
        p, values, run_id = item.pipeline, item.values, item.id
        assert p is not None
        try:
            if "kfp_experiment_id" not in item.notes:
                await self.validate(item)
            children = await ctx.call(self._create_children, ctx, item)
            ir = await asyncio.to_thread(self._compile, p, values, children, run_id)
            spec = ir["pipeline_spec"]
            if ir.get("platform_spec"):  # KFP reads this pair like a two-document package
                spec = {"pipeline_spec": ir["pipeline_spec"], "platform_spec": ir["platform_spec"]}
            body: dict[str, Any] = {
                "display_name": item.run_name or f"{p.name} {run_id[:8]}",
                "description": f"jupyter-mlops pipeline run {run_id}",
                "experiment_id": item.notes["kfp_experiment_id"],
                "pipeline_spec": spec,
                "runtime_config": {"parameters": values},
            }
            if self.cfg.pipeline_root:
                body["runtime_config"]["pipeline_root"] = self.cfg.pipeline_root
            if self.cfg.service_account:
                body["service_account"] = self.cfg.service_account
            kfp_run = await asyncio.to_thread(self.client.create_run, body)
            kfp_id = str(kfp_run["run_id"])
        except TrackingError as e:
            await ctx.call(
                self._end_all,
                ctx,
                run_id,
                "FAILED",
                f"Kubeflow did not accept the run: {e.message}",
            )
            raise
        except Exception as e:
            log.exception("jupyter-mlops: submitting run %s to %s", run_id, self.name)
            await ctx.call(
                self._end_all,
                ctx,
                run_id,
                "FAILED",
                f"submitting to Kubeflow failed: {type(e).__name__}: {e}",
            )
            raise
        await ctx.set_ref(item, kfp_id)
        self.watchers.start(run_id, lambda: self._watch(item, ctx))

    def _create_children(self, ctx: Context, item: PipelineRunItem) -> dict[str, str]:
        """One tracked child run per step, as local runs have (created up front: the
        step's pod logs into it)."""
        from ..params import fill

        p = item.pipeline
        assert p is not None
        tctx = {f"params.{k}": v for k, v in item.values.items()}
        tctx.update({"run.id": item.id, "pipeline.name": p.name})
        out: dict[str, str] = {}
        for name, step in p.steps.items():
            params: dict[str, Any] = {}
            for key, value in step.parameters.items():
                try:
                    params[key] = fill(value, tctx)
                except KeyError:  # needs what only the pod knows (run dir, outputs): not logged
                    continue
            out[name] = ctx.create_child_run(
                item,
                name,
                params=params,
                tags={
                    "mlflow.source.name": step.path,
                    "mlflow.source.type": step.kind.upper(),
                    "mlops.pipeline.target": self.name,
                },
            )
        ctx.update_steps([(item.id, n, {"tracking_run_id": rid}) for n, rid in out.items()])
        return out

    # -- watch -----------------------------------------------------------------------------
    async def attach(self, item: PipelineRunItem, ctx: Context) -> None:
        """Watch an unfinished run again after a restart (one watcher per run)."""
        if not item.ref:  # the process stopped between our rows and KFP's answer
            await ctx.call(
                self._end_all,
                ctx,
                item.id,
                "FAILED",
                "interrupted: the server stopped while submitting it",
            )
            return
        self.watchers.start(item.id, lambda: self._watch(item, ctx))

    async def _watch(self, item: PipelineRunItem, ctx: Context) -> None:
        run_id, kfp_id = item.id, item.ref or ""
        poll = self.cfg.poll_interval
        delay = poll
        complaint: str | None = None
        while True:
            try:
                kfp_run = await asyncio.to_thread(self.client.get_run, kfp_id)
            except KfpError as e:
                if e.status == 404:
                    await ctx.call(
                        self._end_all,
                        ctx,
                        run_id,
                        "FAILED",
                        f"the Kubeflow run {kfp_id} no longer exists",
                    )
                    return
                # Unreachable, or the token was refused (it may be rotated): keep watching,
                # more slowly, and say why the run seems stuck.
                if e.message != complaint:
                    complaint = e.message
                    log.warning("jupyter-mlops: watching run %s: %s", run_id, e.message)
                    await ctx.transition(item, None, reason=f"not watched right now: {e.message}")
                delay = min(delay * 2, MAX_BACKOFF)
                await asyncio.sleep(delay)
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("jupyter-mlops: watching run %s on %s", run_id, self.name)
                delay = min(delay * 2, MAX_BACKOFF)
                await asyncio.sleep(delay)
                continue
            delay = poll
            try:
                if await ctx.call(self._apply, ctx, run_id, kfp_id, kfp_run, complaint):
                    return
            except Exception:
                log.exception("jupyter-mlops: recording the state of run %s", run_id)
            complaint = None
            await asyncio.sleep(poll)

    def _apply(
        self,
        ctx: Context,
        run_id: str,
        kfp_id: str,
        kfp_run: Mapping[str, Any],
        complaint: str | None,
    ) -> bool:
        """Write what KFP says into our run; True when the run has ended."""
        from .compiler import task_name

        row = ctx.run_row(run_id)
        if row is None:
            return True
        if row["status"] in RUN_TERMINAL:
            return True
        tasks: dict[str, Mapping[str, Any]] = {}
        for t in (kfp_run.get("run_details") or {}).get("task_details") or []:
            if t.get("display_name"):
                tasks[t["display_name"]] = t  # the last detail of a task is its latest attempt
        t_now = now_ms()
        updates = []
        ended_steps = []
        for s in row["steps"]:
            t = tasks.get(task_name(s["step"]))
            if t is None or s["status"] in STEP_TERMINAL:
                continue
            status = TASK_STATES.get(str(t.get("state") or ""), "PENDING")
            values: dict[str, Any] = {}
            if status != s["status"]:
                values["status"] = status
            if status != "PENDING" and not s["start_time"]:
                values["start_time"] = _ms(t.get("start_time")) or t_now
                values["attempt"] = max(1, s["attempt"] or 0)
            if status in STEP_TERMINAL:
                values["end_time"] = _ms(t.get("end_time")) or t_now
                err = (
                    (t.get("error") or {}).get("message")
                    if isinstance(t.get("error"), dict)
                    else None
                )
                if status == "FAILED":
                    values["error"] = err or "the Kubeflow task failed"
                elif status == "CANCELED":
                    values["error"] = "cancelled"
                ended_steps.append((s, status, values.get("error"), t))
            if values:
                updates.append((s["step"], values))
        for s, status, error, t in ended_steps:  # tracked runs end before their steps do
            self._end_step(ctx, row, s, status, error, kfp_id, t)

        state = str(kfp_run.get("state") or "")
        status = RUN_STATES.get(state, row["status"])
        run_values: dict[str, Any] = {}
        if status in RUN_TERMINAL:
            ctx.update_run_and_steps(run_id, {}, updates)
            err = kfp_run.get("error")
            reason = None
            if status == "FAILED":
                failed = [
                    s["step"]
                    for s in ctx.run_row(run_id)["steps"]  # type: ignore[index]
                    if s["status"] == "FAILED"
                ]
                reason = (
                    "step(s) failed: " + ", ".join(failed)
                    if failed
                    else (
                        err.get("message")
                        if isinstance(err, dict) and err.get("message")
                        else "the Kubeflow run failed"
                    )
                )
            elif status == "CANCELED":
                reason = "cancelled"
            elif state == "SKIPPED":
                reason = "Kubeflow skipped the run"
            self._end_all(ctx, run_id, status, reason, _ms(kfp_run.get("finished_at")))
            return True
        if status != row["status"] and not (row["status"] == "CANCELING" and status == "RUNNING"):
            run_values["status"] = status
        if status in ("RUNNING", "CANCELING") and not row["start_time"]:
            run_values["start_time"] = t_now
        if complaint and (row["reason"] or "").startswith("not watched right now"):
            run_values["reason"] = None  # KFP answers again
        ctx.update_run_and_steps(run_id, run_values, updates, only_if_not=RUN_TERMINAL)
        return False

    def _end_step(
        self,
        ctx: Context,
        row: Mapping[str, Any],
        s: Mapping[str, Any],
        status: str,
        error: str | None,
        kfp_id: str,
        task: Mapping[str, Any] | None,
    ) -> None:
        """A step ended: keep its log (and the executed notebook its pod uploaded), end its
        tracked run."""
        store = ctx.store
        child = s["tracking_run_id"]
        data = b""
        if task is not None and status in ("SUCCEEDED", "FAILED", "CANCELED"):
            try:
                data = self.client.node_log(kfp_id, _node_id(task))
            except KfpError as e:
                log.info(
                    "jupyter-mlops: no log for step %s of %s: %s",
                    s["step"],
                    row["run_id"],
                    e.message,
                )
        if data:
            path = log_path(row["run_dir"], s["step"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        if not child:
            return
        try:
            repo = store.artifact_repo(store.get_run(child).info.artifact_uri)
            # The pod uploads its own step.log (the step's output only): that one stays.
            if data and not repo.exists("step.log"):
                repo.put("step.log", data)
            # The executed notebook the pod uploaded: the panel opens it like a local one.
            nb = notebook_path(row["run_dir"], s["step"])
            if not os.path.exists(nb) and repo.exists("output.ipynb"):
                os.makedirs(os.path.dirname(nb), exist_ok=True)
                with repo.open("output.ipynb") as src, open(nb, "wb") as dst:
                    dst.write(src.read())
        except Exception:
            log.exception("jupyter-mlops: keeping the files of step %s", s["step"])
        ctx.end_step_run(row, s, status, error)

    def _end_all(
        self,
        ctx: Context,
        run_id: str,
        status: str,
        reason: str | None,
        end_time: int | None = None,
    ) -> None:
        """The run ended (or could not start): steps that had not ended are settled
        from the run's outcome, every tracked run is ended."""
        ctx.finish(
            run_id,
            status,
            reason,
            end_time,
            end_step=lambda row, s, st, err: self._end_step(ctx, row, s, st, err, "", None),
        )

    # -- cancel and logs -------------------------------------------------------------------
    async def cancel(self, item: PipelineRunItem, ctx: Context) -> None:
        if not item.ref:  # KFP never got it
            await ctx.call(self._end_all, ctx, item.id, "CANCELED", "cancelled")
            return
        await asyncio.to_thread(self.client.terminate_run, item.ref)
        await ctx.transition(item, "CANCELING")

    async def logs(self, item: PipelineRunItem, *, part: str | None = None) -> bytes | None:
        """A running step's whole log from KFP (None while it has no pod)."""
        row = item.row
        step = next((s for s in (row or {}).get("steps", []) if s["step"] == part), None)
        if row is None or step is None:
            return None
        return await asyncio.to_thread(self.read_log, row, step)

    def read_log(self, row: Mapping[str, Any], step: Mapping[str, Any]) -> bytes | None:
        """(blocking) :meth:`logs`, cached for :data:`LOG_CACHE_SECONDS`."""
        if step["status"] == "PENDING":
            return None
        kfp_id = ref_of(row["target"], row.get("executor"))
        if not kfp_id:
            return None
        key = (row["run_id"], step["step"])
        hit = self._logs.get(key)
        if hit and time.monotonic() - hit[0] < LOG_CACHE_SECONDS:
            return hit[1]
        from .compiler import task_name

        try:
            kfp_run = self.client.get_run(kfp_id)
            task = next(
                (
                    t
                    for t in reversed((kfp_run.get("run_details") or {}).get("task_details") or [])
                    if t.get("display_name") == task_name(step["step"])
                ),
                None,
            )
            if task is None:
                return None
            data = self.client.node_log(kfp_id, _node_id(task))
        except KfpError as e:  # no pod yet, or KFP away: the log shows up when it answers
            log.debug(
                "jupyter-mlops: live log of %s/%s: %s", row["run_id"], step["step"], e.message
            )
            return None
        self._logs[key] = (time.monotonic(), data)
        if len(self._logs) > 256:
            self._logs.clear()
        return data


def _node_id(task: Mapping[str, Any]) -> str:
    """The node KFP serves a task's log under: its executor pod, else the task id."""
    pods = [c.get("pod_name") for c in task.get("child_tasks") or [] if c.get("pod_name")]
    return str(pods[-1] if pods else task.get("pod_name") or task.get("task_id") or "")
