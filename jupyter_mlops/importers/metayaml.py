"""A reader for the flat ``meta.yaml`` files of MLflow's file store.

MLflow writes them with ``yaml.safe_dump(default_flow_style=False)``: one
``key: scalar`` per line, scalars plain, single- or double-quoted and folded over
several lines when long. That subset is parsed here so that importing an
``mlruns`` directory does not need PyYAML. Nested blocks (which MLflow does not
write at the top level of these files) are skipped and read as ``None``.
"""

from __future__ import annotations

import re
from typing import Any

_KEY_RE = re.compile(r"^([^\s#'\"][^:]*?|'[^']*'|\"[^\"]*\"):(?:[ \t]+(.*))?$")
_INT_RE = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")

_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


class MetaYamlError(ValueError):
    """The text is not the simple YAML mapping MLflow writes."""


def parse_meta_yaml(text: str) -> dict[str, Any]:
    """Parse a top-level mapping of scalars into ``{key: value}``.

    Plain scalars resolve as YAML's core schema does for what MLflow writes
    (``null``/``~``/empty, booleans, integers, floats); quoted ones stay strings.
    """
    result: dict[str, Any] = {}
    key: str | None = None
    first = ""
    rest: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(("---", "...")) and key is None:
            continue
        if line and not line[0].isspace() and not line.startswith("#"):
            if key is not None:
                result[key] = _value(first, rest)
            match = _KEY_RE.match(line.rstrip(" \t"))
            if not match:
                raise MetaYamlError(f"not a 'key: value' line: {line[:80]!r}")
            key = _unquote_key(match.group(1).strip())
            first, rest = match.group(2) or "", []
        elif key is not None:
            rest.append(line)
    if key is not None:
        result[key] = _value(first, rest)
    return result


def _unquote_key(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "'\"":
        return key[1:-1]
    return key


def _value(first: str, rest: list[str]) -> Any:
    while rest and not rest[-1].strip(" \t"):
        rest.pop()
    first = first.strip(" \t") if not first.startswith(("'", '"')) else first.rstrip(" \t")
    if first.startswith("'"):
        return _single_quoted("\n".join([first, *rest]))
    if first.startswith('"'):
        return _double_quoted("\n".join([first, *rest]))
    if first in ("|", ">", "|-", ">-", "|+", ">+"):
        return _block(first, rest)
    if not first and rest:
        # A nested block (mapping or sequence): not something these files hold.
        stripped = rest[0].lstrip()
        if stripped.startswith("- ") or re.match(r"^[^\s'\"]+:(\s|$)", stripped):
            return None
    return _resolve_plain(_fold_plain([first, *rest]))


def _fold_plain(lines: list[str]) -> str:
    out = ""
    blanks = 0
    for i, raw in enumerate(lines):
        line = _strip_comment(raw).strip()
        if not line:
            if i:
                blanks += 1
            continue
        if out:
            out += "\n" * blanks if blanks else " "
        blanks = 0
        out += line
    return out


def _strip_comment(line: str) -> str:
    idx = line.find(" #")
    return line[:idx] if idx >= 0 else line


def _resolve_plain(s: str) -> Any:
    if s in ("", "~", "null", "Null", "NULL"):
        return None
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    if s == "[]":
        return []
    if s == "{}":
        return {}
    if _INT_RE.match(s):
        return int(s.replace("_", ""))
    if _FLOAT_RE.match(s) and any(c.isdigit() for c in s):
        return float(s.replace("_", ""))
    low = s.lower()
    if low in (".nan",):
        return float("nan")
    if low in (".inf", "+.inf"):
        return float("inf")
    if low == "-.inf":
        return float("-inf")
    return s


_BREAKS = "\n\x85\u2028\u2029"


def _line_break(ch: str) -> str:
    # YAML reads NEL as a plain line feed but keeps the Unicode separators.
    return "\n" if ch in "\n\x85" else ch


def _fold_break(text: str, i: int, out: list[str], protected: int) -> int:
    """Fold the line break at ``text[i]`` as YAML does in quoted scalars;
    returns the index after the following indentation. Literal blanks before
    the break are dropped."""
    while len(out) > protected and out[-1] in (" ", "\t"):
        out.pop()
    first = _line_break(text[i])
    breaks: list[str] = []
    j = i + 1
    while True:
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] in _BREAKS:
            breaks.append(_line_break(text[j]))
            j += 1
            continue
        break
    if first != "\n":
        out.append(first)
    elif not breaks:
        out.append(" ")
    out.extend(breaks)
    return j


def _single_quoted(text: str) -> str:
    out: list[str] = []
    protected = 0
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            if text.startswith("''", i):
                out.append("'")
                protected = len(out)
                i += 2
                continue
            _check_tail(text[i + 1 :])
            return "".join(out)
        if ch in _BREAKS:
            i = _fold_break(text, i, out, protected)
            continue
        out.append(ch)
        i += 1
    raise MetaYamlError("unterminated single-quoted scalar")


def _double_quoted(text: str) -> str:
    out: list[str] = []
    protected = 0
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            _check_tail(text[i + 1 :])
            return "".join(out)
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt == "\n":  # escaped line break: joined without a space
                i += 2
                while i < len(text) and text[i] in " \t":
                    i += 1
                continue
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
            elif nxt in _HEX_ESCAPES:
                width = _HEX_ESCAPES[nxt]
                digits = text[i + 2 : i + 2 + width]
                try:
                    out.append(chr(int(digits, 16)))
                except ValueError:
                    raise MetaYamlError(f"bad escape \\{nxt}{digits}") from None
                i += 2 + width
            else:
                raise MetaYamlError(f"unknown escape \\{nxt}")
            protected = len(out)
            continue
        if ch in _BREAKS:
            i = _fold_break(text, i, out, protected)
            continue
        out.append(ch)
        i += 1
    raise MetaYamlError("unterminated double-quoted scalar")


def _check_tail(tail: str) -> None:
    tail = tail.strip()
    if tail and not tail.startswith("#"):
        raise MetaYamlError(f"text after a quoted scalar: {tail[:40]!r}")


def _block(indicator: str, lines: list[str]) -> str:
    """Literal (``|``) and folded (``>``) block scalars, for completeness."""
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    body = [ln[indent:] for ln in lines]
    if indicator.startswith("|"):
        text = "\n".join(body)
    else:
        text = ""
        for i, ln in enumerate(body):
            if i == 0:
                text = ln
            elif not ln or not body[i - 1] or ln[0].isspace():
                text += "\n" + ln
            else:
                text += " " + ln
    if indicator.endswith("-"):
        return text.rstrip("\n")
    return text + "\n"
