"""Killing a step's whole process tree (kernel or script and everything it started).

A step runs in its own session/process group, so ``killpg`` reaches most of the
tree; descendants that started their own session are found through ``/proc``
(parent links) first, so they die too.
"""

from __future__ import annotations

import os
import signal

from .._process import alive, descendants  # noqa: F401  (alive re-exported: tests use it from here)


def kill_tree(pid: int | None, sig: int = signal.SIGKILL) -> None:
    """Signal ``pid``, its process group and all its descendants."""
    if not pid:
        return
    victims = descendants(pid)
    try:
        os.killpg(os.getpgid(pid), sig)
    except (OSError, AttributeError):
        pass
    for p in [pid, *victims]:
        try:
            os.kill(p, sig)
        except OSError:
            pass
