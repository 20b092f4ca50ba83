"""GenAI evaluation datasets and scorers in the SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest

from jupyter_mlops.tracking.errors import TrackingError


def test_datasets_records_tags_and_experiments(store):
    e1, e2 = store.create_experiment("ev1"), store.create_experiment("ev2")
    ds = store.create_eval_dataset("qa", [e1], {"team": "ml"})
    other = store.create_eval_dataset("zz", [e2], {"team": "data"})
    did = ds["dataset_id"]
    assert ds["experiment_ids"] == [e1] and json.loads(ds["tags"]) == {"team": "ml"}

    assert store.upsert_eval_records(
        did, [{"inputs": {"q": "a"}, "expectations": {"x": 1}}, {"inputs": {"q": "b"}}]
    ) == (2, 0)
    # the same inputs again: merged into the stored record
    assert store.upsert_eval_records(
        did, [{"inputs": {"q": "a"}, "expectations": {"y": 2}, "tags": {"t": "1"}}]
    ) == (0, 1)
    records, token = store.get_eval_records(did, 1, None)
    assert token is not None and records[0]["expectations"] == {"x": 1, "y": 2}
    rest, token = store.get_eval_records(did, 10, token)
    assert token is None and rest[0]["inputs"] == {"q": "b"}
    assert store.delete_eval_records(did, [rest[0]["dataset_record_id"]]) == 1

    store.set_eval_dataset_tags(did, {"team": "ops", "v": "2"})
    store.delete_eval_dataset_tag(did, "v")
    assert json.loads(store.get_eval_dataset(did)["tags"]) == {"team": "ops"}
    found, _ = store.search_eval_datasets([], "tags.team = 'ops'", 10, None, None)
    assert [d["dataset_id"] for d in found] == [did]
    names = [d["name"] for d in store.search_eval_datasets([], None, 10, ["name DESC"], None)[0]]
    assert names == ["zz", "qa"]
    assert store.search_eval_datasets([e2], None, 10, None, None)[0][0]["name"] == "zz"

    assert store.eval_dataset_experiments(did, add=[e2, e1])["experiment_ids"] == [e1, e2]
    assert "experiment_ids" not in store.eval_dataset_experiments(did, remove=[e1, e2])
    with pytest.raises(TrackingError) as err:
        store.eval_dataset_experiments(did, add=["987654"])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    store.delete_eval_dataset(did)
    with pytest.raises(TrackingError, match="not found"):
        store.get_eval_dataset(did)
    assert store.get_eval_dataset(other["dataset_id"])["name"] == "zz"
    for bad in ("bogus = 'x'", "created_time = 'x'", "tags.a > 1"):
        with pytest.raises(TrackingError):
            store.search_eval_datasets([], bad, 10, None, None)
    with pytest.raises(TrackingError, match="records"):
        from jupyter_mlops.tracking.evaluation import parse_records

        parse_records('[{"no_inputs": 1}]')


def test_scorer_versions(store):
    exp = store.create_experiment("scorers")
    assert store.register_scorer(exp, "tone", '{"v": 1}')["scorer_version"] == 1
    assert store.register_scorer(exp, "tone", '{"v": 2}')["scorer_version"] == 2
    store.register_scorer(exp, "length", "{}")
    latest = {s["scorer_name"]: s["scorer_version"] for s in store.list_scorers(exp)}
    assert latest == {"length": 1, "tone": 2}
    assert [s["scorer_version"] for s in store.list_scorers(exp, "tone")] == [1, 2]
    assert store.get_scorer(exp, "tone", 1)["serialized_scorer"] == '{"v": 1}'
    store.delete_scorer(exp, "tone", 1)
    assert store.get_scorer(exp, "tone", None)["scorer_version"] == 2
    store.delete_scorer(exp, "tone", None)
    with pytest.raises(TrackingError) as err:
        store.get_scorer(exp, "tone", None)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
