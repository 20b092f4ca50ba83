"""MLflow 3's logged models over the tracking database: a model logged by a run (or
on its own), its params and tags, its status from ``PENDING`` to ``READY``, and the
runs that list it as an output (with the metrics the run logged at that step).

:class:`SqlLoggedModels` is the part of
:class:`~jupyter_mlops.registry.sqlstore.SqlRegistryStore` that serves them (the
registry store delegates its logged-model methods here); :func:`run_outputs` reads a
run's outputs for ``runs/get`` with nothing but the database engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..tracking import model_metrics
from ..tracking.clock import now_ms
from ..tracking.errors import TrackingError, invalid, not_found
from ..tracking.migrate import read_transaction, write_transaction
from ..tracking.paging import page
from . import filters
from .abstract_store import DELETED_STAGE, LOGGED_MODEL_STATUSES, SEARCH_LOGGED_MODELS_MAX
from .filters import order_hits
from .schema import (
    key_values_by,
    logged_model_params,
    logged_model_tags,
    logged_models,
    model_versions,
    upsert,
)
from .schema import (
    run_outputs as run_outputs_table,
)

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore

# the column's width (schema.logged_models.source_run_id)
MAX_SOURCE_RUN_ID_LENGTH: int = getattr(logged_models.c.source_run_id.type, "length", None) or 64


def run_outputs(engine: sa.Engine, run_id: str) -> list[dict[str, Any]]:
    """The run's model outputs, ``[{"model_id", "step"}]`` (MLflow 3's ``runs/get``)."""
    with read_transaction(engine) as conn:
        return [
            {"model_id": r.model_id, "step": r.step}
            for r in conn.execute(
                run_outputs_table.select().where(run_outputs_table.c.run_id == run_id)
            )
        ]


def logged_status(status: Any) -> str:
    """A status given by name or number, as its name."""
    if isinstance(status, str) and status in LOGGED_MODEL_STATUSES:
        return status
    for name, num in LOGGED_MODEL_STATUSES.items():
        if str(status) == str(num):
            return name
    raise invalid(
        f"Invalid logged model status '{status}'. Value must be one of "
        f"{', '.join(LOGGED_MODEL_STATUSES)}."
    )


class SqlLoggedModels:
    """Logged models in the database of a SQL tracking store (``engine``); runs and
    experiments are read through ``tracking``."""

    def __init__(self, engine: sa.Engine, tracking: TrackingStore) -> None:
        self.engine = engine
        self.tracking = tracking

    def _write(self) -> AbstractContextManager[Connection]:
        return write_transaction(self.engine)

    def _read(self) -> AbstractContextManager[Connection]:
        return read_transaction(self.engine)

    def _logged_json(self, conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        if not rows:
            return []
        ids = [r["model_id"] for r in rows]
        tags = key_values_by(conn, logged_model_tags.c.model_id, ids)
        params = key_values_by(conn, logged_model_params.c.model_id, ids)
        regs: dict[str, list[dict[str, str]]] = {}
        for mv in conn.execute(
            sa.select(
                model_versions.c.model_id, model_versions.c.name, model_versions.c.version
            ).where(
                model_versions.c.model_id.in_(ids), model_versions.c.current_stage != DELETED_STAGE
            )
        ):
            regs.setdefault(mv.model_id, []).append({"name": mv.name, "version": str(mv.version)})
        outputs: dict[str, list[tuple[str, int]]] = {}
        outs = run_outputs_table
        for o in conn.execute(outs.select().where(outs.c.model_id.in_(ids))):
            outputs.setdefault(o.model_id, []).append((o.run_id, o.step))
        logged = model_metrics.load(conn, ids)
        seen: dict[tuple[str, int], list[dict[str, Any]]] = {}
        out = []
        for r in rows:
            info: dict[str, Any] = {
                "model_id": r["model_id"],
                "experiment_id": r["experiment_id"],
                "name": r["name"],
                "creation_timestamp_ms": r["creation_timestamp_ms"],
                "last_updated_timestamp_ms": r["last_updated_timestamp_ms"],
                "artifact_uri": r["artifact_uri"],
                "status": r["status"],
            }
            for k in ("model_type", "source_run_id", "status_message"):
                if r[k]:
                    info[k] = r[k]
            if r["model_id"] in tags:
                info["tags"] = tags[r["model_id"]]
            if r["model_id"] in regs:
                info["registrations"] = regs[r["model_id"]]
            data: dict[str, Any] = {}
            if r["model_id"] in params:
                data["params"] = params[r["model_id"]]
            # the points logged with the model's id (with their dataset), then the
            # points of the runs that output it, at its step, not already among them
            metrics = list(logged.get(r["model_id"], ()))
            have = {(m["run_id"], m["key"], m["step"], m["timestamp"]) for m in metrics}
            metrics += [
                dict(m, model_id=r["model_id"], run_id=run_id)
                for run_id, step in outputs.get(r["model_id"], ())
                for m in self._metrics_at(run_id, step, seen)
                if (run_id, m["key"], m["step"], m["timestamp"]) not in have
            ]
            if metrics:
                data["metrics"] = metrics
            out.append({"info": info, "data": data})
        return out

    def _metrics_at(
        self, run_id: str, step: int, seen: dict[tuple[str, int], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The run's metric points at ``step``: what MLflow 3 links to a model
        logged at that step (its client re-logs them with the model's id; here
        the link is read from the run output, so both clients get it)."""
        if (run_id, step) not in seen:
            points: list[dict[str, Any]] = []
            try:
                keys = sorted(self.tracking.get_run(run_id).data.metrics)
            except TrackingError:  # the run was purged: the model keeps no metrics
                keys = []
            for key in keys:
                token = None
                while True:  # history is in (step, timestamp) order: stop past the step
                    page, token = self.tracking.get_metric_history(run_id, key, 1000, token)
                    points.extend(m.to_dict() for m in page if m.step == step)
                    if not token or (page and page[-1].step > step):
                        break
            # mlflow's log_model re-logs these points (with model_id); the tracking store
            # keeps such a repeat once, but histories written before it did (no migration
            # rewrites them) may hold both copies: list each point once
            unique = {(p["key"], p["step"], p["timestamp"], str(p["value"])): p for p in points}
            seen[(run_id, step)] = list(unique.values())
        return seen[(run_id, step)]

    def _logged_row(self, conn: Connection, model_id: str, allow_deleted: bool = False) -> Any:
        row = (
            conn.execute(logged_models.select().where(logged_models.c.model_id == model_id))
            .mappings()
            .first()
        )
        if row is None or (row["lifecycle_stage"] != "active" and not allow_deleted):
            raise not_found(f"Logged model with ID '{model_id}' not found.")
        return row

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        exp = self.tracking.get_experiment(experiment_id)
        if exp.lifecycle_stage != "active":
            raise invalid(f"The experiment {experiment_id} must be in the 'active' state.")
        # source_run_id is recorded as given: MLflow's server does not require the run to
        # exist (a model may come from a run of another server, or be registered first)
        if source_run_id and len(source_run_id) > MAX_SOURCE_RUN_ID_LENGTH:
            raise invalid(
                f"Invalid value for 'source_run_id': longer than "
                f"{MAX_SOURCE_RUN_ID_LENGTH} characters."
            )
        model_id = "m-" + uuid.uuid4().hex
        name = name or f"model-{model_id[2:10]}"
        if len(name) > 500 or "/" in name:
            raise invalid(f"Invalid logged model name '{name[:60]}'.")
        root = (exp.artifact_location or "").rstrip("/")
        artifact_uri = f"{root}/models/{model_id}/artifacts"
        now = now_ms()
        with self._write() as conn:
            conn.execute(
                logged_models.insert().values(
                    model_id=model_id,
                    experiment_id=str(experiment_id),
                    name=name,
                    creation_timestamp_ms=now,
                    last_updated_timestamp_ms=now,
                    artifact_uri=artifact_uri,
                    status="LOGGED_MODEL_PENDING",
                    model_type=model_type or None,
                    source_run_id=source_run_id or None,
                )
            )
            if tags:
                conn.execute(
                    logged_model_tags.insert(),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()],
                )
            if params:
                conn.execute(
                    logged_model_params.insert(),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in params.items()],
                )
            return self._logged_json(conn, [self._logged_row(conn, model_id)])[0]

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
        with self._read() as conn:
            return self._logged_json(conn, [self._logged_row(conn, model_id, allow_deleted)])[0]

    def finalize_logged_model(self, model_id: str, status: Any) -> dict[str, Any]:
        name = logged_status(status)
        with self._write() as conn:
            self._logged_row(conn, model_id)
            conn.execute(
                logged_models.update()
                .where(logged_models.c.model_id == model_id)
                .values(status=name, last_updated_timestamp_ms=now_ms())
            )
            return self._logged_json(conn, [self._logged_row(conn, model_id)])[0]

    def delete_logged_model(self, model_id: str) -> None:
        with self._write() as conn:
            self._logged_row(conn, model_id)
            conn.execute(
                logged_models.update()
                .where(logged_models.c.model_id == model_id)
                .values(lifecycle_stage="deleted", last_updated_timestamp_ms=now_ms())
            )

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        with self._write() as conn:
            self._logged_row(conn, model_id)
            for k, v in tags.items():
                upsert(conn, logged_model_tags, {"model_id": model_id, "key": k}, value=v)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with self._write() as conn:
            self._logged_row(conn, model_id)
            deleted = conn.execute(
                logged_model_tags.delete().where(
                    logged_model_tags.c.model_id == model_id, logged_model_tags.c.key == key
                )
            )
            if deleted.rowcount == 0:
                raise not_found(f"No tag with key '{key}' on logged model '{model_id}'.")

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        with self._write() as conn:
            self._logged_row(conn, model_id)
            for k, v in params.items():
                upsert(conn, logged_model_params, {"model_id": model_id, "key": k}, value=v)

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[dict[str, Any]] = (),
        page_token: str | None = None,
        datasets: Sequence[tuple[str, str | None]] = (),
    ) -> tuple[list[dict[str, Any]], str | None]:
        if max_results < 1 or max_results > SEARCH_LOGGED_MODELS_MAX:
            raise invalid(
                f"max_results must be between 1 and {SEARCH_LOGGED_MODELS_MAX}, got {max_results}."
            )
        match = filters.matcher(
            filter_string,
            {
                "name": "name",
                "model_id": "model_id",
                "source_run_id": "source_run_id",
                "status": "status",
                "model_type": "model_type",
                "creation_timestamp": "creation_timestamp_ms",
                "creation_time": "creation_timestamp_ms",
                "last_updated_timestamp": "last_updated_timestamp_ms",
            },
            prefixes=("tags", "params"),
        )
        clauses = []
        for o in order_by or ():
            field = str(o.get("field_name", ""))
            if field not in (
                "name",
                "creation_timestamp",
                "last_updated_timestamp",
                "model_id",
                "creation_time",
            ):
                raise invalid(f"Invalid order_by field '{field}' for logged models.")
            col = {
                "creation_timestamp": "creation_timestamp_ms",
                "creation_time": "creation_timestamp_ms",
                "last_updated_timestamp": "last_updated_timestamp_ms",
            }.get(field, field)
            clauses.append(f"{col} {'ASC' if o.get('ascending', True) else 'DESC'}")
        ids = [str(i) for i in experiment_ids]
        with self._read() as conn:
            stmt = logged_models.select().where(logged_models.c.lifecycle_stage == "active")
            if ids:
                stmt = stmt.where(logged_models.c.experiment_id.in_(ids))
            rows = conn.execute(stmt).mappings().all()
            tags: dict[str, dict[str, str]] = {}
            params: dict[str, dict[str, str]] = {}
            if rows:
                for t in conn.execute(logged_model_tags.select()):
                    tags.setdefault(t.model_id, {})[t.key] = t.value or ""
                for p in conn.execute(logged_model_params.select()):
                    params.setdefault(p.model_id, {})[p.key] = p.value or ""
            hits = [
                dict(r, tags=tags.get(r["model_id"], {}), params=params.get(r["model_id"], {}))
                for r in rows
            ]
            hits = [h for h in hits if match(h)]
            if datasets:  # models with a metric measured on one of them
                measured = model_metrics.models_measured_on(conn, datasets)
                hits = [h for h in hits if h["model_id"] in measured]
            order_hits(
                hits,
                clauses,
                ("name", "creation_timestamp_ms", "last_updated_timestamp_ms", "model_id"),
                [("creation_timestamp_ms", False), ("model_id", True)],
            )
            shown, nxt = page(hits, max_results, page_token)
            return self._logged_json(conn, shown), nxt

    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        self.tracking.get_run(run_id)
        with self._write() as conn:
            for model_id, _step in models:
                self._logged_row(conn, model_id)
            for model_id, step in models:
                key = {"run_id": run_id, "model_id": model_id}
                upsert(conn, run_outputs_table, key, step=step)

    def run_outputs(self, run_id: str) -> list[dict[str, Any]]:
        return run_outputs(self.engine, run_id)

    def run_logged_model(self, run: Any, name: str) -> dict[str, Any] | None:
        """The newest logged model named ``name`` that ``run`` produced (MLflow 3
        resolves ``runs:/<run>/<name>`` to it when the run has no files there)."""
        if not name or "/" in name:
            return None
        with self._read() as conn:
            row = (
                conn.execute(
                    logged_models.select()
                    .where(
                        logged_models.c.source_run_id == run.info.run_id,
                        logged_models.c.name == name,
                        logged_models.c.lifecycle_stage == "active",
                    )
                    .order_by(logged_models.c.creation_timestamp_ms.desc())
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None
