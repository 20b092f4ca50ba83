"""``mlops.jobs.submit(...)`` and the :class:`Job` it returns.

In a kernel started by a Jupyter server with jupyter-mlops (it exports
``JUPYTER_MLOPS_SERVER_URL``/``_TOKEN``) the job is submitted to that server's REST API
(``api/v1/jobs``): it keeps running when the kernel dies and shows in the server's job
list. Anywhere else (a script, a plain IPython) it runs on the local backend of a
training service inside this process, on an event loop in a background thread; the
process's exit stops its jobs (FAILED, "interrupted").
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import json
import os
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from ..tracking.errors import TrackingError, invalid
from .spec import declare_params

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")


class JobFailed(TrackingError):
    """``Job.wait(raise_on_failure=True)`` on a job that did not succeed."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(
            f"Training job {job['name']} ({job['job_id']}) {job['status']}"
            + (f": {job['reason']}" if job.get("reason") else ""),
            "JOB_FAILED",
        )
        self.job = job


class Job:
    """A submitted training job: ``status``, ``wait()``, ``logs(rank=)``, ``cancel()``;
    ``run_id`` is its tracked run (where rank 0's ``mlops.log_metric`` goes)."""

    def __init__(self, backend: Any, data: dict[str, Any]) -> None:
        self._backend = backend
        self._data = data

    @property
    def job_id(self) -> str:
        return str(self._data["job_id"])

    @property
    def run_id(self) -> str:
        return str(self._data["run_id"])

    @property
    def name(self) -> str:
        return str(self._data["name"])

    @property
    def status(self) -> str:
        """QUEUED, RUNNING, RESTARTING, SUCCEEDED, FAILED or CANCELED (read fresh)."""
        return str(self.refresh()["status"])

    @property
    def reason(self) -> str | None:
        return self._data.get("reason")

    @property
    def ranks(self) -> list[dict[str, Any]]:
        """Every rank's state (rank, node, local_rank, status, exit_code, ...)."""
        return list(self.refresh()["ranks"])

    def refresh(self) -> dict[str, Any]:
        if self._data.get("status") not in TERMINAL:
            self._data = self._backend.get(self.job_id)
        return self._data

    def wait(self, timeout: float | None = None, raise_on_failure: bool = False) -> str:
        """Block until the job ends (or ``timeout`` seconds pass); its status."""
        self._data = self._backend.wait(self.job_id, timeout)
        if raise_on_failure and self._data["status"] in ("FAILED", "CANCELED"):
            raise JobFailed(self._data)
        return str(self._data["status"])

    def logs(self, rank: int = 0, tail: int | None = None) -> str:
        """Rank ``rank``'s output so far (its last ``tail`` bytes with ``tail``)."""
        return str(self._backend.logs(self.job_id, rank, tail))

    def cancel(self) -> str:
        """Stop every rank (their process trees are killed); the status (CANCELED)."""
        self._data = self._backend.cancel(self.job_id)
        return str(self._data["status"])

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __repr__(self) -> str:
        d = self._data
        return (
            f"<Job {d['name']} {d['job_id']} {d['status']} "
            f"{d.get('nodes')}x{d.get('procs_per_node')} {d.get('framework')}>"
        )


# -- building the spec -------------------------------------------------------------------
class Code(str):
    """Python source given as a job's entry point (``submit(Code("..."))``; the
    ``%%mlops train`` cell magic)."""


def _entry(entry: Any) -> tuple[str, str]:
    """(kind, value) of what the user gave as the entry point."""
    if isinstance(entry, Code):
        return "code", str(entry)
    if callable(entry):
        return "code", function_code(entry)
    if not isinstance(entry, str) or not entry:
        raise invalid(
            "entry: give a script (.py, .sh), a notebook (.ipynb), "
            "'file.py:function', 'module:function', an MLflow project directory, "
            "or a Python function."
        )
    if os.path.isdir(entry):  # an MLflow project (checked against its MLproject)
        return "project", entry
    if entry.endswith(".ipynb"):
        return "notebook", entry
    if entry.endswith((".py", ".sh")):
        return "script", entry
    if ":" in entry:
        return "function", entry
    raise invalid(
        f"entry {entry!r}: give a script (.py, .sh), a notebook (.ipynb), "
        "'file.py:function', 'module:function', an MLflow project directory, "
        "or a Python function."
    )


def function_code(fn: Callable[..., Any]) -> str:
    """A function shipped as code: its source, then a call with the job's parameters that
    its signature accepts (as Kubeflow's CustomTrainer ships functions)."""
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise invalid(
            f"cannot read the source of {fn!r} ({e}); define it in a file or a notebook cell"
        ) from None
    name = fn.__name__
    if name == "<lambda>":
        raise invalid("a lambda cannot be a job's entry point: define a function")
    return (
        f"{src}\n\nfrom jupyter_mlops.jobs.entry import kwargs_for as _mlops_kwargs\n"
        f"{name}(**_mlops_kwargs({name}))\n"
    )


def build_spec(
    entry: Any,
    *,
    name: str | None = None,
    framework: str = "pytorch",
    nodes: int = 1,
    procs_per_node: int = 1,
    resources: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    env: Mapping[str, Any] | None = None,
    args: list[Any] | None = None,
    restart_policy: str = "Never",
    max_restarts: int = 0,
    backoff_seconds: float = 1.0,
    timeout: float | None = None,
    log_all_ranks: bool = False,
    experiment: str | None = None,
    image: str | None = None,
    entry_point: str | None = None,
) -> dict[str, Any]:
    kind, value = _entry(entry)
    if entry_point and kind != "project":
        raise invalid("entry_point: only for an MLflow project directory as the entry")
    if name is None:
        if callable(entry):
            name = entry.__name__
        elif kind == "code":
            name = "cell"
        else:
            base = (
                value.rsplit(":", 1)[-1]
                if kind == "function"
                else os.path.basename(os.path.abspath(value))
            )
            name = base.rsplit(".", 1)[0] if kind != "function" else base
        name = "".join(c if c.isalnum() or c in "_.-" else "-" for c in name)[:63] or "job"
        if not name[0].isalnum():
            name = "job-" + name[:59]
    spec: dict[str, Any] = {
        "name": name,
        "framework": framework,
        kind: value,
        "nodes": nodes,
        "procs_per_node": procs_per_node,
        "restart_policy": restart_policy,
        "max_restarts": max_restarts,
        "backoff_seconds": backoff_seconds,
    }
    for key, val in (
        ("resources", resources),
        ("env", env),
        ("args", args),
        ("timeout", timeout),
        ("experiment", experiment),
        ("image", image),
    ):
        if val:
            spec[key] = dict(val) if isinstance(val, Mapping) else val
    if entry_point:
        spec["entry_point"] = entry_point
    if params:
        spec["params"] = declare_params(dict(params))
    if log_all_ranks:
        spec["log_all_ranks"] = True
    return spec


def _source_tags() -> dict[str, str]:
    """Where the submission came from (the notebook, or the script), for the job's run."""
    try:
        from ..client.source import capture_source

        tags, _ = capture_source(max_snapshot_bytes=0)
    except Exception:  # noqa: BLE001 - best effort
        return {}
    out = {k: v for k, v in tags.items() if k.startswith("mlops.source.")}
    if tags.get("mlflow.source.name"):
        out["mlops.job.submitted_from"] = tags["mlflow.source.name"]
    return out


def submit(
    entry: Any,
    *,
    framework: str = "pytorch",
    nodes: int = 1,
    procs_per_node: int = 1,
    resources: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    env: Mapping[str, Any] | None = None,
    args: list[Any] | None = None,
    name: str | None = None,
    experiment: str | None = None,
    restart_policy: str = "Never",
    max_restarts: int = 0,
    backoff_seconds: float = 1.0,
    timeout: float | None = None,
    log_all_ranks: bool = False,
    image: str | None = None,
    target: str = "local",
    run_name: str | None = None,
    entry_point: str | None = None,
) -> Job:
    """Run ``entry`` on ``nodes x procs_per_node`` processes with ``framework``'s
    environment; returns at once with a :class:`Job`.

    ``entry``: a script (``.py``/``.sh``), a notebook (``.ipynb``), ``"file.py:function"``
    or ``"module:function"`` (called with the ``params`` it accepts), a Python function
    (its source is shipped), an MLflow project directory (every rank runs its
    ``entry_point``'s command, default ``main``, computed from ``params`` as ``mlflow run``
    computes it; the run is recorded as ``mlflow run`` records it), or a ``*.job.yaml`` file (then ``params`` override its
    declared ones and the other settings come from the file). ``resources`` per node:
    ``{"gpu": 1, "cpu": 4, "memory": "16Gi"}`` (locally, ``gpu`` splits this machine's
    GPUs between nodes). ``env`` is added to every rank's environment."""
    backend = _backend()
    base_dir = os.getcwd()
    if isinstance(entry, str) and entry.endswith((".job.yaml", ".job.yml")):
        data = backend.submit(
            {
                "path": os.path.abspath(entry),
                "parameters": dict(params or {}),
                "target": target,
                "run_name": run_name,
                "source_tags": _source_tags(),
            }
        )
        return Job(backend, data)
    spec = build_spec(
        entry,
        name=name,
        framework=framework,
        nodes=nodes,
        procs_per_node=procs_per_node,
        resources=resources,
        params=params,
        env=env,
        args=args,
        restart_policy=restart_policy,
        max_restarts=max_restarts,
        backoff_seconds=backoff_seconds,
        timeout=timeout,
        log_all_ranks=log_all_ranks,
        experiment=experiment,
        image=image,
        entry_point=entry_point,
    )
    data = backend.submit(
        {
            "spec": spec,
            "base_dir": base_dir,
            "target": target,
            "run_name": run_name,
            "source_tags": _source_tags(),
        }
    )
    return Job(backend, data)


def get_job(job_id: str) -> Job:
    backend = _backend()
    return Job(backend, backend.get(job_id))


def list_jobs(status: str | None = None, max_results: int = 100) -> list[Job]:
    backend = _backend()
    return [Job(backend, d) for d in backend.list(status, max_results)]


# -- backends ----------------------------------------------------------------------------
def backend(uri: str | None = None) -> Any:
    """The server that started this kernel, else a runtime of this process (on ``uri``)."""
    server = os.environ.get("JUPYTER_MLOPS_SERVER_URL")
    if server:
        return RestBackend(server, os.environ.get("JUPYTER_MLOPS_SERVER_TOKEN", ""))
    return LocalRuntime.instance(uri)


_backend = backend


class RestBackend:
    """The Jupyter server's ``api/v1/jobs`` routes."""

    def __init__(self, server: str, token: str) -> None:
        self.base = server.rstrip("/") + "/mlops/api/v1/jobs"
        self.token = token

    def _call(
        self,
        method: str,
        path: str = "",
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        raw: bool = False,
    ) -> Any:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = (
            json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        )
        req = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                payload = r.read()
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())
            except ValueError:
                raise TrackingError(
                    f"the Jupyter server answered {e.code}", "TEMPORARILY_UNAVAILABLE"
                ) from None
            raise TrackingError(
                err.get("message", str(e.code)), err.get("error_code", "INTERNAL_ERROR")
            ) from None
        except urllib.error.URLError as e:
            raise TrackingError(
                f"cannot reach the Jupyter server at {self.base}: {e.reason}",
                "TEMPORARILY_UNAVAILABLE",
            ) from None
        return payload.decode("utf-8", "replace") if raw else json.loads(payload)

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "", body)["job"])

    def get(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/{job_id}")["job"])

    def list(self, status: str | None, max_results: int) -> list[dict[str, Any]]:
        return list(
            self._call("GET", "", query={"status": status, "max_results": max_results})["jobs"]
        )

    def wait(self, job_id: str, timeout: float | None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.get(job_id)
        while job["status"] not in TERMINAL:
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(0.25)
            job = self.get(job_id)
        return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/{job_id}/cancel")["job"])

    def logs(self, job_id: str, rank: int, tail: int | None) -> str:
        return str(self._call("GET", f"/{job_id}/ranks/{rank}/log", query={"tail": tail}, raw=True))


class LocalRuntime:
    """A training service of this process, on its own event loop in a daemon thread."""

    _instance: LocalRuntime | None = None
    _lock = threading.Lock()

    @classmethod
    def instance(cls, uri: str | None = None) -> LocalRuntime:
        """The process's runtime (made on first use, on ``uri`` or the tracking URI)."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(uri)
            return cls._instance

    def __init__(self, uri: str | None = None) -> None:
        from ..client.uris import get_tracking_uri
        from ..tracking import open_store
        from .service import TrainingService

        uri = uri or get_tracking_uri()
        if not uri.startswith(("sqlite:", "postgresql", "postgres:")):
            raise invalid(
                "mlops.jobs: without a Jupyter server (JUPYTER_MLOPS_SERVER_URL) jobs run in "
                f"this process and need a database tracking URI; it is {uri!r}"
            )
        self.store = open_store(uri)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mlops-jobs", daemon=True)
        self.thread.start()
        from ..cli_common import server_config

        self.svc = TrainingService(  # configured as the server would be (its targets)
            self.store,
            "/",
            env=dict(os.environ, JUPYTER_MLOPS_TRACKING_URI=uri),
            config=server_config(),
        )
        self._run(self.svc.start())
        atexit.register(self.close)

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if not self.loop.is_running():
            return
        try:
            self._run(self.svc.stop(), 60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.store.close()
            LocalRuntime._instance = None

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        from .service import JobError

        try:
            return dict(
                self._run(
                    self.svc.submit(
                        body.get("path"),
                        parameters=body.get("parameters"),
                        spec=body.get("spec"),
                        base_dir=body.get("base_dir"),
                        run_name=body.get("run_name"),
                        target=body.get("target") or "local",
                        source_tags=body.get("source_tags"),
                    )
                )
            )
        except JobError as e:
            raise TrackingError(e.message, "INVALID_PARAMETER_VALUE") from None

    def get(self, job_id: str) -> dict[str, Any]:
        return dict(self._run(self.svc.get_job(job_id)))

    def list(self, status: str | None, max_results: int) -> list[dict[str, Any]]:
        return list(self._run(self.svc.list_jobs(status, max_results=max_results))["jobs"])

    def wait(self, job_id: str, timeout: float | None) -> dict[str, Any]:
        return dict(self._run(self.svc.wait(job_id, timeout)))

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(self._run(self.svc.cancel(job_id)))

    def logs(self, job_id: str, rank: int, tail: int | None) -> str:
        data, _, _ = self._run(self.svc.read(self.svc.read_log, job_id, rank, 0, 16 << 20, tail))
        return bytes(data).decode("utf-8", "replace")


def params() -> dict[str, Any]:
    """Inside a job's rank: the job's parameters."""
    from .entry import params as _params

    return _params()


def rank() -> int:
    """Inside a job's rank: its global rank (0 outside a job)."""
    return int(os.environ.get("JUPYTER_MLOPS_RANK") or 0)


def world_size() -> int:
    """Inside a job's rank: the number of ranks (1 outside a job)."""
    return int(os.environ.get("JUPYTER_MLOPS_WORLD_SIZE") or 1)


def log_all_ranks() -> None:
    """Call before the first ``mlops.log_metric`` in a job's code: this rank's metrics go to
    the job's run too, under ``rank<N>/<key>`` (rank 0's keep their names)."""
    os.environ["JUPYTER_MLOPS_JOB_LOG_RANKS"] = "all"
    if "jupyter_mlops.client.fluent" in sys.modules:
        fluent = sys.modules["jupyter_mlops.client.fluent"]
        active = fluent.active_run()
        if active is not None and getattr(active, "_client", None) is fluent._MUTED:
            fluent._stack().pop()  # the muted run started before: the next call starts anew
