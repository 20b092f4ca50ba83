"""The notification service: what this server has to tell the user, and their answers.

Services post a notification (a message, a type, optional actions); every open JupyterLab polls
``api/v1/notifications?after=<seq>`` and shows new ones with JupyterLab's Notification API; pressing an
action button posts ``api/v1/notifications/<id>/actions/<action>``, which runs the poster's callback.
A notification posted again under the same ``key`` replaces the earlier one (one culling warning per
server, not one per report). Kept in memory: they are about this server's current life.

The service also listens to the app's event bus (:mod:`jupyter_mlops.events`): a run, pipeline run,
training job or deployment rollout that ends becomes a notification with a link to it, and, as the
user's settings say (:mod:`.settings`), an e-mail and webhook calls, sent in the background with
retries (:mod:`.channels`). Runs of one experiment that end the same way within the user's
``groupRuns`` seconds of each other share one JupyterLab notification ("12 runs finished in
experiment 'sweep'", linking to the experiment), so a sweep does not pile up pop-ups; e-mails and
webhooks stay one per run (receivers count them).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from traitlets import Float, Int, Unicode, default, validate

from ..events import Event
from ..services import Service
from ..tracking.errors import invalid, not_found
from . import settings as user_settings
from .channels import Delivery, DeliveryQueue, SmtpSettings, post_webhook, send_mail

#: Tags of the tracked runs that belong to a pipeline run or a training job: their end is told
#: by the pipeline or job's own event (the names of pipelines/executor.py and jobs/service.py).
OWNED_RUN_TAGS = ("mlops.pipeline.run_id", "mlops.pipeline", "mlops.job")
#: Notification type in JupyterLab per outcome.
TYPES = {"succeeded": "success", "failed": "error", "killed": "warning", "culled": "warning"}

#: Verbs of a group of runs by outcome ("12 runs finished").
GROUP_VERBS = {"succeeded": "finished", "failed": "failed", "killed": "were killed"}

ActionCallback = Callable[[str], "Awaitable[Any] | Any"]


@dataclass
class RunGroup:
    """The notification that tells the runs of one experiment and outcome ended lately."""

    nid: str
    run_ids: set[str]
    last: float  # time.monotonic() of the latest run told


@dataclass
class Notification:
    id: str
    seq: int
    message: str
    type: str = "info"  # info | success | warning | error (JupyterLab's types)
    source: str = ""
    actions: list[dict[str, str]] = field(default_factory=list)  # [{"id", "label"}]
    created: float = field(default_factory=time.time)
    dismissed: bool = False
    on_action: ActionCallback | None = None
    #: What the notification is about, as JupyterLab's ``#/...`` link ("" when none): the
    #: front end adds an *Open* button that opens it.
    link: str = ""
    #: Milliseconds after which JupyterLab hides the toast (0: it stays until closed); it
    #: stays in JupyterLab's notification list either way.
    auto_close: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "message": self.message,
            "type": self.type,
            "source": self.source,
            "actions": self.actions,
            "created": self.created,
            "dismissed": self.dismissed,
            "link": self.link,
            "auto_close": self.auto_close,
        }


class NotificationService(Service):
    """Notifications of this server for its JupyterLabs (``api/v1/notifications``)."""

    keep = Int(
        200,
        config=True,
        help="How many notifications the server keeps for JupyterLabs opened later, e.g. 200.",
    )

    # -- per-user settings and links ----------------------------------------------------------
    settings_path = Unicode(
        config=True,
        help="""Where the user's notification settings (events, filters, e-mail address, webhooks
        and their secrets) are kept, readable by the user only; JupyterLab's settings editor
        sends them here. Default: <jupyter data dir>/mlops/notifications.json, e.g.
        ~/.local/share/jupyter/mlops/notifications.json (on a hub: in each user's home).""",
    )

    @default("settings_path")
    def _default_settings_path(self) -> str:
        from jupyter_core.paths import jupyter_data_dir

        return os.path.join(jupyter_data_dir(), "mlops", "notifications.json")

    public_url = Unicode(
        config=True,
        help="""The URL people open this server at, for the links in e-mails and webhook
        payloads, e.g. https://hub.example.org/user/alice/. Default: under JupyterHub,
        $JUPYTERHUB_PUBLIC_URL (or the hub's host) with $JUPYTERHUB_SERVICE_PREFIX; else this
        server's own URL.""",
    )

    # -- e-mail ---------------------------------------------------------------------------------
    smtp_host = Unicode(
        "",
        config=True,
        help="""SMTP server that sends notification e-mails, e.g. smtp.example.org. Empty: no
        e-mails (users' e-mail settings are ignored and the delivery log says why).""",
    )
    smtp_port = Int(
        0,
        config=True,
        help="SMTP port; 0 picks the usual one for smtp_security: 587 starttls, 465 ssl, 25 none.",
    )
    smtp_security = Unicode(
        "starttls",
        config=True,
        help="""How the SMTP connection is protected: "starttls" (upgrade a plain connection,
        port 587), "ssl" (TLS from the start, port 465) or "none" (a relay on a trusted network,
        e.g. localhost:25).""",
    )

    @validate("smtp_security")
    def _check_security(self, proposal: Any) -> str:
        value = str(proposal["value"]).lower()
        if value not in ("starttls", "ssl", "none"):
            raise ValueError(f"smtp_security must be starttls, ssl or none, not {value!r}")
        return value

    smtp_username = Unicode(
        "", config=True, help="SMTP login, e.g. notifications@example.org (empty: no login)."
    )
    smtp_password = Unicode(
        "",
        config=True,
        help="""SMTP password; better read from the environment in jupyter_server_config.py,
        e.g. c.NotificationService.smtp_password = os.environ["SMTP_PASSWORD"].""",
    )
    smtp_from = Unicode(
        "",
        config=True,
        help="""The From: address of notification e-mails, e.g. "MLOps <mlops@example.org>".
        Default: smtp_username, else jupyter-mlops@<this host>.""",
    )
    smtp_timeout = Float(30.0, config=True, help="Seconds an SMTP conversation may take, e.g. 30.")

    # -- delivery -------------------------------------------------------------------------------
    webhook_timeout = Float(
        10.0, config=True, help="Seconds a webhook receiver has to answer one call, e.g. 10."
    )
    max_attempts = Int(
        5,
        config=True,
        help="""Attempts per e-mail or webhook call before it is logged as failed, e.g. 5
        (retried: connection errors, HTTP 408/429/5xx, SMTP 4xx).""",
    )
    retry_delay = Float(
        1.0,
        config=True,
        help="""Seconds before the first retry; each next one waits twice as long (1, 2, 4, ...),
        at most max_retry_delay; a webhook's Retry-After is honoured.""",
    )
    max_retry_delay = Float(
        60.0, config=True, help="Longest wait between two attempts, in seconds, e.g. 60."
    )
    queue_size = Int(
        1000,
        config=True,
        help="""Deliveries waiting at most; more are logged as dropped (a run never waits for a
        mail or webhook), e.g. 1000.""",
    )
    delivery_workers = Int(4, config=True, help="Deliveries sent at once, e.g. 4.")
    delivery_log_size = Int(
        500,
        config=True,
        help="Deliveries kept for GET api/v1/notifications/deliveries (newest first), e.g. 500.",
    )
    drain_timeout = Float(
        10.0,
        config=True,
        help="""Seconds the server's shutdown waits for deliveries still queued (what its
        stopping ended, e.g. a culled server's runs), e.g. 10.""",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seq = itertools.count(1)
        self._items: dict[str, Notification] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._groups: dict[tuple[str, str], RunGroup] = {}
        try:
            self.settings = user_settings.load(self.settings_path)
        except Exception as e:  # noqa: BLE001 - a hand-edited file gone wrong: defaults until saved
            self.log.error("jupyter-mlops: %s: %s; default settings used", self.settings_path, e)
            self.settings = user_settings.UserSettings()
        self.deliveries = DeliveryQueue(
            self._deliver,
            size=self.queue_size,
            workers=self.delivery_workers,
            max_attempts=self.max_attempts,
            retry_delay=self.retry_delay,
            max_delay=self.max_retry_delay,
            log_size=self.delivery_log_size,
            log=self.log,
        )

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.deliveries.start()

    async def stop(self) -> None:
        """Send what is queued (up to ``drain_timeout``), then stop."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.drain_timeout)
        await self.deliveries.drain(self.drain_timeout)
        await self.deliveries.stop()
        self._loop = None

    # -- settings -------------------------------------------------------------------------------
    def get_settings(self) -> dict[str, Any]:
        return {"settings": self.settings.to_json(), "smtp": bool(self.smtp_host)}

    def put_settings(self, data: Any) -> dict[str, Any]:
        """Check, keep and save the user's settings (blocking: writes the file)."""
        new = user_settings.UserSettings.from_json(data)
        if new.email and not self.smtp_host:
            self.log.warning(
                "jupyter-mlops: notification e-mails to %s wait for an SMTP server "
                "(c.NotificationService.smtp_host)",
                new.email,
            )
        user_settings.save(self.settings_path, new)
        self.settings = new
        return self.get_settings()

    # -- events -----------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """An event from the bus (any thread): handled on the service's loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._spawn, event)

    def _spawn(self, event: Event) -> None:
        task = asyncio.ensure_future(self.handle(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, event: Event) -> None:
        """Tell the user about ``event`` as their settings say."""
        try:
            details = await asyncio.get_running_loop().run_in_executor(None, self._details, event)
        except Exception:
            self.log.exception("jupyter-mlops: reading what %s %s is", event.kind, event.id)
            details = {}
        if details is None:  # told by its pipeline or job
            return
        prefs = self.settings
        if not prefs.wants(event, details.get("experiment_name", "")):
            return
        if prefs.jupyterlab:
            self.tell_in_jupyterlab(event, details, prefs.group_runs)
        payload = self.payload(event, details)
        if prefs.email:
            self.deliveries.enqueue(
                Delivery(
                    "email",
                    prefs.email,
                    payload,
                    subject=f"[MLOps] {event.title()}",
                    text=self.mail_text(event, details, payload["url"]),
                )
            )
        for hook in prefs.webhooks:
            self.deliveries.enqueue(Delivery("webhook", hook.url, payload, secret=hook.secret))

    def tell_in_jupyterlab(self, event: Event, details: dict[str, Any], window: float) -> None:
        """Post ``event``'s notification; a run that ends as another run of its experiment did
        within ``window`` seconds (0: never) updates that one into a count of them instead."""
        kind = TYPES.get(event.outcome, "info")
        auto_close = 0 if event.failure else 10000
        group_key = (event.experiment_id, event.outcome)
        group = self._groups.get(group_key) if event.kind == "run" and window > 0 else None
        now = time.monotonic()
        shown = self._items.get(group.nid) if group else None
        if group and shown and not shown.dismissed and now - group.last <= window:
            group.last = now
            if event.id in group.run_ids:
                return  # the same run told twice (e.g. by its client and its heartbeat)
            group.run_ids.add(event.id)
            n = len(group.run_ids)
            exp = details.get("experiment_name") or event.experiment_id
            verb = GROUP_VERBS.get(event.outcome, event.outcome)
            self.post(
                f"{n} runs {verb} in experiment '{exp}'",
                type=kind,
                source="run",
                key=group.nid,
                link=f"#/experiments/{quote(event.experiment_id, safe='')}",
                auto_close=auto_close,
            )
            return
        note = self.post(
            self.message(event, details),
            type=kind,
            source=event.kind,
            key=f"{event.kind}:{event.id}",
            link=event.link,
            auto_close=auto_close,
        )
        if event.kind == "run" and window > 0:
            self._groups[group_key] = RunGroup(note.id, {event.id}, now)
            # Forget groups nobody adds to any more (an experiment per sweep adds up).
            for k in [k for k, g in self._groups.items() if now - g.last > window]:
                del self._groups[k]

    def _details(self, event: Event) -> dict[str, Any] | None:
        """What the message needs beyond the event (blocking: store reads)."""
        out: dict[str, Any] = {}
        if event.where:  # not in this server's store (a run on the hub's tracking service)
            return {"experiment_name": event.experiment_name}
        if event.kind == "run":
            run = self.store.get_run(event.id)
            if any(t in run.data.tags for t in OWNED_RUN_TAGS):
                return None
        if event.experiment_id:
            try:
                out["experiment_name"] = self.store.get_experiment(event.experiment_id).name
            except Exception:  # noqa: BLE001 - deleted meanwhile: the id will do
                out["experiment_name"] = ""
        return out

    @staticmethod
    def message(event: Event, details: dict[str, Any]) -> str:
        text = event.title()
        exp = details.get("experiment_name")
        if exp and event.kind in ("run", "job"):
            text += f" (experiment '{exp}')"
        if event.reason and event.failure:
            reason = event.reason if len(event.reason) <= 300 else event.reason[:300] + "…"
            text += f": {reason}"
        return text

    def payload(self, event: Event, details: dict[str, Any]) -> dict[str, Any]:
        """The JSON of an e-mail's or webhook's event."""
        out = event.to_json()
        out["experiment_name"] = details.get("experiment_name", "")
        out["title"] = event.title()
        out["url"] = self.absolute_link(event.link)
        out["timestamp"] = datetime.fromtimestamp(event.end_time / 1000, timezone.utc).isoformat()
        out["server"] = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
        out["user"] = os.environ.get("JUPYTERHUB_USER", "") or _os_user()
        return out

    def mail_text(self, event: Event, details: dict[str, Any], url: str) -> str:
        lines = [self.message(event, details), ""]
        rows = [
            ("What", event.kind.replace("_", " ")),
            ("Name", event.name_or_id),
            ("Status", event.status),
            ("Experiment", details.get("experiment_name") or event.experiment_id),
            ("Pipeline", event.pipeline),
            ("Reason", event.reason),
        ]
        lines += [f"{k}: {v}" for k, v in rows if v]
        if url:
            lines += ["", f"Open it: {url}"]
        lines += ["", "Change what you are told in JupyterLab: Settings > MLOps notifications."]
        return "\n".join(lines) + "\n"

    def absolute_link(self, fragment: str) -> str:
        base = self.public_url or _default_public_url(self.parent)
        if not base:
            return ""
        return base.rstrip("/") + "/mlops/" + fragment

    # -- deliveries -------------------------------------------------------------------------------
    def smtp(self) -> SmtpSettings:
        port = self.smtp_port or {"starttls": 587, "ssl": 465}.get(self.smtp_security, 25)
        sender = self.smtp_from or self.smtp_username
        if not sender:
            import socket

            sender = f"jupyter-mlops@{socket.getfqdn()}"
        return SmtpSettings(
            self.smtp_host,
            port,
            self.smtp_security,
            self.smtp_username,
            self.smtp_password,
            sender,
            self.smtp_timeout,
        )

    async def _deliver(self, delivery: Delivery) -> Any:
        from .channels import DeliveryError

        if delivery.channel == "webhook":
            return await post_webhook(delivery, self.webhook_timeout)
        if not self.smtp_host:
            raise DeliveryError(
                "no SMTP server configured (c.NotificationService.smtp_host)", retry=False
            )
        smtp = self.smtp()
        await asyncio.get_running_loop().run_in_executor(
            None, send_mail, smtp, delivery.target, delivery.subject, delivery.text
        )
        return f"sent via {smtp.host}:{smtp.port}"

    def send_test(self) -> dict[str, Any]:
        """A test event to every channel the user set (filters aside): what a receiver or
        mailbox gets, to check the settings; the deliveries are in the log."""
        event = Event(kind="run", outcome="succeeded", id="test", name="test notification")
        payload = {**self.payload(event, {}), "event": "test", "test": True}
        queued: list[Delivery] = []
        prefs = self.settings
        if prefs.email:
            text = "A test of your MLOps notification settings: e-mails reach you.\n"
            queued.append(
                Delivery("email", prefs.email, payload, subject="[MLOps] Test", text=text)
            )
        queued += [Delivery("webhook", h.url, payload, secret=h.secret) for h in prefs.webhooks]
        if not queued:
            raise invalid(
                "No e-mail address or webhook in the notification settings: nothing to test."
            )
        for delivery in queued:
            self.deliveries.enqueue(delivery)
        if prefs.jupyterlab:
            self.post("MLOps notifications work: this is a test.", type="info", source="test")
        return {"deliveries": [d.id for d in queued]}

    def delivery_log(self, limit: int = 100) -> dict[str, Any]:
        if limit < 1:
            raise invalid(f"max_results must be at least 1, got {limit}.")
        return {"deliveries": self.deliveries.entries(limit)}

    def post(
        self,
        message: str,
        *,
        type: str = "info",
        source: str = "",
        key: str | None = None,
        actions: list[dict[str, str]] | None = None,
        on_action: ActionCallback | None = None,
        link: str = "",
        auto_close: int = 0,
    ) -> Notification:
        """Post (or, with the same ``key``, replace) a notification; returns it."""
        seq = next(self._seq)
        nid = key or f"n{seq}"
        old = self._items.pop(nid, None)
        if old is not None and old.message == message and not old.dismissed:
            self._items[nid] = old  # the same warning again: no new pop-up
            return old
        n = Notification(
            nid,
            seq,
            message,
            type,
            source,
            list(actions or []),
            on_action=on_action,
            link=link,
            auto_close=auto_close,
        )
        self._items[nid] = n
        while len(self._items) > self.keep:
            self._items.pop(next(iter(self._items)))
        return n

    def dismiss(self, nid: str) -> None:
        n = self._items.get(nid)
        if n is not None:
            n.dismissed = True
            n.seq = next(self._seq)  # JupyterLabs learn of it on their next poll

    def list(self, after: int = 0) -> list[dict[str, Any]]:
        return [n.to_json() for n in self._items.values() if n.seq > after]

    @property
    def last_seq(self) -> int:
        return max((n.seq for n in self._items.values()), default=0)

    async def act(self, nid: str, action: str) -> dict[str, Any]:
        """Run a notification's action (the button the user pressed); the notification is then dismissed."""
        n = self._items.get(nid)
        if n is None or n.dismissed:
            raise not_found(f"No open notification {nid!r}.")
        if action not in {a["id"] for a in n.actions}:
            raise not_found(f"Notification {nid!r} has no action {action!r}.")
        result = n.on_action(action) if n.on_action is not None else None
        if inspect.isawaitable(result):
            result = await result
        self.dismiss(nid)
        return {"id": nid, "action": action, "result": result}


def _os_user() -> str:
    from ..services import current_user

    return current_user()


def _default_public_url(app: Any) -> str:
    """Under JupyterHub: the hub's public URL with this server's prefix; else the server's
    own URL (``MLOpsApp.server_url``)."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "")
    public = os.environ.get("JUPYTERHUB_PUBLIC_URL", "") or os.environ.get(
        "JUPYTERHUB_PUBLIC_HUB_URL", ""
    )
    if prefix and public:
        from urllib.parse import urlsplit

        parts = urlsplit(public)
        return f"{parts.scheme}://{parts.netloc}{prefix}"
    server_url = getattr(app, "server_url", None)
    if callable(server_url):
        return server_url() or ""
    return ""
