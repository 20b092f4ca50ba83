"""System metrics of a run, with MLflow's names: CPU, memory, disk, network and GPUs.

:class:`SystemMetricsSampler` takes one sample of the machine (``psutil``; GPUs through
NVML when ``pynvml`` imports and finds devices); :class:`SystemMetricsMonitor` samples
it on a thread every ``sampling_interval`` seconds and hands the average of every
``samples_before_logging`` samples to a callback as ``{"system/<name>": value}`` with a
step (0, 1, ...). Both are small and independent of runs, so anything that wants the
machine's figures (a training job's nodes, with ``node_id``) can reuse them; the fluent
API logs them into a run (``start_run(log_system_metrics=True)``,
``enable_system_metrics_logging()``).

Names (as MLflow's, with ``system/<node_id>/`` when a node id is set):
``cpu_utilization_percentage``, ``system_memory_usage_megabytes``,
``system_memory_usage_percentage``, ``disk_usage_percentage``, ``disk_usage_megabytes``,
``disk_available_megabytes``, ``network_receive_megabytes``,
``network_transmit_megabytes`` (since the monitor started), and per GPU ``i``:
``gpu_<i>_memory_usage_percentage``, ``gpu_<i>_memory_usage_megabytes``,
``gpu_<i>_utilization_percentage``, ``gpu_<i>_power_usage_watts``,
``gpu_<i>_power_usage_percentage``.

Settings, as MLflow reads them: ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``,
``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` (10 s), ``MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING``
(1), ``MLFLOW_SYSTEM_METRICS_NODE_ID``.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ENV_ENABLE = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
ENV_INTERVAL = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"
ENV_SAMPLES = "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"
ENV_NODE_ID = "MLFLOW_SYSTEM_METRICS_NODE_ID"
DEFAULT_INTERVAL = 10.0
#: Counters since the monitor started: reported as they are, not averaged.
_CUMULATIVE = ("network_receive_megabytes", "network_transmit_megabytes")


def _load_nvml() -> Any:
    """The ``pynvml`` module, initialised, or None (not installed, no driver, no GPU)."""
    try:
        nvml = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        nvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - NVMLError when there is no driver or GPU
        log.debug("jupyter-mlops: NVML unavailable: %s", e)
        return None
    return nvml


class SystemMetricsSampler:
    """One sample of the machine's figures per :meth:`sample` call (MLflow's names, without
    the ``system/`` prefix). ``gpu=False`` leaves GPUs out; by default they are read through
    NVML when ``pynvml`` is importable and finds devices."""

    def __init__(self, disk_path: str = "/", gpu: bool = True) -> None:
        import psutil

        self._psutil = psutil
        self.disk_path = disk_path
        net = psutil.net_io_counters()
        self._net0 = (net.bytes_recv, net.bytes_sent) if net is not None else (0, 0)
        psutil.cpu_percent(interval=None)  # starts the CPU counter: the next call has a value
        self._nvml = _load_nvml() if gpu else None
        self._gpus: list[Any] = []
        if self._nvml is not None:
            try:
                count = self._nvml.nvmlDeviceGetCount()
                self._gpus = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            except Exception as e:  # noqa: BLE001 - NVMLError
                log.debug("jupyter-mlops: NVML found no devices: %s", e)

    @property
    def gpu_count(self) -> int:
        return len(self._gpus)

    def sample(self) -> dict[str, float]:
        ps = self._psutil
        out: dict[str, float] = {"cpu_utilization_percentage": ps.cpu_percent(interval=None)}
        mem = ps.virtual_memory()
        out["system_memory_usage_megabytes"] = mem.used / 1e6
        out["system_memory_usage_percentage"] = mem.used / mem.total * 100
        try:
            disk = ps.disk_usage(self.disk_path)
            out["disk_usage_percentage"] = disk.percent
            out["disk_usage_megabytes"] = disk.used / 1e6
            out["disk_available_megabytes"] = disk.free / 1e6
        except OSError as e:
            log.debug("jupyter-mlops: no disk usage for %s: %s", self.disk_path, e)
        net = ps.net_io_counters()
        if net is not None:
            out["network_receive_megabytes"] = (net.bytes_recv - self._net0[0]) / 1e6
            out["network_transmit_megabytes"] = (net.bytes_sent - self._net0[1]) / 1e6
        out.update(self._gpu_sample())
        return out

    def _gpu_sample(self) -> dict[str, float]:
        nvml = self._nvml
        out: dict[str, float] = {}
        if nvml is None:  # no NVML: no GPUs either
            return out
        for i, handle in enumerate(self._gpus):
            p = f"gpu_{i}_"
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                out[p + "memory_usage_percentage"] = memory.used / memory.total * 100
                out[p + "memory_usage_megabytes"] = memory.used / 1e6
            except Exception as e:  # noqa: BLE001 - NVMLError: a figure the device lacks
                log.debug("jupyter-mlops: GPU %d memory: %s", i, e)
            try:
                out[p + "utilization_percentage"] = float(
                    nvml.nvmlDeviceGetUtilizationRates(handle).gpu
                )
            except Exception as e:  # noqa: BLE001
                log.debug("jupyter-mlops: GPU %d utilization: %s", i, e)
            try:
                power = nvml.nvmlDeviceGetPowerUsage(handle)  # milliwatts
                limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle)
                out[p + "power_usage_watts"] = power / 1000
                out[p + "power_usage_percentage"] = power / limit * 100 if limit else 0.0
            except Exception as e:  # noqa: BLE001
                log.debug("jupyter-mlops: GPU %d power: %s", i, e)
        return out

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001, S110 - shutting down: nothing to do about it
                pass
            self._nvml = None


def aggregate(samples: list[dict[str, float]]) -> dict[str, float]:
    """The average of each figure over the samples (counters: their last value)."""
    out: dict[str, float] = {}
    keys: dict[str, None] = {}
    for s in samples:
        keys.update(dict.fromkeys(s))
    for k in keys:
        values = [s[k] for s in samples if k in s]
        out[k] = values[-1] if k in _CUMULATIVE else sum(values) / len(values)
    return out


def metric_prefix(node_id: str | None = None) -> str:
    return "system/" + (f"{node_id}/" if node_id else "")


class SystemMetricsMonitor:
    """Samples the machine on a daemon thread and calls ``publish(metrics, step)`` with the
    average of every ``samples_before_logging`` samples, named ``system/[<node_id>/]<name>``.
    :meth:`stop` publishes what was sampled since the last call, then returns."""

    def __init__(
        self,
        publish: Callable[[dict[str, float], int], None],
        sampling_interval: float | None = None,
        samples_before_logging: int | None = None,
        node_id: str | None = None,
        sampler: SystemMetricsSampler | None = None,
    ) -> None:
        self.publish = publish
        self.sampling_interval = float(
            sampling_interval or os.environ.get(ENV_INTERVAL) or DEFAULT_INTERVAL
        )
        self.samples_before_logging = max(
            1, int(samples_before_logging or os.environ.get(ENV_SAMPLES) or 1)
        )
        self.node_id = node_id or os.environ.get(ENV_NODE_ID) or None
        self.sampler = sampler or SystemMetricsSampler()
        self.step = 0
        self._samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="mlops-system-metrics", daemon=True)

    def start(self) -> SystemMetricsMonitor:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.sampling_interval):
            try:
                self.collect()
            except Exception as e:  # noqa: BLE001 - a monitor must never break the run
                log.warning("jupyter-mlops: system metrics sampling failed: %s", e)

    def collect(self) -> None:
        """Take one sample; publish when ``samples_before_logging`` are in."""
        sample = self.sampler.sample()
        with self._lock:
            self._samples.append(sample)
            if len(self._samples) >= self.samples_before_logging:
                self._publish_locked()

    def _publish_locked(self) -> None:
        if not self._samples:
            return
        prefix = metric_prefix(self.node_id)
        metrics = {prefix + k: v for k, v in aggregate(self._samples).items()}
        self._samples = []
        step, self.step = self.step, self.step + 1
        self.publish(metrics, step)

    def stop(self) -> None:
        """Stop sampling and publish what is pending; a monitor that published nothing yet
        (a run shorter than the sampling interval) takes one last sample first."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=max(5.0, self.sampling_interval))
        with self._lock:
            try:
                if self.step == 0 and not self._samples:
                    self._samples.append(self.sampler.sample())
                self._publish_locked()
            except Exception as e:  # noqa: BLE001
                log.warning("jupyter-mlops: could not log the last system metrics: %s", e)
        self.sampler.close()


# -- the fluent API's switches (MLflow's functions of the same names) -----------------------
def _set_env(name: str, value: Any) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


def enable_system_metrics_logging() -> None:
    """Log system metrics for every run started from now on."""
    os.environ[ENV_ENABLE] = "true"


def disable_system_metrics_logging() -> None:
    os.environ[ENV_ENABLE] = "false"


def set_system_metrics_sampling_interval(interval: float | None) -> None:
    _set_env(ENV_INTERVAL, interval)


def set_system_metrics_samples_before_logging(samples: int | None) -> None:
    _set_env(ENV_SAMPLES, samples)


def set_system_metrics_node_id(node_id: str | None) -> None:
    _set_env(ENV_NODE_ID, node_id)


def enabled_by_default() -> bool:
    return os.environ.get(ENV_ENABLE, "").strip().lower() in ("true", "1")
