"""E-mail and webhook deliveries: a bounded background queue, retries with backoff, a log.

Publishing an event only puts deliveries on the queue (``put_nowait``): a run never waits for an
SMTP or HTTP server. When the queue is full the delivery is logged as ``dropped`` instead.
Workers send; a delivery that failed in a way worth retrying (connection trouble, 408, 429, 5xx,
an SMTP 4xx) is tried again after ``retry_delay * 2**(attempt-1)`` seconds (a webhook's
``Retry-After`` when longer), at most ``max_delay``, until ``max_attempts``; the wait is a
timer, not a busy worker. Every attempt is recorded in the delivery log
(``GET api/v1/notifications/deliveries``).

Webhook requests: ``POST <url>`` with the event as JSON and the headers ``X-MLOps-Event``
(``run.failed``), ``X-MLOps-Delivery`` (an id, the same on retries), ``X-MLOps-Timestamp``
(unix seconds) and, when the webhook has a secret, ``X-MLOps-Signature: sha256=<hex>``: the
HMAC-SHA256 of the raw body with the secret (``signature()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

SIGNATURE_HEADER = "X-MLOps-Signature"


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body with secret>``: what a receiver recomputes."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class DeliveryError(Exception):
    """A failed attempt; ``retry`` says whether another one may succeed."""

    def __init__(self, message: str, retry: bool, after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.after = after


@dataclass
class SmtpSettings:
    host: str
    port: int
    security: str  # "starttls" | "ssl" | "none"
    username: str
    password: str
    sender: str
    timeout: float


@dataclass
class Delivery:
    """One event to one destination, with its attempts."""

    channel: str  # "email" | "webhook"
    target: str  # the address or URL
    event: dict[str, Any]
    subject: str = ""
    text: str = ""
    secret: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = "pending"  # pending | retrying | delivered | failed | dropped
    attempts: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    next_attempt: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "target": self.target,
            "event": self.event.get("event", ""),
            "item": {k: self.event.get(k) for k in ("kind", "id", "name", "outcome")},
            "state": self.state,
            "attempts": list(self.attempts),
            "created": self.created,
            "next_attempt": self.next_attempt,
        }


def send_mail(smtp: SmtpSettings, to: str, subject: str, text: str) -> None:
    """Send one plain-text e-mail (blocking: run it in a thread)."""
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    try:
        server: smtplib.SMTP
        if smtp.security == "ssl":
            server = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout, context=ssl.create_default_context()
            )
        else:
            server = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with server:
            if smtp.security == "starttls":
                server.starttls(context=ssl.create_default_context())
            if smtp.username:
                server.login(smtp.username, smtp.password)
            server.send_message(msg)
    except smtplib.SMTPResponseException as e:  # 4xx: try again later; 5xx: refused
        raw: bytes | str = e.smtp_error
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        raise DeliveryError(f"SMTP {e.smtp_code}: {text}", retry=400 <= e.smtp_code < 500) from None
    except smtplib.SMTPRecipientsRefused as e:
        raise DeliveryError(f"recipient refused: {e.recipients}", retry=False) from None
    except (OSError, smtplib.SMTPException) as e:
        raise DeliveryError(f"{type(e).__name__}: {e}", retry=True) from None


async def post_webhook(delivery: Delivery, timeout: float) -> int:
    """POST the delivery's event; the HTTP status, or :class:`DeliveryError`."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

    body = json.dumps(delivery.event, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "jupyter-mlops-notifications",
        "X-MLOps-Event": str(delivery.event.get("event", "")),
        "X-MLOps-Delivery": delivery.id,
        "X-MLOps-Timestamp": str(int(time.time())),
    }
    if delivery.secret:
        headers[SIGNATURE_HEADER] = signature(delivery.secret, body)
    request = HTTPRequest(
        delivery.target,
        method="POST",
        body=body,
        headers=headers,
        connect_timeout=timeout,
        request_timeout=timeout,
        follow_redirects=False,
    )
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except HTTPClientError as e:  # a timeout (599)
        raise DeliveryError(f"HTTP {e.code}: {e.message}", retry=True) from None
    except OSError as e:
        raise DeliveryError(f"{type(e).__name__}: {e}", retry=True) from None
    code = response.code
    if 200 <= code < 300:
        return code
    after = _retry_after(response.headers.get("Retry-After"))
    retry = code in (408, 425, 429) or code >= 500
    raise DeliveryError(f"HTTP {code} {response.reason or ''}".strip(), retry=retry, after=after)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


Sender = Callable[[Delivery], Awaitable[Any]]


class DeliveryQueue:
    """Deliveries sent in the background by ``workers`` tasks; the last ``log_size`` kept."""

    def __init__(
        self,
        send: Sender,
        *,
        size: int = 1000,
        workers: int = 4,
        max_attempts: int = 5,
        retry_delay: float = 1.0,
        max_delay: float = 60.0,
        log_size: int = 500,
        log: Any = None,
    ) -> None:
        self._send = send
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=max(1, size))
        self._workers_wanted = max(1, workers)
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self.max_attempts = max(1, max_attempts)
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self.log: deque[Delivery] = deque(maxlen=max(1, log_size))
        self._logger = log
        self._busy = 0
        #: Set whenever an attempt ends (drain waits on it).
        self._settled = asyncio.Event()

    def start(self) -> None:
        if not self._workers:
            self._workers = [
                asyncio.ensure_future(self._work()) for _ in range(self._workers_wanted)
            ]

    def enqueue(self, delivery: Delivery) -> None:
        """Queue ``delivery`` (never waits); a full queue logs it as dropped."""
        self.log.append(delivery)
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            delivery.state = "dropped"
            delivery.attempts.append(
                {"time": time.time(), "ok": False, "error": "the delivery queue is full"}
            )
            if self._logger is not None:
                self._logger.warning(
                    "jupyter-mlops: notification queue full, %s to %s dropped",
                    delivery.channel,
                    delivery.target,
                )

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest deliveries first."""
        return [d.to_json() for d in list(self.log)[::-1][:limit]]

    @property
    def idle(self) -> bool:
        return self._queue.empty() and not self._timers and self._busy == 0

    async def drain(self, timeout: float) -> None:
        """Wait until nothing is queued, waiting for a retry or being sent (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not self.idle and time.monotonic() < deadline:
            self._settled.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._settled.wait(), deadline - time.monotonic())

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            self._busy += 1
            try:
                await self._attempt(delivery)
            except Exception:  # a bug of ours must not stop the worker
                if self._logger is not None:
                    self._logger.exception("jupyter-mlops: delivering a notification failed")
            finally:
                self._busy -= 1
                self._queue.task_done()
                self._settled.set()

    async def _attempt(self, delivery: Delivery) -> None:
        started = time.time()
        delivery.next_attempt = None
        try:
            result = await self._send(delivery)
        except DeliveryError as e:
            attempt = {"time": started, "ok": False, "error": str(e)}
            delivery.attempts.append(attempt)
            if not e.retry or len(delivery.attempts) >= self.max_attempts:
                delivery.state = "failed"
                if self._logger is not None:
                    self._logger.warning(
                        "jupyter-mlops: %s notification to %s failed after %d attempt(s): %s",
                        delivery.channel,
                        delivery.target,
                        len(delivery.attempts),
                        e,
                    )
                return
            delay = min(self.max_delay, self.retry_delay * 2 ** (len(delivery.attempts) - 1))
            if e.after is not None:
                delay = min(self.max_delay, max(delay, e.after))
            attempt["retry_in"] = delay
            delivery.state = "retrying"
            delivery.next_attempt = time.time() + delay
            self._later(delay, delivery)
            return
        delivery.attempts.append({"time": started, "ok": True, "result": result})
        delivery.state = "delivered"

    def _later(self, delay: float, delivery: Delivery) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def again() -> None:
            self._timers.discard(handle)  # type: ignore[arg-type]  # set just below
            try:
                self._queue.put_nowait(delivery)
            except asyncio.QueueFull:
                self._later(delay, delivery)  # the queue is full now: later again

        handle = loop.call_later(delay, again)
        self._timers.add(handle)
