"""%mlops against a real Jupyter server that refuses the token: a one-line
message saying what to set, never a traceback, and ``%mlops end`` says the run's
data waits in the spool rather than that the store refused it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("IPython")

pytestmark = pytest.mark.slow


@pytest.fixture
def ip(jupyter_server_process, monkeypatch, tmp_path) -> Iterator[tuple[Any, Any]]:
    from IPython.testing.globalipapp import get_ipython

    import jupyter_mlops as mlops
    from jupyter_mlops.client.writer import close_all

    server = jupyter_server_process()
    monkeypatch.setenv("JUPYTER_MLOPS_SPOOL_DIR", str(tmp_path / "spool"))
    mlops.set_tracking_uri(server.tracking_uri)
    shell = get_ipython()
    shell.run_line_magic("load_ext", "jupyter_mlops")
    yield shell, server
    while mlops.active_run() is not None:
        try:
            mlops.end_run()
        except mlops.TrackingError:
            pass
    shell.run_line_magic("unload_ext", "jupyter_mlops")
    mlops.set_tracking_uri(None)
    close_all()


def _output(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_start_with_a_wrong_token_is_one_line(ip, monkeypatch, capsys) -> None:
    shell, server = ip
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", "wrong-token")
    res = shell.run_cell("%mlops start refused")
    assert not res.success
    text = _output(capsys)
    assert (
        f"UsageError: %mlops start: The tracking server {server.tracking_uri} refused the "
        "token" in text
    )
    assert "JUPYTER_MLOPS_TRACKING_TOKEN" in text and "Traceback" not in text


def test_end_after_the_token_was_refused_says_where_the_data_is(ip, monkeypatch, capsys) -> None:
    shell, server = ip
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_TOKEN", server.token)
    assert shell.run_cell("%mlops start rotated").success
    server.stop()
    server.token = "rotated-token"
    server.start()
    assert shell.run_cell("%mlops metric loss=0.5").success
    capsys.readouterr()
    res = shell.run_cell("%mlops end")
    assert not res.success
    text = _output(capsys)
    assert "ended FINISHED, but the server refused the token" in text
    assert "nothing logged is lost" in text and "Traceback" not in text
