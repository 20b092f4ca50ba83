"""MLflow 3's GenAI evaluation REST API: evaluation datasets (``api/3.0/mlflow/datasets``)
and registered scorers (``api/3.0/mlflow/scorers``). Storage is
:mod:`jupyter_mlops.tracking.evaluation_store`'s."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...tracking.errors import invalid
from ...tracking.evaluation import parse_records, parse_tags
from ..request import Fields
from .base import Rpc
from .traces import TraceHandler

if TYPE_CHECKING:
    from ...tracking.store import TrackingStore

MAX_SEARCH_RESULTS = 1000
MAX_RECORDS_PAGE = 1000


def _dataset_id(f: Fields) -> str:
    return f.string("dataset_id", required=True) or ""


def create_dataset(f: Fields, store: TrackingStore) -> dict[str, Any]:
    d = store.create_eval_dataset(
        f.string("name", required=True) or "",
        f.strings("experiment_ids", ids=True),
        parse_tags(f.data.get("tags")),
    )
    return {"dataset": d}


def get_dataset(f: Fields, store: TrackingStore) -> dict[str, Any]:
    return {"dataset": store.get_eval_dataset(_dataset_id(f))}


def delete_dataset(f: Fields, store: TrackingStore) -> dict[str, Any]:
    store.delete_eval_dataset(_dataset_id(f))
    return {}


def search_datasets(f: Fields, store: TrackingStore) -> dict[str, Any]:
    found, token = store.search_eval_datasets(
        f.strings("experiment_ids", ids=True),
        f.string("filter_string"),
        f.integer("max_results", default=1000, minimum=1, maximum=MAX_SEARCH_RESULTS) or 1000,
        f.strings("order_by") or None,
        f.string("page_token"),
    )
    out: dict[str, Any] = {"datasets": found} if found else {}
    if token:
        out["next_page_token"] = token
    return out


def set_tags(f: Fields, store: TrackingStore) -> dict[str, Any]:
    store.set_eval_dataset_tags(_dataset_id(f), parse_tags(f.data.get("tags")))
    return {}


def delete_tag(f: Fields, store: TrackingStore) -> dict[str, Any]:
    store.delete_eval_dataset_tag(_dataset_id(f), f.string("key", required=True) or "")
    return {}


def experiment_ids(f: Fields, store: TrackingStore) -> dict[str, Any]:
    ids = store.get_eval_dataset(_dataset_id(f)).get("experiment_ids", [])
    return {"experiment_ids": ids} if ids else {}


def add_experiments(f: Fields, store: TrackingStore) -> dict[str, Any]:
    d = store.eval_dataset_experiments(_dataset_id(f), add=f.strings("experiment_ids", ids=True))
    return {"dataset": d}


def remove_experiments(f: Fields, store: TrackingStore) -> dict[str, Any]:
    d = store.eval_dataset_experiments(_dataset_id(f), remove=f.strings("experiment_ids", ids=True))
    return {"dataset": d}


def upsert_records(f: Fields, store: TrackingStore) -> dict[str, Any]:
    raw = f.data.get("records")
    if raw is None:
        raise invalid("Missing value for required parameter 'records'.")
    inserted, updated = store.upsert_eval_records(_dataset_id(f), parse_records(raw))
    return {"inserted_count": inserted, "updated_count": updated}


def get_records(f: Fields, store: TrackingStore) -> dict[str, Any]:
    import json

    recs, token = store.get_eval_records(
        _dataset_id(f),
        f.integer("max_results", default=MAX_RECORDS_PAGE, minimum=1, maximum=MAX_RECORDS_PAGE)
        or MAX_RECORDS_PAGE,
        f.string("page_token"),
    )
    out: dict[str, Any] = {"records": json.dumps(recs)}
    if token:
        out["next_page_token"] = token
    return out


def delete_records(f: Fields, store: TrackingStore) -> dict[str, Any]:
    n = store.delete_eval_records(_dataset_id(f), f.strings("dataset_record_ids"))
    return {"deleted_count": n}


def _version(f: Fields) -> int | None:
    return f.integer("version", minimum=1)


def register_scorer(f: Fields, store: TrackingStore) -> dict[str, Any]:
    s = store.register_scorer(
        f.experiment_id() or "",
        f.string("name", required=True) or "",
        f.string("serialized_scorer", required=True) or "",
    )
    return {
        "version": s["scorer_version"],
        "scorer_id": s["scorer_id"],
        "experiment_id": s["experiment_id"],
        "name": s["scorer_name"],
        "serialized_scorer": s["serialized_scorer"],
        "creation_time": s["creation_time"],
    }


def list_scorers(f: Fields, store: TrackingStore) -> dict[str, Any]:
    found = store.list_scorers(f.experiment_id() or "")
    return {"scorers": found} if found else {}


def list_scorer_versions(f: Fields, store: TrackingStore) -> dict[str, Any]:
    found = store.list_scorers(f.experiment_id() or "", f.string("name", required=True) or "")
    return {"scorers": found} if found else {}


def get_scorer(f: Fields, store: TrackingStore) -> dict[str, Any]:
    s = store.get_scorer(
        f.experiment_id() or "", f.string("name", required=True) or "", _version(f)
    )
    return {"scorer": s}


def delete_scorer(f: Fields, store: TrackingStore) -> dict[str, Any]:
    store.delete_scorer(f.experiment_id() or "", f.string("name", required=True) or "", _version(f))
    return {}


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(url regex under mlops/, handler, kwargs)`` of the evaluation routes."""
    d = re.escape("api/3.0/mlflow/datasets")
    s = re.escape("api/3.0/mlflow/scorers")
    one = d + r"/(?P<dataset_id>[^/]+)"
    table: list[tuple[str, Mapping[str, Rpc]]] = [
        (d + "/create", {"POST": create_dataset}),
        (d + "/search", {"POST": search_datasets, "GET": search_datasets}),
        (one + "/tags", {"PATCH": set_tags}),
        (one + r"/tags/(?P<key>.+)", {"DELETE": delete_tag}),
        (
            one + "/records",
            {"POST": upsert_records, "GET": get_records, "DELETE": delete_records},
        ),
        (one + "/experiment-ids", {"GET": experiment_ids}),
        (one + "/add-experiments", {"POST": add_experiments}),
        (one + "/remove-experiments", {"POST": remove_experiments}),
        (one, {"GET": get_dataset, "DELETE": delete_dataset}),
        (s + "/register", {"POST": register_scorer}),
        (s + "/list", {"GET": list_scorers}),
        (s + "/versions", {"GET": list_scorer_versions}),
        (s + "/get", {"GET": get_scorer}),
        (s + "/delete", {"DELETE": delete_scorer}),
    ]
    return [(regex, TraceHandler, {"rpcs": rpcs}) for regex, rpcs in table]
