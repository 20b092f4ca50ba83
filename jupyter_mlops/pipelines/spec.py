"""Reading and validating pipelines: ``*.pipeline.yaml`` files and DSL models.

Every problem becomes an :class:`Issue` naming the file, the line (from the
YAML node marks) and the field (``steps.train.depends_on[0]``), and all of them
are reported at once: a structural check against the shipped JSON Schema, then
the DAG (unknown dependencies, cycles named step by step), the files (notebooks
and scripts relative to the pipeline file, never outside the workspace root),
parameters (types, defaults, the notebook's own ``parameters`` cell) and
templates (``{{ params.lr }}``).
"""

from __future__ import annotations

import ast
import json
import os
import re
from typing import Any

from ..paramspec import PARAM_TYPES, type_ok
from ..specfile import (
    Issue,
    Path,
    SpecContext,
    SpecInvalid,
    common_message,
    field_name,
    parse_yaml,
    read_spec_file,
    schema_issues,
    schema_validator,
    within,
)
from .model import Pipeline, pipeline_from_dict

__all__ = [
    "Issue",
    "PipelineInvalid",
    "field_name",
    "load_pipeline",
    "parse_pipeline",
    "type_ok",
    "validate_pipeline",
    "within",
]

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "pipeline.schema.json")
TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_REF = re.compile(
    r"^(params\.[A-Za-z_][A-Za-z0-9_]*|run\.id|run\.dir|pipeline\.name|"
    r"pipeline\.dir|steps\.[A-Za-z0-9][A-Za-z0-9_-]*\.outputs)$"
)


class PipelineInvalid(SpecInvalid):
    """The pipeline has problems; ``issues`` lists every one."""


# -- entry points ------------------------------------------------------------------------
def load_pipeline(path: str, root: str | None = None) -> Pipeline:
    """Read and validate a pipeline file; raises :class:`PipelineInvalid`."""
    apath = os.path.abspath(path)
    try:
        text = read_spec_file(apath, path, "pipeline file")
    except SpecInvalid as e:
        raise PipelineInvalid(e.issues) from None
    return parse_pipeline(text, path=apath, root=root, display=path)


def parse_pipeline(
    text: str, path: str | None = None, root: str | None = None, display: str | None = None
) -> Pipeline:
    """Validate YAML text; ``path`` (absolute) locates relative step files."""
    try:
        data, ctx = parse_yaml(text, display or path)
    except SpecInvalid as e:
        raise PipelineInvalid(e.issues) from None
    if not isinstance(data, dict):
        ctx.add((), "a pipeline file is a mapping with 'name' and 'steps'", "invalidPipeline")
        raise PipelineInvalid(ctx.issues)
    _check_schema(data, ctx)
    if ctx.issues:
        raise PipelineInvalid(ctx.issues)
    base = os.path.dirname(path) if path else os.getcwd()
    pipeline = pipeline_from_dict(data, source_path=path, base_dir=base)
    _check_semantics(pipeline, ctx, root)
    if ctx.issues:
        raise PipelineInvalid(ctx.issues)
    return pipeline


def validate_pipeline(pipeline: Pipeline, root: str | None = None) -> list[Issue]:
    """The problems of a model built in Python (no line numbers)."""
    ctx = SpecContext(pipeline.source_path, {})
    _check_schema(pipeline.to_dict(), ctx)
    if not ctx.issues:
        _check_semantics(pipeline, ctx, root)
    return ctx.issues


# -- structure ---------------------------------------------------------------------------
def _check_schema(data: dict[str, Any], ctx: SpecContext) -> None:
    schema_issues(schema_validator(SCHEMA_PATH), data, ctx, _schema_message)


def _schema_message(err: Any, path: Path) -> str:
    v = err.validator
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        return f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))} (allowed: {allowed})"
    if v in ("required", "propertyNames", "type"):
        return common_message(err)
    if v == "oneOf" and len(path) == 2 and path[0] == "steps":
        return "a step needs exactly one of 'notebook', 'script', 'train' or 'project'"
    if v == "pattern" and path and path[-1] == "notebook":
        return f"{err.instance!r} is not a notebook (.ipynb)"
    if v == "pattern" and path and path[-1] == "train":
        return f"{err.instance!r} is not a training job file (.job.yaml)"
    if v == "pattern" and path and path[-1] == "script":
        return f"{err.instance!r} is not a script (.py or .sh)"
    if v == "pattern" and path == ("name",):
        return "use letters, digits, '_', '.' and '-' (at most 128 characters)"
    if v == "anyOf" and len(path) == 2 and path[0] == "parameters":
        return "a parameter is {type, default, description, enum} or a bare default value"
    return str(err.message)


# -- meaning -----------------------------------------------------------------------------
def _check_semantics(p: Pipeline, ctx: SpecContext, root: str | None) -> None:
    for name, spec in p.parameters.items():
        path: Path = ("parameters", name)
        if spec.type not in PARAM_TYPES:
            ctx.add(path + ("type",), f"unknown type {spec.type!r}")
            continue
        if spec.has_default and not type_ok(spec.type, spec.default):
            ctx.add(
                path + ("default",),
                f"default {spec.default!r} is not a {spec.type}",
                "invalidPipelineParameter",
            )
        if spec.enum is not None and spec.has_default and spec.default not in spec.enum:
            ctx.add(
                path + ("default",),
                f"default {spec.default!r} is not one of {spec.enum}",
                "invalidPipelineParameter",
            )
    _check_dag(p, ctx)
    upstream = ancestors(p)
    for name, step in p.steps.items():
        sp: Path = ("steps", name)
        for key, value in step.parameters.items():
            _check_templates(p, ctx, sp + ("parameters", key), value, upstream.get(name, set()))
        for key, value in step.env.items():
            _check_templates(p, ctx, sp + ("env", key), value, upstream.get(name, set()))
        for i, value in enumerate(step.args):
            _check_templates(p, ctx, sp + ("args", i), value, upstream.get(name, set()))
        for i, out in enumerate(step.outputs):
            if os.path.isabs(out) or ".." in out.replace("\\", "/").split("/"):
                ctx.add(
                    sp + ("outputs", i),
                    f"{out!r}: outputs are relative to the step's "
                    "working directory and may not contain '..'",
                    "invalidFilePath",
                )
        if step.kind != "project":
            for key in ("entry_point", "version", "env_manager"):
                if getattr(step, key):
                    ctx.add(sp + (key,), f"'{key}' is for project steps", "invalidField", key=True)
        if step.kind == "project":
            _check_project(p, ctx, sp, step, root)
            full = None
        else:
            full = _check_file(p, ctx, sp + (step.kind,), step.path, root)
        for i, inp in enumerate(step.inputs):
            _check_file(p, ctx, sp + ("inputs", i), inp, root, what="input")
        if full and step.kind == "notebook":
            _check_notebook_params(p, ctx, sp, step, full)
            _check_kernel(ctx, sp, step, full)


def _check_project(p: Pipeline, ctx: SpecContext, sp: Path, step: Any, root: str | None) -> None:
    """A ``project:`` step: a local project is read now (its entry point, required and
    typed parameters, as ``jupyter mlops run`` checks them); git and archive URIs are
    fetched when the step runs."""
    from ..projects.fetch import is_archive, is_local, split_subdirectory
    from ..projects.spec import ProjectError, check_value, load_project

    where = sp + ("project",)
    try:
        base, sub = split_subdirectory(step.path)
    except ProjectError as e:
        ctx.add(where, e.message, "invalidProject")
        return
    if not is_local(base) or is_archive(base):
        return
    if step.version:
        ctx.add(sp + ("version",), "a version is only for git project URIs", "invalidProject")
    if os.path.isabs(base):
        ctx.add(where, f"{base!r}: use a path relative to the pipeline file", "invalidFilePath")
        return
    full = os.path.normpath(os.path.join(p.base_dir, base, sub))
    if root is not None and not within(root, full):
        ctx.add(where, f"{step.path!r} is outside the workspace", "invalidFilePath")
        return
    if not os.path.isdir(full):
        ctx.add(where, f"project {step.path!r} not found (looked for {full})", "invalidFilePath")
        return
    try:
        project = load_project(full)
        entry = project.entry_point(step.entry_point or "main")
    except ProjectError as e:
        field_path = sp + ("entry_point",) if step.entry_point else where
        ctx.add(field_path, e.message, "invalidProject")
        return
    shown = os.path.join(base, sub, project.display_file) if project.file else step.path
    for name, param in entry.parameters.items():
        if name not in step.parameters and param.required:
            ctx.add(
                sp + ("parameters",),
                f"parameter {name!r} of entry point {entry.name!r} has no default and no "
                f"value here ({shown}:{param.line})",
                "missingParameter",
            )
    for key, value in step.parameters.items():
        declared = entry.parameters.get(key)
        if declared is None or value is None:
            continue  # not declared: passed on as --key value, as MLflow does
        param = declared
        if isinstance(value, str) and TEMPLATE.search(value):
            vtype = _value_type(p, value)
            if vtype in ("boolean", "list", "dict") or (
                vtype == "string"
                and param.type in ("float", "int")
                and TEMPLATE.fullmatch(value)
                and value.strip().startswith("{{ params.")
            ):
                ctx.add(
                    sp + ("parameters", key),
                    f"{value!r} is a {vtype} but {entry.name}.{key} is a {param.type} "
                    f"({shown}:{param.line})",
                    "mistypedParameter",
                )
            continue
        problem = check_value(param, value)
        if problem:
            ctx.add(
                sp + ("parameters", key),
                f"{problem} ({shown}:{param.line})",
                "mistypedParameter",
            )


def ancestors(p: Pipeline) -> dict[str, set[str]]:
    """Every step's transitive upstream steps (unknown names ignored, cycles tolerated)."""
    out: dict[str, set[str]] = {}

    def visit(name: str, seen: tuple[str, ...]) -> set[str]:
        if name in out:
            return out[name]
        acc: set[str] = set()
        for dep in p.steps[name].depends_on:
            if dep in p.steps and dep not in seen:
                acc.add(dep)
                acc |= visit(dep, seen + (name,))
        out[name] = acc
        return acc

    for n in p.steps:
        visit(n, ())
    return out


def _check_dag(p: Pipeline, ctx: SpecContext) -> None:
    known = ", ".join(sorted(p.steps))
    for name, step in p.steps.items():
        for i, dep in enumerate(step.depends_on):
            if dep == name:
                ctx.add(
                    ("steps", name, "depends_on", i),
                    "a step cannot depend on itself",
                    "circularReference",
                )
            elif dep not in p.steps:
                ctx.add(
                    ("steps", name, "depends_on", i),
                    f"unknown step {dep!r} (steps: {known})",
                    "unknownDependency",
                )
    cycle = find_cycle(p)
    if cycle:
        first = cycle[0]
        idx = p.steps[cycle[-2]].depends_on.index(first) if len(cycle) > 1 else 0
        ctx.add(
            ("steps", cycle[-2], "depends_on", idx),
            "dependency cycle: " + " -> ".join(cycle) + " (each depends on the next)",
            "circularReference",
        )


def find_cycle(p: Pipeline) -> list[str] | None:
    """A cycle as ``[a, b, ..., a]`` where each depends on the next, or None."""
    color: dict[str, int] = {}
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        color[n] = 1
        stack.append(n)
        for d in p.steps[n].depends_on:
            if d not in p.steps or d == n:
                continue
            if color.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if color.get(d) is None:
                found = dfs(d)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for n in p.steps:
        if color.get(n) is None:
            found = dfs(n)
            if found:
                return found
    return None


def _check_templates(
    p: Pipeline, ctx: SpecContext, path: Path, value: Any, upstream: set[str]
) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_templates(p, ctx, path + (k,), v, upstream)
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_templates(p, ctx, path + (i,), v, upstream)
        return
    if not isinstance(value, str):
        return
    rest = TEMPLATE.sub("", value)
    if "{{" in rest or "}}" in rest:
        ctx.add(path, f"unbalanced template braces in {value!r}", "invalidTemplate")
    for m in TEMPLATE.finditer(value):
        ref = m.group(1)
        if not _REF.match(ref):
            ctx.add(
                path,
                f"unknown template {{{{ {ref} }}}} (use params.<name>, run.id, "
                "run.dir, pipeline.name, pipeline.dir or steps.<step>.outputs)",
                "invalidTemplate",
            )
        elif ref.startswith("params.") and ref[7:] not in p.parameters:
            known = ", ".join(sorted(p.parameters)) or "none declared"
            ctx.add(
                path,
                f"unknown pipeline parameter {ref[7:]!r} (parameters: {known})",
                "invalidTemplate",
            )
        elif ref.startswith("steps."):
            dep = ref.split(".")[1]
            if dep not in p.steps:
                ctx.add(path, f"unknown step {dep!r} in {{{{ {ref} }}}}", "invalidTemplate")
            elif dep not in upstream:
                ctx.add(
                    path,
                    f"{{{{ {ref} }}}} needs {dep!r} in depends_on (directly or "
                    "through another step)",
                    "invalidTemplate",
                )


def _check_file(
    p: Pipeline, ctx: SpecContext, path: Path, rel: str, root: str | None, what: str | None = None
) -> str | None:
    what = what or path[-1]
    if os.path.isabs(rel):
        ctx.add(path, f"{rel!r}: use a path relative to the pipeline file", "invalidFilePath")
        return None
    full = os.path.normpath(os.path.join(p.base_dir, rel))
    if root is not None and not within(root, full):
        ctx.add(path, f"{rel!r} is outside the workspace", "invalidFilePath")
        return None
    if not os.path.isfile(full):
        ctx.add(path, f"{what} {rel!r} not found (looked for {full})", "invalidFilePath")
        return None
    return full


def notebook_parameters(nb_path: str) -> dict[str, Any] | None:
    """Names assigned in the notebook's ``parameters``-tagged cell with their literal
    defaults (``...`` for non-literals); None when there is no such cell."""
    try:
        with open(nb_path, encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, ValueError):
        return None
    for cell in nb.get("cells", []):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and "parameters" in tags:
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else src
            out: dict[str, Any] = {}
            try:
                tree = ast.parse(src)
            except SyntaxError:
                return out
            for node in tree.body:
                targets: list[Any] = []
                value: ast.expr | None = None
                if isinstance(node, ast.Assign):
                    targets, value = node.targets, node.value
                elif isinstance(node, ast.AnnAssign) and node.value is not None:
                    targets, value = [node.target], node.value
                for t in targets:
                    if isinstance(t, ast.Name) and value is not None:
                        try:
                            out[t.id] = ast.literal_eval(value)
                        except (ValueError, SyntaxError, TypeError):
                            out[t.id] = ...
            return out
    return None


def _check_notebook_params(p: Pipeline, ctx: SpecContext, sp: Path, step: Any, full: str) -> None:
    declared = notebook_parameters(full)
    if declared is None:
        if step.parameters:
            ctx.add(
                sp + ("parameters",),
                f"notebook {step.path!r} has no cell tagged 'parameters' to receive parameters",
                "unknownParameter",
            )
        return
    for key, value in step.parameters.items():
        path = sp + ("parameters", key)
        if key not in declared:
            names = ", ".join(sorted(declared)) or "none"
            ctx.add(
                path,
                f"notebook {step.path!r} has no parameter {key!r} (its parameters "
                f"cell defines: {names})",
                "unknownParameter",
                key=True,
            )
            continue
        default = declared[key]
        if default is ... or default is None:
            continue
        vtype = _value_type(p, value)
        if vtype is None:
            continue
        want = {
            bool: "boolean",
            int: "integer",
            float: "float",
            str: "string",
            list: "list",
            dict: "dict",
            tuple: "list",
        }.get(type(default))
        if want and not _compatible(want, vtype):
            ctx.add(
                path,
                f"{value!r} is a {vtype} but {step.path!r} expects a {want} "
                f"(default there: {default!r})",
                "mistypedParameter",
            )


def _installed_kernels() -> set[str] | None:
    try:
        from jupyter_client.kernelspec import find_kernel_specs

        return set(find_kernel_specs())
    except Exception:  # noqa: BLE001 - cannot tell: do not block the pipeline on it
        return None


def _check_kernel(ctx: SpecContext, sp: Path, step: Any, full: str) -> None:
    """The kernel a notebook step needs must be installed here (a missing conda-env kernel
    otherwise fails only once the run reaches the step)."""
    name = step.kernel
    field_path = sp + ("kernel",)
    if not name:
        try:
            with open(full, encoding="utf-8") as f:
                name = ((json.load(f).get("metadata") or {}).get("kernelspec") or {}).get("name")
        except (OSError, ValueError):
            return
        field_path = sp + ("notebook",)
    installed = _installed_kernels()
    if (
        name
        and installed is not None
        and name not in installed
        and not (name == "python3" and "python3" not in installed)
    ):
        ctx.add(
            field_path,
            f"kernel {name!r} is not installed here (installed: "
            f"{', '.join(sorted(installed)) or 'none'}); set the step's 'kernel'",
            "unknownKernel",
        )


def _value_type(p: Pipeline, value: Any) -> str | None:
    """The type a step parameter will have once templates are filled (None: unknown)."""
    if isinstance(value, str):
        m = TEMPLATE.fullmatch(value.strip())
        if m:
            ref = m.group(1)
            if ref.startswith("params.") and ref[7:] in p.parameters:
                return p.parameters[ref[7:]].type
            return None if ref.startswith("params.") else "string"
        return "string"
    from .model import infer_type

    return infer_type(value)


def _compatible(want: str, got: str) -> bool:
    return want == got or (want == "float" and got == "integer")


def find_pipeline_files(root: str, limit: int) -> list[str]:
    """At most ``limit`` ``*.pipeline.yaml`` (``.yml``) files under ``root``, relative to
    it, in path order; hidden directories, ``node_modules`` and ``__pycache__`` skipped."""
    out: list[str] = []
    for d, dirs, names in os.walk(root):
        dirs[:] = sorted(
            x for x in dirs if not x.startswith(".") and x not in ("node_modules", "__pycache__")
        )
        for name in sorted(names):
            if name.endswith((".pipeline.yaml", ".pipeline.yml")):
                out.append(os.path.relpath(os.path.join(d, name), root))
                if len(out) >= limit:
                    return out
    return out
