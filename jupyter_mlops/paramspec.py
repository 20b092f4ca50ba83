"""Declared parameters of a spec (a pipeline's ``parameters:``, a training job's ``params:``).

Their types, how a declaration is read (``{type, default, description, enum}`` or a bare
default), how given values (CLI ``-p name=value``, forms, the Python API) are coerced to the
declared type, and how declared defaults and given values combine. Imports nothing of ours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Parameter types and the Python types a value of each may have.
PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "float": (float, int),
    "boolean": (bool,),
    "list": (list,),
    "dict": (dict,),
}


class ParameterError(ValueError):
    """Unknown, missing or mistyped parameters (the message names them)."""


@dataclass
class ParamSpec:
    """A declared parameter; no default means the caller must give a value."""

    name: str
    type: str = "string"
    default: Any = None
    has_default: bool = False
    description: str = ""
    enum: list[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.has_default:
            out["default"] = self.default
        if self.description:
            out["description"] = self.description
        if self.enum is not None:
            out["enum"] = list(self.enum)
        return out


def infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "string"


def param_from_dict(name: str, raw: Any) -> ParamSpec:
    """``{type, default, description, enum}`` or a bare default value."""
    if isinstance(raw, dict) and (
        "type" in raw or "default" in raw or "description" in raw or "enum" in raw
    ):
        has_default = "default" in raw
        default = raw.get("default")
        ptype = raw.get("type") or (infer_type(default) if has_default else "string")
        if ptype == "float" and isinstance(default, int) and not isinstance(default, bool):
            default = float(default)
        return ParamSpec(
            name, ptype, default, has_default, raw.get("description", "") or "", raw.get("enum")
        )
    ptype = infer_type(raw)
    return ParamSpec(name, ptype, raw, True)


def type_ok(ptype: str, value: Any) -> bool:
    """Whether ``value`` already is of the declared type (a bool is no number)."""
    kinds = PARAM_TYPES.get(ptype, (object,))
    if isinstance(value, bool) and ptype != "boolean":
        return False
    return isinstance(value, kinds)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["lr=0.1", "name=x"]`` → ``{"lr": "0.1", "name": "x"}``."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ParameterError(f"expected name=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def coerce(ptype: str, value: Any, name: str) -> Any:
    """A value of the declared type; strings (CLI, forms) are parsed."""
    if type_ok(ptype, value):
        return float(value) if ptype == "float" else value
    if isinstance(value, str):
        s = value.strip()
        try:
            if ptype == "integer":
                return int(s)
            if ptype == "float":
                return float(s)
            if ptype == "boolean":
                low = s.lower()
                if low in ("true", "1", "yes", "on"):
                    return True
                if low in ("false", "0", "no", "off"):
                    return False
                raise ValueError
            if ptype in ("list", "dict"):
                parsed = json.loads(s)
                if type_ok(ptype, parsed):
                    return parsed
                raise ValueError
        except ValueError:
            pass
    if ptype == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    article = "an" if ptype[0] in "aeiou" else "a"
    raise ParameterError(f"parameter {name!r}: {value!r} is not {article} {ptype}")


def resolve_declared(
    declared: Mapping[str, ParamSpec], given: Mapping[str, Any] | None, label: str
) -> dict[str, Any]:
    """Declared defaults overridden by ``given`` (coerced); raises :class:`ParameterError`
    naming every unknown, missing or mistyped one (``label``: how the spec calls them)."""
    given = dict(given or {})
    errors: list[str] = []
    out: dict[str, Any] = {}
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none declared"
            errors.append(f"unknown parameter {name!r} ({label}: {known})")
    for name, spec in declared.items():
        if name in given:
            try:
                value = coerce(spec.type, given[name], name)
            except ParameterError as e:
                errors.append(str(e))
                continue
            if spec.enum is not None and value not in spec.enum:
                errors.append(f"parameter {name!r}: {value!r} is not one of {spec.enum}")
                continue
            out[name] = value
        elif spec.has_default:
            out[name] = spec.default
        else:
            errors.append(f"parameter {name!r} is required ({spec.type})")
    if errors:
        raise ParameterError("; ".join(errors))
    return out
