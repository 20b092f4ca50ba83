"""The notification service: what this server has to tell the user's JupyterLabs, and their answers.

Services post a notification (a message, a type, optional actions); every open JupyterLab polls
``api/v1/notifications?after=<seq>`` and shows new ones with JupyterLab's Notification API; pressing an
action button posts ``api/v1/notifications/<id>/actions/<action>``, which runs the poster's callback.
A notification posted again under the same ``key`` replaces the earlier one (one culling warning per
server, not one per report). Kept in memory: they are about this server's current life.
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from traitlets import Int

from ..services import Service
from ..tracking.errors import not_found

ActionCallback = Callable[[str], "Awaitable[Any] | Any"]


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
        }


class NotificationService(Service):
    """Notifications of this server for its JupyterLabs (``api/v1/notifications``)."""

    keep = Int(
        200,
        config=True,
        help="How many notifications the server keeps for JupyterLabs opened later, e.g. 200.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seq = itertools.count(1)
        self._items: dict[str, Notification] = {}

    def post(
        self,
        message: str,
        *,
        type: str = "info",
        source: str = "",
        key: str | None = None,
        actions: list[dict[str, str]] | None = None,
        on_action: ActionCallback | None = None,
    ) -> Notification:
        """Post (or, with the same ``key``, replace) a notification; returns it."""
        seq = next(self._seq)
        nid = key or f"n{seq}"
        old = self._items.pop(nid, None)
        if old is not None and old.message == message and not old.dismissed:
            self._items[nid] = old  # the same warning again: no new pop-up
            return old
        n = Notification(nid, seq, message, type, source, list(actions or []), on_action=on_action)
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
