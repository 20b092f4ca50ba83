"""``jupyter mlops spool list|replay|discard`` against a real Jupyter server subprocess:
scripts whose token is refused (or whose server is down) leave their records in the
spool; the commands show them, deliver every point exactly once with the right token,
keep them when delivery fails, and drop them only when told to."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clihelpers import assert_failed_cleanly, cli_env

from jupyter_mlops.tracking import open_store

pytestmark = pytest.mark.slow

POINTS = 300

# Starts a run while the server takes its token, waits for a line on stdin (the
# server meanwhile changes its token or stops), logs POINTS points and ends the run.
LOGGER = """
import sys
import jupyter_mlops as mlops
mlops.set_tracking_uri(sys.argv[1])
run = mlops.start_run(run_name=sys.argv[2])
print(run.info.run_id, flush=True)
sys.stdin.readline()
for i in range({points}):
    mlops.log_metric("m", i * 0.5, step=i)
mlops.log_param("p", "1")
try:
    mlops.end_run()
except mlops.TrackingError as e:
    print("refused:", e.error_code, flush=True)
"""


def start_logger(env: dict[str, str], uri: str, name: str) -> tuple[subprocess.Popen, str]:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LOGGER.format(points=POINTS)), uri, name],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id = child.stdout.readline().strip()
    assert run_id, child.communicate(timeout=60)
    return child, run_id


def finish_logger(child: subprocess.Popen) -> str:
    out, err = child.communicate("go\n", timeout=180)
    assert child.returncode == 0, err
    return out


def spooled_batches(listing: str) -> int:
    """The batch count ``spool list`` reports: how many batches the writer thread
    made of the same points depends on its flush timing, so it is read, not assumed."""
    found = re.findall(r"total: (\d+) batches", listing)
    assert len(found) == 1, listing
    return int(found[0])


def steps(db_url: str, run_id: str) -> list[int]:
    store = open_store(db_url)
    try:
        return [m.step for m in store.get_metric_history(run_id, "m")[0]]
    finally:
        store.close()


def run_status(db_url: str, run_id: str) -> str:
    store = open_store(db_url)
    try:
        return store.get_run(run_id).info.status
    finally:
        store.close()


@pytest.fixture
def server(jupyter_server_process):
    return jupyter_server_process()


@pytest.fixture
def env(tmp_path: Path, server) -> dict[str, str]:
    return cli_env(
        tmp_path,
        JUPYTER_MLOPS_SPOOL_DIR=str(tmp_path / "spool"),
        JUPYTER_MLOPS_TRACKING_TOKEN=server.token,
    )


def test_a_refused_spool_is_listed_kept_on_failure_and_replayed_exactly_once(
    server, env, run_cli, tmp_path
):
    uri = server.tracking_uri
    child, run_id = start_logger(env, uri, "refused")
    server.stop()
    server.token = "rotated-token"
    server.start()
    assert "refused: UNAUTHENTICATED" in finish_logger(child)

    listed = run_cli("spool", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert uri in listed.stdout and str(tmp_path / "spool") in listed.stdout
    assert f"{POINTS} metric points" in listed.stdout
    assert "spooled because: token refused" in listed.stdout
    batches = spooled_batches(listed.stdout)
    assert batches >= 2  # the run's start is acknowledged; its points and end are not

    # The refused token again: a clear failure, nothing delivered, nothing lost.
    again = run_cli("spool", "replay", "--uri", uri, env=env)
    line = assert_failed_cleanly(again)
    assert "refused the token" in line and "0 batches delivered" in line
    assert f"{POINTS} metric points" in run_cli("spool", "list", env=env).stdout

    # The right token while the server is down: fails cleanly, the data stays.
    fixed = {**env, "JUPYTER_MLOPS_TRACKING_TOKEN": "rotated-token"}
    server.stop()
    down = run_cli("spool", "replay", "--uri", uri, env=fixed)
    assert "unreachable" in assert_failed_cleanly(down)
    assert f"{POINTS} metric points" in run_cli("spool", "list", "--uri", uri, env=env).stdout

    # Back up: every point arrives once, the run ends, the spool is empty.
    server.start()
    assert steps(server.db_url, run_id) == []
    done = run_cli("spool", "replay", env=fixed)
    assert done.returncode == 0, done.stderr
    assert f"all {batches} batches delivered" in done.stdout
    assert steps(server.db_url, run_id) == list(range(POINTS))
    assert run_status(server.db_url, run_id) == "FINISHED"
    assert "nothing spooled" in run_cli("spool", "list", env=env).stdout


def test_concurrent_replays_deliver_each_point_once_and_discard_needs_yes(
    server, env, run_cli, tmp_path
):
    uri = server.tracking_uri
    loggers = [start_logger(env, uri, f"offline-{i}") for i in range(2)]
    server.stop()  # the scripts log while the store is unreachable
    for child, _ in loggers:
        finish_logger(child)

    listed = run_cli("spool", "list", "--uri", uri, env=env).stdout
    assert listed.count("spooled because: unreachable") == 2
    assert f"batches, {2 * POINTS} metric points" in listed
    assert spooled_batches(listed) >= 4

    refused = run_cli("spool", "discard", "--uri", uri, env=env)
    assert "--yes" in assert_failed_cleanly(refused)
    assert listed == run_cli("spool", "list", "--uri", uri, env=env).stdout

    server.start()
    cmd = [sys.executable, "-m", "jupyter_mlops.cli", "spool", "replay", "--uri", uri]
    replays = [
        subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
        )
        for _ in range(2)
    ]
    for proc in replays:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, (out, err)
    for _, run_id in loggers:
        assert steps(server.db_url, run_id) == list(range(POINTS))  # once each, in order
        assert run_status(server.db_url, run_id) == "FINISHED"
    assert "nothing spooled" in run_cli("spool", "list", env=env).stdout


def test_discard_drops_a_spool_for_good(server, env, run_cli):
    uri = server.tracking_uri
    child, run_id = start_logger(env, uri, "dropped")
    server.stop()
    finish_logger(child)
    listed = run_cli("spool", "list", env=env).stdout
    assert f"{POINTS} metric points" in listed

    dropped = run_cli("spool", "discard", "--uri", uri, "--yes", env=env)
    assert dropped.returncode == 0, dropped.stderr
    assert f"discarded {spooled_batches(listed)} batches spooled for {uri}" in dropped.stdout
    assert "nothing spooled" in run_cli("spool", "list", env=env).stdout
    server.start()
    assert "nothing to replay" in run_cli("spool", "replay", env=env).stdout
    assert steps(server.db_url, run_id) == []
    assert run_status(server.db_url, run_id) == "RUNNING"
