"""A small REST client for the benches: one keep-alive connection per thread, token auth,
MLflow's error JSON turned into :class:`BenchError`."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import urllib.parse
from typing import Any


class BenchError(RuntimeError):
    """The server refused a bench request (or could not be reached)."""


class Api:
    """``POST``/``GET`` to ``<url>/<path>`` (``url``: the server's tracking URI, e.g.
    ``https://hub.example.org/user/ada/mlops``), one persistent connection per thread."""

    def __init__(self, url: str, token: str = "", timeout: float = 600.0) -> None:
        parts = urllib.parse.urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BenchError(f"--url must be an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"token {token}"
        self._timeout = timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host,
                    self._port,
                    timeout=self._timeout,
                    context=ssl.create_default_context(),
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """The parsed JSON answer of ``method path``; a non-2xx answer raises."""
        target = f"{self._prefix}/{path}"
        if query:
            target += "?" + urllib.parse.urlencode(
                {k: v for k, v in query.items() if v is not None}, doseq=True
            )
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (0, 1):  # a keep-alive connection the server closed: once more
            conn = self._conn()
            try:
                conn.request(method, target, body=data, headers=self._headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError) as e:
                conn.close()
                self._local.conn = None
                if attempt:
                    raise BenchError(f"{method} {self.url}/{path}: {e}") from e
        if not 200 <= resp.status < 300:
            try:
                message = json.loads(raw).get("message", "")
            except ValueError:
                message = raw[:300].decode(errors="replace")
            raise BenchError(f"{method} {path} answered {resp.status}: {message}")
        return json.loads(raw) if raw else {}

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body)

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, None, **query)

    def timed(self, method: str, path: str, body: Any = None, **query: Any) -> tuple[float, Any]:
        """``(seconds, answer)`` of one call, the answer parsed (as a client would)."""
        t = time.perf_counter()
        out = self.call(method, path, body, **query)
        return time.perf_counter() - t, out
