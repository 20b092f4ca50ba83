"""Model images: a self-contained Docker build context for one model, and building it.

``build_context(model_uri, dir)`` writes::

    Dockerfile        slim Python base (build arg PYTHON_IMAGE), requirements installed at build
                      time, the model baked in at /opt/ml/model, our scoring server as the entry
                      point, a non-root user, port 8080, a HEALTHCHECK, OCI labels
    requirements.txt  the model's own requirements (its requirements.txt) plus the scoring
                      server's (tornado, numpy, PyYAML, cloudpickle), pinned as installed here
                      when the model does not pin them
    model/            the model directory (MLmodel and its files)
    serving/          the jupyter_mlops package's Python sources (the scoring server; no
                      front end), on PYTHONPATH in the image

``build_image`` runs docker, podman or buildah on it (the first one that answers its ``info``)
and records the image reference on the registered model version (tag ``mlops.image``).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from ..tracking.errors import TrackingError, invalid

#: What the scoring server imports beyond the standard library (and the model's own needs).
SERVING_REQUIREMENTS = ("tornado", "numpy", "PyYAML", "cloudpickle")
#: Container builders tried in this order.
BUILDERS = ("docker", "podman", "buildah")
IMAGE_TAG = "mlops.image"
LABEL_PREFIX = "io.jupyter-mlops"
PORT = 8080
MODEL_DIR = "/opt/ml/model"
SERVING_DIR = "/opt/mlops/serving"
#: Requirement lines naming this package: the image gets our sources instead (serving/).
_OWN = re.compile(r"^\s*jupyter[-_.]mlops\b", re.IGNORECASE)


@dataclass
class ModelIdentity:
    """What the image says about its model (labels, the V2 name and version)."""

    uri: str
    name: str
    version: str | None = None
    run_id: str | None = None
    git_commit: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def identify(model_uri: str, tracking_uri: str | None = None) -> ModelIdentity:
    """The registered name and version a URI resolves to now, its run and git commit."""
    from ..registry.serve import model_identity

    name, version = model_identity(model_uri, tracking_uri)
    ident = ModelIdentity(model_uri, name, version)
    run_id = None
    if version is not None and model_uri.startswith("models:/"):
        from ..registry.client import RegistryClient

        mv = RegistryClient(tracking_uri).get_model_version(name, version)
        run_id = mv.run_id
    else:
        m = re.fullmatch(r"runs:/([^/]+)/?.*", model_uri)
        run_id = m.group(1) if m else None
    if run_id:
        ident.run_id = run_id
        try:
            from ..client.mlops_client import MlopsClient

            run = MlopsClient(tracking_uri).get_run(run_id)
            ident.git_commit = run.data.tags.get("mlflow.source.git.commit") or None
        except TrackingError:
            pass
    return ident


def _requirements(model_dir: str) -> list[str]:
    path = os.path.join(model_dir, "requirements.txt")
    lines: list[str] = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for raw in f:
                line = raw.split("#", 1)[0].strip()
                if line and not _OWN.match(line):
                    lines.append(line)
    named = {
        re.split(r"[\s<>=!~\[;@]", ln, maxsplit=1)[0].lower().replace("_", "-") for ln in lines
    }
    from ..registry.model_format import package_version

    for pkg in SERVING_REQUIREMENTS:
        if pkg.lower() not in named:
            v = package_version(pkg)
            lines.append(f"{pkg}=={v}" if v else pkg)
    return lines


def _copy_sources(dst: str) -> None:
    """The jupyter_mlops package's ``.py`` files (plus ``py.typed``), no front end."""
    import jupyter_mlops

    src = os.path.dirname(os.path.abspath(jupyter_mlops.__file__))
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d not in ("__pycache__", "labextension", "static")]
        rel = os.path.relpath(root, src)
        for name in files:
            if name.endswith(".py") or name == "py.typed":
                out = os.path.join(dst, "jupyter_mlops", rel, name)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                shutil.copy2(os.path.join(root, name), out)


def _label(value: str) -> str:
    return json.dumps(value)  # a Dockerfile LABEL value in double quotes, escaped


def dockerfile(ident: ModelIdentity, python_image: str) -> str:
    from .._version import __version__

    labels = {
        "org.opencontainers.image.title": ident.name,
        "org.opencontainers.image.description": f"{ident.uri} served by jupyter-mlops "
        "(MLflow scoring protocol and Open Inference "
        "Protocol V2 on port 8080)",
        "org.opencontainers.image.version": ident.version or "",
        "org.opencontainers.image.revision": ident.git_commit or "",
        "org.opencontainers.image.created": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        f"{LABEL_PREFIX}.model.name": ident.name,
        f"{LABEL_PREFIX}.model.version": ident.version or "",
        f"{LABEL_PREFIX}.model.uri": ident.uri,
        f"{LABEL_PREFIX}.model.run-id": ident.run_id or "",
        f"{LABEL_PREFIX}.git-commit": ident.git_commit or "",
        f"{LABEL_PREFIX}.version": str(__version__),
    }
    label_lines = " \\\n      ".join(f"{k}={_label(v)}" for k, v in labels.items())
    entry = entrypoint(ident)
    health = (
        "import urllib.request; urllib.request.urlopen("
        f"'http://127.0.0.1:{PORT}/v2/health/ready', timeout=2)"
    )
    return f"""# Built by `jupyter mlops models build-context` for {ident.uri}.
# docker build -t IMAGE .   (or podman build / buildah bud); then docker run -p 8080:8080 IMAGE
ARG PYTHON_IMAGE={python_image}
FROM ${{PYTHON_IMAGE}}

LABEL {label_lines}

ENV PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PYTHONPATH={SERVING_DIR}

# The model's requirements, resolved and installed when the image is built.
COPY requirements.txt /opt/mlops/requirements.txt
RUN python -m pip install --no-cache-dir -r /opt/mlops/requirements.txt

COPY serving/ {SERVING_DIR}/
COPY model/ {MODEL_DIR}/

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mlops
USER 10001
WORKDIR /opt/mlops

EXPOSE {PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "{health}"]
ENTRYPOINT {json.dumps(entry)}
"""


def entrypoint(ident: ModelIdentity) -> list[str]:
    cmd = [
        "python",
        "-m",
        "jupyter_mlops.registry.serve",
        MODEL_DIR,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--model-name",
        ident.name,
    ]
    if ident.version:
        cmd += ["--model-version", ident.version]
    return cmd


def default_python_image() -> str:
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


def build_context(
    model_uri: str, out_dir: str, tracking_uri: str | None = None, python_image: str | None = None
) -> ModelIdentity:
    """Write the build context of ``model_uri`` into ``out_dir`` (new or empty)."""
    from ..registry.api import download_model

    if os.path.exists(out_dir) and os.listdir(out_dir):
        raise invalid(f"'{out_dir}' is not empty: give a new or empty directory.")
    ident = identify(model_uri, tracking_uri)
    os.makedirs(out_dir, exist_ok=True)
    model_dst = os.path.join(out_dir, "model")
    import tempfile

    tmp = tempfile.mkdtemp(prefix="mlops-model-")
    try:  # a local model is copied from where it is; a stored one is downloaded to tmp first
        shutil.copytree(download_model(model_uri, tmp, tracking_uri), model_dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(out_dir, "requirements.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(_requirements(model_dst)) + "\n")
    _copy_sources(os.path.join(out_dir, "serving"))
    with open(os.path.join(out_dir, "Dockerfile"), "w", encoding="utf-8") as f:
        f.write(dockerfile(ident, python_image or default_python_image()))
    with open(os.path.join(out_dir, ".dockerignore"), "w", encoding="utf-8") as f:
        f.write("**/__pycache__\n")
    return ident


# -- building ---------------------------------------------------------------------------
class NoBuilder(TrackingError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "NOT_IMPLEMENTED")


def find_builder(preferred: str | None = None) -> str:
    """The first of docker, podman, buildah that is installed and answers ``info``; else a
    :class:`NoBuilder` saying what was looked for and why each was not usable."""
    names = (preferred,) if preferred else BUILDERS
    why = []
    for name in names:
        path = shutil.which(name)
        if path is None:
            why.append(f"{name}: not on PATH")
            continue
        try:
            p = subprocess.run(
                [path, "info"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            why.append(f"{name}: '{name} info' failed ({e})")
            continue
        if p.returncode == 0:
            return path
        last = (p.stderr or p.stdout).strip().splitlines()
        why.append(
            f"{name}: installed but '{name} info' failed"
            + (f" ({last[-1].strip()})" if last else f" (exit {p.returncode})")
        )
    raise NoBuilder(
        "No usable container builder: looked for " + ", ".join(names) + ". " + "; ".join(why) + "."
    )


def build_image(
    model_uri: str,
    tag: str,
    tracking_uri: str | None = None,
    python_image: str | None = None,
    builder: str | None = None,
    context_dir: str | None = None,
    echo: Any = print,
) -> dict[str, Any]:
    """Build the model's image as ``tag`` and record it on its model version."""
    import tempfile

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*", tag or ""):
        raise invalid(f"Invalid image tag {tag!r}.")
    exe = find_builder(builder)
    tmp = None
    if context_dir is None:
        tmp = context_dir = tempfile.mkdtemp(prefix="mlops-image-")
    try:
        ident = build_context(model_uri, context_dir, tracking_uri, python_image)
        verb = ["bud"] if os.path.basename(exe) == "buildah" else ["build"]
        cmd = [exe, *verb, "-t", tag, context_dir]
        echo("$ " + " ".join(cmd))
        p = subprocess.run(cmd, check=False)
        if p.returncode != 0:
            raise TrackingError(
                f"'{' '.join(cmd)}' failed with exit code {p.returncode}.", "INTERNAL_ERROR"
            )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    recorded = record_image(ident, tag, tracking_uri)
    return {
        "image": tag,
        "builder": os.path.basename(exe),
        "model": ident.name,
        "version": ident.version,
        "recorded": recorded,
    }


def record_image(ident: ModelIdentity, tag: str, tracking_uri: str | None) -> bool:
    """Tag the registered version with the image reference (False: not a registered model)."""
    if ident.version is None or not ident.uri.startswith("models:/"):
        return False
    from ..registry.client import RegistryClient

    RegistryClient(tracking_uri).set_model_version_tag(ident.name, ident.version, IMAGE_TAG, tag)
    return True
