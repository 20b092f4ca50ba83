"""Pipeline parameter values: coercion of given values to declared types, and
filling ``{{ ... }}`` templates in step parameters, env and args."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..paramspec import ParameterError, coerce, parse_assignments, resolve_declared
from .model import Pipeline
from .spec import TEMPLATE

__all__ = ["ParameterError", "coerce", "fill", "parse_assignments", "resolve_parameters"]


def resolve_parameters(p: Pipeline, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Declared defaults overridden by ``given``; every problem in one message."""
    return resolve_declared(p.parameters, given, "parameters")


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
