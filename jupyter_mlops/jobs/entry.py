"""How a rank runs an entry point that is not a script: ``python -m jupyter_mlops.jobs.entry
notebook|function|code TARGET [args...]``.

* ``notebook PATH``: the notebook's code cells in order, in one namespace, IPython syntax
  included (an ``InteractiveShell`` when IPython is installed); the job's parameters are
  set as variables after the cell tagged ``parameters`` (papermill's place), else first.
* ``function FILE.py:NAME`` or ``MODULE:NAME``: the function called with the job's
  parameters that its signature accepts, as keyword arguments (Kubeflow's ``func_args``).
* ``project DIR ENTRY``: an MLflow project's entry point: its command computed from the
  job's parameters as ``mlflow run`` computes it (types checked, values quoted, undeclared
  ones appended as ``--key value``) and run in the project directory in place of this
  process (``bash -c``), in the current environment.
* ``code FILE``: Python source (a ``%%mlops train`` cell, a function shipped by the Python
  API) run as ``__main__`` with the parameters as global variables.

``sys.argv`` is ``[TARGET, *args]`` and the working directory the job's. Exit status 1
when the code raises (the traceback is in the rank's log).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import runpy
import sys
import traceback
from typing import Any


def params() -> dict[str, Any]:
    """The job's parameters (``JUPYTER_MLOPS_PARAMS``)."""
    try:
        value = json.loads(os.environ.get("JUPYTER_MLOPS_PARAMS") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def kwargs_for(fn: Any) -> dict[str, Any]:
    """The parameters ``fn`` accepts as keyword arguments (all of them with ``**kwargs``)."""
    values = params()
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return values
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return values
    names = {
        n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    return {k: v for k, v in values.items() if k in names}


def _cells(path: str) -> list[tuple[str, bool]]:
    """(source, tagged 'parameters') of every code cell."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    out = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        tags = (cell.get("metadata") or {}).get("tags") or []
        out.append((src, "parameters" in tags))
    return out


def run_notebook(path: str) -> int:
    cells = _cells(path)
    values = params()
    at = next((i + 1 for i, (_, tagged) in enumerate(cells) if tagged), 0)
    inject = "\n".join(f"{k} = {v!r}" for k, v in values.items())
    if inject:
        cells.insert(at, (inject, False))
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        from IPython.core.interactiveshell import InteractiveShell
    except ImportError:  # plain Python: no magics
        ns: dict[str, Any] = {"__name__": "__main__"}
        for i, (src, _) in enumerate(cells):
            try:
                exec(compile(src, f"{path} (cell {i + 1})", "exec"), ns)  # noqa: S102
            except SystemExit:
                raise
            except BaseException:  # noqa: BLE001 - printed, as Python would
                traceback.print_exc()
                return 1
        return 0
    shell = InteractiveShell.instance()
    for code, _tagged in cells:
        result = shell.run_cell(code, store_history=False)
        if not result.success:
            return 1
    return 0


def run_function(ref: str) -> int:
    module, name = ref.rsplit(":", 1)
    if module.endswith(".py"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(module)))
        ns = runpy.run_path(module, run_name="__mlops_job__")
        fn = ns.get(name)
    else:
        fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        print(f"jupyter-mlops: {ref}: no function {name!r}", file=sys.stderr)
        return 1
    fn(**kwargs_for(fn))
    return 0


def run_code(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        src = f.read()
    ns: dict[str, Any] = {"__name__": "__main__", "__file__": path, **params()}
    exec(compile(src, path, "exec"), ns)  # noqa: S102 - the user's own code
    return 0


def run_project(directory: str, entry_point: str) -> int:
    """Become the entry point's command (``exec``: the rank keeps its pid and group)."""
    import tempfile

    from ..projects.envs import Environment
    from ..projects.runner import plan
    from ..projects.spec import ProjectError
    from .projectentry import command_values

    values = command_values(params())
    try:
        p = plan(
            directory, entry_point, values, env_manager="local", storage_dir=tempfile.gettempdir()
        )
    except ProjectError as e:
        print(f"jupyter-mlops: {e.message}", file=sys.stderr)
        return 1
    if not os.listdir(p.storage_dir):
        os.rmdir(p.storage_dir)  # nothing was downloaded for a path parameter
    os.chdir(p.fetched.work_dir)
    print(f"[jupyter-mlops] entry point {entry_point}: {p.command}", flush=True)
    env = mlflow_env(Environment("local").apply(dict(os.environ)))
    os.execvpe("bash", ["bash", "-c", p.command], env)
    return 1  # not reached


def mlflow_env(env: dict[str, str]) -> dict[str, str]:
    """What ``mlflow run`` gives an entry point (``MLFLOW_RUN_ID``, ``MLFLOW_EXPERIMENT_ID``,
    ``MLFLOW_TRACKING_URI`` when the store is a server the official client can reach), so
    its ``mlflow.start_run()`` continues the job's run."""
    run_id = env.get("JUPYTER_MLOPS_JOB_RUN_ID")
    if run_id:
        env["MLFLOW_RUN_ID"] = run_id
    experiment = env.get("JUPYTER_MLOPS_JOB_EXPERIMENT_ID")
    if experiment:
        env["MLFLOW_EXPERIMENT_ID"] = experiment
    uri = env.get("JUPYTER_MLOPS_TRACKING_URI", "")
    if uri.startswith(("http://", "https://")):
        env.setdefault("MLFLOW_TRACKING_URI", uri)
        token = env.get("JUPYTER_MLOPS_TRACKING_TOKEN")
        if token:
            env.setdefault("MLFLOW_TRACKING_TOKEN", token)
    return env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] not in ("notebook", "function", "code", "project"):
        print(
            "usage: python -m jupyter_mlops.jobs.entry notebook|function|code|project TARGET "
            "[args]",
            file=sys.stderr,
        )
        return 2
    if argv[0] == "project":
        return run_project(argv[1], argv[2] if len(argv) > 2 else "main")
    kind, target, rest = argv[0], argv[1], argv[2:]
    sys.argv = [target.rsplit(":", 1)[0] if kind == "function" else target, *rest]
    if kind == "notebook":
        return run_notebook(target)
    if kind == "function":
        return run_function(target)
    return run_code(target)


if __name__ == "__main__":
    sys.exit(main())
