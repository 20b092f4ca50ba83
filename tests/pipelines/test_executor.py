"""The local executor with real kernels and real processes, on a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys

import nbformat
import pytest
from pipehelpers import REPO, wait_dead, write, write_notebook

from jupyter_mlops.pipelines.service import PipelineService
from jupyter_mlops.tracking import open_store


@pytest.fixture
def any_store(tmp_path, db_url):
    """SQLite, and PostgreSQL when JUPYTER_MLOPS_TEST_POSTGRES_URL is set."""
    s = open_store(db_url, artifact_root=str(tmp_path / "art"))
    yield s
    s.close()


def _text(path) -> str:
    """A local file's text ("" while it does not exist)."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def run_with_service(store, root, fn, **cfg):
    """Run ``await fn(svc)`` with a started service, stopped afterwards."""
    env = dict(
        os.environ,
        JUPYTER_MLOPS_TRACKING_URI=store.uri,
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )

    async def main():
        svc = PipelineService(
            store,
            str(root),
            env=env,
            runs_dir=str(root / ".runs"),
            **{"warm_kernels": 1, "parallelism": 2, **cfg},
        )
        await svc.start(schedules=False)
        try:
            return await fn(svc)
        finally:
            await svc.stop()

    return asyncio.run(main())


def steps_of(run):
    return {s["name"]: s for s in run["steps"]}


def test_notebook_and_script_steps_tracked_with_outputs_logs_and_parameters(store, tmp_path):
    write(
        str(tmp_path / "make.py"),
        """\
        import json, os, sys
        print("argv", sys.argv[1:])
        rows = int(sys.argv[1].split("=")[1])
        open("data.json", "w").write(json.dumps(list(range(rows))))
        import jupyter_mlops as mlops
        mlops.log_metric("rows", rows)
        """,
    )
    nb = write_notebook(
        str(tmp_path / "use.ipynb"),
        "scale = 1.0\nlabel = 'none'\n",
        """\
        import json
        data = json.load(open("data.json"))
        total = sum(data) * scale
        print("total", total, label)
        import jupyter_mlops as mlops
        mlops.log_metric("total", total)
        """,
    )
    before = _text(nb)
    write(
        str(tmp_path / "p.pipeline.yaml"),
        """\
        name: tracked
        parameters:
          rows: {type: integer, default: 4}
          scale: {type: float, default: 2.0}
        steps:
          make:
            script: make.py
            parameters: {rows: "{{ params.rows }}"}
            outputs: [data.json]
          use:
            notebook: use.ipynb
            depends_on: [make]
            parameters: {scale: "{{ params.scale }}", label: "run {{ run.id }}"}
        """,
    )

    async def go(svc):
        run = await svc.submit("p.pipeline.yaml", parameters={"rows": "5"})
        return await svc.wait(run["run_id"]), svc

    run, svc = run_with_service(store, tmp_path, go)
    assert run["status"] == "SUCCEEDED", run
    st = steps_of(run)
    assert st["make"]["status"] == st["use"]["status"] == "SUCCEEDED"
    assert run["progress"]["done"] == 2 and run["parameters"] == {"rows": 5, "scale": 2.0}
    # the source notebook is untouched; the executed copy has the injected cell after `parameters`
    assert _text(nb) == before
    out = nbformat.read(
        os.path.join(tmp_path / ".runs", run["run_id"], "steps", "use", "output.ipynb"), 4
    )
    assert "injected-parameters" in out.cells[1].metadata["tags"]
    assert "scale = 2.0" in out.cells[1].source and f"run {run['run_id']}" in out.cells[1].source
    assert any("total 20.0" in o.get("text", "") for o in out.cells[2].outputs)
    # logs
    data, offset, ended = svc.read_log(run["run_id"], "make")
    assert b"argv ['--rows=5']" in data and ended and offset == len(data)
    assert b"total 20.0" in svc.read_log(run["run_id"], "use")[0]
    # tracking: parent run and one child per step, metrics logged by step code land in the child
    parent = store.get_run(run["run_id"])
    assert parent.info.status == "FINISHED" and parent.data.params == {"rows": "5", "scale": "2.0"}
    make = store.get_run(st["make"]["tracking_run_id"])
    use = store.get_run(st["use"]["tracking_run_id"])
    for child in (make, use):
        assert child.data.tags["mlflow.parentRunId"] == run["run_id"]
        assert child.info.status == "FINISHED" and child.info.end_time
    assert make.data.metrics["rows"].value == 5
    assert use.data.metrics["total"].value == 20.0 and use.data.params["scale"] == "2.0"
    names = {f.path for f in store.artifact_repo(use.info.artifact_uri).list()}
    assert {"output.ipynb", "step.log"} <= names


def test_failure_skips_dependents_other_branch_runs_and_retries(any_store, tmp_path):
    store = any_store
    write(
        str(tmp_path / "flaky.py"),
        """\
        import os
        n = int(open("count").read()) if os.path.exists("count") else 0
        open("count", "w").write(str(n + 1))
        print("attempt", n + 1)
        raise SystemExit(0 if n >= 1 else 3)
        """,
    )
    write(str(tmp_path / "bad.py"), "raise ValueError('boom')\n")
    write(str(tmp_path / "ok.py"), "print('ok')\n")
    write(
        str(tmp_path / "p.pipeline.yaml"),
        """\
        name: branches
        steps:
          flaky: {script: flaky.py, retries: 2}
          bad: {script: bad.py}
          after_bad: {script: ok.py, depends_on: [bad]}
          after_flaky: {script: ok.py, depends_on: [flaky]}
        """,
    )

    async def go(svc):
        run = await svc.submit("p.pipeline.yaml")
        run = await svc.wait(run["run_id"])
        return run, svc.read_log(run["run_id"], "flaky")[0], svc.read_log(run["run_id"], "bad")[0]

    run, flaky_log, bad_log = run_with_service(store, tmp_path, go)
    st = steps_of(run)
    assert run["status"] == "FAILED" and "bad" in run["reason"]
    assert st["flaky"]["status"] == "SUCCEEDED" and st["flaky"]["attempt"] == 2
    assert st["after_flaky"]["status"] == "SUCCEEDED"
    assert st["bad"]["status"] == "FAILED" and "exited with status 1" in st["bad"]["error"]
    assert st["after_bad"]["status"] == "SKIPPED"
    assert b"attempt 1/3 failed" in flaky_log and b"ValueError: boom" in bad_log
    assert store.get_run(st["bad"]["tracking_run_id"]).info.status == "FAILED"
    assert store.get_run(run["run_id"]).info.status == "FAILED"


def test_failed_notebook_cell_names_the_error_and_keeps_the_partial_notebook(store, tmp_path):
    write_notebook(str(tmp_path / "nb.ipynb"), None, "print('first')", "1/0", "print('never')")
    write(str(tmp_path / "p.pipeline.yaml"), "name: nbfail\nsteps:\n  nb: {notebook: nb.ipynb}\n")

    async def go(svc):
        return await svc.wait((await svc.submit("p.pipeline.yaml"))["run_id"])

    run = run_with_service(store, tmp_path, go)
    step = steps_of(run)["nb"]
    assert step["status"] == "FAILED" and "ZeroDivisionError" in step["error"]
    assert "cell 2" in step["error"] and step["has_notebook"]


def test_cancel_and_timeout_kill_the_whole_process_tree(store, tmp_path):
    write(
        str(tmp_path / "spawn.py"),
        """\
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open("child.pid", "w").write(str(child.pid))
        print("spawned", child.pid, flush=True)
        time.sleep(300)
        """,
    )
    write_notebook(
        str(tmp_path / "slow.ipynb"),
        None,
        """\
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(300)
        """,
    )
    write(
        str(tmp_path / "p.pipeline.yaml"),
        """\
        name: long
        steps:
          s: {script: spawn.py}
          n: {notebook: slow.ipynb}
          later: {script: spawn.py, depends_on: [s]}
        """,
    )
    # long enough for the script to start its child on a loaded machine, which the test checks
    write(
        str(tmp_path / "t.pipeline.yaml"),
        "name: timeout\nsteps:\n  s: {script: spawn.py, timeout: 10}\n",
    )

    async def pid_file(path):
        for _ in range(600):
            text = _text(path)
            if text:
                return int(text)
            await asyncio.sleep(0.1)
        raise AssertionError(f"{path} never written")

    async def go(svc):
        run = await svc.submit("p.pipeline.yaml")
        d = os.path.join(tmp_path / ".runs", run["run_id"], "steps")
        pids = [await pid_file(os.path.join(d, s, "work", "child.pid")) for s in ("s", "n")]
        cancelled = await svc.cancel(run["run_id"])
        timed = await svc.wait((await svc.submit("t.pipeline.yaml"))["run_id"])
        d2 = os.path.join(tmp_path / ".runs", timed["run_id"], "steps", "s", "work", "child.pid")
        return cancelled, pids, timed, int(_text(d2))

    cancelled, pids, timed, tpid = run_with_service(store, tmp_path, go)
    assert cancelled["status"] == "CANCELED"
    st = steps_of(cancelled)
    assert st["s"]["status"] == st["n"]["status"] == st["later"]["status"] == "CANCELED"
    for pid in pids:  # grandchildren of cancelled steps die too (SIGKILL lands asynchronously)
        wait_dead(pid)
    assert timed["status"] == "FAILED" and "timed out after 10 s" in steps_of(timed)["s"]["error"]
    wait_dead(tpid)
    assert store.get_run(cancelled["run_id"]).info.status == "KILLED"


def test_cache_hits_on_same_code_inputs_and_parameters_and_retry_reuses_successes(store, tmp_path):
    write(
        str(tmp_path / "gen.py"),
        """\
        import sys, time
        open("out.txt", "w").write(sys.argv[1] + str(time.time()))
        """,
    )
    write(str(tmp_path / "input.csv"), "a,b\n1,2\n")
    write(
        str(tmp_path / "fail_once.py"),
        """\
        import os
        flag = os.environ["FLAG"]
        if not os.path.exists(flag):
            open(flag, "w").write("x")
            raise SystemExit(1)
        print(open("out.txt").read())
        """,
    )
    write(
        str(tmp_path / "p.pipeline.yaml"),
        f"""\
        name: cached
        parameters: {{k: 1}}
        steps:
          gen: {{script: gen.py, cache: true, inputs: [input.csv], outputs: [out.txt],
                parameters: {{k: "{{{{ params.k }}}}"}}}}
          use: {{script: fail_once.py, depends_on: [gen], env: {{FLAG: "{tmp_path / "flag"}"}}}}
        """,
    )

    async def go(svc):
        r1 = await svc.wait((await svc.submit("p.pipeline.yaml"))["run_id"])
        r2 = await svc.wait((await svc.retry(r1["run_id"]))["run_id"])
        r3 = await svc.wait((await svc.submit("p.pipeline.yaml"))["run_id"])
        r4 = await svc.wait((await svc.submit("p.pipeline.yaml", parameters={"k": 2}))["run_id"])
        write(str(tmp_path / "input.csv"), "a,b\n1,3\n")
        r5 = await svc.wait((await svc.submit("p.pipeline.yaml"))["run_id"])
        return r1, r2, r3, r4, r5

    r1, r2, r3, r4, r5 = run_with_service(store, tmp_path, go)
    assert r1["status"] == "FAILED" and steps_of(r1)["gen"]["status"] == "SUCCEEDED"
    assert r2["status"] == "SUCCEEDED" and r2["retry_of"] == r1["run_id"]
    assert (
        steps_of(r2)["gen"]["status"] == "CACHED"
        and steps_of(r2)["gen"]["cached_from"] == r1["run_id"]
    )
    assert steps_of(r3)["gen"]["status"] == "CACHED"

    def out(r):
        return _text(tmp_path / ".runs" / r["run_id"] / "steps" / "gen" / "work" / "out.txt")

    assert out(r3) == out(r1)
    assert steps_of(r4)["gen"]["status"] == "SUCCEEDED" and out(r4) != out(r1)
    assert steps_of(r5)["gen"]["status"] == "SUCCEEDED"  # an input changed
    cached_child = store.get_run(steps_of(r3)["gen"]["tracking_run_id"])
    assert cached_child.data.tags["mlops.pipeline.cached_from"] == r1["run_id"]


def test_inputs_are_readable_at_their_paths_and_helpers_import(store, tmp_path):
    write(str(tmp_path / "data" / "raw.csv"), "a\n1\n2\n")
    write(str(tmp_path / "helpers.py"), "def double(x):\n    return 2 * x\n")
    write_notebook(
        str(tmp_path / "read.ipynb"),
        None,
        """\
        from helpers import double
        rows = open("data/raw.csv").read().split()[1:]
        print("sum", double(sum(map(int, rows))))
        """,
    )
    write(
        str(tmp_path / "p.pipeline.yaml"),
        "name: inputs\nsteps:\n  r: {notebook: read.ipynb, inputs: [data/raw.csv]}\n",
    )

    async def go(svc):
        run = await svc.wait((await svc.submit("p.pipeline.yaml"))["run_id"])
        return run, svc.read_log(run["run_id"], "r")[0]

    run, log = run_with_service(store, tmp_path, go)
    assert run["status"] == "SUCCEEDED", run
    assert b"sum 6" in log


def test_parallel_branches_run_at_the_same_time(store, tmp_path):
    # A rendezvous, not timestamps: each branch announces itself, then waits for the other.
    # Run one after the other, the first would wait in vain and fail.
    meet = tmp_path / "meet"
    meet.mkdir()
    write(
        str(tmp_path / "meet.py"),
        f"""\
        import os, sys, time
        args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
        me, other = args["me"], args["other"]
        open(os.path.join({str(meet)!r}, me), "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(os.path.join({str(meet)!r}, other)):
            if time.monotonic() > deadline:
                sys.exit(f"{{me}} never met {{other}}: the branches did not run at the same time")
            time.sleep(0.05)
        """,
    )
    write(
        str(tmp_path / "p.pipeline.yaml"),
        """\
        name: par
        steps:
          a: {script: meet.py, parameters: {me: a, other: b}}
          b: {script: meet.py, parameters: {me: b, other: a}}
        """,
    )

    async def go(svc):
        return await svc.wait((await svc.submit("p.pipeline.yaml"))["run_id"])

    run = run_with_service(store, tmp_path, go)
    assert run["status"] == "SUCCEEDED", run
    assert sorted(os.listdir(meet)) == ["a", "b"]


def test_unfinished_runs_of_a_dead_process_are_failed_on_start(store, tmp_path):
    write(str(tmp_path / "ok.py"), "print(1)\n")
    write(str(tmp_path / "p.pipeline.yaml"), "name: orphan\nsteps:\n  a: {script: ok.py}\n")

    async def submit_and_abandon(svc):
        row = await svc.ctx.call(svc._create, svc.load("p.pipeline.yaml"), {}, None, None, None)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: ASYNC220 - "pass" ends at once
        dead.wait()  # a pid of this machine that no longer runs
        await svc.ctx.call(
            lambda: svc.db.update_run(
                row["run_id"], status="RUNNING", executor=f"{socket.gethostname()}:{dead.pid}"
            )
        )
        await svc.ctx.call(
            lambda: svc.db.update_steps([(row["run_id"], "a", {"status": "RUNNING"})])
        )
        other = await svc.ctx.call(svc._create, svc.load("p.pipeline.yaml"), {}, None, None, None)
        await svc.ctx.call(
            lambda: svc.db.update_run(other["run_id"], status="RUNNING", executor="another-pod:12")
        )
        return row["run_id"], other["run_id"]

    run_id, elsewhere = run_with_service(store, tmp_path, submit_and_abandon)

    async def restart(svc):
        return await svc.get_run(run_id), await svc.get_run(elsewhere)

    run, other = run_with_service(store, tmp_path, restart)
    # a run of another machine sharing the database is left to that machine's server
    assert other["status"] == "RUNNING"
    assert run["status"] == "FAILED" and "interrupted" in run["reason"]
    assert steps_of(run)["a"]["status"] == "FAILED"
    assert store.get_run(run_id).info.status == "FAILED"
    assert json.dumps(run)  # serializable for REST


def test_idle_warm_kernels_are_shut_down(store, tmp_path):
    async def go(svc):
        await svc.warm()
        assert len(svc.ctx.pool._idle) == 1
        assert svc.drain_idle_kernels() == 0  # just used
        svc.ctx.pool.last_used -= 10_000
        return svc.drain_idle_kernels(), len(svc.ctx.pool._idle)

    drained, left = run_with_service(store, tmp_path, go, warm_kernels_idle_timeout=60.0)
    assert (drained, left) == (1, 0)


def test_cancel_from_another_process_reaches_the_executor(store, tmp_path):
    write(str(tmp_path / "sleep.py"), "import time\nprint('up', flush=True)\ntime.sleep(300)\n")
    write(
        str(tmp_path / "p.pipeline.yaml"), "name: remote-cancel\nsteps:\n  s: {script: sleep.py}\n"
    )
    env = dict(os.environ, JUPYTER_MLOPS_TRACKING_URI=store.uri)

    async def main():
        runner = PipelineService(
            store, str(tmp_path), env=env, runs_dir=str(tmp_path / ".runs"), warm_kernels=0
        )
        other = PipelineService(open_store(store.uri), str(tmp_path), env=env, warm_kernels=0)
        try:
            run = await runner.submit("p.pipeline.yaml")
            while (await runner.get_run(run["run_id"]))["steps"][0]["status"] != "RUNNING":  # noqa: ASYNC110 - the state is in the database
                await asyncio.sleep(0.1)
            asked = await other.cancel(run["run_id"])  # not its run: asks through the database
            assert asked["status"] == "CANCELING"
            return await runner.wait(run["run_id"])
        finally:
            await runner.stop()
            await other.stop()

    run = asyncio.run(main())
    assert run["status"] == "CANCELED" and run["steps"][0]["status"] == "CANCELED"
