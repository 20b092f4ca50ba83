"""The examples a user copies first work as written: the README's tour and pipeline, and
docs/pipelines.md's DSL snippet, each against the binder example's files and a scratch store."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import REPO, cli_env

from jupyter_mlops.tracking import open_store

PIPELINE_EXAMPLE = REPO / "binder" / "examples" / "pipeline"


def code_block(rel: str, lang: str, starting: str) -> str:
    """The first ``lang`` code block of ``rel`` whose text starts with ``starting``."""
    text = (REPO / rel).read_text(encoding="utf-8")
    for block in re.findall(rf"```{lang}\n(.*?)```", text, re.S):
        if block.startswith(starting):
            return block
    raise AssertionError(f"{rel}: no ```{lang} block starting with {starting!r}")


def example_workspace(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(PIPELINE_EXAMPLE, work)
    return work


def test_readme_tour_runs_and_logs_what_it_says(tmp_path: Path) -> None:
    tour = code_block("README.md", "python", "import jupyter_mlops as mlops")
    script = tmp_path / "tour.py"
    script.write_text(tour, encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlops.db'}"
    env = cli_env(tmp_path, JUPYTER_MLOPS_TRACKING_URI=uri)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    store = open_store(uri)
    try:
        exp = store.get_experiment_by_name("iris")
        (run,) = store.search_runs([exp.experiment_id])[0]
        assert run.info.run_name == "logreg" and run.info.status == "FINISHED"
        assert run.data.params == {"C": "0.5", "max_iter": "200"}
        history, _ = store.get_metric_history(run.info.run_id, "loss")
        assert len(history) == 100
        assert store.artifact_repo(run.info.artifact_uri).open("notes.txt").read() == b"notes"
    finally:
        store.close()


def test_readme_pipeline_is_valid_next_to_the_binder_example(tmp_path: Path) -> None:
    from jupyter_mlops.pipelines.executor import topological_order
    from jupyter_mlops.pipelines.spec import load_pipeline

    work = example_workspace(tmp_path)
    path = work / "readme.pipeline.yaml"
    path.write_text(code_block("README.md", "yaml", "name: train-and-evaluate"), encoding="utf-8")
    pipeline = load_pipeline(str(path), root=str(work))  # raises PipelineInvalid naming the issues
    assert topological_order(pipeline) == ["prepare", "train", "evaluate"]
    # evaluate.py reads both upstream steps' outputs: they must be declared and depended on
    assert set(pipeline.steps["evaluate"].depends_on) == {"prepare", "train"}
    assert "model.pkl" in pipeline.steps["train"].outputs


def test_pipelines_doc_dsl_snippet_builds_in_the_binder_example(tmp_path: Path) -> None:
    work = example_workspace(tmp_path)
    snippet = code_block("docs/pipelines.md", "python", "from jupyter_mlops.pipelines import")
    namespace: dict = {}
    # compiled as a file of the example workspace: DSL paths are relative to their file
    exec(compile(snippet, str(work / "snippet.py"), "exec"), namespace)  # noqa: S102
    model = namespace["model"]
    assert list(model.steps) == ["prepare", "train", "evaluate"]
    assert model.steps["train"].depends_on == ["prepare"]  # through prep.outputs


def test_readme_magics_run_in_a_kernel(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        code_block("README.md", "python", "%load_ext jupyter_mlops"),
        code_block("README.md", "python", "%%mlops run"),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    uri = f"sqlite:///{tmp_path / 'mlops.db'}"
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=cli_env(tmp_path, JUPYTER_MLOPS_TRACKING_URI=uri))  # raises on errors
    assert "45" in nb.cells[1].outputs[0]["text"]
    store = open_store(uri)
    try:
        exp = store.get_experiment_by_name("iris")
        runs = {r.info.run_name: r for r in store.search_runs([exp.experiment_id])[0]}
        assert set(runs) == {"baseline", "quick-check"}
        assert all(r.info.status == "FINISHED" for r in runs.values())
        assert runs["baseline"].data.params == {"lr": "0.01", "batch": "32"}
        (acc,), _ = store.get_metric_history(runs["baseline"].info.run_id, "acc")
        assert (acc.value, acc.step) == (0.93, 3)
        cell = store.artifact_repo(runs["quick-check"].info.artifact_uri).open("source/cell.py")
        assert "print(sum(range(10)))" in cell.read().decode()
    finally:
        store.close()
