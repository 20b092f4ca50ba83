"""``jupyter mlops spool list|replay|discard``: what the client could not deliver.

The client spools records it cannot deliver (the store unreachable, or the token
refused) under ``<spool root>/<hash of the tracking URI>/`` and replays them when a
later process logs to the same URI (see :mod:`.spool` and :mod:`.writer`). These
commands show those spools and replay or drop them on demand.

A replay takes each spool file with the spool's own lock (``flock``), exactly as
the automatic replay adopts files of gone processes: a file whose writer still
runs is left to it, and a file another process is replaying is waited for, so no
record is delivered twice by two replays. Records go through the client's writer
(:meth:`.writer.Writer.apply_left_over`), with the token of this environment.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._process import alive
from .spool import (
    URI_FILE,
    Record,
    SpoolFile,
    pending_records,
    read_reason,
    read_uri,
    spool_dir_for,
)

#: How long a replay waits for a file another process is replaying (it holds the lock).
WAIT_FOR_OTHER_REPLAY_S = 30.0


class SpoolCommandError(Exception):
    """A failure to report in one line (the CLI's exit status 1)."""


# -- what is spooled ------------------------------------------------------------------


@dataclass
class FileSummary:
    """The records of one spool file still waiting for delivery."""

    path: str
    batches: int = 0
    points: int = 0  # metric points
    params_tags: int = 0
    oldest_ms: int | None = None
    newest_ms: int | None = None
    reason: str | None = None
    #: The process writing the file when it still runs (it replays the file itself).
    writer_pid: int | None = None
    in_use: bool = False

    def add(self, record: Record) -> None:
        self.batches += 1
        stamps: list[int] = []
        if record.get("op") == "log":
            for column in (record.get("metrics") or {}).values():
                self.points += len(column[0])
                stamps.extend(int(t) for t in column[1])
            self.params_tags += len(record.get("params") or ()) + len(record.get("tags") or ())
        for key in ("start_time", "end_time"):
            if isinstance(record.get(key), int):
                stamps.append(record[key])
        if stamps:
            lo, hi = min(stamps), max(stamps)
            self.oldest_ms = lo if self.oldest_ms is None else min(self.oldest_ms, lo)
            self.newest_ms = hi if self.newest_ms is None else max(self.newest_ms, hi)


@dataclass
class SpoolSummary:
    """One tracking URI's spool directory."""

    directory: str
    uri: str | None
    files: list[FileSummary] = field(default_factory=list)

    @property
    def batches(self) -> int:
        return sum(f.batches for f in self.files)

    @property
    def points(self) -> int:
        return sum(f.points for f in self.files)


def spool_files(directory: str) -> list[str]:
    """A spool directory's files, oldest first (the automatic replay's order)."""
    return sorted(glob.glob(os.path.join(directory, "spool-*.jsonl")), key=_mtime)


def summarize_file(path: str) -> FileSummary:
    summary = FileSummary(path, reason=read_reason(path))
    try:
        for record in pending_records(path):
            summary.add(record)
    except FileNotFoundError:
        pass
    summary.in_use = _locked_by_another(path)
    pid = _writer_pid(path)
    if summary.in_use and pid is not None and alive(pid):
        summary.writer_pid = pid
    return summary


def scan(root: str, uri: str | None = None) -> list[SpoolSummary]:
    """The spools under ``root`` with records waiting (only ``uri``'s when given)."""
    if uri is not None:
        directories = [spool_dir_for(uri, root)]
    else:
        directories = sorted(glob.glob(os.path.join(root, "*", "")))
    spools = []
    for directory in directories:
        directory = directory.rstrip(os.sep)
        files = [summarize_file(p) for p in spool_files(directory)]
        files = [f for f in files if f.batches]
        if files:
            spools.append(SpoolSummary(directory, uri or read_uri(directory), files))
    return spools


# -- locking (the spool's own: flock on each file) ------------------------------------


def _writer_pid(path: str) -> int | None:
    """The pid in ``spool-<pid>-<random>.jsonl``."""
    parts = os.path.basename(path).split("-")
    return int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None


def _locked_by_another(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the lock
    return False


def take(path: str, wait_s: float = WAIT_FOR_OTHER_REPLAY_S) -> SpoolFile | str | None:
    """Lock a spool file for replaying or discarding it. Returns the locked file,
    None if it went away (another process replayed it), or why it cannot be taken:
    its writer still runs, or another replay kept it longer than ``wait_s``."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
    except FileNotFoundError:
        return None
    pid = _writer_pid(path)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if pid is not None and alive(pid):
                os.close(fd)
                return f"in use by running process {pid}, which replays it itself"
            if time.monotonic() >= deadline:
                os.close(fd)
                return "held by another process replaying it"
            time.sleep(0.2)  # another replay holds it: wait for its outcome
    if os.fstat(fd).st_nlink == 0:  # replayed and removed while we waited
        os.close(fd)
        return None
    return SpoolFile(path, fd)


# -- list -----------------------------------------------------------------------------


def _when(ms: int | None) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_list(args: argparse.Namespace) -> int:
    from .writer import spool_root

    root = spool_root()
    spools = scan(root, args.uri)
    if not spools:
        where = f" for {args.uri}" if args.uri else ""
        print(f"nothing spooled{where} (spool folder {root})")
        return 0
    for spool in spools:
        uri = spool.uri or "(tracking URI not recorded: spooled by an older jupyter-mlops)"
        print(f"{uri}\n  folder: {spool.directory}")
        for f in spool.files:
            state = ""
            if f.writer_pid is not None:
                state = f"; in use by running process {f.writer_pid}"
            elif f.in_use:
                state = "; being replayed by another process"
            print(
                f"  {os.path.basename(f.path)}: {f.batches} batches, {f.points} metric points, "
                f"{f.params_tags} params/tags; logged {_when(f.oldest_ms)} to "
                f"{_when(f.newest_ms)}; spooled because: {f.reason or 'not recorded'}{state}"
            )
        print(f"  total: {spool.batches} batches, {spool.points} metric points")
    return 0


# -- replay ---------------------------------------------------------------------------


class _RefusedRecords(logging.Handler):
    """Counts the records the store refused (the writer logs each one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "was refused" in record.getMessage():
            self.count += 1


@dataclass
class ReplayOutcome:
    delivered: int = 0
    points: int = 0
    left: int = 0  # batches still spooled
    problems: list[str] = field(default_factory=list)


def replay_spool(
    uri: str, directory: str, echo: Callable[[str], None], wait_s: float = WAIT_FOR_OTHER_REPLAY_S
) -> ReplayOutcome:
    """Deliver one spool's files, oldest first; stop at the first failure (later
    records may depend on earlier ones). Undelivered records stay spooled."""
    from .transient import is_transient
    from .uris import open_tracking_store
    from .writer import Writer, is_auth_refusal

    outcome = ReplayOutcome()
    writer: Any = None
    # The writer's own spool (unused: records that fail stay in their file) is private.
    scratch = tempfile.mkdtemp(prefix="mlops-spool-replay-")
    try:
        paths = spool_files(directory)
        for i, path in enumerate(paths):
            name = os.path.basename(path)
            sf = take(path, wait_s)
            if sf is None:
                continue
            if isinstance(sf, str):
                left = summarize_file(path).batches
                outcome.left += left
                outcome.problems.append(f"{name} ({left} batches) is {sf}")
                echo(f"{name}: skipped, {sf}")
                continue
            todo = FileSummary(path)
            for record in pending_records(path):
                todo.add(record)
            if not todo.batches:
                sf.remove()
                continue
            echo(f"{name}: replaying {todo.batches} batches ({todo.points} metric points)")
            if writer is None:
                writer = Writer(uri, open_tracking_store(uri), scratch)
            done = [0, 0]
            every = max(1, todo.batches // 10)

            def apply(
                record: Record,
                done: list[int] = done,
                todo: FileSummary = todo,
                every: int = every,
                writer: Writer = writer,
            ) -> None:
                writer.apply_left_over(record)
                count = FileSummary("")
                count.add(record)
                done[0] += 1
                done[1] += count.points
                if done[0] % every == 0 or done[0] == todo.batches:
                    echo(f"  {done[0]}/{todo.batches} batches")

            try:
                sf.replay(apply)
            except Exception as e:  # noqa: BLE001 - said below; the records stay
                os.close(sf.fd)  # unlocked, kept for a later replay
                outcome.delivered += done[0]
                outcome.points += done[1]
                remaining = sum(summarize_file(p).batches for p in paths[i:])
                outcome.left += remaining
                if is_auth_refusal(e):
                    why = f"the store refused the token: {e}"
                elif is_transient(e):
                    why = f"the store is unreachable: {e}"
                else:
                    why = f"{type(e).__name__}: {e}"
                outcome.problems.append(why)
                echo(f"{name}: stopped after {done[0]} batches; {why}")
                break
            sf.remove()
            outcome.delivered += done[0]
            outcome.points += done[1]
    finally:
        if writer is not None:
            writer.close()
        shutil.rmtree(scratch, ignore_errors=True)
    _drop_if_empty(directory)
    return outcome


def cmd_replay(args: argparse.Namespace) -> int:
    from .writer import spool_root

    root = spool_root()
    spools = scan(root, args.uri)
    if not spools:
        where = f" for {args.uri}" if args.uri else ""
        print(f"nothing to replay{where} (spool folder {root})")
        return 0
    refused = _RefusedRecords()
    logger = logging.getLogger("jupyter_mlops")
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("WARNING: %(message)s"))
    stderr.setLevel(logging.WARNING)
    logger.addHandler(refused)
    logger.addHandler(stderr)
    problems: list[str] = []
    delivered = left = 0
    try:
        for spool in spools:
            if spool.uri is None:
                problems.append(
                    f"{spool.directory} does not record its tracking URI: replay it with --uri"
                )
                left += spool.batches
                continue
            print(f"{spool.uri}: {spool.batches} batches waiting in {spool.directory}", flush=True)
            outcome = replay_spool(spool.uri, spool.directory, _echo)
            delivered += outcome.delivered
            left += outcome.left
            problems += [f"{spool.uri}: {p}" for p in outcome.problems]
            print(
                f"{spool.uri}: delivered {outcome.delivered} batches "
                f"({outcome.points} metric points)",
                flush=True,
            )
    finally:
        logger.removeHandler(refused)
        logger.removeHandler(stderr)
    if refused.count:
        problems.append(
            f"the store refused {refused.count} records (WARNING lines above): "
            "they cannot be delivered and were dropped"
        )
    if problems:
        more = f" (and {len(problems) - 1} more problems above)" if len(problems) > 1 else ""
        raise SpoolCommandError(
            f"{delivered} batches delivered, {left} still spooled for a later replay: "
            f"{problems[0]}{more}"
        )
    print(f"all {delivered} batches delivered")
    return 0


def _echo(line: str) -> None:
    print(line, flush=True)


# -- discard --------------------------------------------------------------------------


def cmd_discard(args: argparse.Namespace) -> int:
    from .writer import spool_root

    directory = spool_dir_for(args.uri, spool_root())
    spools = scan(spool_root(), args.uri)
    if not spools:
        print(f"nothing spooled for {args.uri}")
        _drop_if_empty(directory)
        return 0
    spool = spools[0]
    what = f"{spool.batches} batches ({spool.points} metric points) spooled for {args.uri}"
    if not args.yes:
        raise SpoolCommandError(f"this drops {what} for good: add --yes to do it")
    kept: list[str] = []
    dropped = 0
    for path in spool_files(directory):
        sf = take(path, wait_s=0)
        if isinstance(sf, str):
            kept.append(f"{os.path.basename(path)} is {sf}")
            continue
        if sf is not None:
            dropped += sum(1 for _ in pending_records(path))
            sf.remove()
    _drop_if_empty(directory)
    print(f"discarded {dropped} batches spooled for {args.uri}")
    if kept:
        raise SpoolCommandError(f"{len(kept)} spool files kept: {'; '.join(kept)}")
    return 0


def _drop_if_empty(directory: str) -> None:
    """Remove a spool directory left with nothing to replay (a writer that starts
    later makes it again)."""
    try:
        names = set(os.listdir(directory))
    except FileNotFoundError:
        return
    if names <= {URI_FILE}:
        try:
            os.unlink(os.path.join(directory, URI_FILE))
            os.rmdir(directory)
        except OSError:
            pass  # a writer just started using it


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


# -- the parser -----------------------------------------------------------------------


def add_subparsers(sub: Any) -> None:
    """Add ``spool list|replay|discard`` to ``jupyter mlops``."""
    spool = sub.add_parser(
        "spool",
        help="see, replay or discard what the client could not deliver",
        description="Records the client could not deliver (the tracking store unreachable, or "
        "its token refused) wait in a spool folder per tracking URI, replayed by the next "
        "process that logs to that URI. These commands show them and replay or drop them now.",
    )
    spool_sub = spool.add_subparsers(dest="spool_command", metavar="COMMAND")
    spool_sub.required = True
    uri_help = "only the spool of this tracking URI (default: every spool)"
    ls = spool_sub.add_parser(
        "list",
        help="show what is spooled",
        description="For each spool: its tracking URI and folder, and per file the batches and "
        "metric points waiting, when they were logged, and why they were spooled.",
    )
    ls.add_argument("--uri", metavar="URI", help=uri_help)
    ls.set_defaults(func=cmd_list)
    rp = spool_sub.add_parser(
        "replay",
        help="deliver what is spooled now, with this environment's token",
        description="Deliver spooled records now, oldest first, with the token in "
        "JUPYTER_MLOPS_TRACKING_TOKEN (or MLFLOW_TRACKING_TOKEN). Exits 0 when everything was "
        "delivered; otherwise 1, and what was not delivered stays spooled. Files of processes "
        "still running are left to them; a file another replay holds is waited for.",
    )
    rp.add_argument("--uri", metavar="URI", help=uri_help)
    rp.set_defaults(func=cmd_replay)
    dc = spool_sub.add_parser(
        "discard",
        help="drop a tracking URI's spool for good",
        description="Delete what is spooled for a tracking URI without delivering it. "
        "Files of processes still running are kept.",
    )
    dc.add_argument("--uri", metavar="URI", required=True, help="the tracking URI")
    dc.add_argument("--yes", action="store_true", help="really drop it (refused without)")
    dc.set_defaults(func=cmd_discard)
