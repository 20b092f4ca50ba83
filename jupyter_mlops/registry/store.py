"""The model registry and MLflow 3's logged models over the tracking database.

Every method returns MLflow's JSON shapes (plain dicts), so the REST handlers
and the in-process Python client hand out the same objects. Errors carry
MLflow's codes and messages (``RESOURCE_ALREADY_EXISTS`` on a duplicate name,
``RESOURCE_DOES_NOT_EXIST`` on a missing model, version or alias, ...).

Deleted versions stay as rows in stage ``Deleted_Internal`` (as in MLflow) so a
version number is never handed out twice.
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
import time
import uuid
import weakref
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..tracking.errors import TrackingError, already_exists, invalid, not_found
from ..tracking.migrate import read_transaction, write_transaction
from . import filters
from .schema import (
    logged_model_params,
    logged_model_tags,
    logged_models,
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
    run_outputs,
)

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore

STAGES = ("None", "Staging", "Production", "Archived")
ACTIVE_STAGES = ("Staging", "Production")
DELETED_STAGE = "Deleted_Internal"
LOGGED_MODEL_STATUSES = {
    "LOGGED_MODEL_STATUS_UNSPECIFIED": 0,
    "LOGGED_MODEL_PENDING": 1,
    "LOGGED_MODEL_READY": 2,
    "LOGGED_MODEL_UPLOAD_FAILED": 3,
}
MAX_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
#: Versions are 32-bit in the database (as in MLflow's schema).
MAX_VERSION = 2**31 - 1
SEARCH_REGISTERED_MODELS_MAX = 1000
SEARCH_MODEL_VERSIONS_MAX = 200_000
SEARCH_LOGGED_MODELS_MAX = 1000
#: Tags on a model version that link it to its origin (set at registration).
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_COMMIT = "mlflow.source.git.commit"
TAG_SOURCE_BRANCH = "mlflow.source.git.branch"
TAG_SOURCE_REPO = "mlflow.source.git.repoURL"
#: Set by the jupyter-mlops client: the notebook's path under the Jupyter root.
TAG_NOTEBOOK_PATH = "mlops.source.notebook_path"
#: Run tags copied onto a version when it is registered from a run.
LINEAGE_TAGS = (TAG_SOURCE_NAME, TAG_SOURCE_COMMIT, TAG_NOTEBOOK_PATH)


def now_ms() -> int:
    return int(time.time() * 1000)


def canonical_stage(stage: str | None) -> str:
    for s in STAGES:
        if stage is not None and s.lower() == stage.strip().lower():
            return s
    raise invalid(
        f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}."
    )


def _token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.b64decode(token))["offset"])
        if offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError):
        raise invalid(f"Invalid page token, could not base64-decode: {token!r}") from None


def _page(
    items: list[dict[str, Any]], max_results: int, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    start = _offset(token)
    page = items[start : start + max_results]
    nxt = _token(start + max_results) if start + max_results < len(items) else None
    return page, nxt


def _sort(
    items: list[dict[str, Any]],
    order_by: Sequence[str],
    allowed: Sequence[str],
    default: Sequence[tuple[str, bool]],
) -> list[dict[str, Any]]:
    keys: list[tuple[str, bool]] = []
    for clause in order_by or ():
        parts = clause.strip().split()
        if not parts:
            continue
        field = parts[0].replace("`", "")
        if field.startswith(("attributes.", "attribute.")):
            field = field.split(".", 1)[1]
        if field == "timestamp":
            field = "last_updated_timestamp"
        direction = parts[1].upper() if len(parts) > 1 else "ASC"
        if field not in allowed or direction not in ("ASC", "DESC") or len(parts) > 2:
            raise invalid(
                f"Invalid order_by clause '{clause}'. Only ordering by "
                f"{', '.join(allowed)} (ASC or DESC) is supported."
            )
        keys.append((field, direction == "ASC"))
    for field, asc in default:
        if field not in {k for k, _ in keys}:
            keys.append((field, asc))
    for field, asc in reversed(keys):
        items.sort(key=lambda d: (d.get(field) is None, _sortable(d.get(field))), reverse=not asc)
    return items


def _sortable(v: Any) -> Any:
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return v if v is not None else ""


def validate_name(name: str | None, what: str = "Registered model name") -> str:
    if not name or not str(name).strip():
        raise invalid(f"{what} cannot be empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise invalid(f"{what} '{name[:40]}...' is longer than {MAX_NAME_LENGTH} characters.")
    return name


def validate_alias(alias: str | None) -> str:
    if not alias:
        raise invalid("Registered model alias name cannot be empty.")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise invalid(f"Registered model alias name exceeds {MAX_ALIAS_LENGTH} characters.")
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise invalid(
            f"'{alias}' alias name (case insensitive) is reserved: aliases cannot be 'latest' "
            "or look like a version ('v<number>')."
        )
    if not re.fullmatch(r"[\w\-]+", alias):
        raise invalid(
            f"Invalid alias name: '{alias}'. Aliases may only contain alphanumerics, "
            "underscores and dashes."
        )
    return alias


def _version_int(version: Any) -> int:
    try:
        v = int(str(version))
        if v < 1 or v > MAX_VERSION:
            raise ValueError
        return v
    except (TypeError, ValueError):
        raise invalid(
            f"Model version must be a positive integer (at most {MAX_VERSION}), got '{version}'."
        ) from None


class RegistryStore:
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
        tags = _key_values_by(conn, registered_model_tags.c.name, names)
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
            _sort(
                hits,
                order_by,
                ("name", "creation_timestamp", "last_updated_timestamp"),
                [("name", True)],
            )
            page, nxt = _page(hits, max_results, page_token)
            return self._models_json(conn, page), nxt

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        validate_name(name)
        if not key:
            raise invalid("Tag name cannot be empty.")
        with self._write() as conn:
            self._model_row(conn, name)
            _upsert(conn, registered_model_tags, {"name": name, "key": key}, value=value)

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
        v = _version_int(version)
        with self._write() as conn:
            self._model_row(conn, name)
            self._version_row(conn, name, v)
            _upsert(conn, registered_model_aliases, {"name": name, "alias": alias}, version=v)
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
        m = re.fullmatch(r"runs:/([^/]+)/?(.*)", source)
        if m:
            run = self.tracking.get_run(m.group(1))
            path = m.group(2).strip("/")
            root = run.info.artifact_uri
            location = posixpath.join(root, path) if path else root
            logged = None if self._run_has_model(location) else self._run_logged_model(run, path)
            if logged:
                return str(logged["artifact_uri"]), str(logged["model_id"])
            return location, None
        return source, None

    def _run_has_model(self, location: str) -> bool:
        try:
            return bool(self.tracking.artifact_repo(location).exists("MLmodel"))
        except (TrackingError, OSError):  # unreadable: treat as no model there
            return False

    def _run_logged_model(self, run: Any, name: str) -> dict[str, Any] | None:
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
        if run_id:
            # Lineage: the run's source notebook/script and commit, for the Models panel.
            run = self.tracking.get_run(run_id)
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
            _touch_model(conn, name, now)
            return self._versions_json(conn, [self._version_row(conn, name, version)])[0]

    def get_model_version(self, name: str, version: Any) -> dict[str, Any]:
        validate_name(name)
        v = _version_int(version)
        with self._read() as conn:
            return self._versions_json(conn, [self._version_row(conn, name, v)])[0]

    def update_model_version(
        self, name: str, version: Any, description: str | None
    ) -> dict[str, Any]:
        validate_name(name)
        v = _version_int(version)
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
        v = _version_int(version)
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
        v = _version_int(version)
        with self._write() as conn:
            self._version_row(conn, name, v)
            conn.execute(
                model_versions.update()
                .where(model_versions.c.name == name, model_versions.c.version == v)
                .values(
                    current_stage=DELETED_STAGE,
                    last_updated_timestamp=now_ms(),
                    description=None,
                    source="REDACTED-SOURCE-PATH",
                    run_id=None,
                    run_link=None,
                    status_message=None,
                )
            )
            for table in (model_version_tags, registered_model_aliases):
                conn.execute(table.delete().where(table.c.name == name, table.c.version == v))

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
            _sort(
                hits,
                order_by,
                (
                    "name",
                    "version",
                    "version_number",
                    "creation_timestamp",
                    "last_updated_timestamp",
                ),
                [("last_updated_timestamp", False), ("name", True), ("version", False)],
            )
            page, nxt = _page(hits, max_results, page_token)
            return self._versions_json(conn, page), nxt

    def set_model_version_tag(self, name: str, version: Any, key: str, value: str) -> None:
        validate_name(name)
        v = _version_int(version)
        if not key:
            raise invalid("Tag name cannot be empty.")
        with self._write() as conn:
            self._version_row(conn, name, v)
            _upsert(conn, model_version_tags, {"name": name, "version": v, "key": key}, value=value)

    def delete_model_version_tag(self, name: str, version: Any, key: str) -> None:
        validate_name(name)
        v = _version_int(version)
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
        v = _version_int(version)
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

    # -- logged models (MLflow 3) ---------------------------------------------
    def _logged_json(self, conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        if not rows:
            return []
        ids = [r["model_id"] for r in rows]
        tags = _key_values_by(conn, logged_model_tags.c.model_id, ids)
        params = _key_values_by(conn, logged_model_params.c.model_id, ids)
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
        for o in conn.execute(run_outputs.select().where(run_outputs.c.model_id.in_(ids))):
            outputs.setdefault(o.model_id, []).append((o.run_id, o.step))
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
            metrics = [
                dict(m, model_id=r["model_id"], run_id=run_id)
                for run_id, step in outputs.get(r["model_id"], ())
                for m in self._metrics_at(run_id, step, seen)
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
        if source_run_id:
            self.tracking.get_run(source_run_id)
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
        name = _logged_status(status)
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
                _upsert(conn, logged_model_tags, {"model_id": model_id, "key": k}, value=v)

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
                _upsert(conn, logged_model_params, {"model_id": model_id, "key": k}, value=v)

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[dict[str, Any]] = (),
        page_token: str | None = None,
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
            _sort(
                hits,
                clauses,
                ("name", "creation_timestamp_ms", "last_updated_timestamp_ms", "model_id"),
                [("creation_timestamp_ms", False), ("model_id", True)],
            )
            page, nxt = _page(hits, max_results, page_token)
            return self._logged_json(conn, page), nxt

    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        self.tracking.get_run(run_id)
        with self._write() as conn:
            for model_id, _step in models:
                self._logged_row(conn, model_id)
            for model_id, step in models:
                _upsert(conn, run_outputs, {"run_id": run_id, "model_id": model_id}, step=step)

    def run_outputs(self, run_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            return [
                {"model_id": r.model_id, "step": r.step}
                for r in conn.execute(run_outputs.select().where(run_outputs.c.run_id == run_id))
            ]


def _logged_status(status: Any) -> str:
    if isinstance(status, str) and status in LOGGED_MODEL_STATUSES:
        return status
    for name, num in LOGGED_MODEL_STATUSES.items():
        if str(status) == str(num):
            return name
    raise invalid(
        f"Invalid logged model status '{status}'. Value must be one of "
        f"{', '.join(LOGGED_MODEL_STATUSES)}."
    )


_registries: weakref.WeakKeyDictionary[Any, RegistryStore] = weakref.WeakKeyDictionary()


def registry_for(tracking: TrackingStore) -> RegistryStore:
    """The registry of a tracking store (one per store object)."""
    reg = _registries.get(tracking)
    if reg is None:
        reg = _registries[tracking] = RegistryStore(tracking)
    return reg


def _upsert(conn: Connection, table: sa.Table, keys: dict[str, Any], **values: Any) -> None:
    """Set the row of ``table`` identified by ``keys`` (its primary key) to
    ``values``: the same two statements on SQLite and PostgreSQL."""
    conn.execute(table.delete().where(*(table.c[k] == v for k, v in keys.items())))
    conn.execute(table.insert().values(**keys, **values))


def _touch_model(conn: Connection, name: str, now: int) -> None:
    """A change to a version or an alias updates its registered model's timestamp."""
    conn.execute(
        registered_models.update()
        .where(registered_models.c.name == name)
        .values(last_updated_timestamp=now)
    )


def _key_values_by(
    conn: Connection, parent: sa.Column[Any], ids: Sequence[Any]
) -> dict[Any, list[dict[str, str]]]:
    """The rows of a (parent, key, value) table for these parents, as MLflow's
    ``[{"key", "value"}]`` lists per parent id, ordered by key."""
    table = parent.table
    out: dict[Any, list[dict[str, str]]] = {}
    for row in conn.execute(table.select().where(parent.in_(ids)).order_by(table.c.key)):
        out.setdefault(row._mapping[parent.name], []).append(
            {"key": row.key, "value": row.value or ""}
        )
    return out
