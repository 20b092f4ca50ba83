"""A metric point identical to one the run holds (key, value, timestamp, step) is
stored once, as MLflow's SQL store does; same step with another value or timestamp
is a new point. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import math

from jupyter_mlops.tracking.entities import Metric


def _history(store, rid: str, key: str = "m") -> list[tuple[int, int, float]]:
    steps, tss, vals, more = store.get_metric_history_columns(rid, key)
    assert not more
    return list(zip(steps, tss, vals))


def _run(store) -> str:
    return store.create_run("0").info.run_id


def test_same_point_twice_in_one_batch(store):
    rid = _run(store)
    store.log_batch(
        rid, metrics=[Metric("m", 0.5, 100, 1), Metric("m", 0.5, 100, 1), Metric("m", 0.7, 101, 2)]
    )
    store.log_bulk(rid, metrics=[("b", [3, 3, 3], [9, 9, 9], [1.0, 1.0, 2.0])])
    assert _history(store, rid) == [(1, 100, 0.5), (2, 101, 0.7)]
    assert _history(store, rid, "b") == [(3, 9, 1.0), (3, 9, 2.0)]


def test_same_point_in_two_batches(store):
    rid = _run(store)
    store.log_metric(rid, Metric("m", 0.5, 100, 1))
    store.log_metric(rid, Metric("m", 0.5, 100, 1))
    store.log_batch(rid, metrics=[Metric("m", 0.5, 100, 1), Metric("m", 0.6, 102, 2)])
    store.log_bulk(rid, metrics=[("m", [1, 2, 3], [100, 102, 103], [0.5, 0.6, 0.8])])
    assert _history(store, rid) == [(1, 100, 0.5), (2, 102, 0.6), (3, 103, 0.8)]
    # the series' bookkeeping follows the points kept: appends and the latest value
    store.log_metric(rid, Metric("m", 0.9, 104, 4))
    assert _history(store, rid)[-1] == (4, 104, 0.9)
    assert store.get_run(rid).data.metrics["m"].value == 0.9
    assert sum(b.count for b in store.get_metric_series(rid, "m", max_points=10)) == 4


def test_same_step_other_value_or_timestamp_is_kept(store):
    rid = _run(store)
    store.log_metric(rid, Metric("m", 0.5, 100, 1))
    store.log_metric(rid, Metric("m", 0.6, 100, 1))  # other value
    store.log_metric(rid, Metric("m", 0.5, 101, 1))  # other timestamp
    # another step, then a repeat
    store.log_batch(rid, metrics=[Metric("m", 0.5, 100, 2), Metric("m", 0.5, 100, 1)])
    assert _history(store, rid) == [(1, 100, 0.5), (1, 100, 0.6), (1, 101, 0.5), (2, 100, 0.5)]


def test_nan_points_compare_equal(store):
    rid = _run(store)
    store.log_batch(rid, metrics=[Metric("m", math.nan, 5, 0), Metric("m", float("nan"), 5, 0)])
    store.log_metric(rid, Metric("m", float("nan"), 5, 0))
    store.log_metric(rid, Metric("m", math.nan, 6, 0))
    h = _history(store, rid)
    assert [(s, t) for s, t, _ in h] == [(0, 5), (0, 6)] and all(math.isnan(v) for _, _, v in h)


def test_old_points_relogged_across_chunks(store):
    """Re-logging points deep in a history (ordered or not) adds only the new ones."""
    rid = _run(store)
    n = 3000  # several chunks (1024) and level-1 blocks (32)
    steps = list(range(n))
    store.log_bulk(rid, metrics=[("m", steps, [1000 + s for s in steps], [s / 7 for s in steps])])
    again = ([2500, 10, 1500, 10], [3500, 1010, 2500, 1011], [2500 / 7, 10 / 7, 1500 / 7, 1.0])
    store.log_bulk(rid, metrics=[("m", *again)])
    h = _history(store, rid)
    assert len(h) == n + 1 and (10, 1011, 1.0) in h
    # an unordered series: shuffled steps, then every point again
    order = [(s * 7919) % n for s in range(n)]
    for o in (order, order[::-1]):
        store.log_bulk(rid, metrics=[("u", o, [1000 + s for s in o], [float(s) for s in o])])
    assert len(_history(store, rid, "u")) == n


def test_repeats_of_a_whole_batch_change_nothing(store):
    rid = _run(store)
    batch = [Metric("m", 0.5, 100, 1), Metric("k", 1.0, 100, 1)]
    store.log_batch(rid, metrics=batch, params=[("p", "1")])
    store.log_batch(rid, metrics=batch, params=[("p", "1")])
    assert _history(store, rid) == [(1, 100, 0.5)] and _history(store, rid, "k") == [(1, 100, 1.0)]
    assert {k: m.value for k, m in store.get_run(rid).data.metrics.items()} == {"m": 0.5, "k": 1.0}
