"""Compile a pipeline to Kubeflow Pipelines v2 IR (``PipelineSpec`` JSON, schema 2.1.0).

One component and one executor per step. Each executor runs the step bootstrap
(:mod:`.step`) with the step's notebook or script, and the workspace files it
declares as ``inputs``, embedded in its command as base64 of a gzip tar, so no
shared volume is needed. Files a step declares as ``outputs`` become KFP output
artifacts that its consumers receive as input artifacts: data moves between pods
through the pipeline root's object storage.

What must mean the same as in the local executor:

- step parameters: exactly ``{{ params.x }}`` becomes the root input ``x``
  (``componentInputParameter``); other values are resolved here like
  :func:`..params.fill` does and passed as constants. Templates naming places
  that exist only in the pod (``run.dir``, ``pipeline.dir``, ``steps.S.outputs``)
  and the run id are filled by the bootstrap, with the same function;
- retries, timeout, cache, env, resources, image (see :func:`compile_pipeline`).

The run ids the pod logs into travel in the container env, not in the command:
KFP's cache key covers image, command, args and inputs but not env, so a cached
step stays cacheable across submissions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..._version import __version__
from ...embed import EmbedError, pack
from ..model import Pipeline, Step, infer_type
from ..params import ParameterError, fill, resolve_parameters
from ..spec import TEMPLATE, ancestors

SCHEMA_VERSION = "2.1.0"
#: Our parameter types → KFP's ``ParameterType`` enum names.
KFP_TYPES = {
    "string": "STRING",
    "integer": "NUMBER_INTEGER",
    "float": "NUMBER_DOUBLE",
    "boolean": "BOOLEAN",
    "list": "LIST",
    "dict": "STRUCT",
}
ARTIFACT_TYPE = {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}
GPU_RESOURCE = "nvidia.com/gpu"
STEP_MODULE = "jupyter_mlops.pipelines.kubeflow.step"
#: Template roots only the pod can resolve (its paths, and the run id kept out of args).
POD_REFS = ("run.id", "run.dir", "pipeline.dir", "steps.")
#: KFP's pattern for ``pipelineInfo.name`` (checked by the API server at upload).
KFP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TASK_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: Names Kubernetes accepts for container env variables.
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
#: Argo's retry backoff cap (the KFP SDK caps ``backoff_max_duration`` at one hour too).
MAX_BACKOFF_S = 3600


@dataclass
class KubeflowSettings:
    """What a configured target contributes to compilation."""

    image: str
    """Default container image (a step's ``image:`` overrides it); it must have
    jupyter-mlops installed."""
    tracking_uri: str
    """``JUPYTER_MLOPS_TRACKING_URI`` inside the step pods."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra plain env for every step (a step's own ``env`` wins)."""
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)
    """VAR → (Kubernetes secret name, key), through the PlatformSpec (kfp-kubernetes' shape)."""
    pipeline_root: str | None = None
    """``defaultPipelineRoot`` of the spec (where KFP stores the artifacts)."""
    max_embedded_bytes: int = 1_000_000
    """Largest notebook/script/input file, and largest archive per step, that is embedded.
    The whole spec ends up in one Argo Workflow object, and Kubernetes caps a stored
    object at about 1.5 MiB, so the default leaves room for the rest of the spec."""
    train_runtime: str = "torch-distributed"
    """The (Cluster)TrainingRuntime the TrainJobs of ``train:`` steps refer to."""
    train_runtime_kind: str = "ClusterTrainingRuntime"
    """``ClusterTrainingRuntime`` or the namespace's own ``TrainingRuntime``."""
    train_queue: str | None = None
    """A Kueue LocalQueue for those TrainJobs (None: no queue label)."""


class CompileError(ValueError):
    """Names the step and field (e.g. "step 'train': resources.gpu: must be a whole number")."""


# -- names ---------------------------------------------------------------------------------
def _k8s_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


#: Display names KFP's Argo backend gives its own nodes, which GetRun lists in
#: ``task_details`` next to the tasks: the root DAG and its driver, and each task's
#: executor pod; every task also gets a driver node named ``<task>-driver``.
KFP_NODE_NAMES = frozenset({"root", "root-driver", "executor"})
KFP_DRIVER_SUFFIX = "-driver"


def _kfp_node_name(name: str) -> bool:
    """Whether a task named ``name`` could share its display name with a node of KFP's own."""
    return name in KFP_NODE_NAMES or name.endswith(KFP_DRIVER_SUFFIX)


def task_name(step_name: str) -> str:
    """The KFP task id of a step (what GetRun's ``run_details.task_details[].display_name``
    shows). Step names that already fit Kubernetes' naming are kept; others are lowered
    and dashed, with a short hash of the original so two steps never share a task
    (``Train`` and ``train`` both exist in one pipeline). Names KFP uses for its own nodes
    (``root``, ``executor``, ``*-driver``) get the hash too: the watcher finds a step by
    this name, and the hashed form (ending in hex digits) is never one of KFP's."""
    if _TASK_NAME.match(step_name) and len(step_name) <= 50 and not _kfp_node_name(step_name):
        return step_name
    digest = hashlib.sha1(step_name.encode()).hexdigest()[:6]
    base = _k8s_name(step_name)[:40].strip("-")
    return f"{base}-{digest}" if base else f"step-{digest}"


def pipeline_name(name: str) -> str:
    """``name`` fitted to KFP's ``[a-z0-9]([-a-z0-9]*[a-z0-9])?`` (dots between parts allowed)."""
    out = re.sub(r"[^a-z0-9.]+", "-", name.lower())
    out = re.sub(r"-*\.+-*", ".", out).strip("-.")  # parts neither start nor end with '-'
    return out if out and KFP_NAME.match(out) else "pipeline"


def artifact_keys(outputs: list[str]) -> dict[str, str]:
    """Output path → artifact name (identifier-like, unique in the step)."""
    keys: dict[str, str] = {}
    used: set[str] = set()
    for out in outputs:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", out).strip("_") or "output"
        if base[0].isdigit():
            base = "o_" + base
        key, n = base, 2
        while key in used:
            key, n = f"{base}_{n}", n + 1
        used.add(key)
        keys[out] = key
    return keys


# -- templates -----------------------------------------------------------------------------
def _refs(value: Any) -> list[str]:
    """Every template reference in a (nested) value."""
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    if isinstance(value, str):
        return [m.group(1) for m in TEMPLATE.finditer(value)]
    return []


def _needs_pod(value: Any) -> bool:
    return any(r.startswith(POD_REFS) for r in _refs(value))


def _whole_param(value: Any) -> str | None:
    """``x`` when ``value`` is exactly ``{{ params.x }}``."""
    if isinstance(value, str):
        m = TEMPLATE.fullmatch(value.strip())
        if m and m.group(1).startswith("params."):
            return m.group(1)[len("params.") :]
    return None


# -- resources -----------------------------------------------------------------------------
_CPU = re.compile(r"^([0-9]*\.)?[0-9]+m?$")
_MEMORY = re.compile(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)([KkMGTPE]i?)?$")
_MEMORY_FACTORS = {
    "": 1,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def _resources(step: Step) -> dict[str, Any]:
    """KFP's ResourceSpec: requests = limits (a Profile's ResourceQuota refuses pods
    without requests), each as the string field and the deprecated number KFP
    backends before 2.2 read (cores; memory in GB)."""
    res = step.resources or {}
    out: dict[str, Any] = {}
    where = f"step '{step.name}': resources"
    cpu = res.get("cpu")
    if cpu is not None and not _zero(cpu):
        text = (
            _num_text(cpu)
            if isinstance(cpu, (int, float)) and not isinstance(cpu, bool)
            else str(cpu).strip()
        )
        if isinstance(cpu, bool) or not _CPU.match(text):
            raise CompileError(f"{where}.cpu: {cpu!r} is not a CPU amount (e.g. 2, 0.5 or 500m)")
        cores = _cpu_cores(text)
        out.update(resourceCpuLimit=text, resourceCpuRequest=text, cpuLimit=cores, cpuRequest=cores)
    memory = res.get("memory")
    if memory is not None and not _zero(memory):
        text = str(memory).strip()
        m = _MEMORY.match(text)
        if not m or isinstance(memory, bool):
            raise CompileError(
                f"{where}.memory: {memory!r} is not a memory amount (e.g. 512Mi, 2Gi, 4G)"
            )
        unit = m.group(3) or ""
        if unit == "K":  # Kubernetes spells the decimal kilo 'k'
            text = text[:-1] + "k"
        gb = float(text[: len(text) - len(unit)]) * _MEMORY_FACTORS[unit] / 1e9
        out.update(
            resourceMemoryLimit=text, resourceMemoryRequest=text, memoryLimit=gb, memoryRequest=gb
        )
    gpu = res.get("gpu")
    if gpu is not None:
        if isinstance(gpu, bool) or not isinstance(gpu, (int, float)) or gpu < 0 or int(gpu) != gpu:
            raise CompileError(f"{where}.gpu: must be a whole number (got {gpu!r})")
        if gpu:
            count = str(int(gpu))
            out["accelerator"] = {
                "resourceType": GPU_RESOURCE,
                "resourceCount": count,
                "type": GPU_RESOURCE,
                "count": count,
            }
    return out


def _zero(v: Any) -> bool:
    """0 (or "0") asks for nothing, as ``gpu: 0`` does."""
    try:
        return not isinstance(v, bool) and float(v) == 0
    except (TypeError, ValueError):
        return False


def _num_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _cpu_cores(text: str) -> float:
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


# -- embedding -----------------------------------------------------------------------------
def project_dir(p: Pipeline, step: Step) -> str | None:
    """A ``project:`` step's local project directory (None: a git URL or an archive, which
    the pod fetches or unpacks itself, or not a project step)."""
    from ...projects.fetch import is_archive, is_local, split_subdirectory

    if step.kind != "project":
        return None
    base, sub = split_subdirectory(step.path)
    if not is_local(base) or is_archive(base):
        return None
    return os.path.normpath(os.path.join(os.path.abspath(p.base_dir), base, sub))


def project_image(p: Pipeline, step: Step) -> str | None:
    """The ``docker_env`` image of a local ``project:`` step's MLproject, if it has one."""
    from ...projects.spec import ProjectError, load_project

    directory = project_dir(p, step)
    if directory is None:
        return None
    try:
        project = load_project(directory)
    except ProjectError as e:
        raise CompileError(f"step '{step.name}': project: {e.message}") from None
    return project.docker.image if project.docker else None


def _project_files(directory: str) -> list[str]:
    """Every file of a project directory (version control and caches left out)."""
    out = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__", ".ipynb_checkpoints"))
        out += [os.path.join(root, n) for n in sorted(names)]
    return out


def _step_files(p: Pipeline, step: Step) -> tuple[str, dict[str, str]]:
    """The directory the archive is relative to and {archive name: full path}: the
    pipeline directory, or the nearest ancestor that holds every file (a step may
    reach ``../shared/x.csv``), so relative paths stay what they are locally."""
    base = os.path.abspath(p.base_dir)
    project = project_dir(p, step)
    if project is not None:
        rels = [os.path.relpath(f, base) for f in _project_files(project)] + step.inputs
    elif step.kind == "project":  # a git URL is fetched in the pod; an archive goes along
        from ...projects.fetch import is_local, split_subdirectory

        uri = split_subdirectory(step.path)[0]
        rels = ([uri] if is_local(uri) else []) + list(step.inputs)
    else:
        rels = [step.path, *step.inputs]
    if not rels:
        return base, {}
    fulls = [os.path.normpath(os.path.join(base, rel)) for rel in rels]
    anchor = os.path.commonpath([base, *[os.path.dirname(f) for f in fulls]])
    return anchor, {os.path.relpath(f, anchor).replace(os.sep, "/"): f for f in fulls}


def _archive(p: Pipeline, step: Step, limit: int) -> tuple[str, str]:
    """base64 of a reproducible gzip tar of the step's files (same bytes for the same
    files: KFP's cache key includes the command), and the pipeline directory's path
    inside it."""
    anchor, files = _step_files(p, step)
    try:
        encoded = pack(dict(files), limit, "max_embedded_bytes", f"step '{step.name}': ")
    except EmbedError as e:
        raise CompileError(str(e)) from None
    pdir = os.path.relpath(os.path.abspath(p.base_dir), anchor).replace(os.sep, "/")
    return encoded, pdir


def _arg_json(value: Any) -> str:
    """JSON for a container argument that nothing on the way rewrites: ``{{`` opens a
    placeholder for KFP's launcher and Argo, ``$`` a variable for Kubernetes. Both are
    escaped as JSON ``\\u`` sequences (``{{`` only occurs inside JSON strings), so the
    text decodes the same with or without them."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text.replace("$", "\\u0024").replace("{{", "{\\u007b")


def _env_value(text: str) -> str:
    """Kubernetes expands ``$(VAR)`` in env values and turns ``$$`` into ``$``."""
    return text.replace("$", "$$")


# -- compile ---------------------------------------------------------------------------------
def compile_pipeline(
    pipeline: Pipeline,
    parameters: Mapping[str, Any],
    *,
    step_run_ids: Mapping[str, str],
    parent_run_id: str,
    settings: KubeflowSettings,
) -> dict[str, Any]:
    """KFP v2 IR for one submission: ``{"pipeline_spec": {...}, "platform_spec": {...} or
    None}``. ``parameters`` are the run's pipeline parameters (declared as the root's
    inputs, their values as defaults); ``step_run_ids[step]`` is the tracked run the
    step's pod logs into. Raises :class:`CompileError` naming the step and field."""
    p = pipeline
    try:
        values = resolve_parameters(p, parameters)
    except ParameterError as e:
        raise CompileError(str(e)) from None
    if not settings.tracking_uri:
        raise CompileError("the target has no tracking_uri: step pods would log nowhere")
    images = {n: s.image or project_image(p, s) or settings.image for n, s in p.steps.items()}
    no_image = [n for n in p.steps if not images[n]]
    if no_image:
        raise CompileError(
            f"step '{no_image[0]}': image: none given (set the step's image or the target's)"
        )
    missing = [n for n in p.steps if not step_run_ids.get(n)]
    if missing:
        raise CompileError("no tracked run for step(s) " + ", ".join(repr(n) for n in missing))
    compile_ctx: dict[str, Any] = {f"params.{k}": v for k, v in values.items()}
    compile_ctx["pipeline.name"] = p.name

    tasks_of = {n: task_name(n) for n in p.steps}
    keys_of = {n: artifact_keys(s.outputs) for n, s in p.steps.items()}
    upstream = ancestors(p)
    components: dict[str, Any] = {}
    executors: dict[str, Any] = {}
    tasks: dict[str, Any] = {}
    for name, step in p.steps.items():
        tname = tasks_of[name]
        comp, label = f"comp-{tname}", f"exec-{tname}"
        if step.kind == "train":  # a launcher: it creates the TrainJob and waits for it
            comp_spec: dict[str, Any] = {}
            task_inputs: dict[str, Any] = {}
            container = _train_launcher(
                p, step, images[name], settings, compile_ctx, step_run_ids[name], parent_run_id
            )
        else:
            comp_spec, task_inputs, config = _step_io(
                p, step, compile_ctx, keys_of, upstream.get(name, set()), tasks_of
            )
            container = _container(
                p, step, config, settings, compile_ctx, step_run_ids[name], parent_run_id
            )
        comp_spec["executorLabel"] = label
        components[comp] = comp_spec
        executors[label] = {"container": container}
        task: dict[str, Any] = {
            "taskInfo": {"name": tname},
            "componentRef": {"name": comp},
            "cachingOptions": {"enableCache": True} if step.cache else {},
        }
        if task_inputs:
            task["inputs"] = task_inputs
        producers = {
            src["taskOutputArtifact"]["producerTask"]
            for src in (task_inputs.get("artifacts") or {}).values()
        }
        deps = sorted({tasks_of[d] for d in step.depends_on} | producers)
        if deps:
            task["dependentTasks"] = deps
        if step.retries:
            task["retryPolicy"] = {
                "maxRetryCount": step.retries,
                "backoffDuration": f"{math.ceil(step.retry_delay)}s",
                "backoffFactor": 1.0,  # a fixed delay between attempts, as locally
                "backoffMaxDuration": f"{MAX_BACKOFF_S}s",
            }
        tasks[tname] = task

    root: dict[str, Any] = {"dag": {"tasks": tasks}}
    if p.parameters:
        root["inputDefinitions"] = {
            "parameters": {
                n: _param_def(spec.type, values[n], spec.description)
                for n, spec in p.parameters.items()
            }
        }
    info: dict[str, Any] = {"name": pipeline_name(p.name), "displayName": p.name}
    if p.description:
        info["description"] = p.description
    spec: dict[str, Any] = {
        "pipelineInfo": info,
        "root": root,
        "components": components,
        "deploymentSpec": {"executors": executors},
        "schemaVersion": SCHEMA_VERSION,
        "sdkVersion": f"jupyter-mlops-{__version__}",
    }
    if settings.pipeline_root:
        spec["defaultPipelineRoot"] = settings.pipeline_root
    return {"pipeline_spec": spec, "platform_spec": _platform_spec(settings, executors)}


def _fill(step: Step, where: str, value: Any, ctx: Mapping[str, Any]) -> Any:
    try:
        return fill(value, ctx)
    except KeyError as e:  # a model that skipped validation
        raise CompileError(
            f"step '{step.name}': {where}: unknown template {{{{ {e.args[0]} }}}}"
        ) from None


def _param_def(ptype: str, default: Any, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "parameterType": KFP_TYPES[ptype],
        "isOptional": True,
        "defaultValue": default,
    }
    if description:
        out["description"] = description
    return out


def _step_io(
    p: Pipeline,
    step: Step,
    compile_ctx: Mapping[str, Any],
    keys_of: Mapping[str, Mapping[str, str]],
    upstream: set[str],
    tasks_of: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The component's interface, the task's inputs and the bootstrap's config."""
    in_params: dict[str, Any] = {}
    task_params: dict[str, Any] = {}
    kfp_types: dict[str, str] = {}
    in_pod: dict[str, Any] = {}
    for key, raw in step.parameters.items():
        whole = _whole_param(raw)
        if whole is not None and whole not in p.parameters:
            raise CompileError(
                f"step '{step.name}': parameters.{key}: unknown pipeline parameter {whole!r}"
            )
        if whole is not None:
            ptype = p.parameters[whole].type
            in_params[key] = {"parameterType": KFP_TYPES[ptype]}
            task_params[key] = {"componentInputParameter": whole}
            kfp_types[key] = ptype
        elif _needs_pod(raw):
            in_pod[key] = raw
        else:
            value = _fill(step, f"parameters.{key}", raw, compile_ctx)
            if value is None:  # no KFP value for null: the pod fills it (to None)
                in_pod[key] = None
                continue
            ptype = infer_type(value)
            in_params[key] = {"parameterType": KFP_TYPES[ptype]}
            task_params[key] = {"runtimeValue": {"constant": value}}
            kfp_types[key] = ptype

    # Files from upstream steps: direct dependencies' outputs land in the working
    # directory (as locally); any upstream step named in {{ steps.S.outputs }} is
    # received too, for that template to point at.
    templated = {
        r.split(".")[1]
        for r in _refs([step.parameters, step.env, step.args])
        if r.startswith("steps.")
    }
    in_artifacts: dict[str, Any] = {}
    task_artifacts: dict[str, Any] = {}
    received: dict[str, Any] = {}
    for dep in sorted(set(step.depends_on) | (templated & upstream), key=list(p.steps).index):
        for out, key in keys_of[dep].items():
            iname = base = f"{re.sub(r'[^A-Za-z0-9_]', '_', dep)}__{key}"
            n = 2
            while iname in in_artifacts:  # steps 'a-b' and 'a_b' both upstream
                iname, n = f"{base}_{n}", n + 1
            in_artifacts[iname] = {"artifactType": dict(ARTIFACT_TYPE)}
            task_artifacts[iname] = {
                "taskOutputArtifact": {"producerTask": tasks_of[dep], "outputArtifactKey": key}
            }
            received[iname] = {"step": dep, "path": out, "direct": dep in step.depends_on}

    comp: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    if in_params:
        inputs["parameters"] = in_params
    if in_artifacts:
        inputs["artifacts"] = in_artifacts
    if inputs:
        comp["inputDefinitions"] = inputs
    keys = keys_of[step.name]
    if keys:
        comp["outputDefinitions"] = {
            "artifacts": {k: {"artifactType": dict(ARTIFACT_TYPE)} for k in keys.values()}
        }
    task_inputs: dict[str, Any] = {}
    if task_params:
        task_inputs["parameters"] = task_params
    if task_artifacts:
        task_inputs["artifacts"] = task_artifacts

    env_in_pod = {k: v for k, v in step.env.items() if _needs_pod(v)}
    deferred = [in_pod, env_in_pod, step.args]
    context = {r: compile_ctx[r] for r in _refs(deferred) if r in compile_ctx}
    config: dict[str, Any] = {
        "step": step.name,
        "kind": step.kind,
        "path": step.path,
        "parameters": list(step.parameters),
        "kfp_types": kfp_types,
        "in_pod": in_pod,
        "env": env_in_pod,
        "args": list(step.args),
        "context": context,
        "outputs": keys,
        "inputs": list(step.inputs),
        "received": received,
        "kernel": step.kernel,
        "timeout": step.timeout,
        "pipeline": p.name,
    }
    if step.kind == "project":
        config["entry_point"] = step.entry_point or "main"
        config["version"] = step.version
        config["env_manager"] = step.env_manager or "local"  # the image is the environment
    return comp, task_inputs, config


def _container(
    p: Pipeline,
    step: Step,
    config: dict[str, Any],
    settings: KubeflowSettings,
    compile_ctx: Mapping[str, Any],
    run_id: str,
    parent_run_id: str,
) -> dict[str, Any]:
    archive, pdir = _archive(p, step, settings.max_embedded_bytes)
    config["pipeline_dir"] = pdir
    bad = next((k for k in [*settings.env, *step.env] if not _ENV_NAME.match(k)), None)
    if bad is not None:
        where = f"step '{step.name}': env" if bad in step.env else "the target's env"
        raise CompileError(
            f"{where}: {bad!r} is not an environment variable name Kubernetes "
            "accepts (letters, digits, '_', '-', '.'; not starting with a digit)"
        )
    env: dict[str, str] = dict(settings.env)
    for k, v in step.env.items():
        if k not in config["env"]:  # the others are filled in the pod
            env[k] = str(_fill(step, f"env.{k}", v, compile_ctx))
    env.update(
        {
            "JUPYTER_MLOPS_TRACKING_URI": settings.tracking_uri,
            "JUPYTER_MLOPS_RUN_ID": run_id,
            "MLFLOW_RUN_ID": run_id,
            "JUPYTER_MLOPS_PIPELINE_RUN_ID": parent_run_id,
            "JUPYTER_MLOPS_PIPELINE_STEP": step.name,
        }
    )
    for var in settings.secret_env:
        env.pop(var, None)  # the secret's value wins (a duplicate name is an error to Kubernetes)
    container: dict[str, Any] = {
        "image": step.image or project_image(p, step) or settings.image,
        "command": ["python3", "-m", STEP_MODULE, "--archive", archive],
        "args": ["--executor_input", "{{$}}", "--config", _arg_json(config)],
        "env": [{"name": k, "value": _env_value(v)} for k, v in env.items()],
    }
    resources = _resources(step)
    if resources:
        container["resources"] = resources
    return container


def _train_launcher(
    p: Pipeline,
    step: Step,
    image: str,
    settings: KubeflowSettings,
    compile_ctx: Mapping[str, Any],
    run_id: str,
    parent_run_id: str,
) -> dict[str, Any]:
    """A ``train:`` step's container: :mod:`jupyter_mlops.jobs.launcher` with the TrainJob
    of the step's job file (its parameters filled now), logging into the step's run."""
    from ...jobs.kube import launcher_manifest
    from ...jobs.spec import JobInvalid, load_job, resolve_params
    from ...tracking.errors import TrackingError

    where = f"step '{step.name}'"
    if step.outputs or step.inputs:
        field = "outputs" if step.outputs else "inputs"
        raise CompileError(
            f"{where}: {field}: a train step on Kubeflow runs as a TrainJob and exchanges no "
            "files with other steps (use object storage)"
        )
    if _needs_pod([step.parameters, step.env]):
        raise CompileError(
            f"{where}: parameters: run.*, pipeline.dir and steps.*.outputs templates are not "
            "available to a train step on Kubeflow"
        )
    try:
        spec = load_job(os.path.normpath(os.path.join(p.base_dir, step.path)))
        values = resolve_params(
            spec,
            {k: _fill(step, f"parameters.{k}", v, compile_ctx) for k, v in step.parameters.items()},
        )
    except JobInvalid as e:
        raise CompileError(f"{where}: {e.issues[0]}") from None
    except ValueError as e:
        raise CompileError(f"{where}: parameters: {e}") from None
    env = {
        **settings.env,
        **{k: str(_fill(step, f"env.{k}", v, compile_ctx)) for k, v in step.env.items()},
    }
    env["JUPYTER_MLOPS_PIPELINE_RUN_ID"] = parent_run_id
    env["JUPYTER_MLOPS_PIPELINE_STEP"] = step.name
    if step.resources:
        spec.resources = {**spec.resources, **step.resources}
    try:
        manifest = launcher_manifest(
            spec,
            values,
            run_id,
            image=step.image or spec.image or image,
            tracking={"JUPYTER_MLOPS_TRACKING_URI": settings.tracking_uri},
            runtime=settings.train_runtime,
            runtime_kind=settings.train_runtime_kind,
            queue=settings.train_queue,
            max_embedded_bytes=settings.max_embedded_bytes,
            env=env,
        )
    except TrackingError as e:
        raise CompileError(f"{where}: {e.message}") from None
    return {
        "image": image,
        "command": ["python3", "-m", "jupyter_mlops.jobs.launcher"],
        "args": ["--manifest", _arg_json(manifest)],
        "env": [
            {"name": "JUPYTER_MLOPS_TRACKING_URI", "value": _env_value(settings.tracking_uri)},
            {"name": "JUPYTER_MLOPS_RUN_ID", "value": run_id},
        ],
    }


def _platform_spec(
    settings: KubeflowSettings, executors: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Secrets as env through kfp-kubernetes' PlatformSpec (``secretName`` + ``keyToEnv``,
    the shape every KFP 2 backend reads; newer ones also accept ``secretNameParameter``)."""
    if not settings.secret_env:
        return None
    by_secret: dict[str, list[dict[str, str]]] = {}
    for var, (secret, key) in settings.secret_env.items():
        by_secret.setdefault(secret, []).append({"secretKey": key, "envVar": var})
    secret_as_env = [{"secretName": s, "keyToEnv": k} for s, k in sorted(by_secret.items())]
    return {
        "platforms": {
            "kubernetes": {
                "deploymentSpec": {
                    "executors": {
                        label: {"secretAsEnv": copy.deepcopy(secret_as_env)} for label in executors
                    }
                }
            }
        }
    }


# -- references -----------------------------------------------------------------------------
def check_references(spec: Mapping[str, Any]) -> list[str]:
    """Referential problems KFP finds only when a run is created: tasks naming a missing
    component (``componentRef``), a missing task (``dependentTasks``, an artifact's
    ``producerTask``) or a root input that is not declared, and components whose
    ``executorLabel`` has no executor. Empty when the spec is consistent."""
    if "pipeline_spec" in spec and "root" not in spec:
        spec = spec["pipeline_spec"]
    problems: list[str] = []
    components = spec.get("components") or {}
    executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
    root = spec.get("root") or {}
    tasks = (root.get("dag") or {}).get("tasks") or {}
    root_params = (root.get("inputDefinitions") or {}).get("parameters") or {}
    if not tasks:
        problems.append("root.dag.tasks is empty")
    for tname, task in tasks.items():
        ref = (task.get("componentRef") or {}).get("name")
        if ref not in components:
            problems.append(f"task '{tname}': cannot find component ref name={ref}")
        for dep in task.get("dependentTasks") or []:
            if dep not in tasks:
                problems.append(f"task '{tname}': dependentTasks names unknown task '{dep}'")
        inputs = task.get("inputs") or {}
        declared = (components.get(ref) or {}).get("inputDefinitions") or {}
        for pname, source in (inputs.get("parameters") or {}).items():
            if ref in components and pname not in (declared.get("parameters") or {}):
                problems.append(
                    f"task '{tname}': input parameter '{pname}' is not declared by "
                    f"component '{ref}'"
                )
            root_name = source.get("componentInputParameter")
            if root_name is not None and root_name not in root_params:
                problems.append(
                    f"task '{tname}': parameter '{pname}' reads root input "
                    f"'{root_name}', which is not declared"
                )
        for aname, source in (inputs.get("artifacts") or {}).items():
            if ref in components and aname not in (declared.get("artifacts") or {}):
                problems.append(
                    f"task '{tname}': input artifact '{aname}' is not declared by component '{ref}'"
                )
            out = source.get("taskOutputArtifact") or {}
            producer = out.get("producerTask")
            if producer not in tasks:
                problems.append(
                    f"task '{tname}': artifact '{aname}' comes from unknown task '{producer}'"
                )
                continue
            pref = (tasks[producer].get("componentRef") or {}).get("name")
            produced = ((components.get(pref) or {}).get("outputDefinitions") or {}).get(
                "artifacts"
            ) or {}
            if pref in components and out.get("outputArtifactKey") not in produced:
                problems.append(
                    f"task '{tname}': artifact '{aname}' reads output "
                    f"'{out.get('outputArtifactKey')}', which task '{producer}' "
                    "does not produce"
                )
    for cname, comp in components.items():
        label = comp.get("executorLabel")
        if label is not None and label not in executors:
            problems.append(
                f"component '{cname}': executor(label={label}) not found in deployment config"
            )
    return problems
