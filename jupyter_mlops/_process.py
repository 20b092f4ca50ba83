"""Process liveness and descendants, shared by the client (spool files of running writers), the
pipeline service and the training jobs' local backend."""

from __future__ import annotations

import os
from collections.abc import Iterator


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("utf-8", "replace")
        return stat[stat.rfind(")") + 2 :][:1] != "Z"
    except OSError:
        return True


def proc_table() -> Iterator[tuple[int, list[str]]]:
    """Every process of this machine as (pid, the fields of ``/proc/<pid>/stat`` after the
    command name: state, ppid, pgrp, ...); nothing where there is no ``/proc``."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # "pid (comm) state ppid ..."; comm may contain spaces and parentheses
        yield int(entry), stat[stat.rfind(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for child, rest in proc_table():
        if len(rest) > 1:
            children.setdefault(int(rest[1]), []).append(child)
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
