"""The model registry of the multi-user mode: each registry call checked against its caller.

:class:`GuardedRegistry` is the registry store as one caller may use it (what the
registry endpoints get on the hub-wide service), with :mod:`.access`'s rules:

- a registered model belongs to its creator (``user_id``, from the token) and to a
  team, the hub group in its tag ``mlops.team`` (given at creation, one of the
  creator's groups; default: the creator's first group). The team reads it and its
  versions; its owner, the team's maintainers (``AccessPolicy.maintainers``) and
  admins change it; ``mlops.visibility=private`` keeps it to its owner;
- a version's source must be readable by whoever registers it (its run, its logged
  model), so nobody publishes files they could not read;
- an MLflow 3 logged model follows the run that logged it (without one, its owner,
  tag ``mlops.owner``, and the owner's team, as for runs);
- a model the caller may not read answers 403 ``PERMISSION_DENIED`` (model names are
  one namespace for the whole hub: creating a taken name tells anyway); searches
  leave such models out. Store methods not listed here are refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..tracking.errors import TrackingError
from .access import OWNER_TAG, TEAM_TAG, USER_TAG, VISIBILITY_TAG, GuardedStore, denied

if TYPE_CHECKING:
    from ..registry.abstract_store import AbstractRegistryStore

#: Tags on registry objects that only the service (or the owner, for the team) sets.
_IDENTITY = frozenset({OWNER_TAG, USER_TAG})
_LOGGED = re.compile(r"models:/(m-[0-9a-f]+)/?")
_RUNS = re.compile(r"runs:/([^/]+)")


def _tags(obj: dict[str, Any]) -> dict[str, str]:
    """``{key: value}`` of a registered model's or logged model's ``tags`` (list or dict)."""
    tags = obj.get("tags") or {}
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {t["key"]: t.get("value", "") for t in tags}


class GuardedRegistry:
    """The registry store as one caller may use it (the registry endpoints' ``reg``)."""

    def __init__(self, registry: AbstractRegistryStore, tracking: GuardedStore) -> None:
        self._reg = registry
        #: The caller's tracking store: runs it may not see are "not found" (check_source).
        self.tracking = tracking
        self.caller = tracking.caller
        self.policy = tracking.policy
        tracking.registry = self

    def __getattr__(self, name: str) -> Any:
        raise denied(f"'{name}' is not available on the shared tracking service.")

    # -- registered models -------------------------------------------------------
    def _may_read(self, rm: dict[str, Any]) -> bool:
        return self.policy.can_read_model(self.caller, rm.get("user_id"), _tags(rm))

    def _model(self, name: str, write: bool = False) -> dict[str, Any]:
        rm = self._reg.get_registered_model(name)
        owner, tags = rm.get("user_id"), _tags(rm)
        if not self.policy.can_read_model(self.caller, owner, tags):
            team = tags.get(TEAM_TAG)
            whose = f"of team '{team}'" if team else f"of user '{owner}'"
            raise denied(
                f"User '{self.caller.name}' may not read registered model '{name}' {whose}."
            )
        if write and not self.policy.can_write_model(self.caller, owner, tags):
            raise denied(
                f"User '{self.caller.name}' may not change registered model '{name}': its owner "
                f"'{owner}' and the maintainers of team '{tags.get(TEAM_TAG, '')}' may."
            )
        return rm

    def _check_tag(self, key: str, value: str | None = None) -> None:
        if key in _IDENTITY and not self.caller.admin:
            raise denied(f"Tag '{key}' is set by the tracking service from your identity.")
        if key == TEAM_TAG and value is not None:
            self._check_team(value)

    def _check_team(self, team: str) -> None:
        if not self.caller.admin and team not in self.caller.groups:
            mine = ", ".join(sorted(self.caller.groups)) or "none"
            raise denied(
                f"User '{self.caller.name}' is not in team '{team}' (their groups: {mine})."
            )

    def create_registered_model(
        self, name: str, tags: dict[str, str] | None = None, description: str | None = None
    ) -> dict[str, Any]:
        try:
            self._model(name)
        except TrackingError as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise  # taken by a model the caller may not read: 403
        tags = dict(tags or {})
        for key, value in tags.items():
            self._check_tag(key, value)
        if TEAM_TAG not in tags and self.caller.groups:
            tags[TEAM_TAG] = sorted(self.caller.groups)[0]
        return self._reg.create_registered_model(name, tags, description, user_id=self.caller.name)

    def get_registered_model(self, name: str) -> dict[str, Any]:
        return self._model(name)

    def rename_registered_model(self, name: str, new_name: str) -> dict[str, Any]:
        self._model(name, write=True)
        return self._reg.rename_registered_model(name, new_name)

    def update_registered_model(self, name: str, description: str | None) -> dict[str, Any]:
        self._model(name, write=True)
        return self._reg.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        self._model(name, write=True)
        self._reg.delete_registered_model(name)

    def search_registered_models(self, *args: Any, **kwargs: Any) -> Any:
        # a page of the store's answer, less what the caller may not read (a short page
        # with the store's next token: clients page on)
        models, token = self._reg.search_registered_models(*args, **kwargs)
        return [m for m in models if self._may_read(m)], token

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        rm = self._model(name, write=True)
        self._check_tag(key, value)
        if key in (TEAM_TAG, VISIBILITY_TAG) and not self._owns(rm):
            raise denied(f"Only the owner of '{name}' sets its tag '{key}'.")
        self._reg.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        rm = self._model(name, write=True)
        self._check_tag(key)
        if key in (TEAM_TAG, VISIBILITY_TAG) and not self._owns(rm):
            raise denied(f"Only the owner of '{name}' removes its tag '{key}'.")
        self._reg.delete_registered_model_tag(name, key)

    def _owns(self, rm: dict[str, Any]) -> bool:
        return self.caller.admin or rm.get("user_id") == self.caller.name

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> Any:
        self._model(name)
        return self._reg.get_latest_versions(name, stages)

    def set_registered_model_alias(self, name: str, alias: str, version: Any) -> None:
        self._model(name, write=True)
        self._reg.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._model(name, write=True)
        self._reg.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        self._model(name)
        return self._reg.get_model_version_by_alias(name, alias)

    # -- model versions ------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        self._model(name, write=True)
        for key in tags or {}:
            self._check_tag(key)
        # the files the version points at must be the caller's to read
        runs = {run_id} if run_id else set()
        m = _RUNS.match(source)
        if m:
            runs.add(m.group(1))
        for rid in runs:
            if rid:
                self.tracking.get_run(rid)  # 404 for a run the caller may not see
        logged = {model_id} if model_id else set()
        m = _LOGGED.fullmatch(source)
        if m:
            logged.add(m.group(1))
        for mid in logged:
            if mid:
                self.logged_model_info(mid)
        return self._reg.create_model_version(
            name,
            source,
            run_id,
            tags,
            run_link,
            description,
            user_id=self.caller.name,
            model_id=model_id,
        )

    def get_model_version(self, name: str, version: Any) -> dict[str, Any]:
        self._model(name)
        return self._reg.get_model_version(name, version)

    def update_model_version(self, name: str, version: Any, description: str | None) -> Any:
        self._model(name, write=True)
        return self._reg.update_model_version(name, version, description)

    def transition_model_version_stage(
        self, name: str, version: Any, stage: str, archive_existing_versions: bool = False
    ) -> Any:
        self._model(name, write=True)
        return self._reg.transition_model_version_stage(
            name, version, stage, archive_existing_versions
        )

    def delete_model_version(self, name: str, version: Any) -> None:
        self._model(name, write=True)
        self._reg.delete_model_version(name, version)

    def search_model_versions(self, *args: Any, **kwargs: Any) -> Any:
        versions, token = self._reg.search_model_versions(*args, **kwargs)
        readable: dict[str, bool] = {}
        out = []
        for mv in versions:
            name = mv["name"]
            if name not in readable:
                try:
                    self._model(name)
                    readable[name] = True
                except TrackingError:
                    readable[name] = False
            if readable[name]:
                out.append(mv)
        return out, token

    def set_model_version_tag(self, name: str, version: Any, key: str, value: str) -> None:
        self._model(name, write=True)
        self._check_tag(key)
        self._reg.set_model_version_tag(name, version, key, value)

    def delete_model_version_tag(self, name: str, version: Any, key: str) -> None:
        self._model(name, write=True)
        self._check_tag(key)
        self._reg.delete_model_version_tag(name, version, key)

    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        self._model(name)
        return self._reg.get_model_version_download_uri(name, version)

    def lineage(self, name: str, version: Any) -> dict[str, Any]:
        self._model(name)
        out = self._reg.lineage(name, version)
        run = out.get("run")
        if run and not run.get("missing"):
            try:
                self.tracking.get_run(run["run_id"])
            except TrackingError:  # a run the caller may not see: only its id
                out["run"] = {"run_id": run["run_id"], "missing": True}
                out.pop("source", None)
        return out

    # -- logged models (MLflow 3) ----------------------------------------------------
    def logged_model_info(self, model_id: str, write: bool = False) -> dict[str, Any]:
        """The logged model's ``info`` if the caller may read (``write``: change) it, else 403."""
        info = self._reg.get_logged_model(model_id)["info"]
        if not self._logged_allowed(info, write):
            verb = "change" if write else "read"
            raise denied(f"User '{self.caller.name}' may not {verb} logged model '{model_id}'.")
        return info

    def _logged_allowed(self, info: dict[str, Any], write: bool) -> bool:
        run_id = info.get("source_run_id")
        if run_id:
            try:
                run = self.tracking._store.get_run(run_id)
            except TrackingError as e:
                if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
            else:
                if write:
                    return self.policy.can_write_run(self.caller, run)
                return self.policy.can_read_run(self.caller, run)
        tags = _tags(info)
        owner = tags.get(OWNER_TAG)
        if self.caller.admin or (owner and owner == self.caller.name):
            return True
        if write:
            return False
        return (
            tags.get(VISIBILITY_TAG) != "private" and bool(owner) and owner in self.caller.teammates
        )

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if source_run_id:
            try:
                run = self.tracking._store.get_run(source_run_id)
            except TrackingError as e:
                if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
            else:  # MLflow records a run it does not have as given; one we have must be theirs
                if not self.policy.can_write_run(self.caller, run):
                    raise denied(
                        f"User '{self.caller.name}' may not log a model from run {source_run_id}."
                    )
        # the identity is the caller's, whatever the body said (our client copies the run's
        # mlflow.user, which is the caller's own run anyway)
        tags = {**(tags or {}), OWNER_TAG: self.caller.name, USER_TAG: self.caller.name}
        return self._reg.create_logged_model(
            experiment_id, name, source_run_id, model_type, params, tags
        )

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
        self.logged_model_info(model_id)
        return self._reg.get_logged_model(model_id, allow_deleted)

    def finalize_logged_model(self, model_id: str, status: Any) -> dict[str, Any]:
        self.logged_model_info(model_id, write=True)
        return self._reg.finalize_logged_model(model_id, status)

    def delete_logged_model(self, model_id: str) -> None:
        self.logged_model_info(model_id, write=True)
        self._reg.delete_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        self.logged_model_info(model_id, write=True)
        for key in tags:
            self._check_tag(key)
        self._reg.set_logged_model_tags(model_id, tags)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.logged_model_info(model_id, write=True)
        self._check_tag(key)
        self._reg.delete_logged_model_tag(model_id, key)

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        self.logged_model_info(model_id, write=True)
        self._reg.log_logged_model_params(model_id, params)

    def search_logged_models(self, *args: Any, **kwargs: Any) -> Any:
        models, token = self._reg.search_logged_models(*args, **kwargs)
        return [m for m in models if self._logged_allowed(m["info"], write=False)], token

    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        for model_id, _step in models:
            self.logged_model_info(model_id)
        run = self.tracking._store.get_run(run_id)
        if not self.policy.can_write_run(self.caller, run):
            raise denied(f"User '{self.caller.name}' may not change run {run_id}.")
        self._reg.log_outputs(run_id, models)


def guard_registry(registry: AbstractRegistryStore, tracking: GuardedStore) -> GuardedRegistry:
    """``registry`` as the caller of ``tracking`` (a guarded store) may use it."""
    return GuardedRegistry(registry, tracking)
