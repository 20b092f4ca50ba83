"""The metric-series engine: appending points and reading series, as functions over
a connection inside the caller's transaction.

A series (one metric key of one run) is a row of ``latest_metrics`` (its id, the
latest value as MLflow defines it, the point count and whether x values kept arriving
in order), its points packed in chunks (:mod:`.chunks`) numbered by arrival (``seq``),
and its roll-up pyramid of blocks (:mod:`.rollup`), all maintained in the writer's
transaction. Reads pick the coarsest pyramid level that still gives ``max_points``
min/max-exact buckets. :class:`~.sqlstore.SqlTrackingStore` validates arguments, opens
the transaction and checks the run; everything about points happens here.
"""

from __future__ import annotations

import bisect
import gc
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import rollup
from .chunks import CHUNK, decode_floats, decode_ints, encode_floats, encode_ints
from .entities import Metric, SeriesPoint
from .schema import BLOCK_BASE, BLOCK_LEVELS, latest_metrics, metric_blocks, metric_chunks
from .store import metric_columns
from .validation import validate_key, validate_metric_value

#: One series as columns: steps, timestamps, values.
Cols = tuple[list[int], list[int], list[float]]

_BLOCK_COLS = (
    "series_id, level, block_no, n, first_step, first_ts, min_step, max_step, "
    "min_ts, max_ts, min_value, max_value, last_value"
)


def _ph(conn: Connection) -> str:
    """The driver's parameter mark (SQLite ``?``, psycopg ``%s``)."""
    return "?" if conn.dialect.name == "sqlite" else "%s"


# -- checking points ----------------------------------------------------------------


def validated_columns(key: str, steps: list[Any], tss: list[Any], vals: list[Any]) -> Cols:
    """Check one series' columns; the fast path checks types with C-level passes and
    falls back to per-point validation (with MLflow's messages) when anything is off."""
    if vals and set(map(type, vals)) <= {float}:
        try:  # int64 columns (refuses floats, strings and out-of-range ints at C speed)
            array("q", steps)
            if min(array("q", tss)) >= 0:
                return steps, tss, vals
        except (TypeError, OverflowError):
            pass
    out: Cols = ([], [], [])
    for s, t, v in zip(steps, tss, vals):
        v, t, s = validate_metric_value(key, v, t, s)
        out[0].append(s)
        out[1].append(t)
        out[2].append(v)
    return out


def columns_from_metrics(metrics: Sequence[Metric]) -> dict[str, Cols]:
    """Points as checked columns by key."""
    cols: dict[str, Cols] = {}
    for key, (steps, tss, vals) in metric_columns(metrics).items():
        validate_key(key, "name", "metric")
        cols[key] = validated_columns(key, steps, tss, vals)
    return cols


# -- writing -----------------------------------------------------------------------


def write_metrics(conn: Connection, run_id: str, cols: dict[str, Cols]) -> None:
    """Append points to the run's series, in the caller's write transaction: chunks,
    roll-up blocks and the series row (latest value, count, order flags) per key."""
    lm = latest_metrics
    keys = sorted(cols)  # one lock order for every writer (no deadlocks on PostgreSQL)
    state = _series_rows(conn, run_id, keys)
    appends: list[_Append] = []
    series_updates: list[dict[str, Any]] = []
    for key in keys:
        steps, tss, vals = cols[key]
        if not steps:
            continue
        # order flags: did x values keep arriving sorted?
        inc_step = _non_decreasing(steps)
        inc_ts = _non_decreasing(tss)
        strict = inc_step and _strictly_increasing(steps)
        inc_step_ts = strict or (inc_step and _sorted_pairs(steps, tss))
        # MLflow stores a point identical to one it holds (key, value, timestamp,
        # step) once. Within the batch that needs a look only when some (step,
        # timestamp) repeats; against stored points only when the batch reaches
        # back to the series' highest stored (step, timestamp) (see _drop_stored).
        if not strict:
            steps, tss, vals = _drop_repeats(steps, tss, vals)
        st = state.get(key)
        if st is not None and st.n:
            first = (steps[0], tss[0]) if inc_step_ts else min(zip(steps, tss))
            if first <= (st.step, st.timestamp):
                steps, tss, vals = _drop_stored(conn, st.series_id, steps, tss, vals)
        k = len(steps)
        if k == 0:
            continue
        best = _latest_of(steps, tss, vals, inc_step_ts)
        bi = best[3]
        if st is not None and st.n == 0:  # created empty above: take the batch as it is
            sid = st.series_id
            n0, ord_step, ord_ts, ord_step_ts = 0, True, True, True
            latest = (steps[bi], tss[bi], _none_nan(vals[bi]))
            prev_last = (steps[0], tss[0])
        elif st is None:
            sid = conn.execute(
                lm.insert()
                .values(
                    run_uuid=run_id,
                    key=key,
                    value=_none_nan(vals[bi]),
                    timestamp=tss[bi],
                    step=steps[bi],
                    n=0,
                    last_step=steps[0],
                    last_ts=tss[0],
                    ord_step=True,
                    ord_ts=True,
                    ord_step_ts=True,
                )
                .returning(lm.c.series_id)
            ).scalar_one()
            n0, ord_step, ord_ts, ord_step_ts = 0, True, True, True
            latest = (steps[bi], tss[bi], _none_nan(vals[bi]))
            prev_last = (steps[0], tss[0])
        else:
            sid = st.series_id
            n0 = st.n
            ord_step, ord_ts, ord_step_ts = st.ord_step, st.ord_ts, st.ord_step_ts
            prev_last = (st.last_step, st.last_ts)
            latest = (st.step, st.timestamp, st.value)
            if (best[0], best[1], best[2]) > (st.step, st.timestamp, _v0(st.value)):
                latest = (steps[bi], tss[bi], _none_nan(vals[bi]))
        ord_step = ord_step and inc_step and prev_last[0] <= steps[0]
        ord_ts = ord_ts and inc_ts and prev_last[1] <= tss[0]
        ord_step_ts = ord_step_ts and inc_step_ts and prev_last <= (steps[0], tss[0])
        appends.append(_Append(sid, n0, steps, tss, vals, inc_step, inc_ts))
        series_updates.append(
            {
                "sid": sid,
                "value": latest[2],
                "timestamp": latest[1],
                "step": latest[0],
                "n": n0 + k,
                "last_step": steps[-1],
                "last_ts": tss[-1],
                "ord_step": ord_step,
                "ord_ts": ord_ts,
                "ord_step_ts": ord_step_ts,
            }
        )
    if not appends:
        return
    old_chunks, old_blocks = _partials(conn, appends)
    chunk_rows: list[tuple[Any, ...]] = []
    block_rows: list[tuple[Any, ...]] = []
    for ap in appends:
        chunk_rows.extend(_chunk_rows(ap, old_chunks.get(ap.sid)))
        block_rows.extend(_block_rows(ap, old_blocks))
    _store_rows(conn, chunk_rows, block_rows, series_updates)


class _Append(NamedTuple):
    """New points of one series: they get seqs ``n0..``; ``*_sorted``: x non-decreasing."""

    sid: int
    n0: int
    steps: list[int]
    tss: list[int]
    vals: list[float]
    steps_sorted: bool
    ts_sorted: bool


def _partials(
    conn: Connection, appends: list[_Append]
) -> tuple[dict[int, Any], dict[tuple[int, int, int], rollup.Agg]]:
    """The stored partial chunk and partial blocks every append continues, read for all
    series at once (two queries, sent together on PostgreSQL: one round trip)."""
    chunk_keys = [(a.sid, a.n0 // CHUNK) for a in appends if a.n0 % CHUNK]
    block_keys = [
        (a.sid, lvl, a.n0 // BLOCK_BASE**lvl)
        for a in appends
        for lvl in BLOCK_LEVELS
        if a.n0 % BLOCK_BASE**lvl
    ]
    ph = _ph(conn)
    queries: list[tuple[str, tuple[Any, ...]]] = []
    if chunk_keys:
        cond = " OR ".join([f"(series_id = {ph} AND chunk_no = {ph})"] * len(chunk_keys))
        queries.append(
            (
                f"SELECT series_id, n, steps, timestamps, vals FROM metric_chunks WHERE {cond}",
                tuple(x for k in chunk_keys for x in k),
            )
        )
    if block_keys:
        cond = " OR ".join(
            [f"(series_id = {ph} AND level = {ph} AND block_no = {ph})"] * len(block_keys)
        )
        queries.append(
            (
                "SELECT series_id, level, block_no, n, first_step, first_ts, min_step, "
                "max_step, min_ts, max_ts, min_value, max_value, last_value FROM metric_blocks "
                f"WHERE {cond}",
                tuple(x for k in block_keys for x in k),
            )
        )
    results = _fetch_all(conn, queries)
    chunks = {r[0]: r[1:] for r in results[0]} if chunk_keys else {}
    rows = results[-1] if block_keys else []
    blocks = {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}
    return chunks, blocks  # type: ignore[return-value]


def _series_rows(conn: Connection, run_id: str, keys: list[str]) -> dict[str, Any]:
    """The run's series rows of these keys. On PostgreSQL concurrent writers to one
    series serialize on its row: the rows are locked in key order (one round trip once
    the series exist); missing ones are created (a racing creator's row wins) and all
    locked again. (A deadlock that creation can meet with a third writer is retried
    whole by the store.)"""
    lm = latest_metrics
    if conn.dialect.name != "postgresql":
        return {
            r.key: r
            for r in conn.execute(sa.select(lm).where(lm.c.run_uuid == run_id, lm.c.key.in_(keys)))
        }
    locked = (
        sa.select(lm)
        .where(lm.c.run_uuid == run_id, lm.c.key.in_(keys))
        .order_by(lm.c.key)
        .with_for_update()
    )
    state = {r.key: r for r in conn.execute(locked)}  # one round trip once the series exist
    missing = [k for k in keys if k not in state]
    if missing:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(
            pg_insert(lm).on_conflict_do_nothing(index_elements=["run_uuid", "key"]),
            [
                {
                    "run_uuid": run_id,
                    "key": k,
                    "value": None,
                    "timestamp": 0,
                    "step": 0,
                    "n": 0,
                    "last_step": 0,
                    "last_ts": 0,
                    "ord_step": True,
                    "ord_ts": True,
                    "ord_step_ts": True,
                }
                for k in missing
            ],
        )
        state = {r.key: r for r in conn.execute(locked)}
    return state


def _latest_of(
    steps: list[int], tss: list[int], vals: list[float], in_order: bool
) -> tuple[int, int, float, int]:
    """The latest point of a batch as ``(step, timestamp, value with NaN as 0, index)``:
    the max of MLflow's "latest" order; ``in_order``: (step, timestamp) non-decreasing."""
    k = len(steps)
    if in_order:
        i = k - 1
        best = (steps[i], tss[i], _v0(vals[i]), i)
        while i > 0 and steps[i - 1] == steps[k - 1] and tss[i - 1] == tss[k - 1]:
            i -= 1
            cand = (steps[i], tss[i], _v0(vals[i]), i)
            if cand[2] > best[2]:
                best = cand
    else:
        best = max(zip(steps, tss, map(_v0, vals), range(k)))
    return best


def _store_rows(
    conn: Connection,
    chunk_rows: list[tuple[Any, ...]],
    block_rows: list[tuple[Any, ...]],
    series_updates: list[dict[str, Any]],
) -> None:
    """Write the new and extended chunks and blocks, and update the series rows."""
    ph = _ph(conn)
    writes: list[tuple[str, list[Any]]] = []
    if chunk_rows:
        writes.append(
            (
                "INSERT INTO metric_chunks (series_id, chunk_no, n, steps, timestamps, vals) "
                f"VALUES ({ph},{ph},{ph},{ph},{ph},{ph}) ON CONFLICT (series_id, chunk_no) "
                "DO UPDATE SET n = excluded.n, steps = excluded.steps, "
                "timestamps = excluded.timestamps, vals = excluded.vals",
                chunk_rows,
            )
        )
    if block_rows:
        marks = ",".join([ph] * 13)
        writes.append(
            (
                f"INSERT INTO metric_blocks ({_BLOCK_COLS}) VALUES ({marks}) "
                "ON CONFLICT (series_id, level, block_no) DO UPDATE SET "
                "n = excluded.n, first_step = excluded.first_step, first_ts = excluded.first_ts, "
                "min_step = excluded.min_step, max_step = excluded.max_step, "
                "min_ts = excluded.min_ts, max_ts = excluded.max_ts, "
                "min_value = excluded.min_value, max_value = excluded.max_value, "
                "last_value = excluded.last_value",
                block_rows,
            )
        )
    if series_updates:
        writes.append(
            (
                f"UPDATE latest_metrics SET value = {ph}, timestamp = {ph}, step = {ph}, "
                f"n = {ph}, last_step = {ph}, last_ts = {ph}, ord_step = {ph}, ord_ts = {ph}, "
                f"ord_step_ts = {ph} WHERE series_id = {ph}",
                [
                    (
                        u["value"],
                        u["timestamp"],
                        u["step"],
                        u["n"],
                        u["last_step"],
                        u["last_ts"],
                        u["ord_step"],
                        u["ord_ts"],
                        u["ord_step_ts"],
                        u["sid"],
                    )
                    for u in series_updates
                ],
            )
        )
    if conn.dialect.name == "postgresql":
        # all of them in one pipeline: one round trip, not one per statement
        with _pg_pipeline(conn) as pg, pg.cursor() as cur:
            for sql, rows in writes:
                cur.executemany(sql, rows)
        return
    for sql, rows in writes:
        conn.exec_driver_sql(sql, rows)


def _drop_stored(
    conn: Connection, sid: int, steps: list[int], tss: list[int], vals: list[float]
) -> Cols:
    """The points not already stored in series ``sid``, found by reading only the
    level-1 blocks (32 points) whose step and timestamp ranges reach the batch's."""
    ph = _ph(conn)
    blocks = [
        b
        for (b,) in conn.exec_driver_sql(
            f"SELECT block_no FROM metric_blocks WHERE series_id = {ph} AND level = 1 "
            f"AND max_step >= {ph} AND min_step <= {ph} AND max_ts >= {ph} AND min_ts <= {ph} "
            "ORDER BY block_no",
            (sid, min(steps), max(steps), min(tss), max(tss)),
        )
    ]
    stored: set[tuple[int, int, Any]] = set()
    i = 0
    while i < len(blocks):  # read runs of consecutive blocks in one query each
        j = i
        while j + 1 < len(blocks) and blocks[j + 1] == blocks[j] + 1:
            j += 1
        s, t, v = points(conn, sid, blocks[i] * BLOCK_BASE, (blocks[j] + 1) * BLOCK_BASE)
        stored.update(zip(s, t, map(_point_value, v)))
        i = j + 1
    if not stored:
        return steps, tss, vals
    keep = [i for i, p in enumerate(zip(steps, tss, map(_point_value, vals))) if p not in stored]
    if len(keep) == len(steps):
        return steps, tss, vals
    return [steps[i] for i in keep], [tss[i] for i in keep], [vals[i] for i in keep]


def _chunk_rows(ap: _Append, old: Any) -> list[tuple[Any, ...]]:
    """Chunk rows for new points ``n0..``; a partial last chunk (``old``: its stored
    ``(n, steps, timestamps, vals)``) is extended."""
    sid, n0, steps, tss, vals = ap.sid, ap.n0, ap.steps, ap.tss, ap.vals
    out = []
    k = len(steps)
    i = 0
    seq = n0
    if n0 % CHUNK and old is not None:
        j = min(k, CHUNK - n0 % CHUNK)
        out.append(
            (
                sid,
                n0 // CHUNK,
                old[0] + j,
                bytes(old[1]) + encode_ints(steps[:j]),
                bytes(old[2]) + encode_ints(tss[:j]),
                bytes(old[3]) + encode_floats(vals[:j]),
            )
        )
        i, seq = j, n0 + j
    while i < k:
        j = min(k, i + CHUNK - seq % CHUNK)
        out.append(
            (
                sid,
                seq // CHUNK,
                j - i,
                encode_ints(steps[i:j]),
                encode_ints(tss[i:j]),
                encode_floats(vals[i:j]),
            )
        )
        seq += j - i
        i = j
    return out


def _block_rows(
    ap: _Append, stored: dict[tuple[int, int, int], rollup.Agg]
) -> list[tuple[Any, ...]]:
    """Roll-up rows for new points ``n0..``, merged into the stored partial blocks
    (``stored``: by ``(series_id, level, block_no)``)."""
    blocks = rollup.new_blocks(ap.n0, ap.steps, ap.tss, ap.vals, ap.steps_sorted, ap.ts_sorted)
    out = []
    for lvl, items in blocks.items():
        for block_no, agg in items:
            old = stored.get((ap.sid, lvl, block_no))
            if old is not None:
                agg = rollup.merge(old, agg)
            out.append((ap.sid, lvl, block_no, *agg))
    return out


def _fetch_all(
    conn: Connection, queries: list[tuple[str, tuple[Any, ...]]]
) -> list[list[tuple[Any, ...]]]:
    """The rows of each query, in the caller's transaction. On PostgreSQL (psycopg 3)
    the queries go out together in one pipeline: one round trip for all, which is
    what a write pays for under load (bench/RESULTS.md, "Many writers")."""
    if len(queries) > 1 and conn.dialect.name == "postgresql":
        with _pg_pipeline(conn) as pg:
            cursors = [pg.execute(sql, args) for sql, args in queries]
            return [list(c.fetchall()) for c in cursors]
    return [list(conn.exec_driver_sql(sql, args).fetchall()) for sql, args in queries]


@contextmanager
def _pg_pipeline(conn: Connection) -> Iterator[Any]:
    """The psycopg connection under ``conn`` in pipeline mode (statements are sent
    without waiting for each answer); its errors as SQLAlchemy's, so callers (the
    store's retry of deadlocks and races) see what a plain statement raises."""
    import psycopg

    pg = conn.connection.driver_connection
    try:
        with pg.pipeline():  # type: ignore[union-attr]
            yield pg
    except psycopg.Error as e:
        raise sa.exc.DBAPIError.instance(None, None, e, psycopg.Error) from e


# -- reading -----------------------------------------------------------------------


def points(conn: Connection, sid: int, lo: int, hi: int | None) -> Cols:
    """Points with seq in ``[lo, hi)`` (``hi`` None: to the end), in arrival order."""
    ph = _ph(conn)
    sql = (
        "SELECT chunk_no, steps, timestamps, vals FROM metric_chunks "
        f"WHERE series_id = {ph} AND chunk_no >= {ph}"
    )
    args: tuple[Any, ...] = (sid, lo // CHUNK)
    if hi is not None:
        if hi <= lo:
            return [], [], []
        sql += f" AND chunk_no <= {ph}"
        args += ((hi - 1) // CHUNK,)
    steps: list[int] = []
    tss: list[int] = []
    vals: list[float] = []
    first = None
    for c, s, t, v in conn.exec_driver_sql(sql + " ORDER BY chunk_no", args):
        if first is None:
            first = c
        steps += decode_ints(s)
        tss += decode_ints(t)
        vals += decode_floats(v)
    if first is None:
        return [], [], []
    a = lo - first * CHUNK
    b = None if hi is None else hi - first * CHUNK
    if a or b is not None:
        return steps[a:b], tss[a:b], vals[a:b]
    return steps, tss, vals


def read_series(
    conn: Connection,
    s: Any,
    max_points: int,
    x_axis: str = "step",
    start_step: int | None = None,
    end_step: int | None = None,
) -> list[SeriesPoint]:
    """Series ``s`` (its ``latest_metrics`` row) in at most ``max_points`` min/max
    buckets over ``x_axis``, within ``start_step..end_step`` (arguments checked)."""
    if s is None or s.n == 0:
        return []
    sid = s.series_id
    windowed = start_step is not None or end_step is not None
    ordered = s.ord_step if x_axis == "step" else s.ord_ts
    if not ordered or (windowed and not s.ord_step):
        return _series_exact(conn, sid, max_points, x_axis, start_step, end_step)
    lo, hi = 0, s.n
    if windowed:
        lo, hi = _seq_window(conn, sid, s.n, start_step, end_step)
        if hi <= lo:
            return []
    level = rollup.choose_level(hi - lo, max_points)
    if level == 0 and hi - lo <= max_points:
        steps, tss, vals = points(conn, sid, lo, hi)
        return [SeriesPoint(st, t, v, v, v, 1) for st, t, v in zip(steps, tss, vals)]
    return rollup.bucketize(_grouped_pieces(conn, sid, lo, hi, level, max_points), max_points)


def history_page(
    conn: Connection, s: Any, offset: int, limit: int | None
) -> tuple[list[int], list[int], list[float], bool] | None:
    """A page of series ``s`` in (step, timestamp) order with whether points follow,
    read directly when that is arrival order; None when the whole series must be read
    and sorted (:func:`points`, then :func:`sorted_page` outside the transaction)."""
    if not s.ord_step_ts:
        return None
    hi = None if limit is None else offset + limit
    steps, tss, vals = points(conn, s.series_id, offset, hi)
    return steps, tss, vals, hi is not None and hi < s.n


def sorted_page(
    steps: list[int], tss: list[int], vals: list[float], offset: int, limit: int | None
) -> tuple[list[int], list[int], list[float], bool]:
    """A page of points in (step, timestamp) order, with whether points follow."""
    order = sorted(range(len(steps)), key=lambda i: (steps[i], tss[i]))
    end = None if limit is None else offset + limit
    more = end is not None and end < len(order)
    order = order[offset:end]
    return [steps[i] for i in order], [tss[i] for i in order], [vals[i] for i in order], more


def delete_series(conn: Connection, series_ids: list[int]) -> None:
    """Remove the points and blocks of these series (their rows go with their runs)."""
    conn.execute(metric_chunks.delete().where(metric_chunks.c.series_id.in_(series_ids)))
    conn.execute(metric_blocks.delete().where(metric_blocks.c.series_id.in_(series_ids)))


def _seq_window(
    conn: Connection, sid: int, n: int, start: int | None, end: int | None
) -> tuple[int, int]:
    """The seq range ``[lo, hi)`` of points with start <= step <= end, for a series
    whose steps arrived non-decreasing (found through level-1 blocks, then the
    points of the two boundary blocks)."""
    lo = 0 if start is None else _seq_bound(conn, sid, n, start, upper=False)
    hi = n if end is None else _seq_bound(conn, sid, n, end, upper=True)
    if lo is None or hi is None:
        return 0, 0
    return lo, min(hi, n)


def _seq_bound(conn: Connection, sid: int, n: int, step: int, upper: bool) -> int | None:
    """The seq of the first point with a step >= ``step`` or, ``upper``, just past the
    last point with a step <= ``step``; None when no level-1 block reaches it.

    The level-1 block is found down the pyramid in one query: steps arrived in order,
    so the first block (or last, ``upper``) reaching ``step`` at each level is among the
    32 children of the one found a level up; each level's scan stops within them. (A
    scan of the level-1 blocks alone read ~150k rows for a zoom into a 10M series.)"""
    ph = _ph(conn)
    cond, order = ("min_step <=", "DESC") if upper else ("max_step >=", "ASC")
    sql, args = "", ()  # type: tuple[str, tuple[Any, ...]]
    for level in reversed(BLOCK_LEVELS):
        q = f"SELECT block_no FROM metric_blocks WHERE series_id = {ph} AND level = {ph} AND {cond} {ph}"
        a: tuple[Any, ...] = (sid, level, step)
        if sql:
            if upper:  # within the parent's children, scanned from the last one
                q += f" AND block_no < ({sql}) * {BLOCK_BASE} + {BLOCK_BASE}"
            else:
                q += f" AND block_no >= ({sql}) * {BLOCK_BASE}"
            a += args
        sql, args = q + f" ORDER BY block_no {order} LIMIT 1", a
    b = conn.exec_driver_sql(sql, args).scalar()
    if b is None:
        return None
    steps = points(conn, sid, b * BLOCK_BASE, min(n, (b + 1) * BLOCK_BASE))[0]
    find = bisect.bisect_right if upper else bisect.bisect_left
    return b * BLOCK_BASE + find(steps, step)


def _grouped_pieces(
    conn: Connection, sid: int, lo: int, hi: int, top: int, max_points: int
) -> list[rollup.Agg]:
    """The aggregates :func:`rollup.bucketize` folds into buckets, already grouped the
    way it groups them: the seqs ``[lo, hi)`` as :func:`rollup.cover`'s pieces, whose
    point counts are known (one point per seq) before anything is read. Each piece is
    read as whole buckets (and the part that completes the bucket left open by the
    pieces before it): block runs are grouped by the database, raw points by slices.
    So a 10M-point series reads ~1000 rows, not the ~10,000 blocks of its level
    (bench/RESULTS.md), and the buckets are the ones ungrouped pieces would give."""
    target = max(1, -(-(hi - lo) // max_points))  # points per bucket, as bucketize
    out: list[rollup.Agg] = []
    open_count = 0  # points in the bucket left open by the pieces so far
    for level, a, b in rollup.cover(lo, hi, top):
        size = BLOCK_BASE**level
        count = b - a
        # the points (whole units of this piece) that complete the open bucket, and
        # then the points of each full bucket of this piece
        first = 0 if open_count == 0 else min(count, -(-(target - open_count) // size) * size)
        per = -(-target // size) * size
        if level == 0:
            out.extend(_raw_groups(*points(conn, sid, a, b), first, per))
        else:
            out.extend(
                _block_groups(conn, sid, level, a // size, b // size, first // size, per // size)
            )
        if open_count and open_count + first < target:
            open_count += first
        else:
            open_count = (count - first) % per
    return out


def _raw_groups(
    steps: list[int], tss: list[int], vals: list[float], first: int, per: int
) -> list[rollup.Agg]:
    """Raw points as aggregates of ``[0, first)`` and then of ``per`` points each."""
    bounds = [0, first] if first else [0]
    bounds += range(bounds[-1] + per, len(steps), per)
    bounds.append(len(steps))
    return [
        rollup.aggregate_points(steps[i:j], tss[i:j], vals[i:j])
        for i, j in pairwise(bounds)
        if j > i
    ]


def _block_groups(
    conn: Connection, sid: int, level: int, b0: int, b1: int, first: int, per: int
) -> list[rollup.Agg]:
    """Blocks ``[b0, b1)`` of a level as aggregates of ``[b0, b0 + first)`` and then of
    ``per`` blocks each, grouped in SQL (``first``/``last`` fields from the group's
    first and last block)."""
    ph = _ph(conn)
    if per == 1:  # each block its own bucket (or the open one's last): the rows as they are
        rows = conn.exec_driver_sql(
            "SELECT n, first_step, first_ts, min_step, max_step, min_ts, max_ts, "
            f"min_value, max_value, last_value FROM metric_blocks WHERE series_id = {ph} "
            f"AND level = {ph} AND block_no >= {ph} AND block_no < {ph} ORDER BY block_no",
            (sid, level, b0, b1),
        ).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]
    start = b0 + first  # the first block of the full buckets
    rows = conn.exec_driver_sql(
        "SELECT g.n, f.first_step, f.first_ts, g.smin, g.smax, g.tmin, g.tmax, g.vmin, "
        "g.vmax, l.last_value FROM (SELECT min(block_no) AS lo, max(block_no) AS hi, "
        "sum(n) AS n, min(min_step) AS smin, max(max_step) AS smax, min(min_ts) AS tmin, "
        "max(max_ts) AS tmax, min(min_value) AS vmin, max(max_value) AS vmax "
        f"FROM metric_blocks WHERE series_id = {ph} AND level = {ph} AND block_no >= {ph} "
        f"AND block_no < {ph} GROUP BY CASE WHEN block_no < {ph} THEN -1 "
        f"ELSE (block_no - CAST({ph} AS BIGINT)) / CAST({ph} AS BIGINT) END) g "
        f"JOIN metric_blocks f ON f.series_id = {ph} AND f.level = {ph} AND f.block_no = g.lo "
        f"JOIN metric_blocks l ON l.series_id = {ph} AND l.level = {ph} AND l.block_no = g.hi "
        "ORDER BY g.lo",
        (sid, level, b0, b1, start, start, per, sid, level, sid, level),
    ).fetchall()
    return [(int(r[0]), *r[1:]) for r in rows]  # type: ignore[misc]


def _series_exact(
    conn: Connection,
    sid: int,
    max_points: int,
    x_axis: str,
    start: int | None,
    end: int | None,
) -> list[SeriesPoint]:
    """Bucket the raw points (series whose x values arrived out of order)."""
    steps, tss, vals = points(conn, sid, 0, None)
    pts = [
        (st, t, v)
        for st, t, v in zip(steps, tss, vals)
        if (start is None or st >= start) and (end is None or st <= end)
    ]
    if not pts:
        return []
    pts.sort(key=(lambda p: (p[0], p[1])) if x_axis == "step" else (lambda p: (p[1], p[0])))
    if len(pts) <= max_points:
        return [SeriesPoint(st, t, v, v, v, 1) for st, t, v in pts]
    return rollup.bucketize([rollup.raw_point(*p) for p in pts], max_points)


# -- helpers -----------------------------------------------------------------------


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic GC while building many small objects: they hold no cycles,
    and collections triggered every 700 allocations would otherwise dominate."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _v0(v: float | None) -> float:
    """A value as MLflow compares it for "latest": NaN counts as 0."""
    return 0.0 if v is None or v != v else v  # noqa: PLR0124 - NaN test, per point


def _none_nan(v: float) -> float | None:
    return None if v != v else v  # noqa: PLR0124 - NaN test


def _point_value(v: float) -> Any:
    """A value as MLflow's metric key compares it: every NaN is the same NaN."""
    return v if v == v else "nan"  # noqa: PLR0124 - NaN test, per point


def _drop_repeats(steps: list[int], tss: list[int], vals: list[float]) -> Cols:
    """The points without repeats of an earlier identical (step, timestamp, value)."""
    if len(set(zip(steps, tss))) == len(steps):
        return steps, tss, vals
    seen: set[tuple[int, int, Any]] = set()
    keep = []
    for i, p in enumerate(zip(steps, tss, map(_point_value, vals))):
        if p not in seen:
            seen.add(p)
            keep.append(i)
    if len(keep) == len(steps):
        return steps, tss, vals
    return [steps[i] for i in keep], [tss[i] for i in keep], [vals[i] for i in keep]


def _non_decreasing(xs: list[int]) -> bool:
    return xs == sorted(xs)


def _strictly_increasing(xs: list[int]) -> bool:
    return len(set(xs)) == len(xs) and xs == sorted(xs)


def _sorted_pairs(steps: list[int], tss: list[int]) -> bool:
    pairs = list(zip(steps, tss))
    return pairs == sorted(pairs)
