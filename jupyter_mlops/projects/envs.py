"""A project's Python environment: created once per content hash, then reused.

``--env-manager`` as ``mlflow run`` takes it: ``local`` (the current environment),
``virtualenv`` or ``uv`` (an isolated environment built from ``python_env.yaml``),
``conda``. Unset, it follows the project: ``python_env`` → ``uv`` when the ``uv`` command
is installed, else ``virtualenv`` (the ``virtualenv`` package when importable, else the
standard library's ``venv``); ``conda_env`` → ``conda``; ``docker_env`` → refused
locally (its image is for Kubernetes targets; ``--env-manager local`` runs it here);
no environment file → ``local``.

An environment lives in ``<data dir>/mlops/projects/envs/<manager>-<hash>``, the hash of
the manager, the interpreter and the requirements (``-r`` files read, recursively).
Creation holds a file lock (two runs never build the same environment twice), writes
its log next to it (``<name>.log``, kept) and shows each stage; the directory counts only
once its ``.mlops-ready`` marker exists, so a creation that failed or was killed is
removed and done again, never used half-made. Reuse is one ``stat``.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .spec import Project, ProjectError, mark_of, read_yaml

MANAGERS = ("local", "virtualenv", "uv", "conda")
READY = ".mlops-ready"
Echo = Callable[[str], None]


@dataclass
class PythonEnv:
    """``python_env.yaml``: ``{python, build_dependencies, dependencies}``."""

    python: str | None = None
    build_dependencies: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)


@dataclass
class Environment:
    """Where an entry point runs: ``bin_dir`` goes first on ``PATH`` (None: as we are)."""

    manager: str
    path: str | None = None
    created: bool = False
    log_path: str | None = None

    @property
    def bin_dir(self) -> str | None:
        return os.path.join(self.path, "bin") if self.path else None

    def apply(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` as ``source bin/activate`` would leave it; ``local``: the directory of
        the Python running jupyter-mlops first on ``PATH`` (``python`` in a command is the
        current environment's even when that is not on the caller's ``PATH``, as in a
        server started by its full path)."""
        env = dict(env)
        if self.path is None:
            here = os.path.dirname(sys.executable)
            if env.get("PATH", "").split(os.pathsep)[0] != here:
                env["PATH"] = f"{here}{os.pathsep}{env.get('PATH', '')}"
            return env
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        if self.manager == "conda":
            env["CONDA_PREFIX"] = self.path
        else:
            env["VIRTUAL_ENV"] = self.path
        env.pop("PYTHONHOME", None)
        return env


def envs_dir() -> str:
    from ..client.uris import mlops_data_dir

    return os.path.join(mlops_data_dir(), "projects", "envs")


def choose_manager(project: Project, wanted: str | None) -> str:
    """The manager a run uses, or a :class:`ProjectError` saying why it cannot run here
    (raised before anything is created)."""
    if wanted is not None and wanted not in MANAGERS:
        raise ProjectError(f"--env-manager {wanted!r}: one of {', '.join(MANAGERS)}")
    if project.env_kind == "docker":
        if wanted == "local":
            return "local"
        image = project.docker.image if project.docker else "?"
        raise ProjectError(
            f"this project runs in the Docker image {image} (docker_env): that is used on "
            "Kubernetes targets (--target NAME); to run it here in the current Python "
            "environment instead, pass --env-manager local",
            project.display_file,
            project.line_of("docker_env"),
            "docker_env",
        )
    if project.env_kind == "conda":
        if wanted in (None, "conda"):
            if shutil.which("conda") is None:
                raise ProjectError(
                    f"this project's environment is conda ({os.path.basename(project.env_file or '')})"
                    " and conda is not installed here: install conda, or pass "
                    "--env-manager local to run in the current Python environment",
                    project.display_file,
                    project.line_of("conda_env"),
                    "conda_env",
                )
            return "conda"
        if wanted == "local":
            return "local"
        raise ProjectError(
            f"--env-manager {wanted}: this project declares a conda environment; use "
            "--env-manager conda or local"
        )
    if project.env_kind == "python":
        if wanted is None:
            return "uv" if shutil.which("uv") else "virtualenv"
        if wanted == "conda":
            raise ProjectError("--env-manager conda: this project declares a python_env")
        if wanted == "uv" and shutil.which("uv") is None:
            raise ProjectError("--env-manager uv: the uv command is not installed here")
        return wanted
    if wanted in (None, "local"):
        return "local"
    if wanted == "conda":
        raise ProjectError("--env-manager conda: this project has no conda.yaml")
    return wanted  # virtualenv/uv without python_env.yaml: the current Python, isolated


def read_python_env(path: str | None) -> PythonEnv:
    if path is None:
        return PythonEnv(
            python=".".join(map(str, sys.version_info[:3])), build_dependencies=["pip"]
        )
    shown = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            data, marks = read_yaml(f.read(), shown)
    except OSError as e:
        raise ProjectError(f"cannot read the file: {e.strerror}", shown) from None
    data = data or {}
    if not isinstance(data, dict):
        raise ProjectError("a mapping with python, build_dependencies, dependencies", shown, 1)
    out = PythonEnv(python=None if data.get("python") is None else str(data["python"]))
    for key in ("build_dependencies", "dependencies"):
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ProjectError("a list of requirement strings", shown, mark_of(marks, (key,)), key)
        setattr(out, key, list(value))
    return out


# -- interpreters ------------------------------------------------------------------------
def find_python(version: str | None) -> str:
    """An interpreter of ``version`` (``3.11`` or ``3.11.7``) on this machine."""
    if not version or _version_matches(version, sys.version_info[:3]):
        return sys.executable
    parts = version.split(".")
    candidates = [shutil.which(f"python{'.'.join(parts[:2])}")]
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates += sorted(glob.glob(os.path.join(pyenv, "versions", f"{version}*", "bin", "python")))
    for cand in candidates:
        if cand and os.access(cand, os.X_OK) and _probe_matches(cand, version):
            return cand
    raise ProjectError(
        f"python_env asks for Python {version} and no such interpreter is installed here "
        "(looked on PATH and in pyenv's versions): install it, or pass --env-manager local "
        "to run in the current environment"
    )


def _version_matches(wanted: str, have: tuple[int, ...]) -> bool:
    try:
        want = tuple(int(p) for p in wanted.split("."))
    except ValueError:
        return False
    return tuple(have[: len(want)]) == want


def _probe_matches(python: str, wanted: str) -> bool:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return _version_matches(wanted, tuple(int(p) for p in out.split(".") if p.isdigit()))


# -- the content hash --------------------------------------------------------------------
def _expand(reqs: list[str], base: str, seen: set[str]) -> list[str]:
    """Requirement lines with ``-r``/``-c`` files read in (their content is the env's)."""
    out: list[str] = []
    for line in reqs:
        text = line.strip()
        m = re.match(r"^(-r|--requirement|-c|--constraint)\s*=?\s*(\S+)$", text)
        if not m:
            out.append(text)
            continue
        path = os.path.normpath(os.path.join(base, m.group(2)))
        out.append(f"{m.group(1)} {os.path.relpath(path, base)}")
        if path in seen:
            continue
        seen.add(path)
        try:
            with open(path, encoding="utf-8") as f:
                lines = [
                    ln for ln in f.read().splitlines() if ln.strip() and not ln.startswith("#")
                ]
        except OSError as e:
            raise ProjectError(
                f"{m.group(2)}: cannot read the requirements file: {e.strerror}"
            ) from None
        out += _expand(lines, os.path.dirname(path), seen)
    return out


def env_name(manager: str, python: str, spec: PythonEnv, project_dir: str) -> str:
    content = {
        "manager": manager,
        "python": os.path.realpath(python),
        "version": spec.python,
        "build": _expand(spec.build_dependencies, project_dir, set()),
        "deps": _expand(spec.dependencies, project_dir, set()),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f"{manager}-{digest[:16]}"


def _absolute(reqs: list[str], base: str) -> list[str]:
    """``-r``/``-c`` files as absolute paths (pip reads them relative to the file naming them)."""
    out = []
    for line in reqs:
        m = re.match(r"^(-r|--requirement|-c|--constraint)\s*=?\s*(\S+)$", line.strip())
        out.append(f"{m.group(1)} {os.path.join(base, m.group(2))}" if m else line)
    return out


# -- creation ----------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare(project: Project, manager: str, echo: Echo, root: str | None = None) -> Environment:
    """The environment for ``manager`` (created if needed). ``echo`` shows progress."""
    if manager == "local":
        return Environment("local")
    if manager == "conda":
        return _prepare_conda(project, echo, root or envs_dir())
    spec = read_python_env(project.env_file if project.env_kind == "python" else None)
    python = find_python(spec.python)
    root = root or envs_dir()
    name = env_name(manager, python, spec, project.directory)
    path = os.path.join(root, name)
    log_path = path + ".log"
    if os.path.exists(os.path.join(path, READY)):
        return Environment(manager, path, False, log_path)
    with _locked(path + ".lock"):
        if os.path.exists(os.path.join(path, READY)):  # another run made it meanwhile
            return Environment(manager, path, False, log_path)
        shutil.rmtree(path, ignore_errors=True)  # what a failed or killed creation left
        start = time.monotonic()
        echo(f"creating environment {name} (Python {spec.python or 'current'}; log: {log_path})")
        try:
            with open(log_path, "w", encoding="utf-8") as log:
                _create_python_env(manager, python, path, spec, project.directory, log, echo)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        with open(os.path.join(path, READY), "w") as f:
            f.write(json.dumps({"created": time.time(), "project": project.directory}))
        echo(f"environment {name} ready in {time.monotonic() - start:.1f} s")
        return Environment(manager, path, True, log_path)


def _run_logged(cmd: list[str], log: Any, echo: Echo, cwd: str, what: str) -> None:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_PROGRESS_BAR": "off"},
        )
    except OSError as e:
        raise ProjectError(f"{what}: cannot run {cmd[0]}: {e.strerror}") from None
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        log.write(line)
        log.flush()
        tail = (tail + [line.rstrip()])[-5:]
        if line.startswith(("Collecting", "Installing", "Successfully", "Resolved", "Installed")):
            echo("  " + line.rstrip())
    if proc.wait() != 0:
        raise ProjectError(
            f"{what} failed (status {proc.returncode}; log: {log.name}): "
            + (tail[-1] if tail else "")
        )


def _create_python_env(
    manager: str,
    python: str,
    path: str,
    spec: PythonEnv,
    project_dir: str,
    log: Any,
    echo: Echo,
) -> None:
    uv = shutil.which("uv") if manager == "uv" else None
    if manager == "uv":
        if uv is None:
            raise ProjectError("--env-manager uv: the uv command is not installed here")
        echo(f"  1/3 environment: uv venv --python {python}")
        _run_logged(
            [uv, "venv", "--quiet", "--python", python, path], log, echo, project_dir, "uv venv"
        )
    else:
        try:
            import virtualenv  # noqa: F401 - only whether it is there

            cmd = [sys.executable, "-m", "virtualenv", "--quiet", "--python", python, path]
            echo(f"  1/3 environment: virtualenv --python {python}")
        except ImportError:
            cmd = [python, "-m", "venv", path]
            echo(f"  1/3 environment: {python} -m venv (the virtualenv package is not installed)")
        _run_logged(cmd, log, echo, project_dir, "creating the virtual environment")
    env_python = os.path.join(path, "bin", "python")
    for step, (label, reqs) in enumerate(
        (("build dependencies", spec.build_dependencies), ("dependencies", spec.dependencies)), 2
    ):
        if not reqs:
            echo(f"  {step}/3 {label}: none")
            continue
        echo(f"  {step}/3 {label}: {', '.join(reqs)}")
        req_file = os.path.join(path, f"mlops-{label.replace(' ', '-')}.txt")
        with open(req_file, "w", encoding="utf-8") as f:
            f.write("\n".join(_absolute(reqs, project_dir)) + "\n")
        if uv is not None:
            cmd = [uv, "pip", "install", "--python", env_python, "-r", req_file]
        else:
            cmd = [env_python, "-m", "pip", "install", "-r", req_file]
        _run_logged(cmd, log, echo, project_dir, f"installing the {label}")


def _prepare_conda(project: Project, echo: Echo, root: str) -> Environment:
    conda = shutil.which("conda")
    if conda is None or project.env_file is None:
        raise ProjectError("conda is not installed here: pass --env-manager local")
    with open(project.env_file, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    path = os.path.join(root, f"conda-{digest}")
    log_path = path + ".log"
    if os.path.exists(os.path.join(path, READY)):
        return Environment("conda", path, False, log_path)
    with _locked(path + ".lock"):
        if os.path.exists(os.path.join(path, READY)):
            return Environment("conda", path, False, log_path)
        shutil.rmtree(path, ignore_errors=True)
        echo(f"creating conda environment conda-{digest} (log: {log_path})")
        try:
            with open(log_path, "w", encoding="utf-8") as log:
                _run_logged(
                    [
                        conda,
                        "env",
                        "create",
                        "--quiet",
                        "--prefix",
                        path,
                        "--file",
                        project.env_file,
                    ],
                    log,
                    echo,
                    project.directory,
                    "conda env create",
                )
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        with open(os.path.join(path, READY), "w") as f:
            f.write(json.dumps({"created": time.time()}))
        return Environment("conda", path, True, log_path)
