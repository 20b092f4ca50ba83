"""When and where a store refreshes its planner statistics: after the writes that cross
a check point (:func:`planner_stats.check_due`), once writes have settled (``settle_s``
after a write that was not a check point, so the last writes of a burst are seen) and
when it opens, on a thread of its own, off the write that asked.

``ANALYZE`` of a table that doubled on a store of a million runs takes 0.1-1 s; run
inside the write call that crossed the check point, a user's ``log_batch`` paid it. Here
a write only counts itself (under a lock: the server writes from a thread pool) and, at
a check point, asks for a refresh, which never blocks and never fails it. One refresh
runs at a time per store; asks that come while one runs make one more run after it (the
tables may have grown meanwhile). The thread exists only while there is work, and
:meth:`StatisticsKeeper.close` (the store's ``close``) lets the running refresh end and
starts no other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .planner_stats import check_due

log = logging.getLogger(__name__)


class StatisticsKeeper:
    """Runs ``refresh`` (a store's statistics check: cheap when nothing is stale) on a
    background thread, at the writes :func:`check_due` names and when asked.
    ``background=False`` runs it in the caller's thread instead (an in-memory SQLite
    database: one connection, shared by every thread). ``settle_s``: a write that is not
    a check point asks for a refresh that many seconds later (one pending at a time);
    None: only at check points."""

    def __init__(
        self,
        refresh: Callable[[], object],
        name: str,
        background: bool = True,
        settle_s: float | None = None,
    ) -> None:
        self._refresh = refresh
        self._name = name
        self._background = background
        self._settle_s = settle_s if background else None
        self._settle: threading.Timer | None = None
        self._mutex = threading.Lock()  # the fields below
        self._idle = threading.Condition(self._mutex)
        self._writes = 0
        self._pending = False
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Held while a refresh runs; holding it holds refreshes back (tests).
        self.refreshing = threading.Lock()

    def wrote(self) -> None:
        """Count one write (a run created, a batch logged); at a check point, ask for a
        refresh. Never blocks on a refresh."""
        with self._mutex:
            self._writes += 1
            due = check_due(self._writes)
            delay = None if due or self._settle is not None or self._closed else self._settle_s
            if delay is not None:
                self._settle = threading.Timer(delay, self._settled)
                self._settle.name = f"planner-stats-settle-{self._name}"
                self._settle.daemon = True
                self._settle.start()
        if due:
            self.request()

    def _settled(self) -> None:
        with self._mutex:
            self._settle = None
        self.request()

    def request(self) -> None:
        """Ask for a refresh: started now on a thread, or after the one running."""
        if not self._background:
            self._run_once()
            return
        with self._mutex:
            if self._closed:
                return
            self._pending = True
            # a thread of a parent process, seen in a forked child, never ran here
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._loop, name=f"planner-stats-{self._name}", daemon=True
            )
            self._thread.start()

    def wait(self) -> None:
        """Until no refresh runs or is asked for (tests, benchmarks)."""
        with self._mutex:
            while self._thread is not None and self._thread.is_alive():
                self._idle.wait()

    def close(self) -> None:
        """Start no more refreshes; wait for the one running to end."""
        with self._mutex:
            self._closed = True
            thread = self._thread
            if self._settle is not None:
                self._settle.cancel()
                self._settle = None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._mutex:
                if not self._pending or self._closed:
                    self._thread = None
                    self._idle.notify_all()
                    return
                self._pending = False
            self._run_once()

    def _run_once(self) -> None:
        with self.refreshing:
            try:
                self._refresh()
            except Exception:  # statistics never fail a write, nor end the thread
                log.exception("planner statistics of %s not refreshed", self._name)
