"""get_metric_series: min/max-preserving down-sampling from the roll-up pyramid, zoom
windows, the timestamp axis, and series whose points arrived out of order."""

from __future__ import annotations

import math
import random

import pytest

from jupyter_mlops.tracking import rollup
from jupyter_mlops.tracking.entities import Metric
from jupyter_mlops.tracking.errors import TrackingError


def _log(store, rid, key, steps, values, ts0=1_000_000, batch=50_000):
    for i in range(0, len(steps), batch):
        s = steps[i : i + batch]
        store.log_bulk(rid, metrics=[(key, s, [ts0 + x for x in s], values[i : i + batch])])


def test_spike_in_a_million_points_survives(sqlite_store):
    store = sqlite_store
    rid = store.create_run("0").info.run_id
    n = 1_000_000
    rng = random.Random(0)
    values = [rng.random() for _ in range(n)]
    values[654_321] = 1000.0  # one spike up
    values[123_457] = -1000.0  # one spike down
    _log(store, rid, "m", list(range(n)), values)
    pts = store.get_metric_series(rid, "m", max_points=1000)
    assert 0 < len(pts) <= 1000
    assert sum(p.count for p in pts) == n
    assert max(p.max for p in pts) == 1000.0
    assert min(p.min for p in pts) == -1000.0
    spike = next(p for p in pts if p.max == 1000.0)
    assert spike.step <= 654_321 < spike.step + spike.count
    # buckets are in step order and cover the series
    assert pts[0].step == 0 and [p.step for p in pts] == sorted(p.step for p in pts)
    # the same on the timestamp axis
    pts_t = store.get_metric_series(rid, "m", max_points=1000, x_axis="timestamp")
    assert max(p.max for p in pts_t) == 1000.0 and sum(p.count for p in pts_t) == n
    # a zoom window around the spike, still too many points: buckets of the window only
    win = store.get_metric_series(rid, "m", max_points=500, start_step=600_000, end_step=700_000)
    assert sum(p.count for p in win) == 100_001
    assert win[0].step == 600_000 and max(p.max for p in win) == 1000.0
    assert min(p.min for p in win) >= 0.0
    # a small window: exact points
    exact = store.get_metric_series(rid, "m", max_points=1000, start_step=654_000, end_step=654_999)
    assert [p.step for p in exact] == list(range(654_000, 655_000))
    assert all(p.count == 1 and p.min == p.max == p.value for p in exact)
    assert exact[321].value == 1000.0


@pytest.mark.parametrize("n", [1, 7, 999, 1000, 1001, 5000, 40_000])
def test_bucket_counts_and_bounds(store, n):
    rid = store.create_run("0").info.run_id
    values = [float(i % 97) for i in range(n)]
    _log(store, rid, "m", list(range(n)), values, batch=3_333)
    pts = store.get_metric_series(rid, "m", max_points=1000)
    assert len(pts) <= 1000 and sum(p.count for p in pts) == n
    assert max(p.max for p in pts) == max(values) and min(p.min for p in pts) == min(values)
    if n <= 1000:
        assert [p.value for p in pts] == values
    # every bucket's min/max agree with the raw points it covers
    edges = [p.step for p in pts] + [n]
    for p, end in zip(pts, edges[1:]):
        chunk = values[p.step : end]
        assert (p.min, p.max, p.count, p.value) == (min(chunk), max(chunk), len(chunk), chunk[-1])


def test_windows_edges(store):
    rid = store.create_run("0").info.run_id
    steps = list(range(0, 20_000, 2))  # even steps only
    _log(store, rid, "m", steps, [float(s) for s in steps], batch=1000)
    pts = store.get_metric_series(rid, "m", max_points=100, start_step=101, end_step=10_001)
    assert sum(p.count for p in pts) == len(range(102, 10_001, 2))
    assert min(p.min for p in pts) == 102 and max(p.max for p in pts) == 10_000
    assert store.get_metric_series(rid, "m", start_step=50_000) == []
    assert store.get_metric_series(rid, "m", end_step=-1) == []
    one = store.get_metric_series(rid, "m", start_step=3, end_step=4)
    assert [(p.step, p.value) for p in one] == [(4, 4.0)]
    assert store.get_metric_series(rid, "nope") == []


def test_nan_and_inf_in_buckets(store):
    rid = store.create_run("0").info.run_id
    values = [math.nan] * 1024 + [1.0] * 1024 + [math.inf] + [2.0] * 1023
    _log(store, rid, "m", list(range(3072)), values)
    pts = store.get_metric_series(rid, "m", max_points=3)
    assert [p.count for p in pts] == [1024, 1024, 1024]
    # an all-NaN bucket has NaN bounds; elsewhere NaN is left out of min/max
    assert math.isnan(pts[0].min) and math.isnan(pts[0].max) and math.isnan(pts[0].value)
    assert (pts[1].min, pts[1].max, pts[2].max) == (1.0, 1.0, math.inf)
    assert max(p.max for p in pts if not math.isnan(p.max)) == math.inf
    assert pts[0].to_dict()["min"] == "NaN"


def test_out_of_order_series_bucketed_exactly(store):
    rid = store.create_run("0").info.run_id
    steps = list(range(5000))
    random.Random(1).shuffle(steps)
    store.log_batch(rid, metrics=[Metric("m", float(s), 10_000 - s, s) for s in steps])
    pts = store.get_metric_series(rid, "m", max_points=50)
    assert sum(p.count for p in pts) == 5000 and len(pts) == 50
    assert [p.step for p in pts] == list(range(0, 5000, 100))
    assert all(p.value == p.step + 99 for p in pts)
    assert all(p.min == p.step and p.max == p.step + 99 for p in pts)
    # timestamps decrease with step here: the timestamp axis orders by time
    pts_t = store.get_metric_series(rid, "m", max_points=50, x_axis="timestamp")
    assert pts_t[0].timestamp == 10_000 - 4999
    win = store.get_metric_series(rid, "m", max_points=1000, start_step=10, end_step=19)
    assert [p.step for p in win] == list(range(10, 20))
    # history is still in step order
    hist = store.get_metric_history(rid, "m")[0]
    assert [m.step for m in hist] == list(range(5000))


def test_series_arguments(store):
    rid = store.create_run("0").info.run_id
    for kwargs in ({"x_axis": "wall"}, {"max_points": 0}, {"start_step": 5, "end_step": 1}):
        with pytest.raises(TrackingError) as e:
            store.get_metric_series(rid, "m", **kwargs)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(TrackingError) as e:
        store.get_metric_series("0" * 32, "m")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_cover_splits_into_aligned_blocks():
    assert rollup.cover(0, 32 * 32 * 3, 2) == [(2, 0, 3072)]
    pieces = rollup.cover(5, 5000, 2)
    assert pieces[0] == (0, 5, 32) and pieces[-1] == (0, 4992, 5000)
    # contiguous and aligned
    pos = 5
    for level, a, b in pieces:
        assert (a == pos and a % (32**level) == 0 and b % (32**level) == 0) or level == 0
        pos = b
    assert pos == 5000


def _reference(steps, tss, values, lo, hi, max_points):
    """The buckets of seqs [lo, hi) as ungrouped pieces give them: every block of the
    chosen level aggregated from the raw points, every edge point on its own."""
    level = rollup.choose_level(hi - lo, max_points)
    if level == 0 and hi - lo <= max_points:
        return [(steps[i], tss[i], values[i], values[i], values[i], 1) for i in range(lo, hi)]
    pieces = []
    for lvl, a, b in rollup.cover(lo, hi, level):
        size = 32**lvl
        for x in range(a, b, size):
            pieces.append(
                rollup.aggregate_points(
                    steps[x : x + size], tss[x : x + size], values[x : x + size]
                )
            )
    return [
        (p.step, p.timestamp, p.value, p.min, p.max, p.count)
        for p in rollup.bucketize(pieces, max_points)
    ]


def test_grouped_reads_give_the_buckets_of_every_block(store):
    """The read groups blocks into buckets in SQL and raw points by slices: the buckets
    are exactly those of folding every block and point one by one, at every level,
    window and bucket count; the points were appended in odd batches, two series a call
    (partial chunks and blocks of both continued in one write)."""
    rid = store.create_run("0").info.run_id
    n = 40_000
    rng = random.Random(7)
    values = [rng.uniform(-1, 1) for _ in range(n)]
    other = [rng.random() for _ in range(n)]
    steps = list(range(n))
    tss = [1_000_000 + 3 * s for s in steps]
    for i in range(0, n, 3_333):
        sl = slice(i, i + 3_333)
        store.log_bulk(
            rid,
            metrics=[("m", steps[sl], tss[sl], values[sl]), ("o", steps[sl], tss[sl], other[sl])],
        )
    for max_points in (3, 7, 100, 333, 1000, 40_000):
        for start, end in ((None, None), (123, 39_000), (31, 32_800), (5_000, 5_999)):
            lo = 0 if start is None else start
            hi = n if end is None else end + 1
            got = store.get_metric_series(
                rid, "m", max_points=max_points, start_step=start, end_step=end
            )
            want = _reference(steps, tss, values, lo, hi, max_points)
            assert [(p.step, p.timestamp, p.value, p.min, p.max, p.count) for p in got] == want
    hist = store.get_metric_history_columns(rid, "o")
    assert hist[0] == steps and hist[2] == other
