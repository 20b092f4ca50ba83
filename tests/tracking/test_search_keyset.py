"""Keyset page tokens of search_runs (issue 18): paging an ordered search visits every
run exactly once, in the order of one unpaged search, across ties, NULLs and NaN in the
sort keys; MLflow's plain offset tokens still page; tokens of another search, or forged
ones, do not break it."""

from __future__ import annotations

import base64
import json
import math
import uuid

import pytest

from jupyter_mlops.tracking.entities import Metric
from jupyter_mlops.tracking.errors import TrackingError
from jupyter_mlops.tracking.paging import encode_page_token


@pytest.fixture(scope="module")
def tied(module_store):
    """41 runs whose sort keys tie a lot: 3 metric values (+ NaN, + missing), 2 start
    times (+ None), 3 param values (+ missing); made once per back end, only read."""
    store = module_store
    eid = store.create_experiment(f"keyset-{uuid.uuid4().hex}")
    for i in range(41):
        start = None if i % 7 == 0 else 1000 + (i % 2)
        rid = store.create_run(eid, start_time=start, run_name=f"k{i}").info.run_id
        metric = [0.5, 0.25, 0.75, math.nan, None][i % 5]
        store.log_batch(
            rid,
            metrics=[] if metric is None else [Metric("m", metric, 1, 0)],
            params=[] if i % 4 == 3 else [("p", "abc"[i % 3])],
        )
    return store, eid


def walk(store, eid, order, page, flt=None):
    ids, token, pages = [], None, 0
    while True:
        res, token = store.search_runs(
            [eid], flt, max_results=page, order_by=order, page_token=token
        )
        ids += [r.info.run_id for r in res]
        pages += 1
        if token is None:
            return ids, pages
        assert pages < 100


ORDERS = [
    ["metrics.m DESC"],
    ["metrics.m ASC", "params.p DESC"],
    ["params.p ASC"],
    ["start_time ASC"],
    [],
    ["attributes.run_name DESC"],
    ["params.p DESC", "metrics.m DESC", "start_time ASC"],
]


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: ",".join(o) or "default")
@pytest.mark.parametrize("page", [1, 4, 10])
def test_paging_visits_every_run_once_in_order(tied, order, page):
    store, eid = tied
    whole = [r.info.run_id for r in store.search_runs([eid], max_results=1000, order_by=order)[0]]
    assert len(whole) == 41
    ids, pages = walk(store, eid, order, page)
    assert ids == whole
    assert pages == -(-41 // page)


def test_paging_with_a_filter(tied):
    store, eid = tied
    flt = "params.p != 'b'"
    whole = [r.info.run_id for r in store.search_runs([eid], flt, order_by=["metrics.m DESC"])[0]]
    ids, _ = walk(store, eid, ["metrics.m DESC"], 3, flt)
    assert ids == whole and 0 < len(ids) < 41


def test_tokens_are_mlflow_offset_tokens_and_offsets_still_page(tied):
    store, eid = tied
    order = ["metrics.m DESC"]
    whole = [r.info.run_id for r in store.search_runs([eid], order_by=order)[0]]
    _, token = store.search_runs([eid], max_results=10, order_by=order)
    body = json.loads(base64.b64decode(token))
    assert body["offset"] == 10 and len(body["after"]) == 3  # metric, start_time, run id
    # MLflow's own token (an offset): the same page as ours
    res, nxt = store.search_runs(
        [eid], max_results=10, order_by=order, page_token=encode_page_token(10)
    )
    assert [r.info.run_id for r in res] == whole[10:20]
    assert json.loads(base64.b64decode(nxt))["offset"] == 20
    # our token handed to another search (another order) pages it by its offset
    res, _ = store.search_runs([eid], max_results=10, order_by=["params.p ASC"], page_token=token)
    other = [r.info.run_id for r in store.search_runs([eid], order_by=["params.p ASC"])[0]]
    assert [r.info.run_id for r in res] == other[10:20]


def test_forged_keyset_values_are_a_400(tied):
    store, eid = tied
    order = ["metrics.m DESC"]
    _, token = store.search_runs([eid], max_results=5, order_by=order)
    body = json.loads(base64.b64decode(token))
    for bad in (["x", "y", "z"], [1.0, "not a time", "id"], [1.0, 5, 7], [True, 1, "a"]):
        forged = base64.b64encode(json.dumps(body | {"after": bad}).encode()).decode()
        with pytest.raises(TrackingError) as e:
            store.search_runs([eid], max_results=5, order_by=order, page_token=forged)
        assert "Invalid page token" in e.value.message
