"""The shipped example pipeline (binder/examples/pipeline) validates, matches its DSL
twin, and runs end to end with metrics in each step's run."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

from pipehelpers import REPO

from jupyter_mlops.pipelines import load_pipeline
from jupyter_mlops.pipelines.service import PipelineService
from jupyter_mlops.tracking import open_store

EXAMPLE = REPO / "binder" / "examples" / "pipeline"


def test_yaml_and_dsl_describe_the_same_pipeline(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import pipeline_dsl

    try:
        dsl = pipeline_dsl.train_and_evaluate.build(root=str(EXAMPLE))
        yaml_p = load_pipeline(str(EXAMPLE / "train-and-evaluate.pipeline.yaml"), root=str(REPO))
        assert dsl.to_dict() == yaml_p.to_dict()
    finally:
        sys.modules.pop("pipeline_dsl", None)


def test_example_runs_and_logs_into_step_runs(tmp_path):
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work)
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    store = open_store(f"sqlite:///{tmp_path / 'mlops.db'}", artifact_root=str(tmp_path / "art"))
    env = dict(
        os.environ,
        JUPYTER_MLOPS_TRACKING_URI=store.uri,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )

    async def main():
        svc = PipelineService(
            store,
            str(work),
            env=env,
            runs_dir=str(tmp_path / "runs"),
            warm_kernels=1,
            parallelism=2,
        )
        await svc.start(schedules=False)
        try:
            run = await svc.submit("train-and-evaluate.pipeline.yaml", parameters={"C": "0.5"})
            return await svc.wait(run["run_id"])
        finally:
            await svc.stop()

    run = asyncio.run(main())
    assert run["status"] == "SUCCEEDED", run
    steps = {s["name"]: s for s in run["steps"]}
    evaluate = store.get_run(steps["evaluate"]["tracking_run_id"])
    assert evaluate.data.metrics["test_accuracy"].value > 0.8
    assert evaluate.data.params == {"threshold": "0.8"}
    assert (
        store.get_run(steps["prepare"]["tracking_run_id"]).data.metrics["train_rows"].value == 112
    )
    assert "train_accuracy" in store.get_run(steps["train"]["tracking_run_id"]).data.metrics
    # the workspace is untouched: outputs live in the run's own directories
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before
    store.close()
