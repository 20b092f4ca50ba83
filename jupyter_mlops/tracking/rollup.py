"""The metric roll-up pyramid and min/max-preserving down-sampling.

Points of a series are numbered by arrival (``seq``). Level ``L`` of the pyramid has
one block per ``BLOCK_BASE ** L`` consecutive seqs holding the count, the first
step/timestamp, the step and timestamp ranges, the min/max value (NaN ignored) and
the value of the last point. Blocks are computed at write time from the new points
and merged with the partial block already stored at each level.

Reading a series of N points into ``max_points`` buckets then needs about
``N / 32**L`` block rows for a level chosen so that this is between ``max_points/2``
and ``16 * max_points``: a million points read ~1000 rows. Series whose x values
(step or timestamp) did not arrive in order, where blocks could overlap, are
bucketed exactly from the raw points instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Optional

from .entities import SeriesPoint
from .schema import BLOCK_BASE, BLOCK_LEVELS

# (n, first_step, first_ts, min_step, max_step, min_ts, max_ts, min_v, max_v, last_v)
Agg = tuple[int, int, int, int, int, int, int, Optional[float], Optional[float], Optional[float]]


def _minmax(a: float | None, b: float | None, pick: type = min) -> float | None:
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


def aggregate_points(steps: Sequence[int], tss: Sequence[int], vals: Sequence[float | None]) -> Agg:
    finite = [v for v in vals if v is not None]
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
        vals[-1],
    )


def new_blocks(
    seq0: int, steps: Sequence[int], tss: Sequence[int], vals: Sequence[float | None]
) -> dict[int, list[tuple[int, Agg]]]:
    """Aggregates of the new points ``seq0 .. seq0+len-1`` per level and block
    (the first block of a level may continue a block already stored)."""
    out: dict[int, list[tuple[int, Agg]]] = {}
    k = len(steps)
    if k == 0:
        return out
    size = BLOCK_BASE
    level1: list[tuple[int, Agg]] = []
    i = 0
    seq = seq0
    while i < k:
        j = min(k, i + size - (seq % size))
        level1.append(
            (seq // size, aggregate_points(steps[i:j], tss[i:j], vals[i:j]))
        )
        seq += j - i
        i = j
    out[1] = level1
    prev = level1
    for level in BLOCK_LEVELS[1:]:
        cur: list[tuple[int, Agg]] = []
        for block_no, agg in prev:
            parent = block_no // BLOCK_BASE
            if cur and cur[-1][0] == parent:
                cur[-1] = (parent, merge(cur[-1][1], agg))
            else:
                cur.append((parent, agg))
        out[level] = cur
        prev = cur
    return out


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


def bucketize(
    pieces: Iterable[Agg], max_points: int, x_axis: str, x_lo: float, x_hi: float
) -> list[SeriesPoint]:
    """Fold aggregates (in x order) into at most ``max_points`` equal-width buckets
    of x; each piece goes to the bucket of its first x."""
    xi = 1 if x_axis == "step" else 2
    width = (x_hi - x_lo) / max_points if x_hi > x_lo else 1.0
    out: list[SeriesPoint] = []
    cur_b = -1
    cur: Agg | None = None
    for agg in pieces:
        b = int((agg[xi] - x_lo) / width)
        if b >= max_points:
            b = max_points - 1
        if cur is not None and b == cur_b:
            cur = merge(cur, agg)
            continue
        if cur is not None:
            out.append(_point(cur))
        cur, cur_b = agg, b
    if cur is not None:
        out.append(_point(cur))
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


def raw_point(step: int, ts: int, value: float | None) -> Agg:
    return (1, step, ts, step, step, ts, ts, value, value, value)
