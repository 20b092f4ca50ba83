"""Experiments: Default, CRUD, lifecycle, name reuse rules, tags, search."""

from __future__ import annotations

import pytest

from jupyter_mlops.tracking.entities import ALL, DELETED_ONLY
from jupyter_mlops.tracking.errors import TrackingError


def test_default_experiment_exists(store):
    exp = store.get_experiment("0")
    assert exp.name == "Default"
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == "mlflow-artifacts:/0"
    assert store.get_experiment_by_name("Default").experiment_id == "0"


def test_create_get_and_artifact_location(store):
    eid = store.create_experiment("exp-a", tags={"team": "a"})
    assert eid == "1"
    exp = store.get_experiment(eid)
    assert exp.name == "exp-a"
    assert exp.artifact_location == f"mlflow-artifacts:/{eid}"
    assert exp.tags == {"team": "a"}
    assert exp.creation_time and exp.last_update_time
    other = store.create_experiment("exp-b", artifact_location="/data/b")
    assert store.get_experiment(other).artifact_location == "/data/b"
    assert store.get_experiment_by_name("nope") is None


def test_unknown_experiment_is_not_found(store):
    for bad in ("42", "abc"):
        with pytest.raises(TrackingError) as e:
            store.get_experiment(bad)
        assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert e.value.message == f"No Experiment with id={bad} exists"


def test_duplicate_name_even_when_deleted(store):
    eid = store.create_experiment("dup")
    with pytest.raises(TrackingError) as e:
        store.create_experiment("dup")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    store.delete_experiment(eid)
    with pytest.raises(TrackingError) as e:
        store.create_experiment("dup")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    # the deleted one is still found by name
    assert store.get_experiment_by_name("dup").lifecycle_stage == "deleted"


def test_invalid_names(store):
    for bad in ("", None, "x" * 501):
        with pytest.raises(TrackingError) as e:
            store.create_experiment(bad)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_rename(store):
    a = store.create_experiment("a")
    store.create_experiment("b")
    store.rename_experiment(a, "a2")
    assert store.get_experiment(a).name == "a2"
    with pytest.raises(TrackingError) as e:
        store.rename_experiment(a, "b")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    store.delete_experiment(a)
    with pytest.raises(TrackingError) as e:
        store.rename_experiment(a, "a3")
    assert "non-active" in e.value.message


def test_delete_restore_hides_runs(store):
    eid = store.create_experiment("lifecycle")
    r1 = store.create_run(eid).info.run_id
    r2 = store.create_run(eid).info.run_id
    store.delete_run(r2)
    store.delete_experiment(eid)
    assert store.get_experiment(eid).lifecycle_stage == "deleted"
    assert store.search_runs([eid])[0] == []
    assert store.get_run(r1).info.lifecycle_stage == "deleted"
    store.restore_experiment(eid)
    # as in MLflow, restoring an experiment restores all of its runs
    assert sorted(r.info.run_id for r in store.search_runs([eid])[0]) == sorted([r1, r2])
    with pytest.raises(TrackingError) as e:
        store.restore_experiment(eid)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_experiment_tags(store):
    eid = store.create_experiment("tagged")
    store.set_experiment_tag(eid, "k", "v1")
    store.set_experiment_tag(eid, "k", "v2")
    assert store.get_experiment(eid).tags == {"k": "v2"}
    store.delete_experiment_tag(eid, "k")
    assert store.get_experiment(eid).tags == {}
    with pytest.raises(TrackingError) as e:
        store.delete_experiment_tag(eid, "k")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    store.delete_experiment(eid)
    with pytest.raises(TrackingError) as e:
        store.set_experiment_tag(eid, "k", "v")
    assert "must be in the 'active' state" in e.value.message


def test_search_experiments(store):
    ids = [
        store.create_experiment(f"exp-{i}", tags={"group": "even" if i % 2 == 0 else "odd"})
        for i in range(5)
    ]
    store.delete_experiment(ids[4])
    exps, token = store.search_experiments()
    # newest first; experiments created in the same millisecond by id
    assert sorted(e.name for e in exps) == ["Default", "exp-0", "exp-1", "exp-2", "exp-3"]
    assert [e.creation_time for e in exps] == sorted((e.creation_time for e in exps), reverse=True)
    assert token is None
    exps, _ = store.search_experiments(filter_string="tags.group = 'even'")
    assert sorted(e.name for e in exps) == ["exp-0", "exp-2"]
    exps, _ = store.search_experiments(filter_string="name LIKE 'exp-%'", order_by=["name DESC"])
    assert [e.name for e in exps] == ["exp-3", "exp-2", "exp-1", "exp-0"]
    exps, _ = store.search_experiments(filter_string="name ILIKE 'EXP-1'")
    assert [e.name for e in exps] == ["exp-1"]
    assert [e.name for e in store.search_experiments(view_type=DELETED_ONLY)[0]] == ["exp-4"]
    assert len(store.search_experiments(view_type=ALL)[0]) == 6
    page1, token = store.search_experiments(max_results=2, order_by=["name ASC"])
    assert [e.name for e in page1] == ["Default", "exp-0"]
    page2, token = store.search_experiments(max_results=2, order_by=["name ASC"], page_token=token)
    assert [e.name for e in page2] == ["exp-1", "exp-2"]
    with pytest.raises(TrackingError) as e:
        store.search_experiments(filter_string="metrics.a > 1")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(TrackingError):
        store.search_experiments(max_results=50001)
