"""System metrics of a training job's nodes, with MLflow's names, in the job's run.

The sampler and monitor are the client's (:mod:`jupyter_mlops.client.system_metrics`, the
same ones ``start_run(log_system_metrics=True)`` uses). Each node of a job is sampled by the
process that runs it: on Kubernetes the launcher in each replica's container
(:mod:`.podrun`), named ``system/node_<i>/<metric>`` when the job has several nodes (MLflow's
node-id prefix), ``system/<metric>`` otherwise; locally every "node" is this machine, so the
local target samples it once for all its running jobs (``system/<metric>``). GPUs come through NVML where
``pynvml`` finds devices. ``c.TrainingService.system_metrics_interval`` sets the sampling
period (0: off); pods read it from :data:`ENV_INTERVAL`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Seconds between samples in a job's pods (0 or unset: no system metrics).
ENV_INTERVAL = "JUPYTER_MLOPS_JOB_SYSTEM_METRICS_INTERVAL"


def node_id(node: int, nodes: int) -> str | None:
    """MLflow's node id of a job's node: ``node_<i>`` when there are several, else None."""
    return f"node_{node}" if nodes > 1 else None


def start_monitor(
    publish: Callable[[dict[str, float], int], None],
    interval: float,
    node: str | None = None,
) -> Any | None:
    """A started ``SystemMetricsMonitor`` calling ``publish(metrics, step)``, or None when
    ``interval`` is 0 or the machine cannot be sampled (psutil missing)."""
    if interval <= 0:
        return None
    try:
        from ..client.system_metrics import SystemMetricsMonitor

        return SystemMetricsMonitor(
            publish, sampling_interval=interval, samples_before_logging=1, node_id=node
        ).start()
    except Exception as e:  # noqa: BLE001 - the job runs without them
        log.warning("jupyter-mlops: no system metrics for this job: %s", e)
        return None


def as_metrics(values: dict[str, float], step: int) -> list[Any]:
    from ..tracking.entities import Metric

    t = int(time.time() * 1000)
    return [Metric(k, float(v), t, step) for k, v in values.items()]
