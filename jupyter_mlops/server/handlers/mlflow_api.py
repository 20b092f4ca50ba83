"""MLflow's tracking REST API (``api/2.0/mlflow/...``): same fields, answers and errors.

Each function reads its fields, calls the store and returns MLflow's response
object; :class:`~.base.RpcHandler` does the rest. Limits that belong to the
REST API rather than the store (batch sizes, the 1 MB log-batch body,
``max_results`` caps) are enforced here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ...tracking.entities import ACTIVE_ONLY, ALL, DELETED_ONLY, RUN_STATUSES, Metric
from ...tracking.errors import TrackingError, invalid, not_found
from ..request import Fields, bad_value, check_experiment_id

if TYPE_CHECKING:
    from ...tracking.store import TrackingStore

# Limits of MLflow's REST API (mlflow/utils/validation.py, handlers.py).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_LOG_REQUEST_SIZE = int(1e6)
SEARCH_RUNS_MAX_RESULTS = 50000
# Widths of the runs table's columns (MLflow's too): longer values are refused, not cut.
MAX_RUN_NAME_LENGTH = 250
MAX_USER_ID_LENGTH = 256
SEARCH_EXPERIMENTS_MAX_RESULTS = 50000

VIEW_TYPES = {
    "ACTIVE_ONLY": ACTIVE_ONLY,
    "DELETED_ONLY": DELETED_ONLY,
    "ALL": ALL,
    "1": ACTIVE_ONLY,
    "2": DELETED_ONLY,
    "3": ALL,
}
STATUSES = {s: s for s in RUN_STATUSES} | {
    "1": "RUNNING",
    "2": "SCHEDULED",
    "3": "FINISHED",
    "4": "FAILED",
    "5": "KILLED",
}


def known_id_range(experiment_id: str) -> bool:
    """False for ids no experiment can have (beyond int64): they match nothing."""
    try:
        check_experiment_id(experiment_id)
        return True
    except TrackingError:
        return False


def _run_id(f: Fields) -> str:
    """``run_id`` of a JSON body: a string, as MLflow's ``_assert_string`` wants (a number is
    INVALID_PARAMETER_VALUE there, not a run that does not exist)."""
    if not f.query:
        for name in ("run_id", "run_uuid"):
            raw = f.data.get(name)
            if raw is not None and not isinstance(raw, str):
                raise bad_value(name, raw)
    return f.run_id()


def _paged(key: str, items: list[Any], token: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if items:
        out[key] = [i.to_dict() for i in items]
    if token:
        out["next_page_token"] = token
    return out


# -- experiments -------------------------------------------------------------
def create_experiment(f: Fields, store: TrackingStore) -> dict[str, Any]:
    name = f.string("name", required=True)
    location = f.string("artifact_location")
    if location and "://" not in location and not location.startswith(("/", "mlflow-artifacts:")):
        # MLflow's server makes a relative local path absolute (against its working directory)
        location = os.path.abspath(location)
    tags = f.tag_dict()
    return {"experiment_id": store.create_experiment(name or "", location, tags or None)}


def get_experiment(f: Fields, store: TrackingStore) -> dict[str, Any]:
    exp = store.get_experiment(f.experiment_id() or "")
    return {"experiment": exp.to_dict()}


def get_experiment_by_name(f: Fields, store: TrackingStore) -> dict[str, Any]:
    name = f.string("experiment_name", required=True)
    exp = store.get_experiment_by_name(name or "")
    if exp is None:
        raise not_found(f"Could not find experiment with name '{name}'")
    return {"experiment": exp.to_dict()}


def search_experiments(f: Fields, store: TrackingStore) -> dict[str, Any]:
    exps, token = store.search_experiments(
        view_type=f.enum("view_type", VIEW_TYPES, ACTIVE_ONLY) or ACTIVE_ONLY,
        max_results=f.integer(
            "max_results", default=1000, minimum=1, maximum=SEARCH_EXPERIMENTS_MAX_RESULTS
        )
        or 1000,
        filter_string=f.string("filter"),
        order_by=f.strings("order_by") or None,
        page_token=f.string("page_token"),
    )
    return _paged("experiments", exps, token)


def update_experiment(f: Fields, store: TrackingStore) -> dict[str, Any]:
    exp_id = f.experiment_id() or ""
    store.rename_experiment(exp_id, f.string("new_name", required=True) or "")
    return {}


def delete_experiment(f: Fields, store: TrackingStore) -> dict[str, Any]:
    store.delete_experiment(f.experiment_id() or "")
    return {}


def restore_experiment(f: Fields, store: TrackingStore) -> dict[str, Any]:
    store.restore_experiment(f.experiment_id() or "")
    return {}


def set_experiment_tag(f: Fields, store: TrackingStore) -> dict[str, Any]:
    exp_id = f.experiment_id() or ""
    store.set_experiment_tag(exp_id, f.string("key", required=True) or "", f.text("value"))
    return {}


def delete_experiment_tag(f: Fields, store: TrackingStore) -> dict[str, Any]:
    exp_id = f.experiment_id() or ""
    store.delete_experiment_tag(exp_id, f.string("key", required=True) or "")
    return {}


# -- runs --------------------------------------------------------------------
def create_run_fields(f: Fields, store: TrackingStore, run_id: str | None = None) -> dict:
    """``runs/create`` (and ``api/v1/runs/create``, which adds ``run_id``)."""
    run = store.create_run(
        experiment_id=f.experiment_id() or "",
        user_id=f.text("user_id", max_length=MAX_USER_ID_LENGTH),
        start_time=f.integer("start_time"),
        tags=f.tag_dict() or None,
        run_name=f.string("run_name", max_length=MAX_RUN_NAME_LENGTH),
        run_id=run_id,
    )
    return {"run": run.to_dict()}


def create_run(f: Fields, store: TrackingStore) -> dict[str, Any]:
    return create_run_fields(f, store)


def get_run(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run = store.get_run(f.run_id()).to_dict()
    engine = getattr(store, "engine", None)
    if engine is not None:  # MLflow 3: the models the run logged
        from ...registry.logged_models import run_outputs

        outputs = run_outputs(engine, run["info"]["run_id"])
        if outputs:
            run["outputs"] = {"model_outputs": outputs}
    return {"run": run}


def update_run(f: Fields, store: TrackingStore) -> dict[str, Any]:
    info = store.update_run_info(
        _run_id(f),
        status=f.enum("status", STATUSES),
        end_time=f.integer("end_time"),
        run_name=f.string("run_name", max_length=MAX_RUN_NAME_LENGTH),
    )
    return {"run_info": info.to_dict()}


def delete_run(f: Fields, store: TrackingStore) -> dict[str, Any]:
    store.delete_run(_run_id(f))
    return {}


def restore_run(f: Fields, store: TrackingStore) -> dict[str, Any]:
    store.restore_run(_run_id(f))
    return {}


def data_keys(f: Fields) -> dict[str, list[str]] | None:
    """Ours, beside MLflow's fields: ``"data_keys": {"params": [..], "metrics": [..],
    "tags": [..]}``, the keys of each kind named the runs carry (the runs table asks
    for the columns it shows). MLflow's clients never send it and get every key."""
    raw = f.data.get("data_keys")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_value(f.path("data_keys"), raw)
    inner = Fields(raw, prefix=f.path("data_keys"))
    return {kind: inner.strings(kind) for kind in raw}


def search_runs(f: Fields, store: TrackingStore) -> dict[str, Any]:
    asked = f.strings("experiment_ids", ids=True)
    experiment_ids = [i for i in asked if known_id_range(i)]
    if asked and not experiment_ids:
        return {}
    runs, token = store.search_runs(
        experiment_ids=experiment_ids,
        filter_string=f.string("filter"),
        run_view_type=f.enum("run_view_type", VIEW_TYPES, ACTIVE_ONLY) or ACTIVE_ONLY,
        max_results=f.integer(
            "max_results", default=1000, minimum=1, maximum=SEARCH_RUNS_MAX_RESULTS
        )
        or 1000,
        order_by=f.strings("order_by") or None,
        page_token=f.string("page_token"),
        data_keys=data_keys(f),
    )
    return _paged("runs", runs, token)


def log_metric(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_id = _run_id(f)
    metric = Metric(
        key=f.string("key", required=True) or "",
        value=f.number("value", required=True),  # type: ignore[arg-type]
        timestamp=f.integer("timestamp", required=True),  # type: ignore[arg-type]
        step=f.integer("step", default=0) or 0,
        model_id=f.string("model_id") or None,
        dataset_name=f.string("dataset_name") or None,
        dataset_digest=f.string("dataset_digest") or None,
    )
    store.log_metric(run_id, metric)
    return {}


def log_param(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_id = _run_id(f)
    store.log_param(run_id, f.string("key", required=True) or "", f.text("value"))
    return {}


def set_tag(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_id = _run_id(f)
    store.set_tag(run_id, f.string("key", required=True) or "", f.text("value"))
    return {}


def delete_tag(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_id = _run_id(f)
    store.delete_tag(run_id, f.string("key", required=True) or "")
    return {}


def _check_batch_limit(entity: str, limit: int, length: int) -> None:
    if length > limit:
        raise invalid(
            f"A batch logging request can contain at most {limit} {entity}. Got {length} "
            f"{entity}. Please split up {entity} across multiple requests and try again."
        )


def log_batch(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_id = _run_id(f)
    metrics = f.metrics()
    params = f.key_values("params")
    tags = f.key_values("tags")
    _check_batch_limit("metrics", MAX_METRICS_PER_BATCH, len(metrics))
    _check_batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, len(params))
    _check_batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, len(tags))
    _check_batch_limit(
        "metrics, params, and tags", MAX_ENTITIES_PER_BATCH, len(metrics) + len(params) + len(tags)
    )
    keys = [k for k, _ in params]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise invalid(
            f"Duplicate parameter keys have been submitted: {dupes}. Please ensure the request "
            "contains only one param value per param key."
        )
    store.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    return {}


def log_inputs(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """``runs/log-inputs``: datasets (with their input tags) and logged models a run used."""
    from ...tracking.datasets import parse_dataset_inputs

    run_id = _run_id(f)
    raw = f.data.get("datasets") or []
    if not isinstance(raw, list):
        raise invalid(f"Invalid value {raw!r} for parameter 'datasets': it must be a list.")
    datasets = parse_dataset_inputs(raw)
    models = [o.string("model_id", required=True) or "" for o in f.objects("models")]
    store.log_inputs(run_id, datasets, models)
    return {}


def search_datasets(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """``experiments/search-datasets`` (the MLflow UI's): which datasets the runs of these
    experiments used, and in which context."""
    from ...tracking.datasets import MAX_SEARCH_EXPERIMENTS

    experiment_ids = f.strings("experiment_ids", ids=True)
    if not experiment_ids:
        raise invalid("SearchDatasets request must specify at least one experiment_id.")
    if len(experiment_ids) > MAX_SEARCH_EXPERIMENTS:
        raise invalid(
            f"SearchDatasets request cannot specify more than {MAX_SEARCH_EXPERIMENTS} "
            f"experiment_ids. Received {len(experiment_ids)} experiment_ids."
        )
    summaries = store.search_datasets(experiment_ids)
    return {"dataset_summaries": summaries} if summaries else {}


def get_metric_history(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_id = f.run_id()
    key = f.string("metric_key", required=True) or ""
    max_results = f.integer("max_results")
    if max_results is not None and max_results <= 0:
        raise invalid(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    metrics, token = store.get_metric_history(
        run_id, key, max_results=max_results, page_token=f.string("page_token")
    )
    return _paged("metrics", metrics, token)


def list_artifacts(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """Files of a run; paths relative to the run's artifact root."""
    from .mlflow_ui import mlflow_path

    path = mlflow_path(f.string("path"))
    run = store.get_run(f.run_id())
    repo = store.artifact_repo(run.info.artifact_uri)
    out: dict[str, Any] = {"root_uri": run.info.artifact_uri}
    files = repo.list(path)
    if files:
        out["files"] = [fi.to_dict() for fi in files]
    return out


def server_info(f: Fields, store: TrackingStore) -> dict[str, Any]:
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "multipart_uploads_enabled": False,
    }


def routes() -> list[tuple[str, dict[str, Any]]]:
    """``(path under mlops/, handler kwargs)`` for every MLflow tracking route."""
    m = "api/2.0/mlflow/"
    return [
        (m + "experiments/create", {"rpcs": {"POST": create_experiment}}),
        (m + "experiments/get", {"rpcs": {"GET": get_experiment}}),
        (m + "experiments/get-by-name", {"rpcs": {"GET": get_experiment_by_name}}),
        (
            m + "experiments/search",
            {"rpcs": {"GET": search_experiments, "POST": search_experiments}},
        ),
        (m + "experiments/update", {"rpcs": {"POST": update_experiment}}),
        (m + "experiments/delete", {"rpcs": {"POST": delete_experiment}}),
        (m + "experiments/restore", {"rpcs": {"POST": restore_experiment}}),
        (m + "experiments/set-experiment-tag", {"rpcs": {"POST": set_experiment_tag}}),
        (m + "experiments/delete-experiment-tag", {"rpcs": {"POST": delete_experiment_tag}}),
        (m + "runs/create", {"rpcs": {"POST": create_run}}),
        (m + "runs/get", {"rpcs": {"GET": get_run}}),
        (m + "runs/update", {"rpcs": {"POST": update_run}}),
        (m + "runs/delete", {"rpcs": {"POST": delete_run}}),
        (m + "runs/restore", {"rpcs": {"POST": restore_run}}),
        (m + "runs/search", {"rpcs": {"POST": search_runs}}),
        (m + "runs/log-metric", {"rpcs": {"POST": log_metric}}),
        (m + "runs/log-parameter", {"rpcs": {"POST": log_param}}),
        (m + "runs/set-tag", {"rpcs": {"POST": set_tag}}),
        (m + "runs/delete-tag", {"rpcs": {"POST": delete_tag}}),
        (
            m + "runs/log-batch",
            {
                "rpcs": {"POST": log_batch},
                "body_limit": MAX_BATCH_LOG_REQUEST_SIZE,
                "body_limit_message": "Batched logging API requests must be at most {limit} bytes, "
                "got a request of size {size}.",
            },
        ),
        (m + "runs/log-inputs", {"rpcs": {"POST": log_inputs}}),
        (m + "experiments/search-datasets", {"rpcs": {"POST": search_datasets}}),
        (m + "metrics/get-history", {"rpcs": {"GET": get_metric_history}}),
        (m + "artifacts/list", {"rpcs": {"GET": list_artifacts}}),
        ("api/3.0/mlflow/server-info", {"rpcs": {"GET": server_info}}),
    ]
