"""Who may see and change what on a shared (multi-user) tracking service.

Every REST call of the multi-user mode goes through :class:`GuardedStore`, a
view of the tracking store for one caller: reads of runs the caller may not
see answer "not found" (a private run's existence is not revealed), changes
the caller may not make answer 403 ``PERMISSION_DENIED``, searches filter in
SQL, and the identity recorded on new runs and experiments comes from the
authenticated caller, never from the request. Store methods not listed here
are refused, so a new endpoint is closed until its rule is written.

The rules (:class:`AccessPolicy`, replaceable through
``MLOpsApp.access_policy_class``):

- a user sees and changes their own runs;
- runs of users sharing a hub group with them (their team) are visible,
  read-only unless ``AccessPolicy.team_can_write``;
- runs tagged ``mlops.visibility=private`` are visible to their user only;
- experiments are visible to all; only their owner (tag ``mlops.owner``, set
  from the creator) renames, deletes or tags them;
- admins see and change everything.

Traces follow the runs' rules, with their owner in tag ``mlops.owner``
(:mod:`.trace_access`).

The model registry follows the same rules (:mod:`.registry_access`): a registered
model belongs to its creator and a team (tag ``mlops.team``, a hub group); the
team reads it, its owner and the team's maintainers (``AccessPolicy.maintainers``)
change it, ``mlops.visibility=private`` keeps it to its owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Dict, List, Unicode
from traitlets.config import LoggingConfigurable

from ..tracking.errors import PERMISSION_DENIED, TrackingError, not_found
from ..tracking.traces import OWNER_TAG, VISIBILITY_TAG
from .trace_access import TraceGuard

if TYPE_CHECKING:
    from ..tracking.entities import Metric, Run, RunInfo
    from ..tracking.store import TrackingStore

#: A registered model's team: a hub group (default: the creator's first group).
TEAM_TAG = "mlops.team"
USER_TAG = "mlflow.user"
#: Tags only the service writes: the identity of a run or an experiment.
IDENTITY_TAGS = frozenset({OWNER_TAG, USER_TAG})


@dataclass(frozen=True)
class Caller:
    """The authenticated user of one request."""

    name: str
    admin: bool = False
    #: Users sharing a group with the caller (the caller included or not).
    teammates: frozenset[str] = field(default_factory=frozenset)
    #: The caller's hub groups (teams, for registered models).
    groups: frozenset[str] = field(default_factory=frozenset)
    #: The groups whose models the caller maintains (``AccessPolicy.maintainers``).
    maintains: frozenset[str] = field(default_factory=frozenset)


def caller_of(user: Any) -> Caller:
    """A :class:`Caller` from jupyter_server's ``current_user`` (a hub user carries
    ``admin`` and ``teammates``; any other user is on their own)."""
    name = getattr(user, "username", None) or getattr(user, "name", None)
    if not name:
        raise TrackingError("Authentication required.", "UNAUTHENTICATED")
    return Caller(
        name=str(name),
        admin=bool(getattr(user, "admin", False)),
        teammates=frozenset(getattr(user, "teammates", ()) or ()),
        groups=frozenset(getattr(user, "groups", ()) or ()),
    )


def anonymous_identity_problem(provider: Any) -> str | None:
    """Why ``provider`` cannot serve the multi-user mode, or None if it can.

    jupyter_server's own providers (token, password, no auth) do not name users:
    every token or password login becomes a new random "Anonymous ..." user, so a
    client would not even find the run it just created. Any other provider (the
    hub's, or one configured by the admin) is trusted to name its users."""
    from jupyter_server.auth.identity import (
        IdentityProvider,
        LegacyIdentityProvider,
        PasswordIdentityProvider,
    )

    kind = type(provider)
    if kind not in (IdentityProvider, PasswordIdentityProvider, LegacyIdentityProvider):
        return None
    return (
        f"MLOpsApp.multi_user=True needs an identity provider that names each user, and "
        f"jupyter_server's {kind.__name__} gives every token or password login a new "
        "anonymous identity (nobody would own, or find, the runs they create). Run the "
        "shared service under JupyterHub with `jupyter mlops service` (it sets "
        "ServerApp.identity_provider_class=jupyter_mlops.hub.identity.HubIdentityProvider), "
        "or set ServerApp.identity_provider_class to a provider that names users; for one "
        "user behind a Jupyter token, leave MLOpsApp.multi_user off."
    )


def denied(message: str) -> TrackingError:
    return TrackingError(message, PERMISSION_DENIED)


class AccessPolicy(LoggingConfigurable):
    """The per-user rules of the shared tracking service (see the module docstring)."""

    team_can_write = Bool(
        False,
        config=True,
        help="""Let members of a team change (log to, tag, end, delete) each other's
        runs. Off: a teammate's runs are read-only.""",
    )

    maintainers = Dict(
        key_trait=Unicode(),
        value_trait=List(Unicode()),
        config=True,
        help="""Maintainers of each team's models: ``{hub group: [users]}``, e.g.
        ``{"vision": ["bob"]}``. A maintainer of a group changes every model of that team
        (versions, stages, aliases, tags, deletion), besides each model's owner.""",
    )

    def caller(self, user: Any) -> Caller:
        """The request's user as the rules see it (the groups they maintain added)."""
        c = caller_of(user)
        maintains = frozenset(g for g, names in self.maintainers.items() if c.name in names)
        return replace(c, maintains=maintains) if maintains else c

    def can_read_model(self, caller: Caller, owner: str | None, tags: dict[str, str]) -> bool:
        """A registered model: its owner, its team (tag ``mlops.team``; without one, the
        owner's teammates) unless private, admins."""
        if caller.admin or (owner and owner == caller.name):
            return True
        if tags.get(VISIBILITY_TAG) == "private":
            return False
        team = tags.get(TEAM_TAG)
        if team:
            return team in caller.groups
        return bool(owner) and owner in caller.teammates

    def can_write_model(self, caller: Caller, owner: str | None, tags: dict[str, str]) -> bool:
        """Its owner, the maintainers of its team, admins (and the team with
        ``team_can_write``)."""
        if caller.admin or (owner and owner == caller.name):
            return True
        team = tags.get(TEAM_TAG)
        if team and team in caller.maintains and tags.get(VISIBILITY_TAG) != "private":
            return True
        return self.team_can_write and self.can_read_model(caller, owner, tags)

    def can_read_run(self, caller: Caller, run: Run) -> bool:
        owner = run.info.user_id
        if caller.admin or owner == caller.name:
            return True
        if run.data.tags.get(VISIBILITY_TAG) == "private":
            return False
        return bool(owner) and owner in caller.teammates

    def can_write_run(self, caller: Caller, run: Run) -> bool:
        if caller.admin or run.info.user_id == caller.name:
            return True
        return self.team_can_write and self.can_read_run(caller, run)

    def can_read_trace(self, caller: Caller, owner: str | None, tags: dict[str, str]) -> bool:
        """A trace (its owner: tag ``mlops.owner``), as a run: its owner, the owner's team
        unless private, admins."""
        if caller.admin or (owner and owner == caller.name):
            return True
        if tags.get(VISIBILITY_TAG) == "private":
            return False
        return bool(owner) and owner in caller.teammates

    def can_write_trace(self, caller: Caller, owner: str | None, tags: dict[str, str]) -> bool:
        if caller.admin or (owner and owner == caller.name):
            return True
        return self.team_can_write and self.can_read_trace(caller, owner, tags)

    def can_manage_experiment(self, caller: Caller, tags: dict[str, str]) -> bool:
        return caller.admin or tags.get(OWNER_TAG) == caller.name

    def visible_user_ids(self, caller: Caller) -> list[str] | None:
        """Whose runs a search returns (None: everyone's)."""
        if caller.admin:
            return None
        return sorted(caller.teammates | {caller.name})

    def guard(self, store: TrackingStore, user: Any) -> GuardedStore:
        return GuardedStore(store, self.caller(user), self)


class GuardedStore(TraceGuard):
    """The tracking store as one caller may use it (the REST endpoints' ``store``);
    MLflow's tracing calls are :class:`.trace_access.TraceGuard`'s."""

    def __init__(self, store: TrackingStore, caller: Caller, policy: AccessPolicy) -> None:
        self._store = store
        self.caller = caller
        self.policy = policy
        #: The caller's view of the registry (set by ``registry_access.guard_registry``):
        #: the artifacts proxy checks logged models' files with it.
        self.registry: Any = None

    @property
    def engine(self) -> Any:
        """The database, for MLflow 3's model outputs on runs/get (of a run already read)."""
        return getattr(self._store, "engine", None)

    def __getattr__(self, name: str) -> Any:
        raise denied(f"'{name}' is not available on the shared tracking service.")

    # -- checks ----------------------------------------------------------
    def _readable(self, run_id: str) -> Run:
        run = self._store.get_run(run_id)
        if not self.policy.can_read_run(self.caller, run):
            raise not_found(f"Run with id={run_id} not found")
        return run

    def _writable(self, run_id: str) -> Run:
        run = self._readable(run_id)
        if not self.policy.can_write_run(self.caller, run):
            raise denied(
                f"User '{self.caller.name}' may not change run {run_id} of user "
                f"'{run.info.user_id}'."
            )
        return run

    def _check_tag_keys(self, keys: Sequence[str]) -> None:
        for key in keys:
            if key in IDENTITY_TAGS and not self.caller.admin:
                raise denied(f"Tag '{key}' is set by the tracking service from your identity.")

    def _manageable(self, experiment_id: str) -> None:
        exp = self._store.get_experiment(experiment_id)
        if not self.policy.can_manage_experiment(self.caller, exp.tags):
            owner = exp.tags.get(OWNER_TAG)
            whose = f"of user '{owner}'" if owner else "without an owner"
            raise denied(
                f"User '{self.caller.name}' may not change experiment {experiment_id} {whose}."
            )

    # -- experiments: visible to all, managed by their owner --------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        if artifact_location:
            # A caller-chosen location could point into another team's files.
            raise denied("Experiments on the shared service use the service's artifact root.")
        tags = {**(tags or {}), OWNER_TAG: self.caller.name}
        return self._store.create_experiment(name, None, tags)

    def get_experiment(self, experiment_id: str) -> Any:
        return self._store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Any:
        return self._store.get_experiment_by_name(name)

    def search_experiments(self, **kwargs: Any) -> Any:
        return self._store.search_experiments(**kwargs)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._manageable(experiment_id)
        self._store.rename_experiment(experiment_id, new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self._manageable(experiment_id)
        self._store.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self._manageable(experiment_id)
        self._store.restore_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._manageable(experiment_id)
        self._check_tag_keys([key])
        self._store.set_experiment_tag(experiment_id, key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._manageable(experiment_id)
        self._check_tag_keys([key])
        self._store.delete_experiment_tag(experiment_id, key)

    # -- runs ------------------------------------------------------------
    def create_run(self, experiment_id: str, user_id: str | None = None, **kwargs: Any) -> Run:
        # The identity is the caller's, whatever the body said.
        tags = {**(kwargs.pop("tags", None) or {}), USER_TAG: self.caller.name}
        run_id = kwargs.get("run_id")
        if run_id and not self._may_know(run_id):
            # The id (a client's own, api/v1/runs/create) is taken by a run the caller
            # cannot see: to the caller that run does not exist (runs/get says 404), so
            # "already exists" would reveal it. The run is created under a new id, as
            # when a server picks the id; the client maps its id to the one answered.
            kwargs["run_id"] = None
        return self._store.create_run(experiment_id, user_id=self.caller.name, tags=tags, **kwargs)

    def get_run(self, run_id: str) -> Run:
        return self._readable(run_id)

    def _may_know(self, run_id: str) -> bool:
        """False when ``run_id`` names a run the caller may not read."""
        try:
            run = self._store.get_run(run_id)
        except TrackingError:
            return True  # no such run
        return self.policy.can_read_run(self.caller, run)

    def update_run_info(self, run_id: str, **kwargs: Any) -> RunInfo:
        self._writable(run_id)
        return self._store.update_run_info(run_id, **kwargs)

    def delete_run(self, run_id: str) -> None:
        self._writable(run_id)
        self._store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._writable(run_id)
        self._store.restore_run(run_id)

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = (), tags: Any = ()) -> None:
        self._writable(run_id)
        self._check_tag_keys([k for k, _ in tags])
        self._store.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    def log_bulk(self, run_id: str, *args: Any, **kwargs: Any) -> Any:
        self._writable(run_id)
        tags = kwargs.get("tags") or ()
        self._check_tag_keys([k for k, _ in (tags.items() if isinstance(tags, dict) else tags)])
        return self._store.log_bulk(run_id, *args, **kwargs)

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self._writable(run_id)
        self._store.log_metric(run_id, metric)

    def log_param(self, run_id: str, key: str, value: str) -> None:
        self._writable(run_id)
        self._store.log_param(run_id, key, value)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self._writable(run_id)
        self._check_tag_keys([key])
        self._store.set_tag(run_id, key, value)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._writable(run_id)
        self._check_tag_keys([key])
        self._store.delete_tag(run_id, key)

    def log_inputs(self, run_id: str, *args: Any, **kwargs: Any) -> None:
        self._writable(run_id)
        self._store.log_inputs(run_id, *args, **kwargs)

    def heartbeat(self, run_ids: Sequence[str], now: int | None = None) -> None:
        # Like the store, unknown ids are ignored; so are runs the caller may not change
        # (nobody keeps another user's run alive).
        mine = []
        for run_id in run_ids:
            try:
                self._writable(run_id)
            except TrackingError:
                continue
            mine.append(run_id)
        self._store.heartbeat(mine, now)

    def get_metric_history(self, run_id: str, *args: Any, **kwargs: Any) -> Any:
        self._readable(run_id)
        return self._store.get_metric_history(run_id, *args, **kwargs)

    def get_metric_series(self, run_id: str, *args: Any, **kwargs: Any) -> Any:
        self._readable(run_id)
        return self._store.get_metric_series(run_id, *args, **kwargs)

    def search_runs(self, experiment_ids: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        kwargs["visible_user_ids"] = self.policy.visible_user_ids(self.caller)
        kwargs["viewer_id"] = self.caller.name
        return self._store.search_runs(experiment_ids, *args, **kwargs)

    def count_runs(self, experiment_ids: Sequence[str], *args: Any, **kwargs: Any) -> int:
        kwargs["visible_user_ids"] = self.policy.visible_user_ids(self.caller)
        kwargs["viewer_id"] = self.caller.name
        return self._store.count_runs(experiment_ids, *args, **kwargs)

    def changed_runs(self, experiment_ids: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        kwargs["visible_user_ids"] = self.policy.visible_user_ids(self.caller)
        kwargs["viewer_id"] = self.caller.name
        return self._store.changed_runs(experiment_ids, *args, **kwargs)

    def run_keys(self, experiment_ids: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        kwargs["visible_user_ids"] = self.policy.visible_user_ids(self.caller)
        kwargs["viewer_id"] = self.caller.name
        return self._store.run_keys(experiment_ids, *args, **kwargs)

    # -- artifacts ---------------------------------------------------------
    @property
    def artifact_root(self) -> str:
        return self._store.artifact_root  # type: ignore[attr-defined,no-any-return]

    def artifact_repo(self, artifact_uri: str) -> Any:
        repo = self._store.artifact_repo(artifact_uri)
        if artifact_uri == self.artifact_root:
            # The artifacts proxy: paths are <experiment id>/<run id>/..., checked per call.
            return GuardedArtifacts(repo, self)
        # A run's own root, reached only after reading the run (artifacts/list): read-only.
        return GuardedArtifacts(repo, self, read_only=True)


class GuardedMultipart:
    """Multipart uploads as one caller may make them: each call needs the right to write
    its destination (as a ``PUT`` of it would)."""

    def __init__(self, inner: Any, artifacts: GuardedArtifacts) -> None:
        self._inner, self._artifacts = inner, artifacts

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def checked(dest: str, *args: Any) -> Any:
            self._artifacts._check(dest, write=True)
            return method(dest, *args)

        return checked


class GuardedArtifacts:
    """An artifact repository as one caller may use it (the MLflow artifacts proxy).

    Under the store's root a path is ``<experiment id>/<run id>/...``: reading it
    needs the run to be visible (else 404), writing needs the right to change the
    run. Anything shallower (which would list other users' run ids) is for admins."""

    def __init__(self, repo: Any, guard: GuardedStore, read_only: bool = False) -> None:
        self._repo = repo
        self._guard = guard
        self._read_only = read_only
        self.root = repo.root

    def _check(self, path: str, write: bool) -> None:
        from ..tracking.artifacts import clean_path

        caller = self._guard.caller
        if self._read_only:
            if write:
                raise denied("Artifacts are written through the artifacts proxy.")
            return
        parts = clean_path(path).split("/")
        if len(parts) < 2 or not parts[1]:
            if caller.admin:
                return
            raise denied(
                "Artifact paths start with <experiment id>/<run id>/ on the shared service."
            )
        experiment_id, run_id = parts[0], parts[1]
        if run_id == "traces":
            # <experiment id>/traces/<trace id>/...: a trace's data (MLflow's traces.json);
            # batch files (traces/batches/) hold many users' traces: the store's only
            trace_id = parts[2] if len(parts) > 2 else ""
            if not trace_id or trace_id == "batches":
                if caller.admin:
                    return
                raise denied("Trace data is read through the trace routes.")
            info = self._guard.trace_info(trace_id, write=write)
            if str(info.experiment_id) != experiment_id:
                raise not_found(f"No such artifact: '{path}'")
            return
        if run_id == "models" and self._guard.registry is not None:
            # <experiment id>/models/<model id>/...: an MLflow 3 logged model's files
            model_id = parts[2] if len(parts) > 2 else ""
            info = self._guard.registry.logged_model_info(model_id, write=write)
            if str(info.get("experiment_id")) != experiment_id:
                raise not_found(f"No such artifact: '{path}'")
            return
        run = self._guard._writable(run_id) if write else self._guard._readable(run_id)
        if str(run.info.experiment_id) != experiment_id:
            raise not_found(f"No such artifact: '{path}'")

    def put(self, path: str, data: Any) -> None:
        self._check(path, write=True)
        self._repo.put(path, data)

    def open_writer(self, path: str) -> Any:
        self._check(path, write=True)
        return self._repo.open_writer(path)

    def multipart(self) -> Any:
        inner = self._repo.multipart()
        return None if inner is None else GuardedMultipart(inner, self)

    def delete(self, path: str = "") -> None:
        self._check(path, write=True)
        self._repo.delete(path)

    def open(self, path: str) -> Any:
        self._check(path, write=False)
        return self._repo.open(path)

    def list(self, path: str = "") -> Any:
        self._check(path, write=False)
        return self._repo.list(path)

    def is_dir(self, path: str) -> bool:
        self._check(path, write=False)
        return bool(self._repo.is_dir(path))

    def exists(self, path: str) -> bool:
        self._check(path, write=False)
        return bool(self._repo.exists(path))
