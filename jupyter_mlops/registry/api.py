"""``log_model``, ``load_model`` and ``register_model``: MLflow's fluent model API.

Model URIs: ``runs:/<run_id>/<path>`` (the run's artifacts, or MLflow 3's logged
model of that name and run, stored under ``<experiment>/models/<model_id>/artifacts``),
``models:/<name>/<version>``, ``models:/<name>/<stage>``, ``models:/<name>/latest``,
``models:/<name>@<alias>``, ``models:/m-<model_id>``, any artifact URI
(``mlflow-artifacts:/...``, ``s3://...``) and local directories.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..tracking.errors import TrackingError, invalid, not_found
from .client import ModelVersion, RegistryClient
from .pyfunc import PyFuncModel


@dataclass
class ModelInfo:
    """What ``log_model`` returns (MLflow 3's field names: ``model_uri`` is
    ``models:/<model_id>``, ``artifact_path`` the logged model's artifact URI)."""

    artifact_path: str
    model_uri: str
    run_id: str
    flavors: dict[str, Any]
    model_id: str = ""
    name: str = ""
    signature: dict[str, Any] | None = None
    saved_input_example_info: dict[str, Any] | None = None
    registered_model_version: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def model_uuid(self) -> str:
        return self.model_id


def _registry(tracking_uri: str | None = None) -> RegistryClient:
    return RegistryClient(tracking_uri)


#: Run tags copied onto a logged model, as MLflow 3 resolves its context tags.
_CONTEXT_TAGS = (
    "mlflow.user",
    "mlflow.source.name",
    "mlflow.source.type",
    "mlflow.source.git.commit",
    "mlops.source.notebook_path",
)


def log_model(
    model: Any,
    name: str,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    registered_model_name: str | None = None,
    *,
    serialization_format: str | None = None,
    artifacts: dict[str, str] | None = None,
    run_id: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
) -> ModelInfo:
    """Log ``model`` as MLflow 3 does: a logged model ``m-<id>`` in the run's
    experiment (the active run, started if needed), linked to the run as an
    output at ``step``, its files in MLflow's format under
    ``<experiment>/models/<model_id>/artifacts``; optionally registered.

    The logged model carries the run's params (plus ``params``) and the run's
    source tags (plus ``tags``); it is ``LOGGED_MODEL_READY`` once its files are
    written (``LOGGED_MODEL_UPLOAD_FAILED`` if writing them failed).
    scikit-learn estimators get the ``sklearn`` + ``python_function`` flavors;
    other objects with ``predict`` (or :class:`~.pyfunc.PythonModel` subclasses)
    the ``python_function`` flavor.
    """
    from ..client import fluent
    from .flavors import save_model

    if not name or "/" in name or name in (".", ".."):
        raise invalid(f"Invalid model name '{name}': a name without '/' is needed.")
    tmp = tempfile.mkdtemp(prefix="mlops-model-")
    try:
        # Saved before the logged model is created, so a model that cannot be
        # saved leaves no record behind; ids are filled in below.
        mlmodel = save_model(
            model,
            tmp,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            serialization_format=serialization_format,
            artifacts=artifacts,
        )
        client, rid = fluent._target(run_id)
        run = client.get_run(rid)  # flushes: the run and its params are in the store
        rid = run.info.run_id
        backend = _registry(client.tracking_uri).backend
        model_tags = {k: v for k, v in run.data.tags.items() if k in _CONTEXT_TAGS}
        model_tags.update({k: str(v) for k, v in (tags or {}).items()})
        model_params = {**run.data.params, **{k: str(v) for k, v in (params or {}).items()}}
        try:
            logged = backend.create_logged_model(
                run.info.experiment_id,
                name,
                rid,
                model_type,
                model_params or None,
                model_tags or None,
            )["info"]
            from ..client.fluent import note_logged_model

            note_logged_model(logged["model_id"])
        except TrackingError as e:
            if e.error_code not in _NO_LOGGED_MODELS:
                raise
            # A server without MLflow 3's logged models (an MLflow 2 server): the
            # model goes among the run's artifacts.
            info = _log_model_as_run_artifacts(client, rid, name, tmp, mlmodel)
        else:
            info = _log_model_files(client, backend, logged, rid, int(step), name, tmp, mlmodel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if registered_model_name:
        mv = _register(info.model_uri, registered_model_name, tracking_uri=client.tracking_uri)
        info.registered_model_version = mv.version
    return info


#: What a tracking server without logged-model endpoints answers.
_NO_LOGGED_MODELS = ("ENDPOINT_NOT_FOUND", "NOT_IMPLEMENTED")


def _log_model_files(
    client: Any,
    backend: Any,
    logged: dict[str, Any],
    run_id: str,
    step: int,
    name: str,
    model_dir: str,
    mlmodel: dict[str, Any],
) -> ModelInfo:
    """Link the logged model to its run, write its files where MLflow 3 puts
    them, and mark it READY (UPLOAD_FAILED if the files could not be written)."""
    from .model_format import write_mlmodel

    model_id, location = logged["model_id"], logged["artifact_uri"]
    backend.log_outputs(run_id, [(model_id, step)])
    mlmodel.update(run_id=run_id, artifact_path=location, model_id=model_id, model_uuid=model_id)
    write_mlmodel(model_dir, mlmodel)
    try:
        client.log_artifacts_to(location, model_dir)
    except BaseException:
        backend.finalize_logged_model(model_id, "LOGGED_MODEL_UPLOAD_FAILED")
        raise
    backend.finalize_logged_model(model_id, "LOGGED_MODEL_READY")
    return ModelInfo(
        artifact_path=location,
        model_uri=f"models:/{model_id}",
        run_id=run_id,
        flavors=mlmodel["flavors"],
        model_id=model_id,
        name=name,
        signature=mlmodel.get("signature"),
        saved_input_example_info=mlmodel.get("saved_input_example_info"),
        metadata=mlmodel,
    )


def _log_model_as_run_artifacts(
    client: Any, run_id: str, name: str, model_dir: str, mlmodel: dict[str, Any]
) -> ModelInfo:
    """The layout before MLflow 3: the model directory as the run's artifacts
    ``<name>/`` (``runs:/<run_id>/<name>`` loads and registers it)."""
    from .model_format import write_mlmodel

    location = client.get_artifact_uri(run_id, name)
    mlmodel.update(run_id=run_id, artifact_path=location)
    write_mlmodel(model_dir, mlmodel)
    client.log_artifacts(run_id, model_dir, name)
    return ModelInfo(
        artifact_path=location,
        model_uri=f"runs:/{run_id}/{name}",
        run_id=run_id,
        flavors=mlmodel["flavors"],
        name=name,
        signature=mlmodel.get("signature"),
        saved_input_example_info=mlmodel.get("saved_input_example_info"),
        metadata=mlmodel,
    )


def register_model(
    model_uri: str,
    name: str,
    await_registration_for: int = 300,
    *,
    tags: dict[str, Any] | None = None,
    env_pack: Any = None,
) -> ModelVersion:
    """Create the registered model if needed and a new version pointing at ``model_uri``
    (MLflow's signature: versions are READY at once, so ``await_registration_for`` has
    nothing to wait for; ``env_pack``, Databricks model serving's, is refused)."""
    if env_pack is not None:
        raise TrackingError(
            "env_pack is for Databricks model serving; not supported here.",
            "INVALID_PARAMETER_VALUE",
        )
    return _register(model_uri, name, tags)


def _register(
    model_uri: str, name: str, tags: dict[str, Any] | None = None, tracking_uri: str | None = None
) -> ModelVersion:
    from ..client.fluent_extra import get_registry_uri

    reg = _registry(tracking_uri or get_registry_uri())
    try:
        reg.create_registered_model(name)
    except TrackingError as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    run_id = None
    model_id = None
    source = model_uri
    m = re.fullmatch(r"models:/(m-[0-9a-f]+)/?", model_uri)
    if m:  # a logged model: the version links to it and to the run that logged it
        model_id = m.group(1)
        run_id = reg.backend.get_logged_model(model_id)["info"].get("source_run_id")
    m = re.fullmatch(r"runs:/([^/]+)/?(.*)", model_uri)
    if m:
        run_id = m.group(1)
        path = m.group(2).strip("/")
        if not _run_has_model(reg, run_id, path):
            logged = _logged_model_of_run(reg, run_id, path)
            if logged is not None:  # MLflow 3 layout: point at the logged model
                model_id = logged["info"]["model_id"]
                source = f"models:/{model_id}"
    return reg.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)


def _run_has_model(reg: RegistryClient, run_id: str, path: str) -> bool:
    repo = reg.tracking._repo(run_id)
    try:
        return bool(repo.exists(posixpath.join(path, "MLmodel") if path else "MLmodel"))
    except Exception:  # noqa: BLE001 - unreadable store: treat as no model there
        return False


def _logged_model_of_run(reg: RegistryClient, run_id: str, name: str) -> dict[str, Any] | None:
    if not name or "/" in name:
        return None
    exp_id = reg.tracking.get_run(run_id).info.experiment_id
    token = None
    safe = name.replace("'", "\\'")
    while True:
        try:
            models, token = reg.backend.search_logged_models(
                [exp_id], f"name = '{safe}'", 100, (), token
            )
        except TrackingError as e:
            if e.error_code == "ENDPOINT_NOT_FOUND":
                return None
            raise
        for model in models:
            if model["info"].get("source_run_id") == run_id:
                return model
        if not token:
            return None


def resolve_model_uri(model_uri: str, tracking_uri: str | None = None) -> str:
    """The artifact URI (or local path) where the model's files are."""
    if model_uri.startswith("file://"):
        return model_uri[len("file://") :]
    if "://" not in model_uri and ":/" not in model_uri:
        return model_uri  # a local path
    reg = _registry(tracking_uri)
    m = re.fullmatch(r"runs:/([^/]+)/?(.*)", model_uri)
    if m:
        run_id, path = m.group(1), m.group(2).strip("/")
        if _run_has_model(reg, run_id, path):
            return reg.tracking.get_artifact_uri(run_id, path or None)
        logged = _logged_model_of_run(reg, run_id, path)
        if logged is None:
            raise not_found(
                f"No model at '{path}' in run {run_id}: neither run artifacts with "
                "an MLmodel file nor a logged model of that name."
            )
        return str(logged["info"]["artifact_uri"])
    m = re.fullmatch(r"models:/(m-[0-9a-f]+)/?", model_uri)
    if m:
        return str(reg.backend.get_logged_model(m.group(1))["info"]["artifact_uri"])
    m = re.fullmatch(r"models:/([^/@]+)@([^/]+)/?", model_uri)
    if m:
        mv = reg.get_model_version_by_alias(m.group(1), m.group(2))
        return reg.get_model_version_download_uri(mv.name, mv.version)
    m = re.fullmatch(r"models:/([^/]+)/([^/]+)/?", model_uri)
    if m:
        name, which = m.group(1), m.group(2)
        if which.isdigit():
            return reg.get_model_version_download_uri(name, which)
        if which.lower() == "latest":
            versions = reg.get_latest_versions(name)
        else:
            versions = reg.get_latest_versions(name, [which])
        if not versions:
            raise not_found(f"No versions of model '{name}' in stage '{which}'.")
        latest = max(versions, key=lambda v: int(v.version))
        return reg.get_model_version_download_uri(name, latest.version)
    if model_uri.startswith("models:/"):
        raise invalid(
            f"Invalid model URI '{model_uri}': use models:/<name>/<version|stage|"
            "latest>, models:/<name>@<alias> or models:/m-<model_id>."
        )
    return model_uri  # an artifact URI


def download_model(
    model_uri: str, dst_path: str | None = None, tracking_uri: str | None = None
) -> str:
    """A local directory holding the model's files."""
    location = resolve_model_uri(model_uri, tracking_uri)
    if "://" not in location and ":/" not in location:
        if not os.path.isdir(location):
            raise not_found(f"No model directory at '{location}'.")
        return location
    from ..client.mlops_client import MlopsClient

    repo = MlopsClient(tracking_uri).store.artifact_repo(location)
    dst = dst_path or tempfile.mkdtemp(prefix="mlops-model-")

    def fetch(path: str) -> None:
        for fi in repo.list(path):
            local = os.path.join(dst, *fi.path.split("/"))
            if fi.is_dir:
                os.makedirs(local, exist_ok=True)
                fetch(fi.path)
            else:
                os.makedirs(os.path.dirname(local), exist_ok=True)
                with repo.open(fi.path) as src, open(local, "wb") as out:
                    shutil.copyfileobj(src, out)

    fetch("")
    if not os.path.exists(os.path.join(dst, "MLmodel")):
        raise not_found(f"'{model_uri}' ({location}) holds no MLmodel file.")
    return dst


def load_model(
    model_uri: str, dst_path: str | None = None, tracking_uri: str | None = None
) -> PyFuncModel:
    """Load a model (MLflow's format, logged by jupyter-mlops or by mlflow) as an
    object with ``predict``."""
    from .flavors import load_model_dir

    return load_model_dir(download_model(model_uri, dst_path, tracking_uri))
