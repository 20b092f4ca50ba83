"""A local file sent straight from the page cache to the client's socket (``os.sendfile``):
no byte passes through Python, which is what makes a large download cost the server little
CPU (on a busy machine, CPU it would wait for).

Tornado has no sendfile, so this writes around it, only where that is safe: a plain (not
TLS) HTTP/1.1 connection whose headers are already sent, with nothing in tornado's write
buffer and no transform of the body (``compress_response``). The socket is used through a
duplicate of its descriptor, so waiting for it to be writable is an event-loop registration
of our own that cannot disturb tornado's; the connection's count of body bytes still to come
is kept as if tornado had written them. Anything else is served by the caller's read loop.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from typing import TYPE_CHECKING, Any

from tornado import iostream

if TYPE_CHECKING:
    from .base import MLOpsHandler

#: Bytes one ``sendfile`` call may send (the socket's buffer takes less at a time).
SENDFILE_CHUNK = 16 << 20
#: A ``sendfile`` call slower than this (seconds) read from the disk, not the page cache:
#: the rest of the transfer calls it from the store's pool, off the event loop.
SLOW_IO = 0.25
#: Errors that say this file or socket cannot be sent with ``sendfile`` (before any byte).
_UNSUPPORTED = frozenset((errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK))


def _connection(handler: MLOpsHandler) -> Any:
    """The request's HTTP/1 connection if sendfile may write to its socket, else None."""
    conn = handler.request.connection
    stream = getattr(conn, "stream", None)
    if (
        not hasattr(os, "sendfile")
        # exactly a plain socket stream: an SSLIOStream's bytes must go through TLS
        or type(stream) is not iostream.IOStream
        # (set from Content-Length once the headers are written; None before)
        or not hasattr(conn, "_expected_content_remaining")
    ):
        return None
    return conn


def can_send(handler: MLOpsHandler) -> bool:
    """Whether :func:`send_file` may be tried for this request (checked before headers)."""
    return _connection(handler) is not None


async def _writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


async def send_file(handler: MLOpsHandler, fd: int, offset: int, count: int) -> bool:
    """Send ``count`` bytes of file ``fd`` from ``offset`` as the rest of the response body
    (the headers are flushed first). False if sendfile cannot be used here, before any byte
    went out (the caller sends the bytes itself); errors after that are raised."""
    conn = _connection(handler)
    if conn is None:
        return False
    await handler.flush()  # the headers, and anything tornado still buffers
    headers = getattr(handler, "_headers", None)
    expected = getattr(conn, "_expected_content_remaining", None)
    if headers is None or "Content-Encoding" in headers or expected != count:
        return False  # a transform changes the body (gzip) or the length is not ours to send
    stream = conn.stream
    if stream.closed() or stream.writing():
        return False
    sock = os.dup(stream.socket.fileno())  # our own registration in the event loop
    inline, sent = True, 0
    try:
        while count > 0:
            piece = min(count, SENDFILE_CHUNK)
            try:
                if inline:
                    started = time.monotonic()
                    n = os.sendfile(sock, fd, offset, piece)
                    inline = time.monotonic() - started < SLOW_IO
                else:
                    n = await handler.run(os.sendfile, sock, fd, offset, piece)
            except BlockingIOError:
                await _writable(sock)
                continue
            except OSError as exc:
                if sent == 0 and exc.errno in _UNSUPPORTED:
                    return False
                raise
            if n == 0:
                raise OSError(errno.EIO, "the file ended before its length (it was cut short)")
            offset, count, sent = offset + n, count - n, sent + n
            conn._expected_content_remaining -= n
    finally:
        os.close(sock)
    return True
