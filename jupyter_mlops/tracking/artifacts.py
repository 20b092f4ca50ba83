"""Artifact repositories: where a run's (or an experiment's) files live.

A repository is rooted at one location (a local directory or an fsspec URL) and
takes POSIX-style relative paths. Paths from users never escape the root: ``..``
segments, absolute paths and backslashes are refused with INVALID_PARAMETER_VALUE.
"""

from __future__ import annotations

import abc
import os
import posixpath
import tempfile
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from .entities import FileInfo
from .errors import invalid, not_found
from .writers import ArtifactWriter, Chunk, LocalWriter

if TYPE_CHECKING:
    from .multipart import LocalMultipart

_COPY_CHUNK = 1 << 20


def clean_path(path: str | None) -> str:
    """A user's relative artifact path, normalized; refuses anything that could
    leave the repository root (``..``, absolute paths, backslashes, drive letters)."""
    if path is None:
        return ""
    if not isinstance(path, str):
        raise invalid(f"Invalid artifact path: {path!r}")
    if "\\" in path or "\x00" in path:
        raise invalid(f"Invalid artifact path: '{path}'")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise invalid(f"Invalid artifact path: '{path}'. Absolute paths are not allowed")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise invalid(f"Invalid artifact path: '{path}'. '..' is not allowed")
    return "/".join(parts)


class _SpoolWriter(ArtifactWriter):
    """For repositories without a writer of their own: a spool file handed to ``put``."""

    def __init__(self, repo: ArtifactRepository, path: str) -> None:
        self._repo, self._path = repo, path
        self._spool: Any = tempfile.TemporaryFile()  # noqa: SIM115 - closed by commit/discard

    def write(self, chunks: Sequence[Chunk]) -> None:
        for c in chunks:
            self._spool.write(c)
            self.size += len(c)

    def commit(self, durable: bool = False) -> None:
        spool, self._spool = self._spool, None
        if spool is None:
            return
        with spool:
            spool.seek(0)
            self._repo.put(self._path, spool)

    def discard(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()


class ArtifactRepository(abc.ABC):
    #: The location this repository is rooted at (directory path or URL).
    root: str

    @abc.abstractmethod
    def put(self, path: str, data: bytes | BinaryIO) -> None:
        """Write a file at ``path`` (parents created), replacing any old one.
        Written to a temporary name and renamed, so readers never see half a file."""

    def put_durable(self, path: str, data: bytes) -> None:
        """:meth:`put`, returning only once the file is on stable storage (a local file
        is fsynced, and its directory): what a caller commits rows after. Object stores
        have it when the write returns."""
        self.put(path, data)

    def open_writer(self, path: str) -> ArtifactWriter:
        """A writer for a new file at ``path`` (what streamed uploads write to). The
        default spools to a temporary file and calls :meth:`put` on commit; local
        repositories write in place."""
        if not clean_path(path):
            raise invalid("Invalid artifact path: a file path is required")
        return _SpoolWriter(self, path)

    def multipart(self) -> LocalMultipart | None:
        """Multipart uploads into this repository (MLflow's ``mpu`` routes), if it has them."""
        return None

    @abc.abstractmethod
    def open(self, path: str) -> BinaryIO:
        """Open a file for reading; RESOURCE_DOES_NOT_EXIST if there is none."""

    @abc.abstractmethod
    def list(self, path: str = "") -> list[FileInfo]:
        """The direct children of directory ``path``; ``FileInfo.path`` is
        relative to the repository root. A file or missing path lists as []."""

    @abc.abstractmethod
    def delete(self, path: str = "") -> None:
        """Remove a file or a whole directory (``""``: everything)."""

    @abc.abstractmethod
    def is_dir(self, path: str) -> bool: ...

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    def upload_file(self, local_path: str, artifact_dir: str = "") -> str:
        """Copy a local file into ``artifact_dir``; returns its artifact path."""
        import os

        name = os.path.basename(local_path)
        dest = f"{artifact_dir.strip('/')}/{name}" if artifact_dir.strip("/") else name
        with open(local_path, "rb") as f:
            self.put(dest, f)
        return dest


class LocalArtifactRepository(ArtifactRepository):
    """Files under a local directory; writes go to a temporary file then rename."""

    def __init__(self, root: str) -> None:
        root = root.removeprefix("file://")
        self.root = os.path.abspath(root)

    def _full(self, path: str) -> str:
        rel = clean_path(path)
        full = os.path.join(self.root, *rel.split("/")) if rel else self.root
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(full)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise invalid(f"Invalid artifact path: '{path}' escapes the artifact root")
        return full

    def put(self, path: str, data: bytes | BinaryIO) -> None:
        self._put(path, data, durable=False)

    def put_durable(self, path: str, data: bytes) -> None:
        self._put(path, data, durable=True)

    def _put(self, path: str, data: bytes | BinaryIO, durable: bool) -> None:
        writer = self.open_writer(path)
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                writer.write((data,))
            else:
                while chunk := data.read(_COPY_CHUNK):
                    writer.write((chunk,))
            writer.commit(durable)
        finally:
            writer.discard()

    def open_writer(self, path: str) -> ArtifactWriter:
        if not clean_path(path):
            raise invalid("Invalid artifact path: a file path is required")
        return LocalWriter(self._full(path))

    def multipart(self) -> LocalMultipart:
        from .multipart import LocalMultipart

        return LocalMultipart(self)

    def open(self, path: str) -> BinaryIO:
        full = self._full(path)
        if not os.path.isfile(full):
            raise not_found(f"No such artifact: '{clean_path(path)}'")
        return open(full, "rb")

    def modified_ms(self, path: str) -> int | None:
        """When the file was last written (ms since the epoch), None if there is none."""
        try:
            return int(os.stat(self._full(path)).st_mtime * 1000)
        except OSError:
            return None

    def list(self, path: str = "") -> list[FileInfo]:
        rel = clean_path(path)
        full = self._full(path)
        if not os.path.isdir(full):
            return []
        out = []
        for entry in sorted(os.scandir(full), key=lambda e: e.name):
            if entry.name.startswith(".tmp-") and entry.name.endswith(".part"):
                continue
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir():
                out.append(FileInfo(child, True))
            else:
                out.append(FileInfo(child, False, entry.stat().st_size))
        return out

    def delete(self, path: str = "") -> None:
        import shutil

        full = self._full(path)
        if os.path.isdir(full):
            shutil.rmtree(full)
        elif os.path.exists(full):
            os.unlink(full)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(self._full(path))

    def exists(self, path: str) -> bool:
        return os.path.exists(self._full(path))


class FsspecArtifactRepository(ArtifactRepository):
    """Files under any fsspec URL (``s3://``, ``gs://``, ``memory://`` ...)."""

    def __init__(self, root: str, **storage_options: Any) -> None:
        import fsspec

        self.root = root.rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root, **storage_options)
        self._base = self._base.rstrip("/")

    def _full(self, path: str) -> str:
        rel = clean_path(path)
        return f"{self._base}/{rel}" if rel else self._base

    def _rel(self, full: str) -> str:
        full = full.rstrip("/")
        base = self._base.lstrip("/")
        f = full.lstrip("/")
        return f[len(base) :].lstrip("/") if f.startswith(base) else posixpath.basename(f)

    def put(self, path: str, data: bytes | BinaryIO) -> None:
        if not clean_path(path):
            raise invalid("Invalid artifact path: a file path is required")
        full = self._full(path)
        parent = posixpath.dirname(full)
        try:
            self.fs.makedirs(parent, exist_ok=True)
        except Exception:  # noqa: BLE001, S110 - object stores have no directories
            pass
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}.part"
        payload = data if isinstance(data, (bytes, bytearray, memoryview)) else None
        with self.fs.open(tmp, "wb") as f:
            if payload is not None:
                f.write(bytes(payload))
            else:
                while chunk := data.read(_COPY_CHUNK):  # type: ignore[union-attr]
                    f.write(chunk)
        try:
            self.fs.mv(tmp, full)
        except Exception:
            self.fs.rm(tmp)
            raise

    def open(self, path: str) -> BinaryIO:
        full = self._full(path)
        if not clean_path(path) or not self.fs.isfile(full):
            raise not_found(f"No such artifact: '{clean_path(path)}'")
        return self.fs.open(full, "rb")

    def list(self, path: str = "") -> list[FileInfo]:
        full = self._full(path)
        if not self.fs.isdir(full):
            return []
        out = []
        for info in self.fs.ls(full, detail=True):
            name = posixpath.basename(info["name"].rstrip("/"))
            if name.startswith(".tmp-") and name.endswith(".part"):
                continue
            child = self._rel(info["name"])
            if not child or child == clean_path(path):
                continue
            if info.get("type") == "directory":
                out.append(FileInfo(child, True))
            else:
                out.append(FileInfo(child, False, info.get("size")))
        return sorted(out, key=lambda f: f.path)

    def delete(self, path: str = "") -> None:
        full = self._full(path)
        if self.fs.exists(full):
            self.fs.rm(full, recursive=True)

    def is_dir(self, path: str) -> bool:
        return bool(self.fs.isdir(self._full(path)))

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self._full(path)))


def _join_root(root: str, rest: str) -> str:
    rest = clean_path(rest)
    if not rest:
        return root
    return f"{root.rstrip('/')}/{rest}" if "://" in root else os.path.join(root, *rest.split("/"))


def artifact_repo_for(artifact_uri: str, artifact_root: str) -> ArtifactRepository:
    """The repository for ``artifact_uri``: ``mlflow-artifacts:/<rest>`` maps to
    ``<artifact_root>/<rest>``; ``file://`` and plain paths are local; any other
    scheme goes through fsspec."""
    if artifact_uri.startswith("mlflow-artifacts:"):
        rest = artifact_uri[len("mlflow-artifacts:") :]
        if rest.startswith("//"):  # mlflow-artifacts://host/path: the path part
            rest = rest[2:].split("/", 1)[1] if "/" in rest[2:] else ""
        location = _join_root(artifact_root, rest.lstrip("/"))
    else:
        location = artifact_uri
    if location.startswith("file://") or "://" not in location:
        return LocalArtifactRepository(location)
    return FsspecArtifactRepository(location)
