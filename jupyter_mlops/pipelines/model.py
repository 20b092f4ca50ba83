"""The pipeline model: what a ``*.pipeline.yaml`` file and the Python DSL both produce.

Plain dataclasses; :meth:`Pipeline.to_dict` gives the canonical JSON form (the
shape of the YAML file, with defaults filled in) that is stored with each run and
served over REST, and :func:`pipeline_from_dict` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..paramspec import PARAM_TYPES, ParamSpec, infer_type, param_from_dict

__all__ = [
    "PARAM_TYPES",
    "ParamSpec",
    "Pipeline",
    "Step",
    "infer_type",
    "param_from_dict",
    "pipeline_from_dict",
    "step_from_dict",
]


@dataclass
class Step:
    """One node of the DAG: a notebook, a script, a training job or an MLflow project's
    entry point, with its parameters."""

    name: str
    kind: str  # "notebook" | "script" | "train" | "project"
    path: str  # relative to the pipeline file (a project: also a git URL or an archive)
    parameters: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    cache: bool = False
    kernel: str | None = None
    image: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    #: A ``project:`` step's entry point, git version and environment manager.
    entry_point: str | None = None
    version: str | None = None
    env_manager: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.kind: self.path}
        for key in ("entry_point", "version", "env_manager"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        for key in ("parameters", "depends_on", "outputs", "inputs", "env", "args", "resources"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.retries:
            out["retries"] = self.retries
        if self.retry_delay:
            out["retry_delay"] = self.retry_delay
        if self.timeout is not None:
            out["timeout"] = self.timeout
        if self.cache:
            out["cache"] = True
        if self.kernel:
            out["kernel"] = self.kernel
        if self.image:
            out["image"] = self.image
        return out


@dataclass
class Pipeline:
    name: str
    steps: dict[str, Step]
    parameters: dict[str, ParamSpec] = field(default_factory=dict)
    description: str = ""
    experiment: str | None = None
    #: The file it came from (absolute), or None for a DSL pipeline.
    source_path: str | None = None
    #: Directory relative step paths resolve against.
    base_dir: str = "."

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.experiment:
            out["experiment"] = self.experiment
        if self.parameters:
            out["parameters"] = {n: p.to_dict() for n, p in self.parameters.items()}
        out["steps"] = {n: s.to_dict() for n, s in self.steps.items()}
        return out


STEP_KEYS = (
    "notebook",
    "script",
    "train",
    "project",
    "entry_point",
    "version",
    "env_manager",
    "parameters",
    "depends_on",
    "outputs",
    "inputs",
    "env",
    "args",
    "retries",
    "retry_delay",
    "timeout",
    "cache",
    "kernel",
    "image",
    "resources",
)
#: Keys of ``defaults:`` (step settings every step inherits unless it sets its own).
DEFAULT_KEYS = ("env", "retries", "retry_delay", "timeout", "cache", "kernel", "image", "resources")


def step_from_dict(name: str, raw: dict[str, Any], defaults: dict[str, Any] | None = None) -> Step:
    merged = dict(defaults or {})
    if "env" in merged and "env" in raw:
        merged["env"] = {**merged["env"], **raw["env"]}
        raw = {k: v for k, v in raw.items() if k != "env"}
    merged.update(raw)
    kind = next((k for k in ("notebook", "train", "project") if k in merged), "script")
    timeout = merged.get("timeout")
    return Step(
        name=name,
        kind=kind,
        path=str(merged.get(kind, "")),
        parameters=dict(merged.get("parameters") or {}),
        depends_on=[str(d) for d in merged.get("depends_on") or []],
        outputs=[str(o) for o in merged.get("outputs") or []],
        inputs=[str(i) for i in merged.get("inputs") or []],
        env={str(k): str(v) for k, v in (merged.get("env") or {}).items()},
        args=[str(a) for a in merged.get("args") or []],
        retries=int(merged.get("retries") or 0),
        retry_delay=float(merged.get("retry_delay") or 0),
        timeout=float(timeout) if timeout is not None else None,
        cache=bool(merged.get("cache", False)),
        kernel=merged.get("kernel"),
        image=merged.get("image"),
        resources=dict(merged.get("resources") or {}),
        entry_point=merged.get("entry_point"),
        version=merged.get("version"),
        env_manager=merged.get("env_manager"),
    )


def pipeline_from_dict(
    data: dict[str, Any], source_path: str | None = None, base_dir: str = "."
) -> Pipeline:
    """Build the model from an already validated mapping (see :mod:`.spec`)."""
    defaults = data.get("defaults") or {}
    return Pipeline(
        name=str(data["name"]),
        description=str(data.get("description") or ""),
        experiment=data.get("experiment"),
        parameters={
            str(n): param_from_dict(str(n), p) for n, p in (data.get("parameters") or {}).items()
        },
        steps={str(n): step_from_dict(str(n), s, defaults) for n, s in data["steps"].items()},
        source_path=source_path,
        base_dir=base_dir,
    )
