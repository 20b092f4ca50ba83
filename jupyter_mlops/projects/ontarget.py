"""A project run on a training target (``--target NAME``, not ``local``): a training job
whose entry is the project's entry point.

The job goes where ``mlops.jobs.submit`` sends jobs: the Jupyter server that started this
kernel (``JUPYTER_MLOPS_SERVER_URL``), else a training service of this process configured
as the server is (``c.TrainingService.targets`` in ``jupyter_server_config``), which needs
a database tracking URI. The project directory (fetched first for git and archive URIs)
ships with the job; the replica runs the entry point's command in the target's image (the
project's ``docker_env`` image when it has one). Its run is the job's, recorded as ``mlflow
run`` records it (``mlflow.project.backend`` is the target's kind).
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from ..tracking.errors import TrackingError
from .runner import Plan
from .spec import ProjectError

#: The job's status → the run's, as a :class:`~.runner.SubmittedRun` says it.
RUN_STATUS = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "CANCELED": "KILLED"}


def job_name(p: Plan) -> str:
    """A job name (letters, digits, ``_.-``, ≤ 63) from the project's name or directory."""
    raw = p.project.name or os.path.basename(p.fetched.work_dir.rstrip("/")) or "project"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-.")[:63]
    return name if name and name[0].isalnum() else ("project-" + name)[:63].rstrip("-")


def job_spec(p: Plan, given: dict[str, Any], experiment: str) -> dict[str, Any]:
    """The training job of a project run: one process running the entry point."""
    spec: dict[str, Any] = {
        "name": job_name(p),
        "framework": "pytorch",  # what every Kubernetes kind runs (one process: no DDP)
        "project": ".",
        "entry_point": p.entry.name,
        "nodes": 1,
        "procs_per_node": 1,
        "experiment": experiment,
    }
    if given:
        spec["params"] = {k: str(v) for k, v in given.items()}
    return spec


@dataclass
class TargetRun:
    """A project run that is a training job (``SubmittedRun``'s interface: ``wait()``,
    ``status``, ``cancel()``, ``run_id``); ``job`` is the :class:`~jupyter_mlops.jobs.Job`."""

    run_id: str
    experiment_id: str
    command: str
    target: str
    job: Any = field(repr=False)
    error: str | None = None

    @property
    def status(self) -> str:
        """RUNNING (queued or running), then FINISHED, FAILED or KILLED."""
        return RUN_STATUS.get(self.job.status, "RUNNING")

    def get_status(self) -> str:
        return self.status

    @property
    def done(self) -> bool:
        return self.status != "RUNNING"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; True when its run FINISHED."""
        self.job.wait(timeout)
        self.error = self.job.reason if self.status != "FINISHED" else None
        return self.status == "FINISHED"

    def follow(self, out: IO[str] | None = None, interval: float = 0.5) -> bool:
        """:meth:`wait`, printing the entry point's output (rank 0's log) as it comes."""
        out = out or sys.stdout
        shown = 0
        while True:
            ended = self.done
            ok = ended and self.wait()  # once its target has kept the whole log
            text = self.job.logs(0)
            if len(text) > shown:
                out.write(text[shown:])
                out.flush()
                shown = len(text)
            if ended:
                return ok
            time.sleep(interval)

    def cancel(self) -> None:
        """Cancel the job (its Kubernetes object is deleted); the run ends KILLED."""
        if not self.done:
            self.job.cancel()


def submit(
    p: Plan,
    target: str,
    given: dict[str, Any],
    *,
    tracking_uri: str,
    experiment_name: str | None,
    experiment_id: str | None,
    run_name: str | None,
    parent_run_id: str | None,
) -> TargetRun:
    """Submit the planned run as a job on ``target``; a :class:`ProjectError` (nothing
    created) for an unknown target or what the target refuses. The experiment is made
    when the job is stored (a refused job makes none)."""
    from ..client.uris import open_tracking_store
    from ..jobs.client import Job, backend

    experiment = experiment_name or (
        None if experiment_id else os.environ.get("MLFLOW_EXPERIMENT_NAME")
    )
    if not experiment:  # MLflow's order: a name, an id, the environment, "0"
        store = open_tracking_store(tracking_uri)
        try:
            exp_id = experiment_id or os.environ.get("MLFLOW_EXPERIMENT_ID") or "0"
            experiment = store.get_experiment(exp_id).name
        finally:
            close = getattr(store, "close", None)
            if callable(close):
                close()
    tags = {"mlflow.source.name": p.fetched.source_name, **p.fetched.git_tags}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    body = {
        "spec": job_spec(p, given, experiment),
        "base_dir": p.fetched.work_dir,
        "target": target,
        "run_name": run_name,
        "source_tags": tags,
    }
    try:
        jobs = backend(tracking_uri)
        data = jobs.submit(body)
    except ProjectError:
        raise
    except TrackingError as e:
        raise ProjectError(f"target {target!r}: {e.message}", error_code=e.error_code) from None
    job = Job(jobs, data)
    return TargetRun(job.run_id, str(data.get("experiment_id") or ""), p.command, target, job)
