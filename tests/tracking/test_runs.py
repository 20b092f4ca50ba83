"""Runs: CRUD, names, params (write-once), metrics (history, latest, NaN/inf), tags."""

from __future__ import annotations

import math
import re

import pytest

from jupyter_mlops.tracking.entities import Metric
from jupyter_mlops.tracking.errors import TrackingError


def _err(fn, *args, **kwargs) -> TrackingError:
    with pytest.raises(TrackingError) as e:
        fn(*args, **kwargs)
    return e.value


def test_create_and_get_run(store):
    eid = store.create_experiment("e")
    run = store.create_run(
        eid, user_id="alice", start_time=1700000000000, tags={"k": "v"}, run_name="r1"
    )
    info = run.info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert info.run_name == "r1" and info.user_id == "alice" and info.status == "RUNNING"
    assert info.start_time == 1700000000000 and info.end_time is None
    assert info.artifact_uri == f"mlflow-artifacts:/{eid}/{info.run_id}/artifacts"
    assert run.data.tags == {"k": "v", "mlflow.runName": "r1"}
    got = store.get_run(info.run_id)
    assert got.info == info
    d = got.to_dict()
    assert d["info"]["run_uuid"] == info.run_id


def test_generated_name_and_given_id(store):
    run = store.create_run("0")
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,3}", run.info.run_name)
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    rid = "a" * 32
    assert store.create_run("0", run_id=rid).info.run_id == rid
    assert _err(store.create_run, "0", run_id=rid).error_code == "RESOURCE_ALREADY_EXISTS"
    assert store.create_run("0", tags={"mlflow.runName": "from-tag"}).info.run_name == "from-tag"
    assert store.create_run("0", tags={"mlflow.user": "bob"}).info.user_id == "bob"
    e = _err(store.create_run, "0", run_name="a", tags={"mlflow.runName": "b"})
    assert e.error_code == "INVALID_PARAMETER_VALUE"


def test_create_run_bad_experiment(store):
    e = _err(store.create_run, "99")
    assert (
        e.error_code == "RESOURCE_DOES_NOT_EXIST" and e.message == "No Experiment with id=99 exists"
    )
    eid = store.create_experiment("gone")
    store.delete_experiment(eid)
    assert "must be in the 'active' state" in _err(store.create_run, eid).message


def test_get_unknown_run(store):
    e = _err(store.get_run, "deadbeef")
    assert (
        e.error_code == "RESOURCE_DOES_NOT_EXIST" and e.message == "Run with id=deadbeef not found"
    )


def test_update_run_info_and_name_tag(store):
    rid = store.create_run("0", run_name="old").info.run_id
    info = store.update_run_info(rid, status="FINISHED", end_time=123, run_name="new")
    assert (info.status, info.end_time, info.run_name) == ("FINISHED", 123, "new")
    assert store.get_run(rid).data.tags["mlflow.runName"] == "new"
    # setting the tag renames the run too
    store.set_tag(rid, "mlflow.runName", "newer")
    assert store.get_run(rid).info.run_name == "newer"
    assert _err(store.update_run_info, rid, status="BOGUS").error_code == "INVALID_PARAMETER_VALUE"


def test_delete_restore_run_and_logging_to_deleted(store):
    rid = store.create_run("0").info.run_id
    store.delete_run(rid)
    assert store.get_run(rid).info.lifecycle_stage == "deleted"
    e = _err(store.log_param, rid, "a", "1")
    assert e.message == f"The run {rid} must be in the 'active' state. Current state is deleted."
    _err(store.log_metric, rid, Metric("m", 1.0, 1, 0))
    store.restore_run(rid)
    store.log_param(rid, "a", "1")
    assert store.get_run(rid).data.params == {"a": "1"}


def test_params_write_once(store):
    rid = store.create_run("0").info.run_id
    store.log_param(rid, "lr", "0.01")
    store.log_param(rid, "lr", "0.01")  # the same value again is fine
    e = _err(store.log_param, rid, "lr", "0.02")
    assert e.error_code == "INVALID_PARAMETER_VALUE"
    assert e.message == (
        "Changing param values is not allowed. Param with key='lr' was already logged with "
        f"value='0.01' for run ID='{rid}'. Attempted logging new value '0.02'."
    )
    assert store.get_run(rid).data.params == {"lr": "0.01"}
    # a batch that fails writes nothing
    _err(store.log_batch, rid, metrics=[Metric("m", 1.0, 1, 0)], params=[("b", "1"), ("lr", "9")])
    assert store.get_run(rid).data.params == {"lr": "0.01"}
    assert store.get_run(rid).data.metrics == {}


def test_key_validation_and_truncation(store):
    rid = store.create_run("0").info.run_id
    e = _err(store.log_param, rid, "bad!key", "1")
    assert (
        "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        in e.message
    )
    assert _err(store.set_tag, rid, "../x", "1").error_code == "INVALID_PARAMETER_VALUE"
    _err(store.log_metric, rid, Metric("a//b", 1.0, 1, 0))
    assert "exceeds the maximum length of 250" in _err(store.log_param, rid, "k" * 251, "v").message
    store.log_param(rid, "long", "x" * 7000)
    store.set_tag(rid, "longtag", "y" * 9000)
    data = store.get_run(rid).data
    assert len(data.params["long"]) == 6000
    assert len(data.tags["longtag"]) == 8000
    for bad in (True, "abc", None):
        assert (
            _err(store.log_metric, rid, Metric("m", bad, 1, 0)).error_code
            == "INVALID_PARAMETER_VALUE"
        )
    _err(store.log_metric, rid, Metric("m", 1.0, -1, 0))


def test_tags_overwrite_and_delete(store):
    rid = store.create_run("0").info.run_id
    store.set_tag(rid, "k", "v1")
    store.set_tag(rid, "k", "v2")
    assert store.get_run(rid).data.tags["k"] == "v2"
    store.delete_tag(rid, "k")
    assert "k" not in store.get_run(rid).data.tags
    assert _err(store.delete_tag, rid, "k").error_code == "RESOURCE_DOES_NOT_EXIST"


def test_metric_history_and_latest(store):
    rid = store.create_run("0").info.run_id
    store.log_batch(rid, metrics=[Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(50)])
    # an out-of-order point for an earlier step does not become the latest
    store.log_metric(rid, Metric("loss", 99.0, 5000, 3))
    hist, token = store.get_metric_history(rid, "loss")
    assert token is None and len(hist) == 51
    assert [m.step for m in hist] == sorted(m.step for m in hist)
    assert [m for m in hist if m.step == 3][-1].value == 99.0
    latest = store.get_run(rid).data.metrics["loss"]
    assert (latest.step, latest.value) == (49, 1.0 / 50)
    # same step: the later timestamp wins, then the larger value
    store.log_batch(
        rid,
        metrics=[Metric("acc", 0.5, 10, 1), Metric("acc", 0.4, 20, 1), Metric("acc", 0.3, 20, 1)],
    )
    assert store.get_run(rid).data.metrics["acc"].value == 0.4
    assert store.get_metric_history(rid, "nope") == ([], None)
    assert _err(store.get_metric_history, "f" * 32, "loss").error_code == "RESOURCE_DOES_NOT_EXIST"


def test_metric_history_paging(store):
    rid = store.create_run("0").info.run_id
    store.log_batch(rid, metrics=[Metric("m", float(i), i, i) for i in range(25)])
    seen, token = [], None
    while True:
        page, token = store.get_metric_history(rid, "m", max_results=10, page_token=token)
        seen += [m.step for m in page]
        if token is None:
            break
    assert seen == list(range(25))
    page, token = store.get_metric_history(rid, "m", max_results=1)
    assert token == "eyJvZmZzZXQiOiAxfQ=="
    _err(store.get_metric_history, rid, "m", max_results=0)


def test_nan_and_infinity(store):
    rid = store.create_run("0").info.run_id
    store.log_batch(
        rid,
        metrics=[
            Metric("n", math.nan, 1, 0),
            Metric("n", math.inf, 2, 1),
            Metric("n", -math.inf, 3, 2),
            Metric("n", 1.5, 4, 3),
            Metric("n", math.nan, 5, 4),
        ],
    )
    vals = [m.value for m in store.get_metric_history(rid, "n")[0]]
    assert math.isnan(vals[0]) and vals[1] == math.inf and vals[2] == -math.inf and vals[3] == 1.5
    assert math.isnan(vals[4])
    assert math.isnan(store.get_run(rid).data.metrics["n"].value)
    assert store.get_run(rid).data.metrics["n"].to_dict()["value"] == "NaN"
    store.log_metric(rid, Metric("s", "NaN", 1, 0))  # the JSON form of NaN
    assert math.isnan(store.get_run(rid).data.metrics["s"].value)


def test_log_bulk_columnar(store):
    rid = store.create_run("0").info.run_id
    store.log_bulk(
        rid,
        metrics=[("x", [0, 1, 2], [10, 11, 12], [0.5, 1.5, math.nan])],
        params=[("p", "1")],
        tags=[("t", "2")],
    )
    hist = store.get_metric_history(rid, "x")[0]
    assert [m.step for m in hist] == [0, 1, 2] and hist[1].value == 1.5
    assert math.isnan(hist[2].value)
    _err(store.log_bulk, rid, metrics=[("x", [0], [1, 2], [0.1])])


def test_many_small_batches_accumulate(store):
    rid = store.create_run("0").info.run_id
    for b in range(7):
        store.log_batch(
            rid, metrics=[Metric("m", float(b * 13 + i), b * 13 + i, b * 13 + i) for i in range(13)]
        )
    hist = store.get_metric_history(rid, "m")[0]
    assert [m.step for m in hist] == list(range(91))


def test_every_batch_stamps_its_run_for_live_updates(store):
    """Each batch marks the run changed (runs/changes must see every one), in the same
    statement that checks the run; a refused batch (deleted run) leaves no stamp."""
    from jupyter_mlops.tracking.clock import now_ms

    rid = store.create_run("0").info.run_id
    for b in range(5):
        mark = now_ms()
        while now_ms() <= mark:  # the batch gets a later millisecond than the mark
            pass
        store.log_batch(rid, metrics=[Metric("m", float(b), 1, b)], tags=[("t", str(b))])
        changed, _ = store.changed_runs(["0"], mark + 1)
        assert [r.info.run_id for r in changed] == [rid], b
        assert changed[0].data.tags["t"] == str(b)
    store.log_batch(rid, tags=[("mlflow.runName", "renamed")])
    assert store.get_run(rid).info.run_name == "renamed"
    store.delete_run(rid)
    mark = now_ms()
    while now_ms() <= mark:
        pass
    _err(store.log_batch, rid, metrics=[Metric("m", 9.0, 1, 9)])
    assert [r.info.run_id for r in store.changed_runs(["0"], mark + 1)[0]] == []


def test_history_columns(store):
    rid = store.create_run("0").info.run_id
    store.log_batch(rid, metrics=[Metric("m", float(i), 100 - i, i % 5) for i in range(10)])
    steps, tss, _vals, more = store.get_metric_history_columns(rid, "m")
    assert steps == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] and not more
    assert tss == [95, 100, 94, 99, 93, 98, 92, 97, 91, 96]
    assert store.get_metric_history_columns(rid, "m", offset=8, limit=1)[0] == [4]
    assert store.get_metric_history_columns(rid, "m", offset=8, limit=1)[3] is True
    assert [m.step for m in store.get_metric_history(rid, "m")[0]] == steps


def test_metric_value_and_step_coercion(store):
    rid = store.create_run("0").info.run_id
    # ints become floats, integral float steps/timestamps become ints
    store.log_batch(rid, metrics=[Metric("m", 3, 10, 0), Metric("m", 2.5, 11.0, 1.0)])
    hist = store.get_metric_history(rid, "m")[0]
    assert [(m.value, m.timestamp, m.step) for m in hist] == [(3.0, 10, 0), (2.5, 11, 1)]
    assert all(type(m.value) is float and type(m.step) is int for m in hist)
    for bad in (Metric("m", 1.0, 1, "x"), Metric("m", 1.0, "t", 0), Metric(None, 1.0, 1, 0)):
        assert _err(store.log_metric, rid, bad).error_code == "INVALID_PARAMETER_VALUE"
    assert _err(store.log_param, rid, "", "v").error_code == "INVALID_PARAMETER_VALUE"
    # interleaved keys in one batch keep their own order
    store.log_batch(rid, metrics=[Metric(k, float(i), i, i) for i in range(5) for k in ("a", "b")])
    assert [m.step for m in store.get_metric_history(rid, "a")[0]] == [0, 1, 2, 3, 4]
    assert [m.step for m in store.get_metric_history(rid, "b")[0]] == [0, 1, 2, 3, 4]


def test_unknown_run_for_logging(store):
    for call in (
        lambda: store.log_param("f" * 32, "a", "1"),
        lambda: store.log_batch("f" * 32),
        lambda: store.update_run_info("f" * 32, status="FINISHED"),
        lambda: store.delete_run("f" * 32),
    ):
        with pytest.raises(TrackingError) as e:
            call()
        assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
