"""Metrics of logged models (MLflow 3): a metric point logged with a ``model_id``
(``log_metric(..., model_id=, dataset_name=, dataset_digest=)``) is the run's point and
also the model's, with the dataset it was measured on. Migration ``0016`` makes the
table; the tracking store writes it in the run's logging transaction, the registry
reads it for ``logged-models/get``/``search`` (metrics and the ``datasets`` filter).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, Float, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.engine import Connection

from .entities import Metric
from .schema import metadata

#: Widest dataset name and digest kept (MLflow's columns: 500 and 36).
MAX_DATASET_NAME = 500
MAX_DATASET_DIGEST = 36

logged_model_metrics = sa.Table(
    "logged_model_metrics",
    metadata,
    Column("model_id", String(64), nullable=False),
    Column("key", String(250), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("value", Float, nullable=True),  # NULL = NaN (SQLite stores NaN as NULL)
    Column("experiment_id", Integer, nullable=True),
    Column("dataset_name", String(MAX_DATASET_NAME), nullable=True),
    Column("dataset_digest", String(MAX_DATASET_DIGEST), nullable=True),
    PrimaryKeyConstraint(
        "model_id", "key", "timestamp", "step", "run_id", name="pk_logged_model_metrics"
    ),
    Index("ix_logged_model_metrics_dataset", "dataset_name", "dataset_digest"),
)


def rows_for(
    run_id: str, experiment_id: int | None, metrics: Sequence[Metric]
) -> list[dict[str, Any]]:
    """The rows of the points of ``metrics`` that name a model (the others: none)."""
    return [
        {
            "model_id": m.model_id,
            "key": m.key,
            "timestamp": m.timestamp,
            "step": m.step,
            "run_id": run_id,
            "value": None if math.isnan(m.value) else m.value,
            "experiment_id": experiment_id,
            "dataset_name": m.dataset_name,
            "dataset_digest": m.dataset_digest,
        }
        for m in metrics
        if m.model_id
    ]


def load(conn: Connection, model_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each model's points as MLflow's ``Metric`` JSON (with ``model_id``, ``run_id`` and
    the dataset), in (key, step, timestamp) order."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not model_ids:
        return out
    c = logged_model_metrics.c
    q = (
        sa.select(logged_model_metrics)
        .where(c.model_id.in_(list(model_ids)))
        .order_by(c.model_id, c.key, c.step, c.timestamp)
    )
    for r in conn.execute(q):
        m = Metric(
            r.key,
            math.nan if r.value is None else r.value,
            r.timestamp,
            r.step,
            model_id=r.model_id,
            dataset_name=r.dataset_name,
            dataset_digest=r.dataset_digest,
        ).to_dict()
        m["run_id"] = r.run_id
        out.setdefault(r.model_id, []).append(m)
    return out


def models_measured_on(conn: Connection, datasets: Sequence[tuple[str, str | None]]) -> set[str]:
    """The models with a point on any of ``datasets`` (name, and digest when given)."""
    c = logged_model_metrics.c
    conds = [
        sa.and_(c.dataset_name == name, *([c.dataset_digest == digest] if digest else []))
        for name, digest in datasets
    ]
    if not conds:
        return set()
    return set(conn.execute(sa.select(c.model_id).where(sa.or_(*conds)).distinct()).scalars())
