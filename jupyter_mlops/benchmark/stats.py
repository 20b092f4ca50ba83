"""Timings as the benches print them: percentiles, milliseconds, Markdown rows."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence


def pct(xs: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``xs``."""
    if not xs:
        return math.nan
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:,.1f} ms"


def summary(xs: Sequence[float]) -> str:
    """``median (best … worst, n)``."""
    if not xs:
        return "—"
    return f"{ms(statistics.median(xs))} (best {ms(min(xs))}, worst {ms(max(xs))}, n={len(xs)})"


def load() -> str:
    """This machine's load average (the client's; note the server's if it is elsewhere)."""
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # not on this platform
        return "n/a"
