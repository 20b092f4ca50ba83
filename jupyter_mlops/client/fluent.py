"""The fluent API, with MLflow's names and signatures.

Active runs are kept per thread (a stack, for nested runs), as in MLflow.
Logging calls only queue (see :mod:`.writer`); ``flush()``, ``end_run()`` and
interpreter exit wait until everything is durable and raise the store's
refusals (a conflicting param, a deleted run) with the store's message.

Liveness: the writer heartbeats active runs; ``start_run`` marks KILLED the
RUNNING runs of writers silent for longer than the heartbeat timeout (see
:func:`.writer.heartbeat_timeout_ms`). Over HTTP the server does that sweep.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..tracking.entities import (
    DEFAULT_EXPERIMENT_ID,
    DELETED,
    FAILED,
    FINISHED,
    TAG_NOTE,
    TAG_PARENT_RUN_ID,
    TAG_SOURCE_NAME,
    TAG_SOURCE_TYPE,
    TAG_USER,
    Experiment,
    Metric,
    Run,
)
from ..tracking.errors import UNAUTHENTICATED, TrackingError, invalid
from . import uris
from .mlops_client import MlopsClient, PagedList, current_user, to_view_type

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_clients: dict[str, MlopsClient] = {}
_clients_lock = threading.Lock()
_local = threading.local()
_all_active: dict[str, ActiveRun] = {}  # every thread's active runs, for exit
_active_experiment_id: str | None = None
_last_active_run_id: str | None = None
_last_active_uri: str | None = None


class ActiveRun(Run):
    """The run returned by :func:`start_run`; a context manager that ends the
    run FINISHED, or FAILED when the block raises."""

    _client: MlopsClient
    #: A training job's run resumed by a rank: the job ends it, not the rank.
    _job_owned: bool = False
    #: What this rank's metric keys start with (``rank3/`` for a rank other than 0).
    _metric_prefix: str = ""

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        stack = _stack()
        if any(r.info.run_id == self.info.run_id for r in stack):
            status = FINISHED if exc_type is None else FAILED
            # end any runs nested inside this one first, then this one
            while stack and stack[-1].info.run_id != self.info.run_id:
                end_run(status)
            if exc_type is None:
                end_run(status)
            else:
                try:
                    end_run(status)
                except Exception as e:  # noqa: BLE001 - do not hide the user's exception
                    log.error("jupyter-mlops: ending run %s failed: %s", self.info.run_id, e)
        return False


def _stack() -> list[ActiveRun]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _client(uri: str | None = None) -> MlopsClient:
    uri = uri or uris.get_tracking_uri()
    c = _clients.get(uri)
    if c is None or c._writer._closed:
        with _clients_lock:
            c = _clients.get(uri)
            if c is None or c._writer._closed:
                c = _clients[uri] = MlopsClient(uri)
    return c


def _plain_auth_errors(fn: Any) -> Any:
    """A refused token surfaces from the user's own call with its message only
    (it says what to set): the writer-thread and HTTP frames it came through
    would only bury it."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TrackingError as e:
            if e.error_code != UNAUTHENTICATED:
                raise
            raise e.with_traceback(None) from None

    return call


# -- tracking URI and experiments ---------------------------------------------
def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Log to ``uri`` from now on (``sqlite:///…``, ``postgresql://…``,
    ``http(s)://…``; ``None``: back to the environment). Experiment ids belong
    to a store, so a different URI also forgets the active experiment."""
    global _active_experiment_id
    before = uris.get_tracking_uri()
    uris.set_tracking_uri(uri)
    if uris.get_tracking_uri() != before:
        _active_experiment_id = None


def get_tracking_uri() -> str:
    return uris.get_tracking_uri()


def _experiment_id_from_env(client: MlopsClient) -> str | None:
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    exp_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if name:
        exp = client.get_experiment_by_name(name)
        found = exp.experiment_id if exp else client.create_experiment(name)
        if exp_id and exp_id != found:
            raise invalid(
                f"MLFLOW_EXPERIMENT_ID={exp_id} does not match MLFLOW_EXPERIMENT_NAME={name!r}"
            )
        return found
    return exp_id or None


@_plain_auth_errors
def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active, creating it by name if needed."""
    global _active_experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise invalid("Must specify exactly one of: `experiment_id` or `experiment_name`.")
    client = _client()
    exp: Experiment | None
    if experiment_id is not None:
        exp = client.get_experiment(str(experiment_id))
    else:
        exp = client.get_experiment_by_name(str(experiment_name))
        if exp is None:
            try:
                exp = client.get_experiment(client.create_experiment(str(experiment_name)))
            except TrackingError as e:  # another process created it meanwhile
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                exp = client.get_experiment_by_name(str(experiment_name))
                assert exp is not None
    if exp.lifecycle_stage == DELETED:
        raise invalid(
            f"Cannot set a deleted experiment {exp.name!r} as the active experiment. "
            "You can restore the experiment, or permanently delete the experiment to create a new one."
        )
    _active_experiment_id = exp.experiment_id
    return exp


@_plain_auth_errors
def create_experiment(
    name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
) -> str:
    return _client().create_experiment(name, artifact_location, tags)


@_plain_auth_errors
def get_experiment(experiment_id: str) -> Experiment:
    return _client().get_experiment(experiment_id)


@_plain_auth_errors
def get_experiment_by_name(name: str) -> Experiment | None:
    return _client().get_experiment_by_name(name)


@_plain_auth_errors
def search_experiments(
    view_type: int | str = 1,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    client = _client()
    out: list[Experiment] = []
    token = None
    while max_results is None or len(out) < max_results:
        page_size = 1000 if max_results is None else min(1000, max_results - len(out))
        page = client.search_experiments(view_type, page_size, filter_string, order_by, token)
        out.extend(page)
        token = page.token
        if not token:
            break
    return out


@_plain_auth_errors
def delete_experiment(experiment_id: str) -> None:
    _client().delete_experiment(experiment_id)


def _current_experiment_id(client: MlopsClient) -> str:
    return _active_experiment_id or _experiment_id_from_env(client) or DEFAULT_EXPERIMENT_ID


# -- runs of training jobs --------------------------------------------------------
class _Muted:
    """The client of a job rank that does not log (ranks other than 0 by default): every
    call is accepted and dropped."""

    tracking_uri = ""

    class _W:
        _errors: ClassVar[list[Any]] = []
        _closed = False

        def take_errors(self) -> list[Any]:
            return []

        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    _writer = _W()

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


_MUTED = _Muted()


def _muted_run() -> ActiveRun:
    """The job's run as a rank that does not log sees it: its id, nothing else."""
    from ..tracking.entities import RUNNING, RunData, RunInfo

    job_run = os.environ.get("JUPYTER_MLOPS_JOB_RUN_ID", "")
    active = ActiveRun(RunInfo(job_run, "", "", "", RUNNING, None, None, ""), RunData())
    active._client = _MUTED  # type: ignore[assignment]
    _stack().append(active)
    return active


def _job_rank_run(run_id: str | None) -> tuple[str | None, str | None]:
    """In a rank of a training job (``JUPYTER_MLOPS_JOB_RUN_ID``), a run started without
    an id of its own is the job's run: rank 0 logs there as usual, other ranks log there
    with their keys prefixed ``rank<N>/`` when the job logs all ranks
    (``JUPYTER_MLOPS_JOB_LOG_RANKS=all``) and drop what they log otherwise. Returns the
    run id and the role: None (not a job's run), a metric key prefix ("" for rank 0), or
    "muted"."""
    job_run = os.environ.get("JUPYTER_MLOPS_JOB_RUN_ID")
    if not job_run or (run_id and run_id != job_run):
        return run_id, None
    try:
        rank = int(os.environ.get("JUPYTER_MLOPS_RANK") or 0)
    except ValueError:
        rank = 0
    if rank == 0:
        return job_run, ""
    if os.environ.get("JUPYTER_MLOPS_JOB_LOG_RANKS", "").lower() == "all":
        return job_run, f"rank{rank}/"
    return job_run, "muted"


def _job_run(client: MlopsClient, run_id: str) -> Run:
    """The job's run as its logging rank takes it up, without asking the store: the
    service created it RUNNING and heartbeats it, and a rank's first ``log_metric`` must
    not wait for the store to open (the writer thread opens it). Its info is what the
    job's environment says; ``mlops.get_run(run_id)`` reads the rest."""
    from ..tracking.entities import RUNNING, RunData, RunInfo

    client._writer.run_started(run_id)
    return Run(
        RunInfo(
            run_id,
            os.environ["JUPYTER_MLOPS_JOB_EXPERIMENT_ID"],
            "",
            current_user(),
            RUNNING,
            None,
            None,
            "",
        ),
        RunData(),
    )


# -- runs ----------------------------------------------------------------------
@_plain_auth_errors
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a new run (or resume ``run_id``) and make it this thread's active run."""
    global _last_active_run_id, _last_active_uri
    stack = _stack()
    if stack and not nested:
        raise invalid(
            f"Run with UUID {stack[-1].info.run_id} is already active. To start a new run, first end "
            "the current run with jupyter_mlops.end_run(). To start a nested run, call start_run with "
            "nested=True"
        )
    if parent_run_id is not None and stack and stack[-1].info.run_id != parent_run_id:
        raise invalid(
            f"Current run with UUID {stack[-1].info.run_id} does not match the specified parent_run_id "
            f"{parent_run_id}. To start a new nested run under the parent run with UUID {parent_run_id}, "
            "first end the current run with jupyter_mlops.end_run()."
        )
    if not stack and not run_id and _job_rank_run(None)[1] == "muted":
        return _muted_run()  # a rank that does not log: no store opened, nothing sent
    client = _client()
    # A process started for a run (a pipeline step) resumes it; popped so later runs are new.
    env_run_id = os.environ.pop("JUPYTER_MLOPS_RUN_ID", None)
    mlflow_env_run_id = os.environ.pop("MLFLOW_RUN_ID", None)
    run_id = run_id or env_run_id or mlflow_env_run_id
    user_tags = {str(k): str(v) for k, v in (tags or {}).items()}
    if description is not None:
        if TAG_NOTE in user_tags and user_tags[TAG_NOTE] != description:
            raise invalid(
                f"Description is already set via the tag {TAG_NOTE} in tags. Remove the key {TAG_NOTE} "
                "from the tags or omit the description."
            )
        user_tags[TAG_NOTE] = description

    job_role = None
    if not stack:
        run_id, job_role = _job_rank_run(run_id)
    if job_role == "muted":
        return _muted_run()
    if job_role is not None and run_id and os.environ.get("JUPYTER_MLOPS_JOB_EXPERIMENT_ID"):
        run = _job_run(client, run_id)
        for k, v in user_tags.items():
            client.set_tag(run.info.run_id, k, v)
    elif run_id:
        run = client.resume_run(run_id)
        for k, v in user_tags.items():
            client.set_tag(run.info.run_id, k, v)
    else:
        try:
            client.kill_stale_runs()
        except Exception as e:  # noqa: BLE001 - liveness is best effort; never block a new run
            log.debug("jupyter-mlops: could not sweep stale runs: %s", e)
        exp_id = str(experiment_id) if experiment_id is not None else _current_experiment_id(client)
        parent = parent_run_id or (stack[-1].info.run_id if stack else None)
        source_tags, files = _capture_source()
        all_tags = {TAG_USER: current_user(), **source_tags}
        if parent:
            all_tags[TAG_PARENT_RUN_ID] = parent
        all_tags.update(user_tags)
        run = client.create_run(exp_id, tags=all_tags, run_name=run_name)
        _save_source_files(client, run.info.run_id, files)

    active = ActiveRun(run.info, run.data, run.inputs)
    active._client = client
    if job_role is not None:  # the training job ends its run, not a rank
        active._job_owned = True
        active._metric_prefix = job_role
    if log_system_metrics or (
        log_system_metrics is None
        and os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "").lower() in ("true", "1")
    ):
        _start_system_metrics(client, run.info.run_id)
    stack.append(active)
    _all_active[run.info.run_id] = active
    _sync_mlflow_run()
    _last_active_run_id = run.info.run_id
    _last_active_uri = client.tracking_uri
    return active


def _sync_mlflow_run() -> None:
    """After autolog()/evaluate(), mlflow's active run follows ours (mlflow_bridge)."""
    bridge = sys.modules.get("jupyter_mlops.client.mlflow_bridge")
    if bridge is not None and bridge.connected():
        bridge.sync_active_run()


_last_logged_model_id: str | None = None


def note_logged_model(model_id: str) -> None:
    """Remember the last logged model this process created (``last_logged_model``)."""
    global _last_logged_model_id
    _last_logged_model_id = model_id


_monitors: dict[str, Any] = {}  # run id -> SystemMetricsMonitor


def _start_system_metrics(client: MlopsClient, run_id: str) -> None:
    """Sample the machine into the run (``system/...`` metrics) until it ends."""
    from .system_metrics import SystemMetricsMonitor

    writer = client._writer

    def publish(metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            writer.log_metric(run_id, key, value, None, step)

    try:
        _monitors[run_id] = SystemMetricsMonitor(publish).start()
    except Exception as e:  # noqa: BLE001 - psutil missing or broken: the run goes on without them
        log.warning("jupyter-mlops: system metrics are not logged: %s", e)


def _stop_system_metrics(run_id: str) -> None:
    monitor = _monitors.pop(run_id, None)
    if monitor is not None:
        monitor.stop()


def _capture_source() -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """Source tags and files from the source-capture module when present,
    else ``sys.argv[0]`` as a LOCAL source (MLflow's default context)."""
    try:
        from .source import capture_source
    except ImportError:
        pass
    else:
        try:
            tags, files = capture_source()
            if tags:
                return dict(tags), list(files)
        except Exception as e:  # noqa: BLE001 - source capture is best effort
            log.debug("jupyter-mlops: source capture failed: %s", e)
    name = sys.argv[0] if sys.argv and sys.argv[0] else "<console>"
    return {TAG_SOURCE_NAME: name, TAG_SOURCE_TYPE: "LOCAL"}, []


def _save_source_files(client: MlopsClient, run_id: str, files: list[tuple[str, bytes]]) -> None:
    for name, data in files:
        try:
            client.log_bytes(run_id, data, f"source/{os.path.basename(name)}")
        except Exception as e:  # noqa: BLE001 - the run matters more than its snapshot
            log.warning("jupyter-mlops: could not save source/%s: %s", name, e)


def active_run() -> ActiveRun | None:
    stack = _stack()
    return stack[-1] if stack else None


@_plain_auth_errors
def last_active_run() -> Run | None:
    """The active run, else the last run this process started (fetched fresh)."""
    run = active_run()
    if run is not None:
        return run
    if _last_active_run_id is None:
        return None
    return _client(_last_active_uri).get_run(_last_active_run_id)


@_plain_auth_errors
def end_run(status: str = FINISHED) -> None:
    """End this thread's active run: wait until everything logged is durable,
    then set its status. Raises the store's refusals of logged data, if any."""
    stack = _stack()
    if not stack:
        return
    run = stack.pop()
    _all_active.pop(run.info.run_id, None)
    _stop_system_metrics(run.info.run_id)
    _sync_mlflow_run()
    client = run._client
    errors = client._writer.take_errors()
    try:
        if getattr(run, "_job_owned", False):
            client._sync()  # durable; the job's service ends its run when every rank did
        else:
            client.set_terminated(run.info.run_id, status)
    finally:
        # refusals of this run's data come out here, or at the next flush if
        # ending the run itself failed
        client._writer._errors[:0] = errors + client._writer.take_errors()
    client._writer.raise_errors()


def _get_or_start_run() -> ActiveRun:
    stack = _stack()
    if stack:
        return stack[-1]
    return start_run()


def _target(run_id: str | None) -> tuple[MlopsClient, str]:
    if run_id is None:
        run = _get_or_start_run()
        return run._client, run.info.run_id
    active = _all_active.get(run_id)
    return (active._client if active is not None else _client()), run_id


def _flush_if(client: MlopsClient, synchronous: bool | None) -> None:
    if synchronous:
        client.flush()


def _flushed(client: MlopsClient, synchronous: bool | None) -> RunOperations | None:
    """MLflow's answer of a logging call: None once flushed, else the pending operations."""
    if synchronous:
        client.flush()
        return None
    return _QUEUED


class RunOperations:
    """What MLflow's logging calls return when not synchronous: ``wait()`` blocks until
    what was logged is durable. Logging here is always queued, so every call returns the
    same object, whose ``wait()`` is :func:`flush`."""

    __slots__ = ()

    def wait(self) -> None:
        flush()


_QUEUED = RunOperations()


# -- logging (queued) ------------------------------------------------------------
def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> RunOperations | None:
    """Queue one metric point and return at once (``synchronous=True`` waits)."""
    if run_id is None:
        stack = getattr(_local, "stack", None)
        run = stack[-1] if stack else _get_or_start_run()
        prefix = getattr(run, "_metric_prefix", "")
        if prefix:
            key = prefix + key
        run._client._writer.log_metric(run.info.run_id, key, value, timestamp, step)
        if synchronous:
            run._client.flush()
            return None
        return _QUEUED
    client, rid = _target(run_id)
    client._writer.log_metric(rid, key, value, timestamp, step)
    return _flushed(client, synchronous)


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> RunOperations | None:
    client, rid = _target(run_id)
    w = client._writer
    if timestamp is None:
        from .mlops_client import now_ms

        timestamp = now_ms()
    active = _all_active.get(rid) or (_stack()[-1] if _stack() and run_id is None else None)
    prefix = getattr(active, "_metric_prefix", "") if active is not None else ""
    for k, v in metrics.items():
        w.log_metric(rid, prefix + k, v, timestamp, step)
    return _flushed(client, synchronous)


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Queue a param; a different value for a key already logged raises at once."""
    client, rid = _target(None)
    client._writer.log_param(rid, key, value)
    _flush_if(client, synchronous)
    return value


def log_params(
    params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> RunOperations | None:
    client, rid = _target(run_id)
    for k, v in params.items():
        client._writer.log_param(rid, k, v)
    return _flushed(client, synchronous)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    client, rid = _target(None)
    client._writer.set_tag(rid, key, value)
    return _flushed(client, synchronous)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    client, rid = _target(None)
    for k, v in tags.items():
        client._writer.set_tag(rid, k, v)
    return _flushed(client, synchronous)


@_plain_auth_errors
def delete_tag(key: str) -> None:
    client, rid = _target(None)
    client.delete_tag(rid, key)


@_plain_auth_errors
def flush() -> None:
    """Wait until everything logged by this process is durable (in the store,
    or in the local spool while the store is unreachable); raise the store's
    refusals of logged data."""
    for c in list(_clients.values()):
        c.flush()


flush_async_logging = flush


# -- artifacts -------------------------------------------------------------------
@_plain_auth_errors
def log_artifact(
    local_path: str, artifact_path: str | None = None, run_id: str | None = None
) -> None:
    client, rid = _target(run_id)
    client.log_artifact(rid, local_path, artifact_path)


@_plain_auth_errors
def log_artifacts(
    local_dir: str, artifact_path: str | None = None, run_id: str | None = None
) -> None:
    client, rid = _target(run_id)
    client.log_artifacts(rid, local_dir, artifact_path)


@_plain_auth_errors
def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    client, rid = _target(run_id)
    client.log_text(rid, text, artifact_file)


@_plain_auth_errors
def log_dict(dictionary: dict[str, Any], artifact_file: str, run_id: str | None = None) -> None:
    client, rid = _target(run_id)
    client.log_dict(rid, dictionary, artifact_file)


@_plain_auth_errors
def log_figure(
    figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
) -> None:
    client, rid = _target(None)
    client.log_figure(rid, figure, artifact_file, save_kwargs=save_kwargs)


@_plain_auth_errors
def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = False,
) -> None:
    client, rid = _target(None)
    client.log_image(rid, image, artifact_file, key=key, step=step, timestamp=timestamp)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    client, rid = _target(None)
    return client.get_artifact_uri(rid, artifact_path)


# -- reads -------------------------------------------------------------------------
@_plain_auth_errors
def get_run(run_id: str) -> Run:
    return _client().get_run(run_id)


@_plain_auth_errors
def get_metric_history(run_id: str, key: str) -> list[Metric]:
    return _client().get_metric_history(run_id, key)


@_plain_auth_errors
def delete_run(run_id: str) -> None:
    _client().delete_run(run_id)


@_plain_auth_errors
def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str = "",
    run_view_type: int = 1,
    max_results: int = 100_000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> list[Run] | pd.DataFrame:
    """Runs as a pandas DataFrame with MLflow's columns (``run_id``, ...,
    ``metrics.<k>``, ``params.<k>``, ``tags.<k>``), or ``output_format="list"``
    for Run objects."""
    if output_format not in ("pandas", "list"):
        raise invalid(f"Unsupported output format {output_format!r}: use 'pandas' or 'list'")
    client = _client()
    ids = [str(e) for e in (experiment_ids or [])]
    for name in experiment_names or []:
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            ids.append(exp.experiment_id)
    if not ids and not experiment_names:
        if search_all_experiments:
            ids = [
                e.experiment_id for e in search_experiments(view_type=to_view_type(run_view_type))
            ]
        else:
            ids = [_current_experiment_id(client)]
    runs = (
        client.search_all_runs(ids, filter_string, run_view_type, max_results, order_by)
        if ids
        else []
    )
    if output_format == "list":
        return runs
    try:
        import pandas  # noqa: F401
    except ImportError:
        log.warning("jupyter-mlops: pandas is not installed; search_runs returns a list of runs")
        return runs
    return runs_to_dataframe(runs)


def runs_to_dataframe(runs: list[Run]) -> Any:
    """MLflow's search_runs DataFrame layout."""
    import pandas as pd

    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    metric_keys: dict[str, None] = {}
    param_keys: dict[str, None] = {}
    tag_keys: dict[str, None] = {}
    for r in runs:
        metric_keys.update(dict.fromkeys(r.data.metrics))
        param_keys.update(dict.fromkeys(r.data.params))
        tag_keys.update(dict.fromkeys(r.data.tags))
    cols: dict[str, list[Any]] = {
        "run_id": [r.info.run_id for r in runs],
        "experiment_id": [r.info.experiment_id for r in runs],
        "status": [r.info.status for r in runs],
        "artifact_uri": [r.info.artifact_uri for r in runs],
        "start_time": pd.to_datetime([r.info.start_time for r in runs], unit="ms", utc=True),
        "end_time": pd.to_datetime([r.info.end_time for r in runs], unit="ms", utc=True),
    }
    nan = float("nan")
    for k in metric_keys:
        cols[f"metrics.{k}"] = [
            float(r.data.metrics[k]) if k in r.data.metrics else nan for r in runs
        ]
    for k in param_keys:
        cols[f"params.{k}"] = [r.data.params.get(k) for r in runs]
    for k in tag_keys:
        cols[f"tags.{k}"] = [r.data.tags.get(k) for r in runs]
    if not runs:
        return pd.DataFrame(columns=base)
    return pd.DataFrame(cols)


# -- exit and fork -------------------------------------------------------------------
def _end_runs_at_exit() -> None:
    """End runs still active at interpreter exit: FAILED after an uncaught
    exception in a script, FINISHED otherwise; then everything is flushed
    (by the writer's own exit hook, which runs after this one)."""
    crashed = (getattr(sys, "last_exc", None) or getattr(sys, "last_type", None)) is not None
    if "ipykernel" in sys.modules:
        crashed = False  # a kernel keeps the last cell's error around: not a crash
    status = FAILED if crashed else FINISHED
    for run_id, run in list(_all_active.items()):
        if getattr(run, "_job_owned", False):
            continue  # flushed by the writer's own exit hook; the job ends its run
        try:
            _stop_system_metrics(run_id)
            run._client.set_terminated(run_id, status)
        except Exception as e:  # noqa: BLE001 - at exit: report, end the other runs
            log.error("jupyter-mlops: could not end run %s at exit: %s", run_id, e)
    _all_active.clear()


def _after_fork_in_child() -> None:
    # A forked child logs to the parent's runs (its writers are re-armed in
    # writer.py) but must not end them when it exits.
    global _clients_lock
    _clients_lock = threading.Lock()
    _all_active.clear()
    _monitors.clear()  # the parent's sampling threads do not exist here


atexit.register(_end_runs_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = [
    "ActiveRun",
    "MlopsClient",
    "PagedList",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "flush",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_metric_history",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
