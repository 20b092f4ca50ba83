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
import unicodedata
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
_ACTIVE_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/javascript",
    "application/javascript",
    "text/xml",
    "application/xml",
)


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

            await send_artifact(self, await self.run(opener), rel)

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


#: Served as text/plain whatever their type (MLflow's ``get_text_extensions``); the
#: extension-less ``MLmodel`` and ``MLproject`` files count by name.
TEXT_EXTENSIONS = frozenset(
    (
        "txt",
        "log",
        "err",
        "cfg",
        "conf",
        "cnf",
        "cf",
        "ini",
        "properties",
        "prop",
        "hocon",
        "toml",
        "yaml",
        "yml",
        "xml",
        "json",
        "js",
        "py",
        "py3",
        "csv",
        "tsv",
        "md",
        "rst",
        "ipynb",
        "MLmodel",
        "MLproject",
        "mlproject",
    )
)
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz|~"
)


def content_type(path: str) -> str:
    """MLflow's type of a downloaded artifact (``_guess_mime_type``); types a browser would
    render or run are served as plain text, so an uploaded file cannot script the origin."""
    name = posixpath.basename(path)
    ext = os.path.splitext(name)[1].replace(".", "") or name
    if ext in TEXT_EXTENSIONS:
        return "text/plain"
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return "text/plain" if ctype in _ACTIVE_TYPES else ctype


def _header_value(value: str) -> str:
    """A token as it is, anything else quoted (werkzeug's ``quote_header_value``)."""
    if value and all(c in _TOKEN_CHARS for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_disposition(filename: str) -> str:
    """``attachment; filename=...`` as MLflow sends it (RFC 6266): an ASCII name as it is
    (quoted if needed), any other with an ASCII fallback plus ``filename*=UTF-8''...``."""
    filename = "".join(c for c in filename if c >= " " and c != "\x7f")
    try:
        filename.encode("ascii")
    except UnicodeEncodeError:
        fallback = (
            unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
            or "download"
        )
        quoted = quote(filename, safe="!#$&+-.^_`|~")
        return f"attachment; filename={_header_value(fallback)}; filename*=UTF-8''{quoted}"
    return f"attachment; filename={_header_value(filename)}"


async def send_artifact(handler: MLOpsHandler, stream: BinaryIO, rel: str) -> None:
    """Stream an open artifact to the client as an attachment, then close it."""
    ctype = content_type(rel)
    try:
        handler.set_header("Content-Type", ctype)
        handler.set_header("X-Content-Type-Options", "nosniff")
        handler.set_header("Content-Disposition", content_disposition(posixpath.basename(rel)))
        size = _size_of(stream)
        if size is not None:
            handler.set_header("Content-Length", size)
        while True:
            chunk = await handler.run(stream.read, CHUNK)
            if not chunk:
                break
            handler.write(chunk)
            await handler.flush()
    finally:
        await handler.run(stream.close)
    handler.finish(set_content_type=ctype)  # (APIHandler would say JSON for an empty file)


def _size_of(stream: BinaryIO) -> int | None:
    """The length of a local file (lets clients see a cut-off download); None otherwise."""
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    base = r"api/2\.0/mlflow-artifacts/artifacts"
    return [(base, ArtifactListHandler, {}), (base + r"/(.+)", ArtifactHandler, {})]
