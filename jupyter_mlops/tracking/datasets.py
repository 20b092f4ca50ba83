"""Datasets and run inputs, as MLflow models them (``runs/log-inputs``).

A dataset is identified within its experiment by ``(name, digest)``: logging the same
one again from another run reuses the stored row (its source, schema and profile are
those first logged, as in MLflow's SQL store). A run's *input* links it to a dataset,
once per dataset, with the input's tags (``mlflow.data.context`` says ``training``,
``eval``, ...). Runs may also take logged models as inputs (MLflow 3).

Tables (migration ``0010``), written and read only through this module:

* ``datasets``: one row per dataset of an experiment;
* ``dataset_inputs``: one row per (dataset, run), deleted with the run;
* ``input_tags``: the tags of an input;
* ``run_model_inputs``: the logged models a run took as inputs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Connection

from .entities import (
    TAG_DATASET_CONTEXT,
    Dataset,
    DatasetInput,
    RunInputs,
    Tag,
)
from .schema import metadata
from .validation import check_dataset_inputs, parse_dataset_inputs

__all__ = ["check_dataset_inputs", "parse_dataset_inputs"]

#: Most experiments one ``experiments/search-datasets`` request may name (MLflow's).
MAX_SEARCH_EXPERIMENTS = 20
#: Most summaries it answers (MLflow's).
MAX_DATASET_SUMMARIES = 1000

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_uuid", String(36), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("digest", String(36), nullable=False),
    Column("source_type", String(36), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text, nullable=True),
    Column("profile", Text, nullable=True),
    Column("created_time", BigInteger, nullable=False),
    UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_exp_name_digest"),
)

dataset_inputs = Table(
    "dataset_inputs",
    metadata,
    Column("input_uuid", String(36), primary_key=True),
    Column(
        "dataset_uuid",
        String(36),
        ForeignKey("datasets.dataset_uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("run_uuid", String(64), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),  # logging order within the run
    UniqueConstraint("run_uuid", "dataset_uuid", name="uq_dataset_inputs_run_dataset"),
    Index("ix_dataset_inputs_dataset", "dataset_uuid"),
)

input_tags = Table(
    "input_tags",
    metadata,
    Column(
        "input_uuid",
        String(36),
        ForeignKey("dataset_inputs.input_uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("position", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("value", String(500), nullable=False),
    PrimaryKeyConstraint("input_uuid", "name", name="pk_input_tags"),
)

run_model_inputs = Table(
    "run_model_inputs",
    metadata,
    Column("run_uuid", String(64), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("model_id", String(64), nullable=False),
    PrimaryKeyConstraint("run_uuid", "model_id", name="pk_run_model_inputs"),
)


# -- writes ----------------------------------------------------------------------
def log_inputs(
    conn: Connection,
    run_id: str,
    experiment_id: int,
    inputs: Sequence[DatasetInput],
    model_ids: Sequence[str],
    now: int,
    insert_ignore: Any,
) -> None:
    """Record a run's inputs inside the caller's write transaction (the caller has
    checked that the run is active). A dataset (name, digest) already logged in the
    experiment is reused; a dataset the run already has as input is left as it is;
    the same (name, digest) twice in one request counts once (the first)."""
    first: dict[tuple[str, str], DatasetInput] = {}
    for inp in inputs:
        first.setdefault((inp.dataset.name, inp.dataset.digest), inp)
    if first:
        insert_ignore(
            conn,
            datasets,
            ["experiment_id", "name", "digest"],
            [
                {
                    "dataset_uuid": uuid.uuid4().hex,
                    "experiment_id": experiment_id,
                    "name": inp.dataset.name,
                    "digest": inp.dataset.digest,
                    "source_type": inp.dataset.source_type,
                    "source": inp.dataset.source,
                    "schema": inp.dataset.schema,
                    "profile": inp.dataset.profile,
                    "created_time": now,
                }
                for inp in first.values()
            ],
        )
        names = sorted({k[0] for k in first})
        uuids: dict[tuple[str, str], str] = {}
        for row in conn.execute(
            sa.select(datasets.c.dataset_uuid, datasets.c.name, datasets.c.digest).where(
                datasets.c.experiment_id == experiment_id, datasets.c.name.in_(names)
            )
        ):
            uuids[(row.name, row.digest)] = row.dataset_uuid
        have = set(
            conn.execute(
                sa.select(dataset_inputs.c.dataset_uuid).where(dataset_inputs.c.run_uuid == run_id)
            ).scalars()
        )
        position = (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(dataset_inputs)
                .where(dataset_inputs.c.run_uuid == run_id)
            ).scalar()
            or 0
        )
        new_inputs, new_tags = [], []
        for key, inp in first.items():
            dataset_uuid = uuids[key]
            if dataset_uuid in have:
                continue
            input_uuid = uuid.uuid4().hex
            new_inputs.append(
                {
                    "input_uuid": input_uuid,
                    "dataset_uuid": dataset_uuid,
                    "run_uuid": run_id,
                    "position": position,
                }
            )
            position += 1
            seen: set[str] = set()
            for j, tag in enumerate(inp.tags):
                if tag.key not in seen:
                    seen.add(tag.key)
                    new_tags.append(
                        {
                            "input_uuid": input_uuid,
                            "position": j,
                            "name": tag.key,
                            "value": tag.value,
                        }
                    )
        if new_inputs:
            conn.execute(dataset_inputs.insert(), new_inputs)
        if new_tags:
            conn.execute(input_tags.insert(), new_tags)
    models = list(dict.fromkeys(m for m in model_ids if m))
    if models:
        insert_ignore(
            conn,
            run_model_inputs,
            ["run_uuid", "model_id"],
            [{"run_uuid": run_id, "model_id": m} for m in models],
        )


def purge_runs(conn: Connection, run_ids: Sequence[str]) -> None:
    """Remove the inputs of runs being deleted for good (the datasets stay: other runs
    of the experiment may use them, and MLflow keeps them too)."""
    ids = list(run_ids)
    if not ids:
        return
    sub = sa.select(dataset_inputs.c.input_uuid).where(dataset_inputs.c.run_uuid.in_(ids))
    conn.execute(input_tags.delete().where(input_tags.c.input_uuid.in_(sub)))
    conn.execute(dataset_inputs.delete().where(dataset_inputs.c.run_uuid.in_(ids)))
    conn.execute(run_model_inputs.delete().where(run_model_inputs.c.run_uuid.in_(ids)))


# -- reads -----------------------------------------------------------------------
def load_inputs(conn: Connection, run_ids: Sequence[str]) -> dict[str, RunInputs]:
    """The inputs of these runs (runs without any are absent from the answer)."""
    out: dict[str, RunInputs] = {}
    ids = list(run_ids)
    if not ids:
        return out
    rows = conn.execute(
        sa.select(dataset_inputs.c.input_uuid, dataset_inputs.c.run_uuid, datasets)
        .join(datasets, datasets.c.dataset_uuid == dataset_inputs.c.dataset_uuid)
        .where(dataset_inputs.c.run_uuid.in_(ids))
        .order_by(dataset_inputs.c.run_uuid, dataset_inputs.c.position)
    ).all()
    by_input: dict[str, DatasetInput] = {}
    for r in rows:
        inp = DatasetInput(Dataset(r.name, r.digest, r.source_type, r.source, r.schema, r.profile))
        by_input[r.input_uuid] = inp
        out.setdefault(r.run_uuid, RunInputs()).dataset_inputs.append(inp)
    if by_input:
        tag_rows = conn.execute(
            sa.select(input_tags)
            .where(input_tags.c.input_uuid.in_(list(by_input)))
            .order_by(input_tags.c.input_uuid, input_tags.c.position)
        ).all()
        for t in tag_rows:
            by_input[t.input_uuid].tags.append(Tag(t.name, t.value))
    for m in conn.execute(
        sa.select(run_model_inputs)
        .where(run_model_inputs.c.run_uuid.in_(ids))
        .order_by(run_model_inputs.c.run_uuid, run_model_inputs.c.model_id)
    ):
        out.setdefault(m.run_uuid, RunInputs()).model_inputs.append(m.model_id)
    return out


def search_datasets(conn: Connection, experiment_ids: Sequence[int]) -> list[dict[str, Any]]:
    """MLflow's dataset summaries of these experiments: one per (experiment, name, digest,
    context) used by an input (context absent when the input has none), at most
    :data:`MAX_DATASET_SUMMARIES`."""
    if not experiment_ids:
        return []
    ctx = input_tags.alias("ctx")
    q = (
        sa.select(datasets.c.experiment_id, datasets.c.name, datasets.c.digest, ctx.c.value)
        .distinct()
        .select_from(datasets)
        .join(dataset_inputs, dataset_inputs.c.dataset_uuid == datasets.c.dataset_uuid)
        .outerjoin(
            ctx,
            sa.and_(
                ctx.c.input_uuid == dataset_inputs.c.input_uuid, ctx.c.name == TAG_DATASET_CONTEXT
            ),
        )
        .where(datasets.c.experiment_id.in_(list(experiment_ids)))
        .order_by(datasets.c.experiment_id, datasets.c.name, datasets.c.digest, ctx.c.value)
        .limit(MAX_DATASET_SUMMARIES)
    )
    out = []
    for exp_id, name, digest, context in conn.execute(q):
        d = {"experiment_id": str(exp_id), "name": name, "digest": digest}
        if context is not None:
            d["context"] = context
        out.append(d)
    return out
