"""``run_keys`` under the shared service's access filter (the runs table's key picker on the hub,
and on a team server through its relay): the tag keys' query reads run_tags itself, which the
private-run check reads too; it answered a 500 before the check used its own alias."""

from __future__ import annotations

from jupyter_mlops.tracking.sqlstore import SqlTrackingStore


def test_keys_of_the_visible_runs_only(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("keys")
    shared = store.create_run(exp, user_id="alice", run_name="shared", tags={"team": "vision"})
    store.log_param(shared.info.run_id, "lr", "0.1")
    hidden = store.create_run(
        exp, user_id="alice", run_name="hidden", tags={"mlops.visibility": "private", "secret": "1"}
    )
    store.log_param(hidden.info.run_id, "seed", "7")
    other = store.create_run(exp, user_id="carol", run_name="other", tags={"nlp": "x"})
    store.log_param(other.info.run_id, "vocab", "32k")

    as_bob = store.run_keys([exp], visible_user_ids=["alice", "bob"], viewer_id="bob")
    assert as_bob["params"] == ["lr"]
    assert "team" in as_bob["tags"] and not {"secret", "nlp"} & set(as_bob["tags"])
    as_alice = store.run_keys([exp], visible_user_ids=["alice", "bob"], viewer_id="alice")
    assert as_alice["params"] == ["lr", "seed"] and "secret" in as_alice["tags"]
