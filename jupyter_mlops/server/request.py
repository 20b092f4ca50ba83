"""Reading the fields of one REST call, the way MLflow's server does.

GET calls carry their fields in the query string (repeated keys for lists);
every other call carries a JSON object in its body. Every accessor turns a
missing or mistyped field into a :class:`TrackingError` with MLflow's message,
so a handler never sees a value of the wrong type and a client never sees a 500.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ..tracking.entities import Metric
from ..tracking.errors import TrackingError, invalid, not_found

_API_DOCS = " See the API docs for more information about request parameters."
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_SPECIAL_FLOATS = {
    "nan": math.nan,
    "infinity": math.inf,
    "-infinity": -math.inf,
    "inf": math.inf,
    "-inf": -math.inf,
}


def missing(path: str) -> TrackingError:
    return invalid(f"Missing value for required parameter '{path}'.{_API_DOCS}")


def bad_value(path: str, value: Any, hint: str | None = None) -> TrackingError:
    try:
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        shown = f"<{type(value).__name__}>"
    if len(shown) > 200:
        shown = shown[:200] + "..."
    hint = hint or f"Hint: Value was of type '{type(value).__name__}'."
    return invalid(f"Invalid value {shown} for parameter '{path}' supplied: {hint}{_API_DOCS}")


#: Depth of JSON nesting accepted (MLflow's bodies need 4; Python's parser fails past ~1000).
MAX_JSON_DEPTH = 64
# A \uD800-\uDFFF escape: maybe half of a surrogate pair, maybe a lone one.
# (or a surrogate written as UTF-8 bytes, which json.loads lets through)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\xed[\xa0-\xbf]")
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|[\ud800-\udfff]")


# what any of them starts with: a search for it (the regex engine's literal-prefix scan:
# 0.7 ms per MB, a third of two substring tests') rules out most bodies, which then need
# not run the full pattern; ``str.isascii`` is a flag
_SURROGATE_START_TEXT = re.compile(r"\\u[dD]")
_SURROGATE_START = re.compile(rb"\\u[dD]|\xed")


def maybe_surrogate(body: str | bytes | bytearray) -> bool:
    """Whether ``body`` may hold a lone surrogate (a cheap first test)."""
    if isinstance(body, str):
        return not body.isascii() or _SURROGATE_START_TEXT.search(body) is not None
    return _SURROGATE_START.search(body) is not None


def parse_json_body(body: str | bytes | bytearray) -> dict[str, Any]:
    """The JSON object of a request body; an empty body is ``{}``.

    Refused with INVALID_PARAMETER_VALUE: malformed JSON, nesting deeper than
    :data:`MAX_JSON_DEPTH`, and strings holding a lone UTF-16 surrogate (``"\ud800"``:
    valid JSON, but no character, so no database or file can store it)."""
    if not body or not body.strip():
        return {}
    try:
        data = json.loads(body)
        if isinstance(data, str):  # old MLflow clients double-encode their JSON
            data = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"The request body is not valid JSON: {str(e)[:200]}") from None
    except RecursionError:
        data = None
    text = isinstance(body, str)
    opening = ("[", "{") if text else (b"[", b"{")
    if data is None or (
        body.count(opening[0]) + body.count(opening[1]) > MAX_JSON_DEPTH  # type: ignore[arg-type]
        and _too_deep(data)
    ):
        raise too_deep_error()
    if not isinstance(data, dict):
        raise invalid(
            f"The request body must be a JSON object, not {type(data).__name__}.{_API_DOCS}"
        )
    refuse_lone_surrogates(body, data)
    return data


def too_deep_error() -> TrackingError:
    """The refusal of a body nesting deeper than :data:`MAX_JSON_DEPTH`."""
    return invalid(
        f"The request body nests JSON arrays or objects more than "
        f"{MAX_JSON_DEPTH} levels deep.{_API_DOCS}"
    )


def refuse_lone_surrogates(body: str | bytes | bytearray, data: Any) -> None:
    """Refuse ``data``, parsed from ``body``, when one of its strings (or keys) holds a
    lone UTF-16 surrogate, naming the first such field. The body's text is searched
    first (cheap), so the parsed value is walked only when an escape may be one."""
    if not maybe_surrogate(body):
        return
    if isinstance(body, str):
        found = _SURROGATE_ESCAPE_TEXT.search(body) is not None
    else:
        found = _SURROGATE_ESCAPE.search(body) is not None
    if found:
        where = _lone_surrogate(data)
        if where is not None:
            raise invalid(
                f"Invalid value for parameter '{where}': it holds a lone UTF-16 "
                f"surrogate (such as \\ud800), which is not a Unicode character."
            )


def _too_deep(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Nesting past ``limit`` levels, level by level (no recursion; only
    containers are kept, so a column of a million numbers costs one scan). One
    comprehension per level and exact type tests (json.loads makes only dicts and
    lists): a bulk body of 500 traces is walked in ~1 ms, not ~6 ms."""
    level = [data] if type(data) is dict or type(data) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            c
            for v in level
            for c in (v.values() if type(v) is dict else v)
            if type(c) is dict or type(c) is list
        ]
    return False


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _lone_surrogate(data: Any) -> str | None:
    """The path (``tags[0].key``) of the first string holding a lone surrogate, if any."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if _has_lone_surrogate(value):
                return path or "body"
        elif isinstance(value, dict):
            for k, v in value.items():
                name = f"{path}.{k}" if path else str(k)
                if _has_lone_surrogate(str(k)):
                    return name
                stack.append((name, v))
        elif isinstance(value, list):
            stack.extend(
                (f"{path}[{i}]", v) for i, v in enumerate(value) if isinstance(v, (str, dict, list))
            )
    return None


class Fields:
    """Typed access to the fields of a request (or of one object inside it).

    ``prefix`` names where the object sits (``metrics[3]``) so messages point
    at the offending field. For query strings every value is a list of strings.
    """

    def __init__(self, data: Mapping[str, Any], *, query: bool = False, prefix: str = "") -> None:
        self.data = data
        self.query = query
        self.prefix = prefix

    # -- construction ----------------------------------------------------
    @classmethod
    def from_query(cls, arguments: Mapping[str, list[bytes]]) -> Fields:
        data: dict[str, list[str]] = {}
        for name, values in arguments.items():
            try:
                data[name] = [v.decode("utf-8") for v in values]
            except UnicodeDecodeError:
                raise invalid(f"Query parameter '{name}' is not valid UTF-8.") from None
        return cls(data, query=True)

    @classmethod
    def from_body(cls, body: str | bytes | bytearray) -> Fields:
        return cls(parse_json_body(body))

    # -- helpers ---------------------------------------------------------
    def path(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def _raw(self, name: str) -> Any:
        value = self.data.get(name)
        if self.query and isinstance(value, list):
            return value[0] if value else None
        return value

    def _present(self, name: str, required: bool) -> Any:
        value = self._raw(name)
        if value is None or value == "":
            if required:
                raise missing(self.path(name))
            return None
        return value

    # -- scalars ---------------------------------------------------------
    def string(
        self,
        name: str,
        required: bool = False,
        default: str | None = None,
        max_length: int | None = None,
    ) -> str | None:
        value = self._present(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise bad_value(self.path(name), value)
        return checked_str(value, self.path(name), max_length)

    def text(self, name: str, default: str = "", max_length: int | None = None) -> str:
        """An optional string that may be empty (values of params and tags)."""
        value = self._raw(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise bad_value(self.path(name), value)
        return checked_str(value, self.path(name), max_length)

    def ident(self, name: str, required: bool = False) -> str | None:
        """An id field: a string, though MLflow also takes an integer for ids."""
        value = self._present(name, required)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise bad_value(self.path(name), value)
        return no_nul(value, self.path(name))

    def experiment_id(self, name: str = "experiment_id", required: bool = True) -> str | None:
        """An experiment id; a number no database can hold names no experiment."""
        return check_experiment_id(self.ident(name, required))

    def run_id(self) -> str:
        """``run_id``, or the deprecated ``run_uuid`` that clients also send."""
        value = self.ident("run_id") or self.ident("run_uuid")
        if value is None:
            raise missing(self.path("run_id"))
        return value

    def integer(
        self,
        name: str,
        required: bool = False,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self._present(name, required)
        if value is None:
            return default
        result = to_int(value, self.path(name))
        if minimum is not None and result < minimum:
            raise bad_value(self.path(name), value, f"It must be at least {minimum}.")
        if maximum is not None and result > maximum:
            raise bad_value(self.path(name), value, f"It must be at most {maximum}.")
        return result

    def number(self, name: str, required: bool = False) -> float | None:
        value = self._present(name, required)
        if value is None:
            return None
        return to_float(value, self.path(name))

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._present(name, False)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid(f"Invalid boolean value: {value}, must be 'true' or 'false'.")

    def enum(self, name: str, choices: Mapping[str, str], default: str | None = None) -> str | None:
        """An enum given by name (or by its protobuf number, a key of ``choices`` too)."""
        value = self._present(name, False)
        if value is None:
            return default
        key = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        if key is None or (key.upper() not in choices and key not in choices):
            raise bad_value(
                self.path(name),
                value,
                f"Value must be one of {', '.join(sorted(set(choices.values())))}.",
            )
        return choices.get(key, choices.get(key.upper()))

    # -- lists -----------------------------------------------------------
    def _list(self, name: str) -> list[Any]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            if self.query:
                return [value]
            raise bad_value(self.path(name), value)
        return value

    def strings(self, name: str, ids: bool = False) -> list[str]:
        out = []
        for i, item in enumerate(self._list(name)):
            if ids and isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                raise bad_value(f"{self.path(name)}[{i}]", item)
            out.append(no_nul(item, f"{self.path(name)}[{i}]"))
        return out

    def objects(self, name: str) -> list[Fields]:
        out = []
        for i, item in enumerate(self._list(name)):
            if not isinstance(item, dict):
                raise bad_value(f"{self.path(name)}[{i}]", item)
            out.append(Fields(item, prefix=f"{self.path(name)}[{i}]"))
        return out

    def key_values(self, name: str) -> list[tuple[str, str]]:
        """``[{"key", "value"}]`` lists (params, tags); a key is required."""
        return [(o.string("key", required=True) or "", o.text("value")) for o in self.objects(name)]

    def tag_dict(self, name: str = "tags") -> dict[str, str]:
        return dict(self.key_values(name))

    def metrics(self, name: str = "metrics") -> list[Metric]:
        out = []
        for o in self.objects(name):
            key = o.string("key", required=True) or ""
            value = o.number("value", required=True)
            timestamp = o.integer("timestamp", required=True)
            step = o.integer("step", default=0)
            out.append(
                Metric(
                    key,
                    float(value),  # type: ignore[arg-type]
                    int(timestamp),  # type: ignore[arg-type]
                    int(step),  # type: ignore[arg-type]
                    model_id=o.string("model_id") or None,
                    dataset_name=o.string("dataset_name") or None,
                    dataset_digest=o.string("dataset_digest") or None,
                )
            )
        return out


def no_nul(value: str, path: str) -> str:
    """Strings with NUL characters are refused: PostgreSQL cannot store them and
    file APIs reject them, so they would fail later as server faults."""
    if "\x00" in value:
        raise bad_value(path, value, "NUL characters are not allowed.")
    return value


def checked_str(value: str, path: str, max_length: int | None = None) -> str:
    """No NUL characters; at most ``max_length`` characters (a column's width)."""
    if max_length is not None and len(value) > max_length:
        raise invalid(f"'{path}' exceeds the maximum length of {max_length} characters")
    return no_nul(value, path)


def check_experiment_id(value: str | None) -> str | None:
    digits = value is not None and value.strip().lstrip("-").isdigit()
    if digits and not INT64_MIN <= int(value) <= INT64_MAX:  # type: ignore[arg-type]
        raise not_found(f"No Experiment with id={value} exists")
    return value


def to_int(value: Any, path: str) -> int:
    """An int64 the way protobuf's JSON reads one: a number or a numeric string."""
    result: int | None = None
    if isinstance(value, bool):
        result = None
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            try:
                f = float(value)
                result = int(f) if f.is_integer() else None
            except (ValueError, OverflowError):
                result = None
    if result is None:
        raise bad_value(path, value)
    if not INT64_MIN <= result <= INT64_MAX:
        raise bad_value(path, value, "It must fit in a 64-bit signed integer.")
    return result


def to_float(value: Any, path: str) -> float:
    """A double: a number, a numeric string, or "NaN" / "Infinity" / "-Infinity"."""
    if isinstance(value, bool):
        raise bad_value(path, value)
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise bad_value(path, value, "It is out of range for a double.") from None
    if isinstance(value, str):
        special = _SPECIAL_FLOATS.get(value.strip().lower())
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise bad_value(path, value)


#: Longest file or directory name (bytes of UTF-8) in an artifact path: most file systems'.
MAX_FILE_NAME = 255


def safe_artifact_path(path: str | None, name: str = "path") -> str:
    """A relative POSIX path that cannot leave its root: no ``..``, no absolute
    paths, no backslashes or NUL bytes. ``.`` and empty segments are dropped."""
    if not path:
        return ""
    if "\x00" in path or "\\" in path or path.startswith("/") or "://" in path:
        raise invalid(f"Invalid path: '{path}' (parameter '{name}').")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise invalid(f"Invalid path: '{path}' (parameter '{name}').")
    for p in parts:
        if len(p.encode("utf-8", "surrogatepass")) > MAX_FILE_NAME:
            raise invalid(
                f"Invalid path (parameter '{name}'): the name '{p[:40]}...' is "
                f"longer than {MAX_FILE_NAME} bytes, the file system's limit."
            )
        if _has_lone_surrogate(p):
            raise invalid(f"Invalid path (parameter '{name}'): it holds a lone surrogate.")
    if parts and len(parts[0]) == 2 and parts[0][1] == ":":  # a Windows drive
        raise invalid(f"Invalid path: '{path}' (parameter '{name}').")
    return "/".join(parts)
