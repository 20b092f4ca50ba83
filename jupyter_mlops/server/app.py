"""``MLOpsApp``: the Jupyter server extension of jupyter-mlops.

It opens the tracking store once, serves the REST routes under
``{base_url}mlops/``, runs store calls in a small thread pool (the store is
synchronous SQLAlchemy) so the server stays responsive, reaps runs whose
writer stopped sending heartbeats, and exports the tracking URI into its own
environment so every kernel it launches logs into the same store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop, PeriodicCallback
from traitlets import Bool, Float, Instance, Int, Type, Unicode, default

from ..events import EventBus
from .handlers.base import BodyBudget, Unavailable
from .run_events import RunEndRelay

if TYPE_CHECKING:
    from ..deployments.service import DeploymentService
    from ..hubagent.runs import HubRunsService
    from ..hubagent.service import HubAgentService
    from ..jobs.service import TrainingService
    from ..notifications.service import NotificationService
    from ..pipelines.service import PipelineService
    from ..projects.service import ProjectService
    from ..registry.abstract_store import AbstractRegistryStore
    from ..services import Service
    from ..tracking.store import TrackingStore

#: Variables exported for kernels (CONTRIBUTING.md, "Environment variables").
ENV_TRACKING_URI = "JUPYTER_MLOPS_TRACKING_URI"
ENV_SERVER_URL = "JUPYTER_MLOPS_SERVER_URL"
ENV_SERVER_TOKEN = "JUPYTER_MLOPS_SERVER_TOKEN"
ENV_MLFLOW_URI = "MLFLOW_TRACKING_URI"
ENV_MLFLOW_TOKEN = "MLFLOW_TRACKING_TOKEN"
#: Where MLflow's notebook display points its trace <iframe> (default: the tracking URI,
#: a server-side address): our page, by path, so the browser loads it from JupyterLab's
#: own origin with its login (server/handlers/trace_page.py).
ENV_MLFLOW_TRACE_RENDERER = "MLFLOW_NOTEBOOK_TRACE_RENDERER_BASE_URL"
#: MLflow 3.17 exports spans from a batch processor's thread, up to seconds after the cell:
#: its notebook display hook (run right after the cell) then finds no trace to show.
#: Kernels get the simple processor (spans handed over at their end; MLflow still sends
#: them over the network asynchronously).
ENV_MLFLOW_BATCH_SPANS = "MLFLOW_USE_BATCH_SPAN_PROCESSOR"
#: Names of the variables a jupyter-mlops server exported: a server started from
#: a terminal of another one must not take those for the user's own settings.
ENV_MARKER = "JUPYTER_MLOPS_EXPORTED"


class MLOpsApp(ExtensionApp):
    """Experiment tracking inside Jupyter: MLflow's REST API and jupyter-mlops' own."""

    name = "jupyter_mlops"
    load_other_extensions = True

    database_url = Unicode(
        config=True,
        help="""SQLAlchemy URL of the tracking database: ``sqlite:///<path>`` or
        ``postgresql://user@host/db``. Default: ``<jupyter data dir>/mlops/mlops.db``,
        the same store the client uses outside Jupyter.""",
    )

    @default("database_url")
    def _default_database_url(self) -> str:
        return "sqlite:///" + os.path.join(jupyter_data_dir(), "mlops", "mlops.db")

    artifact_root = Unicode(
        "",
        config=True,
        help="""Where artifacts of experiments without their own location are kept:
        a directory or an fsspec URL (``s3://bucket/prefix``). The store records its
        root, so kernels that open the database directly use the same one. Unset: an
        existing store keeps its recorded root; a new one gets ``artifacts/`` beside
        its SQLite file (``<jupyter data dir>/mlops/artifacts`` for the default
        database) or ``<jupyter data dir>/mlops/artifacts`` for PostgreSQL.""",
    )

    heartbeat_timeout = Float(
        300.0,
        config=True,
        help="""Seconds after its last heartbeat before a RUNNING run is marked KILLED
        (its kernel or script died without ending it). Only runs whose writer sent
        heartbeats are reaped. Writers beat every 10 s (JUPYTER_MLOPS_HEARTBEAT_INTERVAL);
        the default is the client's own sweep's (JUPYTER_MLOPS_HEARTBEAT_TIMEOUT), long
        because a kernel stuck in C code that holds the GIL cannot beat but is not dead.
        0 disables the reaper.""",
    )

    trace_file_sweep_interval = Float(
        3600.0,
        config=True,
        help="""Seconds between sweeps of orphaned trace data files (batch files no trace
        names, left by a crash between a file's write and its rows' commit; see
        docs/tracing.md). The first sweep runs at start-up. 0 disables the sweep.""",
    )

    trace_file_grace = Float(
        3600.0,
        config=True,
        help="""Age in seconds before a trace data file no trace names counts as orphaned
        (a file being committed right now is seconds old).""",
    )

    max_request_body = Int(
        64 * 1024 * 1024,
        config=True,
        help="""Largest JSON request body in bytes (``api/v1/runs/log-bulk`` carries
        whole metric series). MLflow's own 1 MB limit on ``runs/log-batch`` applies
        separately. Artifact uploads are limited by ``max_artifact_upload``.""",
    )

    max_artifact_upload = Int(
        100 * 1024**3,
        config=True,
        help="""Largest artifact upload in bytes (one ``PUT`` of the artifact proxy
        ``api/2.0/mlflow-artifacts/artifacts/<path>``, or one part of a multipart upload).
        Uploads are streamed to their file, so this bounds disk use, not memory; it
        replaces ``ServerApp.max_body_size`` on these routes. A declared larger body is
        answered 400 unread (the connection is then closed).""",
    )

    max_inflight_bytes = Int(
        64 * 1024 * 1024,
        config=True,
        help="""Bytes of JSON request bodies the server reads and handles at once, over
        all requests (each reserves its Content-Length before its body is read). Past
        it a request waits unread for up to ``inflight_wait`` seconds, then is answered
        503 TEMPORARILY_UNAVAILABLE (clients retry; the jupyter-mlops client spools). A
        single body larger than the budget is handled alone. This bounds the memory
        spent on request bodies (``api/v1/runs/log-bulk`` takes up to about 5 times its
        body size while it is parsed and stored): see docs/reliability.md.""",
    )

    inflight_wait = Float(
        60.0,
        config=True,
        help="""Seconds a request waits for room in ``max_inflight_bytes`` before it is
        answered 503 (busy).""",
    )

    max_url_length = Int(
        256 * 1024,
        config=True,
        help="""Longest request URL (path and query string) in bytes; longer ones are
        answered 400 with MLflow's error JSON (``run_ids`` of 200 runs take ~7 KB). The
        server also raises tornado's header limit (64 KiB by default, past which the
        connection is reset without an answer) to four times this value, so that such
        requests get an answer.""",
    )

    max_query_fields = Int(
        10000,
        config=True,
        help="""Most fields a request's query string may have (repeated keys count each:
        ``?run_id=a&run_id=b`` is 2). Tornado (6.5.8 and later) refuses more than 1000 with
        an empty 400 before any handler runs, which MLflow's clients cannot read; MLflow's
        UI routes take lists in the query string and answer a too long one with their own
        message. The limit is tornado's, process-wide, and only raised, never lowered; the
        query string stays bounded by ``max_url_length``. Example: ``20000``.""",
    )

    export_kernel_env = Bool(
        True,
        config=True,
        help="""Export JUPYTER_MLOPS_TRACKING_URI, JUPYTER_MLOPS_SERVER_URL/_TOKEN and
        (unless already set) MLFLOW_TRACKING_URI/_TOKEN into the server's environment,
        so kernels it launches log into this store with no configuration. Variables
        the user already set are left alone.""",
    )

    store_threads = Int(
        4,
        config=True,
        help="Threads that run store calls and artifact I/O off the server's event loop.",
    )

    multi_user = Bool(
        False,
        config=True,
        help="""Serve many users from one store (the hub-wide tracking service,
        ``jupyter mlops service``): every call is checked by ``access_policy_class``
        against the authenticated user, new runs, experiments and models record that
        user, and only MLflow's tracking API, its model registry and its artifacts proxy
        are served (no traces, pipelines, UI routes or kernel environment). It needs an identity
        provider that names users (the hub's, which ``jupyter mlops service`` sets): the
        server refuses to start under jupyter_server's token or password login, whose
        callers are all anonymous. Off: the single-user server, where the Jupyter token
        holder owns everything.""",
    )

    hub_tracking_url = Unicode(
        config=True,
        help="""The hub-wide tracking service whose runs this server's tracking UI shows: the
        routes of the Runs panel, run detail, compare, charts, artifacts, datasets, logged models
        and traces (MLflow's tracking API, its artifacts proxy, ``api/v1``'s run routes) are
        relayed to it with this server's hub token (``$JUPYTERHUB_API_TOKEN``, i.e. as its user),
        e.g. ``http://proxy-public/services/mlops-tracking/mlops``. Default: the
        ``$JUPYTER_MLOPS_TRACKING_URI`` the team hub's spawner sets to that service (where the
        kernels log), when the server runs under JupyterHub; otherwise empty (the server's own
        store). The server's services (pipelines, training jobs, project runs) track their runs
        there too, and deployments resolve models in its registry (server/team_store.py). Set ``""``
        to show this server's own store under a hub. See spawner/GUIDE.md §6.""",
    )

    @default("hub_tracking_url")
    def _default_hub_tracking_url(self) -> str:
        from .handlers.hub_relay import default_url

        return default_url()

    hub_registry_url = Unicode(
        config=True,
        help="""The hub-wide tracking service whose team model registry this server's
        registry routes (the Models panel's: ``registered-models/*``, ``model-versions/*``,
        ``api/v1/registry/lineage``) are relayed to, with this server's hub token
        (``$JUPYTERHUB_API_TOKEN``, i.e. as its user), e.g.
        ``http://proxy-public/services/mlops-tracking/mlops``. Default: the
        ``$JUPYTER_MLOPS_TRACKING_URI`` the team hub's spawner sets to that service, when
        the server runs under JupyterHub; otherwise empty (the server's own registry). Set
        ``""`` to keep the server's own registry under a hub. See spawner/GUIDE.md §6.""",
    )

    @default("hub_registry_url")
    def _default_hub_registry_url(self) -> str:
        from .handlers.hub_relay import default_url

        return default_url()

    hub_relay_timeout = Float(
        60.0,
        config=True,
        help="""Seconds a relayed request waits for the hub's tracking service (connecting
        and answering) before it answers 503 TEMPORARILY_UNAVAILABLE, e.g. 30.""",
    )

    trace_page_wait = Float(
        5.0,
        config=True,
        help="""Seconds the page MLflow's notebook display frames
        (``static-files/lib/notebook-trace-renderer/index.html``) waits for traces not stored
        yet (MLflow exports them from a queue) before it answers with what it has and reloads
        itself, e.g. 10 on a loaded machine.""",
    )

    hub_relay_download_timeout = Float(
        3600.0,
        config=True,
        help="""Seconds a relayed file download (artifacts, model files) may take in all,
        e.g. 600; it starts within ``hub_relay_timeout`` all the same.""",
    )

    access_policy_class = Type(
        "jupyter_mlops.server.access.AccessPolicy",
        klass="jupyter_mlops.server.access.AccessPolicy",
        config=True,
        help="""The rules of the multi-user mode: who sees and changes which runs and
        experiments (a subclass of jupyter_mlops.server.access.AccessPolicy).""",
    )

    access_policy = Instance("jupyter_mlops.server.access.AccessPolicy", allow_none=True)

    # -- services (jupyter_mlops/services.py): one ``<name>_class`` trait and one typed
    # attribute ``<name>`` each, listed in SERVICES; not built in multi-user mode.
    # The notification service first: it starts first and stops last, so what the others
    # end while they stop is still told (e-mail, webhooks).
    SERVICES: tuple[str, ...] = (
        "notification_service",
        "pipeline_service",
        "deployment_service",
        "training_service",
        "project_service",
        "hub_agent_service",
        "hub_runs_service",
    )

    pipeline_service_class = Type(
        "jupyter_mlops.pipelines.service.PipelineService",
        klass="jupyter_mlops.pipelines.service.PipelineService",
        config=True,
        help="""The pipeline service behind ``api/v1/pipelines/``: runs, schedules,
        targets. A subclass of jupyter_mlops.pipelines.service.PipelineService, e.g.
        ``c.MLOpsApp.pipeline_service_class = "mypkg.pipelines.AuditedPipelineService"``.
        Its options are set on the class, e.g. ``c.PipelineService.parallelism = 4``.""",
    )

    #: The pipeline service (None in multi-user mode, or when building it failed).
    pipeline_service: PipelineService | None = None

    deployment_service_class = Type(
        "jupyter_mlops.deployments.service.DeploymentService",
        klass="jupyter_mlops.deployments.service.DeploymentService",
        config=True,
        help="""The deployment service behind ``api/v1/deployments``: named model deployments
        handed to targets (``local``: scoring processes supervised by this server). A subclass
        of jupyter_mlops.deployments.service.DeploymentService; its options are set on the
        class, e.g. ``c.DeploymentService.stop_on_exit = False``.""",
    )

    #: The deployment service (None in multi-user mode, or when building it failed).
    deployment_service: DeploymentService | None = None

    training_service_class = Type(
        "jupyter_mlops.jobs.service.TrainingService",
        klass="jupyter_mlops.jobs.service.TrainingService",
        config=True,
        help="""The training service behind ``api/v1/jobs`` and ``mlops.jobs.submit``:
        distributed training jobs, their ranks and logs. A subclass of
        jupyter_mlops.jobs.service.TrainingService; its options are set on the class, e.g.
        ``c.TrainingService.max_local_ranks = 16``.""",
    )

    #: The training service (None in multi-user mode, or when building it failed).
    training_service: TrainingService | None = None

    project_service_class = Type(
        "jupyter_mlops.projects.service.ProjectService",
        klass="jupyter_mlops.projects.service.ProjectService",
        config=True,
        help="""The MLflow project service behind ``api/v1/projects`` (the JupyterLab "Run
        MLflow project…" form): reads MLproject files, runs entry points as tracked runs
        with their logs. A subclass of jupyter_mlops.projects.service.ProjectService; its
        options are set on the class, e.g. ``c.ProjectService.default_env_manager =
        "local"``.""",
    )

    #: The project service (None in multi-user mode, or when building it failed).
    project_service: ProjectService | None = None

    notification_service_class = Type(
        "jupyter_mlops.notifications.service.NotificationService",
        klass="jupyter_mlops.notifications.service.NotificationService",
        config=True,
        help="""The notifications behind ``api/v1/notifications`` (what JupyterLab shows with its
        Notification API, e.g. the hub culler's warning). A subclass of
        jupyter_mlops.notifications.service.NotificationService, e.g.
        ``c.NotificationService.keep = 500``.""",
    )

    #: The notification service (None in multi-user mode, or when building it failed).
    notification_service: NotificationService | None = None

    hub_agent_service_class = Type(
        "jupyter_mlops.hubagent.service.HubAgentService",
        klass="jupyter_mlops.hubagent.service.HubAgentService",
        config=True,
        help="""This server's link to the hub's team operations (activity reports, culling
        warnings, job GPU leases, ``api/v1/hub/quota``); does nothing outside a team hub. A
        subclass of jupyter_mlops.hubagent.service.HubAgentService, e.g.
        ``c.HubAgentService.report_interval = 30``.""",
    )

    #: The hub agent (None in multi-user mode, or when building it failed).
    hub_agent_service: HubAgentService | None = None

    hub_runs_service_class = Type(
        "jupyter_mlops.hubagent.runs.HubRunsService",
        klass="jupyter_mlops.hubagent.runs.HubRunsService",
        config=True,
        help="""Tells the ends of the user's runs on the hub's tracking service (where a team
        server's kernels log) as notifications here; does nothing without
        ``hub_tracking_url``. A subclass of jupyter_mlops.hubagent.runs.HubRunsService, e.g.
        ``c.HubRunsService.poll_interval = 30``.""",
    )

    #: The watcher of the user's runs on the hub (None in multi-user mode, or when building it failed).
    hub_runs_service: HubRunsService | None = None

    #: Where services (and the REST write path) say that something ended; the
    #: notification service listens (jupyter_mlops/events.py).
    events: EventBus

    _store: TrackingStore | None = None
    #: The store as the request handlers of the single-user server see it (run ends told).
    _relay: RunEndRelay | None = None
    _registry_store: AbstractRegistryStore | None = None
    #: The hub's tracking service as the services use it (a team server's; else None).
    _team_store: TrackingStore | None = None
    _budget: BodyBudget | None = None
    _executor: ThreadPoolExecutor | None = None
    _reaper: PeriodicCallback | None = None
    _sweeper: PeriodicCallback | None = None
    _closing = False
    #: The task starting the services, while it runs.
    _starting: asyncio.Task[Any] | None = None
    #: Store calls submitted and not yet answered (read on the event loop only).
    pending_calls = 0

    # -- lifecycle ---------------------------------------------------------
    def initialize_settings(self) -> None:
        from ..tracking import open_store

        if self.multi_user:
            self._require_named_users()
        self._raise_query_field_limit()
        url = self.database_url
        if url.startswith("sqlite:///"):
            parent = os.path.dirname(url[len("sqlite:///") :].split("?", 1)[0])
            if parent:
                os.makedirs(parent, exist_ok=True)
        self._store = open_store(url, artifact_root=self.artifact_root or None)
        from ..registry.sqlstore import SqlRegistryStore

        # the model registry, in the tracking store's database
        self._registry_store = SqlRegistryStore(self._store)
        self.settings["mlops_registry_store"] = self._registry_store
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, self.store_threads), thread_name_prefix="mlops-store"
        )
        self._exported: dict[str, str | None] = {}
        self.log.info("jupyter-mlops: tracking store %s", _redact(url))
        if self.multi_user:
            self.access_policy = self.access_policy_class(parent=self)
            self.log.info(
                "jupyter-mlops: multi-user mode, access policy %s",
                type(self.access_policy).__name__,
            )
        if self.export_kernel_env and not self.multi_user:
            self.export_environment()
        self.events = EventBus()
        self._start_reaper()
        self._start_sweeper()
        if not self.multi_user:
            self._relay = RunEndRelay(self._store, self.events.publish)
            self._build_services()
        # Services start on the first turn of the event loop: in a server that is
        # after start-up; in an in-process test server, before its first request
        # (which never calls _start_jupyter_server_extension).
        IOLoop.current().add_callback(self._start_services)

    def _require_named_users(self) -> None:
        """Refuse to start the multi-user mode under an identity provider that names
        nobody (SystemExit passes jupyter_server's extension loader, which would log
        an error and serve on without us): every caller's runs would be lost to them."""
        from .access import anonymous_identity_problem

        problem = anonymous_identity_problem(getattr(self.serverapp, "identity_provider", None))
        if problem:
            self.log.critical("jupyter-mlops: %s", problem)
            raise SystemExit(1)

    # -- services ----------------------------------------------------------
    def _build_services(self) -> None:
        """Build each service from its ``<name>_class`` trait and publish it as the
        attribute ``<name>`` and the tornado setting ``mlops_<name>``. A service that
        fails to build is left out (its routes answer 503); the rest of the server runs."""
        root = getattr(self.serverapp, "root_dir", None) or os.getcwd()
        runs, engine = self._services_store(), getattr(self.store, "engine", None)
        for name in self.SERVICES:
            cls = getattr(self, f"{name}_class")
            try:
                service = cls(runs, root, engine=engine, parent=self, log=self.log)
            except Exception:
                self.log.exception("jupyter-mlops: creating the %s failed", name.replace("_", " "))
                continue
            setattr(self, name, service)
            self.settings[f"mlops_{name}"] = service
            service.events.subscribe(self.events.publish)
        if self.notification_service is not None:
            self.events.subscribe(self.notification_service.on_event)

    def _services_store(self) -> Any:
        """Where the services record their runs: this server's store, or on a team server
        whose tracking UI is relayed to the hub (``hub_tracking_url``) the hub's tracking
        service as this server's user, so that their runs show in that UI
        (server/team_store.py)."""
        if not self.hub_tracking_url:
            return self.store
        from .handlers.hub_relay import hub_token
        from .team_store import TeamStore

        self._team_store = TeamStore(self.hub_tracking_url, hub_token())
        self.log.info(
            "jupyter-mlops: pipelines, jobs and project runs are tracked on %s",
            self.hub_tracking_url,
        )
        return self._team_store

    def services(self) -> list[Service]:
        """The services built, in start order."""
        return [s for s in (getattr(self, name) for name in self.SERVICES) if s is not None]

    async def _start_services(self) -> None:
        if self._closing:
            return
        if self.export_kernel_env and not self.multi_user:
            # The server found its port after loading the extensions (another one may
            # have held the configured port): export it before services read the
            # environment their processes inherit.
            self.export_environment()
        self._starting = asyncio.current_task()
        try:
            for service in self.services():
                try:
                    await service.start()
                except Exception:
                    self.log.exception("jupyter-mlops: starting %s failed", type(service).__name__)
        finally:
            self._starting = None

    async def _stop_services(self) -> None:
        """Take every service off the app (new requests answer 503), then stop them in
        reverse start order; one failing does not keep the others running. A stop that
        comes while they start (an in-process server stopped at once) waits for the
        start to end first, so nothing a start begins outlives the stop."""
        starting = self._starting
        if starting is not None and starting is not asyncio.current_task():
            await asyncio.wait({starting}, timeout=60)
        agent = self.hub_agent_service
        if agent is not None and agent.cull_warned:
            # The hub's culler stops this server: what its services end now was culled.
            self.events.stopping_reason = "culled"
        services = self.services()
        for name in self.SERVICES:
            setattr(self, name, None)
        for service in reversed(services):
            try:
                await service.stop()
            except Exception:
                self.log.exception("jupyter-mlops: stopping %s failed", type(service).__name__)

    def initialize_handlers(self) -> None:
        from .handlers import fallback, handlers, multi_user_handlers
        from .openapi import openapi_document

        self.handlers.extend(
            multi_user_handlers()
            if self.multi_user
            else handlers(openapi_document, self.hub_registry_url, self.hub_tracking_url)
        )
        self.handlers.append(fallback())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        self._raise_header_limit()
        # The port is final only once the HTTP server is bound: export again.
        if self.export_kernel_env and not self.multi_user:
            self.export_environment()

    async def stop_extension(self) -> None:
        """Clean shutdown: no new work, queued and running store calls finish (so
        every acknowledged write is committed), then the store closes."""
        self._closing = True
        await self._stop_services()
        for timer in (self._reaper, self._sweeper):
            if timer is not None:
                timer.stop()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(executor.shutdown, wait=True)
            )
            await asyncio.sleep(0)  # let handlers waiting on those calls answer
        store, self._store = self._store, None
        team, self._team_store = self._team_store, None
        if team is not None:
            team.close()
        self._relay = None
        self._registry_store = None
        if store is not None:
            store.close()
        self._restore_environment()

    @property
    def body_budget(self) -> BodyBudget:
        """Request bodies admitted at once (``max_inflight_bytes``)."""
        if self._budget is None:
            self._budget = BodyBudget(self.max_inflight_bytes)
        return self._budget

    def _raise_query_field_limit(self) -> None:
        """Tornado's limit on query-string fields up to ``max_query_fields`` (see there)."""
        from tornado import httputil

        config: Any = getattr(httputil, "_DEFAULT_PARSE_BODY_CONFIG", None)
        setter = getattr(httputil, "set_parse_body_config", None)
        urlencoded = getattr(config, "urlencoded", None)
        if setter is None or urlencoded is None:
            return  # a tornado without the limit
        if urlencoded.max_arguments < self.max_query_fields:
            raised = dataclasses.replace(urlencoded, max_arguments=self.max_query_fields)
            setter(dataclasses.replace(config, urlencoded=raised))

    def _raise_header_limit(self) -> None:
        """Tornado resets a connection whose headers exceed its limit (64 KiB) without
        an answer: raise it past ``max_url_length`` so a long URL gets our 400."""
        server = getattr(self.serverapp, "http_server", None)
        params = getattr(server, "conn_params", None)
        want = 4 * self.max_url_length
        if params is not None and (params.max_header_size or 65536) < want:
            params.max_header_size = want

    # -- the store ---------------------------------------------------------
    @property
    def store(self) -> TrackingStore:
        if self._store is None:
            raise Unavailable()
        return self._store

    @property
    def request_store(self) -> TrackingStore:
        """The store as request handlers use it: runs that end through the REST API are
        told on :attr:`events` (the single-user server; the store itself otherwise)."""
        if self._relay is None:
            return self.store
        self.store  # noqa: B018 - raises Unavailable once the store is closed
        return self._relay  # type: ignore[return-value]  # the store's interface, delegated

    @property
    def registry_store(self) -> AbstractRegistryStore:
        """The model registry (503 while the server is stopping)."""
        if self._registry_store is None:
            raise Unavailable()
        return self._registry_store

    def store_for(self, user: Any) -> Any:
        """The store as ``user`` may use it: the store itself, or in multi-user
        mode a view that enforces the access policy on every call."""
        store = self.store
        if not self.multi_user:
            return store
        if self.access_policy is None:
            raise Unavailable()
        from .registry_access import guard_registry

        guarded = self.access_policy.guard(store, user)
        # the registry's view of the same caller (the artifacts proxy checks logged models with it)
        guard_registry(self.registry_store, guarded)
        return guarded

    def registry_for(self, user: Any) -> Any:
        """The registry as ``user`` may use it (multi-user mode: checked per call)."""
        if not self.multi_user:
            return self.registry_store
        return self.store_for(user).registry

    async def run_blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the store's thread pool."""
        executor = self._executor
        if executor is None or self._closing:
            raise Unavailable()
        try:
            future = executor.submit(fn, *args)
        except RuntimeError:  # shut down meanwhile
            raise Unavailable() from None
        self.pending_calls += 1
        try:
            return await asyncio.wrap_future(future)
        finally:
            self.pending_calls -= 1

    # -- heartbeat reaper --------------------------------------------------
    def _start_reaper(self) -> None:
        if self.heartbeat_timeout <= 0:
            return
        interval_s = min(max(self.heartbeat_timeout / 4, 1.0), 60.0)
        self._reaper = PeriodicCallback(self.reap_stale_runs, interval_s * 1000)
        self._reaper.start()

    async def reap_stale_runs(self) -> list[str]:
        """Mark KILLED the RUNNING runs whose heartbeats stopped."""
        try:
            killed = await self.run_blocking(
                self.store.kill_stale_runs, int(self.heartbeat_timeout * 1000)
            )
        except Unavailable:
            return []
        except Exception:
            self.log.exception("jupyter-mlops: reaping stale runs failed")
            return []
        if killed:
            self.log.info(
                "jupyter-mlops: marked %d silent run(s) KILLED: %s", len(killed), ", ".join(killed)
            )
            await self._tell_killed(killed)
        return list(killed)

    def _start_sweeper(self) -> None:
        if self.trace_file_sweep_interval <= 0:
            return
        self._sweeper = PeriodicCallback(
            self.sweep_trace_files, self.trace_file_sweep_interval * 1000
        )
        self._sweeper.start()
        IOLoop.current().add_callback(self.sweep_trace_files)  # and once at start-up

    async def sweep_trace_files(self) -> list[str]:
        """Delete orphaned trace data files (``trace_file_grace``)."""
        sweep = getattr(self._store, "sweep_trace_files", None)
        if sweep is None:  # a store without batch files
            return []
        try:
            return list(await self.run_blocking(sweep, self.trace_file_grace))
        except Unavailable:
            return []
        except Exception:
            self.log.exception("jupyter-mlops: sweeping trace data files failed")
            return []

    async def _tell_killed(self, run_ids: list[str]) -> None:
        relay = self._relay
        if relay is None:
            return
        why = f"no heartbeat for {self.heartbeat_timeout:g} s: the process logging it stopped"
        for run_id in run_ids:
            try:
                run = await self.run_blocking(self.store.get_run, run_id)
            except Exception:  # noqa: BLE001 - deleted meanwhile, or the store closing: no news
                continue
            relay.ended(run.info, why)

    # -- environment for kernels ------------------------------------------
    def server_url(self) -> str | None:
        """How a process on this machine reaches this server (None on a UNIX socket)."""
        app = self.serverapp
        if app is None or app.sock:
            return None
        ip = app.ip or "127.0.0.1"
        if ip in ("", "*", "0.0.0.0", "localhost", "127.0.0.1"):
            host = "127.0.0.1"
        elif ip in ("::", "::1"):
            host = "[::1]"
        else:
            host = f"[{ip}]" if ":" in ip else ip
        scheme = "https" if app.certfile else "http"
        return f"{scheme}://{host}:{app.port}{app.base_url}"

    def server_token(self) -> str:
        app = self.serverapp
        token = ""
        if app is not None:
            provider = getattr(app, "identity_provider", None)
            token = getattr(provider, "token", "") or ""
        # Under JupyterHub the single-user server accepts the user's own hub token.
        return token or os.environ.get("JUPYTERHUB_API_TOKEN", "")

    def export_environment(self) -> None:
        """Export what kernels need to log here; never override what the user set."""
        url = self.server_url()
        token = self.server_token()
        wanted: dict[str, str] = {ENV_TRACKING_URI: self.database_url}
        if url:
            wanted[ENV_SERVER_URL] = url
            wanted[ENV_MLFLOW_URI] = url + "mlops"
            if os.environ.get(ENV_MLFLOW_URI, url + "mlops") == url + "mlops" or (
                ENV_MLFLOW_URI in self._exported
            ):  # MLflow's traces come here: its iframe too
                wanted[ENV_MLFLOW_TRACE_RENDERER] = urlsplit(url).path + "mlops/"
                wanted[ENV_MLFLOW_BATCH_SPANS] = "false"
        if token:
            wanted[ENV_SERVER_TOKEN] = token
            if url:
                wanted[ENV_MLFLOW_TOKEN] = token
        # The server URL and token describe this server: ours whatever was inherited;
        # so is whatever a parent jupyter-mlops server exported.
        ours = {ENV_SERVER_URL, ENV_SERVER_TOKEN}
        if ENV_MARKER not in self._exported:
            ours |= set(filter(None, os.environ.get(ENV_MARKER, "").split(",")))
        for name, value in wanted.items():
            mine = name in self._exported
            if name in os.environ and not mine and name not in ours:
                if os.environ[name] != value and name == ENV_TRACKING_URI:
                    self.log.warning(
                        "jupyter-mlops: kernels will log to %s=%s (set by the user), not to "
                        "this server's store; set MLOpsApp.database_url to the same URL to "
                        "see those runs here",
                        name,
                        _redact(os.environ[name]),
                    )
                elif os.environ[name] != value:
                    self.log.info("jupyter-mlops: keeping %s set by the user", name)
                continue
            if not mine:
                self._exported[name] = os.environ.get(name)
            os.environ[name] = value
        names = sorted(n for n in self._exported if n != ENV_MARKER)
        if ENV_MARKER not in self._exported:
            self._exported[ENV_MARKER] = os.environ.get(ENV_MARKER)
        os.environ[ENV_MARKER] = ",".join(names)

    def _restore_environment(self) -> None:
        for name, previous in getattr(self, "_exported", {}).items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        self._exported = {}


def _redact(url: str) -> str:
    """A database URL without its password, for the log."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
