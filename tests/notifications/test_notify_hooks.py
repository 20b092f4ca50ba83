"""The services publish when what they run ends: a pipeline run, a training job, a deployment's
rollout (real processes, a real SQLite store; the events as the notification service gets them)."""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

import pytest

from jupyter_mlops.deployments.service import DeploymentService
from jupyter_mlops.jobs.service import TrainingService
from jupyter_mlops.pipelines.service import PipelineService
from jupyter_mlops.tracking import open_store

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 120.0


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'mlops.db'}", artifact_root=str(tmp_path / "art"))
    yield s
    s.close()


def child_env(store, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    env["JUPYTER_MLOPS_TRACKING_URI"] = store.uri
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.timeout(300)
async def test_a_failed_pipeline_run_and_a_failed_job_are_published(store, tmp_path):
    write(tmp_path / "bad.py", "raise ValueError('boom')\n")
    write(
        tmp_path / "p.pipeline.yaml",
        """\
        name: nightly
        steps:
          bad: {script: bad.py}
        """,
    )
    env = child_env(store, tmp_path)
    pipes = PipelineService(
        store, str(tmp_path), env=env, runs_dir=str(tmp_path / ".runs"), warm_kernels=0
    )
    jobs = TrainingService(store, str(tmp_path), env=env, jobs_dir=str(tmp_path / "jobs"))
    events: list = []
    pipes.events.subscribe(events.append)
    jobs.events.subscribe(events.append)
    await pipes.start(schedules=False)
    await jobs.start()
    try:
        run = await pipes.submit("p.pipeline.yaml")
        run = await asyncio.wait_for(pipes.wait(run["run_id"]), DEADLINE)
        job = await jobs.submit(
            spec={"name": "trainer", "framework": "generic", "script": "bad.py"},
            base_dir=str(tmp_path),
        )
        job = await asyncio.wait_for(jobs.wait(job["job_id"]), DEADLINE)
    finally:
        await pipes.stop()
        await jobs.stop()
    assert run["status"] == "FAILED" and job["status"] == "FAILED"
    (p,) = [e for e in events if e.kind == "pipeline_run"]
    assert (p.outcome, p.id, p.pipeline, p.status) == ("failed", run["run_id"], "nightly", "FAILED")
    assert p.link == f"#/pipelines/runs/{run['run_id']}" and "bad" in p.reason
    (j,) = [e for e in events if e.kind == "job"]
    assert (j.outcome, j.id, j.name, j.status) == ("failed", job["job_id"], "trainer", "FAILED")
    assert j.link == f"#/jobs/{job['job_id']}" and j.experiment_id == job["experiment_id"]
    assert j.title() == "Training job 'trainer' failed"


@pytest.mark.timeout(300)
async def test_a_failed_rollout_is_published_once(store, tmp_path):
    """A model whose scoring process cannot load it: the rollout fails, told once."""
    model = tmp_path / "model"
    write(
        model / "MLmodel",
        """\
        flavors:
          python_function:
            loader_module: no_such_module_for_tests
            python_version: "3.11"
        """,
    )
    svc = DeploymentService(
        store, str(tmp_path), deployments_dir=str(tmp_path / "deps"), ready_timeout=60
    )
    events: list = []
    svc.events.subscribe(events.append)
    await svc.start()
    try:
        await svc.create("broken", str(model))
        for _ in range(int(DEADLINE * 10)):
            dep = await svc.get("broken")
            if dep["status"] in ("FAILED", "READY"):
                break
            await asyncio.sleep(0.1)
    finally:
        await svc.stop()
    assert dep["status"] == "FAILED", dep
    (e,) = [e for e in events if e.kind == "deployment"]
    assert (e.outcome, e.id, e.link) == ("failed", "broken", "#/deployments/broken")
    assert "failed" in e.reason, e.reason
