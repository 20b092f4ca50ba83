"""Reading an ``MLproject`` file as MLflow reads it (``mlflow/projects/_project_spec.py``).

The file name is matched case-insensitively. At most one of ``python_env``,
``conda_env`` and ``docker_env``; without any, ``python_env.yaml`` then ``conda.yaml``
next to it. Entry points have parameters (``{type, default}`` or just the type; the
type defaults to ``string``) and a command. A directory without an ``MLproject`` file
still runs its ``.py`` and ``.sh`` files as entry points.

Where we are stricter than MLflow: parameter types must be one of :data:`TYPES`, and
``float``/``int`` values (defaults too) must parse as such. Every error is a
:class:`ProjectError` naming the file, its line and the field, so a mistake is refused
before anything is created or started.
"""

from __future__ import annotations

import os
import shlex
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ..specfile import Path, field_name, load_yaml
from ..tracking.errors import TrackingError

#: The (line, column) of every node of a YAML document, by path (``specfile.load_yaml``).
Marks = dict[Path, tuple[int, int]]
#: Parameter types MLflow documents (``int`` is accepted by MLflow as any unknown type).
TYPES = ("string", "float", "int", "path", "uri")
ENV_KINDS = ("python_env", "conda_env", "docker_env")
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_FILE = "conda.yaml"
#: How MLflow runs an entry point named after a file that is not declared.
SCRIPT_RUNNERS = {".py": "python", ".sh": "$SHELL"}


class ProjectError(TrackingError):
    """A project that cannot run as asked; ``file``/``line``/``field`` say where."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        field: str = "",
        error_code: str = "INVALID_PARAMETER_VALUE",
    ) -> None:
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        super().__init__(f"{where}{field + ': ' if field else ''}{message}", error_code)
        self.file = file
        self.line = line
        self.field = field
        self.reason = message

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.reason, "file": self.file, "line": self.line, "field": self.field}


@dataclass
class Parameter:
    name: str
    type: str = "string"
    default: Any = None
    #: The line of the parameter in the MLproject file (None without one).
    line: int | None = None

    @property
    def required(self) -> bool:
        """MLflow: a parameter whose default is missing or null must be given."""
        return self.default is None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "default": self.default, "line": self.line}


@dataclass
class EntryPoint:
    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": self.command,
            "parameters": [p.to_dict() for p in self.parameters.values()],
            "line": self.line,
        }


@dataclass
class DockerEnv:
    image: str
    volumes: list[str] = field(default_factory=list)
    #: ``[name, value]`` pairs, or names whose values are copied from the host.
    environment: list[Any] = field(default_factory=list)


@dataclass
class Project:
    directory: str
    #: The MLproject file (absolute), or None for a directory of scripts.
    file: str | None = None
    name: str | None = None
    #: ``python`` | ``conda`` | ``docker`` | None (no environment: run where we are).
    env_kind: str | None = None
    #: The python_env.yaml / conda.yaml file (absolute), when there is one.
    env_file: str | None = None
    docker: DockerEnv | None = None
    entry_points: dict[str, EntryPoint] = field(default_factory=dict)
    marks: Marks = field(default_factory=dict, repr=False)

    @property
    def display_file(self) -> str:
        return os.path.basename(self.file) if self.file else self.directory

    def line_of(self, *path: Any) -> int | None:
        """The line of a field (of its key, for a mapping's field)."""
        return mark_of(self.marks, tuple(path), key=True)

    def entry_point(self, name: str) -> EntryPoint:
        """The declared entry point, or MLflow's fallback for a ``.py``/``.sh`` file."""
        if name in self.entry_points:
            return self.entry_points[name]
        ext = os.path.splitext(name)[1]
        if ext in SCRIPT_RUNNERS:
            if not os.path.isfile(os.path.join(self.directory, name)):
                raise ProjectError(
                    f"entry point {name!r}: no such file in the project", self.display_file
                )
            runner = SCRIPT_RUNNERS[ext]
            if runner == "$SHELL":
                runner = os.environ.get("SHELL", "bash")
            return EntryPoint(name, f"{runner} {shlex.quote(name)}")
        raise ProjectError(
            f"no entry point {name!r} (declared: {', '.join(sorted(self.entry_points)) or 'none'}"
            "; a .py or .sh file of the project also runs as an entry point)",
            self.display_file,
            mark_of(self.marks, ("entry_points",), key=True),
            "entry_points",
            error_code="RESOURCE_DOES_NOT_EXIST",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "env": self.env_kind,
            "env_file": self.env_file,
            "docker_image": self.docker.image if self.docker else None,
            "entry_points": [e.to_dict() for e in self.entry_points.values()],
        }


def find_mlproject(directory: str) -> str | None:
    """The ``MLproject`` file of a directory (any case), or None."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise ProjectError(f"cannot read the project directory: {e.strerror}", directory) from None
    for name in names:
        if name.lower() == "mlproject":
            return os.path.join(directory, name)
    return None


def load_project(directory: str) -> Project:
    """Read the project in ``directory``; raises :class:`ProjectError`."""
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise ProjectError("not a directory", directory, error_code="RESOURCE_DOES_NOT_EXIST")
    path = find_mlproject(directory)
    if path is None:
        return _with_default_env(Project(directory))
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ProjectError(f"cannot read the file: {e}", path) from None
    return parse_project(text, directory, path)


def parse_project(text: str, directory: str, path: str) -> Project:
    shown = os.path.basename(path)
    data, marks = read_yaml(text, shown)
    project = Project(directory, path, marks=marks)

    def err(where: tuple[Any, ...], message: str, key: bool = True) -> ProjectError:
        return ProjectError(message, shown, mark_of(marks, where, key), field_name(where))

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise err((), "an MLproject file is a mapping (name, an environment, entry_points)")
    name = data.get("name")
    project.name = None if name is None else str(name)
    given = [k for k in ENV_KINDS if data.get(k) is not None]
    if len(given) > 1:
        raise err(
            (given[1],),
            "Project cannot contain multiple environment fields. Please specify only one of "
            "'python_env', 'conda_env', 'docker_env'",
            key=True,
        )
    if given == ["docker_env"]:
        project.env_kind = "docker"
        project.docker = _docker_env(data["docker_env"], err)
    elif given:
        kind = given[0]
        rel = data[kind]
        if not isinstance(rel, str) or not rel:
            raise err((kind,), "the name of a file in the project")
        full = os.path.normpath(os.path.join(directory, rel))
        if not _inside(directory, full):
            raise err((kind,), f"{rel!r} is outside the project directory")
        if not os.path.isfile(full):
            raise err((kind,), f"{rel!r} not found in the project")
        project.env_kind = "python" if kind == "python_env" else "conda"
        project.env_file = full
    else:
        _with_default_env(project)
    eps = data.get("entry_points")
    if eps is None:
        eps = {}
    if not isinstance(eps, dict):
        raise err(("entry_points",), "a mapping of entry point names to {parameters, command}")
    for ep_name, raw in eps.items():
        where: tuple[Any, ...] = ("entry_points", ep_name)
        if not isinstance(raw, dict):
            raise err(where, "an entry point is a mapping with 'command' (and 'parameters')")
        command = raw.get("command")
        if not isinstance(command, str) or not command.strip():
            raise err(where + ("command",), "a command (a shell command line) is required")
        params_raw = raw.get("parameters")
        if params_raw is None:
            params_raw = {}
        if not isinstance(params_raw, dict):
            raise err(where + ("parameters",), "a mapping of parameter names to types")
        params: dict[str, Parameter] = {}
        for pname, praw in params_raw.items():
            params[str(pname)] = _parameter(str(pname), praw, where + ("parameters", pname), err)
            params[str(pname)].line = mark_of(marks, where + ("parameters", pname), True)
        project.entry_points[str(ep_name)] = EntryPoint(
            str(ep_name), command, params, mark_of(marks, where, True)
        )
    return project


def read_yaml(text: str, shown: str) -> tuple[Any, Marks]:
    """The document and its marks; a :class:`ProjectError` with the parser's line when
    the text is not YAML."""
    import yaml

    try:
        return load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise ProjectError(
            f"not valid YAML: {problem}", shown, mark.line + 1 if mark else None
        ) from None


def mark_of(marks: Marks, path: Path, key: bool = False) -> int | None:
    """The line of the field at ``path`` (with ``key``: of its key), else of the nearest
    enclosing one that has a mark."""
    p = path
    while True:
        if key and p + ("<key>",) in marks:
            return marks[p + ("<key>",)][0]
        if p in marks:
            return marks[p][0]
        if not p:
            return None
        p = p[:-1]


def _with_default_env(project: Project) -> Project:
    """MLflow: ``python_env.yaml`` if present, else ``conda.yaml``, else no environment."""
    for fname, kind in ((PYTHON_ENV_FILE, "python"), (CONDA_FILE, "conda")):
        full = os.path.join(project.directory, fname)
        if os.path.isfile(full):
            project.env_kind, project.env_file = kind, full
            break
    return project


def _parameter(name: str, raw: Any, where: tuple[Any, ...], err: Any) -> Parameter:
    if isinstance(raw, str):
        ptype, default = raw, None
    elif isinstance(raw, dict):
        ptype = raw.get("type", "string")
        default = raw.get("default")
    elif raw is None:
        ptype, default = "string", None
    else:
        raise err(where, "a type (float, int, string, path, uri) or {type, default}")
    if ptype not in TYPES:
        raise err(where + ("type",), f"unknown type {ptype!r} (one of {', '.join(TYPES)})")
    param = Parameter(name, ptype, default)
    if default is not None:
        problem = check_value(param, default)
        if problem:
            raise err(where + ("default",), problem)
    return param


def _docker_env(raw: Any, err: Any) -> DockerEnv:
    if not isinstance(raw, dict) or not raw.get("image"):
        raise err(
            ("docker_env",),
            "Project configuration (MLproject file) was invalid: Docker environment specified "
            "but no image attribute found.",
        )
    volumes = raw.get("volumes") or []
    if not isinstance(volumes, list) or not all(isinstance(v, str) for v in volumes):
        raise err(("docker_env", "volumes"), "Docker volumes must be a list of strings")
    environment = raw.get("environment") or []
    if not isinstance(environment, list) or not all(
        isinstance(e, str) or (isinstance(e, list) and len(e) == 2) for e in environment
    ):
        raise err(
            ("docker_env", "environment"),
            "Docker environment must be a list of [name, value] pairs or names to copy from "
            "the host",
        )
    return DockerEnv(str(raw["image"]), list(volumes), list(environment))


def _inside(root: str, path: str) -> bool:
    root = os.path.realpath(root)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def check_value(param: Parameter, value: Any) -> str | None:
    """Why ``value`` is not a ``param.type``, or None."""
    text = str(value)
    if param.type == "float":
        if isinstance(value, bool):
            return f"expected a float, got {text!r}"
        try:
            float(text)
        except ValueError:
            return f"expected a float, got {text!r}"
    elif param.type == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            return f"expected an int, got {text!r}"
        try:
            int(text) if not isinstance(value, float) else int(value)
        except ValueError:
            return f"expected an int, got {text!r}"
    elif param.type == "uri" and not urllib.parse.urlparse(text).scheme:
        return f"Expected URI for parameter {param.name} but got {text}"
    return None
