"""Printing a run's progress as its steps change (CLI and magic share it)."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")


class ProgressPrinter:
    """Feed it successive snapshots of a run (the REST shape); it prints what changed."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.seen: dict[str, tuple[str, int]] = {}
        self.t0 = time.monotonic()

    def update(self, run: dict[str, Any]) -> None:
        for s in run["steps"]:
            key = (s["status"], s["attempt"])
            if self.seen.get(s["name"]) == key or s["status"] == "PENDING":
                continue
            self.seen[s["name"]] = key
            extra = ""
            if s["status"] == "RUNNING" and s["attempt"] > 1:
                extra = f" (attempt {s['attempt']})"
            elif s["status"] in ("SUCCEEDED", "FAILED", "CACHED") and s["duration_ms"] is not None:
                extra = f" in {s['duration_ms'] / 1000:.1f} s"
            if s["status"] == "FAILED" and s.get("error"):
                extra += f": {s['error']}"
            if s["status"] == "CACHED" and s.get("cached_from"):
                extra += f" (from run {s['cached_from']})"
            p = run["progress"]
            # Steps that succeeded (reused outputs count): skipped or cancelled ones are not done.
            ok = sum(p["counts"].get(k, 0) for k in ("SUCCEEDED", "CACHED"))
            self.out.write(
                f"[{time.monotonic() - self.t0:6.1f}s] {ok}/{p['total']} "
                f"{s['name']}: {s['status']}{extra}\n"
            )
        self.out.flush()

    def summary(self, run: dict[str, Any]) -> str:
        dur = f" in {run['duration_ms'] / 1000:.1f} s" if run.get("duration_ms") else ""
        reason = f" ({run['reason']})" if run.get("reason") and run["status"] != "SUCCEEDED" else ""
        return f"pipeline {run['name']} run {run['run_id']}: {run['status']}{dur}{reason}"
