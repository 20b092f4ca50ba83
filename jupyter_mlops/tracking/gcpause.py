"""Pausing Python's cyclic garbage collector around bulk ingest.

Parsing a batch of thousands of traces and building their index rows allocates
hundreds of thousands of containers that all live until the batch is stored and none
of which forms a cycle; the collector, triggered by the allocation count, walks them
again and again (a fifth of ingest's CPU time). Reference counting still frees
everything as usual while paused; the collector runs again when the last pause ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection while any thread is inside (nests across threads)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
