"""Packed storage of metric points: chunks of ``CHUNK`` consecutive points of a
series as three little-endian arrays (int64 steps, int64 timestamps, float64 values).

One row per thousand points makes appends and whole-series reads cost a few row
operations instead of one per point, and keeps NaN exactly (SQLite cannot store a
NaN REAL, but it stores the bytes of one).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

#: Points per chunk; chunk ``c`` of a series holds seqs ``[c*CHUNK, (c+1)*CHUNK)``.
CHUNK = 1024
_SWAP = sys.byteorder != "little"


def encode_ints(xs: Sequence[int]) -> bytes:
    a = array("q", xs)
    if _SWAP:
        a.byteswap()
    return a.tobytes()


def encode_floats(xs: Sequence[float]) -> bytes:
    a = array("d", xs)
    if _SWAP:
        a.byteswap()
    return a.tobytes()


def decode_ints(b: bytes) -> list[int]:
    a = array("q")
    a.frombytes(b)
    if _SWAP:
        a.byteswap()
    return a.tolist()


def decode_floats(b: bytes) -> list[float]:
    a = array("d")
    a.frombytes(b)
    if _SWAP:
        a.byteswap()
    return a.tolist()
