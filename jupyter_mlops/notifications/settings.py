"""A user's notification settings: which events, through which channels.

JupyterLab's settings editor holds them (``labextension/schema/notifications.json``) and the
front end sends them to ``PUT api/v1/notifications/settings``; the server keeps them in a file of
the user's (``NotificationService.settings_path``, mode 0600: webhook secrets), so e-mails and
webhooks go out when no JupyterLab is open. On a hub every user's server has its own home, so
the file is per user there too. The JSON keys are the settings editor's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..events import KINDS, Event
from ..tracking.errors import invalid

#: A plausible e-mail address (the SMTP server has the last word).
EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
MAX_WEBHOOKS = 10
MAX_LIST = 200


@dataclass
class Webhook:
    url: str
    secret: str = ""

    def to_json(self) -> dict[str, str]:
        return {"url": self.url, "secret": self.secret}


@dataclass
class UserSettings:
    """What the user wants to be told (``to_json``/``from_json``: the settings editor's keys)."""

    #: Pop-ups in this server's JupyterLabs.
    jupyterlab: bool = True
    #: Which kinds of item (``run``, ``pipeline_run``, ``job``, ``deployment``).
    events: list[str] = field(default_factory=lambda: list(KINDS))
    #: Only what failed, was killed or culled.
    failures_only: bool = False
    #: Runs, jobs and pipeline runs of these experiments only (names or ids; empty: all).
    experiments: list[str] = field(default_factory=list)
    #: Pipeline runs of these pipelines only (empty: all).
    pipelines: list[str] = field(default_factory=list)
    #: Nothing that ended sooner than this many seconds after it started (failures too).
    min_duration: float = 0.0
    #: Where e-mails go ("" none; needs the server's SMTP settings).
    email: str = ""
    webhooks: list[Webhook] = field(default_factory=list)
    #: Runs of one experiment ending the same way within this many seconds of each other
    #: share one JupyterLab notification, a count (0: one per run).
    group_runs: float = 60.0

    def to_json(self) -> dict[str, Any]:
        return {
            "jupyterlab": self.jupyterlab,
            "events": list(self.events),
            "failuresOnly": self.failures_only,
            "experiments": list(self.experiments),
            "pipelines": list(self.pipelines),
            "minDuration": self.min_duration,
            "email": self.email,
            "webhooks": [w.to_json() for w in self.webhooks],
            "groupRuns": self.group_runs,
        }

    @classmethod
    def from_json(cls, data: Any) -> UserSettings:
        """Checked settings; an ``invalid`` error (400) names the field that is wrong."""
        if not isinstance(data, dict):
            raise invalid("Notification settings must be a JSON object.")
        known = set(cls().to_json())
        unknown = sorted(set(data) - known)
        if unknown:
            raise invalid(
                f"Unknown notification setting(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}."
            )
        out = cls()
        if "jupyterlab" in data:
            out.jupyterlab = _bool(data["jupyterlab"], "jupyterlab")
        if "failuresOnly" in data:
            out.failures_only = _bool(data["failuresOnly"], "failuresOnly")
        if "events" in data:
            events = _strings(data["events"], "events")
            bad = [e for e in events if e not in KINDS]
            if bad:
                raise invalid(
                    f"events: unknown kind(s) {', '.join(map(repr, bad))}; "
                    f"choose from {', '.join(KINDS)}."
                )
            out.events = events
        if "experiments" in data:
            out.experiments = _strings(data["experiments"], "experiments")
        if "pipelines" in data:
            out.pipelines = _strings(data["pipelines"], "pipelines")
        if "minDuration" in data:
            out.min_duration = _seconds(data["minDuration"], "minDuration")
        if "groupRuns" in data:
            out.group_runs = _seconds(data["groupRuns"], "groupRuns")
        if "email" in data:
            email = data["email"]
            if not isinstance(email, str) or (email.strip() and not EMAIL_RE.match(email.strip())):
                raise invalid(f"email must be one address like ada@example.org, got {email!r}.")
            out.email = email.strip()
        if "webhooks" in data:
            out.webhooks = _webhooks(data["webhooks"])
        return out

    # -- what passes -------------------------------------------------------------------------
    def wants(self, event: Event, experiment_name: str = "") -> bool:
        """Whether ``event`` passes the filters (channels aside)."""
        if event.kind not in self.events:
            return False
        if self.failures_only and not event.failure:
            return False
        if self.experiments and event.kind != "deployment":
            names = {event.experiment_id, experiment_name} - {""}
            if not names & set(self.experiments):
                return False
        if self.pipelines and event.kind == "pipeline_run" and event.pipeline not in self.pipelines:
            return False
        return not (
            self.min_duration > 0
            and event.start_time
            and (event.end_time - event.start_time) / 1000.0 < self.min_duration
        )


def _seconds(value: Any, name: str) -> float:
    seconds = -1.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):
            seconds = float(value)
    if not (0 <= seconds < 10**9):  # also NaN and infinities
        raise invalid(f"{name} must be a number of seconds >= 0, got {value!r}.")
    return seconds


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false, got {value!r}.")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{name} must be a list of strings, got {value!r}.")
    if len(value) > MAX_LIST:
        raise invalid(f"{name} has {len(value)} entries; at most {MAX_LIST} are accepted.")
    return [v.strip() for v in value if v.strip()]


def _webhooks(value: Any) -> list[Webhook]:
    if not isinstance(value, list):
        raise invalid(f"webhooks must be a list of {{url, secret}} objects, got {value!r}.")
    if len(value) > MAX_WEBHOOKS:
        raise invalid(f"webhooks has {len(value)} entries; at most {MAX_WEBHOOKS} are accepted.")
    out = []
    for i, hook in enumerate(value):
        where = f"webhooks[{i}]"
        if not isinstance(hook, dict) or not isinstance(hook.get("url"), str):
            raise invalid(f"{where} must be an object with a 'url' string, got {hook!r}.")
        extra = sorted(set(hook) - {"url", "secret"})
        if extra:
            raise invalid(f"{where}: unknown field(s) {', '.join(map(repr, extra))}.")
        url = hook["url"].strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid(f"{where}.url must be an http(s) URL, got {url!r}.")
        secret = hook.get("secret", "")
        if not isinstance(secret, str):
            raise invalid(f"{where}.secret must be a string.")
        out.append(Webhook(url, secret))
    return out


def load(path: str) -> UserSettings:
    """The settings saved at ``path`` (defaults when there is no file yet)."""
    try:
        with open(path, encoding="utf-8") as f:
            return UserSettings.from_json(json.load(f))
    except FileNotFoundError:
        return UserSettings()


def save(path: str, settings: UserSettings) -> None:
    """Write ``settings`` to ``path`` atomically, readable by the user only (secrets)."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".notifications-", dir=folder)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(settings.to_json(), f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
