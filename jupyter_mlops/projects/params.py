"""An entry point's parameters and command, as MLflow computes them.

Values are checked by type (``float``/``int`` must parse; ``uri`` must have a scheme; a
local ``path`` must exist and becomes absolute), shell-quoted and substituted into the
command with ``str.format`` (literal braces are doubled in the MLproject file);
parameters the entry point does not declare are appended as ``--key value``. What is
logged as the run's parameters is what MLflow logs: the quoted values, with paths as
given (MLflow computes them without its storage directory).
"""

from __future__ import annotations

import os
import shlex
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .spec import EntryPoint, Parameter, Project, ProjectError, check_value


def parse_pairs(pairs: list[str] | None, flag: str = "-P") -> dict[str, str]:
    """``["k=v", ...]`` → ``{k: v}`` (MLflow's ``_user_args_to_dict``)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ProjectError(f"{flag} {pair!r}: expected NAME=VALUE")
        if key in out:
            raise ProjectError(f"Repeated parameter: {key!r}")
        out[key] = value
    return out


def _local_path(text: str) -> str | None:
    parsed = urllib.parse.urlparse(text)
    if parsed.scheme == "file":
        return urllib.parse.unquote(parsed.path)
    if not parsed.scheme or (len(parsed.scheme) == 1 and os.name == "nt"):
        return text
    return None


def compute_parameters(
    project: Project,
    entry: EntryPoint,
    given: Mapping[str, Any],
    storage_dir: str | None,
    cwd: str | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """(declared, extra) parameters, shell-quoted. ``storage_dir`` None computes them for
    logging (paths as given); else local paths are made absolute (against ``cwd``, where
    the command was typed, as MLflow does) and remote ones are downloaded there."""
    missing = [p for n, p in entry.parameters.items() if n not in given and p.required]
    if missing:
        raise ProjectError(
            "No value given for missing parameters: " + ", ".join(f"'{p.name}'" for p in missing),
            project.display_file if project.file else None,
            missing[0].line,
            f"entry_points.{entry.name}.parameters.{missing[0].name}",
        )
    final: dict[str, str] = {}
    for position, (name, param) in enumerate(entry.parameters.items()):
        value = given.get(name, param.default)
        problem = check_value(param, value)
        if problem:
            raise ProjectError(
                f"parameter {name!r} ({param.type}): {problem}",
                project.display_file if project.file else None,
                param.line,
                f"entry_points.{entry.name}.parameters.{name}",
            )
        if param.type == "path" and storage_dir is not None:
            value = _path_value(project, entry, param, str(value), storage_dir, position, cwd)
        final[name] = shlex.quote(str(value))
    extra = {str(k): shlex.quote(str(v)) for k, v in given.items() if k not in final}
    return final, extra


def _path_value(
    project: Project,
    entry: EntryPoint,
    param: Parameter,
    text: str,
    storage_dir: str,
    position: int,
    cwd: str | None,
) -> str:
    local = _local_path(text)
    if local is not None:
        full = os.path.abspath(os.path.join(cwd or os.getcwd(), local))
        if not os.path.exists(full):
            raise ProjectError(
                f"Got value {text} for parameter {param.name}, but no such file or directory "
                "was found.",
                project.display_file if project.file else None,
                param.line,
                f"entry_points.{entry.name}.parameters.{param.name}",
            )
        return full
    # A remote path is downloaded, as MLflow does (into storage_dir/param_<position>).
    dest = os.path.join(storage_dir, f"param_{position}")
    os.makedirs(dest, exist_ok=True)
    try:
        import fsspec
    except ImportError:
        raise ProjectError(
            f"parameter {param.name!r}: {text} is remote and fsspec is not installed"
        ) from None
    target = os.path.join(dest, os.path.basename(text.rstrip("/")) or "data")
    fs, _, paths = fsspec.get_fs_token_paths(text)
    fs.get(paths[0], target, recursive=True)
    return target


def compute_command(
    project: Project,
    entry: EntryPoint,
    given: Mapping[str, Any],
    storage_dir: str | None,
    cwd: str | None = None,
) -> str:
    """The shell command line of a run (MLflow's ``EntryPoint.compute_command``)."""
    final, extra = compute_parameters(project, entry, given, storage_dir, cwd)
    try:
        command = entry.command.format(**final)
    except KeyError as e:
        raise ProjectError(
            f"the command names {{{e.args[0]}}}, which is not a parameter of the entry point "
            "(double literal braces: {{ }})",
            project.display_file if project.file else None,
            project.line_of("entry_points", entry.name, "command"),
            f"entry_points.{entry.name}.command",
        ) from None
    except (IndexError, ValueError) as e:
        raise ProjectError(
            f"the command is not a valid template ({e}; double literal braces: {{{{ }}}})",
            project.display_file if project.file else None,
            project.line_of("entry_points", entry.name, "command"),
            f"entry_points.{entry.name}.command",
        ) from None
    return " ".join([command, *(f"--{k} {v}" for k, v in extra.items())])
