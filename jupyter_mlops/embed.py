"""Files carried inside a Kubernetes object: base64 of a reproducible gzip tar.

How code reaches a pod without a shared volume or an image build: a Kubeflow pipeline step's
notebook or script and inputs (``pipelines/kubeflow/compiler.py`` does the same), a training
job's entry point. Kubernetes caps a stored object at about 1.5 MiB, so a size limit applies
and a file over it is refused with a message naming the file, its size and the setting.
Imports nothing of ours.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import tarfile
from collections.abc import Mapping


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
