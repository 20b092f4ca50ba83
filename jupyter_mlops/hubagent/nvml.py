"""GPU utilization through NVML (``nvidia-ml-py``, module ``pynvml``): None where there is no NVML or no GPU.

The import is the boundary tests replace: a module named ``pynvml`` earlier on the path stands in for
NVIDIA's (tests/hub/fakenvml).
"""

from __future__ import annotations

import importlib
from typing import Any


class GpuProbe:
    """Average utilization (percent) of the GPUs this process sees, sampled on each call."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] | None = None

    def _open(self) -> list[Any]:
        if self._handles is None:
            self._handles = []
            try:
                nvml = importlib.import_module("pynvml")
                nvml.nvmlInit()
                self._handles = [
                    nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())
                ]
                self._nvml = nvml
            except Exception:  # noqa: BLE001 - no package, no driver, no GPU: nothing to report
                self._handles = []
        return self._handles

    def utilization(self) -> float | None:
        handles = self._open()
        if not handles:
            return None
        try:
            rates = [self._nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in handles]
        except Exception:  # noqa: BLE001 - a GPU lost meanwhile: no figure this time
            return None
        return float(sum(rates)) / len(rates)
