"""A stand-in for nvidia-ml-py's ``pynvml`` (tests put this directory first on a server's path).

GPUs and their utilization come from the file $FAKE_NVML_DIR/$JUPYTERHUB_USER, re-read on every call:
``<count> <utilization percent>`` (e.g. "2 80"); no file or "0 0": no GPU.
"""

import os
from types import SimpleNamespace


class NVMLError(Exception):
    pass


def _state():
    try:
        path = os.path.join(os.environ["FAKE_NVML_DIR"], os.environ.get("JUPYTERHUB_USER", ""))
        with open(path) as f:
            count, util = f.read().split()
        return int(count), float(util)
    except (KeyError, OSError, ValueError):
        return 0, 0.0


def nvmlInit():
    if _state()[0] == 0:
        raise NVMLError("NVML Shared Library Not Found")


def nvmlDeviceGetCount():
    return _state()[0]


def nvmlDeviceGetHandleByIndex(i):
    return i


def nvmlDeviceGetUtilizationRates(handle):
    return SimpleNamespace(gpu=_state()[1], memory=0)
