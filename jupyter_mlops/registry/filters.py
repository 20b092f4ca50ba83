"""The small filter grammar of MLflow's registry and logged-model searches.

``name = 'bm' AND tags.team LIKE 'ml%' AND run_id IN ('a', 'b')``: comparisons
joined by ``AND``, evaluated in Python over plain dicts (a registry holds
hundreds of models, not millions, so no SQL translation is needed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..tracking.errors import invalid

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op>!=|<>|>=|<=|=|<|>)
      | (?P<lp>\()|(?P<rp>\))|(?P<comma>,)
      | (?P<word>(?:[A-Za-z_][\w.]*(?:`[^`]*`)?)|`[^`]*`|-?\d+(?:\.\d+)?)
    )""",
    re.VERBOSE,
)

#: One condition: ``(field, op, value)``; ``field`` like ``name`` or ``tags.key``.
Clause = tuple[str, str, Any]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise invalid(f"Invalid filter string '{text}': unexpected text at '{text[pos:]}'")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def _field(word: str) -> str:
    # tags.`my key` / tag.key / `name` / attributes.name
    field = word.replace("`", "")
    head, dot, rest = field.partition(".")
    if dot and head in ("tag", "tags"):
        return "tags." + rest
    if dot and head in ("param", "params"):
        return "params." + rest
    if dot and head in ("attribute", "attributes", "attr"):
        return rest
    return field


def parse(text: str | None) -> list[Clause]:
    """Clauses of a filter string (empty for none); INVALID_PARAMETER_VALUE if malformed."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    clauses: list[Clause] = []
    i = 0

    def bad(why: str) -> Exception:
        return invalid(f"Invalid filter string '{text}': {why}")

    while i < len(toks):
        kind, word = toks[i]
        if kind != "word":
            raise bad(f"expected an attribute name, got '{word}'")
        field = _field(word)
        i += 1
        if i >= len(toks):
            raise bad(f"'{field}' has no comparison")
        kind, op = toks[i]
        op_u = op.upper()
        if (
            kind == "word"
            and op_u == "NOT"
            and i + 1 < len(toks)
            and toks[i + 1][1].upper() in ("IN", "LIKE", "ILIKE")
        ):
            i += 1
            op_u = "NOT " + toks[i][1].upper()
        elif kind == "word" and op_u in ("LIKE", "ILIKE", "IN"):
            pass
        elif kind == "op":
            op_u = "!=" if op == "<>" else op
        else:
            raise bad(f"unknown comparison '{op}'")
        i += 1
        if op_u.endswith("IN"):
            if i >= len(toks) or toks[i][0] != "lp":
                raise bad("IN needs a parenthesised list of strings")
            i += 1
            values: list[str] = []
            while i < len(toks) and toks[i][0] != "rp":
                k, v = toks[i]
                if k == "str":
                    values.append(_unquote(v))
                elif k != "comma":
                    raise bad(f"unexpected '{v}' in an IN list")
                i += 1
            if i >= len(toks):
                raise bad("unclosed IN list")
            i += 1
            clauses.append((field, op_u, values))
        else:
            if i >= len(toks) or toks[i][0] not in ("str", "word"):
                raise bad(f"'{field} {op}' has no value")
            k, v = toks[i]
            value: Any = _unquote(v) if k == "str" else v
            if k == "word":
                try:
                    value = float(v) if "." in v else int(v)
                except ValueError:
                    raise bad(f"values must be quoted strings or numbers, got {v}") from None
            clauses.append((field, op_u, value))
            i += 1
        if i < len(toks):
            if toks[i][0] != "word" or toks[i][1].upper() != "AND":
                raise bad(f"expected AND, got '{toks[i][1]}'")
            i += 1
            if i >= len(toks):
                raise bad("nothing after AND")
    return clauses


def _like(pattern: str, value: str, ignore_case: bool) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _compare(op: str, have: Any, want: Any) -> bool:
    if have is None:
        return op in ("!=", "NOT IN", "NOT LIKE", "NOT ILIKE")
    if op in ("IN", "NOT IN"):
        return (str(have) in want) == (op == "IN")
    if op.endswith("LIKE"):
        hit = _like(str(want), str(have), op.endswith("ILIKE"))
        return hit != op.startswith("NOT")
    if isinstance(want, (int, float)) and not isinstance(have, (int, float)):
        try:
            have = float(have)
        except (TypeError, ValueError):
            return False
    elif isinstance(have, (int, float)) and isinstance(want, str):
        have = str(have)
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }
    return ops[op](have, want)


def matcher(
    text: str | None, attributes: Mapping[str, str], prefixes: tuple[str, ...] = ("tags",)
) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over entity dicts. ``attributes`` maps filter names to dict keys
    (``{"name": "name", "source_run_id": "source_run_id"}``); ``prefix.key`` reads
    ``entity[prefix][key]`` (a dict) for each of ``prefixes``."""
    clauses = parse(text)
    for field, _op, _v in clauses:
        head = field.split(".", 1)[0]
        if field not in attributes and not (head in prefixes and "." in field):
            allowed = ", ".join(sorted(attributes)) + "".join(f", {p}.<key>" for p in prefixes)
            raise invalid(f"Invalid attribute '{field}' in the filter. Valid ones: {allowed}")

    def match(entity: Mapping[str, Any]) -> bool:
        for field, op, want in clauses:
            if field in attributes:
                have = entity.get(attributes[field])
            else:
                head, key = field.split(".", 1)
                have = (entity.get(head) or {}).get(key)
            if not _compare(op, have, want):
                return False
        return True

    return match


def order_hits(
    items: list[dict[str, Any]],
    order_by: Sequence[str],
    allowed: Sequence[str],
    default: Sequence[tuple[str, bool]],
) -> list[dict[str, Any]]:
    """Sort search hits in place by MLflow's ``order_by`` clauses (``name DESC``) over
    ``allowed`` fields, then by the ``default`` keys not given; INVALID_PARAMETER_VALUE
    names a clause that is not one of them."""
    keys: list[tuple[str, bool]] = []
    for clause in order_by or ():
        parts = clause.strip().split()
        if not parts:
            continue
        field = parts[0].replace("`", "")
        if field.startswith(("attributes.", "attribute.")):
            field = field.split(".", 1)[1]
        if field == "timestamp":
            field = "last_updated_timestamp"
        elif field == "version_number":  # MLflow's name of a model version's number
            field = "version"
        direction = parts[1].upper() if len(parts) > 1 else "ASC"
        if field not in allowed or direction not in ("ASC", "DESC") or len(parts) > 2:
            raise invalid(
                f"Invalid order_by clause '{clause}'. Only ordering by "
                f"{', '.join(allowed)} (ASC or DESC) is supported."
            )
        keys.append((field, direction == "ASC"))
    for field, asc in default:
        if field not in {k for k, _ in keys}:
            keys.append((field, asc))
    for field, asc in reversed(keys):
        items.sort(key=lambda d: (d.get(field) is None, _sortable(d.get(field))), reverse=not asc)
    return items


def _sortable(v: Any) -> Any:
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return v if v is not None else ""
