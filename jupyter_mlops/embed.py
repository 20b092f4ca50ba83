"""Files carried inside a Kubernetes object: base64 of a reproducible gzip tar.

How code reaches a pod without a shared volume or an image build: a Kubeflow pipeline step's
notebook or script and inputs (``pipelines/kubeflow/compiler.py`` does the same), a training
job's entry point. Kubernetes caps a stored object at about 1.5 MiB, so a size limit applies
and a file over it is refused with a message naming the file, its size and the setting.
Imports nothing of ours.
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import io
import os
import tarfile
from collections.abc import Iterable, Mapping

#: What is never shipped from a directory: version control, virtual environments, caches.
DEFAULT_IGNORE = (
    ".git/",
    ".hg/",
    ".svn/",
    ".venv/",
    "venv/",
    "__pycache__/",
    ".ipynb_checkpoints/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    "node_modules/",
    "*.pyc",
    ".DS_Store",
)
#: A directory's own list of what not to ship (``.gitignore``'s basic syntax).
IGNORE_FILE = ".mlopsignore"


class EmbedError(ValueError):
    """A file cannot be embedded (missing, or over the limit); the message says which."""


def size_text(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def pack(files: Mapping[str, str | bytes], limit: int, setting: str, where: str = "") -> str:
    """base64 of a gzip tar of ``files`` (archive name → a file's full path, or its bytes),
    the same bytes for the same files (no times, fixed modes). ``setting`` names the limit
    in errors (``c.TrainingService.targets['gpu'].max_embedded_bytes``), ``where`` prefixes
    them (``job 'ddp': ``)."""
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(files):
            src = files[name]
            if isinstance(src, bytes):
                data = src
            else:
                try:
                    size = os.path.getsize(src)
                except OSError:
                    raise EmbedError(f"{where}'{name}' not found (looked for {src})") from None
                if size > limit:
                    raise EmbedError(
                        f"{where}'{name}' is {size_text(size)}; files over {size_text(limit)} "
                        f"({setting}) cannot be shipped inside the Kubernetes object: put "
                        "big files in the image, object storage or a volume"
                    )
                with open(src, "rb") as f:
                    data = f.read()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    encoded = base64.b64encode(buf.getvalue()).decode("ascii")
    if len(encoded) > limit:
        raise EmbedError(
            f"{where}the embedded files take {size_text(len(encoded))} encoded, over "
            f"{size_text(limit)} ({setting})"
        )
    return encoded


def unpack(encoded: str, dest: str) -> list[str]:
    """Write the archive's files under ``dest`` (names that would leave it are refused);
    their names."""
    data = gzip.decompress(base64.b64decode(encoded))
    root = os.path.realpath(dest)
    names = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for member in tar.getmembers():
            full = os.path.realpath(os.path.join(root, member.name))
            if not member.isfile() or not full.startswith(root + os.sep):
                raise EmbedError(f"archive member {member.name!r} is not a plain file under {dest}")
            os.makedirs(os.path.dirname(full), exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with open(full, "wb") as out:
                out.write(src.read())
            names.append(member.name)
    return names


def read_ignore(directory: str) -> list[str]:
    """The patterns of ``directory``'s :data:`IGNORE_FILE` (blank lines and ``#``
    comments skipped)."""
    try:
        with open(os.path.join(directory, IGNORE_FILE), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [x.strip() for x in lines if x.strip() and not x.strip().startswith("#")]


def ignored(rel: str, is_dir: bool, patterns: Iterable[str]) -> bool:
    """Whether ``rel`` (``/``-separated, relative to the shipped directory) matches one of
    ``patterns``: ``name`` matches a file or directory of that name anywhere, ``dir/`` a
    directory only, a pattern with an inner ``/`` the path from the top (``data/*.csv``),
    ``!pattern`` takes an earlier match back."""
    name = rel.rsplit("/", 1)[-1]
    out = False
    for raw in patterns:
        neg = raw.startswith("!")
        pat = raw[1:] if neg else raw
        dir_only = pat.endswith("/")
        pat = pat.rstrip("/")
        if not pat or (dir_only and not is_dir):
            continue
        anchored = "/" in pat
        hit = (
            fnmatch.fnmatchcase(rel, pat.lstrip("/"))
            if anchored
            else fnmatch.fnmatchcase(name, pat)
        )
        if hit:
            out = not neg
    return out


def collect(
    directory: str, limit: int, setting: str, where: str = "", prefix: str = ""
) -> dict[str, str]:
    """Every file of ``directory`` to ship ({archive name: full path}, names under
    ``prefix``), leaving out :data:`DEFAULT_IGNORE` and what its :data:`IGNORE_FILE` lists.
    Raises :class:`EmbedError` once the files add up to more than ``limit`` (they would not
    fit packed), naming the largest ones and how to leave them out."""
    patterns = [*DEFAULT_IGNORE, *read_ignore(directory)]
    out: dict[str, str] = {}
    sizes: list[tuple[int, str]] = []
    total = 0
    # gzip rarely does better than 4:1 on code and small data: past that, stop looking
    most = limit * 4
    for root, dirs, names in os.walk(directory):
        if total > most:
            break
        rel_root = os.path.relpath(root, directory).replace(os.sep, "/")
        rel_root = "" if rel_root == "." else rel_root + "/"
        dirs[:] = sorted(d for d in dirs if not ignored(rel_root + d, True, patterns))
        for n in sorted(names):
            rel = rel_root + n
            full = os.path.join(root, n)
            if ignored(rel, False, patterns) or not os.path.isfile(full):
                continue
            size = os.path.getsize(full)
            total += size
            sizes.append((size, rel))
            out[prefix + rel] = full
    if total > most:
        biggest = ", ".join(f"'{r}' ({size_text(n)})" for n, r in sorted(sizes, reverse=True)[:3])
        raise EmbedError(
            f"{where}the directory {directory} holds over {size_text(total)} to ship, far over "
            f"{size_text(limit)} ({setting}); largest: {biggest}. List what the job does not "
            f"need in {os.path.join(directory, IGNORE_FILE)} (one pattern a line, as in "
            ".gitignore), or put big files in the image, object storage or a volume"
        )
    return out
