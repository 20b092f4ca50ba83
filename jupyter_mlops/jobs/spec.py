"""Training job specs: ``*.job.yaml`` files and the Python API both produce a :class:`JobSpec`.

Validation reports every problem at once as :class:`~jupyter_mlops.specfile.Issue`
(file, line from the YAML marks, field such as ``resources.gpu``), like pipeline files:
a structural check against ``job.schema.json``, then meaning (the entry point exists
inside the workspace, a ``file.py:function`` names a function defined there, parameter
defaults match their types).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from typing import Any

from ..paramspec import (
    PARAM_TYPES,
    ParameterError,
    ParamSpec,
    infer_type,
    param_from_dict,
    resolve_declared,
    type_ok,
)
from ..specfile import (
    Issue,
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

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "job.schema.json")
FRAMEWORKS = ("pytorch", "tensorflow", "generic")
ENTRY_KINDS = ("script", "notebook", "function", "code", "project")
RESTART_POLICIES = ("Never", "OnFailure", "ExitCode")
#: The longest backoff between restarts (seconds), however often it doubled.
MAX_BACKOFF = 300.0


class JobInvalid(SpecInvalid):
    """The job spec has problems; ``issues`` lists every one."""


@dataclass
class JobSpec:
    """What runs, on how many processes, with which environment."""

    name: str
    entry_kind: str  # one of ENTRY_KINDS
    entry: str  # a path (script, notebook, project), "file.py:fn" / "module:fn", or Python source
    framework: str = "pytorch"
    nodes: int = 1
    procs_per_node: int = 1
    args: list[str] = field(default_factory=list)
    params: dict[str, ParamSpec] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    restart_policy: str = "Never"
    max_restarts: int = 0
    backoff_seconds: float = 1.0
    timeout: float | None = None
    log_all_ranks: bool = False
    experiment: str | None = None
    description: str = ""
    image: str | None = None
    #: A ``project:`` entry's MLflow entry point (None: ``main``).
    entry_point: str | None = None
    #: The file it came from (absolute), or None (Python API, magic).
    source_path: str | None = None
    #: Directory relative entry paths resolve against (and the ranks' working directory).
    base_dir: str = "."

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node

    def entry_path(self) -> str | None:
        """The file the entry point lives in (absolute), if it is a file."""
        if self.entry_kind in ("script", "notebook"):
            return os.path.normpath(os.path.join(self.base_dir, self.entry))
        if self.entry_kind == "function":
            module = self.entry.rsplit(":", 1)[0]
            if module.endswith(".py"):
                return os.path.normpath(os.path.join(self.base_dir, module))
        return None

    def to_dict(self) -> dict[str, Any]:
        """The canonical form (the YAML file's shape, defaults filled in)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.experiment:
            out["experiment"] = self.experiment
        out["framework"] = self.framework
        out[self.entry_kind] = self.entry
        if self.entry_point:
            out["entry_point"] = self.entry_point
        if self.args:
            out["args"] = list(self.args)
        if self.params:
            out["params"] = {n: p.to_dict() for n, p in self.params.items()}
        if self.env:
            out["env"] = dict(self.env)
        out["nodes"] = self.nodes
        out["procs_per_node"] = self.procs_per_node
        if self.resources:
            out["resources"] = dict(self.resources)
        out["restart_policy"] = self.restart_policy
        out["max_restarts"] = self.max_restarts
        out["backoff_seconds"] = self.backoff_seconds
        if self.timeout is not None:
            out["timeout"] = self.timeout
        if self.log_all_ranks:
            out["log_all_ranks"] = True
        if self.image:
            out["image"] = self.image
        return out


def spec_from_dict(
    data: dict[str, Any], source_path: str | None = None, base_dir: str = "."
) -> JobSpec:
    """Build the spec from an already validated mapping."""
    kind = next(k for k in ENTRY_KINDS if k in data)
    timeout = data.get("timeout")
    return JobSpec(
        name=str(data["name"]),
        entry_kind=kind,
        entry=str(data[kind]),
        entry_point=data.get("entry_point"),
        framework=str(data.get("framework") or "pytorch"),
        nodes=int(data.get("nodes") or 1),
        procs_per_node=int(data.get("procs_per_node") or 1),
        args=[_arg(a) for a in data.get("args") or []],
        params={str(n): param_from_dict(str(n), p) for n, p in (data.get("params") or {}).items()},
        env={str(k): _arg(v) for k, v in (data.get("env") or {}).items()},
        resources=dict(data.get("resources") or {}),
        restart_policy=str(data.get("restart_policy") or "Never"),
        max_restarts=int(data.get("max_restarts") or 0),
        backoff_seconds=float(data.get("backoff_seconds", 1.0)),
        timeout=float(timeout) if timeout is not None else None,
        log_all_ranks=bool(data.get("log_all_ranks", False)),
        experiment=data.get("experiment"),
        description=str(data.get("description") or ""),
        image=data.get("image"),
        source_path=source_path,
        base_dir=base_dir,
    )


def _arg(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# -- entry points ------------------------------------------------------------------------
def load_job(path: str, root: str | None = None, display: str | None = None) -> JobSpec:
    """Read and validate a job file; raises :class:`JobInvalid`."""
    apath = os.path.abspath(path)
    try:
        text = read_spec_file(apath, display or path, "job file")
    except SpecInvalid as e:
        raise JobInvalid(e.issues) from None
    return parse_job(text, path=apath, root=root, display=display or path)


def parse_job(
    text: str, path: str | None = None, root: str | None = None, display: str | None = None
) -> JobSpec:
    """Validate YAML text; ``path`` (absolute) locates relative entry files."""
    try:
        data, ctx = parse_yaml(text, display or path)
    except SpecInvalid as e:
        raise JobInvalid(e.issues) from None
    if not isinstance(data, dict):
        ctx.add(
            (),
            "a job file is a mapping with 'name' and one of 'script', 'notebook', "
            "'function' or 'code'",
            "invalidJob",
        )
        raise JobInvalid(ctx.issues)
    base = os.path.dirname(path) if path else os.getcwd()
    return _validated(data, ctx, path, base, root)


def validate_dict(
    data: dict[str, Any],
    base_dir: str,
    root: str | None = None,
    source_path: str | None = None,
    display: str | None = None,
) -> JobSpec:
    """Validate a mapping built in Python (no line numbers); raises :class:`JobInvalid`."""
    return _validated(data, SpecContext(display or source_path, {}), source_path, base_dir, root)


def _validated(
    data: dict[str, Any], ctx: SpecContext, path: str | None, base: str, root: str | None
) -> JobSpec:
    _check_schema(data, ctx)
    if ctx.issues:
        raise JobInvalid(ctx.issues)
    spec = spec_from_dict(data, source_path=path, base_dir=base)
    _check_semantics(spec, ctx, root)
    if ctx.issues:
        raise JobInvalid(ctx.issues)
    return spec


# -- structure ---------------------------------------------------------------------------
def _check_schema(data: dict[str, Any], ctx: SpecContext) -> None:
    schema_issues(schema_validator(SCHEMA_PATH), data, ctx, _message)


def _message(err: Any, path: tuple[Any, ...]) -> str:
    v = err.validator
    if v == "oneOf" and not path:
        given = [k for k in ENTRY_KINDS if k in err.instance]
        return (
            "a job needs exactly one entry point: 'script', 'notebook', 'function', 'code' or 'project'"
            + (f" (it has {', '.join(map(repr, given))})" if given else "")
        )
    if v == "pattern" and path == ("script",):
        return f"{err.instance!r} is not a script (.py or .sh)"
    if v == "pattern" and path == ("notebook",):
        return f"{err.instance!r} is not a notebook (.ipynb)"
    if v == "pattern" and path == ("function",):
        return f"{err.instance!r}: write file.py:function or package.module:function"
    if v == "pattern" and path == ("name",):
        return "use letters, digits, '_', '.' and '-' (at most 63 characters)"
    if v == "anyOf" and len(path) == 2 and path[0] == "params":
        return "a parameter is {type, default, description, enum} or a bare default value"
    return common_message(err)


# -- meaning -----------------------------------------------------------------------------
def _check_semantics(spec: JobSpec, ctx: SpecContext, root: str | None) -> None:
    for name, p in spec.params.items():
        where = ("params", name)
        if p.type not in PARAM_TYPES:
            ctx.add(where + ("type",), f"unknown type {p.type!r}")
        elif p.has_default and p.default is not None and not type_ok(p.type, p.default):
            ctx.add(
                where + ("default",), f"default {p.default!r} is not a {p.type}", "invalidParameter"
            )
        elif p.enum is not None and p.has_default and p.default not in p.enum:
            ctx.add(
                where + ("default",),
                f"default {p.default!r} is not one of {p.enum}",
                "invalidParameter",
            )
    if spec.entry_kind == "code":
        try:
            ast.parse(spec.entry)
        except SyntaxError as e:
            ctx.add(
                ("code",), f"not valid Python: {e.msg} (line {e.lineno} of the code)", "invalidCode"
            )
        return
    if spec.entry_kind == "project":
        _check_project(spec, ctx, root)
        return
    if spec.entry_point:
        ctx.add(("entry_point",), "'entry_point' is for project entries", "invalidField", key=True)
    if spec.entry_kind == "function" and not spec.entry.rsplit(":", 1)[0].endswith(".py"):
        return  # an importable module: resolved by the ranks themselves
    rel = spec.entry.rsplit(":", 1)[0] if spec.entry_kind == "function" else spec.entry
    full = _check_file(spec, ctx, (spec.entry_kind,), rel, root)
    if full and spec.entry_kind == "function":
        fn = spec.entry.rsplit(":", 1)[1]
        try:
            with open(full, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (OSError, SyntaxError, ValueError) as e:
            ctx.add(("function",), f"cannot read {rel!r}: {e}", "invalidFilePath")
            return
        defined = [
            n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        if fn not in defined:
            ctx.add(
                ("function",),
                f"{rel!r} defines no function {fn!r} (functions there: "
                f"{', '.join(defined) or 'none'})",
                "unknownFunction",
            )


def _check_project(spec: JobSpec, ctx: SpecContext, root: str | None) -> None:
    """A ``project:`` entry: the directory's MLproject read now, its entry point there and
    its required parameters among the job's params."""
    from ..projects.spec import ProjectError, load_project

    full = os.path.normpath(os.path.join(spec.base_dir, spec.entry))
    if os.path.isabs(spec.entry) or (root is not None and not within(root, full)):
        ctx.add(
            ("project",), f"{spec.entry!r}: a directory inside the workspace", "invalidFilePath"
        )
        return
    try:
        project = load_project(full)
        entry = project.entry_point(spec.entry_point or "main")
    except ProjectError as e:
        ctx.add(("entry_point",) if spec.entry_point else ("project",), e.message, "invalidProject")
        return
    for name, param in entry.parameters.items():
        if param.required and name not in spec.params:
            ctx.add(
                ("params",),
                f"the project's parameter {name!r} has no default: give it in params "
                f"({spec.entry}/{project.display_file}:{param.line})",
                "missingParameter",
            )


def _check_file(
    spec: JobSpec, ctx: SpecContext, path: tuple[Any, ...], rel: str, root: str | None
) -> str | None:
    if os.path.isabs(rel):
        ctx.add(path, f"{rel!r}: use a path relative to the job file", "invalidFilePath")
        return None
    full = os.path.normpath(os.path.join(spec.base_dir, rel))
    if root is not None and not within(root, full):
        ctx.add(path, f"{rel!r} is outside the workspace", "invalidFilePath")
        return None
    if not os.path.isfile(full):
        ctx.add(path, f"{path[0]} {rel!r} not found (looked for {full})", "invalidFilePath")
        return None
    return full


# -- parameters --------------------------------------------------------------------------
def resolve_params(spec: JobSpec, given: dict[str, Any] | None) -> dict[str, Any]:
    """Declared defaults overridden by ``given`` (strings parsed to the declared type);
    raises ValueError naming every unknown, missing or mistyped parameter."""
    try:
        return resolve_declared(spec.params, given, "params")
    except ParameterError as e:
        raise ValueError(str(e)) from None


def declare_params(values: dict[str, Any]) -> dict[str, Any]:
    """``params`` of a spec built from values (the Python API): each a bare default."""
    return {
        str(k): (
            {"type": infer_type(v), "default": v} if v is None or isinstance(v, (dict,)) else v
        )
        for k, v in values.items()
    }


__all__ = [
    "Issue",
    "JobInvalid",
    "JobSpec",
    "field_name",
    "load_job",
    "parse_job",
    "resolve_params",
    "spec_from_dict",
    "validate_dict",
]
