"""The one clock of the package: epoch milliseconds, MLflow's unit for every time."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Now, in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
