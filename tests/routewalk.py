"""Walk a server's route table: a URL for every route, for tests that must cover
each route, including those added later (the auth walk, the fuzzer)."""

from __future__ import annotations

import re
from typing import Any

#: Verbs tried on every route (OPTIONS is CORS's preflight, answered without credentials).
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")

_GROUP = re.compile(r"\((?:\?P<(\w+)>|\?:)?((?:[^()\\]|\\.)*)\)")


def sample_path(pattern: str, value: str = "x1") -> str:
    """A path the route's regex matches: each group filled with ``value`` (a path
    group gets ``value/f.txt``), escapes undone, anchors and optional slashes dropped."""
    p = pattern.rstrip("$").lstrip("^")

    def fill(m: re.Match[str]) -> str:
        body = m.group(2)
        return f"{value}/f.txt" if body in (".+", ".*") else value

    p = _GROUP.sub(fill, p)
    p = p.replace("/?", "/")
    p = re.sub(r"\\(.)", r"\1", p)
    if not re.fullmatch(pattern, p):
        raise AssertionError(f"sample {p!r} does not match {pattern!r}")
    return p


def _rules(router: Any) -> Any:
    for rule in getattr(router, "rules", []):
        target = rule.target
        if hasattr(target, "rules"):
            yield from _rules(target)
        else:
            yield rule


def served_patterns(web_app: Any, prefix: str) -> list[tuple[str, type]]:
    """``(regex, handler class)`` of every route of a running tornado app under ``prefix``."""
    out = []
    for rule in _rules(web_app.default_router):
        regex = getattr(rule.matcher, "regex", None)
        if regex is not None and regex.pattern.startswith(prefix):
            out.append((regex.pattern, rule.target))
    return out


#: Kinds of bad credentials: (headers, query) of a request that must be refused.
BAD_CREDENTIALS: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("none", {}, {}),
    ("wrong token", {"Authorization": "token 0123456789abcdef"}, {}),
    ("wrong bearer", {"Authorization": "Bearer 0123456789abcdef"}, {}),
    ("basic", {"Authorization": "Basic YWxpY2U6czNjcmV0"}, {}),
    ("forged cookie", {"Cookie": "username-127-0-0-1-8888=2|1:0|10:1|4:z|8:dXNlcg==|00"}, {}),
    ("wrong query token", {}, {"token": "0123456789abcdef"}),
]
