"""MLflow's page tokens, one codec for every search of the package (runs, experiments,
metric history, registered models, model versions, logged models).

A token is the base64 of ``{"offset": N}`` (e.g. ``eyJvZmZzZXQiOiAxMDB9``), as MLflow's
SQL stores write it, so a token from either server pages the other's answer.

Run search adds a *keyset* to its tokens (``{"offset": N, "after": [...], "search":
"<digest>"}``: the sort values of the page's last run and a digest of the search it
belongs to): the next page starts right after that run instead of skipping N rows, so
the 1000th page costs what the first does. MLflow reads such a token by its offset.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from .errors import invalid

T = TypeVar("T")


def encode_page_token(offset: int) -> str:
    """MLflow's offset token: base64 of ``{"offset": N}``."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a token names (0 for none); INVALID_PARAMETER_VALUE, with MLflow's
    messages, for anything that is not one of ours."""
    if not token:
        return 0
    try:
        raw = base64.b64decode(token, validate=False)
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        raise invalid("Invalid page token, could not base64-decode") from None
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise invalid(f"Invalid page token, decoded value={raw!r}") from None
    if not isinstance(parsed, dict) or "offset" not in parsed:
        raise invalid(f"Invalid page token, parsed value={parsed}")
    offset = parsed["offset"]
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise invalid(f"Invalid page token, offset must be a non-negative integer, got {offset!r}")
    return offset


def page(items: Sequence[T], max_results: int, token: str | None) -> tuple[list[T], str | None]:
    """One page of ``items`` (already filtered and ordered) from the token's offset, and
    the token of the next page (None on the last)."""
    start = decode_page_token(token)
    end = start + max_results
    return list(items[start:end]), encode_page_token(end) if end < len(items) else None


def search_digest(*parts: Any) -> str:
    """A short digest of what a search is (experiments, filter, order, view): a keyset
    token is only followed by the search it came from."""
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha1(raw).hexdigest()[:16]


def encode_keyset_token(offset: int, digest: str, after: Sequence[Any]) -> str:
    """An offset token (MLflow reads it as one) that also holds the sort values of the
    last row returned, for the search named by ``digest``."""
    body = {"offset": offset, "after": list(after), "search": digest}
    return base64.b64encode(json.dumps(body).encode()).decode()


def decode_keyset_token(token: str | None, digest: str) -> tuple[int, list[Any] | None]:
    """(offset, keyset values): the keyset only when the token carries one for this
    search (``digest``); a plain offset token (MLflow's) gives None."""
    offset = decode_page_token(token)
    if not token:
        return offset, None
    parsed = json.loads(base64.b64decode(token))
    after = parsed.get("after")
    if parsed.get("search") != digest or not isinstance(after, list):
        return offset, None
    return offset, after
