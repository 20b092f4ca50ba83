"""Where a run's code comes from: notebook or script, git state, a snapshot.

:func:`capture_source` is called by ``start_run``. It is best effort: it never
raises, does no network I/O unless the notebook cannot be found locally (then
one short request to the Jupyter server's sessions API), and runs ``git`` with
a timeout. Whatever it cannot find is simply left out.

Finding the notebook of a kernel, in order (jupyterlab-extension reference §8):

1. ``JPY_SESSION_NAME``, the absolute path jupyter_server ≥ 2 puts in the
   environment of kernels it starts for a session (stale after a rename until
   the kernel restarts, so it is used only while that file exists);
2. ``__session__`` in the user namespace (ipykernel's copy of the same value);
3. ``__vsc_ipynb_file__``, which VS Code sets;
4. ``GET {server}api/sessions`` matched on this kernel's id.

The server root (to make the path relative, as the UI and the contents API
want it) comes from the server's ``jpserver-<pid>.json`` runtime file.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# System tags (MLflow's names, see mlflow/utils/mlflow_tags.py) and our own.
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_GIT_REPO_URL = "mlflow.source.git.repoURL"
TAG_GIT_DIRTY = "mlflow.source.git.dirty"
#: The notebook's path relative to the Jupyter server root (the UI opens it).
TAG_NOTEBOOK_PATH = "mlops.source.notebook_path"
#: Set when the source file was not snapshotted, with the reason.
TAG_SNAPSHOT_SKIPPED = "mlops.source.snapshot_skipped"

SOURCE_NOTEBOOK, SOURCE_LOCAL = "NOTEBOOK", "LOCAL"

#: Source files bigger than this are not copied into the run's artifacts.
MAX_SNAPSHOT_BYTES = 20 * 1024 * 1024
GIT_TIMEOUT = 3.0  # seconds per git command
HTTP_TIMEOUT = 2.0  # seconds for the sessions API


def capture_source(
    max_snapshot_bytes: int = MAX_SNAPSHOT_BYTES,
) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """The source tags of a new run and the files to save under ``source/``.

    Returns ``(tags, files)`` where ``files`` is a list of ``(name, content)``
    with ``name`` a bare file name: the caller stores each as the artifact
    ``source/<name>``. Never raises.
    """
    tags: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    try:
        source_file, code_dir = _identify(tags)
        try:
            tags.update(git_tags(code_dir))
        except Exception:  # noqa: BLE001, S110 - best effort: no git tags
            pass
        if source_file:
            _snapshot(source_file, max_snapshot_bytes, tags, files)
    except Exception:  # noqa: BLE001, S110 - best effort: whatever was found so far
        pass
    return tags, files


# -- notebook or script -------------------------------------------------------
def _identify(tags: dict[str, str]) -> tuple[str | None, str]:
    """Fill the source type/name tags; return (file to snapshot, dir for git)."""
    shell = _kernel_shell()
    if shell is not None:
        tags[TAG_SOURCE_TYPE] = SOURCE_NOTEBOOK
        abs_path, rel_path = find_notebook(shell)
        if rel_path:
            tags[TAG_SOURCE_NAME] = rel_path
            tags[TAG_NOTEBOOK_PATH] = rel_path
        elif abs_path:
            tags[TAG_SOURCE_NAME] = abs_path
        if abs_path and os.path.isfile(abs_path):
            return abs_path, os.path.dirname(abs_path)
        return None, os.getcwd()

    tags[TAG_SOURCE_TYPE] = SOURCE_LOCAL
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0:
        tags[TAG_SOURCE_NAME] = argv0
    if argv0 and os.path.isfile(argv0):
        path = os.path.abspath(argv0)
        return path, os.path.dirname(path)
    return None, os.getcwd()


def _kernel_shell() -> Any | None:
    """The IPython shell if this process is a Jupyter kernel, else None.

    A plain ``ipython`` terminal is not a notebook, and a script started from
    a notebook (``!python train.py``) inherits ``JPY_SESSION_NAME`` but is no
    kernel: both are LOCAL sources.
    """
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    return shell


def find_notebook(shell: Any | None = None) -> tuple[str | None, str | None]:
    """``(absolute path, path relative to the server root)`` of this kernel's
    notebook; either may be None when unknown."""
    abs_path: str | None = None
    user_ns = (getattr(shell, "user_ns", None) or {}) if shell is not None else {}
    for candidate in (
        os.environ.get("JPY_SESSION_NAME"),
        user_ns.get("__session__"),
        user_ns.get("__vsc_ipynb_file__"),  # VS Code's notebooks
    ):
        if isinstance(candidate, str) and os.path.isabs(candidate) and os.path.isfile(candidate):
            abs_path = candidate
            break

    server = _server_info()
    root = server.get("root_dir") if server else None
    rel_path = _relative_to(abs_path, root) if abs_path and root else None

    if rel_path is None:
        kernel_id = _kernel_id()
        url = os.environ.get("JUPYTER_MLOPS_SERVER_URL") or (server or {}).get("url")
        token = (
            os.environ.get("JUPYTER_MLOPS_SERVER_TOKEN")
            or (server or {}).get("token")
            or os.environ.get("JUPYTERHUB_API_TOKEN")
        )
        if kernel_id and url:
            rel_path = session_path_for_kernel(url, token, kernel_id)
        if rel_path and abs_path is None:
            if root:
                guess = os.path.join(root, *rel_path.split("/"))
            else:  # a kernel starts in its notebook's directory
                guess = os.path.join(os.getcwd(), rel_path.rsplit("/", 1)[-1])
            if os.path.isfile(guess):
                abs_path = guess
    return abs_path, rel_path


def _relative_to(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators, or None if outside."""
    for p, r in (
        (os.path.normpath(path), os.path.normpath(root)),
        (os.path.realpath(path), os.path.realpath(root)),
    ):
        try:
            rel = os.path.relpath(p, r)
        except ValueError:  # another drive (Windows)
            continue
        if rel != os.curdir and rel != os.pardir and not rel.startswith(os.pardir + os.sep):
            return rel.replace(os.sep, "/")
    return None


def _kernel_id() -> str | None:
    """This kernel's id, from its connection file name ``kernel-<id>.json``."""
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:  # noqa: BLE001 - not in a kernel, or no connection file
        return None
    m = re.match(r"kernel-(.+)\.json$", name)
    return m.group(1) if m else None


def _server_info() -> dict[str, Any] | None:
    """The ``jpserver-<pid>.json`` of the server that started this kernel.

    Matched on the parent pid (the server launches its kernels directly),
    else on ``JUPYTER_MLOPS_SERVER_URL``.
    """
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    except Exception:  # noqa: BLE001 - no Jupyter installed: no notebook source
        return None
    want_url = _norm_url(os.environ.get("JUPYTER_MLOPS_SERVER_URL", ""))
    by_url = None
    ppid = os.getppid()
    for fname in glob.glob(os.path.join(runtime_dir, "jpserver-*.json")):
        try:
            with open(fname, encoding="utf-8") as f:
                info = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict):
            continue
        if info.get("pid") == ppid:
            return info
        if want_url and _norm_url(str(info.get("url", ""))) == want_url:
            by_url = info
    return by_url


def _norm_url(url: str) -> str:
    return url.rstrip("/") + "/" if url else ""


def session_path_for_kernel(server_url: str, token: str | None, kernel_id: str) -> str | None:
    """Ask a Jupyter server's sessions API for the notebook path of a kernel
    (relative to the server root). None on any failure."""
    import urllib.request

    url = _norm_url(server_url) + "api/sessions"
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:  # scheme checked above
            sessions = json.loads(resp.read().decode("utf-8"))
    except Exception:  # noqa: BLE001 - no server to ask: no notebook source
        return None
    if not isinstance(sessions, list):
        return None
    for s in sessions:
        if not isinstance(s, dict) or (s.get("kernel") or {}).get("id") != kernel_id:
            continue
        if s.get("type", "notebook") != "notebook":  # a console or a file's kernel
            continue
        path = s.get("path") or (s.get("notebook") or {}).get("path")
        if isinstance(path, str) and path:
            return path
    return None


# -- git ----------------------------------------------------------------------
def git_tags(directory: str, timeout: float = GIT_TIMEOUT) -> dict[str, str]:
    """MLflow's ``mlflow.source.git.*`` tags for the repository containing
    ``directory``; empty when it is in none, has no commit, or git is missing.
    ``timeout`` bounds each git command."""
    # One call gives commit, branch and dirtiness (porcelain v2, git >= 2.11).
    timed_out: list[bool] = []
    out = _git(
        directory, "status", "--porcelain=v2", "--branch", timeout=timeout, timed_out=timed_out
    )
    if out is None:
        # A huge work tree can make status slow: still name the commit.
        return _git_head(directory, timeout) if timed_out else {}
    commit = branch = None
    dirty = False
    for line in out.splitlines():
        if line.startswith("# branch.oid "):
            commit = line[len("# branch.oid ") :].strip()
        elif line.startswith("# branch.head "):
            branch = line[len("# branch.head ") :].strip()
        elif line and not line.startswith("#"):
            dirty = True  # a changed, staged, unmerged or untracked file
    if not commit or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        return {}  # "(initial)": no commit yet
    tags = {TAG_GIT_COMMIT: commit, TAG_GIT_DIRTY: "true" if dirty else "false"}
    if branch and branch != "(detached)":
        tags[TAG_GIT_BRANCH] = branch
    return {**tags, **_git_remote(directory, timeout)}


def _git_head(directory: str, timeout: float) -> dict[str, str]:
    """Commit and branch without the dirty flag (status was too slow)."""
    out = _git(directory, "rev-parse", "HEAD", "--abbrev-ref", "HEAD", timeout=timeout)
    lines = (out or "").split("\n")
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", lines[0]):
        return {}
    tags = {TAG_GIT_COMMIT: lines[0]}
    if len(lines) > 1 and lines[1] not in ("", "HEAD"):
        tags[TAG_GIT_BRANCH] = lines[1]
    return {**tags, **_git_remote(directory, timeout)}


def _git_remote(directory: str, timeout: float) -> dict[str, str]:
    remote = _git(directory, "config", "--get", "remote.origin.url", timeout=timeout)
    return {TAG_GIT_REPO_URL: strip_credentials(remote)} if remote else {}


def _git(
    directory: str, *args: str, timeout: float = GIT_TIMEOUT, timed_out: list[bool] | None = None
) -> str | None:
    """stdout of ``git -C directory args`` (stripped), or None if it failed;
    a timeout also appends to ``timed_out``."""
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",  # never wait for a password
        "GIT_OPTIONAL_LOCKS": "0",  # `status` must not take index.lock
        "LC_ALL": "C",
    }
    try:
        proc = subprocess.run(
            ["git", "-C", directory, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        if timed_out is not None:
            timed_out.append(True)
        return None
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace").strip()


def strip_credentials(url: str) -> str:
    """A remote URL without passwords or tokens.

    ``https://user:tok@host/r`` and ``https://tok@host/r`` lose their user
    info; ``ssh://git@host/r`` and ``git@host:r`` keep the (public) user name.
    """
    url = url.strip()
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if parts.scheme in ("ssh", "git+ssh") and ":" not in userinfo:
        return url
    return urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))


# -- snapshot -----------------------------------------------------------------
def _snapshot(
    path: str, max_bytes: int, tags: dict[str, str], files: list[tuple[str, bytes]]
) -> None:
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            tags[TAG_SNAPSHOT_SKIPPED] = (
                f"{name} is {size} bytes, over the {max_bytes}-byte snapshot limit"
            )
            return
        with open(path, "rb") as f:
            content = f.read(max_bytes + 1)
    except OSError as e:
        tags[TAG_SNAPSHOT_SKIPPED] = f"{name} could not be read: {e.strerror or e}"
        return
    if len(content) > max_bytes:  # grew while we looked
        tags[TAG_SNAPSHOT_SKIPPED] = f"{name} is over the {max_bytes}-byte snapshot limit"
        return
    files.append((name, content))
