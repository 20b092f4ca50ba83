"""The rest of MLflow's fluent API in ``jupyter_mlops``: inputs, restores, experiment tags,
parent runs, tables, streams, the registry's search and tag functions, logged models,
system metrics (GPUs through a fake NVML module), and MLflow's own autologging and
evaluation logging into our runs."""

from __future__ import annotations

import io
import subprocess
import sys
import types

import pytest

from jupyter_mlops.tracking import TrackingError


@pytest.fixture
def sqlite_mlops(tmp_path):
    import uuid

    import jupyter_mlops

    jupyter_mlops.set_tracking_uri(f"sqlite:///{tmp_path / 'mlops.db'}")
    jupyter_mlops.set_experiment(f"exp-{uuid.uuid4().hex[:8]}")
    return jupyter_mlops


def _dataset(name: str = "train", digest: str = "abc123") -> dict:
    return {
        "name": name,
        "digest": digest,
        "source_type": "local",
        "source": '{"uri": "/data/train.csv"}',
        "profile": '{"num_rows": 3}',
    }


def test_inputs_runs_and_experiments(mlops):
    with mlops.start_run() as parent, mlops.start_run(nested=True) as child:
        assert mlops.log_input(_dataset(), context="training", tags={"k": "v"}) is None
        mlops.log_inputs([_dataset("eval", "e1"), None], contexts=["eval", None])
        mlops.log_metric("acc", 0.75, step=3)
        with pytest.raises(TrackingError, match="source_type"):
            mlops.log_input({**_dataset(), "source_type": "no such type!"})
    got = mlops.get_run(child.info.run_id)
    inputs = got.inputs.dataset_inputs
    assert [(i.dataset.name, i.context) for i in inputs] == [
        ("train", "training"),
        ("eval", "eval"),
    ]
    assert [(t.key, t.value) for t in inputs[0].tags] == [
        ("k", "v"),
        ("mlflow.data.context", "training"),
    ]
    # RunData.metrics maps to floats, as MLflow's; the Metric objects stay reachable
    acc = got.data.metrics["acc"]
    assert isinstance(acc, float) and acc > 0.5 and acc.step == 3
    assert [(m.key, m.value, m.step) for m in got.data._metric_objs] == [("acc", 0.75, 3)]

    assert mlops.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    assert mlops.get_parent_run(parent.info.run_id) is None
    mlops.delete_run(child.info.run_id)
    mlops.restore_run(child.info.run_id)
    assert mlops.get_run(child.info.run_id).info.lifecycle_stage == "active"

    mlops.set_experiment_tag("team", "a")
    mlops.set_experiment_tags({"x": 1, "y": 2})
    mlops.delete_experiment_tag("x")
    exp_id = parent.info.experiment_id
    assert {"team": "a", "y": "2"}.items() <= mlops.get_experiment(exp_id).tags.items()
    assert "x" not in mlops.get_experiment(exp_id).tags
    mlops.delete_experiment(exp_id)
    mlops.restore_experiment(exp_id)
    assert mlops.get_experiment(exp_id).lifecycle_stage == "active"
    assert mlops.is_tracking_uri_set()


def test_tables_and_streams(sqlite_mlops):
    mlops = sqlite_mlops
    with mlops.start_run() as run:
        mlops.log_table({"x": [1, 2], "y": ["a", "b"]}, "tables/t.json")
        mlops.log_table({"x": [3], "y": ["c"]}, "tables/t.json")  # appended
        mlops.log_stream(io.BytesIO(b"raw bytes"), "blob.bin")
    with mlops.start_run() as other:
        mlops.log_table({"x": [9], "y": ["z"]}, "tables/t.json")
    df = mlops.load_table("tables/t.json", extra_columns=["run_id"])
    rows = sorted(zip(df["x"], df["y"], df["run_id"]))
    assert rows == [
        (1, "a", run.info.run_id),
        (2, "b", run.info.run_id),
        (3, "c", run.info.run_id),
        (9, "z", other.info.run_id),
    ]
    one = mlops.load_table("tables/t.json", run_ids=[other.info.run_id])
    assert list(one["x"]) == [9]
    client = mlops.MlopsClient()
    path = client.download_artifacts(run.info.run_id, "blob.bin")
    with open(path, "rb") as f:
        assert f.read() == b"raw bytes"
    with pytest.raises(TrackingError, match="No runs found"):
        mlops.load_table("tables/none.json")


def test_logged_models_and_registry(sqlite_mlops):
    mlops = sqlite_mlops
    with mlops.start_run() as run:
        model = mlops.initialize_logged_model(name="clf", params={"lr": "0.1"}, model_type="x")
        assert model.status == "LOGGED_MODEL_PENDING" and model.source_run_id == run.info.run_id
        mlops.set_logged_model_tags(model.model_id, {"stage": "dev", "drop": "me"})
        mlops.delete_logged_model_tag(model.model_id, "drop")
        mlops.log_model_params({"depth": "3"}, model_id=model.model_id)
        ready = mlops.finalize_logged_model(model.model_id, "READY")
        assert ready.status == "LOGGED_MODEL_READY"
        mlops.log_outputs([(model.model_id, 0)])
    got = mlops.get_logged_model(model.model_id)
    assert got.tags == {"stage": "dev"} and got.params == {"lr": "0.1", "depth": "3"}
    assert mlops.last_logged_model().model_id == model.model_id
    found = mlops.search_logged_models(filter_string="name = 'clf'", output_format="list")
    assert [m.model_id for m in found] == [model.model_id]
    assert list(mlops.search_logged_models()["model_id"]) == [model.model_id]
    with mlops.set_active_model(model_id=model.model_id) as active:
        assert active.model_id == mlops.get_active_model_id() == model.model_id
    assert mlops.get_active_model_id() is None
    ext = mlops.create_external_model(name="ext")
    assert ext.tags["mlflow.model.isExternal"] == "true" and ext.status == "LOGGED_MODEL_READY"
    assert mlops.get_active_model_id() == ext.model_id
    mlops.clear_active_model()

    assert mlops.get_registry_uri() == mlops.get_tracking_uri()
    version = mlops.register_model(f"models:/{model.model_id}", "reg-clf")
    mlops.set_model_version_tag("reg-clf", version.version, "ok", "yes")
    models = mlops.search_registered_models(filter_string="name = 'reg-clf'")
    assert [m.name for m in models] == ["reg-clf"]
    versions = mlops.search_model_versions(filter_string="name = 'reg-clf'")
    assert [(v.version, v.tags["ok"]) for v in versions] == [("1", "yes")]


class _FakeNvml(types.ModuleType):
    """``pynvml`` as NVML answers on a machine with two GPUs."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.shut = False

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        self.shut = True

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetMemoryInfo(self, h):
        return types.SimpleNamespace(used=(h + 1) * 1_000_000_000, total=4_000_000_000)

    def nvmlDeviceGetUtilizationRates(self, h):
        return types.SimpleNamespace(gpu=50 + h * 10)

    def nvmlDeviceGetPowerUsage(self, h):
        if h == 1:
            raise self.NVMLError("not supported")
        return 100_000

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return 200_000


def test_system_metrics_sampler_and_monitor_with_a_fake_nvml(monkeypatch):
    from jupyter_mlops.client.system_metrics import SystemMetricsMonitor, SystemMetricsSampler

    nvml = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sampler = SystemMetricsSampler()
    assert sampler.gpu_count == 2
    sample = sampler.sample()
    for name in (
        "cpu_utilization_percentage",
        "system_memory_usage_megabytes",
        "system_memory_usage_percentage",
        "disk_usage_percentage",
        "disk_usage_megabytes",
        "disk_available_megabytes",
        "network_receive_megabytes",
        "network_transmit_megabytes",
    ):
        assert name in sample
    assert sample["gpu_0_memory_usage_megabytes"] == 1000.0
    assert sample["gpu_1_memory_usage_percentage"] == 50.0
    assert sample["gpu_1_utilization_percentage"] == 60.0
    assert sample["gpu_0_power_usage_watts"] == 100.0
    assert sample["gpu_0_power_usage_percentage"] == 50.0
    assert "gpu_1_power_usage_watts" not in sample  # a figure the device lacks

    published = []
    monitor = SystemMetricsMonitor(
        lambda m, step: published.append((step, m)),
        sampling_interval=3600,
        samples_before_logging=2,
        node_id="node-1",
        sampler=sampler,
    )
    monitor.collect()
    assert published == []
    monitor.collect()
    assert [s for s, _ in published] == [0]
    assert published[0][1]["system/node-1/gpu_0_utilization_percentage"] == 50.0
    monitor.collect()
    monitor.stop()  # publishes the pending sample, releases NVML
    assert [s for s, _ in published] == [0, 1] and nvml.shut


def test_start_run_logs_system_metrics(sqlite_mlops, monkeypatch):
    mlops = sqlite_mlops
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())
    with mlops.start_run(log_system_metrics=True) as run:
        mlops.log_metric("loss", 1.0)
    metrics = mlops.get_run(run.info.run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics
    assert metrics["system/gpu_1_utilization_percentage"] == 60.0
    mlops.enable_system_metrics_logging()
    try:
        with mlops.start_run() as run2:
            pass
        assert "system/disk_usage_percentage" in mlops.get_run(run2.info.run_id).data.metrics
    finally:
        mlops.disable_system_metrics_logging()
    with mlops.start_run() as run3:
        pass
    assert not mlops.get_run(run3.info.run_id).data.metrics


@pytest.mark.slow
def test_autolog_and_evaluate_log_into_our_runs_over_http(jupyter_server_process, monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("sklearn")
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import jupyter_mlops as mlops

    server = jupyter_server_process()
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", server.token)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.token)
    mlops.set_tracking_uri(server.tracking_uri)
    mlops.set_experiment("autolog")
    X, y = load_iris(return_X_y=True, as_frame=True)
    mlops.autolog(log_models=True, silent=True)
    try:
        with mlops.start_run(run_name="fit") as run:
            LogisticRegression(max_iter=300).fit(X, y)
            df = pd.DataFrame({"label": [0, 1, 1, 0], "pred": [0, 1, 0, 0]})
            result = mlops.evaluate(
                data=df, targets="label", predictions="pred", model_type="classifier"
            )
    finally:
        from jupyter_mlops.client import mlflow_bridge

        mlops.autolog(disable=True, silent=True)
        mlflow_bridge.disconnect()
    assert 0 <= result.metrics["accuracy_score"] <= 1
    got = mlops.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.metrics["training_accuracy_score"] > 0.9
    assert "accuracy_score" in got.data.metrics  # evaluate's, in the same run
    assert got.data.params["max_iter"] == "300"
    assert "train" in [i.context for i in got.inputs.dataset_inputs]
    model = mlops.last_logged_model()
    assert model is not None and model.source_run_id == run.info.run_id


def test_autolog_without_mlflow_says_how_to_install_it():
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "import jupyter_mlops as mlops\n"
        "try:\n    mlops.autolog()\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install mlflow" in out and "autolog" in out
