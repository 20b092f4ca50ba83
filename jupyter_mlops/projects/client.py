"""``mlops.projects.run`` and ``mlops.projects.inspect``: the Python API (MLflow's
``mlflow.projects.run`` signature, plus ``target`` and ``tracking_uri``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .runner import SubmittedRun, plan, resolve_experiment, start
from .spec import ProjectError


def inspect(uri: str, version: str | None = None) -> dict[str, Any]:
    """The project's name, environment and entry points with their typed parameters."""
    from .fetch import fetch
    from .spec import load_project

    fetched = fetch(uri, version)
    try:
        return load_project(fetched.work_dir).to_dict()
    finally:
        fetched.cleanup()


def _active_run_id() -> str | None:
    """The fluent API's active run, as MLflow makes it the parent (only if it is in use)."""
    fluent = sys.modules.get("jupyter_mlops.client.fluent")
    if fluent is None:
        return None
    active = fluent.active_run()
    return active.info.run_id if active is not None else None


def run(
    uri: str,
    entry_point: str = "main",
    version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    env_manager: str | None = None,
    storage_dir: str | None = None,
    synchronous: bool = True,
    run_id: str | None = None,
    run_name: str | None = None,
    target: str | None = None,
    tracking_uri: str | None = None,
    log_path: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> SubmittedRun:
    """Run an MLflow project's entry point as a tracked run.

    ``uri``: a directory, a git repository (``https://…``, ``file:///…``; ``#sub/dir`` picks
    a subdirectory; ``version`` a commit or branch) or a ``.zip``/``.tar.gz`` archive.
    Parameters are checked against the MLproject before anything starts (a
    :class:`ProjectError` names the parameter and the line). With ``synchronous`` (the
    default) this waits and raises :class:`ProjectError` when the run did not finish;
    otherwise the :class:`SubmittedRun` is returned at once (``wait()``, ``status``,
    ``cancel()``, ``run_id``).

    ``target``: ``local`` (default: this machine) or a training target's name (a Kubernetes
    cluster configured as ``c.TrainingService.targets``): the run is a training job there,
    whose replica runs the entry point in the target's image (the project's ``docker_env``
    image if it has one); a :class:`~.ontarget.TargetRun` is returned.
    """
    from ..client.uris import get_tracking_uri, open_tracking_store

    if target not in (None, "local"):
        return _on_target(
            target,
            uri,
            entry_point,
            version,
            parameters,
            experiment_name,
            experiment_id,
            env_manager,
            storage_dir,
            synchronous,
            run_name,
            run_id,
            tracking_uri,
        )
    p = plan(uri, entry_point, parameters, version, env_manager, storage_dir)
    try:
        tracking_uri = tracking_uri or get_tracking_uri()
        store = open_tracking_store(tracking_uri)
        exp = resolve_experiment(store, experiment_name, experiment_id)
        submitted = start(
            p,
            store,
            tracking_uri,
            experiment_id=exp,
            run_name=run_name,
            run_id=run_id,
            parent_run_id=_active_run_id(),
            log_path=log_path,
            echo=echo,
        )
    except BaseException:
        p.discard()
        raise
    if synchronous:
        try:
            ok = submitted.wait()
        except KeyboardInterrupt:
            submitted.cancel()
            raise
        if not ok:
            raise ProjectError(
                f"Run (ID '{submitted.run_id}') failed"
                + (f": {submitted.error}" if submitted.error else "")
            )
    return submitted


def _on_target(
    target: str,
    uri: str,
    entry_point: str,
    version: str | None,
    parameters: Mapping[str, Any] | None,
    experiment_name: str | None,
    experiment_id: str | None,
    env_manager: str | None,
    storage_dir: str | None,
    synchronous: bool,
    run_name: str | None,
    run_id: str | None,
    tracking_uri: str | None,
) -> Any:
    from ..client.uris import get_tracking_uri
    from .ontarget import submit

    if env_manager not in (None, "local"):
        raise ProjectError(
            f"--env-manager {env_manager}: on target {target!r} the entry point runs in the "
            "target's image (the project's docker_env image if it has one); environment "
            "managers are for local runs"
        )
    if run_id:
        raise ProjectError(f"--run-id: a run on target {target!r} is its training job's own")
    if storage_dir is None and os.environ.get("JUPYTER_MLOPS_SERVER_URL"):
        # the server takes the project from inside its root: fetch git/archive URIs here
        storage_dir = os.getcwd()
    p = plan(uri, entry_point, parameters, version, "local", storage_dir)
    try:
        submitted = submit(
            p,
            target,
            {str(k): v for k, v in (parameters or {}).items()},
            tracking_uri=tracking_uri or get_tracking_uri(),
            experiment_name=experiment_name,
            experiment_id=experiment_id,
            run_name=run_name,
            parent_run_id=_active_run_id(),
        )
    finally:
        p.discard()  # the job shipped (or refused) the project directory
    if synchronous and not submitted.wait():
        raise ProjectError(
            f"Run (ID '{submitted.run_id}') failed"
            + (f": {submitted.error}" if submitted.error else "")
        )
    return submitted
