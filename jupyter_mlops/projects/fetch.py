"""A project URI → a local directory, and the git facts MLflow records about it.

As ``mlflow run`` (``mlflow/projects/utils.py``): ``URI#sub/dir`` picks a subdirectory;
a URI that matches ``^[^/]*:`` (``https://…``, ``git@host:…``, ``file:///…``) is a git
repository, fetched into a fresh directory and checked out at ``version`` (a commit or
a branch; without one, the remote's default branch); a ``.zip``/``.tar.gz``/``.tgz``/
``.tar`` file (path or URL) is unpacked; anything else is a local directory, used in
place (a ``version`` is refused for it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field

from .spec import ProjectError

_GIT_URI = re.compile(r"^[^/]*:")
_ARCHIVE = re.compile(r".+\.(zip|tar\.gz|tgz|tar)$")


@dataclass
class Fetched:
    """Where the project is, and what to record about where it came from."""

    work_dir: str
    #: ``mlflow.source.name``: the URI, or for a local directory inside a git work tree
    #: ``file://<top>#<subdir>`` (MLflow's ``_get_git_url_if_present``).
    source_name: str
    #: The git tags MLflow sets (commit, repoURL, branch and their legacy names).
    git_tags: dict[str, str] = field(default_factory=dict)
    #: A directory we created for it (removed by :meth:`cleanup`).
    temp_dir: str | None = None

    def cleanup(self) -> None:
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


def split_subdirectory(uri: str) -> tuple[str, str]:
    """``URI#sub/dir`` → (URI, ``sub/dir``); MLflow refuses ``.`` in the subdirectory (so it
    never leaves the project)."""
    base, _, sub = uri.strip("'\"").partition("#")
    sub = sub.strip("/")
    if "." in sub:
        raise ProjectError(f"{uri}: '.' is not allowed in project subdirectory paths")
    return base, sub


def is_local(uri: str) -> bool:
    return not _GIT_URI.match(uri)


def is_archive(uri: str) -> bool:
    return bool(_ARCHIVE.match(uri))


def fetch(uri: str, version: str | None = None, storage_dir: str | None = None) -> Fetched:
    """The project at ``uri`` (see the module's docstring); raises :class:`ProjectError`."""
    base, sub = split_subdirectory(uri)
    if is_archive(base):
        tmp = tempfile.mkdtemp(prefix="mlops-project-", dir=storage_dir)
        try:
            _unpack(base, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        work = _subdir(tmp, sub, uri)
        return Fetched(work, uri, git_tags(work, None, None), tmp)
    if is_local(base):
        if version is not None:
            raise ProjectError("Setting a version is only supported for Git project URIs")
        directory = os.path.abspath(os.path.expanduser(base))
        if not os.path.isdir(directory):
            raise ProjectError(f"{base}: no such directory", error_code="RESOURCE_DOES_NOT_EXIST")
        work = _subdir(directory, sub, uri)
        return Fetched(work, local_source_name(work), git_tags(work, None, None))
    tmp = tempfile.mkdtemp(prefix="mlops-project-", dir=storage_dir)
    try:
        _clone(base, version, tmp)
        work = _subdir(tmp, sub, uri)
        tags = git_tags(work, version, base)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Fetched(work, uri, tags, tmp)


def _subdir(root: str, sub: str, uri: str) -> str:
    work = os.path.abspath(os.path.join(root, sub))
    if not os.path.isdir(work):
        raise ProjectError(
            f"{uri}: Could not find subdirectory {sub} of {root}",
            error_code="RESOURCE_DOES_NOT_EXIST",
        )
    return work


# -- git ---------------------------------------------------------------------------------
def _git(args: list[str], cwd: str, what: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except FileNotFoundError:
        raise ProjectError("git is not installed: it is needed for git project URIs") from None
    except subprocess.CalledProcessError as e:
        detail = (e.stderr or e.stdout or "").strip().splitlines()
        raise ProjectError(f"{what}: {detail[-1] if detail else e}") from None
    return out.stdout.strip()


def _clone(uri: str, version: str | None, dest: str) -> None:
    _git(["init", "-q"], dest, "git init")
    _git(["remote", "add", "origin", uri], dest, "git remote add")
    if version is not None:
        _git(["fetch", "-q", "origin", version], dest, f"fetching {version!r} of {uri}")
        try:
            _git(["checkout", "-q", version], dest, "")
        except ProjectError:
            # a commit fetched by name is only in FETCH_HEAD
            _git(
                ["checkout", "-q", "FETCH_HEAD"],
                dest,
                f"Unable to checkout version {version!r} of git repo {uri} - please ensure "
                "that the version exists in the repo",
            )
    else:
        head = _git(["ls-remote", "--symref", "origin", "HEAD"], dest, f"reading {uri}")
        match = re.search(r"ref: refs/heads/(\S+)\s+HEAD", head)
        if not match:
            raise ProjectError(f"{uri}: cannot tell the repository's default branch")
        branch = match.group(1)
        _git(["fetch", "-q", "origin", branch], dest, f"fetching {branch!r} of {uri}")
        _git(["checkout", "-q", "-b", branch, f"origin/{branch}"], dest, "git checkout")
    if os.path.exists(os.path.join(dest, ".gitmodules")):
        _git(["submodule", "update", "-q", "--init", "--recursive"], dest, "git submodules")


def _toplevel(path: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=path,
            capture_output=True,
            text=True,
        )
    except (FileNotFoundError, NotADirectoryError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def local_source_name(path: str) -> str:
    """``file://<work tree>#<subdir>`` when ``path`` is inside a git work tree, else the path."""
    top = _toplevel(path)
    if top is None:
        return path
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(top))
    url = f"file://{top}"
    return url if rel == "." else f"{url}#{rel}"


def git_tags(work_dir: str, version: str | None, repo_uri: str | None) -> dict[str, str]:
    """``mlflow.source.git.commit``, ``…repoURL`` (the first remote's) and, when ``version``
    is a branch, ``…branch``: MLflow 3's git tags."""
    top = _toplevel(work_dir)
    if top is None:
        return {}
    tags: dict[str, str] = {}
    try:
        tags["mlflow.source.git.commit"] = _git(["rev-parse", "HEAD"], top, "")
    except ProjectError:
        return {}
    try:
        remotes = _git(["remote"], top, "").split()
        url = _git(["remote", "get-url", remotes[0]], top, "") if remotes else None
    except ProjectError:
        url = None
    url = url or repo_uri
    if url:
        # credentials in an https remote are not recorded (MLflow strips them too)
        tags["mlflow.source.git.repoURL"] = re.sub(r"^(\w+://)[^/@]*@", r"\1", url)
    if version:
        try:
            _git(["rev-parse", "--verify", "-q", f"refs/heads/{version}"], top, "")
        except ProjectError:
            pass
        else:
            tags["mlflow.source.git.branch"] = version
    return tags


# -- archives ----------------------------------------------------------------------------
def _unpack(uri: str, dest: str) -> None:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme in ("http", "https"):
        local = os.path.join(dest, ".download")
        try:
            with urllib.request.urlopen(uri, timeout=60) as r, open(local, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            raise ProjectError(f"Unable to retrieve the archive {uri}: {e}") from None
    elif parsed.scheme == "file":
        local = urllib.parse.unquote(parsed.netloc + parsed.path)
    elif not parsed.scheme or len(parsed.scheme) == 1:
        local = os.path.abspath(os.path.expanduser(uri))
    else:
        raise ProjectError(f"{uri}: archives are read from a path, file:// or http(s)://")
    if not os.path.isfile(local):
        raise ProjectError(f"{uri}: no such archive", error_code="RESOURCE_DOES_NOT_EXIST")
    try:
        if local.endswith(".zip") or zipfile.is_zipfile(local):
            with zipfile.ZipFile(local) as z:
                for name in z.namelist():
                    _check_member(dest, name, uri)
                z.extractall(dest)
        else:
            with tarfile.open(local) as t:
                for m in t.getmembers():
                    _check_member(dest, m.name, uri)
                    if m.issym() or m.islnk():
                        _check_member(dest, os.path.join(os.path.dirname(m.name), m.linkname), uri)
                t.extractall(dest)  # every member checked above
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as e:
        raise ProjectError(f"{uri}: cannot unpack the archive: {e}") from None
    finally:
        if local == os.path.join(dest, ".download"):
            os.unlink(local)


def _check_member(dest: str, name: str, uri: str) -> None:
    full = os.path.realpath(os.path.join(dest, name))
    if os.path.commonpath([os.path.realpath(dest), full]) != os.path.realpath(dest):
        raise ProjectError(f"{uri}: the archive member {name!r} would land outside it")
