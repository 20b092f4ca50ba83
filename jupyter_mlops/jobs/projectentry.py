"""A job whose entry is an MLflow project's entry point, recorded as ``mlflow run`` records it.

The job's run gets MLflow's project tags (``mlflow.user``, ``mlflow.source.type=PROJECT``,
``mlflow.project.entryPoint``, ``mlflow.project.backend`` = the target's kind,
``mlflow.project.env=docker`` and ``mlflow.docker.image.uri`` when a cluster target runs
the project's ``docker_env`` image) and its parameters as MLflow logs them (every declared
one, defaults included, shell-quoted; undeclared ones too). On a Kubernetes target the
``docker_env`` image is the job's image unless the job names one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ..projects.params import compute_parameters
from ..projects.spec import Project, load_project
from .spec import JobSpec

#: Tags a client may pass for a project entry besides the source ones (the project runner
#: passes the URI it fetched as ``mlflow.source.name``).
PROJECT_SOURCE_TAGS = ("mlflow.source.name",)
PROJECT_TAG_PREFIX = "mlflow.project."


def project_dir(spec: JobSpec) -> str:
    return os.path.normpath(os.path.join(spec.base_dir, spec.entry))


def command_values(values: Mapping[str, Any]) -> dict[str, str]:
    """The job's parameter values as the entry point's command gets them (strings; other
    values as JSON: ``true``, ``0.5``)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def load(spec: JobSpec) -> Project:
    return load_project(project_dir(spec))


def run_params(spec: JobSpec, values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's parameters as ``mlflow run`` logs them; a ``ProjectError`` (400) naming the
    parameter and the MLproject line when a value does not fit its type."""
    project = load(spec)
    entry = project.entry_point(spec.entry_point or "main")
    final, extra = compute_parameters(project, entry, command_values(values), None)
    return [*final.items(), *extra.items()]


def docker_image(spec: JobSpec) -> str | None:
    """The project's ``docker_env`` image, if it has one."""
    project = load(spec)
    return project.docker.image if project.docker else None


def run_tags(spec: JobSpec, target_kind: str, local: bool, user: str) -> dict[str, str]:
    tags = {
        "mlflow.user": user,
        "mlflow.source.type": "PROJECT",
        "mlflow.project.entryPoint": spec.entry_point or "main",
        "mlflow.project.backend": target_kind,
    }
    image = None if local else docker_image(spec)
    if image is not None and spec.image in (None, image):
        tags["mlflow.project.env"] = "docker"
        tags["mlflow.docker.image.uri"] = image
    return tags


def accepted_tag(key: str) -> bool:
    """Whether a client's tag may go on a project entry's run."""
    return key in PROJECT_SOURCE_TAGS or key.startswith(PROJECT_TAG_PREFIX)
