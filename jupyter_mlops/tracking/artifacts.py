"""Artifact repositories: where a run's (or an experiment's) files live.

A repository is rooted at one location (a local directory or an fsspec URL) and
takes POSIX-style relative paths. Paths from users never escape the root: ``..``
segments, absolute paths and backslashes are refused with INVALID_PARAMETER_VALUE.
"""

from __future__ import annotations

import abc
from typing import BinaryIO

from .entities import FileInfo


class ArtifactRepository(abc.ABC):
    #: The location this repository is rooted at (directory path or URL).
    root: str

    @abc.abstractmethod
    def put(self, path: str, data: bytes | BinaryIO) -> None:
        """Write a file at ``path`` (parents created), replacing any old one.
        Written to a temporary name and renamed, so readers never see half a file."""

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


def artifact_repo_for(artifact_uri: str, artifact_root: str) -> ArtifactRepository:
    """The repository for ``artifact_uri``: ``mlflow-artifacts:/<rest>`` maps to
    ``<artifact_root>/<rest>``; ``file://`` and plain paths are local; any other
    scheme goes through fsspec."""
    raise NotImplementedError  # implemented with the store
