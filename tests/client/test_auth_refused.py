"""The client against a real Jupyter server that refuses its token: one clear
error at the first call that needs the server, and a token refused in the middle
of a run is neither retried in a loop nor taken for an outage: the data waits in
the spool, said once, until the token is fixed (in this process or the next)."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from jupyter_mlops.tracking import TrackingError, open_store

pytestmark = pytest.mark.slow


def _frames(exc: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


def _spooled_records(spool_root: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in spool_root.rglob("spool-*.jsonl"))


def _refusals_logged(server) -> int:
    """Requests the server answered 403 (jupyter_server logs each one)."""
    return sum(" 403 " in line for line in server.log().splitlines())


@pytest.fixture
def server(jupyter_server_process):
    return jupyter_server_process()


@pytest.mark.parametrize("token", ["wrong-token", None])
def test_start_run_with_a_refused_token_is_one_clear_error(server, monkeypatch, tmp_path, token):
    import jupyter_mlops as mlops

    if token:
        monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", token)
    mlops.set_tracking_uri(server.tracking_uri)
    with pytest.raises(TrackingError) as exc:
        mlops.start_run(run_name="refused")
    err = exc.value
    assert err.error_code == "UNAUTHENTICATED"
    assert "refused the token" in str(err) if token else "without a token" in str(err)
    assert "JUPYTER_MLOPS_TRACKING_TOKEN" in str(err) and server.tracking_uri in str(err)
    # raised from the user's call, not through the writer thread's and HTTP layer's frames
    assert _frames(err)[-1] == "call" and "_run_op" not in _frames(err)
    assert mlops.active_run() is None
    assert _spooled_records(tmp_path / "spool") == 0  # nothing acknowledged, nothing kept

    store = open_store(server.db_url)
    runs, _ = store.search_runs(["0"])
    assert runs == []  # no run was made
    store.close()


def test_token_refused_mid_run_spools_once_and_replays_with_the_new_token(
    server, monkeypatch, tmp_path, caplog
):
    import jupyter_mlops as mlops

    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", server.token)
    mlops.set_tracking_uri(server.tracking_uri)
    run = mlops.start_run(run_name="token-rotated")
    run_id = run.info.run_id
    mlops.log_metric("m", 0, step=0)
    mlops.flush()

    # The server comes back with another token (a rotated hub token has the same effect).
    server.stop()
    server.token = "rotated-token"
    server.start()
    for i in range(1, 500):
        mlops.log_metric("m", i, step=i)
    with pytest.raises(TrackingError) as exc:
        mlops.flush()
    err = exc.value
    assert err.error_code == "UNAUTHENTICATED"
    assert "refused the token" in str(err) and "nothing logged is lost" in str(err)
    assert str(tmp_path / "spool") in str(err) and "jupyter_mlops.flush()" in str(err)
    assert "_run_op" not in _frames(err)
    warnings = [r for r in caplog.records if "refused the token" in r.getMessage()]
    assert len(warnings) == 1

    # Said once: more logging and flushes neither raise nor ask the server again.
    refusals = _refusals_logged(server)
    assert refusals > 0  # the server logs each refused request
    mlops.log_metric("m", 500, step=500)
    mlops.flush()
    mlops.flush()
    assert _refusals_logged(server) == refusals
    assert _spooled_records(tmp_path / "spool") >= 2  # the refused batch and what followed

    # The user sets the new token: the next flush replays everything, in order.
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", "rotated-token")
    mlops.end_run()
    mlops.flush()
    store = open_store(server.db_url)
    assert [m.step for m in store.get_metric_history(run_id, "m")[0]] == list(range(501))
    assert store.get_run(run_id).info.status == "FINISHED"
    store.close()


def test_a_refused_spool_is_replayed_by_the_next_process_with_a_valid_token(
    server, scripts, tmp_path
):
    """A script whose token stops working keeps its data in the spool when it exits;
    the next process logging to the server with a valid token replays it."""
    child = scripts.start(
        f"""
        import sys
        import jupyter_mlops as mlops
        mlops.set_tracking_uri({server.tracking_uri!r})
        run = mlops.start_run(run_name="left-refused")
        print(run.info.run_id, flush=True)
        sys.stdin.readline()  # the server changes its token meanwhile
        for i in range(300):
            mlops.log_metric("m", i, step=i)
        try:
            mlops.end_run()
        except mlops.TrackingError as e:
            print("refused:", e.error_code, flush=True)
        """,
        JUPYTER_MLOPS_TRACKING_TOKEN=server.token,
        JUPYTER_MLOPS_SPOOL_DIR=str(tmp_path / "spool"),
    )
    run_id = child.stdout.readline().strip()
    server.stop()
    server.token = "rotated-token"
    server.start()
    out, err = child.communicate("go\n", timeout=120)
    assert child.returncode == 0, err
    assert "refused: UNAUTHENTICATED" in out
    assert _spooled_records(tmp_path / "spool") > 0

    scripts.run(
        f"""
        import jupyter_mlops as mlops
        mlops.MlopsClient({server.tracking_uri!r}).flush()  # adopts and replays the spool
        """,
        JUPYTER_MLOPS_TRACKING_TOKEN="rotated-token",
        JUPYTER_MLOPS_SPOOL_DIR=str(tmp_path / "spool"),
    )
    store = open_store(server.db_url)
    assert [m.step for m in store.get_metric_history(run_id, "m")[0]] == list(range(300))
    assert store.get_run(run_id).info.status == "FINISHED"
    store.close()
    assert _spooled_records(tmp_path / "spool") == 0
