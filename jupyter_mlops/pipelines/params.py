"""Pipeline parameter values: coercion of given values to declared types, and
filling ``{{ ... }}`` templates in step parameters, env and args."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .model import Pipeline
from .spec import TEMPLATE, type_ok


class ParameterError(ValueError):
    """Unknown, missing or mistyped pipeline parameters (message names them)."""


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


def resolve_parameters(p: Pipeline, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Declared defaults overridden by ``given``; every problem in one message."""
    given = dict(given or {})
    errors: list[str] = []
    out: dict[str, Any] = {}
    for name in given:
        if name not in p.parameters:
            known = ", ".join(sorted(p.parameters)) or "none"
            errors.append(f"unknown parameter {name!r} (parameters: {known})")
    for name, spec in p.parameters.items():
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


def fill(value: Any, ctx: Mapping[str, Any]) -> Any:
    """Fill templates: a value that is one whole template keeps the referenced
    value's type (``"{{ params.lr }}"`` → 0.01); others become strings."""
    if isinstance(value, dict):
        return {k: fill(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ctx) for v in value]
    if not isinstance(value, str):
        return value
    whole = TEMPLATE.fullmatch(value.strip())
    if whole:
        return ctx[whole.group(1)]
    return TEMPLATE.sub(lambda m: _text(ctx[m.group(1)]), value)


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)
