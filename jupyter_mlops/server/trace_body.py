"""Reading an ``api/v1/traces/log-bulk`` body in one pass, keeping each trace's spans
as sent.

The body is ``{"traces": [{"info": {...}, "spans": [...]}, ...]}``. It is parsed as
:func:`~.request.parse_json_body` parses any body (same JSON, same refusals: nesting,
lone surrogates), but each trace's ``spans`` array becomes a
:class:`~jupyter_mlops.tracking.traces.SpanList` that also holds the array's JSON text as
sent, so the trace's data file takes that text instead of encoding the parsed spans
again (a tenth of ingest's CPU time). The walk is JSON's own C scanner for every value,
with this module stepping over the two outer levels only; anything it does not expect
(another shape, malformed JSON) goes to :func:`~.request.parse_json_body`, whose answer
and errors are then exactly those of any other route.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..tracking.traces import SpanList
from .request import (
    MAX_JSON_DEPTH,
    _too_deep,
    parse_json_body,
    refuse_lone_surrogates,
    too_deep_error,
)

#: JSON's own scanner (C): a value at an index, and where it ends.
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_WS = re.compile(r"[ \t\n\r]*")
#: An object's key without escapes, its colon and the space before its value.
_KEY = re.compile(r'"([^"\\\x00-\x1f]*)"[ \t\n\r]*:[ \t\n\r]*')
#: What follows a member's value: the next member's comma or the object's end.
_SEP = re.compile(r"[ \t\n\r]*([,}])[ \t\n\r]*")
#: The same after an array's item.
_NEXT = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")


class _Unexpected(Exception):
    """Not the shape this reader steps over: the generic parser takes the body."""


def parse_log_bulk_body(body: str | bytes | bytearray) -> dict[str, Any]:
    """The JSON object of a ``log-bulk`` body, as :func:`parse_json_body` returns it,
    with each trace's ``spans`` a :class:`SpanList` carrying its JSON text."""
    if not isinstance(body, str):
        return parse_json_body(body)
    try:
        data = _read(body)
    except (_Unexpected, StopIteration, ValueError, RecursionError, IndexError):
        return parse_json_body(body)  # its error, or its answer for an unusual shape
    refuse_lone_surrogates(body, data)
    return data


def _ws(text: str, i: int) -> int:
    return _WS.match(text, i).end()  # type: ignore[union-attr]  # matches the empty string


def _value(text: str, i: int, depth: int) -> tuple[Any, int]:
    """The JSON value at ``i`` (at nesting ``depth``, counting its own container) and
    where it ends; refused when it nests past :data:`MAX_JSON_DEPTH`."""
    value, end = _scan(text, i)
    if type(value) is dict or type(value) is list:
        # a value whose text opens at most this many containers nests no deeper:
        # the walk is needed only for a suspicious one
        allowed = MAX_JSON_DEPTH - depth + 1
        if text.count("{", i, end) + text.count("[", i, end) > allowed and _too_deep(
            value, allowed
        ):
            raise too_deep_error()
    return value, end


def _read(text: str) -> dict[str, Any]:
    """The body's object, reading ``traces[*].spans`` with their text."""
    i = _ws(text, 0)
    if text[i] != "{":
        raise _Unexpected
    out: dict[str, Any] = {}
    i = _ws(text, i + 1)
    if text[i] == "}":
        i += 1
    else:
        while True:
            key, i = _key(text, i)
            if key == "traces" and text[i] == "[":
                out[key], i = _traces(text, i)
            else:
                out[key], i = _value(text, i, 2)
            i = _ws(text, i)
            if text[i] == ",":
                i = _ws(text, i + 1)
                continue
            if text[i] != "}":
                raise _Unexpected
            i += 1
            break
    if _ws(text, i) != len(text):
        raise _Unexpected  # extra data: json.loads' error
    return out


def _key(text: str, i: int) -> tuple[str, int]:
    """An object's key at ``i`` and the index of its value (past the ``:``)."""
    if text[i] != '"':
        raise _Unexpected
    key, i = _scan(text, i)
    i = _ws(text, i)
    if text[i] != ":":
        raise _Unexpected
    return key, _ws(text, i + 1)


def _traces(text: str, i: int) -> tuple[list[Any], int]:
    """The ``traces`` array at ``i`` (depth 2): each item an object read member by
    member (:func:`_trace`), anything else by the scanner."""
    items: list[Any] = []
    i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
    if text[i] == "]":
        return items, i + 1
    next_at = _NEXT.match
    while True:
        if text[i] == "{":
            item, i = _trace(text, i)
        else:
            item, i = _value(text, i, 3)
        items.append(item)
        m = next_at(text, i)
        if m is None:
            raise _Unexpected
        i = m.end()
        if m.group(1) == "]":
            return items, i


def _trace(text: str, start: int) -> tuple[dict[str, Any], int]:
    """One ``{"info": ..., "spans": [...]}`` item at ``start`` (depth 3). The hot loop
    of a bulk body: a key (without escapes) and the separator after a value are one
    regex match each, the value the scanner's; one depth test for the whole item."""
    item: dict[str, Any] = {}
    spans_at = (0, 0)
    key_at, sep_at, scan = _KEY.match, _SEP.match, _scan
    i = _WS.match(text, start + 1).end()  # type: ignore[union-attr]
    if text[i] != "}":
        while True:
            m = key_at(text, i)
            if m is None:
                raise _Unexpected  # a key with escapes (or not a key): the slow path
            key, at = m.group(1), m.end()
            value, i = scan(text, at)
            item[key] = value
            if key == "spans":
                spans_at = (at, i)
            m = sep_at(text, i)
            if m is None:
                raise _Unexpected
            i = m.end()
            if m.group(1) == "}":
                break
    else:
        i += 1
    # a text opening at most this many containers nests no deeper (the walk is needed
    # only for a suspicious item)
    allowed = MAX_JSON_DEPTH - 2
    if text.count("{", start, i) + text.count("[", start, i) > allowed and _too_deep(item, allowed):
        raise too_deep_error()
    spans = item.get("spans")
    if type(spans) is list:  # wrapped after the walk, which follows plain lists only
        item["spans"] = SpanList(spans, text[spans_at[0] : spans_at[1]])
    return item, i
