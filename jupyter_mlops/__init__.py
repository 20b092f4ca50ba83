"""jupyter-mlops: experiment tracking, run comparison, registry and pipelines
inside JupyterLab.

``import jupyter_mlops as mlops`` gives MLflow's fluent API (``mlops.start_run``,
``mlops.log_metric``, ...). Everything is imported on first use, so importing
the package stays cheap in every kernel.
"""

from __future__ import annotations

import importlib
from typing import Any

from .client.fluent_names import FLUENT_EXTRA

# name -> module that defines it (relative to this package)
_LAZY: dict[str, str] = dict.fromkeys(
    (
        "ActiveRun",
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
    ),
    ".client.fluent",
)
_LAZY.update(dict.fromkeys(FLUENT_EXTRA, ".client.fluent_extra"))
_LAZY.update(
    dict.fromkeys(
        (
            "disable_system_metrics_logging",
            "enable_system_metrics_logging",
            "set_system_metrics_node_id",
            "set_system_metrics_samples_before_logging",
            "set_system_metrics_sampling_interval",
        ),
        ".client.system_metrics",
    )
)
_LAZY.update(
    dict.fromkeys(
        (
            "trace",
            "start_span",
            "get_current_active_span",
            "search_traces",
            "get_trace",
            "log_feedback",
            "log_expectation",
        ),
        ".client.tracing",
    )
)
_LAZY.update(
    {
        "MlopsClient": ".client.mlops_client",
        "log_model": ".registry.api",
        "load_model": ".registry.api",
        "register_model": ".registry.api",
        "RegistryClient": ".registry.client",
        "PythonModel": ".registry.pyfunc",
        "TrackingError": ".tracking.errors",
        "deploy": ".deployments.client",
        "get_deployment": ".deployments.client",
        "list_deployments": ".deployments.client",
        "_jupyter_server_extension_points": "._jupyter_server",
        "_jupyter_labextension_paths": "._jupyter_server",
        "enable_notebook_display": ".client.notebook_display",
        "disable_notebook_display": ".client.notebook_display",
        "load_ipython_extension": ".magics",
        "unload_ipython_extension": ".magics",
    }
)

__all__ = [n for n in sorted(_LAZY) if not n.startswith("_")]


#: Subpackages reachable as attributes without an import (``mlops.jobs.submit(...)``).
_SUBPACKAGES = ("jobs", "projects")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module("." + name, __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))


def _warm_job_logging() -> None:
    """In a rank of a training job that logs (rank 0, or every rank when the job logs all
    of them), get the client ready on a thread while the script sets up: importing it and
    opening the store take a few hundred milliseconds that the first ``log_metric`` inside
    the training loop would otherwise wait for."""
    import os

    env = os.environ
    if not env.get("JUPYTER_MLOPS_JOB_RUN_ID") or not env.get("JUPYTER_MLOPS_JOB_EXPERIMENT_ID"):
        return
    if (
        env.get("JUPYTER_MLOPS_RANK", "0") != "0"
        and env.get("JUPYTER_MLOPS_JOB_LOG_RANKS") != "all"
    ):
        return

    def warm() -> None:
        try:
            from .client import fluent

            fluent._client()  # the writer; its thread opens the store
        except Exception:  # noqa: BLE001, S110 - the first logging call says what is wrong
            pass

    import atexit
    import threading

    thread = threading.Thread(target=warm, name="mlops-warm", daemon=True)
    thread.start()
    # A rank that ends before the warm-up does (a short script) must not finalize the
    # interpreter under a daemon thread that is still importing or writing to stderr:
    # CPython may then abort the process, and the rank would fail for nothing.
    atexit.register(thread.join, 10.0)


_warm_job_logging()


def _adopt_mlflow_display() -> None:
    """In a kernel, MLflow's ``@mlflow.trace`` shows its traces with our renderer under the
    cell (``client/notebook_display.py``); a cheap check elsewhere."""
    import sys

    if "ipykernel" not in sys.modules:
        return
    try:
        from .client.notebook_display import adopt_mlflow_display

        adopt_mlflow_display()
    except Exception:  # noqa: BLE001, S110 - a display nicety must never break the import
        pass


_adopt_mlflow_display()
