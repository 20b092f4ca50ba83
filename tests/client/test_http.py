"""The client over HTTP against a real Jupyter server subprocess with the
extension: logging, spooling while the server is down, replay after a
restart, and replay of a spool left behind by an exited process."""

from __future__ import annotations

import math
import threading
import time

import pytest

from jupyter_mlops.tracking import TrackingError, open_store

pytestmark = pytest.mark.slow


@pytest.fixture
def server(jupyter_server_process, monkeypatch):
    srv = jupyter_server_process()
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", srv.token)
    return srv


def _steps(store, run_id: str, key: str) -> list[int]:
    return [m.step for m in store.get_metric_history(run_id, key)[0]]


def test_fluent_api_over_http(server, tmp_path, monkeypatch):
    import jupyter_mlops as mlops

    mlops.set_tracking_uri(server.tracking_uri)
    mlops.set_experiment("http-exp")
    with mlops.start_run(run_name="over-http") as run:
        mlops.log_param("lr", 0.5)
        for i in range(3000):
            mlops.log_metric("loss", 1 / (i + 1), step=i)
        mlops.log_metrics({"nan": float("nan"), "inf": float("inf")})
        mlops.set_tag("k", "v")
        mlops.log_text("hello", "notes/hello.txt")
        with pytest.raises(TrackingError):
            mlops.log_param("lr", 0.6)
    got = mlops.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"lr": "0.5"} and got.data.tags["k"] == "v"
    assert len(mlops.get_metric_history(run.info.run_id, "loss")) == 3000
    assert math.isnan(got.data.metrics["nan"].value) and got.data.metrics["inf"].value == math.inf
    df = mlops.search_runs()
    assert list(df["run_id"]) == [run.info.run_id]
    client = mlops.MlopsClient()
    assert [f.path for f in client.list_artifacts(run.info.run_id, "notes")] == ["notes/hello.txt"]
    dl = client.download_artifacts(run.info.run_id, "notes/hello.txt", str(tmp_path))
    with open(dl) as f:
        assert f.read() == "hello"

    # the server's own store has it all
    store = open_store(server.db_url)
    assert len(_steps(store, run.info.run_id, "loss")) == 3000
    store.close()

    # a wrong token is a clear error, not a hang or a spool
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", "wrong")
    mlops.set_tracking_uri(server.tracking_uri + "/")
    with pytest.raises(TrackingError):
        mlops.set_experiment("nope")


def test_server_down_from_the_start_spools_then_replays(server):
    import jupyter_mlops as mlops

    server.stop()
    mlops.set_tracking_uri(server.tracking_uri)
    run = mlops.start_run(run_name="offline")  # default experiment, made offline
    run_id = run.info.run_id
    mlops.log_param("p", 1)
    for i in range(5000):
        mlops.log_metric("m", i, step=i)
    mlops.end_run()
    mlops.flush()  # durable in the spool; the server is still down

    server.start()
    mlops.flush()  # replays the spool
    store = open_store(server.db_url)
    got = store.get_run(run_id)  # the client-made id was kept
    assert got.info.status == "FINISHED"
    assert got.data.params == {"p": "1"}
    assert _steps(store, run_id, "m") == list(range(5000))
    store.close()


def test_server_restart_while_logging_loses_nothing(server):
    import jupyter_mlops as mlops

    mlops.set_tracking_uri(server.tracking_uri)
    n = 20000
    run = mlops.start_run()
    progress = threading.Event()

    def log_all() -> None:
        for i in range(n):
            mlops.log_metric("m", i, step=i, run_id=run.info.run_id)
            if i == n // 4:
                progress.set()
            if i % 100 == 0:
                time.sleep(0.005)  # spread the points over the restart

    t = threading.Thread(target=log_all)
    t.start()
    assert progress.wait(120), "the writer thread did not get going"
    server.restart()
    t.join(300)
    assert not t.is_alive(), "the writer thread did not finish"
    mlops.end_run()
    mlops.flush()
    store = open_store(server.db_url)
    steps = _steps(store, run.info.run_id, "m")
    assert sorted(set(steps)) == list(range(n))  # at-least-once: nothing lost
    assert store.get_run(run.info.run_id).info.status == "FINISHED"
    store.close()


def test_a_later_process_replays_a_left_over_spool(server, scripts):
    server.stop()
    out = scripts.run(
        f"""
        import jupyter_mlops as mlops
        mlops.set_tracking_uri({server.tracking_uri!r})
        with mlops.start_run(run_name="left-behind") as run:
            for i in range(1000):
                mlops.log_metric("m", i, step=i)
        print(run.info.run_id)
        """
    ).stdout
    run_id = out.strip().splitlines()[-1]
    server.start()
    import jupyter_mlops as mlops

    mlops.MlopsClient(server.tracking_uri).flush()  # start-up adopts and replays
    store = open_store(server.db_url)
    assert _steps(store, run_id, "m") == list(range(1000))
    assert store.get_run(run_id).info.status == "FINISHED"
    store.close()


def test_killed_writer_is_reaped_by_the_server(jupyter_server_process, monkeypatch, scripts):
    """Heartbeats over HTTP: the server marks KILLED the run of a SIGKILLed
    writer, and leaves a run whose writer is alive."""
    import signal

    import jupyter_mlops as mlops

    # 25 beats of this process' writer (0.2 s apart): the live run survives a loaded machine
    srv = jupyter_server_process(extra_args=["--MLOpsApp.heartbeat_timeout=5"])
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", srv.token)
    child = scripts.start(
        f"""
        import time, jupyter_mlops as mlops
        mlops.set_tracking_uri({srv.tracking_uri!r})
        run = mlops.start_run()
        for i in range(500):
            mlops.log_metric("m", i, step=i)
        mlops.flush()
        print(run.info.run_id, flush=True)
        time.sleep(600)
        """,
        JUPYTER_MLOPS_TRACKING_TOKEN=srv.token,
    )
    mlops.set_tracking_uri(srv.tracking_uri)
    try:
        run_id = child.stdout.readline().strip()
        assert run_id, child.stderr.read()
        live = mlops.start_run()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        deadline = time.monotonic() + 120
        while mlops.get_run(run_id).info.status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert mlops.get_run(run_id).info.status == "KILLED"
        assert len(mlops.get_metric_history(run_id, "m")) == 500
        assert mlops.get_run(live.info.run_id).info.status == "RUNNING"
        mlops.end_run()
    finally:
        if child.poll() is None:
            child.kill()
