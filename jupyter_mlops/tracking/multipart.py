"""Multipart uploads into a local artifact directory (what MLflow's ``mlflow-artifacts/mpu/*``
routes do with an object store's multipart API).

An upload lives in a staging directory beside its destination, ``.tmp-mpu-<upload id>.part``
(listings skip ``.tmp-*.part`` names; it is on the destination's file system):

- ``data``: the destination's bytes. MLflow's client cuts a file into parts of one size
  (``MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE``), every part full but the last, so part *n* starts
  at (*n* - 1) x that size: each part is written straight at its offset as it arrives, and
  completing is a rename. Every byte is written once.
- ``size``: that part size, fixed by the first part received that is not the last one
  (its ``Content-Length``); ``num_parts``: what ``create`` was told.
- ``<n>.at``: part *n* is whole in ``data`` (``<offset> <length>``, written after its last
  byte, so a part cut off mid-upload never counts; sending it again replaces it).
- ``<n>``: part *n* in a file of its own, when it cannot go in place: its length was not
  declared (a chunked body), it is longer than the part size, or it is the last part and
  no other part has fixed the size yet.

- ``lock``: the upload's lock (``flock``) and its end mark (the file's size: 0 while the
  upload is open, 1 once it is completed or aborted).

Completing lays the listed parts end to end: parts in place cost nothing, parts in files
of their own are copied in (``copy_file_range``, in the kernel), and the file is renamed over
the destination, so readers never see half a file. Parts of other sizes than the client's
usual (a client of our own making) still come out right: when a part in ``data`` is not
where the parts before it end, the file is built anew from ranges. Aborting removes the
staging directory.

A part may still be in flight when its upload ends (a client's late retry of a part, a
client completing or aborting early): its descriptor of ``data`` would then write into the
published file. So every step of a part writer that touches the staging directory (opening,
each ``pwritev``, its commit) runs under the lock held shared, after checking the end mark;
``complete`` and ``abort`` take it exclusively to check the parts, set the mark and move
the directory aside (``.tmp-mpu-<id>-<random>.ended.part``, a name no writer opens), then
release it before copying, renaming and removing. They wait for one write in progress at
most, never for a part's network transfer; the part in flight gets MLflow's
``RESOURCE_DOES_NOT_EXIST`` at its next write or its commit (S3's ``NoSuchUpload``), as does
a part sent after the end. A part sent again overwrites its earlier bytes in place, so its
marker is removed when it starts: until it is committed the part is not uploaded (completing
names it), and afterwards its ETag is the new one. A ``complete`` that fails after the mark
(the disk full while copying) moves the directory back and clears the mark: the upload can be
completed again or aborted. The lock is ``flock(2)``: on a local file system it orders every
thread and process; on NFS, Linux emulates it with POSIX locks, which do not order the
threads of one process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import invalid, not_found
from .writers import ArtifactWriter, Chunk, LocalWriter

#: MLflow's (S3's) limit on the parts of one upload.
MAX_PARTS = 10000
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_DATA, _SIZE, _NUM_PARTS, _LOCK = "data", "size", "num_parts", "lock"
_COPY = 64 << 20


def etag(length: int, mtime_ns: int) -> str:
    """A part's entity tag: its length and when it was completed (a part sent again differs)."""
    return f'"{length:x}-{mtime_ns:x}"'


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _write_new(path: str, text: str) -> None:
    """Create ``path`` holding ``text`` in one step (readers see it whole or not at all);
    FileExistsError if it exists."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".part")
    try:
        os.write(fd, text.encode("ascii"))
        os.close(fd)
        os.link(tmp, path)  # fails if another got there first
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _replace_with(path: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".part")
    try:
        os.write(fd, text.encode("ascii"))
        os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def copy_range(fd_in: int, off_in: int, fd_out: int, off_out: int, count: int) -> None:
    """Copy ``count`` bytes between offsets of two files, in the kernel where it can."""
    while count > 0:
        try:
            n = os.copy_file_range(fd_in, fd_out, min(count, _COPY), off_in, off_out)
        except (AttributeError, OSError):  # no copy_file_range here (or across devices)
            chunk = os.pread(fd_in, min(count, 1 << 20), off_in)
            n = os.pwrite(fd_out, chunk, off_out) if chunk else 0
        if n <= 0:
            raise invalid("A part is shorter than when it was uploaded.")
        off_in, off_out, count = off_in + n, off_out + n, count - n


class UploadLock:
    """An upload's ``lock`` file, open: shared by part writers for each step, exclusive for
    ``complete`` and ``abort`` (see the module's docstring). ``gone`` is the message of the
    404 once the upload has ended."""

    def __init__(self, staging: str, gone: str) -> None:
        self.staging, self.gone = staging, gone
        try:  # (no O_CREAT can recreate an ended upload's lock: its directory has moved)
            self.fd: int | None = os.open(
                os.path.join(staging, _LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except (FileNotFoundError, NotADirectoryError):
            raise not_found(gone) from None

    def hold(self, how: int) -> None:
        """Take the lock (``fcntl.LOCK_SH`` or ``LOCK_EX``); a 404 if the upload has ended."""
        assert self.fd is not None
        fcntl.flock(self.fd, how)
        if os.lseek(self.fd, 0, os.SEEK_END):  # the end mark (the size; cheaper than fstat)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            raise not_found(self.gone)

    def release(self) -> None:
        if self.fd is not None:  # (closed by a writer's discard: closing released it)
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        self.hold(fcntl.LOCK_SH)
        try:
            yield
        finally:
            self.release()

    def end(self) -> str:
        """(Held exclusively.) Mark the upload ended and move its directory aside; returns
        where it is now."""
        assert self.fd is not None
        aside = f"{self.staging.removesuffix('.part')}-{uuid.uuid4().hex[:12]}.ended.part"
        os.ftruncate(self.fd, 1)  # (grows a file without writing a block: no ENOSPC)
        try:
            os.rename(self.staging, aside)
        except BaseException:
            os.ftruncate(self.fd, 0)
            raise
        return aside

    def reopen(self, aside: str) -> None:
        """Undo :meth:`end`: the upload is back where it was, open."""
        assert self.fd is not None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            os.rename(aside, self.staging)
            os.ftruncate(self.fd, 0)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


class PlacedPart(ArtifactWriter):
    """A part written at its offset of the upload's ``data`` file (``pwritev``); its marker
    ``<n>.at`` appears on :meth:`commit`, once all ``length`` bytes are there. Made with the
    upload's lock held shared (:meth:`LocalMultipart.part_writer`), which it then owns:
    each write and the commit take it again and fail with a 404 once the upload has ended."""

    local = True

    def __init__(self, lock: UploadLock, number: int, offset: int, length: int) -> None:
        self.lock, self.staging = lock, lock.staging
        self.number, self.offset, self.length = number, offset, length
        self.fd: int | None = os.open(
            os.path.join(self.staging, _DATA), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        # an earlier try of this part is about to be overwritten in place: it is no longer
        # whole, so it no longer counts (completing names the part until this one commits)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.staging, f"{self.number}.at"))

    def write(self, chunks: Sequence[Chunk]) -> None:
        assert self.fd is not None
        views = [memoryview(c) for c in chunks if len(c)]
        if self.size + sum(len(v) for v in views) > self.length:
            raise invalid(f"Part {self.number} is longer than its Content-Length.")
        # held for this write only: complete and abort wait for a write, not for a transfer
        self.lock.hold(fcntl.LOCK_SH)
        try:
            while views:
                n = os.pwritev(self.fd, views, self.offset + self.size)
                self.size += n
                while views and n >= len(views[0]):  # a short write (rare): send the rest
                    n -= len(views[0])
                    views.pop(0)
                if views and n:
                    views[0] = views[0][n:]
        finally:
            self.lock.release()

    def commit(self, durable: bool = False) -> None:
        if self.fd is None:
            return
        try:
            with self.lock.shared():  # (an upload ended: a 404, whatever the part's length)
                if self.size != self.length:
                    n, size, length = self.number, self.size, self.length
                    raise invalid(f"Part {n} has {size} of its {length} bytes.")
                fd, self.fd = self.fd, None
                try:
                    if durable:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                marker = os.path.join(self.staging, f"{self.number}.at")
                _replace_with(marker, f"{self.offset} {self.length}")
                with contextlib.suppress(FileNotFoundError):  # an earlier try kept apart
                    os.unlink(os.path.join(self.staging, str(self.number)))
        finally:
            self.discard()

    def discard(self) -> None:
        # bytes written without a marker are not part of anything: nothing to remove
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)
        self.lock.close()


class SeparatePart(LocalWriter):
    """A part in a file of its own (``<n>``), replacing any earlier try of it. Made with the
    upload's lock held shared, which it then owns: its writes go to its own temporary file
    (no lock), its commit takes the lock again (a 404 once the upload has ended)."""

    def __init__(self, lock: UploadLock, full: str) -> None:
        self.lock = lock
        super().__init__(full)

    def commit(self, durable: bool = False) -> None:
        was_open = self._open
        try:
            if was_open:
                with self.lock.shared():
                    super().commit(durable)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.full + ".at")
        finally:
            self.discard()

    def discard(self) -> None:
        super().discard()
        self.lock.close()


@dataclass
class _Part:
    number: int
    length: int
    etag: str
    #: offset in ``data`` (a part in place), or None (a file of its own)
    offset: int | None
    #: its marker or its own file, in the staging directory
    name: str
    mtime_ns: int


class LocalMultipart:
    """Multipart uploads under one ``LocalArtifactRepository`` (``repo``); ``dest`` is the
    destination file's path relative to the repository root. Blocking file I/O."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo

    def _staging(self, dest: str, upload_id: str, must_exist: bool = True) -> str:
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise invalid(f"Invalid upload_id: '{str(upload_id)[:80]}'.")
        full = self.repo._full(dest)
        staging = os.path.join(os.path.dirname(full), f".tmp-mpu-{upload_id}.part")
        if must_exist and not os.path.isdir(staging):
            raise not_found(self._gone(dest, upload_id))
        return staging

    @staticmethod
    def _gone(dest: str, upload_id: str) -> str:
        return f"No multipart upload '{upload_id}' of '{dest}' (completed, aborted or unknown)."

    def _lock(self, dest: str, upload_id: str) -> UploadLock:
        return UploadLock(self._staging(dest, upload_id), self._gone(dest, upload_id))

    def create(self, dest: str, num_parts: int | None = None) -> str:
        """Start an upload to ``dest`` (of ``num_parts`` parts, when known); returns its id."""
        full = self.repo._full(dest)
        if os.path.isdir(full) or os.path.normpath(full) == os.path.normpath(self.repo.root):
            raise IsADirectoryError(f"'{dest}' is a directory")
        upload_id = uuid.uuid4().hex
        staging = self._staging(dest, upload_id, must_exist=False)
        os.makedirs(os.path.dirname(staging), exist_ok=True)
        os.mkdir(staging)
        if num_parts is not None:
            _write_new(os.path.join(staging, _NUM_PARTS), str(num_parts))
        return upload_id

    def _offset(self, staging: str, number: int, length: int | None) -> int | None:
        """Where part ``number`` of ``length`` bytes goes in ``data``; None: a file of its own."""
        if length is None:
            return None
        total = _read_int(os.path.join(staging, _NUM_PARTS))
        if total is not None and number > total:
            return None
        if total == 1:
            return 0
        size_file = os.path.join(staging, _SIZE)
        size = _read_int(size_file)
        if size is None and length > 0 and number != total:
            # the first part that is not the last: the client's part size
            with contextlib.suppress(FileExistsError):
                _write_new(size_file, str(length))
            size = _read_int(size_file)
        if size is None or length > size:
            return None
        return (number - 1) * size

    def part_writer(
        self, dest: str, upload_id: str, part_number: int, length: int | None = None
    ) -> ArtifactWriter:
        """Where part ``part_number`` (``length`` bytes, if declared) is written, replacing
        an earlier try of it. A 404 once the upload has ended, at once or at the writer's
        next write or commit."""
        if not 1 <= part_number <= MAX_PARTS:
            raise invalid(f"part_number must be between 1 and {MAX_PARTS}, got {part_number}.")
        lock = self._lock(dest, upload_id)
        try:
            with lock.shared():
                staging = lock.staging
                offset = self._offset(staging, part_number, length)
                if offset is None or length is None:
                    return SeparatePart(lock, os.path.join(staging, str(part_number)))
                return PlacedPart(lock, part_number, offset, length)
        except BaseException:
            lock.close()
            raise

    def _part(self, staging: str, number: int) -> _Part | None:
        """Part ``number`` as last completed, None if it never was."""
        found: list[_Part] = []
        marker = f"{number}.at"
        with contextlib.suppress(OSError, ValueError):
            st = os.stat(os.path.join(staging, marker))
            with open(os.path.join(staging, marker), encoding="ascii") as f:
                offset, length = (int(x) for x in f.read().split())
            tag = etag(length, st.st_mtime_ns)
            found.append(_Part(number, length, tag, offset, marker, st.st_mtime_ns))
        own = str(number)
        with contextlib.suppress(OSError):
            st = os.stat(os.path.join(staging, own))
            tag = etag(st.st_size, st.st_mtime_ns)
            found.append(_Part(number, st.st_size, tag, None, own, st.st_mtime_ns))
        # both only while a part is sent again, in the instant between its file and the
        # other's removal: the later one counts
        return max(found, key=lambda p: p.mtime_ns, default=None)

    def part_etag(self, dest: str, upload_id: str, part_number: int) -> str:
        part = self._part(self._staging(dest, upload_id), part_number)
        if part is None:
            raise not_found(f"Part {part_number} of upload '{upload_id}' was not uploaded.")
        return part.etag

    def complete(self, dest: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        """Put the parts, in part-number order, together at ``dest``. Every part named must
        have been uploaded (and, when its ETag is given, be the one that answered it). Parts
        still in flight write nothing more (see the module's docstring)."""
        lock = self._lock(dest, upload_id)
        try:
            lock.hold(fcntl.LOCK_EX)
            try:
                found = self._listed(lock.staging, upload_id, parts)
                full = self.repo._full(dest)
                if os.path.isdir(full):
                    raise invalid(f"Cannot write artifact '{dest}': it is a directory.")
                aside = lock.end()
            finally:
                lock.release()
            try:
                self._put_together(aside, found, full)
            except BaseException:
                lock.reopen(aside)
                raise
        finally:
            lock.close()
        shutil.rmtree(aside, ignore_errors=True)

    def _listed(
        self, staging: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> list[_Part]:
        """The parts ``complete`` lists, checked, in part-number order."""
        if not parts:
            raise invalid("A multipart upload is completed with at least one part.")
        numbers = [n for n, _ in parts]
        if len(set(numbers)) != len(numbers):
            raise invalid("Each part is listed once in 'parts'.")
        found: list[_Part] = []
        for number, tag in sorted(parts):
            part = self._part(staging, number)
            if part is None:
                raise invalid(f"Part {number} of upload '{upload_id}' was not uploaded.")
            if tag and tag != part.etag:
                raise invalid(f"Part {number} of upload '{upload_id}' is not the one uploaded.")
            found.append(part)
        return found

    def _put_together(self, staging: str, found: list[_Part], full: str) -> None:
        data = os.path.join(staging, _DATA)
        starts, end = [], 0
        for part in found:
            starts.append(end)
            end += part.length
        if all(p.offset in (None, s) for p, s in zip(found, starts, strict=True)):
            self._fill_in_place(staging, found, starts, end)
        else:  # parts of several sizes: a new file from ranges of the old
            built = os.path.join(staging, "built")
            self._build(staging, built, found, starts, end)
            data = built
        os.replace(data, full)

    @staticmethod
    def _fill_in_place(staging: str, parts: list[_Part], starts: list[int], end: int) -> None:
        """Copy the parts kept apart to their offsets in ``data``, cut it at ``end``."""
        data = os.path.join(staging, _DATA)
        fd = os.open(data, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            for part, start in zip(parts, starts, strict=True):
                if part.offset is None:
                    src = os.open(os.path.join(staging, part.name), os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        copy_range(src, 0, fd, start, part.length)
                    finally:
                        os.close(src)
            os.ftruncate(fd, end)  # (a part beyond the listed ones, or a short last part)
        finally:
            os.close(fd)

    @staticmethod
    def _build(staging: str, built: str, parts: list[_Part], starts: list[int], end: int) -> None:
        out = os.open(built, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            for part, start in zip(parts, starts, strict=True):
                name = _DATA if part.offset is not None else part.name
                src = os.open(os.path.join(staging, name), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    copy_range(src, part.offset or 0, out, start, part.length)
                finally:
                    os.close(src)
            os.ftruncate(out, end)
        finally:
            os.close(out)

    def abort(self, dest: str, upload_id: str) -> None:
        """Drop an upload and its parts; parts still in flight write nothing more."""
        lock = self._lock(dest, upload_id)
        try:
            lock.hold(fcntl.LOCK_EX)
            try:
                aside = lock.end()
            finally:
                lock.release()
        finally:
            lock.close()
        shutil.rmtree(aside, ignore_errors=True)
