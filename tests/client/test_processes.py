"""Real processes logging into one SQLite store: concurrency, crashes, exit."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from jupyter_mlops.tracking import open_store

LOGGER = """
import sys, jupyter_mlops as mlops
mlops.set_tracking_uri(sys.argv[1] if len(sys.argv) > 1 else {uri!r})
mlops.set_experiment("procs")
with mlops.start_run(run_name="w{i}") as run:
    mlops.log_param("worker", {i})
    for step in range({steps}):
        mlops.log_metrics({{"a": step, "b": -step}}, step=step)
        mlops.log_metric("c", step * 0.5, step=step)
    mlops.set_tag("done", "yes")
print(run.info.run_id)
"""


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shared.db'}"


def _history_len(store, run_id: str, key: str) -> int:
    return len(store.get_metric_history(run_id, key)[0])


@pytest.mark.slow
def test_eight_processes_log_at_once(scripts, sqlite_uri):
    steps = 3000
    # create the store first so the children race on logging, not on migrations
    open_store(sqlite_uri).close()
    procs = [scripts.start(LOGGER.format(uri=sqlite_uri, i=i, steps=steps)) for i in range(8)]
    run_ids = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        assert "Traceback" not in err and "failed" not in err.lower(), err
        run_ids.append(out.strip().splitlines()[-1])
    store = open_store(sqlite_uri)
    assert len(set(run_ids)) == 8
    for i, rid in enumerate(run_ids):
        run = store.get_run(rid)
        assert run.info.status == "FINISHED"
        assert run.data.params == {"worker": str(i)}
        assert run.data.tags["done"] == "yes"
        for key in "abc":
            assert _history_len(store, rid, key) == steps, (rid, key)
        assert run.data.metrics["b"].value == -(steps - 1)
    store.close()


def test_sigkill_keeps_flushed_data_and_run_ends_killed(scripts, sqlite_uri, monkeypatch):
    child = scripts.start(
        f"""
        import time, jupyter_mlops as mlops
        mlops.set_tracking_uri({sqlite_uri!r})
        run = mlops.start_run()
        for i in range(1000):
            mlops.log_metric("m", i, step=i)
        mlops.flush()
        print(run.info.run_id, flush=True)
        i = 1000
        while True:  # keeps logging until killed
            mlops.log_metric("m", i, step=i)
            i += 1
            time.sleep(0.001)
        """,
        JUPYTER_MLOPS_HEARTBEAT_INTERVAL="0.2",
    )
    try:
        run_id = child.stdout.readline().strip()
        assert run_id, child.stderr.read()
        time.sleep(0.5)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    store = open_store(sqlite_uri)
    assert _history_len(store, run_id, "m") >= 1000
    assert store.get_run(run_id).info.status == "RUNNING"

    # A later start_run sweeps runs whose writer went silent for the timeout.
    monkeypatch.setenv("JUPYTER_MLOPS_HEARTBEAT_TIMEOUT", "1")
    time.sleep(1.5)
    import jupyter_mlops as mlops

    mlops.set_tracking_uri(sqlite_uri)
    with mlops.start_run() as live:
        mlops.log_metric("x", 1)
    assert store.get_run(run_id).info.status == "KILLED"
    assert store.get_run(live.info.run_id).info.status == "FINISHED"
    store.close()


def test_a_live_run_is_not_killed(scripts, sqlite_uri, monkeypatch):
    """Heartbeats keep a long-running writer's run alive across sweeps."""
    child = scripts.start(
        f"""
        import sys, time, jupyter_mlops as mlops
        mlops.set_tracking_uri({sqlite_uri!r})
        run = mlops.start_run()
        print(run.info.run_id, flush=True)
        sys.stdin.readline()
        mlops.end_run()
        """,
        JUPYTER_MLOPS_HEARTBEAT_INTERVAL="0.2",
    )
    try:
        run_id = child.stdout.readline().strip()
        # Older than the timeout, so only its heartbeats save it; the timeout is 25 beats,
        # so a writer starved of CPU for a while on a loaded machine is still alive.
        monkeypatch.setenv("JUPYTER_MLOPS_HEARTBEAT_TIMEOUT", "5")
        time.sleep(6.0)
        import jupyter_mlops as mlops

        mlops.set_tracking_uri(sqlite_uri)
        with mlops.start_run():
            pass
        store = open_store(sqlite_uri)
        assert store.get_run(run_id).info.status == "RUNNING"
        store.close()
    finally:
        child.kill()
        child.wait(10)


def test_interpreter_exit_flushes_and_ends_the_run(scripts, sqlite_uri):
    out = scripts.run(
        f"""
        import jupyter_mlops as mlops
        mlops.set_tracking_uri({sqlite_uri!r})
        run = mlops.start_run()
        mlops.log_param("p", "v")
        for i in range(20000):
            mlops.log_metric("m", i, step=i)
        print(run.info.run_id)
        # no flush, no end_run
        """
    ).stdout
    run_id = out.strip()
    store = open_store(sqlite_uri)
    run = store.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"p": "v"}
    assert _history_len(store, run_id, "m") == 20000
    store.close()


def test_uncaught_exception_ends_the_run_failed(scripts, sqlite_uri):
    proc = scripts.start(
        f"""
        import jupyter_mlops as mlops
        mlops.set_tracking_uri({sqlite_uri!r})
        run = mlops.start_run()
        print(run.info.run_id, flush=True)
        mlops.log_metric("m", 1.0)
        raise SystemError("boom")
        """
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "boom" in err
    store = open_store(sqlite_uri)
    run = store.get_run(out.strip())
    assert run.info.status == "FAILED"
    assert run.data.metrics["m"].value == 1.0
    store.close()


def test_forked_children_log_to_the_parents_run(scripts, sqlite_uri):
    """multiprocessing workers (fork) log into the active run of their parent."""
    out = scripts.run(
        f"""
        import multiprocessing as mp
        import jupyter_mlops as mlops

        def work(i):
            for s in range(500):
                mlops.log_metric(f"w{{i}}", s, step=s)
            mlops.flush()  # pool workers leave through os._exit: no atexit

        mlops.set_tracking_uri({sqlite_uri!r})
        with mlops.start_run() as run:
            mlops.log_metric("parent", 1)
            with mp.get_context("fork").Pool(3) as pool:
                pool.map(work, range(3))
            mlops.log_metric("parent", 2, step=1)
        print(run.info.run_id)
        """
    ).stdout
    store = open_store(sqlite_uri)
    run_id = out.strip()
    run = store.get_run(run_id)
    assert run.info.status == "FINISHED"
    for i in range(3):
        assert _history_len(store, run_id, f"w{i}") == 500
    assert _history_len(store, run_id, "parent") == 2
    store.close()
