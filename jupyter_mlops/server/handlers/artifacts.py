"""MLflow's artifact proxy: ``api/2.0/mlflow-artifacts/artifacts[/<path>]``.

Paths are relative to the store's artifact root; a run's files are at
``<experiment_id>/<run_id>/artifacts/...`` because its ``artifact_uri`` is
``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``. An upload is admitted
(authenticated, authorized, its size and path checked, room in the body budget)
before its body is read, then streamed straight into a temporary file beside its
destination, renamed into place once complete: every byte is written once, the
server holds at most two buffers of it, and a cut-off upload leaves nothing.
Downloads are streamed in large pieces, one byte range on request. Every path is
checked before use, so nothing outside the root can be read or written.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import mimetypes
import os
import posixpath
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from tornado import httputil, iostream, web

from ...tracking.errors import invalid, not_found
from ..request import Fields, safe_artifact_path
from .base import DeferredXsrf, MLOpsHandler, busy, to_json
from .sendfile import can_send, send_file

if TYPE_CHECKING:
    from ...tracking.artifacts import ArtifactRepository, ArtifactWriter

#: Bytes a download reads (in the store's pool) and writes to the socket at once; the
#: next piece is read while the last one is sent.
CHUNK = 4 << 20
#: Bytes an upload gathers before one write to its file (two such buffers at most).
WRITE_SIZE = 4 << 20
#: Bytes an upload reads from its socket at once when it reads its own body (take_body).
READ_SIZE = 4 << 20
#: What a streamed upload reserves of the server's body budget (its buffers, not its size).
UPLOAD_BUFFERS = 2 * WRITE_SIZE
#: A local file read or write from the event loop taking longer than this (seconds): the
#: disk is slow, so the rest of that transfer's file I/O goes through the store's pool.
SLOW_IO = 0.25
#: Bytes a download reads at once from the event loop (while reads are quick).
INLINE_CHUNK = 1 << 20
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


async def start_upload(
    handler: MLOpsHandler, open_writer: Callable[[], ArtifactWriter]
) -> tuple[Upload | None, BaseException | None]:
    """Admit a streamed upload before its body is read (called from ``prepare``, the caller
    authenticated and authorized): its declared size within ``MLOpsApp.max_artifact_upload``
    (else answered 400 at once, unread), room in the server's body budget for its buffers
    (else 503 once drained), then ``open_writer()`` in the store's pool (its error is
    answered once the body is drained). Returns the upload, or the refusal to raise."""
    mlops = handler.mlops
    limit = mlops.max_artifact_upload
    declared = handler.request.headers.get("Content-Length")
    size = int(declared) if declared and declared.strip().isdigit() else None
    if size is not None and size > limit:
        handler.send_tracking_error(
            invalid(
                f"An artifact upload may be at most {limit} bytes, got {size} "
                "(MLOpsApp.max_artifact_upload)."
            )
        )
        return None, None
    # A chunked body past the limit: tornado cuts the connection.
    handler.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]
    held = min(UPLOAD_BUFFERS, size if size is not None else UPLOAD_BUFFERS) or 1
    budget = mlops.body_budget
    if not await budget.acquire(held, mlops.inflight_wait):
        return None, busy(budget)
    try:
        writer = await handler.run(open_writer)
    except Exception as exc:  # noqa: BLE001 - answered by the verb, inside guarded()
        budget.release(held)
        return None, exc
    return Upload(handler, writer, held), None


async def take_body(handler: MLOpsHandler, upload: Upload) -> None:
    """Read a body of declared length straight from the connection into ``upload``
    (``IOStream.read_into``: one copy from the socket into a reused buffer of
    :data:`READ_SIZE`, written from there) rather than through tornado's ``data_received``
    (64 KiB pieces, each copied three times on the way, a coroutine round per piece). The
    body read, tornado is told there is none left (its ``Content-Length`` becomes 0, read
    after ``prepare``). A chunked body, or a connection that is not tornado's HTTP/1, goes
    through ``data_received``. A client gone midway: tornado's own read then finds the
    connection closed (``on_connection_close``)."""
    conn = handler.request.connection
    headers = handler.request.headers
    stream = getattr(conn, "stream", None)
    declared = headers.get("Content-Length", "").strip()
    if (
        not isinstance(stream, iostream.IOStream)
        or not declared.isdigit()
        or "Transfer-Encoding" in headers
        or "," in declared
    ):
        return
    remaining = int(declared)
    if headers.get("Expect", "").lower() == "100-continue":
        stream.write(b"HTTP/1.1 100 (Continue)\r\n\r\n")  # (what tornado would send next)
        del headers["Expect"]
    buf = memoryview(bytearray(min(READ_SIZE, remaining) or 1))
    try:
        while remaining:
            n = await stream.read_into(buf[: min(len(buf), remaining)], partial=True)  # type: ignore[arg-type]
            remaining -= n
            # the buffer is reused: a write left for the pool gets a copy
            piece = buf[:n] if upload.inline else bytes(buf[:n])
            pending = upload.feed(piece)
            if pending is not None:
                await pending
            await asyncio.sleep(0)  # (a read that never waits would hold the event loop)
    except iostream.StreamClosedError:
        return
    headers["Content-Length"] = "0"


def end_upload(handler: MLOpsHandler, upload: Upload | None) -> None:
    """The request is over (answered or cut off): give back its budget and drop its
    file unless it was committed."""
    if upload is None:
        return
    if upload.held:
        handler.mlops.body_budget.release(upload.held)
        upload.held = 0
    if not upload.done:
        asyncio.ensure_future(upload.abandon())  # noqa: RUF006 - it runs to its end by itself


def writer_at(handler: ArtifactsMixin, path: str) -> Callable[[], ArtifactWriter]:
    """``open_writer`` for ``path`` under the proxy's root (paths checked first)."""

    def open_writer() -> ArtifactWriter:
        rel = safe_artifact_path(path)
        if not rel:
            raise not_found("An artifact path is required.")
        try:
            return handler.root_repo().open_writer(rel)  # type: ignore[no-any-return]
        except (IsADirectoryError, NotADirectoryError, FileExistsError):
            # the path names a directory, or goes through a file: the caller's mistake
            raise invalid(
                f"Cannot write artifact '{path}': it is a directory or lies under a file."
            ) from None

    return open_writer


class Upload:
    """A request body streamed into an :class:`ArtifactWriter` as it arrives.

    Each piece tornado reads (64 KiB) is written at once from the event loop while writes
    are quick (a local file: a copy into the page cache, cheaper than a hand-off to a
    thread, which on a busy machine waits to be scheduled; measured 1.5-2x the throughput
    at half the CPU). Once one write takes longer than :data:`SLOW_IO` (a congested or
    network disk), the rest of the upload goes through the store's pool: pieces are
    gathered up to :data:`WRITE_SIZE` and written while the next ones are read (two such
    buffers at most); while both are full, ``feed`` hands tornado an awaitable, which stops
    it reading the socket (the sender is pushed back), so memory stays bounded whatever
    the body's size. A failed write (a full disk) is kept and raised by :meth:`finish`;
    the rest of the body is drained."""

    def __init__(self, handler: MLOpsHandler, writer: ArtifactWriter, held: int = 0) -> None:
        self.handler, self.writer, self.held = handler, writer, held
        self.pending: list[bytes | memoryview] = []
        self.pending_size = 0
        self.task: asyncio.Future[Any] | None = None
        self.error: BaseException | None = None
        self.done = False
        self.inline = writer.local

    def feed(self, chunk: bytes | memoryview) -> Awaitable[None] | None:
        if self.error is not None:
            return None
        if self.inline:
            started = time.monotonic()
            try:
                self.writer.write((chunk,))
            except Exception as exc:  # noqa: BLE001 - raised by finish()
                self.error = exc
            self.inline = time.monotonic() - started < SLOW_IO
            return None
        self.pending.append(chunk)
        self.pending_size += len(chunk)
        return self._flush() if self.pending_size >= WRITE_SIZE else None

    async def _flush(self) -> None:
        if self.task is not None:
            task, self.task = self.task, None
            try:
                await task
            except Exception as exc:  # noqa: BLE001 - raised by finish()
                self.error = exc
        chunks, self.pending, self.pending_size = self.pending, [], 0
        if chunks and self.error is None:
            self.task = asyncio.ensure_future(self.handler.run(self.writer.write, chunks))

    async def finish(self) -> None:
        """Write what is left and put the file in place."""
        await self._flush()
        await self._flush()  # the last write's outcome
        if self.error is not None:
            raise self.error
        await self.handler.run(self.writer.commit)
        self.done = True

    async def abandon(self) -> None:
        """The request ended without :meth:`finish` (refused, cut off): nothing stays."""
        if self.task is not None:
            with contextlib.suppress(Exception):
                await self.task
        with contextlib.suppress(Exception):
            await self.handler.run(self.writer.discard)


@web.stream_request_body
class StreamedUploadHandler(ArtifactsMixin, DeferredXsrf):
    """A handler whose ``PUT`` body is streamed into a file (:class:`Upload`): admitted in
    ``prepare`` (see :func:`start_upload`) only for an authenticated caller allowed to
    write, otherwise drained unread and refused by ``put``."""

    _upload: Upload | None = None
    _refusal: BaseException | None = None

    def writer_opener(self) -> Callable[[], ArtifactWriter]:
        """What opens this request's file (called in the pool; may raise a refusal)."""
        raise NotImplementedError

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self.request.method != "PUT" or self._finished:
            return
        if (
            not self.current_user
            or self._xsrf_refusal is not None
            or not self.authorizer.is_authorized(
                self, self.current_user, "write", self.auth_resource
            )
        ):
            return  # write nothing for strangers: put() refuses once the body is drained
        self._upload, self._refusal = await start_upload(self, self.writer_opener())
        if self._upload is not None:
            await take_body(self, self._upload)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self._upload.feed(chunk) if self._upload is not None else None

    def on_finish(self) -> None:
        self._end_upload()
        super().on_finish()

    def on_connection_close(self) -> None:
        self._end_upload()
        super().on_connection_close()

    def _end_upload(self) -> None:
        end_upload(self, self._upload)
        self._upload = None

    async def finish_upload(self) -> None:
        """In ``put``: raise the refusal, if any, else write the rest and commit."""
        if self._refusal is not None:
            raise self._refusal
        if self._upload is None:  # (prepare starts one or says why not)
            raise invalid("The upload was not started.")
        await self._upload.finish()


class ArtifactHandler(StreamedUploadHandler):
    """``PUT`` (raw body, streamed to its file), ``GET`` (streamed) and ``DELETE`` of one
    artifact path."""

    def writer_opener(self) -> Callable[[], ArtifactWriter]:
        return writer_at(self, self.path_args[0])

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        self.refuse_if_forged()

        async def work() -> None:
            await self.finish_upload()
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
    """Stream an open artifact to the client as an attachment, then close it.

    A local file is sent with its length and ``Accept-Ranges: bytes``, and one byte range
    of it (``Range: bytes=a-b``, ``a-``, ``-n``; what browsers and download tools resume
    with) is answered 206, an unsatisfiable one 416; ``If-Range`` with another date than
    the file's ``Last-Modified`` gets the whole file. A local file goes from the page cache
    to the socket with ``sendfile`` on a plain HTTP connection (:mod:`.sendfile`: no byte
    through Python); otherwise it is read from the event loop in 1 MiB pieces while reads
    are quick, like tornado's static files, and after a read slower than :data:`SLOW_IO`
    (or for another store's stream) in 4 MiB pieces in the store's pool, the next one while
    the last is sent. Each piece is sent before another is read: memory stays at two
    pieces, whatever the file."""
    ctype = content_type(rel)
    reading: asyncio.Future[bytes] | None = None
    try:
        handler.set_header("Content-Type", ctype)
        handler.set_header("X-Content-Type-Options", "nosniff")
        handler.set_header("Content-Disposition", content_disposition(posixpath.basename(rel)))
        stat = _stat_of(stream)
        remaining: int | None = None
        if stat is not None:
            size = stat.st_size
            modified = httputil.format_timestamp(stat.st_mtime)
            handler.set_header("Accept-Ranges", "bytes")
            handler.set_header("Last-Modified", modified)
            wanted = _byte_range(handler.request.headers, size, modified)
            if wanted == UNSATISFIABLE:
                handler.set_status(416)
                handler.set_header("Content-Range", f"bytes */{size}")
                remaining = 0
            elif isinstance(wanted, tuple):
                start, end = wanted
                await handler.run(stream.seek, start)
                handler.set_status(206)
                handler.set_header("Content-Range", f"bytes {start}-{end}/{size}")
                remaining = end - start + 1
            else:
                remaining = size
            handler.set_header("Content-Length", remaining)
        inline = stat is not None  # a local file: read from the loop while reads are quick
        if inline and remaining and can_send(handler):
            start = await handler.run(stream.tell)
            if await send_file(handler, stream.fileno(), start, remaining):
                remaining = 0
        while remaining != 0:
            if reading is not None:
                chunk = await reading
                reading = None
            elif inline:
                started = time.monotonic()
                chunk = stream.read(_piece(remaining, INLINE_CHUNK))
                inline = time.monotonic() - started < SLOW_IO
            else:
                chunk = await handler.run(stream.read, _piece(remaining))
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            if remaining != 0 and not inline:  # read ahead while this piece goes out
                reading = asyncio.ensure_future(handler.run(stream.read, _piece(remaining)))
            handler.write(chunk)
            del chunk
            await handler.flush()
    finally:
        if reading is not None:
            with contextlib.suppress(Exception):
                await reading
        await handler.run(stream.close)
    handler.finish(set_content_type=ctype)  # (APIHandler would say JSON for an empty file)


def _piece(remaining: int | None, size: int = CHUNK) -> int:
    return size if remaining is None else min(size, remaining)


UNSATISFIABLE = "unsatisfiable"
_RANGE = re.compile(r"bytes=\s*(\d*)\s*-\s*(\d*)\s*$")


def _byte_range(
    headers: httputil.HTTPHeaders, size: int, modified: str
) -> tuple[int, int] | str | None:
    """The one range (first, last byte) a ``Range`` header asks for, UNSATISFIABLE, or None
    for the whole file (no header, one this server does not serve, such as several ranges,
    or an ``If-Range`` the file no longer matches)."""
    header = headers.get("Range")
    if not header:
        return None
    if_range = headers.get("If-Range")
    if if_range is not None and if_range.strip() != modified:
        return None
    m = _RANGE.match(header.strip())
    if m is None or not (m.group(1) or m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # invalid: ignored (RFC 9110 14.1.1)
    if start >= size:
        return UNSATISFIABLE
    return start, end


def _stat_of(stream: BinaryIO) -> os.stat_result | None:
    """A local file's status (its length lets clients see a cut-off download); None
    for other streams."""
    try:
        return os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    base = r"api/2\.0/mlflow-artifacts/artifacts"
    return [(base, ArtifactListHandler, {}), (base + r"/(.+)", ArtifactHandler, {})]
