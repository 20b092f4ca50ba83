"""``jupyter mlops job validate|run``.

* ``validate FILE``: every issue as ``file:line: field: message``; exit 0 when valid, 1 if not.
* ``run FILE [-p name=value ...] [--target NAME] [--logs]``: runs the job here (its ranks are
  processes of this machine), prints its progress (state changes of the job and its ranks;
  with ``--logs`` every rank's output prefixed ``[rank N]``) and waits; exit 0 when it
  succeeded, 1 if not, 130 when interrupted (the job is cancelled: no process is left).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import IO, Any

from ..cli_common import describe_params, report_issues, workspace_root


def add_subparsers(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "job",
        help="validate or run a training job (*.job.yaml)",
        description="Validate or run a distributed training job file, tracked in the store.",
    )
    sub = p.add_subparsers(dest="job_command", metavar="COMMAND")
    sub.required = True
    v = sub.add_parser("validate", help="check a job file (issues name file, line, field)")
    v.add_argument("file", metavar="FILE")
    v.add_argument(
        "--root",
        metavar="DIR",
        help="workspace root paths may not leave "
        "(default: the current directory, or the file's own if it is outside)",
    )
    v.set_defaults(func=run)
    r = sub.add_parser("run", help="run a job here and wait for it, with progress")
    r.add_argument("file", metavar="FILE")
    r.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a job parameter (repeat for several)",
    )
    r.add_argument(
        "--target",
        metavar="NAME",
        default="local",
        help="where to run: 'local' (default: processes of this machine)",
    )
    r.add_argument(
        "--logs",
        action="store_true",
        help="print every rank's output as it comes, prefixed [rank N]",
    )
    r.add_argument("--root", metavar="DIR", help="workspace root (see validate)")
    r.add_argument(
        "--database-url",
        metavar="URL",
        help="the store (default: $JUPYTER_MLOPS_TRACKING_URI when it is a database, "
        "else the default store)",
    )
    r.add_argument("--jobs-dir", metavar="DIR", help="where the ranks' logs go")
    r.add_argument(
        "--parent-run-id",
        metavar="RUN_ID",
        help="make the job's tracked run a child of this run (a pipeline's train "
        "step passes its own)",
    )
    r.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.job_command == "validate":
        return _validate(args)
    return _run(args)


def _validate(args: argparse.Namespace) -> int:
    from .spec import JobInvalid, load_job

    try:
        job = load_job(args.file, root=workspace_root(args.file, args.root))
    except JobInvalid as e:
        return report_issues(args.file, e.issues)
    params = describe_params(job.params)
    print(
        f"{args.file}: valid job {job.name!r}: {job.framework}, {job.nodes} node(s) x "
        f"{job.procs_per_node} process(es), {job.entry_kind} "
        f"{job.entry if job.entry_kind != 'code' else '(inline)'}"
        + (f"; parameters: {params}" if params else "")
    )
    return 0


class Progress:
    """Feed it successive snapshots of a job (the REST shape); it prints what changed."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.t0 = time.monotonic()
        self.job_state: tuple[str, int] | None = None
        self.ranks: dict[int, str] = {}

    def _line(self, text: str) -> None:
        self.out.write(f"[{time.monotonic() - self.t0:6.1f}s] {text}\n")

    def update(self, job: dict[str, Any]) -> None:
        ranks = job["ranks"]
        for r in ranks:
            if self.ranks.get(r["rank"]) == r["status"] or r["status"] == "PENDING":
                continue
            self.ranks[r["rank"]] = r["status"]
            if r["status"] in ("FAILED",) or (
                r["status"] == "CANCELED" and r.get("error") and job["status"] not in ("CANCELED",)
            ):
                self._line(
                    f"rank {r['rank']} (node {r['node']}): {r['status']}"
                    + (f": {r['error']}" if r.get("error") else "")
                )
        state = (job["status"], job.get("attempt") or 0)
        if state != self.job_state:
            self.job_state = state
            running = sum(1 for r in ranks if r["status"] == "RUNNING")
            extra = ""
            if job["status"] == "RUNNING":
                extra = f": {running}/{len(ranks)} ranks running"
                if state[1] > 1:
                    extra += f" (attempt {state[1]})"
            elif job["status"] == "RESTARTING" and job.get("reason"):
                extra = f": {job['reason']}"
            self._line(f"job {job['name']}: {job['status']}{extra}")
        self.out.flush()

    @staticmethod
    def summary(job: dict[str, Any]) -> str:
        dur = f" in {job['duration_ms'] / 1000:.1f} s" if job.get("duration_ms") else ""
        reason = f" ({job['reason']})" if job.get("reason") and job["status"] != "SUCCEEDED" else ""
        return f"job {job['name']} {job['job_id']}: {job['status']}{dur}{reason}"


class LogPrinter:
    """Every rank's new output, line by line, prefixed ``[rank N]``."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.offsets: dict[int, int] = {}
        self.partial: dict[int, bytes] = {}

    def feed(self, rank: int, data: bytes, final: bool = False) -> None:
        buf = self.partial.pop(rank, b"") + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        if final and rest:
            lines.append(rest)
            rest = b""
        if rest:
            self.partial[rank] = rest
        for line in lines:
            self.out.write(f"[rank {rank}] {line.decode('utf-8', 'replace')}\n")
        self.out.flush()


def _run(args: argparse.Namespace) -> int:
    from ..cli_common import resolve_store, server_config
    from ..paramspec import ParameterError, parse_assignments
    from ..tracking import open_store
    from ..tracking.errors import TrackingError
    from .db import JOB_TERMINAL
    from .service import JobError, TrainingService

    try:
        given = parse_assignments(args.param)
    except ParameterError as e:
        print(f"jupyter mlops job run: {e}", file=sys.stderr)
        return 2
    url, artifact_root = resolve_store(args.database_url, None)
    store = open_store(url, artifact_root=artifact_root)
    root = workspace_root(args.file, args.root)
    env = dict(os.environ, JUPYTER_MLOPS_TRACKING_URI=url)
    cfg: dict[str, Any] = {}
    if args.jobs_dir:
        cfg["jobs_dir"] = os.path.abspath(args.jobs_dir)
    path = os.path.abspath(args.file)

    async def main() -> int:
        # the server's configuration: its Kubernetes targets (c.TrainingService.targets)
        svc = TrainingService(store, root, env=env, config=server_config(), **cfg)
        await svc.start()
        job_id = None
        target = args.target or "local"
        if target not in svc.all_targets and target not in svc.target_errors:
            known = ", ".join(svc.all_targets)
            print(
                f"jupyter mlops job run: no target {target!r} (configured: {known}). Without a "
                "running server this command reads the server's configuration: define it as "
                "c.TrainingService.targets in jupyter_server_config.py (or .json) in a directory "
                "of `jupyter --paths` (config), or submit through the server.",
                file=sys.stderr,
            )
            await svc.stop()
            return 1
        try:
            try:
                job = await svc.submit(
                    path,
                    parameters=given,
                    target=target,
                    parent_run_id=args.parent_run_id,
                )
            except JobError as e:
                for issue in e.issues:
                    print(str(issue), file=sys.stderr)
                return 1
            except TrackingError as e:
                print(f"jupyter mlops job run: {e.message}", file=sys.stderr)
                return 1
            job_id = job["job_id"]
            print(
                f"job {job['name']}: {job_id} started: {job['framework']}, {job['nodes']} "
                f"node(s) x {job['procs_per_node']} process(es) (tracked run {job['run_id']})",
                flush=True,
            )
            local = svc.active.get(job_id)
            if local is not None:  # `kill` (SIGTERM) must not leave rank processes behind
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    asyncio.get_running_loop().add_signal_handler(
                        signal.SIGTERM, local.cancel, "interrupted: the CLI was terminated"
                    )
            progress = Progress()
            logs = LogPrinter() if args.logs else None
            while True:
                job = await svc.get_job(job_id)
                # a cluster job is followed by its target's watcher, not run here
                ended = job["status"] in JOB_TERMINAL and job_id not in svc.active
                if logs is not None:
                    for r in job["ranks"]:
                        off = logs.offsets.get(r["rank"], 0)
                        data, nxt, _ = await svc.read(svc.read_log, job_id, r["rank"], off)
                        logs.offsets[r["rank"]] = nxt
                        if data or ended:
                            logs.feed(r["rank"], data, final=ended)
                progress.update(job)
                if ended:
                    break
                await asyncio.sleep(0.25)
            print(progress.summary(job), flush=True)
            return 0 if job["status"] == "SUCCEEDED" else 1
        except asyncio.CancelledError:
            if job_id:
                with contextlib.suppress(Exception):  # ended meanwhile
                    await svc.cancel(job_id)
            raise
        finally:
            await svc.stop()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        print("jupyter mlops job run: interrupted; the job was cancelled", file=sys.stderr)
        return 130
    finally:
        store.close()
