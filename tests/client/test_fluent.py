"""The fluent API against real SQLite and PostgreSQL stores."""

from __future__ import annotations

import math
import uuid

import pytest

from jupyter_mlops.tracking import TrackingError, open_store


def test_log_and_read_back(mlops):
    with mlops.start_run(run_name="r1", tags={"team": "a"}, description="first try") as run:
        mlops.log_param("lr", 0.01)
        mlops.log_params({"depth": 3, "opt": "adam"})
        for step in range(50):
            mlops.log_metric("loss", 1.0 / (step + 1), step=step)
        mlops.log_metrics({"acc": 0.5, "f1": float("nan")}, step=7)
        mlops.set_tag("stage", "dev")
        mlops.set_tags({"a": 1, "b": "two"})
        assert mlops.active_run().info.run_id == run.info.run_id
    assert mlops.active_run() is None

    got = mlops.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time
    assert got.info.run_name == "r1"
    assert got.data.params == {"lr": "0.01", "depth": "3", "opt": "adam"}
    assert got.data.metrics["loss"].value == pytest.approx(1 / 50)
    assert got.data.metrics["loss"].step == 49
    assert math.isnan(got.data.metrics["f1"].value)
    tags = got.data.tags
    assert (
        tags["stage"] == "dev" and tags["a"] == "1" and tags["b"] == "two" and tags["team"] == "a"
    )
    assert tags["mlflow.runName"] == "r1"
    assert tags["mlflow.note.content"] == "first try"
    assert tags["mlflow.user"]
    assert tags["mlflow.source.type"] in ("LOCAL", "NOTEBOOK")
    assert tags["mlflow.source.name"]

    history = mlops.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(50))
    assert history[0].value == 1.0
    assert mlops.last_active_run().info.run_id == run.info.run_id


def test_failure_in_with_block_marks_failed(mlops):
    with pytest.raises(ZeroDivisionError), mlops.start_run() as run:
        mlops.log_metric("m", 1.0)
        1 / 0  # noqa: B018 - the exception is the point
    got = mlops.get_run(run.info.run_id)
    assert got.info.status == "FAILED"
    assert got.data.metrics["m"].value == 1.0
    assert mlops.active_run() is None


def test_end_run_with_status_and_auto_started_run(mlops):
    mlops.log_metric("x", 2.0)  # starts a run, as MLflow does
    run = mlops.active_run()
    assert run is not None
    mlops.end_run("KILLED")
    assert mlops.get_run(run.info.run_id).info.status == "KILLED"
    assert mlops.get_run(run.info.run_id).data.metrics["x"].value == 2.0


@pytest.mark.parametrize("variable", ["JUPYTER_MLOPS_RUN_ID", "MLFLOW_RUN_ID"])
def test_run_id_from_the_environment_is_resumed_once(mlops, monkeypatch, variable):
    """A pipeline step's process logs into the run it was started for, with no start_run."""
    with mlops.start_run() as step_run:
        pass
    monkeypatch.setenv(variable, step_run.info.run_id)
    mlops.log_metric("loss", 0.5, step=1)  # no start_run: resumes the step's run
    assert mlops.active_run().info.run_id == step_run.info.run_id
    mlops.end_run()
    assert mlops.get_run(step_run.info.run_id).data.metrics["loss"].value == 0.5
    with mlops.start_run() as later:  # the variable was consumed: a new run
        assert later.info.run_id != step_run.info.run_id


def test_nested_runs(mlops):
    with mlops.start_run(run_name="parent") as parent:
        with pytest.raises(TrackingError, match="already active"):
            mlops.start_run()
        with mlops.start_run(run_name="child", nested=True) as child:
            mlops.log_metric("c", 1)
            assert mlops.active_run().info.run_id == child.info.run_id
        assert mlops.active_run().info.run_id == parent.info.run_id
    c = mlops.get_run(child.info.run_id)
    assert c.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert c.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in mlops.get_run(parent.info.run_id).data.tags


def test_param_conflict_raises_at_once(mlops):
    with mlops.start_run():
        mlops.log_param("lr", 0.1)
        mlops.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(TrackingError, match="lr") as err:
            mlops.log_param("lr", 0.2)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
        mlops.flush()
    assert mlops.last_active_run().data.params["lr"] == "0.1"


def test_store_refusal_surfaces_on_flush_and_loses_nothing_else(mlops, store_uri):
    """A conflict the local cache cannot see (another writer set the param)
    comes back from the store at flush; the metrics logged with it still land."""
    with mlops.start_run() as run:
        other = open_store(store_uri)
        other.log_batch(run.info.run_id, params=[("seed", "1")])
        mlops.log_param("seed", 2)
        mlops.log_param("ok", "yes")
        for i in range(10):
            mlops.log_metric("m", i, step=i)
        with pytest.raises(TrackingError) as err:
            mlops.flush()
        assert "seed" in str(err.value)
        mlops.flush()  # reported once
    got = mlops.get_run(run.info.run_id)
    assert got.data.params == {"seed": "1", "ok": "yes"}
    assert len(mlops.get_metric_history(run.info.run_id, "m")) == 10
    other.close()


def test_bad_input_is_a_clear_error(mlops):
    with mlops.start_run():
        with pytest.raises(TrackingError, match="metric"):
            mlops.log_metric("x", "not a number")
        with pytest.raises(TrackingError):
            mlops.log_metric("", 1.0)
        with pytest.raises(TrackingError):
            mlops.log_param("k" * 300, 1)
    with pytest.raises(TrackingError):
        mlops.set_experiment()


def test_delete_tag_resume_and_delete_run(mlops):
    with mlops.start_run() as run:
        mlops.set_tag("temp", "x")
        mlops.delete_tag("temp")
    assert "temp" not in mlops.get_run(run.info.run_id).data.tags
    with mlops.start_run(run_id=run.info.run_id) as resumed:
        assert resumed.info.run_id == run.info.run_id
        assert mlops.get_run(run.info.run_id).info.status == "RUNNING"
        mlops.log_metric("after", 1)
    assert mlops.get_run(run.info.run_id).info.status == "FINISHED"
    mlops.delete_run(run.info.run_id)
    assert mlops.search_runs(output_format="list") == []
    assert len(mlops.search_runs(output_format="list", run_view_type=3)) == 1


def test_search_runs_dataframe(mlops):
    for i in range(3):
        with mlops.start_run(run_name=f"r{i}"):
            mlops.log_param("i", i)
            mlops.log_metric("score", i * 10.0)
    df = mlops.search_runs(order_by=["metrics.score DESC"])
    assert list(df.columns[:6]) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    assert {"metrics.score", "params.i", "tags.mlflow.runName"} <= set(df.columns)
    assert list(df["metrics.score"]) == [20.0, 10.0, 0.0]
    assert list(df["params.i"]) == ["2", "1", "0"]
    assert str(df["start_time"].dtype).startswith("datetime64")
    filtered = mlops.search_runs(filter_string="metrics.score > 5", output_format="list")
    assert sorted(r.data.metrics["score"].value for r in filtered) == [10.0, 20.0]
    exp_name = mlops.get_experiment(df["experiment_id"][0]).name
    assert len(mlops.search_runs(experiment_names=[exp_name])) == 3
    assert exp_name in [e.name for e in mlops.search_experiments()]
    assert mlops.get_experiment_by_name(exp_name).experiment_id == df["experiment_id"][0]


def test_mlops_client_explicit_ids(mlops):
    client = mlops.MlopsClient()
    exp_id = client.create_experiment(f"explicit-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp_id, run_name="c1", tags={"k": "v"})
    client.log_metric(run.info.run_id, "m", 3.0, step=2)
    client.log_param(run.info.run_id, "p", "x")
    client.set_tag(run.info.run_id, "t", "y")
    client.set_terminated(run.info.run_id)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["p"] == "x" and got.data.tags["t"] == "y" and got.data.tags["k"] == "v"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "m")] == [
        (2, 3.0)
    ]
    page = client.search_runs([exp_id], max_results=1)
    assert len(page) == 1 and page.token is None


def test_set_experiment_deleted_is_refused(mlops):
    exp_id = mlops.create_experiment(f"to-delete-{uuid.uuid4().hex[:8]}")
    mlops.delete_experiment(exp_id)
    with pytest.raises(TrackingError, match="deleted"):
        mlops.set_experiment(experiment_id=exp_id)


def test_active_runs_are_per_thread(mlops):
    import threading

    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with mlops.start_run(run_name=name) as run:
                for i in range(200):
                    mlops.log_metric("v", i, step=i)
                results[name] = run.info.run_id
                assert mlops.active_run().info.run_id == run.info.run_id
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with mlops.start_run(run_name="main") as main_run:
        threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert mlops.active_run().info.run_id == main_run.info.run_id
    assert not errors, errors
    assert len(set(results.values())) == 4
    for name, rid in results.items():
        run = mlops.get_run(rid)
        assert run.info.run_name == name and run.info.status == "FINISHED"
        assert "mlflow.parentRunId" not in run.data.tags
        assert len(mlops.get_metric_history(rid, "v")) == 200
