"""The rest of MLflow's fluent tracking API (``mlflow.<name>``), same names and signatures.

:mod:`.fluent` holds the core (runs, logging, artifacts); this module adds inputs
(datasets), tables, restores, experiment tags, parent runs, the registry's search and
tag functions, logged models, and the functions that delegate to the ``mlflow`` package
where MLflow's own code is the honest implementation (``autolog``, ``evaluate``).
``tests/client/test_fluent_surface.py`` compares this surface with mlflow's.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from typing import TYPE_CHECKING, Any

from ..tracking.entities import TAG_DATASET_CONTEXT, TAG_PARENT_RUN_ID, Experiment, Run
from ..tracking.errors import TrackingError, invalid
from . import fluent, uris
from .fluent import _client, _plain_auth_errors, _target
from .fluent_names import FLUENT_EXTRA

if TYPE_CHECKING:
    import pandas as pd

    from ..registry.client import LoggedModel, ModelVersion, RegisteredModel, RegistryClient

log = logging.getLogger(__name__)


# -- inputs (datasets) ---------------------------------------------------------------
def _dataset_entity(dataset: Any) -> dict[str, Any]:
    """MLflow's ``Dataset`` JSON of a dataset object: an ``mlflow.data`` dataset (made by
    ``mlflow.data.from_pandas`` and the like), a dataset entity (ours or mlflow's), or a
    plain dict with the entity's fields."""
    if isinstance(dataset, dict):
        return dataset
    to_entity = getattr(dataset, "_to_mlflow_entity", None)
    if to_entity is not None:
        dataset = to_entity()
    fields = ("name", "digest", "source_type", "source", "schema", "profile")
    return {k: getattr(dataset, k) for k in fields if getattr(dataset, k, None) is not None}


def _model_id(model: Any) -> str:
    return model if isinstance(model, str) else str(model.model_id)


@_plain_auth_errors
def log_input(
    dataset: Any = None,
    context: str | None = None,
    tags: dict[str, str] | None = None,
    model: Any = None,
) -> None:
    """Record that the active run used ``dataset`` (``context``: ``training``, ``eval``,
    ...), and/or a logged model (``LoggedModelInput`` or id). Queued: returns at once."""
    log_inputs(
        datasets=[dataset] if dataset is not None else None,
        contexts=[context],
        tags_list=[tags],
        models=[model] if model is not None else None,
    )


@_plain_auth_errors
def log_inputs(
    datasets: list[Any] | None = None,
    contexts: list[str | None] | None = None,
    tags_list: list[dict[str, str] | None] | None = None,
    models: list[Any] | None = None,
) -> None:
    """:func:`log_input` for several datasets at once; ``contexts`` and ``tags_list``
    pair up with ``datasets`` by position."""
    client, rid = _target(None)
    inputs = []
    for i, dataset in enumerate(datasets or ()):
        if dataset is None:
            continue
        tags = (tags_list[i] if tags_list and i < len(tags_list) else None) or {}
        context = contexts[i] if contexts and i < len(contexts) else None
        tag_list = [{"key": str(k), "value": str(v)} for k, v in tags.items()]
        if context:
            tag_list.append({"key": TAG_DATASET_CONTEXT, "value": context})
        inputs.append({"dataset": _dataset_entity(dataset), "tags": tag_list})
    model_ids = [_model_id(m) for m in models or () if m is not None]
    if inputs or model_ids:
        client.log_inputs(rid, inputs, model_ids)


# -- runs and experiments ---------------------------------------------------------------
@_plain_auth_errors
def restore_run(run_id: str) -> None:
    """Restore a deleted run (lifecycle ``active`` again)."""
    _client().restore_run(run_id)


@_plain_auth_errors
def restore_experiment(experiment_id: str) -> None:
    """Restore a deleted experiment and its runs."""
    _client().restore_experiment(experiment_id)


def _active_experiment_id() -> str:
    run = fluent.active_run()
    if run is not None:
        return run.info.experiment_id
    return fluent._current_experiment_id(_client())


@_plain_auth_errors
def set_experiment_tag(key: str, value: Any) -> None:
    """Set a tag on the active experiment."""
    _client().set_experiment_tag(_active_experiment_id(), key, value)


@_plain_auth_errors
def set_experiment_tags(tags: dict[str, Any]) -> None:
    """Set tags on the active experiment."""
    client, exp_id = _client(), _active_experiment_id()
    for key, value in tags.items():
        client.set_experiment_tag(exp_id, key, value)


@_plain_auth_errors
def delete_experiment_tag(key: str) -> None:
    """Delete a tag of the active experiment."""
    _client().store.delete_experiment_tag(_active_experiment_id(), key)


@_plain_auth_errors
def get_parent_run(run_id: str) -> Run | None:
    """The run's parent (tag ``mlflow.parentRunId``), or None for a top-level run."""
    client = _client()
    parent = client.get_run(run_id).data.tags.get(TAG_PARENT_RUN_ID)
    return client.get_run(parent) if parent else None


def is_tracking_uri_set() -> bool:
    """True when a tracking URI was set (``set_tracking_uri`` or the environment)."""
    return bool(
        uris._explicit_uri
        or os.environ.get("JUPYTER_MLOPS_TRACKING_URI")
        or os.environ.get("MLFLOW_TRACKING_URI")
    )


def flush_artifact_async_logging() -> None:
    """Artifacts are written when logged; this waits for queued data like :func:`flush`."""
    fluent.flush()


# -- artifacts: streams and tables --------------------------------------------------------
@_plain_auth_errors
def log_stream(stream: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Write a binary stream's contents as ``artifact_file`` of the run."""
    client, rid = _target(run_id)
    client.log_bytes(rid, stream.read(), artifact_file)


#: Run tag listing the run's logged tables (MLflow's ``mlflow.loggedArtifacts``).
TAG_LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"


@_plain_auth_errors
def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a dict of columns or a pandas DataFrame as a JSON table (MLflow's format:
    ``{"columns": [...], "data": [[...], ...]}``); a table already at that path gets the
    new rows appended. :func:`load_table` reads tables back across runs."""
    import pandas as pd

    if not artifact_file.endswith(".json"):
        raise invalid(f"Invalid artifact file {artifact_file!r}: a table is a '.json' file.")
    df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    client, rid = _target(run_id)
    repo = client._repo(rid)
    if repo.exists(artifact_file):
        with repo.open(artifact_file) as f:
            old = _table_frame(json.loads(f.read()))
        df = pd.concat([old, df], ignore_index=True)
    client.log_bytes(rid, df.to_json(orient="split", index=False).encode("utf-8"), artifact_file)
    run = client.get_run(rid)
    listed = json.loads(run.data.tags.get(TAG_LOGGED_ARTIFACTS) or "[]")
    entry = {"path": artifact_file, "type": "table"}
    if entry not in listed:
        listed.append(entry)
        client.set_tag(rid, TAG_LOGGED_ARTIFACTS, json.dumps(listed), synchronous=True)


def _table_frame(doc: dict[str, Any]) -> Any:
    import pandas as pd

    return pd.DataFrame(doc.get("data") or [], columns=doc.get("columns"))


@_plain_auth_errors
def load_table(
    artifact_file: str, run_ids: list[str] | None = None, extra_columns: list[str] | None = None
) -> pd.DataFrame:
    """The table ``artifact_file`` of these runs (default: every run of the active
    experiment that logged it) as one DataFrame; ``extra_columns`` (``run_id``, ...)
    add the run's attributes as columns."""
    import pandas as pd

    client = _client()
    if run_ids is None:
        runs = client.search_all_runs([_active_experiment_id()], "", "ACTIVE_ONLY", 100_000, None)
    else:
        runs = [client.get_run(r) for r in run_ids]
    frames = []
    for run in runs:
        listed = json.loads(run.data.tags.get(TAG_LOGGED_ARTIFACTS) or "[]")
        if run_ids is None and {"path": artifact_file, "type": "table"} not in listed:
            continue
        repo = client._repo(run.info.run_id)
        if not repo.exists(artifact_file):
            continue
        with repo.open(artifact_file) as f:
            df = _table_frame(json.loads(f.read()))
        for col in extra_columns or ():
            value = getattr(run.info, col, None)
            if value is None:
                raise invalid(f"Invalid extra column {col!r}: runs have no attribute {col!r}.")
            df[col] = value
        frames.append(df)
    if not frames:
        raise TrackingError(
            f"No runs found with the corresponding table artifact {artifact_file!r}.",
            "RESOURCE_DOES_NOT_EXIST",
        )
    return pd.concat(frames, ignore_index=True)


# -- registry -----------------------------------------------------------------------------
_registry_uri: str | None = None


def set_registry_uri(uri: str) -> None:
    """Use this store for the registry calls (default: the tracking store)."""
    global _registry_uri
    _registry_uri = uris.normalize_uri(os.fspath(uri)) if uri is not None else None


def get_registry_uri() -> str:
    """The registry's store: set_registry_uri, ``MLFLOW_REGISTRY_URI``, else the
    tracking URI."""
    return _registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or fluent.get_tracking_uri()


def _registry() -> RegistryClient:
    from ..registry.client import RegistryClient

    return RegistryClient(get_registry_uri())


def _all_pages(fetch: Any, max_results: int | None, page: int) -> list[Any]:
    out: list[Any] = []
    token = None
    while max_results is None or len(out) < max_results:
        size = page if max_results is None else min(page, max_results - len(out))
        got = fetch(size, token)
        out.extend(got)
        token = got.token
        if not token:
            break
    return out


@_plain_auth_errors
def search_registered_models(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[RegisteredModel]:
    """Registered models matching MLflow's registry filter, every page."""
    reg = _registry()
    return _all_pages(
        lambda n, t: reg.search_registered_models(filter_string, n, order_by, t),
        max_results,
        100,
    )


@_plain_auth_errors
def search_model_versions(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[ModelVersion]:
    """Model versions matching MLflow's registry filter, every page."""
    reg = _registry()
    return _all_pages(
        lambda n, t: reg.search_model_versions(filter_string, n, order_by, t),
        max_results,
        10_000,
    )


@_plain_auth_errors
def set_model_version_tag(
    name: str, version: str | None = None, key: str | None = None, value: Any = None
) -> None:
    """Set a tag on a model version."""
    if version is None:
        raise invalid("The model version must be given (version=...).")
    if key is None:
        raise invalid("A tag key must be given (key=...).")
    _registry().set_model_version_tag(name, version, key, "" if value is None else value)


# -- logged models (MLflow 3) ---------------------------------------------------------------
_active_model_id: str | None = None
note_logged_model = fluent.note_logged_model


@_plain_auth_errors
def initialize_logged_model(
    name: str | None = None,
    source_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    model_type: str | None = None,
    experiment_id: str | None = None,
) -> LoggedModel:
    """Create a logged model (status PENDING) in the active experiment, from the active run
    unless ``source_run_id`` says otherwise; :func:`finalize_logged_model` settles it."""
    run = fluent.active_run()
    if source_run_id is None and run is not None:
        source_run_id = run.info.run_id
    exp_id = experiment_id or (run.info.experiment_id if run else _active_experiment_id())
    model = _registry().create_logged_model(
        exp_id,
        name=name,
        source_run_id=source_run_id,
        tags=tags,
        params=params,
        model_type=model_type,
    )
    note_logged_model(model.model_id)
    return model


@_plain_auth_errors
def create_external_model(
    name: str | None = None,
    source_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    model_type: str | None = None,
    experiment_id: str | None = None,
) -> LoggedModel:
    """A logged model whose files live elsewhere (tag ``mlflow.model.isExternal``), READY at
    once and made the active model."""
    model = initialize_logged_model(
        name,
        source_run_id,
        {**(tags or {}), "mlflow.model.isExternal": "true"},
        params,
        model_type,
        experiment_id,
    )
    model = finalize_logged_model(model.model_id, "READY")
    _set_active_model_id(model.model_id)
    return model


@_plain_auth_errors
def finalize_logged_model(model_id: str, status: Any) -> LoggedModel:
    """Settle a logged model: ``READY`` or ``FAILED`` (or a ``LoggedModelStatus``)."""
    return _registry().finalize_logged_model(model_id, status)


@_plain_auth_errors
def get_logged_model(model_id: str) -> LoggedModel:
    return _registry().get_logged_model(model_id)


@_plain_auth_errors
def last_logged_model() -> LoggedModel | None:
    """The last logged model this process created, fetched fresh; None if none."""
    last = fluent._last_logged_model_id
    return get_logged_model(last) if last else None


@_plain_auth_errors
def search_logged_models(
    experiment_ids: list[str] | None = None,
    filter_string: str | None = None,
    datasets: list[dict[str, str]] | None = None,
    max_results: int | None = None,
    order_by: list[dict[str, Any]] | None = None,
    output_format: str = "pandas",
) -> list[LoggedModel] | pd.DataFrame:
    """Logged models of these experiments (default: the active one) matching MLflow's
    filter; a DataFrame, or ``output_format="list"`` for LoggedModel objects."""
    if output_format not in ("pandas", "list"):
        raise invalid(f"Unsupported output format {output_format!r}: use 'pandas' or 'list'")
    reg = _registry()
    ids = [str(e) for e in (experiment_ids or [_active_experiment_id()])]
    models = _all_pages(
        lambda n, t: reg.search_logged_models(ids, filter_string, n, order_by, t, datasets),
        max_results,
        100,
    )
    if output_format == "list":
        return models
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "model_id": m.model_id,
                "name": m.name,
                "experiment_id": m.experiment_id,
                "artifact_location": m.artifact_location,
                "creation_timestamp": m.creation_timestamp,
                "last_updated_timestamp": m.last_updated_timestamp,
                "status": m.status,
                "model_type": m.model_type,
                "source_run_id": m.source_run_id,
                "tags": m.tags,
                "params": m.params,
                "metrics": m.metrics,
            }
            for m in models
        ]
    )


@_plain_auth_errors
def set_logged_model_tags(model_id: str, tags: dict[str, Any]) -> None:
    _registry().set_logged_model_tags(model_id, tags)


@_plain_auth_errors
def delete_logged_model_tag(model_id: str, key: str) -> None:
    _registry().delete_logged_model_tag(model_id, key)


@_plain_auth_errors
def log_model_params(params: dict[str, str], model_id: str | None = None) -> None:
    """Log params on a logged model (default: the active model, else the last logged)."""
    model_id = model_id or _active_model_id or fluent._last_logged_model_id
    if model_id is None:
        raise invalid("No model to log params to: pass model_id=, or set an active model.")
    _registry().log_model_params(model_id, params)


@_plain_auth_errors
def log_outputs(models: list[Any] | None = None) -> None:
    """Link logged models (``LoggedModelOutput``s: ``model_id``, ``step``) to the active run
    as its outputs."""
    client, rid = _target(None)
    client.flush()
    _registry().log_outputs(rid, list(models or ()))


def _set_active_model_id(model_id: str | None) -> None:
    global _active_model_id
    _active_model_id = model_id


class ActiveModel:
    """What :func:`set_active_model` returns: the logged model (its attributes) and a
    context manager that restores the previous active model on exit."""

    def __init__(self, model: LoggedModel, previous: str | None) -> None:
        self._model = model
        self._previous = previous

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __enter__(self) -> ActiveModel:
        return self

    def __exit__(self, *exc: Any) -> None:
        _set_active_model_id(self._previous)

    def __repr__(self) -> str:
        return f"<ActiveModel: model_id={self._model.model_id!r}, name={self._model.name!r}>"


@_plain_auth_errors
def set_active_model(*, name: str | None = None, model_id: str | None = None) -> ActiveModel:
    """Make a logged model the active one (by id, or by name in the active experiment,
    created if there is none); metrics of later ``log_model`` calls link to it."""
    if (name is None) == (model_id is None):
        raise invalid("Exactly one of name= or model_id= must be given.")
    previous = _active_model_id
    if model_id is not None:
        model = get_logged_model(model_id)
    else:
        found = _registry().search_logged_models(
            [_active_experiment_id()],
            f"name = '{name}'",
            1,
            [{"field_name": "creation_time", "ascending": False}],
            None,
        )
        model = found[0] if found else initialize_logged_model(name=name)
    _set_active_model_id(model.model_id)
    return ActiveModel(model, previous)


def get_active_model_id() -> str | None:
    return _active_model_id or os.environ.get("MLFLOW_ACTIVE_MODEL_ID") or None


def clear_active_model() -> None:
    _set_active_model_id(None)


# -- MLflow's own code, logging into our runs (client/mlflow_bridge.py) ----------------------
def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    log_traces: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, str] | None = None,
    exclude_flavors: list[str] | None = None,
) -> None:
    """MLflow's autologging for every framework MLflow supports (scikit-learn, PyTorch
    Lightning, Keras, XGBoost, LightGBM, ...), logging into the active jupyter-mlops run
    (or a new run of the active experiment) through the non-blocking writer. Needs the
    ``mlflow`` package; it points mlflow's fluent API at this store for the process."""
    from . import mlflow_bridge

    mlflow = mlflow_bridge.connect()
    mlflow.autolog(
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        log_models=log_models,
        log_datasets=log_datasets,
        log_traces=log_traces,
        disable=disable,
        exclusive=exclusive,
        disable_for_unsupported_versions=disable_for_unsupported_versions,
        silent=silent,
        extra_tags=extra_tags,
        exclude_flavors=exclude_flavors,
    )


def evaluate(
    model: Any = None,
    data: Any = None,
    *,
    model_type: str | None = None,
    targets: Any = None,
    predictions: str | None = None,
    dataset_path: str | None = None,
    feature_names: list[str] | None = None,
    evaluators: Any = None,
    evaluator_config: dict[str, Any] | None = None,
    extra_metrics: list[Any] | None = None,
    custom_artifacts: list[Any] | None = None,
    env_manager: str = "local",
    model_config: Any = None,
    inference_params: dict[str, Any] | None = None,
    model_id: str | None = None,
) -> Any:
    """MLflow's ``evaluate`` (metrics, artifacts, the evaluation dataset as an input),
    logged into the active jupyter-mlops run (or a new one). Takes mlflow's arguments
    (``model_type=``, ``targets=``, ``predictions=``, ``evaluators=``, ...) and returns its
    ``EvaluationResult``. Needs the ``mlflow`` package."""
    from . import mlflow_bridge

    mlflow = mlflow_bridge.connect()
    fluent.flush()
    result = mlflow.evaluate(
        model,
        data,
        model_type=model_type,
        targets=targets,
        predictions=predictions,
        dataset_path=dataset_path,
        feature_names=feature_names,
        evaluators=evaluators,
        evaluator_config=evaluator_config,
        extra_metrics=extra_metrics,
        custom_artifacts=custom_artifacts,
        env_manager=env_manager,
        model_config=model_config,
        inference_params=inference_params,
        model_id=model_id,
    )
    fluent.flush()
    return result


def validate_evaluation_results(
    validation_thresholds: dict[str, Any],
    candidate_result: Any,
    baseline_result: Any = None,
) -> None:
    """MLflow's check of evaluation results against thresholds (raises when one fails)."""
    from . import mlflow_bridge

    mlflow = mlflow_bridge.require_mlflow("validate_evaluation_results")
    mlflow.validate_evaluation_results(validation_thresholds, candidate_result, baseline_result)


_SYSTEM_METRICS = (
    "enable_system_metrics_logging",
    "disable_system_metrics_logging",
    "set_system_metrics_node_id",
    "set_system_metrics_samples_before_logging",
    "set_system_metrics_sampling_interval",
)

__all__ = list(FLUENT_EXTRA)  # the package's lazy-attribute table reads the same list
_ = (Experiment, posixpath)
