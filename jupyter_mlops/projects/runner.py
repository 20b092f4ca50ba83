"""Running an entry point as a tracked run, recorded as ``mlflow run`` records it.

:func:`plan` fetches and reads the project and checks the entry point, its parameters
and the environment manager: every refusal happens there, before a run exists.
:func:`start` then creates the run (tags ``mlflow.user``, ``mlflow.source.name``,
``mlflow.source.type=PROJECT``, ``mlflow.project.entryPoint``, the git tags, the
parameters as MLflow logs them), and in a background thread prepares the environment
(tag ``mlflow.project.env`` unless local), tags ``mlflow.project.backend``, runs the
command with ``bash -c`` in the project directory and ends the run by the command's
exit status unless the entry point ended it itself. The command's process gets the
run (``MLFLOW_RUN_ID``, ``JUPYTER_MLOPS_RUN_ID``, ``MLFLOW_EXPERIMENT_ID``) and the store
(``JUPYTER_MLOPS_TRACKING_URI``; ``MLFLOW_TRACKING_URI`` too when it is a server's
``http(s)`` URI, the only kind the official client can share with us), so its
``mlops.*`` and ``mlflow.*`` calls log into that run with no configuration.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from ..tracking.clock import now_ms
from .envs import Environment, choose_manager, prepare
from .fetch import Fetched, fetch
from .params import compute_command, compute_parameters
from .spec import EntryPoint, Project, ProjectError, load_project

TAG_USER = "mlflow.user"
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_ENTRY_POINT = "mlflow.project.entryPoint"
TAG_ENV = "mlflow.project.env"
TAG_BACKEND = "mlflow.project.backend"
TAG_PARENT = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
#: The file the command's output goes to when it is not a terminal (kept as an artifact).
LOG_ARTIFACT = "project.log"
TERMINAL = ("FINISHED", "FAILED", "KILLED")


@dataclass
class Plan:
    """A run that may start: everything checked, nothing created yet."""

    uri: str
    fetched: Fetched
    project: Project
    entry: EntryPoint
    #: The parameters as MLflow logs them (shell-quoted; paths as given).
    params: list[tuple[str, str]]
    command: str
    manager: str
    storage_dir: str
    version: str | None = None

    def discard(self) -> None:
        """Remove what fetching and downloading made (a local project stays)."""
        self.fetched.cleanup()
        shutil.rmtree(self.storage_dir, ignore_errors=True)


def plan(
    uri: str,
    entry_point: str = "main",
    parameters: Mapping[str, Any] | None = None,
    version: str | None = None,
    env_manager: str | None = None,
    storage_dir: str | None = None,
    cwd: str | None = None,
) -> Plan:
    """Fetch and check; raises :class:`ProjectError` naming what is wrong and where."""
    given = {str(k): v for k, v in (parameters or {}).items()}
    storage = tempfile.mkdtemp(prefix="mlops-project-run-", dir=storage_dir)
    fetched = fetch(uri, version, storage)
    try:
        project = load_project(fetched.work_dir)
        entry = project.entry_point(entry_point)
        manager = choose_manager(project, env_manager)
        final, extra = compute_parameters(project, entry, given, None, cwd)
        command = compute_command(project, entry, given, storage, cwd)
    except BaseException:
        fetched.cleanup()
        raise
    params = [*final.items(), *extra.items()]
    return Plan(uri, fetched, project, entry, params, command, manager, storage, version)


def child_env(
    base: Mapping[str, str],
    tracking_uri: str,
    run_id: str,
    experiment_id: str,
    environment: Environment,
) -> dict[str, str]:
    env = environment.apply(dict(base))
    env.update(
        {
            "JUPYTER_MLOPS_TRACKING_URI": tracking_uri,
            "JUPYTER_MLOPS_RUN_ID": run_id,
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_EXPERIMENT_ID": str(experiment_id),
        }
    )
    if tracking_uri.startswith(("http://", "https://")):
        env["MLFLOW_TRACKING_URI"] = tracking_uri
        token = env.get("JUPYTER_MLOPS_TRACKING_TOKEN")
        if token:
            env.setdefault("MLFLOW_TRACKING_TOKEN", token)
    elif not _server_of(base, tracking_uri):
        # the official client cannot share a database with us: it would log elsewhere
        # (./mlruns) rather than into a store it does not understand
        env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    return env


def _server_of(base: Mapping[str, str], tracking_uri: str) -> bool:
    """Whether ``base`` has the ``MLFLOW_TRACKING_URI`` a Jupyter server exported for the
    same store (its kernels, terminals and this service): then mlflow.* logs there too."""
    exported = base.get("JUPYTER_MLOPS_EXPORTED", "").split(",")
    return (
        "MLFLOW_TRACKING_URI" in exported
        and base.get("JUPYTER_MLOPS_TRACKING_URI") == tracking_uri
        and base.get("MLFLOW_TRACKING_URI", "").startswith(("http://", "https://"))
    )


def resolve_experiment(store: Any, experiment_name: str | None, experiment_id: str | None) -> str:
    """MLflow's order: a name (created when missing), an id, the environment, "0"."""
    name = experiment_name or (None if experiment_id else os.environ.get("MLFLOW_EXPERIMENT_NAME"))
    if name:
        exp = store.get_experiment_by_name(name)
        if exp is not None and getattr(exp, "lifecycle_stage", "active") == "active":
            return str(exp.experiment_id)
        if exp is not None:
            raise ProjectError(f"experiment {name!r} is deleted: restore it or use another name")
        return str(store.create_experiment(name))
    return str(experiment_id or os.environ.get("MLFLOW_EXPERIMENT_ID") or "0")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - getuser raises KeyError/OSError by platform
        return "unknown"


@dataclass
class SubmittedRun:
    """A started project run (MLflow's ``SubmittedRun``): ``wait()``, ``get_status()``,
    ``cancel()``, ``run_id``."""

    run_id: str
    experiment_id: str
    command: str
    plan: Plan = field(repr=False)
    log_path: str | None = None
    environment: Environment | None = None
    error: str | None = None
    _status: str = "RUNNING"
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _cancelled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True when it FINISHED."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._status == "FINISHED"

    def get_status(self) -> str:
        return self._status

    @property
    def status(self) -> str:
        """RUNNING, then FINISHED, FAILED or KILLED."""
        return self._status

    @property
    def done(self) -> bool:
        return self._status in TERMINAL

    def cancel(self) -> None:
        """Stop the command (its whole process group) and mark the run KILLED."""
        with self._lock:
            self._cancelled = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self.wait(60)


def start(
    p: Plan,
    store: Any,
    tracking_uri: str,
    *,
    experiment_id: str,
    run_name: str | None = None,
    run_id: str | None = None,
    parent_run_id: str | None = None,
    backend: str = "local",
    log_path: str | None = None,
    log_dir: str | None = None,
    echo: Callable[[str], None] | None = None,
    base_env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> SubmittedRun:
    """Create (or, with ``run_id``, adopt) the run and start it in the background.
    The command's output goes to ``log_path`` (or ``<log_dir>/<run id>.log``); with
    neither, to our stdout/stderr (a terminal)."""
    tags = {
        TAG_USER: user or _user(),
        TAG_SOURCE_NAME: p.fetched.source_name,
        TAG_SOURCE_TYPE: "PROJECT",
        TAG_ENTRY_POINT: p.entry.name,
        **p.fetched.git_tags,
    }
    if parent_run_id:
        tags[TAG_PARENT] = parent_run_id
    if run_id:
        run = store.get_run(run_id)
        if run.info.status in TERMINAL:
            raise ProjectError(f"run {run_id} has already ended ({run.info.status})")
        experiment_id = run.info.experiment_id
        have = run.data.params
        params = [(k, v) for k, v in p.params if k not in have]
        store.log_batch(run_id, params=params, tags=list(tags.items()))
    else:
        run = store.create_run(
            experiment_id,
            user_id=tags[TAG_USER],
            start_time=now_ms(),
            tags=tags,
            run_name=run_name,
        )
        run_id = run.info.run_id
        if p.params:
            store.log_batch(run_id, params=p.params)
    if log_path is None and log_dir is not None:
        log_path = os.path.join(log_dir, f"{run_id}.log")
    submitted = SubmittedRun(str(run_id), str(experiment_id), p.command, p, log_path)
    say = _echo_to(log_path, echo)
    env_base = dict(base_env if base_env is not None else os.environ)
    thread = threading.Thread(
        target=_execute,
        args=(submitted, store, tracking_uri, backend, say, env_base, run.info.artifact_uri),
        name=f"mlops-project-{run_id}",
        daemon=True,
    )
    submitted._thread = thread
    thread.start()
    return submitted


def _echo_to(log_path: str | None, echo: Callable[[str], None] | None) -> Callable[[str], None]:
    def say(text: str) -> None:
        line = f"[jupyter-mlops] {text}"
        if echo is not None:
            echo(line)
        if log_path is not None:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        elif echo is None:
            print(line, file=sys.stderr, flush=True)

    return say


def _execute(
    run: SubmittedRun,
    store: Any,
    tracking_uri: str,
    backend: str,
    say: Callable[[str], None],
    base_env: dict[str, str],
    artifact_uri: str,
) -> None:
    p = run.plan
    status = "FAILED"
    try:
        if p.project.env_kind == "docker" and p.manager == "local":
            say(
                f"docker_env: the image {p.project.docker.image if p.project.docker else '?'} "
                "is not started here; running in the current environment (--env-manager local)"
            )
        if p.project.env_kind == "conda" and p.manager == "local":
            say("conda_env ignored: running in the current environment (--env-manager local)")
        environment = prepare(p.project, p.manager, say)
        run.environment = environment
        if environment.path is not None and not environment.created:
            say(f"environment {os.path.basename(environment.path)} reused")
        tags = [(TAG_BACKEND, backend)]
        if p.manager != "local":
            tags.insert(0, (TAG_ENV, p.manager))
        store.log_batch(run.run_id, tags=tags)
        env = child_env(base_env, tracking_uri, run.run_id, run.experiment_id, environment)
        say(f"running {p.command!r} in run {run.run_id} (entry point {p.entry.name})")
        out: IO[bytes] | None = None
        if run.log_path is not None:
            out = open(run.log_path, "ab")  # noqa: SIM115 - closed below, after the child ends
        try:
            with run._lock:
                if run._cancelled:
                    raise InterruptedError
                run._proc = subprocess.Popen(
                    ["bash", "-c", p.command],
                    cwd=p.fetched.work_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT if out is not None else None,
                    start_new_session=True,
                )
            code = run._proc.wait()
        finally:
            if out is not None:
                out.close()
        if run._cancelled:
            status = "KILLED"
        else:
            status = "FINISHED" if code == 0 else "FAILED"
            if code != 0:
                run.error = f"the entry point exited with status {code}"
        say(
            f"run {run.run_id} "
            + {"FINISHED": "succeeded", "FAILED": f"failed ({run.error})", "KILLED": "cancelled"}[
                status
            ]
        )
    except InterruptedError:
        status = "KILLED"
    except ProjectError as e:
        run.error = e.message
        say(f"run {run.run_id} failed: {e.message}")
    except Exception as e:  # noqa: BLE001 - the run records why it failed
        run.error = f"{type(e).__name__}: {e}"
        say(f"run {run.run_id} failed: {run.error}")
    finally:
        try:
            _finish(run, store, status, artifact_uri)
        finally:
            run._status = status
            p.discard()


def _finish(run: SubmittedRun, store: Any, status: str, artifact_uri: str) -> None:
    """End the run unless the entry point already did (MLflow's
    ``_maybe_set_run_terminated``); keep the output as the run's ``project.log``."""
    if run.log_path is not None and os.path.exists(run.log_path):
        with contextlib.suppress(Exception), open(run.log_path, "rb") as f:
            store.artifact_repo(artifact_uri).put(LOG_ARTIFACT, f.read())
    if run.error:
        with contextlib.suppress(Exception):
            store.set_tag(run.run_id, "mlops.project.error", run.error[:5000])
    current = store.get_run(run.run_id).info.status
    if current not in TERMINAL or run._cancelled:
        store.update_run_info(run.run_id, status=status, end_time=now_ms())
