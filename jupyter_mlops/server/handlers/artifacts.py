"""MLflow's artifact proxy: ``api/2.0/mlflow-artifacts/artifacts[/<path>]``.

Paths are relative to the store's artifact root; a run's files are at
``<experiment_id>/<run_id>/artifacts/...`` because its ``artifact_uri`` is
``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``. Uploads are streamed
to a spool file (memory, then disk) and handed to the repository, which writes
to a temporary name and renames; downloads are streamed in chunks. Every path
is checked before use, so nothing outside the root can be read or written.
"""

from __future__ import annotations

import io
import mimetypes
import os
import posixpath
import tempfile
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...tracking.errors import invalid, not_found
from ..request import Fields, safe_artifact_path
from .base import DeferredXsrf, MLOpsHandler, to_json

if TYPE_CHECKING:
    from ...tracking.artifacts import ArtifactRepository

CHUNK = 1 << 20
SPOOL_IN_MEMORY = 8 << 20
# Types a browser would render or run: served as plain text so an uploaded
# file cannot script the Jupyter origin.
_ACTIVE_TYPES = ("text/html", "application/xhtml+xml", "image/svg+xml", "text/javascript",
                 "application/javascript", "text/xml", "application/xml")


class ArtifactsMixin(MLOpsHandler):
    storage_name = "artifact store"

    def root_repo(self) -> ArtifactRepository:
        return self.store.artifact_repo(self.store.artifact_root)


class ArtifactListHandler(ArtifactsMixin):
    """``GET ...artifacts?path=<dir>``: direct children, paths relative to ``<dir>``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        query = self.request.query_arguments

        def listing() -> str:
            path = safe_artifact_path(Fields.from_query(query).string("path"))
            files = []
            for fi in self.root_repo().list(path):
                d = fi.to_dict()
                d["path"] = posixpath.basename(fi.path)
                files.append(d)
            return to_json({"files": files} if files else {})

        async def work() -> None:
            self.send_json(await self.run(listing))

        await self.guarded(work)


@web.stream_request_body
class ArtifactHandler(ArtifactsMixin, DeferredXsrf):
    """``PUT`` (raw body), ``GET`` (streamed) and ``DELETE`` of one artifact path."""

    _spool: Any = None

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self.request.method == "PUT" and not self._finished:
            if not self.current_user or self._xsrf_refusal is not None:
                return  # spool nothing for strangers: put() refuses once the body is drained
            self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed in on_finish

    def data_received(self, chunk: bytes) -> None:
        if self._spool is not None:
            self._spool.write(chunk)

    def on_finish(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        super().on_finish()

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        self.refuse_if_forged()
        spool = self._spool

        def upload() -> None:
            rel = safe_artifact_path(path)
            if not rel:
                raise not_found("An artifact path is required.")
            spool.seek(0)
            try:
                self.root_repo().put(rel, spool)
            except (IsADirectoryError, NotADirectoryError, FileExistsError):
                # the path names a directory, or goes through a file: the caller's mistake
                raise invalid(
                    f"Cannot write artifact '{path}': it is a directory or lies under a file."
                ) from None

        async def work() -> None:
            await self.run(upload)
            self.send_json("{}")

        await self.guarded(work)

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        async def work() -> None:
            rel = safe_artifact_path(path)

            def opener() -> BinaryIO:
                repo = self.root_repo()
                if not rel or repo.is_dir(rel) or not repo.exists(rel):
                    raise not_found(f"No such artifact: '{path}'")
                return repo.open(rel)

            stream = await self.run(opener)
            try:
                ctype = mimetypes.guess_type(rel)[0] or "application/octet-stream"
                if ctype in _ACTIVE_TYPES:
                    ctype = "text/plain"
                self.set_header("Content-Type", ctype)
                self.set_header("X-Content-Type-Options", "nosniff")
                name = quote(posixpath.basename(rel), safe="")
                self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{name}")
                size = _size_of(stream)
                if size is not None:
                    self.set_header("Content-Length", size)
                while True:
                    chunk = await self.run(stream.read, CHUNK)
                    if not chunk:
                        break
                    self.write(chunk)
                    await self.flush()
            finally:
                await self.run(stream.close)
            self.finish()

        await self.guarded(work)

    @web.authenticated
    @authorized
    async def delete(self, path: str) -> None:
        self.refuse_if_forged()

        def remove() -> None:
            rel = safe_artifact_path(path)
            if not rel:
                raise not_found("An artifact path is required.")
            self.root_repo().delete(rel)

        async def work() -> None:
            await self.run(remove)
            self.send_json("{}")

        await self.guarded(work)


def _size_of(stream: BinaryIO) -> int | None:
    """The length of a local file (lets clients see a cut-off download); None otherwise."""
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    base = r"api/2\.0/mlflow-artifacts/artifacts"
    return [(base, ArtifactListHandler, {}), (base + r"/(.+)", ArtifactHandler, {})]
