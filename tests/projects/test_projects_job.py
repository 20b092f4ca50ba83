"""A training job whose entry point is an MLflow project's: every rank runs the entry
point's command, computed from the job's params as ``mlflow run`` computes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from projhelpers import REPO, make_project

from jupyter_mlops.jobs.spec import JobInvalid, load_job
from jupyter_mlops.tracking import open_store

JOB = """\
name: churn-job
framework: generic
project: churn
entry_point: main
nodes: 1
procs_per_node: 2
params:
  alpha: 0.3
  epochs: 2
"""


def test_job_ranks_run_the_project_entry_point(tmp_path: Path) -> None:
    make_project(tmp_path / "churn")
    (tmp_path / "churn.job.yaml").write_text(JOB)
    db = f"sqlite:///{tmp_path / 'mlops.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_mlops.cli",
            "job",
            "run",
            str(tmp_path / "churn.job.yaml"),
            "--logs",
            "--database-url",
            db,
            "--root",
            str(tmp_path),
            "-p",
            "alpha=0.7",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert text.count("first line of train.py") == 2  # both ranks
    assert "python train.py --alpha 0.7 --epochs 2 --label 'a b'" in text
    store = open_store(db)
    exp = store.get_experiment_by_name("churn-job")
    runs, _ = store.search_runs([exp.experiment_id], "", "ACTIVE_ONLY", 10)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["loss"].step == 1  # rank 0's mlops.log_metric: the job's run


def test_job_project_checked_against_its_mlproject(tmp_path: Path) -> None:
    make_project(tmp_path / "churn")
    (tmp_path / "bad.job.yaml").write_text(JOB.replace("entry_point: main", "entry_point: where"))
    with pytest.raises(JobInvalid, match=r"parameter 'out' has no default.*churn/MLproject:13"):
        load_job(str(tmp_path / "bad.job.yaml"), root=str(tmp_path))
    (tmp_path / "bad2.job.yaml").write_text(JOB.replace("entry_point: main", "entry_point: nope"))
    with pytest.raises(JobInvalid, match=r":4: entry_point: .*no entry point 'nope'"):
        load_job(str(tmp_path / "bad2.job.yaml"), root=str(tmp_path))
