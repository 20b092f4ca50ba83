"""Running one step: notebooks on pre-started kernels through nbclient, scripts
as subprocesses; output streamed to the step's log file as it arrives.

Each notebook step gets a fresh kernel (no state leaks between steps), taken
from a :class:`KernelPool` that starts kernels ahead of need so a step does not
pay the ~0.7 s kernel start-up. The source notebook is only read; the executed
copy (with a papermill-style ``injected-parameters`` cell) is written next to
the log, after every cell, so progress can be read while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

from .proctree import kill_tree

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """The step ran and failed (its message is what the user sees)."""


# -- kernels ---------------------------------------------------------------------------
class KernelPool:
    """Kernels started ahead of need, each used for one step only."""

    def __init__(
        self, size: int, env: Mapping[str, str], cwd: str, kernel_name: str = "python3"
    ) -> None:
        self.size = max(0, size)
        self.env = dict(env)
        self.cwd = cwd
        self.kernel_name = kernel_name
        self._idle: list[Any] = []
        self._starting: set[asyncio.Task[Any]] = set()
        self._stopping: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: When a kernel was last asked for (monotonic): idle pools are drained.
        self.last_used = time.monotonic()

    async def _start(self, kernel_name: str) -> Any:
        from jupyter_client.manager import AsyncKernelManager

        os.makedirs(self.cwd, exist_ok=True)
        km = AsyncKernelManager(kernel_name=kernel_name)
        # the kernel's own chatter (not the steps' output) goes to a file, not our terminal
        with open(os.path.join(self.cwd, "kernels.log"), "ab") as out:  # noqa: ASYNC230
            await km.start_kernel(env=dict(self.env), cwd=self.cwd, stdout=out, stderr=out)
        # connect ahead too: wait_for_ready costs 0.2-0.5 s (it also drains IOPub)
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
        except BaseException:
            kc.stop_channels()
            with contextlib.suppress(Exception):
                await km.shutdown_kernel(now=True)
            raise
        km.mlops_client = kc  # type: ignore[attr-defined]  # the pool's ready client rides along
        return km

    def fill(self, want: int | None = None) -> None:
        """Start kernels in the background until ``want`` (default: size) are idle or starting."""
        want = self.size if want is None else min(want, max(self.size, want))
        self.last_used = time.monotonic()
        while not self._closed and len(self._idle) + len(self._starting) < want:
            task = asyncio.ensure_future(self._start(self.kernel_name))
            self._starting.add(task)
            task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task[Any]) -> None:
        self._starting.discard(task)
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.warning("jupyter-mlops: starting a kernel failed: %s", task.exception())
            return
        km = task.result()
        if self._closed:
            self.release(km)
        else:
            self._idle.append(km)

    async def acquire(self, kernel_name: str | None = None) -> Any:
        """A started kernel; the pool starts a replacement right away."""
        name = kernel_name or self.kernel_name
        self.last_used = time.monotonic()
        if name != self.kernel_name:
            return await self._start(name)
        try:
            while not self._idle:
                if not self._starting:
                    self.fill(max(1, self.size))
                await asyncio.wait(set(self._starting), return_when=asyncio.FIRST_COMPLETED)
                if not self._idle and not self._starting:
                    return await self._start(name)  # starting failed: say why
            km = self._idle.pop(0)
        finally:
            self.fill()
        if not km.has_kernel or not await km.is_alive():
            return await self._start(name)
        return km

    def release(self, km: Any, now: bool = False) -> asyncio.Task[Any]:
        """Shut a used kernel down in the background (gracefully: its atexit hooks run)."""

        async def stop() -> None:
            kc = getattr(km, "mlops_client", None)
            if kc is not None:
                with contextlib.suppress(Exception):
                    kc.stop_channels()
            try:
                await asyncio.wait_for(km.shutdown_kernel(now=now), 10)
            except Exception:  # noqa: BLE001 - a kernel that will not stop is killed
                kill_tree(kernel_pid(km))

        task = asyncio.ensure_future(stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        return task

    def drain(self) -> int:
        """Shut the idle kernels down (started ones join later); how many went."""
        idle, self._idle = self._idle, []
        for km in idle:
            self.release(km, now=True)
        return len(idle)

    async def close(self) -> None:
        self._closed = True
        if self._starting:  # their callback releases them (closed)
            await asyncio.wait(set(self._starting), timeout=30)
        idle, self._idle = self._idle, []
        for km in idle:
            self.release(km, now=True)
        if self._stopping:
            await asyncio.wait(set(self._stopping), timeout=15)


def kernel_pid(km: Any) -> int | None:
    prov = getattr(km, "provisioner", None)
    proc = getattr(prov, "process", None)
    return getattr(proc, "pid", None)


# -- parameters ------------------------------------------------------------------------
def inject_parameters(nb: Any, params: Mapping[str, Any]) -> None:
    """papermill's placement: replace an ``injected-parameters`` cell, else insert
    one right after the first ``parameters``-tagged cell, else at the top."""
    import nbformat

    if not params:
        return
    lines = ["# Parameters"] + [f"{k} = {python_literal(v)}" for k, v in params.items()]
    cell = nbformat.v4.new_code_cell(
        "\n".join(lines) + "\n", metadata={"tags": ["injected-parameters"]}
    )
    cells = nb.cells
    for i, c in enumerate(cells):
        if "injected-parameters" in (c.get("metadata", {}).get("tags") or []):
            cells[i] = cell
            break
    else:
        idx = next(
            (
                i + 1
                for i, c in enumerate(cells)
                if "parameters" in (c.get("metadata", {}).get("tags") or [])
            ),
            0,
        )
        cells.insert(idx, cell)
    nb.metadata.setdefault("jupyter_mlops", {})["parameters"] = dict(params)


def python_literal(value: Any) -> str:
    """A Python expression for a JSON-like value (``true`` → ``True``)."""
    if isinstance(value, (bool, type(None), int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            return f"float({str(value)!r})"
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{python_literal(str(k))}: {python_literal(v)}" for k, v in value.items())
            + "}"
        )
    return repr(str(value))


# -- notebooks ---------------------------------------------------------------------------
def _client_class() -> type:
    from nbclient import NotebookClient

    class StepClient(NotebookClient):  # type: ignore[misc]
        """nbclient that also writes each output to the step's log as it arrives."""

        log_file: IO[str] | None = None

        def output(self, outs: Any, msg: dict[str, Any], display_id: Any, cell_index: int) -> Any:
            out = super().output(outs, msg, display_id, cell_index)
            f = self.log_file
            if f is not None:
                t = msg["msg_type"]
                c = msg["content"]
                if t == "stream":
                    f.write(c.get("text", ""))
                elif t == "error":
                    f.write(
                        "\n".join(c.get("traceback") or [f"{c.get('ename')}: {c.get('evalue')}"])
                        + "\n"
                    )
                elif t == "execute_result":
                    f.write(str(c.get("data", {}).get("text/plain", "")) + "\n")
                f.flush()
            return out

    return StepClient


async def _silent(kc: Any, code: str) -> None:
    reply = await kc.execute_interactive(code, silent=True, store_history=False, timeout=60)
    if reply["content"].get("status") != "ok":
        c = reply["content"]
        raise StepFailed(f"kernel set-up failed: {c.get('ename')}: {c.get('evalue')}")


def _preamble(cwd: str, env: Mapping[str, str], source_dir: str) -> str:
    """Environment, working directory, and the notebook's own directory on
    ``sys.path`` (helper modules next to it import as they do in JupyterLab)."""
    return (
        "import os as _o, sys as _s\n"
        f"_o.environ.update({json.dumps(dict(env))})\n"
        f"_o.chdir({cwd!r})\n"
        f"_s.path.insert(0, {source_dir!r})\n"
        "del _o, _s\n"
    )


#: Runs after the last cell: end runs the step's code left active (they are the
#: step's tracked run) and wait until everything it logged is durable.
POSTAMBLE = """\
import sys as _s
_f = _s.modules.get("jupyter_mlops.client.fluent")
if _f is not None:
    try:
        while _f.active_run() is not None:
            _f.end_run()
        _f.flush()
    except Exception as _e:
        print("jupyter-mlops:", _e, file=_s.stderr)
_f = _s.modules.get("mlflow")  # the official client resumed MLFLOW_RUN_ID the same way
if _f is not None and hasattr(_f, "active_run"):
    try:
        while _f.active_run() is not None:
            _f.end_run()
    except Exception as _e:
        print("mlflow:", _e, file=_s.stderr)
del _s, _f
"""


async def run_notebook(
    pool: KernelPool,
    source: str,
    output: str,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: str,
    log_file: IO[str],
    kernel_name: str | None = None,
) -> None:
    """Execute a copy of ``source`` with ``params`` on a pooled kernel; the executed
    notebook goes to ``output`` (after every cell and at the end, failed or not)."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(source, as_version=4)
    inject_parameters(nb, params)
    name = kernel_name or (nb.metadata.get("kernelspec") or {}).get("name") or None
    km = await pool.acquire(name)
    kc = km.mlops_client  # connected and ready (see KernelPool._start)
    pid = kernel_pid(km)
    client = _client_class()(
        nb, km=km, kernel_name=km.kernel_name, timeout=None, resources={"metadata": {"path": cwd}}
    )
    client.log_file = log_file
    finished = False

    def save() -> None:
        tmp = output + ".tmp"
        nbformat.write(client.nb, tmp)
        os.replace(tmp, output)

    try:
        await _silent(kc, _preamble(cwd, env, os.path.dirname(os.path.abspath(source))))  # noqa: ASYNC240 - abspath of the notebook path, once
        client.kc = kc
        client.reset_execution_trackers()
        msg_id = kc.kernel_info()
        info = await client.async_wait_for_reply(msg_id)
        if info is not None and "language_info" in info["content"]:
            nb.metadata["language_info"] = info["content"]["language_info"]
        last_save = 0.0
        for index, cell in enumerate(nb.cells):
            try:
                await client.async_execute_cell(
                    cell, index, execution_count=client.code_cells_executed + 1
                )
            except CellExecutionError as e:
                raise StepFailed(f"cell {index + 1}: {e.ename}: {e.evalue}") from None
            if time.monotonic() - last_save > 0.5:  # progress readable on disk
                await asyncio.to_thread(save)
                last_save = time.monotonic()
        client.set_widgets_metadata()
        await _silent(kc, POSTAMBLE)
        finished = True
    except asyncio.CancelledError:
        kill_tree(pid)
        raise
    except (RuntimeError, TimeoutError) as e:
        task = asyncio.current_task()
        cancelling = sys.version_info >= (3, 11) and task is not None and task.cancelling()
        if cancelling:  # nbclient turned our cancel into an error
            kill_tree(pid)
            raise asyncio.CancelledError() from None
        if isinstance(e, StepFailed):
            raise
        raise StepFailed(f"kernel error: {e}") from None
    finally:
        with contextlib.suppress(Exception):
            kc.stop_channels()
        with contextlib.suppress(Exception):
            save()
        if finished:
            pool.release(km)
        else:  # failed, timed out or cancelled: the whole tree goes, now
            kill_tree(pid)
            pool.release(km, now=True)


# -- scripts -----------------------------------------------------------------------------
async def run_command(
    argv: list[str],
    env: Mapping[str, str],
    cwd: str,
    log_file: IO[str],
    grace: float | None = None,
) -> int:
    """Run a step's command in a session of its own, its output into the step's log; its
    exit status. Cancelled: with ``grace``, SIGTERM and that many seconds to stop (a command
    that stops its own processes, a job's ranks, an entry point's group), then the whole
    process tree is killed; without, the tree is killed at once."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log_file,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        return await proc.wait()
    except asyncio.CancelledError:
        if grace is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except Exception:  # noqa: BLE001 - it would not stop: the whole tree goes
                kill_tree(proc.pid)
        else:
            kill_tree(proc.pid)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
        raise


def script_command(path: str, params: Mapping[str, Any], args: list[str]) -> list[str]:
    """``.py`` with this Python, ``.sh`` with ``sh``; parameters as ``--name=value``."""
    flags = [f"--{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in params.items()]
    runner = [sys.executable, "-u"] if path.endswith(".py") else ["sh"]
    return [*runner, path, *args, *flags]


def train_command(
    job_file: str, params: Mapping[str, Any], env: Mapping[str, str], cwd: str, root: str
) -> list[str]:
    """``jupyter mlops job run`` of a ``train:`` step: the job's ranks run through the local
    training backend in that process, every rank's output in the step's log (``[rank N]``);
    its tracked run is a child of the step's (``--parent-run-id``)."""
    cmd = [
        sys.executable,
        "-m",
        "jupyter_mlops.cli",
        "job",
        "run",
        job_file,
        "--logs",
        "--root",
        root,
        "--jobs-dir",
        os.path.join(cwd, "jobs"),
    ]
    uri = env.get("JUPYTER_MLOPS_TRACKING_URI", "")
    if uri.startswith(("sqlite:", "postgresql", "postgres:")):
        cmd += ["--database-url", uri]
    if env.get("JUPYTER_MLOPS_RUN_ID"):
        cmd += ["--parent-run-id", env["JUPYTER_MLOPS_RUN_ID"]]
    for k, v in params.items():
        cmd += ["-p", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    return cmd


async def run_train(
    job_file: str,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: str,
    log_file: IO[str],
    root: str,
) -> None:
    # SIGTERM first on cancel: the job command stops its ranks (no process left)
    code = await run_command(
        train_command(job_file, params, env, cwd, root), env, cwd, log_file, grace=30
    )
    if code != 0:
        raise StepFailed(
            f"training job {os.path.basename(job_file)} did not succeed "
            f"(status {code}; its ranks' output is in this log)"
        )


def project_command(
    uri: str,
    entry_point: str | None,
    version: str | None,
    env_manager: str | None,
    params: Mapping[str, Any],
    env: Mapping[str, str],
) -> list[str]:
    """``jupyter mlops run`` of a ``project:`` step, into the step's tracked run
    (``--run-id``): the project's tags and parameters are added to it."""
    cmd = [sys.executable, "-m", "jupyter_mlops.cli", "run", uri]
    cmd += ["-e", entry_point or "main"]
    if version:
        cmd += ["--version", version]
    if env_manager:
        cmd += ["--env-manager", env_manager]
    if env.get("JUPYTER_MLOPS_RUN_ID"):
        cmd += ["--run-id", env["JUPYTER_MLOPS_RUN_ID"]]
    for k, v in params.items():
        cmd += ["-P", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    return cmd


async def run_project(
    uri: str,
    entry_point: str | None,
    version: str | None,
    env_manager: str | None,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: str,
    log_file: IO[str],
) -> None:
    log_file.flush()
    # SIGTERM first on cancel: `jupyter mlops run` stops the entry point's process group
    code = await run_command(
        project_command(uri, entry_point, version, env_manager, params, env),
        env,
        cwd,
        log_file,
        grace=30,
    )
    if code != 0:
        raise StepFailed(f"project {uri} ({entry_point or 'main'}) exited with status {code}")


async def run_script(
    path: str,
    params: Mapping[str, Any],
    args: list[str],
    env: Mapping[str, str],
    cwd: str,
    log_file: IO[str],
) -> None:
    code = await run_command(script_command(path, params, args), env, cwd, log_file)
    if code != 0:
        raise StepFailed(f"{os.path.basename(path)} exited with status {code}")
