"""The local spool: an append-only file of write records that could not reach
the store, replayed in order when it is back.

One directory per tracking URI (``<spool root>/<sha1(uri)[:16]>/``) so a
process never replays another store's records. Each process appends to its own
``spool-<pid>-<rand>.jsonl``, held under an exclusive ``flock`` while the
process lives; a ``.pos`` file beside it records how many bytes have been
replayed, so a crash mid-replay resumes after the last applied record (a
record in flight at the crash may be applied twice: at-least-once).

A later process adopts spool files whose lock is free (their writer is gone)
and replays them before its own.

For ``jupyter mlops spool``, the directory's ``uri`` file names the tracking URI
(the directory name is a hash of it), and a ``.why`` file beside a spool file
says why its records were spooled (:data:`UNREACHABLE` or :data:`TOKEN_REFUSED`).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

Record = dict[str, Any]

#: Why records were spooled (the ``.why`` file beside a spool file).
UNREACHABLE = "unreachable"
TOKEN_REFUSED = "token refused"
URI_FILE = "uri"


def spool_dir_for(uri: str, root: str) -> str:
    return os.path.join(root, hashlib.sha1(uri.encode()).hexdigest()[:16])


class SpoolFile:
    """One spool file: appended by its owner, replayed by whoever holds its lock."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd  # holds the flock; opened read+append
        self.pos_path = path[: -len(".jsonl")] + ".pos"
        self.why_path = path[: -len(".jsonl")] + ".why"
        self._why: str | None = None  # what this process last wrote there
        self.read_pos = _read_pos(self.pos_path)
        self.size = os.fstat(fd).st_size

    @property
    def pending(self) -> bool:
        return self.read_pos < self.size

    def append(self, record: Record) -> None:
        line = (json.dumps(record, allow_nan=True, separators=(",", ":")) + "\n").encode()
        os.write(self.fd, line)  # O_APPEND: one write per record
        self.size += len(line)

    def note_reason(self, reason: str) -> None:
        """Record why the records are spooled (written when it changes)."""
        if reason != self._why:
            _write_small_file(self.why_path, reason)
            self._why = reason

    def sync(self) -> None:
        os.fsync(self.fd)

    def replay(self, apply: Callable[[Record], None]) -> None:
        """Apply records from the replay position on; stop (raising) at the
        first failure so the order is kept. A torn last line is skipped."""
        with open(self.path, "rb") as f:
            f.seek(self.read_pos)
            for line in f:
                if not line.endswith(b"\n"):
                    # a torn write (crash, full disk): never acknowledged, and
                    # it must not block the records after it forever
                    self.read_pos = self.size
                    break
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if record is not None:
                    apply(record)
                self.read_pos += len(line)
                _write_pos(self.pos_path, self.read_pos)
        if self.read_pos >= self.size:
            self.reset()

    def reset(self) -> None:
        """Everything replayed: empty the file so it does not grow forever."""
        os.ftruncate(self.fd, 0)
        self.size = self.read_pos = 0
        _write_pos(self.pos_path, 0)
        _unlink(self.why_path)
        self._why = None

    def remove(self) -> None:
        for p in (self.path, self.pos_path, self.why_path):
            _unlink(p)
        os.close(self.fd)


class Spool:
    """This process's spool for one tracking URI, plus adopted orphans."""

    def __init__(self, directory: str, uri: str | None = None) -> None:
        self.directory = directory
        self.uri = uri  # recorded in the directory for `jupyter mlops spool list`
        self._own: SpoolFile | None = None
        self._orphans: list[SpoolFile] = []

    @property
    def pending(self) -> bool:
        return any(f.pending for f in self._orphans) or bool(self._own and self._own.pending)

    def _own_file(self) -> SpoolFile:
        if self._own is None:
            os.makedirs(self.directory, exist_ok=True)
            if self.uri and not os.path.exists(os.path.join(self.directory, URI_FILE)):
                _write_small_file(os.path.join(self.directory, URI_FILE), self.uri)
            path = os.path.join(self.directory, f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._own = SpoolFile(path, fd)
        return self._own

    def append(self, record: Record, reason: str | None = None) -> None:
        """Spool a record; ``reason`` (:data:`UNREACHABLE`, :data:`TOKEN_REFUSED`)
        when the store just failed, None when earlier records still wait."""
        own = self._own_file()
        if reason is not None:
            own.note_reason(reason)
        own.append(record)

    def note_reason(self, reason: str) -> None:
        """Why our records wait now (the store refused a replay, say)."""
        if self._own is not None and self._own.size:
            self._own.note_reason(reason)

    def sync(self) -> None:
        if self._own is not None and self._own.size:
            self._own.sync()

    def adopt_orphans(self) -> int:
        """Take over spool files left by processes that are gone; returns how
        many have records to replay."""
        if not os.path.isdir(self.directory):
            return 0
        mine = {f.path for f in self._orphans}
        if self._own is not None:
            mine.add(self._own.path)
        for path in sorted(glob.glob(os.path.join(self.directory, "spool-*.jsonl")), key=_mtime):
            if path in mine:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # its writer is alive (or another process adopted it)
                continue
            sf = SpoolFile(path, fd)
            if sf.pending:
                self._orphans.append(sf)
            else:
                sf.remove()
        return len(self._orphans)

    def replay(
        self, apply: Callable[[Record], None], apply_orphan: Callable[[Record], None] | None = None
    ) -> None:
        """Replay orphans (oldest first, through ``apply_orphan``), then our own
        file. Raises the first failure; what was applied before it stays applied."""
        while self._orphans:
            sf = self._orphans[0]
            sf.replay(apply_orphan or apply)
            sf.remove()
            self._orphans.pop(0)
        if self._own is not None and self._own.pending:
            self._own.replay(apply)

    def close(self) -> None:
        """Release our file: removed when empty, else left for a later process."""
        for sf in self._orphans:
            os.close(sf.fd)
        self._orphans = []
        if self._own is not None:
            if self._own.pending:
                self._own.sync()
                os.close(self._own.fd)
            else:
                self._own.remove()
            self._own = None


def read_uri(directory: str) -> str | None:
    """The tracking URI a spool directory belongs to, if recorded."""
    try:
        with open(os.path.join(directory, URI_FILE), encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def read_reason(spool_path: str) -> str | None:
    """Why a spool file's records were spooled, if recorded."""
    try:
        with open(spool_path[: -len(".jsonl")] + ".why", encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def pending_records(path: str) -> Iterator[Record]:
    """The records of a spool file not replayed yet, for inspection (takes no
    lock: a replay may be moving on meanwhile). A torn last line is left out."""
    with open(path, "rb") as f:
        f.seek(_read_pos(path[: -len(".jsonl")] + ".pos"))
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                yield json.loads(line)
            except ValueError:
                continue


def _write_small_file(path: str, text: str) -> None:
    """Write whole or not at all (readers never see half a file)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _read_pos(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _write_pos(path: str, pos: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b"%020d" % pos, 0)
    finally:
        os.close(fd)
