"""Projects the MLflow project tests run (imported as ``projhelpers``).

``make_project(dir)`` writes a small project: ``python_env.yaml`` (no dependencies, so
creating its environment needs no index) and two entry points. ``main`` logs through
``mlops.*`` or the official ``mlflow`` client (the current environment has both)
(``PROJECT_TEST_CLIENT``: ``mlops``, ``mlflow`` or
``none``); ``where`` writes which Python ran it (``sys.prefix``) to a file, with nothing to import,
so it runs in a fresh virtualenv too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

MLPROJECT = """\
name: churn
python_env: python_env.yaml

entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      epochs: {type: int, default: 3}
      label: {type: string, default: "a b"}
    command: "python train.py --alpha {alpha} --epochs {epochs} --label {label}"
  where:
    parameters:
      out: path
    command: "python where.py {out}"
"""

PYTHON_ENV = """\
python: "{major}.{minor}"
build_dependencies:
  - pip
dependencies: []
"""

TRAIN = """\
import argparse, os, sys
print("first line of train.py", flush=True)
p = argparse.ArgumentParser()
p.add_argument("--alpha", type=float)
p.add_argument("--epochs", type=int)
p.add_argument("--label")
p.add_argument("--extra")
a = p.parse_args()
print("args", vars(a), flush=True)
client = os.environ.get("PROJECT_TEST_CLIENT", "mlops")
if client == "mlops":
    import jupyter_mlops as mlops
    for step in range(a.epochs):
        mlops.log_metric("loss", 1.0 / (step + 1), step=step)
elif client == "mlflow":
    import mlflow
    with mlflow.start_run():
        mlflow.set_tag("from_mlflow", "yes")
        mlflow.log_metric("acc", 0.9)
"""

WHERE = """\
import sys
with open(sys.argv[1], "w") as f:
    f.write(sys.prefix)
print("ran in", sys.prefix, flush=True)
"""


def make_project(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "MLproject").write_text(MLPROJECT)
    (directory / "python_env.yaml").write_text(
        PYTHON_ENV.format(major=sys.version_info[0], minor=sys.version_info[1])
    )
    (directory / "train.py").write_text(TRAIN)
    (directory / "where.py").write_text(WHERE)
    (directory / "check.sh").write_text('echo "shell entry point $1"\n')
    return directory


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def run_env(tracking_uri: str, token: str | None, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``jupyter mlops run`` / ``mlflow run`` in a test: this checkout
    importable, this Python first on PATH (``python`` in the commands), the store given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        JUPYTER_DATA_DIR=str(data_dir),
        JUPYTER_MLOPS_TRACKING_URI=tracking_uri,
        MLFLOW_TRACKING_URI=tracking_uri,
        **extra,
    )
    if token:
        env["JUPYTER_MLOPS_TRACKING_TOKEN"] = token
        env["MLFLOW_TRACKING_TOKEN"] = token
    return env


def mlops_run(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "run", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
