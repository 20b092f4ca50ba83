"""``search_runs(visible_user_ids=..., viewer_id=...)``: the shared service's access filter in SQL."""

from __future__ import annotations

from jupyter_mlops.tracking.sqlstore import SqlTrackingStore


def _names(runs: list) -> set[str]:
    return {r.info.run_name for r in runs}


def test_visible_users_and_private_runs(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("team")
    store.create_run(exp, user_id="alice", run_name="a-shared")
    store.create_run(
        exp, user_id="alice", run_name="a-private", tags={"mlops.visibility": "private"}
    )
    store.create_run(exp, user_id="bob", run_name="b-shared")
    store.create_run(exp, user_id="carol", run_name="c-shared")
    store.create_run(exp, user_id=None, run_name="nobody")

    everything, _ = store.search_runs([exp])
    assert len(everything) == 5  # no restriction without the parameter

    as_bob, _ = store.search_runs([exp], visible_user_ids=["alice", "bob"], viewer_id="bob")
    assert _names(as_bob) == {"a-shared", "b-shared"}
    as_alice, _ = store.search_runs([exp], visible_user_ids=["alice", "bob"], viewer_id="alice")
    assert _names(as_alice) == {"a-shared", "a-private", "b-shared"}
    none, _ = store.search_runs([exp], visible_user_ids=[], viewer_id="dave")
    assert none == []


def test_visibility_keeps_pages_full(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("pages")
    for i in range(6):
        store.create_run(exp, user_id="carol" if i % 2 else "alice", run_name=f"r{i}")
    page, token = store.search_runs(
        [exp], max_results=2, visible_user_ids=["alice"], viewer_id="alice"
    )
    assert len(page) == 2 and token
    rest, token2 = store.search_runs(
        [exp], max_results=2, page_token=token, visible_user_ids=["alice"], viewer_id="alice"
    )
    assert len(rest) == 1 and token2 is None
    assert {r.info.user_id for r in page + rest} == {"alice"}
