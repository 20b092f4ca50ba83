"""The binder example notebook runs top to bottom in a real kernel and its runs
land in the store the kernel was pointed at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clihelpers import REPO, cli_env

from jupyter_mlops.tracking import open_store

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

NOTEBOOK = REPO / "binder" / "examples" / "train_sklearn.ipynb"
pytestmark = pytest.mark.slow


def test_example_notebook_executes_and_tracks(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 't.db'}"
    env = cli_env(tmp_path, JUPYTER_MLOPS_TRACKING_URI=uri, MPLBACKEND="Agg")
    env["HOME"] = os.environ.get("HOME", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)  # raises CellExecutionError if any cell fails
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors

    store = open_store(uri)
    try:
        exp = store.get_experiment_by_name("sklearn-examples")
        assert exp is not None
        runs = {r.info.run_name: r for r in store.search_runs([exp.experiment_id])[0]}
        assert set(runs) == {"iris-logreg", "digits-sgd", "digits-forest"}
        assert all(r.info.status == "FINISHED" for r in runs.values())

        logreg = runs["iris-logreg"]
        assert logreg.data.params == {"C": "0.5", "max_iter": "500", "folds": "5"}
        assert logreg.data.tags["dataset"] == "iris"
        folds, _ = store.get_metric_history(logreg.info.run_id, "fold_accuracy")
        assert [m.step for m in folds] == [0, 1, 2, 3, 4]
        assert all(0.5 < m.value <= 1.0 for m in folds)
        assert logreg.data.metrics["test_accuracy"].value > 0.8
        repo = store.artifact_repo(logreg.info.artifact_uri)
        assert repo.open("confusion_matrix.png").read(8) == b"\x89PNG\r\n\x1a\n"

        sgd = runs["digits-sgd"]
        for key in ("train_loss", "train_accuracy", "test_accuracy"):
            history, _ = store.get_metric_history(sgd.info.run_id, key)
            assert [m.step for m in history] == list(range(15)), key

        forest = runs["digits-forest"]
        assert forest.data.params == {"n_estimators": "50", "max_depth": "8"}
        assert forest.data.metrics["test_accuracy"].value > 0.8
        cell = store.artifact_repo(forest.info.artifact_uri).open("source/cell.py").read().decode()
        assert "RandomForestClassifier" in cell
    finally:
        store.close()


def test_binder_config_is_consistent() -> None:
    """repo2docker's files: Node.js 20+ for the front-end build, a postBuild that
    is executable, valid bash, and installs this repository."""
    import re
    import subprocess

    env_text = (REPO / "binder" / "environment.yml").read_text()
    node = re.search(r"-\s*nodejs\s*>=\s*(\d+)", env_text)
    assert node and int(node.group(1)) >= 20
    post = REPO / "binder" / "postBuild"
    assert os.access(post, os.X_OK)
    assert subprocess.run(["bash", "-n", str(post)], check=False).returncode == 0
    assert "pip install --no-cache-dir ." in post.read_text()
