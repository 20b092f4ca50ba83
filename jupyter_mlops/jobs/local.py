"""The local backend: a job's ``nodes x procs_per_node`` ranks as processes on this machine.

Each "node" is its own process group (its first rank leads it, the others join; a rank
that finds the group already gone, its members all ended, leads a new one), so a
node's processes and whatever they start (data loader workers) can be signalled as one,
as a pod's would be. Ranks write stdout and stderr straight to their own log file
(``logs/rank-<r>.log`` in the job's directory: no copying through this process, so
logging costs the training nothing), which the REST API reads from an offset or follows.

A rank that exits non-zero fails the attempt: the other ranks are stopped (SIGTERM, then
SIGKILL after ``grace`` seconds, descendants included), and the restart policy decides
whether the whole group starts again after a backoff (torchrun's and the Kubeflow
operators' model: a group restarts together). Cancel and a stopping server do the same
without a restart. Pids, process groups and start times of the ranks are recorded, so a
server that died without stopping its jobs kills what they left behind when it starts
again (:func:`kill_leftovers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any

from .._process import alive, descendants, proc_table
from .frameworks import Placement, cuda_visible, placements, rank_env, split_gpus
from .spec import MAX_BACKOFF, JobSpec

HOST = "127.0.0.1"


def now_ms() -> int:
    return int(time.time() * 1000)


def log_dir(job_dir: str) -> str:
    return os.path.join(job_dir, "logs")


def rank_log(job_dir: str, rank: int) -> str:
    return os.path.join(log_dir(job_dir), f"rank-{rank}.log")


def free_ports(n: int, host: str = HOST) -> list[int]:
    """``n`` distinct ports free right now (held together while chosen, so distinct)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def proc_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot): tells a process from
    a later one that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("utf-8", "replace")
        return int(stat[stat.rfind(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def group_members(pgid: int, since: int | None) -> list[int]:
    """Processes in process group ``pgid`` started at or after ``since`` (clock ticks)."""
    out: list[int] = []
    for pid, rest in proc_table():
        try:
            if int(rest[2]) == pgid and (since is None or int(rest[19]) >= since):
                out.append(pid)
        except (ValueError, IndexError):
            continue
    return out


def signal_all(pids: list[int], sig: int) -> None:
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, sig)


def kill_leftovers(ranks: list[dict[str, Any]]) -> list[int]:
    """Kill what recorded ranks left running (their pid still the same process, and the
    members of their node's process group started since); the pids killed."""
    victims: set[int] = set()
    for r in ranks:
        pid, start, pgid = r.get("pid"), r.get("pid_start"), r.get("pgid")
        if pid and alive(pid) and (start is None or proc_start_time(pid) == start):
            victims.add(pid)
            victims.update(descendants(pid))
        if pgid:
            victims.update(group_members(pgid, start))
    victims.discard(os.getpid())
    signal_all(sorted(victims), signal.SIGKILL)
    return sorted(victims)


# -- what a job's local execution reports ---------------------------------------------
@dataclass
class RankState:
    placement: Placement
    status: str = "PENDING"
    pid: int | None = None
    pgid: int | None = None
    pid_start: int | None = None
    exit_code: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    error: str | None = None

    @property
    def rank(self) -> int:
        return self.placement.rank

    def to_row(self) -> dict[str, Any]:
        p = self.placement
        return {
            "rank": p.rank,
            "node": p.node,
            "local_rank": p.local_rank,
            "status": self.status,
            "pid": self.pid,
            "pgid": self.pgid,
            "pid_start": self.pid_start,
            "exit_code": self.exit_code,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "error": self.error,
        }


@dataclass
class Recorder:
    """What a job's execution may do besides running processes: record the job's and its
    ranks' state, and note events in the job's log (the target binds these to its context)."""

    job: Callable[..., Awaitable[Any]]
    ranks: Callable[[list[dict[str, Any]]], Awaitable[Any]]
    event: Callable[[str], Awaitable[Any]]


def command(
    spec: JobSpec, params: dict[str, Any], job_dir: str, python: str = sys.executable
) -> list[str]:
    """The argv every rank runs."""
    args = list(spec.args)
    if spec.entry_kind == "script":
        path = spec.entry_path() or spec.entry
        flags = [f"--{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in params.items()]
        runner = [python, "-u"] if path.endswith(".py") else ["sh"]
        return [*runner, path, *args, *flags]
    entry = [python, "-u", "-m", "jupyter_mlops.jobs.entry"]
    if spec.entry_kind == "notebook":
        return [*entry, "notebook", spec.entry_path() or spec.entry, *args]
    if spec.entry_kind == "project":
        project = os.path.normpath(os.path.join(spec.base_dir, spec.entry))
        return [*entry, "project", project, spec.entry_point or "main", *args]
    if spec.entry_kind == "function":
        ref = spec.entry
        fpath = spec.entry_path()
        if fpath:
            ref = fpath + ":" + spec.entry.rsplit(":", 1)[1]
        return [*entry, "function", ref, *args]
    code = os.path.join(job_dir, "code.py")
    return [*entry, "code", code, *args]


class LocalJob:
    """One job's execution on this machine (its rows already exist)."""

    def __init__(
        self,
        job_id: str,
        spec: JobSpec,
        params: dict[str, Any],
        job_dir: str,
        base_env: dict[str, str],
        recorder: Recorder,
        gpus: list[str] | None = None,
        grace: float = 3.0,
        python: str = sys.executable,
    ) -> None:
        self.job_id = job_id
        self.spec = spec
        self.params = params
        self.job_dir = job_dir
        self.base_env = base_env
        self.rec = recorder
        self.gpus = list(gpus or [])
        self.grace = grace
        self.python = python
        self.ranks = [RankState(p) for p in placements(spec.nodes, spec.procs_per_node)]
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.attempt = 0
        self.cancelled = False
        self.interrupted: str | None = None
        self.done = asyncio.Event()
        self.final_status: str | None = None
        self.reason: str | None = None
        self._wake = asyncio.Event()
        self._deadline: float | None = None

    # -- control -----------------------------------------------------------------------
    def cancel(self, interrupted: str | None = None) -> None:
        """Stop every rank; the job ends CANCELED, or FAILED with ``interrupted`` (the
        server is stopping)."""
        if self.done.is_set() or self.cancelled:
            return
        self.cancelled = True
        self.interrupted = interrupted
        self._wake.set()

    # -- the attempts --------------------------------------------------------------------
    async def run(self) -> str:
        t0 = time.monotonic()
        if self.spec.timeout:
            self._deadline = t0 + self.spec.timeout
        try:
            status, reason = "FAILED", None
            while True:
                self.attempt += 1
                status, reason, codes = await self._attempt()
                if status != "FAILED" or self.cancelled or not self._may_restart(codes):
                    break
                delay = min(self.spec.backoff_seconds * 2 ** (self.attempt - 1), MAX_BACKOFF)
                await self.rec.event(
                    f"attempt {self.attempt} failed ({reason}); restarting in "
                    f"{delay:g} s ({self.attempt}/{self.spec.max_restarts} "
                    "restarts)"
                )
                await self.rec.job(status="RESTARTING", reason=reason)
                if await self._sleep(delay):
                    status, reason = self._stopped_status()
                    break
        except Exception as e:  # noqa: BLE001 - reported as the job's failure
            why = str(e) if isinstance(e, RankStartError) else f"{type(e).__name__}: {e}"
            await self._stop_all(f"internal error: {why}")
            status, reason = "FAILED", why
        if self.cancelled:
            status, reason = self._stopped_status()
        self.final_status, self.reason = status, reason
        self.done.set()
        return status

    def _stopped_status(self) -> tuple[str, str | None]:
        if self.interrupted:
            return "FAILED", self.interrupted
        return "CANCELED", "cancelled"

    def _may_restart(self, codes: list[int]) -> bool:
        if self.attempt > self.spec.max_restarts:
            return False
        policy = self.spec.restart_policy
        if policy == "OnFailure":
            return True
        if policy == "ExitCode":  # Kubeflow's: retry 128-255 (signals, OOM kills), not 1-127
            return bool(codes) and all(c < 0 or c >= 128 for c in codes)
        return False

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True when cancelled meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        return self.cancelled

    def _node_gpus(self) -> list[list[str]]:
        want = self.spec.resources.get("gpu")
        return (
            split_gpus(self.gpus, self.spec.nodes, want)
            if self.gpus
            else [[] for _ in range(self.spec.nodes)]
        )

    def _env(
        self, p: Placement, master_port: int, ports: list[int], node_gpus: list[list[str]]
    ) -> dict[str, str]:
        env = dict(self.base_env)
        env.update(self.spec.env)
        env.update(rank_env(self.spec.framework, p, HOST, master_port, ports))
        env.update(
            {
                "JUPYTER_MLOPS_JOB_ID": self.job_id,
                "JUPYTER_MLOPS_JOB_NAME": self.spec.name,
                "JUPYTER_MLOPS_JOB_RUN_ID": self.job_id,
                "JUPYTER_MLOPS_JOB_ATTEMPT": str(self.attempt),
                "JUPYTER_MLOPS_PARAMS": json.dumps(self.params, default=str),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for name in ("JUPYTER_MLOPS_RUN_ID", "MLFLOW_RUN_ID", "JUPYTER_MLOPS_JOB_LOG_RANKS"):
            env.pop(name, None)
        if self.spec.log_all_ranks:
            env["JUPYTER_MLOPS_JOB_LOG_RANKS"] = "all"
        if p.rank == 0:  # the official mlflow client logs there too
            env["MLFLOW_RUN_ID"] = self.job_id
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = cuda_visible(self.spec.framework, node_gpus[p.node], p)
        return env

    async def _attempt(self) -> tuple[str, str | None, list[int]]:
        """Start every rank, wait until all succeed or one fails; (status, reason, the
        failed ranks' exit codes)."""
        node_gpus = self._node_gpus()
        ports = free_ports(self.spec.world_size + 1)
        master, peer_ports = ports[0], ports[1:]
        argv = command(self.spec, self.params, self.job_dir, self.python)
        os.makedirs(log_dir(self.job_dir), exist_ok=True)
        for r in self.ranks:
            r.status, r.pid, r.pgid, r.pid_start = "PENDING", None, None, None
            r.exit_code, r.start_time, r.end_time, r.error = None, None, None, None
        self.procs = {}
        leaders: dict[int, int] = {}
        logs: list[IO[bytes]] = []
        try:
            for r in self.ranks:
                if self.cancelled:
                    break
                f = open(rank_log(self.job_dir, r.rank), "ab")  # noqa: SIM115, ASYNC230
                logs.append(f)
                if self.attempt > 1:
                    f.write(f"[jupyter-mlops] attempt {self.attempt}\n".encode())
                    f.flush()
                p = r.placement
                leader = leaders.get(p.node)
                env = self._env(p, master, peer_ports, node_gpus)
                try:
                    proc, pgid = await self._spawn(argv, env, f, leader)
                except OSError as e:
                    raise RankStartError(r.rank, e) from e
                leaders[p.node] = pgid
                self.procs[r.rank] = proc
                r.pid, r.pgid = proc.pid, pgid
                r.pid_start = proc_start_time(proc.pid)
                r.status, r.start_time = "RUNNING", now_ms()
        finally:
            for lf in logs:
                lf.close()  # the children hold their own descriptors
        await self.rec.ranks([r.to_row() for r in self.ranks])
        await self.rec.job(status="RUNNING", attempt=self.attempt)
        return await self._watch()

    async def _spawn(
        self, argv: list[str], env: dict[str, str], log: IO[bytes], leader: int | None
    ) -> tuple[asyncio.subprocess.Process, int]:
        """Start one rank in its node's process group; (the process, its group).

        The group is the node's first rank's. When every member has already exited and been
        reaped (a rank may end in milliseconds, and a loaded machine may take longer than
        that to start the next one), the group is gone and joining it fails with EPERM: the
        rank then leads a new group for its node (that failure once ended the whole job
        FAILED before its first attempt was recorded)."""

        def start(group: int | None) -> Awaitable[asyncio.subprocess.Process]:
            return asyncio.create_subprocess_exec(
                *argv,
                cwd=self.spec.base_dir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                **_group_kwargs(group),
            )

        if leader is not None:
            try:
                return await start(leader), leader
            except (PermissionError, subprocess.SubprocessError):  # (3.10: preexec_fn's)
                pass
        proc = await start(None)
        return proc, proc.pid

    async def _watch(self) -> tuple[str, str | None, list[int]]:
        waits = {asyncio.ensure_future(proc.wait()): rank for rank, proc in self.procs.items()}
        pending = set(waits)
        failed: list[tuple[int, int]] = []
        wake = asyncio.ensure_future(self._wake.wait())
        reason: str | None = None
        try:
            while pending:
                timeout = None
                if self._deadline is not None:
                    timeout = max(0.0, self._deadline - time.monotonic())
                done, _ = await asyncio.wait(
                    pending | {wake}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                changed = []
                for t in done:
                    if t is wake:
                        continue
                    pending.discard(t)
                    rank = waits[t]
                    code = t.result()
                    r = self.ranks[rank]
                    r.exit_code, r.end_time = code, now_ms()
                    if code == 0:
                        r.status = "SUCCEEDED"
                    else:
                        r.status = "FAILED"
                        r.error = _exit_text(code)
                        failed.append((rank, code))
                    changed.append(r)
                if changed:
                    await self.rec.ranks([r.to_row() for r in changed])
                if self.cancelled:
                    reason = self._stopped_status()[1]
                    break
                if failed:
                    rank, code = failed[0]
                    reason = f"rank {rank} {_exit_text(code)}"
                    break
                if not done:  # the deadline passed
                    reason = (
                        f"DeadlineExceeded: the job ran longer than its timeout "
                        f"({self.spec.timeout:g} s)"
                    )
                    failed.append((-1, -1))
                    break
        finally:
            wake.cancel()
        if pending:
            await self._stop_all(reason or "stopped")
            for t in pending:
                with contextlib.suppress(Exception):
                    await t
        if self.cancelled:
            return (*self._stopped_status(), [])
        if failed:
            return "FAILED", reason, [c for _, c in failed if c != -1]
        return "SUCCEEDED", None, []

    async def _stop_all(self, why: str) -> None:
        """SIGTERM every rank still running and its descendants, SIGKILL after ``grace``."""
        running = [
            r for r in self.ranks if r.rank in self.procs and self.procs[r.rank].returncode is None
        ]
        victims: set[int] = set()
        for r in running:
            victims.add(self.procs[r.rank].pid)
            victims.update(descendants(self.procs[r.rank].pid))
        groups = {r.pgid for r in self.ranks if r.pgid}
        signal_all(sorted(victims), signal.SIGTERM)
        for g in groups:
            with contextlib.suppress(OSError):
                os.killpg(g, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        procs = [self.procs[r.rank] for r in running]
        while time.monotonic() < deadline and (  # noqa: ASYNC110 - polls process exit; there is no event to wait on
            any(p.returncode is None for p in procs) or any(alive(v) for v in victims)
        ):
            await asyncio.sleep(0.05)
        for g in groups:  # whatever the ranks started in their node's group
            victims.update(group_members(g, None))
            with contextlib.suppress(OSError):
                os.killpg(g, signal.SIGKILL)
        signal_all(sorted(v for v in victims if alive(v)), signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(p.wait(), 10)
        t = now_ms()
        for r in running:
            r.exit_code = self.procs[r.rank].returncode
            r.status, r.end_time = "CANCELED", t
            r.error = why
        if running:
            await self.rec.ranks([r.to_row() for r in running])


class RankStartError(RuntimeError):
    """A rank's process could not be started (no such program, no memory, ...)."""

    def __init__(self, rank: int, error: OSError) -> None:
        super().__init__(f"rank {rank} could not start: {type(error).__name__}: {error}")
        self.rank = rank


def _group_kwargs(leader: int | None) -> dict[str, Any]:
    """Put a rank in its node's process group (a new one led by the node's first rank)."""
    pgid = 0 if leader is None else leader
    if sys.version_info >= (3, 11):
        return {"process_group": pgid}
    return {"preexec_fn": lambda: os.setpgid(0, pgid)}  # pragma: no cover - Python 3.10


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"
