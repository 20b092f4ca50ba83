"""%mlops / %%mlops in IPython's test shell, logging into a temporary SQLite store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IPython = pytest.importorskip("IPython")
from IPython.core.error import UsageError  # noqa: E402


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path_factory.mktemp('magics')}/t.db"
    old = os.environ.get("JUPYTER_MLOPS_TRACKING_URI")
    os.environ["JUPYTER_MLOPS_TRACKING_URI"] = uri
    import jupyter_mlops as mlops

    mlops.set_tracking_uri(uri)  # in case another module's tests set one first
    yield uri
    mlops.set_tracking_uri(None)
    if old is None:
        os.environ.pop("JUPYTER_MLOPS_TRACKING_URI", None)
    else:
        os.environ["JUPYTER_MLOPS_TRACKING_URI"] = old


@pytest.fixture
def ip(store_uri: str) -> Iterator[Any]:
    from IPython.testing.globalipapp import get_ipython

    import jupyter_mlops as mlops

    shell = get_ipython()
    shell.run_line_magic("load_ext", "jupyter_mlops")
    yield shell
    while mlops.active_run() is not None:
        mlops.end_run()
    shell.run_line_magic("unload_ext", "jupyter_mlops")


def read_run(uri: str, run_id: str) -> Any:
    import jupyter_mlops as mlops
    from jupyter_mlops.tracking import open_store

    mlops.flush()
    store = open_store(uri)
    try:
        return store.get_run(run_id)
    finally:
        store.close()


def read_artifact(uri: str, run_id: str, path: str) -> bytes:
    from jupyter_mlops.tracking import open_store

    store = open_store(uri)
    try:
        run = store.get_run(run_id)
        with store.artifact_repo(run.info.artifact_uri).open(path) as f:
            return f.read()
    finally:
        store.close()


def test_line_magics_log_a_run(ip: Any, store_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    import jupyter_mlops as mlops

    ip.run_line_magic("mlops", "start first-run --experiment magics-exp")
    run = mlops.active_run()
    assert run is not None
    run_id = run.info.run_id
    assert "first-run" in capsys.readouterr().out
    ip.user_ns["lr"] = 0.01
    res = ip.run_cell("%mlops param lr={lr} model='deep net' layers=3")
    assert res.success, res.error_in_exec
    ip.run_line_magic("mlops", "metric loss=0.5 acc=0.75 --step 2")
    ip.run_line_magic("mlops", "metric loss=0.25 --step 3")
    ip.run_line_magic("mlops", "tag owner=alice stage=dev")
    ip.run_line_magic("mlops", "status")
    status = capsys.readouterr().out
    assert run_id in status and store_uri in status and "magics-exp" in status
    ip.run_line_magic("mlops", "end --status killed")
    assert mlops.active_run() is None

    got = read_run(store_uri, run_id)
    assert got.info.status == "KILLED"
    assert got.info.run_name == "first-run"
    assert got.data.params == {"lr": "0.01", "model": "deep net", "layers": "3"}
    assert got.data.metrics["loss"].value == 0.25 and got.data.metrics["loss"].step == 3
    assert got.data.metrics["acc"].value == 0.75 and got.data.metrics["acc"].step == 2
    assert got.data.tags["owner"] == "alice" and got.data.tags["stage"] == "dev"
    assert got.data.tags["mlflow.source.type"] == "LOCAL"  # the test shell is no kernel


def test_nested_start(ip: Any, store_uri: str) -> None:
    import jupyter_mlops as mlops

    ip.run_line_magic("mlops", "start parent")
    parent = mlops.active_run().info.run_id
    with pytest.raises(UsageError, match="already active"):
        ip.run_line_magic("mlops", "start other")
    ip.run_line_magic("mlops", "start child --nested")
    child = mlops.active_run().info.run_id
    ip.run_line_magic("mlops", "end")
    assert mlops.active_run().info.run_id == parent
    ip.run_line_magic("mlops", "end")
    assert read_run(store_uri, child).data.tags["mlflow.parentRunId"] == parent


def test_cell_magic_runs_the_cell_in_a_run(ip: Any, store_uri: str) -> None:
    import jupyter_mlops as mlops

    cell = "import jupyter_mlops as m\nm.log_metric('x', 42)\nresult = 6 * 7\nresult + 1"
    res = ip.run_cell(f"%%mlops run cell-run --experiment magics-exp\n{cell}")
    assert res.success, res.error_in_exec
    assert res.result == 43  # the last expression is the cell's value, as without the magic
    assert ip.user_ns["result"] == 42
    assert mlops.active_run() is None
    runs = _runs_named(store_uri, "cell-run")
    assert len(runs) == 1
    got = runs[0]
    assert got.info.status == "FINISHED"
    assert got.data.metrics["x"].value == 42
    assert read_artifact(store_uri, got.info.run_id, "source/cell.py").decode().rstrip("\n") == cell


def test_cell_magic_failure_propagates_and_marks_failed(ip: Any, store_uri: str) -> None:
    import jupyter_mlops as mlops

    res = ip.run_cell("%%mlops run failing-run\nmlops_before = 1\nraise KeyError('boom')")
    assert isinstance(res.error_in_exec, KeyError)
    assert ip.user_ns["mlops_before"] == 1
    assert mlops.active_run() is None
    (got,) = _runs_named(store_uri, "failing-run")
    assert got.info.status == "FAILED"


def test_cell_magic_inside_a_run_nests_and_closes_runs_left_open(ip: Any, store_uri: str) -> None:
    import jupyter_mlops as mlops

    ip.run_line_magic("mlops", "start outer")
    outer = mlops.active_run().info.run_id
    res = ip.run_cell(
        "%%mlops run inner\nimport jupyter_mlops as m\nm.start_run(run_name='left-open', nested=True)"
    )
    assert res.success, res.error_in_exec
    assert (
        mlops.active_run().info.run_id == outer
    )  # the cell's runs are closed, the outer one is not
    (inner,) = _runs_named(store_uri, "inner")
    (left,) = _runs_named(store_uri, "left-open")
    assert inner.data.tags["mlflow.parentRunId"] == outer
    assert inner.info.status == left.info.status == "FINISHED"
    ip.run_line_magic("mlops", "end")


def test_cell_magic_interrupted_is_killed(ip: Any, store_uri: str) -> None:
    res = ip.run_cell("%%mlops run interrupted-run\nraise KeyboardInterrupt")
    assert isinstance(res.error_in_exec, KeyboardInterrupt)
    (got,) = _runs_named(store_uri, "interrupted-run")
    assert got.info.status == "KILLED"


def test_refused_param_change_is_a_usage_error(ip: Any, store_uri: str) -> None:
    """Params are write-once (as in MLflow): a second value is refused in one
    line, the first one is kept and the run goes on."""
    import jupyter_mlops as mlops

    ip.run_line_magic("mlops", "start conflict-run")
    run_id = mlops.active_run().info.run_id
    ip.run_line_magic("mlops", "param lr=1")
    with pytest.raises(UsageError, match=r"^%mlops param: .*lr"):
        ip.run_line_magic("mlops", "param lr=2")
    ip.run_line_magic("mlops", "metric after=1")
    ip.run_line_magic("mlops", "end")
    got = read_run(store_uri, run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"lr": "1"}
    assert got.data.metrics["after"].value == 1


def _runs_named(uri: str, name: str) -> list[Any]:
    import jupyter_mlops as mlops
    from jupyter_mlops.tracking import open_store

    mlops.flush()
    store = open_store(uri)
    try:
        exps, _ = store.search_experiments()
        runs, _ = store.search_runs(
            [e.experiment_id for e in exps], filter_string=f"attributes.run_name = '{name}'"
        )
        return runs
    finally:
        store.close()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("frobnicate", "unknown subcommand 'frobnicate'"),
        ("param lr", "expected key=value, got 'lr'"),
        ("param =3", "expected key=value"),
        ("param", "expected key=value arguments"),
        ("metric loss=abc", "loss='abc' is not a number"),
        ("metric loss=1 --step two", "invalid int value"),
        ("end", "no active run"),
        ("end --status DONE", "invalid choice"),
        ("start a b", "unrecognized arguments"),
        ("run", "is a cell magic"),
        ("param k='unclosed", "cannot parse"),
        ("start --experiment ''", "%mlops start: .*experiment"),
    ],
)
def test_usage_errors(ip: Any, line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("mlops", line)


def test_usage_error_is_one_line_not_a_traceback(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    res = ip.run_cell("%mlops metric loss=high")
    assert not res.success
    err = capsys.readouterr()
    text = err.out + err.err
    assert "UsageError: %mlops metric: loss='high' is not a number" in text
    assert "Traceback" not in text


def test_cell_form_of_a_line_subcommand(ip: Any) -> None:
    with pytest.raises(UsageError, match="is a line magic"):
        ip.run_cell_magic("mlops", "start", "x = 1")


def test_help(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("mlops", "")
    out = capsys.readouterr().out
    for word in (
        "%mlops start",
        "%mlops end",
        "%mlops param",
        "%mlops metric",
        "%mlops tag",
        "%mlops status",
        "%%mlops run",
    ):
        assert word in out
    ip.run_line_magic("mlops", "metric --help")
    assert "--step" in capsys.readouterr().out


def test_unload_removes_the_magics_and_load_says_what_it_did(ip: Any, capsys: Any) -> None:
    capsys.readouterr()
    # loaded twice: ours says all is in place, not IPython's "already loaded. To reload"
    ip.run_line_magic("load_ext", "jupyter_mlops")
    again = capsys.readouterr().out
    assert "jupyter-mlops is already loaded: %mlops and %%mlops are ready" in again
    assert "To reload it" not in again
    ip.run_line_magic("unload_ext", "jupyter_mlops")
    assert ip.find_line_magic("mlops") is None
    # IPython's own %load_ext is back for everyone once unloaded
    assert not hasattr(ip.find_line_magic("load_ext"), "mlops_original")
    capsys.readouterr()
    ip.run_line_magic("load_ext", "jupyter_mlops")
    assert ip.find_line_magic("mlops") is not None
    assert "jupyter-mlops: %mlops and %%mlops are ready" in capsys.readouterr().out
    # other names still go to IPython's %load_ext
    with pytest.raises(ModuleNotFoundError):
        ip.run_line_magic("load_ext", "jupyter_mlops_no_such_extension")


def test_extension_is_exported(store_uri: str) -> None:
    import jupyter_mlops

    assert callable(jupyter_mlops.load_ipython_extension)
    assert callable(jupyter_mlops.unload_ipython_extension)
    assert Path(jupyter_mlops.__file__).parent.name == "jupyter_mlops"
