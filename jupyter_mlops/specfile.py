"""Reading YAML spec files so that every problem names its file, line and field.

Shared by every ``*.yaml`` file the package validates (pipelines, training jobs, MLproject
files): :func:`load_yaml` keeps the (line, column) of every node by its path,
:class:`SpecContext` collects :class:`Issue` s (``file:line: field: message``) against those
marks, :func:`schema_issues` turns JSON Schema errors into issues, and :func:`within` keeps
user paths inside their root. Imports nothing of ours, so any part may use it.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Where a node sits in a document: keys and list indexes from the root.
Path = tuple[Any, ...]


@dataclass
class Issue:
    """One problem of a spec: what, in which field, where in which file."""

    message: str
    field: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None
    code: str = "invalid"

    def __str__(self) -> str:
        where = self.file or "<pipeline>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "field": self.field,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
        }


class SpecInvalid(Exception):
    """A spec has problems; ``issues`` lists every one."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def field_name(path: Path) -> str:
    """``("steps", "train", "depends_on", 0)`` → ``steps.train.depends_on[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_yaml(text: str) -> tuple[Any, dict[Path, tuple[int, int]]]:
    """The document and the (line, column) of every node, by path (1-based); a key's own
    mark is at ``path + ("<key>",)``. Raises ``yaml.YAMLError``."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    marks: dict[Path, tuple[int, int]] = {}

    def walk(n: Any, path: Path) -> None:
        marks[path] = (n.start_mark.line + 1, n.start_mark.column + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                walk(v, path + (k.value,))
                marks[path + (k.value, "<key>")] = (k.start_mark.line + 1, k.start_mark.column + 1)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    if node is not None:
        walk(node, ())
    return data, marks


class SpecContext:
    """The issues of one file, each placed at the mark of its field (or the nearest
    enclosing one)."""

    def __init__(self, file: str | None, marks: dict[Path, tuple[int, int]]) -> None:
        self.file = file
        self.marks = marks
        self.issues: list[Issue] = []

    def add(self, path: Path, message: str, code: str = "invalid", key: bool = False) -> None:
        mark = None
        if key and path + ("<key>",) in self.marks:
            mark = self.marks[path + ("<key>",)]
        p = path
        while mark is None:
            mark = self.marks.get(p)
            if not p:
                break
            p = p[:-1]
        line, col = mark if mark else (None, None)
        self.issues.append(Issue(message, field_name(path), self.file, line, col, code))


def parse_yaml(text: str, shown: str | None) -> tuple[Any, SpecContext]:
    """The document and a context for its issues; raises :class:`SpecInvalid` (code
    ``invalidYAML``, with the parser's line) when the text is not YAML."""
    import yaml

    try:
        data, marks = load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise SpecInvalid(
            [
                Issue(
                    f"not valid YAML: {problem}",
                    file=shown,
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                    code="invalidYAML",
                )
            ]
        ) from None
    return data, SpecContext(shown, marks)


@functools.lru_cache(maxsize=8)
def schema_validator(schema_path: str) -> Any:
    """A Draft 2020-12 validator of the JSON Schema file (cached)."""
    import sys

    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        # jsonschema builds an IRI grammar at import when rfc3987_syntax is installed: ~3 s
        # on a busy machine, for a format our schemas never use. Skip it (only when we are
        # the first importer; the entry is removed right after).
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
        try:
            import jsonschema
        finally:
            del sys.modules["rfc3987_syntax"]
    import jsonschema

    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    return jsonschema.Draft202012Validator(schema)


def schema_issues(
    validator: Any, data: Any, ctx: SpecContext, message: Callable[[Any, Path], str]
) -> None:
    """Every schema error of ``data`` as an issue (``invalidField``); an unknown key is
    placed at the key itself and lists the allowed ones; ``message(err, path)`` words the
    others."""
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        path = tuple(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            if extra:
                allowed = ", ".join(sorted(err.schema.get("properties", {})))
                ctx.add(
                    path + (extra[0],),
                    f"unknown field{'s' if len(extra) > 1 else ''} "
                    f"{', '.join(map(repr, extra))} (allowed: {allowed})",
                    "invalidField",
                    key=True,
                )
                continue
        ctx.add(path, message(err, path), "invalidField", key=err.validator == "propertyNames")


def common_message(err: Any) -> str:
    """The wording of schema errors every spec shares (required, type, enum, names)."""
    v = err.validator
    if v == "required":
        return str(err.message).replace("is a required property", "is required")
    if v == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(repr, err.validator_value))}"
    if v == "propertyNames":
        return f"{err.instance!r}: {err.message}"
    if v == "type":
        want = err.validator_value
        want = want if isinstance(want, str) else " or ".join(want)
        return f"expected {want}, got {type_name(err.instance)} {err.instance!r}"
    return str(err.message)


def type_name(value: Any) -> str:
    """A YAML reader's name for a value's type (``mapping``, ``integer``, ...)."""
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def within(root: str, full: str) -> bool:
    """Whether ``full`` is ``root`` or inside it (links resolved)."""
    root = os.path.realpath(root)
    full = os.path.realpath(full)
    return full == root or full.startswith(root.rstrip(os.sep) + os.sep)


def read_spec_file(path: str, display: str | None, what: str) -> str:
    """The text of a spec file; raises :class:`SpecInvalid` (``invalidFile``) naming it."""
    try:
        with open(os.path.abspath(path), encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise SpecInvalid(
            [
                Issue(
                    f"cannot read the {what}: {e.strerror}",
                    file=display or path,
                    code="invalidFile",
                )
            ]
        ) from None
