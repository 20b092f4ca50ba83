"""``jupyter mlops pipeline validate|run`` (as a subprocess) and ``%mlops pipeline``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from IPython.core.error import UsageError
from pipehelpers import REPO, wait_dead, write, write_notebook

from jupyter_mlops.tracking import open_store


def cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("JUPYTER_MLOPS_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.pipelines.cli", "pipeline", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def proj(tmp_path):
    write(str(tmp_path / "a.py"), "import sys\nprint('got', sys.argv[1:])\n")
    write(str(tmp_path / "fail.py"), "raise SystemExit(4)\n")
    write_notebook(str(tmp_path / "n.ipynb"), "x = 1\n", "print('x is', x)")
    write(
        str(tmp_path / "ok.pipeline.yaml"),
        """\
        name: cli-ok
        parameters: {x: {type: integer, default: 1}}
        steps:
          a: {script: a.py, parameters: {x: "{{ params.x }}"}}
          n: {notebook: n.ipynb, depends_on: [a], parameters: {x: "{{ params.x }}"}}
        """,
    )
    write(
        str(tmp_path / "bad.pipeline.yaml"),
        """\
        name: cli-bad
        steps:
          a: {script: a.py, depends_on: [b]}
          b: {script: a.py, depends_on: [a]}
        """,
    )
    write(
        str(tmp_path / "fails.pipeline.yaml"), "name: cli-fails\nsteps:\n  f: {script: fail.py}\n"
    )
    return tmp_path


def test_cli_validate(proj):
    ok = cli("validate", "ok.pipeline.yaml", cwd=proj)
    assert ok.returncode == 0 and "valid pipeline 'cli-ok'" in ok.stdout and "a -> n" in ok.stdout
    bad = cli("validate", "bad.pipeline.yaml", cwd=proj)
    assert bad.returncode == 1
    assert "bad.pipeline.yaml:4: steps.b.depends_on[0]: dependency cycle" in bad.stderr


def test_cli_run_prints_progress_and_exit_status(proj):
    db = proj / "store.db"
    r = cli(
        "run",
        "ok.pipeline.yaml",
        "-p",
        "x=5",
        "--database-url",
        str(db),
        "--runs-dir",
        str(proj / ".runs"),
        cwd=proj,
    )
    assert r.returncode == 0, r.stderr
    assert "started (2 steps)" in r.stdout and "n: SUCCEEDED" in r.stdout
    run_id = r.stdout.split("run ", 1)[1].split()[0]
    assert f"run {run_id}: SUCCEEDED" in r.stdout
    store = open_store(f"sqlite:///{db}")
    assert store.get_run(run_id).data.params == {"x": "5"}
    store.close()
    r = cli("run", "fails.pipeline.yaml", "--database-url", str(db), cwd=proj)
    assert r.returncode == 1 and "f: FAILED" in r.stdout and "exited with status 4" in r.stdout
    r = cli("run", "ok.pipeline.yaml", "-p", "x=five", "--database-url", str(db), cwd=proj)
    assert r.returncode == 1 and "'x'" in r.stderr
    r = cli("run", "bad.pipeline.yaml", "--database-url", str(db), cwd=proj)
    assert r.returncode == 1 and "dependency cycle" in r.stderr


def test_magic_runs_in_the_kernel_process_without_a_server(proj, monkeypatch, capsys):
    from jupyter_mlops.pipelines.magic import pipeline_magic

    monkeypatch.chdir(proj)
    monkeypatch.delenv("JUPYTER_MLOPS_SERVER_URL", raising=False)
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_URI", f"sqlite:///{proj / 'magic.db'}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(proj / "data"))
    run_id = pipeline_magic(["run", "ok.pipeline.yaml", "x=3"])
    out = capsys.readouterr().out
    assert f"run {run_id}: SUCCEEDED" in out
    with pytest.raises(UsageError, match="FAILED"):
        pipeline_magic(["run", "fails.pipeline.yaml"])
    with pytest.raises(UsageError, match="dependency cycle"):
        pipeline_magic(["validate", "bad.pipeline.yaml"])
    with pytest.raises(UsageError, match="usage"):
        pipeline_magic(["frobnicate"])
    with pytest.raises(UsageError, match="name=value"):
        pipeline_magic(["run", "ok.pipeline.yaml", "x"])
    with pytest.raises(UsageError) as refused:  # the message alone, no exception class name
        pipeline_magic(["run", "ok.pipeline.yaml", "x=five"])
    assert str(refused.value) == "%mlops pipeline run: parameter 'x': 'five' is not an integer"


def test_progress_counts_succeeded_steps_not_ended_ones():
    """The magic's and CLI's "k/n" counts steps that succeeded (or reused outputs): a
    cancelled or skipped step is not done, so 2 of 3 never prints "3/3" (issue 10)."""
    import io

    from jupyter_mlops.pipelines.progress import ProgressPrinter

    def step(name, status):
        return {"name": name, "status": status, "attempt": 1, "duration_ms": 100}

    out = io.StringIO()
    printer = ProgressPrinter(out)
    steps = [step("a", "SUCCEEDED"), step("b", "CACHED"), step("c", "CANCELED")]
    counts = {"SUCCEEDED": 1, "CACHED": 1, "CANCELED": 1}
    printer.update({"steps": steps, "progress": {"counts": counts, "total": 3}})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert all(" 2/3 " in line for line in lines), lines
    assert lines[-1].endswith("c: CANCELED")
    steps[2] = step("c", "SKIPPED")
    printer.update(
        {
            "steps": steps,
            "progress": {"counts": {"SUCCEEDED": 1, "CACHED": 1, "SKIPPED": 1}, "total": 3},
        }
    )
    assert out.getvalue().splitlines()[-1].endswith(" 2/3 c: SKIPPED")


def test_magic_is_registered_as_a_subcommand():
    from jupyter_mlops import magics

    assert "pipeline" in magics._SUBCOMMANDS
    assert "%mlops pipeline validate|run FILE" in magics.usage_text()


def test_cli_run_terminated_kills_its_steps_and_records_why(proj):
    import signal
    import time

    write(
        str(proj / "sleepy.py"),
        """\
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open(os.environ["PIDFILE"], "w").write(str(child.pid))
        time.sleep(300)
        """,
    )
    pidfile = proj / "child.pid"
    write(
        str(proj / "sleepy.pipeline.yaml"),
        f"name: sleepy\nsteps:\n  s: {{script: sleepy.py, env: {{PIDFILE: '{pidfile}'}}}}\n",
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("JUPYTER_MLOPS_TRACKING_URI", None)
    db = proj / "term.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_mlops.pipelines.cli",
            "pipeline",
            "run",
            "sleepy.pipeline.yaml",
            "--database-url",
            str(db),
        ],
        cwd=proj,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (pidfile.exists() and pidfile.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    grandchild = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert "FAILED" in out and "the CLI was terminated" in out
    wait_dead(grandchild)  # the CLI killed its step's tree on the way out
