"""Writers of new artifact files: bytes go to a temporary name beside the destination and
appear at it only on commit (what uploads stream into)."""

from __future__ import annotations

import abc
import os
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

_COPY_CHUNK = 1 << 20

Chunk = bytes | bytearray | memoryview


class ArtifactWriter(abc.ABC):
    """A file being written at one path, invisible until :meth:`commit` (it grows under a
    temporary name beside its destination, then is renamed): readers never see half a file,
    and an upload cut short leaves nothing behind once :meth:`discard` runs."""

    #: Bytes written so far.
    size = 0
    #: Writes go to a local file (quick enough to make from an event loop while the
    #: disk keeps up); False for anything that may wait on a network.
    local = False

    @abc.abstractmethod
    def write(self, chunks: Sequence[Chunk]) -> None:
        """Append ``chunks`` (one system call for several, where the store allows)."""

    def write_from(self, src: BinaryIO) -> None:
        """Append the whole of ``src`` (an open file), piece by piece."""
        while chunk := src.read(_COPY_CHUNK):
            self.write((chunk,))

    @abc.abstractmethod
    def commit(self, durable: bool = False) -> None:
        """Put the file in place (replacing any old one). ``durable``: only once it is on
        stable storage (a local file and its directory are fsynced)."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Drop what was written; nothing appears at the path. Safe to call more than once,
        and after :meth:`commit` (then it does nothing)."""


class LocalWriter(ArtifactWriter):
    """A temporary file in the destination's directory, renamed over it on commit (one
    write of every byte; the rename is atomic on a POSIX file system)."""

    local = True

    def __init__(self, full: str) -> None:
        self.full = full
        self.parent = os.path.dirname(full)
        os.makedirs(self.parent, exist_ok=True)
        if os.path.isdir(full):
            raise IsADirectoryError(f"'{full}' is a directory")
        self.fd, self.tmp = tempfile.mkstemp(dir=self.parent, prefix=".tmp-", suffix=".part")
        self._open = True

    def write(self, chunks: Sequence[Chunk]) -> None:
        views = [memoryview(c) for c in chunks if len(c)]
        while views:
            n = os.writev(self.fd, views)
            self.size += n
            while views and n >= len(views[0]):  # a short write (rare): send the rest
                n -= len(views[0])
                views.pop(0)
            if views and n:
                views[0] = views[0][n:]

    def write_from(self, src: BinaryIO) -> None:
        try:
            fd_in = src.fileno()
            copy_range = os.copy_file_range
        except (AttributeError, OSError, ValueError):
            super().write_from(src)
            return
        # In the kernel (a reflink or a page-cache copy): no byte passes through Python.
        while n := copy_range(fd_in, self.fd, 64 << 20):
            self.size += n

    def commit(self, durable: bool = False) -> None:
        if not self._open:
            return
        try:
            if durable:
                os.fsync(self.fd)
            os.close(self.fd)
            self._open = False
            os.replace(self.tmp, self.full)
        except BaseException:
            self.discard()
            raise
        if durable:  # the rename itself: the directory's entry
            dfd = os.open(self.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def discard(self) -> None:
        if self._open:
            self._open = False
            os.close(self.fd)
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
