"""The metric roll-up pyramid and min/max-preserving down-sampling.

Points of a series are numbered by arrival (``seq``). Level ``L`` of the pyramid has
one block per ``BLOCK_BASE ** L`` consecutive seqs holding the count, the first
step/timestamp, the step and timestamp ranges, the min/max value (NaN ignored) and
the value of the last point. Blocks are computed at write time from the new points
and merged with the partial block already stored at each level.

Reading a series of N points into ``max_points`` buckets then needs about
``N / 32**L`` block rows for a level chosen so that this is between ``max_points/2``
and ``16 * max_points``: a million points read ~1000 rows. Buckets are runs of whole
blocks of about equal point counts, so each bucket's min/max/count is exact. Series
whose x values (step or timestamp) did not arrive in order are bucketed from the raw
points sorted by x instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .entities import SeriesPoint
from .schema import BLOCK_BASE, BLOCK_LEVELS

# (n, first_step, first_ts, min_step, max_step, min_ts, max_ts, min_v, max_v, last_v)
Agg = tuple[int, int, int, int, int, int, int, float | None, float | None, float | None]


def _minmax(
    a: float | None, b: float | None, pick: Callable[[float, float], float] = min
) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return pick(a, b)


def merge(a: Agg, b: Agg) -> Agg:
    """Combine two aggregates; ``a`` holds earlier points than ``b``."""
    return (
        a[0] + b[0],
        a[1],
        a[2],
        min(a[3], b[3]),
        max(a[4], b[4]),
        min(a[5], b[5]),
        max(a[6], b[6]),
        _minmax(a[7], b[7], min),
        _minmax(a[8], b[8], max),
        b[9],
    )


def aggregate_points(steps: Sequence[int], tss: Sequence[int], vals: Sequence[float]) -> Agg:
    """Aggregate raw points (NaN values are left out of min/max)."""
    total = sum(vals)
    if total == total:  # noqa: PLR0124 - no NaN (min/max at C speed)
        finite: Sequence[float] = vals
    else:  # a NaN (or inf - inf: then this path is right too)
        finite = [v for v in vals if v == v]  # noqa: PLR0124 - NaN test
    last = vals[-1]
    return (
        len(steps),
        steps[0],
        tss[0],
        min(steps),
        max(steps),
        min(tss),
        max(tss),
        min(finite) if finite else None,
        max(finite) if finite else None,
        None if last != last else last,  # noqa: PLR0124 - NaN test
    )


def new_blocks(
    seq0: int,
    steps: Sequence[int],
    tss: Sequence[int],
    vals: Sequence[float],
    steps_sorted: bool = False,
    ts_sorted: bool = False,
) -> dict[int, list[tuple[int, Agg]]]:
    """Aggregates of the new points ``seq0 .. seq0+len-1`` per level and block
    (the first block of a level may continue a block already stored). ``*_sorted``
    say the x values are non-decreasing, so ranges are the ends of each slice."""
    out: dict[int, list[tuple[int, Agg]]] = {}
    k = len(steps)
    if k == 0:
        return out
    total = sum(vals)
    has_nan = total != total  # noqa: PLR0124 - NaN anywhere (or inf - inf: then the slow path is right too)
    size = BLOCK_BASE
    level1: list[tuple[int, Agg]] = []
    append = level1.append
    i = 0
    seq = seq0
    while i < k:
        j = min(k, i + size - (seq % size))
        vs = vals[i:j]
        if has_nan:
            fin = [v for v in vs if v == v]  # noqa: PLR0124 - NaN test
            vmin = min(fin) if fin else None
            vmax = max(fin) if fin else None
        else:
            vmin, vmax = min(vs), max(vs)
        last = vs[-1]
        if steps_sorted:
            s_lo, s_hi = steps[i], steps[j - 1]
        else:
            ss = steps[i:j]
            s_lo, s_hi = min(ss), max(ss)
        if ts_sorted:
            t_lo, t_hi = tss[i], tss[j - 1]
        else:
            ts_ = tss[i:j]
            t_lo, t_hi = min(ts_), max(ts_)
        last_v = None if last != last else last  # noqa: PLR0124 - NaN test
        append((seq // size, (j - i, steps[i], tss[i], s_lo, s_hi, t_lo, t_hi, vmin, vmax, last_v)))
        seq += j - i
        i = j
    out[1] = level1
    prev = level1
    for level in BLOCK_LEVELS[1:]:
        cur: list[tuple[int, Agg]] = []
        start = 0
        m = len(prev)
        while start < m:
            parent = prev[start][0] // BLOCK_BASE
            end = start + 1
            while end < m and prev[end][0] // BLOCK_BASE == parent:
                end += 1
            cur.append((parent, _combine([a for _, a in prev[start:end]])))
            start = end
        out[level] = cur
        prev = cur
    return out


def _combine(aggs: list[Agg]) -> Agg:
    """Merge consecutive aggregates at C speed (one transpose, then sum/min/max)."""
    if len(aggs) == 1:
        return aggs[0]
    n, fs, ft, smin, smax, tmin, tmax, vmin, vmax, last = zip(*aggs)
    lo = [v for v in vmin if v is not None]
    hi = [v for v in vmax if v is not None]
    return (
        sum(n),
        fs[0],
        ft[0],
        min(smin),
        max(smax),
        min(tmin),
        max(tmax),
        min(lo) if lo else None,
        max(hi) if hi else None,
        last[-1],
    )


def cover(lo: int, hi: int, top: int) -> list[tuple[int, int, int]]:
    """Split the seq range ``[lo, hi)`` into pieces ``(level, start, end)`` in seq
    order: level 0 pieces are raw points, level ``L`` pieces are whole aligned blocks
    of ``32**L`` points; no level above ``top`` is used."""
    left: list[tuple[int, int, int]] = []
    right: list[tuple[int, int, int]] = []
    a, b = lo, hi
    size = 1
    for level in range(top):
        nsize = size * BLOCK_BASE
        na = min(-(-a // nsize) * nsize, b)
        nb = max(b // nsize * nsize, na)
        if na > a:
            left.append((level, a, na))
        if b > nb:
            right.append((level, nb, b))
        a, b = na, nb
        size = nsize
    middle = [(top, a, b)] if b > a else []
    return left + middle + right[::-1]


def choose_level(n: int, max_points: int) -> int:
    """0 (exact from raw points) for small ranges, else the coarsest level that still
    gives at least ``max_points / 2`` blocks."""
    if n <= 16 * max_points:
        return 0
    best = 1
    for level in BLOCK_LEVELS:
        if n / BLOCK_BASE**level >= max_points / 2:
            best = level
    return best


def bucketize(pieces: Sequence[Agg], max_points: int) -> list[SeriesPoint]:
    """Fold aggregates (in x order) into at most ``max_points`` buckets of about equal
    point counts. Pieces are never split, so each bucket's min/max/count are exact."""
    total = sum(p[0] for p in pieces)
    target = max(1, -(-total // max_points))
    out: list[SeriesPoint] = []
    group: list[Agg] = []
    count = 0
    for agg in pieces:
        group.append(agg)
        count += agg[0]
        if count >= target:
            out.append(_point(_combine(group)))
            group, count = [], 0
    if group:
        out.append(_point(_combine(group)))
    return out


def _point(a: Agg) -> SeriesPoint:
    nan = math.nan
    return SeriesPoint(
        step=a[1],
        timestamp=a[2],
        value=nan if a[9] is None else a[9],
        min=nan if a[7] is None else a[7],
        max=nan if a[8] is None else a[8],
        count=a[0],
    )


def raw_point(step: int, ts: int, value: float) -> Agg:
    v = None if value != value else value  # noqa: PLR0124 - NaN test
    return (1, step, ts, step, step, ts, ts, v, v, v)
