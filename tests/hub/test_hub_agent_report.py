"""What a team server reports to the culler as still working (HubAgentService.collect), read from the app's
real services: a running pipeline run, a training job, a local deployment and the next schedule keep a
server from being culled only if the report names them (no hub needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from traitlets.config import Configurable

from jupyter_mlops.deployments.service import DeploymentService
from jupyter_mlops.hubagent.service import HubAgentService
from jupyter_mlops.jobs.service import TrainingService
from jupyter_mlops.pipelines.service import PipelineService
from jupyter_mlops.tracking import open_store


class App(Configurable):
    """Stands in for MLOpsApp: the services as its attributes, no Jupyter server."""


async def test_running_work_and_the_next_schedule_are_reported(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'mlops.db'}", artifact_root=str(tmp_path / "art"))
    (tmp_path / "ok.py").write_text("print('ok')\n")
    (tmp_path / "p.pipeline.yaml").write_text(
        "name: sched\nparameters: {n: 1}\nsteps:\n  a: {script: ok.py}\n"
    )
    app = App()
    env = dict(os.environ)
    pipelines = PipelineService(
        store, str(tmp_path), env=env, runs_dir=str(tmp_path / ".runs"), warm_kernels=0
    )
    training = TrainingService(store, str(tmp_path), env=env, jobs_dir=str(tmp_path / "jobs"))
    deployments = DeploymentService(store, str(tmp_path))
    app.pipeline_service = pipelines  # type: ignore[attr-defined]
    app.training_service = training  # type: ignore[attr-defined]
    app.deployment_service = deployments  # type: ignore[attr-defined]
    agent = HubAgentService(store, str(tmp_path), parent=app)

    idle = await agent.collect()
    assert idle["working"] == [] and idle["next_schedule"] is None

    # something of each kind at work, where the services keep it
    running: Any = object()
    pipelines.local.active["0123456789abcdef"] = running
    training.local.jobs["fedcba9876543210"] = running
    deployments.local.running["iris"] = running
    schedule = await pipelines.create_schedule("p.pipeline.yaml", "*/5 * * * *", "UTC")
    try:
        report = await agent.collect()
    finally:
        pipelines.local.active.clear()
        training.local.jobs.clear()
        deployments.local.running.clear()
    assert report["working"] == [
        "pipeline run 01234567 is running",
        "training job fedcba98 is running",
        "deployment iris is serving",
    ]
    assert report["next_schedule"] == schedule["next_fire_time"] / 1000.0
