"""The model registry over the tracking database (SQLite and PostgreSQL).

Registered models, versions, their tags and aliases, in tables of their own
(:mod:`.schema`) in the tracking store's database, written in its transactions
(``BEGIN IMMEDIATE`` on SQLite). MLflow 3's logged models are
:mod:`.logged_models`' (this store delegates to it). Deleted versions stay as rows in
stage ``Deleted_Internal`` (as in MLflow) so a version number is never handed out twice.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..tracking.clock import now_ms
from ..tracking.errors import TrackingError, already_exists, invalid, not_found
from ..tracking.migrate import read_transaction, write_transaction
from ..tracking.paging import page
from . import filters
from .abstract_store import (
    ACTIVE_STAGES,
    DELETED_STAGE,
    LINEAGE_TAGS,
    SEARCH_MODEL_VERSIONS_MAX,
    SEARCH_REGISTERED_MODELS_MAX,
    TAG_NOTEBOOK_PATH,
    TAG_SOURCE_BRANCH,
    TAG_SOURCE_COMMIT,
    TAG_SOURCE_NAME,
    TAG_SOURCE_REPO,
    AbstractRegistryStore,
    canonical_stage,
    validate_alias,
    validate_name,
    version_int,
)
from .filters import order_hits
from .logged_models import SqlLoggedModels
from .schema import (
    key_values_by,
    logged_model_tags,
    logged_models,
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
    upsert,
)

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore


class SqlRegistryStore(AbstractRegistryStore):
    """Registered models, their versions, tags and aliases; logged models.

    Needs a SQL tracking store (``engine``): it reads runs and experiments through
    the tracking store and keeps its own tables in the same database.
    """

    def __init__(self, tracking: TrackingStore) -> None:
        engine = getattr(tracking, "engine", None)
        if engine is None:
            raise TrackingError(
                "The model registry needs a SQL tracking store (sqlite:// or postgresql://).",
                "NOT_IMPLEMENTED",
            )
        self.tracking = tracking
        self.engine: sa.Engine = engine
        #: The logged-model half (its own module); the methods below delegate to it.
        self.logged_models = SqlLoggedModels(engine, tracking)

    # -- transactions (the tracking store's: BEGIN IMMEDIATE for writes on SQLite) --
    def _write(self) -> AbstractContextManager[Connection]:
        return write_transaction(self.engine)

    def _read(self) -> AbstractContextManager[Connection]:
        return read_transaction(self.engine)

    # -- reading rows into MLflow shapes -------------------------------------
    def _model_row(self, conn: Connection, name: str) -> Any:
        row = (
            conn.execute(registered_models.select().where(registered_models.c.name == name))
            .mappings()
            .first()
        )
        if row is None:
            raise not_found(f"Registered Model with name={name} not found")
        return row

    def _version_row(self, conn: Connection, name: str, version: int) -> Any:
        row = (
            conn.execute(
                model_versions.select().where(
                    model_versions.c.name == name,
                    model_versions.c.version == version,
                    model_versions.c.current_stage != DELETED_STAGE,
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise not_found(f"Model Version (name={name}, version={version}) not found")
        return row

    def _versions_json(self, conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        if not rows:
            return []
        names = sorted({r["name"] for r in rows})
        tags: dict[tuple[str, int], list[dict[str, str]]] = {}
        for t in conn.execute(
            model_version_tags.select()
            .where(model_version_tags.c.name.in_(names))
            .order_by(model_version_tags.c.key)
        ):
            tags.setdefault((t.name, t.version), []).append({"key": t.key, "value": t.value or ""})
        aliases: dict[tuple[str, int], list[str]] = {}
        for a in conn.execute(
            registered_model_aliases.select()
            .where(registered_model_aliases.c.name.in_(names))
            .order_by(registered_model_aliases.c.alias)
        ):
            aliases.setdefault((a.name, a.version), []).append(a.alias)
        out = []
        for r in rows:
            key = (r["name"], r["version"])
            mv: dict[str, Any] = {
                "name": r["name"],
                "version": str(r["version"]),
                "creation_timestamp": r["creation_timestamp"],
                "last_updated_timestamp": r["last_updated_timestamp"],
                "current_stage": r["current_stage"],
                "description": r["description"] or "",
                "source": r["source"] or "",
                "run_id": r["run_id"] or "",
                "status": r["status"],
                "run_link": r["run_link"] or "",
            }
            if r["user_id"]:
                mv["user_id"] = r["user_id"]
            if r["status_message"]:
                mv["status_message"] = r["status_message"]
            if r["model_id"]:
                mv["model_id"] = r["model_id"]
            if key in tags:
                mv["tags"] = tags[key]
            if key in aliases:
                mv["aliases"] = aliases[key]
            out.append(mv)
        return out

    def _models_json(self, conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        if not rows:
            return []
        names = [r["name"] for r in rows]
        tags = key_values_by(conn, registered_model_tags.c.name, names)
        aliases: dict[str, list[dict[str, str]]] = {}
        for a in conn.execute(
            registered_model_aliases.select()
            .where(registered_model_aliases.c.name.in_(names))
            .order_by(registered_model_aliases.c.alias)
        ):
            aliases.setdefault(a.name, []).append({"alias": a.alias, "version": str(a.version)})
        versions = (
            conn.execute(
                model_versions.select().where(
                    model_versions.c.name.in_(names),
                    model_versions.c.current_stage != DELETED_STAGE,
                )
            )
            .mappings()
            .all()
        )
        latest: dict[tuple[str, str], Any] = {}
        for v in versions:
            k = (v["name"], v["current_stage"])
            if k not in latest or v["version"] > latest[k]["version"]:
                latest[k] = v
        latest_json = self._versions_json(
            conn, sorted(latest.values(), key=lambda v: (v["name"], v["version"]))
        )
        by_name: dict[str, list[dict[str, Any]]] = {}
        for mv in latest_json:
            by_name.setdefault(mv["name"], []).append(mv)
        out = []
        for r in rows:
            rm: dict[str, Any] = {
                "name": r["name"],
                "creation_timestamp": r["creation_timestamp"],
                "last_updated_timestamp": r["last_updated_timestamp"],
            }
            if r["description"]:
                rm["description"] = r["description"]
            if r["user_id"]:
                rm["user_id"] = r["user_id"]
            if r["name"] in by_name:
                rm["latest_versions"] = by_name[r["name"]]
            if r["name"] in tags:
                rm["tags"] = tags[r["name"]]
            if r["name"] in aliases:
                rm["aliases"] = aliases[r["name"]]
            out.append(rm)
        return out

    # -- registered models ---------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        validate_name(name)
        now = now_ms()
        with self._write() as conn:
            exists = conn.execute(
                sa.select(registered_models.c.name).where(registered_models.c.name == name)
            ).first()
            if exists:
                raise already_exists(f"Registered Model (name={name}) already exists.")
            conn.execute(
                registered_models.insert().values(
                    name=name,
                    creation_timestamp=now,
                    last_updated_timestamp=now,
                    description=description or None,
                    user_id=user_id or None,
                )
            )
            if tags:
                conn.execute(
                    registered_model_tags.insert(),
                    [{"name": name, "key": k, "value": v} for k, v in tags.items()],
                )
            return self._models_json(conn, [self._model_row(conn, name)])[0]

    def get_registered_model(self, name: str) -> dict[str, Any]:
        validate_name(name)
        with self._read() as conn:
            return self._models_json(conn, [self._model_row(conn, name)])[0]

    def rename_registered_model(self, name: str, new_name: str) -> dict[str, Any]:
        validate_name(name)
        validate_name(new_name)
        with self._write() as conn:
            self._model_row(conn, name)
            if (
                new_name != name
                and conn.execute(
                    sa.select(registered_models.c.name).where(registered_models.c.name == new_name)
                ).first()
            ):
                raise already_exists(f"Registered Model (name={new_name}) already exists.")
            now = now_ms()
            for table in (
                registered_model_tags,
                model_versions,
                model_version_tags,
                registered_model_aliases,
            ):
                conn.execute(table.update().where(table.c.name == name).values(name=new_name))
            conn.execute(
                registered_models.update()
                .where(registered_models.c.name == name)
                .values(name=new_name, last_updated_timestamp=now)
            )
            return self._models_json(conn, [self._model_row(conn, new_name)])[0]

    def update_registered_model(self, name: str, description: str | None) -> dict[str, Any]:
        validate_name(name)
        with self._write() as conn:
            self._model_row(conn, name)
            conn.execute(
                registered_models.update()
                .where(registered_models.c.name == name)
                .values(description=description, last_updated_timestamp=now_ms())
            )
            return self._models_json(conn, [self._model_row(conn, name)])[0]

    def delete_registered_model(self, name: str) -> None:
        validate_name(name)
        with self._write() as conn:
            self._model_row(conn, name)
            for table in (
                registered_model_tags,
                model_versions,
                model_version_tags,
                registered_model_aliases,
                registered_models,
            ):
                conn.execute(table.delete().where(table.c.name == name))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if max_results < 1 or max_results > SEARCH_REGISTERED_MODELS_MAX:
            raise invalid(
                "Invalid value for request parameter max_results. It must be at most "
                f"{SEARCH_REGISTERED_MODELS_MAX}, but got value {max_results}"
            )
        match = filters.matcher(filter_string, {"name": "name"})
        with self._read() as conn:
            rows = conn.execute(registered_models.select()).mappings().all()
            tags: dict[str, dict[str, str]] = {}
            for t in conn.execute(registered_model_tags.select()):
                tags.setdefault(t.name, {})[t.key] = t.value or ""
            hits = [dict(r, tags=tags.get(r["name"], {})) for r in rows]
            hits = [h for h in hits if match(h)]
            order_hits(
                hits,
                order_by,
                ("name", "creation_timestamp", "last_updated_timestamp"),
                [("name", True)],
            )
            shown, nxt = page(hits, max_results, page_token)
            return self._models_json(conn, shown), nxt

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        validate_name(name)
        if not key:
            raise invalid("Tag name cannot be empty.")
        with self._write() as conn:
            self._model_row(conn, name)
            upsert(conn, registered_model_tags, {"name": name, "key": key}, value=value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        validate_name(name)
        with self._write() as conn:
            self._model_row(conn, name)
            conn.execute(
                registered_model_tags.delete().where(
                    registered_model_tags.c.name == name, registered_model_tags.c.key == key
                )
            )

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        validate_name(name)
        wanted = {canonical_stage(s) for s in stages or ()}
        with self._read() as conn:
            self._model_row(conn, name)
            rows = (
                conn.execute(
                    model_versions.select().where(
                        model_versions.c.name == name,
                        model_versions.c.current_stage != DELETED_STAGE,
                    )
                )
                .mappings()
                .all()
            )
            latest: dict[str, Any] = {}
            for r in rows:
                if wanted and r["current_stage"] not in wanted:
                    continue
                if (
                    r["current_stage"] not in latest
                    or r["version"] > latest[r["current_stage"]]["version"]
                ):
                    latest[r["current_stage"]] = r
            return self._versions_json(conn, sorted(latest.values(), key=lambda r: r["version"]))

    # -- aliases -------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: Any) -> None:
        validate_name(name)
        validate_alias(alias)
        v = version_int(version)
        with self._write() as conn:
            self._model_row(conn, name)
            self._version_row(conn, name, v)
            upsert(conn, registered_model_aliases, {"name": name, "alias": alias}, version=v)
            _touch_model(conn, name, now_ms())

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        validate_name(name)
        with self._write() as conn:
            self._model_row(conn, name)
            conn.execute(
                registered_model_aliases.delete().where(
                    registered_model_aliases.c.name == name,
                    registered_model_aliases.c.alias == alias,
                )
            )

    def get_model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        validate_name(name)
        with self._read() as conn:
            self._model_row(conn, name)
            v = conn.execute(
                sa.select(registered_model_aliases.c.version).where(
                    registered_model_aliases.c.name == name,
                    registered_model_aliases.c.alias == alias,
                )
            ).scalar()
            if v is None:
                raise not_found(f"Registered model alias {alias} not found.")
            return self._versions_json(conn, [self._version_row(conn, name, v)])[0]

    # -- model versions --------------------------------------------------------
    def _storage_location(self, source: str) -> tuple[str, str | None]:
        """Where a version's files are (what get-download-uri answers) and the
        logged model they belong to: ``models:/m-<id>`` and ``runs:/<run>/<path>``
        (the run's files, else the run's logged model of that name) resolved."""
        m = re.fullmatch(r"models:/(m-[0-9a-f]+)/?", source)
        if m:
            return str(self.get_logged_model(m.group(1))["info"]["artifact_uri"]), m.group(1)
        m = re.fullmatch(r"models:/(.+)/(\d+)/?", source)
        if m:
            # A copy (``copy_model_version``) reads the files of the version it copies,
            # as MLflow's store does: its download URI is that version's.
            try:
                return self.get_model_version_download_uri(m.group(1), m.group(2)), None
            except TrackingError as e:
                raise invalid(
                    f"Unable to fetch model from model URI source artifact location "
                    f"'{source}'. Error: {e.message}"
                ) from None
        m = re.fullmatch(r"runs:/([^/]+)/?(.*)", source)
        if m:
            try:
                run = self.tracking.get_run(m.group(1))
            except TrackingError as e:
                if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                # MLflow registers a runs:/ source it cannot resolve as it is
                return source, None
            path = m.group(2).strip("/")
            root = run.info.artifact_uri
            location = posixpath.join(root, path) if path else root
            logged = (
                None
                if self._run_has_model(location)
                else self.logged_models.run_logged_model(run, path)
            )
            if logged:
                return str(logged["artifact_uri"]), str(logged["model_id"])
            return location, None
        return source, None

    def _run_has_model(self, location: str) -> bool:
        try:
            return bool(self.tracking.artifact_repo(location).exists("MLmodel"))
        except (TrackingError, OSError):  # unreadable: treat as no model there
            return False

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        user_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        validate_name(name)
        if not source:
            raise invalid("Missing value for required parameter 'source'.")
        storage, logged_id = self._storage_location(source)
        model_id = model_id or logged_id
        tags = dict(tags or {})
        run = None
        if run_id:
            # Lineage: the run's source notebook/script and commit, for the Models panel
            # (a run this store does not have, as MLflow allows, has none).
            try:
                run = self.tracking.get_run(run_id)
            except TrackingError as e:
                if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
        if run is not None:
            for key in LINEAGE_TAGS:
                if key in run.data.tags and key not in tags:
                    tags[key] = run.data.tags[key]
        now = now_ms()
        with self._write() as conn:
            self._model_row(conn, name)
            last = (
                conn.execute(
                    sa.select(sa.func.max(model_versions.c.version)).where(
                        model_versions.c.name == name
                    )
                ).scalar()
                or 0
            )
            version = last + 1
            conn.execute(
                model_versions.insert().values(
                    name=name,
                    version=version,
                    creation_timestamp=now,
                    last_updated_timestamp=now,
                    user_id=user_id or None,
                    current_stage="None",
                    description=description or None,
                    source=source,
                    storage_location=storage,
                    run_id=run_id or None,
                    run_link=run_link or None,
                    status="READY",
                    status_message=None,
                    model_id=model_id or None,
                )
            )
            if tags:
                conn.execute(
                    model_version_tags.insert(),
                    [
                        {"name": name, "version": version, "key": k, "value": v}
                        for k, v in tags.items()
                    ],
                )
            if model_id:
                _note_model_version(conn, model_id, name, version)
            _touch_model(conn, name, now)
            return self._versions_json(conn, [self._version_row(conn, name, version)])[0]

    def get_model_version(self, name: str, version: Any) -> dict[str, Any]:
        validate_name(name)
        v = version_int(version)
        with self._read() as conn:
            return self._versions_json(conn, [self._version_row(conn, name, v)])[0]

    def update_model_version(
        self, name: str, version: Any, description: str | None
    ) -> dict[str, Any]:
        validate_name(name)
        v = version_int(version)
        with self._write() as conn:
            self._version_row(conn, name, v)
            conn.execute(
                model_versions.update()
                .where(model_versions.c.name == name, model_versions.c.version == v)
                .values(description=description, last_updated_timestamp=now_ms())
            )
            return self._versions_json(conn, [self._version_row(conn, name, v)])[0]

    def transition_model_version_stage(
        self, name: str, version: Any, stage: str, archive_existing_versions: bool = False
    ) -> dict[str, Any]:
        validate_name(name)
        v = version_int(version)
        stage = canonical_stage(stage)
        if archive_existing_versions and stage not in ACTIVE_STAGES:
            raise invalid(
                f"Model version transition cannot archive existing model versions because "
                f"'{stage}' is not an Active stage. Valid stages are "
                f"{', '.join(ACTIVE_STAGES)}"
            )
        now = now_ms()
        with self._write() as conn:
            self._version_row(conn, name, v)
            if archive_existing_versions:
                conn.execute(
                    model_versions.update()
                    .where(
                        model_versions.c.name == name,
                        model_versions.c.version != v,
                        model_versions.c.current_stage == stage,
                    )
                    .values(current_stage="Archived", last_updated_timestamp=now)
                )
            conn.execute(
                model_versions.update()
                .where(model_versions.c.name == name, model_versions.c.version == v)
                .values(current_stage=stage, last_updated_timestamp=now)
            )
            _touch_model(conn, name, now)
            return self._versions_json(conn, [self._version_row(conn, name, v)])[0]

    def delete_model_version(self, name: str, version: Any) -> None:
        validate_name(name)
        v = version_int(version)
        now = now_ms()
        with self._write() as conn:
            self._version_row(conn, name, v)
            conn.execute(
                model_versions.update()
                .where(model_versions.c.name == name, model_versions.c.version == v)
                .values(
                    current_stage=DELETED_STAGE,
                    last_updated_timestamp=now,
                    description=None,
                    source="REDACTED-SOURCE-PATH",
                    run_id=None,
                    run_link=None,
                    status_message=None,
                )
            )
            for table in (model_version_tags, registered_model_aliases):
                conn.execute(table.delete().where(table.c.name == name, table.c.version == v))
            _touch_model(conn, name, now)  # as MLflow: the model changed

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSIONS_MAX,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if max_results < 1 or max_results > SEARCH_MODEL_VERSIONS_MAX:
            raise invalid(
                "Invalid value for request parameter max_results. It must be at most "
                f"{SEARCH_MODEL_VERSIONS_MAX}, but got value {max_results}"
            )
        match = filters.matcher(
            filter_string,
            {
                "name": "name",
                "version": "version",
                "version_number": "version",
                "run_id": "run_id",
                "source_path": "source",
                "source": "source",
                "current_stage": "current_stage",
                "model_id": "model_id",
            },
        )
        with self._read() as conn:
            rows = (
                conn.execute(
                    model_versions.select().where(model_versions.c.current_stage != DELETED_STAGE)
                )
                .mappings()
                .all()
            )
            tags: dict[tuple[str, int], dict[str, str]] = {}
            for t in conn.execute(model_version_tags.select()):
                tags.setdefault((t.name, t.version), {})[t.key] = t.value or ""
            hits = [dict(r, tags=tags.get((r["name"], r["version"]), {})) for r in rows]
            hits = [h for h in hits if match(h)]
            order_hits(
                hits,
                order_by,
                (
                    "name",
                    "version",
                    "version_number",
                    "creation_timestamp",
                    "last_updated_timestamp",
                ),
                # MLflow's: without order_by, newest first; with it, ties by name then version
                ([] if order_by else [("last_updated_timestamp", False)])
                + [("name", True), ("version", False)],
            )
            shown, nxt = page(hits, max_results, page_token)
            return self._versions_json(conn, shown), nxt

    def set_model_version_tag(self, name: str, version: Any, key: str, value: str) -> None:
        validate_name(name)
        v = version_int(version)
        if not key:
            raise invalid("Tag name cannot be empty.")
        with self._write() as conn:
            self._version_row(conn, name, v)
            upsert(conn, model_version_tags, {"name": name, "version": v, "key": key}, value=value)

    def delete_model_version_tag(self, name: str, version: Any, key: str) -> None:
        validate_name(name)
        v = version_int(version)
        with self._write() as conn:
            self._version_row(conn, name, v)
            conn.execute(
                model_version_tags.delete().where(
                    model_version_tags.c.name == name,
                    model_version_tags.c.version == v,
                    model_version_tags.c.key == key,
                )
            )

    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        validate_name(name)
        v = version_int(version)
        with self._read() as conn:
            row = self._version_row(conn, name, v)
        return str(row["storage_location"] or row["source"])

    def lineage(self, name: str, version: Any) -> dict[str, Any]:
        """A version with the run that produced it and that run's source
        (notebook or script, commit): what the Models panel links to."""
        mv = self.get_model_version(name, version)
        out: dict[str, Any] = {"model_version": mv}
        run_id = mv.get("run_id")
        if not run_id and mv.get("model_id"):
            run_id = self.get_logged_model(mv["model_id"])["info"].get("source_run_id")
        if run_id:
            try:
                run = self.tracking.get_run(run_id)
            except TrackingError:
                out["run"] = {"run_id": run_id, "missing": True}
            else:
                t = run.data.tags
                out["run"] = {
                    "run_id": run_id,
                    "experiment_id": run.info.experiment_id,
                    "run_name": run.info.run_name,
                    "status": run.info.status,
                    "lifecycle_stage": run.info.lifecycle_stage,
                }
                name = t.get(TAG_SOURCE_NAME, "")
                out["source"] = {
                    "name": name,
                    "type": t.get("mlflow.source.type", ""),
                    "git_commit": t.get(TAG_SOURCE_COMMIT, ""),
                    "git_branch": t.get(TAG_SOURCE_BRANCH, ""),
                    "git_repo_url": t.get(TAG_SOURCE_REPO, ""),
                    # relative to the Jupyter root, so the UI can open it
                    "notebook": t.get(TAG_NOTEBOOK_PATH, name if name.endswith(".ipynb") else ""),
                }
        return out

    # -- logged models (MLflow 3): logged_models.py ------------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self.logged_models.create_logged_model(
            experiment_id, name, source_run_id, model_type, params, tags
        )

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
        return self.logged_models.get_logged_model(model_id, allow_deleted)

    def finalize_logged_model(self, model_id: str, status: Any) -> dict[str, Any]:
        return self.logged_models.finalize_logged_model(model_id, status)

    def delete_logged_model(self, model_id: str) -> None:
        self.logged_models.delete_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        self.logged_models.set_logged_model_tags(model_id, tags)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.logged_models.delete_logged_model_tag(model_id, key)

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        self.logged_models.log_logged_model_params(model_id, params)

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[dict[str, Any]] = (),
        page_token: str | None = None,
        datasets: Sequence[tuple[str, str | None]] = (),
    ) -> tuple[list[dict[str, Any]], str | None]:
        return self.logged_models.search_logged_models(
            experiment_ids, filter_string, max_results, order_by, page_token, datasets
        )

    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        self.logged_models.log_outputs(run_id, models)

    def run_outputs(self, run_id: str) -> list[dict[str, Any]]:
        return self.logged_models.run_outputs(run_id)


#: Logged-model tag listing the registered versions made from it (MLflow's).
TAG_MODEL_VERSIONS = "mlflow.modelVersions"


def _note_model_version(conn: Connection, model_id: str, name: str, version: int) -> None:
    """Append ``{"name", "version"}`` to the logged model's ``mlflow.modelVersions`` tag, as
    MLflow does when a version is made from a logged model (no-op for an unknown model)."""
    if (
        conn.execute(
            sa.select(logged_models.c.model_id).where(logged_models.c.model_id == model_id)
        ).first()
        is None
    ):
        return
    current = conn.execute(
        sa.select(logged_model_tags.c.value).where(
            logged_model_tags.c.model_id == model_id, logged_model_tags.c.key == TAG_MODEL_VERSIONS
        )
    ).scalar()
    try:
        listed = json.loads(current) if current else []
    except ValueError:
        listed = []
    listed.append({"name": name, "version": version})
    upsert(
        conn,
        logged_model_tags,
        {"model_id": model_id, "key": TAG_MODEL_VERSIONS},
        value=json.dumps(listed),
    )


def _touch_model(conn: Connection, name: str, now: int) -> None:
    """A change to a version or an alias updates its registered model's timestamp."""
    conn.execute(
        registered_models.update()
        .where(registered_models.c.name == name)
        .values(last_updated_timestamp=now)
    )
