"""Adding up scoring processes' ``/metrics`` (as the scoring server renders them) into the
per-version JSON of ``api/v1/deployments/<name>/metrics``."""

from __future__ import annotations

import pytest

from jupyter_mlops.deployments.metrics import ServingSet, parse, summarize
from jupyter_mlops.registry.metrics import BUCKETS, Metrics


def rendered(observations: list[tuple[str, int, float]], version: str) -> str:
    m = Metrics({"name": "m", "version": version})
    for endpoint, code, seconds in observations:
        m.observe(endpoint, code, seconds)
    return m.render()


def test_processes_of_a_version_add_up_and_versions_stay_apart():
    a = rendered([("invocations", 200, 0.002), ("v2_infer", 200, 0.02)], "3")
    b = rendered([("invocations", 400, 0.0001), ("invocations", 200, 3.0)], "3")
    canary = rendered([("invocations", 503, 0.3)], "4")
    stable, new = summarize(
        [
            ServingSet("3", "models:/m/3", 80, 3, [a, b, "not prometheus {"]),
            ServingSet("4", "models:/m/4", 20, 1, [canary]),
        ]
    )
    assert (stable["version"], stable["traffic_percent"], stable["replicas"]) == ("3", 80, 3)
    assert stable["scraped_replicas"] == 2  # the third answered garbage
    assert stable["requests_total"] == 4 and stable["errors_total"] == 1
    hist = stable["latency_seconds"]
    assert hist["count"] == 4 and hist["sum"] == pytest.approx(3.0221)
    assert [le for le, _ in hist["buckets"]] == list(BUCKETS)
    cumulative = dict(hist["buckets"])
    assert cumulative[0.0005] == 1 and cumulative[0.0025] == 2 and cumulative[0.025] == 3
    assert cumulative[10.0] == 4
    assert new["requests_total"] == 1 and new["errors_total"] == 1
    assert new["latency_seconds"]["count"] == 1


def test_a_process_that_served_nothing_yet():
    one = parse(rendered([], "1"))
    assert one == {"requests_total": 0, "errors_total": 0, "buckets": {}, "sum": 0.0, "count": 0}
    [v] = summarize([ServingSet("1", "models:/m/1", 100, 1, [])])
    assert v["scraped_replicas"] == 0 and v["latency_seconds"]["buckets"] == []
