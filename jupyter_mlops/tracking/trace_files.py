"""Upkeep of trace batch data files (migration 0015): compaction and the orphan sweep.

A batch file is written once, durable before any row names it, and never appended to.
Two things would otherwise keep its space forever:

- deleted (or re-sent) traces leave dead byte ranges: a file most of whose bytes no row
  names any more is rewritten with its live ranges only (:func:`compact`), the rows moved
  to the new file by compare-and-set (a trace moved meanwhile keeps its new place), then
  the old file is deleted once no row names it;
- a crash between the file's write and its rows' commit leaves a file no row names:
  :func:`sweep_orphans` deletes such files once older than a grace period (a file still
  being committed is seconds old).

New batch files are named ``<ms since epoch, 13 digits>-<uuid hex>.jsonl`` so their age
is known on any artifact store; older names fall back to the local file's mtime.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import traces as t
from .clock import now_ms

if TYPE_CHECKING:
    from .trace_store import SqlTraceStore

log = logging.getLogger(__name__)

#: A file is compacted when at least this fraction of its bytes is dead.
DEAD_FRACTION = 0.5
#: Default age (seconds) before a file no row names is an orphan.
ORPHAN_GRACE_S = 3600.0

_TIMED = re.compile(r"^(\d{13})-[0-9a-f]{32}\.jsonl$")


def batch_file_name(now: int | None = None) -> str:
    """A new batch file's name, carrying its creation time."""
    return f"{now if now is not None else now_ms():013d}-{uuid.uuid4().hex}.jsonl"


def _written_ms(repo: Any, name: str) -> int | None:
    """When a batch file was written: from its name, else the repository's mtime if it
    has one (local directories), else None (unknown: never swept)."""
    m = _TIMED.match(name.rpartition("/")[2])
    if m:
        return int(m.group(1))
    modified = getattr(repo, "modified_ms", None)
    return modified(name) if modified is not None else None


def _split(uri: str) -> tuple[str, str]:
    head, _, name = uri.rpartition("/")
    return head, name


def delete_files(store: SqlTraceStore, uris: Iterable[str]) -> None:
    """Delete files (a failure is logged: a file left behind is swept later)."""
    for uri in uris:
        head, name = _split(uri)
        try:
            store.artifact_repo(head).delete(name)
        except Exception as e:  # noqa: BLE001 - not the caller's error
            log.warning("jupyter-mlops: could not delete trace data file %s: %s", uri, e)


def tidy(store: SqlTraceStore, files: set[str]) -> None:
    """After traces left ``files``: delete those no row names, compact the sparse ones."""
    if not files:
        return
    tc = t.traces.c
    with store._read() as conn:
        live = {
            uri: int(n or 0)
            for uri, n in conn.execute(
                sa.select(tc.data_file, sa.func.sum(tc.data_length))
                .where(tc.data_file.in_(sorted(files)))
                .group_by(tc.data_file)
            )
        }
    delete_files(store, files - set(live))
    for uri, live_bytes in live.items():
        try:
            compact(store, uri, live_bytes)
        except Exception as e:  # noqa: BLE001 - compaction is an optimisation
            log.warning("jupyter-mlops: could not compact trace data file %s: %s", uri, e)


def compact(store: SqlTraceStore, uri: str, live_bytes: int | None = None) -> str | None:
    """Rewrite ``uri`` with only the ranges rows still name, if at least
    :data:`DEAD_FRACTION` of it is dead; returns the new file's URI (None: kept)."""
    head, name = _split(uri)
    repo = store.artifact_repo(head)
    tc = t.traces.c
    with store._read() as conn:
        rows = conn.execute(
            sa.select(tc.trace_id, tc.data_offset, tc.data_length)
            .where(tc.data_file == uri)
            .order_by(tc.data_offset)
        ).all()
    if not rows:
        delete_files(store, [uri])
        return None
    live = sum(int(r.data_length) for r in rows) if live_bytes is None else live_bytes
    parts: list[bytes] = []
    moves: list[dict[str, Any]] = []
    with repo.open(name) as f:
        size = f.seek(0, 2)
        if size <= 0 or live + len(rows) > size * (1 - DEAD_FRACTION):
            return None
        pos = 0
        for r in rows:
            f.seek(int(r.data_offset))
            data = f.read(int(r.data_length))
            moves.append(
                {"tid": r.trace_id, "old": int(r.data_offset), "off": pos, "len": len(data)}
            )
            parts += [data, b"\n"]
            pos += len(data) + 1
    new_name = batch_file_name()
    repo.put_durable(new_name, b"".join(parts))
    new_uri = f"{head}/{new_name}"
    stmt = (
        t.traces.update()
        .where(
            tc.trace_id == sa.bindparam("tid"),
            tc.data_file == uri,
            tc.data_offset == sa.bindparam("old"),
        )
        .values(data_file=new_uri, data_offset=sa.bindparam("off"), data_length=sa.bindparam("len"))
    )
    with store._write() as conn:
        conn.execute(stmt, moves)
    # the old file (no row names it now) and the new one if every trace moved meanwhile
    tidy_unnamed(store, {uri, new_uri})
    return new_uri


def tidy_unnamed(store: SqlTraceStore, files: set[str]) -> None:
    """Delete those of ``files`` no row names."""
    delete_files(store, _unnamed(store, files))


def sweep_orphans(
    store: SqlTraceStore, grace_s: float = ORPHAN_GRACE_S, now: int | None = None
) -> list[str]:
    """Delete the batch files no row names, written more than ``grace_s`` ago, in every
    experiment's batch directory; returns their URIs."""
    from .schema import experiments

    cutoff = (now if now is not None else now_ms()) - int(grace_s * 1000)
    with store._read() as conn:
        locations = set(conn.execute(sa.select(experiments.c.artifact_location)).scalars())
    swept: list[str] = []
    for loc in sorted(filter(None, locations)):
        batch_dir = f"{loc.rstrip('/')}/{t.BATCH_DIR}"
        try:
            repo = store.artifact_repo(batch_dir)
            names = [fi.path for fi in repo.list("") if not fi.is_dir]
            old = [n for n in names if (_written_ms(repo, n) or cutoff) < cutoff]
        except Exception as e:  # noqa: BLE001 - one unreachable location stops no other
            log.warning("jupyter-mlops: could not list trace data files in %s: %s", batch_dir, e)
            continue
        if not old:
            continue
        orphans = _unnamed(store, {f"{batch_dir}/{n}" for n in old})
        delete_files(store, orphans)
        swept += sorted(orphans)
    if swept:
        log.info("jupyter-mlops: deleted %d orphaned trace data file(s)", len(swept))
    return swept


def _unnamed(store: SqlTraceStore, uris: set[str]) -> set[str]:
    """Those of ``uris`` no trace row names."""
    if not uris:
        return set()
    tc = t.traces.c
    with store._read() as conn:
        named = set(
            conn.execute(
                sa.select(tc.data_file).where(tc.data_file.in_(sorted(uris))).distinct()
            ).scalars()
        )
    return uris - named
