"""The stable address of a local deployment: a small HTTP router in front of its scoring
processes.

``python -m jupyter_mlops.deployments.router --name D --port P --backend 127.0.0.1:Q ...``
listens on P for as long as the deployment lives (across rollouts, scoring-process restarts
and Jupyter server restarts) and forwards every request, round robin, to the scoring
processes of the version being served, over kept-alive connections. A rollout starts the new
processes, waits until they are ready, then switches the router to them in one call
(``PUT /_mlops/router`` with ``{"backends": [...]}``, authorized by the token in
``$JUPYTER_MLOPS_ROUTER_TOKEN``). A canary is two groups of backends with weights,
``{"groups": [{"backends": [...], "weight": 80}, {"backends": [...], "weight": 20}]}``: the
requests are spread over the groups by smooth weighted round robin (every 100 follow the
weights exactly) and round robin within a group; requests
in flight finish on the old processes, which drain before they exit. A request whose backend
connection fails before any answer came back (a kept-alive connection the backend closed, a
process that just died) is sent again on a fresh connection or the next backend, so clients
see no failure while one backend is ready. ``GET /_mlops/router`` tells the backends.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import json
import os
import signal
import sys
from typing import Any

from tornado import httpserver, ioloop, web

ENV_TOKEN = "JUPYTER_MLOPS_ROUTER_TOKEN"
CONTROL_PATH = "/_mlops/router"
#: Request headers not forwarded (hop-by-hop, or set by the router).
_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
}


class BackendError(Exception):
    """The backend failed before answering (safe to send the request elsewhere)."""


class Backend:
    """One scoring process: ``host:port`` and a pool of idle kept-alive connections."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        self.host, self.port = host or "127.0.0.1", int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.closed = False

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 10)
        except (OSError, asyncio.TimeoutError) as e:
            raise BackendError(f"cannot connect to {self.address}: {e}") from None

    async def send(
        self, head: bytes, body: bytes, no_body: bool = False
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request; a reused connection that turns out closed is replaced once."""
        for attempt in (0, 1):
            reused = bool(self.idle) and attempt == 0
            conn = self.idle.pop() if reused else await self._connect()
            try:
                answer, keep = await self._exchange(conn, head, body, no_body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                # died mid-answer: scoring is idempotent, so the request may go again
                conn[1].close()
                if reused:
                    continue
                raise BackendError(f"{self.address}: {e}") from None
            except BackendError:
                conn[1].close()
                if reused:
                    continue
                raise
            if keep and not self.closed and len(self.idle) < 64:
                self.idle.append(conn)
            else:
                conn[1].close()
            return answer
        raise BackendError(f"{self.address} closed the connection")  # pragma: no cover

    async def _exchange(
        self,
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        head: bytes,
        body: bytes,
        no_body: bool,
    ) -> tuple[tuple[int, list[tuple[str, str]], bytes], bool]:
        reader, writer = conn
        try:
            writer.write(head + body)
            await writer.drain()
            status_line = await reader.readline()
        except (OSError, asyncio.IncompleteReadError) as e:
            raise BackendError(f"{self.address}: {e}") from None
        if not status_line:
            raise BackendError(f"{self.address} closed the connection")
        parts = status_line.decode("latin-1").split(" ", 2)
        status = int(parts[1])
        headers: list[tuple[str, str]] = []
        length = None
        chunked = False
        keep = True
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            k, v = k.strip(), v.strip()
            lk = k.lower()
            if lk == "content-length":
                length = int(v)
            elif lk == "transfer-encoding":
                chunked = "chunked" in v.lower()
            elif lk == "connection":
                keep = "close" not in v.lower()
            if lk not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                headers.append((k, v))
        if no_body:
            data = b""
        elif chunked:
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(chunks)
        elif length is not None:
            data = await reader.readexactly(length) if length else b""
        elif status in (204, 304) or 100 <= status < 200:
            data = b""
        else:
            data = await reader.read()
            keep = False
        return (status, headers, data), keep

    def close(self) -> None:
        self.closed = True
        for _, writer in self.idle:
            writer.close()
        self.idle = []


class Group:
    """Backends serving one version, with the share of the requests it gets (``weight``)."""

    def __init__(self, backends: list[Backend], weight: int) -> None:
        self.backends = backends
        self.weight = weight
        self.credit = 0
        self._cycle: Any = itertools.cycle(backends) if backends else iter(())

    def next(self) -> Backend | None:
        return next(self._cycle, None)


class Router:
    def __init__(self, name: str, backends: list[str], token: str, max_body: int) -> None:
        self.name = name
        self.token = token
        self.max_body = max_body
        self.backends: list[Backend] = []
        self.groups: list[Group] = []
        self.requests = 0
        self.failures = 0
        self.set_groups([(backends, 100)])

    def set_backends(self, addresses: list[str]) -> None:
        self.set_groups([(addresses, 100)])

    def set_groups(self, groups: list[tuple[list[str], int]]) -> None:
        """Route to these backends, each group (a version: a canary beside the served one)
        getting its weight's share of the requests."""
        old = {b.address: b for b in self.backends}
        self.groups = []
        self.backends = []
        for addresses, weight in groups:
            members = [old.pop(a) if a in old else Backend(a) for a in addresses]
            self.backends += members
            self.groups.append(Group(members, max(0, int(weight))))
        for b in old.values():  # idle connections only: requests in flight finish
            b.close()

    def _pick(self) -> Group | None:
        """The next request's group: smooth weighted round robin (nginx's), so every 100
        requests follow the weights exactly and the versions' requests interleave."""
        live = [g for g in self.groups if g.backends and g.weight > 0]
        if not live:
            return None
        total = sum(g.weight for g in live)
        for g in live:
            g.credit += g.weight
        chosen = max(live, key=lambda g: g.credit)
        chosen.credit -= total
        return chosen

    def _order(self) -> list[Backend]:
        """Backends to try for one request: the next of the chosen group first, then the
        group's others, then the other groups' (a failed backend is never the answer while
        one is ready)."""
        first = self._pick()
        start = first.next() if first is not None else None
        if first is None or start is None:
            return []
        i = first.backends.index(start)
        out = first.backends[i:] + first.backends[:i]
        for g in self.groups:
            if g is not first:
                out += [b for b in g.backends if b not in out]
        return out

    async def forward(
        self, head: bytes, body: bytes, no_body: bool = False
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        self.requests += 1
        tried: list[str] = []
        order = self._order()
        for backend in order + order[:1]:  # the first once more: a fresh connection
            try:
                return await backend.send(head, body, no_body)
            except BackendError as e:
                tried.append(str(e))
        self.failures += 1
        msg = (
            f"Deployment '{self.name}' has no ready scoring process"
            + (f" ({'; '.join(tried)})" if tried else "")
            + "."
        )
        return (
            503,
            [("Content-Type", "application/json")],
            json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": msg}).encode(),
        )


@web.stream_request_body
class ProxyHandler(web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def initialize(self, router: Router) -> None:  # type: ignore[override]
        self.router = router
        self._chunks: list[bytes] = []
        self._size = 0

    def prepare(self) -> None:
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.router.max_body:
            self._refuse()

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._size > self.router.max_body:
            self._chunks = []
            self._refuse()
        else:
            self._chunks.append(chunk)

    def _refuse(self) -> None:
        self.set_status(413)
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "error_code": "BAD_REQUEST",
                    "message": (
                        f"Request body too large: deployment '{self.router.name}' accepts at most "
                        f"{self.router.max_body} bytes."
                    ),
                }
            )
        )

    def compute_etag(self) -> None:
        return None

    def set_default_headers(self) -> None:
        self._headers.clear()  # the backend's headers, not tornado's defaults

    async def _any(self) -> None:
        if self._finished:
            return
        req = self.request
        if req.path == CONTROL_PATH:
            await self._control()
            return
        body = b"".join(self._chunks)
        lines = [f"{req.method} {req.uri} HTTP/1.1", "Host: backend"]
        lines += [f"{k}: {v}" for k, v in req.headers.get_all() if k.lower() not in _HOP]
        if body or req.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        status, headers, data = await self.router.forward(head, body, req.method == "HEAD")
        self.set_status(status, None if status in web.httputil.responses else "Unknown")
        for k, v in headers:
            if k.lower() not in ("server", "date"):
                self.add_header(k, v)
        self.set_header("Server", "jupyter-mlops-router")
        self.finish(data)

    async def _control(self) -> None:
        r = self.router
        if self.request.method == "PUT":
            given = self.request.headers.get("X-MLOps-Router-Token", "")
            if not r.token or not hmac.compare_digest(given, r.token):
                self.set_status(403)
                self.finish({"error_code": "PERMISSION_DENIED", "message": "bad router token"})
                return
            doc = json.loads(b"".join(self._chunks) or b"{}")
            if doc.get("groups") is not None:
                r.set_groups(
                    [
                        ([str(a) for a in g.get("backends") or []], int(g.get("weight", 100)))
                        for g in doc["groups"]
                    ]
                )
            else:
                r.set_backends([str(a) for a in doc.get("backends") or []])
        self.finish(
            {
                "name": r.name,
                "backends": [b.address for b in r.backends],
                "groups": [
                    {"backends": [b.address for b in g.backends], "weight": g.weight}
                    for g in r.groups
                ],
                "requests": r.requests,
                "unavailable": r.failures,
                "pid": os.getpid(),
            }
        )

    get = head = post = put = delete = patch = options = _any  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jupyter_mlops.deployments.router")
    p.add_argument("--name", required=True, help="the deployment's name")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend", action="append", default=[], help="host:port (repeatable)")
    p.add_argument("--max-body-size", type=int, default=20 * 1024 * 1024)
    args = p.parse_args(argv)
    import logging

    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    router = Router(args.name, args.backend, os.environ.pop(ENV_TOKEN, ""), args.max_body_size)
    app = web.Application([(r".*", ProxyHandler, {"router": router})], compress_response=False)
    server = httpserver.HTTPServer(app, max_body_size=1 << 40, xheaders=False)
    try:
        server.listen(args.port, args.host)
    except OSError as e:
        print(
            f"router for '{args.name}': cannot listen on {args.host}:{args.port}: {e}",
            file=sys.stderr,
            flush=True,
        )
        return 3
    loop = ioloop.IOLoop.current()
    signal.signal(signal.SIGTERM, lambda *_: loop.add_callback_from_signal(loop.stop))
    print(
        f"router for deployment '{args.name}' on http://{args.host}:{args.port} -> "
        f"{', '.join(args.backend) or '(no backend yet)'}",
        flush=True,
    )
    try:
        loop.start()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
