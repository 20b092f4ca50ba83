"""Killing a step's whole process tree (kernel or script and everything it started).

A step runs in its own session/process group, so ``killpg`` reaches most of the
tree; descendants that started their own session are found through ``/proc``
(parent links) first, so they die too.
"""

from __future__ import annotations

import os
import signal

from .._process import alive  # noqa: F401  (re-exported: the service and tests use it from here)


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # "pid (comm) state ppid ..."; comm may contain spaces and parentheses
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 1:
            children.setdefault(int(rest[1]), []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


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
