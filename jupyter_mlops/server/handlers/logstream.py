"""A log served from an offset (or its tail), or followed as a chunked stream until the thing
that writes it ends: a pipeline step's log, a training job rank's log.

A subclass says how to read a chunk (:meth:`FollowedLogHandler.read`) and which header tells
the reader it ended; the query fields, headers and the follow loop are here.
"""

from __future__ import annotations

import asyncio

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..request import Fields
from .base import MLOpsHandler

#: Seconds between reads of a followed log that has no new bytes.
FOLLOW_POLL = 0.25


class FollowedLogHandler(MLOpsHandler):
    """``GET`` with ``offset``, ``max_bytes``, ``tail`` and ``follow=true`` (a stream until
    :meth:`read` says the writer ended); without ``follow`` the next offset is in
    ``X-Log-Offset`` and whether it ended in :attr:`ended_header`."""

    #: The response header that says the writer ended (``X-Step-Ended``, ``X-Job-Ended``).
    ended_header = "X-Log-Ended"

    async def read(
        self, path: tuple[str, ...], offset: int, limit: int, tail: int | None
    ) -> tuple[bytes, int, bool]:
        """(bytes from ``offset`` — or the last ``tail`` bytes —, the next offset, ended)."""
        raise NotImplementedError

    @web.authenticated
    @authorized
    async def get(self, *path: str) -> None:
        async def work() -> None:
            q = Fields.from_query(self.request.query_arguments)
            offset = q.integer("offset", default=0, minimum=0) or 0
            follow = q.boolean("follow", default=False)
            limit = q.integer("max_bytes", default=1 << 20, minimum=1, maximum=16 << 20) or 1 << 20
            tail = q.integer("tail", minimum=0, maximum=16 << 20)
            data, nxt, ended = await self.read(path, offset, limit, tail)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.set_header("Cache-Control", "no-cache")
            if not follow:
                self.set_header("X-Log-Offset", str(nxt))
                self.set_header(self.ended_header, "true" if ended else "false")
                self.finish(data)
                return
            self.set_header("X-Accel-Buffering", "no")  # proxies must not hold the stream
            try:
                while True:
                    if data:
                        self.write(data)
                        await self.flush()
                    if ended and not data:
                        break
                    if not data:
                        await asyncio.sleep(FOLLOW_POLL)
                    data, nxt, ended = await self.read(path, nxt, limit, None)
            except StreamClosedError:
                return
            self.finish()

        await self.guarded(work)


__all__ = ["FollowedLogHandler"]
