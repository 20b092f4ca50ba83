"""Multipart uploads into a local artifact directory (what MLflow's ``mlflow-artifacts/mpu/*``
routes do with an object store's multipart API).

An upload's parts are files in a staging directory beside its destination,
``.tmp-mpu-<upload id>.part/<part number>`` (listings skip ``.tmp-*.part`` names, and it is
on the destination's file system). Completing copies the parts in order into a temporary
file in the kernel (``copy_file_range``: no byte passes through Python or memory) and
renames it over the destination, so readers never see half a file; aborting removes the
staging directory. A part is itself written under a temporary name and renamed, so a part
cut off mid-upload is never taken for a whole one.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Sequence
from typing import Any

from .errors import invalid, not_found
from .writers import ArtifactWriter, LocalWriter

#: MLflow's (S3's) limit on the parts of one upload.
MAX_PARTS = 10000
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def etag(stat: os.stat_result) -> str:
    """A part's entity tag: its size and modification time (a part uploaded again differs)."""
    return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'


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
            raise not_found(f"No multipart upload '{upload_id}' of '{dest}'.")
        return staging

    def create(self, dest: str) -> str:
        """Start an upload to ``dest``; returns its id."""
        full = self.repo._full(dest)
        if os.path.isdir(full) or os.path.normpath(full) == os.path.normpath(self.repo.root):
            raise IsADirectoryError(f"'{dest}' is a directory")
        upload_id = uuid.uuid4().hex
        staging = self._staging(dest, upload_id, must_exist=False)
        os.makedirs(os.path.dirname(staging), exist_ok=True)
        os.mkdir(staging)
        return upload_id

    def part_writer(self, dest: str, upload_id: str, part_number: int) -> ArtifactWriter:
        """Where part ``part_number`` of an upload is written (replacing an earlier try)."""
        if not 1 <= part_number <= MAX_PARTS:
            raise invalid(f"part_number must be between 1 and {MAX_PARTS}, got {part_number}.")
        return LocalWriter(os.path.join(self._staging(dest, upload_id), str(part_number)))

    def part_etag(self, dest: str, upload_id: str, part_number: int) -> str:
        return etag(os.stat(os.path.join(self._staging(dest, upload_id), str(part_number))))

    def complete(self, dest: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        """Put the parts, in part-number order, together at ``dest``. Every part named must
        have been uploaded (and, when its ETag is given, be the one that answered it)."""
        staging = self._staging(dest, upload_id)
        if not parts:
            raise invalid("A multipart upload is completed with at least one part.")
        numbers = [n for n, _ in parts]
        if len(set(numbers)) != len(numbers):
            raise invalid("Each part is listed once in 'parts'.")
        files = []
        for number, tag in sorted(parts):
            path = os.path.join(staging, str(number))
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                raise invalid(f"Part {number} of upload '{upload_id}' was not uploaded.") from None
            if tag and tag != etag(stat):
                raise invalid(f"Part {number} of upload '{upload_id}' is not the one uploaded.")
            files.append(path)
        writer = self.repo.open_writer(dest)
        try:
            for path in files:
                with open(path, "rb") as f:
                    writer.write_from(f)
            writer.commit()
        finally:
            writer.discard()
        shutil.rmtree(staging, ignore_errors=True)

    def abort(self, dest: str, upload_id: str) -> None:
        """Drop an upload and its parts."""
        shutil.rmtree(self._staging(dest, upload_id))
