"""The scoring server's ``/metrics``: Prometheus text format 0.0.4, no client library.

Counters are plain dicts updated on the event loop (one thread), so recording a request
costs a few dictionary operations.
"""

from __future__ import annotations

import bisect
import time

#: Latency histogram bucket bounds in seconds (Prometheus' ``le``).
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PREFIX = "mlops_scoring"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Request count, latency histogram and errors by endpoint and status code."""

    def __init__(self, model: dict[str, str]) -> None:
        #: Labels of the ``mlops_scoring_model_info`` gauge (name, version, run id, URI).
        self.model = model
        self.started = time.time()
        self.requests: dict[tuple[str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def observe(self, endpoint: str, code: int, seconds: float) -> None:
        key = (endpoint, code)
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.buckets.get(endpoint)
        if counts is None:
            counts = self.buckets[endpoint] = [0] * (len(BUCKETS) + 1)
            self.sums[endpoint] = 0.0
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[endpoint] += seconds

    def render(self) -> str:
        p = PREFIX
        lines = [
            f"# HELP {p}_requests_total Scoring requests by endpoint and HTTP status code.",
            f"# TYPE {p}_requests_total counter",
        ]
        for (ep, code), n in sorted(self.requests.items()):
            lines.append(f'{p}_requests_total{{endpoint="{ep}",code="{code}"}} {n}')
        lines += [
            f"# HELP {p}_errors_total Scoring requests answered with an error, by status code.",
            f"# TYPE {p}_errors_total counter",
        ]
        for (ep, code), n in sorted(self.requests.items()):
            if code >= 400:
                lines.append(f'{p}_errors_total{{endpoint="{ep}",code="{code}"}} {n}')
        lines += [
            f"# HELP {p}_request_duration_seconds Time from request to response, by endpoint.",
            f"# TYPE {p}_request_duration_seconds histogram",
        ]
        for ep, counts in sorted(self.buckets.items()):
            total = 0
            for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                total += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(
                    f'{p}_request_duration_seconds_bucket{{endpoint="{ep}",le="{le}"}} {total}'
                )
            lines.append(f'{p}_request_duration_seconds_sum{{endpoint="{ep}"}} {self.sums[ep]:.6f}')
            lines.append(f'{p}_request_duration_seconds_count{{endpoint="{ep}"}} {total}')
        labels = ",".join(f'{k}="{_label(v)}"' for k, v in self.model.items())
        lines += [
            f"# HELP {p}_model_info The model this server serves (value 1).",
            f"# TYPE {p}_model_info gauge",
            f"{p}_model_info{{{labels}}} 1",
            "# HELP process_start_time_seconds Start time of the process since the epoch.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self.started:.3f}",
        ]
        return "\n".join(lines) + "\n"
